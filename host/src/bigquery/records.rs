//! Load records on the lake's store, the protocol by which loaders agree: plans (written
//! create-only before any job starts), done records, and attempt records of retried jobs.
//!
//! Under `<connection>/_loads/<project>.<dataset>/`:
//! ```text
//! <first:020>.plan.json                  a plan for commits first..=last (format 2)
//! <first:020>-<last:020>.done.json       that plan finished
//! <key:020>.attempt.<job>.<n>.json       job <job> of plan <key> runs as attempt n (n >= 2)
//! <last:020>.plan.json, <last:020>.done.json   format 1 (Inlet before plans were keyed by first)
//! ```
//! Every plan starts right after the newest done record, so plans form a chain, and two loaders
//! that plan from the same commit write the same name: the create-only put lets one win, the
//! other resumes the winner's plan (same job ids). A format-1 plan is named after its last
//! sequence; a pending one is still found (its name is above everything loaded) and resumed with
//! its old job ids.

use super::schema::TableField;
use super::{LoadError, StreamLoaded, WriteMode, sanitize};
use crate::lake::Lake;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The plan format this host writes: 2 keys plans by their first sequence and lists jobs.
pub(super) const FORMAT: u32 = 2;

/// A plan: decided before any job runs, so that a resumed load does exactly the same.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Plan {
    pub format: u32,
    pub first_sequence: u64,
    pub last_sequence: u64,
    pub nonce: String,
    pub planned_at: String,
    pub streams: Vec<StreamPlan>,
}

/// One stream's part of a plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StreamPlan {
    pub stream: String,
    pub table: String,
    pub mode: WriteMode,
    pub schema: Vec<TableField>,
    pub primary_key: Vec<String>,
    pub cursor_field: Option<String>,
    pub deleted_flag: Option<String>,
    pub partition: Option<(String, String)>,
    pub cluster_by: Vec<String>,
    /// The jobs, run in order (format 2).
    #[serde(default)]
    pub jobs: Vec<JobPlan>,
    /// Format 1: groups of URIs, one job (or stage + merge) each; turned into `jobs` when read.
    #[serde(default, skip_serializing)]
    pub batches: Vec<Vec<String>>,
    pub rows: u64,
}

/// One BigQuery job of a plan. Attempt 1 runs as `id`, attempt `n` as `id_a<n>`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct JobPlan {
    pub id: String,
    #[serde(flatten)]
    pub kind: JobKind,
}

/// What a job does.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum JobKind {
    /// Load files into the table, or into `staging` (created first when `truncate`).
    Load {
        uris: Vec<String>,
        #[serde(default)]
        bytes: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        staging: Option<String>,
        truncate: bool,
    },
    /// `MERGE` the staging table into the table, then drop the staging table.
    Merge { staging: String },
    /// Delete every row (the newest full copy is empty).
    Empty,
}

impl JobPlan {
    /// The job id of `attempt` (from 1).
    pub fn attempt_id(&self, attempt: u32) -> String {
        if attempt <= 1 {
            self.id.clone()
        } else {
            format!("{}_a{attempt}", self.id)
        }
    }
}

/// The record of a finished plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Done {
    pub format: u32,
    pub first_sequence: u64,
    pub last_sequence: u64,
    pub finished_at: String,
    pub streams: Vec<StreamLoaded>,
}

/// Why a job runs under a new attempt id.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Attempt {
    job_id: String,
    attempt: u32,
    after_reason: String,
    after_message: String,
    at: String,
}

/// What the records say.
#[derive(Debug)]
pub(super) struct State {
    /// Commits up to this one are loaded.
    pub loaded_through: u64,
    /// A plan that is not done: its record key (the sequence in its name) and the plan.
    pub pending: Option<(u64, Plan)>,
    /// The current attempt of each job of the pending plan that was retried.
    pub attempts: BTreeMap<String, u32>,
}

/// The records folder of one connection and destination.
pub(super) struct Records<'a> {
    lake: &'a Lake,
    connection: &'a str,
    dir: Path,
}

impl<'a> Records<'a> {
    pub fn new(lake: &'a Lake, connection: &'a str, project: &str, dataset: &str) -> Self {
        let dir = lake
            .connection_root(connection)
            .join(crate::lake::LOADS)
            .join(format!("{project}.{dataset}"));
        Self {
            lake,
            connection,
            dir,
        }
    }

