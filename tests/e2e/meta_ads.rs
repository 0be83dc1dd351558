//! The meta-ads connector against a fixture of Meta's Marketing API: exact values end to end,
//! cursor paging, asynchronous report runs, the lookback re-read, throttling, typed errors, the
//! conformance kit, and a BigQuery merge that replaces re-read days instead of duplicating them.

use crate::harness::{connector_error, plan, sync};
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Float64Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use inlet_host::credentials::{Grant, GrantSource, HostPattern, SecretValue};
use inlet_host::lake::{Lake, read_committed};
use inlet_host::runtime::{ConnectorError, HttpTape, Recorder, Replayer};
use inlet_host::sync::SyncPlan;
use inlet_tests::http_fixture::FixtureServer;
use inlet_tests::meta_ads_fixture::{self, MetaData, TOKEN, VERSION};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const ACCOUNT: &str = "1234567";
/// 2026-10-01 as days since the epoch.
const OCT_1: i32 = 20_727;

fn insight(campaign: u32, day: u32, spend: &str) -> Value {
    json!({
        "account_id": ACCOUNT, "account_name": "Shop", "account_currency": "EUR",
        "campaign_id": format!("12000{campaign}"), "campaign_name": format!("Campaign {campaign}"),
        "date_start": format!("2026-10-0{day}"), "date_stop": format!("2026-10-0{day}"),
        "spend": spend, "impressions": format!("{}", 100_000 * campaign + day), "clicks": format!("{}", 300 + day),
        "reach": "90000", "cpc": "3.845981", "cpm": "12.345477", "ctr": "0.320997", "frequency": "1.1111111111111",
        "actions": [
            {"action_type": "purchase", "value": "7", "1d_click": "5", "7d_click": "7"},
            {"action_type": "link_click", "value": "301"}
        ],
        "action_values": [{"action_type": "purchase", "value": "345.67", "7d_click": "345.67"}]
    })
}

fn shop() -> MetaData {
    let mut rows = Vec::new();
    for day in 1..=5 {
        for campaign in 1..=2 {
            rows.push(insight(
                campaign,
                day,
                &format!("{}{day}.5{campaign}", campaign * 100),
            ));
        }
    }
    MetaData {
        accounts: BTreeMap::from([(
            ACCOUNT.to_owned(),
            json!({"id": format!("act_{ACCOUNT}"), "account_id": ACCOUNT, "name": "Shop", "currency": "EUR", "timezone_name": "Europe/Berlin", "account_status": 1}),
        )]),
        campaigns: (1..=3)
            .map(|n| json!({
                "id": format!("12000{n}"), "account_id": ACCOUNT, "name": format!("Campaign {n}"),
                "status": "ACTIVE", "effective_status": "ACTIVE", "objective": "OUTCOME_SALES",
                "daily_budget": format!("{n}500"), "created_time": "2026-09-01T10:00:00+0000",
                "updated_time": format!("2026-10-0{n}T08:30:00+0000"),
            }))
            .collect(),
        insights: BTreeMap::from([("campaign".to_owned(), rows)]),
        usage_pct: 10,
        throttle_results: 0,
        running_polls: 1,
    }
}

fn config(fixture: &FixtureServer) -> Value {
    json!({
        "account_ids": [format!("act_{ACCOUNT}")],
        "start_date": "2026-10-01", "end_date": "2026-10-05",
        "levels": ["campaign"], "attribution_windows": ["1d_click", "7d_click"],
        "lookback_days": 3, "report_days": 10, "page_size": 3, "poll_seconds": 0,
        "throttle_threshold_pct": 75, "throttle_pause_seconds": 1,
        "endpoint": fixture.url,
    })
}

/// A plan granted the access token as a secret for the fixture's host only.
fn granted(connection: &str, config: Value, fixture: &FixtureServer, token: &str) -> SyncPlan {
    let mut plan = plan("meta-ads", connection, config);
    plan.sandbox.allow_private_network = true;
    plan.sandbox.grants = vec![Grant {
        name: "access_token".into(),
        source: GrantSource::Secret {
            value: SecretValue::new(token.into()),
            origin: "the test".into(),
        },
        scopes: Vec::new(),
        hosts: vec![HostPattern::parse(&format!("127.0.0.1:{}", fixture.port)).unwrap()],
    }];
    plan
}

