//! Schema evolution: merging a batch's schema into a stream's schema, and conforming batches to it.
//!
//! Rules (the reason Inlet exists: no manual schema refresh):
//! - a new column is added, nullable, from the next file on;
//! - a column that stops arriving is kept and filled with nulls (made nullable if it was not);
//! - NOT NULL becomes nullable when nulls arrive;
//! - a compatible widening (int32 -> int64, float32 -> float64, decimal growing) widens the column;
//! - anything else is incompatible, and the stream's [`IncompatiblePolicy`] decides: a variant
//!   column `name__<type>` (`evolve`), an error (`freeze`), or dropping the values (`discard`).

use arrow_array::{Array, ArrayRef, RecordBatch, new_null_array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What to do when a column arrives with a type that cannot be widened into the existing one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncompatiblePolicy {
    /// Keep the values in a variant column `name__<type>` and warn.
    #[default]
    Evolve,
    /// Stop the run with an error.
    Freeze,
    /// Drop the values (the column is null for those rows) and warn.
    Discard,
}

/// One change made to a stream's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaChange {
    /// A column was added.
    Added { column: String, data_type: DataType },
    /// A column became nullable.
    Relaxed { column: String },
    /// A column's type was widened.
    Widened {
        column: String,
        from: DataType,
        to: DataType,
    },
    /// Values of an incompatible type went to a variant column.
    Variant {
        column: String,
        variant: String,
        data_type: DataType,
    },
    /// Values of an incompatible type were dropped.
    Discarded { column: String, data_type: DataType },
}

impl std::fmt::Display for SchemaChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Added { column, data_type } => write!(f, "added column `{column}` ({data_type})"),
            Self::Relaxed { column } => write!(f, "column `{column}` is now nullable"),
            Self::Widened { column, from, to } => {
                write!(f, "widened column `{column}` from {from} to {to}")
            }
            Self::Variant {
                column,
                variant,
                data_type,
            } => {
                write!(
                    f,
                    "column `{column}` arrived as {data_type}: values go to variant column `{variant}`"
                )
            }
            Self::Discarded { column, data_type } => {
                write!(
                    f,
                    "column `{column}` arrived as {data_type}: values discarded by policy"
                )
            }
        }
    }
}

/// An incompatible change under the `freeze` policy.
#[derive(Debug, thiserror::Error)]
#[error(
    "column `{column}` arrived as {incoming} but the stream has {existing}, and the stream's policy is `freeze` (set `on_incompatible = \"evolve\"` to keep such values in a variant column)"
)]
pub struct FrozenSchemaError {
    /// The column.
    pub column: String,
    /// Its type in the stream.
    pub existing: DataType,
    /// The type that arrived.
    pub incoming: DataType,
}

/// The result of merging: the new schema and what changed. `changes` is empty when the schema
/// stays as it was.
#[derive(Debug)]
pub struct Merged {
    /// The stream's schema after the batch.
    pub schema: SchemaRef,
    /// What changed.
    pub changes: Vec<SchemaChange>,
}

