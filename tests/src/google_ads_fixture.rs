//! A fixture of the Google Ads API v26 over REST, shaped like its documented answers
//! (/work/shared/ADS-APIS.md): `googleAds:searchStream` answers a JSON array of batches with
//! `results` / `fieldMask` / `requestId`, camelCase keys, int64 as strings, doubles as numbers;
//! `customer_client` is answered from an account tree (level 0 = the manager itself); errors are
//! `GoogleAdsFailure` bodies (inside an array, as searchStream sends them), among them a quota
//! error with `retryDelay`. Like the API it refuses a call without the OAuth token, without the
//! developer token, or on a client account without its manager in `login-customer-id`.
//!
//! What the fixture does not do: aggregate metrics over segments a query leaves out (the
//! connector's queries select every segment the rows carry; a query with neither segments nor
//! metrics gets each resource once), ORDER BY, LIMIT, or conditions
//! other than `segments.date BETWEEN`, `customer_client.level <= N` and `field = 'VALUE'`.
//! Unconfirmed shapes it assumes: an empty result is one batch without `results`; rows per
//! batch are `batch_rows` (Google's number is not documented).

use crate::http_fixture::{FixtureServer, Request, Response};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// The access token the fixture's `/token` hands out and its API accepts.
pub const TOKEN: &str = "ya29.ads-fixture-token";
/// The developer token the fixture accepts.
pub const DEVELOPER_TOKEN: &str = "fixture-developer-token-XyZ";
/// The API version in the path.
pub const VERSION: &str = "v26";

/// An account in the fixture's tree.
#[derive(Debug, Clone)]
pub struct Account {
    /// 10 digits.
    pub id: String,
    /// `descriptive_name`.
    pub name: String,
    /// CLDR zone.
    pub time_zone: String,
    /// ISO 4217.
    pub currency: String,
    /// A manager (MCC) account.
    pub manager: bool,
    /// ENABLED, CANCELED...
    pub status: String,
    /// Its manager, if any.
    pub parent: Option<String>,
}

/// What the fixture serves; tests change it between syncs (late conversions).
#[derive(Debug, Clone, Default)]
pub struct World {
    /// The top manager: every account under it needs it in `login-customer-id`.
    pub manager: String,
    /// Every account.
    pub accounts: Vec<Account>,
    /// Full rows (camelCase, every field) per `(customer, FROM resource)`.
    pub rows: BTreeMap<(String, String), Vec<Value>>,
    /// Quota errors still to answer: `(customer, retryDelay, count)`.
    pub quota: Option<(String, String, u32)>,
    /// Rows per searchStream batch.
    pub batch_rows: usize,
}

/// The running fixture and its world.
pub struct GoogleAdsFixture {
    /// The server (its `url` is the connector's `endpoint`).
    pub server: FixtureServer,
    /// The data served, changeable between syncs.
    pub world: Arc<Mutex<World>>,
}

impl GoogleAdsFixture {
    /// The GAQL queries received for `customer`, in order.
    pub fn queries(&self, customer: &str) -> Vec<String> {
        let path = format!("/{VERSION}/customers/{customer}/googleAds:searchStream");
        self.server
            .requests()
            .iter()
            .filter(|r| r.path == path)
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .filter_map(|b| b["query"].as_str().map(str::to_owned))
            .collect()
    }
}

/// A `GoogleAdsFailure` error body, inside searchStream's array.
pub fn failure(code: u16, status: &str, category: &str, value: &str, message: &str) -> Value {
    json!([{"error": {
        "code": code,
        "message": "Request contains an invalid argument.",
        "status": status,
        "details": [{
            "@type": format!("type.googleapis.com/google.ads.googleads.{VERSION}.errors.GoogleAdsFailure"),
            "errors": [{"errorCode": {category: value}, "message": message}],
            "requestId": "fixture-request-id"
        }]
    }}])
}

fn refuse(code: u16, status: &str, category: &str, value: &str, message: &str) -> Response {
    Response::json(code, failure(code, status, category, value, message))
}

/// Starts the fixture serving `world`.
pub fn start(world: World) -> GoogleAdsFixture {
    let world = Arc::new(Mutex::new(world));
    let shared = world.clone();
    let server = FixtureServer::start(move |request: &Request| {
        let mut world = shared.lock().unwrap();
        answer(&mut world, request)
    });
    GoogleAdsFixture { server, world }
}

