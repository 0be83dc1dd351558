//! Tokens of another service account, minted by the IAM Credentials API with the operator's own
//! identity (`generateAccessToken`; the operator needs `roles/iam.serviceAccountTokenCreator` on
//! it). A grant can hand a connector a narrow account without a key file.

use super::{CredentialsError, GoogleAuth, RENEW_BEFORE, TokenSource, google_error_message};
use serde::Deserialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Google's IAM Credentials endpoint.
pub const IAM_CREDENTIALS: &str = "https://iamcredentials.googleapis.com";
/// The life asked for each token (the API's default maximum).
const LIFETIME: Duration = Duration::from_secs(3600);

/// Access tokens of `account`, one per set of scopes, cached until five minutes before expiry.
pub struct Impersonated {
    base: GoogleAuth,
    account: String,
    endpoint: String,
    client: reqwest::Client,
    cache: tokio::sync::Mutex<HashMap<Vec<String>, (String, Instant)>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateAccessTokenResponse {
    access_token: String,
}

impl Impersonated {
    /// Tokens of `account` (an email), asked with `base`'s tokens from `endpoint`
    /// ([`IAM_CREDENTIALS`], or a test server).
    pub fn new(base: GoogleAuth, account: &str, endpoint: &str) -> Self {
        Self {
            base,
            account: account.to_owned(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client with default settings can be built"),
            cache: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Who the tokens are for, for messages.
    pub fn who(&self) -> String {
        format!(
            "service account `{}`, impersonated by {}",
            self.account,
            self.base.who()
        )
    }

    async fn mint(&self, scopes: &[String]) -> Result<String, CredentialsError> {
        let mut cache = self.cache.lock().await;
        if let Some((token, expires_at)) = cache.get(scopes)
            && expires_at.saturating_duration_since(Instant::now()) > RENEW_BEFORE
        {
            return Ok(token.clone());
        }
        let base_token = self.base.token().await?;
        let url = format!(
            "{}/v1/projects/-/serviceAccounts/{}:generateAccessToken",
            self.endpoint, self.account
        );
        let requested = Instant::now();
        let body = serde_json::json!({
            "scope": scopes,
            "lifetime": format!("{}s", LIFETIME.as_secs()),
        });
        let hint = format!(
            " ({} needs roles/iam.serviceAccountTokenCreator on `{}`)",
            self.base.who(),
            self.account
        );
        let response = self
            .client
            .post(&url)
            .bearer_auth(base_token)
            .json(&body)
            .send()
            .await
            .map_err(|e| CredentialsError::Unreachable {
                endpoint: url.clone(),
                who: self.who(),
                reason: e.to_string(),
                hint: String::new(),
            })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(CredentialsError::Refused {
                endpoint: url,
                who: self.who(),
                status: status.as_u16(),
                message: google_error_message(&text),
                hint,
            });
        }
        let answer: GenerateAccessTokenResponse =
            serde_json::from_str(&text).map_err(|e| CredentialsError::Refused {
                endpoint: url,
                who: self.who(),
                status: status.as_u16(),
                message: format!("the answer is not a token: {e}"),
                hint: String::new(),
            })?;
        cache.insert(
            scopes.to_vec(),
            (answer.access_token.clone(), requested + LIFETIME),
        );
        Ok(answer.access_token)
    }
}

impl TokenSource for Impersonated {
    fn token<'a>(
        &'a self,
        scopes: &'a [String],
    ) -> futures::future::BoxFuture<'a, Result<String, String>> {
        Box::pin(async move { self.mint(scopes).await.map_err(|e| e.to_string()) })
    }
}
