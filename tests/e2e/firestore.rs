//! The firestore connector against Google's Firestore emulator: nested values with exact types,
//! incremental paging by a timestamp field, collection groups, and documents whose field types
//! disagree.

use crate::harness::{plan, sync};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use inlet_host::credentials::{GoogleAuth, GoogleTokens, GrantSource};
use inlet_host::lake::{Lake, read_committed};
use inlet_host::sync::SyncPlan;
use inlet_tests::firestore::FirestoreEmulator;
use inlet_tests::http_fixture::{FixtureServer, authorized_user_file, google_grant};
use inlet_tests::sheets_fixture;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// A token endpoint for the `google` credential (the emulator accepts any token).
fn token_server() -> &'static FixtureServer {
    static SERVER: OnceLock<FixtureServer> = OnceLock::new();
    SERVER.get_or_init(|| sheets_fixture::start(BTreeMap::new(), 0))
}

fn firestore_plan(connection: &str, config: serde_json::Value) -> (SyncPlan, tempfile::TempDir) {
    let emulator = FirestoreEmulator::get();
    let mut config = config;
    config["project"] = json!("test");
    config["endpoint"] = json!(emulator.url);
    let mut plan = plan("firestore", connection, config);
    let dir = tempfile::tempdir().unwrap();
    let file = authorized_user_file(dir.path(), token_server());
    plan.sandbox.allow_private_network = true;
    plan.sandbox.grants = vec![google_grant(
        file,
        &["https://www.googleapis.com/auth/datastore"],
        &[format!("127.0.0.1:{}", emulator.port)],
    )];
    (plan, dir)
}

fn one_batch(batches: Vec<RecordBatch>) -> RecordBatch {
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_documents_arrive_as_structs_and_lists_with_exact_values() {
    let emulator = FirestoreEmulator::get();
    emulator.put(
        "patients/p1",
        json!({
            "name": {"stringValue": "Ana"},
            "age": {"integerValue": "41"},
            "score": {"doubleValue": 0.25},
            "active": {"booleanValue": true},
            "joined": {"timestampValue": "2024-03-01T09:30:00.123456Z"},
            "avatar": {"bytesValue": "AQL/"},
            "doctor": {"referenceValue": "projects/test/databases/(default)/documents/doctors/d7"},
            "home": {"geoPointValue": {"latitude": 35.68, "longitude": 139.76}},
            "tags": {"arrayValue": {"values": [{"stringValue": "vip"}, {"stringValue": "new"}]}},
            "address": {"mapValue": {"fields": {
                "city": {"stringValue": "Tokyo"},
                "zip": {"integerValue": "1000001"},
                "floors": {"arrayValue": {"values": [{"integerValue": "3"}, {"integerValue": "4"}]}}
            }}},
            "note": {"nullValue": null}
        }),
    );
    let (plan, _dir) = firestore_plan("fs_nested", json!({"collections": [{"path": "patients"}]}));
    let lake = Lake::in_memory();
    sync(&lake, &plan).await.0.unwrap();
    let batch = one_batch(
        read_committed(&lake, "fs_nested", "patients")
            .await
            .unwrap(),
    );
    assert_eq!(batch.num_rows(), 1);
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", batch.schema()))
            .clone()
    };
    assert_eq!(
        column("__name__").as_string::<i32>().value(0),
        "projects/test/databases/(default)/documents/patients/p1"
    );
    assert_eq!(column("__id__").as_string::<i32>().value(0), "p1");
    assert_eq!(column("age").as_primitive::<Int64Type>().value(0), 41);
    assert_eq!(column("score").as_primitive::<Float64Type>().value(0), 0.25);
    assert!(column("active").as_boolean().value(0));
    assert_eq!(
        column("joined")
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        1_709_285_400_123_456
    );
    assert_eq!(column("avatar").as_binary::<i32>().value(0), &[1u8, 2, 255]);
    assert_eq!(
        column("doctor").as_string::<i32>().value(0),
        "projects/test/databases/(default)/documents/doctors/d7"
    );
    let home = column("home");
    let home = home.as_struct();
    assert_eq!(
        home.column_by_name("latitude")
            .unwrap()
            .as_primitive::<Float64Type>()
            .value(0),
        35.68
    );
    assert_eq!(
        home.column_by_name("longitude")
            .unwrap()
            .as_primitive::<Float64Type>()
            .value(0),
        139.76
    );
    let tags = column("tags");
    let tags = tags.as_list::<i32>().value(0);
    let tags: Vec<&str> = tags.as_string::<i32>().iter().map(Option::unwrap).collect();
    assert_eq!(tags, vec!["vip", "new"]);
    let address = column("address");
    let address = address.as_struct();
    assert_eq!(
        address
            .column_by_name("city")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "Tokyo"
    );
    assert_eq!(
        address
            .column_by_name("zip")
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(0),
        1_000_001
    );
    let floors = address
        .column_by_name("floors")
        .unwrap()
        .as_list::<i32>()
        .value(0);
    assert_eq!(
        floors.as_primitive::<Int64Type>().values().to_vec(),
        vec![3, 4]
    );
    assert!(column("note").is_null(0));
    assert!(!column("__update_time__").is_null(0));
}

