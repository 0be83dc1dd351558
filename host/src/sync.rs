//! One sync of one connection: load the connector, discover, read into a lake session, commit.

use crate::connectors::ConnectorRef;
use crate::lake::{
    self, ConnectorInfo, IncompatiblePolicy, Lake, LakeSession, SessionEvent, SessionOptions,
    StreamMeta, StreamStats, WriterOptions,
};
use crate::runtime::{
    CallError, ConfiguredStream, Connector, ConnectorSpec, LoadError, NetworkGrant, PolicyError,
    RunEvent, RunLabels, Runtime, SandboxPolicy, SinkError, Stream, SyncMode, decode_schema,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything that decides what one sync does.
#[derive(Debug, Clone)]
pub struct SyncPlan {
    /// The connection name (the lake folder).
    pub connection: String,
    /// The connector.
    pub connector: ConnectorRef,
    /// The connector's settings.
    pub config: serde_json::Value,
    /// Only these streams; all when `None`.
    pub select: Option<Vec<String>>,
    /// Sync mode per stream; the stream's default otherwise.
    pub sync_modes: HashMap<String, SyncMode>,
    /// Read every stream in full, whatever its mode.
    pub full_refresh: bool,
    /// Incompatible-change policy per stream.
    pub policies: HashMap<String, IncompatiblePolicy>,
    /// The sandbox.
    pub sandbox: SandboxPolicy,
    /// Parquet sizing.
    pub writer: WriterOptions,
}

impl SyncPlan {
    /// A plan with defaults: all streams, their default modes, the default sandbox.
    pub fn new(connection: &str, connector: ConnectorRef, config: serde_json::Value) -> Self {
        Self {
            connection: connection.to_owned(),
            connector,
            config,
            select: None,
            sync_modes: HashMap::new(),
            full_refresh: false,
            policies: HashMap::new(),
            sandbox: SandboxPolicy::default(),
            writer: WriterOptions::default(),
        }
    }
}

/// Why a sync failed. Every case names the connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    #[error("connection `{connection}`: cannot read connector `{connector}`: {reason}")]
    Read {
        connection: String,
        connector: String,
        reason: String,
    },
    #[error("connection `{connection}`: {source}")]
    Load {
        connection: String,
        source: LoadError,
    },
    #[error("connection `{connection}` (connector `{connector}`): sandbox policy: {source}")]
    Policy {
        connection: String,
        connector: String,
        source: PolicyError,
    },
    #[error(transparent)]
    Call(#[from] CallError),
    #[error(
        "connection `{connection}` (connector `{connector}`): stream `{stream}` does not exist (streams: {available})"
    )]
    UnknownStream {
        connection: String,
        connector: String,
        stream: String,
        available: String,
    },
    #[error(
        "connection `{connection}` (connector `{connector}`): stream `{stream}` does not support {mode} (supported: {supported})"
    )]
    UnsupportedMode {
        connection: String,
        connector: String,
        stream: String,
        mode: SyncMode,
        supported: String,
    },
    #[error(
        "connection `{connection}` (connector `{connector}`): stream `{stream}` declares an unreadable schema: {reason}"
    )]
    BadSchema {
        connection: String,
        connector: String,
        stream: String,
        reason: String,
    },
    #[error("connection `{connection}`: lake: {source}")]
    Lake {
        connection: String,
        source: lake::CommitError,
    },
    #[error(
        "connection `{connection}` (connector `{connector}`): {source}; nothing after the last commit was kept"
    )]
    Sink {
        connection: String,
        connector: String,
        source: SinkError,
    },
}

/// What a finished sync did.
#[derive(Debug, Clone)]
pub struct SyncReport {
    /// The connection.
    pub connection: String,
    /// The connector name.
    pub connector: String,
    /// Rows, files and bytes committed per stream.
    pub streams: BTreeMap<String, StreamStats>,
    /// The newest commit afterwards.
    pub last_sequence: Option<u64>,
    /// Leftover files of failed runs removed.
    pub swept: usize,
    /// How long it took.
    pub duration: Duration,
}

