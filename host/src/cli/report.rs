//! How the CLI prints an error: the context chain once, each cause only when it adds something.
//!
//! Library errors often put their source's text in their own message *and* return it as
//! `source()`, so printing the whole chain would say the same thing two to four times.

/// The error and its causes joined by `: `, leaving out a cause whose text was already said.
pub fn render(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let said = cause.to_string();
        if said.is_empty() || text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}

/// Whether the connector refused its settings (so the message should say where they came from).
pub fn is_settings_error(error: &anyhow::Error) -> bool {
    use crate::runtime::{CallError, CallFailure, ConnectorError};
    error.chain().any(|cause| {
        let call = cause.downcast_ref::<CallError>().or_else(|| {
            match cause.downcast_ref::<crate::sync::SyncError>() {
                Some(crate::sync::SyncError::Call(call)) => Some(call),
                _ => None,
            }
        });
        call.is_some_and(|c| {
            matches!(
                c.failure.as_ref(),
                CallFailure::Connector(ConnectorError::Config(_))
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("sandbox policy: {source}")]
    struct Outer {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let inner = std::io::Error::other("destination `10.0.0.1:5432` is private");
        let error = anyhow::Error::new(Outer { source: inner }).context("connection `db`");
        assert_eq!(
            render(&error),
            "connection `db`: sandbox policy: destination `10.0.0.1:5432` is private"
        );
        let plain = anyhow::anyhow!("disk full").context("writing `x`");
        assert_eq!(render(&plain), "writing `x`: disk full");
    }
}
