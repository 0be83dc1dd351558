//! The google-sheets connector against a fixture of the Sheets API, and the host's HTTP policy:
//! declared origins only, credentials filled in by the host for the hosts they may reach.

use crate::harness::{connector_error, plan, sync, violation};
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use inlet_host::lake::{Lake, read_committed};
use inlet_host::runtime::ConnectorError;
use inlet_host::sync::SyncPlan;
use inlet_tests::guests::HTTP_PROBE;
use inlet_tests::http_fixture::{FixtureServer, Response, authorized_user_file, google_grant};
use inlet_tests::sheets_fixture::{self, FORBIDDEN, Sheet, TOKEN};
use serde_json::json;
use std::collections::BTreeMap;

/// The Sheets connector's scope.
const SHEETS_SCOPE: &str = "https://www.googleapis.com/auth/spreadsheets.readonly";

/// A plan granted the `google` credential from the fixture's token endpoint with `scopes`, sendable
/// to the fixture (a loopback host, so private addresses are allowed too).
fn with_fixture_credentials(
    mut plan: SyncPlan,
    fixture: &FixtureServer,
    dir: &std::path::Path,
    scopes: &[&str],
) -> SyncPlan {
    let file = authorized_user_file(dir, fixture);
    plan.sandbox.allow_private_network = true;
    plan.sandbox.grants = vec![google_grant(
        file,
        scopes,
        &[format!("127.0.0.1:{}", fixture.port)],
    )];
    plan
}

fn shop() -> BTreeMap<String, Vec<Sheet>> {
    let orders = Sheet {
        title: "Orders 2024".into(),
        values: vec![
            vec![
                json!("Order ID"),
                json!("Customer"),
                json!("Amount"),
                json!("Ordered on"),
                json!("Paid"),
                json!(""),
                json!("customer"),
                json!("Delivered at"),
            ],
            // 45292 = 2024-01-01; 45292.5 = 2024-01-01 12:00 (serial numbers).
            vec![
                json!(1001),
                json!("Ana"),
                json!(12.5),
                json!(45292),
                json!(true),
                json!("x"),
                json!("dup"),
                json!(45292.5),
            ],
            // A ragged row: shorter than the header.
            vec![
                json!(1002),
                json!("Bo"),
                json!(7),
                json!(45293),
                json!(false),
            ],
            // An empty row in the middle of the sheet.
            vec![],
            // Longer than the header, and a text amount.
            vec![
                json!(1003),
                json!("Cy"),
                json!("n/a"),
                json!(45294),
                json!(true),
                json!(""),
                json!(""),
                json!(""),
                json!("extra"),
            ],
        ],
        formats: vec![
            Some("NUMBER"),
            None,
            Some("CURRENCY"),
            Some("DATE"),
            None,
            None,
            None,
            Some("DATE_TIME"),
        ],
    };
    let empty = Sheet {
        title: "Empty".into(),
        values: vec![],
        formats: vec![],
    };
    BTreeMap::from([("shop-sheet".to_owned(), vec![orders, empty])])
}

