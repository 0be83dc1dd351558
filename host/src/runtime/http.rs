//! The host side of `wasi:http`: every outgoing request is checked against the run's declared HTTP
//! origins, credential placeholders are replaced by the granted token or secret only for hosts the
//! grant names, timeouts are clamped, responses are capped in size, and requests are counted.
//!
//! Requests go out through our own sender (`sender`), which connects from the host (not through
//! the guest's socket check) and only to addresses it resolved and checked for that request, so
//! this is the one place HTTP is policed. Nothing here can trap the guest: a refusal answers
//! `HttpRequestDenied` and is recorded as a [`Violation`], which fails the call when it ends.

use super::sandbox::{HttpOrigin, Violation};
use super::sender::{PinnedSender, SendError};
use super::tape::{self, HttpTape, Recorder, Replayer};
use crate::credentials::{Grant, GrantSource, grant};
use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// Prefix of every placeholder handed to a connector.
pub(super) const PLACEHOLDER_PREFIX: &str = "inlet-credential-";

/// What a run did over HTTP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpMetrics {
    /// Requests sent (refused ones not included).
    pub requests: u64,
    /// Requests refused by policy.
    pub refused: u64,
    /// Response body bytes received.
    pub bytes_received: u64,
    /// Responses by status code.
    pub statuses: BTreeMap<u16, u64>,
}

/// The HTTP permissions and limits of one run.
#[derive(Clone)]
pub struct HttpPolicy {
    /// The connection, for messages.
    pub connection: String,
    /// Origins the connector declared (resolved and allowed).
    pub origins: Vec<HttpOrigin>,
    /// The credentials the operator granted this connection.
    pub grants: Vec<Grant>,
    /// Largest response body accepted.
    pub max_response_bytes: u64,
    /// Longest connect, first-byte and between-bytes timeout a connector may ask for (and the
    /// default when it asks for none).
    pub max_timeout: Duration,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            connection: String::new(),
            origins: Vec::new(),
            grants: Vec::new(),
            max_response_bytes: 256 << 20,
            max_timeout: Duration::from_secs(120),
        }
    }
}

/// A placeholder handed out: its text, the grant it stands for, and the scopes asked for.
struct Placeholder {
    text: String,
    grant: Grant,
    scopes: Vec<String>,
}

/// Shared by the store's hooks, the request tasks and the run's watch.
pub(super) struct HttpGuard {
    policy: HttpPolicy,
    placeholders: Mutex<Vec<Placeholder>>,
    violations: Arc<Mutex<Vec<Violation>>>,
    metrics: Mutex<HttpMetrics>,
}

impl HttpGuard {
    pub(super) fn new(policy: HttpPolicy, violations: Arc<Mutex<Vec<Violation>>>) -> Self {
        Self {
            policy,
            placeholders: Mutex::new(Vec::new()),
            violations,
            metrics: Mutex::new(HttpMetrics::default()),
        }
    }

    pub(super) fn metrics(&self) -> HttpMetrics {
        self.metrics.lock().expect("metrics lock").clone()
    }

    /// A placeholder for credential `name` with `scopes`, or why the connection may not have it
    /// (also recorded as a violation, so the call fails with the rule even if the connector goes
    /// on without the credential).
    pub(super) fn placeholder(&self, name: &str, scopes: Vec<String>) -> Result<String, String> {
        let connection = &self.policy.connection;
        let checked = grant::find(&self.policy.grants, connection, name).and_then(|grant| {
            grant.check_scopes(connection, &scopes)?;
            Ok(grant.clone())
        });
        let grant = match checked {
            Ok(grant) => grant,
            Err(refusal) => {
                let message = refusal.to_string();
                self.refuse(Violation::Grant(refusal));
                return Err(message);
            }
        };
        // A Google identity asked without scopes gets the grant's, never a broader default.
        let scopes = if scopes.is_empty() {
            grant.scopes.clone()
        } else {
            scopes
        };
        let mut placeholders = self.placeholders.lock().expect("placeholder lock");
        // One placeholder per credential and scopes, however often it is asked for (a drain's
        // instance lives for weeks; a client made per page must not grow the list).
        if let Some(existing) = placeholders
            .iter()
            .find(|p| p.grant.name == grant.name && p.scopes == scopes)
        {
            return Ok(existing.text.clone());
        }
        let text = format!(
            "{PLACEHOLDER_PREFIX}{name}-{}",
            crate::random::random_hex(8)
        );
        placeholders.push(Placeholder {
            text: text.clone(),
            grant,
            scopes,
        });
        Ok(text)
    }

    /// Counts a response: one request, its status, and `bytes` of body received (a streamed body
    /// counts its bytes as they arrive).
    fn count(&self, status: u16, bytes: u64) {
        let mut metrics = self.metrics.lock().expect("metrics lock");
        metrics.requests += 1;
        *metrics.statuses.entry(status).or_default() += 1;
        metrics.bytes_received += bytes;
    }

