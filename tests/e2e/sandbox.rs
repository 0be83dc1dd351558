//! The sandbox: network allowlist, memory cap, CPU and wall-clock deadlines, traps and broken
//! contracts end the run with a named rule and commit nothing.

use crate::harness::{failed_call, plan, pong_server, sync};
use inlet_host::lake::{History, Lake, read_committed};
use inlet_host::runtime::{CallFailure, SandboxPolicy, Violation};
use inlet_host::sync::SyncError;
use inlet_tests::guests::{MISBEHAVE, NET_PROBE};
use serde_json::json;
use std::time::Duration;

async fn commits(lake: &Lake, connection: &str) -> usize {
    History::read(lake, connection).await.unwrap().commits.len()
}

#[tokio::test]
async fn declared_destination_is_reachable() {
    let port = pong_server();
    let lake = Lake::in_memory();
    let mut plan = plan(
        NET_PROBE,
        "probe",
        json!({"host": "127.0.0.1", "port": port}),
    );
    plan.sandbox.allow_private_network = true;
    let (result, _) = sync(&lake, &plan).await;
    let report = result.expect("the declared destination is allowed");
    assert_eq!(report.streams["replies"].rows, 1);
}

#[tokio::test]
async fn undeclared_destination_is_refused() {
    let declared = pong_server();
    let other = pong_server();
    let lake = Lake::in_memory();
    let target = format!("127.0.0.1:{other}");
    let mut plan = plan(
        NET_PROBE,
        "probe",
        json!({"host": "127.0.0.1", "port": declared, "target": target}),
    );
    plan.sandbox.allow_private_network = true;
    let (result, _) = sync(&lake, &plan).await;
    let (message, failure) = failed_call(result);
    match failure {
        CallFailure::Violation(Violation::Network {
            address,
            declared: list,
        }) => {
            assert_eq!(address.to_string(), target);
            assert_eq!(list, format!("127.0.0.1:{declared}"));
        }
        other => panic!("expected a network violation, got {other:?}"),
    }
    assert!(
        message.contains("connection `probe`") && message.contains("network policy"),
        "{message}"
    );
    assert_eq!(commits(&lake, "probe").await, 0);
}

#[tokio::test]
async fn private_destination_needs_explicit_permission() {
    let port = pong_server();
    let lake = Lake::in_memory();
    let plan = plan(
        NET_PROBE,
        "probe",
        json!({"host": "127.0.0.1", "port": port}),
    );
    let (result, _) = sync(&lake, &plan).await;
    let error = result.expect_err("loopback is private");
    let message = error.to_string();
    assert!(matches!(error, SyncError::Policy { .. }), "{message}");
    assert!(message.contains("allow_private_network"), "{message}");
}

#[tokio::test]
async fn operator_allowlist_narrows_declared_destinations() {
    let port = pong_server();
    let lake = Lake::in_memory();
    let mut plan = plan(
        NET_PROBE,
        "probe",
        json!({"host": "127.0.0.1", "port": port}),
    );
    plan.sandbox.allow_private_network = true;
    plan.sandbox.allowed_destinations = Some(vec!["db.internal:5432".into()]);
    let (result, _) = sync(&lake, &plan).await;
    let message = result.expect_err("not in the allowlist").to_string();
    assert!(
        message.contains(&format!("127.0.0.1:{port}")) && message.contains("db.internal:5432"),
        "{message}"
    );
}

#[tokio::test]
async fn memory_bomb_is_stopped_by_the_cap() {
    let lake = Lake::in_memory();
    let mut plan = plan(MISBEHAVE, "bomb", json!({"mode": "memory-bomb"}));
    plan.sandbox = SandboxPolicy {
        memory_bytes: 64 << 20,
        ..plan.sandbox
    };
    let (result, _) = sync(&lake, &plan).await;
    let (message, failure) = failed_call(result);
    assert!(
        matches!(failure, CallFailure::Violation(Violation::Memory { limit, .. }) if limit == 64 << 20),
        "{message}"
    );
    assert!(
        message.contains("memory limit") && message.contains("64 MiB"),
        "{message}"
    );
    assert_eq!(commits(&lake, "bomb").await, 0);
}

#[tokio::test]
async fn infinite_loop_is_stopped_by_the_cpu_deadline() {
    let lake = Lake::in_memory();
    let mut plan = plan(MISBEHAVE, "spin", json!({"mode": "spin"}));
    plan.sandbox.cpu_time = Duration::from_millis(500);
    let (result, _) = sync(&lake, &plan).await;
    let (message, failure) = failed_call(result);
    assert!(
        matches!(failure, CallFailure::Violation(Violation::Cpu(_))),
        "{message}"
    );
    assert!(message.contains("cpu limit"), "{message}");
}

#[tokio::test]
async fn call_blocked_in_the_host_is_stopped_by_the_wall_clock() {
    let lake = Lake::in_memory();
    let mut plan = plan(MISBEHAVE, "sleepy", json!({"mode": "sleep"}));
    plan.sandbox.wall_time = Duration::from_millis(700);
    let (result, _) = sync(&lake, &plan).await;
    let (message, failure) = failed_call(result);
    assert!(
        matches!(failure, CallFailure::Violation(Violation::WallClock(_))),
        "{message}"
    );
}

#[tokio::test]
async fn trap_commits_nothing() {
    let lake = Lake::in_memory();
    let plan = plan(MISBEHAVE, "trap", json!({"mode": "trap-after-emit"}));
    let (result, _) = sync(&lake, &plan).await;
    let (message, failure) = failed_call(result);
    match failure {
        CallFailure::Trap { stderr, .. } => {
            assert!(stderr.contains("boom after emitting 3 rows"), "{stderr}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(
        message.contains("stream `items`") && message.contains("trapped"),
        "{message}"
    );
    assert_eq!(commits(&lake, "trap").await, 0);
}

#[tokio::test]
async fn trap_keeps_only_what_was_checkpointed_before_it() {
    let lake = Lake::in_memory();
    let plan = plan(MISBEHAVE, "half", json!({"mode": "checkpoint-then-trap"}));
    let (result, _) = sync(&lake, &plan).await;
    failed_call(result);
    let history = History::read(&lake, "half").await.unwrap();
    assert_eq!(history.commits.len(), 1);
    assert_eq!(
        history.latest().unwrap().state,
        Some(json!({"checkpointed": 3}))
    );
    let batches = read_committed(&lake, "half", "items").await.unwrap();
    let ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(ids, vec![0, 1, 2]);
}

#[tokio::test]
async fn batch_breaking_the_declared_schema_ends_the_run() {
    let lake = Lake::in_memory();
    let plan = plan(MISBEHAVE, "liar", json!({"mode": "wrong-schema"}));
    let (result, _) = sync(&lake, &plan).await;
    let (message, failure) = failed_call(result);
    assert!(
        matches!(failure, CallFailure::Violation(Violation::Schema(_))),
        "{message}"
    );
    for part in [
        "connection `liar`",
        "connector `inlet_test_misbehave.wasm`",
        "stream `items`",
        "schema contract",
        "column `id` has type Utf8",
    ] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
    assert_eq!(commits(&lake, "liar").await, 0);
}
