//! `inlet run --shard I/N` (and the Cloud Run Jobs / Kubernetes indexed Job variables): the shards
//! of a file together run every connection exactly once, and two tasks of one shard racing on
//! one lake commit nothing twice.

use super::{inlet_with_env, text};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use inlet_host::lake::{History, Lake, read_committed};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const CONNECTIONS: [&str; 5] = ["ads", "app_db", "crm", "pharmacy", "sheets"];

fn write_config(dir: &Path) {
    let mut toml = String::from("[lake]\nurl = \"lake\"\n");
    for name in CONNECTIONS {
        toml.push_str(&format!(
            "\n[connections.{name}]\nconnector = \"sample\"\nconfig = {{ patients = 60 }}\n"
        ));
    }
    std::fs::write(dir.join("inlet.toml"), toml).unwrap();
}

/// Run ids of each connection's commits, by connection (absent: never committed).
fn runs_by_connection(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let lake = Lake::open(&dir.join("lake").display().to_string()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut out = BTreeMap::new();
    for name in CONNECTIONS {
        let history = runtime.block_on(History::read(&lake, name)).unwrap();
        if !history.commits.is_empty() {
            out.insert(
                name.to_owned(),
                history.commits.iter().map(|c| c.run_id.clone()).collect(),
            );
        }
    }
    out
}

fn run_shard(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut all = vec!["run", "inlet.toml"];
    all.extend_from_slice(args);
    let output = inlet_with_env(dir, &all, env);
    assert!(output.status.success(), "{}", text(&output));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn two_shards_run_every_connection_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    run_shard(dir.path(), &["--shard", "0/2"], &[]);
    let first = runs_by_connection(dir.path());
    assert!(
        !first.is_empty() && first.len() < CONNECTIONS.len(),
        "shard 0 runs some, not all: {first:?}"
    );
    // The second task learns its shard from Cloud Run Jobs' variables.
    let said = run_shard(
        dir.path(),
        &[],
        &[("CLOUD_RUN_TASK_INDEX", "1"), ("CLOUD_RUN_TASK_COUNT", "2")],
    );
    assert!(said.contains("shard 1/2: connections"), "{said}");
    let both = runs_by_connection(dir.path());
    assert_eq!(
        both.keys().map(String::as_str).collect::<Vec<_>>(),
        CONNECTIONS.to_vec(),
        "every connection ran"
    );
    for (name, runs) in &both {
        assert_eq!(runs.len(), 1, "`{name}` ran once: {runs:?}");
        assert_eq!(
            first.get(name).is_some_and(|r| r == runs),
            first.contains_key(name)
        );
    }
    // A Kubernetes indexed Job must say how many tasks there are.
    let output = inlet_with_env(
        dir.path(),
        &["run", "inlet.toml"],
        &[("JOB_COMPLETION_INDEX", "0")],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("INLET_SHARD_COUNT"),
        "{}",
        text(&output)
    );
}

#[test]
fn two_tasks_of_one_shard_racing_commit_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_inlet"))
            .current_dir(dir.path())
            .args(["run", "inlet.toml", "--shard", "0/1"])
            .env("INLET_CACHE_DIR", super::cache_dir())
            .env("INLET_LOG_FORMAT", "text")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    // A task that lost a race for a connection fails naming the conflict; one that won (or came
    // second, after the first had committed) succeeds.
    for output in [&a, &b] {
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains("was committed by another run first"),
                "{stderr}"
            );
        }
    }
    let lake = Lake::open(&dir.path().join("lake").display().to_string()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for name in CONNECTIONS {
        let batches = runtime
            .block_on(read_committed(&lake, name, "patients"))
            .unwrap();
        let mut seen = BTreeSet::new();
        for batch in &batches {
            let ids = batch
                .column_by_name("id")
                .unwrap()
                .as_primitive::<Int64Type>();
            let at = batch
                .column_by_name("updated_at")
                .unwrap()
                .as_primitive::<TimestampMicrosecondType>();
            for (id, at) in ids.values().iter().zip(at.values()) {
                assert!(
                    seen.insert((*id, *at)),
                    "`{name}`: row {id}@{at} committed twice"
                );
            }
        }
        assert!(seen.len() >= 60, "`{name}` was synced: {} rows", seen.len());
    }
}
