//! An object store that holds the first listing of commit manifests until the test opens a gate:
//! how a test puts a loader's planning at an exact point between another loader's steps.

use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{Notify, Semaphore};

/// Where a loader waits, and the test's signal to go on.
#[derive(Debug)]
pub struct Gate {
    used: AtomicBool,
    arrived: Notify,
    open: Semaphore,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            used: AtomicBool::new(false),
            arrived: Notify::new(),
            open: Semaphore::new(0),
        }
    }
}

impl Gate {
    /// Waits until a loader is held at the gate.
    pub async fn arrived(&self) {
        self.arrived.notified().await;
    }

    /// Lets the held loader go on.
    pub fn open(&self) {
        self.open.add_permits(1);
    }
}

/// `inner`, with the first listing of a `_commits` folder held at `gate`.
#[derive(Debug)]
pub struct GatedStore {
    pub inner: Arc<dyn ObjectStore>,
    pub gate: Arc<Gate>,
}

impl std::fmt::Display for GatedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gated({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for GatedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let commits = prefix.is_some_and(|p| p.parts().any(|part| part.as_ref() == "_commits"));
        if !commits || self.gate.used.swap(true, Ordering::SeqCst) {
            return self.inner.list(prefix);
        }
        let (inner, gate, prefix) = (self.inner.clone(), self.gate.clone(), prefix.cloned());
        futures::stream::once(async move {
            gate.arrived.notify_one();
            gate.open
                .acquire()
                .await
                .expect("the gate is open")
                .forget();
            inner.list(prefix.as_ref())
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
