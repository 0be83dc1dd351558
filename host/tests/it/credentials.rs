//! Google credentials against a fixture OAuth server shaped like Google's token endpoints: the
//! service-account JWT is verified with the account's public key, refresh-token and metadata
//! exchanges are checked field by field, and errors come back in Google's format.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use inlet_host::credentials::{CredentialsError, GoogleAuth, Impersonated, TokenSource};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One parsed request.
#[derive(Debug, Clone)]
struct Request {
    line: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// Answers every request with `respond`, recording requests.
struct Fixture {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
    count: Arc<AtomicUsize>,
}

fn fixture(respond: impl Fn(&Request) -> (u16, String) + Send + 'static) -> Fixture {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let (seen, counter) = (requests.clone(), count.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut headers = Vec::new();
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                let (name, value) = header.split_once(':').unwrap();
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
            let length = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let request = Request {
                line: line.trim_end().to_owned(),
                headers,
                body: String::from_utf8(body).unwrap(),
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let (status, answer) = respond(&request);
            seen.lock().unwrap().push(request);
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    Fixture {
        url,
        requests,
        count,
    }
}

fn form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            let decode = |s: &str| {
                let s = s.replace('+', " ");
                let mut out = Vec::new();
                let bytes = s.as_bytes();
                let mut i = 0;
                while i < bytes.len() {
                    if bytes[i] == b'%' {
                        out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                        i += 3;
                    } else {
                        out.push(bytes[i]);
                        i += 1;
                    }
                }
                String::from_utf8(out).unwrap()
            };
            (decode(k), decode(v))
        })
        .collect()
}

fn field(fields: &[(String, String)], name: &str) -> String {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn write_json(value: serde_json::Value) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(value.to_string().as_bytes()).unwrap();
    file
}

#[tokio::test]
async fn service_account_tokens_are_signed_verified_and_cached() {
    let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let public = key.public_key().as_ref().to_vec();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(AsDer::as_der(&key).unwrap().as_ref())
    );
    let server = fixture(move |request| {
        let fields = form(&request.body);
        assert_eq!(
            field(&fields, "grant_type"),
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        );
        let assertion = field(&fields, "assertion");
        let (signed, signature) = assertion.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        if UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public)
            .verify(signed.as_bytes(), &signature)
            .is_err()
        {
            return (
                400,
                r#"{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}"#
                    .into(),
            );
        }
        let claims: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(signed.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["iss"], "loader@project.iam.gserviceaccount.com");
        assert_eq!(
            claims["scope"],
            "https://www.googleapis.com/auth/cloud-platform"
        );
        assert!(claims["aud"].as_str().unwrap().ends_with("/token"));
        (
            200,
            r#"{"access_token": "ya29.service", "expires_in": 3599, "token_type": "Bearer"}"#
                .into(),
        )
    });
    let file = write_json(serde_json::json!({
        "type": "service_account", "project_id": "project", "private_key_id": "k1", "private_key": pem,
        "client_email": "loader@project.iam.gserviceaccount.com", "token_uri": format!("{}/token", server.url),
    }));
    let auth = GoogleAuth::from_file(file.path(), "test").unwrap();
    assert_eq!(auth.token().await.unwrap(), "ya29.service");
    assert_eq!(auth.token().await.unwrap(), "ya29.service");
    assert_eq!(
        server.count.load(Ordering::SeqCst),
        1,
        "the second call is served from the cache"
    );
    assert!(
        server.requests.lock().unwrap()[0]
            .line
            .starts_with("POST /token")
    );
}

#[tokio::test]
async fn tokens_close_to_expiry_are_renewed() {
    let server = fixture(|_| {
        (
            200,
            r#"{"access_token": "ya29.short", "expires_in": 60}"#.into(),
        )
    });
    let file = write_json(serde_json::json!({
        "type": "authorized_user", "client_id": "client-1.apps.googleusercontent.com", "client_secret": "shh",
        "refresh_token": "1//refresh", "token_uri": format!("{}/token", server.url),
    }));
    let auth = GoogleAuth::from_file(file.path(), "test").unwrap();
    auth.token().await.unwrap();
    auth.token().await.unwrap();
    assert_eq!(
        server.count.load(Ordering::SeqCst),
        2,
        "a token with under five minutes left is renewed"
    );
    let fields = form(&server.requests.lock().unwrap()[0].body);
    assert_eq!(field(&fields, "grant_type"), "refresh_token");
    assert_eq!(field(&fields, "refresh_token"), "1//refresh");
    assert_eq!(
        field(&fields, "client_id"),
        "client-1.apps.googleusercontent.com"
    );
}

#[tokio::test]
async fn metadata_server_is_asked_with_its_header() {
    let server = fixture(|request| {
        let flavored = request
            .headers
            .iter()
            .any(|(n, v)| n == "metadata-flavor" && v == "Google");
        if !flavored {
            return (403, "Missing Metadata-Flavor:Google header.".into());
        }
        (
            200,
            r#"{"access_token": "ya29.metadata", "expires_in": 3599, "token_type": "Bearer"}"#
                .into(),
        )
    });
    let auth = GoogleAuth::metadata(&server.url);
    assert_eq!(auth.token().await.unwrap(), "ya29.metadata");
    let line = server.requests.lock().unwrap()[0].line.clone();
    assert!(
        line.starts_with("GET /computeMetadata/v1/instance/service-accounts/default/token?scopes="),
        "{line}"
    );
}

