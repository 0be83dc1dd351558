//! Loading committed lake data into BigQuery, exactly once per commit, whatever the number of
//! loaders running at once, and whatever fails in between.
//!
//! A load covers every commit after the last loaded one. Before any job starts, its *plan* is
//! written create-only under the plan's first sequence (see [`records`]): the commits, and per
//! stream the table, write mode, schema and jobs, whose ids derive from a nonce. Two loaders that
//! plan from the same commit collide there; the loser finishes the winner's plan. After the jobs
//! are done, a done record says so. A run that finds a plan without its done record resumes it:
//! the job ids are the same, so BigQuery's answer for a job that already ran is found with
//! `jobs.get` instead of loading the files twice. A failed job runs again under a new attempt id
//! ([`execution`]).
//!
//! - `records`: plans, done and attempt records on the lake's store
//! - `planning`: commits, streams, files and write modes -> a plan of jobs within BigQuery's limits
//! - `execution`: tables made ready, jobs run, retried, or stopped with a way forward
//! - `sql`: job configurations and the `MERGE` text
//! - `client`: the REST calls; `schema`: Arrow -> BigQuery types and table schema evolution

mod client;
pub mod dbt;
mod execution;
mod planning;
mod records;
pub mod schema;
mod sql;

pub use client::{ApiError, Client, DEFAULT_ENDPOINT, TableSpec};
pub use records::{LastLoad, last_load};
pub use schema::{SchemaError, TableField};

use crate::lake::{CommitError, History, Lake};
use execution::Executor;
use records::{Done, FORMAT, Plan, Records};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Environment value of `INLET_FAULT` that aborts after the jobs ran, before the done record.
pub const FAULT_BEFORE_RECORD: &str = "crash-before-load-record";
/// How many lost plan races a load tolerates before it gives up.
const PLAN_RACES: usize = 8;

/// How a stream's rows reach its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Add the new rows.
    Append,
    /// Replace the table with the newest complete full copy.
    Replace,
    /// Upsert on the primary key.
    Merge,
}

impl std::fmt::Display for WriteMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Append => "append",
            Self::Replace => "replace",
            Self::Merge => "merge",
        })
    }
}

/// Where and how one connection is loaded (from `[bigquery]` and the stream options).
#[derive(Debug, Clone)]
pub struct Destination {
    /// BigQuery location of the dataset, e.g. `asia-northeast1`.
    pub location: String,
    /// The dataset (already expanded and sanitized).
    pub dataset: String,
    /// Table name template; `{stream}` is replaced by the stream name.
    pub table_template: String,
    /// Labels on created datasets and tables.
    pub labels: BTreeMap<String, String>,
    /// Per-stream options.
    pub streams: BTreeMap<String, StreamOptions>,
    /// Job sizes and retries.
    pub limits: LoadLimits,
}

/// How big a job may be and how failed jobs are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadLimits {
    /// Source URIs per load job: BigQuery allows 10,000 ("Maximum number of source URIs in job
    /// configuration", <https://cloud.google.com/bigquery/quotas#load_jobs>). Lower only to test
    /// the splitting.
    pub max_files_per_job: usize,
    /// Input bytes per load job: BigQuery allows 15 TB across all input files ("Maximum size
    /// per load job", same page).
    pub max_bytes_per_job: u64,
    /// Attempts of one job per run when it fails with a transient reason.
    pub attempts_per_run: u32,
    /// The first wait between attempts, doubled each time (BigQuery's SLA asks for at least 1 s).
    pub first_backoff: Duration,
}

impl Default for LoadLimits {
    fn default() -> Self {
        Self {
            max_files_per_job: 10_000,
            max_bytes_per_job: 15_000_000_000_000,
            attempts_per_run: 4,
            first_backoff: Duration::from_secs(1),
        }
    }
}

/// Per-stream load options.
#[derive(Debug, Clone, Default)]
pub struct StreamOptions {
    /// The write mode; by default `replace` for full-refresh streams, `merge` for streams with a
    /// primary key, `append` otherwise.
    pub write_mode: Option<WriteMode>,
    /// Time partitioning: column and granularity (`DAY`, `HOUR`, `MONTH`, `YEAR`).
    pub partition: Option<(String, String)>,
    /// Clustering columns.
    pub cluster_by: Vec<String>,
    /// A boolean column that marks deleted rows (merge deletes them from the table).
    pub deleted_flag: Option<String>,
}

/// Why a load failed. Nothing is recorded as loaded unless every job succeeded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("stream `{stream}` -> table `{table}`: {source}")]
    Schema {
        stream: String,
        table: String,
        source: SchemaError,
    },
    #[error("stream `{stream}`: {message}")]
    Options { stream: String, message: String },
    #[error(
        "BigQuery loads files from Cloud Storage, but the lake is `{url}`; set lake.url to gs://<bucket>/<prefix>"
    )]
    NotGcs { url: String },
    #[error("load record `{path}`: {reason}")]
    Record { path: String, reason: String },
    #[error(
        "loads of connection `{connection}` keep racing at `{path}`: the store does not show the other loader's plan; run `inlet load` again"
    )]
    Conflict { connection: String, path: String },
    #[error(transparent)]
    JobFailed(Box<JobFailure>),
}

