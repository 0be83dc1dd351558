//! The google-ads connector against a fixture of the Google Ads REST API: exact values end to end
//! in the lake, the manager tree walked, the lookback re-read keyed so a merge replaces it
//! (also in BigQuery), typed errors naming the account and the fix, and the conformance kit.

use crate::harness::{connector_error, plan, sync};
use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type, Int64Type};
use inlet_host::credentials::{Grant, GrantSource, HostPattern, SecretValue};
use inlet_host::lake::{History, Lake, read_committed};
use inlet_host::runtime::ConnectorError;
use inlet_host::sync::{SyncError, SyncPlan};
use inlet_tests::google_ads_fixture::{
    self, Account, DEVELOPER_TOKEN, GoogleAdsFixture, TOKEN, World,
};
use inlet_tests::http_fixture::{authorized_user_file, google_grant};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const ADS_SCOPE: &str = "https://www.googleapis.com/auth/adwords";
const MANAGER: &str = "1112223333";
const SUB_MANAGER: &str = "2223334444";
const EU: &str = "1234567890";
const US: &str = "5556667777";
const CANCELED: &str = "9990001111";
/// Beyond 2^53: a float would round it.
const BIG_COST: &str = "9007199254740993";

fn account(
    id: &str,
    name: &str,
    zone: &str,
    currency: &str,
    manager: bool,
    status: &str,
    parent: Option<&str>,
) -> Account {
    Account {
        id: id.into(),
        name: name.into(),
        time_zone: zone.into(),
        currency: currency.into(),
        manager,
        status: status.into(),
        parent: parent.map(str::to_owned),
    }
}

/// A campaign performance row as the API has it (every field; the fixture projects).
#[allow(clippy::too_many_arguments)]
fn campaign_day(
    customer: &str,
    campaign: &str,
    name: &str,
    date: &str,
    device: &str,
    network: &str,
    clicks: &str,
    cost: &str,
    conversions: f64,
) -> Value {
    json!({
        "campaign": {"resourceName": format!("customers/{customer}/campaigns/{campaign}"), "id": campaign,
                     "name": name, "status": "ENABLED", "advertisingChannelType": "SEARCH",
                     "biddingStrategyType": "MAXIMIZE_CONVERSIONS",
                     "labels": [format!("customers/{customer}/labels/7")]},
        "campaignBudget": {"resourceName": format!("customers/{customer}/campaignBudgets/9"), "amountMicros": "50000000"},
        "segments": {"date": date, "device": device, "adNetworkType": network},
        "metrics": {"impressions": "1000", "clicks": clicks, "costMicros": cost, "conversions": conversions,
                    "conversionsValue": conversions * 40.0, "allConversions": conversions + 1.0,
                    "allConversionsValue": conversions * 40.0 + 10.0}
    })
}

fn ad_group_rows(customer: &str, date: &str) -> (Value, Value, Value) {
    let base = json!({
        "campaign": {"resourceName": format!("customers/{customer}/campaigns/111"), "id": "111"},
        "adGroup": {"resourceName": format!("customers/{customer}/adGroups/222"), "id": "222", "name": "Shoes",
                    "status": "ENABLED", "type": "SEARCH_STANDARD"},
        "segments": {"date": date, "device": "MOBILE", "adNetworkType": "SEARCH"},
        "metrics": {"impressions": "600", "clicks": "15", "costMicros": "7000000", "conversions": 1.5,
                    "conversionsValue": 60.0, "allConversions": 2.0, "allConversionsValue": 70.0}
    });
    let mut ad = base.clone();
    ad["adGroupAd"] = json!({"resourceName": format!("customers/{customer}/adGroupAds/222~333"), "status": "ENABLED",
                             "ad": {"resourceName": format!("customers/{customer}/ads/333"), "id": "333", "name": "Shoe ad", "type": "RESPONSIVE_SEARCH_AD"}});
    let mut keyword = base.clone();
    keyword["keywordView"] =
        json!({"resourceName": format!("customers/{customer}/keywordViews/222~444")});
    keyword["adGroupCriterion"] = json!({"resourceName": format!("customers/{customer}/adGroupCriteria/222~444"),
        "criterionId": "444", "keyword": {"text": "running shoes", "matchType": "EXACT"}});
    (base, ad, keyword)
}

