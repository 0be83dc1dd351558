//! Durability on a local lake: object_store's `LocalFileSystem` does not fsync, so a commit could
//! be acknowledged and then lost with the machine. Files and the folders that name them are
//! flushed before a commit counts.

use object_store::path::Path;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A lake folder on this machine, and the folders already known to be on disk.
#[derive(Debug)]
pub(super) struct LocalDisk {
    store: Arc<object_store::local::LocalFileSystem>,
    root: PathBuf,
    synced_folders: Mutex<HashSet<PathBuf>>,
}

impl LocalDisk {
    pub(super) fn new(store: Arc<object_store::local::LocalFileSystem>, root: PathBuf) -> Self {
        Self {
            store,
            root: root.canonicalize().unwrap_or(root),
            synced_folders: Mutex::new(HashSet::new()),
        }
    }

    /// The file system path of `location`.
    pub(super) fn path(&self, location: &Path) -> Option<PathBuf> {
        self.store.path_to_filesystem(location).ok()
    }

    /// Flushes the files at `locations` and their folder to disk; the folders above them up to
    /// the lake root once per process (they only change when created).
    pub(super) async fn sync(self: &Arc<Self>, locations: &[Path]) -> std::io::Result<()> {
        let files: Vec<PathBuf> = locations
            .iter()
            .map(|l| {
                self.path(l).ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("`{l}`"))
                })
            })
            .collect::<Result<_, _>>()?;
        let disk = self.clone();
        tokio::task::spawn_blocking(move || disk.sync_blocking(&files))
            .await
            .map_err(std::io::Error::other)?
    }

    fn sync_blocking(&self, files: &[PathBuf]) -> std::io::Result<()> {
        let mut folders = Vec::new();
        for file in files {
            std::fs::File::open(file)?.sync_all()?;
            if let Some(parent) = file.parent()
                && !folders.contains(&parent.to_path_buf())
            {
                folders.push(parent.to_path_buf());
            }
        }
        for folder in folders {
            sync_folder(&folder)?;
            let mut above = folder.parent();
            while let Some(dir) = above.filter(|d| d.starts_with(&self.root)) {
                let new = self
                    .synced_folders
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(dir.to_path_buf());
                if !new {
                    break;
                }
                sync_folder(dir)?;
                above = dir.parent();
            }
        }
        Ok(())
    }
}

fn sync_folder(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_and_new_folders_are_flushed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        let store = Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&dir).unwrap());
        let disk = Arc::new(LocalDisk::new(store.clone(), dir.clone()));
        let location = Path::from("conn/stream/a.parquet");
        object_store::ObjectStoreExt::put(store.as_ref(), &location, "x".into())
            .await
            .unwrap();
        disk.sync(std::slice::from_ref(&location)).await.unwrap();
        let synced = disk.synced_folders.lock().unwrap().clone();
        assert!(synced.contains(&dir.join("conn")));
        assert!(synced.contains(&dir));
        let missing = disk.sync(&[Path::from("conn/none.parquet")]).await;
        assert!(
            missing.is_err(),
            "a missing file is an error, not a silent success"
        );
    }
}
