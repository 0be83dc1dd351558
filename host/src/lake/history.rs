//! Reading a connection's history without reading all of it: snapshots every N commits, the tip
//! (newest commit) from the newest snapshot plus the commits after it, and ranges of commits.
//!
//! A snapshot `_snapshots/<sequence:020>.json` is commit `sequence` as a reader needs it to go on:
//! the whole state and every stream's schema, no files. It is written after that commit, by the
//! run that wrote it, create-only; a missing or unreadable snapshot only makes reading slower, as
//! the commits before it are read instead. Lakes written before snapshots have none and are read
//! from their first commit.

use super::Lake;
use super::commit::{
    self, Commit, CommitError, FORMAT, SNAPSHOTS, Stored, commits_dir, read_manifest,
};
use super::state_patch;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path;
use std::collections::BTreeSet;

/// Commits between snapshots, unless a session is told otherwise.
pub const SNAPSHOT_EVERY: u64 = 100;
/// Manifests read at once.
const READ_AHEAD: usize = 32;

/// The commit history of one connection (or the part of it after some sequence).
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The commits, oldest first, each with its whole state.
    pub commits: Vec<Commit>,
}

impl History {
    /// Reads every commit of `connection`.
    pub async fn read(lake: &Lake, connection: &str) -> Result<Self, CommitError> {
        Self::read_after(lake, connection, 0).await
    }

    /// Reads the commits of `connection` newer than `after`: from the newest snapshot at or
    /// before `after`, so their states can be rebuilt without reading older commits.
    pub async fn read_after(
        lake: &Lake,
        connection: &str,
        after: u64,
    ) -> Result<Self, CommitError> {
        let base = newest_snapshot(lake, connection, after).await?;
        let mut commits = read_from(lake, connection, base.as_ref()).await?;
        commits.retain(|c| c.sequence > after);
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

/// The newest commit of a connection, as a run needs it to go on: sequence, connector, state and
/// stream schemas (files left out).
#[derive(Debug, Clone)]
pub struct Tip {
    /// The newest commit, without files.
    pub commit: Commit,
    /// The sequence of the newest snapshot (0: none).
    pub snapshot: u64,
}

impl Tip {
    /// Reads the tip of `connection` from its newest snapshot and the commits after it; `None`
    /// when it has no commits.
    pub async fn open(lake: &Lake, connection: &str) -> Result<Option<Self>, CommitError> {
        let base = newest_snapshot(lake, connection, u64::MAX).await?;
        let snapshot = base.as_ref().map_or(0, |b| b.sequence);
        let mut commits = read_from(lake, connection, base.as_ref()).await?;
        let commit = match commits.pop() {
            Some(commit) => commit,
            None => match base {
                Some(base) => base,
                None => return Ok(None),
            },
        };
        Ok(Some(Self {
            commit: without_files(commit),
            snapshot,
        }))
    }
}

/// `commit` as a snapshot or tip holds it: no files, no full-copy marks.
pub(super) fn without_files(mut commit: Commit) -> Commit {
    for stream in commit.streams.values_mut() {
        stream.files.clear();
        stream.full_copy = None;
    }
    commit
}

/// Writes `commit` (whole state, files left out) as the snapshot of its sequence. Create-only: a
/// snapshot already there is the same commit, written by the same run before.
pub(super) async fn write_snapshot(
    lake: &Lake,
    connection: &str,
    commit: &Commit,
) -> Result<(), CommitError> {
    let path = snapshots_dir(lake, connection).join(format!("{:020}.json", commit.sequence));
    let mut snapshot = without_files(commit.clone());
    snapshot.format = FORMAT;
    let body = serde_json::to_vec(&snapshot).expect("snapshots serialize");
    super::commit::create_durable(lake, &path, body).await?;
    Ok(())
}

fn snapshots_dir(lake: &Lake, connection: &str) -> Path {
    lake.connection_root(connection).join(SNAPSHOTS)
}

/// The newest readable snapshot at or before `at_most`.
async fn newest_snapshot(
    lake: &Lake,
    connection: &str,
    at_most: u64,
) -> Result<Option<Commit>, CommitError> {
    if at_most == 0 {
        return Ok(None);
    }
    let dir = snapshots_dir(lake, connection);
    let store = lake.store();
    let mut sequences: Vec<u64> = store
        .list(Some(&dir))
        .try_collect::<Vec<_>>()
        .await
        .map_err(|source| CommitError::Store {
            path: dir.to_string(),
            source,
        })?
        .into_iter()
        .filter_map(|meta| {
            meta.location
                .filename()?
                .strip_suffix(".json")?
                .parse()
                .ok()
        })
        .filter(|&sequence| sequence <= at_most)
        .collect();
    sequences.sort_unstable();
    while let Some(sequence) = sequences.pop() {
        let path = dir.clone().join(format!("{sequence:020}.json"));
        match read_manifest(store.as_ref(), &path).await {
            Ok(stored) if stored.state_patch.is_none() && stored.commit.sequence == sequence => {
                return Ok(Some(stored.commit));
            }
            Ok(_) | Err(CommitError::Corrupt { .. }) => {
                tracing::warn!(connection, path = %path, "ignoring an unreadable snapshot");
            }
            Err(error) => return Err(error),
        }
    }
    Ok(None)
}

/// The commits after `base` (all when `None`), oldest first, with their states rebuilt.
async fn read_from(
    lake: &Lake,
    connection: &str,
    base: Option<&Commit>,
) -> Result<Vec<Commit>, CommitError> {
    let dir = commits_dir(lake, connection);
    let store = lake.store();
    let listing = match base {
        Some(base) => {
            let offset = commit::commit_path(lake, connection, base.sequence);
            store.list_with_offset(Some(&dir), &offset)
        }
        None => store.list(Some(&dir)),
    };
    let mut paths: Vec<Path> = listing
        .map_ok(|meta| meta.location)
        .try_collect()
        .await
        .map_err(|source| CommitError::Store {
            path: dir.to_string(),
            source,
        })?;
    paths.retain(|p| p.extension() == Some("json"));
    paths.sort();
    let stored: Vec<(Path, Stored)> = futures::stream::iter(paths)
        .map(|path| async move {
            let stored = read_manifest(store.as_ref(), &path).await?;
            Ok::<_, CommitError>((path, stored))
        })
        .buffered(READ_AHEAD)
        .try_collect()
        .await?;
    let mut previous = base.map(|b| (b.sequence, b.state.clone()));
    let mut commits = Vec::with_capacity(stored.len());
    for (
        path,
        Stored {
            mut commit,
            state_patch,
        },
    ) in stored
    {
        if let Some(patch) = state_patch {
            let unresolvable = |reason: String| CommitError::Unresolvable {
                path: path.to_string(),
                reason,
            };
            let old = match &previous {
                Some((sequence, Some(state))) if *sequence + 1 == commit.sequence => state,
                _ => {
                    return Err(unresolvable(format!(
                        "commit {} is missing or has no state",
                        commit.sequence.saturating_sub(1)
                    )));
                }
            };
            commit.state =
                Some(state_patch::apply(old, &patch).map_err(|e| unresolvable(e.to_string()))?);
        }
        previous = Some((commit.sequence, commit.state.clone()));
        commits.push(commit);
    }
    Ok(commits)
}