    fn error(&self, path: &Path, reason: impl ToString) -> LoadError {
        LoadError::Record {
            path: path.to_string(),
            reason: reason.to_string(),
        }
    }

    /// Lists the folder: how far loads got, and the pending plan with its attempts. `dataset`
    /// rebuilds the job ids of a format-1 plan.
    pub async fn read(&self, dataset: &str) -> Result<State, LoadError> {
        let store = self.lake.store();
        let listed: Vec<Path> = store
            .list(Some(&self.dir))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(|e| self.error(&self.dir, e))?;
        let names: Vec<&str> = listed.iter().filter_map(|p| p.filename()).collect();
        let mut loaded_through = 0;
        let mut plans = BTreeSet::new();
        for name in &names {
            if let Some(range) = name.strip_suffix(".done.json") {
                // `<first>-<last>` (format 2) or `<last>` (format 1).
                let last = range.rsplit('-').next().and_then(|s| s.parse::<u64>().ok());
                loaded_through = loaded_through.max(last.unwrap_or(0));
            } else if let Some(key) = name.strip_suffix(".plan.json") {
                plans.extend(key.parse::<u64>().ok());
            }
        }
        let Some(&key) = plans.iter().find(|k| **k > loaded_through) else {
            return Ok(State {
                loaded_through,
                pending: None,
                attempts: BTreeMap::new(),
            });
        };
        let path = self.dir.clone().join(format!("{key:020}.plan.json"));
        let bytes = store
            .get(&path)
            .await
            .map_err(|e| self.error(&path, e))?
            .bytes()
            .await
            .map_err(|e| self.error(&path, e))?;
        let mut plan: Plan = serde_json::from_slice(&bytes).map_err(|e| self.error(&path, e))?;
        if plan.format > FORMAT {
            return Err(self.error(
                &path,
                format!(
                    "written by a newer Inlet (format {}); upgrade this one to load connection `{}`",
                    plan.format, self.connection
                ),
            ));
        }
        if plan.format < 2 {
            upgrade_format_1(&mut plan, dataset);
        }
        let prefix = format!("{key:020}.attempt.");
        let mut attempts = BTreeMap::new();
        for name in &names {
            let Some(rest) = name
                .strip_prefix(prefix.as_str())
                .and_then(|r| r.strip_suffix(".json"))
            else {
                continue;
            };
            if let Some((job, n)) = rest.rsplit_once('.')
                && let Ok(n) = n.parse::<u32>()
            {
                let current = attempts.entry(job.to_owned()).or_insert(n);
                *current = (*current).max(n);
            }
        }
        Ok(State {
            loaded_through,
            pending: Some((key, plan)),
            attempts,
        })
    }

    /// Writes `plan` under its first sequence; `false` when another loader's plan has that name.
    pub async fn create_plan(&self, plan: &Plan) -> Result<bool, LoadError> {
        let path = self
            .dir
            .clone()
            .join(format!("{:020}.plan.json", plan.first_sequence));
        self.put_create(&path, plan).await
    }

    /// Records that `plan` finished (another loader finishing it first is fine: same jobs).
    pub async fn write_done(&self, done: &Done) -> Result<(), LoadError> {
        let path = self.dir.clone().join(format!(
            "{:020}-{:020}.done.json",
            done.first_sequence, done.last_sequence
        ));
        self.put_create(&path, done).await.map(|_| ())
    }

    /// Records that job `job_id` of plan `key` runs as `attempt` from now on, after a failure.
    pub async fn record_attempt(
        &self,
        key: u64,
        job_id: &str,
        attempt: u32,
        reason: &str,
        message: &str,
    ) -> Result<(), LoadError> {
        let path = self
            .dir
            .clone()
            .join(format!("{key:020}.attempt.{job_id}.{attempt}.json"));
        let record = Attempt {
            job_id: job_id.to_owned(),
            attempt,
            after_reason: reason.to_owned(),
            after_message: message.to_owned(),
            at: chrono::Utc::now().to_rfc3339(),
        };
        // Another loader retrying the same job writes the same name: both use that attempt.
        self.put_create(&path, &record).await.map(|_| ())
    }

    /// A create-only put: `Ok(false)` when the object exists.
    async fn put_create<T: Serialize>(&self, path: &Path, value: &T) -> Result<bool, LoadError> {
        let body = serde_json::to_vec_pretty(value).expect("load records serialize");
        let options = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .lake
            .store()
            .put_opts(path, PutPayload::from(Bytes::from(body)), options)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(self.error(path, e)),
        }
    }
}

