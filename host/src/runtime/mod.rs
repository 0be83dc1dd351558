//! The connector runtime: one wasmtime engine, a compile cache, and sandboxed runs of components.
//!
//! [`Runtime::load`] turns component bytes into a [`Connector`] (validated, compiled once, with an
//! `InstancePre` ready); [`Connector::start`] makes a [`Run`]: a fresh store with its own sandbox
//! policy, in which `spec`, `check`, `discover` or `read` are called.

mod address_class;
mod bindings;
mod cache;
mod emit;
pub mod http;
mod name_lookup;
pub mod push;
mod resolve;
mod run;
pub mod sandbox;
mod sender;
mod tape;

pub use address_class::{AddressClass, classify};
pub use bindings::push::{Request as PushRequest, Response as PushResponse};
pub use bindings::{
    BatchFormat, ConfiguredStream, ConnectorError, ConnectorSpec, Destination, LogLevel, Stream,
    SyncMode,
};
pub use cache::{CacheOutcome, CompileCache};
pub use emit::{decode_schema, describe};
pub use http::HttpMetrics;
pub use push::{PushConnector, PushRun};
pub use resolve::{Resolve, SystemResolver};
pub use run::{BatchSink, CallError, CallFailure, Run, RunEvent, SinkError, log_run_event};
pub use sandbox::{HttpOrigin, NetworkGrant, PolicyError, SandboxPolicy, Violation};
pub use tape::{HttpTape, Recorder, Replayer, TapeError};

use bindings::{SOURCE_EXPORT, SourceConnectorPre};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

/// How often the engine's epoch advances; the granularity of CPU limits.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("`{name}` is not a WebAssembly file (it does not start with the `\\0asm` magic bytes)")]
    NotWasm { name: String },
    #[error(
        "`{name}` is a core WebAssembly module, not a component: build it with `cargo build --target wasm32-wasip2`"
    )]
    CoreModule { name: String },
    #[error(
        "`{name}` does not export `{wanted}` (it exports: {exports}); it was built for another world or contract version"
    )]
    WrongWorld {
        name: String,
        wanted: String,
        exports: String,
    },
    #[error("`{name}` cannot be compiled: {reason}")]
    Compile { name: String, reason: String },
    #[error("`{name}` needs imports this host does not provide: {reason}")]
    Link { name: String, reason: String },
}

/// Settings of the runtime itself.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

/// The engine, linker and compile cache shared by every run in the process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<run::RunData>,
    cache: CompileCache,
}