fn event(i: u32, minute: u32) -> serde_json::Value {
    json!({
        "n": {"integerValue": i.to_string()},
        "updated_at": {"timestampValue": format!("2024-05-01T10:{minute:02}:00Z")},
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn incremental_reads_page_by_the_cursor_and_pick_up_only_changes() {
    let emulator = FirestoreEmulator::get();
    for i in 0..25 {
        emulator.put(&format!("events/e{i:02}"), event(i, i % 7));
    }
    let config =
        json!({"collections": [{"path": "events", "cursor_field": "updated_at"}], "page_size": 10});
    let (plan, _dir) = firestore_plan("fs_events", config);
    let lake = Lake::in_memory();
    let report = sync(&lake, &plan).await.0.unwrap();
    assert_eq!(report.streams["events"].rows, 25);

    // Two updates and one new document, all later than anything read.
    emulator.put("events/e03", event(103, 30));
    emulator.put("events/e17", event(117, 31));
    emulator.put("events/e25", event(25, 32));
    let report = sync(&lake, &plan).await.0.unwrap();
    assert_eq!(
        report.streams["events"].rows, 3,
        "only the changes: {report:?}"
    );

    let batch = one_batch(read_committed(&lake, "fs_events", "events").await.unwrap());
    let names: Vec<String> = batch
        .column_by_name("__id__")
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(|v| v.unwrap().to_owned())
        .collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 26, "every document, none lost");
    assert_eq!(names.len(), 28, "25 + 3 changed versions, none read twice");
    let n = batch
        .column_by_name("n")
        .unwrap()
        .as_primitive::<Int64Type>();
    let last = names.iter().rposition(|id| id == "e03").unwrap();
    assert_eq!(
        n.value(last),
        103,
        "the newest version of e03 is the last one committed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn collection_groups_and_disagreeing_types() {
    let emulator = FirestoreEmulator::get();
    emulator.put(
        "clinics/c1/visits/v1",
        json!({"fee": {"integerValue": "10"}}),
    );
    emulator.put(
        "clinics/c2/visits/v2",
        json!({"fee": {"integerValue": "20"}}),
    );
    emulator.put("scores/a", json!({"score": {"integerValue": "1"}}));
    emulator.put("scores/b", json!({"score": {"stringValue": "high"}}));
    emulator.put("scores/c", json!({"score": {"integerValue": "3"}}));
    let config = json!({"collections": [
        {"path": "visits", "group": true},
        {"path": "scores"},
    ]});
    let (plan, _dir) = firestore_plan("fs_group", config);
    let lake = Lake::in_memory();
    sync(&lake, &plan).await.0.unwrap();

    let visits = one_batch(read_committed(&lake, "fs_group", "visits").await.unwrap());
    let names: Vec<&str> = visits
        .column_by_name("__name__")
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(names.len(), 2);
    assert!(
        names.iter().any(|n| n.ends_with("clinics/c1/visits/v1")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.ends_with("clinics/c2/visits/v2")),
        "{names:?}"
    );

    let scores = one_batch(read_committed(&lake, "fs_group", "scores").await.unwrap());
    let ints: Vec<Option<i64>> = scores
        .column_by_name("score")
        .unwrap()
        .as_primitive::<Int64Type>()
        .iter()
        .collect();
    let texts: Vec<Option<&str>> = scores
        .column_by_name("score__string")
        .expect("the text values land in a variant column")
        .as_string::<i32>()
        .iter()
        .collect();
    assert_eq!(ints, vec![Some(1), None, Some(3)]);
    assert_eq!(texts, vec![None, Some("high"), None]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_map_field_whose_inner_type_changes_twice_keeps_every_value() {
    let emulator = FirestoreEmulator::get();
    let meta = |value: serde_json::Value| json!({"meta": {"mapValue": {"fields": {"x": value}}}});
    emulator.put("retyped/m1", meta(json!({"integerValue": "7"})));
    emulator.put("retyped/m2", meta(json!({"stringValue": "seven"})));
    emulator.put("retyped/m3", meta(json!({"booleanValue": true})));
    emulator.put("retyped/m4", meta(json!({"integerValue": "8"})));
    let (plan, _dir) = firestore_plan("fs_retyped", json!({"collections": [{"path": "retyped"}]}));
    let lake = Lake::in_memory();
    sync(&lake, &plan).await.0.unwrap();
    // A second sync (a full copy again) goes through the same variants without stopping.
    sync(&lake, &plan).await.0.unwrap();

    let rows = one_batch(
        read_committed(&lake, "fs_retyped", "retyped")
            .await
            .unwrap(),
    );
    assert_eq!(rows.num_rows(), 8);
    let inner = |column: &str| {
        let column = rows
            .column_by_name(column)
            .unwrap_or_else(|| panic!("column `{column}` in {:?}", rows.schema()));
        let structs = column.as_struct();
        (0..4)
            .map(|row| {
                (!structs.is_null(row)).then(|| {
                    let x = structs.column_by_name("x").unwrap();
                    arrow_cast::display::array_value_to_string(x, row).unwrap()
                })
            })
            .collect::<Vec<_>>()
    };
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(inner("meta"), [some("7"), None, None, some("8")]);
    assert_eq!(inner("meta__struct"), [None, some("seven"), None, None]);
    assert_eq!(inner("meta__struct_2"), [None, None, some("true"), None]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_emulator_is_reached_with_no_credentials_at_all() {
    // `[google] credentials = "none"`: the placeholder header is dropped, not sent empty (the
    // emulator answers 500 to `Authorization: Bearer `).
    let emulator = FirestoreEmulator::get();
    emulator.put("anonymous/a1", json!({"n": {"integerValue": "1"}}));
    let (mut plan, _dir) = firestore_plan(
        "fs_anonymous",
        json!({"collections": [{"path": "anonymous"}]}),
    );
    plan.sandbox.grants[0].source = GrantSource::Google {
        tokens: Arc::new(GoogleTokens::new(|| Ok(GoogleAuth::anonymous()))),
        who: "no credentials".into(),
    };
    let lake = Lake::in_memory();
    let report = sync(&lake, &plan).await.0.unwrap();
    assert_eq!(report.streams["anonymous"].rows, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_firestore_connector_passes_the_conformance_kit() {
    let emulator = FirestoreEmulator::get();
    emulator.put("kit_items/k1", event(1, 1));
    emulator.put("kit_items/k2", event(2, 2));
    let config = json!({"collections": [{"path": "kit_items", "cursor_field": "updated_at"}, {"path": "kit_items", "stream": "kit_all"}]});
    let (plan, _dir) = firestore_plan("kit", config);
    inlet_tests::conformance::source_contract(
        crate::harness::runtime(),
        "firestore",
        plan.config.clone(),
        plan.sandbox.clone(),
    )
    .await;
}
