//! Arrow -> BigQuery schema mapping, and how an existing table's schema evolves to take a newer
//! lake schema (columns added, REQUIRED relaxed; never a type changed in place).
//!
//! | Arrow | BigQuery |
//! |---|---|
//! | Boolean | BOOL |
//! | Int8..Int64, UInt8..UInt32 | INT64 |
//! | UInt64 | NUMERIC (values above 2^63 do not fit INT64) |
//! | Float16, Float32, Float64 | FLOAT64 |
//! | Decimal128/256(p, s), s <= 9 and p - s <= 29 | NUMERIC |
//! | other Decimal128/256 | BIGNUMERIC |
//! | Utf8, LargeUtf8, Utf8View | STRING |
//! | Utf8 with extension `arrow.json` | JSON |
//! | Binary, LargeBinary, BinaryView, FixedSizeBinary | BYTES |
//! | Date32, Date64 | DATE |
//! | Time32, Time64 | TIME |
//! | Timestamp with a time zone | TIMESTAMP (an instant) |
//! | Timestamp without a time zone | DATETIME (a wall-clock time) |
//! | List, LargeList, FixedSizeList of T | T, mode REPEATED (lists of lists are refused) |
//! | Struct | STRUCT (RECORD) with the fields mapped |
//! | Map | REPEATED STRUCT<key, value> |
//!
//! A non-nullable Arrow field is REQUIRED, a nullable one NULLABLE. Other types (durations,
//! intervals, unions) have no BigQuery counterpart and are refused with the column named.

use arrow_schema::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};

/// One column of a BigQuery table schema, as the REST API spells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableField {
    /// Column name.
    pub name: String,
    /// `STRING`, `INT64`, ... (the API also answers legacy names like `INTEGER`).
    #[serde(rename = "type")]
    pub field_type: String,
    /// `NULLABLE`, `REQUIRED` or `REPEATED`.
    #[serde(default = "nullable")]
    pub mode: String,
    /// Sub-fields of a STRUCT.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<TableField>,
}

fn nullable() -> String {
    "NULLABLE".into()
}

/// A column that cannot be mapped or evolved.
#[derive(Debug, thiserror::Error)]
#[error("column `{column}`: {reason}")]
pub struct SchemaError {
    /// The column (dotted for nested fields).
    pub column: String,
    /// What is wrong.
    pub reason: String,
}

/// The BigQuery schema of a lake schema.
pub fn to_bigquery(schema: &Schema) -> Result<Vec<TableField>, SchemaError> {
    schema.fields().iter().map(|f| map_field(f, "")).collect()
}

fn map_field(field: &Field, parent: &str) -> Result<TableField, SchemaError> {
    let path = if parent.is_empty() {
        field.name().clone()
    } else {
        format!("{parent}.{}", field.name())
    };
    let mode = if field.is_nullable() {
        "NULLABLE"
    } else {
        "REQUIRED"
    };
    let (field_type, fields, mode) = match field.data_type() {
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            if matches!(
                item.data_type(),
                DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..)
            ) {
                return Err(SchemaError {
                    column: path,
                    reason: "BigQuery has no arrays of arrays".into(),
                });
            }
            let (t, f) = scalar_or_struct(item, &path)?;
            (t, f, "REPEATED")
        }
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(SchemaError {
                    column: path,
                    reason: "map entries are not a struct of key and value".into(),
                });
            };
            let fields = kv
                .iter()
                .map(|f| map_field(f, &path))
                .collect::<Result<_, _>>()?;
            ("STRUCT".to_owned(), fields, "REPEATED")
        }
        _ => {
            let (t, f) = scalar_or_struct(field, &path)?;
            (t, f, mode)
        }
    };
    Ok(TableField {
        name: field.name().clone(),
        field_type,
        mode: mode.to_owned(),
        fields,
    })
}

fn scalar_or_struct(field: &Field, path: &str) -> Result<(String, Vec<TableField>), SchemaError> {
    let t = match field.data_type() {
        DataType::Boolean => "BOOL",
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => "INT64",
        DataType::UInt64 => "NUMERIC",
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "FLOAT64",
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            let (p, s) = (i16::from(*p), i16::from(*s));
            if (0..=9).contains(&s) && p - s <= 29 {
                "NUMERIC"
            } else {
                "BIGNUMERIC"
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            if field.extension_type_name() == Some("arrow.json") {
                "JSON"
            } else {
                "STRING"
            }
        }
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "BYTES",
        DataType::Date32 | DataType::Date64 => "DATE",
        DataType::Time32(_) | DataType::Time64(_) => "TIME",
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP",
        DataType::Timestamp(_, None) => "DATETIME",
        DataType::Struct(children) => {
            let fields = children
                .iter()
                .map(|f| map_field(f, path))
                .collect::<Result<_, _>>()?;
            return Ok(("STRUCT".to_owned(), fields));
        }
        other => {
            return Err(SchemaError {
                column: path.to_owned(),
                reason: format!(
                    "Arrow type {other} has no BigQuery type (have the connector emit it as text)"
                ),
            });
        }
    };
    Ok((t.to_owned(), Vec::new()))
}

/// The API's legacy and standard names for one type.
fn canonical(field_type: &str) -> &str {
    match field_type {
        "INTEGER" => "INT64",
        "FLOAT" => "FLOAT64",
        "BOOLEAN" => "BOOL",
        "RECORD" => "STRUCT",
        other => other,
    }
}

