//! One sync of one connection: load the connector, discover, read into a lake session, commit.

use crate::connectors::ConnectorRef;
use crate::lake::{
    self, ConnectorInfo, IncompatiblePolicy, Lake, LakeSession, PartSink, SessionEvent,
    SessionOptions, StreamMeta, StreamStats, WriterOptions,
};
use crate::runtime::{
    CallError, ConfiguredStream, Connector, ConnectorSpec, LoadError, NetworkGrant, PolicyError,
    Run, RunEvent, RunLabels, Runtime, SandboxPolicy, SinkError, Stream, SyncMode, decode_schema,
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
    /// Parallel parts per stream for full-refresh reads (connector instances reading at once).
    pub parallel: HashMap<String, u32>,
    /// Parallel parts for streams not in `parallel`.
    pub default_parallel: u32,
    /// The sandbox.
    pub sandbox: SandboxPolicy,
    /// Parquet sizing.
    pub writer: WriterOptions,
    /// Refuse to sync when the connection's newest commit came from another connector or other
    /// settings: set when the connection name was not chosen by the user (`inlet sync` without
    /// `--connection`), so two sources cannot share a cursor by accident.
    pub same_source_only: bool,
    /// The settings as written, secret references unread (`inlet.toml`): what the commit's
    /// settings digest is taken of, so a secret's value is never hashed into a manifest.
    pub written_config: Option<serde_json::Value>,
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
            parallel: HashMap::new(),
            default_parallel: 1,
            sandbox: SandboxPolicy::default(),
            writer: WriterOptions::default(),
            same_source_only: false,
            written_config: None,
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
    #[error("connection `{connection}` (connector `{connector}`): {source}")]
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
    #[error(
        "connection `{connection}` in this lake holds another source ({existing}); syncing `{connector}` with these settings into it would take over its state and cursors. Name this source with `--connection <name>`, or pass `--connection {connection}` to go on with the existing one"
    )]
    OtherSource {
        connection: String,
        connector: String,
        existing: String,
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
            // Values read from secret references, wherever they sit in the settings.
            .chain(crate::secrets::known())
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

    /// A digest of `config` without the connector's secret fields: the same source gives the
    /// same digest, and a password change does not count as another source.
    pub fn settings_digest(&self, config: &serde_json::Value) -> String {
        use sha2::{Digest, Sha256};
        let mut config = config.clone();
        if let Some(object) = config.as_object_mut() {
            for field in &self.spec.secret_fields {
                object.remove(field);
            }
        }
        // serde_json's maps are sorted by key, so equal settings print equally.
        let digest = Sha256::digest(config.to_string().as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// Starts a run (a fresh store) under `policy` with this connector's grant and labels.
    pub async fn start(&self, policy: &SandboxPolicy) -> Result<Run, SyncError> {
        Ok(self
            .connector
            .start(policy, self.grant.clone(), self.labels.clone())
            .await?)
    }

    /// Calls `check`.
    pub async fn check(
        &self,
        config: &serde_json::Value,
        policy: &SandboxPolicy,
    ) -> Result<(), SyncError> {
        Ok(self.start(policy).await?.check(&config.to_string()).await?)
    }

    /// Calls `discover`.
    pub async fn discover(
        &self,
        config: &serde_json::Value,
        policy: &SandboxPolicy,
    ) -> Result<Vec<Stream>, SyncError> {
        Ok(self
            .start(policy)
            .await?
            .discover(&config.to_string())
            .await?)
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
    // Settings the host fills in because only it knows them (the connection's name).
    let with_slot;
    let plan = match crate::replication_slot::with_default_slot(
        &prepared.spec.name,
        connection,
        &plan.config,
    ) {
        Some(config) => {
            with_slot = SyncPlan {
                config,
                ..plan.clone()
            };
            &with_slot
        }
        None => plan,
    };
    let name = prepared.connector.name().to_owned();
    let streams = prepared.discover(&plan.config, &plan.sandbox).await?;
    let selected = select_streams(plan, &name, &streams)?;

    let mut metas = BTreeMap::new();
    let mut declared = HashMap::new();
    for (stream, mode) in &selected {
        metas.insert(
            stream.name.clone(),
            StreamMeta {
                primary_key: stream.primary_key.clone(),
                cursor_field: stream.cursor_field.clone(),
                full_refresh: *mode == SyncMode::FullRefresh,
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
        settings: Some(
            prepared.settings_digest(plan.written_config.as_ref().unwrap_or(&plan.config)),
        ),
    };
    let (info_name, info_settings) = (info.name.clone(), info.settings.clone().unwrap_or_default());
    let options = SessionOptions {
        writer: plan.writer.clone(),
        policies: plan.policies.clone(),
        snapshot_every: None,
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
    if plan.same_source_only
        && let Some(last) = session.last_connector()
        && (last.name != info_name || last.settings.as_ref().is_some_and(|s| *s != info_settings))
    {
        return Err(SyncError::OtherSource {
            connection: connection.to_owned(),
            connector: info_name,
            existing: format!(
                "connector `{}`{}",
                last.name,
                last.settings
                    .as_deref()
                    .map(|s| format!(" with settings {s}"))
                    .unwrap_or_default()
            ),
        });
    }
    let state = session.state_json();

    // Full-refresh streams with `parallel > 1` are split by the connector and read by several
    // instances at once; their files are committed together before the other streams are read.
    let mut whole = Vec::new();
    let mut parts = Vec::new();
    // The runs that answered `partitions` stay alive until every part has been read: the
    // connector may hold what its parts share there (PostgreSQL keeps the exported snapshot of
    // the parts' reads in its connection).
    let mut splitters = Vec::new();
    for (stream, mode) in &selected {
        let degree = plan
            .parallel
            .get(&stream.name)
            .copied()
            .unwrap_or(plan.default_parallel);
        if degree > 1 && *mode == SyncMode::FullRefresh {
            let mut run = prepared.start(&plan.sandbox).await?;
            let descriptors = run
                .partitions(&plan.config.to_string(), &stream.name, degree)
                .await?;
            if descriptors.len() > 1 {
                parts.extend(descriptors.into_iter().map(|d| (stream.name.clone(), d)));
                splitters.push(run);
                continue;
            }
        }
        whole.push((stream, *mode));
    }
    let session = if parts.is_empty() {
        session
    } else {
        let read = read_partitions(&prepared, plan, &declared, state.as_deref(), session, parts);
        let session = read.await;
        // Every part has ended: the splitting instances (and what they held) can go.
        drop(splitters);
        session?
    };
    if whole.is_empty() {
        return finish(session, plan, name, started).await;
    }
    let configured: Vec<ConfiguredStream> = whole
        .iter()
        .map(|(s, mode)| ConfiguredStream {
            name: s.name.clone(),
            sync_mode: *mode,
            partition: None,
        })
        .collect();

    let run = prepared.start(&plan.sandbox).await?;
    let sink = run
        .read(
            &plan.config.to_string(),
            &configured,
            declared,
            state.as_deref(),
            Box::new(session),
        )
        .await?;
    finish(given_back::<LakeSession>(sink), plan, name, started).await
}

async fn finish(
    session: LakeSession,
    plan: &SyncPlan,
    connector: String,
    started: Instant,
) -> Result<SyncReport, SyncError> {
    let connection = plan.connection.clone();
    let summary = session.finish().await.map_err(|source| SyncError::Sink {
        connection: connection.clone(),
        connector: connector.clone(),
        source,
    })?;
    Ok(SyncReport {
        connection,
        connector,
        streams: summary.stats,
        last_sequence: summary.last_sequence,
        swept: summary.swept,
        duration: started.elapsed(),
    })
}

/// Reads `(stream, descriptor)` parts concurrently, each in its own instance on its own task,
/// into `session`; commits them once all succeeded. Any failure fails the sync with nothing of
/// the parts committed.
async fn read_partitions(
    prepared: &Prepared,
    plan: &SyncPlan,
    declared: &HashMap<String, Option<arrow_schema::SchemaRef>>,
    state: Option<&str>,
    session: LakeSession,
    parts: Vec<(String, String)>,
) -> Result<LakeSession, SyncError> {
    let shared = Arc::new(tokio::sync::Mutex::new(session));
    let config = plan.config.to_string();
    let mut tasks = Vec::new();
    for (stream, descriptor) in parts {
        let connector = prepared.connector.clone();
        let (policy, grant, labels) = (
            plan.sandbox.clone(),
            prepared.grant.clone(),
            prepared.labels.clone(),
        );
        let configured = vec![ConfiguredStream {
            name: stream.clone(),
            sync_mode: SyncMode::FullRefresh,
            partition: Some(descriptor),
        }];
        let declared = HashMap::from([(stream.clone(), declared.get(&stream).cloned().flatten())]);
        let (config, state) = (config.clone(), state.map(str::to_owned));
        let sink = Box::new(PartSink::new(shared.clone()));
        let connection = plan.connection.clone();
        tasks.push(tokio::spawn(async move {
            let run = connector.start(&policy, grant, labels).await?;
            let sink = run
                .read(&config, &configured, declared, state.as_deref(), sink)
                .await?;
            let finished = given_back::<PartSink>(sink).finish().await;
            finished.map_err(|source| SyncError::Sink {
                connection,
                connector: connector.name().to_owned(),
                source,
            })
        }));
    }
    let mut failure = None;
    for index in 0..tasks.len() {
        let outcome = match (&mut tasks[index]).await {
            Ok(result) => result,
            Err(panic) => Err(SyncError::Sink {
                connection: plan.connection.clone(),
                connector: prepared.connector.name().to_owned(),
                source: SinkError::new(format!("a partition task failed: {panic}")),
            }),
        };
        if let Err(error) = outcome {
            // The other parts cannot be committed without this one: stop them.
            tasks.iter().for_each(|t| t.abort());
            failure = Some(error);
            break;
        }
    }
    if let Some(error) = failure {
        return Err(error);
    }
    let mut session = Arc::try_unwrap(shared)
        .unwrap_or_else(|_| unreachable!("every part task has ended"))
        .into_inner();
    session.commit().await.map_err(|source| SyncError::Sink {
        connection: plan.connection.clone(),
        connector: prepared.connector.name().to_owned(),
        source,
    })?;
    Ok(session)
}

/// The sink a read hands back: always the one it was given (a `LakeSession`, or a part's
/// `PartSink`), so the downcast to that type cannot fail.
fn given_back<T: 'static>(sink: Box<dyn crate::runtime::BatchSink>) -> T {
    let any: Box<dyn std::any::Any> = sink;
    *any.downcast::<T>()
        .expect("a read hands back the sink it was given")
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
    for name in plan
        .sync_modes
        .keys()
        .chain(plan.policies.keys())
        .chain(plan.parallel.keys())
    {
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
