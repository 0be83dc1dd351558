//! The PostgreSQL frontend/backend protocol over a byte stream (plain TCP or TLS over WASI
//! sockets, see `transport`): start-up, authentication (trust, cleartext, md5, SCRAM-SHA-256),
//! simple queries and `COPY ... TO STDOUT`. Message encoding and parsing come from
//! `postgres-protocol`; the I/O is here.

use crate::tls::TlsSettings;
use crate::transport::Transport;
use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use inlet_sdk::Error;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::{backend::Message, frontend};
use std::io::{Read, Write};

/// Where and as whom to connect.
pub struct ConnectOptions<'a> {
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub password: Option<&'a str>,
    pub database: &'a str,
    pub application_name: &'a str,
    /// Open a logical replication session (`replication=database`): it accepts
    /// `CREATE_REPLICATION_SLOT` and `START_REPLICATION` besides SQL.
    pub replication: bool,
    /// How long connecting, and each read until the session is ready, may take.
    pub handshake_timeout: std::time::Duration,
    /// Whether and how to encrypt.
    pub tls: &'a TlsSettings,
}

impl ConnectOptions<'_> {
    /// `host:port`, for connecting and for messages.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The longest message accepted before the session is ready (startup answers are small): a
/// server that is not PostgreSQL must not make the connector wait for, or allocate, gigabytes.
const MAX_HANDSHAKE_MESSAGE: usize = 1 << 20;
/// PostgreSQL's own limit on a message.
const MAX_MESSAGE: usize = 1 << 30;

/// An open, authenticated connection.
pub struct Connection {
    stream: Transport,
    /// Received bytes not yet parsed into messages.
    read: BytesMut,
    /// The socket reads into this, then the bytes are appended to `read`.
    chunk: Vec<u8>,
    write: BytesMut,
    /// The largest message length accepted now.
    max_message: usize,
    /// Where the server is, for messages.
    address: String,
}

/// A server error, with the SQLSTATE code that classifies it.
#[derive(Debug)]
pub struct ServerError {
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.code)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl ServerError {
    /// The connector error for this server error: auth failures, missing objects, the rest.
    pub fn into_error(self, context: &str) -> Error {
        let message = format!("{context}: {self}");
        match self.code.as_str() {
            "28P01" | "28000" => Error::Auth(message),
            "42P01" | "42703" | "3D000" | "3F000" => Error::NotFound(message),
            // 55006: an object in use, such as a replication slot another session still holds.
            code if code.starts_with("08")
                || code.starts_with("57")
                || code == "53300"
                || code == "55006" =>
            {
                Error::Transient(message)
            }
            code if code.starts_with("22") => Error::data(message),
            _ => Error::config(message),
        }
    }
}

fn io_error(context: &str, e: impl std::fmt::Display) -> Error {
    Error::Transient(format!("{context}: {e}"))
}

impl Connection {
    /// Connects, negotiates TLS as `sslmode` says, and authenticates (see `connect`).
    pub fn connect(options: &ConnectOptions<'_>) -> Result<Self, Error> {
        crate::connect::open(options)
    }

