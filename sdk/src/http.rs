//! HTTP for connectors: blocking requests over `wasi:http`, JSON helpers, retries with exponential
//! backoff and jitter on 429 and 5xx (honouring `Retry-After`), pagination helpers, and
//! credentials by placeholder (the host writes the real token into the request; the connector
//! never holds it).
//!
//! ```text
//! let client = Client::new("https://sheets.googleapis.com")?
//!     .with_credential("google", &["https://www.googleapis.com/auth/spreadsheets.readonly"])?;
//! let sheet: serde_json::Value = client.get_json("/v4/spreadsheets/abc", &[("fields", "sheets")])?;
//! ```
//!
//! Every origin a connector talks to must be declared in its spec ([`crate::Spec::http`]).

use crate::Error;
use crate::bindings::inlet::connector::host;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasip2::io::streams::StreamError;

/// How failed requests are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled each time, with up to 50 % jitter added.
    pub base_delay: Duration,
    /// The longest wait between two attempts (a longer `Retry-After` is still honoured).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(32),
        }
    }
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::data(format!(
                "the response is not the expected JSON: {e} (body starts: {})",
                preview(&self.body)
            ))
        })
    }
}

/// A client for one origin (and optional path prefix), with default headers and a retry policy.
#[derive(Debug, Clone)]
pub struct Client {
    scheme: String,
    authority: String,
    prefix: String,
    headers: Vec<(String, String)>,
    retry: RetryPolicy,
    timeout: Duration,
    sleep: fn(Duration),
}

fn std_sleep(duration: Duration) {
    std::thread::sleep(duration);
}

