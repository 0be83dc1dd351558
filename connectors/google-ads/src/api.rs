//! `googleAds:searchStream` over REST: the headers every call needs (OAuth token, developer
//! token, login-customer-id, all as the host's placeholders or plain ids), and Google Ads'
//! `GoogleAdsFailure` error bodies turned into typed errors that name the account and the fix,
//! retried when the API asks for a wait (quota) or says it is transient.

use crate::version::API_VERSION;
use inlet_sdk::Error;
use inlet_sdk::http::{Client, Response};
use serde_json::Value;
use std::time::Duration;

/// The OAuth scope of the Google Ads API.
pub const SCOPE: &str = "https://www.googleapis.com/auth/adwords";
/// The granted secret holding the developer token.
pub const DEVELOPER_TOKEN: &str = "developer_token";

/// Attempts per call (the first included).
const ATTEMPTS: u32 = 5;
/// A quota wait longer than this is not waited out inside the run: the run ends rate limited,
/// with the delay, and the scheduler tries later.
const LONGEST_WAIT: Duration = Duration::from_secs(60);

/// The API with the headers every call carries.
pub struct Ads {
    client: Client,
    sleep: fn(Duration),
}

impl Ads {
    /// A client for `endpoint`, with the OAuth and developer-token placeholders and, when acting
    /// through a manager account, `login-customer-id`.
    pub fn new(endpoint: &str, login_customer_id: Option<&str>) -> Result<Self, Error> {
        let developer_token = inlet_sdk::http::credential(DEVELOPER_TOKEN, &[])?;
        let mut client = Client::new(endpoint)?
            .with_credential("google", &[SCOPE])?
            .with_header("developer-token", &developer_token)
            .with_timeout(Duration::from_secs(600));
        if let Some(id) = login_customer_id {
            client = client.with_header("login-customer-id", id);
        }
        Ok(Self {
            client,
            sleep: std::thread::sleep,
        })
    }

    /// Runs `query` on account `customer` and answers every row of every batch. `what` names the
    /// stream (or the account listing) for messages.
    pub fn search_stream(
        &self,
        customer: &str,
        query: &str,
        what: &str,
    ) -> Result<Vec<Value>, Error> {
        let path = format!(
            "/{}/customers/{customer}/googleAds:searchStream",
            API_VERSION.name
        );
        let body = serde_json::to_vec(&serde_json::json!({ "query": query }))
            .map_err(|e| Error::internal(e.to_string()))?;
        let mut attempt = 1;
        loop {
            let failure = match self.client.send_raw("POST", &path, &[], Some(&body)) {
                Ok(response) if response.status < 400 => return rows(&response, customer, what),
                Ok(response) => explain(&response, customer, what, query),
                Err(error) => error,
            };
            let wait = match &failure {
                Error::RateLimited {
                    retry_after_ms: Some(ms),
                    ..
                } if Duration::from_millis(*ms) > LONGEST_WAIT => return Err(failure),
                Error::RateLimited { retry_after_ms, .. } => retry_after_ms
                    .map(Duration::from_millis)
                    .unwrap_or_else(|| backoff(attempt)),
                Error::Transient(_) => backoff(attempt),
                _ => return Err(failure),
            };
            if attempt >= ATTEMPTS {
                return Err(failure);
            }
            inlet_sdk::bindings::inlet::connector::host::log(
                inlet_sdk::bindings::inlet::connector::types::LogLevel::Info,
                &format!("{failure}; attempt {attempt} of {ATTEMPTS}, retrying in {wait:?}"),
            );
            (self.sleep)(wait);
            attempt += 1;
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1 << (attempt - 1).min(5))
}

/// The rows of a searchStream answer: a JSON array of batches, each with `results`.
fn rows(response: &Response, customer: &str, what: &str) -> Result<Vec<Value>, Error> {
    let batches: Value = response.json()?;
    let Value::Array(batches) = batches else {
        return Err(Error::data(format!(
            "account `{customer}`, {what}: searchStream answered something other than a JSON array of batches"
        )));
    };
    let mut rows = Vec::new();
    for batch in batches {
        if batch.get("error").is_some() {
            // A failure after some batches arrives as the last element of the array.
            let error = failure_of(&batch);
            return Err(classify(&error, 200, customer, what, ""));
        }
        if let Some(Value::Array(results)) = batch.get("results") {
            rows.extend(results.iter().cloned());
        }
    }
    Ok(rows)
}

/// What a `GoogleAdsFailure` body says.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Failure {
    /// The rpc status (`RESOURCE_EXHAUSTED`).
    pub status: String,
    /// The top message.
    pub message: String,
    /// `(category, value, message)` per error (`("quotaError", "RESOURCE_EXHAUSTED", ...)`).
    pub errors: Vec<(String, String, String)>,
    /// The quota's `retryDelay`, if given.
    pub retry_delay: Option<Duration>,
    /// The request id, for Google's support.
    pub request_id: Option<String>,
}

