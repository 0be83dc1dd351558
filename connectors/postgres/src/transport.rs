//! The byte stream under the protocol: plain TCP, or TLS over the same TCP stream once the server
//! has agreed to an SSLRequest; handshake failures explained in the words of the settings.

use crate::tls::{SslMode, Suites, TlsSettings, server_name};
use inlet_sdk::Error;
use rustls::{AlertDescription, CertificateError, ClientConnection};
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// SSLRequest: length 8, then the code 1234.5679 (80877103).
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Bytes of TLS records read from the socket at once.
const READ_BUFFER: usize = 256 * 1024;

/// A connection's bytes, plain or encrypted; the protocol code reads and writes either alike.
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

/// TLS over a TCP stream. Unlike rustls' `StreamOwned`, everything rustls has to send (handshake
/// records, then a protocol message) leaves in one TCP write: separate small writes meet Nagle's
/// algorithm and the server's delayed ACK, a 40 ms stall each (WASI sockets have no TCP_NODELAY).
///
/// Reads go through a buffer: rustls asks for 4 KiB at a time, and each socket read is a call
/// into the host.
pub struct TlsStream {
    connection: ClientConnection,
    tcp: BufReader<TcpStream>,
    /// TLS records waiting to be written.
    out: Vec<u8>,
    /// Whether `sslcert` is set (what a refusal after the handshake is about).
    client_certificate: bool,
}

impl TlsStream {
    /// Writes what rustls has to send, in one write.
    fn send(&mut self) -> std::io::Result<()> {
        while self.connection.wants_write() {
            self.connection.write_tls(&mut self.out)?;
        }
        if !self.out.is_empty() {
            let result = self.tcp.get_mut().write_all(&self.out);
            self.out.clear();
            result?;
        }
        Ok(())
    }

    /// Reads one batch of TLS records and processes them.
    fn receive(&mut self) -> std::io::Result<usize> {
        let n = self.connection.read_tls(&mut self.tcp)?;
        self.connection
            .process_new_packets()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        Ok(n)
    }
}

impl Transport {
    /// The TCP stream underneath (for timeouts).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(tls) => tls.tcp.get_ref(),
        }
    }

    /// Says goodbye at the TLS level (close_notify), after the protocol's Terminate.
    pub fn close(&mut self) {
        if let Self::Tls(tls) = self {
            tls.connection.send_close_notify();
            let _ = tls.send();
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.read(buf),
            Self::Tls(tls) => loop {
                match tls.connection.reader().read(buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        // Nothing decrypted yet: answer what rustls must answer, then read more.
                        tls.send()?;
                        tls.receive().map_err(|e| {
                            // Under TLS 1.3 the server judges a client certificate after the
                            // handshake: its refusal arrives with the first read.
                            match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                                Some(rustls::Error::AlertReceived(alert)) => std::io::Error::other(
                                    alert_message(*alert, tls.client_certificate),
                                ),
                                _ => e,
                            }
                        })?;
                    }
                    other => return other,
                }
            },
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.write(buf),
            Self::Tls(tls) => {
                let n = tls.connection.writer().write(buf)?;
                tls.send()?;
                Ok(n)
            }
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.flush(),
            Self::Tls(tls) => tls.send(),
        }
    }
}

/// How a request for TLS ended.
pub enum TlsAttempt {
    /// The server agreed and the handshake succeeded.
    Encrypted(Transport),
    /// The server answered `N`: the same stream goes on in plain text (if the mode allows).
    Declined(TcpStream),
    /// The server agreed, but the handshake failed (the error says why).
    HandshakeFailed(Error),
}

/// Asks for TLS on a connection from `connect`, offering ChaCha20-Poly1305 alone (see `Suites`),
/// and again on a new connection with every suite when the server has no ChaCha20.
/// Errors are answers that are not PostgreSQL's (the mode does not matter then).
pub fn request_tls(
    connect: impl Fn() -> Result<TcpStream, Error>,
    tls: &TlsSettings,
    host: &str,
    address: &str,
) -> Result<TlsAttempt, Error> {
    match attempt(connect()?, tls, Suites::ChaCha20, host, address)? {
        Step::Done(done) => Ok(done),
        Step::NoSharedSuite => match attempt(connect()?, tls, Suites::All, host, address)? {
            Step::Done(done) => Ok(done),
            Step::NoSharedSuite => Ok(TlsAttempt::HandshakeFailed(Error::config(format!(
                "the server ended the TLS handshake with every cipher suite offered: it shares no TLS version or cipher \
                 suite with this connector (TLS 1.2 or 1.3 with ECDHE and AES-GCM or ChaCha20-Poly1305 is needed), \
                 or it wants a client certificate (`sslcert`, `sslkey`) [PostgreSQL at {address}]"
            )))),
        },
    }
}

