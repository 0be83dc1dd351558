//! Benchmark: opening a connection with a long history. Writes `commits` state-only commits to a
//! local lake through a `LakeSession` (each state a heroku-logplex-like window of frame ids that
//! slid by `slide` ids), then times opening the connection's tip, a session, and reading the last
//! 50 commits, and prints the average manifest size. Asserts nothing.
//!
//! `cargo run --release -p inlet-host --example history_bench -- [commits] [window] [slide] [dir]`
//! (defaults: 100000 commits, 2048 ids, 20 per commit, a temp folder). With `dir` naming a lake
//! that already holds the commits, only the timings run.

use inlet_host::lake::{
    ConnectorInfo, History, Lake, LakeSession, SessionOptions, StreamMeta, Tip,
};
use inlet_host::runtime::BatchSink;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

fn arg(index: usize, default: u64) -> u64 {
    std::env::args()
        .nth(index)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// A window of `size` frame ids (32 hex digits, like Logplex's) ending at id `newest`.
fn window(newest: u64, size: u64) -> String {
    let ids: Vec<String> = (newest.saturating_sub(size)..newest)
        .map(|i| format!("{:016X}{:016X}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15), i))
        .collect();
    serde_json::json!({ "recent_frame_ids": ids }).to_string()
}

async fn open(lake: &Lake) -> anyhow::Result<LakeSession> {
    let info = ConnectorInfo {
        name: "heroku-logplex".into(),
        version: "0.1.0".into(),
        digest: "bench".into(),
        settings: None,
    };
    let streams = BTreeMap::from([("logs".to_owned(), StreamMeta::default())]);
    Ok(LakeSession::open(
        lake.clone(),
        "drain",
        info,
        streams,
        SessionOptions::default(),
        Arc::new(|_| {}),
    )
    .await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (commits, size, slide) = (arg(1, 100_000), arg(2, 2048), arg(3, 20));
    let temp = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(4)
        .map_or_else(|| temp.path().to_path_buf(), std::path::PathBuf::from);
    let lake = Lake::open(dir.to_str().expect("a UTF-8 path"))?;
    let have = Tip::open(&lake, "drain")
        .await?
        .map_or(0, |t| t.commit.sequence);
    if have < commits {
        let started = Instant::now();
        let mut session = open(&lake).await?;
        for n in have + 1..=commits {
            session.checkpoint(window(n * slide, size)).await?;
            if n % 10_000 == 0 {
                eprintln!("  {n} commits written ({:.0?})", started.elapsed());
            }
        }
        println!(
            "history_bench: wrote {} commits in {:.1?}",
            commits - have,
            started.elapsed()
        );
    }
    let manifests = std::fs::read_dir(dir.join("drain/_commits"))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .collect::<Vec<_>>();
    let snapshots = std::fs::read_dir(dir.join("drain/_snapshots"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .collect()
        })
        .unwrap_or_else(|_| Vec::new());
    let average = |sizes: &[u64]| sizes.iter().sum::<u64>() as f64 / sizes.len().max(1) as f64;
    println!(
        "  {} manifests, average {:.0} bytes; {} snapshots, average {:.0} bytes",
        manifests.len(),
        average(&manifests),
        snapshots.len(),
        average(&snapshots)
    );
    let started = Instant::now();
    let tip = Tip::open(&lake, "drain")
        .await?
        .expect("commits were written");
    println!(
        "  Tip::open:            {:.0?} (sequence {}, snapshot {})",
        started.elapsed(),
        tip.commit.sequence,
        tip.snapshot
    );
    let started = Instant::now();
    let session = open(&lake).await?;
    println!(
        "  LakeSession::open:    {:.0?} (state {} bytes)",
        started.elapsed(),
        session.state_json().map_or(0, |s| s.len())
    );
    let started = Instant::now();
    let range = History::read_after(&lake, "drain", tip.commit.sequence.saturating_sub(50)).await?;
    println!(
        "  History::read_after:  {:.0?} ({} commits)",
        started.elapsed(),
        range.commits.len()
    );
    Ok(())
}
