//! Loading committed lake data into BigQuery, exactly once per commit.
//!
//! A load covers the commits after the last loaded one. Before any job starts, its *plan* is
//! written create-only to `<connection>/_loads/<project>.<dataset>/<last:020>.plan.json`: the
//! commits, and per stream the table, write mode, schema, files and a nonce that every job id is
//! derived from. After the jobs are done, `<last:020>.done.json` records it. A run that finds a
//! plan without its done record resumes that plan: the job ids are the same, so BigQuery's answer
//! for a job that already ran is found with `jobs.get` instead of loading the files twice.
//!
//! Write modes per stream:
//! - `append`: one load job, `WRITE_APPEND`, columns added/relaxed on the way.
//! - `replace`: the newest *complete* full copy of the stream (see [`crate::lake::FullCopy`]) in
//!   one `WRITE_TRUNCATE` load job, which BigQuery applies atomically.
//! - `merge`: files loaded into a staging table, then one `MERGE` on the primary key (newest cursor
//!   wins; rows flagged by `deleted_flag` are deleted), then the staging table is dropped.

mod client;
pub mod schema;

pub use client::{ApiError, Client, DEFAULT_ENDPOINT, TableSpec};
pub use schema::{SchemaError, TableField};

use crate::lake::{CommitError, History, Lake, StreamCommit};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The load record format this host writes.
const FORMAT: u32 = 1;
/// Environment value of `INLET_FAULT` that aborts after the jobs ran, before the done record.
pub const FAULT_BEFORE_RECORD: &str = "crash-before-load-record";
/// Staging tables expire on their own after this long, should a crash leave one behind.
const STAGING_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

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
        "another load of connection `{connection}` wrote `{path}` first (are two runners loading it?)"
    )]
    Conflict { connection: String, path: String },
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

/// A plan: decided before any job runs, so that a resumed load does exactly the same.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Plan {
    format: u32,
    first_sequence: u64,
    last_sequence: u64,
    nonce: String,
    planned_at: String,
    streams: Vec<StreamPlan>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StreamPlan {
    stream: String,
    table: String,
    mode: WriteMode,
    schema: Vec<TableField>,
    primary_key: Vec<String>,
    cursor_field: Option<String>,
    deleted_flag: Option<String>,
    partition: Option<(String, String)>,
    cluster_by: Vec<String>,
    /// Groups of `gs://` URIs, loaded in order, one job (or stage + merge) per group.
    batches: Vec<Vec<String>>,
    rows: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Done {
    format: u32,
    first_sequence: u64,
    last_sequence: u64,
    finished_at: String,
    streams: Vec<StreamLoaded>,
}

/// Loads the commits of `connection` that are not loaded yet; `None` when there are none. An
/// interrupted load is finished first, and reported as `resumed`; call again for what came after.
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
    let records = lake
        .connection_root(connection)
        .join(crate::lake::LOADS)
        .join(format!("{}.{}", client.project(), destination.dataset));
    let (loaded_through, pending) = read_records(lake, &records).await?;
    let (plan, resumed) = match pending {
        Some(plan) => {
            tracing::info!(
                connection,
                first = plan.first_sequence,
                last = plan.last_sequence,
                "resuming an interrupted load"
            );
            (plan, true)
        }
        None => {
            let history = History::read(lake, connection).await?;
            let Some(plan) = make_plan(&history, loaded_through, destination, &bucket_uri)? else {
                return Ok(None);
            };
            let path = records
                .clone()
                .join(format!("{:020}.plan.json", plan.last_sequence));
            put_create(lake, connection, &path, &plan).await?;
            (plan, false)
        }
    };
    if !plan.streams.is_empty() {
        client
            .ensure_dataset(
                &destination.dataset,
                &destination.location,
                &destination.labels,
            )
            .await?;
    }
    let mut streams = Vec::with_capacity(plan.streams.len());
    for stream in &plan.streams {
        streams.push(load_stream(client, destination, &plan, stream).await?);
    }
    if std::env::var(crate::lake::FAULT_ENV).as_deref() == Ok(FAULT_BEFORE_RECORD) {
        eprintln!(
            "{}={FAULT_BEFORE_RECORD}: aborting after the load jobs, before the record",
            crate::lake::FAULT_ENV
        );
        std::process::abort();
    }
    let done = Done {
        format: FORMAT,
        first_sequence: plan.first_sequence,
        last_sequence: plan.last_sequence,
        finished_at: chrono::Utc::now().to_rfc3339(),
        streams: streams.clone(),
    };
    let path = records.join(format!("{:020}.done.json", plan.last_sequence));
    put_create(lake, connection, &path, &done).await?;
    Ok(Some(LoadReport {
        connection: connection.to_owned(),
        first_sequence: plan.first_sequence,
        last_sequence: plan.last_sequence,
        resumed,
        streams,
    }))
}

