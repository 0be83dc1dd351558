//! `inlet status`: per connection and stream, the last commit, the cursor, the last BigQuery load
//! and the last run, read from the tip and the newest records so it stays fast on long histories.

use crate::bigquery::{LastLoad, last_load};
use crate::config::LoadedConfig;
use crate::lake::recent::{self, Addition};
use crate::lake::runs::Outcome;
use crate::lake::{Lake, RunRecord, Tip, recent_runs, stream_of_key};
use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

mod text;

/// The format of the `--json` document.
const STATUS_FORMAT: u32 = 1;
/// Exit code when a connection's last run failed or it is overdue.
pub const EXIT_UNHEALTHY: u8 = 2;
/// Run records read per connection to find the last success.
const RUNS_READ: usize = 10;

/// The `--json` document.
#[derive(Debug, Serialize)]
struct StatusDocument {
    format: u32,
    generated_at: String,
    lake: String,
    /// Whether every connection is healthy (the exit code is 0).
    healthy: bool,
    connections: Vec<ConnectionStatus>,
}

#[derive(Debug, Serialize)]
struct ConnectionStatus {
    connection: String,
    connector: String,
    /// `ok`, `failed` (the last run failed), `overdue`, `never_run`, or `unreadable`.
    health: Health,
    /// Why the status could not be read (`unreadable`), else `null`.
    error: Option<String>,
    last_commit: Option<CommitRef>,
    last_run: Option<RunRecord>,
    /// When the last run that succeeded started (or, for lakes without run records, the last
    /// commit's time).
    last_success: Option<String>,
    overdue: bool,
    last_load: Option<LastLoad>,
    streams: BTreeMap<String, StreamStatus>,
    /// Connector state entries no stream claims (`generation`, ...).
    other_state: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Health {
    Ok,
    Failed,
    Overdue,
    NeverRun,
    /// Its commits or records could not be read (`error` says why).
    Unreadable,
}

impl ConnectionStatus {
    fn unreadable(connection: &str, connector: &str, error: &anyhow::Error) -> Self {
        Self {
            connection: connection.to_owned(),
            connector: connector.to_owned(),
            health: Health::Unreadable,
            error: Some(crate::cli::report::render(error)),
            last_commit: None,
            last_run: None,
            last_success: None,
            overdue: false,
            last_load: None,
            streams: BTreeMap::new(),
            other_state: serde_json::Map::new(),
        }
    }
}

#[derive(Debug, Serialize)]
struct CommitRef {
    sequence: u64,
    committed_at: String,
    run_id: String,
}

#[derive(Debug, Serialize)]
struct StreamStatus {
    /// The connection's newest commit, with the rows it added to this stream.
    last_commit: Option<RowsAt>,
    /// The newest commit that added rows to this stream (`null` when none of the newest
    /// `recent::LOOK_BACK` commits did).
    last_rows: Option<RowsAt>,
    cursor_field: Option<String>,
    /// The connector state entries of this stream (key `<stream>` or `<stream>.*`).
    cursor: serde_json::Map<String, serde_json::Value>,
    /// Rows in the source not read yet: connectors cannot tell (the WIT contract has no such
    /// call), so always `null`.
    rows_behind: Option<u64>,
}

#[derive(Debug, Serialize)]
struct RowsAt {
    sequence: u64,
    committed_at: String,
    rows: u64,
}

impl From<&Addition> for RowsAt {
    fn from(a: &Addition) -> Self {
        Self {
            sequence: a.sequence,
            committed_at: a.committed_at.clone(),
            rows: a.rows,
        }
    }
}

/// Whether a connection expected to run every `expected_interval` is overdue at `now`: its last
/// success is older than twice the interval. Without an interval (no schedule) or a success
/// (never run) it is not.
pub fn overdue(
    last_success: Option<DateTime<Utc>>,
    expected_interval: Option<Duration>,
    now: DateTime<Utc>,
) -> bool {
    let (Some(last), Some(interval)) = (last_success, expected_interval) else {
        return false;
    };
    let Ok(allowed) = chrono::Duration::from_std(interval.saturating_mul(2)) else {
        return false;
    };
    now.signed_duration_since(last) > allowed
}

/// Runs `inlet status`: prints the status of each connection of `loaded` and answers 0 when all
/// are healthy, [`EXIT_UNHEALTHY`] otherwise.
pub async fn status(loaded: &LoadedConfig, lake: &Lake, json: bool) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let mut connections = Vec::new();
    for (name, config) in &loaded.config.connections {
        let interval = loaded.schedules.get(name).map(|s| s.typical_interval());
        // One unreadable connection (a corrupt commit...) does not hide the others.
        let status = connection_status(lake, name, &config.connector, interval, now)
            .await
            .with_context(|| format!("reading the status of connection `{name}`"))
            .unwrap_or_else(|error| ConnectionStatus::unreadable(name, &config.connector, &error));
        connections.push(status);
    }
    let unreadable = connections.iter().any(|c| c.health == Health::Unreadable);
    let healthy = connections
        .iter()
        .all(|c| matches!(c.health, Health::Ok | Health::NeverRun));
    let document = StatusDocument {
        format: STATUS_FORMAT,
        generated_at: now.to_rfc3339(),
        lake: lake.url().to_owned(),
        healthy,
        connections,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        print!("{}", text::render_text(&document));
    }
    Ok(if unreadable {
        ExitCode::FAILURE
    } else if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_UNHEALTHY)
    })
}

