//! Change data capture from PostgreSQL (`replication = "logical"`) against a real server with
//! `wal_level = logical`: the snapshot, inserts, updates and deletes, schema changes, a lost slot,
//! resets, and `kill -9` of a syncing process at random points, after which the lake, newest row
//! per key, equals the table exactly, and no key appears twice at one log position.

use crate::harness::sync;
use crate::postgres::pg_plan;
use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use inlet_host::lake::{Lake, Tip, read_committed, reset_state, reset_streams};
use inlet_host::sync::SyncPlan;
use inlet_tests::postgres::PgServer;
use std::collections::BTreeMap;
use std::sync::OnceLock;

fn server() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(PgServer::start_logical)
}

fn cdc_plan(connection: &str, db: &str) -> SyncPlan {
    let mut config = server().config(db);
    config["replication"] = "logical".into();
    pg_plan(connection, config)
}

/// A cell as text (`NULL` for a null or a column the batch lacks).
fn cell(batch: &RecordBatch, column: &str, row: usize) -> String {
    match batch.column_by_name(column) {
        Some(array) if !array.is_null(row) => {
            arrow_cast::display::array_value_to_string(array, row).unwrap()
        }
        _ => "NULL".into(),
    }
}

/// The log position of the stream's newest snapshot, from the state (`X/Y`): its rows carry
/// this position minus one.
async fn snapshot_position(lake: &Lake, connection: &str, stream: &str) -> i64 {
    let tip = Tip::open(lake, connection).await.unwrap().unwrap();
    let state = tip.commit.state.expect("a state");
    let text = state[format!("{stream}.snapshot_lsn")]
        .as_str()
        .unwrap()
        .to_owned();
    let (high, low) = text.split_once('/').unwrap();
    ((i64::from_str_radix(high, 16).unwrap()) << 32) | i64::from_str_radix(low, 16).unwrap()
}

/// The lake's rows of `stream` as a loader rebuilds the table from the newest snapshot (rows
/// older than it are gone, as when a reset stream's table is replaced), newest per `id` by
/// `_inlet_lsn`, deleted ones left out. Panics when one key has two rows at one log position
/// (a change written twice).
async fn lake_rows(
    lake: &Lake,
    connection: &str,
    stream: &str,
    columns: &[&str],
) -> BTreeMap<String, Vec<String>> {
    let floor = snapshot_position(lake, connection, stream).await - 1;
    merged_rows(lake, connection, stream, columns, floor).await
}

/// The lake's rows of `stream` at or after log position `floor`, merged as [`lake_rows`] does
/// (`i64::MIN`: every row ever written, as a loader merging every commit sees them).
async fn merged_rows(
    lake: &Lake,
    connection: &str,
    stream: &str,
    columns: &[&str],
    floor: i64,
) -> BTreeMap<String, Vec<String>> {
    let batches = read_committed(lake, connection, stream).await.unwrap();
    let mut newest: BTreeMap<String, (i64, bool, Vec<String>)> = BTreeMap::new();
    for batch in &batches {
        let lsn = batch
            .column_by_name("_inlet_lsn")
            .expect("_inlet_lsn")
            .as_primitive::<Int64Type>();
        let deleted = batch
            .column_by_name("_inlet_deleted")
            .expect("_inlet_deleted")
            .as_boolean();
        for row in 0..batch.num_rows() {
            if lsn.value(row) < floor {
                continue;
            }
            let id = cell(batch, "id", row);
            let values = columns.iter().map(|c| cell(batch, c, row)).collect();
            let entry = (lsn.value(row), deleted.value(row), values);
            match newest.get(&id) {
                Some(seen) => {
                    assert_ne!(
                        seen.0, entry.0,
                        "{stream}: key {id} written twice at log position {}",
                        entry.0
                    );
                    if entry.0 > seen.0 {
                        newest.insert(id, entry);
                    }
                }
                None => {
                    newest.insert(id, entry);
                }
            }
        }
    }
    newest
        .into_iter()
        .filter(|(_, (_, deleted, _))| !deleted)
        .map(|(id, (_, _, values))| (id, values))
        .collect()
}

