//! The lake: Parquet files and commit manifests in an object store, one folder per connection.
//!
//! Layout under the lake URL:
//! ```text
//! <connection>/_commits/<sequence:020>.json    commit manifests, written create-only
//! <connection>/_snapshots/<sequence:020>.json  every 100th commit whole (state, schemas), no files
//! <connection>/<stream>/<run>-<part>.parquet   data files, referenced by exactly one commit
//! <connection>/_loads/<project>.<dataset>/...  load records of BigQuery loads (`crate::bigquery`)
//! <connection>/_runs/<started>-<run>.json      one record per sync attempt, the newest 200 kept
//! ```
//! A commit lists the files it adds, every stream's schema, and the connector state (whole, or as
//! a patch of the previous commit's). The newest commit is the connection's state; it is read from
//! the newest snapshot and the commits after it. Files no commit references are debris of a failed
//! run and are removed by the next run that commits; the `_` folders are never swept.

mod commit;
mod dictionary;
mod durable;
pub mod evolution;
#[cfg(test)]
mod evolution_props;
mod gcs;
mod history;
mod parts;
mod reader;
pub mod recent;
mod reset;
pub mod runs;
pub mod schema_history;
mod session;
#[cfg(test)]
mod session_tests;
mod state_patch;
mod sweep;
mod writer;

pub use commit::{
    Commit, CommitError, ConnectorInfo, DataFile, FORMAT, FullCopy, LOADS, StreamCommit,
    write_commit,
};
pub use evolution::{IncompatiblePolicy, SchemaChange};
pub use gcs::{CloudAccess, EMULATOR_ENV};
pub use history::{History, SNAPSHOT_EVERY, Tip};
pub use parts::PartSink;
pub use reader::{ReadError, read_committed};
pub use reset::{
    ResetError, StreamReset, remove_stream_keys, reset_state, reset_streams, stream_of_key,
};
pub use runs::{RunRecord, RunRecordError, Trigger, recent_runs, record_run};
pub use session::{
    FAULT_ENV, LakeSession, SessionEvent, SessionOptions, SessionSummary, StreamMeta, StreamStats,
};
pub use state_patch::{Change, PatchError, StatePatch};
pub use sweep::SweepError;
pub use writer::{Codec, WriterOptions};

use object_store::ObjectStore;
use object_store::path::Path;
use std::sync::Arc;
use url::Url;

/// Why a lake URL cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LakeUrlError {
    #[error(
        "`{url}` uses the scheme `{scheme}`, which Inlet does not support (use a folder path, `file://`, `gs://bucket/prefix` or `memory://`)"
    )]
    UnsupportedScheme { url: String, scheme: String },
    #[error("`{url}` is not a valid URL or path: {reason}")]
    Invalid { url: String, reason: String },
    #[error("the lake folder `{path}` cannot be created: {reason}")]
    Folder { path: String, reason: String },
    #[error("the lake `{url}` cannot be reached: {reason}")]
    Unreachable { url: String, reason: String },
}

/// An opened lake: an object store and the prefix the lake lives under.
#[derive(Clone)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    url: String,
    /// Set when the lake is a folder on this machine (fsync, upload temp files).
    local: Option<Arc<durable::LocalDisk>>,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake").field("url", &self.url).finish()
    }
}

impl Lake {
    /// Opens the lake at `location`: a folder path (created when missing), `file://`, `gs://`
    /// (application default credentials) or `memory://` (a process-local store for tests).
    pub fn open(location: &str) -> Result<Self, LakeUrlError> {
        Self::open_with(location, &CloudAccess::default())
    }