    fn refuse(&self, violation: Violation) -> HttpError {
        tracing::warn!("{violation}");
        self.metrics.lock().expect("metrics lock").refused += 1;
        self.violations
            .lock()
            .expect("violation list is never poisoned")
            .push(violation);
        HttpError::HttpRequestDenied
    }

    fn declared(&self) -> String {
        if self.policy.origins.is_empty() {
            "none".to_owned()
        } else {
            self.policy
                .origins
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    /// Checks a request and fills in credentials; `Err` is what the guest gets.
    /// With `fill_credentials` false (replay), placeholders are checked but stay in place: no
    /// token is fetched and the request never leaves.
    async fn prepare(
        &self,
        mut request: http::Request<WasiBody>,
        fill_credentials: bool,
    ) -> Result<http::Request<WasiBody>, HttpError> {
        let uri = request.uri().clone();
        let url = redact_query(&uri);
        let Some(origin) = HttpOrigin::of_uri(&uri) else {
            return Err(self.refuse(Violation::Http {
                url,
                declared: self.declared(),
            }));
        };
        if !self.policy.origins.contains(&origin) {
            return Err(self.refuse(Violation::Http {
                url,
                declared: self.declared(),
            }));
        }
        if uri.to_string().contains(PLACEHOLDER_PREFIX) {
            return Err(self.refuse(Violation::Credential {
                credential: "(any)".into(),
                url,
                rule: "credentials go in headers, never in URLs".into(),
            }));
        }
        // Which placeholders this request carries, and where.
        let mut uses: Vec<(http::HeaderName, String, Grant, Vec<String>)> = Vec::new();
        let mut unreachable = None;
        {
            let placeholders = self.placeholders.lock().expect("placeholder lock");
            for (header, value) in request.headers() {
                let value = String::from_utf8_lossy(value.as_bytes());
                for p in placeholders.iter().filter(|p| value.contains(&p.text)) {
                    uses.push((
                        header.clone(),
                        p.text.clone(),
                        p.grant.clone(),
                        p.scopes.clone(),
                    ));
                    if !p.grant.reaches(&origin.scheme, &origin.host, origin.port) {
                        unreachable.get_or_insert_with(|| p.grant.clone());
                    }
                }
            }
        }
        if let Some(grant) = unreachable {
            return Err(self.refuse(Violation::Credential {
                credential: grant.name.clone(),
                url,
                rule: format!(
                    "connection `{}` may send it only to {} ([connections.{}.grants.{}] hosts)",
                    self.policy.connection,
                    grant.hosts_description(),
                    self.policy.connection,
                    grant.name
                ),
            }));
        }
        if !fill_credentials {
            return Ok(request);
        }
        for (header, placeholder, grant, scopes) in uses {
            let token = match &grant.source {
                GrantSource::Secret { value, .. } => value.expose().to_owned(),
                GrantSource::Google { tokens, .. } => {
                    tokens.token(&scopes).await.map_err(|message| {
                        tracing::error!("credential `{}`: {message}", grant.name);
                        HttpError::InternalError(Some(format!(
                            "the host could not get a token for credential `{}`: {message}",
                            grant.name
                        )))
                    })?
                }
            };
            if token.is_empty() {
                // No credentials (`[google] credentials = "none"`, for emulators): the header
                // goes away rather than carrying `Bearer ` with nothing, which emulators refuse.
                request.headers_mut().remove(&header);
                continue;
            }
            let values: Vec<http::HeaderValue> = request
                .headers()
                .get_all(&header)
                .iter()
                .map(|v| {
                    let text = String::from_utf8_lossy(v.as_bytes()).replace(&placeholder, &token);
                    let mut value = http::HeaderValue::from_str(&text).map_err(|_| {
                        HttpError::InternalError(Some("token is not a header value".into()))
                    })?;
                    value.set_sensitive(true);
                    Ok(value)
                })
                .collect::<Result<_, HttpError>>()?;
            request.headers_mut().remove(&header);
            for value in values {
                request.headers_mut().append(header.clone(), value);
            }
        }
        Ok(request)
    }
}

/// A response handed to the guest, and the future that drives the rest of its connection.
type Received = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
);

/// The hooks installed in every store.
pub(super) struct InletHttpHooks {
    pub(super) guard: Arc<HttpGuard>,
    /// Resolves and checks each request's host, and connects only to a checked address.
    pub(super) sender: Arc<PinnedSender>,
    /// Where exchanges are recorded, or answered from instead of the network.
    pub(super) tape: Option<HttpTape>,
    /// Secret values of the run, masked in what a tape holds.
    pub(super) secrets: Arc<Vec<String>>,
}

impl WasiHttpHooks for InletHttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                    ),
                    HttpError,
                >,
            > + Send,
    > {
        drop(fut);
        let guard = self.guard.clone();
        let sender = self.sender.clone();
        let tape = self.tape.clone();
        let secrets = self.secrets.clone();
        Box::new(async move {
            match tape {
                Some(HttpTape::Replay(replayer)) => {
                    let request = guard.prepare(request, false).await?;
                    return replay(&guard, &replayer, request, &secrets).await;
                }
                Some(HttpTape::Record(recorder)) => {
                    // The request as the connector wrote it: placeholders, not tokens.
                    let seen = request_head(&request);
                    let request = guard.prepare(request, true).await?;
                    let (parts, body) = request.into_parts();
                    let body = tape::collect(body).await?;
                    let request = http::Request::from_parts(parts, tape::full(body.clone()));
                    let sent = send_checked(&guard, &sender, request, options).await?;
                    return record(&guard, &recorder, seen, body, sent, &secrets).await;
                }
                None => {}
            }
            let request = guard.prepare(request, true).await?;
            let (response, io) = send_checked(&guard, &sender, request, options).await?;
            let limit = guard.policy.max_response_bytes;
            let counted = guard.clone();
            let response = response.map(move |body| {
                Capped {
                    inner: body.boxed_unsync(),
                    left: limit,
                    limit,
                    guard: counted,
                }
                .boxed_unsync()
            });
            Ok((
                response,
                Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
            ))
        })
    }
}