/// The table's rows, by `id`, as text.
fn table_rows(db: &str, table: &str, columns: &[&str]) -> BTreeMap<String, Vec<String>> {
    let list = columns
        .iter()
        .map(|c| format!("coalesce({c}::text, 'NULL')"))
        .collect::<Vec<_>>()
        .join(" || '|' || ");
    let out = server().sql(
        db,
        &format!("SELECT id::text || '|' || {list} FROM {table}"),
    );
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut parts = line.split('|').map(str::to_owned);
            let id = parts.next().unwrap();
            (id, parts.collect())
        })
        .collect()
}

fn logs(recorder: &crate::harness::Recorder) -> String {
    recorder.logs.lock().unwrap().join("\n")
}

/// Asserts the connector logged a line containing `text`, printing its log when not.
fn assert_logged(recorder: &crate::harness::Recorder, text: &str) {
    let logs = logs(recorder);
    assert!(
        logs.contains(text),
        "no log line contains {text:?}:\n{logs}"
    );
}

#[tokio::test]
async fn snapshot_then_inserts_updates_deletes_and_schema_changes() {
    let pg = server();
    let db = pg.database("cdc_changes");
    pg.sql(
        &db,
        "CREATE TABLE a (id int PRIMARY KEY, v text);
         CREATE TABLE b (id int PRIMARY KEY, n int4);
         INSERT INTO a VALUES (1, 'one'), (2, 'two'), (3, NULL);
         INSERT INTO b VALUES (1, 10), (2, 20);",
    );
    let lake = Lake::in_memory();
    let plan = cdc_plan("cdc_changes", &db);
    let (result, recorder) = sync(&lake, &plan).await;
    let report = result.unwrap();
    assert_eq!(report.streams["public.a"].rows, 3);
    assert_eq!(report.streams["public.b"].rows, 2);
    assert_logged(&recorder, "creating replication slot `inlet_cdc_changes`");
    assert_eq!(
        lake_rows(&lake, "cdc_changes", "public.a", &["v"]).await,
        table_rows(&db, "a", &["v"])
    );

    // Changes: an insert, updates (two of one row in one transaction), a delete, a key change.
    pg.sql(
        &db,
        "INSERT INTO a VALUES (4, 'four');
         UPDATE a SET v = 'uno' WHERE id = 1;
         DELETE FROM a WHERE id = 2;
         BEGIN; UPDATE b SET n = 11 WHERE id = 1; UPDATE b SET n = 12 WHERE id = 1; COMMIT;
         UPDATE b SET id = 3 WHERE id = 2;",
    );
    let mut warned = plan.clone();
    warned.config["slot_lag_warn_bytes"] = 0.into();
    let (result, recorder) = sync(&lake, &warned).await;
    result.unwrap();
    assert_logged(&recorder, "replication slot `inlet_cdc_changes` holds back");
    assert_logged(&recorder, "more than slot_lag_warn_bytes = 0");
    assert_eq!(
        lake_rows(&lake, "cdc_changes", "public.a", &["v"]).await,
        table_rows(&db, "a", &["v"])
    );
    assert_eq!(
        lake_rows(&lake, "cdc_changes", "public.b", &["n"]).await,
        table_rows(&db, "b", &["n"])
    );
    // The delete is a row with its key, flagged, the other columns NULL.
    let batches = read_committed(&lake, "cdc_changes", "public.a")
        .await
        .unwrap();
    let deleted: Vec<(String, String)> = batches
        .iter()
        .flat_map(|b| {
            (0..b.num_rows())
                .filter(|&r| {
                    b.column_by_name("_inlet_deleted")
                        .unwrap()
                        .as_boolean()
                        .value(r)
                })
                .map(|r| (cell(b, "id", r), cell(b, "v", r)))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(deleted, [("2".to_owned(), "NULL".to_owned())]);

    // An added column and a widened type reach the lake's schema.
    pg.sql(
        &db,
        "ALTER TABLE a ADD COLUMN extra text;
         INSERT INTO a VALUES (5, 'five', 'more');
         UPDATE a SET extra = 'x' WHERE id = 1;
         ALTER TABLE b ALTER COLUMN n TYPE int8;
         UPDATE b SET n = 5000000000 WHERE id = 1;",
    );
    let (result, _) = sync(&lake, &plan).await;
    result.unwrap();
    let batches = read_committed(&lake, "cdc_changes", "public.a")
        .await
        .unwrap();
    assert!(batches[0].schema().field_with_name("extra").is_ok());
    assert_eq!(
        lake_rows(&lake, "cdc_changes", "public.a", &["v", "extra"]).await,
        table_rows(&db, "a", &["v", "extra"])
    );
    let b = read_committed(&lake, "cdc_changes", "public.b")
        .await
        .unwrap();
    assert_eq!(
        b[0].schema().field_with_name("n").unwrap().data_type(),
        &arrow_schema::DataType::Int64
    );
    assert_eq!(
        lake_rows(&lake, "cdc_changes", "public.b", &["n"]).await,
        table_rows(&db, "b", &["n"])
    );

    // Nothing new: the run ends, with no rows.
    let (result, _) = sync(&lake, &plan).await;
    let report = result.unwrap();
    assert!(report.streams.values().all(|s| s.rows == 0), "{report:?}");
}

#[tokio::test]
async fn a_server_without_logical_wal_names_the_setting_and_cloud_sql_flag() {
    // The harness's default server runs with `wal_level = replica`.
    let pg = crate::postgres::server();
    let db = pg.database("cdc_wal_level");
    pg.sql(&db, "CREATE TABLE a (id int PRIMARY KEY);");
    let mut config = pg.config(&db);
    config["replication"] = "logical".into();
    let (result, _) = sync(&Lake::in_memory(), &pg_plan("cdc_wal_level", config)).await;
    let message = format!("{:#}", result.unwrap_err());
    assert!(message.contains("`wal_level = logical`"), "{message}");
    assert!(
        message.contains("cloudsql.logical_decoding = on"),
        "{message}"
    );
}

#[tokio::test]
async fn a_table_owner_needs_create_on_the_database_and_the_replication_attribute() {
    let pg = server();
    let db = pg.database("cdc_roles");
    pg.sql(
        &db,
        "CREATE ROLE cdc_owner LOGIN;
         CREATE TABLE a (id int PRIMARY KEY, v text);
         ALTER TABLE a OWNER TO cdc_owner;
         INSERT INTO a VALUES (1, 'one');",
    );
    let mut config = server().config(&db);
    config["replication"] = "logical".into();
    config["user"] = "cdc_owner".into();
    config["publication"] = "inlet_roles".into();
    let plan = pg_plan("cdc_roles", config);
    let lake = Lake::in_memory();
    let (result, _) = sync(&lake, &plan).await;
    let message = format!("{:#}", result.unwrap_err());
    assert!(
        message.contains("`CREATE PUBLICATION \"inlet_roles\" FOR TABLE \"public\".\"a\"`"),
        "{message}"
    );
    assert!(message.contains("GRANT CREATE ON DATABASE"), "{message}");

    pg.sql(&db, "GRANT CREATE ON DATABASE cdc_roles TO cdc_owner;");
    let (result, _) = sync(&lake, &plan).await;
    let message = format!("{:#}", result.unwrap_err());
    assert!(
        message.contains("the server refused a replication connection"),
        "{message}"
    );
    assert!(message.contains("WITH REPLICATION"), "{message}");
    assert!(message.contains("cloudsqlsuperuser"), "{message}");

    pg.sql(&db, "ALTER ROLE cdc_owner WITH REPLICATION;");
    sync(&lake, &plan).await.0.unwrap();
    pg.sql(&db, "INSERT INTO a VALUES (2, 'two');");
    sync(&lake, &plan).await.0.unwrap();
    assert_eq!(
        lake_rows(&lake, "cdc_roles", "public.a", &["v"]).await,
        table_rows(&db, "a", &["v"])
    );
}

#[tokio::test]
async fn a_lost_slot_is_an_error_and_a_reset_takes_a_new_snapshot() {
    let pg = server();
    let db = pg.database("cdc_lost");
    pg.sql(
        &db,
        "CREATE TABLE a (id int PRIMARY KEY, v text);
         CREATE TABLE b (id int PRIMARY KEY, v text);
         INSERT INTO a VALUES (1, 'one'), (2, 'two');
         INSERT INTO b VALUES (1, 'uno');",
    );
    let lake = Lake::in_memory();
    let plan = cdc_plan("cdc_lost", &db);
    sync(&lake, &plan).await.0.unwrap();
    pg.sql(&db, "SELECT pg_drop_replication_slot('inlet_cdc_lost')");
    pg.sql(
        &db,
        "DELETE FROM a WHERE id = 1; INSERT INTO b VALUES (2, 'dos');",
    );
    let (result, _) = sync(&lake, &plan).await;
    let message = format!("{:#}", result.unwrap_err());
    assert!(
        message.contains("`inlet_cdc_lost` does not exist"),
        "{message}"
    );
    assert!(message.contains("cannot be read any more"), "{message}");
    assert!(message.contains("inlet state reset"), "{message}");

    // After a reset, the next run takes a new snapshot: the lake catches up with the tables.
    reset_state(&lake, "cdc_lost").await.unwrap();
    let (result, recorder) = sync(&lake, &plan).await;
    result.unwrap();
    assert_logged(&recorder, "no state");
    for table in ["a", "b"] {
        assert_eq!(
            lake_rows(&lake, "cdc_lost", &format!("public.{table}"), &["v"]).await,
            table_rows(&db, table, &["v"])
        );
    }

    // Resetting one stream drops the slot and snapshots again at the next run, after the other
    // streams have read their changes from the old slot: a delete in `b` is not lost with it.
    pg.sql(
        &db,
        "UPDATE b SET v = 'one' WHERE id = 1; DELETE FROM b WHERE id = 2;",
    );
    reset_streams(&lake, "cdc_lost", &["public.a".to_owned()])
        .await
        .unwrap();
    let (result, recorder) = sync(&lake, &plan).await;
    result.unwrap();
    assert_logged(&recorder, "dropping replication slot `inlet_cdc_lost`");
    // That run holds the snapshot alone (the loader replaces a reset stream's table with it).
    assert_logged(&recorder, "the changes since are read by the next run");
    // `b` was not reset: its table is merged, every row it ever had included.
    assert_eq!(
        merged_rows(&lake, "cdc_lost", "public.b", &["v"], i64::MIN).await,
        table_rows(&db, "b", &["v"])
    );
    for table in ["a", "b"] {
        assert_eq!(
            lake_rows(&lake, "cdc_lost", &format!("public.{table}"), &["v"]).await,
            table_rows(&db, table, &["v"])
        );
    }
    pg.sql(
        &db,
        "DELETE FROM a WHERE id = 2; INSERT INTO a VALUES (3, 'tres');",
    );
    sync(&lake, &plan).await.0.unwrap();
    for table in ["a", "b"] {
        assert_eq!(
            lake_rows(&lake, "cdc_lost", &format!("public.{table}"), &["v"]).await,
            table_rows(&db, table, &["v"])
        );
    }
}

#[tokio::test]
async fn unchanged_toast_values_fail_without_replica_identity_full() {
    let pg = server();
    let db = pg.database("cdc_toast");
    pg.sql(
        &db,
        "CREATE TABLE docs (id int PRIMARY KEY, n int, body text);
         ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
         CREATE TABLE keyless (v text);
         INSERT INTO docs SELECT 1, 0, string_agg(md5(i::text), '') FROM generate_series(1, 400) i;",
    );
    let lake = Lake::in_memory();
    let mut plan = cdc_plan("cdc_toast", &db);
    // A table without key nor replica identity is refused, naming the fix.
    let (result, _) = sync(&lake, &plan).await;
    let message = format!("{:#}", result.unwrap_err());
    assert!(
        message.contains("`public.keyless` has no primary key"),
        "{message}"
    );
    assert!(message.contains("REPLICA IDENTITY FULL"), "{message}");

    plan.select = Some(vec!["public.docs".into()]);
    sync(&lake, &plan).await.0.unwrap();
    pg.sql(&db, "UPDATE docs SET n = 1 WHERE id = 1;");
    let (result, _) = sync(&lake, &plan).await;
    let message = format!("{:#}", result.unwrap_err());
    assert!(message.contains("column `body`"), "{message}");
    assert!(
        message.contains("ALTER TABLE \"public\".\"docs\" REPLICA IDENTITY FULL"),
        "{message}"
    );

    // With the fix applied and the stream reset, updates carry the value.
    pg.sql(&db, "ALTER TABLE docs REPLICA IDENTITY FULL;");
    reset_streams(&lake, "cdc_toast", &["public.docs".to_owned()])
        .await
        .unwrap();
    sync(&lake, &plan).await.0.unwrap();
    pg.sql(&db, "UPDATE docs SET n = 2 WHERE id = 1;");
    sync(&lake, &plan).await.0.unwrap();
    assert_eq!(
        lake_rows(&lake, "cdc_toast", "public.docs", &["n", "body"]).await,
        table_rows(&db, "docs", &["n", "body"])
    );
}

#[tokio::test]
async fn the_replication_connection_is_encrypted_too() {
    // A server that accepts TLS sessions only (`hostssl` in pg_hba.conf): the run's replication
    // connection, not only its SQL one, has to negotiate TLS for the changes to arrive.
    let pki = inlet_tests::pg_tls::TestPki::generate(&["127.0.0.1", "localhost"]);
    let tls = inlet_tests::postgres::ServerTls {
        options: "-c wal_level=logical -c max_replication_slots=4 -c max_wal_senders=4",
        ..pki.server_tls()
    };
    let pg = PgServer::start_tls(&tls);
    pg.sql(
        "postgres",
        "CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a VALUES (1, 'one');",
    );
    let mut config = pg.config("postgres");
    config["replication"] = "logical".into();
    config["sslmode"] = "verify-full".into();
    config["sslrootcert"] = pki.ca.clone().into();
    let plan = pg_plan("cdc_tls", config);
    let lake = Lake::in_memory();
    sync(&lake, &plan).await.0.unwrap();
    pg.sql(
        "postgres",
        "UPDATE a SET v = 'uno' WHERE id = 1; INSERT INTO a VALUES (2, 'two');",
    );
    let (result, _) = sync(&lake, &plan).await;
    assert_eq!(result.unwrap().streams["public.a"].rows, 2);
    let batches = read_committed(&lake, "cdc_tls", "public.a").await.unwrap();
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, 3);
}

/// A small seeded generator (xorshift), so a failing round can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Environment variable that makes [`child_sync`] run one sync (it is the process killed).
const CHILD_ENV: &str = "INLET_CDC_CHILD";

/// Not a test of its own: the process `kill -9` hits. It syncs the plan described by
/// `INLET_CDC_CHILD` (`lake folder`, tab, `database`) and exits.
#[tokio::test]
#[ignore = "run by crash_anywhere_loses_and_doubles_nothing"]
async fn child_sync() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (folder, rest) = spec.split_once('\t').unwrap();
    let (db, port) = rest.split_once('\t').unwrap();
    let mut config = serde_json::json!({"host": "127.0.0.1", "port": port.parse::<u16>().unwrap(), "user": "postgres", "database": db});
    config["replication"] = "logical".into();
    let plan = pg_plan("cdc_crash", config);
    let lake = Lake::open(folder).unwrap();
    let (result, _) = sync(&lake, &plan).await;
    if let Err(e) = result {
        eprintln!("child sync failed: {e:#}");
    }
}

