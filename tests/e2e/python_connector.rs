//! A connector written in Python (`examples/connectors/python-http`, built with componentize-py)
//! in the real host: it builds, loads (componentize-py's ~25 WASI imports link without any new
//! capability), passes the conformance kit, syncs exact rows incrementally from a fixture of the
//! orders API through a host-held key, retries a 429, and reports each failure with its kind.
//! Also prints the figures an author asks about (size, build, compile-on-load, rows/s); nothing
//! is timed as an assertion.

use crate::harness::{connector_error, plan, sync};
use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_schema::DataType;
use inlet_host::credentials::{Grant, GrantSource, HostPattern, SecretValue};
use inlet_host::lake::{History, Lake, read_committed};
use inlet_host::runtime::ConnectorError;
use inlet_host::sync::{SyncError, SyncPlan};
use inlet_tests::http_fixture::FixtureServer;
use inlet_tests::orders_fixture::{self, API_KEY, OrdersApi, instant_after_start, order};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// The component, built once per test process with the example's own `build.sh` into a temp dir.
fn component() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = tempfile::tempdir().unwrap().keep();
        let output = dir.join("python_http.wasm");
        let started = Instant::now();
        let built = std::process::Command::new(root.join("examples/connectors/python-http/build.sh"))
            .arg(&output)
            .output()
            .expect("examples/connectors/python-http/build.sh runs");
        assert!(
            built.status.success(),
            "build.sh failed (tests/services/install_componentize.sh installs componentize-py):\n{}{}",
            String::from_utf8_lossy(&built.stdout),
            String::from_utf8_lossy(&built.stderr)
        );
        eprintln!(
            "python-http: built {} bytes in {:.1} s",
            std::fs::metadata(&output).unwrap().len(),
            started.elapsed().as_secs_f64()
        );
        // Compiled once into the shared cache here, so the tests that wait for this do not
        // each compile the same 18 MB component at the same time.
        let bytes = std::fs::read(&output).unwrap();
        crate::harness::runtime()
            .load("python_http.wasm", &bytes)
            .expect("the component loads: its WASI imports link");
        output
    })
}

fn settings(fixture: &FixtureServer, page_size: u32) -> Value {
    json!({"base_url": fixture.url, "page_size": page_size})
}

/// A plan for the Python component granted `key` as credential `api_key`, for the fixture only.
fn granted(connection: &str, config: Value, fixture: &FixtureServer, key: &str) -> SyncPlan {
    let mut plan = plan(component().to_str().unwrap(), connection, config);
    plan.sandbox.allow_private_network = true;
    plan.sandbox.grants = vec![Grant {
        name: "api_key".into(),
        source: GrantSource::Secret {
            value: SecretValue::new(key.into()),
            origin: "the test".into(),
        },
        scopes: Vec::new(),
        hosts: vec![HostPattern::parse(&format!("127.0.0.1:{}", fixture.port)).unwrap()],
    }];
    plan
}

fn serve(orders: Vec<Value>) -> (Arc<Mutex<OrdersApi>>, FixtureServer) {
    let api = Arc::new(Mutex::new(OrdersApi {
        orders,
        ..OrdersApi::default()
    }));
    let fixture = orders_fixture::start(api.clone());
    (api, fixture)
}

