//! One drain of `inlet serve`: a task that owns the push connector instance and the lake session
//! of a connection, hands each request to the connector, and answers every waiting request once
//! a group commit made its rows durable (every `interval`, or sooner when `max_bytes` wait).
//!
//! What `handle` emits is staged per request and reaches the session only when `handle` succeeds:
//! a request the connector refuses, or that traps, leaves no row behind, and fails alone (the
//! instance is rebuilt; requests already waiting keep their rows). If a commit fails, the waiting
//! senders get 503 and retry; the instance and session are rebuilt from the lake.

use crate::config::toml_to_json;
use crate::connectors::ConnectorRef;
use crate::lake::{
    ConnectorInfo, Lake, LakeSession, SessionEvent, SessionOptions, StreamMeta, StreamStats,
};
use crate::runtime::{
    BatchSink, CallFailure, ConnectorError, PushRequest, PushResponse, PushRun, Runtime,
    SandboxPolicy, SinkError, decode_schema, log_run_event,
};
use crate::sync::{Prepared, SyncError};
use arrow_array::RecordBatch;
use futures::future::BoxFuture;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// What a sender is answered.
#[derive(Debug)]
pub enum Reply {
    /// The rows are durable: the connector's answer.
    Done(PushResponse),
    /// The request itself is wrong (4xx), with the reason.
    Refused { status: u16, reason: String },
    /// Nothing was made durable; try again (503).
    Unavailable(String),
}

struct Job {
    request: PushRequest,
    bytes: u64,
    arrived: Instant,
    reply: oneshot::Sender<Reply>,
    /// Gives the request's bytes back to the drain's pending count when the job is answered.
    _pending: PendingBytes,
}

/// Counters of one drain, for `/metrics`.
#[derive(Debug, Default)]
pub struct DrainMetrics {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
    pub acknowledged: AtomicU64,
    pub refused: AtomicU64,
    pub unavailable: AtomicU64,
    pub commits: AtomicU64,
    pub commit_micros_total: AtomicU64,
    pub commit_micros_max: AtomicU64,
    pub ack_micros_max: AtomicU64,
    /// Rows committed per stream (`logs`, `rejected`...).
    pub rows: std::sync::Mutex<BTreeMap<String, u64>>,
}

/// Everything needed to (re)build a drain's instance and session.
pub struct DrainSpec {
    pub connection: String,
    pub reference: ConnectorRef,
    pub config: serde_json::Value,
    /// The settings as written (secret references unread), for the settings digest.
    pub written_config: serde_json::Value,
    pub policy: SandboxPolicy,
    pub interval: Duration,
    pub max_bytes: u64,
    /// Bytes of requests that may wait for a commit before senders get 503.
    pub max_pending_bytes: u64,
}

impl DrainSpec {
    /// From a connection of `inlet.toml` and its `[drain]` table.
    pub fn from_config(
        name: &str,
        connection: &crate::config::ConnectionConfig,
        reference: ConnectorRef,
        policy: SandboxPolicy,
    ) -> Self {
        let drain = connection.drain.clone().unwrap_or_default();
        Self {
            connection: name.to_owned(),
            reference,
            config: toml_to_json(&connection.config),
            written_config: toml_to_json(connection.written_config()),
            policy,
            interval: Duration::from_millis(drain.commit_interval_ms.unwrap_or(1000).max(1)),
            max_bytes: drain.commit_bytes.unwrap_or(8 << 20).max(1),
            max_pending_bytes: drain.max_pending_bytes.unwrap_or(64 << 20).max(1),
        }
    }
}

/// What one `handle` call emitted and checkpointed, held until the call has succeeded.
#[derive(Default)]
struct Staged {
    batches: Vec<(String, RecordBatch)>,
    state: Option<String>,
}

/// The instance's sink: a per-request stage, moved into the lake session by the drain task only
/// when `handle` returned `Ok`.
#[derive(Clone, Default)]
struct RequestStage(Arc<std::sync::Mutex<Staged>>);

impl RequestStage {
    fn take(&self) -> Staged {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl BatchSink for RequestStage {
    fn emit<'a>(
        &'a mut self,
        stream: &'a str,
        batch: RecordBatch,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        let mut staged = self.0.lock().unwrap_or_else(|e| e.into_inner());
        staged.batches.push((stream.to_owned(), batch));
        Box::pin(async { Ok(()) })
    }

    fn checkpoint(&mut self, state: String) -> BoxFuture<'_, Result<(), SinkError>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).state = Some(state);
        Box::pin(async { Ok(()) })
    }
}