/// `current` evolved to take `wanted`: missing columns appended as NULLABLE (REPEATED stays),
/// REQUIRED relaxed where `wanted` is nullable. `None` when nothing changes. A column whose type
/// differs is an error: BigQuery cannot change it in place (the lake puts incompatible values in
/// a new variant column, so this only happens to tables written by something else).
pub fn evolve(
    current: &[TableField],
    wanted: &[TableField],
) -> Result<Option<Vec<TableField>>, SchemaError> {
    let mut changed = false;
    let fields = evolve_fields(current, wanted, "", &mut changed)?;
    Ok(changed.then_some(fields))
}

fn evolve_fields(
    current: &[TableField],
    wanted: &[TableField],
    parent: &str,
    changed: &mut bool,
) -> Result<Vec<TableField>, SchemaError> {
    let mut out = current.to_vec();
    for want in wanted {
        let path = if parent.is_empty() {
            want.name.clone()
        } else {
            format!("{parent}.{}", want.name)
        };
        // BigQuery column names are case-insensitive.
        match out
            .iter_mut()
            .find(|f| f.name.eq_ignore_ascii_case(&want.name))
        {
            None => {
                let mut added = want.clone();
                if added.mode == "REQUIRED" {
                    added.mode = "NULLABLE".into();
                }
                out.push(added);
                *changed = true;
            }
            Some(have) => {
                if canonical(&have.field_type) != canonical(&want.field_type) {
                    return Err(SchemaError {
                        column: path,
                        reason: format!(
                            "the table has type {} and the lake now has {}; BigQuery cannot change a column's type (drop the table or load into a new one)",
                            have.field_type, want.field_type
                        ),
                    });
                }
                if (have.mode == "REPEATED") != (want.mode == "REPEATED") {
                    return Err(SchemaError {
                        column: path,
                        reason: format!(
                            "the table's mode is {} and the lake's is {}",
                            have.mode, want.mode
                        ),
                    });
                }
                if have.mode == "REQUIRED" && want.mode == "NULLABLE" {
                    have.mode = "NULLABLE".into();
                    *changed = true;
                }
                if !want.fields.is_empty() {
                    have.fields = evolve_fields(&have.fields, &want.fields, &path, changed)?;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::TimeUnit;
    use std::collections::HashMap;
    use std::sync::Arc;

    fn field(name: &str, t: &str, mode: &str) -> TableField {
        TableField {
            name: name.into(),
            field_type: t.into(),
            mode: mode.into(),
            fields: vec![],
        }
    }

    #[test]
    fn maps_every_supported_type() {
        let json = Field::new("doc", DataType::Utf8, true).with_metadata(HashMap::from([(
            "ARROW:extension:name".to_owned(),
            "arrow.json".to_owned(),
        )]));
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("price", DataType::Decimal128(12, 2), true),
            Field::new("big", DataType::Decimal128(38, 10), true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                true,
            ),
            Field::new(
                "local",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                true,
            ),
            json,
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
            Field::new(
                "geo",
                DataType::Struct(
                    vec![
                        Field::new("lat", DataType::Float64, false),
                        Field::new("lng", DataType::Float64, false),
                    ]
                    .into(),
                ),
                true,
            ),
        ]);
        let mapped = to_bigquery(&schema).unwrap();
        let summary: Vec<(String, String, String)> = mapped
            .iter()
            .map(|f| (f.name.clone(), f.field_type.clone(), f.mode.clone()))
            .collect();
        let expected = [
            ("id", "INT64", "REQUIRED"),
            ("price", "NUMERIC", "NULLABLE"),
            ("big", "BIGNUMERIC", "NULLABLE"),
            ("at", "TIMESTAMP", "NULLABLE"),
            ("local", "DATETIME", "NULLABLE"),
            ("doc", "JSON", "NULLABLE"),
            ("tags", "STRING", "REPEATED"),
            ("geo", "STRUCT", "NULLABLE"),
        ];
        let expected: Vec<(String, String, String)> = expected
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect();
        assert_eq!(summary, expected);
        assert_eq!(
            mapped[7].fields,
            vec![
                field("lat", "FLOAT64", "REQUIRED"),
                field("lng", "FLOAT64", "REQUIRED")
            ]
        );
    }

    #[test]
    fn refuses_what_bigquery_cannot_hold() {
        let nested = DataType::List(Arc::new(Field::new(
            "item",
            DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
            true,
        )));
        let error = to_bigquery(&Schema::new(vec![Field::new("m", nested, true)])).unwrap_err();
        assert_eq!(error.column, "m");
        let error = to_bigquery(&Schema::new(vec![Field::new(
            "d",
            DataType::Duration(TimeUnit::Second),
            true,
        )]))
        .unwrap_err();
        assert!(error.to_string().contains("`d`"), "{error}");
    }

    #[test]
    fn evolution_adds_relaxes_and_refuses_type_changes() {
        let current = vec![
            field("id", "INTEGER", "REQUIRED"),
            field("name", "STRING", "REQUIRED"),
        ];
        let wanted = vec![
            field("id", "INT64", "REQUIRED"),
            field("name", "STRING", "NULLABLE"),
            field("email", "STRING", "REQUIRED"),
        ];
        let evolved = evolve(&current, &wanted).unwrap().unwrap();
        assert_eq!(
            evolved,
            vec![
                field("id", "INTEGER", "REQUIRED"),
                field("name", "STRING", "NULLABLE"),
                field("email", "STRING", "NULLABLE"),
            ]
        );
        assert_eq!(evolve(&evolved, &wanted).unwrap(), None);
        let error = evolve(&current, &[field("id", "STRING", "NULLABLE")]).unwrap_err();
        assert!(error.reason.contains("INTEGER"), "{error}");
    }
}