/// Reads `{"error": {...details: [GoogleAdsFailure]}}`, alone or inside searchStream's array.
pub fn failure_of(body: &Value) -> Failure {
    let error = match body {
        Value::Array(items) => items
            .iter()
            .find_map(|i| i.get("error"))
            .cloned()
            .unwrap_or_default(),
        other => other.get("error").cloned().unwrap_or_default(),
    };
    let mut failure = Failure {
        status: error["status"].as_str().unwrap_or("").to_owned(),
        message: error["message"].as_str().unwrap_or("").to_owned(),
        ..Failure::default()
    };
    for detail in error["details"].as_array().into_iter().flatten() {
        if let Some(id) = detail["requestId"].as_str() {
            failure.request_id = Some(id.to_owned());
        }
        for e in detail["errors"].as_array().into_iter().flatten() {
            if let Some(Value::Object(code)) = e.get("errorCode") {
                for (category, value) in code {
                    failure.errors.push((
                        category.clone(),
                        value.as_str().unwrap_or("").to_owned(),
                        e["message"].as_str().unwrap_or("").to_owned(),
                    ));
                }
            }
            if let Some(delay) = e["details"]["quotaErrorDetails"]["retryDelay"].as_str() {
                failure.retry_delay = parse_duration(delay);
            }
        }
    }
    failure
}

/// A protobuf JSON Duration (`"30s"`, `"1.5s"`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let seconds: f64 = text.strip_suffix('s')?.parse().ok()?;
    (seconds >= 0.0 && seconds.is_finite()).then(|| Duration::from_secs_f64(seconds))
}

fn explain(response: &Response, customer: &str, what: &str, query: &str) -> Error {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or_default();
    let mut failure = failure_of(&body);
    if failure.message.is_empty() && failure.errors.is_empty() {
        failure.message = String::from_utf8_lossy(&response.body)
            .chars()
            .take(300)
            .collect();
    }
    classify(&failure, response.status, customer, what, query)
}

