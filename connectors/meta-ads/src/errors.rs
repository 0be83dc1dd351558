//! Graph API error bodies (`{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`)
//! turned into the SDK's typed errors, each saying what to do. Codes per Meta's error-handling and
//! rate-limiting pages (ADS-APIS.md, "Rate limits and errors").

use inlet_sdk::Error;
use serde_json::Value;

/// An error answer of the Graph API.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphError {
    /// The HTTP status.
    pub status: u16,
    /// `error.code`.
    pub code: i64,
    /// `error.error_subcode`.
    pub subcode: Option<i64>,
    /// `error.message`.
    pub message: String,
    /// `error.type` (`OAuthException`...).
    pub kind: String,
    /// `error.fbtrace_id`, for Meta support.
    pub trace: String,
    /// `error.is_transient`.
    pub transient: bool,
}

/// What the connector does about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// A rate limit: wait (Meta's estimate, else back off) and try again.
    Throttled,
    /// A temporary failure: back off and try again.
    Temporary,
    /// Retrying cannot help.
    Stop,
}

impl GraphError {
    /// Reads an error body; a body without `error` keeps the status and a preview.
    pub fn parse(status: u16, body: &[u8]) -> Self {
        let json: Value = serde_json::from_slice(body).unwrap_or_default();
        let error = &json["error"];
        let text = |key: &str| error[key].as_str().unwrap_or("").to_owned();
        GraphError {
            status,
            code: error["code"].as_i64().unwrap_or(0),
            subcode: error["error_subcode"].as_i64(),
            message: match error["message"].as_str() {
                Some(m) => m.to_owned(),
                None => String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
            },
            kind: text("type"),
            trace: text("fbtrace_id"),
            transient: error["is_transient"].as_bool().unwrap_or(false),
        }
    }

    /// Whether to retry.
    pub fn remedy(&self) -> Remedy {
        match (self.code, self.subcode) {
            // App, user, Pages and ad-account call limits; the business use case limits.
            (4 | 17 | 32 | 613, _) | (80_000..=80_014, _) => Remedy::Throttled,
            // Unknown/service errors, report failures, a synchronous insights timeout.
            (1 | 2 | 341 | -2, _) | (100, Some(1_504_018)) => Remedy::Temporary,
            _ if self.transient || self.status >= 500 => Remedy::Temporary,
            _ => Remedy::Stop,
        }
    }

    /// The typed error for the operator: `what` names the call.
    pub fn to_error(&self, what: &str, retry_after_ms: Option<u64>) -> Error {
        let said = format!(
            "{what} answered HTTP {}: ({}#{}{}) {} [fbtrace_id {}]",
            self.status,
            if self.kind.is_empty() { "" } else { &self.kind },
            self.code,
            self.subcode.map(|s| format!("/{s}")).unwrap_or_default(),
            self.message,
            self.trace
        );
        match (self.code, self.subcode) {
            (190, sub) => {
                let why = match sub {
                    Some(463) => "the access token has expired",
                    Some(460) => {
                        "the access token was invalidated when its user changed the password"
                    }
                    Some(467) => "the access token is invalid",
                    _ => "Meta does not accept the access token",
                };
                Error::Auth(format!(
                    "{why}: generate a new one (a system user's token from Business Settings > System users does not expire; a user token lasts about 60 days), with the `ads_read` permission, and put it where the grant reads it (`[connections.<name>.grants.access_token] secret = {{ env = \"META_ACCESS_TOKEN\" }}`); {said}"
                ))
            }
            (10 | 200..=299, _) => Error::Auth(format!(
                "the token may not read this: give its user or system user access to the ad account (Business Settings > Accounts > Ad accounts) and the `ads_read` permission; {said}"
            )),
            (2635, _) => Error::config(format!(
                "Meta no longer serves this Marketing API version: {}; {said}",
                "install a newer meta-ads connector (a newer Inlet, or `connector = \"path/to/meta-ads.wasm\"`)"
            )),
            (100, Some(1_487_534)) => Error::config(format!(
                "Meta says the report asks for too much data: lower `report_days` or drop breakdowns; {said}"
            )),
            (100, Some(33)) | (803, _) => Error::NotFound(format!(
                "check `account_ids` (digits, with or without `act_`) and that the token's user can see the account; {said}"
            )),
            _ => match self.remedy() {
                Remedy::Throttled => Error::RateLimited {
                    message: format!(
                        "Meta's rate limit held after every retry: sync less often, fewer accounts at once, or raise the app's Marketing API access tier; {said}"
                    ),
                    retry_after_ms,
                },
                Remedy::Temporary => Error::Transient(format!(
                    "Meta kept failing; the next sync tries again; {said}"
                )),
                Remedy::Stop => match self.status {
                    401 | 403 => Error::Auth(said),
                    404 => Error::NotFound(said),
                    _ => Error::config(said),
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(status: u16, code: i64, subcode: Option<i64>) -> GraphError {
        let body = serde_json::json!({"error": {"message": "m", "type": "OAuthException", "code": code, "error_subcode": subcode, "fbtrace_id": "T1"}});
        GraphError::parse(status, body.to_string().as_bytes())
    }

    #[test]
    fn codes_map_to_remedies_and_typed_errors() {
        assert_eq!(error(400, 17, Some(2_446_079)).remedy(), Remedy::Throttled);
        assert_eq!(error(400, 80_000, None).remedy(), Remedy::Throttled);
        assert_eq!(error(400, 4, Some(1_504_022)).remedy(), Remedy::Throttled);
        assert_eq!(error(500, 2, None).remedy(), Remedy::Temporary);
        assert_eq!(error(400, 190, Some(463)).remedy(), Remedy::Stop);
        let expired = error(400, 190, Some(463)).to_error("GET /me", None);
        let Error::Auth(message) = expired else {
            panic!("{expired:?}")
        };
        assert!(
            message.starts_with("the access token has expired: generate a new one"),
            "{message}"
        );
        assert!(
            message.contains("(OAuthException#190/463) m [fbtrace_id T1]"),
            "{message}"
        );
        assert!(
            matches!(error(400, 2635, None).to_error("x", None), Error::Config(m) if m.contains("newer meta-ads"))
        );
        assert!(matches!(
            error(400, 80_004, None).to_error("x", Some(5)),
            Error::RateLimited {
                retry_after_ms: Some(5),
                ..
            }
        ));
        assert!(
            matches!(error(403, 200, None).to_error("x", None), Error::Auth(m) if m.contains("ads_read"))
        );
        assert!(matches!(
            error(400, 100, Some(33)).to_error("x", None),
            Error::NotFound(_)
        ));
    }
}
