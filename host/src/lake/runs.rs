//! Run records: one JSON file per sync attempt under `<connection>/_runs/`, so that a run that
//! failed (even before committing anything) leaves a record an operator can find (`inlet status`).
//!
//! A record is named `<started_at>-<run_id>.json` (`started_at` as `%Y%m%dT%H%M%S%.3fZ`, UTC), so
//! names sort by start time and the newest records are found with one listing. It is written
//! create-only, once the run ended; the newest [`KEEP_RUNS`] records of a connection are kept.

use super::Lake;
use super::commit::{self, CommitError, read_manifest};
use crate::sync::SyncReport;
use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Folder of run records; never swept.
pub const RUNS: &str = "_runs";
/// Records kept per connection; older ones are deleted after a new one is written.
pub const KEEP_RUNS: usize = 200;
/// The record format this host writes.
pub const RUN_FORMAT: u32 = 1;
/// How times appear in record names and run ids (sortable, UTC, milliseconds).
const NAME_TIME: &str = "%Y%m%dT%H%M%S%.3fZ";

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// `inlet run`.
    Run,
    /// `inlet sync`.
    Sync,
    /// A schedule of `inlet serve`.
    Schedule,
}

impl Trigger {
    /// The name records use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Sync => "sync",
            Self::Schedule => "schedule",
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every selected stream was read and committed.
    Succeeded,
    /// The run stopped with an error; commits it wrote before (checkpoints) are kept.
    Failed,
}

/// Rows one stream got from a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStream {
    /// Rows committed.
    pub rows: u64,
}

/// The record of one sync attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Record format.
    pub format: u32,
    /// The run id: the one its commits carry when it committed, a fresh one of the same shape
    /// otherwise.
    pub run_id: String,
    /// The connection.
    pub connection: String,
    /// What started it.
    pub trigger: Trigger,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// When it ended (RFC 3339, UTC).
    pub finished_at: String,
    /// `finished_at - started_at`, in milliseconds.
    pub duration_ms: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// The error as the command line printed it (`None` on success): secret values redacted.
    #[serde(default)]
    pub error: Option<String>,
    /// The first commit the run wrote, if any.
    #[serde(default)]
    pub first_sequence: Option<u64>,
    /// The last commit the run wrote, if any.
    #[serde(default)]
    pub last_sequence: Option<u64>,
    /// Rows committed per stream.
    #[serde(default)]
    pub streams: BTreeMap<String, RunStream>,
}

/// Why a run record could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunRecordError {
    #[error("object store error at `{path}`: {source}")]
    Store {
        path: String,
        source: object_store::Error,
    },
    #[error(transparent)]
    Commit(#[from] CommitError),
}

/// The text of an error as an operator reads it.
pub trait ErrorText {
    /// The message, causes included, with nothing secret in it.
    fn error_text(&self) -> String;
}

impl ErrorText for anyhow::Error {
    fn error_text(&self) -> String {
        crate::cli::report::render(self)
    }
}

impl ErrorText for crate::sync::SyncError {
    fn error_text(&self) -> String {
        crate::cli::report::render_error(self)
    }
}

impl ErrorText for String {
    fn error_text(&self) -> String {
        self.clone()
    }
}

impl ErrorText for &str {
    fn error_text(&self) -> String {
        (*self).to_owned()
    }
}

/// Records the end of a sync of `connection` that `trigger` started at `started_at`, and keeps the
/// newest [`KEEP_RUNS`] records. The run's commits are found from the tip (see [`run_commits`]).
pub async fn record_run<E: ErrorText>(
    lake: &Lake,
    connection: &str,
    trigger: Trigger,
    started_at: DateTime<Utc>,
    outcome: &Result<SyncReport, E>,
) -> Result<RunRecord, RunRecordError> {
    let finished_at = Utc::now();
    // A record matters most when things are broken: commits that cannot be read leave it
    // without commits or rows rather than unwritten.
    let committed = run_commits(lake, connection, started_at)
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(connection, "the run record names no commits: {error}");
            None
        });
    let streams = match (outcome, &committed) {
        (Ok(report), _) => report
            .streams
            .iter()
            .map(|(name, stats)| (name.clone(), RunStream { rows: stats.rows }))
            .collect(),
        (Err(_), Some(run)) => rows_of(lake, connection, run.first, run.last)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(connection, "the run record counts no rows: {error}");
                BTreeMap::new()
            }),
        (Err(_), None) => BTreeMap::new(),
    };
    let record = RunRecord {
        format: RUN_FORMAT,
        run_id: committed.as_ref().map_or_else(
            || {
                format!(
                    "{}-{}",
                    started_at.format(NAME_TIME),
                    crate::random::random_hex(4)
                )
            },
            |run| run.run_id.clone(),
        ),
        connection: connection.to_owned(),
        trigger,
        started_at: started_at.to_rfc3339(),
        finished_at: finished_at.to_rfc3339(),
        duration_ms: (finished_at - started_at).num_milliseconds().max(0) as u64,
        outcome: match outcome {
            Ok(_) => Outcome::Succeeded,
            Err(_) => Outcome::Failed,
        },
        // As the command line prints it: with every secret value this process read redacted.
        error: outcome
            .as_ref()
            .err()
            .map(|e| crate::secrets::redact(&e.error_text())),
        first_sequence: committed.as_ref().map(|r| r.first),
        last_sequence: committed.as_ref().map(|r| r.last),
        streams,
    };
    write_record(lake, connection, started_at, &record).await?;
    Ok(record)
}

