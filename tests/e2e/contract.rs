//! The connector contract is versioned (`wit/README.md`): `inlet:connector@0.1.0` as released is
//! kept byte for byte in `wit/released/0.1.0`, `wit/connector.wit` may not amend it in place, and
//! a component built against the released file with wit-bindgen alone (no SDK) keeps loading,
//! passing the kit and syncing exactly.

use crate::harness::{plan, sync};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use inlet_host::lake::{Lake, read_committed};
use inlet_tests::guests::FROZEN_0_1_0;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::Path;

/// SHA-256 of `wit/released/0.1.0/connector.wit` as released. A released contract never changes:
/// a new contract is a new version (a new folder under `wit/released/`).
const RELEASED_0_1_0_SHA256: &str =
    "0573ac1076fa4ea5ddfafd847c2562b92703904fb23d62994bc462e2e249eec7";

fn wit(path: &str) -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../wit")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// The contract without comments and blank space: what a component is built against.
fn contract(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| {
            line.split("//")
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .filter(|line| !line.is_empty())
        .collect()
}

#[test]
fn the_released_contract_is_unchanged_and_not_amended_in_place() {
    let released = wit("released/0.1.0/connector.wit");
    let digest: String = Sha256::digest(released.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        digest, RELEASED_0_1_0_SHA256,
        "wit/released/0.1.0/connector.wit changed: a released contract is frozen; put the change in a new version (wit/README.md)"
    );
    let current = wit("connector.wit");
    if current.contains("package inlet:connector@0.1.0;") {
        assert_eq!(
            contract(&current),
            contract(&released),
            "wit/connector.wit amends inlet:connector@0.1.0 in place: declare a new version for the change (wit/README.md)"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_built_against_the_released_0_1_0_contract_still_runs() {
    let path = FROZEN_0_1_0;
    inlet_tests::conformance::source_contract(
        crate::harness::runtime(),
        path,
        json!({"ticks": 5}),
        Default::default(),
    )
    .await;

    let lake = Lake::in_memory();
    let first = sync(&lake, &plan(path, "frozen", json!({"ticks": 5})))
        .await
        .0
        .unwrap();
    assert_eq!(first.streams["ticks"].rows, 5);
    let again = sync(&lake, &plan(path, "frozen", json!({"ticks": 8})))
        .await
        .0
        .unwrap();
    assert_eq!(
        again.streams["ticks"].rows, 3,
        "only ticks after the saved one"
    );
    let batches = read_committed(&lake, "frozen", "ticks").await.unwrap();
    let mut ticks: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            let column = b.column_by_name("tick").expect("a tick column");
            column.as_primitive::<Int64Type>().values().to_vec()
        })
        .collect();
    ticks.sort_unstable();
    assert_eq!(ticks, (1..=8).collect::<Vec<i64>>());
}