fn answer(world: &mut World, request: &Request) -> Response {
    if request.method == "POST" && request.path == "/token" {
        return Response::json(
            200,
            json!({"access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"}),
        );
    }
    if request.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
        return refuse(
            401,
            "UNAUTHENTICATED",
            "authenticationError",
            "AUTHENTICATION_ERROR",
            "Authentication of the request failed.",
        );
    }
    match request.header("developer-token") {
        None => {
            return refuse(
                400,
                "INVALID_ARGUMENT",
                "requestError",
                "DEVELOPER_TOKEN_PARAMETER_MISSING",
                "The developer-token parameter is required for all requests.",
            );
        }
        Some(token) if token != DEVELOPER_TOKEN => {
            return refuse(
                403,
                "PERMISSION_DENIED",
                "authorizationError",
                "DEVELOPER_TOKEN_PROHIBITED",
                "Developer token is not allowed with the project sent in the request.",
            );
        }
        Some(_) => {}
    }
    let customer = request
        .path
        .strip_prefix(&format!("/{VERSION}/customers/"))
        .and_then(|rest| rest.strip_suffix("/googleAds:searchStream"));
    let Some(customer) = customer.filter(|_| request.method == "POST") else {
        return Response::json(
            404,
            json!({"error": {"code": 404, "message": "Method not found.", "status": "NOT_FOUND"}}),
        );
    };
    let Some(account) = world.accounts.iter().find(|a| a.id == customer).cloned() else {
        return refuse(
            401,
            "UNAUTHENTICATED",
            "authenticationError",
            "CUSTOMER_NOT_FOUND",
            "No customer found for the provided customer id.",
        );
    };
    let login = request.header("login-customer-id");
    if let Some(login) = login
        && !login.chars().all(|c| c.is_ascii_digit())
    {
        return refuse(
            400,
            "INVALID_ARGUMENT",
            "headerError",
            "INVALID_LOGIN_CUSTOMER_ID",
            "The login customer ID could not be validated.",
        );
    }
    if account.id != world.manager && login != Some(world.manager.as_str()) {
        return refuse(
            403,
            "PERMISSION_DENIED",
            "authorizationError",
            "USER_PERMISSION_DENIED",
            "User doesn't have permission to access customer. Note: If you're accessing a client customer, the manager's customer id must be set in the 'login-customer-id' header.",
        );
    }
    if let Some((quota_customer, delay, left)) = &mut world.quota
        && quota_customer == customer
        && *left > 0
    {
        *left -= 1;
        let mut body = failure(
            429,
            "RESOURCE_EXHAUSTED",
            "quotaError",
            "RESOURCE_EXHAUSTED",
            &format!("Too many requests. Retry in {delay}."),
        );
        body[0]["error"]["message"] = json!("Resource has been exhausted (e.g. check quota).");
        body[0]["error"]["details"][0]["errors"][0]["details"] = json!({"quotaErrorDetails": {
            "rateScope": "ACCOUNT", "rateName": "Number of operations for basic access", "retryDelay": delay}});
        return Response::json(429, body);
    }
    let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
    let Some(query) = body["query"].as_str() else {
        return refuse(
            400,
            "INVALID_ARGUMENT",
            "requestError",
            "REQUIRED_FIELD_MISSING",
            "query is required",
        );
    };
    match run(world, &account, query) {
        Ok(batches) => Response::json(200, Value::Array(batches)),
        Err(response) => response,
    }
}

/// Every row of `resource` the fixture knows for `account` (the account resources derived from
/// the tree).
fn rows_of(world: &World, account: &Account, resource: &str) -> Vec<Value> {
    match resource {
        "customer" => vec![json!({"customer": {
            "resourceName": format!("customers/{}", account.id), "id": account.id,
            "descriptiveName": account.name, "currencyCode": account.currency,
            "timeZone": account.time_zone, "manager": account.manager,
            "testAccount": false, "status": account.status}})],
        "customer_client" => {
            let mut rows = vec![client_row(account, account, 0)];
            for child in world
                .accounts
                .iter()
                .filter(|a| a.parent.as_deref() == Some(&account.id))
            {
                rows.push(client_row(account, child, 1));
            }
            rows
        }
        _ => world
            .rows
            .get(&(account.id.clone(), resource.to_owned()))
            .cloned()
            .unwrap_or_default(),
    }
}

fn client_row(on: &Account, client: &Account, level: u32) -> Value {
    json!({"customerClient": {
        "resourceName": format!("customers/{}/customerClients/{}", on.id, client.id),
        "clientCustomer": format!("customers/{}", client.id),
        "id": client.id, "level": level.to_string(), "manager": client.manager,
        "status": client.status, "descriptiveName": client.name,
        "timeZone": client.time_zone, "currencyCode": client.currency}})
}

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.push(c.to_ascii_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// Leaf paths of `value` in GAQL spelling (`metrics.cost_micros`).
fn leaves(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(map) = value {
        for (key, v) in map {
            let path = if prefix.is_empty() {
                snake(key)
            } else {
                format!("{prefix}.{}", snake(key))
            };
            match v {
                Value::Object(_) => leaves(v, &path, out),
                _ => {
                    out.insert(path);
                }
            }
        }
    }
}

fn lookup<'v>(row: &'v Value, field: &str) -> Option<&'v Value> {
    field.split('.').try_fold(row, |v, key| v.get(camel(key)))
}