impl Client {
    /// A client for `base_url`: `scheme://host[:port][/prefix]`. Paths given to requests are
    /// appended to the prefix.
    pub fn new(base_url: &str) -> Result<Self, Error> {
        let (scheme, rest) = base_url
            .split_once("://")
            .ok_or_else(|| Error::config(format!("`{base_url}` is not an http(s) URL")))?;
        if scheme != "http" && scheme != "https" {
            return Err(Error::config(format!(
                "`{base_url}`: only http and https are supported"
            )));
        }
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(Error::config(format!("`{base_url}` names no host")));
        }
        Ok(Self {
            scheme: scheme.to_owned(),
            authority: authority.to_owned(),
            prefix: prefix.to_owned(),
            headers: vec![("user-agent".into(), "inlet-connector".into())],
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(60),
            sleep: std_sleep,
        })
    }

    /// Sends `authorization: Bearer <placeholder>` for the host credential `name` (see the WIT
    /// `credential` function): the host substitutes the real token for requests to hosts the
    /// credential may reach.
    pub fn with_credential(self, name: &str, scopes: &[&str]) -> Result<Self, Error> {
        let placeholder = credential(name, scopes)?;
        Ok(self.with_header("authorization", &format!("Bearer {placeholder}")))
    }

    /// Adds a header to every request.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The time allowed for the first byte of a response (and between two bytes).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `GET` `path` with `query` (percent-encoded here), as JSON.
    pub fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, Error> {
        self.send("GET", path, query, None)?.json()
    }

    /// `POST` `body` as JSON to `path`, answer as JSON.
    pub fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: &B,
    ) -> Result<T, Error> {
        let body = serde_json::to_vec(body).map_err(|e| Error::internal(e.to_string()))?;
        self.send("POST", path, query, Some(&body))?.json()
    }

    /// Sends a request once and answers whatever the server said, any status included, for APIs
    /// whose error bodies decide what to do (Meta's Graph API throttles with HTTP 400 and an error
    /// code; Google Ads' `GoogleAdsFailure` carries the retry delay): the caller reads the body,
    /// classifies and retries. Only the host's refusal (`Config`) or a transport failure
    /// (`Transient`) is an error here.
    pub fn send_raw(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, Error> {
        let what = format!(
            "{method} {}://{}{}",
            self.scheme,
            self.authority,
            self.prefix_path(path)
        );
        match self.send_once(method, &self.path_and_query(path, query), body) {
            Ok(response) => Ok(response),
            Err(TransportError::Denied) => Err(Error::config(format!(
                "{what}: the host refused the request (the origin is not among the connector's declared destinations, or a credential may not go there); the run's error names the rule"
            ))),
            Err(TransportError::Failed(message)) => {
                Err(Error::Transient(format!("{what}: {message}")))
            }
        }
    }

    /// Sends a request, retrying 429, 5xx and connection failures per the [`RetryPolicy`], and
    /// turns a final failure into the matching [`Error`]: 401/403 `Auth`, 404 `NotFound`, 429
    /// `RateLimited`, 5xx `Transient`, other 4xx `Config` (a request the settings made wrong).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, Error> {
        let path_and_query = self.path_and_query(path, query);
        let what = format!(
            "{method} {}://{}{}",
            self.scheme,
            self.authority,
            self.prefix_path(path)
        );
        let mut attempt = 1;
        loop {
            let outcome = self.send_once(method, &path_and_query, body);
            let (retry_after, failure) = match outcome {
                Ok(response) if response.status < 400 => return Ok(response),
                Ok(response) => {
                    let transient = response.status == 429 || response.status >= 500;
                    let error = classify(&what, &response);
                    if !transient {
                        return Err(error);
                    }
                    (retry_after(&response), error)
                }
                Err(TransportError::Denied) => {
                    return Err(Error::config(format!(
                        "{what}: the host refused the request (the origin is not among the connector's declared destinations, or a credential may not go there); the run's error names the rule"
                    )));
                }
                Err(TransportError::Failed(message)) => {
                    (None, Error::Transient(format!("{what}: {message}")))
                }
            };
            if attempt >= self.retry.max_attempts {
                return Err(failure);
            }
            let backoff = self.retry.base_delay * 2u32.saturating_pow(attempt - 1);
            let backoff = backoff.min(self.retry.max_delay);
            let jitter = backoff.mul_f64(jitter_fraction() * 0.5);
            let wait = retry_after.unwrap_or(backoff + jitter);
            host::log(
                host::LogLevel::Debug,
                &format!(
                    "{failure}; attempt {attempt} of {}, retrying in {wait:?}",
                    self.retry.max_attempts
                ),
            );
            (self.sleep)(wait);
            attempt += 1;
        }
    }

    fn prefix_path(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("{}{path}", self.prefix)
        } else {
            format!("{}/{path}", self.prefix)
        }
    }

    fn path_and_query(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut out = self.prefix_path(path);
        for (i, (key, value)) in query.iter().enumerate() {
            out.push(if i == 0 && !out.contains('?') {
                '?'
            } else {
                '&'
            });
            out.push_str(&percent_encode(key));
            out.push('=');
            out.push_str(&percent_encode(value));
        }
        out
    }

    fn send_once(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&[u8]>,
    ) -> Result<Response, TransportError> {
        let failed = |e: String| TransportError::Failed(e);
        let mut headers: Vec<(String, Vec<u8>)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), v.as_bytes().to_vec()))
            .collect();
        if body.is_some() {
            headers.push(("content-type".into(), b"application/json".to_vec()));
        }
        let fields =
            Fields::from_list(&headers).map_err(|e| failed(format!("invalid header: {e:?}")))?;
        let request = OutgoingRequest::new(fields);
        let method = match method {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            other => Method::Other(other.to_owned()),
        };
        let scheme = if self.scheme == "https" {
            Scheme::Https
        } else {
            Scheme::Http
        };
        request
            .set_method(&method)
            .and_then(|_| request.set_scheme(Some(&scheme)))
            .and_then(|_| request.set_authority(Some(&self.authority)))
            .and_then(|_| request.set_path_with_query(Some(path_and_query)))
            .map_err(|_| failed(format!("invalid request target `{path_and_query}`")))?;
        let outgoing = request
            .body()
            .map_err(|_| failed("request body taken twice".into()))?;
        let options = RequestOptions::new();
        let nanos = self.timeout.as_nanos() as u64;
        // Hosts may not support every timeout; those it refuses keep their defaults.
        let _ = options.set_first_byte_timeout(Some(nanos));
        let _ = options.set_between_bytes_timeout(Some(nanos));
        let future = outgoing_handler::handle(request, Some(options)).map_err(transport)?;
        if let Some(body) = body {
            let stream = outgoing
                .write()
                .map_err(|_| failed("request body stream taken twice".into()))?;
            for chunk in body.chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| failed(format!("sending the body: {}", stream_error(e))))?;
            }
            drop(stream);
        }
        OutgoingBody::finish(outgoing, None).map_err(transport)?;
        let response = loop {
            if let Some(result) = future.get() {
                break result
                    .map_err(|_| failed("response taken twice".into()))?
                    .map_err(transport)?;
            }
            future.subscribe().block();
        };
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(n, v)| {
                (
                    n.to_ascii_lowercase(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect();
        let incoming = response
            .consume()
            .map_err(|_| failed("response body taken twice".into()))?;
        let mut body = Vec::new();
        {
            let stream = incoming
                .stream()
                .map_err(|_| failed("response stream taken twice".into()))?;
            loop {
                match stream.blocking_read(64 * 1024) {
                    Ok(chunk) => body.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(e) => return Err(failed(format!("reading the body: {}", stream_error(e)))),
                }
            }
        }
        let _trailers = IncomingBody::finish(incoming);
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// The placeholder of host credential `name` for `scopes` (see the WIT `credential` function),
/// for APIs that want the token somewhere other than `authorization: Bearer`.
pub fn credential(name: &str, scopes: &[&str]) -> Result<String, Error> {
    let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
    Ok(host::credential(name, &scopes)?)
}

enum TransportError {
    /// The host's policy refused the request.
    Denied,
    Failed(String),
}

fn transport(code: ErrorCode) -> TransportError {
    match code {
        ErrorCode::HttpRequestDenied => TransportError::Denied,
        other => TransportError::Failed(format!("{other:?}")),
    }
}

fn stream_error(error: StreamError) -> String {
    match error {
        StreamError::Closed => "closed".into(),
        StreamError::LastOperationFailed(e) => e.to_debug_string(),
    }
}

/// Google-style `{"error": {"message": ...}}` bodies give their message; others a preview.
fn error_message(body: &[u8]) -> String {
    let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let error = &parsed["error"];
    match error["message"].as_str().or_else(|| error.as_str()) {
        Some(message) => match error["status"].as_str() {
            Some(status) => format!("{status}: {message}"),
            None => message.to_owned(),
        },
        None => preview(body),
    }
}

fn classify(what: &str, response: &Response) -> Error {
    let message = format!(
        "{what} answered HTTP {}: {}",
        response.status,
        error_message(&response.body)
    );
    match response.status {
        401 | 403 => Error::Auth(message),
        404 => Error::NotFound(message),
        429 => Error::RateLimited {
            message,
            retry_after_ms: retry_after(response).map(|d| d.as_millis() as u64),
        },
        500.. => Error::Transient(message),
        _ => Error::Config(message),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by the APIs connectors call).
fn retry_after(response: &Response) -> Option<Duration> {
    let seconds: f64 = response.header("retry-after")?.trim().parse().ok()?;
    (seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(3600.0)))
}

fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut preview: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        preview.push('…');
    }
    preview
}

fn jitter_fraction() -> f64 {
    (wasip2::random::insecure::get_insecure_random_u64() % 1000) as f64 / 1000.0
}

/// Percent-encodes a query component (RFC 3986 unreserved characters stay).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Follows page tokens: `fetch(token)` answers a page and the next token (`None` on the last
/// page). Stops with an error if a token repeats, rather than looping forever.
pub fn paginate<T>(
    mut fetch: impl FnMut(Option<&str>) -> Result<(T, Option<String>), Error>,
) -> impl Iterator<Item = Result<T, Error>> {
    let mut next: Option<Option<String>> = Some(None);
    let mut seen = std::collections::HashSet::new();
    std::iter::from_fn(move || {
        let token = next.take()?;
        match fetch(token.as_deref()) {
            Ok((page, following)) => {
                if let Some(t) = &following
                    && !seen.insert(t.clone())
                {
                    return Some(Err(Error::data(format!(
                        "the source returned page token `{t}` twice; stopping instead of looping"
                    ))));
                }
                next = following.filter(|t| !t.is_empty()).map(Some);
                Some(Ok(page))
            }
            Err(e) => Some(Err(e)),
        }
    })
}

/// Follows offsets: `fetch(offset)` answers a page and how many items it held; stops after a
/// page shorter than `page_size`.
pub fn paginate_offset<T>(
    page_size: usize,
    mut fetch: impl FnMut(usize) -> Result<(T, usize), Error>,
) -> impl Iterator<Item = Result<T, Error>> {
    let mut offset = Some(0);
    std::iter::from_fn(move || {
        let at = offset.take()?;
        match fetch(at) {
            Ok((page, count)) => {
                if count >= page_size && count > 0 {
                    offset = Some(at + count);
                }
                Some(Ok(page))
            }
            Err(e) => Some(Err(e)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_followed_and_a_repeated_token_stops() {
        let pages: Vec<_> = paginate(|token| {
            Ok(match token {
                None => (1, Some("a".to_owned())),
                Some("a") => (2, Some("b".to_owned())),
                _ => (3, None),
            })
        })
        .collect::<Result<_, _>>()
        .unwrap();
        assert_eq!(pages, vec![1, 2, 3]);
        let looping: Vec<_> = paginate(|_| Ok((0, Some("same".to_owned()))))
            .take(5)
            .collect();
        assert!(looping[1].is_err(), "{looping:?}");
        assert_eq!(looping.len(), 2);
    }

    #[test]
    fn offsets_stop_after_a_short_page() {
        let pages: Vec<usize> =
            paginate_offset(10, |offset| Ok((offset, if offset < 20 { 10 } else { 3 })))
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(pages, vec![0, 10, 20]);
    }

    #[test]
    fn query_components_are_encoded() {
        assert_eq!(percent_encode("Sheet 1!A1:B2"), "Sheet%201%21A1%3AB2");
        let client = Client::new("https://example.com/v4").unwrap();
        assert_eq!(
            client.path_and_query("/values:batchGet", &[("ranges", "a b"), ("x", "1")]),
            "/v4/values:batchGet?ranges=a%20b&x=1"
        );
    }

    #[test]
    fn statuses_map_to_typed_errors() {
        let response = |status, body: &str, retry: Option<&str>| Response {
            status,
            headers: retry
                .map(|r| vec![("retry-after".to_owned(), r.to_owned())])
                .unwrap_or_default(),
            body: body.as_bytes().to_vec(),
        };
        let google = r#"{"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}}"#;
        assert_eq!(
            classify("GET x", &response(404, google, None)),
            Error::NotFound(
                "GET x answered HTTP 404: NOT_FOUND: Requested entity was not found.".into()
            )
        );
        assert!(matches!(
            classify("GET x", &response(403, "{}", None)),
            Error::Auth(_)
        ));
        assert_eq!(
            classify("GET x", &response(429, "slow down", Some("7"))),
            Error::RateLimited {
                message: "GET x answered HTTP 429: slow down".into(),
                retry_after_ms: Some(7000)
            }
        );
        assert!(matches!(
            classify("GET x", &response(503, "", None)),
            Error::Transient(_)
        ));
        assert!(matches!(
            classify("GET x", &response(400, "", None)),
            Error::Config(_)
        ));
    }
}