    /// Starts the session on an open stream (TLS already negotiated) and authenticates. Session
    /// settings make text output predictable: UTC, ISO dates, ISO 8601 intervals, hex bytea,
    /// shortest-exact floats.
    pub fn start(stream: Transport, options: &ConnectOptions<'_>) -> Result<Self, Error> {
        let mut connection = Self {
            stream,
            read: BytesMut::with_capacity(512 * 1024),
            chunk: vec![0; 256 * 1024],
            write: BytesMut::new(),
            max_message: MAX_HANDSHAKE_MESSAGE,
            address: options.address(),
        };
        let parameters = [
            ("user", options.user),
            ("database", options.database),
            ("application_name", options.application_name),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, YMD"),
            ("TimeZone", "UTC"),
            ("IntervalStyle", "iso_8601"),
            ("extra_float_digits", "3"),
            ("bytea_output", "hex"),
        ];
        let replication = [("replication", "database")];
        let parameters = parameters
            .iter()
            .chain(replication.iter().filter(|_| options.replication))
            .copied();
        frontend::startup_message(parameters, &mut connection.write)
            .map_err(|e| Error::internal(format!("startup message: {e}")))?;
        connection.flush()?;
        connection.authenticate(options)?;
        // Parameter status, backend key data, then ReadyForQuery.
        loop {
            match connection.next()? {
                Message::ReadyForQuery(_) => {
                    // Queries may legitimately take long (a COPY of a big table).
                    let _ = connection.stream.tcp().set_read_timeout(None);
                    connection.max_message = MAX_MESSAGE;
                    return Ok(connection);
                }
                Message::ErrorResponse(body) => {
                    return Err(server_error(&body).into_error("after authentication"));
                }
                _ => {}
            }
        }
    }

    fn authenticate(&mut self, options: &ConnectOptions<'_>) -> Result<(), Error> {
        let password = || {
            options.password.ok_or_else(|| {
                Error::Auth(format!(
                    "the server asks user `{}` for a password, but `password` is not set",
                    options.user
                ))
            })
        };
        let encode =
            |e: std::io::Error| Error::internal(format!("encoding an authentication message: {e}"));
        loop {
            match self.next()? {
                Message::AuthenticationOk => return Ok(()),
                Message::AuthenticationCleartextPassword => {
                    frontend::password_message(password()?.as_bytes(), &mut self.write).map_err(encode)?;
                    self.flush()?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let hash = postgres_protocol::authentication::md5_hash(options.user.as_bytes(), password()?.as_bytes(), body.salt());
                    frontend::password_message(hash.as_bytes(), &mut self.write).map_err(encode)?;
                    self.flush()?;
                }
                Message::AuthenticationSasl(body) => {
                    let mechanisms: Vec<String> = body.mechanisms().map(|m| Ok(m.to_owned())).collect().map_err(|e| io_error("reading SASL mechanisms", e))?;
                    if !mechanisms.iter().any(|m| m == SCRAM_SHA_256) {
                        return Err(Error::Auth(format!("the server offers SASL mechanisms {mechanisms:?}; only SCRAM-SHA-256 is supported")));
                    }
                    self.scram(password()?)?;
                }
                Message::ErrorResponse(body) => return Err(server_error(&body).into_error(&format!("authenticating user `{}`", options.user))),
                _ => return Err(Error::Auth("the server asked for an authentication method this connector does not support (GSS, SSPI, Kerberos)".into())),
            }
        }
    }

    fn scram(&mut self, password: &str) -> Result<(), Error> {
        let encode = |e: std::io::Error| Error::internal(format!("encoding a SCRAM message: {e}"));
        let mut scram = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
        frontend::sasl_initial_response(SCRAM_SHA_256, scram.message(), &mut self.write)
            .map_err(encode)?;
        self.flush()?;
        match self.next()? {
            Message::AuthenticationSaslContinue(body) => {
                scram
                    .update(body.data())
                    .map_err(|e| Error::Auth(format!("SCRAM: {e}")))?;
            }
            Message::ErrorResponse(body) => {
                return Err(server_error(&body).into_error("SCRAM authentication"));
            }
            _ => {
                return Err(Error::Auth(
                    "SCRAM: unexpected message from the server".into(),
                ));
            }
        }
        frontend::sasl_response(scram.message(), &mut self.write).map_err(encode)?;
        self.flush()?;
        match self.next()? {
            Message::AuthenticationSaslFinal(body) => scram
                .finish(body.data())
                .map_err(|e| Error::Auth(format!("SCRAM: the server's proof is wrong: {e}"))),
            Message::ErrorResponse(body) => {
                Err(server_error(&body).into_error("SCRAM authentication"))
            }
            _ => Err(Error::Auth(
                "SCRAM: unexpected message from the server".into(),
            )),
        }
    }

