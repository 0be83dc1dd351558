//! A lake session: receives one run's batches and checkpoints and turns them into commits.
//!
//! Data files are written as batches arrive; a checkpoint finishes the open files, flushes them to
//! disk on a local lake, and writes a commit with the next sequence number, create-only. The
//! session keeps only the tip (the newest commit without files), and writes a snapshot every
//! `snapshot_every` commits. A session that committed sweeps at its end (see `super::sweep`).

use super::commit::{self, Commit, ConnectorInfo, DataFile, FullCopy, StreamCommit};
use super::evolution::{self, IncompatiblePolicy};
use super::history::{self, SNAPSHOT_EVERY, Tip};
use super::reset::remove_stream_keys;
use super::writer::{RollingWriter, WriterOptions};
use super::{Lake, commit::CommitError, sweep};
use crate::runtime::{BatchSink, SinkError};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use futures::future::BoxFuture;
use object_store::path::Path;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

/// Environment variable for crash tests: `crash-before-commit` aborts the process after the data
/// files of a checkpoint are finished and before its commit is written.
pub const FAULT_ENV: &str = "INLET_FAULT";

/// Settings of a session.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Parquet file sizing.
    pub writer: WriterOptions,
    /// Policy for incompatible schema changes, per stream (default: evolve).
    pub policies: HashMap<String, IncompatiblePolicy>,
    /// Commits between snapshots ([`SNAPSHOT_EVERY`] when `None`).
    pub snapshot_every: Option<u64>,
}

/// A stream this session may write, as the connector described it.
#[derive(Debug, Clone, Default)]
pub struct StreamMeta {
    /// Primary key columns.
    pub primary_key: Vec<String>,
    /// Cursor column.
    pub cursor_field: Option<String>,
    /// Read in full this run (its commits are marked as one [`FullCopy`]).
    pub full_refresh: bool,
}

/// What one stream received in this session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Rows committed.
    pub rows: u64,
    /// Files committed.
    pub files: u64,
    /// Bytes committed.
    pub bytes: u64,
}

/// Something worth telling the operator.
#[derive(Debug, Clone)]
pub enum SessionEvent {
    /// A stream's schema changed.
    SchemaChanged { stream: String, change: String },
    /// A commit was written.
    Committed {
        sequence: u64,
        rows: u64,
        files: usize,
    },
    /// Leftover files of failed runs were removed.
    Swept { files: usize },
}

struct Slot {
    schema: Option<SchemaRef>,
    meta: StreamMeta,
    /// A stream reset asked for this stream to be read again in full; this run's copy answers it.
    reread: bool,
    writer: Option<RollingWriter>,
    /// Numbers this run's files of the stream, for its writer and those of the parts.
    file_numbers: Arc<AtomicU32>,
    /// Files the parts of a partitioned read finished, for the next commit.
    from_parts: Vec<DataFile>,
    policy: IncompatiblePolicy,
}

/// The lake side of one run of a connection.
pub struct LakeSession {
    lake: Lake,
    connection: String,
    run_id: String,
    connector: ConnectorInfo,
    /// The newest commit (without files), as read at open and then as this session wrote it.
    tip: Option<Tip>,
    /// This session's first commit, which dates what the sweep may remove.
    first_commit: Option<Path>,
    slots: BTreeMap<String, Slot>,
    state: Option<serde_json::Value>,
    state_committed: bool,
    /// State handed over by `stage_state`, parsed at the next commit.
    staged_state: Option<String>,
    finishing: bool,
    stats: BTreeMap<String, StreamStats>,
    options: SessionOptions,
    observer: Arc<dyn Fn(SessionEvent) + Send + Sync>,
}

