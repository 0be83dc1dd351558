//! The terminal table of `inlet status`: one block per connection, one row per stream.

use super::{Health, StatusDocument};
use crate::lake::runs::{Outcome, Trigger};
use chrono::{DateTime, Utc};

/// An RFC 3339 time as `YYYY-MM-DD HH:MM:SS` UTC (as given when it does not parse).
fn short_time(time: &str) -> String {
    DateTime::parse_from_rfc3339(time)
        .map(|t| {
            t.with_timezone(&Utc)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| time.to_owned())
}

/// Cursor entries as `key=value`, shortened for a terminal.
fn cursor_text(field: Option<&str>, cursor: &serde_json::Map<String, serde_json::Value>) -> String {
    let entries: Vec<String> = cursor.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut text = match (field, entries.is_empty()) {
        (Some(field), true) => format!("{field}: -"),
        (Some(field), false) => format!("{field}: {}", entries.join(", ")),
        (None, true) => "-".to_owned(),
        (None, false) => entries.join(", "),
    };
    if text.chars().count() > 60 {
        text = text.chars().take(59).collect::<String>() + "…";
    }
    text
}

pub(super) fn render_text(document: &StatusDocument) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for c in &document.connections {
        let health = match c.health {
            Health::Ok => "ok",
            Health::Failed => "FAILED",
            Health::Overdue => "OVERDUE",
            Health::NeverRun => "never run",
            Health::Unreadable => "UNREADABLE",
        };
        let _ = writeln!(out, "{} ({}): {health}", c.connection, c.connector);
        if let Some(error) = &c.error {
            let _ = writeln!(out, "  error:       {error}");
        }
        if let Some(run) = &c.last_run {
            let outcome = match run.outcome {
                Outcome::Succeeded => "succeeded",
                Outcome::Failed => "failed",
            };
            let _ = writeln!(
                out,
                "  last run:    {outcome} at {} ({:.1}s, by `inlet {}`)",
                short_time(&run.started_at),
                run.duration_ms as f64 / 1000.0,
                match run.trigger {
                    Trigger::Schedule => "serve",
                    trigger => trigger.as_str(),
                }
            );
            if let Some(error) = &run.error {
                let _ = writeln!(out, "  error:       {error}");
            }
        }
        if let Some(commit) = &c.last_commit {
            let _ = writeln!(
                out,
                "  last commit: #{} at {}",
                commit.sequence,
                short_time(&commit.committed_at)
            );
        }
        match &c.last_load {
            Some(load) => {
                let jobs: usize = load.jobs.values().map(Vec::len).sum();
                let _ = writeln!(
                    out,
                    "  last load:   through #{} into {} at {} ({jobs} jobs)",
                    load.last_sequence,
                    load.destination,
                    short_time(&load.finished_at)
                );
            }
            None if c.last_commit.is_some() => {
                let _ = writeln!(out, "  last load:   none");
            }
            None => {}
        }
        if c.streams.is_empty() {
            continue;
        }
        let mut rows = vec![[
            "stream".to_owned(),
            "last commit".to_owned(),
            "rows".to_owned(),
            "last rows".to_owned(),
            "behind".to_owned(),
            "cursor".to_owned(),
        ]];
        for (name, s) in &c.streams {
            rows.push([
                name.clone(),
                s.last_commit
                    .as_ref()
                    .map_or("-".into(), |a| format!("#{}", a.sequence)),
                s.last_commit
                    .as_ref()
                    .map_or("-".into(), |a| a.rows.to_string()),
                s.last_rows.as_ref().map_or("-".into(), |a| {
                    format!(
                        "#{} {} ({})",
                        a.sequence,
                        short_time(&a.committed_at),
                        a.rows
                    )
                }),
                "unknown".to_owned(),
                cursor_text(s.cursor_field.as_deref(), &s.cursor),
            ]);
        }
        let widths: Vec<usize> = (0..6)
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        for row in rows {
            let mut line = String::from("  ");
            for (i, cell) in row.iter().enumerate() {
                let pad = widths[i] - cell.chars().count();
                if i == 2 {
                    line += &" ".repeat(pad);
                    line += cell;
                } else {
                    line += cell;
                    if i < 5 {
                        line += &" ".repeat(pad);
                    }
                }
                if i < 5 {
                    line += "  ";
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    if document.connections.is_empty() {
        out.push_str("no connections\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_cursors_are_shortened() {
        let mut cursor = serde_json::Map::new();
        cursor.insert("orders.updated_at".into(), serde_json::json!(1_700_000_000));
        assert_eq!(
            cursor_text(Some("updated_at"), &cursor),
            "updated_at: orders.updated_at=1700000000"
        );
        cursor.insert("orders.z".into(), serde_json::json!("x".repeat(100)));
        assert_eq!(cursor_text(None, &cursor).chars().count(), 60);
        assert_eq!(cursor_text(None, &serde_json::Map::new()), "-");
    }
}
