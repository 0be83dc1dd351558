//! A small BigQuery REST client: the handful of calls a loader needs (datasets, tables, jobs),
//! with Google tokens from the credentials module, retries of transient failures, and BigQuery's
//! own error messages passed through verbatim.

use super::schema::TableField;
use crate::credentials::{CredentialsError, GoogleAuth};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The public endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://bigquery.googleapis.com";
const ATTEMPTS: u32 = 5;

/// A failed BigQuery call, with what was being done and a suggested fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error("BigQuery refused to {what}: HTTP {status} {reason}: {message}{hint}")]
    Refused {
        what: String,
        status: u16,
        reason: String,
        message: String,
        hint: String,
    },
    #[error("cannot reach BigQuery at {endpoint} to {what}: {reason}")]
    Unreachable {
        endpoint: String,
        what: String,
        reason: String,
    },
    #[error("BigQuery job `{job_id}` ({what}) failed: {message}")]
    JobFailed {
        job_id: String,
        what: String,
        /// BigQuery's `reason` of the error result (`invalid`, `backendError`...).
        reason: String,
        message: String,
    },
    #[error("no Google token for BigQuery: {0}")]
    Credentials(#[from] CredentialsError),
}

impl ApiError {
    fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A table's destination and layout.
#[derive(Debug, Clone, Default)]
pub struct TableSpec {
    /// Columns.
    pub schema: Vec<TableField>,
    /// Time partitioning: column and `DAY`/`HOUR`/`MONTH`/`YEAR`.
    pub partition: Option<(String, String)>,
    /// Clustering columns (at most four).
    pub clustering: Vec<String>,
    /// Labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Milliseconds since the epoch after which BigQuery deletes the table (staging tables).
    pub expires_at_ms: Option<i64>,
}

/// One project's BigQuery API.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: String,
    project: String,
    auth: Arc<GoogleAuth>,
}

impl Client {
    /// A client for `project` at `endpoint` (see [`DEFAULT_ENDPOINT`]).
    pub fn new(endpoint: &str, project: &str, auth: Arc<GoogleAuth>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("an HTTP client with default settings can be built");
        Self {
            http,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            project: project.to_owned(),
            auth,
        }
    }