fn one_batch(batches: Vec<RecordBatch>) -> RecordBatch {
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn texts(batch: &RecordBatch, column: &str) -> Vec<String> {
    let array = batch.column_by_name(column).unwrap().as_string::<i32>();
    array.iter().map(|v| v.unwrap().to_owned()).collect()
}

fn integers(batch: &RecordBatch, column: &str) -> Vec<i64> {
    let array = batch.column_by_name(column).unwrap();
    array.as_primitive::<Int64Type>().values().to_vec()
}

async fn saved_state(lake: &Lake, connection: &str) -> Option<Value> {
    let history = History::read(lake, connection).await.unwrap();
    history.latest().and_then(|c| c.state.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_connector_passes_the_conformance_kit() {
    let (_api, fixture) = serve(orders_fixture::orders(1, 25));
    let config = settings(&fixture, 10);
    let policy = granted("kit", config.clone(), &fixture, API_KEY).sandbox;
    inlet_tests::conformance::source_contract(
        crate::harness::runtime(),
        component().to_str().unwrap(),
        config,
        policy,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_orders_arrive_exact_page_by_page_then_only_newer_ones() {
    let (api, fixture) = serve(orders_fixture::orders(1, 25));
    api.lock().unwrap().throttle_next = 1;
    let plan = granted("shop", settings(&fixture, 10), &fixture, API_KEY);
    let lake = Lake::in_memory();

    let (result, recorder) = sync(&lake, &plan).await;
    let report = result.unwrap();
    assert_eq!(report.streams["orders"].rows, 25, "{report:?}");
    let batch = one_batch(read_committed(&lake, "shop", "orders").await.unwrap());
    let schema = batch.schema();
    let types: Vec<(&str, &DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    for (column, expected) in [
        ("id", DataType::Int64),
        ("item_count", DataType::Int64),
        ("total", DataType::Utf8),
        ("updated_at", DataType::Utf8),
    ] {
        assert!(types.contains(&(column, &expected)), "{column}: {types:?}");
    }
    assert!(
        schema.field_with_name("note").is_err(),
        "fields outside the stream's columns are dropped"
    );
    assert_eq!(integers(&batch, "id"), (1..=25).collect::<Vec<_>>());
    assert_eq!(texts(&batch, "total")[..3], ["1.50", "2.50", "3.50"]);
    assert_eq!(texts(&batch, "status")[..3], ["paid", "paid", "refunded"]);
    assert_eq!(texts(&batch, "customer_email")[0], "customer1@example.com");
    assert_eq!(integers(&batch, "item_count")[..3], [2, 3, 4]);
    assert_eq!(
        texts(&batch, "updated_at")[24],
        "2026-11-01T10:00:24.000000Z",
        "instants are kept in UTC at a fixed width, so text order is time order"
    );
    assert_eq!(
        saved_state(&lake, "shop").await,
        Some(json!({"orders": {"updated_after": "2026-11-01T10:00:24.000000Z"}}))
    );
    let cursors: Vec<Value> = History::read(&lake, "shop")
        .await
        .unwrap()
        .commits
        .iter()
        .filter_map(|c| c.state.as_ref()?.pointer("/orders/updated_after").cloned())
        .collect();
    assert_eq!(
        cursors,
        [
            "2026-11-01T10:00:08.000000Z",
            "2026-11-01T10:00:18.000000Z",
            "2026-11-01T10:00:24.000000Z"
        ],
        "a checkpoint per page, each at the newest `updated_at` all of whose orders were emitted \
         (a page's last one may go on on the next page, so it waits)"
    );

    let requests = fixture.requests();
    assert_eq!(
        requests.len(),
        1 + 3,
        "the first page throttled once (retried after `Retry-After: 1`), then 3 pages"
    );
    assert_eq!(requests[0].query, requests[1].query, "the retry asks again");
    assert!(
        requests
            .iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {API_KEY}"))),
        "the host wrote the granted key into every request"
    );
    assert_eq!(requests[3].params("page_token"), ["offset-20"]);
    let logs = recorder.logs.lock().unwrap().join("\n");
    assert!(logs.contains("429"), "the retry is logged: {logs}");
    assert!(!logs.contains(API_KEY), "no key in logs: {logs}");

    // Newer orders, and one whose update makes it newer: the next run reads only those.
    {
        let mut api = api.lock().unwrap();
        api.orders.push(order(26, &instant_after_start(100)));
        api.orders.push(order(27, "2026-11-01T10:02:00.5Z"));
        api.orders[2] = order(3, &instant_after_start(200));
    }
    let (result, _) = sync(&lake, &plan).await;
    assert_eq!(result.unwrap().streams["orders"].rows, 3);
    let all = one_batch(read_committed(&lake, "shop", "orders").await.unwrap());
    assert_eq!(integers(&all, "id")[25..], [26, 27, 3], "in cursor order");
    assert_eq!(
        texts(&all, "updated_at")[25..],
        [
            "2026-11-01T10:01:40.000000Z",
            "2026-11-01T10:02:00.500000Z",
            "2026-11-01T10:03:20.000000Z"
        ],
        "fractions are padded to a fixed width"
    );
    let last = fixture.requests().last().cloned().unwrap();
    assert_eq!(
        last.params("updated_after"),
        ["2026-11-01T10:00:24.000000Z"],
        "the second run asks from the saved cursor"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn python_failures_come_back_typed_and_named() {
    let (api, fixture) = serve(orders_fixture::orders(1, 3));
    let config = json!({"base_url": fixture.url, "max_attempts": 1});
    let run = |key: &str| granted("errors", config.clone(), &fixture, key);

    let error = connector_error(sync(&Lake::in_memory(), &run("not-the-key")).await.0);
    let ConnectorError::Auth(message) = error else {
        panic!("a wrong key is an auth error, got {error:?}")
    };
    assert!(
        message.contains("401") && message.contains("`api_key`"),
        "{message}"
    );
    assert!(
        message.contains("invalid API key"),
        "the API's words: {message}"
    );

    api.lock().unwrap().orders[1]["updated_at"] = json!("yesterday");
    let error = connector_error(sync(&Lake::in_memory(), &run(API_KEY)).await.0);
    let ConnectorError::Data(message) = error else {
        panic!("a malformed item is a data error, got {error:?}")
    };
    assert!(
        message.contains("order 2")
            && message.contains("`updated_at`")
            && message.contains("yesterday"),
        "{message}"
    );

    api.lock().unwrap().broken_body = Some(r#"{"items": [], "next_page_token": 42}"#.into());
    let error = connector_error(sync(&Lake::in_memory(), &run(API_KEY)).await.0);
    assert!(
        matches!(&error, ConnectorError::Data(m) if m.contains("`next_page_token`")),
        "{error:?}"
    );
    api.lock().unwrap().broken_body = Some("<html>gateway</html>".into());
    let error = connector_error(sync(&Lake::in_memory(), &run(API_KEY)).await.0);
    assert!(
        matches!(&error, ConnectorError::Data(m) if m.contains("not JSON")),
        "{error:?}"
    );
    api.lock().unwrap().broken_body = None;

    api.lock().unwrap().always_throttled = true;
    let error = connector_error(sync(&Lake::in_memory(), &run(API_KEY)).await.0);
    let ConnectorError::RateLimited(limit) = error else {
        panic!("429 after the last attempt is rate-limited, got {error:?}")
    };
    assert_eq!(limit.retry_after_ms, Some(7000), "{}", limit.message);
    api.lock().unwrap().always_throttled = false;

    api.lock().unwrap().unavailable = true;
    let error = connector_error(sync(&Lake::in_memory(), &run(API_KEY)).await.0);
    assert!(
        matches!(&error, ConnectorError::Transient(m) if m.contains("503") && m.contains("down for maintenance")),
        "{error:?}"
    );
    api.lock().unwrap().unavailable = false;

    for (bad, named) in [
        (
            json!({"base_url": fixture.url, "page_size": 0}),
            "`page_size`",
        ),
        (
            json!({"base_url": fixture.url, "max_attempts": "3"}),
            "`max_attempts`",
        ),
        (
            json!({"base_url": fixture.url, "start_updated_at": "monday"}),
            "`start_updated_at`",
        ),
    ] {
        let error = connector_error(sync(&Lake::in_memory(), &run_with(&fixture, bad)).await.0);
        assert!(
            matches!(&error, ConnectorError::Config(m) if m.contains(named)),
            "{named}: {error:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_base_url_with_a_path_is_refused_by_the_host_before_the_connector_runs() {
    let (_api, fixture) = serve(Vec::new());
    let config = json!({"base_url": format!("{}/v1", fixture.url)});
    let result = sync(&Lake::in_memory(), &run_with(&fixture, config))
        .await
        .0;
    let Err(error @ SyncError::Policy { .. }) = result else {
        panic!("the declared destination `{{base_url}}` must be an origin, got {result:?}")
    };
    assert!(error.to_string().contains("/v1"), "{error}");
}

fn run_with(fixture: &FixtureServer, config: Value) -> SyncPlan {
    granted("errors", config, fixture, API_KEY)
}
