//! One sandboxed run of a connector: its store, the host functions it imports, and its calls.

use super::bindings::inlet::connector::{host, types};
use super::bindings::{
    BatchFormat, ConfiguredStream, ConnectorError, ConnectorSpec, LogLevel, SourceConnector,
    SourceConnectorPre, Stream,
};
use super::emit;
use super::http::{HttpGuard, HttpMetrics, HttpPolicy, InletHttpHooks};
use super::name_lookup::{PinnedLookupView, PinnedNames};
use super::resolve;
use super::sandbox::{MemoryBudget, NetworkGrant, SandboxPolicy, Violation};
use super::sender::PinnedSender;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsCtxView};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Where the rows and checkpoints of a `read` go (the lake, or stdout for `inlet read`).
pub trait BatchSink: std::any::Any + Send {
    /// Receives one batch of `stream`, already held to its declared schema.
    fn emit<'a>(
        &'a mut self,
        stream: &'a str,
        batch: RecordBatch,
    ) -> BoxFuture<'a, Result<(), SinkError>>;
    /// Makes everything received so far durable with `state`.
    fn checkpoint(&mut self, state: String) -> BoxFuture<'_, Result<(), SinkError>>;
}

/// A failure of the sink (storage, schema policy). Ends the run.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    /// What went wrong, naming the stream and the rule.
    pub message: String,
}

impl SinkError {
    /// A sink error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Something a connector reports while running.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// A log message (already redacted).
    Log { level: LogLevel, message: String },
    /// Rows read so far in a stream.
    Progress {
        stream: String,
        rows: u64,
        total: Option<u64>,
    },
}

/// Who is running: names for messages, secrets to redact, and where events go.
#[derive(Clone)]
pub struct RunLabels {
    /// The connection name.
    pub connection: String,
    /// The connector name.
    pub connector: String,
    /// Secret values to redact from anything the connector says.
    pub secrets: Vec<String>,
    /// Receives logs and progress.
    pub observer: Arc<dyn Fn(RunEvent) + Send + Sync>,
}

impl RunLabels {
    /// Labels that print logs through `tracing` and ignore progress.
    pub fn new(connection: &str, connector: &str) -> Self {
        Self {
            connection: connection.to_owned(),
            connector: connector.to_owned(),
            secrets: Vec::new(),
            observer: Arc::new(log_run_event),
        }
    }

    /// Replaces every secret value in `text` with `***`.
    pub fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .filter(|s| !s.is_empty())
            .fold(text.to_owned(), |acc, secret| {
                acc.replace(secret.as_str(), "***")
            })
    }
}

/// The default observer: logs go to `tracing`, progress is dropped.
pub fn log_run_event(event: RunEvent) {
    if let RunEvent::Log { level, message } = event {
        log_event(level, &message)
    }
}

/// Forwards a connector log line to `tracing`.
fn log_event(level: LogLevel, message: &str) {
    match level {
        LogLevel::Debug => tracing::debug!(target: "connector", "{message}"),
        LogLevel::Info => tracing::info!(target: "connector", "{message}"),
        LogLevel::Warn => tracing::warn!(target: "connector", "{message}"),
        LogLevel::Error => tracing::error!(target: "connector", "{message}"),
    }
}

/// A call that did not succeed, with everything needed to say where and why.
#[derive(Debug, thiserror::Error)]
#[error("connection `{connection}` (connector `{connector}`){}: `{call}` failed: {failure}", stream.as_ref().map(|s| format!(", stream `{s}`")).unwrap_or_default())]
pub struct CallError {
    /// The connection name.
    pub connection: String,
    /// The connector name.
    pub connector: String,
    /// The export that was called.
    pub call: &'static str,
    /// The stream the connector was emitting into, when known.
    pub stream: Option<String>,
    /// What happened.
    pub failure: Box<CallFailure>,
}

/// What made a call fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallFailure {
    /// The connector returned a typed error.
    #[error("{}", ConnectorErrorText(.0))]
    Connector(ConnectorError),
    /// The connector broke a sandbox rule.
    #[error("{0}")]
    Violation(Violation),
    /// Storing its output failed.
    #[error("{0}")]
    Sink(SinkError),
    /// The connector trapped (a panic, an unreachable, a stack overflow).
    #[error("the connector trapped: {message}{}", if stderr.is_empty() { String::new() } else { format!("\n  connector stderr: {stderr}") })]
    Trap { message: String, stderr: String },
    /// The host failed around the call (a bug in Inlet or the machine).
    #[error("host error: {0}")]
    Host(String),
}