async fn connection_status(
    lake: &Lake,
    connection: &str,
    connector: &str,
    expected_interval: Option<Duration>,
    now: DateTime<Utc>,
) -> anyhow::Result<ConnectionStatus> {
    // The tip is the newest snapshot plus the commits after it: a few reads, not the history.
    let tip = Tip::open(lake, connection).await?.map(|t| t.commit);
    let runs = recent_runs(lake, connection, RUNS_READ).await?;
    let last_load = last_load(lake, connection).await?;
    // The tip has no files; rows need the manifests, read newest first only as far as needed.
    let recent = match &tip {
        Some(tip) => recent::recent_rows(lake, connection, tip.sequence).await?,
        None => Default::default(),
    };
    let last_run = runs.first().cloned();
    let last_success = runs
        .iter()
        .find(|r| r.outcome == Outcome::Succeeded)
        .map(|r| r.started_at.clone())
        .or_else(|| {
            let tip = tip.as_ref().filter(|_| runs.is_empty())?;
            Some(tip.committed_at.clone())
        });
    let success_time = last_success
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    // Only a connection with a `schedule` has an expected interval.
    let is_overdue = overdue(success_time, expected_interval, now);
    let health = match &last_run {
        Some(run) if run.outcome == Outcome::Failed => Health::Failed,
        _ if is_overdue => Health::Overdue,
        None if tip.is_none() => Health::NeverRun,
        _ => Health::Ok,
    };
    let mut streams = BTreeMap::new();
    let mut other_state = serde_json::Map::new();
    if let Some(tip) = &tip {
        let names: Vec<&str> = tip.streams.keys().map(String::as_str).collect();
        let mut cursors: BTreeMap<&str, serde_json::Map<String, serde_json::Value>> =
            BTreeMap::new();
        if let Some(serde_json::Value::Object(state)) = &tip.state {
            for (key, value) in state {
                // The SDK's convention, shared with `inlet state reset --stream`.
                match stream_of_key(key, names.iter().copied()) {
                    Some(stream) => {
                        cursors
                            .entry(stream)
                            .or_default()
                            .insert(key.clone(), value.clone());
                    }
                    None => {
                        other_state.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        for (name, stream) in &tip.streams {
            let last_commit = RowsAt {
                sequence: tip.sequence,
                committed_at: tip.committed_at.clone(),
                rows: recent.newest.get(name).copied().unwrap_or(0),
            };
            streams.insert(
                name.clone(),
                StreamStatus {
                    last_commit: Some(last_commit),
                    last_rows: recent.last_added.get(name).map(RowsAt::from),
                    cursor_field: stream.cursor_field.clone(),
                    cursor: cursors.remove(name.as_str()).unwrap_or_default(),
                    rows_behind: None,
                },
            );
        }
    }
    Ok(ConnectionStatus {
        connection: connection.to_owned(),
        connector: connector.to_owned(),
        health,
        error: None,
        last_commit: tip.as_ref().map(|t| CommitRef {
            sequence: t.sequence,
            committed_at: t.committed_at.clone(),
            run_id: t.run_id.clone(),
        }),
        last_run,
        last_success,
        overdue: is_overdue,
        last_load,
        streams,
        other_state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overdue_after_twice_the_interval() {
        let now = Utc::now();
        let hour = Duration::from_secs(3600);
        let ago = |minutes| Some(now - chrono::Duration::minutes(minutes));
        assert!(!overdue(ago(119), Some(hour), now));
        assert!(overdue(ago(121), Some(hour), now));
        assert!(
            !overdue(ago(10_000), None, now),
            "no schedule, never overdue"
        );
        assert!(!overdue(None, Some(hour), now), "never run is not overdue");
    }
}