/// A BigQuery job that failed for a reason retrying cannot fix, or failed on every try of a run.
#[derive(Debug, thiserror::Error)]
#[error(
    "stream `{stream}` -> table `{table}`: BigQuery job `{job_id}` failed ({reason}, try {tries} of this run): {message}\n  fix: {fix}"
)]
pub struct JobFailure {
    /// The stream.
    pub stream: String,
    /// `dataset.table`.
    pub table: String,
    /// The id of the attempt that failed.
    pub job_id: String,
    /// BigQuery's `reason`.
    pub reason: String,
    /// BigQuery's message.
    pub message: String,
    /// Tries of the job in this run.
    pub tries: u32,
    /// What to do about it.
    pub fix: String,
}

/// What one stream's load did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StreamLoaded {
    /// The stream.
    pub stream: String,
    /// `project.dataset.table`.
    pub table: String,
    /// The write mode.
    pub mode: WriteMode,
    /// Rows in the files loaded.
    pub rows: u64,
    /// Files loaded.
    pub files: usize,
    /// The BigQuery jobs that ran.
    pub jobs: Vec<String>,
}

/// What a load of one connection did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoadReport {
    /// The connection.
    pub connection: String,
    /// First commit loaded.
    pub first_sequence: u64,
    /// Last commit loaded.
    pub last_sequence: u64,
    /// Whether an interrupted load was resumed.
    pub resumed: bool,
    /// Per stream.
    pub streams: Vec<StreamLoaded>,
}

/// Loads the commits of `connection` that are not loaded yet; `None` when there are none. An
/// unfinished plan (interrupted, or another loader's) is finished first and reported as
/// `resumed`; call again for what came after.
pub async fn load_connection(
    lake: &Lake,
    connection: &str,
    client: &Client,
    destination: &Destination,
) -> Result<Option<LoadReport>, LoadError> {
    let Some(bucket_uri) = lake.gcs_bucket_uri() else {
        return Err(LoadError::NotGcs {
            url: lake.url().to_owned(),
        });
    };
    let records = Records::new(lake, connection, client.project(), &destination.dataset);
    // Each lost race means another loader's plan now exists and the next listing finds it, so
    // this settles at once; the bound only guards against a store whose listings lag its puts.
    for _ in 0..PLAN_RACES {
        let state = records.read(&destination.dataset).await?;
        let (key, plan, resumed) = match state.pending {
            Some((key, plan)) => {
                tracing::info!(
                    connection,
                    first = plan.first_sequence,
                    last = plan.last_sequence,
                    "resuming an unfinished load"
                );
                (key, plan, true)
            }
            None => {
                let history = History::read(lake, connection).await?;
                let Some(plan) =
                    planning::make_plan(&history, state.loaded_through, destination, &bucket_uri)?
                else {
                    return Ok(None);
                };
                if !records.create_plan(&plan).await? {
                    tracing::info!(
                        connection,
                        first = plan.first_sequence,
                        "another loader planned from this commit first; finishing its plan"
                    );
                    continue;
                }
                (plan.first_sequence, plan, false)
            }
        };
        let report = execute(client, destination, &records, key, state.attempts, plan).await?;
        return Ok(Some(LoadReport {
            connection: connection.to_owned(),
            resumed,
            ..report
        }));
    }
    Err(LoadError::Conflict {
        connection: connection.to_owned(),
        path: format!("_loads/{}.{}", client.project(), destination.dataset),
    })
}

async fn execute(
    client: &Client,
    destination: &Destination,
    records: &Records<'_>,
    key: u64,
    attempts: std::collections::BTreeMap<String, u32>,
    plan: Plan,
) -> Result<LoadReport, LoadError> {
    if !plan.streams.is_empty() {
        client
            .ensure_dataset(
                &destination.dataset,
                &destination.location,
                &destination.labels,
            )
            .await?;
    }
    let mut executor = Executor {
        client,
        destination,
        records,
        key,
        attempts,
    };
    let mut streams = Vec::with_capacity(plan.streams.len());
    for stream in &plan.streams {
        streams.push(executor.load_stream(&plan, stream).await?);
    }
    if std::env::var(crate::lake::FAULT_ENV).as_deref() == Ok(FAULT_BEFORE_RECORD) {
        eprintln!(
            "{}={FAULT_BEFORE_RECORD}: aborting after the load jobs, before the record",
            crate::lake::FAULT_ENV
        );
        std::process::abort();
    }
    records
        .write_done(&Done {
            format: FORMAT,
            first_sequence: plan.first_sequence,
            last_sequence: plan.last_sequence,
            finished_at: chrono::Utc::now().to_rfc3339(),
            streams: streams.clone(),
        })
        .await?;
    Ok(LoadReport {
        connection: String::new(),
        first_sequence: plan.first_sequence,
        last_sequence: plan.last_sequence,
        resumed: false,
        streams,
    })
}

/// A BigQuery table name for a stream: `{stream}` expanded, anything but letters, digits and `_`
/// turned into `_` (`public.orders` -> `public_orders`).
pub fn table_name(template: &str, stream: &str) -> String {
    sanitize(&template.replace("{stream}", stream))
}

/// Letters, digits and `_` only, as dataset and table ids require.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}