struct ConnectorErrorText<'a>(&'a ConnectorError);

impl std::fmt::Display for ConnectorErrorText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        super::bindings::describe_connector_error(self.0, f)
    }
}

/// The state of one store: WASI context, limits, and what the host imports need.
pub struct RunData {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    http_hooks: InletHttpHooks,
    pinned_names: PinnedNames,
    table: ResourceTable,
    budget: MemoryBudget,
    pub(super) cpu_ticks: u64,
    pub(super) labels: RunLabels,
    pub(super) sink: Option<Box<dyn BatchSink>>,
    pub(super) declared: HashMap<String, Option<SchemaRef>>,
    pub(super) current_stream: Option<String>,
}

impl WasiView for RunData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl RunData {
    /// What the pinned `ip-name-lookup` works on (see `name_lookup`).
    pub(super) fn name_lookup(&mut self) -> PinnedLookupView<'_> {
        PinnedLookupView {
            sockets: WasiSocketsCtxView {
                ctx: self.wasi.sockets(),
                table: &mut self.table,
            },
            names: &self.pinned_names,
        }
    }
}

impl WasiHttpView for RunData {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

/// One started run: a store and the instantiated component.
pub struct Run {
    store: Store<RunData>,
    bindings: SourceConnector,
    watch: Watch,
}

/// How a call into the component ended: timed out, trapped, or returned the connector's result.
pub(super) type Outcome<T> =
    Result<wasmtime::Result<Result<T, ConnectorError>>, tokio::time::error::Elapsed>;

/// What the host watches during a run, to explain a failure.
pub(super) struct Watch {
    pub(super) policy: SandboxPolicy,
    /// Network and credential refusals, in order.
    refused: Arc<Mutex<Vec<Violation>>>,
    pub(super) http: Arc<HttpGuard>,
    stderr: MemoryOutputPipe,
}

/// A fresh store for one run: WASI with the socket check, wasi:http hooks, the memory budget and
/// the CPU deadline; and the watch that explains a failure.
pub(super) fn new_store(
    engine: &wasmtime::Engine,
    policy: &SandboxPolicy,
    grant: NetworkGrant,
    labels: RunLabels,
) -> (Store<RunData>, Watch) {
    let refused = Arc::new(Mutex::new(Vec::new()));
    let http_policy = HttpPolicy {
        connection: labels.connection.clone(),
        origins: grant.http.clone(),
        grants: policy.grants.clone(),
        ..HttpPolicy::default()
    };
    // A granted secret is redacted too: a server may echo it back into what the connector logs.
    let mut labels = labels;
    labels.secrets.extend(
        policy
            .grants
            .iter()
            .filter_map(|g| g.secret().map(|s| s.expose().to_owned())),
    );
    let http = Arc::new(HttpGuard::new(http_policy, refused.clone()));
    let sender = Arc::new(PinnedSender::new(
        resolve::or_system(policy.resolver.as_ref()),
        policy.allow_private_network,
    ));
    let pinned_names = PinnedNames::new(&grant, refused.clone());
    let watch = Watch {
        policy: policy.clone(),
        refused,
        http: http.clone(),
        stderr: MemoryOutputPipe::new(1 << 20),
    };
    let mut wasi = WasiCtxBuilder::new();
    wasi.stderr(watch.stderr.clone());
    // TCP and name lookups are enabled even without destinations, so that an attempt is seen and
    // reported as a policy refusal rather than as an obscure "not supported" inside the
    // connector. Lookups go through `name_lookup`, which answers declared names only.
    let allowed = grant;
    let refusals = watch.refused.clone();
    wasi.allow_tcp(true)
        .allow_ip_name_lookup(true)
        .socket_addr_check(move |address, use_| {
            let ok = match use_ {
                // std's TcpStream binds the wildcard address before it connects.
                SocketAddrUse::TcpBind => address.ip().is_unspecified() && address.port() == 0,
                SocketAddrUse::TcpConnect => allowed.allows(&address),
                _ => false,
            };
            if !ok {
                let declared = allowed.destinations.join(", ");
                refusals
                    .lock()
                    .expect("refusal list is never poisoned")
                    .push(Violation::Network {
                        address,
                        declared: if declared.is_empty() {
                            "none".to_owned()
                        } else {
                            declared
                        },
                    });
            }
            Box::pin(async move { ok })
        });
    let data = RunData {
        wasi: wasi.build(),
        http: WasiHttpCtx::new(),
        http_hooks: InletHttpHooks {
            guard: http,
            sender,
            tape: policy.http_tape.clone(),
            secrets: Arc::new(labels.secrets.clone()),
        },
        pinned_names,
        table: ResourceTable::new(),
        budget: MemoryBudget::new(policy.memory_bytes),
        cpu_ticks: 0,
        labels,
        sink: None,
        declared: HashMap::new(),
        current_stream: None,
    };
    let mut store = Store::new(engine, data);
    store.limiter(|data| &mut data.budget);
    let cpu_limit_ticks =
        (policy.cpu_time.as_millis() / super::EPOCH_TICK.as_millis()).max(1) as u64;
    let cpu_time = policy.cpu_time;
    store.epoch_deadline_callback(move |mut context| {
        let data = context.data_mut();
        data.cpu_ticks += 1;
        if data.cpu_ticks > cpu_limit_ticks {
            return Err(wasmtime::Error::new(Violation::Cpu(cpu_time)));
        }
        Ok(wasmtime::UpdateDeadline::Yield(1))
    });
    store.set_epoch_deadline(1);
    (store, watch)
}

impl Run {
    pub(super) async fn start(
        pre: &SourceConnectorPre<RunData>,
        policy: &SandboxPolicy,
        grant: NetworkGrant,
        labels: RunLabels,
    ) -> Result<Self, CallError> {
        let (mut store, watch) = new_store(pre.engine(), policy, grant, labels);
        let outcome =
            tokio::time::timeout(policy.wall_time, pre.instantiate_async(&mut store)).await;
        match outcome {
            Ok(Ok(bindings)) => Ok(Self {
                store,
                bindings,
                watch,
            }),
            Ok(Err(e)) => Err(watch.explain(&store, "instantiate", Err(e))),
            Err(_) => Err(watch.explain(
                &store,
                "instantiate",
                Ok(CallFailure::Violation(Violation::WallClock(
                    policy.wall_time,
                ))),
            )),
        }
    }

