//! Exactly once under concurrency and faults, against fake-gcs-server and local-bigquery: two
//! loaders at once with a commit landing between their plans, replace with incremental commits
//! after the full copy, loads split into jobs within a (lowered) URI limit, and a job that fails
//! for good until the cause is fixed.

use crate::gated_store::{Gate, GatedStore};
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use futures::TryStreamExt;
use inlet_host::bigquery::{
    Client, Destination, LoadError, LoadLimits, LoadReport, StreamOptions, load_connection,
};
use inlet_host::credentials::GoogleAuth;
use inlet_host::lake::{
    CloudAccess, ConnectorInfo, History, Lake, LakeSession, SessionOptions, StreamMeta,
};
use inlet_host::runtime::BatchSink;
use inlet_tests::gcp::{GcpServices, PROJECT};
use object_store::{ObjectStoreExt, PutPayload};
use std::collections::BTreeMap;
use std::sync::Arc;

fn lake(bucket: &str) -> Lake {
    let access = CloudAccess {
        google: Some(Arc::new(GoogleAuth::anonymous())),
        gcs_endpoint: Some(GcpServices::get().gcs_endpoint.clone()),
    };
    Lake::open_with(&format!("gs://{bucket}/raw"), &access).unwrap()
}

fn client() -> Client {
    let endpoint = &GcpServices::get().bigquery_endpoint;
    Client::new(endpoint, PROJECT, Arc::new(GoogleAuth::anonymous()))
}

fn destination(dataset: &str, streams: BTreeMap<String, StreamOptions>) -> Destination {
    Destination {
        location: "US".into(),
        dataset: dataset.into(),
        table_template: "{stream}".into(),
        labels: BTreeMap::new(),
        streams,
        limits: LoadLimits::default(),
    }
}

/// One run writing `stream`: each slice of `(id, version)` rows is one commit. The commits of a
/// full-refresh run form one complete copy.
async fn run(
    lake: &Lake,
    connection: &str,
    stream: &str,
    commits: &[&[(i64, i64)]],
    meta: StreamMeta,
) {
    let info = ConnectorInfo {
        name: "test".into(),
        version: "0".into(),
        digest: "0".into(),
        settings: None,
    };
    let streams = BTreeMap::from([(stream.to_owned(), meta)]);
    let mut session = LakeSession::open(
        lake.clone(),
        connection,
        info,
        streams,
        SessionOptions::default(),
        Arc::new(|_| {}),
    )
    .await
    .unwrap();
    for rows in commits {
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let versions: Vec<i64> = rows.iter().map(|r| r.1).collect();
        let batch = RecordBatch::try_from_iter(vec![
            ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
            ("version", Arc::new(Int64Array::from(versions)) as ArrayRef),
        ])
        .unwrap();
        session.emit(stream, batch).await.unwrap();
        let state = format!("{{\"through\": {}}}", rows.last().unwrap().0);
        session.checkpoint(state).await.unwrap();
    }
    session.finish().await.unwrap();
}

fn rows(ids: std::ops::RangeInclusive<i64>) -> Vec<(i64, i64)> {
    ids.map(|id| (id, 1)).collect()
}

fn incremental() -> StreamMeta {
    StreamMeta::default()
}

fn full_refresh() -> StreamMeta {
    StreamMeta {
        full_refresh: true,
        ..StreamMeta::default()
    }
}

/// `(id, version)` of every row of a table, in id order: a row loaded twice shows twice.
fn table(dataset: &str, table: &str) -> Vec<(i64, i64)> {
    let sql = format!("SELECT id, version FROM `{PROJECT}.{dataset}.{table}` ORDER BY id, version");
    let parse = |v: &Option<String>| v.as_deref().unwrap().parse::<i64>().unwrap();
    GcpServices::get()
        .query(&sql)
        .iter()
        .map(|row| (parse(&row[0]), parse(&row[1])))
        .collect()
}

/// Loads until nothing is left, answering every report.
async fn load_all(lake: &Lake, connection: &str, destination: &Destination) -> Vec<LoadReport> {
    let mut reports = Vec::new();
    while let Some(report) = load_connection(lake, connection, &client(), destination)
        .await
        .unwrap()
    {
        reports.push(report);
    }
    reports
}

