//! What the operator sees while syncs run: a redrawn status line on a terminal, plain lines
//! otherwise, and a summary table at the end.

use crate::lake::SessionEvent;
use crate::logging::{self, Severity};
use crate::runtime::{LogLevel, RunEvent};
use crate::sync::{SyncObserver, SyncReport};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Prints progress to stderr.
pub struct Reporter {
    tty: bool,
    inner: Mutex<Inner>,
}

struct Inner {
    rows: BTreeMap<(String, String), (u64, Option<u64>)>,
    last_draw: Option<Instant>,
    drawn: bool,
}

impl Reporter {
    /// A reporter that redraws a status line when stderr is a terminal.
    pub fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            inner: Mutex::new(Inner {
                rows: BTreeMap::new(),
                last_draw: None,
                drawn: false,
            }),
        }
    }

    /// A line about `connection` (and `stream`): `[connection] text` on a terminal, a record
    /// labelled with both in JSON.
    fn line(
        &self,
        inner: &mut Inner,
        severity: Severity,
        connection: &str,
        stream: Option<&str>,
        text: &str,
    ) {
        if self.tty && inner.drawn {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            inner.drawn = false;
        }
        let mut labels = vec![("connection", connection)];
        labels.extend(stream.map(|s| ("stream", s)));
        if logging::is_json() {
            logging::say(severity, text, &labels);
        } else {
            logging::say(severity, &format!("[{connection}] {text}"), &labels);
        }
    }

    fn draw(&self, inner: &mut Inner) {
        if !self.tty
            || inner
                .last_draw
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        inner.last_draw = Some(Instant::now());
        let status: Vec<String> = inner
            .rows
            .iter()
            .map(|((connection, stream), (rows, total))| match total {
                Some(total) => format!(
                    "{connection}/{stream} {}/{}",
                    thousands(*rows),
                    thousands(*total)
                ),
                None => format!("{connection}/{stream} {}", thousands(*rows)),
            })
            .collect();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{}", status.join(" | "));
        let _ = err.flush();
        inner.drawn = true;
    }
}

impl Default for Reporter {
    fn default() -> Self {
        Self::new()
    }
}

impl SyncObserver for Reporter {
    fn run_event(&self, connection: &str, event: RunEvent) {
        let mut inner = self.inner.lock().expect("reporter lock");
        match event {
            RunEvent::Log { level, message } => {
                let (severity, level) = match level {
                    LogLevel::Debug => return,
                    LogLevel::Info => (Severity::Info, "info"),
                    LogLevel::Warn => (Severity::Warning, "warn"),
                    LogLevel::Error => (Severity::Error, "error"),
                };
                let text = if logging::is_json() {
                    message
                } else {
                    format!("{level}: {message}")
                };
                self.line(&mut inner, severity, connection, None, &text);
            }
            RunEvent::Progress {
                stream,
                rows,
                total,
            } => {
                inner
                    .rows
                    .insert((connection.to_owned(), stream), (rows, total));
                self.draw(&mut inner);
            }
        }
    }

    fn session_event(&self, connection: &str, event: SessionEvent) {
        let mut inner = self.inner.lock().expect("reporter lock");
        match event {
            SessionEvent::SchemaChanged { stream, change } => {
                let text = format!("{stream}: schema change: {change}");
                self.line(&mut inner, Severity::Info, connection, Some(&stream), &text);
            }
            SessionEvent::Committed {
                sequence,
                rows,
                files,
            } => {
                let text = format!(
                    "commit #{sequence}: {} rows in {files} files",
                    thousands(rows)
                );
                self.line(&mut inner, Severity::Info, connection, None, &text);
            }
            SessionEvent::Swept { files } => {
                let text = format!("removed {files} leftover files of failed runs");
                self.line(&mut inner, Severity::Info, connection, None, &text);
            }
        }
    }
}

/// The end-of-run table: rows, files and bytes per stream, and the duration.
pub fn summary(reports: &[SyncReport]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<20} {:<24} {:>12} {:>6} {:>12}\n",
        "connection", "stream", "rows", "files", "bytes"
    ));
    for report in reports {
        for (stream, stats) in &report.streams {
            out.push_str(&format!(
                "{:<20} {:<24} {:>12} {:>6} {:>12}\n",
                report.connection,
                stream,
                thousands(stats.rows),
                stats.files,
                human_bytes(stats.bytes)
            ));
        }
        out.push_str(&format!(
            "{:<20} {:<24} {:>12} {:>6} {:>12}  in {:.2?}, last commit #{}\n",
            report.connection,
            "(total)",
            thousands(report.streams.values().map(|s| s.rows).sum()),
            report.streams.values().map(|s| s.files).sum::<u64>(),
            human_bytes(report.streams.values().map(|s| s.bytes).sum()),
            report.duration,
            report
                .last_sequence
                .map_or_else(|| "-".to_owned(), |s| s.to_string()),
        ));
    }
    out
}

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}