/// One request for TLS.
enum Step {
    Done(TlsAttempt),
    /// The server shares none of the suites offered.
    NoSharedSuite,
}

/// Sends SSLRequest on a fresh connection and, when the server agrees, runs the handshake.
fn attempt(
    mut tcp: TcpStream,
    tls: &TlsSettings,
    suites: Suites,
    host: &str,
    address: &str,
) -> Result<Step, Error> {
    let timeout = tcp.read_timeout().ok().flatten();
    tcp.write_all(&SSL_REQUEST)
        .map_err(|e| Error::Transient(format!("sending the TLS request to {address}: {e}")))?;
    // Exactly one byte: anything the server sent after `S` must go through TLS (CVE-2021-23222).
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer)
        .map_err(|e| read_error(&e, address, timeout))?;
    match answer[0] {
        b'S' => Ok(match handshake(tcp, tls, suites, host, address) {
            Ok(transport) => Step::Done(TlsAttempt::Encrypted(transport)),
            Err(Refusal::NoSharedSuite) => Step::NoSharedSuite,
            Err(Refusal::Other(error)) => Step::Done(TlsAttempt::HandshakeFailed(error)),
        }),
        b'N' => Ok(Step::Done(TlsAttempt::Declined(tcp))),
        b'E' => Err(Error::config(format!(
            "{address} answered the TLS request with an error: a PostgreSQL server older than 7.0, or not PostgreSQL; check `host` and `port`"
        ))),
        other => {
            let mut rest = [0u8; 40];
            let n = tcp.read(&mut rest).unwrap_or(0);
            let shown: String = String::from_utf8_lossy(&[&[other][..], &rest[..n]].concat())
                .chars()
                .map(|c| if c.is_control() { '.' } else { c })
                .collect();
            Err(Error::config(format!(
                "{address} does not speak the PostgreSQL protocol (it answered `{shown}` to the TLS request); check `host` and `port`"
            )))
        }
    }
}

fn read_error(error: &std::io::Error, address: &str, timeout: Option<Duration>) -> Error {
    match error.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Error::Transient(format!(
            "{address} accepted the connection but sent no PostgreSQL answer within {} s; is it a PostgreSQL server (or a proxy that waits for something)?",
            timeout.map_or(0, |t| t.as_secs())
        )),
        std::io::ErrorKind::UnexpectedEof => Error::Transient(format!(
            "{address} closed the connection when asked for TLS; check `host` and `port`"
        )),
        _ => Error::Transient(format!("reading from PostgreSQL at {address}: {error}")),
    }
}

/// Why a handshake failed.
enum Refusal {
    /// No cipher suite (or version) in common: worth a retry with more suites.
    NoSharedSuite,
    Other(Error),
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        Self::Other(error)
    }
}

impl From<crate::tls::TlsSettingError> for Refusal {
    fn from(error: crate::tls::TlsSettingError) -> Self {
        Self::Other(error.into())
    }
}

/// Runs the TLS handshake over `tcp` to its end.
fn handshake(
    tcp: TcpStream,
    tls: &TlsSettings,
    suites: Suites,
    host: &str,
    address: &str,
) -> Result<Transport, Refusal> {
    let config = tls.client_config(suites)?;
    let connection = ClientConnection::new(config, server_name(host)?)
        .map_err(|e| Error::internal(format!("starting TLS: {e}")))?;
    let timeout = tcp.read_timeout().ok().flatten();
    let mut tls_stream = TlsStream {
        connection,
        tcp: BufReader::with_capacity(READ_BUFFER, tcp),
        out: Vec::new(),
        client_certificate: tls.has_client_certificate(),
    };
    // The client's last flight (Finished) stays queued and leaves with the start-up message.
    while tls_stream.connection.is_handshaking() {
        let step = tls_stream.send().and_then(|()| tls_stream.receive());
        match step {
            Ok(0) => {
                return Err(Refusal::Other(Error::Transient(format!(
                    "{address} closed the connection during the TLS handshake"
                ))));
            }
            Ok(_) => {}
            Err(e) => {
                let refused = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>());
                return Err(match refused {
                    Some(
                        rustls::Error::AlertReceived(
                            AlertDescription::HandshakeFailure
                            | AlertDescription::InsufficientSecurity,
                        )
                        | rustls::Error::PeerIncompatible(_),
                    ) => Refusal::NoSharedSuite,
                    Some(refused) => Refusal::Other(explain(refused, tls, host, address)),
                    None => Refusal::Other(read_error(&e, address, timeout)),
                });
            }
        }
    }
    Ok(Transport::Tls(Box::new(tls_stream)))
}