impl LakeSession {
    /// Opens a session for `connection`, reading its history. `streams` are the streams this run
    /// may write.
    pub async fn open(
        lake: Lake,
        connection: &str,
        connector: ConnectorInfo,
        streams: BTreeMap<String, StreamMeta>,
        options: SessionOptions,
        observer: Arc<dyn Fn(SessionEvent) + Send + Sync>,
    ) -> Result<Self, CommitError> {
        let started = chrono::Utc::now();
        let tip = Tip::open(&lake, connection).await?;
        let latest = tip.as_ref().map(|t| &t.commit);
        let slots = streams
            .into_iter()
            .map(|(name, mut meta)| {
                let previous = latest.and_then(|c| c.streams.get(&name));
                let schema = previous.map(|s| Arc::new(s.schema.clone()));
                let reread = previous.is_some_and(|s| s.reread);
                // A reset stream's files form one full copy, whatever mode it is read in.
                meta.full_refresh |= reread;
                let policy = options.policies.get(&name).copied().unwrap_or_default();
                (
                    name,
                    Slot {
                        schema,
                        meta,
                        reread,
                        writer: None,
                        file_numbers: Arc::default(),
                        from_parts: Vec::new(),
                        policy,
                    },
                )
            })
            .collect();
        let mut state = latest.and_then(|c| c.state.clone());
        // Until its copy completes, a reset stream starts from no state: a run that failed
        // half-way may have checkpointed a cursor for it, which must not shorten the next copy.
        if let (Some(latest), Some(state)) = (latest, state.as_mut()) {
            let rereading: Vec<&str> = latest
                .streams
                .iter()
                .filter(|(_, s)| s.reread)
                .map(|(name, _)| name.as_str())
                .collect();
            if !rereading.is_empty() {
                remove_stream_keys(state, &rereading, latest.streams.keys().map(String::as_str));
            }
        }
        let run_id = format!(
            "{}-{}",
            started.format("%Y%m%dT%H%M%S%.3fZ"),
            crate::random::random_hex(4)
        );
        Ok(Self {
            lake,
            connection: connection.to_owned(),
            run_id,
            connector,
            tip,
            first_commit: None,
            slots,
            state,
            state_committed: true,
            staged_state: None,
            finishing: false,
            stats: BTreeMap::new(),
            options,
            observer,
        })
    }

    /// The connector of the newest commit, if there is one.
    pub fn last_connector(&self) -> Option<&ConnectorInfo> {
        self.tip.as_ref().map(|t| &t.commit.connector)
    }

    /// The connector state of the newest commit, as JSON text, for `read`.
    pub fn state_json(&self) -> Option<String> {
        self.state.as_ref().map(|s| s.to_string())
    }

    async fn write_batch(&mut self, stream: &str, batch: RecordBatch) -> Result<(), SinkError> {
        let (batch, schema) = self.conform(stream, batch)?;
        let writer = match self.slot_mut(stream)?.writer.take() {
            Some(writer) => writer,
            None => self.new_writer(stream, &schema)?,
        };
        let writer = self.slot_mut(stream)?.writer.insert(writer);
        write(writer, stream, schema, &batch).await
    }

    fn slot(&self, stream: &str) -> Result<&Slot, SinkError> {
        self.slots.get(stream).ok_or_else(|| not_in_run(stream))
    }

    fn slot_mut(&mut self, stream: &str) -> Result<&mut Slot, SinkError> {
        self.slots.get_mut(stream).ok_or_else(|| not_in_run(stream))
    }

    /// Merges `batch`'s schema into `stream`'s (reporting changes) and conforms the batch to the
    /// result, which it returns with the batch.
    pub(super) fn conform(
        &mut self,
        stream: &str,
        batch: RecordBatch,
    ) -> Result<(RecordBatch, SchemaRef), SinkError> {
        let observer = self.observer.clone();
        let slot = self.slot_mut(stream)?;
        let schema = match &slot.schema {
            None => batch.schema(),
            Some(current) => {
                let merged = evolution::merge(current, &batch, slot.policy).map_err(|e| {
                    SinkError::new(format!("stream `{stream}`: schema policy: {e}"))
                })?;
                for change in &merged.changes {
                    observer(SessionEvent::SchemaChanged {
                        stream: stream.to_owned(),
                        change: change.to_string(),
                    });
                }
                merged.schema
            }
        };
        slot.schema = Some(schema.clone());
        let batch = evolution::conform(&batch, &schema).map_err(|e| {
            SinkError::new(format!(
                "stream `{stream}`: batch does not fit the evolved schema: {e}"
            ))
        })?;
        Ok((batch, schema))
    }

    /// A writer of this run's files of `stream`, starting with `schema`.
    pub(super) fn new_writer(
        &self,
        stream: &str,
        schema: &SchemaRef,
    ) -> Result<RollingWriter, SinkError> {
        let slot = self.slot(stream)?;
        let dir = self.lake.connection_root(&self.connection).join(stream);
        Ok(RollingWriter::new(
            self.lake.store().clone(),
            dir,
            &self.run_id,
            schema.clone(),
            self.options.writer.clone(),
        )
        .numbering_files_from(slot.file_numbers.clone()))
    }

