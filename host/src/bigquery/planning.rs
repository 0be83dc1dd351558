//! Planning a load: which commits, which streams, which files, which write mode, and the jobs
//! (split to stay within BigQuery's per-job limits) — everything decided before a job runs.

use super::records::{FORMAT, JobKind, JobPlan, Plan, StreamPlan};
use super::{Destination, LoadError, LoadLimits, WriteMode, sanitize, schema, table_name};
use crate::lake::{Commit, DataFile, History, StreamCommit};

/// A plan for the commits after `loaded_through`, all of them in one plan (one load per table
/// however many commits are pending, which is what keeps a drain within BigQuery's daily
/// load-job quota per table); `None` when there are none.
pub(super) fn make_plan<'h>(
    history: &'h History,
    loaded_through: u64,
    destination: &Destination,
    bucket_uri: &str,
) -> Result<Option<Plan>, LoadError> {
    let new: Vec<&'h Commit> = history
        .commits
        .iter()
        .filter(|c| c.sequence > loaded_through)
        .collect();
    let (Some(first), Some(last)) = (new.first(), new.last()) else {
        return Ok(None);
    };
    let nonce = crate::random::random_hex(4);
    let mut streams = Vec::new();
    for (name, newest) in &last.streams {
        let options = destination.streams.get(name).cloned().unwrap_or_default();
        let table = table_name(&destination.table_template, name);
        // A stream read in full in this range is replaced; the newest commit alone does not tell
        // (a later run may have synced other streams only).
        let read_in_full = new
            .iter()
            .any(|c| c.streams.get(name).is_some_and(|s| s.full_copy.is_some()));
        // A stream reset asked for the table to be rebuilt from the re-read: replace it, whatever
        // the write mode (a merge would keep rows deleted at the source); until the copy is
        // complete, replacing leaves the table as it is.
        let reset = new.iter().any(|c| {
            c.streams
                .get(name)
                .and_then(|s| s.full_copy.as_ref())
                .is_some_and(|f| f.reset)
        });
        let mode = if reset {
            Some(WriteMode::Replace)
        } else {
            options.write_mode
        };
        let mode = mode.unwrap_or(if read_in_full {
            WriteMode::Replace
        } else if !newest.primary_key.is_empty() {
            WriteMode::Merge
        } else {
            WriteMode::Append
        });
        if mode == WriteMode::Merge && newest.primary_key.is_empty() {
            return Err(LoadError::Options {
                stream: name.clone(),
                message: "write_mode `merge` needs a primary key and the stream has none (use `append` or `replace`)".into(),
            });
        }
        let deleted_flag = deleted_flag(options.deleted_flag.as_ref(), &newest.schema);
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
                        "column `{column}` (partitioning, clustering or deleted_flag) is not a column of the stream; remove it from the stream's options or fix its name"
                    ),
                });
            }
        }
        let schema = schema::to_bigquery(&newest.schema).map_err(|source| LoadError::Schema {
            stream: name.clone(),
            table: table.clone(),
            source,
        })?;
        let mut jobs = Jobs {
            base: sanitize(&format!(
                "inlet_{}_{table}_{}_{}_{nonce}",
                destination.dataset, first.sequence, last.sequence
            )),
            staging_base: format!("{table}__inlet_stage_{}_{nonce}", first.sequence),
            uri_prefix: bucket_uri,
            limits: &destination.limits,
            keyed: !newest.primary_key.is_empty(),
            // A cursor tells the newest version of a key only when it is not part of the key: a
            // re-read day of an ads report (`date` in the key and the cursor) ties with itself.
            newest_by_cursor: newest
                .cursor_field
                .as_ref()
                .is_some_and(|cursor| !newest.primary_key.contains(cursor)),
            jobs: Vec::new(),
            rows: 0,
            stagings: 0,
        };
        let in_range = |c: &&'h Commit| stream_of(c, name);
        match mode {
            WriteMode::Append => jobs.append(new.iter().filter_map(in_range).map(|(_, s)| s)),
            WriteMode::Merge => jobs.merge(new.iter().filter_map(in_range).map(|(_, s)| s)),
            WriteMode::Replace => {
                let complete = new
                    .iter()
                    .filter_map(in_range)
                    .rev()
                    .find(|(_, s)| s.full_copy.as_ref().is_some_and(|f| f.complete));
                let after = match complete {
                    Some((sequence, newest_copy)) => {
                        let run = newest_copy.full_copy.as_ref().map(|f| &f.run_id);
                        // The copy's files are in every commit of its run, some perhaps loaded
                        // (or planned) in an earlier range: take them from the whole history.
                        let copy: Vec<&DataFile> = history
                            .commits
                            .iter()
                            .filter_map(|c| c.streams.get(name))
                            .filter(|s| s.full_copy.as_ref().map(|f| &f.run_id) == run)
                            .flat_map(|s| &s.files)
                            .collect();
                        jobs.replace(&copy);
                        sequence
                    }
                    None => 0,
                };
                // Incremental commits after the newest complete copy are applied on top of it,
                // in order; files of copies that never completed are not rows of the stream.
                let incremental = new
                    .iter()
                    .filter_map(in_range)
                    .filter(|(sequence, s)| *sequence > after && s.full_copy.is_none())
                    .map(|(_, s)| s);
                if jobs.keyed {
                    jobs.merge(incremental);
                } else {
                    jobs.append(incremental);
                }
                if jobs.jobs.is_empty() {
                    // No finished copy and nothing incremental: the table stays as it is.
                    continue;
                }
            }
        }
        streams.push(StreamPlan {
            stream: name.clone(),
            table,
            mode,
            schema,
            primary_key: newest.primary_key.clone(),
            cursor_field: newest.cursor_field.clone(),
            deleted_flag,
            partition: options.partition.clone(),
            cluster_by: options.cluster_by.clone(),
            rows: jobs.rows,
            jobs: jobs.jobs,
            batches: Vec::new(),
        });
    }
    Ok(Some(Plan {
        format: FORMAT,
        first_sequence: first.sequence,
        last_sequence: last.sequence,
        nonce,
        planned_at: chrono::Utc::now().to_rfc3339(),
        streams,
    }))
}