/// Receives what a sync reports while it runs.
pub trait SyncObserver: Send + Sync {
    /// An event from the connector (log, progress).
    fn run_event(&self, connection: &str, event: RunEvent);
    /// An event from the lake (schema change, commit).
    fn session_event(&self, connection: &str, event: SessionEvent);
}

/// Loads the component of `reference`.
pub fn load(
    runtime: &Runtime,
    connection: &str,
    reference: &ConnectorRef,
) -> Result<Connector, SyncError> {
    let bytes = reference.bytes().map_err(|e| SyncError::Read {
        connection: connection.to_owned(),
        connector: reference.display_name(),
        reason: e.to_string(),
    })?;
    runtime
        .load(&reference.display_name(), &bytes)
        .map_err(|source| SyncError::Load {
            connection: connection.to_owned(),
            source,
        })
}

/// Calls `spec` in a run with no network.
pub async fn spec(connector: &Connector, labels: RunLabels) -> Result<ConnectorSpec, SyncError> {
    let run = connector
        .start(&SandboxPolicy::default(), NetworkGrant::none(), labels)
        .await?;
    Ok(run.spec().await?)
}

/// A run of `connector` for `config`: its spec, secrets and network grant resolved.
pub struct Prepared {
    /// The connector.
    pub connector: Connector,
    /// Its spec.
    pub spec: ConnectorSpec,
    /// Labels for its runs (with the secrets to redact).
    pub labels: RunLabels,
    /// What it may reach.
    pub grant: NetworkGrant,
}

impl Prepared {
    /// Gets the spec, then resolves the declared destinations against `config` and `policy`.
    pub async fn new(
        connector: Connector,
        connection: &str,
        config: &serde_json::Value,
        policy: &SandboxPolicy,
        observer: Arc<dyn Fn(RunEvent) + Send + Sync>,
    ) -> Result<Self, SyncError> {
        let mut labels = RunLabels::new(connection, connector.name());
        labels.observer = observer;
        let spec = spec(&connector, labels.clone()).await?;
        labels.secrets = spec
            .secret_fields
            .iter()
            .filter_map(|field| {
                config
                    .get(field)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            })
            .collect();
        let grant = NetworkGrant::resolve(&spec.destinations, config, policy)
            .await
            .map_err(|source| SyncError::Policy {
                connection: connection.to_owned(),
                connector: connector.name().to_owned(),
                source,
            })?;
        Ok(Self {
            connector,
            spec,
            labels,
            grant,
        })
    }

    /// Calls `check`.
    pub async fn check(
        &self,
        config: &serde_json::Value,
        policy: &SandboxPolicy,
    ) -> Result<(), SyncError> {
        let run = self
            .connector
            .start(policy, self.grant.clone(), self.labels.clone())
            .await?;
        Ok(run.check(&config.to_string()).await?)
    }

    /// Calls `discover`.
    pub async fn discover(
        &self,
        config: &serde_json::Value,
        policy: &SandboxPolicy,
    ) -> Result<Vec<Stream>, SyncError> {
        let run = self
            .connector
            .start(policy, self.grant.clone(), self.labels.clone())
            .await?;
        Ok(run.discover(&config.to_string()).await?)
    }
}

