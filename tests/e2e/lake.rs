//! What lands in the lake: exact values after a Parquet round trip, schema evolution across runs,
//! and incremental syncs that add up to a full refresh.

use crate::harness::{plan, sync};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
    Float64Array, Int8Array, Int16Array, Int32Array, Int64Array, ListArray, RecordBatch,
    StringArray, StructArray, TimestampMicrosecondArray, UInt32Array,
};
use arrow_schema::{DataType, Field};
use inlet_host::lake::{History, IncompatiblePolicy, Lake, read_committed};
use inlet_host::runtime::SyncMode;
use inlet_tests::guests::MISBEHAVE;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

fn one_batch(batches: Vec<RecordBatch>) -> RecordBatch {
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// What the `all-types` mode emits, written out independently.
fn expected_all_types() -> RecordBatch {
    let a = Arc::new(Field::new("a", DataType::Int32, true));
    let b = Arc::new(Field::new("b", DataType::Utf8, true));
    let nested = StructArray::from(vec![
        (
            a,
            Arc::new(Int32Array::from(vec![Some(1), None, Some(-3)])) as ArrayRef,
        ),
        (
            b,
            Arc::new(StringArray::from(vec![Some("x"), Some("ü"), None])) as ArrayRef,
        ),
    ]);
    RecordBatch::try_from_iter(vec![
        (
            "i8",
            Arc::new(Int8Array::from(vec![Some(-128), None, Some(127)])) as ArrayRef,
        ),
        (
            "i16",
            Arc::new(Int16Array::from(vec![-32768, 0, 32767])) as ArrayRef,
        ),
        (
            "i32",
            Arc::new(Int32Array::from(vec![Some(i32::MIN), None, Some(i32::MAX)])) as ArrayRef,
        ),
        (
            "i64",
            Arc::new(Int64Array::from(vec![i64::MIN, 0, i64::MAX])) as ArrayRef,
        ),
        (
            "u32",
            Arc::new(UInt32Array::from(vec![Some(0), None, Some(u32::MAX)])) as ArrayRef,
        ),
        (
            "f32",
            Arc::new(Float32Array::from(vec![1.5, f32::NAN, f32::NEG_INFINITY])) as ArrayRef,
        ),
        (
            "f64",
            Arc::new(Float64Array::from(vec![
                Some(f64::MIN_POSITIVE),
                Some(f64::INFINITY),
                None,
            ])) as ArrayRef,
        ),
        (
            "flag",
            Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])) as ArrayRef,
        ),
        (
            "text",
            Arc::new(StringArray::from(vec!["héllo", "", "日本語 🚀"])) as ArrayRef,
        ),
        (
            "blob",
            Arc::new(BinaryArray::from(vec![
                Some(&b"\x00\xff"[..]),
                Some(&b""[..]),
                None,
            ])) as ArrayRef,
        ),
        (
            "day",
            Arc::new(Date32Array::from(vec![0, -719_162, 2_932_896])) as ArrayRef,
        ),
        (
            "at",
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(0), None, Some(253_402_300_799_999_999)])
                    .with_timezone("+00:00"),
            ) as ArrayRef,
        ),
        (
            "amount",
            Arc::new(
                Decimal128Array::from(vec![Some(123_456_789_123_456_789), Some(-1), None])
                    .with_precision_and_scale(38, 9)
                    .unwrap(),
            ) as ArrayRef,
        ),
        (
            "tags",
            Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
                Some(vec![Some(1), Some(2)]),
                Some(vec![]),
                None,
            ])) as ArrayRef,
        ),
        ("nested", Arc::new(nested) as ArrayRef),
    ])
    .unwrap()
}