/// The newest loaded sequence, and a plan that was started but not finished.
async fn read_records(lake: &Lake, dir: &Path) -> Result<(u64, Option<Plan>), LoadError> {
    let store = lake.store();
    let listed: Vec<Path> = store
        .list(Some(dir))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .map_err(|e| LoadError::Record {
            path: dir.to_string(),
            reason: e.to_string(),
        })?;
    let mut done = BTreeSet::new();
    let mut plans = BTreeSet::new();
    for path in &listed {
        let Some(name) = path.filename() else {
            continue;
        };
        let sequence = |suffix: &str| {
            name.strip_suffix(suffix)
                .and_then(|s| s.parse::<u64>().ok())
        };
        if let Some(s) = sequence(".done.json") {
            done.insert(s);
        } else if let Some(s) = sequence(".plan.json") {
            plans.insert(s);
        }
    }
    let loaded_through = done.last().copied().unwrap_or(0);
    let Some(&pending) = plans.iter().find(|s| **s > loaded_through) else {
        return Ok((loaded_through, None));
    };
    let path = dir.clone().join(format!("{pending:020}.plan.json"));
    let record = |reason: String| LoadError::Record {
        path: path.to_string(),
        reason,
    };
    let bytes = store
        .get(&path)
        .await
        .map_err(|e| record(e.to_string()))?
        .bytes()
        .await
        .map_err(|e| record(e.to_string()))?;
    let plan: Plan = serde_json::from_slice(&bytes).map_err(|e| record(e.to_string()))?;
    if plan.format > FORMAT {
        return Err(record(format!(
            "written by a newer Inlet (format {})",
            plan.format
        )));
    }
    Ok((loaded_through, Some(plan)))
}

async fn put_create<T: Serialize>(
    lake: &Lake,
    connection: &str,
    path: &Path,
    value: &T,
) -> Result<(), LoadError> {
    let body = serde_json::to_vec_pretty(value).expect("load records serialize");
    let options = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match lake
        .store()
        .put_opts(path, PutPayload::from(Bytes::from(body)), options)
        .await
    {
        Ok(_) => Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => Err(LoadError::Conflict {
            connection: connection.to_owned(),
            path: path.to_string(),
        }),
        Err(e) => Err(LoadError::Record {
            path: path.to_string(),
            reason: e.to_string(),
        }),
    }
}

