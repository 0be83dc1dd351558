//! Run records on an in-memory lake: pruning, corrupt records, finding a run's commits.

use super::*;

fn record(run_id: &str, started_at: DateTime<Utc>, outcome: Outcome) -> RunRecord {
    RunRecord {
        format: RUN_FORMAT,
        run_id: run_id.into(),
        connection: "c".into(),
        trigger: Trigger::Run,
        started_at: started_at.to_rfc3339(),
        finished_at: started_at.to_rfc3339(),
        duration_ms: 0,
        outcome,
        error: None,
        first_sequence: None,
        last_sequence: None,
        streams: BTreeMap::new(),
    }
}

#[tokio::test]
async fn the_newest_records_are_kept_and_read_newest_first() {
    let lake = Lake::in_memory();
    let start = Utc::now();
    for i in 0..(KEEP_RUNS as i64 + 5) {
        let at = start + chrono::Duration::seconds(i);
        let outcome = if i % 2 == 0 {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        };
        write_record(&lake, "c", at, &record(&format!("r{i}"), at, outcome))
            .await
            .unwrap();
    }
    assert_eq!(record_names(&lake, "c").await.unwrap().len(), KEEP_RUNS);
    let recent = recent_runs(&lake, "c", 3).await.unwrap();
    let ids: Vec<_> = recent.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, ["r204", "r203", "r202"]);
}

fn commit(sequence: u64, run_id: &str, rows: u64) -> crate::lake::Commit {
    let schema = arrow_schema::Schema::new(vec![arrow_schema::Field::new(
        "id",
        arrow_schema::DataType::Int64,
        false,
    )]);
    let files = (rows > 0)
        .then(|| crate::lake::DataFile {
            path: format!("c/s/{run_id}-{sequence}.parquet"),
            rows,
            bytes: 1,
        })
        .into_iter()
        .collect();
    crate::lake::Commit {
        format: commit::FORMAT,
        sequence,
        run_id: run_id.into(),
        committed_at: Utc::now().to_rfc3339(),
        connector: crate::lake::ConnectorInfo {
            name: "c".into(),
            version: "1".into(),
            digest: String::new(),
            settings: None,
        },
        state: None,
        streams: BTreeMap::from([(
            "s".to_owned(),
            crate::lake::StreamCommit {
                schema,
                primary_key: Vec::new(),
                cursor_field: None,
                files,
                full_copy: None,
                reread: false,
            },
        )]),
    }
}

#[tokio::test]
async fn a_runs_commits_are_found_from_the_tip() {
    let lake = Lake::in_memory();
    let started = Utc::now();
    let run = format!(
        "{}-abcd",
        (started + chrono::Duration::milliseconds(5)).format(NAME_TIME)
    );
    let old = "20200101T000000.000Z-0000";
    for (sequence, id, rows) in [
        (1, old, 5),
        (2, old, 0),
        (3, &*run, 7),
        (4, &*run, 0),
        (5, &*run, 2),
    ] {
        commit::write_commit(&lake, "c", &commit(sequence, id, rows), None)
            .await
            .unwrap();
    }
    let found = run_commits(&lake, "c", started).await.unwrap().unwrap();
    assert_eq!(
        found,
        RunCommits {
            run_id: run.clone(),
            first: 3,
            last: 5
        }
    );
    assert_eq!(rows_of(&lake, "c", 3, 5).await.unwrap()["s"].rows, 9);
    let later = started + chrono::Duration::seconds(1);
    assert_eq!(
        run_commits(&lake, "c", later).await.unwrap(),
        None,
        "an older run's"
    );
    assert_eq!(run_commits(&lake, "none", started).await.unwrap(), None);

    let recent = crate::lake::recent::recent_rows(&lake, "c", 5)
        .await
        .unwrap();
    assert_eq!(recent.newest["s"], 2);
    assert_eq!(recent.last_added["s"].sequence, 5);
    let recent = crate::lake::recent::recent_rows(&lake, "c", 4)
        .await
        .unwrap();
    assert_eq!(recent.newest["s"], 0);
    assert_eq!(
        (recent.last_added["s"].sequence, recent.last_added["s"].rows),
        (3, 7)
    );
}

#[tokio::test]
async fn a_failed_run_is_recorded_with_its_error_and_commits() {
    let lake = Lake::in_memory();
    let started = Utc::now();
    let run = format!(
        "{}-abcd",
        (started + chrono::Duration::milliseconds(5)).format(NAME_TIME)
    );
    commit::write_commit(&lake, "c", &commit(1, &run, 4), None)
        .await
        .unwrap();
    crate::secrets::remember("hunter2-secret-value");
    let failed: Result<SyncReport, String> =
        Err("connection `c`: it broke near hunter2-secret-value".into());
    let record = record_run(&lake, "c", Trigger::Schedule, started, &failed)
        .await
        .unwrap();
    assert_eq!(record.outcome, Outcome::Failed);
    assert_eq!(
        record.error.as_deref(),
        Some("connection `c`: it broke near ***"),
        "secret values are redacted as in every printed line"
    );
    assert_eq!(
        (record.first_sequence, record.last_sequence),
        (Some(1), Some(1))
    );
    assert_eq!(record.run_id, run);
    assert_eq!(record.streams["s"].rows, 4);
    assert_eq!(recent_runs(&lake, "c", 1).await.unwrap(), [record]);
}

#[tokio::test]
async fn a_corrupt_record_is_skipped() {
    let lake = Lake::in_memory();
    let at = Utc::now();
    write_record(&lake, "c", at, &record("good", at, Outcome::Failed))
        .await
        .unwrap();
    let bad = runs_dir(&lake, "c").join("99990101T000000.000Z-bad.json");
    lake.store().put(&bad, "{not json".into()).await.unwrap();
    let recent = recent_runs(&lake, "c", 5).await.unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].run_id, "good");
}

#[test]
fn the_sweep_leaves_run_records_alone() {
    assert!(commit::is_metadata_path(&Path::from(
        "c/_runs/20260102T030405.678Z-r.json"
    )));
    assert!(!commit::is_metadata_path(&Path::from(
        "c/orders/r-0.parquet"
    )));
}

#[test]
fn record_names_sort_by_start_time() {
    let early = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678Z").unwrap();
    let late = DateTime::parse_from_rfc3339("2026-11-02T03:04:05Z").unwrap();
    let a = early.format(NAME_TIME).to_string();
    let b = late.format(NAME_TIME).to_string();
    assert_eq!(a, "20260102T030405.678Z");
    assert_eq!(a.len(), NAME_TIME_LEN);
    assert!(a < b);
}

#[tokio::test]
async fn a_run_is_recorded_even_when_the_commits_cannot_be_read() {
    let lake = Lake::in_memory();
    let bad = commit::commit_path(&lake, "c", 1);
    lake.store().put(&bad, "{not json".into()).await.unwrap();
    let failed: Result<SyncReport, String> = Err("commit 1 is corrupt".into());
    let record = record_run(&lake, "c", Trigger::Run, Utc::now(), &failed)
        .await
        .unwrap();
    assert_eq!(record.last_sequence, None);
    assert_eq!(recent_runs(&lake, "c", 5).await.unwrap(), [record]);
}