fn one_batch(batches: Vec<RecordBatch>) -> RecordBatch {
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn strings(batch: &RecordBatch, column: &str) -> Vec<String> {
    let array = batch.column_by_name(column).unwrap().as_string::<i32>();
    array.iter().map(|v| v.unwrap_or("").to_owned()).collect()
}

fn decimals(batch: &RecordBatch, column: &str) -> Vec<i128> {
    let array = batch.column_by_name(column).unwrap();
    assert_eq!(
        array.data_type(),
        &arrow_schema::DataType::Decimal128(38, 9),
        "{column}"
    );
    array.as_primitive::<Decimal128Type>().values().to_vec()
}

/// Sorted by (date, campaign).
fn insights(batches: Vec<RecordBatch>) -> RecordBatch {
    let batch = one_batch(batches);
    let days = batch
        .column_by_name("date_start")
        .unwrap()
        .as_primitive::<Date32Type>()
        .clone();
    let ids = strings(&batch, "object_id");
    let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
    order.sort_by_key(|&i| (days.value(i as usize), ids[i as usize].clone()));
    let indices = arrow_array::UInt32Array::from(order);
    let columns = batch
        .columns()
        .iter()
        .map(|c| arrow_select::take::take(c, &indices, None).unwrap())
        .collect();
    RecordBatch::try_new(batch.schema(), columns).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn insights_and_objects_arrive_exact_through_async_runs_pages_and_throttling() {
    let mut data = shop();
    data.usage_pct = 80; // over the 75 % threshold: the connector pauses before the limit
    data.throttle_results = 1; // the first results page is refused with #80000 once
    let data = Arc::new(Mutex::new(data));
    let fixture = meta_ads_fixture::start(data.clone());
    let lake = Lake::in_memory();
    let plan = granted("meta", config(&fixture), &fixture, TOKEN);
    let (result, recorder) = sync(&lake, &plan).await;
    let report = result.unwrap();
    assert_eq!(report.streams["insights_campaign"].rows, 10, "{report:?}");
    assert_eq!(report.streams["campaigns"].rows, 3);
    assert_eq!(report.streams["ad_accounts"].rows, 1);

    let batch = insights(
        read_committed(&lake, "meta", "insights_campaign")
            .await
            .unwrap(),
    );
    assert_eq!(batch.num_rows(), 10);
    assert_eq!(strings(&batch, "account_id"), vec![ACCOUNT; 10]);
    assert_eq!(&strings(&batch, "object_id")[..2], ["120001", "120002"]);
    assert_eq!(
        &strings(&batch, "campaign_name")[..2],
        ["Campaign 1", "Campaign 2"]
    );
    let days = batch
        .column_by_name("date_start")
        .unwrap()
        .as_primitive::<Date32Type>();
    assert_eq!(days.values()[..4], [OCT_1, OCT_1, OCT_1 + 1, OCT_1 + 1]);
    // "1001.51" and "2001.52": exact at scale 9, never a float.
    assert_eq!(
        decimals(&batch, "spend")[..4],
        [
            1_001_510_000_000,
            2_001_520_000_000,
            1_002_510_000_000,
            2_002_520_000_000
        ]
    );
    assert_eq!(decimals(&batch, "cpc")[0], 3_845_981_000);
    let impressions = batch
        .column_by_name("impressions")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(impressions.values()[..2], [100_001, 200_001]);
    let clicks = batch
        .column_by_name("clicks")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(clicks.values()[..3], [301, 301, 302]);
    let frequency = batch
        .column_by_name("frequency")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!(frequency.value(0), 1.1111111111111);
    let actions = batch.column_by_name("actions").unwrap().as_list::<i32>();
    let first = actions.value(0);
    let first = first.as_struct();
    assert_eq!(first.len(), 2);
    let types = first
        .column_by_name("action_type")
        .unwrap()
        .as_string::<i32>();
    assert_eq!(types.value(0), "purchase");
    assert_eq!(types.value(1), "link_click");
    let value = first
        .column_by_name("value")
        .unwrap()
        .as_primitive::<Decimal128Type>();
    assert_eq!(value.value(0), 7_000_000_000);
    let click_1d = first
        .column_by_name("value_1d_click")
        .unwrap()
        .as_primitive::<Decimal128Type>();
    assert_eq!(click_1d.value(0), 5_000_000_000);
    assert!(click_1d.is_null(1), "no 1d_click for link_click");
    let values = batch
        .column_by_name("action_values")
        .unwrap()
        .as_list::<i32>()
        .value(0);
    let seven = values
        .as_struct()
        .column_by_name("value_7d_click")
        .unwrap()
        .as_primitive::<Decimal128Type>();
    assert_eq!(seven.value(0), 345_670_000_000);

    let campaigns = one_batch(read_committed(&lake, "meta", "campaigns").await.unwrap());
    assert_eq!(strings(&campaigns, "id"), ["120001", "120002", "120003"]);
    assert_eq!(
        decimals(&campaigns, "daily_budget"),
        [1_500_000_000_000, 2_500_000_000_000, 3_500_000_000_000]
    );
    let updated = campaigns.column_by_name("updated_time").unwrap();
    assert_eq!(
        arrow_cast::display::array_value_to_string(updated, 2).unwrap(),
        "2026-10-03T08:30:00Z"
    );

    let requests = fixture.requests();
    // Every request carried the token in the Authorization header, none in the URL.
    assert!(
        requests
            .iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}")))
    );
    assert!(requests.iter().all(|r| r.params("access_token").is_empty()));
    // One report run over the whole range, daily rows, the windows asked for.
    let created: Vec<_> = requests.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].path, format!("{VERSION}/act_{ACCOUNT}/insights"));
    assert_eq!(created[0].params("level"), ["campaign"]);
    assert_eq!(created[0].params("time_increment"), ["1"]);
    assert_eq!(
        created[0].params("time_range"),
        [r#"{"since":"2026-10-01","until":"2026-10-05"}"#]
    );
    assert_eq!(
        created[0].params("action_attribution_windows"),
        [r#"["1d_click","7d_click"]"#]
    );
    // Polled until Job Completed: once running, once done.
    let polls = requests
        .iter()
        .filter(|r| r.path.starts_with(&format!("{VERSION}/6")) && !r.path.ends_with("/insights"))
        .count();
    assert_eq!(polls, 2);
    // Results: 10 rows in pages of 3 = 4 pages, plus the throttled first try repeated.
    let results: Vec<Vec<&str>> = requests
        .iter()
        .filter(|r| r.path.ends_with("/insights") && r.method == "GET")
        .map(|r| r.params("after"))
        .collect();
    assert_eq!(
        results,
        vec![vec![], vec![], vec!["cur3"], vec!["cur6"], vec!["cur9"]]
    );
    // Campaigns: 3 in pages of 3: one page (no `next`).
    let campaign_pages = requests
        .iter()
        .filter(|r| r.path.ends_with("/campaigns"))
        .count();
    assert_eq!(campaign_pages, 1);
    let logs = recorder.logs.lock().unwrap().clone();
    assert!(
        logs.iter()
            .any(|l| l.contains("Meta error #80000/2446079") && l.contains("retry 1 of 5")),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|l| l.contains("pausing 1 s before Meta's rate limit: x-business-use-case-usage ads_insights call_count at 80%")),
        "{logs:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_second_sync_rereads_the_lookback_window_and_only_updated_objects() {
    let data = Arc::new(Mutex::new(shop()));
    let fixture = meta_ads_fixture::start(data.clone());
    let lake = Lake::in_memory();
    let plan = granted("meta", config(&fixture), &fixture, TOKEN);
    sync(&lake, &plan).await.0.unwrap();
    let before = fixture.requests().len();
    let (result, recorder) = sync(&lake, &plan).await;
    let report = result.unwrap();
    // lookback_days = 3 before 2026-10-05: 10-03..10-05 again, 2 campaigns a day.
    assert_eq!(report.streams["insights_campaign"].rows, 6, "{report:?}");
    assert_eq!(
        report.streams["campaigns"].rows, 1,
        "only the campaign updated in the last second read"
    );
    let second: Vec<_> = fixture.requests().split_off(before);
    let created: Vec<_> = second.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(
        created[0].params("time_range"),
        [r#"{"since":"2026-10-03","until":"2026-10-05"}"#]
    );
    let filter = second
        .iter()
        .find(|r| r.path.ends_with("/campaigns"))
        .unwrap();
    // Newest updated_time seen, 2026-10-03T08:30:00Z = 1791016200, less one second.
    assert_eq!(
        filter.params("filtering"),
        [r#"[{"field":"campaign.updated_time","operator":"GREATER_THAN","value":1791016199}]"#]
    );
    let logs = recorder.logs.lock().unwrap().clone();
    assert!(
        logs.iter()
            .any(|l| l.contains("re-reading from 2026-10-03 (3 lookback days)")),
        "{logs:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_an_auth_error_saying_what_to_do() {
    let fixture = meta_ads_fixture::start(Arc::new(Mutex::new(shop())));
    let plan = granted("meta", config(&fixture), &fixture, "EAAB-expired");
    let error = connector_error(sync(&Lake::in_memory(), &plan).await.0);
    let ConnectorError::Auth(message) = error else {
        panic!("expected an auth error, got {error:?}")
    };
    assert!(
        message.starts_with("the access token has expired: generate a new one"),
        "{message}"
    );
    assert!(
        message.contains("grants.access_token") && message.contains("(OAuthException#190/463)"),
        "{message}"
    );
    assert!(
        !message.contains("EAAB-expired"),
        "the token never reaches the connector"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_throttle_that_never_lifts_is_rate_limited_after_the_retries() {
    let mut data = shop();
    data.throttle_results = 100;
    let fixture = meta_ads_fixture::start(Arc::new(Mutex::new(data)));
    let mut config = config(&fixture);
    config["throttle_pause_seconds"] = json!(0);
    config["max_retries"] = json!(2);
    let plan = granted("meta", config, &fixture, TOKEN);
    let error = connector_error(sync(&Lake::in_memory(), &plan).await.0);
    assert!(
        matches!(&error, ConnectorError::RateLimited(r) if r.message.contains("(OAuthException#80000/2446079)")),
        "{error:?}"
    );
    let tries = fixture
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/insights") && r.method == "GET")
        .count();
    assert_eq!(tries, 3, "the first try and two retries");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_meta_ads_connector_passes_the_conformance_kit() {
    let fixture = meta_ads_fixture::start(Arc::new(Mutex::new(shop())));
    let mut config = config(&fixture);
    // No look-back: the kit's second read must not go before the saved position.
    config["lookback_days"] = json!(0);
    let policy = granted("kit", config.clone(), &fixture, TOKEN).sandbox;
    inlet_tests::conformance::source_contract(
        crate::harness::runtime(),
        "meta-ads",
        config,
        policy,
    )
    .await;
}

/// `--record` then `--replay` (issue 17): the kit recorded against the fixture passes again from
/// the tape alone — the fixture sees no request — and the tape holds no token; a request the tape
/// lacks fails the call naming it.
#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_kit_run_replays_with_no_network_and_no_token_in_the_tape() {
    let fixture = meta_ads_fixture::start(Arc::new(Mutex::new(shop())));
    let mut config = config(&fixture);
    config["lookback_days"] = json!(0);
    let tape = tempfile::tempdir().unwrap();
    let mut policy = granted("kit", config.clone(), &fixture, TOKEN).sandbox;
    policy.http_tape = Some(HttpTape::Record(Arc::new(
        Recorder::create(tape.path()).unwrap(),
    )));
    let runtime = crate::harness::runtime();
    inlet_tests::conformance::source_contract(runtime, "meta-ads", config.clone(), policy.clone())
        .await;
    let sent = fixture.requests().len();
    let mut files: Vec<_> = std::fs::read_dir(tape.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), sent, "one file per request sent: {files:?}");
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    for (file, text) in files.iter().zip(&texts) {
        assert!(!text.contains(TOKEN), "{} holds the token", file.display());
        let exchange: Value = serde_json::from_str(text).unwrap();
        assert!(
            exchange["request"]["url"]
                .as_str()
                .unwrap()
                .starts_with(&fixture.url)
        );
        assert!(exchange["response"]["status"].as_u64().is_some());
    }
    assert!(
        texts
            .iter()
            .all(|t| t.contains("Bearer <credential access_token>")),
        "every request carries the credential's name instead of the token"
    );
    assert!(
        files[0]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("0001-get-127.0.0.1"),
        "{files:?}"
    );

    policy.http_tape = Some(HttpTape::Replay(Arc::new(
        Replayer::open(tape.path()).unwrap(),
    )));
    inlet_tests::conformance::source_contract(runtime, "meta-ads", config.clone(), policy.clone())
        .await;
    assert_eq!(fixture.requests().len(), sent, "replay sent nothing");

    // The rows of a replayed sync are the fixture's.
    let mut plan = granted("replayed", config.clone(), &fixture, TOKEN);
    plan.sandbox = policy.clone();
    let lake = Lake::in_memory();
    let report = sync(&lake, &plan).await.0.unwrap();
    assert_eq!(report.streams["insights_campaign"].rows, 10, "{report:?}");
    let batch = insights(
        read_committed(&lake, "replayed", "insights_campaign")
            .await
            .unwrap(),
    );
    assert_eq!(&strings(&batch, "object_id")[..2], ["120001", "120002"]);
    assert_eq!(fixture.requests().len(), sent, "replay sent nothing");

    // A tape without the insights requests cannot answer them: the run fails naming one.
    for file in &files {
        if std::fs::read_to_string(file).unwrap().contains("/insights") {
            std::fs::remove_file(file).unwrap();
        }
    }
    plan.sandbox.http_tape = Some(HttpTape::Replay(Arc::new(
        Replayer::open(tape.path()).unwrap(),
    )));
    let error = sync(&Lake::in_memory(), &plan)
        .await
        .0
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("has no exchange for POST") || error.contains("has no exchange for GET"),
        "{error}"
    );
    assert!(error.contains("/insights"), "{error}");
    assert_eq!(fixture.requests().len(), sent, "replay sent nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lookback_reread_replaces_rows_in_bigquery_instead_of_duplicating_them() {
    use inlet_host::bigquery::{Client, Destination, LoadLimits, load_connection};
    use inlet_host::credentials::GoogleAuth;
    use inlet_host::lake::CloudAccess;
    use inlet_tests::gcp::{GcpServices, PROJECT};

    let data = Arc::new(Mutex::new(shop()));
    let fixture = meta_ads_fixture::start(data.clone());
    let services = GcpServices::get();
    let bucket = services.bucket("meta-lake");
    let access = CloudAccess {
        google: Some(Arc::new(GoogleAuth::anonymous())),
        gcs_endpoint: Some(services.gcs_endpoint.clone()),
    };
    let lake = Lake::open_with(&format!("gs://{bucket}/raw"), &access).unwrap();
    let mut plan = granted("meta", config(&fixture), &fixture, TOKEN);
    plan.select = Some(vec!["insights_campaign".into()]);
    let client = Client::new(
        &services.bigquery_endpoint,
        PROJECT,
        Arc::new(GoogleAuth::anonymous()),
    );
    let destination = Destination {
        location: "US".into(),
        dataset: "meta_ads".into(),
        table_template: "{stream}".into(),
        labels: BTreeMap::new(),
        streams: BTreeMap::new(),
        limits: LoadLimits::default(),
    };
    sync(&lake, &plan).await.0.unwrap();
    load_connection(&lake, "meta", &client, &destination)
        .await
        .unwrap()
        .expect("loaded");

    // Meta restates 2026-10-04 for campaign 1 (late conversions): spend and purchases grow.
    {
        let mut data = data.lock().unwrap();
        let rows = data.insights.get_mut("campaign").unwrap();
        let row = rows
            .iter_mut()
            .find(|r| r["date_start"] == "2026-10-04" && r["campaign_id"] == "120001")
            .unwrap();
        row["spend"] = json!("1004.99");
    }
    let report = sync(&lake, &plan).await.0.unwrap();
    assert_eq!(report.streams["insights_campaign"].rows, 6);
    load_connection(&lake, "meta", &client, &destination)
        .await
        .unwrap()
        .expect("loaded again");

    let rows = services.query(
        "SELECT COUNT(*), COUNT(DISTINCT CONCAT(object_id, CAST(date_start AS STRING))) FROM `test.meta_ads.insights_campaign`",
    );
    assert_eq!(
        rows,
        vec![vec![Some("10".into()), Some("10".into())]],
        "re-read days replaced, not added"
    );
    let restated = services.query(
        "SELECT CAST(spend AS STRING) FROM `test.meta_ads.insights_campaign` WHERE object_id = '120001' AND CAST(date_start AS STRING) = '2026-10-04'",
    );
    assert_eq!(numeric(&restated), ["1004.99"]);
    let untouched = services.query(
        "SELECT CAST(spend AS STRING) FROM `test.meta_ads.insights_campaign` WHERE object_id = '120002' AND CAST(date_start AS STRING) = '2026-10-01'",
    );
    assert_eq!(numeric(&untouched), ["2001.52"]);
}

/// NUMERIC values as text without trailing zeros (the emulator writes all 9 digits of scale).
fn numeric(rows: &[Vec<Option<String>>]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            let text = r[0].clone().unwrap();
            match text.contains('.') {
                true => text.trim_end_matches('0').trim_end_matches('.').to_owned(),
                false => text,
            }
        })
        .collect()
}
