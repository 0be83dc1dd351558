//! Credentials on the host: one place that turns a service-account key, an authorized-user
//! refresh token, the GCE/Cloud Run metadata server or an impersonated service account into OAuth
//! access tokens, cached and renewed before they expire; and the per-connection grants that decide
//! which of them (or which secret value) a connector may use, and where. The lake (GCS), the
//! BigQuery loader and credential injection for HTTP connectors all ask this module; connectors
//! never see a token.

pub mod grant;
mod impersonate;
mod jwt;

pub use grant::{
    AskKind, CredentialAsk, Grant, GrantRefusal, GrantSource, HostPattern, SecretValue,
};
pub use impersonate::{IAM_CREDENTIALS, Impersonated};

use futures::future::BoxFuture;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The scope that covers GCS, BigQuery and the other Cloud APIs.
pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";
/// A token is renewed when less than this is left of its life.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// Where the host gets OAuth access tokens for a grant: a Google identity, asked per set of scopes.
pub trait TokenSource: Send + Sync {
    /// A token for `scopes`; the error is a message for the operator. An empty token means "no
    /// credentials" (emulators): the header that would carry it is dropped.
    fn token<'a>(&'a self, scopes: &'a [String]) -> BoxFuture<'a, Result<String, String>>;
}

/// Why no token could be had. Messages name the file, account or endpoint and suggest a fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    #[error("cannot read the Google credentials file `{}` ({origin}): {reason}", path.display())]
    File {
        path: PathBuf,
        origin: String,
        reason: String,
    },
    #[error(
        "`{}` is not a Google credentials file: {reason}; expected a service-account key (IAM > Service accounts > Keys) or the file written by `gcloud auth application-default login`",
        path.display()
    )]
    Format { path: PathBuf, reason: String },
    #[error("`{}` holds credentials of type `{kind}`; supported: `service_account`, `authorized_user`", path.display())]
    Kind { path: PathBuf, kind: String },
    #[error("the private key of service account `{account}` cannot be used: {reason}")]
    Key { account: String, reason: String },
    #[error("{endpoint} refused {who}: HTTP {status}: {message}{hint}")]
    Refused {
        endpoint: String,
        who: String,
        status: u16,
        message: String,
        hint: String,
    },
    #[error("cannot reach {endpoint} for {who}: {reason}{hint}")]
    Unreachable {
        endpoint: String,
        who: String,
        reason: String,
        hint: String,
    },
}

#[derive(Deserialize)]
struct CredentialsFile {
    #[serde(rename = "type")]
    kind: String,
}

/// A service-account key file.
#[derive(Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default = "default_token_uri")]
    token_uri: String,
}

/// An authorized-user file (`gcloud auth application-default login`).
#[derive(Deserialize)]
struct AuthorizedUser {
    client_id: String,
    client_secret: String,
    refresh_token: String,
    /// Not in gcloud's files; honoured so tests and proxies can redirect the exchange.
    #[serde(default = "default_token_uri")]
    token_uri: String,
}

fn default_token_uri() -> String {
    DEFAULT_TOKEN_URI.to_owned()
}

enum Source {
    ServiceAccount {
        account: ServiceAccount,
        signer: jwt::Signer,
    },
    AuthorizedUser(AuthorizedUser),
    Metadata {
        url: String,
    },
    /// No credentials: requests go out without `Authorization` (emulators).
    Anonymous,
}

struct Cached {
    token: String,
    expires_at: Instant,
}

/// A source of Google access tokens with a cache.
pub struct GoogleAuth {
    source: Source,
    scopes: Vec<String>,
    client: reqwest::Client,
    cache: tokio::sync::Mutex<Option<Cached>>,
}

impl std::fmt::Debug for GoogleAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleAuth")
            .field("who", &self.who())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default = "default_expiry")]
    expires_in: u64,
}

fn default_expiry() -> u64 {
    3600
}