    /// The project.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// One call, retried on 429/5xx and connection failures. `Ok(None)` is a 404.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        what: &str,
    ) -> Result<Option<Value>, ApiError> {
        let url = format!(
            "{}/bigquery/v2/projects/{}{path}",
            self.endpoint, self.project
        );
        let mut delay = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            let token = self.auth.token().await?;
            let mut request = self.http.request(method.clone(), &url).query(query);
            if !token.is_empty() {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let outcome = request.send().await;
            let retry = match outcome {
                Err(error) => {
                    if attempt >= ATTEMPTS {
                        return Err(ApiError::Unreachable {
                            endpoint: self.endpoint.clone(),
                            what: what.to_owned(),
                            reason: error.to_string(),
                        });
                    }
                    true
                }
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    if status == StatusCode::NOT_FOUND {
                        return Ok(None);
                    }
                    if status.is_success() {
                        if text.trim().is_empty() {
                            return Ok(Some(Value::Null));
                        }
                        return serde_json::from_str(&text).map(Some).map_err(|e| {
                            ApiError::Refused {
                                what: what.to_owned(),
                                status: status.as_u16(),
                                reason: "invalid response".into(),
                                message: format!("the answer is not JSON: {e}"),
                                hint: String::new(),
                            }
                        });
                    }
                    let transient =
                        status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    if !transient || attempt >= ATTEMPTS {
                        return Err(self.refusal(what, status, &text));
                    }
                    true
                }
            };
            debug_assert!(retry);
            tracing::debug!(what, attempt, "BigQuery call failed; retrying in {delay:?}");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(16));
            attempt += 1;
        }
    }

    fn refusal(&self, what: &str, status: StatusCode, body: &str) -> ApiError {
        let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let error = &parsed["error"];
        let message = error["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| body.chars().take(500).collect());
        let reason = error["errors"][0]["reason"]
            .as_str()
            .or_else(|| error["status"].as_str())
            .unwrap_or_else(|| status.canonical_reason().unwrap_or(""))
            .to_owned();
        let hint = match status.as_u16() {
            401 => " (the Google credentials were not accepted: check GOOGLE_APPLICATION_CREDENTIALS or `[google] credentials`)".to_owned(),
            403 => format!(
                " (the account needs roles/bigquery.dataEditor and roles/bigquery.jobUser on project `{}`, and the BigQuery API enabled)",
                self.project
            ),
            _ => String::new(),
        };
        ApiError::Refused {
            what: what.to_owned(),
            status: status.as_u16(),
            reason,
            message,
            hint,
        }
    }

    /// Creates `dataset` in `location` unless it exists.
    pub async fn ensure_dataset(
        &self,
        dataset: &str,
        location: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        let what = format!("read dataset `{}.{dataset}`", self.project);
        if self
            .call(
                Method::GET,
                &format!("/datasets/{dataset}"),
                &[],
                None,
                &what,
            )
            .await?
            .is_some()
        {
            return Ok(());
        }
        let body = json!({
            "datasetReference": {"projectId": self.project, "datasetId": dataset},
            "location": location,
            "labels": labels,
        });
        let what = format!("create dataset `{}.{dataset}` in {location}", self.project);
        match self
            .call(Method::POST, "/datasets", &[], Some(&body), &what)
            .await
        {
            Ok(_) => Ok(()),
            // Created by someone else in the meantime.
            Err(e) if e.status() == Some(409) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A table's schema, or `None` when the table does not exist.
    pub async fn table_schema(
        &self,
        dataset: &str,
        table: &str,
    ) -> Result<Option<Vec<TableField>>, ApiError> {
        let what = format!("read table `{dataset}.{table}`");
        let Some(resource) = self
            .call(
                Method::GET,
                &format!("/datasets/{dataset}/tables/{table}"),
                &[],
                None,
                &what,
            )
            .await?
        else {
            return Ok(None);
        };
        let fields =
            serde_json::from_value(resource["schema"]["fields"].clone()).unwrap_or_default();
        Ok(Some(fields))
    }

    /// Creates a table (a 409 means it exists, which is fine).
    pub async fn create_table(
        &self,
        dataset: &str,
        table: &str,
        spec: &TableSpec,
    ) -> Result<(), ApiError> {
        let mut body = json!({
            "tableReference": {"projectId": self.project, "datasetId": dataset, "tableId": table},
            "schema": {"fields": spec.schema},
            "labels": spec.labels,
        });
        if let Some((column, granularity)) = &spec.partition {
            body["timePartitioning"] = json!({"type": granularity, "field": column});
        }
        if !spec.clustering.is_empty() {
            body["clustering"] = json!({"fields": spec.clustering});
        }
        if let Some(expires) = spec.expires_at_ms {
            body["expirationTime"] = json!(expires.to_string());
        }
        let what = format!("create table `{dataset}.{table}`");
        match self
            .call(
                Method::POST,
                &format!("/datasets/{dataset}/tables"),
                &[],
                Some(&body),
                &what,
            )
            .await
        {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(ApiError::Refused {
                what,
                status: 404,
                reason: "notFound".into(),
                message: format!("dataset `{dataset}` does not exist"),
                hint: String::new(),
            }),
            Err(e) if e.status() == Some(409) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Replaces a table's schema (columns added or relaxed).
    pub async fn patch_schema(
        &self,
        dataset: &str,
        table: &str,
        fields: &[TableField],
    ) -> Result<(), ApiError> {
        let body = json!({"schema": {"fields": fields}});
        let what = format!("update the schema of `{dataset}.{table}`");
        self.call(
            Method::PATCH,
            &format!("/datasets/{dataset}/tables/{table}"),
            &[],
            Some(&body),
            &what,
        )
        .await?;
        Ok(())
    }

    /// Deletes a table; a missing table is fine.
    pub async fn delete_table(&self, dataset: &str, table: &str) -> Result<(), ApiError> {
        let what = format!("delete table `{dataset}.{table}`");
        self.call(
            Method::DELETE,
            &format!("/datasets/{dataset}/tables/{table}"),
            &[],
            None,
            &what,
        )
        .await?;
        Ok(())
    }

    /// Runs the job `job_id` to completion: if a job of that id exists (an earlier attempt that
    /// crashed before recording it), it is awaited instead of submitting a second one.
    /// `configuration` is the job's `configuration` object.
    pub async fn run_job(
        &self,
        job_id: &str,
        location: &str,
        configuration: Value,
        what: &str,
    ) -> Result<Value, ApiError> {
        let path = format!("/jobs/{job_id}");
        let query = [("location", location)];
        let job = match self
            .call(
                Method::GET,
                &path,
                &query,
                None,
                &format!("look up job `{job_id}` ({what})"),
            )
            .await?
        {
            Some(existing) => {
                tracing::info!(job_id, "job exists from an earlier attempt; awaiting it");
                existing
            }
            None => {
                let body = json!({
                    "jobReference": {"projectId": self.project, "jobId": job_id, "location": location},
                    "configuration": configuration,
                });
                let submit = format!("start job `{job_id}` ({what})");
                match self
                    .call(Method::POST, "/jobs", &[], Some(&body), &submit)
                    .await
                {
                    Ok(Some(job)) => job,
                    Ok(None) => {
                        return Err(ApiError::Refused {
                            what: submit,
                            status: 404,
                            reason: "notFound".into(),
                            message: "the jobs endpoint answered 404".into(),
                            hint: String::new(),
                        });
                    }
                    // Submitted by an attempt whose answer was lost: await that one.
                    Err(e) if e.status() == Some(409) => self
                        .call(Method::GET, &path, &query, None, &submit)
                        .await?
                        .unwrap_or(Value::Null),
                    Err(e) => return Err(e),
                }
            }
        };
        self.await_job(job_id, location, job, what).await
    }

    /// Polls until the job is DONE, with backoff from 250 ms to 8 s.
    async fn await_job(
        &self,
        job_id: &str,
        location: &str,
        mut job: Value,
        what: &str,
    ) -> Result<Value, ApiError> {
        let path = format!("/jobs/{job_id}");
        let mut delay = Duration::from_millis(250);
        while job["status"]["state"].as_str() != Some("DONE") {
            tracing::debug!(job_id, state = ?job["status"]["state"], "waiting for job");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(8));
            job = self
                .call(
                    Method::GET,
                    &path,
                    &[("location", location)],
                    None,
                    &format!("poll job `{job_id}` ({what})"),
                )
                .await?
                .ok_or_else(|| ApiError::JobFailed {
                    job_id: job_id.to_owned(),
                    what: what.to_owned(),
                    // Jobs are kept for months: one that vanishes is BigQuery's problem.
                    reason: "backendError".into(),
                    message: "the job disappeared while it ran".into(),
                })?;
        }
        if let Some((reason, message)) = job_failure(&job) {
            return Err(ApiError::JobFailed {
                job_id: job_id.to_owned(),
                what: what.to_owned(),
                reason,
                message,
            });
        }
        Ok(job)
    }
}

/// BigQuery's own words for a failed job: the error result's `reason`, and its message followed
/// by every further error.
fn job_failure(job: &Value) -> Option<(String, String)> {
    let result = job["status"].get("errorResult")?;
    let reason = result["reason"].as_str().unwrap_or("unknown").to_owned();
    let describe = |e: &Value| {
        let message = e["message"].as_str().unwrap_or("(no message)");
        match e["location"].as_str() {
            Some(location) if !location.is_empty() => format!("{message} (at {location})"),
            _ => message.to_owned(),
        }
    };
    let mut lines = vec![describe(result)];
    for error in job["status"]["errors"].as_array().into_iter().flatten() {
        let line = describe(error);
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    Some((reason, lines.join("; ")))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::Mutex;

    /// A scripted BigQuery: answers the n-th request with `script[n]` and records each request
    /// as `METHOD path`. The emulator answers every job DONE at once, so polling is tested here.
    pub(in crate::bigquery) fn fixture(
        script: Vec<(u16, Value)>,
    ) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            let mut script = script.into_iter();
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        break;
                    }
                    let mut length = 0;
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).unwrap();
                        if header.trim().is_empty() {
                            break;
                        }
                        if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:")
                        {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let mut parts = request_line.split_whitespace();
                    let (method, path) = (parts.next().unwrap(), parts.next().unwrap());
                    let path = path.split('?').next().unwrap();
                    log.lock().unwrap().push(format!("{method} {path}"));
                    let (status, answer) = script.next().expect("more requests than scripted");
                    let answer = answer.to_string();
                    write!(
                        stream,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                        answer.len()
                    )
                    .unwrap();
                }
            }
        });
        (address, seen)
    }

    fn state(state: &str) -> Value {
        json!({"status": {"state": state}})
    }

    #[tokio::test]
    async fn a_running_job_is_polled_through_transient_failures_until_done() {
        let not_found = json!({"error": {"code": 404, "message": "Not found: Job p:j", "errors": [{"reason": "notFound"}]}});
        let unavailable = json!({"error": {"code": 503, "message": "backend error", "errors": [{"reason": "backendError"}]}});
        let (endpoint, seen) = fixture(vec![
            (404, not_found),
            (200, state("PENDING")),
            (503, unavailable),
            (200, state("RUNNING")),
            (
                200,
                json!({"status": {"state": "DONE"}, "statistics": {"load": {"outputRows": "7"}}}),
            ),
        ]);
        let client = Client::new(&endpoint, "p", Arc::new(GoogleAuth::anonymous()));
        let job = client
            .run_job("j", "US", json!({"load": {}}), "a test load")
            .await
            .unwrap();
        assert_eq!(job["statistics"]["load"]["outputRows"], "7");
        let job_path = "/bigquery/v2/projects/p/jobs";
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                format!("GET {job_path}/j"),
                format!("POST {job_path}"),
                format!("GET {job_path}/j"),
                format!("GET {job_path}/j"),
                format!("GET {job_path}/j"),
            ]
        );
    }

    #[tokio::test]
    async fn a_job_id_taken_by_a_lost_attempt_is_awaited_and_its_failure_reported() {
        let duplicate = json!({"error": {"code": 409, "message": "Already Exists: Job p:US.j", "errors": [{"reason": "duplicate"}]}});
        let failed = json!({"status": {"state": "DONE",
            "errorResult": {"reason": "invalid", "message": "Error while reading data, error message: Could not convert string 'x' to INT64", "location": "gs://b/f.parquet"}}});
        let (endpoint, seen) = fixture(vec![
            (404, json!({"error": {"code": 404, "message": "Not found"}})),
            (409, duplicate),
            (200, state("RUNNING")),
            (200, failed),
        ]);
        let client = Client::new(&endpoint, "p", Arc::new(GoogleAuth::anonymous()));
        let error = client
            .run_job(
                "j",
                "US",
                json!({"load": {}}),
                "append of stream `s` into `d.t`",
            )
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "BigQuery job `j` (append of stream `s` into `d.t`) failed: Error while reading data, error message: Could not convert string 'x' to INT64 (at gs://b/f.parquet)"
        );
        assert_eq!(seen.lock().unwrap().len(), 4, "no second submission");
    }

    #[tokio::test]
    async fn refusals_carry_bigquery_words_and_a_fix() {
        let (endpoint, _) = fixture(vec![(
            403,
            json!({"error": {"code": 403, "message": "Access Denied: Project p: User does not have bigquery.datasets.create permission", "errors": [{"reason": "accessDenied"}], "status": "PERMISSION_DENIED"}}),
        )]);
        let client = Client::new(&endpoint, "p", Arc::new(GoogleAuth::anonymous()));
        let error = client.delete_table("d", "t").await.unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("BigQuery refused to delete table `d.t`: HTTP 403 accessDenied: Access Denied: Project p")
                && message.contains("roles/bigquery.dataEditor"),
            "{message}"
        );
    }

    #[test]
    fn job_failure_keeps_bigquery_words_and_locations() {
        let job = json!({"status": {"state": "DONE",
        "errorResult": {"reason": "invalid", "message": "Provided Schema does not match Table p:d.t. Field id has changed type from INTEGER to STRING", "location": "gs://b/x.parquet"},
        "errors": [
            {"reason": "invalid", "message": "Provided Schema does not match Table p:d.t. Field id has changed type from INTEGER to STRING", "location": "gs://b/x.parquet"},
            {"reason": "invalid", "message": "Error while reading data"}
        ]}});
        let (reason, message) = job_failure(&job).unwrap();
        assert_eq!(reason, "invalid");
        assert_eq!(
            message,
            "Provided Schema does not match Table p:d.t. Field id has changed type from INTEGER to STRING (at gs://b/x.parquet); Error while reading data"
        );
        assert_eq!(job_failure(&json!({"status": {"state": "DONE"}})), None);
    }
}