/// A started push instance and the stage its `handle` calls emit into.
struct Instance {
    run: PushRun,
    stage: RequestStage,
}

/// A running drain: where to send requests, and its counters.
#[derive(Clone)]
pub struct Drain {
    tx: mpsc::Sender<Job>,
    stop: Arc<tokio::sync::Notify>,
    /// Bytes of requests handed to the drain and not answered yet.
    pending_bytes: Arc<AtomicU64>,
    max_pending_bytes: u64,
    /// Its counters.
    pub metrics: Arc<DrainMetrics>,
}

impl Drain {
    /// Starts the drain task; the instance is built (and checked) before this returns.
    pub async fn start(
        runtime: Arc<Runtime>,
        lake: Lake,
        spec: DrainSpec,
    ) -> anyhow::Result<(Self, tokio::task::JoinHandle<()>)> {
        let metrics = Arc::new(DrainMetrics::default());
        let max_pending_bytes = spec.max_pending_bytes;
        let mut task = DrainTask {
            runtime,
            lake,
            spec,
            metrics: metrics.clone(),
            session: None,
            instance: None,
            waiting: Vec::new(),
            waiting_bytes: 0,
        };
        task.open().await?;
        let (tx, rx) = mpsc::channel(1024);
        let stop = Arc::new(tokio::sync::Notify::new());
        let handle = tokio::spawn(task.run(rx, stop.clone()));
        let drain = Self {
            tx,
            stop,
            pending_bytes: Arc::new(AtomicU64::new(0)),
            max_pending_bytes,
            metrics,
        };
        Ok((drain, handle))
    }

    /// Stops taking requests; queued ones are handled and everything waiting is committed and
    /// answered before the task ends.
    pub fn stop(&self) {
        self.stop.notify_one();
    }

    /// Whether the drain's task has ended (stopped, or died): no request will be answered.
    pub fn stopped(&self) -> bool {
        self.tx.is_closed()
    }

    /// Hands a request to the drain and waits for its answer. Beyond `max_pending_bytes` of
    /// requests waiting for a commit, the sender is told to come back later instead.
    pub async fn submit(&self, request: PushRequest, bytes: u64) -> Reply {
        let pending = self.pending_bytes.fetch_add(bytes, Ordering::AcqRel);
        let held = PendingBytes(self.pending_bytes.clone(), bytes);
        if pending > 0 && pending + bytes > self.max_pending_bytes {
            self.metrics.unavailable.fetch_add(1, Ordering::Relaxed);
            return Reply::Unavailable(format!(
                "the drain is busy: {pending} bytes wait for a commit (max_pending_bytes = {}); retry shortly",
                self.max_pending_bytes
            ));
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            request,
            bytes,
            arrived: Instant::now(),
            reply,
            _pending: held,
        };
        if self.tx.send(job).await.is_err() {
            return Reply::Unavailable("the drain is shutting down".into());
        }
        answer
            .await
            .unwrap_or_else(|_| Reply::Unavailable("the drain stopped".into()))
    }
}

/// A request's share of the drain's pending bytes, given back when dropped: when the job is
/// answered (or refused before it was queued), not when its sender goes away.
struct PendingBytes(Arc<AtomicU64>, u64);

impl Drop for PendingBytes {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::AcqRel);
    }
}

struct DrainTask {
    runtime: Arc<Runtime>,
    lake: Lake,
    spec: DrainSpec,
    metrics: Arc<DrainMetrics>,
    session: Option<LakeSession>,
    instance: Option<Instance>,
    waiting: Vec<(Job, PushResponse)>,
    waiting_bytes: u64,
}

