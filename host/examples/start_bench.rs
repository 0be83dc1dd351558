//! Benchmark: how long a connector takes to start, cold (compiled now) and warm (from the compile
//! cache, in a fresh runtime as a new process would have). Prints figures; asserts nothing.
//!
//! `cargo run --release -p inlet-host --example start_bench`

use inlet_host::connectors::ConnectorRef;
use inlet_host::runtime::{NetworkGrant, RunLabels, Runtime, RuntimeOptions, SandboxPolicy};
use std::time::{Duration, Instant};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bytes = ConnectorRef::Builtin("sample").bytes()?;
    let cache = tempfile::tempdir()?;
    let options = || RuntimeOptions {
        cache_dir: Some(cache.path().to_owned()),
    };
    let policy = SandboxPolicy::default();

    let started = Instant::now();
    let runtime = Runtime::new(options())?;
    let connector = runtime.load("sample", &bytes)?;
    let cold_load = started.elapsed();
    let run = connector
        .start(
            &policy,
            NetworkGrant::none(),
            RunLabels::new("bench", "sample"),
        )
        .await?;
    run.spec().await?;
    let cold_total = started.elapsed();

    let mut warm_load = Vec::new();
    let mut instantiate = Vec::new();
    let mut warm_total = Vec::new();
    for _ in 0..20 {
        let runtime = Runtime::new(options())?;
        let started = Instant::now();
        let connector = runtime.load("sample", &bytes)?;
        warm_load.push(started.elapsed());
        let before_start = Instant::now();
        let run = connector
            .start(
                &policy,
                NetworkGrant::none(),
                RunLabels::new("bench", "sample"),
            )
            .await?;
        run.spec().await?;
        instantiate.push(before_start.elapsed());
        warm_total.push(started.elapsed());
    }
    println!(
        "component: sample, {:.1} MiB",
        bytes.len() as f64 / (1 << 20) as f64
    );
    println!(
        "cold start (compile + instantiate + spec): {:>9.2?}  (compile {:.2?})",
        cold_total, cold_load
    );
    println!(
        "warm start (cache hit + instantiate + spec): {:>7.2?}  median of 20",
        median(warm_total)
    );
    println!("  of which load from cache: {:>9.2?}", median(warm_load));
    println!(
        "  of which instantiate + spec: {:>6.2?}",
        median(instantiate)
    );
    Ok(())
}