fn one_batch(batches: Vec<RecordBatch>) -> RecordBatch {
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column} in {:?}", batch.schema()))
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spreadsheet_arrives_typed_through_a_throttled_api_with_a_host_held_token() {
    let fixture = sheets_fixture::start(shop(), 1);
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"spreadsheets": [{"id": "shop-sheet"}], "endpoint": fixture.url});
    let plan = with_fixture_credentials(
        plan("google-sheets", "sheets", config),
        &fixture,
        dir.path(),
        &[SHEETS_SCOPE],
    );
    let lake = Lake::in_memory();
    let (result, recorder) = sync(&lake, &plan).await;
    let report = result.unwrap();
    assert_eq!(report.streams["orders_2024"].rows, 3, "{report:?}");

    let batch = one_batch(
        read_committed(&lake, "sheets", "orders_2024")
            .await
            .unwrap(),
    );
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        [
            "_row",
            "order_id",
            "customer",
            "amount",
            "ordered_on",
            "paid",
            "column_f",
            "customer_2",
            "delivered_at",
            "column_i"
        ]
    );
    let rows: Vec<i64> = batch
        .column(0)
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    assert_eq!(
        rows,
        vec![2, 3, 5],
        "sheet row numbers; the empty row 4 is skipped"
    );
    let ids: Vec<f64> = batch
        .column(1)
        .as_primitive::<Float64Type>()
        .values()
        .to_vec();
    assert_eq!(ids, vec![1001.0, 1002.0, 1003.0]);
    assert_eq!(
        strings(&batch, "amount"),
        vec![Some("12.5".into()), Some("7".into()), Some("n/a".into())],
        "numbers and text in one column become text"
    );
    let dates = batch
        .column_by_name("ordered_on")
        .unwrap()
        .as_primitive::<Date32Type>();
    assert_eq!(
        dates.values().to_vec(),
        vec![19723, 19724, 19725],
        "2024-01-01..03"
    );
    let paid = batch.column_by_name("paid").unwrap().as_boolean();
    assert_eq!(
        paid.iter().collect::<Vec<_>>(),
        vec![Some(true), Some(false), Some(true)]
    );
    assert_eq!(
        strings(&batch, "column_f"),
        vec![Some("x".into()), None, None]
    );
    assert_eq!(
        strings(&batch, "customer_2"),
        vec![Some("dup".into()), None, None]
    );
    let delivered = batch
        .column_by_name("delivered_at")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    assert_eq!(
        delivered.value(0),
        1_704_110_400_000_000,
        "2024-01-01T12:00"
    );
    assert_eq!(delivered.null_count(), 2);
    assert_eq!(
        strings(&batch, "column_i"),
        vec![None, None, Some("extra".into())]
    );
    assert!(
        read_committed(&lake, "sheets", "empty").await.is_err(),
        "an empty sheet commits no rows and no schema"
    );

    let requests = fixture.requests();
    let batch_gets = requests
        .iter()
        .filter(|r| r.path.ends_with("values:batchGet"))
        .count();
    assert_eq!(batch_gets, 2, "the throttled page was retried once");
    let api_calls: Vec<_> = requests
        .iter()
        .filter(|r| r.path.starts_with("/v4/"))
        .collect();
    assert!(
        api_calls
            .iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}"))),
        "the host put the real token in every API call"
    );
    let logs = recorder.logs.lock().unwrap().join("\n");
    assert!(!logs.contains(TOKEN), "no token in logs: {logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_unshared_spreadsheet_says_what_to_fix() {
    let fixture = sheets_fixture::start(shop(), 0);
    let dir = tempfile::tempdir().unwrap();
    for (id, expected) in [
        ("no-such-sheet", "check the id"),
        (FORBIDDEN, "share it with the service account"),
    ] {
        let config = json!({"spreadsheets": [{"id": id}], "endpoint": fixture.url});
        let plan = with_fixture_credentials(
            plan("google-sheets", "sheets", config),
            &fixture,
            dir.path(),
            &[SHEETS_SCOPE],
        );
        let error = connector_error(sync(&Lake::in_memory(), &plan).await.0);
        let message = format!("{error:?}");
        match id {
            FORBIDDEN => assert!(matches!(error, ConnectorError::Auth(_)), "{message}"),
            _ => assert!(matches!(error, ConnectorError::NotFound(_)), "{message}"),
        }
        assert!(
            message.contains(expected) && message.contains(id),
            "{message}"
        );
    }
}

/// Whether a sync left no commit for connection `probe`.
async fn nothing_committed(lake: &Lake) -> bool {
    inlet_host::lake::Tip::open(lake, "probe")
        .await
        .unwrap()
        .is_none()
}