    /// Runs `sql` with the simple query protocol and returns its rows as text (for catalog queries).
    pub fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, Error> {
        frontend::query(sql, &mut self.write)
            .map_err(|e| Error::internal(format!("encoding a query: {e}")))?;
        self.flush()?;
        let mut rows = Vec::new();
        let mut failure = None;
        loop {
            match self.next()? {
                Message::DataRow(body) => {
                    let buffer = body.buffer();
                    let row = body
                        .ranges()
                        .map(|range| {
                            Ok(range.map(|r| String::from_utf8_lossy(&buffer[r]).into_owned()))
                        })
                        .collect()
                        .map_err(|e| io_error("reading a row", e))?;
                    rows.push(row);
                }
                Message::ErrorResponse(body) => failure = Some(server_error(&body)),
                Message::ReadyForQuery(_) => break,
                _ => {}
            }
        }
        match failure {
            Some(error) => Err(error.into_error("query failed")),
            None => Ok(rows),
        }
    }

    /// Runs `COPY (...) TO STDOUT` and hands each text-format row (without its newline) to `row`.
    pub fn copy_out(
        &mut self,
        sql: &str,
        mut row: impl FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<u64, Error> {
        frontend::query(sql, &mut self.write)
            .map_err(|e| Error::internal(format!("encoding COPY: {e}")))?;
        self.flush()?;
        let mut rows = 0;
        let mut failure: Option<Error> = None;
        loop {
            // The rows already received are handed over straight from the read buffer; any other
            // message, or a row not wholly received yet, goes through `next`.
            if failure.is_none() {
                let (consumed, result) = copy_rows(&self.read, &mut row, &mut rows);
                bytes::Buf::advance(&mut self.read, consumed);
                if let Err(e) = result {
                    failure = Some(e);
                }
                if consumed > 0 {
                    continue;
                }
            }
            match self.next()? {
                Message::CopyData(body) if failure.is_none() => {
                    let data = body.data();
                    let line = data.strip_suffix(b"\n").unwrap_or(data);
                    if let Err(e) = row(line) {
                        failure = Some(e);
                    }
                    rows += 1;
                }
                Message::ErrorResponse(body) => {
                    failure.get_or_insert(server_error(&body).into_error("COPY failed"));
                }
                Message::ReadyForQuery(_) => break,
                _ => {}
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(rows),
        }
    }

    /// Sends `sql` (a `START_REPLICATION` command) and waits for the server to switch to
    /// copy-both mode; then [`Connection::copy_both_data`] reads and
    /// [`Connection::send_copy_data`] writes.
    pub fn start_copy_both(&mut self, sql: &str) -> Result<(), Error> {
        frontend::query(sql, &mut self.write)
            .map_err(|e| Error::internal(format!("encoding a replication command: {e}")))?;
        self.flush()?;
        loop {
            let (tag, body) = self.next_frame()?;
            match tag {
                b'W' => return Ok(()),
                b'E' => return Err(frame_error(&body).into_error(sql)),
                b'N' | b'S' => {}
                other => {
                    return Err(Error::data(format!(
                        "the server answered `{sql}` with message type `{}` instead of starting to stream",
                        char::from(other)
                    )));
                }
            }
        }
    }

    /// The next `CopyData` payload of a copy-both stream; `None` when the server ends the stream.
    pub fn copy_both_data(&mut self) -> Result<Option<bytes::Bytes>, Error> {
        loop {
            let (tag, body) = self.next_frame()?;
            match tag {
                b'd' => return Ok(Some(body)),
                b'c' | b'C' | b'Z' => return Ok(None),
                b'E' => return Err(frame_error(&body).into_error("logical replication")),
                b'N' | b'S' => {}
                other => {
                    return Err(Error::data(format!(
                        "unexpected message type `{}` in the replication stream",
                        char::from(other)
                    )));
                }
            }
        }
    }

    /// Ends a copy-both stream (the client's `CopyDone`) and waits until the session takes
    /// commands again; whatever the server still sends meanwhile is dropped.
    pub fn end_copy_both(&mut self) -> Result<(), Error> {
        self.write.extend_from_slice(&[b'c', 0, 0, 0, 4]);
        self.flush()?;
        let mut failure = None;
        loop {
            let (tag, body) = self.next_frame()?;
            match tag {
                b'Z' => break,
                b'E' => failure = Some(frame_error(&body).into_error("ending replication")),
                _ => {}
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Sends one `CopyData` message (a standby status update) in a copy-both stream.
    pub fn send_copy_data(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.write.extend_from_slice(b"d");
        self.write
            .extend_from_slice(&(payload.len() as u32 + 4).to_be_bytes());
        self.write.extend_from_slice(payload);
        self.flush()
    }

    /// One raw message: its type byte and body (for the copy-both messages `postgres-protocol`
    /// does not parse).
    fn next_frame(&mut self) -> Result<(u8, bytes::Bytes), Error> {
        loop {
            self.check_header()?;
            if let Some(header) = self.read.get(..5) {
                let length =
                    u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
                if self.read.len() > length {
                    let tag = header[0];
                    let mut frame = self.read.split_to(1 + length);
                    bytes::Buf::advance(&mut frame, 5);
                    return Ok((tag, frame.freeze()));
                }
            }
            self.fill()?;
        }
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.stream
            .write_all(&self.write)
            .map_err(|e| io_error("sending to PostgreSQL", e))?;
        self.write.clear();
        Ok(())
    }

    fn next(&mut self) -> Result<Message, Error> {
        loop {
            self.check_header()?;
            if let Some(message) = Message::parse(&mut self.read)
                .map_err(|e| Error::data(format!("malformed message from the server: {e}")))?
            {
                return Ok(message);
            }
            self.fill()?;
        }
    }

    /// Reads more bytes from the socket into `read`.
    fn fill(&mut self) -> Result<(), Error> {
        let n = self.stream.read(&mut self.chunk).map_err(|e| {
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) {
                    Error::Transient(format!(
                        "{} accepted the connection but sent no PostgreSQL answer within {} s; is it a PostgreSQL server (or a proxy that waits for something)?",
                        self.address,
                        self.stream
                            .tcp()
                            .read_timeout()
                            .ok()
                            .flatten()
                            .map_or(0, |t| t.as_secs())
                    ))
                } else {
                    io_error(&format!("reading from PostgreSQL at {}", self.address), e)
                }
            })?;
        if n == 0 {
            return Err(Error::Transient("the server closed the connection".into()));
        }
        self.read.extend_from_slice(&self.chunk[..n]);
        Ok(())
    }
}

impl Connection {
    /// Refuses a message header no PostgreSQL server sends: a length beyond the limit (an HTTP or
    /// TLS server answering the start-up message reads as a length in the gigabytes), or, before
    /// the session is ready, a message type other than authentication, error or notice.
    fn check_header(&self) -> Result<(), Error> {
        let Some(header) = self.read.get(..5) else {
            return Ok(());
        };
        let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let handshake = self.max_message == MAX_HANDSHAKE_MESSAGE;
        let known_start = matches!(header[0], b'R' | b'E' | b'N' | b'S' | b'K' | b'Z' | b'v');
        if length < 4 || length > self.max_message || (handshake && !known_start) {
            let shown: String = String::from_utf8_lossy(&self.read[..self.read.len().min(40)])
                .chars()
                .map(|c| if c.is_control() { '.' } else { c })
                .collect();
            return Err(Error::config(format!(
                "{} does not speak the PostgreSQL protocol (it answered `{shown}`); check `host` and `port`",
                self.address
            )));
        }
        Ok(())
    }
}

/// Hands every complete `CopyData` message at the start of `buffer` to `row` (without its
/// newline), up to the first other message, partial message or failure. Returns the bytes consumed.
fn copy_rows(
    buffer: &[u8],
    row: &mut impl FnMut(&[u8]) -> Result<(), Error>,
    rows: &mut u64,
) -> (usize, Result<(), Error>) {
    let mut at = 0;
    while let Some(header) = buffer.get(at..at + 5) {
        let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        // Anything unusual (another message, a bad length) is left to `next` and its checks.
        if header[0] != b'd' || !(4..=MAX_MESSAGE).contains(&length) {
            break;
        }
        let Some(data) = buffer.get(at + 5..at + 1 + length) else {
            break;
        };
        at += 1 + length;
        *rows += 1;
        let line = data.strip_suffix(b"\n").unwrap_or(data);
        if let Err(e) = row(line) {
            return (at, Err(e));
        }
    }
    (at, Ok(()))
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut buf = BytesMut::new();
        frontend::terminate(&mut buf);
        let _ = self.stream.write_all(&buf);
        self.stream.close();
    }
}

/// The server error in the body of a raw `ErrorResponse`.
fn frame_error(body: &[u8]) -> ServerError {
    let mut error = ServerError {
        code: String::new(),
        message: String::new(),
        detail: None,
    };
    for field in body.split(|b| *b == 0) {
        let Some((kind, value)) = field.split_first() else {
            continue;
        };
        let value = String::from_utf8_lossy(value).into_owned();
        match kind {
            b'C' => error.code = value,
            b'M' => error.message = value,
            b'D' => error.detail = Some(value),
            _ => {}
        }
    }
    error
}

fn server_error(body: &postgres_protocol::message::backend::ErrorResponseBody) -> ServerError {
    let mut error = ServerError {
        code: String::new(),
        message: String::new(),
        detail: None,
    };
    let mut fields = body.fields();
    while let Ok(Some(field)) = fields.next() {
        match field.type_() {
            b'C' => error.code = String::from_utf8_lossy(field.value_bytes()).into_owned(),
            b'M' => error.message = String::from_utf8_lossy(field.value_bytes()).into_owned(),
            b'D' => error.detail = Some(String::from_utf8_lossy(field.value_bytes()).into_owned()),
            _ => {}
        }
    }
    error
}

/// Quotes an identifier: `"name"`, doubling inner quotes.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal: `'value'`, doubling inner quotes.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn buffered_rows_are_handed_over_up_to_the_first_other_or_partial_message() {
        let mut buffer = message(b'd', b"1\ta\n");
        buffer.extend(message(b'd', b"2\tb\n"));
        let complete = buffer.len();
        buffer.extend(message(b'C', b"COPY 2\0"));
        let mut seen = Vec::new();
        let mut rows = 0;
        let (consumed, result) = copy_rows(
            &buffer,
            &mut |line| {
                seen.push(line.to_vec());
                Ok(())
            },
            &mut rows,
        );
        assert!(result.is_ok());
        assert_eq!((consumed, rows), (complete, 2));
        assert_eq!(seen, vec![b"1\ta".to_vec(), b"2\tb".to_vec()]);

        // A row not wholly received stays for `next`, as does a header that is cut short.
        let partial = message(b'd', b"3\tc\n");
        for cut in 0..partial.len() {
            let (consumed, _) = copy_rows(&partial[..cut], &mut |_| Ok(()), &mut rows);
            assert_eq!(consumed, 0, "cut at {cut}");
        }
        // A length no server sends is left to `next`, which names it.
        let mut bad = message(b'd', b"x");
        bad[1..5].copy_from_slice(&2u32.to_be_bytes());
        assert_eq!(copy_rows(&bad, &mut |_| Ok(()), &mut rows).0, 0);

        // A failing row stops the hand-over after that row.
        let (consumed, result) =
            copy_rows(&buffer, &mut |_| Err(Error::data("bad row")), &mut rows);
        assert_eq!(consumed, message(b'd', b"1\ta\n").len());
        assert!(result.is_err());
    }
}
