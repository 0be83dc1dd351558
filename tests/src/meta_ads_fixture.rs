//! A fixture of Meta's Marketing API (Graph API v26.0), shaped like the documented answers
//! (ADS-APIS.md, "Meta Marketing API"): `{"data", "paging": {"cursors": {"before", "after"},
//! "next"?}}` pages, the asynchronous report run lifecycle (`POST act_<id>/insights` ->
//! `report_run_id`, `GET <run>` with `async_status` / `async_percent_completion`, `GET
//! <run>/insights`), usage headers, and error bodies `{"error": {"message", "type", "code",
//! "error_subcode", "fbtrace_id"}}`. It insists on `Authorization: Bearer <TOKEN>`.

use crate::http_fixture::{FixtureServer, Request, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The access token the fixture accepts.
pub const TOKEN: &str = "EAAB-meta-fixture-token";
/// The version prefix of every path.
pub const VERSION: &str = "/v26.0";

/// What the fixture serves and how it behaves; tests change it between syncs.
#[derive(Debug, Clone, Default)]
pub struct MetaData {
    /// The ad account node (`act_<id>`), keyed by its digits.
    pub accounts: BTreeMap<String, Value>,
    /// Campaigns (with `account_id`, `updated_time`).
    pub campaigns: Vec<Value>,
    /// Insights rows per level (`campaign`...), each with `date_start`.
    pub insights: BTreeMap<String, Vec<Value>>,
    /// `call_count` percentage reported in `x-business-use-case-usage` on every answer.
    pub usage_pct: u32,
    /// Throttle this many requests for report run results with error #80000 first.
    pub throttle_results: u32,
    /// Polls a report run answers `Job Running` before `Job Completed`.
    pub running_polls: u32,
}

#[derive(Debug, Default)]
struct Runs {
    /// Run id -> (level, since, until, polls so far).
    runs: BTreeMap<String, (String, String, String, u32)>,
}

/// A Graph API error body.
pub fn error(status: u16, code: i64, subcode: Option<i64>, kind: &str, message: &str) -> Response {
    Response::json(
        status,
        json!({"error": {"message": message, "type": kind, "code": code, "error_subcode": subcode, "fbtrace_id": "AbCdEfFixture"}}),
    )
}

/// Starts the fixture over `data`.
pub fn start(data: Arc<Mutex<MetaData>>) -> FixtureServer {
    let runs = Mutex::new(Runs::default());
    FixtureServer::start(move |request| {
        let mut data = data.lock().unwrap();
        let response = answer(request, &mut data, &runs);
        let usage = json!({"1234567": [{"type": "ads_insights", "call_count": data.usage_pct, "total_cputime": 1, "total_time": 1, "estimated_time_to_regain_access": 0, "ads_api_access_tier": "standard_access"}]});
        response
            .with_header("x-business-use-case-usage", &usage.to_string())
            .with_header(
                "x-fb-ads-insights-throttle",
                r#"{"app_id_util_pct": 1, "acc_id_util_pct": 2}"#,
            )
    })
}

fn answer(request: &Request, data: &mut MetaData, runs: &Mutex<Runs>) -> Response {
    if !request.params("access_token").is_empty() {
        return error(
            400,
            100,
            None,
            "OAuthException",
            "the fixture wants the token in the Authorization header",
        );
    }
    if request.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
        return error(
            400,
            190,
            Some(463),
            "OAuthException",
            "Error validating access token: Session has expired on Saturday, 31-Oct-26 10:00:00 PDT.",
        );
    }
    let Some(path) = request.path.strip_prefix(VERSION) else {
        return error(
            400,
            2635,
            None,
            "OAuthException",
            "(#2635) You are calling a deprecated version of the Ads API.",
        );
    };
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let limit: usize = request
        .params("limit")
        .first()
        .and_then(|l| l.parse().ok())
        .unwrap_or(25);
    let after = request.params("after").first().map(|a| (*a).to_owned());
    match (request.method.as_str(), parts.as_slice()) {
        ("GET", [account]) if account.starts_with("act_") => {
            match data.accounts.get(&account["act_".len()..]) {
                Some(node) => Response::json(200, node.clone()),
                None => error(
                    400,
                    100,
                    Some(33),
                    "GraphMethodException",
                    "Unsupported get request. Object with ID does not exist",
                ),
            }
        }
        ("GET", [account, "campaigns"]) => {
            let digits = &account["act_".len()..];
            let since = request
                .params("filtering")
                .first()
                .and_then(|f| serde_json::from_str::<Value>(f).ok())
                .and_then(|f| f[0]["value"].as_i64());
            let rows: Vec<Value> = data
                .campaigns
                .iter()
                .filter(|c| c["account_id"] == digits)
                .filter(|c| since.is_none_or(|s| unix(c["updated_time"].as_str().unwrap()) > s))
                .cloned()
                .collect();
            page(request, &rows, limit, after)
        }
        ("GET", [_, "adsets" | "ads" | "adcreatives"]) => page(request, &[], limit, after),
        ("POST", [account, "insights"]) => {
            let range: Value = serde_json::from_str(request.params("time_range")[0]).unwrap();
            let mut runs = runs.lock().unwrap();
            let id = format!(
                "{}{}",
                6_000_000 + runs.runs.len(),
                &account["act_".len()..]
            );
            runs.runs.insert(
                id.clone(),
                (
                    request.params("level")[0].to_owned(),
                    range["since"].as_str().unwrap().to_owned(),
                    range["until"].as_str().unwrap().to_owned(),
                    0,
                ),
            );
            Response::json(200, json!({"report_run_id": id}))
        }
        ("GET", [run]) => {
            let mut runs = runs.lock().unwrap();
            let Some((_, since, until, polls)) = runs.runs.get_mut(*run) else {
                return error(
                    400,
                    100,
                    Some(33),
                    "GraphMethodException",
                    "Unsupported get request.",
                );
            };
            *polls += 1;
            let done = *polls > data.running_polls;
            Response::json(
                200,
                json!({
                    "id": run,
                    "account_id": "1234567",
                    "async_status": if done { "Job Completed" } else { "Job Running" },
                    "async_percent_completion": if done { 100 } else { 40 },
                    "date_start": since, "date_stop": until,
                    "is_running": !done,
                }),
            )
        }
        ("GET", [run, "insights"]) => {
            if data.throttle_results > 0 {
                data.throttle_results -= 1;
                return error(
                    400,
                    80_000,
                    Some(2_446_079),
                    "OAuthException",
                    "(#80000) There have been too many calls from this ad-account. Wait a bit and try again.",
                );
            }
            let runs = runs.lock().unwrap();
            let (level, since, until, _) = runs.runs[*run].clone();
            let rows: Vec<Value> = data
                .insights
                .get(&level)
                .into_iter()
                .flatten()
                .filter(|r| {
                    let day = r["date_start"].as_str().unwrap();
                    day >= since.as_str() && day <= until.as_str()
                })
                .cloned()
                .collect();
            page(request, &rows, limit, after)
        }
        _ => error(
            400,
            100,
            None,
            "GraphMethodException",
            &format!("Unknown path components: {path}"),
        ),
    }
}

