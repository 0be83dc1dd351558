//! The command line as a user meets it: the quickstart, state, ad-hoc sync and its errors.

use super::{files_under, inlet, text};
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
        stderr.contains("connector `postgress` is neither a built-in connector (firestore, google-ads, google-sheets, heroku-logplex, meta-ads, postgres, sample)"),
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
    assert_eq!(
        spec["credentials"],
        serde_json::json!([]),
        "sample asks for none"
    );

    // A connector that asks for a credential: listed, with the table that would grant it.
    let output = inlet(dir.path(), &["spec", "google-sheets"]);
    let spec: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        spec["credentials"][0]["scopes"][0],
        "https://www.googleapis.com/auth/spreadsheets.readonly"
    );
    let review = String::from_utf8_lossy(&output.stderr);
    assert!(
        review.contains("[connections.<connection>.grants.google]")
            && review.contains("hosts = [\"sheets.googleapis.com\"]"),
        "{review}"
    );
}

#[test]
fn read_stops_at_its_limit_and_prints_decimals_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let output = inlet(
        dir.path(),
        &[
            "read",
            "sample",
            "--set",
            "patients=200000",
            "--stream",
            "orders",
            "--limit",
            "3",
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("checkpoint:"),
        "the read ended before the connector's end-of-stream checkpoint: {stderr}"
    );
    // Decimal(12, 2) keeps its two digits (a float would print 12.5 for 12.50).
    for line in stdout.lines() {
        let total = line
            .split("\"total\":")
            .nth(1)
            .and_then(|rest| rest.split([',', '}']).next())
            .unwrap_or_else(|| panic!("no total in {line}"));
        let (_, cents) = total.split_once('.').unwrap_or_else(|| panic!("{total}"));
        assert_eq!(cents.len(), 2, "{line}");
    }
}

#[test]
fn an_unnamed_sync_of_another_source_does_not_take_the_existing_connection() {
    let dir = tempfile::tempdir().unwrap();
    let sync = |patients: &str, extra: &[&str]| {
        let set = format!("patients={patients}");
        let mut args = vec!["sync", "sample", "--to", "lake", "--set", &set];
        args.extend_from_slice(extra);
        inlet(dir.path(), &args)
    };
    let first = sync("5", &[]);
    assert!(first.status.success(), "{}", text(&first));
    let again = sync("5", &[]);
    assert!(
        again.status.success(),
        "the same source goes on: {}",
        text(&again)
    );
    let other = sync("6", &[]);
    assert!(!other.status.success());
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(
        stderr.contains("connection `sample` in this lake holds another source")
            && stderr.contains("--connection <name>"),
        "{stderr}"
    );
    let named = sync("6", &["--connection", "sample_six"]);
    assert!(named.status.success(), "{}", text(&named));
    let forced = sync("6", &["--connection", "sample"]);
    assert!(forced.status.success(), "{}", text(&forced));
}

pub fn pg() -> &'static super::postgres::PgServer {
    static SERVER: std::sync::OnceLock<super::postgres::PgServer> = std::sync::OnceLock::new();
    SERVER.get_or_init(super::postgres::PgServer::start)
}

