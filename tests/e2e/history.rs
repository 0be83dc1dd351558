//! Exactly-once claims on Google Cloud Storage (fake-gcs-server behind the harness's write
//! proxy): a retried create-only put of our own manifest is a success and a foreign one a
//! conflict, a sweep racing another runner keeps what it committed, and a connection opens from
//! its snapshot with what reading every commit gives.

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use inlet_host::credentials::GoogleAuth;
use inlet_host::lake::{
    CloudAccess, Commit, CommitError, ConnectorInfo, FORMAT, History, Lake, LakeSession,
    SessionOptions, StreamMeta, Tip, read_committed, write_commit,
};
use inlet_host::runtime::BatchSink;
use inlet_tests::gcp::GcpServices;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

fn gcs_lake(bucket: &str) -> Lake {
    let services = GcpServices::get();
    let bucket = services.bucket(bucket);
    let access = CloudAccess {
        google: Some(Arc::new(GoogleAuth::anonymous())),
        gcs_endpoint: Some(services.gcs_endpoint.clone()),
    };
    Lake::open_with(&format!("gs://{bucket}/raw"), &access).unwrap()
}

fn info() -> ConnectorInfo {
    ConnectorInfo {
        name: "test".into(),
        version: "0".into(),
        digest: "0".into(),
        settings: None,
    }
}

async fn open(lake: &Lake, options: SessionOptions) -> LakeSession {
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

fn batch(ids: Vec<i64>) -> RecordBatch {
    RecordBatch::try_from_iter(vec![("id", Arc::new(Int64Array::from(ids)) as ArrayRef)]).unwrap()
}

async fn ids(lake: &Lake) -> Vec<i64> {
    read_committed(lake, "conn", "items")
        .await
        .unwrap()
        .iter()
        .flat_map(|b| {
            let column = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            column.values().to_vec()
        })
        .collect()
}

fn manifest(run_id: &str) -> Commit {
    Commit {
        format: FORMAT,
        sequence: 1,
        run_id: run_id.into(),
        committed_at: "2025-01-01T00:00:00+00:00".into(),
        connector: info(),
        state: Some(json!({ "run": run_id })),
        streams: BTreeMap::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gcs_a_retried_put_of_our_own_commit_succeeds_and_a_foreign_one_conflicts() {
    let lake = gcs_lake("history-retry");
    let ours = manifest("run-a");
    write_commit(&lake, "conn", &ours, None).await.unwrap();
    // The put is sent again, as after a lost answer: the bucket answers 412 (already exists).
    write_commit(&lake, "conn", &ours, None)
        .await
        .expect("our own manifest is there: committed");
    let error = write_commit(&lake, "conn", &manifest("run-b"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, CommitError::Conflict { sequence: 1, .. }),
        "{error}"
    );
    let history = History::read(&lake, "conn").await.unwrap();
    assert_eq!(history.commits, vec![ours]);
}

#[tokio::test(flavor = "multi_thread")]
async fn gcs_a_sweep_racing_another_runner_keeps_its_committed_files() {
    let lake = gcs_lake("history-race");
    // An idle run opens; another runner commits meanwhile; the idle run ends without committing.
    let idle = open(&lake, SessionOptions::default()).await;
    let mut other = open(&lake, SessionOptions::default()).await;
    other.emit("items", batch(vec![1])).await.unwrap();
    other.checkpoint("{\"n\": 1}".into()).await.unwrap();
    assert_eq!(idle.finish().await.unwrap().swept, 0);

    // Two runs interleaved: the first commits, a second opens after it and commits too, then the
    // first sweeps.
    let mut first = open(&lake, SessionOptions::default()).await;
    first.emit("items", batch(vec![2])).await.unwrap();
    first.checkpoint("{\"n\": 2}".into()).await.unwrap();
    let mut second = open(&lake, SessionOptions::default()).await;
    second.emit("items", batch(vec![3])).await.unwrap();
    second.checkpoint("{\"n\": 3}".into()).await.unwrap();
    assert_eq!(first.finish().await.unwrap().swept, 0);
    assert_eq!(second.finish().await.unwrap().swept, 0);
    assert_eq!(ids(&lake).await, vec![1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread")]
async fn gcs_a_connection_opens_from_its_snapshot() {
    let lake = gcs_lake("history-snapshot");
    let options = SessionOptions {
        snapshot_every: Some(5),
        ..SessionOptions::default()
    };
    let mut session = open(&lake, options.clone()).await;
    for n in 1..=12i64 {
        session.emit("items", batch(vec![n])).await.unwrap();
        let window: Vec<String> = (0..n * 20).map(|i| format!("frame-{i}")).collect();
        session
            .checkpoint(json!({ "recent_frame_ids": window }).to_string())
            .await
            .unwrap();
    }
    drop(session);
    let all = History::read(&lake, "conn").await.unwrap();
    let tip = Tip::open(&lake, "conn").await.unwrap().unwrap();
    assert_eq!((tip.snapshot, tip.commit.sequence), (10, 12));
    let newest = all.latest().unwrap();
    assert_eq!(tip.commit.state, newest.state);
    assert_eq!(
        tip.commit.streams["items"].schema,
        newest.streams["items"].schema
    );
    let range = History::read_after(&lake, "conn", 7).await.unwrap();
    assert_eq!(range.commits[..], all.commits[7..]);
    let mut next = open(&lake, options).await;
    next.emit("items", batch(vec![13])).await.unwrap();
    next.checkpoint("{}".into()).await.unwrap();
    assert_eq!(ids(&lake).await, (1..=13).collect::<Vec<_>>());
}