/// Writes `record` create-only, then deletes all but the newest [`KEEP_RUNS`] records (failing
/// to delete only warns: the records are small).
pub async fn write_record(
    lake: &Lake,
    connection: &str,
    started_at: DateTime<Utc>,
    record: &RunRecord,
) -> Result<Path, RunRecordError> {
    let path = runs_dir(lake, connection).join(format!(
        "{}-{}.json",
        started_at.format(NAME_TIME),
        record.run_id
    ));
    let body = serde_json::to_vec_pretty(record).expect("run records serialize");
    commit::create_durable(lake, &path, body).await?;
    let names = record_names(lake, connection).await?;
    for old in names.iter().rev().skip(KEEP_RUNS) {
        let old = runs_dir(lake, connection).join(old.as_str());
        match lake.store().delete(&old).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => {
                tracing::warn!(connection, path = %old, "old run record not deleted: {error}")
            }
        }
    }
    Ok(path)
}

/// The newest `n` run records of `connection`, newest first. Reads one listing and the newest
/// records only; a record that cannot be read is skipped with a warning.
pub async fn recent_runs(
    lake: &Lake,
    connection: &str,
    n: usize,
) -> Result<Vec<RunRecord>, RunRecordError> {
    let names = record_names(lake, connection).await?;
    let mut records = Vec::new();
    for name in names.iter().rev() {
        if records.len() >= n {
            break;
        }
        let path = runs_dir(lake, connection).join(name.as_str());
        let bytes = match lake.store().get(&path).await {
            Ok(got) => got.bytes().await,
            Err(error) => Err(error),
        };
        let bytes = match bytes {
            Ok(bytes) => bytes,
            // Deleted by a newer run's pruning between the listing and the read.
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(source) => {
                return Err(RunRecordError::Store {
                    path: path.to_string(),
                    source,
                });
            }
        };
        match serde_json::from_slice::<RunRecord>(&bytes) {
            Ok(record) => records.push(record),
            Err(error) => {
                tracing::warn!(connection, path = %path, "skipping an unreadable run record: {error}")
            }
        }
    }
    Ok(records)
}

/// The commits a run wrote: its id and first and last sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCommits {
    /// The run id the commits carry.
    pub run_id: String,
    /// First commit.
    pub first: u64,
    /// Last commit.
    pub last: u64,
}

/// The commits of the run of `connection` that started at `started_at`, if it wrote any: the
/// newest commit is the run's when its run id (which starts with the time the run opened the lake)
/// is not older than `started_at`. A run's commits are consecutive (each takes the next sequence,
/// and losing one to another runner ends the run), so its first commit is found by bisection:
/// a few manifests read however long the history. (Two runners of one connection at once are
/// not told apart: a run that failed may be credited with the other's commits.)
pub async fn run_commits(
    lake: &Lake,
    connection: &str,
    started_at: DateTime<Utc>,
) -> Result<Option<RunCommits>, RunRecordError> {
    // The tip (newest snapshot + the commits after it) rather than a listing of every commit.
    let Some(tip) = super::Tip::open(lake, connection).await? else {
        return Ok(None);
    };
    let (last, run_id) = (tip.commit.sequence, tip.commit.run_id);
    let opened = run_id
        .get(..NAME_TIME_LEN)
        .and_then(|t| NaiveDateTime::parse_from_str(t, NAME_TIME).ok());
    if opened.is_none_or(|t| t.and_utc() < started_at.trunc_subsecs(3)) {
        return Ok(None);
    }
    // Invariant: commit `hi` is the run's; commits below `lo` are not.
    let (mut lo, mut hi) = (1, last);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if commit_run_id(lake, connection, mid).await?.as_deref() == Some(run_id.as_str()) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(Some(RunCommits {
        run_id,
        first: hi,
        last,
    }))
}

/// Length of a time formatted with `NAME_TIME`.
const NAME_TIME_LEN: usize = "20260101T000000.000Z".len();

/// Rows per stream in commits `first..=last`.
async fn rows_of(
    lake: &Lake,
    connection: &str,
    first: u64,
    last: u64,
) -> Result<BTreeMap<String, RunStream>, RunRecordError> {
    let mut streams: BTreeMap<String, RunStream> = BTreeMap::new();
    for sequence in first..=last {
        let path = commit::commit_path(lake, connection, sequence);
        let stored = read_manifest(lake.store().as_ref(), &path).await?;
        for (name, stream) in &stored.commit.streams {
            streams.entry(name.clone()).or_default().rows +=
                stream.files.iter().map(|f| f.rows).sum::<u64>();
        }
    }
    Ok(streams)
}

/// The run id of commit `sequence`; `None` when it is missing.
async fn commit_run_id(
    lake: &Lake,
    connection: &str,
    sequence: u64,
) -> Result<Option<String>, RunRecordError> {
    let path = commit::commit_path(lake, connection, sequence);
    match read_manifest(lake.store().as_ref(), &path).await {
        Ok(stored) => Ok(Some(stored.commit.run_id)),
        Err(CommitError::Store {
            source: object_store::Error::NotFound { .. },
            ..
        }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The names of the run records of `connection`, oldest first.
async fn record_names(lake: &Lake, connection: &str) -> Result<Vec<String>, RunRecordError> {
    let mut names = list_names(lake, &runs_dir(lake, connection)).await?;
    names.retain(|n| n.ends_with(".json"));
    names.sort();
    Ok(names)
}

async fn list_names(lake: &Lake, dir: &Path) -> Result<Vec<String>, RunRecordError> {
    lake.store()
        .list(Some(dir))
        .map_ok(|meta| meta.location.filename().unwrap_or_default().to_owned())
        .try_collect()
        .await
        .map_err(|source| RunRecordError::Store {
            path: dir.to_string(),
            source,
        })
}

fn runs_dir(lake: &Lake, connection: &str) -> Path {
    lake.connection_root(connection).join(RUNS)
}

#[cfg(test)]
#[path = "runs_tests.rs"]
mod tests;