/// Merges the schema of `batch` into `current` under `policy`.
pub fn merge(
    current: &SchemaRef,
    batch: &RecordBatch,
    policy: IncompatiblePolicy,
) -> Result<Merged, FrozenSchemaError> {
    let incoming = batch.schema();
    let mut fields: Vec<Field> = current
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut changes = Vec::new();
    for new in incoming.fields() {
        let Some(index) = fields.iter().position(|f| f.name() == new.name()) else {
            fields.push(source_column(new));
            changes.push(SchemaChange::Added {
                column: new.name().clone(),
                data_type: new.data_type().clone(),
            });
            continue;
        };
        let existing = fields[index].clone();
        if fits(new.data_type(), existing.data_type()) {
            continue;
        }
        if widens_to(existing.data_type(), new.data_type()) {
            fields[index] = existing.clone().with_data_type(new.data_type().clone());
            changes.push(SchemaChange::Widened {
                column: new.name().clone(),
                from: existing.data_type().clone(),
                to: new.data_type().clone(),
            });
            continue;
        }
        match policy {
            IncompatiblePolicy::Freeze => {
                return Err(FrozenSchemaError {
                    column: new.name().clone(),
                    existing: existing.data_type().clone(),
                    incoming: new.data_type().clone(),
                });
            }
            IncompatiblePolicy::Discard => {
                changes.push(SchemaChange::Discarded {
                    column: new.name().clone(),
                    data_type: new.data_type().clone(),
                });
            }
            IncompatiblePolicy::Evolve => {
                if let Some(change) = place_in_variant(&mut fields, new, &incoming) {
                    changes.push(change);
                }
            }
        }
    }
    // Every column the batch does not fill must accept nulls.
    let provisional = Schema::new(fields.clone());
    let mut filled = vec![false; fields.len()];
    for (column, field) in incoming.fields().iter().enumerate() {
        if let Some(home) = home_in(&provisional, &incoming, field.name(), field.data_type()) {
            filled[home] |= batch.column(column).logical_null_count() == 0;
        }
    }
    for (field, filled) in fields.iter_mut().zip(filled) {
        if !field.is_nullable() && !filled {
            *field = field.clone().with_nullable(true);
            changes.push(SchemaChange::Relaxed {
                column: field.name().clone(),
            });
        }
    }
    let schema = Arc::new(Schema::new_with_metadata(
        fields,
        current.metadata().clone(),
    ));
    Ok(Merged { schema, changes })
}

/// Finds or makes the variant column of `new`'s name that holds its type: an existing variant
/// that takes the type as it is, else one that widens to it (`x__int` Int32 -> Int64), else a new
/// variant column. Returns what changed, if anything.
fn place_in_variant(
    fields: &mut Vec<Field>,
    new: &Field,
    incoming: &Schema,
) -> Option<SchemaChange> {
    let base = new.name();
    let variants: Vec<usize> = (0..fields.len())
        .filter(|&i| {
            is_variant_of(&fields[i], base) && incoming.index_of(fields[i].name()).is_err()
        })
        .collect();
    if variants
        .iter()
        .any(|&i| fits(new.data_type(), fields[i].data_type()))
    {
        return None;
    }
    if let Some(&i) = variants
        .iter()
        .find(|&&i| widens_to(fields[i].data_type(), new.data_type()))
    {
        let from = fields[i].data_type().clone();
        fields[i] = fields[i].clone().with_data_type(new.data_type().clone());
        return Some(SchemaChange::Widened {
            column: fields[i].name().clone(),
            from,
            to: new.data_type().clone(),
        });
    }
    // A second incompatible type of one family (`x__decimal` holds (5, 4), (10, 2) arrives) gets a
    // numbered name; the metadata, not the name, says which column a variant belongs to.
    let preferred = variant_name(base, new.data_type());
    let variant = std::iter::once(preferred.clone())
        .chain((2..).map(|n| format!("{preferred}_{n}")))
        .find(|name| fields.iter().all(|f| f.name() != name) && incoming.index_of(name).is_err())
        .unwrap_or(preferred);
    // The incoming field's own metadata (`arrow.json`...) stays, with the marker added.
    let mut metadata = new.metadata().clone();
    metadata.insert(VARIANT_OF.to_owned(), base.clone());
    fields.push(Field::new(&variant, new.data_type().clone(), true).with_metadata(metadata));
    Some(SchemaChange::Variant {
        column: base.clone(),
        variant,
        data_type: new.data_type().clone(),
    })
}

/// Field metadata naming the column a variant column holds values of (empty on a source column
/// whose name merely looks like a variant's, so it is never taken for one).
pub const VARIANT_OF: &str = "inlet.variant_of";

