//! The newest commits read one by one, newest first, for what an operator asks of a long history
//! (which commit last added rows to a stream) without reading it all or rebuilding states.

use super::Lake;
use super::commit::{self, Commit, CommitError, read_manifest};
use futures::{StreamExt, TryStreamExt};
use std::collections::{BTreeMap, BTreeSet};

/// Commits read at most, newest first, looking for a stream's last rows.
pub const LOOK_BACK: u64 = 200;
/// Manifests read at once.
const READ_AHEAD: usize = 32;

/// Rows one commit added to one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addition {
    /// The commit.
    pub sequence: u64,
    /// When it was written (RFC 3339).
    pub committed_at: String,
    /// Rows it added to the stream.
    pub rows: u64,
}

/// What the newest commits say about each stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentRows {
    /// Rows the newest commit added, per stream it lists.
    pub newest: BTreeMap<String, u64>,
    /// Per stream, the newest commit that added rows to it; a stream is missing when none of the
    /// [`LOOK_BACK`] newest commits did.
    pub last_added: BTreeMap<String, Addition>,
}

/// Reads commit `tip` of `connection` and the ones before it, newest first, until each stream of
/// the tip found the newest commit that added rows to it, or [`LOOK_BACK`] commits were read.
/// Snapshots and tips carry no files, so the manifests themselves are read; usually only a few
/// (a stream that gets rows on every run finds them in the newest commit).
pub async fn recent_rows(
    lake: &Lake,
    connection: &str,
    tip: u64,
) -> Result<RecentRows, CommitError> {
    let mut recent = RecentRows::default();
    let mut wanted: Option<BTreeSet<String>> = None;
    let oldest = tip.saturating_sub(LOOK_BACK - 1).max(1);
    let mut next = tip;
    while next >= oldest && wanted.as_ref().is_none_or(|w| !w.is_empty()) {
        let from = next.saturating_sub(READ_AHEAD as u64 - 1).max(oldest);
        let sequences: Vec<u64> = (from..=next).rev().collect();
        let commits: Vec<Commit> = futures::stream::iter(sequences)
            .map(|sequence| async move {
                let path = commit::commit_path(lake, connection, sequence);
                Ok::<_, CommitError>(read_manifest(lake.store().as_ref(), &path).await?.commit)
            })
            .buffered(READ_AHEAD)
            .try_collect()
            .await?;
        for commit in commits {
            let wanted = wanted.get_or_insert_with(|| {
                recent.newest = commit
                    .streams
                    .iter()
                    .map(|(name, s)| (name.clone(), s.files.iter().map(|f| f.rows).sum()))
                    .collect();
                commit.streams.keys().cloned().collect()
            });
            for (name, stream) in &commit.streams {
                let rows: u64 = stream.files.iter().map(|f| f.rows).sum();
                if rows > 0 && wanted.remove(name) {
                    recent.last_added.insert(
                        name.clone(),
                        Addition {
                            sequence: commit.sequence,
                            committed_at: commit.committed_at.clone(),
                            rows,
                        },
                    );
                }
            }
        }
        if from <= 1 {
            break;
        }
        next = from - 1;
    }
    Ok(recent)
}
