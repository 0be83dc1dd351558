//! Commit manifests: what a commit records, and the create-only protocol that orders commits.

use super::Lake;
use arrow_schema::Schema;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The manifest format this host writes.
pub const FORMAT: u32 = 1;
const COMMITS: &str = "_commits";
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
}

/// The commit history of one connection.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// All commits, oldest first.
    pub commits: Vec<Commit>,
}

impl History {
    /// Reads every commit of `connection`.
    pub async fn read(lake: &Lake, connection: &str) -> Result<Self, CommitError> {
        let dir = commits_dir(lake, connection);
        let store = lake.store();
        let mut paths: Vec<Path> = store
            .list(Some(&dir))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|source| CommitError::Store {
                path: dir.to_string(),
                source,
            })?;
        paths.retain(|p| p.extension() == Some("json"));
        paths.sort();
        let mut commits = Vec::with_capacity(paths.len());
        for path in paths {
            commits.push(read_commit(store.as_ref(), &path).await?);
        }
        commits.sort_by_key(|c| c.sequence);
        Ok(Self { commits })
    }

    /// The newest commit.
    pub fn latest(&self) -> Option<&Commit> {
        self.commits.last()
    }

    /// Paths of every file any commit references.
    pub fn referenced_files(&self) -> BTreeSet<String> {
        self.commits
            .iter()
            .flat_map(|c| c.files().map(|f| f.path.clone()))
            .collect()
    }
}

async fn read_commit(store: &dyn ObjectStore, path: &Path) -> Result<Commit, CommitError> {
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
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| CommitError::Corrupt {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
    let format = value.get("format").and_then(|f| f.as_u64()).unwrap_or(0) as u32;
    if format > FORMAT {
        return Err(CommitError::TooNew {
            path: path.to_string(),
            format,
        });
    }
    serde_json::from_value(value).map_err(|e| CommitError::Corrupt {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

/// Writes `commit` under its sequence number, failing if that number is taken.
pub async fn write_commit(
    lake: &Lake,
    connection: &str,
    commit: &Commit,
) -> Result<(), CommitError> {
    let path = commits_dir(lake, connection).join(format!("{:020}.json", commit.sequence));
    let body = serde_json::to_vec_pretty(commit).expect("commits serialize");
    let options = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match lake
        .store()
        .put_opts(&path, PutPayload::from(Bytes::from(body)), options)
        .await
    {
        Ok(_) => Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => Err(CommitError::Conflict {
            connection: connection.to_owned(),
            sequence: commit.sequence,
        }),
        Err(source) => Err(CommitError::Store {
            path: path.to_string(),
            source,
        }),
    }
}

fn commits_dir(lake: &Lake, connection: &str) -> Path {
    lake.connection_root(connection).join(COMMITS)
}

/// Whether `path` (inside a connection folder) is a commit manifest or a load record rather than
/// data.
pub fn is_metadata_path(path: &Path) -> bool {
    path.parts()
        .any(|p| p.as_ref() == COMMITS || p.as_ref() == LOADS)
}
