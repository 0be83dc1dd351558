//! A connector that misbehaves on purpose, one way per `mode`, so the tests can show what the host
//! does about it. Modes: `ok`, `memory-bomb`, `spin`, `sleep`, `trap-after-emit`,
//! `checkpoint-then-trap`, `wrong-schema`, `all-types`, `evolve` (with `step` 1 or 2), and for the
//! conformance kit `incremental` (`items` by cursor `id`, from its state) and `ignore-state` (the
//! same stream, but every read starts over).
//!
//! It is also a push connector: each request emits three `items` rows starting at the id in its
//! `x-first` header, then succeeds, fails (`x-then: fail`) or traps (`x-then: trap`). A `x-first`
//! it has seen before (kept in its state, like heroku-logplex's frame ids) is a duplicate: no rows.

use inlet_sdk::arrow::array::types::Int64Type;
use inlet_sdk::arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int8Array, Int16Array, Int32Array, Int64Array, ListArray, StringArray, StructArray,
    TimestampMicrosecondArray, UInt32Array,
};
use inlet_sdk::prelude::*;
use inlet_sdk::{Push, Request, Response};
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct MisbehaveConfig {
    mode: String,
    #[serde(default)]
    step: u32,
}

struct Misbehave;

fn items_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

fn items(ids: std::ops::Range<i64>) -> RecordBatch {
    let names: Vec<String> = ids.clone().map(|i| format!("item {i}")).collect();
    RecordBatch::try_new(
        items_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(ids)),
            Arc::new(StringArray::from(names)),
        ],
    )
    .expect("items batch")
}

/// Every type the round-trip test checks, with edge values and nulls.
pub fn all_types() -> RecordBatch {
    let struct_fields = [
        Field::new("a", DataType::Int32, true),
        Field::new("b", DataType::Utf8, true),
    ];
    let structs = StructArray::from(vec![
        (
            Arc::new(struct_fields[0].clone()),
            Arc::new(Int32Array::from(vec![Some(1), None, Some(-3)])) as ArrayRef,
        ),
        (
            Arc::new(struct_fields[1].clone()),
            Arc::new(StringArray::from(vec![Some("x"), Some("ü"), None])) as ArrayRef,
        ),
    ]);
    let lists = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
        Some(vec![Some(1), Some(2)]),
        Some(vec![]),
        None,
    ]);
    let decimals = Decimal128Array::from(vec![Some(123_456_789_123_456_789), Some(-1), None])
        .with_precision_and_scale(38, 9)
        .expect("decimal precision");
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "i8",
            Arc::new(Int8Array::from(vec![Some(-128), None, Some(127)])),
        ),
        (
            "i16",
            Arc::new(Int16Array::from(vec![Some(-32768), Some(0), Some(32767)])),
        ),
        (
            "i32",
            Arc::new(Int32Array::from(vec![Some(i32::MIN), None, Some(i32::MAX)])),
        ),
        (
            "i64",
            Arc::new(Int64Array::from(vec![i64::MIN, 0, i64::MAX])),
        ),
        (
            "u32",
            Arc::new(UInt32Array::from(vec![Some(0), None, Some(u32::MAX)])),
        ),
        (
            "f32",
            Arc::new(Float32Array::from(vec![1.5, f32::NAN, f32::NEG_INFINITY])),
        ),
        (
            "f64",
            Arc::new(Float64Array::from(vec![
                Some(f64::MIN_POSITIVE),
                Some(f64::INFINITY),
                None,
            ])),
        ),
        (
            "flag",
            Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
        ),
        (
            "text",
            Arc::new(StringArray::from(vec!["héllo", "", "日本語 🚀"])),
        ),
        (
            "blob",
            Arc::new(BinaryArray::from(vec![
                Some(&b"\x00\xff"[..]),
                Some(&b""[..]),
                None,
            ])),
        ),
        (
            "day",
            Arc::new(Date32Array::from(vec![0, -719_162, 2_932_896])),
        ),
        (
            "at",
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(0), None, Some(253_402_300_799_999_999)])
                    .with_timezone("+00:00"),
            ),
        ),
        ("amount", Arc::new(decimals)),
        ("tags", Arc::new(lists)),
        ("nested", Arc::new(structs)),
    ];
    RecordBatch::try_from_iter(columns).expect("all-types batch")
}

fn events(step: u32) -> RecordBatch {
    match step {
        1 => RecordBatch::try_from_iter(vec![
            ("id", Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef),
            (
                "amount",
                Arc::new(Int64Array::from(vec![10, 20])) as ArrayRef,
            ),
            (
                "name",
                Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
            ),
            (
                "score",
                Arc::new(Float64Array::from(vec![0.5, 1.5])) as ArrayRef,
            ),
        ]),
        // id widened to int64, amount now text, name gone, email new, score has a null.
        _ => RecordBatch::try_from_iter(vec![
            (
                "id",
                Arc::new(Int64Array::from(vec![3_000_000_000, 4])) as ArrayRef,
            ),
            (
                "amount",
                Arc::new(StringArray::from(vec!["30.5", "n/a"])) as ArrayRef,
            ),
            (
                "email",
                Arc::new(StringArray::from(vec!["c@example.jp", "d@example.jp"])) as ArrayRef,
            ),
            (
                "score",
                Arc::new(Float64Array::from(vec![None, Some(4.5)])) as ArrayRef,
            ),
        ]),
    }
    .expect("events batch")
}

