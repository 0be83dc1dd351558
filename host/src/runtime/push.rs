//! Push connectors: one long-lived instance per drain that handles request after request in the
//! run's sandbox. CPU and wall-clock limits apply per request; any failure other than the
//! connector's own typed error leaves the instance unusable, and the caller starts a new one.

use super::bindings::push::{PushConnector as Bindings, PushConnectorPre, Request, Response};
use super::cache::CacheOutcome;
use super::run::{
    BatchSink, CallError, CallFailure, Outcome, RunData, RunLabels, Watch, new_store,
};
use super::sandbox::{NetworkGrant, SandboxPolicy, Violation};
use arrow_schema::SchemaRef;
use std::collections::HashMap;
use std::sync::Arc;
use wasmtime::Store;

/// A loaded push connector, ready to be started.
#[derive(Clone)]
pub struct PushConnector {
    name: String,
    digest: String,
    outcome: CacheOutcome,
    pre: Arc<PushConnectorPre<RunData>>,
}

impl PushConnector {
    pub(super) fn new(
        name: &str,
        digest: String,
        outcome: CacheOutcome,
        pre: PushConnectorPre<RunData>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            digest,
            outcome,
            pre: Arc::new(pre),
        }
    }

    /// The name used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 of the component bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Whether loading hit the compile cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.outcome
    }

    /// Instantiates the connector in a fresh store under `policy`.
    pub async fn start(
        &self,
        policy: &SandboxPolicy,
        grant: NetworkGrant,
        labels: RunLabels,
    ) -> Result<PushRun, CallError> {
        let (mut store, watch) = new_store(self.pre.engine(), policy, grant, labels);
        let outcome =
            tokio::time::timeout(policy.wall_time, self.pre.instantiate_async(&mut store)).await;
        let failure = match outcome {
            Ok(Ok(bindings)) => {
                return Ok(PushRun {
                    store,
                    bindings,
                    watch,
                });
            }
            Ok(Err(trap)) => Err(trap),
            Err(_) => Ok(CallFailure::Violation(Violation::WallClock(
                policy.wall_time,
            ))),
        };
        Err(watch.explain(&store, "instantiate", failure))
    }
}

/// A running push instance.
pub struct PushRun {
    store: Store<RunData>,
    bindings: Bindings,
    watch: Watch,
}

impl PushRun {
    /// Calls `open` with the settings and the newest durable state; rows of later `handle` calls
    /// go to `sink`, held to the `declared` schemas.
    pub async fn open(
        &mut self,
        config: &str,
        state: Option<&str>,
        declared: HashMap<String, Option<SchemaRef>>,
        sink: Box<dyn BatchSink>,
    ) -> Result<(), CallError> {
        let data = self.store.data_mut();
        data.declared = declared;
        data.sink = Some(sink);
        let wall = self.watch.policy.wall_time;
        let call = self
            .bindings
            .inlet_connector_push()
            .call_open(&mut self.store, config, state);
        let outcome = tokio::time::timeout(wall, call).await;
        self.settle("open", outcome)
    }

    /// Calls `handle` for one request, with a fresh CPU budget.
    pub async fn handle(&mut self, request: &Request) -> Result<Response, CallError> {
        let data = self.store.data_mut();
        data.cpu_ticks = 0;
        data.current_stream = None;
        let wall = self.watch.policy.wall_time;
        let call = self
            .bindings
            .inlet_connector_push()
            .call_handle(&mut self.store, request);
        let outcome = tokio::time::timeout(wall, call).await;
        self.settle("handle", outcome)
    }

    /// Calls `state`: the connector's state to commit now, if it has one.
    pub async fn state(&mut self) -> Result<Option<String>, CallError> {
        let wall = self.watch.policy.wall_time;
        let call = self
            .bindings
            .inlet_connector_push()
            .call_state(&mut self.store);
        let outcome = tokio::time::timeout(wall, call).await;
        self.settle("state", outcome)
    }

    fn settle<T>(&mut self, call: &'static str, outcome: Outcome<T>) -> Result<T, CallError> {
        self.watch
            .settle(outcome)
            .map_err(|failure| self.watch.explain(&self.store, call, failure))
    }
}
