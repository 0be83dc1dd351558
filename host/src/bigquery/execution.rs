//! Running a plan's jobs: tables made ready, each job run (or found, by id) to completion, a
//! failed job retried under a new attempt id with backoff, and a failure retrying cannot fix
//! stopped with BigQuery's words and a way forward.

use super::client::{ApiError, Client, TableSpec};
use super::records::{JobKind, JobPlan, Plan, Records, StreamPlan};
use super::{Destination, JobFailure, LoadError, LoadLimits, StreamLoaded, WriteMode, schema, sql};
use std::collections::BTreeMap;
use std::time::Duration;

/// Staging tables expire on their own after this long, should a crash leave one behind.
const STAGING_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
/// The longest wait between attempts: BigQuery's SLA asks for exponential back-off from 1 s up
/// to 32 s (<https://cloud.google.com/bigquery/sla>, "Back-off Requirements").
const MAX_BACKOFF: Duration = Duration::from_secs(32);

/// Whether a failed job may succeed when run again unchanged. By the error's `reason`, as
/// BigQuery documents them (<https://cloud.google.com/bigquery/docs/error-messages>): a job that
/// ends with `backendError` "failed. You can safely retry the job"; `internalError` is
/// BigQuery's own transient failure; `rateLimitExceeded` and `quotaExceeded` pass with time
/// (a few attempts per run: a spent daily quota needs a later run). `invalid`, `invalidQuery`,
/// `accessDenied`, `notFound`, `duplicate`, `billingNotEnabled`, `resourcesExceeded`... do not
/// change by retrying: they need a fix first.
pub(super) fn is_retryable(reason: &str) -> bool {
    matches!(
        reason,
        "backendError"
            | "internalError"
            | "jobBackendError"
            | "jobInternalError"
            | "rateLimitExceeded"
            | "quotaExceeded"
            | "tableUnavailable"
    )
}

/// One line telling the operator what to do about a job that failed with `reason`.
fn way_forward(reason: &str) -> &'static str {
    match reason {
        "accessDenied" => {
            "grant the account roles/bigquery.dataEditor and roles/bigquery.jobUser on the project and read access to the lake's bucket, then run `inlet load` again"
        }
        "notFound" => {
            "create what BigQuery names as missing, or fix `[bigquery] dataset`/`location` (a file missing from the lake needs the lake restored), then run `inlet load` again"
        }
        "invalid" | "invalidQuery" => {
            "fix what BigQuery names (the table's schema or the files in the lake), then run `inlet load` again: the job runs under a new id"
        }
        "quotaExceeded" | "rateLimitExceeded" => {
            "BigQuery's quota is spent for now: run `inlet load` again later; every pending commit goes into the next load"
        }
        r if is_retryable(r) => {
            "BigQuery kept failing with a transient error: run `inlet load` again later; the job runs under a new id"
        }
        _ => "fix what BigQuery names, then run `inlet load` again: the job runs under a new id",
    }
}

/// What the executor needs besides the plan.
pub(super) struct Executor<'a> {
    pub client: &'a Client,
    pub destination: &'a Destination,
    pub records: &'a Records<'a>,
    /// The plan's record key (attempt records are filed under it).
    pub key: u64,
    /// The current attempt of jobs that were retried before.
    pub attempts: BTreeMap<String, u32>,
}

