//! Property test of schema evolution: random sequences of batches whose columns change type, any
//! number of times, go through `merge` and `conform`; every value must land in exactly one column
//! and come back unchanged, and nothing may panic. Seeded: a failure prints the seed to replay with
//! `INLET_EVOLUTION_SEED=<seed>`.

use super::evolution::{IncompatiblePolicy, conform, home_in, merge};
use crate::test_rng::Rng;
use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, ListArray, NullArray, RecordBatch, StructArray};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use std::sync::Arc;

fn struct_of(inner: DataType) -> DataType {
    DataType::Struct(Fields::from(vec![Field::new("x", inner, true)]))
}

/// The types a column may arrive as: families with several members (ints, decimals, structs),
/// types that widen into each other and types that never do.
fn types() -> Vec<DataType> {
    vec![
        DataType::Null,
        DataType::Boolean,
        DataType::Int32,
        DataType::Int64,
        DataType::Float64,
        DataType::Utf8,
        DataType::Decimal128(5, 4),
        DataType::Decimal128(10, 0),
        DataType::Decimal128(12, 4),
        DataType::Date32,
        DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        struct_of(DataType::Int64),
        struct_of(DataType::Utf8),
        struct_of(DataType::Boolean),
        DataType::Struct(Fields::from(vec![Field::new("y", DataType::Int64, true)])),
        DataType::new_list(DataType::Int64, true),
    ]
}

fn random_array(rng: &mut Rng, data_type: &DataType, rows: usize) -> ArrayRef {
    let valid: Vec<bool> = (0..rows).map(|_| !rng.chance(20)).collect();
    macro_rules! build {
        ($builder:expr, $value:expr) => {{
            let mut builder = $builder;
            for &ok in &valid {
                if ok {
                    builder.append_value($value(&mut *rng));
                } else {
                    builder.append_null();
                }
            }
            Arc::new(builder.finish()) as ArrayRef
        }};
    }
    match data_type {
        DataType::Null => Arc::new(NullArray::new(rows)),
        DataType::Boolean => build!(BooleanBuilder::new(), |r: &mut Rng| r.chance(50)),
        DataType::Int32 => build!(Int32Builder::new(), |r: &mut Rng| r.next() as i32),
        DataType::Int64 => build!(Int64Builder::new(), |r: &mut Rng| r.next() as i64),
        DataType::Float64 => build!(Float64Builder::new(), |r: &mut Rng| (r.next() as i64)
            as f64
            / 1024.0),
        DataType::Utf8 => build!(StringBuilder::new(), |r: &mut Rng| format!(
            "v{}",
            r.next() % 1000
        )),
        DataType::Decimal128(precision, scale) => {
            let limit = 10i128.pow(u32::from(*precision));
            build!(
                Decimal128Builder::new()
                    .with_precision_and_scale(*precision, *scale)
                    .expect("valid decimal type"),
                |r: &mut Rng| (r.next() as i128) % limit
            )
        }
        DataType::Date32 => build!(Date32Builder::new(), |r: &mut Rng| (r.next() % 40_000)
            as i32),
        DataType::Timestamp(_, zone) => build!(
            TimestampMicrosecondBuilder::new().with_timezone_opt(zone.clone()),
            |r: &mut Rng| (r.next() >> 8) as i64
        ),
        DataType::Struct(fields) => {
            let child = random_array(rng, fields[0].data_type(), rows);
            let nulls = NullBuffer::from(valid.clone());
            Arc::new(
                StructArray::try_new(fields.clone(), vec![child], Some(nulls))
                    .expect("struct of one nullable child"),
            )
        }
        DataType::List(_) => {
            let items: Vec<Option<Vec<Option<i64>>>> = valid
                .iter()
                .map(|&ok| {
                    ok.then(|| {
                        (0..rng.below(3))
                            .map(|_| (!rng.chance(10)).then(|| rng.next() as i64))
                            .collect()
                    })
                })
                .collect();
            Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(items))
        }
        other => unreachable!("no generator for {other}"),
    }
}

/// A batch of 0..3 of the columns `a`, `b` and `a__int` (a source column named like a variant
/// of `a`), each with a random type.
fn random_batch(rng: &mut Rng, types: &[DataType]) -> RecordBatch {
    let rows = rng.below(6);
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for name in ["a", "b", "a__int"] {
        if rng.chance(30) {
            continue;
        }
        let data_type = types[rng.below(types.len())].clone();
        let column = random_array(rng, &data_type, rows);
        let nullable =
            column.logical_null_count() > 0 || data_type == DataType::Null || rng.chance(50);
        fields.push(Field::new(name, data_type, nullable));
        columns.push(column);
    }
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)
        .expect("columns match their fields")
}

