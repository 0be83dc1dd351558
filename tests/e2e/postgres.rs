//! The PostgreSQL connector against a real server started by the harness.

use crate::harness::{ids, plan, sync};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use inlet_host::lake::{History, Lake, read_committed};
use inlet_host::runtime::{CallFailure, ConnectorError, SyncMode};
use inlet_host::sync::{SyncError, SyncPlan};
use inlet_tests::postgres::{PASSWORD, PgServer};
use serde_json::json;
use std::sync::OnceLock;

pub(crate) fn server() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(PgServer::start)
}

pub(crate) fn pg_plan(connection: &str, config: serde_json::Value) -> SyncPlan {
    let mut plan = plan("postgres", connection, config);
    plan.sandbox.allow_private_network = true;
    plan
}

fn one_batch(batches: Vec<RecordBatch>) -> RecordBatch {
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    batch
        .column_by_name(column)
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect()
}

fn connector_error(
    result: Result<inlet_host::sync::SyncReport, SyncError>,
) -> (String, ConnectorError) {
    match crate::harness::failed_call(result) {
        (message, CallFailure::Connector(e)) => (message, e),
        (_, other) => panic!("expected a connector error, got {other:?}"),
    }
}

#[tokio::test]
async fn every_type_round_trips_with_exact_values() {
    let pg = server();
    let db = pg.database("types");
    pg.sql(&db, "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
        CREATE TABLE everything (
            id int4 PRIMARY KEY, small int2, big int8, real4 float4, real8 float8,
            price numeric(12,3), anything numeric, flag bool, name text, code varchar(8), letter char(2), label name,
            raw bytea, day date, at_time time, at timestamp, at_tz timestamptz, span interval,
            uid uuid, doc json, docb jsonb, feeling mood, tags text[], counts int4[], address inet
        );
        INSERT INTO everything VALUES
          (1, -32768, 9223372036854775807, 1.5, 'NaN', 123456789.125, 3.14159265358979323846264338327950288419716939937510, true,
           'héllo 日本語 🚀', 'ab', 'x', 'pg_catalog', '\\x00ff10', '2024-02-29', '13:45:07.25', '2024-02-29 13:45:07.123456',
           '2024-02-29 13:45:07.5+09', '1 year 2 mons 3 days 04:05:06.5', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
           '{\"a\": [1, 2]}', '{\"b\": null}', 'happy', ARRAY['a b', NULL, 'c\"d'], ARRAY[]::int4[], '192.168.0.1/24'),
          (2, NULL, NULL, '-Infinity', 'Infinity', -0.001, NULL, false, '', NULL, NULL, NULL, '\\x', 'infinity', NULL, '-infinity',
           NULL, '-3 days', NULL, NULL, NULL, NULL, ARRAY[]::text[], ARRAY[7, NULL], NULL),
          (3, NULL, NULL, NULL, NULL, 'NaN', NULL, NULL, NULL, NULL, NULL, NULL, NULL, '0044-03-15 BC', NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL);");
    let lake = Lake::in_memory();
    let (result, recorder) = sync(&lake, &pg_plan("types", pg.config(&db))).await;
    let report = result.unwrap();
    assert_eq!(report.streams["public.everything"].rows, 3);
    let logs = recorder.logs.lock().unwrap().join("\n");
    assert!(logs.contains("column `address` has type `inet`"), "{logs}");
    assert!(logs.contains("1 numeric NaN values"), "{logs}");

    let rows = one_batch(
        read_committed(&lake, "types", "public.everything")
            .await
            .unwrap(),
    );
    let schema = rows.schema();
    let column = |name: &str| rows.column_by_name(name).unwrap();
    assert_eq!(
        column("small")
            .as_primitive::<arrow_array::types::Int16Type>()
            .iter()
            .collect::<Vec<_>>(),
        vec![Some(-32768), None, None]
    );
    assert_eq!(column("big").as_primitive::<Int64Type>().value(0), i64::MAX);
    let real4: Vec<_> = column("real4")
        .as_primitive::<arrow_array::types::Float32Type>()
        .iter()
        .collect();
    assert_eq!(real4[..2], [Some(1.5), Some(f32::NEG_INFINITY)]);
    let real8 = column("real8").as_primitive::<arrow_array::types::Float64Type>();
    assert!(real8.value(0).is_nan() && real8.value(1) == f64::INFINITY && real8.is_null(2));
    assert_eq!(
        schema.field_with_name("price").unwrap().data_type(),
        &arrow_schema::DataType::Decimal128(12, 3)
    );
    let price = column("price").as_primitive::<arrow_array::types::Decimal128Type>();
    assert_eq!(
        (price.value(0), price.value(1), price.is_null(2)),
        (123_456_789_125, -1, true),
        "NaN numeric becomes NULL"
    );
    assert_eq!(
        strings(&rows, "anything")[0].as_deref(),
        Some("3.14159265358979323846264338327950288419716939937510")
    );
    assert_eq!(
        column("flag").as_boolean().iter().collect::<Vec<_>>(),
        vec![Some(true), Some(false), None]
    );
    assert_eq!(
        strings(&rows, "name"),
        vec![Some("héllo 日本語 🚀".into()), Some(String::new()), None]
    );
    assert_eq!(
        strings(&rows, "letter")[0].as_deref(),
        Some("x "),
        "char(2) keeps its padding"
    );
    let raw = column("raw").as_binary::<i32>();
    assert_eq!(
        (raw.value(0), raw.value(1), raw.is_null(2)),
        (&[0u8, 0xff, 0x10][..], &[][..], true)
    );
    let day = column("day").as_primitive::<arrow_array::types::Date32Type>();
    assert_eq!((day.value(0), day.value(1)), (19_782, i32::MAX));
    assert_eq!(
        day.value(2),
        -735_160,
        "44 BC is year -43 (proleptic Gregorian)"
    );
    let at_time = column("at_time").as_primitive::<arrow_array::types::Time64MicrosecondType>();
    assert_eq!(
        at_time.value(0),
        (13 * 3600 + 45 * 60 + 7) * 1_000_000 + 250_000
    );
    let at = column("at").as_primitive::<TimestampMicrosecondType>();
    assert_eq!(
        (at.value(0), at.value(1)),
        (1_709_214_307_123_456, i64::MIN)
    );
    assert_eq!(
        schema.field_with_name("at").unwrap().data_type(),
        &arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, None)
    );
    let at_tz = column("at_tz").as_primitive::<TimestampMicrosecondType>();
    assert_eq!(
        at_tz.value(0),
        1_709_214_307_500_000 - 9 * 3_600_000_000,
        "+09 converted to UTC"
    );
    assert_eq!(
        strings(&rows, "span"),
        vec![Some("P1Y2M3DT4H5M6.5S".into()), Some("P-3D".into()), None],
        "intervals as ISO 8601"
    );
    assert_eq!(
        strings(&rows, "uid")[0].as_deref(),
        Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    );
    assert_eq!(strings(&rows, "doc")[0].as_deref(), Some("{\"a\": [1, 2]}"));
    assert_eq!(strings(&rows, "docb")[0].as_deref(), Some("{\"b\": null}"));
    assert_eq!(
        schema
            .field_with_name("docb")
            .unwrap()
            .metadata()
            .get("ARROW:extension:name")
            .map(String::as_str),
        Some("arrow.json")
    );
    assert_eq!(strings(&rows, "feeling")[0].as_deref(), Some("happy"));
    let tags = column("tags").as_list::<i32>();
    let first: Vec<Option<String>> = tags
        .value(0)
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect();
    assert_eq!(first, vec![Some("a b".into()), None, Some("c\"d".into())]);
    assert_eq!(tags.value(1).len(), 0, "empty array");
    assert!(tags.is_null(2));
    let counts = column("counts").as_list::<i32>();
    assert_eq!(counts.value(0).len(), 0);
    assert_eq!(
        counts
            .value(1)
            .as_primitive::<Int32Type>()
            .iter()
            .collect::<Vec<_>>(),
        vec![Some(7), None]
    );
    assert_eq!(
        strings(&rows, "address")[0].as_deref(),
        Some("192.168.0.1/24"),
        "unmapped types arrive as text"
    );
}

