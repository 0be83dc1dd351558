//! The conformance kit: checks every source connector must pass, written once and called from each
//! connector's tests (first-party here; third-party authors can call the same functions).
//!
//! Each check panics with a message naming the connector and the broken rule.

use inlet_host::connectors::ConnectorRef;
use inlet_host::lake::{History, Lake, read_committed};
use inlet_host::runtime::{
    CallFailure, ConnectorError, Runtime, SandboxPolicy, SyncMode, decode_schema,
};
use inlet_host::sync::{self, Prepared, SyncError, SyncObserver, SyncPlan};
use std::collections::HashSet;
use std::sync::Arc;

struct Quiet;

impl SyncObserver for Quiet {
    fn run_event(&self, _: &str, _: inlet_host::runtime::RunEvent) {}
    fn session_event(&self, _: &str, _: inlet_host::lake::SessionEvent) {}
}

/// Runs the whole contract against `connector` (a built-in name or a `.wasm` path) with `config`.
pub async fn source_contract(
    runtime: &Runtime,
    connector: &str,
    config: serde_json::Value,
    policy: SandboxPolicy,
) {
    let reference = ConnectorRef::resolve(connector, std::path::Path::new("/"))
        .expect("the connector resolves");
    let loaded = sync::load(runtime, "conformance", &reference).expect("the component loads");
    let prepared = Prepared::new(loaded, "conformance", &config, &policy, Arc::new(|_| {}))
        .await
        .unwrap_or_else(|e| panic!("{connector}: spec and grant: {e}"));

    // spec
    let spec = &prepared.spec;
    assert!(
        !spec.name.is_empty()
            && spec
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "{connector}: spec name `{}` must be lowercase letters, digits and dashes",
        spec.name
    );
    assert_eq!(
        spec.version.split('.').count(),
        3,
        "{connector}: spec version `{}` must be semver",
        spec.version
    );
    let schema: serde_json::Value = serde_json::from_str(&spec.config_schema)
        .unwrap_or_else(|e| panic!("{connector}: config schema is not JSON: {e}"));
    assert!(
        schema.get("properties").is_some() || schema.get("type").is_some(),
        "{connector}: config schema has no properties"
    );

    // check, and unknown settings refused as configuration errors
    prepared
        .check(&config, &policy)
        .await
        .unwrap_or_else(|e| panic!("{connector}: check: {e}"));
    let mut typo = config.clone();
    typo["surely_not_a_setting"] = serde_json::json!(1);
    match prepared.check(&typo, &policy).await {
        Err(SyncError::Call(error)) => assert!(
            matches!(
                *error.failure,
                CallFailure::Connector(ConnectorError::Config(_))
            ),
            "{connector}: an unknown setting must be a configuration error, got {}",
            error.failure
        ),
        other => panic!("{connector}: an unknown setting must be refused, got {other:?}"),
    }

    // discover
    let streams = prepared
        .discover(&config, &policy)
        .await
        .unwrap_or_else(|e| panic!("{connector}: discover: {e}"));
    assert!(
        !streams.is_empty(),
        "{connector}: discover returned no stream"
    );
    let mut names = HashSet::new();
    for stream in &streams {
        assert!(
            names.insert(stream.name.clone()),
            "{connector}: stream `{}` appears twice",
            stream.name
        );
        assert!(
            !stream.sync_modes.is_empty(),
            "{connector}: stream `{}` supports no sync mode",
            stream.name
        );
        assert_eq!(
            stream.sync_modes.contains(&SyncMode::Incremental),
            stream.cursor_field.is_some(),
            "{connector}: stream `{}` must name a cursor exactly when it supports incremental",
            stream.name
        );
        if let Some(bytes) = &stream.schema {
            let schema = decode_schema(bytes)
                .unwrap_or_else(|e| panic!("{connector}: stream `{}`: {e}", stream.name));
            for column in stream.primary_key.iter().chain(stream.cursor_field.iter()) {
                assert!(
                    schema.field_with_name(column).is_ok(),
                    "{connector}: stream `{}`: key or cursor `{column}` is not a column",
                    stream.name
                );
            }
        }
    }

    // read twice: the second (incremental where supported) returns no more than the first
    let lake = Lake::in_memory();
    let mut plan = SyncPlan::new("conformance", reference, config);
    plan.sandbox = policy;
    let first = sync::sync(runtime, &lake, &plan, Arc::new(Quiet))
        .await
        .unwrap_or_else(|e| panic!("{connector}: first sync: {e}"));
    let history = History::read(&lake, "conformance").await.unwrap();
    let state = history.latest().and_then(|c| c.state.clone());
    assert!(
        state.as_ref().is_none_or(|s| s.is_object()),
        "{connector}: state must be a JSON object, got {state:?}"
    );
    for stream in &streams {
        let Some(committed) = history.latest().and_then(|c| c.streams.get(&stream.name)) else {
            continue;
        };
        if let Some(bytes) = &stream.schema {
            let declared = decode_schema(bytes).unwrap();
            for field in declared.fields() {
                assert!(
                    committed.schema.field_with_name(field.name()).is_ok(),
                    "{connector}: `{}` lost column `{}`",
                    stream.name,
                    field.name()
                );
            }
        }
        let rows: usize = read_committed(&lake, "conformance", &stream.name)
            .await
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(
            rows as u64,
            first.streams.get(&stream.name).map_or(0, |s| s.rows),
            "{connector}: `{}` rows read back",
            stream.name
        );
    }
    let second = sync::sync(runtime, &lake, &plan, Arc::new(Quiet))
        .await
        .unwrap_or_else(|e| panic!("{connector}: second sync: {e}"));
    for stream in streams
        .iter()
        .filter(|s| s.sync_modes.first() == Some(&SyncMode::Incremental))
    {
        let (before, after) = (
            first.streams.get(&stream.name).map_or(0, |s| s.rows),
            second.streams.get(&stream.name).map_or(0, |s| s.rows),
        );
        assert!(
            after <= before,
            "{connector}: incremental `{}` read {after} rows after a first read of {before}",
            stream.name
        );
    }
}
