//! The HTTP sender behind `wasi:http`, so a request reaches only an address that was checked.
//!
//! wasmtime-wasi-http's default sender connects to `host:port` and resolves the name itself, after
//! (and apart from) any check: a name that answers a public address when the run starts and
//! 169.254.169.254 a moment later (DNS rebinding) would reach the metadata server. Here, for every
//! request, the host name is resolved once, *every* address it resolves to is checked against the
//! address policy (one refused address refuses the request), and the connection goes to one of
//! those checked `SocketAddr`s; nothing resolves the name again. TLS (rustls, webpki roots)
//! verifies the certificate for the request's host name; hyper speaks HTTP/1.1 over the stream.
//! The connect, first-byte and between-bytes timeouts behave like the default sender's.
//!
//! Redirects are never followed here: a 3xx response goes back to the connector as it came. A
//! connector that follows it sends a new request, which comes through
//! `InletHttpHooks::send_request` again: origin check, credential check, and this sender's fresh
//! lookup and address check.

use super::address_class::classify;
use super::resolve::{self, Resolve};
use super::sandbox::HttpOrigin;
use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use std::future::{Future, poll_fn};
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// wasmtime-wasi-http's default for a timeout the request does not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Sends the requests of one run, resolving and checking each request's host anew.
pub(super) struct PinnedSender {
    resolver: Arc<dyn Resolve>,
    allow_private_network: bool,
}

/// A request the address policy refused; nothing was sent.
#[derive(Debug)]
pub(super) struct Refusal {
    /// The request's host.
    pub(super) host: String,
    /// The address that broke the rule.
    pub(super) address: IpAddr,
    /// The rule, e.g. `link-local 169.254.0.0/16 is never allowed`.
    pub(super) rule: String,
}

/// Why a request got no response.
#[derive(Debug)]
pub(super) enum SendError {
    /// The address policy refused it.
    Refused(Refusal),
    /// Resolving, connecting or speaking HTTP failed.
    Failed(HttpError),
}

impl From<HttpError> for SendError {
    fn from(error: HttpError) -> Self {
        Self::Failed(error)
    }
}

/// A response, and the future that drives the rest of its connection (the body).
pub(super) type Sent = (
    http::Response<WasiBody>,
    Pin<Box<dyn Future<Output = Result<(), HttpError>> + Send>>,
);

/// What hyper reads and writes: a TCP stream, or TLS over one.
trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

impl PinnedSender {
    /// A sender resolving with `resolver` and applying the address policy.
    pub(super) fn new(resolver: Arc<dyn Resolve>, allow_private_network: bool) -> Self {
        Self {
            resolver,
            allow_private_network,
        }
    }

    /// Sends `request` (whose origin the caller has already checked) to a checked address.
    pub(super) async fn send(
        &self,
        mut request: http::Request<WasiBody>,
        options: RequestOptions,
    ) -> Result<Sent, SendError> {
        let origin = HttpOrigin::of_uri(request.uri()).ok_or(HttpError::HttpRequestUriInvalid)?;
        let connect_timeout = options.connect_timeout.unwrap_or(DEFAULT_TIMEOUT);
        let first_byte_timeout = options.first_byte_timeout.unwrap_or(DEFAULT_TIMEOUT);
        let between_bytes_timeout = options.between_bytes_timeout.unwrap_or(DEFAULT_TIMEOUT);

        let stream = tokio::time::timeout(connect_timeout, self.connect(&origin))
            .await
            .map_err(|_| HttpError::ConnectionTimeout)??;
        let (mut sender, connection) = tokio::time::timeout(
            connect_timeout,
            hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
        )
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(HttpError::from)?;

        // The request line carries the path only; the authority is in the `host` header, which
        // wasmtime-wasi-http set from the URL.
        *request.uri_mut() = http::Uri::builder()
            .path_and_query(request.uri().path_and_query().map_or("/", |p| p.as_str()))
            .build()
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;

        let response = async move {
            let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
                .await
                .map_err(|_| HttpError::ConnectionReadTimeout)??;
            Ok::<_, HttpError>(
                response
                    .map(|incoming| TimedBody::new(incoming, between_bytes_timeout).boxed_unsync()),
            )
        };
        Ok(drive_until_response(response, connection).await?)
    }

