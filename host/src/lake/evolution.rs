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
            fields.push(new.as_ref().clone().with_nullable(true));
            changes.push(SchemaChange::Added {
                column: new.name().clone(),
                data_type: new.data_type().clone(),
            });
            continue;
        };
        let existing = fields[index].clone();
        if existing.data_type().equals_datatype(new.data_type())
            || widens_to(new.data_type(), existing.data_type())
        {
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
                let variant = variant_name(new.name(), new.data_type());
                match fields.iter().find(|f| f.name() == &variant) {
                    Some(f) if f.data_type().equals_datatype(new.data_type()) => {}
                    Some(_) => unreachable!("a variant column's name encodes its type"),
                    None => {
                        fields.push(Field::new(&variant, new.data_type().clone(), true));
                        changes.push(SchemaChange::Variant {
                            column: new.name().clone(),
                            variant,
                            data_type: new.data_type().clone(),
                        });
                    }
                }
            }
        }
    }
    // Every column the batch does not fill must accept nulls.
    let provisional = Schema::new(fields.clone());
    for field in fields.iter_mut() {
        let filled = source_column(&incoming, field, &provisional)
            .is_some_and(|i| batch.column(i).null_count() == 0);
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

/// Reshapes `batch` to `target` (a schema produced by [`merge`] for it): columns are matched by
/// name (or, for a variant column, by the name and type it encodes), widened, and missing ones
/// filled with nulls.
pub fn conform(
    batch: &RecordBatch,
    target: &SchemaRef,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let incoming = batch.schema();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        let column = match source_column(&incoming, field, target) {
            Some(index) => {
                let column = batch.column(index);
                if column.data_type().equals_datatype(field.data_type()) {
                    column.clone()
                } else {
                    arrow_cast::cast(column, field.data_type())?
                }
            }
            None => new_null_array(field.data_type(), batch.num_rows()),
        };
        columns.push(column);
    }
    RecordBatch::try_new(target.clone(), columns)
}

/// The index of the incoming column that fills `field` of `target`, if any.
fn source_column(incoming: &Schema, field: &Field, target: &Schema) -> Option<usize> {
    if let Ok(index) = incoming.index_of(field.name()) {
        let data_type = incoming.field(index).data_type();
        if data_type.equals_datatype(field.data_type()) || widens_to(data_type, field.data_type()) {
            return Some(index);
        }
        return None;
    }
    // A variant column `base__type` takes `base` when `base` arrives with that type.
    let (base, _) = field.name().rsplit_once("__")?;
    let index = incoming.index_of(base).ok()?;
    let data_type = incoming.field(index).data_type();
    let fits_base = target.field_with_name(base).is_ok_and(|b| {
        b.data_type().equals_datatype(data_type) || widens_to(data_type, b.data_type())
    });
    (!fits_base && variant_name(base, data_type) == *field.name()).then_some(index)
}

/// The name of the variant column holding values of `data_type` for `column`.
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