#[tokio::test]
async fn every_type_round_trips_through_parquet_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let (result, _) = sync(
        &lake,
        &plan(MISBEHAVE, "types", json!({"mode": "all-types"})),
    )
    .await;
    result.unwrap();
    let actual = one_batch(read_committed(&lake, "types", "all_types").await.unwrap());
    let expected = expected_all_types();
    assert_eq!(actual.num_rows(), 3);
    for field in expected.schema().fields() {
        let (want, got) = (
            expected.column_by_name(field.name()).unwrap(),
            actual.column_by_name(field.name()).unwrap(),
        );
        assert_eq!(
            got.data_type(),
            want.data_type(),
            "type of `{}`",
            field.name()
        );
        match field.data_type() {
            // NaN != NaN, so floats are compared bit for bit.
            DataType::Float32 => {
                let bits = |a: &ArrayRef| {
                    a.as_primitive::<Float32Type>()
                        .iter()
                        .map(|v| v.map(f32::to_bits))
                        .collect::<Vec<_>>()
                };
                assert_eq!(bits(got), bits(want), "values of `{}`", field.name());
            }
            DataType::Float64 => {
                let bits = |a: &ArrayRef| {
                    a.as_primitive::<Float64Type>()
                        .iter()
                        .map(|v| v.map(f64::to_bits))
                        .collect::<Vec<_>>()
                };
                assert_eq!(bits(got), bits(want), "values of `{}`", field.name());
            }
            _ => assert_eq!(
                got.to_data(),
                want.to_data(),
                "values of `{}`",
                field.name()
            ),
        }
    }
}

fn evolve_plan(step: u32) -> inlet_host::sync::SyncPlan {
    plan(MISBEHAVE, "events", json!({"mode": "evolve", "step": step}))
}