/// Runs one sync of `plan` into `lake`.
pub async fn sync(
    runtime: &Runtime,
    lake: &Lake,
    plan: &SyncPlan,
    observer: Arc<dyn SyncObserver>,
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let connection = plan.connection.as_str();
    let connector = load(runtime, connection, &plan.connector)?;
    let run_observer = {
        let observer = observer.clone();
        let connection = connection.to_owned();
        Arc::new(move |event| observer.run_event(&connection, event))
    };
    let prepared = Prepared::new(
        connector,
        connection,
        &plan.config,
        &plan.sandbox,
        run_observer,
    )
    .await?;
    let name = prepared.connector.name().to_owned();
    let streams = prepared.discover(&plan.config, &plan.sandbox).await?;
    let selected = select_streams(plan, &name, &streams)?;

    let mut metas = BTreeMap::new();
    let mut declared = HashMap::new();
    for (stream, _) in &selected {
        metas.insert(
            stream.name.clone(),
            StreamMeta {
                primary_key: stream.primary_key.clone(),
                cursor_field: stream.cursor_field.clone(),
            },
        );
        let schema = match &stream.schema {
            Some(bytes) => Some(decode_schema(bytes).map_err(|reason| SyncError::BadSchema {
                connection: connection.to_owned(),
                connector: name.clone(),
                stream: stream.name.clone(),
                reason,
            })?),
            None => None,
        };
        declared.insert(stream.name.clone(), schema);
    }
    let session_observer = {
        let observer = observer.clone();
        let connection = connection.to_owned();
        Arc::new(move |event| observer.session_event(&connection, event))
    };
    let info = ConnectorInfo {
        name: prepared.spec.name.clone(),
        version: prepared.spec.version.clone(),
        digest: prepared.connector.digest().to_owned(),
    };
    let options = SessionOptions {
        writer: plan.writer.clone(),
        policies: plan.policies.clone(),
    };
    let session = LakeSession::open(
        lake.clone(),
        connection,
        info,
        metas,
        options,
        session_observer,
    )
    .await
    .map_err(|source| SyncError::Lake {
        connection: connection.to_owned(),
        source,
    })?;
    let state = session.state_json();
    let configured: Vec<ConfiguredStream> = selected
        .iter()
        .map(|(s, mode)| ConfiguredStream {
            name: s.name.clone(),
            sync_mode: *mode,
        })
        .collect();

    let run = prepared
        .connector
        .start(
            &plan.sandbox,
            prepared.grant.clone(),
            prepared.labels.clone(),
        )
        .await?;
    let sink = run
        .read(
            &plan.config.to_string(),
            &configured,
            declared,
            state.as_deref(),
            Box::new(session),
        )
        .await?;
    let session = into_session(sink);
    let summary = session.finish().await.map_err(|source| SyncError::Sink {
        connection: connection.to_owned(),
        connector: name.clone(),
        source,
    })?;
    Ok(SyncReport {
        connection: connection.to_owned(),
        connector: name,
        streams: summary.stats,
        last_sequence: summary.last_sequence,
        swept: summary.swept,
        duration: started.elapsed(),
    })
}

/// The read hands back the sink it was given; it is always the session passed in.
fn into_session(sink: Box<dyn crate::runtime::BatchSink>) -> LakeSession {
    let any: Box<dyn std::any::Any> = sink;
    *any.downcast::<LakeSession>()
        .expect("the sink given to read is a LakeSession")
}

/// Picks the streams to read and their modes.
fn select_streams<'a>(
    plan: &SyncPlan,
    connector: &str,
    streams: &'a [Stream],
) -> Result<Vec<(&'a Stream, SyncMode)>, SyncError> {
    let available = || {
        streams
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let wanted: Vec<&'a Stream> = match &plan.select {
        None => streams.iter().collect(),
        Some(names) => names
            .iter()
            .map(|name| {
                streams
                    .iter()
                    .find(|s| &s.name == name)
                    .ok_or_else(|| SyncError::UnknownStream {
                        connection: plan.connection.clone(),
                        connector: connector.to_owned(),
                        stream: name.clone(),
                        available: available(),
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    for name in plan.sync_modes.keys().chain(plan.policies.keys()) {
        if !streams.iter().any(|s| &s.name == name) {
            return Err(SyncError::UnknownStream {
                connection: plan.connection.clone(),
                connector: connector.to_owned(),
                stream: name.clone(),
                available: available(),
            });
        }
    }
    wanted
        .into_iter()
        .map(|stream| {
            let default = stream
                .sync_modes
                .first()
                .copied()
                .unwrap_or(SyncMode::FullRefresh);
            let mode = if plan.full_refresh {
                SyncMode::FullRefresh
            } else {
                plan.sync_modes
                    .get(&stream.name)
                    .copied()
                    .unwrap_or(default)
            };
            if !stream.sync_modes.contains(&mode) {
                return Err(SyncError::UnsupportedMode {
                    connection: plan.connection.clone(),
                    connector: connector.to_owned(),
                    stream: stream.name.clone(),
                    mode,
                    supported: stream
                        .sync_modes
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            Ok((stream, mode))
        })
        .collect()
}