    /// Takes finished files of `stream` written by a part's own writer into the next commit.
    pub(super) fn take_part_files(
        &mut self,
        stream: &str,
        files: Vec<DataFile>,
    ) -> Result<(), SinkError> {
        self.slot_mut(stream)?.from_parts.extend(files);
        Ok(())
    }

    /// Checks that `batches` would be taken (stream part of the run, schema policy, conforming)
    /// without writing anything: a push request is refused whole rather than half written.
    pub fn check_fits(&self, batches: &[(String, RecordBatch)]) -> Result<(), SinkError> {
        let mut schemas: BTreeMap<&str, Option<SchemaRef>> = BTreeMap::new();
        for (stream, batch) in batches {
            let slot = self.slot(stream)?;
            let current = schemas
                .entry(stream.as_str())
                .or_insert_with(|| slot.schema.clone());
            let schema = match current {
                None => batch.schema(),
                Some(current) => {
                    evolution::merge(current, batch, slot.policy)
                        .map_err(|e| {
                            SinkError::new(format!("stream `{stream}`: schema policy: {e}"))
                        })?
                        .schema
                }
            };
            evolution::conform(batch, &schema).map_err(|e| {
                SinkError::new(format!(
                    "stream `{stream}`: batch does not fit the evolved schema: {e}"
                ))
            })?;
            *current = Some(schema);
        }
        Ok(())
    }

    /// Records `state` to go with the next commit without committing now: `inlet serve` commits
    /// many requests at once, each of which may checkpoint.
    pub fn stage_state(&mut self, state: String) {
        self.staged_state = Some(state);
    }

    /// What this session committed so far, per stream.
    pub fn stats(&self) -> &BTreeMap<String, StreamStats> {
        &self.stats
    }

