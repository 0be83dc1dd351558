//! Where Inlet's own lines go: plain text for a person at a terminal, or one JSON object per line
//! in Cloud Logging's structured format (`severity`, `message`, `time`,
//! `logging.googleapis.com/labels`) when it runs on Cloud Run or stderr is not a terminal.
//! Every line, in either format, has the secret values this process read replaced by `***`.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// JSON on Cloud Run (`K_SERVICE` or `CLOUD_RUN_JOB` set) or when stderr is not a terminal,
    /// text otherwise.
    Auto,
    /// One JSON object per line, as Cloud Logging reads them.
    Json,
    /// Plain lines.
    Text,
}

impl LogFormat {
    /// `Auto` decided for this process.
    fn decide(self) -> Self {
        match self {
            Self::Auto => {
                let cloud_run = ["K_SERVICE", "CLOUD_RUN_JOB"]
                    .iter()
                    .any(|v| std::env::var_os(v).is_some());
                if cloud_run || !std::io::stderr().is_terminal() {
                    Self::Json
                } else {
                    Self::Text
                }
            }
            other => other,
        }
    }
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Whether lines are JSON (after [`init`]; text before).
pub fn is_json() -> bool {
    FORMAT.get() == Some(&LogFormat::Json)
}

/// How serious a line is, with Cloud Logging's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Detail for debugging.
    Debug,
    /// Routine: progress, commits, summaries.
    Info,
    /// Something the operator may want to look at.
    Warning,
    /// A failure.
    Error,
}

impl Severity {
    fn name(self) -> &'static str {
        match self {
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warning => "WARNING",
            Self::Error => "ERROR",
        }
    }

    fn of(level: &tracing::Level) -> Self {
        match *level {
            tracing::Level::ERROR => Self::Error,
            tracing::Level::WARN => Self::Warning,
            tracing::Level::INFO => Self::Info,
            _ => Self::Debug,
        }
    }
}

/// Fields that become Cloud Logging labels (searchable, indexed) instead of payload fields.
const LABELS: [&str; 3] = ["connection", "stream", "drain"];

/// Sets up `tracing` for the CLI: `filter` picks what is logged, `format` how.
pub fn init(filter: tracing_subscriber::EnvFilter, format: LogFormat) {
    let format = *FORMAT.get_or_init(|| format.decide());
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Json => registry.with(JsonLayer).try_init(),
        _ => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(|| RedactingWriter(Vec::new()))
                    .with_target(false),
            )
            .try_init(),
    };
}

/// Writes one line of the CLI's own (an error, a hint, a summary) to stderr: as it is in text,
/// as one JSON record in JSON. `labels` are `(name, value)` pairs such as the connection.
pub fn say(severity: Severity, text: &str, labels: &[(&str, &str)]) {
    let text = crate::secrets::redact(text.trim_end_matches('\n'));
    let mut err = std::io::stderr().lock();
    if is_json() {
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
            .collect();
        let _ = writeln!(
            err,
            "{}",
            json_line(severity, &text, labels, Default::default())
        );
    } else {
        let _ = writeln!(err, "{text}");
    }
}

/// One Cloud Logging record.
fn json_line(
    severity: Severity,
    message: &str,
    labels: serde_json::Map<String, serde_json::Value>,
    fields: serde_json::Map<String, serde_json::Value>,
) -> String {
    let mut record = serde_json::Map::new();
    record.insert("severity".into(), severity.name().into());
    record.insert("message".into(), message.into());
    record.insert(
        "time".into(),
        chrono::Utc::now()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            .into(),
    );
    if !labels.is_empty() {
        record.insert("logging.googleapis.com/labels".into(), labels.into());
    }
    for (key, value) in fields {
        record.entry(key).or_insert(value);
    }
    serde_json::Value::Object(record).to_string()
}

/// Formats `tracing` events as Cloud Logging records.
struct JsonLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for JsonLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut labels = serde_json::Map::new();
        let mut rest = serde_json::Map::new();
        for (key, value) in fields.values {
            if LABELS.contains(&key.as_str()) {
                // A drain is a connection.
                let key = if key == "drain" {
                    "connection".into()
                } else {
                    key
                };
                labels.insert(key, value.into());
            } else {
                rest.insert(key, value.into());
            }
        }
        let target = event.metadata().target();
        if !target.starts_with("inlet_host") {
            // `connector` for what a connector logged; a library's name otherwise.
            rest.insert("target".into(), target.into());
        }
        let message = crate::secrets::redact(&fields.message);
        let line = json_line(
            Severity::of(event.metadata().level()),
            &message,
            labels,
            rest,
        );
        let _ = writeln!(
            std::io::stderr().lock(),
            "{}",
            crate::secrets::redact(&line)
        );
    }
}

/// An event's message and fields as text.
#[derive(Default)]
struct Fields {
    message: String,
    values: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.values
                .push((field.name().to_owned(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.values
                .push((field.name().to_owned(), format!("{value:?}")));
        }
    }
}

/// The text format's writer: collects one event, redacts it, writes it whole.
struct RedactingWriter(Vec<u8>);

impl Write for RedactingWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingWriter {
    fn drop(&mut self) {
        let text = crate::secrets::redact(&String::from_utf8_lossy(&self.0));
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_has_cloud_loggings_fields() {
        let labels = [("connection".to_owned(), serde_json::json!("pg"))]
            .into_iter()
            .collect();
        let line = json_line(
            Severity::Warning,
            "slow \"source\"",
            labels,
            Default::default(),
        );
        let record: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(record["severity"], "WARNING");
        assert_eq!(record["message"], "slow \"source\"");
        assert_eq!(record["logging.googleapis.com/labels"]["connection"], "pg");
        let time = record["time"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
        assert!(!line.contains('\n'));
    }
}
