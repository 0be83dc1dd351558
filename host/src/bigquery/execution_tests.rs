//! Failure paths of job execution that the emulator cannot produce (it never fails a job with
//! `backendError`), against the scripted BigQuery of `client.rs`.

use super::super::client::tests::fixture;
use super::*;
use crate::bigquery::records::{self, Plan};
use crate::credentials::GoogleAuth;
use crate::lake::Lake;
use serde_json::{Value, json};
use std::sync::Arc;

const JOBS: &str = "/bigquery/v2/projects/p/jobs";

fn destination() -> Destination {
    Destination {
        location: "US".into(),
        dataset: "d".into(),
        table_template: "{stream}".into(),
        labels: BTreeMap::new(),
        streams: BTreeMap::new(),
        limits: LoadLimits {
            first_backoff: Duration::from_millis(1),
            ..LoadLimits::default()
        },
    }
}

fn stream() -> StreamPlan {
    StreamPlan {
        stream: "s".into(),
        table: "t".into(),
        mode: WriteMode::Append,
        schema: Vec::new(),
        primary_key: Vec::new(),
        cursor_field: None,
        deleted_flag: None,
        partition: None,
        cluster_by: Vec::new(),
        jobs: Vec::new(),
        batches: Vec::new(),
        rows: 0,
    }
}

fn job() -> JobPlan {
    JobPlan {
        id: "j".into(),
        kind: JobKind::Load {
            uris: vec!["gs://b/f.parquet".into()],
            bytes: 1,
            staging: None,
            truncate: false,
        },
    }
}

fn failed(reason: &str, message: &str) -> Value {
    json!({"status": {"state": "DONE", "errorResult": {"reason": reason, "message": message}}})
}

fn done() -> Value {
    json!({"status": {"state": "DONE"}})
}

fn not_found() -> Value {
    json!({"error": {"code": 404, "message": "Not found: Job p:j", "errors": [{"reason": "notFound"}]}})
}

/// A lake holding a pending plan (key 1), so attempt records are read back with it.
async fn lake_with_plan() -> Lake {
    let lake = Lake::in_memory();
    let plan = Plan {
        format: records::FORMAT,
        first_sequence: 1,
        last_sequence: 1,
        nonce: "n".into(),
        planned_at: String::new(),
        streams: Vec::new(),
    };
    assert!(
        Records::new(&lake, "c", "p", "d")
            .create_plan(&plan)
            .await
            .unwrap()
    );
    lake
}

async fn run_once(
    lake: &Lake,
    endpoint: &str,
    destination: &Destination,
) -> Result<String, LoadError> {
    let client = Client::new(endpoint, "p", Arc::new(GoogleAuth::anonymous()));
    let records = Records::new(lake, "c", "p", "d");
    let attempts = records.read("d").await.unwrap().attempts;
    let mut executor = Executor {
        client: &client,
        destination,
        records: &records,
        key: 1,
        attempts,
    };
    executor
        .run(
            &stream(),
            &job(),
            json!({"load": {}}),
            "append of stream `s`",
        )
        .await
}

#[tokio::test]
async fn a_transient_job_failure_is_retried_under_a_new_attempt_id() {
    let lake = lake_with_plan().await;
    let (endpoint, seen) = fixture(vec![
        (404, not_found()),
        (200, failed("backendError", "Backend error. Job aborted.")),
        (404, not_found()),
        (200, done()),
    ]);
    let id = run_once(&lake, &endpoint, &destination()).await.unwrap();
    assert_eq!(id, "j_a2");
    assert_eq!(
        *seen.lock().unwrap(),
        [
            format!("GET {JOBS}/j"),
            format!("POST {JOBS}"),
            format!("GET {JOBS}/j_a2"),
            format!("POST {JOBS}"),
        ],
        "the failed id is never submitted again"
    );
    let state = Records::new(&lake, "c", "p", "d").read("d").await.unwrap();
    assert_eq!(state.attempts["j"], 2, "the attempt is recorded");
}

#[tokio::test]
async fn a_resumed_load_continues_with_the_recorded_attempt() {
    let lake = lake_with_plan().await;
    Records::new(&lake, "c", "p", "d")
        .record_attempt(1, "j", 3, "backendError", "x")
        .await
        .unwrap();
    // The crash came after attempt 3 was submitted: BigQuery knows it, nothing is submitted.
    let (endpoint, seen) = fixture(vec![(200, done())]);
    let id = run_once(&lake, &endpoint, &destination()).await.unwrap();
    assert_eq!(id, "j_a3");
    assert_eq!(*seen.lock().unwrap(), [format!("GET {JOBS}/j_a3")]);
}

#[tokio::test]
async fn a_permanent_failure_stops_with_a_way_forward_and_the_next_run_succeeds() {
    let lake = lake_with_plan().await;
    let message = "Provided Schema does not match Table p:d.t. Field id has changed type from INTEGER to STRING";
    let (endpoint, seen) = fixture(vec![(404, not_found()), (200, failed("invalid", message))]);
    let error = run_once(&lake, &endpoint, &destination())
        .await
        .unwrap_err();
    assert_eq!(seen.lock().unwrap().len(), 2, "not retried within the run");
    assert_eq!(
        error.to_string(),
        format!(
            "stream `s` -> table `d.t`: BigQuery job `j` failed (invalid, try 1 of this run): {message}\n  fix: fix what BigQuery names (the table's schema or the files in the lake), then run `inlet load` again: the job runs under a new id"
        )
    );

    // After the fix, the next run does not find the failed job again: it runs attempt 2.
    let (endpoint, seen) = fixture(vec![(404, not_found()), (200, done())]);
    let id = run_once(&lake, &endpoint, &destination()).await.unwrap();
    assert_eq!(id, "j_a2");
    assert_eq!(seen.lock().unwrap()[0], format!("GET {JOBS}/j_a2"));
}

#[tokio::test]
async fn a_spent_quota_stops_after_the_attempts_of_a_run() {
    let lake = lake_with_plan().await;
    let quota = "Quota exceeded: Your table exceeded quota for imports or query appends per table";
    let (endpoint, seen) = fixture(vec![
        (404, not_found()),
        (200, failed("quotaExceeded", quota)),
        (404, not_found()),
        (200, failed("quotaExceeded", quota)),
    ]);
    let mut destination = destination();
    destination.limits.attempts_per_run = 2;
    let error = run_once(&lake, &endpoint, &destination)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(seen.lock().unwrap().len(), 4);
    assert!(
        error.contains("BigQuery job `j_a2` failed (quotaExceeded, try 2 of this run)")
            && error.contains("run `inlet load` again later"),
        "{error}"
    );
}

#[test]
fn backoff_doubles_up_to_bigquery_s_cap() {
    let first = Duration::from_secs(1);
    let waits: Vec<u64> = (1..=8).map(|t| backoff(first, t).as_secs()).collect();
    assert_eq!(waits, [1, 2, 4, 8, 16, 32, 32, 32]);
    assert!(is_retryable("backendError") && !is_retryable("accessDenied"));
}