#[test]
fn reading_postgres_stops_at_the_limit_prints_numerics_exactly_and_takes_quoted_set_paths() {
    let pg = pg();
    let db = pg.database("cli_read");
    pg.sql(&db, "CREATE TABLE amounts (id int8 PRIMARY KEY, exact numeric(38,10) NOT NULL);
        INSERT INTO amounts SELECT i, 1234567890123456789.0123456780 + i FROM generate_series(1, 300000) i;");
    let dir = tempfile::tempdir().unwrap();
    let port = pg.port.to_string();
    let port_setting = format!("port={port}");
    let database = format!("database={db}");
    let read = |extra: &[&str]| {
        let mut args = vec![
            "read",
            "postgres",
            "--allow-private-network",
            "--set",
            "host=127.0.0.1",
            "--set",
            &port_setting,
            "--set",
            "user=postgres",
            "--set",
            &database,
            "--stream",
            "public.amounts",
            "--limit",
            "2",
        ];
        args.extend_from_slice(extra);
        inlet(dir.path(), &args)
    };
    let output = read(&[]);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            r#"{"stream":"public.amounts","record":{"id":1,"exact":1234567890123456790.0123456780}}"#,
            r#"{"stream":"public.amounts","record":{"id":2,"exact":1234567890123456791.0123456780}}"#,
        ]
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("checkpoint:") && !stderr.contains("300000 rows"),
        "the read stopped long before the table's end: {stderr}"
    );

    let filtered = read(&["--set", r#"tables."public.amounts".where=id > 299998"#]);
    assert!(filtered.status.success(), "{}", text(&filtered));
    let stdout = String::from_utf8_lossy(&filtered.stdout);
    assert!(
        stdout.contains(r#""id":299999"#) && stdout.contains(r#""id":300000"#),
        "{stdout}"
    );
}

/// Runs the README's recipe for the current rows of a stream (DuckDB, in tests/.venv) and returns
/// `id,v` per row, sorted.
fn current_rows(dir: &Path, connection: &str, stream: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join("tests/.venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run tests/run.sh, which installs it",
        python.display()
    );
    let output = std::process::Command::new(python)
        .arg(root.join("examples/read-lake/current_rows.py"))
        .args(["lake", connection, stream])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let csv = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (id, v) = (column("id"), column("v"));
    let mut rows: Vec<String> = lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            format!("{},{}", fields[id], fields[v])
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn the_readme_recipe_reads_the_current_rows_of_a_stream() {
    let pg = pg();
    let db = pg.database("cli_current");
    pg.sql(&db, "CREATE TABLE items (id int8 PRIMARY KEY, v text, updated_at timestamptz NOT NULL DEFAULT clock_timestamp());
        INSERT INTO items (id, v) VALUES (1, 'one'), (2, 'two'), (3, 'three');");
    let dir = tempfile::tempdir().unwrap();
    let port = format!("port={}", pg.port);
    let database = format!("database={db}");
    let sync = |extra: &[&str]| {
        let mut args = vec![
            "sync",
            "postgres",
            "--to",
            "lake",
            "--connection",
            "shop",
            "--allow-private-network",
            "--set",
            "host=127.0.0.1",
            "--set",
            &port,
            "--set",
            "user=postgres",
            "--set",
            &database,
        ];
        args.extend_from_slice(extra);
        let output = inlet(dir.path(), &args);
        assert!(output.status.success(), "{}", text(&output));
    };
    sync(&[]);
    pg.sql(&db, "UPDATE items SET v = 'two!', updated_at = clock_timestamp() WHERE id = 2; INSERT INTO items (id, v) VALUES (4, 'four');");
    sync(&[]);
    assert_eq!(
        current_rows(dir.path(), "shop", "public.items"),
        ["1,one", "2,two!", "3,three", "4,four"],
        "one row per key, the newest"
    );
    // A full copy replaces what came before it: the deleted row is gone.
    pg.sql(
        &db,
        "DELETE FROM items WHERE id = 3; ALTER TABLE items ADD COLUMN note text;",
    );
    sync(&["--full-refresh"]);
    pg.sql(
        &db,
        "INSERT INTO items (id, v, note) VALUES (5, 'five', 'added later');",
    );
    sync(&[]);
    assert_eq!(
        current_rows(dir.path(), "shop", "public.items"),
        ["1,one", "2,two!", "4,four", "5,five"]
    );
}

#[test]
fn ctrl_c_says_what_was_kept() {
    let dir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_inlet"))
        .current_dir(dir.path())
        .args([
            "sync",
            "sample",
            "--to",
            "lake",
            "--set",
            "patients=5000000",
        ])
        .env("INLET_CACHE_DIR", super::cache_dir())
        .env("INLET_LOG_FORMAT", "text")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the sync is under way (a commit or progress shows in the lake folder).
    let started = std::time::Instant::now();
    while !dir.path().join("lake/sample").exists() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted: every commit written before now is kept"),
        "{stderr}"
    );
}

#[test]
fn json_log_lines_are_cloud_logging_records_labelled_with_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    copy_quickstart(dir.path());
    let json = |args: &[&str], env: &[(&str, &str)]| {
        let output = super::inlet_with_env(dir.path(), args, env);
        let stderr = String::from_utf8(output.stderr.clone()).unwrap();
        let records: Vec<serde_json::Value> = stderr
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{stderr}"))
            })
            .collect();
        (output, records)
    };
    // `auto` picks JSON on Cloud Run even though the tests' stderr is piped anyway.
    let (output, records) = json(
        &["-v", "run", "examples/quickstart/inlet.toml"],
        &[("INLET_LOG_FORMAT", "auto"), ("K_SERVICE", "inlet")],
    );
    assert!(output.status.success(), "{}", text(&output));
    for record in &records {
        let severity = record["severity"].as_str().unwrap();
        assert!(
            ["DEBUG", "INFO", "WARNING", "ERROR"].contains(&severity),
            "{record}"
        );
        assert!(record["message"].is_string(), "{record}");
        let time = record["time"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(time).is_ok(),
            "{record}"
        );
    }
    let commits: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["message"].as_str().unwrap().starts_with("commit #"))
        .collect();
    assert!(!commits.is_empty(), "{records:?}");
    for commit in commits {
        assert_eq!(
            commit["logging.googleapis.com/labels"]["connection"], "pharmacy",
            "{commit}"
        );
    }
    // A failure is an ERROR record, not a text line.
    let (output, records) = json(
        &[
            "--log-format",
            "json",
            "run",
            "examples/quickstart/inlet.toml",
            "--connection",
            "nope",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        records.iter().any(|r| r["severity"] == "ERROR"
            && r["message"]
                .as_str()
                .unwrap()
                .contains("no connection `nope`")),
        "{records:?}"
    );
}

