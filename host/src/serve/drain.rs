//! One drain of `inlet serve`: a task that owns the push connector instance and the lake session
//! of a connection, hands each request to the connector, and answers every waiting request once
//! a group commit made its rows durable (every `interval`, or sooner when `max_bytes` wait).
//! If a commit fails, or the instance breaks mid-request, the waiting senders get 503 and retry;
//! the instance and session are rebuilt from the lake for the next request.

use crate::config::toml_to_json;
use crate::connectors::ConnectorRef;
use crate::lake::{ConnectorInfo, Lake, LakeSession, SessionOptions, StreamMeta};
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
use tokio::sync::{Mutex, mpsc, oneshot};

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
    pub policy: SandboxPolicy,
    pub interval: Duration,
    pub max_bytes: u64,
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
            policy,
            interval: Duration::from_millis(drain.commit_interval_ms.unwrap_or(1000).max(1)),
            max_bytes: drain.commit_bytes.unwrap_or(8 << 20).max(1),
        }
    }
}

/// The lake session, shared by the instance's sink and the drain task that commits it.
#[derive(Clone)]
struct SharedSession(Arc<Mutex<LakeSession>>);

impl BatchSink for SharedSession {
    fn emit<'a>(
        &'a mut self,
        stream: &'a str,
        batch: RecordBatch,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        let session = self.0.clone();
        Box::pin(async move { session.lock().await.emit(stream, batch).await })
    }

    fn checkpoint(&mut self, state: String) -> BoxFuture<'_, Result<(), SinkError>> {
        let session = self.0.clone();
        Box::pin(async move {
            session.lock().await.stage_state(state);
            Ok(())
        })
    }
}

struct Active {
    run: PushRun,
    session: SharedSession,
}

/// A running drain: where to send requests, and its counters.
#[derive(Clone)]
pub struct Drain {
    tx: mpsc::Sender<Job>,
    stop: Arc<tokio::sync::Notify>,
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
        let active = open(&runtime, &lake, &spec).await?;
        let (tx, rx) = mpsc::channel(1024);
        let task = DrainTask {
            runtime,
            lake,
            spec,
            metrics: metrics.clone(),
            active: Some(active),
            waiting: Vec::new(),
            waiting_bytes: 0,
        };
        let stop = Arc::new(tokio::sync::Notify::new());
        let handle = tokio::spawn(task.run(rx, stop.clone()));
        Ok((Self { tx, stop, metrics }, handle))
    }

    /// Stops taking requests; queued ones are handled and everything waiting is committed and
    /// answered before the task ends.
    pub fn stop(&self) {
        self.stop.notify_one();
    }

    /// Hands a request to the drain and waits for its answer.
    pub async fn submit(&self, request: PushRequest, bytes: u64) -> Reply {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            request,
            bytes,
            arrived: Instant::now(),
            reply,
        };
        if self.tx.send(job).await.is_err() {
            return Reply::Unavailable("the drain is shutting down".into());
        }
        answer
            .await
            .unwrap_or_else(|_| Reply::Unavailable("the drain stopped".into()))
    }
}

struct DrainTask {
    runtime: Arc<Runtime>,
    lake: Lake,
    spec: DrainSpec,
    metrics: Arc<DrainMetrics>,
    active: Option<Active>,
    waiting: Vec<(Job, PushResponse)>,
    waiting_bytes: u64,
}