fn apply_random_changes(db: &str, rng: &mut Rng, next_id: &mut u64) {
    let mut sql = String::new();
    for _ in 0..(1 + rng.below(30)) {
        sql.push_str("BEGIN;");
        for _ in 0..(1 + rng.below(20)) {
            match rng.below(4) {
                0 | 1 => {
                    *next_id += 1;
                    sql.push_str(&format!(
                        "INSERT INTO t VALUES ({}, {});",
                        next_id,
                        rng.below(1000)
                    ));
                }
                2 => sql.push_str(&format!(
                    "UPDATE t SET v = {} WHERE id = {};",
                    rng.below(1000),
                    1 + rng.below(*next_id)
                )),
                _ => sql.push_str(&format!(
                    "DELETE FROM t WHERE id = {};",
                    1 + rng.below(*next_id)
                )),
            }
        }
        sql.push_str("COMMIT;");
    }
    server().sql(db, &sql);
}

#[tokio::test]
async fn crash_anywhere_loses_and_doubles_nothing() {
    let seed: u64 = std::env::var("INLET_CDC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("crash test seed: {seed} (replay with INLET_CDC_SEED={seed})");
    let mut rng = Rng(seed);
    let pg = server();
    let db = pg.database("cdc_crash");
    pg.sql(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY, v int);
         INSERT INTO t SELECT i, i FROM generate_series(1, 2000) i;",
    );
    let mut next_id = 2000;
    let folder = tempfile::tempdir().unwrap();
    let lake_folder = folder.path().to_str().unwrap().to_owned();
    let port = pg.config(&db)["port"].to_string();
    let spawn = || {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "postgres_cdc::child_sync",
                "--ignored",
                "--nocapture",
            ])
            .env(
                CHILD_ENV,
                format!("{}\t{db}\t{port}", folder.path().display()),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Every other run is left to finish; the others are killed at a random point within the time
    // the last finished run took, so kills land anywhere in a run whatever the machine's speed.
    let mut run_time = std::time::Duration::from_millis(500);
    let mut completed = 0;
    for round in 0..16 {
        if round > 0 {
            apply_random_changes(&db, &mut rng, &mut next_id);
        }
        if round == 9 || round == 13 {
            // The next (killed) run takes a new snapshot: kills land in the copy too.
            reset_state(&Lake::open(&lake_folder).unwrap(), "cdc_crash")
                .await
                .unwrap();
        }
        let started = std::time::Instant::now();
        let mut child = spawn();
        let kill_at = (round % 2 == 1).then(|| run_time.mul_f64(rng.below(1000) as f64 / 1000.0));
        if let Some(kill_at) = kill_at {
            std::thread::sleep(kill_at);
            child.kill().unwrap(); // SIGKILL, or nothing if it has just ended
        }
        let output = child.wait_with_output().unwrap();
        let killed = kill_at.is_some() && !output.status.success();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let failed = stderr.contains("child sync failed");
        println!("round {round}: kill at {kill_at:?}, killed: {killed}, failed: {failed}");
        // A run that was not killed finished its sync, unless a killed run's session still held
        // the slot.
        assert!(
            killed || !failed || is_busy(&stderr),
            "seed {seed}, round {round}: {stderr}"
        );
        if !killed && !failed {
            completed += 1;
            run_time = started.elapsed();
        }
    }
    assert!(
        completed > 0,
        "seed {seed}: no run finished between the kills"
    );
    // A last run to the end (the slot may stay busy for a moment after a kill: run again).
    apply_random_changes(&db, &mut rng, &mut next_id);
    let lake = Lake::open(folder.path().to_str().unwrap()).unwrap();
    let mut config = pg.config(&db);
    config["replication"] = "logical".into();
    let plan = pg_plan("cdc_crash", config);
    let mut attempts = 0;
    loop {
        let (result, _) = sync(&lake, &plan).await;
        match result {
            Ok(_) => break,
            Err(e) if attempts < 20 && is_busy(&format!("{e:#}")) => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(e) => panic!("seed {seed}: the final sync failed: {e:#}"),
        }
    }
    assert_eq!(
        lake_rows(&lake, "cdc_crash", "public.t", &["v"]).await,
        table_rows(&db, "t", &["v"]),
        "seed {seed}"
    );
}