/// A stream's part of a commit, with the commit's sequence.
fn stream_of<'h>(commit: &&'h Commit, stream: &str) -> Option<(u64, &'h StreamCommit)> {
    let commit: &'h Commit = commit;
    commit.streams.get(stream).map(|s| (commit.sequence, s))
}

/// The jobs of one stream, as they are added.
struct Jobs<'a> {
    base: String,
    staging_base: String,
    uri_prefix: &'a str,
    limits: &'a LoadLimits,
    keyed: bool,
    /// Whether the cursor orders the versions of one key, so many commits merge at once.
    newest_by_cursor: bool,
    jobs: Vec<JobPlan>,
    rows: u64,
    stagings: usize,
}

impl Jobs<'_> {
    fn push(&mut self, step: &str, kind: JobKind) {
        let id = format!("{}_{}_{step}", self.base, self.jobs.len());
        self.jobs.push(JobPlan { id, kind });
    }

    /// Load jobs for `files` into the table (or `staging`), each within the per-job limits; the
    /// first truncates when `truncate`, the rest append.
    fn load(&mut self, files: &[&DataFile], staging: Option<&str>, truncate: bool) {
        let step = if staging.is_some() { "stage" } else { "load" };
        for (index, chunk) in split(files, self.limits).into_iter().enumerate() {
            self.rows += chunk.iter().map(|f| f.rows).sum::<u64>();
            let kind = JobKind::Load {
                uris: chunk
                    .iter()
                    .map(|f| format!("{}/{}", self.uri_prefix, f.path))
                    .collect(),
                bytes: chunk.iter().map(|f| f.bytes).sum(),
                staging: staging.map(str::to_owned),
                truncate: truncate && index == 0,
            };
            self.push(step, kind);
        }
    }

    /// Appends the files of `commits`.
    fn append<'c>(&mut self, commits: impl Iterator<Item = &'c StreamCommit>) {
        let files: Vec<&DataFile> = commits.flat_map(|s| &s.files).collect();
        self.load(&files, None, false);
    }

    /// Merges the files of `commits`: all at once when a cursor tells the newest row of a key,
    /// commit by commit (newest last) when not (no cursor, or the cursor is part of the key).
    fn merge<'c>(&mut self, commits: impl Iterator<Item = &'c StreamCommit>) {
        let commits: Vec<&StreamCommit> = commits.collect();
        let groups: Vec<Vec<&DataFile>> = if self.newest_by_cursor {
            vec![commits.iter().flat_map(|s| &s.files).collect()]
        } else {
            commits.iter().map(|s| s.files.iter().collect()).collect()
        };
        for files in groups.into_iter().filter(|g| !g.is_empty()) {
            let staging = format!("{}_{}", self.staging_base, self.stagings);
            self.stagings += 1;
            self.load(&files, Some(&staging), true);
            self.push("merge", JobKind::Merge { staging });
        }
    }

    /// Replaces the table with a full copy: truncate with its first job (an empty copy empties
    /// the table), append the rest.
    fn replace(&mut self, copy: &[&DataFile]) {
        if copy.is_empty() {
            self.push("empty", JobKind::Empty);
        } else {
            self.load(copy, None, true);
        }
    }
}