/// Builds the instance and session of a drain from the lake's newest state.
async fn open(runtime: &Runtime, lake: &Lake, spec: &DrainSpec) -> anyhow::Result<Active> {
    let connection = spec.connection.as_str();
    let connector = crate::sync::load(runtime, connection, &spec.reference)?;
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
            Some(bytes) => Some(decode_schema(bytes).map_err(|reason| SyncError::BadSchema {
                connection: connection.to_owned(),
                connector: prepared.connector.name().to_owned(),
                stream: stream.name.clone(),
                reason,
            })?),
            None => None,
        };
        declared.insert(stream.name.clone(), schema);
    }
    let info = ConnectorInfo {
        name: prepared.spec.name.clone(),
        version: prepared.spec.version.clone(),
        digest: prepared.connector.digest().to_owned(),
    };
    let session = LakeSession::open(
        lake.clone(),
        connection,
        info,
        metas,
        SessionOptions::default(),
        Arc::new(|_| {}),
    )
    .await?;
    let state = session.state_json();
    let session = SharedSession(Arc::new(Mutex::new(session)));
    let bytes = spec.reference.bytes()?;
    let push = runtime.load_push(&spec.reference.display_name(), &bytes)?;
    let mut run = push
        .start(
            &spec.policy,
            prepared.grant.clone(),
            prepared.labels.clone(),
        )
        .await?;
    run.open(
        &spec.config.to_string(),
        state.as_deref(),
        declared,
        Box::new(session.clone()),
    )
    .await?;
    Ok(Active { run, session })
}

fn max(slot: &AtomicU64, value: u64) {
    slot.fetch_max(value, Ordering::Relaxed);
}

impl DrainTask {
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
        if self.active.is_none() {
            match open(&self.runtime, &self.lake, &self.spec).await {
                Ok(active) => self.active = Some(active),
                Err(error) => {
                    tracing::error!(drain = %self.spec.connection, "cannot reopen the drain: {error:#}");
                    self.answer(
                        job,
                        Reply::Unavailable(format!("the drain cannot start: {error}")),
                    );
                    return;
                }
            }
        }
        let active = self.active.as_mut().expect("opened above");
        match active.run.handle(&job.request).await {
            Ok(response) => {
                self.waiting_bytes += job.bytes;
                self.waiting.push((job, response));
                if self.waiting_bytes >= self.spec.max_bytes {
                    self.commit().await;
                }
            }
            Err(error) => match *error.failure {
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
                    // The instance is broken, and rows of this request may be half emitted:
                    // nothing waiting is committed; every sender retries against a new instance.
                    tracing::error!(drain = %self.spec.connection, "the connector failed: {other}");
                    self.active = None;
                    let message = format!("the connector failed: {other}");
                    self.answer(job, Reply::Unavailable(message.clone()));
                    for (waiting, _) in std::mem::take(&mut self.waiting) {
                        self.answer(waiting, Reply::Unavailable(message.clone()));
                    }
                    self.waiting_bytes = 0;
                }
            },
        }
    }

    async fn commit(&mut self) {
        let started = Instant::now();
        let outcome = match &mut self.active {
            Some(active) => {
                let state = active.run.state().await;
                let mut session = active.session.0.lock().await;
                let result = match state {
                    Ok(state) => {
                        if let Some(state) = state {
                            session.stage_state(state);
                        }
                        session.commit().await
                    }
                    Err(error) => Err(SinkError::new(format!("the connector's state: {error}"))),
                };
                (result, session.stats().clone())
            }
            None => (Err(SinkError::new("no open session")), BTreeMap::new()),
        };
        let micros = started.elapsed().as_micros() as u64;
        self.waiting_bytes = 0;
        let waiting = std::mem::take(&mut self.waiting);
        match outcome {
            (Ok(_), stats) => {
                self.metrics.commits.fetch_add(1, Ordering::Relaxed);
                self.metrics
                    .commit_micros_total
                    .fetch_add(micros, Ordering::Relaxed);
                max(&self.metrics.commit_micros_max, micros);
                *self.metrics.rows.lock().expect("metrics lock") =
                    stats.iter().map(|(s, st)| (s.clone(), st.rows)).collect();
                for (job, response) in waiting {
                    self.answer(job, Reply::Done(response));
                }
            }
            (Err(error), _) => {
                tracing::error!(drain = %self.spec.connection, "commit failed: {error}");
                self.active = None;
                for (job, _) in waiting {
                    self.answer(
                        job,
                        Reply::Unavailable(format!("the rows could not be made durable: {error}")),
                    );
                }
            }
        }
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
