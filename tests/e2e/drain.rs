//! A drain of `inlet serve`, driven in-process with the `misbehave` push component: a request's
//! rows are committed only if its `handle` succeeded, a trap fails that request alone, and
//! senders beyond the waiting-bytes cap are told to retry.

use inlet_host::connectors::ConnectorRef;
use inlet_host::lake::{Lake, read_committed};
use inlet_host::runtime::{PushRequest, Runtime, RuntimeOptions, SandboxPolicy};
use inlet_host::serve::{Drain, DrainSpec, Reply};
use inlet_tests::guests::MISBEHAVE;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn spec(connection: &str, max_pending_bytes: u64) -> DrainSpec {
    DrainSpec {
        connection: connection.into(),
        reference: ConnectorRef::resolve(MISBEHAVE, std::path::Path::new("/")).unwrap(),
        config: serde_json::json!({"mode": "push"}),
        written_config: serde_json::json!({"mode": "push"}),
        policy: SandboxPolicy {
            memory_bytes: 256 << 20,
            wall_time: Duration::from_secs(30),
            ..SandboxPolicy::default()
        },
        interval: Duration::from_millis(300),
        max_bytes: 1 << 20,
        max_pending_bytes,
    }
}

fn runtime() -> Arc<Runtime> {
    let cache_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("inlet-cache");
    Arc::new(
        Runtime::new(RuntimeOptions {
            cache_dir: Some(cache_dir),
        })
        .unwrap(),
    )
}

fn request(first: i64, then: &str) -> PushRequest {
    PushRequest {
        method: "POST".into(),
        path: "/drains/x".into(),
        headers: vec![
            ("x-first".into(), first.to_string()),
            ("x-then".into(), then.into()),
        ],
        body: Vec::new(),
    }
}

async fn committed_ids(lake: &Lake, connection: &str) -> Vec<i64> {
    crate::harness::ids(&read_committed(lake, connection, "items").await.unwrap())
}

#[tokio::test]
async fn only_requests_whose_handle_succeeded_are_committed_and_a_trap_fails_one_request() {
    let lake = Lake::in_memory();
    let (drain, task) = Drain::start(runtime(), lake.clone(), spec("staged", 1 << 20))
        .await
        .unwrap();
    // One group commit: the futures send in this order before any answer comes.
    let (ok, refused, trapped, after) = tokio::join!(
        drain.submit(request(0, "ok"), 10),
        drain.submit(request(100, "fail"), 10),
        drain.submit(request(200, "trap"), 10),
        drain.submit(request(10, "ok"), 10),
    );
    assert!(matches!(ok, Reply::Done(_)), "{ok:?}");
    assert!(
        matches!(&refused, Reply::Refused { status: 400, reason } if reason.contains("refused after emitting")),
        "{refused:?}"
    );
    assert!(
        matches!(&trapped, Reply::Unavailable(reason) if reason.contains("trap")),
        "{trapped:?}"
    );
    assert!(matches!(after, Reply::Done(_)), "{after:?}");
    assert_eq!(
        committed_ids(&lake, "staged").await,
        [0, 1, 2, 10, 11, 12],
        "the refused and trapped requests left no rows; the one waiting before the trap kept its rows"
    );
    // The instance rebuilt after the trap goes on serving.
    assert!(matches!(
        drain.submit(request(20, "ok"), 10).await,
        Reply::Done(_)
    ));
    assert_eq!(committed_ids(&lake, "staged").await.len(), 9);
    assert!(!drain.stopped());
    drain.stop();
    task.await.unwrap();
    assert!(drain.stopped(), "a drain whose task ended says so");
}

#[tokio::test]
async fn a_request_retried_after_another_trapped_is_still_known() {
    let lake = Lake::in_memory();
    let (drain, task) = Drain::start(runtime(), lake.clone(), spec("replayed", 1 << 20))
        .await
        .unwrap();
    // A waits for the commit; B traps (the instance is rebuilt); A is delivered again.
    let (first, trapped, retried) = tokio::join!(
        drain.submit(request(0, "ok"), 10),
        drain.submit(request(100, "trap"), 10),
        drain.submit(request(0, "ok"), 10),
    );
    assert!(matches!(first, Reply::Done(_)), "{first:?}");
    assert!(matches!(trapped, Reply::Unavailable(_)), "{trapped:?}");
    match &retried {
        Reply::Done(response) => assert!(
            response
                .headers
                .iter()
                .any(|(n, v)| n == "x-duplicate" && v == "true"),
            "the rebuilt instance heard A again: {response:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(committed_ids(&lake, "replayed").await, [0, 1, 2]);
    drain.stop();
    task.await.unwrap();
    // The committed state has A, so a restarted drain knows it too.
    let (drain, task) = Drain::start(runtime(), lake.clone(), spec("replayed", 1 << 20))
        .await
        .unwrap();
    assert!(matches!(
        drain.submit(request(0, "ok"), 10).await,
        Reply::Done(response) if response.headers.iter().any(|(n, _)| n == "x-duplicate")
    ));
    drain.stop();
    task.await.unwrap();
}

#[tokio::test]
async fn senders_beyond_the_waiting_bytes_cap_are_told_to_retry() {
    let lake = Lake::in_memory();
    let (drain, task) = Drain::start(runtime(), lake.clone(), spec("capped", 15))
        .await
        .unwrap();
    let (first, second) = tokio::join!(
        drain.submit(request(0, "ok"), 10),
        drain.submit(request(10, "ok"), 10),
    );
    assert!(matches!(first, Reply::Done(_)), "{first:?}");
    assert!(
        matches!(&second, Reply::Unavailable(reason) if reason.contains("max_pending_bytes")),
        "{second:?}"
    );
    // Once the first is answered, the bytes are free again.
    assert!(matches!(
        drain.submit(request(10, "ok"), 10).await,
        Reply::Done(_)
    ));
    assert_eq!(committed_ids(&lake, "capped").await, [0, 1, 2, 10, 11, 12]);
    drain.stop();
    task.await.unwrap();
}