    /// Resolves the origin's host once, checks every address, connects to a checked one (in the
    /// resolver's order), and adds TLS for `https`.
    async fn connect(&self, origin: &HttpOrigin) -> Result<Box<dyn Stream>, SendError> {
        let addresses = resolve::lookup(self.resolver.as_ref(), &origin.host, origin.port)
            .await
            .map_err(|error| {
                tracing::debug!("resolving `{}` failed: {error}", origin.host);
                HttpError::DnsError {
                    rcode: None,
                    info_code: None,
                }
            })?;
        self.check(&origin.host, &addresses)?;
        let tcp = connect_first(&addresses).await?;
        if origin.scheme != "https" {
            return Ok(Box::new(tcp));
        }
        let name = server_name(&origin.host).map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let tls = tokio_rustls::TlsConnector::from(tls_config())
            .connect(name, tcp)
            .await
            .map_err(HttpError::Tls)?;
        Ok(Box::new(tls))
    }

    /// Refuses the request when any address is one the policy refuses.
    fn check(&self, host: &str, addresses: &[SocketAddr]) -> Result<(), Refusal> {
        for address in addresses {
            if let Some(rule) = classify(address.ip()).refusal(self.allow_private_network) {
                return Err(Refusal {
                    host: host.to_owned(),
                    address: address.ip(),
                    rule,
                });
            }
        }
        Ok(())
    }
}

impl From<Refusal> for SendError {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

/// A TCP connection to the first of `addresses` that accepts one.
async fn connect_first(addresses: &[SocketAddr]) -> Result<TcpStream, HttpError> {
    let mut last_error = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last_error = Some(error),
        }
    }
    Err(match last_error {
        Some(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
            HttpError::ConnectionRefused
        }
        Some(error) => HttpError::Connect(error),
        None => HttpError::DestinationNotFound,
    })
}

/// The name the server's certificate must carry: the request's host (a name, or an address).
fn server_name(
    host: &str,
) -> Result<rustls::pki_types::ServerName<'static>, rustls::pki_types::InvalidDnsNameError> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(rustls::pki_types::ServerName::IpAddress(ip.into())),
        Err(_) => rustls::pki_types::ServerName::try_from(host.to_owned()),
    }
}

/// One TLS client configuration for the process: webpki roots, aws-lc-rs (named explicitly: two
/// crypto providers are linked in, and rustls will not choose between them), HTTP/1.1.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("aws-lc-rs supports rustls' default protocol versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(config)
        })
        .clone()
}

/// Waits for the response while driving the connection (hyper needs both polled), and hands back
/// what is left of the connection, for the caller to drive while the body is read.
async fn drive_until_response<R, C>(response: R, connection: C) -> Result<Sent, HttpError>
where
    R: Future<Output = Result<http::Response<WasiBody>, HttpError>>,
    C: Future<Output = Result<(), hyper::Error>> + Send + 'static,
{
    let mut response = pin!(response);
    let mut connection = Some(Box::pin(connection));
    let response = poll_fn(|cx| {
        if let Poll::Ready(response) = response.as_mut().poll(cx) {
            return Poll::Ready(response);
        }
        let Some(running) = connection.as_mut() else {
            return Poll::Pending;
        };
        let ended = ready!(running.as_mut().poll(cx));
        connection = None;
        match ended {
            // The connection finished first; the response may be ready now.
            Ok(()) => response.as_mut().poll(cx),
            Err(error) => Poll::Ready(Err(HttpError::from(error))),
        }
    })
    .await?;
    let rest = Box::pin(async move {
        let Some(connection) = connection else {
            return Ok(());
        };
        connection.await.map_err(|error| match error.is_timeout() {
            true => HttpError::HttpResponseTimeout,
            false => HttpError::from(error),
        })
    });
    Ok((response, rest))
}

/// A response body that fails when no byte arrives for `between_bytes` (wasmtime-wasi-http's
/// `between-bytes-timeout`).
struct TimedBody {
    incoming: hyper::body::Incoming,
    idle: tokio::time::Interval,
}

