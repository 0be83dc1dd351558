//! Fault injection: rounds in which two `inlet run` and two `inlet load` processes work on one
//! connection at once (a `gs://` lake on fake-gcs-server, BigQuery on local-bigquery) and some are
//! killed with SIGKILL at random moments. Seeded and printed: `INLET_FAULT_SEED=<n>` replays a
//! failure. After every round: the history reads, its sequences have no gap, every commit of the
//! round before is still there unchanged, and every file a commit references exists. At the end a
//! clean `inlet load` leaves every committed row exactly once in BigQuery (an append table, where
//! a second load would show as duplicates).

use super::bigquery::{config, lake};
use super::gcp::{GcpServices, PROJECT};
use super::{FaultRng, cache_dir, inlet, text};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use inlet_host::lake::{History, Lake, read_committed};
use object_store::ObjectStoreExt;
use object_store::path::Path as StorePath;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 6;

fn spawn(dir: &Path, command: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_inlet"))
        .current_dir(dir)
        .args([command, "inlet.toml"])
        .env("INLET_CACHE_DIR", cache_dir())
        .env_remove("INLET_FAULT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// (sequence, run id) of every commit, after checking the history's own invariants.
async fn check_history(lake: &Lake, seed: u64, round: usize) -> Vec<(u64, String)> {
    let history = History::read(lake, "pharmacy")
        .await
        .unwrap_or_else(|e| panic!("seed {seed}, round {round}: history unreadable: {e}"));
    let mut commits = Vec::new();
    for (index, commit) in history.commits.iter().enumerate() {
        assert_eq!(
            commit.sequence,
            index as u64 + 1,
            "seed {seed}, round {round}: a gap in the sequences"
        );
        for file in commit.files() {
            lake.store()
                .head(&StorePath::from(file.path.as_str()))
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "seed {seed}, round {round}: commit #{} references `{}`, which is gone: {e}",
                        commit.sequence, file.path
                    )
                });
        }
        commits.push((commit.sequence, commit.run_id.clone()));
    }
    commits
}

/// (id, updated_at) -> how often the lake holds it.
async fn committed_rows(lake: &Lake) -> BTreeMap<(i64, i64), usize> {
    let mut rows = BTreeMap::new();
    for batch in read_committed(lake, "pharmacy", "patients").await.unwrap() {
        let ids = batch
            .column_by_name("id")
            .unwrap()
            .as_primitive::<Int64Type>();
        let at = batch
            .column_by_name("updated_at")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>();
        for (id, at) in ids.values().iter().zip(at.values()) {
            *rows.entry((*id, *at)).or_default() += 1;
        }
    }
    rows
}

#[test]
fn runners_and_loaders_killed_at_random_lose_nothing_and_load_everything_once() {
    let seed = super::fault_seed();
    let mut rng = FaultRng::new(seed);
    let services = GcpServices::get();
    let bucket = services.bucket("faults-lake");
    let dir = tempfile::tempdir().unwrap();
    // Append makes a row loaded twice visible as a duplicate.
    config(
        dir.path(),
        &bucket,
        "faults",
        "select = [\"patients\"]\n[connections.pharmacy.streams.patients]\nwrite_mode = \"append\"\n",
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let lake = lake(&bucket);
    // A first clean run, so every round has history to lose.
    let output = inlet(dir.path(), &["run", "inlet.toml"]);
    assert!(output.status.success(), "{}", text(&output));

    let mut before = runtime.block_on(check_history(&lake, seed, 0));
    for round in 1..=ROUNDS {
        let mut children: Vec<(Child, Option<Duration>)> = ["run", "load", "run", "load"]
            .iter()
            .map(|command| {
                // Half of the processes are killed somewhere in their first 2.5 s.
                let kill_after = rng
                    .next_u64()
                    .is_multiple_of(2)
                    .then(|| Duration::from_millis(rng.next_u64() % 2_500));
                (spawn(dir.path(), command), kill_after)
            })
            .collect();
        let started = Instant::now();
        while children
            .iter_mut()
            .any(|(child, _)| matches!(child.try_wait(), Ok(None)))
        {
            for (child, kill_after) in &mut children {
                if kill_after.is_some_and(|at| started.elapsed() >= at)
                    && matches!(child.try_wait(), Ok(None))
                {
                    let _ = child.kill();
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "seed {seed}, round {round}: a process hangs"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let after = runtime.block_on(check_history(&lake, seed, round));
        assert!(
            after.len() >= before.len() && after[..before.len()] == before[..],
            "seed {seed}, round {round}: a commit that existed before the round changed or went"
        );
        before = after;
    }

    // A clean load finishes whatever was interrupted, then every committed row is in the table
    // exactly once.
    let output = inlet(dir.path(), &["load", "inlet.toml"]);
    assert!(output.status.success(), "seed {seed}: {}", text(&output));
    let committed = runtime.block_on(committed_rows(&lake));
    assert!(
        committed.values().all(|&n| n == 1),
        "seed {seed}: a row committed twice"
    );
    let loaded = services.query(&format!(
        "SELECT id, UNIX_MICROS(updated_at), COUNT(*) FROM `{PROJECT}.faults_pharmacy.patients` GROUP BY 1, 2"
    ));
    let mut in_table = BTreeMap::new();
    for row in loaded {
        let id: i64 = row[0].as_deref().unwrap().parse().unwrap();
        let at: i64 = row[1].as_deref().unwrap().parse().unwrap();
        let n: usize = row[2].as_deref().unwrap().parse().unwrap();
        in_table.insert((id, at), n);
    }
    assert_eq!(
        in_table, committed,
        "seed {seed}: BigQuery holds every committed row exactly once"
    );
}