#[tokio::test]
async fn refusals_and_missing_files_name_the_thing_and_a_fix() {
    let server = fixture(|_| {
        (400, r#"{"error": "invalid_grant", "error_description": "Token has been expired or revoked."}"#.into())
    });
    let file = write_json(serde_json::json!({
        "type": "authorized_user", "client_id": "client-1", "client_secret": "shh", "refresh_token": "1//old",
        "token_uri": format!("{}/token", server.url),
    }));
    let error = GoogleAuth::from_file(file.path(), "test")
        .unwrap()
        .token()
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, CredentialsError::Refused { status: 400, .. }),
        "{message}"
    );
    assert!(
        message.contains("invalid_grant: Token has been expired or revoked.")
            && message.contains("gcloud auth application-default login"),
        "{message}"
    );
    assert!(
        !message.contains("shh") && !message.contains("1//old"),
        "secrets stay out of messages: {message}"
    );

    let missing = GoogleAuth::from_file(
        std::path::Path::new("/nonexistent/key.json"),
        "set by GOOGLE_APPLICATION_CREDENTIALS",
    )
    .unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("`/nonexistent/key.json` (set by GOOGLE_APPLICATION_CREDENTIALS)"),
        "{missing}"
    );
    let wrong_kind = write_json(serde_json::json!({"type": "external_account"}));
    let error = GoogleAuth::from_file(wrong_kind.path(), "test")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("`external_account`") && error.contains("service_account"),
        "{error}"
    );

    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let error = GoogleAuth::metadata(&format!("http://{closed}"))
        .token()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("cannot reach") && error.contains("GOOGLE_APPLICATION_CREDENTIALS"),
        "{error}"
    );
}

#[tokio::test]
async fn impersonated_tokens_are_minted_per_scope_set_with_the_base_identity() {
    // One fixture plays both Google's token endpoint (the base identity's refresh) and the IAM
    // Credentials API (`generateAccessToken`), which answers in Google's error format when the
    // caller lacks Token Creator.
    let server = fixture(|request| {
        if request.line.starts_with("POST /token") {
            return (
                200,
                r#"{"access_token": "ya29.base", "expires_in": 3600}"#.into(),
            );
        }
        if request.line.contains("denied@") {
            return (
                403,
                r#"{"error": {"code": 403, "message": "Permission 'iam.serviceAccounts.getAccessToken' denied", "status": "PERMISSION_DENIED"}}"#.into(),
            );
        }
        let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
        let scopes: Vec<String> = serde_json::from_value(body["scope"].clone()).unwrap();
        (
            200,
            serde_json::json!({"accessToken": format!("ya29.minted.{}", scopes.join("+")), "expireTime": "2099-01-01T00:00:00Z"})
                .to_string(),
        )
    });
    let file = write_json(serde_json::json!({
        "type": "authorized_user", "client_id": "client-1", "client_secret": "shh",
        "refresh_token": "1//refresh", "token_uri": format!("{}/token", server.url),
    }));
    let base = || GoogleAuth::from_file(file.path(), "test").unwrap();
    let reader = Impersonated::new(base(), "reader@p.iam.gserviceaccount.com", &server.url);
    let sheets = vec!["https://www.googleapis.com/auth/spreadsheets.readonly".to_owned()];
    let token = reader.token(&sheets).await.unwrap();
    assert_eq!(
        token,
        "ya29.minted.https://www.googleapis.com/auth/spreadsheets.readonly"
    );
    assert_eq!(reader.token(&sheets).await.unwrap(), token, "cached");
    let other = reader.token(&["scope-b".to_owned()]).await.unwrap();
    assert_eq!(
        other, "ya29.minted.scope-b",
        "another scope set, another token"
    );
    let requests = server.requests.lock().unwrap().clone();
    let mints: Vec<&Request> = requests
        .iter()
        .filter(|r| r.line.contains(":generateAccessToken"))
        .collect();
    assert_eq!(mints.len(), 2, "one mint per scope set: {requests:?}");
    assert!(
        mints[0].line.starts_with(
            "POST /v1/projects/-/serviceAccounts/reader@p.iam.gserviceaccount.com:generateAccessToken"
        ),
        "{}",
        mints[0].line
    );
    let authorization = mints[0]
        .headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .map(|(_, v)| v.as_str());
    assert_eq!(
        authorization,
        Some("Bearer ya29.base"),
        "asked as the base identity"
    );
    let body: serde_json::Value = serde_json::from_str(&mints[0].body).unwrap();
    assert_eq!(body["lifetime"], "3600s");

    let denied = Impersonated::new(base(), "denied@p.iam.gserviceaccount.com", &server.url);
    let message = denied.token(&sheets).await.unwrap_err();
    assert!(
        message.contains("PERMISSION_DENIED")
            && message.contains("denied@p.iam.gserviceaccount.com")
            && message.contains("roles/iam.serviceAccountTokenCreator"),
        "{message}"
    );
}
