//! Shared set-up: one runtime with a compile cache, and a quiet observer.

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use inlet_host::connectors::ConnectorRef;
use inlet_host::lake::{Lake, SessionEvent};
use inlet_host::runtime::{
    CallFailure, ConnectorError, RunEvent, Runtime, RuntimeOptions, SandboxPolicy, Violation,
};
use inlet_host::sync::{SyncError, SyncObserver, SyncPlan, SyncReport};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// The runtime every test shares (one engine, one compile cache under the target folder).
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let cache_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("inlet-cache");
        Runtime::new(RuntimeOptions {
            cache_dir: Some(cache_dir),
        })
        .expect("runtime starts")
    })
}

/// Records what a sync reports.
#[derive(Default)]
pub struct Recorder {
    pub schema_changes: Mutex<Vec<(String, String)>>,
    pub logs: Mutex<Vec<String>>,
}

impl SyncObserver for Recorder {
    fn run_event(&self, _: &str, event: RunEvent) {
        if let RunEvent::Log { message, .. } = event {
            self.logs.lock().unwrap().push(message);
        }
    }
    fn session_event(&self, _: &str, event: SessionEvent) {
        if let SessionEvent::SchemaChanged { stream, change } = event {
            self.schema_changes.lock().unwrap().push((stream, change));
        }
    }
}

/// A plan for the component at `wasm` (or a built-in name) with `config`.
pub fn plan(connector: &str, connection: &str, config: serde_json::Value) -> SyncPlan {
    let reference =
        ConnectorRef::resolve(connector, std::path::Path::new("/")).expect("connector resolves");
    let mut plan = SyncPlan::new(connection, reference, config);
    plan.sandbox = SandboxPolicy {
        memory_bytes: 256 << 20,
        ..SandboxPolicy::default()
    };
    plan
}

/// Runs `plan` into `lake`.
pub async fn sync(lake: &Lake, plan: &SyncPlan) -> (Result<SyncReport, SyncError>, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let result = inlet_host::sync::sync(runtime(), lake, plan, recorder.clone()).await;
    (result, recorder)
}

/// The streams the connector of `plan` discovers with its settings.
pub async fn discover(plan: &SyncPlan) -> Vec<inlet_host::runtime::Stream> {
    let connector = inlet_host::sync::load(runtime(), &plan.connection, &plan.connector)
        .expect("the connector loads");
    let prepared = inlet_host::sync::Prepared::new(
        connector,
        &plan.connection,
        &plan.config,
        &plan.sandbox,
        Arc::new(|_| {}),
    )
    .await
    .expect("the connector prepares");
    prepared
        .discover(&plan.config, &plan.sandbox)
        .await
        .expect("discovery succeeds")
}

/// The `id` column (Int64) of `batches`, sorted.
pub fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    let mut ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("id")
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    ids.sort();
    ids
}

/// What a sync that failed in a connector call says (the whole message) and why it failed.
pub fn failed_call(result: Result<SyncReport, SyncError>) -> (String, CallFailure) {
    match result {
        Err(SyncError::Call(error)) => (error.to_string(), *error.failure),
        other => panic!("expected a failed call, got {other:?}"),
    }
}

/// The typed error the connector returned, from a sync that failed with one.
pub fn connector_error(result: Result<SyncReport, SyncError>) -> ConnectorError {
    match failed_call(result).1 {
        CallFailure::Connector(e) => e,
        other => panic!("not a connector error: {other}"),
    }
}

/// The sandbox rule a sync broke.
pub fn violation(result: Result<SyncReport, SyncError>) -> Violation {
    match failed_call(result).1 {
        CallFailure::Violation(v) => v,
        other => panic!("not a violation: {other}"),
    }
}

/// A TCP server answering `ping` with `pong`, for as long as the test runs.
pub fn pong_server() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4];
            if stream.read_exact(&mut buf).is_ok() && &buf == b"ping" {
                let _ = stream.write_all(b"pong");
            }
        }
    });
    port
}