/// Rows of `stream` in the summary table `inlet run` printed.
fn summary_rows(stderr: &str, stream: &str) -> Option<u64> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("pharmacy") && l.split_whitespace().nth(1) == Some(stream))?;
    line.split_whitespace()
        .nth(2)?
        .replace(',', "")
        .parse()
        .ok()
}

#[test]
fn one_stream_is_reset_and_run_takes_streams_and_full_refresh() {
    let dir = tempfile::tempdir().unwrap();
    copy_quickstart(dir.path());
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "examples/quickstart/inlet.toml"];
        args.extend_from_slice(extra);
        let output = inlet(dir.path(), &args);
        assert!(output.status.success(), "{}", text(&output));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let first = run(&[]);
    let all_orders = summary_rows(&first, "orders").unwrap();
    run(&[]);
    let reset = inlet(
        dir.path(),
        &[
            "state",
            "reset",
            "pharmacy",
            "--stream",
            "orders",
            "--file",
            "examples/quickstart/inlet.toml",
        ],
    );
    assert!(reset.status.success(), "{}", text(&reset));
    let said = String::from_utf8_lossy(&reset.stdout);
    assert!(said.contains("removed state: orders.updated_at"), "{said}");
    let after_reset = state(dir.path());
    assert!(after_reset["state"].get("orders.updated_at").is_none());
    assert!(after_reset["state"].get("patients.updated_at").is_some());

    let third = run(&[]);
    let orders = summary_rows(&third, "orders").unwrap();
    let patients = summary_rows(&third, "patients").unwrap();
    assert!(orders > all_orders, "orders read in full again: {third}");
    assert!(
        (50..=70).contains(&patients),
        "patients from their cursor: {third}"
    );
    assert!(
        state(dir.path())["state"]
            .get("orders.updated_at")
            .is_some()
    );

    // `--stream` and `--full-refresh` as `inlet sync` has them.
    let only = run(&["--stream", "patients", "--full-refresh"]);
    assert!(summary_rows(&only, "patients").unwrap() > 1_000, "{only}");
    assert_eq!(summary_rows(&only, "orders"), None, "{only}");
}