    /// Opens the lake at `location`, reaching cloud stores as `access` says.
    pub fn open_with(location: &str, access: &CloudAccess) -> Result<Self, LakeUrlError> {
        let url = parse_location(location)?;
        match url.scheme() {
            "gs" => gcs::open(location, &url, access),
            "file" => {
                let path = url.to_file_path().map_err(|_| LakeUrlError::Invalid {
                    url: location.to_owned(),
                    reason: "not a local path".into(),
                })?;
                std::fs::create_dir_all(&path).map_err(|e| LakeUrlError::Folder {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                let store =
                    object_store::local::LocalFileSystem::new_with_prefix(&path).map_err(|e| {
                        LakeUrlError::Invalid {
                            url: location.to_owned(),
                            reason: e.to_string(),
                        }
                    })?;
                let store = Arc::new(store);
                Ok(Self {
                    store: store.clone(),
                    prefix: Path::default(),
                    url: url.to_string(),
                    local: Some(Arc::new(durable::LocalDisk::new(store, path))),
                })
            }
            "memory" => Ok(Self::in_memory()),
            scheme => Err(LakeUrlError::UnsupportedScheme {
                url: location.to_owned(),
                scheme: scheme.to_owned(),
            }),
        }
    }

    /// A lake in process memory.
    pub fn in_memory() -> Self {
        Self {
            store: Arc::new(object_store::memory::InMemory::new()),
            prefix: Path::default(),
            url: "memory://".into(),
            local: None,
        }
    }

    /// A lake on any object store, under `prefix`.
    pub fn with_store(store: Arc<dyn ObjectStore>, prefix: &str, url: &str) -> Self {
        Self {
            store,
            prefix: Path::from(prefix),
            url: url.to_owned(),
            local: None,
        }
    }

    /// Whether the lake lives in process memory (lost when the process ends).
    pub fn is_in_memory(&self) -> bool {
        self.url.starts_with("memory:")
    }

    /// Flushes the objects at `locations` to disk when the lake is a local folder (object_store's
    /// local store does not); nothing to do for cloud stores, which answer once data is durable.
    pub async fn make_durable(&self, locations: &[Path]) -> std::io::Result<()> {
        match &self.local {
            Some(disk) if !locations.is_empty() => disk.sync(locations).await,
            _ => Ok(()),
        }
    }

    /// The file system path of `location` when the lake is a local folder.
    pub(crate) fn local_path(&self, location: &Path) -> Option<std::path::PathBuf> {
        self.local.as_ref()?.path(location)
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The URL the lake was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `gs://<bucket>` when the lake is on Google Cloud Storage (so BigQuery can load its files);
    /// file paths in commits are relative to it.
    pub fn gcs_bucket_uri(&self) -> Option<String> {
        let url = Url::parse(&self.url).ok()?;
        (url.scheme() == "gs").then(|| format!("gs://{}", url.host_str().unwrap_or_default()))
    }

    /// Checks that the store answers (bucket exists, credentials work) with one listing, so a
    /// wrong bucket fails before any connector runs.
    pub async fn verify(&self) -> Result<(), LakeUrlError> {
        use futures::StreamExt;
        let mut listing = self.store.list(Some(&self.prefix));
        match listing.next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(error)) => {
                // A listing's 404 arrives as a generic error carrying GCS's `NoSuchBucket` code.
                let missing_bucket = matches!(error, object_store::Error::NotFound { .. })
                    || error.to_string().contains("NoSuchBucket");
                let hint = match &error {
                    _ if missing_bucket => {
                        " (does the bucket exist? create it with `gcloud storage buckets create gs://<bucket> --location=<region>`)"
                    }
                    object_store::Error::Unauthenticated { .. }
                    | object_store::Error::PermissionDenied { .. } => {
                        " (the credentials need roles/storage.objectAdmin on the bucket)"
                    }
                    _ => "",
                };
                Err(LakeUrlError::Unreachable {
                    url: self.url.clone(),
                    reason: format!("{error}{hint}"),
                })
            }
        }
    }

    /// The folder of one connection.
    pub fn connection_root(&self, connection: &str) -> Path {
        self.prefix.clone().join(connection)
    }

    /// The names of the connections that have a folder in this lake, sorted.
    pub async fn connections(&self) -> Result<Vec<String>, object_store::Error> {
        let listing = self.store.list_with_delimiter(Some(&self.prefix)).await?;
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }
}

/// Validates a lake location without opening it (for config checks).
pub fn check_location(location: &str) -> Result<(), LakeUrlError> {
    let url = parse_location(location)?;
    match url.scheme() {
        "file" | "memory" | "gs" => Ok(()),
        scheme => Err(LakeUrlError::UnsupportedScheme {
            url: location.to_owned(),
            scheme: scheme.to_owned(),
        }),
    }
}

fn parse_location(location: &str) -> Result<Url, LakeUrlError> {
    if location.is_empty() {
        return Err(LakeUrlError::Invalid {
            url: location.to_owned(),
            reason: "it is empty".into(),
        });
    }
    let looks_like_url = location.contains("://") || location.starts_with("memory:");
    if looks_like_url {
        return Url::parse(location).map_err(|e| LakeUrlError::Invalid {
            url: location.to_owned(),
            reason: e.to_string(),
        });
    }
    let path = std::path::absolute(location).map_err(|e| LakeUrlError::Invalid {
        url: location.to_owned(),
        reason: e.to_string(),
    })?;
    Url::from_directory_path(&path).map_err(|_| LakeUrlError::Invalid {
        url: location.to_owned(),
        reason: "not an absolute path".into(),
    })
}
