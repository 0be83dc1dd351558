//! Commit manifests: what a commit records, how it is stored, and the create-only protocol that
//! orders commits.

use super::Lake;
use super::state_patch::{self, StatePatch};
use arrow_schema::Schema;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The manifest format this host writes. Format 2 may store the state as a patch
/// (`state_patch`) of the previous commit's state, and adds snapshots.
pub const FORMAT: u32 = 2;
const COMMITS: &str = "_commits";
/// Folder of snapshots (see `super::history`); never swept.
pub(super) const SNAPSHOTS: &str = "_snapshots";
const STATE_PATCH: &str = "state_patch";
/// Folder of load records (see `crate::bigquery`); like commits, never swept.
pub const LOADS: &str = "_loads";

/// One Parquet file of a commit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DataFile {
    /// Path inside the store.
    pub path: String,
    /// Rows in the file.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
}

/// What a commit records about one stream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamCommit {
    /// The stream's schema as of this commit (every file of the stream can be read with it).
    pub schema: Schema,
    /// Primary key columns.
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// Incremental cursor column.
    #[serde(default)]
    pub cursor_field: Option<String>,
    /// Files this commit adds.
    #[serde(default)]
    pub files: Vec<DataFile>,
    /// Set when the files are part of a full copy of the stream (a full-refresh read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_copy: Option<FullCopy>,
    /// Set by `inlet state reset --stream`: the next run reads the stream from an empty state as
    /// one full copy; the commit that completes the copy clears it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reread: bool,
}

/// Marks files that belong to one full copy of a stream: every commit of the run that read it in
/// full carries the mark, and the run's last commit says the copy is complete. A loader that
/// replaces a table uses only complete copies, so a failed run never empties or halves a table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FullCopy {
    /// The run that read the copy.
    pub run_id: String,
    /// Whether this commit ends the copy (the run finished).
    pub complete: bool,
    /// The copy was asked for by a stream reset: a loader replaces the table with it whatever
    /// the stream's write mode.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
}

/// Which connector produced a commit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConnectorInfo {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// SHA-256 of the component.
    pub digest: String,
    /// A digest of the settings it ran with, secrets left out (`sha256:<16 hex>`), telling one
    /// source from another. Absent in commits written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<String>,
}

/// A commit manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Commit {
    /// Manifest format version.
    pub format: u32,
    /// Position in the connection's history, from 1.
    pub sequence: u64,
    /// The run that wrote it.
    pub run_id: String,
    /// When it was written (RFC 3339).
    pub committed_at: String,
    /// The connector.
    pub connector: ConnectorInfo,
    /// The connector state after this commit; `None` after a reset.
    pub state: Option<serde_json::Value>,
    /// Every stream known so far, with the files this commit adds.
    pub streams: BTreeMap<String, StreamCommit>,
}

impl Commit {
    /// Files added by this commit.
    pub fn files(&self) -> impl Iterator<Item = &DataFile> {
        self.streams.values().flat_map(|s| s.files.iter())
    }
}

/// Why a commit could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    #[error(
        "sequence {sequence} of connection `{connection}` was committed by another run first; this run's data was not committed (is another runner syncing the same connection?)"
    )]
    Conflict { connection: String, sequence: u64 },
    #[error("commit `{path}` is not a valid manifest: {reason}")]
    Corrupt { path: String, reason: String },
    #[error(
        "commit `{path}` was written by a newer Inlet (format {format}, this one reads {FORMAT})"
    )]
    TooNew { path: String, format: u32 },
    #[error("object store error at `{path}`: {source}")]
    Store {
        path: String,
        source: object_store::Error,
    },
    #[error("commit `{path}` changes a state that cannot be rebuilt: {reason}")]
    Unresolvable { path: String, reason: String },
    #[error("`{path}` could not be flushed to disk (fsync): {source}")]
    Durability {
        path: String,
        source: std::io::Error,
    },
}

/// A manifest as stored: the commit, and when its state is stored as a change to the previous
/// commit's state, that change (`state` is then `None` until the history resolves it).
#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub commit: Commit,
    pub state_patch: Option<StatePatch>,
}

/// Reads the manifest at `path`, leaving a state patch unresolved.
pub(super) async fn read_manifest(
    store: &dyn ObjectStore,
    path: &Path,
) -> Result<Stored, CommitError> {
    let bytes = store
        .get(path)
        .await
        .map_err(|source| CommitError::Store {
            path: path.to_string(),
            source,
        })?
        .bytes()
        .await
        .map_err(|source| CommitError::Store {
            path: path.to_string(),
            source,
        })?;
    decode(path, &bytes)
}

