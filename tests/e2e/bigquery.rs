//! PostgreSQL -> GCS lake -> BigQuery with the library API: schema changes at the source reach
//! the warehouse table on the next load (added column, relaxed NOT NULL, a type change as a
//! variant column), and rows the source flags as deleted leave the table.

use crate::harness::sync;
use crate::postgres::{pg_plan, server};
use inlet_host::bigquery::{Client, Destination, LoadLimits, StreamOptions, load_connection};
use inlet_host::credentials::GoogleAuth;
use inlet_host::lake::{CloudAccess, Lake};
use inlet_host::runtime::SyncMode;
use inlet_tests::gcp::{GcpServices, PROJECT};
use std::collections::BTreeMap;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread")]
async fn source_schema_changes_and_deletes_reach_bigquery_without_a_refresh() {
    let pg = server();
    let db = pg.database("bq_evolve");
    pg.sql(
        &db,
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, score int, \
         deleted boolean NOT NULL DEFAULT false, doc jsonb, tags text[], updated_at timestamptz NOT NULL DEFAULT now()); \
         INSERT INTO items (id, name, score, doc, tags) VALUES (1, 'one', 10, '{\"a\": [1, 2]}', '{x,y}'), \
         (2, 'two', 20, NULL, '{}'), (3, 'three', 30, 'null', NULL);",
    );
    let services = GcpServices::get();
    let bucket = services.bucket("evolve-lake");
    let access = CloudAccess {
        google: Some(Arc::new(GoogleAuth::anonymous())),
        gcs_endpoint: Some(services.gcs_endpoint.clone()),
    };
    let lake = Lake::open_with(&format!("gs://{bucket}/raw"), &access).unwrap();
    let mut plan = pg_plan("shop", pg.config(&db));
    plan.sync_modes
        .insert("public.items".into(), SyncMode::Incremental);
    let client = Client::new(
        &services.bigquery_endpoint,
        PROJECT,
        Arc::new(GoogleAuth::anonymous()),
    );
    let destination = Destination {
        location: "US".into(),
        dataset: "evolve_shop".into(),
        table_template: "{stream}".into(),
        labels: BTreeMap::new(),
        streams: BTreeMap::from([(
            "public.items".to_owned(),
            StreamOptions {
                deleted_flag: Some("deleted".into()),
                ..StreamOptions::default()
            },
        )]),
        limits: LoadLimits::default(),
    };

    sync(&lake, &plan).await.0.unwrap();
    let report = load_connection(&lake, "shop", &client, &destination)
        .await
        .unwrap()
        .expect("the first load has commits to load");
    assert_eq!(report.streams[0].table, "test.evolve_shop.public_items");
    assert_eq!(report.streams[0].rows, 3);

    pg.sql(
        &db,
        "ALTER TABLE items ADD COLUMN email text; \
         ALTER TABLE items ALTER COLUMN name DROP NOT NULL; \
         ALTER TABLE items ALTER COLUMN score TYPE text USING score::text; \
         UPDATE items SET email = 'one@example.com', updated_at = now() + interval '1 second' WHERE id = 1; \
         UPDATE items SET deleted = true, updated_at = now() + interval '1 second' WHERE id = 2; \
         UPDATE items SET score = 'high', updated_at = now() + interval '1 second' WHERE id = 3; \
         INSERT INTO items (id, name, updated_at) VALUES (4, NULL, now() + interval '1 second');",
    );
    sync(&lake, &plan).await.0.unwrap();
    load_connection(&lake, "shop", &client, &destination)
        .await
        .unwrap()
        .expect("the second sync is loaded");

    let columns = services
        .table_columns("evolve_shop", "public_items")
        .unwrap();
    let mode = |name: &str| {
        columns
            .iter()
            .find(|c| c.0 == name)
            .map(|c| (c.1.clone(), c.2.clone()))
            .unwrap_or_else(|| panic!("no column {name} in {columns:?}"))
    };
    assert_eq!(mode("name"), ("STRING".into(), "NULLABLE".into()));
    assert_eq!(mode("email"), ("STRING".into(), "NULLABLE".into()));
    assert_eq!(mode("score__string"), ("STRING".into(), "NULLABLE".into()));
    assert!(matches!(mode("id").0.as_str(), "INTEGER" | "INT64"));
    assert_eq!(mode("doc").0, "JSON");
    assert_eq!(mode("tags"), ("STRING".into(), "REPEATED".into()));
    let nested = services.query(
        "SELECT id, TO_JSON_STRING(doc), ARRAY_LENGTH(tags) FROM `test.evolve_shop.public_items` ORDER BY id",
    );
    assert_eq!(
        nested[0],
        vec![
            Some("1".into()),
            Some(r#"{"a":[1,2]}"#.into()),
            Some("2".into())
        ]
    );

    let rows = services.query(
        "SELECT id, name, email, score, score__string FROM `test.evolve_shop.public_items` ORDER BY id",
    );
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        rows,
        vec![
            // Re-read after the type change: the text value sits in the variant column.
            vec![s("1"), s("one"), s("one@example.com"), None, s("10")],
            vec![s("3"), s("three"), None, None, s("high")],
            vec![s("4"), None, None, None, None],
        ],
        "id 2 was flagged deleted"
    );
    assert!(
        load_connection(&lake, "shop", &client, &destination)
            .await
            .unwrap()
            .is_none(),
        "nothing new: nothing loaded"
    );
}

