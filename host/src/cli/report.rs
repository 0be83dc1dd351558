//! How the CLI prints an error: the context chain once, each cause only when it adds something.
//!
//! Library errors often put their source's text in their own message *and* return it as
//! `source()`, so printing the whole chain would say the same thing two to four times.

/// The error and its causes joined by `: `, leaving out a cause whose text was already said.
pub fn render(error: &anyhow::Error) -> String {
    let error: &(dyn std::error::Error + 'static) = error.as_ref();
    render_error(error)
}

/// [`render`] for any error: the error and its sources.
pub fn render_error(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    for cause in std::iter::successors(Some(error), |e| e.source()) {
        let said = cause.to_string();
        if said.is_empty() || text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    // A source may echo a secret back in its error (a wrong password quoted in a message).
    crate::secrets::redact(&text)
}

/// The failure of the connector call somewhere in `error`'s chain, if any.
fn call_failure(error: &anyhow::Error) -> Option<&crate::runtime::CallFailure> {
    use crate::runtime::CallError;
    error.chain().find_map(|cause| {
        let call = cause.downcast_ref::<CallError>().or_else(|| {
            match cause.downcast_ref::<crate::sync::SyncError>() {
                Some(crate::sync::SyncError::Call(call)) => Some(call),
                _ => None,
            }
        });
        call.map(|c| c.failure.as_ref())
    })
}

/// Whether the connector refused its settings (so the message should say where they came from).
pub fn is_settings_error(error: &anyhow::Error) -> bool {
    use crate::runtime::{CallFailure, ConnectorError};
    matches!(
        call_failure(error),
        Some(CallFailure::Connector(ConnectorError::Config(_)))
    )
}

/// The credential a connector asked for without a grant, if that is what failed.
pub fn ungranted_credential(error: &anyhow::Error) -> Option<String> {
    use crate::credentials::GrantRefusal;
    use crate::runtime::{CallFailure, Violation};
    match call_failure(error) {
        Some(CallFailure::Violation(Violation::Grant(GrantRefusal::NotGranted {
            name, ..
        }))) => Some(name.clone()),
        _ => None,
    }
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
        let inner = std::io::Error::other("destination `10.0.0.1:5432` is private");
        assert_eq!(
            render_error(&Outer { source: inner }),
            "sandbox policy: destination `10.0.0.1:5432` is private"
        );
    }
}
