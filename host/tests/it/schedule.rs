//! Schedules in `inlet serve`, as a real process on a real lake: a scheduled connection syncs again
//! and again (incrementally) until SIGTERM, a failing one is retried without stopping the others,
//! and `$PORT` decides where the server listens when `--listen` is not given.

use super::cache_dir;
use inlet_host::lake::{History, Lake};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for something that should happen within seconds.
const PATIENCE: Duration = Duration::from_secs(120);

/// A running `inlet serve`, its URL and everything it printed so far.
struct Server {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
}

/// A test that fails half-way must not leave its server running (it would outlive the test run).
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_inlet"));
        command
            .current_dir(dir)
            .args(["serve", "inlet.toml"])
            .args(args)
            .env("INLET_CACHE_DIR", cache_dir())
            .env("INLET_LOG_FORMAT", "text")
            .env_remove("PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = loop {
            let line = match lines.next() {
                Some(Ok(line)) => line,
                _ => panic!(
                    "inlet serve ended before listening:\n{}",
                    log.lock().unwrap()
                ),
            };
            log.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        let shared = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                shared.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Self { child, url, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn get(&self, path: &str) -> (u16, String) {
        http_get(&self.url.replace("0.0.0.0", "127.0.0.1"), path)
    }

    /// The value of `metric{labels}` on `/metrics`.
    fn metric(&self, metric: &str, labels: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics");
        let prefix = format!("{metric}{{{labels}}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
    }

    /// Waits until `done` holds, failing with the log after [`PATIENCE`].
    fn wait_for(&mut self, what: &str, mut done: impl FnMut(&Self) -> bool) {
        let start = Instant::now();
        while !done(self) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "inlet serve exited ({status}) before {what}:\n{}",
                    self.log()
                );
            }
            assert!(
                start.elapsed() < PATIENCE,
                "waited {PATIENCE:?} for {what}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        // The reader thread sees the pipe close with the process.
        std::thread::sleep(Duration::from_millis(100));
        (status, self.log())
    }
}

/// A GET over a plain connection: status and body.
fn http_get(base: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    (status, body)
}

const PHARMACY: &str = r#"
[connections.pharmacy]
connector = "sample"
config = { patients = 200, new_per_run = 10, updates_per_run = 5 }
schedule = "every 2s"
"#;

/// Rows committed per run of `connection`, in commit order.
fn rows_per_run(dir: &Path, connection: &str) -> Vec<(String, u64)> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let lake = Lake::open(dir.join("lake").to_str().unwrap()).unwrap();
    let Ok(history) = runtime.block_on(History::read(&lake, connection)) else {
        return Vec::new();
    };
    let mut runs: Vec<(String, u64)> = Vec::new();
    for commit in &history.commits {
        let rows: u64 = commit.files().map(|f| f.rows).sum();
        match runs.last_mut() {
            Some((run, total)) if *run == commit.run_id => *total += rows,
            _ => runs.push((commit.run_id.clone(), rows)),
        }
    }
    runs
}

#[test]
fn a_scheduled_connection_syncs_again_and_again_incrementally_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inlet.toml"),
        format!("[lake]\nurl = \"lake\"\n{PHARMACY}"),
    )
    .unwrap();
    let mut server = Server::start(dir.path(), &["--listen", "127.0.0.1:0"], &[]);
    assert!(
        server.log().contains("schedules: pharmacy `every 2s`"),
        "{}",
        server.log()
    );
    server.wait_for("two runs", |_| {
        rows_per_run(dir.path(), "pharmacy").len() >= 2
    });
    let runs = rows_per_run(dir.path(), "pharmacy");
    let (first, second) = (runs[0].1, runs[1].1);
    // Generation 1: 200 patients, 400 consultations, 600 orders. Generation 2: 10 new patients
    // (with theirs) and 5 updated (with their consultations and orders), nothing else.
    assert_eq!(first, 1200, "the first run reads everything: {runs:?}");
    assert!(
        second > 0 && second < first / 4,
        "the second run reads only new and changed rows: {runs:?}"
    );
    server.wait_for("the metrics of two good runs", |s| {
        s.metric(
            "inlet_schedule_runs_total",
            "connection=\"pharmacy\",outcome=\"ok\"",
        )
        .is_some_and(|n| n >= 2.0)
    });
    let metric = |name: &str| {
        server
            .metric(name, "connection=\"pharmacy\"")
            .unwrap_or_else(|| panic!("{name} is on /metrics"))
    };
    assert_eq!(metric("inlet_schedule_consecutive_failures"), 0.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let last_success = metric("inlet_schedule_last_success_timestamp_seconds");
    assert!(last_success > now - 3600.0 && last_success <= now + 1.0);
    assert!(metric("inlet_schedule_next_run_timestamp_seconds") >= last_success - 3.0);
    assert!(
        server
            .metric(
                "inlet_schedule_rows_total",
                "connection=\"pharmacy\",stream=\"patients\""
            )
            .is_some_and(|n| n >= 200.0)
    );
    assert_eq!(server.get("/healthz").0, 200);
    let (status, log) = server.terminate();
    assert!(status.success(), "a clean stop on SIGTERM:\n{log}");
    assert!(log.contains("inlet serve: stopped"), "{log}");
    // Every run that finished left whole commits: the history still reads.
    assert!(rows_per_run(dir.path(), "pharmacy").len() >= 2);
}