impl Runtime {
    /// Creates the engine and starts its epoch ticker.
    pub fn new(options: RuntimeOptions) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // `INLET_PROFILE=perfmap` writes /tmp/perf-<pid>.map so `perf` can name connector code;
        // `jitdump` writes the code itself (`perf record -k 1`, then `perf inject --jit`) so
        // `perf annotate` can show its instructions.
        match std::env::var("INLET_PROFILE").as_deref() {
            Ok("perfmap") => _ = config.profiler(wasmtime::ProfilingStrategy::PerfMap),
            Ok("jitdump") => _ = config.profiler(wasmtime::ProfilingStrategy::JitDump),
            _ => {}
        }
        config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Disable);
        let engine = Engine::new(&config)?;
        start_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        // Name lookups answer declared TCP destinations only, with their checked addresses.
        name_lookup::add_to_linker(&mut linker)?;
        // Only wasi:http's own interfaces: wasi:io and the rest come from wasmtime_wasi above.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        bindings::SourceConnector::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |data| data,
        )?;
        let cache = CompileCache::new(&engine, options.cache_dir);
        Ok(Self {
            engine,
            linker,
            cache,
        })
    }

    /// Validates and compiles (or loads from cache) the component `bytes`, called `name` in messages.
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<Connector, LoadError> {
        let (pre, outcome, digest) = self.prepare(name, bytes, SOURCE_EXPORT)?;
        let exports_push = pre
            .component()
            .component_type()
            .exports(&self.engine)
            .any(|(export, _)| export == bindings::push::PUSH_EXPORT);
        let pre = SourceConnectorPre::new(pre).map_err(|e| LoadError::Link {
            name: name.to_owned(),
            reason: format!("{e:#}"),
        })?;
        Ok(Connector {
            inner: Arc::new(ConnectorInner {
                name: name.to_owned(),
                digest,
                outcome,
                exports_push,
                pre,
            }),
        })
    }

    /// Like [`Runtime::load`], for a push connector (one that exports `push` too).
    pub fn load_push(&self, name: &str, bytes: &[u8]) -> Result<push::PushConnector, LoadError> {
        let (pre, outcome, digest) = self.prepare(name, bytes, bindings::push::PUSH_EXPORT)?;
        let pre = bindings::push::PushConnectorPre::new(pre).map_err(|e| LoadError::Link {
            name: name.to_owned(),
            reason: format!("{e:#}"),
        })?;
        Ok(push::PushConnector::new(name, digest, outcome, pre))
    }

    /// Header check, compile (or cache hit), export check, link.
    fn prepare(
        &self,
        name: &str,
        bytes: &[u8],
        wanted: &str,
    ) -> Result<
        (
            wasmtime::component::InstancePre<run::RunData>,
            CacheOutcome,
            String,
        ),
        LoadError,
    > {
        let started = Instant::now();
        check_header(name, bytes)?;
        let (component, outcome, digest) =
            self.cache
                .load(&self.engine, bytes)
                .map_err(|e| LoadError::Compile {
                    name: name.to_owned(),
                    reason: format!("{e:#}"),
                })?;
        let exports: Vec<String> = component
            .component_type()
            .exports(&self.engine)
            .map(|(export, _)| export.to_owned())
            .collect();
        if !exports.iter().any(|e| e == wanted) {
            let exports = if exports.is_empty() {
                "nothing".to_owned()
            } else {
                exports.join(", ")
            };
            return Err(LoadError::WrongWorld {
                name: name.to_owned(),
                wanted: wanted.to_owned(),
                exports,
            });
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link {
                name: name.to_owned(),
                reason: format!("{e:#}"),
            })?;
        tracing::debug!(connector = name, ?outcome, elapsed = ?started.elapsed(), "component loaded");
        Ok((pre, outcome, digest))
    }
}

fn check_header(name: &str, bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotWasm {
            name: name.to_owned(),
        });
    }
    // Core modules carry version 1, layer 0; components carry layer 1.
    if bytes[6..8] == [0, 0] {
        return Err(LoadError::CoreModule {
            name: name.to_owned(),
        });
    }
    Ok(())
}

fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("inlet-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("the epoch thread can be started");
}

/// A loaded connector component, ready to be started many times.
#[derive(Clone)]
pub struct Connector {
    inner: Arc<ConnectorInner>,
}

struct ConnectorInner {
    name: String,
    digest: String,
    outcome: CacheOutcome,
    /// Whether it also exports `push` (rows arrive through `inlet serve`, not `read`).
    exports_push: bool,
    pre: SourceConnectorPre<run::RunData>,
}

impl Connector {
    /// The name used in messages (the built-in name or the file name).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether the component is a push connector (it exports `push` besides `source`).
    pub fn exports_push(&self) -> bool {
        self.inner.exports_push
    }

    /// SHA-256 of the component bytes.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// Whether loading hit the compile cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.inner.outcome
    }

    /// Starts a run: a fresh store under `policy`, allowed to reach `grant`.
    pub async fn start(
        &self,
        policy: &SandboxPolicy,
        grant: NetworkGrant,
        labels: run::RunLabels,
    ) -> Result<Run, CallError> {
        Run::start(&self.inner.pre, policy, grant, labels).await
    }
}

pub use run::RunLabels;