#[tokio::test(flavor = "multi_thread")]
async fn two_loaders_at_once_load_every_row_exactly_once() {
    let bucket = GcpServices::get().bucket("race-lake");
    let lake = lake(&bucket);
    run(
        &lake,
        "race",
        "events",
        &[&rows(1..=10), &rows(11..=20)],
        incremental(),
    )
    .await;
    let destination = destination("race", BTreeMap::new());

    // Loader B lists the load records (none yet) and is held before it reads the history.
    let gate = Arc::new(Gate::default());
    let store = GatedStore {
        inner: lake.store().clone(),
        gate: gate.clone(),
    };
    let gated = Lake::with_store(Arc::new(store), "raw", &format!("gs://{bucket}/raw"));
    let b = tokio::spawn({
        let destination = destination.clone();
        async move { load_connection(&gated, "race", &client(), &destination).await }
    });
    gate.arrived().await;
    // Loader A plans commits 1..=2 and loads them.
    let a = tokio::spawn({
        let (lake, destination) = (lake.clone(), destination.clone());
        async move { load_connection(&lake, "race", &client(), &destination).await }
    });
    let loads = lake.connection_root("race").join("_loads");
    loop {
        let listed: Vec<_> = lake.store().list(Some(&loads)).try_collect().await.unwrap();
        if listed
            .iter()
            .any(|m| m.location.as_ref().ends_with(".plan.json"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // A commit lands between the plans; B then reads commits 1..=3 and plans from commit 1 too.
    run(&lake, "race", "events", &[&rows(21..=30)], incremental()).await;
    gate.open();
    let a = a.await.unwrap().unwrap().unwrap();
    let b = b.await.unwrap().unwrap().unwrap();
    assert_eq!(
        (a.first_sequence, a.last_sequence, a.resumed),
        (1, 2, false)
    );
    assert!(
        (b.first_sequence, b.last_sequence, b.resumed) == (1, 2, true)
            || (b.first_sequence, b.last_sequence) == (3, 3),
        "B lost the plan race: it finishes A's plan or plans after it, never 1..=3 over it: {b:?}"
    );
    load_all(&lake, "race", &destination).await;
    assert_eq!(
        table("race", "events"),
        rows(1..=30),
        "every row exactly once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replace_keeps_the_incremental_commits_after_the_copy_and_splits_by_file_count() {
    let bucket = GcpServices::get().bucket("replace-lake");
    let lake = lake(&bucket);
    // A full copy in three files, then two incremental runs, all pending for one load.
    let copy: [&[(i64, i64)]; 3] = [&rows(1..=4), &rows(5..=8), &rows(9..=10)];
    run(&lake, "shop", "orders", &copy, full_refresh()).await;
    run(&lake, "shop", "orders", &[&rows(11..=12)], incremental()).await;
    run(&lake, "shop", "orders", &[&rows(13..=13)], incremental()).await;
    let mut destination = destination("replace_shop", BTreeMap::new());
    destination.limits.max_files_per_job = 2;

    let reports = load_all(&lake, "shop", &destination).await;
    assert_eq!(reports.len(), 1, "one load covers every pending commit");
    let orders = &reports[0].streams[0];
    assert_eq!((orders.files, orders.rows), (5, 13));
    assert_eq!(
        orders.jobs.len(),
        3,
        "the copy in two jobs (truncate, append), then the increments: {:?}",
        orders.jobs
    );
    assert_eq!(table("replace_shop", "orders"), rows(1..=13));

    // A new copy replaces everything; the increment after it is kept.
    run(&lake, "shop", "orders", &[&rows(100..=101)], full_refresh()).await;
    run(&lake, "shop", "orders", &[&rows(102..=102)], incremental()).await;
    load_all(&lake, "shop", &destination).await;
    assert_eq!(table("replace_shop", "orders"), rows(100..=102));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_merge_staged_in_several_jobs_keeps_the_newest_version_of_each_key() {
    let bucket = GcpServices::get().bucket("merge-split-lake");
    let lake = lake(&bucket);
    let keyed = StreamMeta {
        primary_key: vec!["id".into()],
        cursor_field: Some("version".into()),
        full_refresh: false,
    };
    let updates: Vec<(i64, i64)> = vec![(1, 2), (3, 2)];
    let more: Vec<(i64, i64)> = vec![(3, 3), (5, 1)];
    run(
        &lake,
        "crm",
        "people",
        &[&rows(1..=4), &updates, &more],
        keyed,
    )
    .await;
    let mut destination = destination("merge_split_crm", BTreeMap::new());
    destination.limits.max_files_per_job = 2;
    let reports = load_all(&lake, "crm", &destination).await;
    assert_eq!(
        reports[0].streams[0].jobs.len(),
        3,
        "two staging loads and one MERGE: {:?}",
        reports[0].streams[0].jobs
    );
    assert_eq!(
        table("merge_split_crm", "people"),
        vec![(1, 2), (2, 1), (3, 3), (4, 1), (5, 1)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_fails_for_good_stops_and_the_next_run_after_the_fix_loads_once() {
    let bucket = GcpServices::get().bucket("broken-lake");
    let lake = lake(&bucket);
    run(&lake, "broken", "items", &[&rows(1..=3)], incremental()).await;
    let destination = destination("broken", BTreeMap::new());
    let history = History::read(&lake, "broken").await.unwrap();
    let file = &history.commits[0].streams["items"].files[0].path;
    let path = object_store::path::Path::from(file.as_str());
    let good = lake
        .store()
        .get(&path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    lake.store()
        .put(&path, PutPayload::from(b"not parquet".to_vec()))
        .await
        .unwrap();

    let error = load_connection(&lake, "broken", &client(), &destination)
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, LoadError::JobFailed(_)), "{message}");
    assert!(
        message.contains("stream `items` -> table `broken.items`") && message.contains("fix: "),
        "{message}"
    );

    lake.store()
        .put(&path, PutPayload::from(good))
        .await
        .unwrap();
    let reports = load_all(&lake, "broken", &destination).await;
    assert!(reports[0].resumed, "the same plan, finished");
    assert!(
        reports[0].streams[0].jobs[0].ends_with("_a2"),
        "the failed job id is not asked again: {:?}",
        reports[0].streams[0].jobs
    );
    assert_eq!(table("broken", "items"), rows(1..=3));
}
