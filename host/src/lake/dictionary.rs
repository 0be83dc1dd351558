//! Which columns of a Parquet file are written without a dictionary, judged on its first batch.
//!
//! Parquet's writer starts every column chunk with a dictionary and falls back to plain encoding
//! once the dictionary outgrows its limit: a column of ids, amounts or free text pays for hashing
//! every value up to that point, then for both encodings (lineitem SF1: a fifth of the encode's
//! samples in interning, files 4 % larger). A column whose sample adds distinct values fast enough to
//! fill the dictionary within a row group is written plain from the start; the others keep theirs.

use arrow_array::cast::AsArray;
use arrow_array::{Array, OffsetSizeTrait, RecordBatch};
use arrow_data::ArrayData;
use arrow_schema::DataType;
use parquet::schema::types::ColumnPath;
use std::collections::HashSet;

/// At most this many rows of the first batch are looked at.
const SAMPLE_ROWS: usize = 65_536;
/// Fewer non-null values than this say too little: the column keeps its dictionary.
const MIN_SAMPLE: usize = 4_096;

/// The top-level columns of `sample` whose dictionary would outgrow `limit_bytes` within a row
/// group of `row_group_rows`. Nested columns and columns with too small a sample are not judged.
pub fn columns_without_dictionary(
    sample: &RecordBatch,
    row_group_rows: usize,
    limit_bytes: usize,
) -> Vec<ColumnPath> {
    let schema = sample.schema();
    schema
        .fields()
        .iter()
        .zip(sample.columns())
        .filter(|(_, column)| {
            let rows = column.len().min(SAMPLE_ROWS);
            let column = column.slice(0, rows);
            projected_dictionary_bytes(column.as_ref(), row_group_rows)
                .is_some_and(|bytes| bytes > limit_bytes)
        })
        .map(|(field, _)| ColumnPath::new(vec![field.name().clone()]))
        .collect()
}

/// The bytes a row group's dictionary of `column` would reach, extrapolated from the rate at
/// which the second half of the sample adds distinct values; `None` when not judged.
fn projected_dictionary_bytes(column: &dyn Array, row_group_rows: usize) -> Option<usize> {
    let data = column.to_data();
    let (values, fixed_width) = values_of(column, &data)?;
    let values: Vec<&[u8]> = values.collect();
    if values.len() < MIN_SAMPLE {
        return None;
    }
    let half = values.len() / 2;
    let mut distinct: HashSet<&[u8]> = values[..half].iter().copied().collect();
    let in_first_half = distinct.len();
    distinct.extend(values[half..].iter().copied());
    let new_per_row = (distinct.len() - in_first_half) as f64 / (values.len() - half) as f64;
    let rows_left = row_group_rows.saturating_sub(values.len()) as f64;
    let projected = distinct.len() as f64 + new_per_row * rows_left;
    // A dictionary page stores text plainly: a 4-byte length before each value.
    let width = fixed_width.unwrap_or_else(|| {
        4 + distinct.iter().map(|v| v.len()).sum::<usize>() / distinct.len().max(1)
    });
    Some((projected * width as f64) as usize)
}

type Values<'a> = Box<dyn Iterator<Item = &'a [u8]> + 'a>;

/// The non-null values of `column` as bytes, with the width Parquet stores each in when it is
/// fixed; `None` for types not judged (booleans, nested and dictionary-encoded columns).
fn values_of<'a>(
    column: &'a dyn Array,
    data: &'a ArrayData,
) -> Option<(Values<'a>, Option<usize>)> {
    fn some<'a>(values: impl Iterator<Item = Option<&'a [u8]>> + 'a) -> Values<'a> {
        Box::new(values.flatten())
    }
    Some(match column.data_type() {
        DataType::Utf8 => (text::<i32>(column), None),
        DataType::LargeUtf8 => (text::<i64>(column), None),
        DataType::Binary => (some(column.as_binary::<i32>().iter()), None),
        DataType::LargeBinary => (some(column.as_binary::<i64>().iter()), None),
        DataType::FixedSizeBinary(width) => (
            some(column.as_fixed_size_binary().iter()),
            Some(*width as usize),
        ),
        data_type if data_type.is_primitive() => {
            let width = data_type.primitive_width()?;
            let bytes =
                &data.buffers()[0].as_slice()[data.offset() * width..][..data.len() * width];
            let valid = (0..data.len()).map(move |i| column.is_valid(i));
            let values = bytes.chunks_exact(width).zip(valid);
            (
                Box::new(values.filter_map(|(v, valid)| valid.then_some(v))),
                Some(stored_width(data_type, width)),
            )
        }
        _ => return None,
    })
}

/// The non-null values of a text column, as bytes.
fn text<O: OffsetSizeTrait>(column: &dyn Array) -> Values<'_> {
    Box::new(column.as_string::<O>().iter().flatten().map(str::as_bytes))
}