    /// Calls `spec`.
    pub async fn spec(mut self) -> Result<ConnectorSpec, CallError> {
        let wall = self.watch.policy.wall_time;
        let call = self
            .bindings
            .inlet_connector_source()
            .call_spec(&mut self.store);
        let outcome = tokio::time::timeout(wall, call).await;
        self.finish("spec", outcome.map(|r| r.map(Ok)))
    }

    /// Calls `check` with the JSON config.
    pub async fn check(mut self, config: &str) -> Result<(), CallError> {
        let wall = self.watch.policy.wall_time;
        let call = self
            .bindings
            .inlet_connector_source()
            .call_check(&mut self.store, config);
        let outcome = tokio::time::timeout(wall, call).await;
        self.finish("check", outcome)
    }

    /// Calls `discover` with the JSON config.
    pub async fn discover(mut self, config: &str) -> Result<Vec<Stream>, CallError> {
        let wall = self.watch.policy.wall_time;
        let call = self
            .bindings
            .inlet_connector_source()
            .call_discover(&mut self.store, config);
        let outcome = tokio::time::timeout(wall, call).await;
        self.finish("discover", outcome)
    }

    /// Calls `partitions` for `stream`: at most `count` descriptors, or none when it cannot be split.
    /// The run stays alive: the connector may hold what the parts share (a database snapshot) in
    /// this instance, so the caller keeps it until every part has been read.
    pub async fn partitions(
        &mut self,
        config: &str,
        stream: &str,
        count: u32,
    ) -> Result<Vec<String>, CallError> {
        let wall = self.watch.policy.wall_time;
        let call = self.bindings.inlet_connector_source().call_partitions(
            &mut self.store,
            config,
            stream,
            count,
        );
        let outcome = tokio::time::timeout(wall, call).await;
        self.conclude("partitions", outcome)
    }

