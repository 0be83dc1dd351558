//! Benchmark: `inlet serve` with the heroku-logplex connector under load from 127.0.0.1. Senders
//! POST logplex bodies of router lines in a loop for a fixed time (it stops by itself) and the
//! figures printed are lines acknowledged per second (each acknowledgement means durable) and the
//! ack latency percentiles, for a group-commit interval. Asserts nothing.
//!
//! `cargo run --release -p inlet-host --example drain_bench -- [seconds] [senders] [frames] [interval_ms] [url]`
//! (defaults: 10 s, 8 senders, 100 frames per request, 200 ms). With `url`, load an `inlet serve`
//! already running there (`tests/bench/drain.sh` does, to count the server's own CPU time) instead
//! of serving in this process.

use inlet_host::config::LoadedConfig;
use inlet_host::lake::Lake;
use inlet_host::runtime::{Runtime, RuntimeOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LINE: &str = "<158>1 2024-05-01T10:00:00.123456+00:00 host heroku router - at=info method=GET path=\"/orders?page=2\" host=shop.herokuapp.com request_id=8601b555-6a76-4d1c-b8ae-4c4d3b2f6a11 fwd=\"203.0.113.7\" dyno=web.1 connect=1ms service=42ms status=200 bytes=1548 protocol=https\n";

fn arg(index: usize, default: u64) -> u64 {
    std::env::args()
        .nth(index)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (seconds, senders, frames, interval) = (arg(1, 10), arg(2, 8), arg(3, 100), arg(4, 200));
    let (base, _lake) = match std::env::args().nth(5) {
        Some(url) => (url, None),
        None => {
            let (url, lake) = start_server(interval).await?;
            (url, Some(lake))
        }
    };
    run_load(&base, seconds, senders, frames, interval).await?;
    std::process::exit(0);
}

/// Serves a drain in this process; answers its base URL and the folder of its lake.
async fn start_server(interval: u64) -> anyhow::Result<(String, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let config = format!(
        "[lake]\nurl = \"lake\"\n\n[connections.heroku]\nconnector = \"heroku-logplex\"\n\n[connections.heroku.drain]\nbasic_auth = \"bench:bench\"\ncommit_interval_ms = {interval}\ncommit_bytes = 67108864\n"
    );
    std::fs::write(dir.path().join("inlet.toml"), config)?;
    let loaded = LoadedConfig::load(&dir.path().join("inlet.toml"))?;
    let lake = Lake::open(&loaded.lake_location())?;
    let runtime = Arc::new(Runtime::new(RuntimeOptions {
        cache_dir: Some(dir.path().join("cache")),
    })?);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let listen = format!("127.0.0.1:{port}");
    tokio::spawn(async move {
        if let Err(error) = inlet_host::serve::serve(runtime, &loaded, lake, None, &listen).await {
            eprintln!("serve failed: {error:#}");
            std::process::exit(1);
        }
    });
    Ok((format!("http://127.0.0.1:{port}"), dir))
}

async fn run_load(
    base: &str,
    seconds: u64,
    senders: u64,
    frames: u64,
    interval: u64,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let url = format!("{base}/drains/heroku");
    let started = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body: String = (0..frames)
        .map(|_| format!("{} {LINE}", LINE.len()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for sender in 0..senders {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut request = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .basic_auth("bench", Some("bench"))
                    .header("Content-Type", "application/logplex-1")
                    .header("Logplex-Msg-Count", frames.to_string())
                    .header(
                        "Logplex-Frame-Id",
                        format!("{:08X}{sender:08X}{request:016X}", std::process::id()),
                    )
                    .body(body.clone())
                    .send()
                    .await
                    .expect("the server answers");
                assert_eq!(
                    response.status(),
                    204,
                    "{}",
                    response.text().await.unwrap_or_default()
                );
                latencies.push(sent.elapsed());
                request += 1;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await?);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let percentile =
        |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let lines = latencies.len() as u64 * frames;
    println!(
        "drain_bench: {seconds} s, {senders} senders, {frames} lines per request, commit every {interval} ms"
    );
    println!("  requests acknowledged: {}", latencies.len());
    println!(
        "  lines acknowledged:    {lines} ({:.0} lines/s)",
        lines as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  ack latency:           p50 {:?}  p99 {:?}  max {:?}",
        percentile(0.50),
        percentile(0.99),
        latencies.last().unwrap()
    );
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    for line in metrics
        .lines()
        .filter(|l| l.contains("commit") || l.contains("rows_total"))
    {
        println!("  {line}");
    }
    Ok(())
}