#[test]
fn a_failing_scheduled_connection_is_retried_while_another_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: connections to it are refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.path().join("inlet.toml"),
        format!(
            r#"
[lake]
url = "lake"

[runtime]
timezone = "Asia/Tokyo"
{PHARMACY}
[connections.warehouse]
connector = "postgres"
config = {{ host = "127.0.0.1", port = {closed}, user = "app", database = "app" }}
schedule = "every 1s"

[connections.warehouse.sandbox]
allow_private_network = true
"#
        ),
    )
    .unwrap();
    let mut server = Server::start(dir.path(), &["--listen", "127.0.0.1:0"], &[]);
    server.wait_for("two failed runs of the broken connection", |s| {
        s.metric(
            "inlet_schedule_consecutive_failures",
            "connection=\"warehouse\"",
        )
        .is_some_and(|n| n >= 2.0)
    });
    server.wait_for("two good runs of the other", |s| {
        s.metric(
            "inlet_schedule_runs_total",
            "connection=\"pharmacy\",outcome=\"ok\"",
        )
        .is_some_and(|n| n >= 2.0)
    });
    assert!(
        server
            .metric(
                "inlet_schedule_runs_total",
                "connection=\"warehouse\",outcome=\"failed\""
            )
            .is_some_and(|n| n >= 2.0)
    );
    assert_eq!(
        server.metric(
            "inlet_schedule_runs_total",
            "connection=\"warehouse\",outcome=\"ok\""
        ),
        Some(0.0)
    );
    assert_eq!(
        server.metric(
            "inlet_schedule_last_success_timestamp_seconds",
            "connection=\"warehouse\""
        ),
        Some(0.0)
    );
    // A failing source is not a failing server: the platform must not restart it.
    assert_eq!(server.get("/healthz").0, 200);
    assert_eq!(server.get("/readyz").0, 200);
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("scheduled run of `warehouse` failed"),
        "the failure is logged with its cause:\n{log}"
    );
    assert!(log.contains("timezone Asia/Tokyo"), "{log}");
    assert!(rows_per_run(dir.path(), "pharmacy").len() >= 2);
    let runs: BTreeMap<_, _> = rows_per_run(dir.path(), "warehouse").into_iter().collect();
    assert!(runs.is_empty(), "the broken connection committed nothing");

    // Each scheduled run left a record: `inlet status` names the failing connection.
    let status = crate::inlet(dir.path(), &["status", "--json"]);
    assert_eq!(status.status.code(), Some(2), "{}", crate::text(&status));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let of = |name: &str| {
        status["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["connection"] == name)
            .unwrap()
            .clone()
    };
    let warehouse = of("warehouse");
    assert_eq!(warehouse["health"], "failed");
    assert_eq!(warehouse["last_run"]["trigger"], "schedule");
    let error = warehouse["last_run"]["error"].as_str().unwrap();
    assert!(error.contains(&format!("127.0.0.1:{closed}")), "{error}");
    assert_eq!(of("pharmacy")["last_run"]["outcome"], "succeeded");
}

#[test]
fn port_from_the_environment_is_honoured_when_listen_is_not_given() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inlet.toml"),
        format!("[lake]\nurl = \"lake\"\n{PHARMACY}"),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let server = Server::start(dir.path(), &[], &[("PORT", &port)]);
    assert_eq!(
        server.url,
        format!("http://0.0.0.0:{port}"),
        "{}",
        server.log()
    );
    assert_eq!(
        http_get(&format!("http://127.0.0.1:{port}"), "/healthz").0,
        200
    );
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");

    // A bad $PORT is an error naming it; an explicit --listen wins over it.
    let output = super::inlet_with_env(dir.path(), &["serve", "inlet.toml"], &[("PORT", "80a")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("`PORT` is `80a`"), "{stderr}");
    let server = Server::start(dir.path(), &["--listen", "127.0.0.1:0"], &[("PORT", "80a")]);
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.log()
    );
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn serve_needs_a_drain_or_a_schedule() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inlet.toml"),
        "[lake]\nurl = \"lake\"\n\n[connections.pharmacy]\nconnector = \"sample\"\n",
    )
    .unwrap();
    let output = super::inlet(
        dir.path(),
        &["serve", "inlet.toml", "--listen", "127.0.0.1:0"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("needs a drain") && stderr.contains("or a schedule"),
        "{stderr}"
    );
}