    /// Calls `read`, sending what the connector emits to `sink`. `declared` maps each requested
    /// stream to its declared schema. Returns the sink on success, so the caller can commit.
    pub async fn read(
        mut self,
        config: &str,
        streams: &[ConfiguredStream],
        declared: HashMap<String, Option<SchemaRef>>,
        state: Option<&str>,
        sink: Box<dyn BatchSink>,
    ) -> Result<Box<dyn BatchSink>, CallError> {
        let data = self.store.data_mut();
        data.sink = Some(sink);
        data.declared = declared;
        let wall = self.watch.policy.wall_time;
        let call = self.bindings.inlet_connector_source().call_read(
            &mut self.store,
            config,
            streams,
            state,
        );
        let outcome = tokio::time::timeout(wall, call).await;
        let sink = self.store.data_mut().sink.take();
        self.finish("read", outcome)?;
        Ok(sink.expect("the sink stays in the store for the whole call"))
    }

    /// What the run did over HTTP so far.
    pub fn http_metrics(&self) -> HttpMetrics {
        self.watch.http.metrics()
    }

    fn finish<T>(self, call: &'static str, outcome: Outcome<T>) -> Result<T, CallError> {
        self.conclude(call, outcome)
    }

    /// What `finish` does, leaving the run alive.
    fn conclude<T>(&self, call: &'static str, outcome: Outcome<T>) -> Result<T, CallError> {
        let http = self.watch.http.metrics();
        if http.requests + http.refused > 0 {
            let statuses: Vec<String> = http
                .statuses
                .iter()
                .map(|(status, count)| format!("{status}x{count}"))
                .collect();
            let labels = &self.store.data().labels;
            (labels.observer)(RunEvent::Log {
                level: LogLevel::Info,
                message: format!(
                    "`{call}`: {} HTTP requests ({}), {} refused, {} bytes received",
                    http.requests,
                    statuses.join(" "),
                    http.refused,
                    http.bytes_received
                ),
            });
        }
        match self.watch.settle(outcome) {
            Ok(value) => Ok(value),
            Err(failure) => Err(self.watch.explain(&self.store, call, failure)),
        }
    }
}

impl Watch {
    /// The value of a call that ended, or what made it fail: a refused connection or request
    /// fails even a call whose connector carried on (`explain` reports the refusal).
    pub(super) fn settle<T>(
        &self,
        outcome: Outcome<T>,
    ) -> Result<T, Result<CallFailure, wasmtime::Error>> {
        match outcome {
            Ok(Ok(Ok(value))) if self.refused().is_none() => Ok(value),
            Ok(Ok(Ok(_))) => Err(Ok(CallFailure::Host("a refused network attempt".into()))),
            Ok(Ok(Err(error))) => Err(Ok(CallFailure::Connector(error))),
            Ok(Err(trap)) => Err(Err(trap)),
            Err(_) => Err(Ok(CallFailure::Violation(Violation::WallClock(
                self.policy.wall_time,
            )))),
        }
    }

    pub(super) fn refused(&self) -> Option<Violation> {
        let refused = self.refused.lock().expect("refusal list is never poisoned");
        refused.first().cloned()
    }

