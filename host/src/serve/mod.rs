//! `inlet serve`: an HTTP server for push connectors (log drains), and the runner of scheduled
//! connections. Each connection with a `[connections.<name>.drain]` table gets a path; requests
//! are authenticated (basic auth and/or `Logplex-Drain-Token`, compared in constant time),
//! size-limited, handed to the connection's drain task, and answered 2xx only once their rows are
//! durable. Each connection with a `schedule` gets a task that syncs it on time (`schedule`).
//! `/healthz`, `/readyz` and `/metrics` tell operators how it is doing (a drain whose task ended
//! fails both health checks, so the platform restarts the server; a failing scheduled source does
//! not: it shows in `/metrics`). Slow clients are cut off (header and body timeouts), connections
//! beyond `[serve] max_connections` get 503 at once. SIGTERM or Ctrl-C stop it after committing
//! what drains wait for and interrupting running syncs (their commits are kept).

mod drain;
mod schedule;

pub use drain::{Drain, DrainMetrics, DrainSpec, Reply};
pub use schedule::{RunError, ScheduleContext, ScheduleMetrics, Scheduled, run_once};

use crate::config::LoadedConfig;
use crate::credentials::GoogleAuth;
use crate::lake::Lake;
use crate::logging::{Severity, say};
use crate::runtime::{PushRequest, Runtime};
use anyhow::{Context, bail};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One drain's route.
struct Route {
    name: String,
    path: String,
    basic_auth: Option<String>,
    drain_token: Option<String>,
    max_body: u64,
    drain: Drain,
}

struct Router {
    routes: Vec<Route>,
    scheduled: Vec<Scheduled>,
    ready: AtomicBool,
    body_timeout: Duration,
}

/// `[serve]` with its defaults filled in.
struct Limits {
    max_connections: usize,
    header_timeout: Duration,
    body_timeout: Duration,
}

impl Limits {
    fn new(config: &crate::config::ServeConfig) -> Self {
        Self {
            max_connections: config.max_connections.unwrap_or(256).max(1),
            header_timeout: Duration::from_secs(config.header_timeout_seconds.unwrap_or(10).max(1)),
            body_timeout: Duration::from_secs(config.body_timeout_seconds.unwrap_or(30).max(1)),
        }
    }
}

/// The answer to a connection over the limit, written without parsing its request.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n";

/// Equal without telling, by how long it took, where they differ or how long the secret is: both
/// sides are hashed to SHA-256 (fixed length) and the digests compared in constant time.
fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    use sha2::Digest;
    use subtle::ConstantTimeEq;
    let given = sha2::Sha256::digest(given);
    let expected = sha2::Sha256::digest(expected);
    given.as_slice().ct_eq(expected.as_slice()).into()
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.into())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

impl Route {
    /// Both checks run whatever the first one's outcome, so the time taken does not tell which
    /// credential was wrong.
    fn authorized(&self, request: &Request<Incoming>) -> bool {
        let header = |name: &str| request.headers().get(name).map(|v| v.as_bytes());
        let basic_auth_ok = self.basic_auth.as_ref().is_none_or(|expected| {
            let given = header("authorization")
                .and_then(|v| v.strip_prefix(b"Basic "))
                .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok());
            given.is_some_and(|g| constant_time_eq(&g, expected.as_bytes()))
        });
        let drain_token_ok = self.drain_token.as_ref().is_none_or(|expected| {
            header("logplex-drain-token").is_some_and(|g| constant_time_eq(g, expected.as_bytes()))
        });
        basic_auth_ok & drain_token_ok
    }
}

