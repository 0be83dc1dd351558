//! Opening a session under each `sslmode`: which transport is tried first, when a plain-text
//! fallback is allowed (`allow`, `prefer`, as libpq) and when it never is (`require`, `verify-*`).

use crate::tls::SslMode;
use crate::transport::{TlsAttempt, Transport, request_tls};
use crate::wire::{ConnectOptions, Connection};
use inlet_sdk::Error;
use std::net::TcpStream;

/// Connects, negotiates TLS as `options.tls.mode` says, and authenticates.
pub fn open(options: &ConnectOptions<'_>) -> Result<Connection, Error> {
    let tls = options.tls;
    let address = options.address();
    match tls.mode {
        SslMode::Disable => Connection::start(Transport::Plain(tcp(options)?), options),
        // Plain first; TLS when the server refuses the plain session (a `hostssl`-only pg_hba).
        SslMode::Allow => match Connection::start(Transport::Plain(tcp(options)?), options) {
            Err(Error::Auth(plain)) => {
                match request_tls(|| tcp(options), tls, options.host, &address)? {
                    TlsAttempt::Encrypted(transport) => Connection::start(transport, options),
                    TlsAttempt::Declined(_) => Err(Error::Auth(plain)),
                    TlsAttempt::HandshakeFailed(error) => Err(error),
                }
            }
            other => other,
        },
        // TLS when offered; plain text when the server declines, or when the handshake fails
        // (libpq does the same: `prefer` never checks the certificate, so nothing is lost).
        SslMode::Prefer => match request_tls(|| tcp(options), tls, options.host, &address)? {
            TlsAttempt::Encrypted(transport) => Connection::start(transport, options),
            TlsAttempt::Declined(tcp) => Connection::start(Transport::Plain(tcp), options),
            TlsAttempt::HandshakeFailed(tls_error) => {
                Connection::start(Transport::Plain(tcp(options)?), options).map_err(|plain| {
                    with_context(
                        plain,
                        &format!("after the TLS attempt failed: {}", message(&tls_error)),
                    )
                })
            }
        },
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            match request_tls(|| tcp(options), tls, options.host, &address)? {
                TlsAttempt::Encrypted(transport) => Connection::start(transport, options),
                TlsAttempt::Declined(_) => Err(Error::config(format!(
                    "the server at {address} does not accept TLS (it answered `N` to the TLS request), and sslmode={} never falls back to plain text; \
                     turn on `ssl` in the server's postgresql.conf, or set sslmode=prefer to allow plain text",
                    tls.mode.as_str()
                ))),
                TlsAttempt::HandshakeFailed(error) => Err(error),
            }
        }
    }
}

/// A new TCP connection, with the handshake timeout on its reads. The connect itself is bounded by
/// the host's TCP stack: on WASI, `connect_timeout` reports a refused connection as connected.
fn tcp(options: &ConnectOptions<'_>) -> Result<TcpStream, Error> {
    let address = options.address();
    let stream = TcpStream::connect(&address)
        .map_err(|e| Error::Transient(format!("cannot connect to PostgreSQL at {address}: {e}")))?;
    let _ = stream.set_nodelay(true);
    // Until the session is ready, a silent server is an error after the timeout.
    let _ = stream.set_read_timeout(Some(options.handshake_timeout));
    Ok(stream)
}

/// An error's message, without its kind.
fn message(error: &Error) -> String {
    match error {
        Error::Config(m)
        | Error::Auth(m)
        | Error::NotFound(m)
        | Error::Transient(m)
        | Error::Data(m)
        | Error::Internal(m) => m.clone(),
        other => other.to_string(),
    }
}

/// The same error, with `context` added to its message.
fn with_context(error: Error, context: &str) -> Error {
    match error {
        Error::Config(m) => Error::Config(format!("{m} ({context})")),
        Error::Auth(m) => Error::Auth(format!("{m} ({context})")),
        Error::NotFound(m) => Error::NotFound(format!("{m} ({context})")),
        Error::Transient(m) => Error::Transient(format!("{m} ({context})")),
        Error::Data(m) => Error::Data(format!("{m} ({context})")),
        Error::Internal(m) => Error::Internal(format!("{m} ({context})")),
        other => other,
    }
}