/// Groups of files, in order, each within BigQuery's per-job limits of source URIs and bytes.
fn split<'f>(files: &[&'f DataFile], limits: &LoadLimits) -> Vec<Vec<&'f DataFile>> {
    let mut groups: Vec<Vec<&DataFile>> = Vec::new();
    let mut bytes = 0;
    for file in files {
        let full = groups.last().is_none_or(|g| {
            g.len() >= limits.max_files_per_job.max(1)
                || bytes + file.bytes > limits.max_bytes_per_job
        });
        if full {
            groups.push(Vec::new());
            bytes = 0;
        }
        bytes += file.bytes;
        groups.last_mut().expect("a group was pushed").push(file);
    }
    groups
}

/// The column whose true value makes a merge delete the row: the stream's `deleted_flag`, else
/// `_inlet_deleted` when the stream has it as a boolean (change data capture, e.g. postgres with
/// `replication = "logical"`).
fn deleted_flag(configured: Option<&String>, schema: &arrow_schema::Schema) -> Option<String> {
    const CHANGE_DATA_FLAG: &str = "_inlet_deleted";
    configured.cloned().or_else(|| {
        schema
            .field_with_name(CHANGE_DATA_FLAG)
            .ok()
            .filter(|f| *f.data_type() == arrow_schema::DataType::Boolean)
            .map(|_| CHANGE_DATA_FLAG.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_data_streams_delete_by_their_flag_unless_one_is_configured() {
        use arrow_schema::{DataType, Field, Schema};
        let cdc = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("_inlet_deleted", DataType::Boolean, false),
        ]);
        assert_eq!(deleted_flag(None, &cdc).as_deref(), Some("_inlet_deleted"));
        let chosen = "gone".to_owned();
        assert_eq!(deleted_flag(Some(&chosen), &cdc).as_deref(), Some("gone"));
        let plain = Schema::new(vec![Field::new("id", DataType::Int64, false)]);
        assert_eq!(deleted_flag(None, &plain), None);
        // A source column of that name that is not a boolean is not a delete flag.
        let text = Schema::new(vec![Field::new("_inlet_deleted", DataType::Utf8, true)]);
        assert_eq!(deleted_flag(None, &text), None);
    }

    fn file(n: u64, bytes: u64) -> DataFile {
        DataFile {
            path: format!("f{n}.parquet"),
            rows: 1,
            bytes,
        }
    }

    #[test]
    fn files_split_by_count_and_bytes_in_order() {
        let limits = LoadLimits {
            max_files_per_job: 3,
            max_bytes_per_job: 100,
            ..LoadLimits::default()
        };
        let files: Vec<DataFile> = (0..7)
            .map(|n| file(n, if n == 4 { 90 } else { 10 }))
            .collect();
        let refs: Vec<&DataFile> = files.iter().collect();
        let groups: Vec<Vec<String>> = split(&refs, &limits)
            .iter()
            .map(|g| g.iter().map(|f| f.path.clone()).collect())
            .collect();
        assert_eq!(
            groups,
            vec![
                vec!["f0.parquet", "f1.parquet", "f2.parquet"],
                vec!["f3.parquet", "f4.parquet"],
                vec!["f5.parquet", "f6.parquet"],
            ]
        );
        assert!(split(&[], &limits).is_empty());
    }
}