/// The newest finished load of a connection, as `inlet status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastLoad {
    /// `project.dataset` loaded into.
    pub destination: String,
    /// First commit of the load.
    pub first_sequence: u64,
    /// Commits up to this one are loaded.
    pub last_sequence: u64,
    /// When the load finished (RFC 3339).
    pub finished_at: String,
    /// The BigQuery jobs that ran, per stream.
    pub jobs: BTreeMap<String, Vec<String>>,
}

/// Reads the newest done record of `connection` (of any destination): one listing of `_loads/`
/// and one record read. `None` when nothing was loaded.
pub async fn last_load(lake: &Lake, connection: &str) -> Result<Option<LastLoad>, LoadError> {
    let dir = lake.connection_root(connection).join(crate::lake::LOADS);
    let error = |path: &Path, reason: String| LoadError::Record {
        path: path.to_string(),
        reason,
    };
    let listed: Vec<Path> = lake
        .store()
        .list(Some(&dir))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .map_err(|e| error(&dir, e.to_string()))?;
    // The done record loading the newest commit; between destinations, the one finished last.
    let mut newest: Option<(u64, String, Path)> = None;
    for path in listed {
        let Some(range) = path.filename().and_then(|n| n.strip_suffix(".done.json")) else {
            continue;
        };
        let Some(last) = range.rsplit('-').next().and_then(|s| s.parse::<u64>().ok()) else {
            continue;
        };
        let destination = path
            .parts()
            .nth_back(1)
            .map(|p| p.as_ref().to_owned())
            .unwrap_or_default();
        if newest.as_ref().is_none_or(|(l, _, _)| last > *l) {
            newest = Some((last, destination, path));
        }
    }
    let Some((_, destination, path)) = newest else {
        return Ok(None);
    };
    let bytes = lake
        .store()
        .get(&path)
        .await
        .map_err(|e| error(&path, e.to_string()))?
        .bytes()
        .await
        .map_err(|e| error(&path, e.to_string()))?;
    let done: Done = serde_json::from_slice(&bytes).map_err(|e| error(&path, e.to_string()))?;
    Ok(Some(LastLoad {
        destination,
        first_sequence: done.first_sequence,
        last_sequence: done.last_sequence,
        finished_at: done.finished_at,
        jobs: done
            .streams
            .into_iter()
            .map(|s| (s.stream, s.jobs))
            .collect(),
    }))
}

/// Turns a format-1 plan's `batches` into jobs with the ids that version gave them, so a load it
/// left unfinished resumes without loading anything twice.
fn upgrade_format_1(plan: &mut Plan, dataset: &str) {
    for stream in &mut plan.streams {
        let base = sanitize(&format!(
            "inlet_{dataset}_{}_{}_{}_{}",
            stream.table, plan.first_sequence, plan.last_sequence, plan.nonce
        ));
        let mut jobs = Vec::new();
        for (index, uris) in std::mem::take(&mut stream.batches).into_iter().enumerate() {
            let id = |step: &str| format!("{base}_{index}_{step}");
            match stream.mode {
                WriteMode::Append => jobs.push(JobPlan {
                    id: id("load"),
                    kind: JobKind::Load {
                        uris,
                        bytes: 0,
                        staging: None,
                        truncate: false,
                    },
                }),
                WriteMode::Replace if uris.is_empty() => jobs.push(JobPlan {
                    id: id("empty"),
                    kind: JobKind::Empty,
                }),
                WriteMode::Replace => jobs.push(JobPlan {
                    id: id("load"),
                    kind: JobKind::Load {
                        uris,
                        bytes: 0,
                        staging: None,
                        truncate: true,
                    },
                }),
                WriteMode::Merge => {
                    let staging = format!(
                        "{}__inlet_stage_{}_{index}",
                        stream.table, plan.last_sequence
                    );
                    jobs.push(JobPlan {
                        id: id("stage"),
                        kind: JobKind::Load {
                            uris,
                            bytes: 0,
                            staging: Some(staging.clone()),
                            truncate: true,
                        },
                    });
                    jobs.push(JobPlan {
                        id: id("merge"),
                        kind: JobKind::Merge { staging },
                    });
                }
            }
        }
        stream.jobs = jobs;
    }
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
