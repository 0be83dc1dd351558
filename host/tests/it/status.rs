//! `inlet status`, `inlet history` and run records, on the real binary in temp dirs.

use super::{inlet, text};
use arrow_schema::{DataType, Field, Schema};
use inlet_host::lake::evolution::VARIANT_OF;
use inlet_host::lake::{Commit, ConnectorInfo, DataFile, Lake, StreamCommit, write_commit};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const QUICKSTART: &str = "examples/quickstart/inlet.toml";

fn copy_quickstart(into: &Path, extra: &str) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart/inlet.toml");
    let dir = into.join("examples/quickstart");
    std::fs::create_dir_all(&dir).unwrap();
    let config = std::fs::read_to_string(source).unwrap() + extra;
    std::fs::write(dir.join("inlet.toml"), config).unwrap();
}

fn json(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(output)))
}

/// Per stream of the connection's commit manifests on disk: the newest commit that added rows
/// and how many.
fn last_rows_on_disk(lake: &Path) -> BTreeMap<String, (u64, u64)> {
    let mut names: Vec<_> = std::fs::read_dir(lake.join("_commits"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let mut last = BTreeMap::new();
    for path in names {
        let commit: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        for (stream, s) in commit["streams"].as_object().unwrap() {
            let rows: u64 = s["files"]
                .as_array()
                .map_or(0, |f| f.iter().map(|f| f["rows"].as_u64().unwrap()).sum());
            if rows > 0 {
                last.insert(stream.clone(), (commit["sequence"].as_u64().unwrap(), rows));
            }
        }
    }
    last
}

#[test]
fn status_after_the_quickstart_matches_the_lake() {
    let dir = tempfile::tempdir().unwrap();
    copy_quickstart(dir.path(), "");
    for _ in 0..2 {
        let run = inlet(dir.path(), &["run", QUICKSTART]);
        assert!(run.status.success(), "{}", text(&run));
    }
    let output = inlet(dir.path(), &["status", QUICKSTART, "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let status = json(&output);
    let shown = inlet(
        dir.path(),
        &["state", "show", "pharmacy", "--file", QUICKSTART],
    );
    let state = json(&shown);

    assert_eq!(status["healthy"], true);
    let pharmacy = &status["connections"][0];
    assert_eq!(pharmacy["connection"], "pharmacy");
    assert_eq!(pharmacy["health"], "ok");
    assert_eq!(pharmacy["last_commit"]["sequence"], state["sequence"]);
    assert_eq!(
        pharmacy["last_commit"]["committed_at"],
        state["committed_at"]
    );
    assert_eq!(pharmacy["last_load"], Value::Null);
    assert_eq!(pharmacy["other_state"]["generation"], 2);
    let run = &pharmacy["last_run"];
    assert_eq!(run["outcome"], "succeeded");
    assert_eq!(run["trigger"], "run");
    assert_eq!(run["error"], Value::Null);
    assert_eq!(run["last_sequence"], state["sequence"]);
    assert_eq!(run["run_id"], pharmacy["last_commit"]["run_id"]);
    assert!(
        run["first_sequence"].as_u64().unwrap() > 1,
        "the second run's"
    );

    let on_disk = last_rows_on_disk(&dir.path().join("lake/pharmacy"));
    let streams = pharmacy["streams"].as_object().unwrap();
    assert_eq!(streams.len(), 3);
    for (name, stream) in streams {
        assert_eq!(stream["last_commit"]["sequence"], state["sequence"]);
        let (sequence, rows) = on_disk[name];
        assert_eq!(stream["last_rows"]["sequence"], sequence, "{name}");
        assert_eq!(stream["last_rows"]["rows"], rows, "{name}");
        assert_eq!(
            run["streams"][name]["rows"], rows,
            "{name}: one commit per stream"
        );
        assert_eq!(stream["cursor_field"], "updated_at");
        let key = format!("{name}.updated_at");
        assert_eq!(
            stream["cursor"],
            serde_json::json!({ key.clone(): state["state"][&key] })
        );
        assert_eq!(stream["rows_behind"], Value::Null);
    }

    let table = inlet(dir.path(), &["status", QUICKSTART]);
    assert_eq!(table.status.code(), Some(0), "{}", text(&table));
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("pharmacy (sample): ok"), "{table}");
    assert!(table.contains("last run:    succeeded"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.trim_start().starts_with("patients")),
        "{table}"
    );

    // A corrupt run record is skipped with a warning; a corrupt commit makes the connection
    // unreadable (exit 1) without hiding the rest of the document.
    let lake = dir.path().join("lake/pharmacy");
    std::fs::write(lake.join("_runs/99990101T000000.000Z-x.json"), "{not json").unwrap();
    let skipped = inlet(dir.path(), &["status", QUICKSTART, "--json"]);
    assert_eq!(skipped.status.code(), Some(0), "{}", text(&skipped));
    assert_eq!(json(&skipped)["connections"][0]["last_run"], *run);
    assert!(String::from_utf8_lossy(&skipped.stderr).contains("unreadable run record"));
    let newest = format!("_commits/{:020}.json", state["sequence"].as_u64().unwrap());
    std::fs::write(lake.join(newest), "{not json").unwrap();
    let broken = inlet(dir.path(), &["status", QUICKSTART, "--json"]);
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken));
    let broken = json(&broken);
    assert_eq!(broken["connections"][0]["health"], "unreadable");
    let error = broken["connections"][0]["error"].as_str().unwrap();
    assert!(error.contains("not a valid manifest"), "{error}");
}

#[test]
fn a_failed_run_is_recorded_and_makes_status_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    copy_quickstart(
        dir.path(),
        &format!(
            "\n[connections.broken]\nconnector = \"postgres\"\n\
             config = {{ host = \"127.0.0.1\", port = {port}, user = \"inlet\", database = \"shop\" }}\n\
             [connections.broken.sandbox]\nallow_private_network = true\n"
        ),
    );
    let never = inlet(dir.path(), &["status", QUICKSTART, "--json"]);
    assert_eq!(
        never.status.code(),
        Some(0),
        "never run is no failure: {}",
        text(&never)
    );
    for connection in json(&never)["connections"].as_array().unwrap() {
        assert_eq!(connection["health"], "never_run");
    }

    let run = inlet(dir.path(), &["run", QUICKSTART]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let records: Vec<_> = std::fs::read_dir(dir.path().join("lake/broken/_runs"))
        .unwrap()
        .collect();
    assert_eq!(records.len(), 1, "one record of the failed run");

    let output = inlet(dir.path(), &["status", QUICKSTART, "--json"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let status = json(&output);
    assert_eq!(status["healthy"], false);
    let by_name = |name: &str| {
        status["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["connection"] == name)
            .unwrap()
            .clone()
    };
    let broken = by_name("broken");
    assert_eq!(broken["health"], "failed");
    assert_eq!(broken["last_commit"], Value::Null);
    assert_eq!(broken["last_run"]["outcome"], "failed");
    let error = broken["last_run"]["error"].as_str().unwrap();
    assert!(
        error.contains("`broken`") && error.contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains(error),
        "the record keeps what the CLI printed: {stderr}"
    );

    let pharmacy = by_name("pharmacy");
    assert_eq!(pharmacy["health"], "ok");
    assert_eq!(pharmacy["last_run"]["outcome"], "succeeded");
    let state = json(&inlet(
        dir.path(),
        &["state", "show", "pharmacy", "--file", QUICKSTART],
    ));
    assert_eq!(pharmacy["last_commit"]["sequence"], state["sequence"]);
    assert_eq!(pharmacy["streams"].as_object().unwrap().len(), 3);

    let table = inlet(dir.path(), &["status", QUICKSTART]);
    assert_eq!(table.status.code(), Some(2));
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("broken (postgres): FAILED"), "{table}");
    assert!(table.contains(&format!("error:       {error}")), "{table}");
}

fn field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

fn commit(sequence: u64, streams: &[(&str, Vec<Field>)]) -> Commit {
    Commit {
        format: inlet_host::lake::FORMAT,
        sequence,
        run_id: format!("run-{sequence}"),
        committed_at: format!("2026-01-0{sequence}T00:00:00+00:00"),
        connector: ConnectorInfo {
            name: "hand".into(),
            version: "1".into(),
            digest: "sha256:0".into(),
            settings: None,
        },
        state: Some(serde_json::json!({ "events.cursor": sequence })),
        streams: streams
            .iter()
            .map(|(name, fields)| {
                let stream = StreamCommit {
                    schema: Schema::new(fields.clone()),
                    primary_key: vec!["id".into()],
                    cursor_field: None,
                    files: vec![DataFile {
                        path: format!("c/{name}/run-{sequence}-0.parquet"),
                        rows: 1,
                        bytes: 1,
                    }],
                    full_copy: None,
                    reread: false,
                };
                (name.to_string(), stream)
            })
            .collect(),
    }
}

#[test]
fn history_lists_schema_changes_with_their_commits() {
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = dir.path().join("lake");
    let lake = Lake::open(lake_dir.to_str().unwrap()).unwrap();
    let v1 = vec![
        field("id", DataType::Int32, false),
        field("name", DataType::Utf8, false),
    ];
    let mut v2 = v1.clone();
    v2.push(field("note", DataType::Utf8, true));
    let mut v3 = v2.clone();
    v3[0] = field("id", DataType::Int64, false);
    v3[1] = field("name", DataType::Utf8, true);
    let mut v4 = v3.clone();
    v4.push(
        field("id__string", DataType::Utf8, true)
            .with_metadata(HashMap::from([(VARIANT_OF.to_owned(), "id".to_owned())])),
    );
    let users = vec![field("id", DataType::Int64, false)];
    let commits = [
        commit(1, &[("events", v1)]),
        commit(2, &[("events", v2)]),
        commit(3, &[("events", v3)]),
        commit(4, &[("events", v4), ("users", users)]),
    ];
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut previous = None;
        for c in &commits {
            write_commit(&lake, "c", c, previous.as_ref())
                .await
                .unwrap();
            previous = c.state.clone();
        }
    });

    let output = inlet(dir.path(), &["history", "c", "--lake", "lake", "--json"]);
    assert!(output.status.success(), "{}", text(&output));
    let history = json(&output);
    assert_eq!(history["connection"], "c");
    assert_eq!(history["last_sequence"], 4);
    let listed: Vec<(u64, String, String, String)> = history["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["sequence"].as_u64().unwrap(),
                c["stream"].as_str().unwrap().to_owned(),
                c["change"].as_str().unwrap().to_owned(),
                c["column"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected = [
        (1, "events", "stream_appeared", ""),
        (2, "events", "column_added", "note"),
        (3, "events", "type_widened", "id"),
        (3, "events", "nullability_relaxed", "name"),
        (4, "events", "variant_column_added", "id__string"),
        (4, "users", "stream_appeared", ""),
    ]
    .map(|(s, stream, change, column)| (s, stream.into(), change.into(), column.into()));
    assert_eq!(listed, expected);
    let changes = history["changes"].as_array().unwrap();
    assert_eq!(changes[2]["from"], "Int32");
    assert_eq!(changes[2]["to"], "Int64");
    assert_eq!(changes[4]["variant_of"], "id");
    assert_eq!(changes[4]["run_id"], "run-4");
    assert_eq!(changes[1]["committed_at"], "2026-01-02T00:00:00+00:00");

    let lines = inlet(dir.path(), &["history", "c", "--lake", "lake"]);
    assert!(lines.status.success(), "{}", text(&lines));
    let lines = String::from_utf8_lossy(&lines.stdout);
    assert!(
        lines.contains("6 schema changes in commits 1..=4"),
        "{lines}"
    );
    assert!(
        lines
            .lines()
            .any(|l| l.starts_with("#3") && l.contains("column `id` widened from Int32 to Int64")),
        "{lines}"
    );
}

#[test]
fn inlet_sync_leaves_a_record_of_each_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let ok = inlet(
        dir.path(),
        &["sync", "sample", "--to", "lake", "--set", "patients=3"],
    );
    assert!(ok.status.success(), "{}", text(&ok));
    let failed = inlet(
        dir.path(),
        &["sync", "sample", "--to", "lake", "--set", "patients=many"],
    );
    assert!(!failed.status.success(), "{}", text(&failed));
    let mut records: Vec<_> = std::fs::read_dir(dir.path().join("lake/sample/_runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    records.sort();
    let records: Vec<Value> = records
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["trigger"], "sync");
    assert_eq!(records[0]["outcome"], "succeeded");
    assert_eq!(records[0]["first_sequence"], 1);
    assert_eq!(records[0]["streams"]["patients"]["rows"], 3);
    assert_eq!(records[1]["outcome"], "failed");
    assert_eq!(records[1]["first_sequence"], Value::Null);
    let error = records[1]["error"].as_str().unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.lines().any(|l| l == format!("error: {error}")),
        "the record says what the command printed: {error}\n{stderr}"
    );
}

#[test]
fn a_scheduled_connection_whose_last_success_is_old_is_overdue() {
    let dir = tempfile::tempdir().unwrap();
    copy_quickstart(dir.path(), "schedule = \"every 1h\"\n");
    let runs = dir.path().join("lake/pharmacy/_runs");
    std::fs::create_dir_all(&runs).unwrap();
    let record = serde_json::json!({
        "format": 1, "run_id": "20200101T000000.000Z-0000", "connection": "pharmacy",
        "trigger": "schedule", "started_at": "2020-01-01T00:00:00+00:00",
        "finished_at": "2020-01-01T00:00:01+00:00", "duration_ms": 1000, "outcome": "succeeded",
        "error": null, "first_sequence": null, "last_sequence": null, "streams": {}
    });
    std::fs::write(
        runs.join("20200101T000000.000Z-20200101T000000.000Z-0000.json"),
        record.to_string(),
    )
    .unwrap();
    let output = inlet(dir.path(), &["status", QUICKSTART, "--json"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let pharmacy = &json(&output)["connections"][0];
    assert_eq!(pharmacy["health"], "overdue");
    assert_eq!(pharmacy["overdue"], true);
    assert_eq!(pharmacy["last_success"], "2020-01-01T00:00:00+00:00");
    assert_eq!(pharmacy["last_run"]["trigger"], "schedule");
}