fn make_plan(
    history: &History,
    loaded_through: u64,
    destination: &Destination,
    bucket_uri: &str,
) -> Result<Option<Plan>, LoadError> {
    let new: Vec<_> = history
        .commits
        .iter()
        .filter(|c| c.sequence > loaded_through)
        .collect();
    let (Some(first), Some(last)) = (new.first(), new.last()) else {
        return Ok(None);
    };
    let uri = |path: &str| format!("{bucket_uri}/{path}");
    let mut streams = Vec::new();
    for (name, newest) in &last.streams {
        let options = destination.streams.get(name).cloned().unwrap_or_default();
        let table = table_name(&destination.table_template, name);
        // A stream read in full in this range is replaced; the newest commit alone does not tell
        // (a later run may have synced other streams only).
        let read_in_full = new
            .iter()
            .any(|c| c.streams.get(name).is_some_and(|s| s.full_copy.is_some()));
        let mode = options.write_mode.unwrap_or(if read_in_full {
            WriteMode::Replace
        } else if !newest.primary_key.is_empty() {
            WriteMode::Merge
        } else {
            WriteMode::Append
        });
        let schema = schema::to_bigquery(&newest.schema).map_err(|source| LoadError::Schema {
            stream: name.clone(),
            table: table.clone(),
            source,
        })?;
        let in_range = new.iter().filter_map(|c| c.streams.get(name));
        let batches: Vec<Vec<&StreamCommit>> = match mode {
            WriteMode::Append => vec![in_range.collect()],
            WriteMode::Merge if newest.cursor_field.is_some() => vec![in_range.collect()],
            // Without a cursor the newest row of a key is the one of the newest commit: merge
            // commit by commit.
            WriteMode::Merge => in_range.map(|s| vec![s]).collect(),
            WriteMode::Replace => {
                let complete = new
                    .iter()
                    .rev()
                    .filter_map(|c| c.streams.get(name)?.full_copy.as_ref())
                    .find(|copy| copy.complete);
                match complete {
                    // No full copy finished since the last load: the table stays as it is.
                    None => continue,
                    Some(copy) => vec![
                        history
                            .commits
                            .iter()
                            .filter_map(|c| c.streams.get(name))
                            .filter(|s| {
                                s.full_copy.as_ref().map(|f| &f.run_id) == Some(&copy.run_id)
                            })
                            .collect(),
                    ],
                }
            }
        };
        let rows = batches
            .iter()
            .flatten()
            .flat_map(|s| &s.files)
            .map(|f| f.rows)
            .sum();
        let batches: Vec<Vec<String>> = batches
            .iter()
            .map(|group| {
                group
                    .iter()
                    .flat_map(|s| &s.files)
                    .map(|f| uri(&f.path))
                    .collect()
            })
            .filter(|uris: &Vec<String>| !uris.is_empty() || mode == WriteMode::Replace)
            .collect();
        if mode == WriteMode::Merge && newest.primary_key.is_empty() {
            return Err(LoadError::Options {
                stream: name.clone(),
                message: "write_mode `merge` needs a primary key and the stream has none (use `append` or `replace`)".into(),
            });
        }
        for column in options
            .partition
            .iter()
            .map(|(c, _)| c)
            .chain(&options.cluster_by)
            .chain(&options.deleted_flag)
        {
            if newest.schema.field_with_name(column).is_err() {
                return Err(LoadError::Options {
                    stream: name.clone(),
                    message: format!(
                        "column `{column}` (partitioning, clustering or deleted_flag) is not a column of the stream"
                    ),
                });
            }
        }
        streams.push(StreamPlan {
            stream: name.clone(),
            table,
            mode,
            schema,
            primary_key: newest.primary_key.clone(),
            cursor_field: newest.cursor_field.clone(),
            deleted_flag: options.deleted_flag.clone(),
            partition: options.partition.clone(),
            cluster_by: options.cluster_by.clone(),
            batches,
            rows,
        });
    }
    Ok(Some(Plan {
        format: FORMAT,
        first_sequence: first.sequence,
        last_sequence: last.sequence,
        nonce: format!("{:08x}", crate::lake::rand_u32()),
        planned_at: chrono::Utc::now().to_rfc3339(),
        streams,
    }))
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

async fn load_stream(
    client: &Client,
    destination: &Destination,
    plan: &Plan,
    stream: &StreamPlan,
) -> Result<StreamLoaded, LoadError> {
    let dataset = destination.dataset.as_str();
    let table = stream.table.as_str();
    let spec = TableSpec {
        schema: stream.schema.clone(),
        partition: stream.partition.clone(),
        clustering: stream.cluster_by.clone(),
        labels: destination.labels.clone(),
        expires_at_ms: None,
    };
    let schema_error = |source| LoadError::Schema {
        stream: stream.stream.clone(),
        table: format!("{dataset}.{table}"),
        source,
    };
    match client.table_schema(dataset, table).await? {
        None => client.create_table(dataset, table, &spec).await?,
        Some(current) => match schema::evolve(&current, &stream.schema) {
            Ok(Some(evolved)) => client.patch_schema(dataset, table, &evolved).await?,
            Ok(None) => {}
            // A replace truncates the table, schema included.
            Err(_) if stream.mode == WriteMode::Replace => {}
            Err(e) => return Err(schema_error(e)),
        },
    }
    let job_base = sanitize(&format!(
        "inlet_{dataset}_{table}_{}_{}_{}",
        plan.first_sequence, plan.last_sequence, plan.nonce
    ));
    let location = destination.location.as_str();
    let mut jobs = Vec::new();
    let what = |step: &str| {
        format!(
            "{step} of stream `{}` into `{dataset}.{table}`",
            stream.stream
        )
    };
    for (index, uris) in stream.batches.iter().enumerate() {
        let job = |step: &str| format!("{job_base}_{index}_{step}");
        match stream.mode {
            WriteMode::Append => {
                let config =
                    load_config(client, dataset, table, uris, &stream.schema, "WRITE_APPEND");
                let id = job("load");
                client
                    .run_job(&id, location, config, &what("append"))
                    .await?;
                jobs.push(id);
            }
            WriteMode::Replace if uris.is_empty() => {
                // The newest full copy is empty: so is the table, in one statement.
                let sql = format!("DELETE FROM {} WHERE TRUE", quoted(client, dataset, table));
                let id = job("empty");
                client
                    .run_job(&id, location, query_config(&sql), &what("replace"))
                    .await?;
                jobs.push(id);
            }
            WriteMode::Replace => {
                let config = load_config(
                    client,
                    dataset,
                    table,
                    uris,
                    &stream.schema,
                    "WRITE_TRUNCATE",
                );
                let id = job("load");
                client
                    .run_job(&id, location, config, &what("replace"))
                    .await?;
                jobs.push(id);
            }
            WriteMode::Merge => {
                let staging = format!("{table}__inlet_stage_{}_{index}", plan.last_sequence);
                let staging_spec = TableSpec {
                    schema: stream.schema.clone(),
                    labels: destination.labels.clone(),
                    expires_at_ms: Some(chrono::Utc::now().timestamp_millis() + STAGING_TTL_MS),
                    ..TableSpec::default()
                };
                client
                    .create_table(dataset, &staging, &staging_spec)
                    .await?;
                let config = load_config(
                    client,
                    dataset,
                    &staging,
                    uris,
                    &stream.schema,
                    "WRITE_TRUNCATE",
                );
                let id = job("stage");
                client
                    .run_job(&id, location, config, &what("staging load"))
                    .await?;
                jobs.push(id);
                let sql = merge_sql(client, dataset, table, &staging, stream);
                let id = job("merge");
                client
                    .run_job(&id, location, query_config(&sql), &what("merge"))
                    .await?;
                jobs.push(id);
                client.delete_table(dataset, &staging).await?;
            }
        }
    }
    Ok(StreamLoaded {
        stream: stream.stream.clone(),
        table: format!("{}.{dataset}.{table}", client.project()),
        mode: stream.mode,
        rows: stream.rows,
        files: stream.batches.iter().map(Vec::len).sum(),
        jobs,
    })
}

fn load_config(
    client: &Client,
    dataset: &str,
    table: &str,
    uris: &[String],
    schema: &[TableField],
    disposition: &str,
) -> Value {
    let mut load = json!({
        "destinationTable": {"projectId": client.project(), "datasetId": dataset, "tableId": table},
        "sourceUris": uris,
        "sourceFormat": "PARQUET",
        "writeDisposition": disposition,
        "createDisposition": "CREATE_IF_NEEDED",
        "schema": {"fields": schema},
        "parquetOptions": {"enableListInference": true},
        "decimalTargetTypes": ["NUMERIC", "BIGNUMERIC"],
    });
    if disposition == "WRITE_APPEND" {
        load["schemaUpdateOptions"] = json!(["ALLOW_FIELD_ADDITION", "ALLOW_FIELD_RELAXATION"]);
    }
    json!({ "load": load })
}

fn query_config(sql: &str) -> Value {
    json!({"query": {"query": sql, "useLegacySql": false}})
}

fn quoted(client: &Client, dataset: &str, table: &str) -> String {
    format!("`{}.{dataset}.{table}`", client.project())
}

fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "\\`"))
}

