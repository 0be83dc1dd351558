//! The command line as a user meets it: the quickstart, state, ad-hoc sync and its errors.

use super::{inlet, text};
use std::path::Path;

fn copy_quickstart(into: &Path) -> std::path::PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart/inlet.toml");
    let dir = into.join("examples/quickstart");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(source, dir.join("inlet.toml")).unwrap();
    dir.join("inlet.toml")
}

fn state(dir: &Path) -> serde_json::Value {
    let output = inlet(
        dir,
        &[
            "state",
            "show",
            "pharmacy",
            "--file",
            "examples/quickstart/inlet.toml",
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn parquet_files(dir: &Path) -> usize {
    let mut count = 0;
    for stream in ["patients", "consultations", "orders"] {
        count += std::fs::read_dir(dir.join("lake/pharmacy").join(stream)).map_or(0, |d| d.count());
    }
    count
}

#[test]
fn quickstart_syncs_then_syncs_only_changes() {
    let dir = tempfile::tempdir().unwrap();
    copy_quickstart(dir.path());
    let first = inlet(dir.path(), &["run", "examples/quickstart/inlet.toml"]);
    assert!(first.status.success(), "{}", text(&first));
    assert_eq!(parquet_files(dir.path()), 3, "one file per stream");
    let after_first = state(dir.path());
    assert_eq!(after_first["state"]["generation"], 1);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains("patients") && stderr.contains("1,000"),
        "{stderr}"
    );

    let second = inlet(dir.path(), &["run", "examples/quickstart/inlet.toml"]);
    assert!(second.status.success(), "{}", text(&second));
    let after_second = state(dir.path());
    assert_eq!(after_second["state"]["generation"], 2);
    assert!(after_second["sequence"].as_u64() > after_first["sequence"].as_u64());
    let cursor = |s: &serde_json::Value| s["state"]["patients.updated_at"].as_i64().unwrap();
    assert!(
        cursor(&after_second) > cursor(&after_first),
        "the cursor advances"
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    let patients_line = stderr
        .lines()
        .find(|l| l.starts_with("pharmacy") && l.contains(" patients "))
        .unwrap();
    let rows: u64 = patients_line
        .split_whitespace()
        .nth(2)
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap();
    assert!(
        (50..=70).contains(&rows),
        "50 new patients and up to 20 updated ones, got {rows}: {stderr}"
    );
    assert_eq!(parquet_files(dir.path()), 6);
}

#[test]
fn state_reset_makes_the_next_run_start_over() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();
    let sync = |extra: &[&str]| {
        let mut args = vec![
            "sync",
            "sample",
            "--to",
            lake,
            "--set",
            "patients=100",
            "--stream",
            "patients",
        ];
        args.extend_from_slice(extra);
        inlet(dir.path(), &args)
    };
    assert!(sync(&[]).status.success());
    let reset = inlet(dir.path(), &["state", "reset", "sample", "--lake", lake]);
    assert!(reset.status.success(), "{}", text(&reset));
    let again = sync(&[]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("100"),
        "a full first generation again: {}",
        text(&again)
    );
    let shown = inlet(dir.path(), &["state", "show", "sample", "--lake", lake]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["state"]["generation"], 1);
}

#[test]
fn unknown_connector_and_stream_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let output = inlet(dir.path(), &["sync", "postgress", "--to", "lake"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("connector `postgress` is neither a built-in connector (firestore, google-sheets, heroku-logplex, postgres, sample)"),
        "{stderr}"
    );

    let output = inlet(
        dir.path(),
        &[
            "sync",
            "sample",
            "--to",
            "lake",
            "--stream",
            "prescriptions",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(
            "stream `prescriptions` does not exist (streams: patients, consultations, orders)"
        ),
        "{stderr}"
    );
}

#[test]
fn read_prints_records_and_spec_prints_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let output = inlet(
        dir.path(),
        &[
            "read",
            "sample",
            "--set",
            "patients=5",
            "--stream",
            "patients",
            "--limit",
            "2",
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["stream"], "patients");
    assert_eq!(lines[0]["record"]["id"], 1);

    let spec = inlet(dir.path(), &["spec", "sample"]);
    let spec: serde_json::Value = serde_json::from_slice(&spec.stdout).unwrap();
    assert_eq!(spec["name"], "sample");
    assert!(
        spec["config_schema"]["properties"]["patients"].is_object(),
        "{spec}"
    );
}