/// The typed error for a failure: quota -> rate limited (with the delay), authentication and
/// authorization -> auth, query/header/request errors -> config, internal -> transient.
pub fn classify(failure: &Failure, status: u16, customer: &str, what: &str, query: &str) -> Error {
    let has = |category: &str| failure.errors.iter().any(|(c, _, _)| c == category);
    let value = |category: &str| {
        failure
            .errors
            .iter()
            .find(|(c, _, _)| c == category)
            .map(|(_, v, _)| v.as_str())
            .unwrap_or("")
    };
    let said = {
        let mut parts: Vec<String> = failure
            .errors
            .iter()
            .map(|(c, v, m)| format!("{c} {v}: {m}"))
            .collect();
        if parts.is_empty() {
            parts.push(
                format!("{} {}", failure.status, failure.message)
                    .trim()
                    .to_owned(),
            );
        }
        let mut said = parts.join("; ");
        if let Some(id) = &failure.request_id {
            said.push_str(&format!(" (request id `{id}`)"));
        }
        said
    };
    let at = format!("google ads account `{customer}`, {what}");
    if has("quotaError") || status == 429 || failure.status == "RESOURCE_EXHAUSTED" {
        return Error::RateLimited {
            message: format!("{at}: the API quota is exhausted: {said}"),
            retry_after_ms: failure.retry_delay.map(|d| d.as_millis() as u64),
        };
    }
    if has("authenticationError") {
        return Error::Auth(format!(
            "{at}: the OAuth credential was refused ({}); re-authorize the identity granted as `google` with scope {SCOPE}, and check it is a Google Ads user: {said}",
            value("authenticationError")
        ));
    }
    if has("authorizationError") {
        let fix = match value("authorizationError") {
            "USER_PERMISSION_DENIED" => {
                "the granted user cannot reach this account directly: set `login_customer_id` to the manager (MCC) account it is reached through, or give the user access to the account"
            }
            "DEVELOPER_TOKEN_NOT_APPROVED" => {
                "the developer token has test access only and can read test accounts only: apply for Basic access in the API Center of the manager account"
            }
            "DEVELOPER_TOKEN_PROHIBITED" => {
                "the developer token may not be used with the OAuth client's Google Cloud project: use a token of the project's manager account"
            }
            "CUSTOMER_NOT_ENABLED" => {
                "the account is not enabled (cancelled or suspended): remove it from `customer_ids`"
            }
            _ => "check the account id and the access of the granted user",
        };
        return Error::Auth(format!("{at}: {fix}: {said}"));
    }
    if has("headerError") {
        return Error::config(format!(
            "{at}: a header was refused; `login_customer_id` must be the manager account's 10 digits without dashes, and a manager of this account: {said}"
        ));
    }
    if value("requestError") == "DEVELOPER_TOKEN_PARAMETER_MISSING" {
        return Error::config(format!(
            "{at}: no developer token reached the API; grant the secret `{DEVELOPER_TOKEN}` to this connection with hosts = [\"googleads.googleapis.com\"]: {said}"
        ));
    }
    if has("queryError") || has("requestError") && !query.is_empty() {
        return Error::config(format!(
            "{at}: the query was refused: {said}; query: {query}"
        ));
    }
    if has("dateRangeError") {
        return Error::config(format!(
            "{at}: the date range was refused (daily rows exist only for the last 37 months; move `start_date` later): {said}"
        ));
    }
    if has("internalError") || status >= 500 {
        return Error::Transient(format!("{at}: {said}"));
    }
    match status {
        401 | 403 => Error::Auth(format!("{at}: {said}")),
        404 => Error::NotFound(format!(
            "{at}: not found; check the account id (10 digits): {said}"
        )),
        _ => Error::config(format!("{at}: {said}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn quota_body(delay: &str) -> Value {
        json!([{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
                "errors": [{"errorCode": {"quotaError": "RESOURCE_EXHAUSTED"}, "message": "Too many requests. Retry in 30 seconds.",
                    "details": {"quotaErrorDetails": {"rateScope": "ACCOUNT", "rateName": "Number of operations for basic access", "retryDelay": delay}}}],
                "requestId": "req-1"}]}}])
    }

    #[test]
    fn a_quota_failure_is_rate_limited_with_its_delay() {
        let failure = failure_of(&quota_body("30s"));
        assert_eq!(failure.retry_delay, Some(Duration::from_secs(30)));
        assert_eq!(failure.request_id.as_deref(), Some("req-1"));
        match classify(&failure, 429, "1234567890", "stream `campaigns`", "") {
            Error::RateLimited {
                message,
                retry_after_ms,
            } => {
                assert_eq!(retry_after_ms, Some(30_000));
                assert!(
                    message.contains("`1234567890`") && message.contains("req-1"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn auth_and_query_failures_say_what_to_fix() {
        let body = |category: &str, value: &str, code: u16, status: &str| {
            json!({"error": {"code": code, "message": "m", "status": status, "details": [{
                "@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
                "errors": [{"errorCode": {category: value}, "message": "said"}]}]}})
        };
        let error = |b: Value, code| {
            classify(
                &failure_of(&b),
                code,
                "42",
                "stream `x`",
                "SELECT q.r FROM q",
            )
        };
        let denied = error(
            body(
                "authorizationError",
                "USER_PERMISSION_DENIED",
                403,
                "PERMISSION_DENIED",
            ),
            403,
        );
        assert!(
            matches!(&denied, Error::Auth(m) if m.contains("login_customer_id") && m.contains("`42`")),
            "{denied:?}"
        );
        let expired = error(
            body(
                "authenticationError",
                "OAUTH_TOKEN_EXPIRED",
                401,
                "UNAUTHENTICATED",
            ),
            401,
        );
        assert!(
            matches!(&expired, Error::Auth(m) if m.contains("re-authorize")),
            "{expired:?}"
        );
        let query = error(
            body("queryError", "UNRECOGNIZED_FIELD", 400, "INVALID_ARGUMENT"),
            400,
        );
        assert!(
            matches!(&query, Error::Config(m) if m.contains("SELECT q.r FROM q") && m.contains("UNRECOGNIZED_FIELD")),
            "{query:?}"
        );
        let token = error(
            body(
                "requestError",
                "DEVELOPER_TOKEN_PARAMETER_MISSING",
                400,
                "INVALID_ARGUMENT",
            ),
            400,
        );
        assert!(
            matches!(&token, Error::Config(m) if m.contains("developer_token")),
            "{token:?}"
        );
        let internal = error(
            body("internalError", "TRANSIENT_ERROR", 500, "INTERNAL"),
            500,
        );
        assert!(matches!(internal, Error::Transient(_)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("soon"), None);
    }
}