fn decode(path: &Path, bytes: &[u8]) -> Result<Stored, CommitError> {
    let corrupt = |e: serde_json::Error| CommitError::Corrupt {
        path: path.to_string(),
        reason: e.to_string(),
    };
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(corrupt)?;
    let format = value.get("format").and_then(|f| f.as_u64()).unwrap_or(0) as u32;
    if format > FORMAT {
        return Err(CommitError::TooNew {
            path: path.to_string(),
            format,
        });
    }
    let state_patch = match value.as_object_mut().and_then(|o| o.remove(STATE_PATCH)) {
        Some(patch) => Some(serde_json::from_value(patch).map_err(corrupt)?),
        None => None,
    };
    let commit = serde_json::from_value(value).map_err(corrupt)?;
    Ok(Stored {
        commit,
        state_patch,
    })
}

/// The manifest of `commit`: its state whole, or as a change to `previous_state` when that is
/// much smaller.
fn encode(commit: &Commit, previous_state: Option<&serde_json::Value>) -> Vec<u8> {
    let mut value = serde_json::to_value(commit).expect("commits serialize");
    let patch = match (previous_state, &commit.state) {
        (Some(old), Some(new)) => state_patch::diff(old, new),
        _ => None,
    };
    if let (Some(patch), Some(object)) = (patch, value.as_object_mut()) {
        object.remove("state");
        object.insert(
            STATE_PATCH.to_owned(),
            serde_json::to_value(patch).expect("patches serialize"),
        );
    }
    serde_json::to_vec(&value).expect("commits serialize")
}

/// Writes `commit` under its sequence number, failing if another run took that number. Its state
/// is stored as a change to `previous_state` (the state of commit `sequence - 1`) when that is
/// smaller. On a local lake the manifest is on disk (fsync) when this returns.
///
/// A create-only put whose answer was lost and that was sent again finds the manifest already
/// there: when that manifest is this run's own, the commit succeeded.
pub async fn write_commit(
    lake: &Lake,
    connection: &str,
    commit: &Commit,
    previous_state: Option<&serde_json::Value>,
) -> Result<Path, CommitError> {
    let path = commit_path(lake, connection, commit.sequence);
    let body = encode(commit, previous_state);
    if !create_durable(lake, &path, body).await? {
        let existing = read_manifest(lake.store().as_ref(), &path).await?.commit;
        if existing.run_id != commit.run_id || existing.sequence != commit.sequence {
            return Err(CommitError::Conflict {
                connection: connection.to_owned(),
                sequence: commit.sequence,
            });
        }
        tracing::info!(
            connection,
            sequence = commit.sequence,
            "commit already written by this run (a retried put)"
        );
    }
    Ok(path)
}

/// Writes `body` at `path` create-only and makes the object durable (fsync on a local lake).
/// Returns `false` when an object was already there (it is made durable too: a write whose answer
/// was lost may have left it unsynced).
pub(super) async fn create_durable(
    lake: &Lake,
    path: &Path,
    body: Vec<u8>,
) -> Result<bool, CommitError> {
    let options = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    let created = match lake
        .store()
        .put_opts(path, PutPayload::from(Bytes::from(body)), options)
        .await
    {
        Ok(_) => true,
        Err(object_store::Error::AlreadyExists { .. }) => false,
        Err(source) => {
            return Err(CommitError::Store {
                path: path.to_string(),
                source,
            });
        }
    };
    lake.make_durable(std::slice::from_ref(path))
        .await
        .map_err(|source| CommitError::Durability {
            path: path.to_string(),
            source,
        })?;
    Ok(created)
}

/// Where commit `sequence` of `connection` lives.
pub(super) fn commit_path(lake: &Lake, connection: &str, sequence: u64) -> Path {
    commits_dir(lake, connection).join(format!("{sequence:020}.json"))
}

pub(super) fn commits_dir(lake: &Lake, connection: &str) -> Path {
    lake.connection_root(connection).join(COMMITS)
}

/// Whether `path` (inside a connection folder) is a commit manifest, a snapshot, a load record or
/// a run record rather than data.
pub fn is_metadata_path(path: &Path) -> bool {
    path.parts()
        .any(|p| [COMMITS, SNAPSHOTS, LOADS, super::runs::RUNS].contains(&p.as_ref()))
}