impl Executor<'_> {
    /// Makes the table ready and runs one stream's jobs in order.
    pub async fn load_stream(
        &mut self,
        plan: &Plan,
        stream: &StreamPlan,
    ) -> Result<StreamLoaded, LoadError> {
        let (client, destination) = (self.client, self.destination);
        let dataset = destination.dataset.as_str();
        let table = stream.table.as_str();
        let spec = TableSpec {
            schema: stream.schema.clone(),
            partition: stream.partition.clone(),
            clustering: stream.cluster_by.clone(),
            labels: destination.labels.clone(),
            expires_at_ms: None,
        };
        match client.table_schema(dataset, table).await? {
            None => client.create_table(dataset, table, &spec).await?,
            Some(current) => match schema::evolve(&current, &stream.schema) {
                Ok(Some(evolved)) => client.patch_schema(dataset, table, &evolved).await?,
                Ok(None) => {}
                // A replace that starts with a truncating load replaces the schema too.
                Err(_) if starts_with_truncate(stream) => {}
                Err(source) => {
                    return Err(LoadError::Schema {
                        stream: stream.stream.clone(),
                        table: format!("{dataset}.{table}"),
                        source,
                    });
                }
            },
        }
        let mut jobs = Vec::new();
        let mut files = 0;
        for job in &stream.jobs {
            let what = |step: &str| {
                format!(
                    "{step} of stream `{}` into `{dataset}.{table}`, commits {}..={}",
                    stream.stream, plan.first_sequence, plan.last_sequence
                )
            };
            match &job.kind {
                JobKind::Load {
                    uris,
                    staging,
                    truncate,
                    ..
                } => {
                    files += uris.len();
                    let target = match staging {
                        Some(staging) => {
                            if *truncate {
                                self.create_staging(staging, stream).await?;
                            }
                            staging.as_str()
                        }
                        None => table,
                    };
                    let config =
                        sql::load_config(client, dataset, target, uris, &stream.schema, *truncate);
                    let step = match (staging, truncate) {
                        (Some(_), _) => "staging load",
                        (None, true) => "replace",
                        (None, false) => "append",
                    };
                    jobs.push(self.run(stream, job, config, &what(step)).await?);
                }
                JobKind::Merge { staging } => {
                    let sql = sql::merge_sql(client, dataset, table, staging, stream);
                    let config = sql::query_config(&sql);
                    jobs.push(self.run(stream, job, config, &what("merge")).await?);
                    client.delete_table(dataset, staging).await?;
                }
                JobKind::Empty => {
                    let config = sql::query_config(&sql::empty_sql(client, dataset, table));
                    jobs.push(self.run(stream, job, config, &what("replace")).await?);
                }
            }
        }
        Ok(StreamLoaded {
            stream: stream.stream.clone(),
            table: format!("{}.{dataset}.{table}", client.project()),
            mode: stream.mode,
            rows: stream.rows,
            files,
            jobs,
        })
    }

    async fn create_staging(&self, staging: &str, stream: &StreamPlan) -> Result<(), LoadError> {
        let spec = TableSpec {
            schema: stream.schema.clone(),
            labels: self.destination.labels.clone(),
            expires_at_ms: Some(chrono::Utc::now().timestamp_millis() + STAGING_TTL_MS),
            ..TableSpec::default()
        };
        let dataset = &self.destination.dataset;
        Ok(self.client.create_table(dataset, staging, &spec).await?)
    }

    /// Runs `job` to success, answering the id that succeeded. A failed attempt is never run
    /// again: the next attempt gets a new id, recorded before it is submitted, so a crash resumes
    /// that same attempt and BigQuery's answer for it is found by id.
    async fn run(
        &mut self,
        stream: &StreamPlan,
        job: &JobPlan,
        configuration: serde_json::Value,
        what: &str,
    ) -> Result<String, LoadError> {
        let destination: &Destination = self.destination;
        let limits: &LoadLimits = &destination.limits;
        let location = &destination.location;
        let mut attempt = self.attempts.get(&job.id).copied().unwrap_or(1);
        let mut tries = 0;
        loop {
            let id = job.attempt_id(attempt);
            tries += 1;
            let (reason, message) = match self
                .client
                .run_job(&id, location, configuration.clone(), what)
                .await
            {
                Ok(_) => return Ok(id),
                Err(ApiError::JobFailed {
                    reason, message, ..
                }) => (reason, message),
                Err(error) => return Err(error.into()),
            };
            // Whatever happens next, this id has failed for good: the next run or retry uses
            // the next attempt.
            attempt += 1;
            self.records
                .record_attempt(self.key, &job.id, attempt, &reason, &message)
                .await?;
            self.attempts.insert(job.id.clone(), attempt);
            if !is_retryable(&reason) || tries >= limits.attempts_per_run {
                return Err(LoadError::JobFailed(Box::new(JobFailure {
                    stream: stream.stream.clone(),
                    table: format!("{}.{}", destination.dataset, stream.table),
                    job_id: id,
                    reason: reason.clone(),
                    message,
                    tries,
                    fix: way_forward(&reason).to_owned(),
                })));
            }
            let delay = backoff(limits.first_backoff, tries);
            tracing::warn!(
                job_id = %id,
                reason = %reason,
                message = %message,
                "BigQuery job failed; retrying as attempt {attempt} in {delay:?}"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

/// Whether the stream's first job replaces the table (and with it the schema).
fn starts_with_truncate(stream: &StreamPlan) -> bool {
    stream.mode == WriteMode::Replace
        && matches!(
            stream.jobs.first().map(|j| &j.kind),
            Some(JobKind::Load {
                staging: None,
                truncate: true,
                ..
            }) | Some(JobKind::Empty)
        )
}

/// The wait before try `tries + 1`: `first`, doubled each time, at most [`MAX_BACKOFF`].
fn backoff(first: Duration, tries: u32) -> Duration {
    first
        .saturating_mul(1 << tries.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
#[path = "execution_tests.rs"]
mod tests;