#[tokio::test]
async fn incremental_sync_picks_up_inserts_and_updates_only() {
    let pg = server();
    let db = pg.database("incremental");
    pg.sql(&db, "CREATE TABLE orders (id bigserial PRIMARY KEY, item text NOT NULL, updated_at timestamptz NOT NULL DEFAULT clock_timestamp());
        INSERT INTO orders (item) SELECT 'item ' || i FROM generate_series(1, 5) i;");
    let lake = Lake::in_memory();
    let plan = pg_plan("shop", pg.config(&db));
    let first = sync(&lake, &plan).await.0.unwrap();
    assert_eq!(first.streams["public.orders"].rows, 5);
    let second = sync(&lake, &plan).await.0.unwrap();
    assert_eq!(
        second.streams.get("public.orders").map_or(0, |s| s.rows),
        0,
        "nothing changed"
    );

    pg.sql(&db, "INSERT INTO orders (item) VALUES ('six'), ('seven'); UPDATE orders SET item = 'two!', updated_at = clock_timestamp() WHERE id = 2;");
    let third = sync(&lake, &plan).await.0.unwrap();
    assert_eq!(third.streams["public.orders"].rows, 3);
    let batches = read_committed(&lake, "shop", "public.orders")
        .await
        .unwrap();
    assert_eq!(ids(&batches), vec![1, 2, 2, 3, 4, 5, 6, 7]);
    let rows = one_batch(batches);
    assert!(strings(&rows, "item").contains(&Some("two!".into())));
}

#[tokio::test]
async fn rows_sharing_a_cursor_value_are_never_split_by_a_checkpoint() {
    let pg = server();
    let db = pg.database("ties");
    pg.sql(&db, "CREATE TABLE events (id int8 PRIMARY KEY, updated_at timestamp NOT NULL);
        INSERT INTO events SELECT i, timestamp '2026-01-01' + ((i - 1) / 150) * interval '1 hour' FROM generate_series(1, 450) i;");
    let lake = Lake::in_memory();
    let mut config = pg.config(&db);
    config["checkpoint_rows"] = json!(100);
    config["batch_rows"] = json!(64);
    let mut plan = pg_plan("ties", config);
    plan.sync_modes
        .insert("public.events".into(), SyncMode::Incremental);
    let report = sync(&lake, &plan).await.0.unwrap();
    assert_eq!(report.streams["public.events"].rows, 450);
    // At every commit, every row at or before the saved cursor is committed: a crash after any
    // commit loses nothing when the next run reads `updated_at > cursor`.
    let history = History::read(&lake, "ties").await.unwrap();
    assert!(
        history.commits.len() >= 3,
        "checkpoints happened: {}",
        history.commits.len()
    );
    let mut committed = 0;
    for commit in &history.commits {
        committed += commit.streams["public.events"]
            .files
            .iter()
            .map(|f| f.rows)
            .sum::<u64>();
        let cursor = commit.state.as_ref().unwrap()["public.events.cursor"]
            .as_str()
            .unwrap()
            .to_owned();
        let at_or_before: u64 = pg
            .sql(
                &db,
                &format!("SELECT count(*) FROM events WHERE updated_at <= '{cursor}'"),
            )
            .parse()
            .unwrap();
        assert_eq!(
            committed, at_or_before,
            "commit #{} with cursor {cursor}",
            commit.sequence
        );
    }
}

#[tokio::test]
async fn a_column_added_between_syncs_shows_up_without_any_step() {
    let pg = server();
    let db = pg.database("evolving");
    pg.sql(&db, "CREATE TABLE patients (id serial PRIMARY KEY, name text NOT NULL); INSERT INTO patients (name) VALUES ('a'), ('b');");
    let lake = Lake::in_memory();
    let plan = pg_plan("clinic", pg.config(&db));
    sync(&lake, &plan).await.0.unwrap();
    pg.sql(&db, "ALTER TABLE patients ADD COLUMN email text; INSERT INTO patients (name, email) VALUES ('c', 'c@example.jp');");
    let second = sync(&lake, &plan).await.0.unwrap();
    assert_eq!(
        second.streams["public.patients"].rows, 1,
        "serial id is the suggested cursor"
    );
    let rows = one_batch(
        read_committed(&lake, "clinic", "public.patients")
            .await
            .unwrap(),
    );
    assert_eq!(
        strings(&rows, "email"),
        vec![None, None, Some("c@example.jp".into())]
    );
}

#[tokio::test]
async fn a_column_whose_type_changes_three_times_keeps_every_value() {
    let pg = server();
    let db = pg.database("retyped");
    pg.sql(&db, "CREATE TABLE flags (id serial PRIMARY KEY, x boolean); INSERT INTO flags (x) VALUES (true), (NULL);");
    let lake = Lake::in_memory();
    let plan = pg_plan("retyped", pg.config(&db));
    sync(&lake, &plan).await.0.unwrap();
    for (alter, insert) in [
        ("integer USING x::int", "7"),
        ("bigint", "1099511627776"),
        ("text", "'text'"),
    ] {
        pg.sql(
            &db,
            &format!("ALTER TABLE flags ALTER COLUMN x TYPE {alter}; INSERT INTO flags (x) VALUES ({insert});"),
        );
        let report = sync(&lake, &plan).await.0.unwrap();
        assert_eq!(report.streams["public.flags"].rows, 1, "after `{alter}`");
    }
    // A fifth sync and a sixth change of the same kind still work (the stream is not stuck).
    pg.sql(&db, "INSERT INTO flags (x) VALUES ('more');");
    sync(&lake, &plan).await.0.unwrap();

    let rows = one_batch(
        read_committed(&lake, "retyped", "public.flags")
            .await
            .unwrap(),
    );
    let schema = rows.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["id", "x", "x__int", "x__string"]);
    let ids: Vec<i32> = rows
        .column_by_name("id")
        .unwrap()
        .as_primitive::<Int32Type>()
        .values()
        .to_vec();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);
    let bools: Vec<Option<bool>> = rows
        .column_by_name("x")
        .unwrap()
        .as_boolean()
        .iter()
        .collect();
    assert_eq!(bools, [Some(true), None, None, None, None, None]);
    let ints: Vec<Option<i64>> = rows
        .column_by_name("x__int")
        .unwrap()
        .as_primitive::<Int64Type>()
        .iter()
        .collect();
    assert_eq!(ints, [None, None, Some(7), Some(1 << 40), None, None]);
    assert_eq!(
        strings(&rows, "x__string"),
        [
            None,
            None,
            None,
            None,
            Some("text".into()),
            Some("more".into())
        ]
    );
}