#[test]
fn connector_test_reports_each_check_and_fails_with_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let steady = inlet(
        dir.path(),
        &[
            "connector",
            "test",
            "sample",
            "--set",
            "patients=50",
            "--set",
            "generation=1",
        ],
    );
    assert!(steady.status.success(), "{}", text(&steady));
    let report = String::from_utf8_lossy(&steady.stdout);
    assert!(report.contains("  ok    discover: 3 streams"), "{report}");
    assert!(
        report.contains(
            "  skip  push: opens with the settings and answers its state: a pull connector"
        ),
        "{report}"
    );
    assert!(
        report.trim_end().ends_with("all 10 checks passed"),
        "{report}"
    );
    // A push connector whose `read` refuses is opened instead; its reads are skipped, not failed.
    let drain = inlet(dir.path(), &["connector", "test", "heroku-logplex"]);
    assert!(drain.status.success(), "{}", text(&drain));
    let report = String::from_utf8_lossy(&drain.stdout);
    assert!(
        report.contains("  ok    push: opens with the settings and answers its state"),
        "{report}"
    );
    assert!(
        report.contains("  skip  first read: a push connector whose `read` refuses"),
        "{report}"
    );
    // Settings the connector refuses: `check` fails with its message, what needs it is skipped.
    let refused = inlet(
        dir.path(),
        &["connector", "test", "sample", "--set", "patients=many"],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let report = String::from_utf8_lossy(&refused.stdout);
    assert!(report.contains("  FAIL  check: "), "{report}");
    assert!(
        report.contains("  skip  first read: needs discover"),
        "{report}"
    );
    assert!(report.contains("checks failed"), "{report}");
}

/// The codec of every column chunk of every Parquet file under `dir`.
fn codecs_under(dir: &Path) -> std::collections::BTreeSet<String> {
    let mut codecs = std::collections::BTreeSet::new();
    for entry in files_under(dir) {
        if entry.extension().is_some_and(|e| e == "parquet") {
            let file = std::fs::File::open(&entry).unwrap();
            let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
            let metadata = parquet::file::reader::FileReader::metadata(&reader);
            for row_group in metadata.row_groups() {
                for column in row_group.columns() {
                    codecs.insert(column.compression().to_string());
                }
            }
        }
    }
    codecs
}

#[test]
fn the_lake_codec_is_snappy_unless_the_config_or_the_sync_command_says_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let config = copy_quickstart(dir.path());
    let run = inlet(dir.path(), &["run", "examples/quickstart/inlet.toml"]);
    assert!(run.status.success(), "{}", text(&run));
    let snappy = codecs_under(&dir.path().join("lake"));
    assert_eq!(snappy.into_iter().collect::<Vec<_>>(), ["SNAPPY"]);

    let written = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        written.replace(
            "url = \"../../lake\"",
            "url = \"../../zstd-lake\"\ncompression = \"zstd\"",
        ),
    )
    .unwrap();
    let run = inlet(dir.path(), &["run", "examples/quickstart/inlet.toml"]);
    assert!(run.status.success(), "{}", text(&run));
    let zstd = codecs_under(&dir.path().join("zstd-lake"));
    assert_eq!(zstd.into_iter().collect::<Vec<_>>(), ["ZSTD(ZstdLevel(1))"]);

    let sync = inlet(
        dir.path(),
        &[
            "sync",
            "sample",
            "--to",
            "plain-lake",
            "--compression",
            "none",
        ],
    );
    assert!(sync.status.success(), "{}", text(&sync));
    let none = codecs_under(&dir.path().join("plain-lake"));
    assert_eq!(none.into_iter().collect::<Vec<_>>(), ["UNCOMPRESSED"]);

    std::fs::write(
        &config,
        written.replace("[lake]", "[lake]\ncompression = \"gzip\""),
    )
    .unwrap();
    let refused = inlet(dir.path(), &["run", "examples/quickstart/inlet.toml"]);
    assert!(!refused.status.success());
    let message = text(&refused);
    assert!(
        message.contains("gzip") && message.contains("`snappy`, `zstd`"),
        "{message}"
    );
}
