//! `inlet serve` with the heroku-logplex connector, as a real process: logplex bodies become rows
//! only once a commit made them durable, bad requests get 4xx with a reason, and a kill between
//! accept and commit loses nothing that was acknowledged; slow senders are cut off and
//! connections beyond the cap are refused.

use super::cache_dir;
use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use inlet_host::lake::{Lake, read_committed};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const AUTH: (&str, &str) = ("drain", "s3cret");
const TOKEN: &str = "d.2f1e9c3a-7a5b-4c3e-9f00-1a2b3c4d5e6f";

fn config(dir: &Path, interval_ms: u64) {
    config_with(dir, interval_ms, "");
}

fn config_with(dir: &Path, interval_ms: u64, extra: &str) {
    let text = format!(
        r#"
[lake]
url = "lake"
{extra}

[connections.heroku]
connector = "heroku-logplex"

[connections.heroku.drain]
basic_auth = "{}:{}"
drain_token = "{TOKEN}"
commit_interval_ms = {interval_ms}
max_body_bytes = 65536
"#,
        AUTH.0, AUTH.1
    );
    std::fs::write(dir.join("inlet.toml"), text).unwrap();
}

/// A running `inlet serve` and its base URL.
struct Server {
    child: Child,
    url: String,
}

/// A test that fails half-way must not leave its server running (it would outlive the test run).
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_inlet"))
            .current_dir(dir)
            .args(["serve", "inlet.toml", "--listen", "127.0.0.1:0"])
            .env("INLET_CACHE_DIR", cache_dir())
            .env("INLET_LOG_FORMAT", "text")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("inlet serve printed where it listens")
                .unwrap();
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining stderr so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        Self { child, url }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// Octet-counted frames, as Logplex sends them.
fn body(messages: &[&str]) -> String {
    messages
        .iter()
        .map(|m| format!("{} {m}", m.len()))
        .collect()
}

const ROUTER: &str = "<158>1 2024-05-01T10:00:00.123456+00:00 host heroku router - at=info method=GET path=\"/orders?page=2\" host=shop.herokuapp.com request_id=8601b555-6a76-4d1c-b8ae-4c4d3b2f6a11 fwd=\"203.0.113.7\" dyno=web.1 connect=1ms service=42ms status=200 bytes=1548 protocol=https\n";
const APP: &str =
    "<190>1 2024-05-01T10:00:01+09:00 host app web.1 - Started GET \"/orders\" for 203.0.113.7\n";
const MULTILINE: &str = "<190>1 2024-05-01T10:00:02.5Z host app worker.2 - Traceback (most recent call last):\n  File \"job.py\", line 3\nKeyError: 'sku'\n";
const BROKEN: &str = "this is not syslog";

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: String,
    frames: usize,
    frame_id: &str,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{url}/drains/heroku"))
        .basic_auth(AUTH.0, Some(AUTH.1))
        .header("Content-Type", "application/logplex-1")
        .header("Logplex-Msg-Count", frames.to_string())
        .header("Logplex-Frame-Id", frame_id)
        .header("Logplex-Drain-Token", TOKEN)
        .body(body)
        .send()
        .await
}

fn rows(dir: &Path, stream: &str) -> Vec<arrow_array::RecordBatch> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let lake = Lake::open(dir.join("lake").to_str().unwrap()).unwrap();
    runtime
        .block_on(read_committed(&lake, "heroku", stream))
        .unwrap_or_default()
}

