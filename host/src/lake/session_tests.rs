//! Sessions under concurrency and faults: sweeps racing other runners, a store whose clock is far
//! from ours, upload temp files, retried commit puts, snapshots and lakes written before them.

use super::commit::{self, Commit, CommitError, ConnectorInfo};
use super::history::{History, Tip};
use super::{Lake, LakeSession, SessionOptions, StreamMeta, WriterOptions, read_committed};
use crate::runtime::BatchSink;
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use chrono::{Duration, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

fn info() -> ConnectorInfo {
    ConnectorInfo {
        name: "test".into(),
        version: "0".into(),
        digest: "0".into(),
        settings: None,
    }
}

async fn open_with(lake: &Lake, options: SessionOptions) -> LakeSession {
    let streams = BTreeMap::from([("items".to_owned(), StreamMeta::default())]);
    LakeSession::open(
        lake.clone(),
        "conn",
        info(),
        streams,
        options,
        Arc::new(|_| {}),
    )
    .await
    .unwrap()
}

/// A session of connection `conn` that may write stream `items`.
pub(super) async fn open(lake: &Lake) -> LakeSession {
    open_with(lake, SessionOptions::default()).await
}

fn batch(ids: Vec<i64>) -> RecordBatch {
    RecordBatch::try_from_iter(vec![("id", Arc::new(Int64Array::from(ids)) as ArrayRef)]).unwrap()
}

async fn exists(lake: &Lake, path: &str) -> bool {
    lake.store().head(&Path::from(path)).await.is_ok()
}

async fn ids(lake: &Lake) -> Vec<i64> {
    let batches = read_committed(lake, "conn", "items").await.unwrap();
    batches
        .iter()
        .flat_map(|b| {
            let column = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            column.values().to_vec()
        })
        .collect()
}

/// Another runner's commit, written with the lake primitives: one data file and its manifest.
async fn foreign_commit(lake: &Lake, sequence: u64, file: &str) {
    lake.store()
        .put(&Path::from(file), "not parquet".into())
        .await
        .unwrap();
    let mut commit = manifest(sequence, "other-runner", json!({ "by": "other" }));
    commit.streams.get_mut("items").unwrap().files = vec![super::DataFile {
        path: file.into(),
        rows: 1,
        bytes: 11,
    }];
    commit::write_commit(lake, "conn", &commit, None)
        .await
        .unwrap();
}

fn manifest(sequence: u64, run_id: &str, state: serde_json::Value) -> Commit {
    let schema = batch(vec![]).schema().as_ref().clone();
    Commit {
        format: commit::FORMAT,
        sequence,
        run_id: run_id.into(),
        committed_at: Utc::now().to_rfc3339(),
        connector: info(),
        state: Some(state),
        streams: BTreeMap::from([(
            "items".to_owned(),
            super::StreamCommit {
                schema,
                primary_key: vec![],
                cursor_field: None,
                files: vec![],
                full_copy: None,
                reread: false,
            },
        )]),
    }
}

#[tokio::test]
async fn a_run_that_commits_nothing_does_not_sweep_another_runners_files() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let idle = open(&lake).await;
    foreign_commit(&lake, 1, "conn/items/other-00000.parquet").await;
    let summary = idle.finish().await.unwrap();
    assert_eq!(summary.swept, 0);
    assert!(exists(&lake, "conn/items/other-00000.parquet").await);
}

#[tokio::test]
async fn a_sweep_keeps_what_another_runner_committed_meanwhile_and_removes_debris() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    lake.store()
        .put(&Path::from("conn/items/dead-00000.parquet"), "x".into())
        .await
        .unwrap();
    let mut first = open(&lake).await;
    first.emit("items", batch(vec![1])).await.unwrap();
    first.checkpoint("{\"n\": 1}".into()).await.unwrap();
    // A second runner opens after that commit and commits behind the first one's back.
    let mut second = open(&lake).await;
    second.emit("items", batch(vec![2])).await.unwrap();
    second.checkpoint("{\"n\": 2}".into()).await.unwrap();
    let summary = first.finish().await.unwrap();
    assert_eq!(summary.swept, 1, "only the debris");
    assert!(!exists(&lake, "conn/items/dead-00000.parquet").await);
    assert_eq!(ids(&lake).await, vec![1, 2], "both runners' rows are there");
}