#[tokio::test]
async fn schema_changes_between_runs_are_absorbed() {
    let lake = Lake::in_memory();
    sync(&lake, &evolve_plan(1)).await.0.unwrap();
    let (result, recorder) = sync(&lake, &evolve_plan(2)).await;
    result.unwrap();

    let history = History::read(&lake, "events").await.unwrap();
    let schema = &history.latest().unwrap().streams["events"].schema;
    let field = |name: &str| schema.field_with_name(name).unwrap().clone();
    assert_eq!(
        field("id").data_type(),
        &DataType::Int64,
        "int32 widened to int64"
    );
    assert!(
        field("name").is_nullable(),
        "a column that stopped arriving is relaxed"
    );
    assert!(field("score").is_nullable(), "nulls relax NOT NULL");
    assert_eq!(
        field("email").data_type(),
        &DataType::Utf8,
        "a new column is added"
    );
    assert_eq!(
        field("amount").data_type(),
        &DataType::Int64,
        "the original type stays"
    );
    assert_eq!(
        field("amount__string").data_type(),
        &DataType::Utf8,
        "text goes to a variant column"
    );
    let changes = recorder.schema_changes.lock().unwrap().clone();
    assert!(
        changes.iter().any(|(_, c)| c.contains("amount__string")),
        "{changes:?}"
    );

    let rows = one_batch(read_committed(&lake, "events", "events").await.unwrap());
    let strings = |name: &str| {
        rows.column_by_name(name)
            .unwrap()
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let ints = |name: &str| {
        rows.column_by_name(name)
            .unwrap()
            .as_primitive::<Int64Type>()
            .iter()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ints("id"),
        vec![Some(1), Some(2), Some(3_000_000_000), Some(4)]
    );
    assert_eq!(ints("amount"), vec![Some(10), Some(20), None, None]);
    assert_eq!(
        strings("amount__string"),
        vec![None, None, Some("30.5".into()), Some("n/a".into())]
    );
    assert_eq!(
        strings("name"),
        vec![Some("a".into()), Some("b".into()), None, None]
    );
    assert_eq!(
        strings("email"),
        vec![
            None,
            None,
            Some("c@example.jp".into()),
            Some("d@example.jp".into())
        ]
    );
    let scores: Vec<Option<f64>> = rows
        .column_by_name("score")
        .unwrap()
        .as_primitive::<Float64Type>()
        .iter()
        .collect();
    assert_eq!(scores, vec![Some(0.5), Some(1.5), None, Some(4.5)]);
}

#[tokio::test]
async fn freeze_policy_refuses_an_incompatible_change_and_commits_nothing_of_it() {
    let lake = Lake::in_memory();
    sync(&lake, &evolve_plan(1)).await.0.unwrap();
    let mut frozen = evolve_plan(2);
    frozen
        .policies
        .insert("events".into(), IncompatiblePolicy::Freeze);
    let message = sync(&lake, &frozen)
        .await
        .0
        .expect_err("freeze refuses")
        .to_string();
    assert!(
        message.contains("column `amount`")
            && message.contains("`freeze`")
            && message.contains("stream `events`"),
        "{message}"
    );
    let history = History::read(&lake, "events").await.unwrap();
    assert!(
        history
            .commits
            .iter()
            .all(|c| c.run_id == history.commits[0].run_id),
        "only the first run committed"
    );
}

/// Rows of a sample stream keyed by id, as JSON text per row.
async fn rows_by_id(lake: &Lake, connection: &str, stream: &str) -> BTreeMap<i64, (i64, String)> {
    let mut rows = BTreeMap::new();
    for batch in read_committed(lake, connection, stream).await.unwrap() {
        let ids = batch
            .column_by_name("id")
            .unwrap()
            .as_primitive::<Int64Type>()
            .clone();
        let updated = batch
            .column_by_name("updated_at")
            .unwrap()
            .as_primitive::<arrow_array::types::TimestampMicrosecondType>()
            .clone();
        let mut buffer = Vec::new();
        let mut writer = arrow_json::LineDelimitedWriter::new(&mut buffer);
        writer.write(&batch).unwrap();
        writer.finish().unwrap();
        for ((id, updated), line) in ids
            .values()
            .iter()
            .zip(updated.values().iter())
            .zip(String::from_utf8(buffer).unwrap().lines())
        {
            // Keep the newest version of each row, as a merge on the primary key would.
            let newer = rows
                .get(id)
                .is_none_or(|(seen, _): &(i64, String)| *updated > *seen);
            if newer {
                rows.insert(*id, (*updated, line.to_owned()));
            }
        }
    }
    rows
}

#[tokio::test]
async fn incremental_syncs_add_up_to_a_full_refresh() {
    let lake = Lake::in_memory();
    let config = json!({"patients": 300, "new_per_run": 25, "updates_per_run": 40});
    let incremental = plan("sample", "shop", config.clone());
    let first = sync(&lake, &incremental).await.0.unwrap();
    assert_eq!(first.streams["patients"].rows, 300);
    let second = sync(&lake, &incremental).await.0.unwrap();
    let third = sync(&lake, &incremental).await.0.unwrap();
    for report in [&second, &third] {
        let rows = report.streams["patients"].rows;
        assert!(
            rows > 25 && rows <= 25 + 40,
            "new plus updated patients only, got {rows}"
        );
    }

    let mut full = plan(
        "sample",
        "shop_full",
        json!({"patients": 300, "new_per_run": 25, "updates_per_run": 40, "generation": 3}),
    );
    full.full_refresh = true;
    let full_report = sync(&lake, &full).await.0.unwrap();
    assert_eq!(full_report.streams["patients"].rows, 350);
    for stream in ["patients", "consultations", "orders"] {
        let merged = rows_by_id(&lake, "shop", stream).await;
        let reference = rows_by_id(&lake, "shop_full", stream).await;
        assert_eq!(merged.len(), reference.len(), "{stream}: same ids");
        assert_eq!(merged, reference, "{stream}: same newest values");
    }
    let state = History::read(&lake, "shop")
        .await
        .unwrap()
        .latest()
        .unwrap()
        .state
        .clone()
        .unwrap();
    assert_eq!(state["generation"], 3);
    assert!(matches!(
        full.sync_modes.get("patients"),
        None | Some(SyncMode::FullRefresh)
    ));
}

#[tokio::test]
async fn two_runners_of_one_connection_cannot_both_commit() {
    use inlet_host::lake::{ConnectorInfo, LakeSession, SessionOptions, StreamMeta};
    use inlet_host::runtime::BatchSink;
    let lake = Lake::in_memory();
    let info = ConnectorInfo {
        name: "test".into(),
        version: "0".into(),
        digest: "0".into(),
        settings: None,
    };
    let streams =
        || std::collections::BTreeMap::from([("items".to_owned(), StreamMeta::default())]);
    let open = || {
        LakeSession::open(
            lake.clone(),
            "shared",
            info.clone(),
            streams(),
            SessionOptions::default(),
            Arc::new(|_| {}),
        )
    };
    let batch = |ids: Vec<i64>| {
        RecordBatch::try_from_iter(vec![("id", Arc::new(Int64Array::from(ids)) as ArrayRef)])
            .unwrap()
    };

    let mut first = open().await.unwrap();
    let mut second = open().await.unwrap();
    first.emit("items", batch(vec![1, 2])).await.unwrap();
    second.emit("items", batch(vec![3, 4])).await.unwrap();
    first.checkpoint("{\"runner\": 1}".into()).await.unwrap();
    let lost = second
        .checkpoint("{\"runner\": 2}".into())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        lost.contains("sequence 1 of connection `shared` was committed by another run first"),
        "{lost}"
    );
    drop(second);

    let history = History::read(&lake, "shared").await.unwrap();
    assert_eq!(history.commits.len(), 1);
    assert_eq!(history.latest().unwrap().state, Some(json!({"runner": 1})));
    let rows = one_batch(read_committed(&lake, "shared", "items").await.unwrap());
    assert_eq!(
        rows.column(0).as_primitive::<Int64Type>().values().to_vec(),
        vec![1, 2],
        "only the winner's rows"
    );

    // The loser's file is debris: the next successful run removes it.
    let mut third = open().await.unwrap();
    third.emit("items", batch(vec![5])).await.unwrap();
    third.checkpoint("{\"runner\": 3}".into()).await.unwrap();
    let summary = third.finish().await.unwrap();
    assert_eq!(summary.swept, 1, "the losing runner's file is swept");
}