/// Sends a checked request with clamped timeouts through the pinned sender, counting it.
async fn send_checked(
    guard: &HttpGuard,
    sender: &PinnedSender,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<super::sender::Sent, HttpError> {
    let max = guard.policy.max_timeout;
    let clamp = |t: Option<Duration>| Some(t.map_or(max, |t| t.min(max)));
    let mut options = options.unwrap_or_default();
    options.connect_timeout = clamp(options.connect_timeout);
    options.first_byte_timeout = clamp(options.first_byte_timeout);
    options.between_bytes_timeout = clamp(options.between_bytes_timeout);
    let url = redact_query(request.uri());
    let (response, io) = match sender.send(request, options).await {
        Ok(sent) => sent,
        Err(SendError::Failed(error)) => return Err(error),
        Err(SendError::Refused(refusal)) => {
            return Err(guard.refuse(Violation::Address {
                url,
                host: refusal.host,
                address: refusal.address,
                rule: refusal.rule,
            }));
        }
    };
    guard.count(response.status().as_u16(), 0);
    Ok((response, io))
}

/// The method, URL and headers of a request, before credentials are filled in.
fn request_head(request: &http::Request<WasiBody>) -> http::request::Parts {
    let (mut head, ()) = http::Request::new(()).into_parts();
    head.method = request.method().clone();
    head.uri = request.uri().clone();
    head.headers = request.headers().clone();
    head
}

/// The whole response read (within the size cap), written to the tape, and handed on.
async fn record(
    guard: &Arc<HttpGuard>,
    recorder: &Recorder,
    seen: http::request::Parts,
    request_body: bytes::Bytes,
    (response, io): super::sender::Sent,
    secrets: &[String],
) -> Result<Received, HttpError> {
    // The connection is driven while the body is read.
    let connection = tokio::spawn(io);
    let (parts, body) = response.into_parts();
    let limit = guard.policy.max_response_bytes;
    let body = Capped {
        inner: body,
        left: limit,
        limit,
        guard: Arc::clone(guard),
    };
    let body = tape::collect(body.boxed_unsync()).await?;
    let _ = connection.await;
    let mask = tape::Mask { secrets };
    let asked = tape::Asked::new(&seen, &request_body, &mask);
    match recorder.write(asked, parts.status.as_u16(), &parts.headers, &body, &mask) {
        Ok(file) => tracing::debug!("recorded {}", file.display()),
        Err(error) => {
            return Err(HttpError::InternalError(Some(format!(
                "the host could not record the exchange: {error}"
            ))));
        }
    }
    Ok((
        http::Response::from_parts(parts, tape::full(body)),
        Box::new(async { Ok(()) }),
    ))
}

/// The recorded answer to a checked request, or a refusal naming it; nothing is sent.
async fn replay(
    guard: &HttpGuard,
    replayer: &Replayer,
    request: http::Request<WasiBody>,
    secrets: &[String],
) -> Result<Received, HttpError> {
    let (parts, body) = request.into_parts();
    let body = tape::collect(body).await?;
    let mask = tape::Mask { secrets };
    let asked = tape::Asked::new(&parts, &body, &mask);
    let answer = replayer
        .answer(&asked)
        .map_err(|why| guard.refuse(Violation::Replay(why)))?;
    guard.count(answer.status.as_u16(), answer.body.len() as u64);
    let mut response = http::Response::new(tape::full(answer.body));
    *response.status_mut() = answer.status;
    for (name, value) in answer.headers {
        response.headers_mut().append(name, value);
    }
    Ok((response, Box::new(async { Ok(()) })))
}

/// A response body that fails once it passes the size cap, and counts received bytes.
struct Capped {
    inner: WasiBody,
    left: u64,
    limit: u64,
    guard: Arc<HttpGuard>,
}

impl Body for Capped {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let size = data.len() as u64;
            self.guard
                .metrics
                .lock()
                .expect("metrics lock")
                .bytes_received += size;
            if size > self.left {
                return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(self.limit)))));
            }
            self.left -= size;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

/// The URL without its query (which may carry keys) for messages.
fn redact_query(uri: &http::Uri) -> String {
    let text = uri.to_string();
    match text.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => text,
    }
}
