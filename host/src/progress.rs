//! What the operator sees while syncs run: a redrawn status line on a terminal, plain lines
//! otherwise, and a summary table at the end.

use crate::lake::SessionEvent;
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

    fn line(&self, inner: &mut Inner, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty && inner.drawn {
            let _ = write!(err, "\r\x1b[2K");
            inner.drawn = false;
        }
        let _ = writeln!(err, "{text}");
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
                let level = match level {
                    LogLevel::Debug => return,
                    LogLevel::Info => "info",
                    LogLevel::Warn => "warn",
                    LogLevel::Error => "error",
                };
                self.line(&mut inner, &format!("[{connection}] {level}: {message}"));
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
        let text = match event {
            SessionEvent::SchemaChanged { stream, change } => {
                format!("[{connection}] {stream}: schema change: {change}")
            }
            SessionEvent::Committed {
                sequence,
                rows,
                files,
            } => {
                format!(
                    "[{connection}] commit #{sequence}: {} rows in {files} files",
                    thousands(rows)
                )
            }
            SessionEvent::Swept { files } => {
                format!("[{connection}] removed {files} leftover files of failed runs")
            }
        };
        self.line(&mut inner, &text);
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
