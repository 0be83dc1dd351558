//! The conformance kit as the e2e tests call it: `inlet_host::conformance` (what `inlet connector
//! test` runs) with a panic that prints the whole report when a check fails.

use inlet_host::connectors::ConnectorRef;
use inlet_host::runtime::{Runtime, SandboxPolicy};

/// Runs the whole contract against `connector` (a built-in name or a `.wasm` path) with `config`;
/// panics with the report when a check fails.
pub async fn source_contract(
    runtime: &Runtime,
    connector: &str,
    config: serde_json::Value,
    policy: SandboxPolicy,
) {
    let reference = ConnectorRef::resolve(connector, std::path::Path::new("/"))
        .expect("the connector resolves");
    let report = inlet_host::conformance::check_source(runtime, reference, config, policy).await;
    assert!(report.passed(), "{}", report.render());
}
