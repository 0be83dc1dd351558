//! `inlet history`: how the schemas of a connection's streams changed, commit by commit, with the
//! commit and run each change arrived in.

use crate::lake::schema_history::{SchemaHistoryEntry, schema_changes};
use crate::lake::{History, Lake};
use anyhow::Context;
use serde::Serialize;

/// The `--json` document.
#[derive(Debug, Serialize)]
struct HistoryDocument<'a> {
    format: u32,
    connection: &'a str,
    lake: &'a str,
    /// The newest commit (the history covers 1..=last_sequence).
    last_sequence: u64,
    changes: Vec<SchemaHistoryEntry>,
}

/// Prints the schema changes of `connection`; `Ok(false)` when it has no commits.
pub async fn print_history(lake: &Lake, connection: &str, json: bool) -> anyhow::Result<bool> {
    // Every commit's schemas are needed: this reads the whole history (fine for this command).
    let history = History::read(lake, connection)
        .await
        .with_context(|| format!("reading the history of connection `{connection}`"))?;
    let Some(last) = history.latest() else {
        return Ok(false);
    };
    let document = HistoryDocument {
        format: 1,
        connection,
        lake: lake.url(),
        last_sequence: last.sequence,
        changes: schema_changes(&history.commits),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(true);
    }
    println!(
        "{connection}: {} schema changes in commits 1..={}",
        document.changes.len(),
        document.last_sequence
    );
    let width = document
        .changes
        .iter()
        .map(|c| c.stream.chars().count())
        .max()
        .unwrap_or(0);
    for entry in &document.changes {
        println!(
            "#{:<5} {}  {:<width$}  {}  (run {})",
            entry.sequence,
            short_time(&entry.committed_at),
            entry.stream,
            entry.change,
            entry.run_id
        );
    }
    Ok(true)
}

fn short_time(time: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(time)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| time.to_owned())
}
