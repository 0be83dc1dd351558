//! A fixture of the Google Sheets API v4, shaped like its documented answers: `spreadsheets.get`
//! (sheet titles; grid data with number formats), `spreadsheets.values.batchGet` (unformatted
//! values, serial-number dates), Google's error bodies for 401/403/404/400, and 429
//! `RESOURCE_EXHAUSTED` with `Retry-After` for the first throttled calls. It also serves the OAuth
//! token endpoint, so the host's credentials module mints the token the fixture expects.

use crate::http_fixture::{FixtureServer, Request, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

/// The access token the fixture's `/token` hands out and its API accepts.
pub const TOKEN: &str = "ya29.fixture-token";
/// A spreadsheet id the fixture answers 403 for.
pub const FORBIDDEN: &str = "forbidden-sheet";

/// One sheet of a fixture spreadsheet.
#[derive(Debug, Clone)]
pub struct Sheet {
    /// The tab title.
    pub title: String,
    /// Rows of cells as `UNFORMATTED_VALUE` + `SERIAL_NUMBER` render them (trailing empty cells
    /// and rows left out, as the API does).
    pub values: Vec<Vec<Value>>,
    /// Number format types of the first data row's cells (`DATE`, `NUMBER`, ...).
    pub formats: Vec<Option<&'static str>>,
}

fn error(status: u16, code: &str, message: &str) -> Response {
    Response::json(
        status,
        json!({"error": {"code": status, "message": message, "status": code}}),
    )
}

fn column_letter(index: usize) -> String {
    let mut index = index;
    let mut letters = Vec::new();
    loop {
        letters.push((b'A' + (index % 26) as u8) as char);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    letters.iter().rev().collect()
}

fn title_of(range: &str) -> String {
    let title = range.rsplit_once('!').map_or(range, |(t, _)| t);
    let title = title
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .unwrap_or(title);
    title.replace("''", "'")
}

/// Starts the fixture with `spreadsheets` (id -> sheets); the first `throttled` batchGet calls
/// answer 429.
pub fn start(spreadsheets: BTreeMap<String, Vec<Sheet>>, throttled: u32) -> FixtureServer {
    let throttled = AtomicU32::new(throttled);
    FixtureServer::start(move |request: &Request| {
        if request.method == "POST" && request.path == "/token" {
            return Response::json(
                200,
                json!({"access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"}),
            );
        }
        if request.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            );
        }
        let Some(rest) = request.path.strip_prefix("/v4/spreadsheets/") else {
            return error(404, "NOT_FOUND", "Method not found.");
        };
        let (id, method) = match rest.split_once('/') {
            Some((id, method)) => (id, Some(method)),
            None => (rest, None),
        };
        if id == FORBIDDEN {
            return error(
                403,
                "PERMISSION_DENIED",
                "The caller does not have permission",
            );
        }
        let Some(sheets) = spreadsheets.get(id) else {
            return error(404, "NOT_FOUND", "Requested entity was not found.");
        };
        let find = |range: &str| sheets.iter().find(|s| s.title == title_of(range));
        for range in request.params("ranges") {
            if find(range).is_none() {
                return error(
                    400,
                    "INVALID_ARGUMENT",
                    &format!("Unable to parse range: {range}"),
                );
            }
        }
        match method {
            None => {
                let fields = request.params("fields").join(",");
                if !fields.contains("effectiveFormat") {
                    let sheets: Vec<Value> = sheets
                        .iter()
                        .map(|s| json!({"properties": {"title": s.title}}))
                        .collect();
                    return Response::json(200, json!({"sheets": sheets}));
                }
                let ranges = request.params("ranges");
                let sheets: Vec<Value> = sheets
                    .iter()
                    .filter(|s| ranges.iter().any(|r| title_of(r) == s.title))
                    .map(|s| {
                        let header: Vec<Value> = s
                            .values
                            .first()
                            .map_or(Vec::new(), |h| h.iter().map(|_| json!({})).collect());
                        let first: Vec<Value> = s
                            .formats
                            .iter()
                            .map(|f| match f {
                                Some(t) => {
                                    json!({"effectiveFormat": {"numberFormat": {"type": t}}})
                                }
                                None => json!({}),
                            })
                            .collect();
                        json!({"properties": {"title": s.title},
                               "data": [{"rowData": [{"values": header}, {"values": first}]}]})
                    })
                    .collect();
                Response::json(200, json!({"sheets": sheets}))
            }
            Some("values:batchGet") => {
                if request.params("valueRenderOption") != ["UNFORMATTED_VALUE"]
                    || request.params("dateTimeRenderOption") != ["SERIAL_NUMBER"]
                {
                    return error(
                        400,
                        "INVALID_ARGUMENT",
                        "this fixture serves valueRenderOption=UNFORMATTED_VALUE with dateTimeRenderOption=SERIAL_NUMBER only",
                    );
                }
                if take_one(&throttled) {
                    return error(
                        429,
                        "RESOURCE_EXHAUSTED",
                        "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per user' of service 'sheets.googleapis.com' for consumer 'project_number:0'.",
                    )
                    .with_header("Retry-After", "1");
                }
                let value_ranges: Vec<Value> = request
                    .params("ranges")
                    .iter()
                    .map(|range| {
                        let sheet = find(range).expect("checked above");
                        let width = sheet.values.iter().map(Vec::len).max().unwrap_or(0);
                        let quoted = format!("'{}'", sheet.title.replace('\'', "''"));
                        if sheet.values.is_empty() {
                            return json!({"range": format!("{quoted}!A1:Z1000"), "majorDimension": "ROWS"});
                        }
                        json!({
                            "range": format!("{quoted}!A1:{}{}", column_letter(width - 1), sheet.values.len()),
                            "majorDimension": "ROWS",
                            "values": sheet.values,
                        })
                    })
                    .collect();
                Response::json(
                    200,
                    json!({"spreadsheetId": id, "valueRanges": value_ranges}),
                )
            }
            Some(other) => error(404, "NOT_FOUND", &format!("Method not found: {other}")),
        }
    })
}

/// Takes one from `counter` if it is above zero (a compare-exchange loop: `fetch_update` is
/// deprecated on newer toolchains and its replacement missing on older ones).
fn take_one(counter: &std::sync::atomic::AtomicU32) -> bool {
    let mut current = counter.load(Ordering::SeqCst);
    while current > 0 {
        match counter.compare_exchange(current, current - 1, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return true,
            Err(now) => current = now,
        }
    }
    false
}