#[tokio::test]
async fn upload_temp_files_of_interrupted_writes_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let folder = dir.path().join("conn/items");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("dead-00000.parquet#1"), "partial").unwrap();
    let mut session = open(&lake).await;
    session.emit("items", batch(vec![1])).await.unwrap();
    session.checkpoint("{}".into()).await.unwrap();
    // Written after this run's first commit: possibly a live upload, kept.
    std::fs::write(folder.join("live-00000.parquet#2"), "partial").unwrap();
    let summary = session.finish().await.unwrap();
    assert_eq!(summary.swept, 1);
    assert!(!folder.join("dead-00000.parquet#1").exists());
    assert!(folder.join("live-00000.parquet#2").exists());
}

#[tokio::test]
async fn a_retried_put_of_our_own_commit_succeeds_and_a_foreign_one_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    for lake in [
        Lake::in_memory(),
        Lake::open(dir.path().to_str().unwrap()).unwrap(),
    ] {
        let ours = manifest(1, "run-a", json!({}));
        commit::write_commit(&lake, "conn", &ours, None)
            .await
            .unwrap();
        commit::write_commit(&lake, "conn", &ours, None)
            .await
            .expect("the same run's manifest is already there: committed");
        let theirs = manifest(1, "run-b", json!({}));
        let error = commit::write_commit(&lake, "conn", &theirs, None)
            .await
            .unwrap_err();
        assert!(
            matches!(error, CommitError::Conflict { sequence: 1, .. }),
            "{error}"
        );
    }
}

/// A store whose clock is `skew` away from this machine's.
#[derive(Debug)]
struct SkewedStore {
    inner: object_store::memory::InMemory,
    skew: Duration,
}

impl std::fmt::Display for SkewedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SkewedStore({})", self.skew)
    }
}

#[async_trait::async_trait]
impl ObjectStore for SkewedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let mut result = self.inner.get_opts(location, options).await?;
        result.meta.last_modified += self.skew;
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let skew = self.skew;
        self.inner
            .list(prefix)
            .map(move |meta| {
                meta.map(|mut m| {
                    m.last_modified += skew;
                    m
                })
            })
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[tokio::test]
async fn the_sweep_dates_files_by_the_stores_clock() {
    for years in [-10, 10] {
        let store = SkewedStore {
            inner: object_store::memory::InMemory::new(),
            skew: Duration::days(365 * years),
        };
        let lake = Lake::with_store(Arc::new(store), "", "skewed://");
        lake.store()
            .put(&Path::from("conn/items/dead-00000.parquet"), "x".into())
            .await
            .unwrap();
        let mut first = open(&lake).await;
        first.emit("items", batch(vec![1])).await.unwrap();
        first.checkpoint("{}".into()).await.unwrap();
        // A live runner, opened after that commit, has uploaded a file it has not committed yet.
        let tiny_files = SessionOptions {
            writer: WriterOptions {
                file_bytes: 1,
                ..WriterOptions::default()
            },
            ..SessionOptions::default()
        };
        let mut live = open_with(&lake, tiny_files).await;
        live.emit("items", batch(vec![2])).await.unwrap();
        let summary = first.finish().await.unwrap();
        assert_eq!(summary.swept, 1, "store {years} years off: only the debris");
        live.checkpoint("{}".into()).await.unwrap();
        assert_eq!(ids(&lake).await, vec![1, 2], "store {years} years off");
    }
}

/// A state shaped like heroku-logplex's: a window of recent frame ids.
fn window_state(newest: u64) -> String {
    let ids: Vec<String> = (newest.saturating_sub(500)..newest)
        .map(|i| format!("frame-{i:08}"))
        .collect();
    json!({ "recent_frame_ids": ids }).to_string()
}