fn world() -> World {
    let mut rows = BTreeMap::new();
    rows.insert(
        (EU.to_owned(), "campaign".to_owned()),
        vec![
            campaign_day(
                EU,
                "111",
                "Brand",
                "2026-10-01",
                "MOBILE",
                "SEARCH",
                "25",
                BIG_COST,
                2.5,
            ),
            campaign_day(
                EU,
                "111",
                "Brand",
                "2026-10-01",
                "DESKTOP",
                "SEARCH",
                "5",
                "1500000",
                0.0,
            ),
            campaign_day(
                EU,
                "111",
                "Brand",
                "2026-10-02",
                "MOBILE",
                "SEARCH",
                "30",
                "2000000",
                2.5,
            ),
            campaign_day(
                EU,
                "111",
                "Brand",
                "2026-10-03",
                "MOBILE",
                "SEARCH_PARTNERS",
                "7",
                "300000",
                1.0,
            ),
        ],
    );
    let (ad_group, ad, keyword) = ad_group_rows(EU, "2026-10-02");
    rows.insert((EU.to_owned(), "ad_group".to_owned()), vec![ad_group]);
    rows.insert((EU.to_owned(), "ad_group_ad".to_owned()), vec![ad]);
    rows.insert((EU.to_owned(), "keyword_view".to_owned()), vec![keyword]);
    rows.insert(
        (US.to_owned(), "campaign".to_owned()),
        vec![campaign_day(
            US,
            "555",
            "US Generic",
            "2026-10-02",
            "TABLET",
            "CONTENT",
            "3",
            "990000",
            0.5,
        )],
    );
    World {
        manager: MANAGER.into(),
        accounts: vec![
            account(
                MANAGER,
                "Agency",
                "Europe/London",
                "GBP",
                true,
                "ENABLED",
                None,
            ),
            account(
                EU,
                "Shop EU",
                "Europe/Berlin",
                "EUR",
                false,
                "ENABLED",
                Some(MANAGER),
            ),
            account(
                SUB_MANAGER,
                "Agency US",
                "America/New_York",
                "USD",
                true,
                "ENABLED",
                Some(MANAGER),
            ),
            account(
                US,
                "Shop US",
                "America/New_York",
                "USD",
                false,
                "ENABLED",
                Some(SUB_MANAGER),
            ),
            account(
                CANCELED,
                "Old shop",
                "Europe/Paris",
                "EUR",
                false,
                "CANCELED",
                Some(MANAGER),
            ),
        ],
        rows,
        quota: None,
        batch_rows: 2,
    }
}

fn config(fixture: &GoogleAdsFixture) -> Value {
    json!({
        "login_customer_id": MANAGER,
        "start_date": "2026-10-01",
        "end_date": "2026-10-31",
        "lookback_days": 1,
        "endpoint": fixture.server.url,
        "custom_queries": [{"name": "campaign_budgets",
            "query": "SELECT campaign.id, campaign_budget.amount_micros, campaign.labels, segments.date FROM campaign WHERE campaign.status = 'ENABLED'"}]
    })
}

/// A developer-token secret grant to the fixture.
fn developer_token_grant(port: u16, value: &str) -> Grant {
    Grant {
        name: "developer_token".into(),
        source: GrantSource::Secret {
            value: SecretValue::new(value.into()),
            origin: "the test".into(),
        },
        scopes: Vec::new(),
        hosts: vec![HostPattern::parse(&format!("127.0.0.1:{port}")).unwrap()],
    }
}

/// `plan` granted the `google` identity (adwords scope) and the developer token, to the fixture.
fn granted(mut plan: SyncPlan, fixture: &GoogleAdsFixture, dir: &std::path::Path) -> SyncPlan {
    let port = fixture.server.port;
    plan.sandbox.allow_private_network = true;
    plan.sandbox.grants = vec![
        google_grant(
            authorized_user_file(dir, &fixture.server),
            &[ADS_SCOPE],
            &[format!("127.0.0.1:{port}")],
        ),
        developer_token_grant(port, DEVELOPER_TOKEN),
    ];
    plan
}

