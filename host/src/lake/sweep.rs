//! Removing debris: data files no commit references, written by runs that failed or lost a commit
//! race, and upload temp files of interrupted writes to a local lake.
//!
//! Only a run that has just committed sweeps, and only what the store dated before that run's
//! first commit (the store's clock, never this machine's). A file dated earlier was written by a
//! run that opened before that commit, so its next commit can only take a sequence this run took:
//! it can never be committed. The commits are listed afresh for the sweep, so files another runner
//! committed meanwhile are seen as referenced.

use super::Lake;
use super::commit::{self, CommitError};
use super::history::History;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use std::collections::BTreeSet;

/// Why debris could not be removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error("object store error at `{path}`: {source}")]
    Store {
        path: String,
        source: object_store::Error,
    },
    #[error("removing the upload temp file `{path}`: {source}")]
    TempFile {
        path: String,
        source: std::io::Error,
    },
}

/// Deletes what no commit of `connection` references and the store dated before `own_commit`
/// (the path of the sweeping run's first commit). Answers how many objects were removed.
pub async fn sweep(lake: &Lake, connection: &str, own_commit: &Path) -> Result<usize, SweepError> {
    let store = lake.store();
    let store_error = |path: &Path| {
        let path = path.to_string();
        move |source: object_store::Error| SweepError::Store { path, source }
    };
    let root = lake.connection_root(connection);
    let objects: Vec<_> = store
        .list(Some(&root))
        .try_collect()
        .await
        .map_err(store_error(&root))?;
    // Dated by the same listing as the files (a GCS HEAD answers whole seconds only).
    let before = match objects.iter().find(|o| &o.location == own_commit) {
        Some(own) => own.last_modified,
        None => {
            store
                .head(own_commit)
                .await
                .map_err(store_error(own_commit))?
                .last_modified
        }
    };
    // Listed after the objects: a commit that lands in between is seen.
    let referenced = History::read(lake, connection).await?.referenced_files();
    let mut removed = 0;
    for object in objects {
        if commit::is_metadata_path(&object.location)
            || referenced.contains(object.location.as_ref())
            || object.last_modified >= before
        {
            continue;
        }
        match store.delete(&object.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => removed += 1,
            Err(source) => {
                return Err(SweepError::Store {
                    path: object.location.to_string(),
                    source,
                });
            }
        }
    }
    if let Some(dir) = lake.local_path(&root) {
        removed += tokio::task::spawn_blocking(move || remove_temp_files(&dir, before))
            .await
            .expect("the temp file sweep does not panic")?;
    }
    Ok(removed)
}

/// Whether `name` is a temp file of object_store's local multipart upload (`<name>#<digits>`),
/// which its listings hide.
fn is_upload_temp(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(_, suffix)| !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes upload temp files under `dir` last written before `before` (the file system's mtime is
/// the local store's clock).
fn remove_temp_files(dir: &std::path::Path, before: DateTime<Utc>) -> Result<usize, SweepError> {
    let mut removed = 0;
    let mut pending = vec![dir.to_path_buf()];
    let mut seen = BTreeSet::new();
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                if seen.insert(path.clone()) {
                    pending.push(path);
                }
                continue;
            }
            let name = entry.file_name();
            let old = meta
                .modified()
                .is_ok_and(|m| DateTime::<Utc>::from(m) < before);
            if old && is_upload_temp(&name.to_string_lossy()) {
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(SweepError::TempFile {
                            path: path.display().to_string(),
                            source,
                        });
                    }
                }
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_temp_files_are_told_from_data_files() {
        assert!(is_upload_temp("run-00000.parquet#1"));
        assert!(is_upload_temp("run-00000.parquet#12"));
        assert!(!is_upload_temp("run-00000.parquet"));
        assert!(!is_upload_temp("odd#name.parquet"));
        assert!(!is_upload_temp("trailing#"));
    }
}