impl DrainTask {
    /// Builds what is missing: the session from the lake's newest commit, and an instance opened
    /// with the session's state.
    async fn open(&mut self) -> anyhow::Result<()> {
        if self.session.is_some() && self.instance.is_some() {
            return Ok(());
        }
        let spec = &self.spec;
        let connection = spec.connection.as_str();
        let connector = crate::sync::load(&self.runtime, connection, &spec.reference)?;
        let observer = Arc::new(log_run_event);
        let prepared =
            Prepared::new(connector, connection, &spec.config, &spec.policy, observer).await?;
        let streams = prepared.discover(&spec.config, &spec.policy).await?;
        let mut metas = BTreeMap::new();
        let mut declared = HashMap::new();
        for stream in &streams {
            metas.insert(
                stream.name.clone(),
                StreamMeta {
                    primary_key: stream.primary_key.clone(),
                    cursor_field: stream.cursor_field.clone(),
                    full_refresh: false,
                },
            );
            let schema = match &stream.schema {
                Some(bytes) => {
                    Some(decode_schema(bytes).map_err(|reason| SyncError::BadSchema {
                        connection: connection.to_owned(),
                        connector: prepared.connector.name().to_owned(),
                        stream: stream.name.clone(),
                        reason,
                    })?)
                }
                None => None,
            };
            declared.insert(stream.name.clone(), schema);
        }
        if self.session.is_none() {
            let drain_name = connection.to_owned();
            let info = ConnectorInfo {
                name: prepared.spec.name.clone(),
                version: prepared.spec.version.clone(),
                digest: prepared.connector.digest().to_owned(),
                settings: Some(prepared.settings_digest(&spec.written_config)),
            };
            let session = LakeSession::open(
                self.lake.clone(),
                connection,
                info,
                metas,
                SessionOptions::default(),
                Arc::new(move |event| {
                    if let SessionEvent::SchemaChanged { stream, change } = event {
                        tracing::warn!(drain = %drain_name, stream, "schema change: {change}");
                    }
                }),
            )
            .await?;
            self.session = Some(session);
        }
        let state = self.session.as_ref().and_then(LakeSession::state_json);
        let bytes = spec.reference.bytes()?;
        let push = self
            .runtime
            .load_push(&spec.reference.display_name(), &bytes)?;
        let mut run = push
            .start(
                &spec.policy,
                prepared.grant.clone(),
                prepared.labels.clone(),
            )
            .await?;
        let stage = RequestStage::default();
        run.open(
            &spec.config.to_string(),
            state.as_deref(),
            declared,
            Box::new(stage.clone()),
        )
        .await?;
        // Requests that wait for the commit changed the old instance's memory (heroku-logplex:
        // the frame ids it has seen); the new one hears them again, and what they emit is dropped
        // (their rows are in the session already).
        for (job, _) in &self.waiting {
            stage.take();
            run.handle(&job.request)
                .await
                .map_err(|e| anyhow::anyhow!("replaying a waiting request: {e}"))?;
        }
        stage.take();
        self.instance = Some(Instance { run, stage });
        Ok(())
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Job>, stop: Arc<tokio::sync::Notify>) {
        let mut tick = tokio::time::interval(self.spec.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => self.take(job).await,
                    None => break,
                },
                _ = stop.notified() => rx.close(),
                _ = tick.tick() => {
                    if !self.waiting.is_empty() {
                        self.commit().await;
                    }
                }
            }
        }
        // Shutting down: what waits is committed and answered.
        if !self.waiting.is_empty() {
            self.commit().await;
        }
    }

    async fn take(&mut self, job: Job) {
        self.metrics.requests.fetch_add(1, Ordering::Relaxed);
        self.metrics.bytes.fetch_add(job.bytes, Ordering::Relaxed);
        if let Err(error) = self.open().await {
            tracing::error!(drain = %self.spec.connection, "cannot reopen the drain: {error:#}");
            self.answer(
                job,
                Reply::Unavailable(format!("the drain cannot start: {error:#}")),
            );
            return;
        }
        let Some(instance) = self.instance.as_mut() else {
            return self.answer(job, Reply::Unavailable("the drain has no instance".into()));
        };
        instance.stage.take();
        let outcome = instance.run.handle(&job.request).await;
        let staged = instance.stage.take();
        let response = match outcome {
            Ok(response) => response,
            Err(error) => return self.fail_request(job, *error.failure),
        };
        let checked = match &self.session {
            Some(session) => session.check_fits(&staged.batches),
            None => Err(SinkError::new("no open session")),
        };
        if let Err(error) = checked {
            // The same request would fail the same way again: refuse it alone.
            return self.answer(
                job,
                Reply::Refused {
                    status: 422,
                    reason: format!("the request's rows cannot be stored: {error}"),
                },
            );
        }
        if let Err(error) = self.apply(staged).await {
            // Part of the request may be in the session now: nothing waiting can be committed.
            let message = format!("the request's rows could not be written: {error}");
            tracing::error!(drain = %self.spec.connection, "{message}");
            self.answer(job, Reply::Unavailable(message.clone()));
            self.abandon_waiting(&message);
            return;
        }
        self.waiting_bytes += job.bytes;
        self.waiting.push((job, response));
        if self.waiting_bytes >= self.spec.max_bytes {
            self.commit().await;
        }
    }

    /// Moves a successful request's rows and state into the session.
    async fn apply(&mut self, staged: Staged) -> Result<(), SinkError> {
        let session = self
            .session
            .as_mut()
            .ok_or_else(|| SinkError::new("no open session"))?;
        for (stream, batch) in staged.batches {
            session.emit(&stream, batch).await?;
        }
        if let Some(state) = staged.state {
            session.stage_state(state);
        }
        Ok(())
    }

    /// Answers a request whose `handle` failed. Nothing it emitted was kept. A connector error is
    /// the request's own answer; a trap or a broken limit also costs the instance, which is
    /// rebuilt for the next request while the waiting requests keep their rows.
    fn fail_request(&mut self, job: Job, failure: CallFailure) {
        match failure {
            CallFailure::Connector(reason) => {
                let status = match reason {
                    ConnectorError::Auth(_) => 401,
                    ConnectorError::Config(_)
                    | ConnectorError::Data(_)
                    | ConnectorError::NotFound(_) => 400,
                    _ => 503,
                };
                let text = CallFailure::Connector(reason).to_string();
                let reply = if status == 503 {
                    Reply::Unavailable(text)
                } else {
                    Reply::Refused {
                        status,
                        reason: text,
                    }
                };
                self.answer(job, reply);
            }
            other => {
                tracing::error!(drain = %self.spec.connection, "the connector failed on a request: {other}");
                self.instance = None;
                self.answer(
                    job,
                    Reply::Unavailable(format!("the connector failed: {other}")),
                );
            }
        }
    }

    /// Drops the session and instance (rebuilt from the lake) and tells every waiting sender to
    /// retry.
    fn abandon_waiting(&mut self, message: &str) {
        self.session = None;
        self.instance = None;
        self.waiting_bytes = 0;
        for (waiting, _) in std::mem::take(&mut self.waiting) {
            self.answer(waiting, Reply::Unavailable(message.to_owned()));
        }
    }

    async fn commit(&mut self) {
        let started = Instant::now();
        let outcome = self.commit_session().await;
        let micros = started.elapsed().as_micros() as u64;
        match outcome {
            Ok(stats) => {
                self.metrics.commits.fetch_add(1, Ordering::Relaxed);
                self.metrics
                    .commit_micros_total
                    .fetch_add(micros, Ordering::Relaxed);
                max(&self.metrics.commit_micros_max, micros);
                *self.metrics.rows.lock().unwrap_or_else(|e| e.into_inner()) =
                    stats.iter().map(|(s, st)| (s.clone(), st.rows)).collect();
                self.waiting_bytes = 0;
                for (job, response) in std::mem::take(&mut self.waiting) {
                    self.answer(job, Reply::Done(response));
                }
            }
            Err(error) => {
                tracing::error!(drain = %self.spec.connection, "commit failed: {error}");
                self.abandon_waiting(&format!("the rows could not be made durable: {error}"));
            }
        }
    }

    /// Asks the instance for its state (a new instance, opened from the last commit, if a request
    /// broke the old one) and commits the session with it.
    async fn commit_session(&mut self) -> Result<BTreeMap<String, StreamStats>, SinkError> {
        if self.instance.is_none() {
            self.open()
                .await
                .map_err(|e| SinkError::new(format!("reopening the connector: {e:#}")))?;
        }
        let (Some(instance), Some(session)) = (self.instance.as_mut(), self.session.as_mut())
        else {
            return Err(SinkError::new("no open session"));
        };
        let state = instance
            .run
            .state()
            .await
            .map_err(|e| SinkError::new(format!("the connector's state: {e}")))?;
        if let Some(state) = state {
            session.stage_state(state);
        }
        session.commit().await?;
        Ok(session.stats().clone())
    }

    fn answer(&self, job: Job, reply: Reply) {
        let counter = match &reply {
            Reply::Done(_) => &self.metrics.acknowledged,
            Reply::Refused { .. } => &self.metrics.refused,
            Reply::Unavailable(_) => &self.metrics.unavailable,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        max(
            &self.metrics.ack_micros_max,
            job.arrived.elapsed().as_micros() as u64,
        );
        // A sender that hung up gets nothing; its rows (if committed) stay.
        let _ = job.reply.send(reply);
    }
}

fn max(slot: &AtomicU64, value: u64) {
    slot.fetch_max(value, Ordering::Relaxed);
}
