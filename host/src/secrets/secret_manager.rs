//! Secret Manager over REST: `GET v1/{version}:access` with the operator's Google credentials,
//! the payload checked against its CRC-32C.

use crate::credentials::{GoogleAuth, google_error_message};
use base64::Engine;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Google's Secret Manager API.
pub const SECRET_MANAGER: &str = "https://secretmanager.googleapis.com";

/// A Secret Manager client.
pub struct SecretManager {
    http: reqwest::Client,
    endpoint: String,
    auth: Arc<GoogleAuth>,
}

#[derive(Deserialize)]
struct AccessResponse {
    payload: Payload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    #[serde(default)]
    data: String,
    /// An int64, which JSON carries as a string.
    data_crc32c: Option<String>,
}

impl SecretManager {
    /// A client of `endpoint` (normally [`SECRET_MANAGER`]) authenticated by `auth`.
    pub fn new(endpoint: &str, auth: Arc<GoogleAuth>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            http,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            auth,
        }
    }

    /// The value of secret version `name` (`projects/P/secrets/S[/versions/V]`) as text, one
    /// trailing newline dropped (`echo value | gcloud secrets create` stores one). Errors name the
    /// secret and, where Google says why, the role that is missing; never the value.
    pub async fn access(&self, name: &str) -> Result<String, String> {
        let version = super::version_name(name)?;
        let fail = |reason: String| format!("the Secret Manager secret `{version}`: {reason}");
        let token = self.auth.token().await.map_err(|e| fail(e.to_string()))?;
        let url = format!("{}/v1/{version}:access", self.endpoint);
        let mut request = self.http.get(&url);
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| fail(format!("cannot reach {}: {e}", self.endpoint)))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| fail(format!("reading the answer: {e}")))?;
        if !status.is_success() {
            let hint = match status.as_u16() {
                403 => {
                    " (the identity reading it needs roles/secretmanager.secretAccessor on the secret)"
                }
                404 => {
                    " (does the secret, and that version, exist? `gcloud secrets versions list <secret>`)"
                }
                _ => "",
            };
            return Err(fail(format!(
                "HTTP {}: {}{hint}",
                status.as_u16(),
                google_error_message(&body)
            )));
        }
        let answer: AccessResponse = serde_json::from_str(&body)
            .map_err(|e| fail(format!("the answer is not an access response: {e}")))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(answer.payload.data.as_bytes())
            .map_err(|e| fail(format!("the payload is not base64: {e}")))?;
        if let Some(expected) = answer.payload.data_crc32c {
            let expected: i64 = expected
                .parse()
                .map_err(|_| fail(format!("`dataCrc32c` is not a number: `{expected}`")))?;
            if i64::from(super::crc32c::checksum(&bytes)) != expected {
                return Err(fail(
                    "the payload does not match its checksum (damaged on the way); try again"
                        .into(),
                ));
            }
        }
        let mut value =
            String::from_utf8(bytes).map_err(|_| fail("the payload is not UTF-8 text".into()))?;
        if value.ends_with('\n') {
            value.pop();
            if value.ends_with('\r') {
                value.pop();
            }
        }
        Ok(value)
    }
}
