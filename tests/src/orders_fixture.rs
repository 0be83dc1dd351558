//! A fixture of the orders API that `examples/connectors/python-http` reads, answering as its
//! README documents: `GET /orders?limit=N[&updated_after=T][&page_token=P]` with a bearer key,
//! items sorted by `updated_at` then `id` and updated strictly after `updated_after`, page tokens,
//! 401 for a wrong key, 429 with `Retry-After`, 503, and a body that breaks on demand.

use crate::http_fixture::{FixtureServer, Request, Response};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// The key the fixture accepts.
pub const API_KEY: &str = "orders-fixture-key-5d41";

/// What the fixture serves, and how it misbehaves; tests change it between runs.
#[derive(Debug, Default)]
pub struct OrdersApi {
    /// The orders, as the API returns them.
    pub orders: Vec<Value>,
    /// This many requests are answered 429 with `Retry-After: 1` before any is served.
    pub throttle_next: u32,
    /// Every request is answered 429 with `Retry-After: 7`.
    pub always_throttled: bool,
    /// Every request is answered 503.
    pub unavailable: bool,
    /// Every page is answered with this body instead (status 200).
    pub broken_body: Option<String>,
}

/// Order `id`, updated `updated_at` (RFC 3339), with the other fields derived from the id.
pub fn order(id: i64, updated_at: &str) -> Value {
    json!({
        "id": id,
        "status": if id % 3 == 0 { "refunded" } else { "paid" },
        "customer_email": format!("customer{id}@example.com"),
        "currency": "EUR",
        "total": format!("{id}.50"),
        "item_count": id % 5 + 1,
        "created_at": "2026-11-01T09:00:00Z",
        "updated_at": updated_at,
        "note": "a field the connector does not keep",
    })
}

/// `count` orders from id `first`, one a second from 2026-11-01T10:00:00Z + (id - 1) seconds.
pub fn orders(first: i64, count: i64) -> Vec<Value> {
    (first..first + count)
        .map(|id| order(id, &instant_after_start(id - 1)))
        .collect()
}

/// 2026-11-01T10:00:00Z plus `seconds`, as RFC 3339.
pub fn instant_after_start(seconds: i64) -> String {
    let (hours, rest) = (seconds / 3600, seconds % 3600);
    let day = 1 + (10 + hours) / 24;
    format!(
        "2026-11-{day:02}T{:02}:{:02}:{:02}Z",
        (10 + hours) % 24,
        rest / 60,
        rest % 60
    )
}

/// Starts the fixture serving `api`.
pub fn start(api: Arc<Mutex<OrdersApi>>) -> FixtureServer {
    FixtureServer::start(move |request| answer(&mut api.lock().unwrap(), request))
}

fn error(status: u16, message: &str) -> Response {
    Response::json(
        status,
        json!({"error": {"code": status, "message": message}}),
    )
}

fn answer(api: &mut OrdersApi, request: &Request) -> Response {
    if request.method != "GET" || request.path != "/orders" {
        return error(
            404,
            &format!("no route {} {}", request.method, request.path),
        );
    }
    if request.header("authorization") != Some(&format!("Bearer {API_KEY}")) {
        return error(401, "invalid API key");
    }
    if api.always_throttled {
        return error(429, "too many requests").with_header("Retry-After", "7");
    }
    if api.throttle_next > 0 {
        api.throttle_next -= 1;
        return error(429, "too many requests").with_header("Retry-After", "1");
    }
    if api.unavailable {
        return error(503, "down for maintenance");
    }
    if let Some(body) = &api.broken_body {
        return Response {
            status: 200,
            headers: Vec::new(),
            body: body.clone(),
        };
    }
    let param = |name| request.params(name).first().map(|v| (*v).to_owned());
    let Some(limit) = param("limit").and_then(|l| l.parse::<usize>().ok()) else {
        return error(400, "`limit` must be a number");
    };
    let after = match param("updated_after").map(|t| instant_key(&t)) {
        Some(None) => return error(400, "`updated_after` is not an RFC 3339 instant"),
        Some(Some(after)) => Some(after),
        None => None,
    };
    let start: usize = match param("page_token") {
        Some(token) => match token.strip_prefix("offset-").and_then(|o| o.parse().ok()) {
            Some(offset) => offset,
            None => return error(400, "invalid `page_token`"),
        },
        None => 0,
    };
    let mut matching: Vec<&Value> = api
        .orders
        .iter()
        .filter(|o| match &after {
            Some(after) => {
                instant_key(o["updated_at"].as_str().unwrap_or("")).as_ref() > Some(after)
            }
            None => true,
        })
        .collect();
    matching.sort_by_key(|o| {
        (
            instant_key(o["updated_at"].as_str().unwrap_or("")),
            o["id"].as_i64(),
        )
    });
    let page: Vec<&Value> = matching.iter().skip(start).take(limit).copied().collect();
    let next = (start + limit < matching.len()).then(|| format!("offset-{}", start + limit));
    Response::json(200, json!({"items": page, "next_page_token": next}))
}

/// An RFC 3339 instant in UTC (`Z`) as a key that orders like time: date-time to the second and
/// the fraction padded to nanoseconds. `None` when it is not of that form.
fn instant_key(text: &str) -> Option<(String, String)> {
    let text = text.strip_suffix('Z')?;
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    if seconds.len() != 19 || fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((seconds.to_owned(), format!("{fraction:0<9}")))
}