#[tokio::test]
async fn the_sample_connector_passes_the_conformance_kit() {
    // One generation: the source does not change between the kit's two reads.
    let config = json!({"patients": 50, "new_per_run": 5, "updates_per_run": 5, "generation": 1});
    inlet_tests::conformance::source_contract(
        crate::harness::runtime(),
        "sample",
        config,
        Default::default(),
    )
    .await;
}

/// The kit fails a connector that breaks a rule, naming the rule and why: one that ignores its
/// state (reads everything again), one whose batches do not fit its declared schema; and passes
/// the same stream read from its state.
#[tokio::test(flavor = "multi_thread")]
async fn the_kit_fails_connectors_that_break_a_rule_and_says_which() {
    use inlet_host::conformance::{Outcome, READ, RESTART, check_source};
    let kit = |mode: &'static str| async move {
        let reference =
            inlet_host::connectors::ConnectorRef::resolve(MISBEHAVE, std::path::Path::new("/"))
                .unwrap();
        check_source(
            crate::harness::runtime(),
            reference,
            json!({"mode": mode}),
            Default::default(),
        )
        .await
    };
    let good = kit("incremental").await;
    assert!(good.passed(), "{}", good.render());

    let ignoring = kit("ignore-state").await;
    let failures = ignoring.failures();
    assert_eq!(failures.len(), 1, "{}", ignoring.render());
    assert_eq!(failures[0].name, RESTART);
    assert!(
        matches!(&failures[0].outcome, Outcome::Failed(why) if why.contains("`items` read 3 rows again, 2 of them before the newest `id`")),
        "{}",
        ignoring.render()
    );

    let wrong = kit("wrong-schema").await;
    let failures = wrong.failures();
    assert_eq!(failures.len(), 1, "{}", wrong.render());
    assert_eq!(failures[0].name, READ);
    assert!(wrong.render().contains("skip"), "{}", wrong.render());
}