/// Every column of `batch` has its values in exactly its home column of `written`, and every
/// other column of `written` is null.
fn assert_values_kept(batch: &RecordBatch, written: &RecordBatch, policy: IncompatiblePolicy) {
    let schema = written.schema();
    let mut homes = vec![false; schema.fields().len()];
    for (index, field) in batch.schema().fields().iter().enumerate() {
        let original = batch.column(index);
        let Some(home) = home_in(&schema, &batch.schema(), field.name(), field.data_type()) else {
            assert_eq!(
                policy,
                IncompatiblePolicy::Discard,
                "column `{}` ({}) has no home in {schema:?}",
                field.name(),
                field.data_type()
            );
            continue;
        };
        homes[home] = true;
        let stored = written.column(home);
        if field.data_type() == &DataType::Null {
            assert_eq!(stored.logical_null_count(), stored.len());
            continue;
        }
        let back = arrow_cast::cast(stored, field.data_type()).expect("widening casts reverse");
        assert_eq!(
            &back,
            original,
            "column `{}` ({}) stored in `{}`",
            field.name(),
            field.data_type(),
            schema.field(home).name()
        );
    }
    for (index, home) in homes.into_iter().enumerate() {
        if !home {
            let column = written.column(index);
            assert_eq!(
                column.logical_null_count(),
                column.len(),
                "`{}` filled by nothing",
                schema.field(index).name()
            );
        }
    }
}

/// The old schema's columns are all still there, at the same place, taking the same values.
fn assert_grows(before: &SchemaRef, after: &SchemaRef) {
    for (old, new) in before.fields().iter().zip(after.fields()) {
        assert_eq!(old.name(), new.name(), "columns never move: {after:?}");
        assert!(
            old.data_type().equals_datatype(new.data_type())
                || super::evolution::widens_to(old.data_type(), new.data_type()),
            "`{}` went from {} to {}",
            old.name(),
            old.data_type(),
            new.data_type()
        );
        assert!(new.is_nullable() || !old.is_nullable());
    }
    assert!(after.fields().len() >= before.fields().len());
}

fn run_sequence(seed: u64) {
    let mut rng = Rng::new(seed);
    let types = types();
    let policy = match rng.below(10) {
        0 => IncompatiblePolicy::Discard,
        1 => IncompatiblePolicy::Freeze,
        _ => IncompatiblePolicy::Evolve,
    };
    let first = random_batch(&mut rng, &types);
    let mut current = first.schema();
    let mut written = vec![(first.clone(), first)];
    for _ in 0..rng.below(10) {
        let batch = random_batch(&mut rng, &types);
        let merged = match merge(&current, &batch, policy) {
            Ok(merged) => merged,
            Err(frozen) => {
                assert_eq!(policy, IncompatiblePolicy::Freeze, "{frozen}");
                continue;
            }
        };
        assert_grows(&current, &merged.schema);
        let conformed = conform(&batch, &merged.schema).expect("a merged schema takes its batch");
        assert_values_kept(&batch, &conformed, policy);
        current = merged.schema;
        written.push((batch, conformed));
    }
    // Files written under older schemas read back under the newest one with nothing lost.
    for (_, file) in &written {
        let reread = conform(file, &current).expect("older files conform to the newest schema");
        assert_values_kept(file, &reread, IncompatiblePolicy::Evolve);
    }
}

#[test]
fn random_schema_changes_keep_every_value() {
    let seeds: Vec<u64> = match std::env::var("INLET_EVOLUTION_SEED") {
        Ok(seed) => vec![seed.parse().expect("INLET_EVOLUTION_SEED is a number")],
        Err(_) => {
            let base = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            (0..2_000).map(|i| base.wrapping_add(i * 7919)).collect()
        }
    };
    for seed in seeds {
        let outcome = std::panic::catch_unwind(|| run_sequence(seed));
        if let Err(panic) = outcome {
            eprintln!("schema evolution property failed; replay with INLET_EVOLUTION_SEED={seed}");
            std::panic::resume_unwind(panic);
        }
    }
}
