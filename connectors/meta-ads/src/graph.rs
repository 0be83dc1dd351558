//! Calls to the Graph API: the token as `Authorization: Bearer <placeholder>` (never in a URL),
//! a pause before the rate limit when the usage headers near it, retries of throttled and
//! temporary failures, and cursor paging (`paging.cursors.after` until `paging.next` is absent).

use crate::errors::{GraphError, Remedy};
use crate::throttle::Usage;
use inlet_sdk::Error;
use inlet_sdk::bindings::inlet::connector::host;
use inlet_sdk::bindings::inlet::connector::types::LogLevel;
use inlet_sdk::http::Client;
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

/// How the connector paces itself.
#[derive(Debug, Clone)]
pub struct Pacing {
    /// Pause before the next call once a usage header reaches this percentage.
    pub threshold_pct: f64,
    /// The longest such pause, and the first wait after a throttle error without Meta's estimate
    /// (doubled per retry), in seconds.
    pub pause_seconds: u64,
    /// Retries of a throttled or failed call before giving up.
    pub max_retries: u32,
}

/// The Graph API at one version, with the access token's placeholder.
pub struct Graph {
    client: Client,
    base: String,
    pacing: Pacing,
}

fn log(level: LogLevel, message: &str) {
    host::log(level, message);
}

fn sleep(seconds: u64) {
    if seconds > 0 {
        std::thread::sleep(Duration::from_secs(seconds));
    }
}

impl Graph {
    /// `endpoint` + `/<version>`; the host swaps the placeholder for the granted token.
    pub fn new(endpoint: &str, version: &str, pacing: Pacing) -> Result<Self, Error> {
        let base = format!("{}/{version}", endpoint.trim_end_matches('/'));
        let placeholder = inlet_sdk::http::credential("access_token", &[])?;
        let client =
            Client::new(&base)?.with_header("authorization", &format!("Bearer {placeholder}"));
        Ok(Self {
            client,
            base,
            pacing,
        })
    }

    /// `GET` a node or edge.
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, Error> {
        self.call("GET", path, query)
    }

    /// `POST` parameters (in the query string, as the Graph API takes them) to an edge.
    pub fn post(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, Error> {
        self.call("POST", path, query)
    }

    fn call(&self, method: &str, path: &str, query: &[(&str, &str)]) -> Result<Value, Error> {
        let what = format!("{method} {}/{path}", self.base);
        let mut retry = 0;
        loop {
            let response = match self.client.send_raw(method, path, query, None) {
                Ok(response) => response,
                Err(Error::Transient(message)) if retry < self.pacing.max_retries => {
                    retry += 1;
                    let wait = backoff(1, retry);
                    log(
                        LogLevel::Debug,
                        &format!("{message}; retry {retry} in {wait} s"),
                    );
                    sleep(wait);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let usage = Usage::from_headers(&response.headers);
            if response.status < 400 {
                let pause =
                    usage.pause_seconds(self.pacing.threshold_pct, self.pacing.pause_seconds);
                if pause > 0 {
                    log(
                        LogLevel::Info,
                        &format!(
                            "pausing {pause} s before Meta's rate limit: {} at {}% (threshold {}%)",
                            usage.what, usage.percent, self.pacing.threshold_pct
                        ),
                    );
                    sleep(pause);
                }
                return response.json();
            }
            let error = GraphError::parse(response.status, &response.body);
            let wait = match error.remedy() {
                Remedy::Throttled if usage.regain_minutes > 0 => usage.regain_minutes * 60,
                Remedy::Throttled => backoff(self.pacing.pause_seconds, retry + 1),
                Remedy::Temporary => backoff(1, retry + 1),
                Remedy::Stop => return Err(error.to_error(&what, None)),
            };
            if retry >= self.pacing.max_retries {
                return Err(error.to_error(&what, Some(wait * 1000)));
            }
            retry += 1;
            log(
                LogLevel::Info,
                &format!(
                    "{what}: Meta error #{}{} ({}); waiting {wait} s, retry {retry} of {}",
                    error.code,
                    error.subcode.map(|s| format!("/{s}")).unwrap_or_default(),
                    error.message,
                    self.pacing.max_retries
                ),
            );
            sleep(wait);
        }
    }

    /// Every page of an edge: `each` gets each page's `data`. Follows `paging.cursors.after`
    /// with the same parameters rather than the `paging.next` URL (which may carry a token in
    /// its query), and stops when `paging.next` is absent (a short page is not the end).
    pub fn pages(
        &self,
        path: &str,
        query: &[(&str, &str)],
        mut each: impl FnMut(Vec<Value>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut after: Option<String> = None;
        let mut seen = HashSet::new();
        loop {
            let mut params = query.to_vec();
            if let Some(cursor) = &after {
                params.push(("after", cursor.as_str()));
            }
            let page = self.get(path, &params)?;
            let data = match &page["data"] {
                Value::Array(rows) => rows.clone(),
                Value::Null => Vec::new(),
                other => {
                    return Err(Error::data(format!(
                        "{path}: `data` is not a list but `{other}`"
                    )));
                }
            };
            each(data)?;
            let paging = &page["paging"];
            let next = paging["cursors"]["after"].as_str();
            match (paging["next"].as_str(), next) {
                (Some(_), Some(cursor)) => {
                    if !seen.insert(cursor.to_owned()) {
                        return Err(Error::data(format!(
                            "{path}: Meta returned cursor `{cursor}` twice; stopping instead of looping"
                        )));
                    }
                    after = Some(cursor.to_owned());
                }
                _ => return Ok(()),
            }
        }
    }
}

/// `base * 2^(retry-1)` seconds, at most an hour.
fn backoff(base: u64, retry: u32) -> u64 {
    base.saturating_mul(1 << retry.saturating_sub(1).min(12))
        .min(3600)
}