fn count(batches: &[arrow_array::RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

#[test]
fn logplex_bodies_become_rows_and_bad_requests_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), 200);
    let server = Server::start(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    runtime.block_on(async {
        let response = post(
            &client,
            &server.url,
            body(&[ROUTER, APP, MULTILINE, BROKEN]),
            4,
            "frame-1",
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 204);
        // A retried delivery of the same frame: acknowledged, not written twice.
        let again = post(
            &client,
            &server.url,
            body(&[ROUTER, APP, MULTILINE, BROKEN]),
            4,
            "frame-1",
        )
        .await
        .unwrap();
        assert_eq!(again.status(), 204);
        assert_eq!(again.headers()["x-inlet-duplicate"], "true");

        let refused = |response: reqwest::Response| async move {
            (response.status().as_u16(), response.text().await.unwrap())
        };
        let (status, _) = refused(
            client
                .post(format!("{}/drains/heroku", server.url))
                .basic_auth(AUTH.0, Some("wrong"))
                .header("Logplex-Drain-Token", TOKEN)
                .body(body(&[APP]))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 401);
        let (status, _) = refused(
            client
                .post(format!("{}/drains/heroku", server.url))
                .basic_auth(AUTH.0, Some(AUTH.1))
                .header("Logplex-Drain-Token", "d.someone-else")
                .body(body(&[APP]))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 401, "the drain token must match too");
        let truncated = format!("{} {}", APP.len() + 40, APP);
        let (status, reason) = refused(
            post(&client, &server.url, truncated, 1, "frame-2")
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400);
        assert!(
            reason.contains("declares") && reason.contains("remain"),
            "{reason}"
        );
        let (status, reason) = refused(
            post(&client, &server.url, "garbage!".into(), 1, "frame-3")
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400);
        assert!(reason.contains("octet counting"), "{reason}");
        let (status, reason) = refused(
            post(&client, &server.url, body(&[APP]), 3, "frame-4")
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400);
        assert!(reason.contains("Logplex-Msg-Count says 3"), "{reason}");
        let (status, _) = refused(
            post(
                &client,
                &server.url,
                body(&[&"x".repeat(70_000)]),
                1,
                "frame-5",
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, 413);
        let (status, _) = refused(
            client
                .get(format!("{}/drains/heroku", server.url))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 405);
        let (status, _) = refused(
            client
                .get(format!("{}/healthz", server.url))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        let (status, metrics) = refused(
            client
                .get(format!("{}/metrics", server.url))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            metrics.contains("inlet_drain_rows_total{drain=\"heroku\",stream=\"logs\"} 3"),
            "{metrics}"
        );
        assert!(
            metrics.contains("inlet_drain_rows_total{drain=\"heroku\",stream=\"rejected\"} 1"),
            "{metrics}"
        );
    });
    let status = server.terminate();
    assert!(status.success(), "a graceful stop: {status}");

    let logs = rows(dir.path(), "logs");
    assert_eq!(count(&logs), 3, "three parsed frames, once");
    let batch = arrow_select::concat::concat_batches(&logs[0].schema(), &logs).unwrap();
    let text = |name: &str, row: usize| -> Option<String> {
        let column = batch.column_by_name(name).unwrap().as_string::<i32>();
        (!column.is_null(row)).then(|| column.value(row).to_owned())
    };
    assert_eq!(text("app_name", 0).as_deref(), Some("heroku"));
    assert_eq!(text("proc_id", 0).as_deref(), Some("router"));
    assert_eq!(text("path", 0).as_deref(), Some("/orders?page=2"));
    assert_eq!(text("fwd", 0).as_deref(), Some("203.0.113.7"));
    assert_eq!(text("dyno", 0).as_deref(), Some("web.1"));
    let number = |name: &str| {
        batch
            .column_by_name(name)
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(0)
    };
    assert_eq!(
        (
            number("connect_ms"),
            number("service_ms"),
            number("status"),
            number("bytes")
        ),
        (1, 42, 200, 1548)
    );
    let times = batch
        .column_by_name("timestamp")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    assert_eq!(times.value(0), 1_714_557_600_123_456);
    assert_eq!(
        times.value(1),
        1_714_557_600_000_000 + 1_000_000 - 9 * 3_600_000_000,
        "+09:00 converted to UTC"
    );
    assert_eq!(text("path", 1), None, "app lines have no router fields");
    assert_eq!(
        text("message", 2).as_deref(),
        Some("Traceback (most recent call last):\n  File \"job.py\", line 3\nKeyError: 'sku'"),
        "a multi-line message stays one row"
    );
    assert_eq!(text("frame_id", 0).as_deref(), Some("frame-1"));
    let rejected = rows(dir.path(), "rejected");
    assert_eq!(count(&rejected), 1);
    assert_eq!(
        rejected[0]
            .column_by_name("raw")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        BROKEN
    );
}

#[test]
fn a_kill_between_accept_and_commit_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), 3000);
    let server = Server::start(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let acknowledged = runtime
        .block_on(post(&client, &server.url, body(&[APP]), 1, "a"))
        .unwrap();
    assert_eq!(
        acknowledged.status(),
        204,
        "acknowledged after the group commit"
    );
    // B is accepted and waits for the next commit, which the kill prevents.
    let pending = {
        let (client, url) = (client.clone(), server.url.clone());
        runtime.spawn(async move { post(&client, &url, body(&[ROUTER, MULTILINE]), 2, "b").await })
    };
    std::thread::sleep(Duration::from_millis(700));
    server.kill();
    let outcome = runtime.block_on(pending).unwrap();
    assert!(outcome.is_err(), "B got no 2xx: {outcome:?}");
    assert_eq!(count(&rows(dir.path(), "logs")), 1, "only A is durable");

    // Logplex retries B against the restarted server: written once.
    let server = Server::start(dir.path());
    let retried = runtime
        .block_on(post(
            &client,
            &server.url,
            body(&[ROUTER, MULTILINE]),
            2,
            "b",
        ))
        .unwrap();
    assert_eq!(retried.status(), 204);
    // A, delivered again after the restart, is known from the committed state.
    let again = runtime
        .block_on(post(&client, &server.url, body(&[APP]), 1, "a"))
        .unwrap();
    assert_eq!(again.status(), 204);
    assert_eq!(again.headers()["x-inlet-duplicate"], "true");
    assert!(server.terminate().success());
    assert_eq!(count(&rows(dir.path(), "logs")), 3);
}