impl GoogleAuth {
    /// Application default credentials: `$GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's
    /// `application_default_credentials.json`, else the metadata server (`$GCE_METADATA_HOST` or
    /// `metadata.google.internal`), as Google's own libraries look for them.
    pub fn discover() -> Result<Self, CredentialsError> {
        if let Some(path) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
            return Self::from_file(Path::new(&path), "set by GOOGLE_APPLICATION_CREDENTIALS");
        }
        let config = std::env::var_os("CLOUDSDK_CONFIG")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config/gcloud"))
            });
        if let Some(file) = config.map(|dir| dir.join("application_default_credentials.json"))
            && file.is_file()
        {
            return Self::from_file(&file, "gcloud application default credentials");
        }
        let host =
            std::env::var("GCE_METADATA_HOST").unwrap_or_else(|_| DEFAULT_METADATA_HOST.to_owned());
        Ok(Self::metadata(&format!("http://{host}")))
    }

    /// Credentials from a key or authorized-user file; `origin` says where the path came from.
    pub fn from_file(path: &Path, origin: &str) -> Result<Self, CredentialsError> {
        let text = std::fs::read_to_string(path).map_err(|e| CredentialsError::File {
            path: path.to_owned(),
            origin: origin.to_owned(),
            reason: e.to_string(),
        })?;
        Self::from_key(&text, path)
    }

    /// Credentials from the text of a key or authorized-user file; `path` names where it came
    /// from in messages (a file, or a secret reference: the text itself is never shown).
    pub fn from_key(text: &str, path: &Path) -> Result<Self, CredentialsError> {
        let format = |e: serde_json::Error| CredentialsError::Format {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let kind: CredentialsFile = serde_json::from_str(text).map_err(format)?;
        let source = match kind.kind.as_str() {
            "service_account" => {
                let account: ServiceAccount = serde_json::from_str(text).map_err(format)?;
                let signer = jwt::Signer::from_pem(&account.private_key).map_err(|reason| {
                    CredentialsError::Key {
                        account: account.client_email.clone(),
                        reason,
                    }
                })?;
                Source::ServiceAccount { account, signer }
            }
            "authorized_user" => {
                Source::AuthorizedUser(serde_json::from_str(text).map_err(format)?)
            }
            other => {
                return Err(CredentialsError::Kind {
                    path: path.to_owned(),
                    kind: other.to_owned(),
                });
            }
        };
        Ok(Self::new(source))
    }

    /// The metadata server at `base` (for example `http://metadata.google.internal`).
    pub fn metadata(base: &str) -> Self {
        let url = format!(
            "{}/computeMetadata/v1/instance/service-accounts/default/token",
            base.trim_end_matches('/')
        );
        Self::new(Source::Metadata { url })
    }

    /// No credentials at all: [`GoogleAuth::token`] answers an empty string and callers send no
    /// `Authorization` header. For emulators (`credentials = "none"` in `inlet.toml`).
    pub fn anonymous() -> Self {
        Self::new(Source::Anonymous)
    }

    /// Whether this is [`GoogleAuth::anonymous`].
    pub fn is_anonymous(&self) -> bool {
        matches!(self.source, Source::Anonymous)
    }

    fn new(source: Source) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client with default settings can be built");
        Self {
            source,
            scopes: vec![CLOUD_PLATFORM.to_owned()],
            client,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// Asks for these OAuth scopes instead of `cloud-platform`.
    pub fn with_scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Who the tokens are for, for messages: never a secret.
    pub fn who(&self) -> String {
        match &self.source {
            Source::ServiceAccount { account, .. } => {
                format!("service account `{}`", account.client_email)
            }
            Source::AuthorizedUser(user) => {
                format!("the authorized user of OAuth client `{}`", user.client_id)
            }
            Source::Metadata { .. } => "the metadata server's default service account".to_owned(),
            Source::Anonymous => "no credentials (`credentials = \"none\"`)".to_owned(),
        }
    }

    /// A valid access token, from the cache when it has more than five minutes left.
    pub async fn token(&self) -> Result<String, CredentialsError> {
        if self.is_anonymous() {
            return Ok(String::new());
        }
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && cached.expires_at.saturating_duration_since(Instant::now()) > RENEW_BEFORE
        {
            return Ok(cached.token.clone());
        }
        let requested = Instant::now();
        let response = self.fetch().await?;
        let token = response.access_token.clone();
        *cache = Some(Cached {
            token: response.access_token,
            expires_at: requested + Duration::from_secs(response.expires_in),
        });
        Ok(token)
    }

    async fn fetch(&self) -> Result<TokenResponse, CredentialsError> {
        let (endpoint, request, hint) = match &self.source {
            Source::ServiceAccount { account, signer } => {
                let assertion = signer
                    .assertion(
                        &account.client_email,
                        account.private_key_id.as_deref(),
                        &self.scopes.join(" "),
                        &account.token_uri,
                    )
                    .map_err(|reason| CredentialsError::Key {
                        account: account.client_email.clone(),
                        reason,
                    })?;
                let form = [
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", assertion.as_str()),
                ];
                let request = self.client.post(&account.token_uri).form(&form);
                (
                    account.token_uri.clone(),
                    request,
                    " (check that the key was not deleted or disabled, and that this machine's clock is right)",
                )
            }
            Source::AuthorizedUser(user) => {
                let form = [
                    ("grant_type", "refresh_token"),
                    ("client_id", user.client_id.as_str()),
                    ("client_secret", user.client_secret.as_str()),
                    ("refresh_token", user.refresh_token.as_str()),
                ];
                let request = self.client.post(&user.token_uri).form(&form);
                (
                    user.token_uri.clone(),
                    request,
                    " (run `gcloud auth application-default login` again)",
                )
            }
            Source::Metadata { url } => {
                let request = self
                    .client
                    .get(url)
                    .header("Metadata-Flavor", "Google")
                    .query(&[("scopes", self.scopes.join(","))]);
                (
                    url.clone(),
                    request,
                    " (outside Google Cloud, set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file or run `gcloud auth application-default login`)",
                )
            }
            Source::Anonymous => {
                return Ok(TokenResponse {
                    access_token: String::new(),
                    expires_in: default_expiry(),
                });
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| CredentialsError::Unreachable {
                endpoint: endpoint.clone(),
                who: self.who(),
                reason: e.to_string(),
                hint: hint.to_owned(),
            })?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(CredentialsError::Refused {
                endpoint,
                who: self.who(),
                status: status.as_u16(),
                message: oauth_error_message(&body),
                hint: hint.to_owned(),
            });
        }
        serde_json::from_str(&body).map_err(|e| CredentialsError::Refused {
            endpoint,
            who: self.who(),
            status: status.as_u16(),
            message: format!("the answer is not a token: {e}"),
            hint: String::new(),
        })
    }
}

/// Google's OAuth errors are `{"error": "...", "error_description": "..."}`; anything else is shown
/// as it came (shortened).
fn oauth_error_message(body: &str) -> String {
    #[derive(Deserialize)]
    struct OAuthError {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    match serde_json::from_str::<OAuthError>(body) {
        Ok(e) => match e.error_description {
            Some(description) => format!("{}: {description}", e.error),
            None => e.error,
        },
        Err(_) => body.chars().take(300).collect(),
    }
}

/// Google tokens for connectors (the `google` credential): one [`GoogleAuth`] per set of scopes,
/// made on first use, so a connector that never asks costs nothing and one that does gets a
/// token for exactly the scopes it named.
pub struct GoogleTokens {
    make: Box<dyn Fn() -> Result<GoogleAuth, CredentialsError> + Send + Sync>,
    by_scopes:
        tokio::sync::Mutex<std::collections::HashMap<Vec<String>, std::sync::Arc<GoogleAuth>>>,
}

impl GoogleTokens {
    /// Tokens from the credentials `make` builds (called once per set of scopes).
    pub fn new(
        make: impl Fn() -> Result<GoogleAuth, CredentialsError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            make: Box::new(make),
            by_scopes: tokio::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }
}

impl TokenSource for GoogleTokens {
    fn token<'a>(&'a self, scopes: &'a [String]) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let auth = {
                let mut cache = self.by_scopes.lock().await;
                match cache.get(scopes) {
                    Some(auth) => auth.clone(),
                    None => {
                        let mut auth = (self.make)().map_err(|e| e.to_string())?;
                        if !scopes.is_empty() {
                            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
                            auth = auth.with_scopes(&scopes);
                        }
                        let auth = std::sync::Arc::new(auth);
                        cache.insert(scopes.to_vec(), auth.clone());
                        auth
                    }
                }
            };
            auth.token().await.map_err(|e| e.to_string())
        })
    }
}

/// Google API errors are `{"error": {"code": 403, "message": "...", "status": "..."}}`.
pub(crate) fn google_error_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        message: String,
        #[serde(default)]
        status: String,
    }
    match serde_json::from_str::<Envelope>(body) {
        Ok(e) if e.error.status.is_empty() => e.error.message,
        Ok(e) => format!("{}: {}", e.error.status, e.error.message),
        Err(_) => body.chars().take(300).collect(),
    }
}