#[tokio::test]
async fn a_nullable_cursor_reads_null_rows_once_and_saves_its_state() {
    let pg = server();
    let db = pg.database("nullable_cursor");
    pg.sql(&db, "CREATE TABLE visits (id int8 PRIMARY KEY, updated_at timestamptz);
        INSERT INTO visits SELECT i, CASE WHEN i % 10 = 0 THEN NULL ELSE timestamptz '2026-01-01' + i * interval '1 minute' END FROM generate_series(1, 50) i;");
    let lake = Lake::in_memory();
    let mut config = pg.config(&db);
    config["checkpoint_rows"] = json!(3);
    let mut plan = pg_plan("visits", config);
    plan.sync_modes
        .insert("public.visits".into(), SyncMode::Incremental);
    let first = sync(&lake, &plan).await.0.unwrap();
    assert_eq!(first.streams["public.visits"].rows, 50);
    let second = sync(&lake, &plan).await.0.unwrap();
    assert_eq!(
        second.streams.get("public.visits").map_or(0, |s| s.rows),
        0,
        "nothing changed, nothing read again"
    );
    // A NULL cursor that gets a value is read again; a new row with a value is read.
    pg.sql(
        &db,
        "UPDATE visits SET updated_at = timestamptz '2026-02-01' WHERE id = 10;
        INSERT INTO visits VALUES (51, timestamptz '2026-02-02');",
    );
    let third = sync(&lake, &plan).await.0.unwrap();
    assert_eq!(third.streams["public.visits"].rows, 2);
    let history = History::read(&lake, "visits").await.unwrap();
    let state = history.latest().unwrap().state.clone().unwrap();
    assert_eq!(state["public.visits.cursor_nulls_read"], json!(true));
    assert_eq!(state["public.visits.cursor_column"], json!("updated_at"));
    let batches = read_committed(&lake, "visits", "public.visits")
        .await
        .unwrap();
    let mut expected: Vec<i64> = (1..=51).collect();
    expected.push(10);
    expected.sort();
    assert_eq!(ids(&batches), expected);
}

#[tokio::test]
async fn the_suggested_cursor_prefers_a_not_null_column_and_typos_in_table_keys_are_refused() {
    let pg = server();
    let db = pg.database("cursor_choice");
    pg.sql(
        &db,
        "CREATE TABLE a (id serial PRIMARY KEY, updated_at timestamp);
        CREATE TABLE b (id serial PRIMARY KEY, updated_at timestamp NOT NULL DEFAULT now());
        CREATE TABLE c (code text PRIMARY KEY, updated_at timestamp);",
    );
    let streams = crate::harness::discover(&pg_plan("choice", pg.config(&db))).await;
    let cursor = |name: &str| {
        streams
            .iter()
            .find(|s| s.name == name)
            .unwrap()
            .cursor_field
            .clone()
    };
    assert_eq!(
        cursor("public.a").as_deref(),
        Some("id"),
        "serial key over a nullable timestamp"
    );
    assert_eq!(cursor("public.b").as_deref(), Some("updated_at"));
    assert_eq!(
        cursor("public.c").as_deref(),
        Some("updated_at"),
        "nullable, but the only one"
    );

    let mut config = pg.config(&db);
    config["tables"] = json!({"public.aa": {"where": "id < 10"}});
    let (message, error) =
        connector_error(sync(&Lake::in_memory(), &pg_plan("typo", config)).await.0);
    assert!(matches!(error, ConnectorError::Config(_)), "{message}");
    assert!(
        message.contains("tables.\"public.aa\"")
            && message.contains("public.a, public.b, public.c"),
        "{message}"
    );
}

#[tokio::test]
async fn dates_arrive_exactly_from_both_ends_of_the_calendar_and_a_date_cursor_keeps_its_text() {
    // Dates are read as day numbers (`date_as_day_number`), except the cursor, whose text is the
    // saved state and a SQL literal in the next read.
    let pg = server();
    let db = pg.database("dates");
    pg.sql(
        &db,
        "CREATE TABLE days (id int8 PRIMARY KEY, day date, due date NOT NULL);
        INSERT INTO days VALUES
          (1, NULL, '2024-01-01'), (2, '-infinity', '2024-01-01'), (3, 'infinity', '2024-01-02'),
          (4, '4714-11-24 BC', '2024-01-02'), (5, '5874897-12-31', '2024-01-03'),
          (6, '1970-01-01', '2024-01-03'), (7, '1969-12-31', '2024-01-03'),
          (8, '0001-01-01 BC', '2024-01-04'), (9, '2024-02-29', '2024-01-04');",
    );
    let lake = Lake::in_memory();
    let mut config = pg.config(&db);
    config["tables"] = json!({"public.days": {"cursor": "due"}});
    config["checkpoint_rows"] = json!(2);
    let mut plan = pg_plan("dates", config);
    plan.sync_modes
        .insert("public.days".into(), SyncMode::Incremental);
    let first = sync(&lake, &plan).await.0.unwrap();
    assert_eq!(first.streams["public.days"].rows, 9);
    let rows = one_batch(read_committed(&lake, "dates", "public.days").await.unwrap());
    let days: Vec<Option<i32>> = rows
        .column_by_name("day")
        .unwrap()
        .as_primitive::<arrow_array::types::Date32Type>()
        .iter()
        .collect();
    assert_eq!(
        days,
        [
            None,
            Some(i32::MIN),
            Some(i32::MAX),
            Some(-2_440_588),
            Some(2_145_042_905),
            Some(0),
            Some(-1),
            Some(-719_528),
            Some(19_782)
        ]
    );
    let due: Vec<Option<i32>> = rows
        .column_by_name("due")
        .unwrap()
        .as_primitive::<arrow_array::types::Date32Type>()
        .iter()
        .collect();
    assert_eq!(due[0], Some(19_723), "2024-01-01, read through its text");
    async fn state(lake: &Lake) -> serde_json::Value {
        let history = History::read(lake, "dates").await.unwrap();
        history.latest().unwrap().state.clone().unwrap()
    }
    assert_eq!(
        state(&lake).await["public.days.cursor"],
        json!("2024-01-04")
    );

    pg.sql(
        &db,
        "INSERT INTO days VALUES (10, '2000-02-29', '2024-01-05'), (11, NULL, '2024-01-04');",
    );
    let second = sync(&lake, &plan).await.0.unwrap();
    assert_eq!(
        second.streams["public.days"].rows,
        1,
        "only the row after the saved date: {:?}",
        state(&lake).await
    );
    assert_eq!(
        state(&lake).await["public.days.cursor"],
        json!("2024-01-05")
    );
    let batches = read_committed(&lake, "dates", "public.days").await.unwrap();
    assert_eq!(ids(&batches), (1..=10).collect::<Vec<_>>());
}

#[tokio::test]
async fn lookback_picks_up_rows_committed_late_behind_the_cursor() {
    let pg = server();
    let db = pg.database("late_rows");
    pg.sql(
        &db,
        "CREATE TABLE payments (id int8 PRIMARY KEY, updated_at timestamptz NOT NULL);
        INSERT INTO payments VALUES (1, '2026-03-01 10:00:00+00'), (2, '2026-03-01 10:05:00+00');",
    );
    let lake = Lake::in_memory();
    let mut config = pg.config(&db);
    config["tables"] = json!({"public.payments": {"lookback": "10 minutes"}});
    let plan = pg_plan("late", config.clone());
    sync(&lake, &plan).await.0.unwrap();
    // Committed after the sync with a cursor value behind the saved one (10:05).
    pg.sql(&db, "INSERT INTO payments VALUES (3, '2026-03-01 10:01:00+00'), (4, '2026-03-01 09:00:00+00'), (5, '2026-03-01 11:00:00+00');");
    let second = sync(&lake, &plan).await.0.unwrap();
    // 10:00, 10:01 and 10:05 are within 10 minutes of the saved 10:05 (two of them re-read);
    // 09:00 is not; 11:00 is new.
    assert_eq!(second.streams["public.payments"].rows, 4);
    let batches = read_committed(&lake, "late", "public.payments")
        .await
        .unwrap();
    assert_eq!(
        ids(&batches),
        vec![1, 1, 2, 2, 3, 5],
        "09:00 is beyond the lookback"
    );
    let state = History::read(&lake, "late")
        .await
        .unwrap()
        .latest()
        .unwrap()
        .state
        .clone()
        .unwrap();
    assert_eq!(
        state["public.payments.cursor"],
        json!("2026-03-01 11:00:00+00")
    );

    config["tables"] = json!({"public.payments": {"lookback": "ten minutes"}});
    let (message, error) = connector_error(sync(&lake, &pg_plan("late", config)).await.0);
    assert!(matches!(error, ConnectorError::Config(_)), "{message}");
    assert!(
        message.contains("tables.\"public.payments\".lookback"),
        "{message}"
    );
}

#[tokio::test]
async fn every_password_method_authenticates() {
    let pg = server();
    for user in ["md5_user", "scram_user", "clear_user"] {
        let config = json!({"host": "127.0.0.1", "port": pg.port, "user": user, "password": PASSWORD, "database": "postgres"});
        let lake = Lake::in_memory();
        let mut plan = pg_plan(user, config);
        plan.select = Some(vec![]);
        sync(&lake, &plan)
            .await
            .0
            .unwrap_or_else(|e| panic!("{user}: {e}"));
    }
}

#[tokio::test]
async fn wrong_password_is_an_auth_error_that_never_shows_the_password() {
    let pg = server();
    let config = json!({"host": "127.0.0.1", "port": pg.port, "user": "scram_user", "password": "wrong-pw-1234", "database": "postgres"});
    let lake = Lake::in_memory();
    let (message, error) = connector_error(sync(&lake, &pg_plan("bad_pw", config)).await.0);
    assert!(matches!(error, ConnectorError::Auth(_)), "{message}");
    assert!(
        message.contains("scram_user") && !message.contains("wrong-pw-1234"),
        "{message}"
    );
    assert_eq!(
        History::read(&lake, "bad_pw").await.unwrap().commits.len(),
        0
    );
}

#[tokio::test]
async fn unknown_table_and_unreachable_host_are_named() {
    let pg = server();
    let lake = Lake::in_memory();
    let mut plan = pg_plan("missing", pg.config("postgres"));
    plan.select = Some(vec!["public.nope".into()]);
    let message = sync(&lake, &plan).await.0.unwrap_err().to_string();
    assert!(
        message.contains("stream `public.nope` does not exist"),
        "{message}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config =
        json!({"host": "127.0.0.1", "port": closed, "user": "postgres", "database": "postgres"});
    let (message, error) = connector_error(sync(&lake, &pg_plan("down", config)).await.0);
    assert!(matches!(error, ConnectorError::Transient(_)), "{message}");
    assert!(
        message.contains(&format!("127.0.0.1:{closed}")),
        "{message}"
    );
    assert_eq!(History::read(&lake, "down").await.unwrap().commits.len(), 0);
}

#[tokio::test]
async fn a_port_that_is_not_postgres_or_never_answers_is_named_quickly() {
    use std::io::{Read, Write};
    // An HTTP server: its answer read as a PostgreSQL header claims a 1.3 GiB message.
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http_port = http.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in http.incoming().flatten() {
            let mut stream = stream;
            let mut buffer = [0u8; 1024];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    // A server that accepts and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let lake = Lake::in_memory();
    let config = |port: u16| json!({"host": "127.0.0.1", "port": port, "user": "postgres", "database": "postgres", "connect_timeout_seconds": 2});

    let (message, error) =
        connector_error(sync(&lake, &pg_plan("http", config(http_port))).await.0);
    assert!(matches!(error, ConnectorError::Config(_)), "{message}");
    assert!(
        message.contains(&format!(
            "127.0.0.1:{http_port} does not speak the PostgreSQL protocol"
        )) && message.contains("HTTP/1.1 400"),
        "{message}"
    );

    let (message, error) =
        connector_error(sync(&lake, &pg_plan("silent", config(silent_port))).await.0);
    assert!(matches!(error, ConnectorError::Transient(_)), "{message}");
    assert!(
        message.contains(&format!("127.0.0.1:{silent_port} accepted the connection but sent no PostgreSQL answer within 2 s")),
        "{message}"
    );
}

#[tokio::test]
async fn the_database_is_unreachable_without_the_operators_permission() {
    let pg = server();
    let plan = plan("postgres", "private", pg.config("postgres"));
    let message = sync(&Lake::in_memory(), &plan)
        .await
        .0
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(&format!("127.0.0.1:{}", pg.port))
            && message.contains("allow_private_network"),
        "{message}"
    );
}

#[tokio::test]
async fn a_keyed_table_is_read_in_parallel_page_ranges_by_default_or_key_ranges_with_every_row_once()
 {
    let pg = server();
    let db = pg.database("ranges");
    pg.sql(
        &db,
        "CREATE TABLE big (id int8 PRIMARY KEY, v text NOT NULL);
        INSERT INTO big SELECT i, 'v' || i FROM generate_series(1, 10000) i;
        DELETE FROM big WHERE id BETWEEN 4000 AND 4999;",
    );
    // The harness's server is PostgreSQL 14 or later: `auto` reads pages, `key` the id's ranges.
    for (split, described) in [("auto", " in pages ["), ("key", "with id in [")] {
        let lake = Lake::in_memory();
        let mut config = pg.config(&db);
        config["tables"] = serde_json::json!({ "public.big": { "split": split } });
        let mut plan = pg_plan("ranges", config);
        plan.full_refresh = true;
        plan.parallel.insert("public.big".into(), 3);
        let (result, recorder) = sync(&lake, &plan).await;
        assert_eq!(result.unwrap().streams["public.big"].rows, 9000, "{split}");
        let logs = recorder.logs.lock().unwrap().clone();
        let parts: Vec<&String> = logs
            .iter()
            .filter(|l| l.starts_with("public.big:") && l.contains(described))
            .collect();
        assert_eq!(
            parts.len(),
            3,
            "{split}: three instances read three ranges: {logs:?}"
        );
        let expected: Vec<i64> = (1..=10000).filter(|i| !(4000..=4999).contains(i)).collect();
        assert_eq!(
            ids(&read_committed(&lake, "ranges", "public.big").await.unwrap()),
            expected,
            "{split}"
        );
        let history = History::read(&lake, "ranges").await.unwrap();
        let with_files = history.commits.iter().filter(|c| c.files().count() > 0);
        assert_eq!(with_files.count(), 1, "{split}: the parts commit together");
        let copy = history.latest().unwrap().streams["public.big"]
            .full_copy
            .as_ref();
        assert!(
            copy.is_some_and(|c| c.complete),
            "{split}: the full copy is marked complete"
        );
    }
}

#[tokio::test]
async fn the_postgres_connector_passes_the_conformance_kit() {
    let pg = server();
    let db = pg.database("conformance");
    pg.sql(&db, "CREATE TABLE accounts (id serial PRIMARY KEY, email text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
        CREATE TABLE tags (name text NOT NULL);
        INSERT INTO accounts (email) VALUES ('a@example.jp'), ('b@example.jp'); INSERT INTO tags VALUES ('x');");
    let policy = inlet_host::runtime::SandboxPolicy {
        allow_private_network: true,
        ..Default::default()
    };
    inlet_tests::conformance::source_contract(
        crate::harness::runtime(),
        "postgres",
        pg.config(&db),
        policy,
    )
    .await;
}