/// Reads whatever the server sends until it closes the connection (or 10 s pass).
fn read_to_close(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn slow_senders_are_cut_off_and_connections_beyond_the_cap_are_refused() {
    use std::io::Write;
    use std::net::TcpStream;
    let dir = tempfile::tempdir().unwrap();
    config_with(
        dir.path(),
        100,
        "[serve]\nmax_connections = 2\nheader_timeout_seconds = 2\nbody_timeout_seconds = 1\n",
    );
    let server = Server::start(dir.path());
    let address = server.url.trim_start_matches("http://").to_owned();

    // Two connections that send half a request line hold both slots.
    let mut slow: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = TcpStream::connect(&address).unwrap();
            stream.write_all(b"POST /drains/heroku HT").unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut third = TcpStream::connect(&address).unwrap();
    let answer = read_to_close(&mut third);
    assert!(
        answer.starts_with("HTTP/1.1 503") && answer.contains("Retry-After: 1"),
        "{answer}"
    );
    assert!(answer.ends_with("too many connections\n"), "{answer}");

    // The header timeout closes the slow ones, which frees their slots.
    let started = std::time::Instant::now();
    for stream in &mut slow {
        let answer = read_to_close(stream);
        assert!(
            !answer.contains(" 2"),
            "no success for a half request: {answer}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(9));

    // A body that stops arriving: 408, and no row.
    let mut stalled = TcpStream::connect(&address).unwrap();
    let credentials = base64_basic(AUTH.0, AUTH.1);
    write!(
        stalled,
        "POST /drains/heroku HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {credentials}\r\nLogplex-Drain-Token: {TOKEN}\r\nContent-Type: application/logplex-1\r\nContent-Length: 500\r\n\r\n{}",
        &body(&[APP])[..20]
    )
    .unwrap();
    let answer = read_to_close(&mut stalled);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 1 s"), "{answer}");

    // The server still answers normally, and is healthy.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    runtime.block_on(async {
        let ok = post(&client, &server.url, body(&[APP]), 1, "after")
            .await
            .unwrap();
        assert_eq!(ok.status(), 204);
        let ready = client
            .get(format!("{}/readyz", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
    });
    assert!(server.terminate().success());
    assert_eq!(count(&rows(dir.path(), "logs")), 1);
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

#[test]
fn serve_refuses_a_lake_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    config_with(dir.path(), 100, "");
    let path = dir.path().join("inlet.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("url = \"lake\"", "url = \"memory://\"");
    std::fs::write(&path, text).unwrap();
    let output = super::inlet(
        dir.path(),
        &["serve", "inlet.toml", "--listen", "127.0.0.1:0"],
    );
    assert!(!output.status.success(), "{}", super::text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("the lake `memory://` lives in this process's memory"),
        "{}",
        super::text(&output)
    );
}

#[test]
fn serve_killed_at_random_keeps_every_acknowledged_request_once() {
    use arrow_array::cast::AsArray;
    let seed = super::fault_seed();
    let mut rng = super::FaultRng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), 100);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    for round in 0..5 {
        let server = Server::start(dir.path());
        // Four senders post one-frame requests until the server is gone.
        let senders: Vec<_> = (0..4)
            .map(|sender| {
                let (client, url) = (client.clone(), server.url.clone());
                runtime.spawn(async move {
                    let mut acked = Vec::new();
                    for i in 0.. {
                        let message = format!(
                            "<190>1 2024-05-01T10:00:00Z host app web.1 - r{round} s{sender} m{i}\n"
                        );
                        let id = format!("f-{round}-{sender}-{i}");
                        match post(&client, &url, body(&[&message]), 1, &id).await {
                            Ok(response) if response.status().is_success() => acked
                                .push(message.trim_end().split(" - ").nth(1).unwrap().to_owned()),
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                    acked
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150 + rng.next_u64() % 1_500));
        server.kill();
        for sender in senders {
            acknowledged.extend(runtime.block_on(sender).unwrap());
        }
    }
    let mut stored: Vec<String> = rows(dir.path(), "logs")
        .iter()
        .flat_map(|b| {
            b.column_by_name("message")
                .unwrap()
                .as_string::<i32>()
                .iter()
                .map(|m| m.unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    stored.sort();
    let before = stored.len();
    stored.dedup();
    assert_eq!(before, stored.len(), "seed {seed}: a request stored twice");
    assert!(
        !acknowledged.is_empty(),
        "seed {seed}: some requests were acknowledged"
    );
    for message in &acknowledged {
        assert!(
            stored.binary_search(message).is_ok(),
            "seed {seed}: acknowledged `{message}` is not in the lake"
        );
    }
}