#[tokio::test(flavor = "multi_thread")]
async fn undeclared_origins_and_credential_exfiltration_are_refused() {
    let declared = FixtureServer::start(|_| Response::json(200, json!({"ok": true})));
    // A second declared origin standing for another Google API (storage.googleapis.com) that the
    // grant does not name.
    let storage = FixtureServer::start(|_| Response::json(200, json!({"ok": true})));
    let other = FixtureServer::start(|_| Response::json(200, json!({"ok": true})));
    let tokens = sheets_fixture::start(BTreeMap::new(), 0);
    let dir = tempfile::tempdir().unwrap();
    let declared_host = format!("127.0.0.1:{}", declared.port);
    // Granted `google` with `scope-a`, to the declared origin only.
    let granted = |config: serde_json::Value| {
        let mut config = config;
        config["second_endpoint"] = json!(storage.url);
        let mut plan = plan(HTTP_PROBE, "probe", config);
        plan.sandbox.allow_private_network = true;
        plan.sandbox.grants = vec![google_grant(
            authorized_user_file(dir.path(), &tokens),
            &["scope-a"],
            std::slice::from_ref(&declared_host),
        )];
        plan
    };
    // The same connection with no grant at all.
    let ungranted = |config: serde_json::Value| {
        let mut plan = granted(config);
        plan.sandbox.grants.clear();
        plan
    };
    let refused = |lake: Lake, plan: SyncPlan| async move {
        let message = violation(sync(&lake, &plan).await.0).to_string();
        assert!(
            nothing_committed(&lake).await,
            "nothing committed: {message}"
        );
        message
    };

    // The declared origin, no credential: allowed.
    sync(
        &Lake::in_memory(),
        &ungranted(json!({"endpoint": declared.url})),
    )
    .await
    .0
    .unwrap();

    // Another origin: refused, with the URL and the rule.
    let message = refused(
        Lake::in_memory(),
        ungranted(json!({"endpoint": declared.url, "target": other.url})),
    )
    .await;
    assert!(
        message.contains(&format!("{}/probe", other.url))
            && message.contains(&declared.url.replace("http://", "")),
        "{message}"
    );
    assert!(
        other.requests().is_empty(),
        "nothing reached the undeclared host"
    );

    // A credential the connection was not granted: refused when asked, naming the table to add.
    let sent_before = declared.requests().len();
    let message = refused(
        Lake::in_memory(),
        ungranted(json!({"endpoint": declared.url, "credential": true})),
    )
    .await;
    assert!(
        message.contains("credential `google` is not granted to connection `probe` (grants: none)")
            && message.contains("[connections.probe.grants.google]"),
        "{message}"
    );

    // More scopes than granted (cloud-platform would reach the lake and BigQuery): refused.
    let message = refused(
        Lake::in_memory(),
        granted(json!({"endpoint": declared.url, "credential": true, "scopes": ["scope-a", "https://www.googleapis.com/auth/cloud-platform"]})),
    )
    .await;
    assert!(
        message.contains("(https://www.googleapis.com/auth/cloud-platform)")
            && message.contains("connection `probe` is granted scope-a"),
        "{message}"
    );
    assert_eq!(declared.requests().len(), sent_before, "no request left");
    assert!(
        tokens.requests().iter().all(|r| r.path != "/token"),
        "no token was even fetched"
    );

    // The granted token, sent to a declared origin the grant does not name (the lake's bucket):
    // refused before anything is sent.
    let message = refused(
        Lake::in_memory(),
        granted(json!({"endpoint": declared.url, "target": storage.url, "credential": true})),
    )
    .await;
    assert!(
        message.contains("credential `google` may not be sent to")
            && message.contains(&format!("may send it only to {declared_host}")),
        "{message}"
    );
    assert!(storage.requests().is_empty(), "the request never left");

    // Where the grant lets it go, the host fills in the token; the connector holds only a
    // placeholder.
    sync(
        &Lake::in_memory(),
        &granted(json!({"endpoint": declared.url, "credential": true})),
    )
    .await
    .0
    .unwrap();
    let last = declared.requests().pop().unwrap();
    assert_eq!(
        last.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let held = connector_error(
        sync(
            &Lake::in_memory(),
            &granted(json!({"endpoint": declared.url, "reveal_credential": true})),
        )
        .await
        .0,
    );
    let held = format!("{held:?}");
    assert!(
        held.contains("inlet-credential-google-") && !held.contains(TOKEN),
        "{held}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_granted_secret_goes_only_into_headers_to_its_hosts() {
    let declared = FixtureServer::start(|_| Response::json(200, json!({"ok": true})));
    let storage = FixtureServer::start(|_| Response::json(200, json!({"ok": true})));
    const SECRET: &str = "s3cr3t-api-key-value";
    let with_secret = |config: serde_json::Value| {
        let mut config = config;
        config["second_endpoint"] = json!(storage.url);
        config["credential_name"] = json!("api_key");
        let mut plan = plan(HTTP_PROBE, "probe", config);
        plan.sandbox.allow_private_network = true;
        plan.sandbox.grants = vec![inlet_host::credentials::Grant {
            name: "api_key".into(),
            source: inlet_host::credentials::GrantSource::Secret {
                value: inlet_host::credentials::SecretValue::new(SECRET.into()),
                origin: "the test".into(),
            },
            scopes: Vec::new(),
            hosts: vec![
                inlet_host::credentials::HostPattern::parse(&format!(
                    "127.0.0.1:{}",
                    declared.port
                ))
                .unwrap(),
            ],
        }];
        plan
    };
    sync(
        &Lake::in_memory(),
        &with_secret(json!({"endpoint": declared.url})),
    )
    .await
    .0
    .unwrap();
    let sent = declared.requests().pop().unwrap();
    assert_eq!(sent.header("x-api-key"), Some(SECRET));

    let lake = Lake::in_memory();
    let message = violation(
        sync(
            &lake,
            &with_secret(json!({"endpoint": declared.url, "target": storage.url})),
        )
        .await
        .0,
    )
    .to_string();
    assert!(
        message.contains("credential `api_key` may not be sent to") && !message.contains(SECRET),
        "{message}"
    );
    assert!(storage.requests().is_empty(), "the secret never left");
    assert!(nothing_committed(&lake).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_google_sheets_connector_passes_the_conformance_kit() {
    let fixture = sheets_fixture::start(shop(), 0);
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"spreadsheets": [{"id": "shop-sheet"}], "endpoint": fixture.url});
    let policy = with_fixture_credentials(
        plan("google-sheets", "kit", config.clone()),
        &fixture,
        dir.path(),
        &[SHEETS_SCOPE],
    )
    .sandbox;
    inlet_tests::conformance::source_contract(
        crate::harness::runtime(),
        "google-sheets",
        config,
        policy,
    )
    .await;
}