impl TimedBody {
    fn new(incoming: hyper::body::Incoming, between_bytes: Duration) -> Self {
        // tokio panics on a zero interval; a nanosecond is as good as zero.
        let mut idle = tokio::time::interval(between_bytes.max(Duration::from_nanos(1)));
        idle.reset();
        Self { incoming, idle }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(error))) if error.is_timeout() => {
                Poll::Ready(Some(Err(HttpError::HttpResponseTimeout)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(HttpError::from(error)))),
            Poll::Ready(Some(Ok(frame))) => {
                self.idle.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.idle.poll_tick(cx));
                Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use std::io::{Read, Write};
    use std::sync::Mutex;

    /// Answers each lookup with the next list of addresses (the last one repeats).
    #[derive(Debug)]
    struct Scripted(Mutex<Vec<Vec<IpAddr>>>);

    impl Scripted {
        fn new(answers: &[&[&str]]) -> Arc<Self> {
            let answers = answers
                .iter()
                .map(|ips| ips.iter().map(|ip| ip.parse().unwrap()).collect())
                .collect();
            Arc::new(Self(Mutex::new(answers)))
        }
    }

    impl Resolve for Scripted {
        fn resolve<'a>(
            &'a self,
            _: &'a str,
            port: u16,
        ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
            let mut answers = self.0.lock().unwrap();
            let next = match answers.len() {
                1 => answers[0].clone(),
                _ => answers.remove(0),
            };
            let next = next
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect();
            Box::pin(async move { Ok(next) })
        }
    }

    /// A one-thread HTTP server that answers every request with `response` and counts them.
    fn server(response: &'static str) -> (u16, Arc<Mutex<usize>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let count = Arc::new(Mutex::new(0));
        let seen = count.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                *seen.lock().unwrap() += 1;
                let _ = stream.write_all(response.as_bytes());
            }
        });
        (port, count)
    }

    fn get(url: &str) -> http::Request<WasiBody> {
        let body = http_body_util::Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync();
        http::Request::get(url)
            .header("host", "service.test")
            .body(body)
            .unwrap()
    }

    const REDIRECT: &str = "HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/latest/meta-data/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

    #[tokio::test]
    async fn connects_to_the_checked_address_and_returns_redirects_unfollowed() {
        let (port, requests) = server(REDIRECT);
        let sender = PinnedSender::new(Scripted::new(&[&["127.0.0.1"]]), true);
        let url = format!("http://service.test:{port}/probe");
        let (response, connection) = sender
            .send(get(&url), RequestOptions::default())
            .await
            .unwrap();
        tokio::spawn(connection);
        assert_eq!(response.status(), 302, "handed back, not followed");
        assert_eq!(*requests.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn one_refused_address_refuses_the_request_before_anything_is_sent() {
        let (port, requests) = server(REDIRECT);
        let sender = PinnedSender::new(Scripted::new(&[&["127.0.0.1", "169.254.169.254"]]), true);
        let url = format!("http://service.test:{port}/probe");
        match sender.send(get(&url), RequestOptions::default()).await {
            Err(SendError::Refused(refusal)) => {
                assert_eq!(refusal.host, "service.test");
                assert_eq!(refusal.address.to_string(), "169.254.169.254");
                assert!(refusal.rule.contains("never allowed"), "{}", refusal.rule);
            }
            Err(other) => panic!("expected a refusal, got {other:?}"),
            Ok(_) => panic!("expected a refusal, got a response"),
        }
        let private = PinnedSender::new(Scripted::new(&[&["127.0.0.1"]]), false);
        assert!(matches!(
            private.send(get(&url), RequestOptions::default()).await,
            Err(SendError::Refused(_))
        ));
        assert_eq!(*requests.lock().unwrap(), 0, "nothing reached the server");
    }

    #[tokio::test]
    async fn https_speaks_tls_to_the_checked_address() {
        // Not a TLS server: the handshake fails as a TLS error (and the client configuration,
        // with its explicit crypto provider, builds).
        let (port, _) = server(REDIRECT);
        let sender = PinnedSender::new(Scripted::new(&[&["127.0.0.1"]]), true);
        let url = format!("https://service.test:{port}/probe");
        match sender.send(get(&url), RequestOptions::default()).await {
            Err(SendError::Failed(HttpError::Tls(_))) => {}
            Err(other) => panic!("expected a TLS error, got {other:?}"),
            Ok(_) => panic!("expected a TLS error, got a response"),
        }
    }

    #[tokio::test]
    async fn every_request_resolves_again() {
        let (port, requests) = server(REDIRECT);
        let sender =
            PinnedSender::new(Scripted::new(&[&["127.0.0.1"], &["169.254.169.254"]]), true);
        let url = format!("http://service.test:{port}/probe");
        let (_, connection) = sender
            .send(get(&url), RequestOptions::default())
            .await
            .unwrap();
        tokio::spawn(connection);
        let second = sender.send(get(&url), RequestOptions::default()).await;
        assert!(matches!(second, Err(SendError::Refused(_))));
        assert_eq!(*requests.lock().unwrap(), 1);
    }
}