impl Router {
    async fn route(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_owned();
        match (request.method().as_str(), path.as_str()) {
            ("GET", "/healthz") => {
                return match self.stopped_drains() {
                    Some(stopped) => text(StatusCode::SERVICE_UNAVAILABLE, stopped),
                    None => text(StatusCode::OK, "ok\n"),
                };
            }
            ("GET", "/readyz") => {
                return if let Some(stopped) = self.stopped_drains() {
                    text(StatusCode::SERVICE_UNAVAILABLE, stopped)
                } else if self.ready.load(Ordering::Relaxed) {
                    text(StatusCode::OK, "ready\n")
                } else {
                    text(StatusCode::SERVICE_UNAVAILABLE, "starting or stopping\n")
                };
            }
            ("GET", "/metrics") => return text(StatusCode::OK, self.metrics()),
            _ => {}
        }
        let Some(route) = self.routes.iter().find(|r| r.path == path) else {
            return text(StatusCode::NOT_FOUND, format!("no drain at {path}\n"));
        };
        if request.method() != hyper::Method::POST {
            return text(StatusCode::METHOD_NOT_ALLOWED, "drains take POST\n");
        }
        if !route.authorized(&request) {
            let mut response = text(StatusCode::UNAUTHORIZED, "wrong or missing credentials\n");
            response.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static("Basic realm=\"inlet\""),
            );
            return response;
        }
        let too_large = || {
            let mut response = text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {} bytes\n", route.max_body),
            );
            // The rest of the body is not read, so the connection cannot carry another request:
            // say so, or a client that reuses it gets its next request cut off.
            response.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
            response
        };
        let declared = request
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|l| l > route.max_body) {
            return too_large();
        }
        let (parts, body) = request.into_parts();
        let collect = Limited::new(body, route.max_body as usize).collect();
        let body = match tokio::time::timeout(self.body_timeout, collect).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
                return too_large();
            }
            Ok(Err(error)) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("reading the body: {error}\n"),
                );
            }
            Err(_) => {
                return text(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the body did not arrive within {} s\n",
                        self.body_timeout.as_secs()
                    ),
                );
            }
        };
        let headers = parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let push = PushRequest {
            method: parts.method.as_str().to_owned(),
            path: parts
                .uri
                .path_and_query()
                .map_or_else(|| path.clone(), |p| p.as_str().to_owned()),
            headers,
            body: body.to_vec(),
        };
        match route.drain.submit(push, body.len() as u64).await {
            Reply::Done(answer) => {
                let mut response = Response::new(Full::new(Bytes::from(answer.body)));
                *response.status_mut() =
                    StatusCode::from_u16(answer.status).unwrap_or(StatusCode::NO_CONTENT);
                for (name, value) in answer.headers {
                    if let (Ok(name), Ok(value)) = (
                        hyper::header::HeaderName::from_bytes(name.as_bytes()),
                        hyper::header::HeaderValue::from_str(&value),
                    ) {
                        response.headers_mut().append(name, value);
                    }
                }
                response
            }
            Reply::Refused { status, reason } => text(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                format!("{reason}\n"),
            ),
            Reply::Unavailable(reason) => {
                let mut response = text(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n"));
                response.headers_mut().insert(
                    hyper::header::RETRY_AFTER,
                    hyper::header::HeaderValue::from_static("1"),
                );
                response
            }
        }
    }

    /// Which drains' tasks have ended, as a message; `None` while all run.
    fn stopped_drains(&self) -> Option<String> {
        let stopped: Vec<&str> = self
            .routes
            .iter()
            .filter(|r| r.drain.stopped())
            .map(|r| r.name.as_str())
            .collect();
        (!stopped.is_empty()).then(|| {
            format!(
                "drain stopped: {} (see the server's log; restart it)\n",
                stopped.join(", ")
            )
        })
    }

    /// Counters in the Prometheus text format.
    fn metrics(&self) -> String {
        let mut out = String::new();
        for route in &self.routes {
            let m = &route.drain.metrics;
            let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
            let seconds = |c| format!("{:.6}", load(c) as f64 / 1e6);
            let rows = m.rows.lock().unwrap_or_else(|e| e.into_inner()).clone();
            // (metric, extra labels, value), in the order they are printed.
            let mut lines = vec![
                (
                    "inlet_drain_requests_total",
                    String::new(),
                    load(&m.requests).to_string(),
                ),
                (
                    "inlet_drain_request_bytes_total",
                    String::new(),
                    load(&m.bytes).to_string(),
                ),
            ];
            for (outcome, counter) in [
                ("acknowledged", &m.acknowledged),
                ("refused", &m.refused),
                ("unavailable", &m.unavailable),
            ] {
                let labels = format!(",outcome=\"{outcome}\"");
                lines.push((
                    "inlet_drain_responses_total",
                    labels,
                    load(counter).to_string(),
                ));
            }
            lines.extend([
                (
                    "inlet_drain_commits_total",
                    String::new(),
                    load(&m.commits).to_string(),
                ),
                (
                    "inlet_drain_commit_seconds_total",
                    String::new(),
                    seconds(&m.commit_micros_total),
                ),
                (
                    "inlet_drain_commit_seconds_max",
                    String::new(),
                    seconds(&m.commit_micros_max),
                ),
                (
                    "inlet_drain_ack_seconds_max",
                    String::new(),
                    seconds(&m.ack_micros_max),
                ),
            ]);
            for (stream, count) in rows {
                let labels = format!(",stream=\"{stream}\"");
                lines.push(("inlet_drain_rows_total", labels, count.to_string()));
            }
            for (metric, labels, value) in lines {
                let _ = writeln!(out, "{metric}{{drain=\"{}\"{labels}}} {value}", route.name);
            }
        }
        for scheduled in &self.scheduled {
            scheduled.write_metrics(&mut out);
        }
        out
    }
}