/// `MERGE` of the staging table into the target: one row per key (the newest cursor), updated
/// when the key exists, inserted when not, deleted when flagged.
fn merge_sql(
    client: &Client,
    dataset: &str,
    table: &str,
    staging: &str,
    stream: &StreamPlan,
) -> String {
    let keys: Vec<String> = stream.primary_key.iter().map(|k| ident(k)).collect();
    let order = match &stream.cursor_field {
        Some(cursor) => format!(" ORDER BY {} DESC", ident(cursor)),
        None => String::new(),
    };
    let on = keys
        .iter()
        .map(|k| format!("T.{k} = S.{k}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let columns: Vec<String> = stream.schema.iter().map(|f| ident(&f.name)).collect();
    let set = columns
        .iter()
        .map(|c| format!("{c} = S.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let values = columns
        .iter()
        .map(|c| format!("S.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let (delete, insert_if) = match &stream.deleted_flag {
        Some(flag) => (
            format!(
                " WHEN MATCHED AND S.{f} IS TRUE THEN DELETE",
                f = ident(flag)
            ),
            format!(" AND S.{f} IS NOT TRUE", f = ident(flag)),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        "MERGE {target} T USING (SELECT * EXCEPT (__inlet_rank) FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {keys}{order}) AS __inlet_rank FROM {source}) WHERE __inlet_rank = 1) S ON {on}{delete} WHEN MATCHED THEN UPDATE SET {set} WHEN NOT MATCHED{insert_if} THEN INSERT ({columns}) VALUES ({values})",
        target = quoted(client, dataset, table),
        source = quoted(client, dataset, staging),
        keys = keys.join(", "),
        columns = columns.join(", "),
    )
}