/// A handshake failure in plain words, naming the settings to change.
pub fn explain(error: &rustls::Error, tls: &TlsSettings, host: &str, address: &str) -> Error {
    let mode = tls.mode.as_str();
    let roots = tls.verifies().unwrap_or("`sslrootcert`");
    let message = match error {
        rustls::Error::InvalidCertificate(certificate) => match certificate {
            CertificateError::UnknownIssuer => format!(
                "the server's certificate is not signed by a CA in {roots} (sslmode={mode}); for Cloud SQL, download the instance's server CA again (`gcloud sql instances describe INSTANCE --format='value(serverCaCert.cert)'`)"
            ),
            CertificateError::NotValidForNameContext { presented, .. } => format!(
                "the server's certificate is for {}, not for `host` `{host}` (sslmode={mode}); connect with one of those names as `host`, or use sslmode=verify-ca to check the CA only",
                names(presented)
            ),
            CertificateError::NotValidForName => format!(
                "the server's certificate does not name `host` `{host}` (sslmode={mode}); use sslmode=verify-ca to check the CA only"
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the server's certificate has expired ({error}) (sslmode={mode})")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => format!(
                "the server's certificate is not valid yet ({error}); is this machine's clock right? (sslmode={mode})"
            ),
            _ => format!("the server's certificate was refused: {error} (sslmode={mode})"),
        },
        rustls::Error::AlertReceived(alert) => alert_message(*alert, tls.has_client_certificate()),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => format!(
            "the server agreed to TLS but then did not speak it ({error}); is it a PostgreSQL server, or a proxy in between?"
        ),
        rustls::Error::PeerIncompatible(_) | rustls::Error::NoCertificatesPresented => format!(
            "the server and this connector share no TLS version or cipher suite ({error}); TLS 1.2 or 1.3 with ECDHE and AES-GCM or ChaCha20-Poly1305 is needed"
        ),
        _ => format!("TLS failed: {error}"),
    };
    let message = format!("{message} [PostgreSQL at {address}]");
    if tls.mode == SslMode::Prefer {
        Error::Transient(message)
    } else {
        Error::config(message)
    }
}

/// What a TLS alert from the server means here.
fn alert_message(alert: AlertDescription, client_certificate: bool) -> String {
    match alert {
        AlertDescription::UnknownCA
        | AlertDescription::BadCertificate
        | AlertDescription::CertificateRequired
        | AlertDescription::UnsupportedCertificate
        | AlertDescription::CertificateUnknown
        | AlertDescription::CertificateExpired
        | AlertDescription::AccessDenied => {
            if client_certificate {
                format!(
                    "the server refused the TLS connection (alert `{alert:?}`): it does not accept the client certificate in `sslcert`"
                )
            } else {
                format!(
                    "the server refused the TLS connection (alert `{alert:?}`): it asks for a client certificate; set `sslcert` and `sslkey`"
                )
            }
        }
        AlertDescription::DecryptError if client_certificate => format!(
            "the server refused the TLS connection (alert `{alert:?}`): does `sslkey` belong to the certificate in `sslcert`?"
        ),
        _ => format!("the server ended the TLS connection (alert `{alert:?}`)"),
    }
}

/// The certificate's names as written in a setting: webpki presents them as `DnsName("db")` and
/// `IpAddress(10.0.0.3)`.
fn names(presented: &[String]) -> String {
    if presented.is_empty() {
        return "no name at all (no subjectAltName)".into();
    }
    presented
        .iter()
        .map(|name| {
            let bare = name
                .strip_prefix("DnsName(\"")
                .and_then(|n| n.strip_suffix("\")"))
                .or_else(|| {
                    name.strip_prefix("IpAddress(")
                        .and_then(|n| n.strip_suffix(')'))
                })
                .unwrap_or(name);
            format!("`{bare}`")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn certificate_names_are_shown_as_a_host_setting_would_be_written() {
        let presented = [
            "DnsName(\"db.example.com\")".to_owned(),
            "IpAddress(10.0.0.3)".to_owned(),
            "UniformResourceIdentifier(\"spiffe://x\")".to_owned(),
        ];
        assert_eq!(
            super::names(&presented),
            "`db.example.com`, `10.0.0.3`, `UniformResourceIdentifier(\"spiffe://x\")`"
        );
        assert_eq!(super::names(&[]), "no name at all (no subjectAltName)");
    }
}