/// A column the source sent, as added to the stream: nullable, and marked as not a variant when
/// its name has the variant form (`x__int` from the source is a column of its own).
fn source_column(new: &Field) -> Field {
    let field = new.clone().with_nullable(true);
    if !new.name().contains("__") {
        return field;
    }
    let mut metadata = field.metadata().clone();
    metadata.insert(VARIANT_OF.to_owned(), String::new());
    field.with_metadata(metadata)
}

/// Whether `field` is a variant column of `base`: marked so in its metadata, or (lakes written
/// before the marker) named `base__<type family>` after its own type.
pub fn is_variant_of(field: &Field, base: &str) -> bool {
    match field.metadata().get(VARIANT_OF) {
        Some(of) => of == base,
        None => *field.name() == variant_name(base, field.data_type()),
    }
}

/// Reshapes `batch` to `target` (a schema produced by [`merge`] for it): each column goes to its
/// home in `target` (the column of its name, or the variant column that takes its type), widened;
/// columns the batch does not fill are nulls.
pub fn conform(
    batch: &RecordBatch,
    target: &SchemaRef,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let incoming = batch.schema();
    let mut columns: Vec<Option<ArrayRef>> = vec![None; target.fields().len()];
    for (index, field) in incoming.fields().iter().enumerate() {
        let Some(home) = home_in(target, &incoming, field.name(), field.data_type()) else {
            continue;
        };
        if columns[home].is_some() {
            return Err(arrow_schema::ArrowError::SchemaError(format!(
                "columns `{}` and another of the batch both belong in `{}`; rename one of them at the source",
                field.name(),
                target.field(home).name()
            )));
        }
        let column = batch.column(index);
        let wanted = target.field(home).data_type();
        columns[home] = Some(if column.data_type() == wanted {
            column.clone()
        } else if same_shape(column.data_type(), wanted) {
            // Equal but for nested nullability or metadata: the same buffers, relabelled.
            arrow_array::make_array(
                column
                    .to_data()
                    .into_builder()
                    .data_type(wanted.clone())
                    .build()?,
            )
        } else {
            arrow_cast::cast(column, wanted)?
        });
    }
    let columns = columns
        .into_iter()
        .zip(target.fields())
        .map(|(column, field)| {
            column.unwrap_or_else(|| new_null_array(field.data_type(), batch.num_rows()))
        })
        .collect();
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(target.clone(), columns, &options)
}

/// The column of `target` that holds values of column `name` arriving as `data_type`: `name`
/// itself when the type fits it, else a variant column of `name` that takes the type (one of
/// exactly that type first). `None` when no column takes it (discarded values).
pub fn home_of(target: &Schema, name: &str, data_type: &DataType) -> Option<usize> {
    home_in(target, &Schema::empty(), name, data_type)
}

/// [`home_of`], where a column named in `incoming` is that column's home and never a variant.
pub(crate) fn home_in(
    target: &Schema,
    incoming: &Schema,
    name: &str,
    data_type: &DataType,
) -> Option<usize> {
    let index = target.index_of(name).ok()?;
    if fits(data_type, target.field(index).data_type()) {
        return Some(index);
    }
    let variants: Vec<usize> = (0..target.fields().len())
        .filter(|&i| {
            let field = target.field(i);
            is_variant_of(field, name) && incoming.index_of(field.name()).is_err()
        })
        .collect();
    variants
        .iter()
        .find(|&&i| same_shape(data_type, target.field(i).data_type()))
        .or_else(|| {
            variants
                .iter()
                .find(|&&i| widens_to(data_type, target.field(i).data_type()))
        })
        .copied()
}

/// Whether values of `from` go into a column of type `to` as they are or widened.
fn fits(from: &DataType, to: &DataType) -> bool {
    same_shape(from, to) || widens_to(from, to)
}

