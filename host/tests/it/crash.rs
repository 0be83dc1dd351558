//! A crash between writing data files and writing the commit: the next run cleans up, and the
//! result has every row exactly once.

use super::{files_under, inlet, inlet_with_env, text};
use std::collections::BTreeMap;
use std::path::Path;

fn sync(dir: &Path, lake: &str, fault: Option<&str>) -> std::process::Output {
    let args = [
        "sync",
        "sample",
        "--to",
        lake,
        "--connection",
        "shop",
        "--set",
        "patients=400",
        "--set",
        "updates_per_run=30",
    ];
    match fault {
        Some(fault) => inlet_with_env(dir, &args, &[("INLET_FAULT", fault)]),
        None => inlet(dir, &args),
    }
}

/// Every committed row of every stream, counted: (stream, id, updated_at) -> occurrences.
fn committed_rows(lake: &str) -> BTreeMap<(String, i64, i64), usize> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let lake = inlet_host::lake::Lake::open(lake).unwrap();
    let mut rows = BTreeMap::new();
    for stream in ["patients", "consultations", "orders"] {
        let batches = runtime
            .block_on(inlet_host::lake::read_committed(&lake, "shop", stream))
            .unwrap();
        for batch in batches {
            use arrow_array::cast::AsArray;
            let ids = batch
                .column_by_name("id")
                .unwrap()
                .as_primitive::<arrow_array::types::Int64Type>()
                .clone();
            let updated = batch
                .column_by_name("updated_at")
                .unwrap()
                .as_primitive::<arrow_array::types::TimestampMicrosecondType>()
                .clone();
            for (id, at) in ids.values().iter().zip(updated.values()) {
                *rows.entry((stream.to_owned(), *id, *at)).or_default() += 1;
            }
        }
    }
    rows
}

fn data_files(lake: &Path) -> usize {
    files_under(lake)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .count()
}

#[test]
fn crash_before_commit_leaves_no_duplicates_and_no_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = dir.path().join("crashed");
    let reference = dir.path().join("reference");
    let (crashed_url, reference_url) = (crashed.to_str().unwrap(), reference.to_str().unwrap());

    // Reference: two clean runs.
    for _ in 0..2 {
        let output = sync(dir.path(), reference_url, None);
        assert!(output.status.success(), "{}", text(&output));
    }

    // Crashed: a clean run, then a run killed after its data files and before its commit.
    assert!(sync(dir.path(), crashed_url, None).status.success());
    let files_before = data_files(&crashed);
    let killed = sync(dir.path(), crashed_url, Some("crash-before-commit"));
    assert!(
        !killed.status.success(),
        "the fault aborts the process: {}",
        text(&killed)
    );
    assert!(
        data_files(&crashed) > files_before,
        "the killed run left data files behind"
    );
    assert_eq!(
        committed_rows(crashed_url),
        committed_rows(reference_url)
            .into_iter()
            .filter(|((_, _, at), _)| *at < 1_767_398_400_000_000)
            .collect(),
        "only generation 1 is committed"
    );

    // The next run redoes generation 2 and removes the debris.
    let rerun = sync(dir.path(), crashed_url, None);
    assert!(rerun.status.success(), "{}", text(&rerun));
    assert!(
        String::from_utf8_lossy(&rerun.stderr).contains("removed"),
        "{}",
        text(&rerun)
    );
    assert_eq!(
        data_files(&crashed),
        data_files(&reference),
        "no leftover files"
    );
    let rows = committed_rows(crashed_url);
    assert!(rows.values().all(|&n| n == 1), "no row twice");
    assert_eq!(
        rows,
        committed_rows(reference_url),
        "same rows as runs that never crashed"
    );
}