    /// Finishes open files and writes a commit with `state`. Does nothing if neither rows nor state
    /// changed since the last commit.
    pub async fn commit(&mut self) -> Result<Option<u64>, SinkError> {
        if let Some(text) = self.staged_state.take() {
            let state: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| SinkError::new(format!("checkpoint state is not JSON: {e}")))?;
            if self.state.as_ref() != Some(&state) {
                self.state = Some(state);
                self.state_committed = false;
            }
        }
        let mut streams = self
            .tip
            .as_ref()
            .map(|t| t.commit.streams.clone())
            .unwrap_or_default();
        let mut ends_full_copy = false;
        let mut new_files = 0;
        let mut new_rows = 0;
        for (name, slot) in &mut self.slots {
            let mut files = std::mem::take(&mut slot.from_parts);
            if let Some(writer) = &mut slot.writer {
                let own = writer.take_files().await;
                files.extend(own.map_err(|e| storage_error(name, e))?);
            }
            let Some(schema) = &slot.schema else { continue };
            new_files += files.len();
            new_rows += files.iter().map(|f| f.rows).sum::<u64>();
            streams.insert(
                name.clone(),
                StreamCommit {
                    schema: schema.as_ref().clone(),
                    primary_key: slot.meta.primary_key.clone(),
                    cursor_field: slot.meta.cursor_field.clone(),
                    files,
                    full_copy: slot.meta.full_refresh.then(|| FullCopy {
                        run_id: self.run_id.clone(),
                        complete: self.finishing,
                        reset: slot.reread,
                    }),
                    reread: slot.reread && !self.finishing,
                },
            );
            ends_full_copy |= slot.meta.full_refresh && self.finishing;
            if self.finishing {
                slot.reread = false;
            }
        }
        if new_files == 0 && self.state_committed && !ends_full_copy {
            return Ok(None);
        }
        let paths: Vec<Path> = streams
            .values()
            .flat_map(|s| s.files.iter().map(|f| Path::from(f.path.as_str())))
            .collect();
        self.lake
            .make_durable(&paths)
            .await
            .map_err(|e| SinkError::new(format!("flushing data files to disk: {e}")))?;
        if std::env::var(FAULT_ENV).as_deref() == Ok("crash-before-commit") {
            eprintln!(
                "{FAULT_ENV}=crash-before-commit: aborting after the data files, before the commit"
            );
            std::process::abort();
        }
        let sequence = self.tip.as_ref().map_or(1, |t| t.commit.sequence + 1);
        let commit = Commit {
            format: commit::FORMAT,
            sequence,
            run_id: self.run_id.clone(),
            committed_at: chrono::Utc::now().to_rfc3339(),
            connector: self.connector.clone(),
            state: self.state.clone(),
            streams,
        };
        let previous_state = self.tip.as_ref().and_then(|t| t.commit.state.as_ref());
        let path = commit::write_commit(&self.lake, &self.connection, &commit, previous_state)
            .await
            .map_err(|e| SinkError::new(e.to_string()))?;
        self.first_commit.get_or_insert(path);
        // Streams of this run only: the others are carried over from earlier commits.
        let this_run = commit
            .streams
            .iter()
            .filter(|(name, _)| self.slots.contains_key(*name));
        for (name, stream) in this_run {
            let stats = self.stats.entry(name.clone()).or_default();
            for file in &stream.files {
                stats.rows += file.rows;
                stats.bytes += file.bytes;
                stats.files += 1;
            }
        }
        let snapshot = self.tip.as_ref().map_or(0, |t| t.snapshot);
        let tip = Tip {
            commit: history::without_files(commit),
            snapshot,
        };
        let tip = self.tip.insert(tip);
        let every = self.options.snapshot_every.unwrap_or(SNAPSHOT_EVERY).max(1);
        if sequence - tip.snapshot >= every {
            // A snapshot only speeds up reading: failing to write one fails nothing.
            match history::write_snapshot(&self.lake, &self.connection, &tip.commit).await {
                Ok(()) => tip.snapshot = sequence,
                Err(error) => tracing::warn!(
                    connection = %self.connection,
                    sequence,
                    "snapshot not written: {error}"
                ),
            }
        }
        self.state_committed = true;
        (self.observer)(SessionEvent::Committed {
            sequence,
            rows: new_rows,
            files: new_files,
        });
        Ok(Some(sequence))
    }

    /// Ends a successful run: commits what is left, then, if this run committed, removes debris
    /// of failed runs.
    pub async fn finish(mut self) -> Result<SessionSummary, SinkError> {
        self.finishing = true;
        self.commit().await?;
        let swept = match &self.first_commit {
            Some(own) => sweep::sweep(&self.lake, &self.connection, own)
                .await
                .map_err(|e| SinkError::new(format!("removing leftover files: {e}")))?,
            None => 0,
        };
        if swept > 0 {
            (self.observer)(SessionEvent::Swept { files: swept });
        }
        Ok(SessionSummary {
            stats: self.stats,
            last_sequence: self.tip.as_ref().map(|t| t.commit.sequence),
            swept,
        })
    }
}

/// What a finished session did.
#[derive(Debug, Clone, Default)]
pub struct SessionSummary {
    /// Per stream: rows, files and bytes committed.
    pub stats: BTreeMap<String, StreamStats>,
    /// The newest commit of the connection.
    pub last_sequence: Option<u64>,
    /// Leftover files removed.
    pub swept: usize,
}

impl BatchSink for LakeSession {
    fn emit<'a>(
        &'a mut self,
        stream: &'a str,
        batch: RecordBatch,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(self.write_batch(stream, batch))
    }

    fn checkpoint(&mut self, state: String) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let state: serde_json::Value = serde_json::from_str(&state)
                .map_err(|e| SinkError::new(format!("checkpoint state is not JSON: {e}")))?;
            if self.state.as_ref() != Some(&state) {
                self.state = Some(state);
                self.state_committed = false;
            }
            self.commit().await.map(|_| ())
        })
    }
}

fn not_in_run(stream: &str) -> SinkError {
    SinkError::new(format!("stream `{stream}` is not part of this run"))
}

/// Writes `batch`, conformed to `schema`, with `writer`; a new schema finishes its open file first.
pub(super) async fn write(
    writer: &mut RollingWriter,
    stream: &str,
    schema: SchemaRef,
    batch: &RecordBatch,
) -> Result<(), SinkError> {
    if writer.schema() != &schema {
        writer
            .set_schema(schema)
            .await
            .map_err(|e| storage_error(stream, e))?;
    }
    writer
        .write(batch)
        .await
        .map_err(|e| storage_error(stream, e))
}

pub(super) fn storage_error(stream: &str, error: parquet::errors::ParquetError) -> SinkError {
    SinkError::new(format!(
        "stream `{stream}`: writing Parquet failed: {error}"
    ))
}