fn quoted(text: &str) -> Vec<String> {
    text.split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn query_error(value: &str, message: &str) -> Response {
    refuse(400, "INVALID_ARGUMENT", "queryError", value, message)
}

/// Runs a GAQL query: checks its fields, filters, projects, and splits into batches.
fn run(world: &World, account: &Account, query: &str) -> Result<Vec<Value>, Response> {
    let upper = query.to_ascii_uppercase();
    let (Some(select), Some(from)) = (upper.find("SELECT "), upper.find(" FROM ")) else {
        return Err(query_error(
            "PROHIBITED_FIELD_IN_SELECT_CLAUSE",
            "Error in query: expected SELECT ... FROM.",
        ));
    };
    let fields: Vec<String> = query[select + 7..from]
        .split(',')
        .map(|f| f.trim().to_owned())
        .collect();
    let rest = &query[from + 6..];
    let resource = rest.split_whitespace().next().unwrap_or("").to_owned();
    let where_clause = rest
        .to_ascii_uppercase()
        .find(" WHERE ")
        .map(|i| rest[i + 7..].to_owned())
        .unwrap_or_default();
    // The fields the fixture knows: every leaf of every row of the resource, in any account.
    let mut known = BTreeSet::new();
    for other in &world.accounts {
        for row in rows_of(world, other, &resource) {
            leaves(&row, "", &mut known);
        }
    }
    if known.is_empty() {
        return Err(query_error(
            "INVALID_RESOURCE_NAME",
            &format!("Error in query: unrecognized resource name: '{resource}'."),
        ));
    }
    for field in &fields {
        if !known.contains(field) {
            return Err(query_error(
                "UNRECOGNIZED_FIELD",
                &format!("Error in SELECT clause: unrecognized field '{field}'."),
            ));
        }
    }
    let mut rows = rows_of(world, account, &resource);
    let conditions: Vec<String> = {
        let mut parts = Vec::new();
        let mut current = String::new();
        let mut between = false;
        for word in where_clause.split_whitespace() {
            if word.eq_ignore_ascii_case("AND") && !between {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            if word.eq_ignore_ascii_case("AND") {
                between = false;
            }
            if word.eq_ignore_ascii_case("BETWEEN") {
                between = true;
            }
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
        }
        if !current.is_empty() {
            parts.push(current);
        }
        parts
    };
    for condition in &conditions {
        let field = condition.split_whitespace().next().unwrap_or("");
        if condition.to_ascii_uppercase().contains(" BETWEEN ") && field == "segments.date" {
            let dates = quoted(condition);
            let (Some(from), Some(to)) = (dates.first().cloned(), dates.get(1).cloned()) else {
                return Err(query_error(
                    "INVALID_VALUE_WITH_BETWEEN_OPERATOR",
                    "Error in WHERE clause.",
                ));
            };
            rows.retain(|r| {
                lookup(r, "segments.date")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d >= from.as_str() && d <= to.as_str())
            });
        } else if let Some(limit) = condition.strip_prefix("customer_client.level <= ") {
            let limit: u32 = limit.trim().parse().unwrap_or(0);
            rows.retain(|r| {
                lookup(r, "customer_client.level")
                    .and_then(Value::as_str)
                    .and_then(|l| l.parse::<u32>().ok())
                    .is_some_and(|l| l <= limit)
            });
        } else if let Some((field, value)) = condition.split_once(" = ") {
            let value = quoted(value).into_iter().next().unwrap_or_default();
            let field = field.trim().to_owned();
            rows.retain(|r| lookup(r, &field).and_then(Value::as_str) == Some(value.as_str()));
        } else {
            return Err(query_error(
                "UNEXPECTED_END_OF_QUERY",
                &format!("the fixture does not understand the condition `{condition}`"),
            ));
        }
    }
    let resource_key = camel(&resource);
    let projected: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut out = Map::new();
            if let Some(name) = row[&resource_key].get("resourceName") {
                out.insert(resource_key.clone(), json!({"resourceName": name}));
            }
            for field in &fields {
                if let Some(value) = lookup(row, field) {
                    let keys: Vec<String> = field.split('.').map(camel).collect();
                    let mut at = &mut out;
                    for key in &keys[..keys.len() - 1] {
                        at = at
                            .entry(key.clone())
                            .or_insert_with(|| json!({}))
                            .as_object_mut()
                            .unwrap();
                    }
                    at.insert(keys[keys.len() - 1].clone(), value.clone());
                }
            }
            Value::Object(out)
        })
        .collect();
    // Without segments or metrics, a row per resource (the rows stored per day collapse).
    let mut projected = projected;
    if !fields
        .iter()
        .any(|f| f.starts_with("segments.") || f.starts_with("metrics."))
    {
        let mut seen = BTreeSet::new();
        projected.retain(|row| seen.insert(row.to_string()));
    }
    let mask: Vec<String> = fields
        .iter()
        .map(|f| f.split('.').map(camel).collect::<Vec<_>>().join("."))
        .collect();
    let batch = |results: Option<&[Value]>, n: usize| {
        let mut b = json!({"fieldMask": mask.join(","), "requestId": format!("fixture-{n}")});
        if let Some(results) = results {
            b["results"] = json!(results);
        }
        b
    };
    if projected.is_empty() {
        return Ok(vec![batch(None, 0)]);
    }
    Ok(projected
        .chunks(world.batch_rows.max(1))
        .enumerate()
        .map(|(n, chunk)| batch(Some(chunk), n))
        .collect())
}