/// Where `inlet serve` listens: `--listen` when given, else `0.0.0.0:$PORT` when `PORT` is set
/// (Cloud Run sets it and sends traffic from outside the container), else `127.0.0.1:8080`.
pub fn listen_address(listen: Option<&str>, port: Option<&str>) -> anyhow::Result<String> {
    if let Some(listen) = listen {
        return Ok(listen.to_owned());
    }
    match port {
        Some(port) => {
            let number: u16 = port.trim().parse().map_err(|_| {
                anyhow::anyhow!(
                    "the environment variable `PORT` is `{port}`, not a TCP port number (0-65535); fix it or pass `--listen host:port`"
                )
            })?;
            Ok(format!("0.0.0.0:{number}"))
        }
        None => Ok("127.0.0.1:8080".to_owned()),
    }
}

/// Runs the server for the drains of `loaded` and its scheduled connections on `listen` until
/// SIGTERM or Ctrl-C. `google` holds the credentials the lake was opened with, if any.
pub async fn serve(
    runtime: Arc<Runtime>,
    loaded: &LoadedConfig,
    lake: Lake,
    google: Option<Arc<GoogleAuth>>,
    listen: &str,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !lake.is_in_memory(),
        "the lake `{}` lives in this process's memory, so rows acknowledged to senders would be lost when `inlet serve` stops; set `[lake] url` to a folder or `gs://bucket/prefix`",
        lake.url()
    );
    let mut routes = Vec::new();
    let mut tasks = Vec::new();
    for (name, connection) in &loaded.config.connections {
        let Some(config) = &connection.drain else {
            continue;
        };
        let policy = {
            let mut policy = connection
                .sandbox
                .policy(&loaded.config.runtime.sandbox)
                .with_grants(loaded.grants(name)?);
            // Per request, not per process lifetime.
            policy.wall_time = policy.wall_time.min(Duration::from_secs(30));
            policy
        };
        let spec =
            DrainSpec::from_config(name, connection, loaded.connectors[name].clone(), policy);
        let (drain, task) = Drain::start(runtime.clone(), lake.clone(), spec)
            .await
            .with_context(|| format!("starting the drain of connection `{name}`"))?;
        tasks.push(task);
        routes.push(Route {
            name: name.clone(),
            path: config
                .path
                .clone()
                .unwrap_or_else(|| format!("/drains/{name}")),
            basic_auth: resolved(&config.basic_auth, name, "basic_auth")?,
            drain_token: resolved(&config.drain_token, name, "drain_token")?,
            max_body: config.max_body_bytes.unwrap_or(1 << 20),
            drain,
        });
    }
    if routes.is_empty() && loaded.schedules.is_empty() {
        bail!(
            "`{}` has nothing to serve: `inlet serve` needs a drain (a [connections.<name>.drain] table on a push connection, connector = \"heroku-logplex\") or a schedule (`schedule = \"*/15 * * * *\"` or `\"every 30m\"` on a connection)",
            loaded.file.display()
        );
    }
    // Bound before any run starts, so a port in use stops the server at once.
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let context = ScheduleContext {
        runtime: runtime.clone(),
        lake: lake.clone(),
        loaded: Arc::new(loaded.clone()),
        google,
        reporter: Arc::new(crate::progress::Reporter::new()),
    };
    let mut scheduled = Vec::new();
    let mut schedule_tasks = Vec::new();
    for (name, schedule) in &loaded.schedules {
        let (connection, task) =
            Scheduled::start(context.clone(), name, schedule.clone(), stopping.clone());
        scheduled.push(connection);
        schedule_tasks.push(task);
    }
    let address = listener.local_addr()?;
    let limits = Limits::new(&loaded.config.serve);
    let router = Arc::new(Router {
        routes,
        scheduled,
        ready: AtomicBool::new(true),
        body_timeout: limits.body_timeout,
    });
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let paths: Vec<String> = router.routes.iter().map(|r| r.path.clone()).collect();
    let schedules: Vec<String> = router
        .scheduled
        .iter()
        .map(|s| format!("{} `{}`", s.name, s.schedule))
        .collect();
    let mut shutdown = Box::pin(shutdown_signal());
    say(
        Severity::Info,
        &format!(
            "inlet serve: listening on http://{address} (drains: {}; schedules: {}; timezone {})",
            if paths.is_empty() {
                "none".to_owned()
            } else {
                paths.join(", ")
            },
            if schedules.is_empty() {
                "none".to_owned()
            } else {
                schedules.join(", ")
            },
            loaded.config.runtime.timezone.as_deref().unwrap_or("UTC"),
        ),
        &[],
    );
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (mut stream, _) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!("accept failed: {error}");
                        continue;
                    }
                };
                let Ok(permit) = connections.clone().try_acquire_owned() else {
                    tracing::warn!("{} connections are open: refusing one more", limits.max_connections);
                    tokio::spawn(async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        // Answer, then read what the client sends until it closes (at most 1 s):
                        // closing with its request unread would reset the connection and lose
                        // the answer.
                        let answer = async {
                            stream.write_all(TOO_MANY_CONNECTIONS).await?;
                            stream.shutdown().await?;
                            let mut sink = [0u8; 4096];
                            while stream.read(&mut sink).await? > 0 {}
                            Ok::<_, std::io::Error>(())
                        };
                        let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
                    });
                    continue;
                };
                let router = router.clone();
                let header_timeout = limits.header_timeout;
                tokio::spawn(async move {
                    let _permit = permit;
                    let service = hyper::service::service_fn(move |request| {
                        let router = router.clone();
                        async move { Ok::<_, std::convert::Infallible>(router.route(request).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    if let Err(error) = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(header_timeout)
                        .serve_connection(io, service)
                        .await
                    {
                        tracing::debug!("connection ended: {error}");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    say(
        Severity::Info,
        "inlet serve: stopping; committing what waits, interrupting running syncs",
        &[],
    );
    router.ready.store(false, Ordering::Relaxed);
    drop(listener);
    let _ = stop.send(true);
    for task in schedule_tasks {
        let _ = task.await;
    }
    for route in &router.routes {
        route.drain.stop();
    }
    for task in tasks {
        let _ = task.await;
    }
    // Let connections write the last answers.
    tokio::time::sleep(Duration::from_millis(200)).await;
    say(Severity::Info, "inlet serve: stopped", &[]);
    Ok(())
}

/// A drain credential's value; a reference left unread would let anyone in, so it stops the
/// server instead.
fn resolved(
    value: &Option<crate::secrets::ConfigString>,
    connection: &str,
    field: &str,
) -> anyhow::Result<Option<String>> {
    value
        .as_ref()
        .map(|v| {
            v.text().map(str::to_owned).with_context(|| {
                format!("connections.{connection}.drain.{field}: the secret reference was not read (a bug in inlet)")
            })
        })
        .transpose()
}

/// Resolves when `signal` fires; never when it could not be registered.
#[cfg(unix)]
async fn received(signal: Option<&mut tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// Registers for SIGTERM and SIGINT (Ctrl-C) now, and resolves when one arrives. Registering
/// before the server says it listens matters: a platform (or a test) may stop it right after, and
/// a signal that comes before the handler would kill the process without the orderly stop.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).ok();
        let mut interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            tokio::select! {
                _ = received(term.as_mut()) => {},
                _ = received(interrupt.as_mut()) => {},
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{constant_time_eq, listen_address};

    #[test]
    fn listen_is_the_flag_else_all_interfaces_on_port_else_loopback() {
        let at = |listen, port| listen_address(listen, port).map_err(|e| e.to_string());
        assert_eq!(at(None, None).unwrap(), "127.0.0.1:8080");
        assert_eq!(at(None, Some("9000")).unwrap(), "0.0.0.0:9000");
        assert_eq!(
            at(Some("127.0.0.1:1"), Some("9000")).unwrap(),
            "127.0.0.1:1"
        );
        let error = at(None, Some("70000")).unwrap_err();
        assert!(error.contains("`PORT` is `70000`"), "{error}");
    }

    #[test]
    fn secrets_match_only_when_equal_whatever_their_lengths() {
        assert!(constant_time_eq(b"user:secret", b"user:secret"));
        assert!(!constant_time_eq(b"user:secreT", b"user:secret"));
        assert!(!constant_time_eq(b"user:secret-and-more", b"user:secret"));
        assert!(!constant_time_eq(b"user", b"user:secret"));
        assert!(!constant_time_eq(b"", b"user:secret"));
    }
}