    /// Turns the end of a failed call (a known failure, or a trap) into a [`CallError`]: a sandbox
    /// refusal wins over whatever the connector made of it; traps are classified by their cause.
    pub(super) fn explain(
        &self,
        store: &Store<RunData>,
        call: &'static str,
        outcome: Result<CallFailure, wasmtime::Error>,
    ) -> CallError {
        let data = store.data();
        let redact = |text: &str| data.labels.redact(text);
        let failure = if let Some(violation) = self.refused() {
            CallFailure::Violation(violation)
        } else {
            match outcome {
                Ok(CallFailure::Connector(error)) => {
                    CallFailure::Connector(redact_error(error, &data.labels))
                }
                Ok(failure) => failure,
                Err(trap) => classify_trap(trap, &redact(&stderr_tail(&self.stderr))),
            }
        };
        CallError {
            connection: data.labels.connection.clone(),
            connector: data.labels.connector.clone(),
            call,
            stream: data.current_stream.clone(),
            failure: Box::new(failure),
        }
    }
}

fn classify_trap(error: wasmtime::Error, stderr: &str) -> CallFailure {
    if let Some(violation) = error.downcast_ref::<Violation>() {
        return CallFailure::Violation(violation.clone());
    }
    if let Some(sink) = error.downcast_ref::<SinkError>() {
        return CallFailure::Sink(SinkError::new(sink.message.clone()));
    }
    let message = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    CallFailure::Trap {
        message,
        stderr: stderr.to_owned(),
    }
}

fn stderr_tail(pipe: &MemoryOutputPipe) -> String {
    let contents = pipe.contents();
    let text = String::from_utf8_lossy(&contents);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

fn redact_error(error: ConnectorError, labels: &RunLabels) -> ConnectorError {
    use ConnectorError as E;
    match error {
        E::Config(m) => E::Config(labels.redact(&m)),
        E::Auth(m) => E::Auth(labels.redact(&m)),
        E::NotFound(m) => E::NotFound(labels.redact(&m)),
        E::RateLimited(mut r) => {
            r.message = labels.redact(&r.message);
            E::RateLimited(r)
        }
        E::Transient(m) => E::Transient(labels.redact(&m)),
        E::Data(m) => E::Data(labels.redact(&m)),
        E::Internal(m) => E::Internal(labels.redact(&m)),
    }
}

impl types::Host for RunData {}

impl host::Host for RunData {
    async fn emit(
        &mut self,
        stream: String,
        format: BatchFormat,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<(), ConnectorError>> {
        self.current_stream = Some(stream.clone());
        let Some(declared) = self.declared.get(&stream) else {
            let requested: Vec<&str> = self.declared.keys().map(String::as_str).collect();
            return Err(wasmtime::Error::new(Violation::Emit(format!(
                "stream `{stream}` was not requested (requested: {})",
                requested.join(", ")
            ))));
        };
        let declared = declared.clone();
        let batches = match emit::decode(format, data, declared.as_ref()) {
            Ok(batches) => batches,
            Err(message) => {
                return Ok(Err(ConnectorError::Data(format!(
                    "stream `{stream}`: {message}"
                ))));
            }
        };
        let sink = self.sink.as_mut().ok_or_else(|| {
            wasmtime::Error::new(Violation::Emit(
                "`emit` is only allowed during `read`".into(),
            ))
        })?;
        for batch in batches {
            let batch = match &declared {
                Some(schema) => emit::hold_to_declared(batch, schema)
                    .map_err(|m| wasmtime::Error::new(Violation::Schema(m)))?,
                None => batch,
            };
            sink.emit(&stream, batch)
                .await
                .map_err(wasmtime::Error::new)?;
        }
        Ok(Ok(()))
    }

    async fn checkpoint(&mut self, state: String) -> wasmtime::Result<Result<(), ConnectorError>> {
        if serde_json::from_str::<serde_json::Value>(&state).is_err() {
            return Ok(Err(ConnectorError::Internal(
                "checkpoint state is not valid JSON".into(),
            )));
        }
        let sink = self.sink.as_mut().ok_or_else(|| {
            wasmtime::Error::new(Violation::Emit(
                "`checkpoint` is only allowed during `read`".into(),
            ))
        })?;
        sink.checkpoint(state).await.map_err(wasmtime::Error::new)?;
        Ok(Ok(()))
    }

    async fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        let message = self.labels.redact(&message);
        (self.labels.observer)(RunEvent::Log { level, message });
        Ok(())
    }

    async fn credential(
        &mut self,
        name: String,
        scopes: Vec<String>,
    ) -> wasmtime::Result<Result<String, ConnectorError>> {
        Ok(self
            .http_hooks
            .guard
            .placeholder(&name, scopes)
            .map_err(ConnectorError::Auth))
    }

    async fn progress(
        &mut self,
        stream: String,
        rows: u64,
        total: Option<u64>,
    ) -> wasmtime::Result<()> {
        (self.labels.observer)(RunEvent::Progress {
            stream,
            rows,
            total,
        });
        Ok(())
    }
}