fn one_batch(batches: Vec<RecordBatch>) -> RecordBatch {
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn ints(batch: &RecordBatch, column: &str) -> Vec<i64> {
    batch
        .column_by_name(column)
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec()
}

fn floats(batch: &RecordBatch, column: &str) -> Vec<f64> {
    batch
        .column_by_name(column)
        .unwrap()
        .as_primitive::<Float64Type>()
        .values()
        .to_vec()
}

fn texts(batch: &RecordBatch, column: &str) -> Vec<String> {
    batch
        .column_by_name(column)
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(|v| v.unwrap_or("").to_owned())
        .collect()
}

/// Days since 1970 of `YYYY-MM-DD` (Date32 values).
fn day(text: &str) -> i32 {
    let dates = arrow_cast::cast(
        &arrow_array::StringArray::from(vec![text]),
        &arrow_schema::DataType::Date32,
    )
    .unwrap();
    dates.as_primitive::<Date32Type>().value(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_arrive_exact_from_every_account_under_the_manager() {
    let fixture = google_ads_fixture::start(world());
    let dir = tempfile::tempdir().unwrap();
    let plan = granted(
        crate::harness::plan("google-ads", "ads", config(&fixture)),
        &fixture,
        dir.path(),
    );
    let lake = Lake::in_memory();
    let (result, recorder) = sync(&lake, &plan).await;
    let report = result.unwrap();
    assert_eq!(report.streams["campaign_performance"].rows, 5, "{report:?}");

    // The tree: the manager and the sub-manager were listed; the cancelled account never read.
    let clients = |id| {
        fixture
            .queries(id)
            .iter()
            .filter(|q| q.contains("FROM customer_client"))
            .count()
    };
    assert_eq!((clients(MANAGER), clients(SUB_MANAGER)), (1, 1));
    assert!(fixture.queries(CANCELED).is_empty());
    assert!(
        fixture
            .queries(MANAGER)
            .iter()
            .all(|q| q.contains("customer_client")),
        "managers hold no reports"
    );

    let accounts = one_batch(read_committed(&lake, "ads", "accounts").await.unwrap());
    assert_eq!(ints(&accounts, "customer_id"), [1234567890, 5556667777]);
    assert_eq!(texts(&accounts, "name"), ["Shop EU", "Shop US"]);
    assert_eq!(
        texts(&accounts, "time_zone"),
        ["Europe/Berlin", "America/New_York"]
    );
    assert_eq!(texts(&accounts, "currency_code"), ["EUR", "USD"]);

    let perf = one_batch(
        read_committed(&lake, "ads", "campaign_performance")
            .await
            .unwrap(),
    );
    assert_eq!(
        ints(&perf, "customer_id"),
        [EU, EU, EU, EU, US].map(|c| c.parse::<i64>().unwrap())
    );
    assert_eq!(ints(&perf, "campaign_id"), [111, 111, 111, 111, 555]);
    let dates: Vec<i32> = perf
        .column_by_name("date")
        .unwrap()
        .as_primitive::<Date32Type>()
        .values()
        .to_vec();
    assert_eq!(
        dates,
        [
            "2026-10-01",
            "2026-10-01",
            "2026-10-02",
            "2026-10-03",
            "2026-10-02"
        ]
        .map(day)
    );
    assert_eq!(
        texts(&perf, "device"),
        ["MOBILE", "DESKTOP", "MOBILE", "MOBILE", "TABLET"]
    );
    assert_eq!(
        texts(&perf, "ad_network_type"),
        ["SEARCH", "SEARCH", "SEARCH", "SEARCH_PARTNERS", "CONTENT"]
    );
    assert_eq!(ints(&perf, "clicks"), [25, 5, 30, 7, 3]);
    assert_eq!(ints(&perf, "impressions"), [1000; 5]);
    assert_eq!(
        ints(&perf, "cost_micros"),
        [
            9_007_199_254_740_993,
            1_500_000,
            2_000_000,
            300_000,
            990_000
        ],
        "micros exact, beyond a double's 2^53"
    );
    assert_eq!(floats(&perf, "conversions"), [2.5, 0.0, 2.5, 1.0, 0.5]);
    assert_eq!(
        floats(&perf, "conversions_value"),
        [100.0, 0.0, 100.0, 40.0, 20.0]
    );
    assert_eq!(floats(&perf, "all_conversions"), [3.5, 1.0, 3.5, 2.0, 1.5]);

    let campaigns = one_batch(read_committed(&lake, "ads", "campaigns").await.unwrap());
    assert_eq!(ints(&campaigns, "id"), [111, 555], "one row per campaign");
    assert_eq!(texts(&campaigns, "name"), ["Brand", "US Generic"]);
    let ads = one_batch(read_committed(&lake, "ads", "ads").await.unwrap());
    assert_eq!(
        (
            ints(&ads, "id"),
            ints(&ads, "ad_group_id"),
            texts(&ads, "type")
        ),
        (
            vec![333],
            vec![222],
            vec!["RESPONSIVE_SEARCH_AD".to_owned()]
        )
    );
    let keywords = one_batch(
        read_committed(&lake, "ads", "keyword_performance")
            .await
            .unwrap(),
    );
    assert_eq!(ints(&keywords, "criterion_id"), [444]);
    assert_eq!(texts(&keywords, "keyword_text"), ["running shoes"]);
    assert_eq!(texts(&keywords, "match_type"), ["EXACT"]);
    assert_eq!(ints(&keywords, "cost_micros"), [7_000_000]);
    let ad_groups = one_batch(
        read_committed(&lake, "ads", "ad_group_performance")
            .await
            .unwrap(),
    );
    assert_eq!(
        (
            ints(&ad_groups, "ad_group_id"),
            floats(&ad_groups, "conversions")
        ),
        (vec![222], vec![1.5])
    );

    // The custom stream: typed from the built-in table, unknown fields as text, keyed by resource.
    let custom = one_batch(
        read_committed(&lake, "ads", "campaign_budgets")
            .await
            .unwrap(),
    );
    assert_eq!(
        ints(&custom, "campaign_budget_amount_micros"),
        [50_000_000; 5]
    );
    assert_eq!(
        texts(&custom, "campaign_labels")[0],
        r#"["customers/1234567890/labels/7"]"#
    );
    assert_eq!(
        texts(&custom, "resource_name")[0],
        "customers/1234567890/campaigns/111"
    );

    // Every report asked for the configured window; every call carried the three headers.
    let eu = fixture.queries(EU);
    assert!(
        eu.contains(&"SELECT campaign.id, segments.date, segments.device, segments.ad_network_type, metrics.impressions, metrics.clicks, metrics.cost_micros, metrics.conversions, metrics.conversions_value, metrics.all_conversions, metrics.all_conversions_value FROM campaign WHERE segments.date BETWEEN '2026-10-01' AND '2026-10-31'".to_owned()),
        "{eu:#?}"
    );
    assert!(eu.contains(&"SELECT campaign.id, campaign_budget.amount_micros, campaign.labels, segments.date FROM campaign WHERE campaign.status = 'ENABLED' AND segments.date BETWEEN '2026-10-01' AND '2026-10-31'".to_owned()), "{eu:#?}");
    let calls: Vec<_> = fixture
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/v26/"))
        .collect();
    assert!(!calls.is_empty());
    for call in &calls {
        assert_eq!(
            call.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(call.header("developer-token"), Some(DEVELOPER_TOKEN));
        assert_eq!(call.header("login-customer-id"), Some(MANAGER));
    }
    let logs = recorder.logs.lock().unwrap().join("\n");
    assert!(
        !logs.contains(TOKEN) && !logs.contains(DEVELOPER_TOKEN),
        "{logs}"
    );
}

/// The committed rows of `stream` as `(key, conversions)`, key = customer, campaign, date, device,
/// network.
async fn performance_rows(lake: &Lake) -> Vec<((i64, i64, i32, String, String), f64)> {
    let batch = one_batch(
        read_committed(lake, "ads", "campaign_performance")
            .await
            .unwrap(),
    );
    let dates = batch
        .column_by_name("date")
        .unwrap()
        .as_primitive::<Date32Type>()
        .values()
        .to_vec();
    let customers = ints(&batch, "customer_id");
    let campaigns = ints(&batch, "campaign_id");
    let devices = texts(&batch, "device");
    let networks = texts(&batch, "ad_network_type");
    let conversions = floats(&batch, "conversions");
    (0..batch.num_rows())
        .map(|i| {
            (
                (
                    customers[i],
                    campaigns[i],
                    dates[i],
                    devices[i].clone(),
                    networks[i].clone(),
                ),
                conversions[i],
            )
        })
        .collect()
}

/// A late conversion on 2026-10-02 and a new day, 2026-10-04, for the EU account.
fn conversions_arrive_late(fixture: &GoogleAdsFixture) {
    let mut world = fixture.world.lock().unwrap();
    let rows = world
        .rows
        .get_mut(&(EU.to_owned(), "campaign".to_owned()))
        .unwrap();
    rows[2]["metrics"]["conversions"] = json!(4.0);
    rows.push(campaign_day(
        EU,
        "111",
        "Brand",
        "2026-10-04",
        "MOBILE",
        "SEARCH",
        "9",
        "800000",
        0.0,
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_second_sync_re_reads_the_lookback_window_per_account_under_the_same_keys() {
    let fixture = google_ads_fixture::start(world());
    let dir = tempfile::tempdir().unwrap();
    let mut plan = granted(
        crate::harness::plan("google-ads", "ads", config(&fixture)),
        &fixture,
        dir.path(),
    );
    plan.select = Some(vec!["campaign_performance".into()]);
    let lake = Lake::in_memory();
    sync(&lake, &plan).await.0.unwrap();
    let first = performance_rows(&lake).await;
    let state = History::read(&lake, "ads")
        .await
        .unwrap()
        .latest()
        .unwrap()
        .state
        .clone()
        .unwrap();
    assert_eq!(
        state["campaign_performance"],
        json!({EU: "2026-10-03", US: "2026-10-02"}),
        "a cursor per account"
    );

    conversions_arrive_late(&fixture);
    let report = sync(&lake, &plan).await.0.unwrap();
    assert_eq!(
        report.streams["campaign_performance"].rows, 4,
        "EU 10-02..04 (3) and US 10-02 (1)"
    );
    let asked = |id| fixture.queries(id).last().cloned().unwrap();
    assert!(
        asked(EU).ends_with("BETWEEN '2026-10-02' AND '2026-10-31'"),
        "max date 10-03 - 1 day: {}",
        asked(EU)
    );
    assert!(
        asked(US).ends_with("BETWEEN '2026-10-01' AND '2026-10-31'"),
        "max 10-02 - 1, never before start: {}",
        asked(US)
    );

    let all = performance_rows(&lake).await;
    let second = &all[first.len()..];
    let first_keys: Vec<_> = first.iter().map(|(k, _)| k.clone()).collect();
    let re_read: Vec<_> = second
        .iter()
        .filter(|(k, _)| first_keys.contains(k))
        .collect();
    assert_eq!(
        re_read.len(),
        3,
        "the re-read rows carry the keys they had: {second:?}"
    );
    let oct2 = (
        1234567890,
        111,
        day("2026-10-02"),
        "MOBILE".to_owned(),
        "SEARCH".to_owned(),
    );
    let versions: Vec<f64> = all
        .iter()
        .filter(|(k, _)| *k == oct2)
        .map(|(_, c)| *c)
        .collect();
    assert_eq!(
        versions,
        [2.5, 4.0],
        "the late conversion arrives under the same key"
    );
    let state = History::read(&lake, "ads")
        .await
        .unwrap()
        .latest()
        .unwrap()
        .state
        .clone()
        .unwrap();
    assert_eq!(
        state["campaign_performance"],
        json!({EU: "2026-10-04", US: "2026-10-02"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn api_errors_become_typed_errors_naming_the_account_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let only = |plan: SyncPlan| SyncPlan {
        select: Some(vec!["campaigns".into()]),
        ..plan
    };

    // A quota error with a long retryDelay: rate limited at once, with the delay.
    let mut long = world();
    long.quota = Some((EU.into(), "120s".into(), 100));
    let fixture = google_ads_fixture::start(long);
    let plan = only(granted(
        crate::harness::plan("google-ads", "ads", config(&fixture)),
        &fixture,
        dir.path(),
    ));
    match connector_error(sync(&Lake::in_memory(), &plan).await.0) {
        ConnectorError::RateLimited(limit) => {
            assert_eq!(limit.retry_after_ms, Some(120_000));
            assert!(
                limit.message.contains(EU) && limit.message.contains("RESOURCE_EXHAUSTED"),
                "{}",
                limit.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        fixture.queries(EU).len(),
        1,
        "a two-minute wait is not waited out in the run"
    );

    // A short one: waited out, then the call succeeds.
    let mut short = world();
    short.quota = Some((EU.into(), "1s".into(), 1));
    let fixture = google_ads_fixture::start(short);
    let plan = only(granted(
        crate::harness::plan("google-ads", "ads", config(&fixture)),
        &fixture,
        dir.path(),
    ));
    let report = sync(&Lake::in_memory(), &plan).await.0.unwrap();
    assert_eq!(report.streams["campaigns"].rows, 2);
    assert_eq!(fixture.queries(EU).len(), 2, "retried once after the delay");

    // A client account without its manager in login-customer-id.
    let fixture = google_ads_fixture::start(world());
    let mut settings = config(&fixture);
    settings
        .as_object_mut()
        .unwrap()
        .remove("login_customer_id");
    settings["customer_ids"] = json!(["123-456-7890"]);
    let plan = only(granted(
        crate::harness::plan("google-ads", "ads", settings),
        &fixture,
        dir.path(),
    ));
    let error = connector_error(sync(&Lake::in_memory(), &plan).await.0);
    let message = format!("{error:?}");
    assert!(matches!(error, ConnectorError::Auth(_)), "{message}");
    assert!(
        message.contains("`1234567890`") && message.contains("set `login_customer_id`"),
        "{message}"
    );
    assert!(
        fixture
            .server
            .requests()
            .iter()
            .all(|r| r.header("login-customer-id").is_none())
    );

    // A custom query with a field the API does not know.
    let fixture = google_ads_fixture::start(world());
    let mut settings = config(&fixture);
    settings["custom_queries"] = json!([{"name": "broken", "query": "SELECT campaign.id, campaign.no_such_field FROM campaign"}]);
    let plan = SyncPlan {
        select: Some(vec!["broken".into()]),
        ..granted(
            crate::harness::plan("google-ads", "ads", settings),
            &fixture,
            dir.path(),
        )
    };
    let error = connector_error(sync(&Lake::in_memory(), &plan).await.0);
    let message = format!("{error:?}");
    assert!(matches!(error, ConnectorError::Config(_)), "{message}");
    assert!(
        message.contains("stream `broken`")
            && message.contains("UNRECOGNIZED_FIELD")
            && message.contains("campaign.no_such_field"),
        "{message}"
    );

    // A developer token the API refuses.
    let fixture = google_ads_fixture::start(world());
    let mut plan = only(granted(
        crate::harness::plan("google-ads", "ads", config(&fixture)),
        &fixture,
        dir.path(),
    ));
    plan.sandbox.grants[1] = developer_token_grant(fixture.server.port, "someone-elses-token");
    let error = connector_error(sync(&Lake::in_memory(), &plan).await.0);
    let message = format!("{error:?}");
    assert!(
        matches!(error, ConnectorError::Auth(_)) && message.contains("DEVELOPER_TOKEN_PROHIBITED"),
        "{message}"
    );

    // No developer token granted at all: the host refuses the ask, naming the grant to add.
    let fixture = google_ads_fixture::start(world());
    let mut plan = only(granted(
        crate::harness::plan("google-ads", "ads", config(&fixture)),
        &fixture,
        dir.path(),
    ));
    plan.sandbox.grants.truncate(1);
    let failure = match sync(&Lake::in_memory(), &plan).await.0 {
        Err(SyncError::Call(error)) => error.failure.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(
        failure.contains("developer_token")
            && failure.contains("[connections.ads.grants.developer_token]"),
        "{failure}"
    );
    assert!(
        fixture.queries(EU).is_empty(),
        "nothing was sent without it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_google_ads_connector_passes_the_conformance_kit() {
    let fixture = google_ads_fixture::start(world());
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&fixture);
    config.as_object_mut().unwrap().remove("end_date");
    // No look-back, one account: the kit's second read must not go before the saved position,
    // which the connector keeps per account.
    config["lookback_days"] = serde_json::json!(0);
    config["customer_ids"] = serde_json::json!([US]);
    let policy = granted(
        plan("google-ads", "kit", config.clone()),
        &fixture,
        dir.path(),
    )
    .sandbox;
    inlet_tests::conformance::source_contract(
        crate::harness::runtime(),
        "google-ads",
        config,
        policy,
    )
    .await;
}

/// A sync-and-load rig on the emulators: the lake on fake-gcs-server, `campaign_performance` only,
/// loaded into dataset `dataset` of local-bigquery.
struct BigQueryRig {
    fixture: GoogleAdsFixture,
    lake: Lake,
    plan: inlet_host::sync::SyncPlan,
    client: inlet_host::bigquery::Client,
    destination: inlet_host::bigquery::Destination,
    query: String,
    _dir: tempfile::TempDir,
}

impl BigQueryRig {
    fn new(dataset: &str) -> Self {
        use inlet_host::bigquery::{Client, Destination, LoadLimits};
        use inlet_host::credentials::GoogleAuth;
        use inlet_host::lake::CloudAccess;
        use inlet_tests::gcp::{GcpServices, PROJECT};
        use std::sync::Arc;

        let fixture = google_ads_fixture::start(world());
        let dir = tempfile::tempdir().unwrap();
        let services = GcpServices::get();
        let bucket = services.bucket(&format!("lake-{dataset}").replace('_', "-"));
        let access = CloudAccess {
            google: Some(Arc::new(GoogleAuth::anonymous())),
            gcs_endpoint: Some(services.gcs_endpoint.clone()),
        };
        let lake = Lake::open_with(&format!("gs://{bucket}/raw"), &access).unwrap();
        let mut plan = granted(
            crate::harness::plan("google-ads", "ads", config(&fixture)),
            &fixture,
            dir.path(),
        );
        plan.select = Some(vec!["campaign_performance".into()]);
        let client = Client::new(
            &services.bigquery_endpoint,
            PROJECT,
            Arc::new(GoogleAuth::anonymous()),
        );
        let destination = Destination {
            location: "US".into(),
            dataset: dataset.into(),
            table_template: "{stream}".into(),
            labels: BTreeMap::new(),
            streams: BTreeMap::new(),
            limits: LoadLimits::default(),
        };
        let query = format!(
            "SELECT customer_id, campaign_id, CAST(date AS STRING), device, ad_network_type, clicks, cost_micros, conversions \
             FROM `test.{dataset}.campaign_performance` ORDER BY customer_id, date, device"
        );
        Self {
            fixture,
            lake,
            plan,
            client,
            destination,
            query,
            _dir: dir,
        }
    }

    async fn sync(&self) {
        sync(&self.lake, &self.plan).await.0.unwrap();
    }

    async fn load(&self) {
        inlet_host::bigquery::load_connection(&self.lake, "ads", &self.client, &self.destination)
            .await
            .unwrap()
            .expect("there is something to load");
    }

    fn table(&self) -> Vec<Vec<Option<String>>> {
        inlet_tests::gcp::GcpServices::get().query(&self.query)
    }

    /// The table once the late conversion of 2026-10-02 is re-read: every day once.
    fn expected_after_re_read() -> Vec<Vec<Option<String>>> {
        let row = |c: &str, d: &str, dev: &str, net: &str, clicks: &str, cost: &str, conv: f64| {
            let k = if c == US { "555" } else { "111" };
            [c, k, d, dev, net, clicks, cost]
                .iter()
                .map(|v| Some((*v).to_owned()))
                .chain([Some(format!("{conv:?}"))])
                .collect()
        };
        vec![
            row(EU, "2026-10-01", "DESKTOP", "SEARCH", "5", "1500000", 0.0),
            row(EU, "2026-10-01", "MOBILE", "SEARCH", "25", BIG_COST, 2.5),
            row(EU, "2026-10-02", "MOBILE", "SEARCH", "30", "2000000", 4.0),
            row(
                EU,
                "2026-10-03",
                "MOBILE",
                "SEARCH_PARTNERS",
                "7",
                "300000",
                1.0,
            ),
            row(EU, "2026-10-04", "MOBILE", "SEARCH", "9", "800000", 0.0),
            row(US, "2026-10-02", "TABLET", "CONTENT", "3", "990000", 0.5),
        ]
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lookback_re_read_replaces_rows_in_bigquery_instead_of_duplicating_them() {
    let rig = BigQueryRig::new("ads");
    rig.sync().await;
    rig.load().await;
    assert_eq!(rig.table().len(), 5);

    conversions_arrive_late(&rig.fixture);
    rig.sync().await;
    rig.load().await;
    assert_eq!(
        rig.table(),
        BigQueryRig::expected_after_re_read(),
        "re-read days replaced (10-02 has its late conversion), none duplicated"
    );
}

/// Two syncs loaded by one load: both versions of a re-read day meet in one load. The cursor
/// (`date`) is part of the key, so ranking by it would tie; the loader merges such streams commit
/// by commit, newest last (`planning.rs`, `Jobs::merge`).
#[tokio::test(flavor = "multi_thread")]
async fn two_syncs_loaded_at_once_keep_the_newest_re_read() {
    let rig = BigQueryRig::new("ads_together");
    rig.sync().await;
    conversions_arrive_late(&rig.fixture);
    rig.sync().await;
    rig.load().await;
    assert_eq!(rig.table(), BigQueryRig::expected_after_re_read());
}