/// Whether a sync failed because the slot was still held by a killed process's session.
fn is_busy(message: &str) -> bool {
    message.contains("in use") || message.contains("is active for PID")
}

#[tokio::test]
#[ignore = "a benchmark: prints figures"]
async fn bench_streaming_changes() {
    let pg = server();
    let db = pg.database("cdc_bench");
    pg.sql(&db, "CREATE TABLE t (id int PRIMARY KEY, v text);");
    let lake = Lake::in_memory();
    let plan = cdc_plan("cdc_bench", &db);
    sync(&lake, &plan).await.0.unwrap();
    pg.sql(
        &db,
        "INSERT INTO t SELECT i, repeat('x', 40) || i FROM generate_series(1, 200000) i;",
    );
    let started = std::time::Instant::now();
    let report = sync(&lake, &plan).await.0.unwrap();
    let elapsed = started.elapsed();
    let rows = report.streams["public.t"].rows;
    println!(
        "one transaction of {rows} inserts: {:.2} s, {:.0} rows/s",
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64()
    );
    pg.sql(
        &db,
        "DO $$ BEGIN FOR i IN 0..1999 LOOP UPDATE t SET v = 'u' || id WHERE id % 2000 = i; COMMIT; END LOOP; END $$;",
    );
    let started = std::time::Instant::now();
    let report = sync(&lake, &plan).await.0.unwrap();
    let elapsed = started.elapsed();
    let rows = report.streams["public.t"].rows;
    println!(
        "2000 transactions, {rows} updates: {:.2} s, {:.0} rows/s",
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64()
    );
}