/// Equal types, nested field names included (Arrow's `equals_datatype` ignores those, and a struct
/// `{a, b}` taken for `{b, a}` would swap values), nested nullability and metadata not.
pub fn same_shape(a: &DataType, b: &DataType) -> bool {
    use DataType::*;
    let same_field =
        |x: &Field, y: &Field| x.name() == y.name() && same_shape(x.data_type(), y.data_type());
    match (a, b) {
        (Struct(x), Struct(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(x, y)| same_field(x, y))
        }
        (List(x), List(y)) | (LargeList(x), LargeList(y)) => same_field(x, y),
        (FixedSizeList(x, n), FixedSizeList(y, m)) => n == m && same_field(x, y),
        (Map(x, s), Map(y, t)) => s == t && same_field(x, y),
        (Dictionary(k, v), Dictionary(l, w)) => k == l && same_shape(v, w),
        _ => a.equals_datatype(b),
    }
}

/// The preferred name of the variant column holding values of `data_type` for `column`.
pub fn variant_name(column: &str, data_type: &DataType) -> String {
    format!("{column}__{}", type_suffix(data_type))
}

fn type_suffix(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "bytes".into(),
        DataType::Boolean => "bool".into(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => "int".into(),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => "uint".into(),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "float".into(),
        DataType::Decimal128(_, _) | DataType::Decimal256(_, _) => "decimal".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time".into(),
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _) => "list".into(),
        DataType::Struct(_) => "struct".into(),
        other => other
            .to_string()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect(),
    }
}