impl Source for Misbehave {
    type Config = MisbehaveConfig;

    fn spec() -> Spec {
        Spec::new("misbehave", "0.0.0", "misbehaves on purpose")
    }

    fn discover(config: &MisbehaveConfig) -> Result<Vec<Stream>, Error> {
        let items = Stream::new("items")
            .schema(items_schema())
            .primary_key(["id"]);
        let items = match config.mode.as_str() {
            "incremental" | "ignore-state" => items.cursor("id"),
            _ => items,
        };
        Ok(vec![
            items,
            Stream::new("all_types").schema(all_types().schema()),
            Stream::new("events").primary_key(["id"]),
        ])
    }

    fn read(
        config: &MisbehaveConfig,
        _: &[ConfiguredStream],
        mut state: State,
        out: &mut Output,
    ) -> Result<(), Error> {
        match config.mode.as_str() {
            "ok" => {
                out.emit("items", &items(0..3))?;
                state.set("done", &true)?;
                out.checkpoint(&state)
            }
            "memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 16 << 20]);
                    out.log(
                        LogLevel::Debug,
                        &format!("holding {} MiB", hoard.len() * 16),
                    );
                }
            }
            "spin" => {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(())
            }
            "trap-after-emit" => {
                out.emit("items", &items(0..3))?;
                panic!("boom after emitting 3 rows");
            }
            "checkpoint-then-trap" => {
                out.emit("items", &items(0..3))?;
                state.set("checkpointed", &3)?;
                out.checkpoint(&state)?;
                out.emit("items", &items(3..6))?;
                panic!("boom after a checkpoint");
            }
            "wrong-schema" => {
                let batch = RecordBatch::try_from_iter(vec![
                    ("id", Arc::new(StringArray::from(vec!["1"])) as ArrayRef),
                    ("name", Arc::new(StringArray::from(vec!["x"])) as ArrayRef),
                ])?;
                out.emit("items", &batch)?;
                out.checkpoint(&state)
            }
            "all-types" => {
                out.emit("all_types", &all_types())?;
                out.checkpoint(&state)
            }
            "incremental" | "ignore-state" => {
                let after: i64 = match config.mode.as_str() {
                    "incremental" => state.get("items.id")?.unwrap_or(-1),
                    _ => -1,
                };
                let ids = (after + 1).max(0)..3;
                if !ids.is_empty() {
                    out.emit("items", &items(ids))?;
                }
                state.set("items.id", &2)?;
                out.checkpoint(&state)
            }
            "evolve" => {
                out.emit("events", &events(config.step))?;
                state.set("step", &config.step)?;
                out.checkpoint(&state)
            }
            other => Err(Error::config(format!("unknown mode `{other}`"))),
        }
    }
}

/// The push side: the `x-first` ids seen.
struct Pushed {
    seen: Vec<i64>,
}

impl Source for Pushed {
    type Config = MisbehaveConfig;

    fn spec() -> Spec {
        Misbehave::spec()
    }

    fn discover(config: &MisbehaveConfig) -> Result<Vec<Stream>, Error> {
        Misbehave::discover(config)
    }

    fn read(
        config: &MisbehaveConfig,
        streams: &[ConfiguredStream],
        state: State,
        out: &mut Output,
    ) -> Result<(), Error> {
        Misbehave::read(config, streams, state, out)
    }
}

impl Push for Pushed {
    fn open(_: MisbehaveConfig, state: State) -> Result<Self, Error> {
        Ok(Pushed {
            seen: state.get("seen")?.unwrap_or_default(),
        })
    }

    fn handle(&mut self, request: &Request, out: &mut Output) -> Result<Response, Error> {
        let first: i64 = request
            .header("x-first")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if self.seen.contains(&first) {
            let mut response = Response::no_content();
            response.headers.push(("x-duplicate".into(), "true".into()));
            return Ok(response);
        }
        out.emit("items", &items(first..first + 3))?;
        match request.header("x-then") {
            Some("fail") => Err(Error::data("refused after emitting 3 rows")),
            Some("trap") => panic!("trap after emitting 3 rows"),
            _ => {
                self.seen.push(first);
                Ok(Response::no_content())
            }
        }
    }

    fn state(&self) -> Result<Option<State>, Error> {
        let mut state = State::default();
        state.set("seen", &self.seen)?;
        Ok(Some(state))
    }
}

inlet_sdk::export_push!(Pushed);