/// One page of `rows`: cursors are the row offset, `next` only when more rows follow.
fn page(request: &Request, rows: &[Value], limit: usize, after: Option<String>) -> Response {
    let start: usize = after
        .and_then(|a| a.strip_prefix("cur").and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let end = (start + limit).min(rows.len());
    let mut paging =
        json!({"cursors": {"before": format!("cur{start}"), "after": format!("cur{end}")}});
    if end < rows.len() {
        paging["next"] = json!(format!(
            "https://graph.facebook.com{}?limit={limit}&after=cur{end}&access_token=EAAB-would-be-here",
            request.path
        ));
    }
    Response::json(200, json!({"data": rows[start..end], "paging": paging}))
}

/// Seconds since the epoch of `2026-10-01T08:30:00+0000` (UTC only, as the fixture writes them).
fn unix(text: &str) -> i64 {
    let (y, m, d) = (&text[0..4], &text[5..7], &text[8..10]);
    let (y, m, d): (i64, i64, i64) = (y.parse().unwrap(), m.parse().unwrap(), d.parse().unwrap());
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let (h, mi, s): (i64, i64, i64) = (
        text[11..13].parse().unwrap(),
        text[14..16].parse().unwrap(),
        text[17..19].parse().unwrap(),
    );
    days * 86_400 + h * 3600 + mi * 60 + s
}