/// Whether values of `from` fit losslessly into `to`.
pub fn widens_to(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    match (from, to) {
        (Null, _) => true,
        (Int8, Int16 | Int32 | Int64) | (Int16, Int32 | Int64) | (Int32, Int64) => true,
        (UInt8, Int16 | Int32 | Int64 | UInt16 | UInt32 | UInt64) => true,
        (UInt16, Int32 | Int64 | UInt32 | UInt64) | (UInt32, Int64 | UInt64) => true,
        (Float16, Float32 | Float64) | (Float32, Float64) => true,
        (Utf8, LargeUtf8) | (Binary, LargeBinary) => true,
        (Decimal128(p1, s1), Decimal128(p2, s2)) => {
            s2 >= s1
                && (*p2 as i16 - *s2 as i16) >= (*p1 as i16 - *s1 as i16)
                && (p1, s1) != (p2, s2)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int32Array, Int64Array, StringArray};

    fn schema(fields: Vec<Field>) -> SchemaRef {
        Arc::new(Schema::new(fields))
    }

    #[test]
    fn added_column_is_nullable_and_old_rows_conform() {
        let current = schema(vec![Field::new("id", DataType::Int64, false)]);
        let incoming = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("email", DataType::Utf8, false),
        ]);
        let merged = merge(
            &current,
            &RecordBatch::new_empty(Arc::new(incoming)),
            IncompatiblePolicy::Evolve,
        )
        .unwrap();
        assert_eq!(
            merged.changes,
            vec![SchemaChange::Added {
                column: "email".into(),
                data_type: DataType::Utf8
            }]
        );
        assert!(
            merged
                .schema
                .field_with_name("email")
                .unwrap()
                .is_nullable()
        );
        assert!(!merged.schema.field_with_name("id").unwrap().is_nullable());
    }

    #[test]
    fn missing_column_is_relaxed_and_filled_with_nulls() {
        let current = schema(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]);
        let batch = RecordBatch::try_from_iter(vec![(
            "id",
            Arc::new(Int64Array::from(vec![7])) as ArrayRef,
        )])
        .unwrap();
        let merged = merge(&current, &batch, IncompatiblePolicy::Evolve).unwrap();
        assert_eq!(
            merged.changes,
            vec![SchemaChange::Relaxed {
                column: "name".into()
            }]
        );
        let conformed = conform(&batch, &merged.schema).unwrap();
        assert_eq!(conformed.column(1).null_count(), 1);
    }

    #[test]
    fn int32_widens_to_int64_both_ways() {
        let narrow = schema(vec![Field::new("n", DataType::Int32, true)]);
        let wide = Schema::new(vec![Field::new("n", DataType::Int64, true)]);
        let merged = merge(
            &narrow,
            &RecordBatch::new_empty(Arc::new(wide)),
            IncompatiblePolicy::Evolve,
        )
        .unwrap();
        assert!(matches!(merged.changes[0], SchemaChange::Widened { .. }));
        let batch = RecordBatch::try_from_iter(vec![(
            "n",
            Arc::new(Int32Array::from(vec![5])) as ArrayRef,
        )])
        .unwrap();
        let conformed = conform(&batch, &merged.schema).unwrap();
        assert_eq!(
            conformed
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0),
            5
        );
    }

    #[test]
    fn incompatible_type_goes_to_a_variant_column() {
        let current = schema(vec![Field::new("amount", DataType::Int64, false)]);
        let batch = RecordBatch::try_from_iter(vec![(
            "amount",
            Arc::new(StringArray::from(vec!["12.5"])) as ArrayRef,
        )])
        .unwrap();
        let merged = merge(&current, &batch, IncompatiblePolicy::Evolve).unwrap();
        assert!(merged.changes.contains(&SchemaChange::Variant {
            column: "amount".into(),
            variant: "amount__string".into(),
            data_type: DataType::Utf8
        }));
        let conformed = conform(&batch, &merged.schema).unwrap();
        assert_eq!(conformed.schema().field(1).name(), "amount__string");
        assert_eq!(conformed.column(0).null_count(), 1);
        let variant = conformed
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(variant.value(0), "12.5");
    }

    #[test]
    fn a_type_that_changes_twice_keeps_every_value() {
        // bool -> int4 -> int8 -> text, as a PostgreSQL column altered between syncs.
        let mut current = schema(vec![Field::new("x", DataType::Boolean, true)]);
        let batches: Vec<RecordBatch> = vec![
            RecordBatch::try_from_iter(vec![(
                "x",
                Arc::new(arrow_array::BooleanArray::from(vec![true])) as ArrayRef,
            )])
            .unwrap(),
            RecordBatch::try_from_iter(vec![(
                "x",
                Arc::new(Int32Array::from(vec![7])) as ArrayRef,
            )])
            .unwrap(),
            RecordBatch::try_from_iter(vec![(
                "x",
                Arc::new(Int64Array::from(vec![1 << 40])) as ArrayRef,
            )])
            .unwrap(),
            RecordBatch::try_from_iter(vec![(
                "x",
                Arc::new(StringArray::from(vec!["text"])) as ArrayRef,
            )])
            .unwrap(),
        ];
        let mut written = Vec::new();
        for batch in &batches {
            let merged = merge(&current, batch, IncompatiblePolicy::Evolve).unwrap();
            written.push(conform(batch, &merged.schema).unwrap());
            current = merged.schema;
        }
        let names: Vec<_> = current.fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["x", "x__int", "x__string"]);
        assert_eq!(current.field(1).data_type(), &DataType::Int64, "widened");
        let last: Vec<RecordBatch> = written
            .iter()
            .map(|b| conform(b, &current).unwrap())
            .collect();
        let all = arrow_select::concat::concat_batches(&current, &last).unwrap();
        let ints = all.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(
            ints.iter().collect::<Vec<_>>(),
            [None, Some(7), Some(1 << 40), None]
        );
    }

    #[test]
    fn two_incompatible_types_of_one_family_get_two_variants() {
        let mut current = schema(vec![Field::new("m", DataType::Int64, true)]);
        for (i, (precision, scale)) in [(5, 4), (10, 0), (5, 4)].into_iter().enumerate() {
            let values = arrow_array::Decimal128Array::from(vec![i as i128 + 1])
                .with_precision_and_scale(precision, scale)
                .unwrap();
            let batch =
                RecordBatch::try_from_iter(vec![("m", Arc::new(values) as ArrayRef)]).unwrap();
            let merged = merge(&current, &batch, IncompatiblePolicy::Evolve).unwrap();
            let conformed = conform(&batch, &merged.schema).unwrap();
            assert_eq!(conformed.column(0).null_count(), 1);
            current = merged.schema;
        }
        let names: Vec<_> = current.fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["m", "m__decimal", "m__decimal_2"]);
        assert!(is_variant_of(current.field(2), "m"));
    }

    #[test]
    fn a_source_column_named_like_a_variant_keeps_its_own_values() {
        let current = schema(vec![Field::new("x", DataType::Boolean, true)]);
        let batch = RecordBatch::try_from_iter(vec![
            ("x__int", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
            ("x", Arc::new(Int64Array::from(vec![2])) as ArrayRef),
        ])
        .unwrap();
        let merged = merge(&current, &batch, IncompatiblePolicy::Evolve).unwrap();
        let conformed = conform(&batch, &merged.schema).unwrap();
        let value = |name: &str| {
            conformed
                .column_by_name(name)
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0)
        };
        assert_eq!(value("x__int"), 1, "the source's own column");
        assert_eq!(value("x__int_2"), 2, "the variant of `x`");
        // A later batch with `x` alone goes to the variant, not to the source's `x__int`.
        let later = RecordBatch::try_from_iter(vec![(
            "x",
            Arc::new(Int64Array::from(vec![3])) as ArrayRef,
        )])
        .unwrap();
        let again = merge(&merged.schema, &later, IncompatiblePolicy::Evolve).unwrap();
        assert!(again.changes.is_empty(), "{:?}", again.changes);
        let conformed = conform(&later, &again.schema).unwrap();
        assert_eq!(conformed.column_by_name("x__int").unwrap().null_count(), 1);
        assert_eq!(
            conformed.column_by_name("x__int_2").unwrap().null_count(),
            0
        );
    }

    #[test]
    fn structs_with_other_field_names_are_not_taken_for_each_other() {
        let ab = DataType::Struct(
            vec![
                Field::new("a", DataType::Int64, true),
                Field::new("b", DataType::Int64, true),
            ]
            .into(),
        );
        let ba = DataType::Struct(
            vec![
                Field::new("b", DataType::Int64, true),
                Field::new("a", DataType::Int64, true),
            ]
            .into(),
        );
        assert!(ab.equals_datatype(&ba), "Arrow ignores the names");
        assert!(!same_shape(&ab, &ba));
        let current = schema(vec![Field::new("s", ab, true)]);
        let incoming = Schema::new(vec![Field::new("s", ba, true)]);
        let merged = merge(
            &current,
            &RecordBatch::new_empty(Arc::new(incoming)),
            IncompatiblePolicy::Evolve,
        )
        .unwrap();
        assert_eq!(merged.schema.field(1).name(), "s__struct");
    }

    #[test]
    fn lakes_written_before_the_variant_marker_keep_their_variants() {
        let current = schema(vec![
            Field::new("x", DataType::Boolean, true),
            Field::new("x__int", DataType::Int32, true),
        ]);
        let batch = RecordBatch::try_from_iter(vec![(
            "x",
            Arc::new(Int64Array::from(vec![9])) as ArrayRef,
        )])
        .unwrap();
        let merged = merge(&current, &batch, IncompatiblePolicy::Evolve).unwrap();
        assert_eq!(merged.schema.fields().len(), 2, "{:?}", merged.schema);
        assert_eq!(merged.schema.field(1).data_type(), &DataType::Int64);
    }

    #[test]
    fn freeze_refuses_incompatible_types() {
        let current = schema(vec![Field::new("amount", DataType::Int64, true)]);
        let incoming = Schema::new(vec![Field::new("amount", DataType::Utf8, true)]);
        let err = merge(
            &current,
            &RecordBatch::new_empty(Arc::new(incoming)),
            IncompatiblePolicy::Freeze,
        )
        .unwrap_err();
        assert!(err.to_string().contains("`amount`"), "{err}");
    }
}