#[tokio::test]
async fn a_connection_opens_from_its_snapshot_like_reading_everything() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let options = SessionOptions {
        snapshot_every: Some(10),
        ..SessionOptions::default()
    };
    let mut session = open_with(&lake, options.clone()).await;
    for n in 1..=35 {
        session.emit("items", batch(vec![n as i64])).await.unwrap();
        session.checkpoint(window_state(n * 7)).await.unwrap();
    }
    drop(session);
    let snapshots: Vec<_> = (1..=35)
        .filter(|s| {
            dir.path()
                .join(format!("conn/_snapshots/{s:020}.json"))
                .exists()
        })
        .collect();
    assert_eq!(snapshots, vec![10, 20, 30]);
    let manifest =
        std::fs::read_to_string(dir.path().join(format!("conn/_commits/{:020}.json", 33))).unwrap();
    assert!(manifest.contains("\"state_patch\""), "{manifest}");
    assert!(
        manifest.len() < 2048,
        "a patch, not the window: {} bytes",
        manifest.len()
    );

    let all = History::read(&lake, "conn").await.unwrap();
    assert_eq!(all.commits.len(), 35);
    for (n, commit) in (1..).zip(&all.commits) {
        let expected: serde_json::Value = serde_json::from_str(&window_state(n * 7)).unwrap();
        assert_eq!(
            commit.state.as_ref(),
            Some(&expected),
            "state of commit {n}"
        );
    }
    let tip = Tip::open(&lake, "conn").await.unwrap().unwrap();
    let newest = all.latest().unwrap();
    assert_eq!(tip.snapshot, 30);
    assert_eq!(tip.commit.sequence, 35);
    assert_eq!(tip.commit.state, newest.state);
    assert_eq!(
        tip.commit.streams["items"].schema,
        newest.streams["items"].schema
    );

    // Across the snapshot boundary: the range after 25 starts from snapshot 20.
    let range = History::read_after(&lake, "conn", 25).await.unwrap();
    assert_eq!(range.commits.first().map(|c| c.sequence), Some(26));
    assert_eq!(range.commits[..], all.commits[25..]);

    // A new run goes on from the tip.
    let mut next = open_with(&lake, options).await;
    assert_eq!(next.state_json().unwrap(), window_state(35 * 7));
    next.emit("items", batch(vec![36])).await.unwrap();
    next.checkpoint(window_state(36 * 7)).await.unwrap();
    assert_eq!(ids(&lake).await, (1..=36).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_lake_written_before_snapshots_opens_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("conn/_commits");
    std::fs::create_dir_all(&folder).unwrap();
    for sequence in 1..=3u64 {
        let mut commit =
            serde_json::to_value(manifest(sequence, "old", json!({ "cursor": sequence }))).unwrap();
        commit["format"] = json!(1);
        std::fs::write(
            folder.join(format!("{sequence:020}.json")),
            serde_json::to_vec_pretty(&commit).unwrap(),
        )
        .unwrap();
    }
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let tip = Tip::open(&lake, "conn").await.unwrap().unwrap();
    assert_eq!((tip.commit.sequence, tip.snapshot), (3, 0));
    assert_eq!(tip.commit.state, Some(json!({ "cursor": 3 })));
    let options = SessionOptions {
        snapshot_every: Some(4),
        ..SessionOptions::default()
    };
    let mut session = open_with(&lake, options).await;
    assert_eq!(session.state_json().unwrap(), "{\"cursor\":3}");
    session.checkpoint("{\"cursor\": 4}".into()).await.unwrap();
    assert!(
        dir.path()
            .join(format!("conn/_snapshots/{:020}.json", 4))
            .exists()
    );
    let all = History::read(&lake, "conn").await.unwrap();
    let states: Vec<_> = all
        .commits
        .iter()
        .map(|c| c.state.clone().unwrap())
        .collect();
    assert_eq!(
        states,
        (1..=4).map(|c| json!({ "cursor": c })).collect::<Vec<_>>()
    );
}
