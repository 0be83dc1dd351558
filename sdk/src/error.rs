//! The connector's error type: the typed `error` variant of the WIT contract, in Rust.

use crate::bindings::inlet::connector::types as wit;

/// An expected failure a connector reports to the host.
///
/// The variant decides what the host does: configuration, authentication and not-found errors stop
/// the run and ask the user for a fix; rate-limited and transient errors may be retried later; data
/// and internal errors stop the run. Messages are shown to users: name the setting, table or field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A setting is missing or invalid.
    Config(String),
    /// The source refused the credentials.
    Auth(String),
    /// A named object (table, sheet, collection) does not exist.
    NotFound(String),
    /// The source throttled the connector and retries ran out.
    RateLimited {
        /// What the source said.
        message: String,
        /// How long the source asked to wait, in milliseconds.
        retry_after_ms: Option<u64>,
    },
    /// A temporary failure worth retrying later.
    Transient(String),
    /// The source returned data the connector cannot represent.
    Data(String),
    /// A bug in the connector.
    Internal(String),
}

impl Error {
    /// A configuration error.
    pub fn config(message: impl Into<String>) -> Self {
        Self::Config(message.into())
    }
    /// A data error.
    pub fn data(message: impl Into<String>) -> Self {
        Self::Data(message.into())
    }
    /// An internal error (a bug in the connector).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(m) => write!(f, "configuration error: {m}"),
            Self::Auth(m) => write!(f, "authentication error: {m}"),
            Self::NotFound(m) => write!(f, "not found: {m}"),
            Self::RateLimited {
                message,
                retry_after_ms,
            } => match retry_after_ms {
                Some(ms) => write!(f, "rate limited (retry after {ms} ms): {message}"),
                None => write!(f, "rate limited: {message}"),
            },
            Self::Transient(m) => write!(f, "transient error: {m}"),
            Self::Data(m) => write!(f, "data error: {m}"),
            Self::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for wit::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Config(m) => wit::Error::Config(m),
            Error::Auth(m) => wit::Error::Auth(m),
            Error::NotFound(m) => wit::Error::NotFound(m),
            Error::RateLimited {
                message,
                retry_after_ms,
            } => wit::Error::RateLimited(wit::RateLimit {
                message,
                retry_after_ms,
            }),
            Error::Transient(m) => wit::Error::Transient(m),
            Error::Data(m) => wit::Error::Data(m),
            Error::Internal(m) => wit::Error::Internal(m),
        }
    }
}

impl From<wit::Error> for Error {
    fn from(error: wit::Error) -> Self {
        match error {
            wit::Error::Config(m) => Error::Config(m),
            wit::Error::Auth(m) => Error::Auth(m),
            wit::Error::NotFound(m) => Error::NotFound(m),
            wit::Error::RateLimited(r) => Error::RateLimited {
                message: r.message,
                retry_after_ms: r.retry_after_ms,
            },
            wit::Error::Transient(m) => Error::Transient(m),
            wit::Error::Data(m) => Error::Data(m),
            wit::Error::Internal(m) => Error::Internal(m),
        }
    }
}

impl From<arrow_schema::ArrowError> for Error {
    fn from(error: arrow_schema::ArrowError) -> Self {
        Error::Data(format!("arrow: {error}"))
    }
}