/// The bytes Parquet stores a value of a fixed-width `data_type` in (`width` in Arrow).
fn stored_width(data_type: &DataType, width: usize) -> usize {
    match *data_type {
        DataType::Decimal32(p, _)
        | DataType::Decimal64(p, _)
        | DataType::Decimal128(p, _)
        | DataType::Decimal256(p, _)
            if p <= 9 =>
        {
            4
        }
        DataType::Decimal64(..) => 8,
        DataType::Decimal128(p, _) | DataType::Decimal256(p, _) if p <= 18 => 8,
        // Integers narrower than 32 bits are stored as INT32.
        _ => width.max(4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Rng;
    use arrow_array::{Date32Array, Decimal128Array, Int64Array, StringArray};
    use arrow_schema::{Field, Schema};
    use std::sync::Arc;

    const ROW_GROUP: usize = 256 * 1024;
    const LIMIT: usize = 256 << 10;

    fn judged(columns: Vec<(&str, Arc<dyn Array>)>) -> Vec<String> {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
            .collect();
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns.into_iter().map(|(_, a)| a).collect(),
        )
        .unwrap();
        columns_without_dictionary(&batch, ROW_GROUP, LIMIT)
            .into_iter()
            .map(|p| p.string())
            .collect()
    }

    /// A sample of lineitem's kinds of columns: ids, keys repeated a few times, dates out of a
    /// few thousand, amounts out of fifty, flags, free text.
    #[test]
    fn ids_amounts_and_free_text_go_plain_while_dates_flags_and_small_sets_keep_a_dictionary() {
        let mut rng = Rng::new(7);
        let rows = 14_000;
        let mut column = |f: &mut dyn FnMut(&mut Rng, usize) -> i64| -> Vec<i64> {
            (0..rows).map(|i| f(&mut rng, i)).collect()
        };
        let ids = column(&mut |_, i| i as i64);
        let orders = column(&mut |_, i| (i / 4) as i64);
        let parts = column(&mut |r, _| r.below(200_000) as i64);
        let dates = column(&mut |r, _| 8_000 + r.below(2_526) as i64);
        let quantities = column(&mut |r, _| 100 * (1 + r.below(50) as i64));
        let prices = column(&mut |r, _| r.below(10_000_000) as i64);
        let flags = column(&mut |r, _| r.below(3) as i64);
        let comments = column(&mut |r, _| r.next() as i64);
        let decimal = |v: &[i64]| -> Arc<dyn Array> {
            Arc::new(
                Decimal128Array::from_iter_values(v.iter().map(|&v| i128::from(v)))
                    .with_precision_and_scale(15, 2)
                    .unwrap(),
            )
        };
        let plain = judged(vec![
            ("id", Arc::new(Int64Array::from(ids))),
            ("order", Arc::new(Int64Array::from(orders))),
            ("part", Arc::new(Int64Array::from(parts))),
            (
                "shipped",
                Arc::new(Date32Array::from_iter_values(
                    dates.iter().map(|&d| d as i32),
                )),
            ),
            ("quantity", decimal(&quantities)),
            ("price", decimal(&prices)),
            (
                "flag",
                Arc::new(StringArray::from_iter_values(
                    flags.iter().map(|f| ["A", "N", "R"][*f as usize]),
                )),
            ),
            (
                "comment",
                Arc::new(StringArray::from_iter_values(
                    comments.iter().map(|c| format!("carefully final {c:x}")),
                )),
            ),
        ]);
        assert_eq!(plain, ["id", "order", "part", "price", "comment"]);
    }

    #[test]
    fn nulls_small_samples_and_nested_columns_are_not_judged() {
        // Unique values, but only 1,000 of them not null: too few to judge.
        let mostly_null = Int64Array::from_iter((0..20_000).map(|i| (i % 20 == 0).then_some(i)));
        // 5,000 unique values among nulls: judged on those.
        let unique_among_nulls =
            Int64Array::from_iter((0..20_000).map(|i| (i % 4 == 0).then_some(i)));
        let short = StringArray::from_iter_values((0..100).map(|i| i.to_string()));
        let padded = StringArray::from_iter_values((0..20_000).map(|i| (i % 100).to_string()));
        let lists =
            arrow_array::ListArray::from_iter_primitive::<arrow_array::types::Int64Type, _, _>(
                (0..20_000).map(|i| Some(vec![Some(i)])),
            );
        assert_eq!(
            judged(vec![
                ("mostly_null", Arc::new(mostly_null)),
                ("unique_among_nulls", Arc::new(unique_among_nulls)),
                ("lists", Arc::new(lists)),
            ]),
            ["unique_among_nulls"]
        );
        let short_batch = judged(vec![("short", Arc::new(short))]);
        assert!(short_batch.is_empty(), "{short_batch:?}");
        assert!(judged(vec![("padded", Arc::new(padded))]).is_empty());
    }
}