/// `inlet state reset --stream`: the reset stream is re-read in full from an empty cursor and its
/// table replaced (a row deleted at the source leaves, although the stream's write mode is
/// `merge`), while the other stream goes on from its cursor and is merged as before.
#[tokio::test(flavor = "multi_thread")]
async fn a_reset_stream_is_reread_and_replaced_while_the_others_stay_incremental() {
    use inlet_host::bigquery::WriteMode;
    use inlet_host::lake::{Tip, reset_streams};
    let pg = server();
    let db = pg.database("bq_stream_reset");
    pg.sql(
        &db,
        "CREATE TABLE orders (id int PRIMARY KEY, total int, updated_at timestamptz NOT NULL DEFAULT now()); \
         CREATE TABLE events (id int PRIMARY KEY, kind text, updated_at timestamptz NOT NULL DEFAULT now()); \
         INSERT INTO orders (id, total) VALUES (1, 10), (2, 20), (3, 30); \
         INSERT INTO events (id, kind) VALUES (1, 'a'), (2, 'b'), (3, 'c');",
    );
    let services = GcpServices::get();
    let bucket = services.bucket("reset-lake");
    let access = CloudAccess {
        google: Some(Arc::new(GoogleAuth::anonymous())),
        gcs_endpoint: Some(services.gcs_endpoint.clone()),
    };
    let lake = Lake::open_with(&format!("gs://{bucket}/raw"), &access).unwrap();
    let mut plan = pg_plan("shop", pg.config(&db));
    for stream in ["public.orders", "public.events"] {
        plan.sync_modes.insert(stream.into(), SyncMode::Incremental);
    }
    let client = Client::new(
        &services.bigquery_endpoint,
        PROJECT,
        Arc::new(GoogleAuth::anonymous()),
    );
    let merge = StreamOptions {
        write_mode: Some(WriteMode::Merge),
        ..StreamOptions::default()
    };
    let destination = Destination {
        location: "US".into(),
        dataset: "reset_shop".into(),
        table_template: "{stream}".into(),
        labels: BTreeMap::new(),
        streams: BTreeMap::from([
            ("public.orders".to_owned(), merge.clone()),
            ("public.events".to_owned(), merge),
        ]),
        limits: LoadLimits::default(),
    };
    sync(&lake, &plan).await.0.unwrap();
    load_connection(&lake, "shop", &client, &destination)
        .await
        .unwrap()
        .unwrap();

    // A hard delete is invisible to a cursor; the reset is how an operator repairs the table.
    pg.sql(
        &db,
        "DELETE FROM orders WHERE id = 2; \
         INSERT INTO orders (id, total, updated_at) VALUES (4, 40, now() + interval '1 second'); \
         UPDATE events SET kind = 'b2', updated_at = now() + interval '1 second' WHERE id = 2;",
    );
    let unknown = reset_streams(&lake, "shop", &["public.nope".into()])
        .await
        .unwrap_err();
    assert!(
        unknown.to_string().contains("public.events, public.orders"),
        "{unknown}"
    );
    let reset = reset_streams(&lake, "shop", &["public.orders".into()])
        .await
        .unwrap();
    assert!(
        reset
            .removed_keys
            .iter()
            .all(|k| k.starts_with("public.orders."))
            && !reset.removed_keys.is_empty(),
        "{reset:?}"
    );
    let report = sync(&lake, &plan).await.0.unwrap();
    assert_eq!(
        report.streams["public.orders"].rows, 3,
        "orders read in full"
    );
    assert_eq!(
        report.streams["public.events"].rows, 1,
        "events from their cursor"
    );
    let tip = Tip::open(&lake, "shop").await.unwrap().unwrap();
    assert!(
        !tip.commit.streams["public.orders"].reread,
        "the copy completed the reset"
    );
    let state = tip.commit.state.unwrap();
    assert!(state.get("public.orders.cursor").is_some(), "{state}");

    let loaded = load_connection(&lake, "shop", &client, &destination)
        .await
        .unwrap()
        .unwrap();
    let mode = |stream: &str| {
        loaded
            .streams
            .iter()
            .find(|s| s.stream == stream)
            .map(|s| s.mode)
    };
    assert_eq!(mode("public.orders"), Some(WriteMode::Replace));
    assert_eq!(mode("public.events"), Some(WriteMode::Merge));
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        services.query("SELECT id, total FROM `test.reset_shop.public_orders` ORDER BY id"),
        vec![
            vec![s("1"), s("10")],
            vec![s("3"), s("30")],
            vec![s("4"), s("40")]
        ],
        "replaced: the deleted order is gone"
    );
    assert_eq!(
        services.query("SELECT id, kind FROM `test.reset_shop.public_events` ORDER BY id"),
        vec![
            vec![s("1"), s("a")],
            vec![s("2"), s("b2")],
            vec![s("3"), s("c")]
        ],
        "merged: the update landed, nothing else moved"
    );
}
