//! How each stream's schema changed over a connection's history, found by comparing every
//! commit's schema with the one before it (`inlet history`).

use super::Commit;
use super::evolution::{VARIANT_OF, widens_to};
use arrow_schema::{Field, Schema};
use serde::Serialize;
use std::collections::BTreeMap;

/// One change of a stream's schema between two commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum SchemaEvent {
    /// The stream appeared, with these columns.
    StreamAppeared { columns: Vec<String> },
    /// A column was added.
    ColumnAdded { column: String, data_type: String },
    /// A column became nullable.
    NullabilityRelaxed { column: String },
    /// A column's type was widened (`int32` -> `int64`...).
    TypeWidened {
        column: String,
        from: String,
        to: String,
    },
    /// A variant column was added: values of `variant_of` that arrived as `data_type`.
    VariantColumnAdded {
        column: String,
        variant_of: String,
        data_type: String,
    },
    /// A column's type changed in a way evolution never does (the stream was replaced).
    TypeChanged {
        column: String,
        from: String,
        to: String,
    },
    /// A column is gone (evolution keeps columns; the stream was replaced).
    ColumnRemoved { column: String },
    /// The stream is no longer listed (its history was replaced).
    StreamRemoved,
}

impl std::fmt::Display for SchemaEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::StreamAppeared { columns } => {
                write!(f, "stream appeared ({} columns)", columns.len())
            }
            Self::ColumnAdded { column, data_type } => {
                write!(f, "column `{column}` added ({data_type})")
            }
            Self::NullabilityRelaxed { column } => write!(f, "column `{column}` is now nullable"),
            Self::TypeWidened { column, from, to } => {
                write!(f, "column `{column}` widened from {from} to {to}")
            }
            Self::VariantColumnAdded {
                column,
                variant_of,
                data_type,
            } => write!(
                f,
                "variant column `{column}` added: values of `{variant_of}` that arrive as {data_type}"
            ),
            Self::TypeChanged { column, from, to } => {
                write!(f, "column `{column}` changed from {from} to {to}")
            }
            Self::ColumnRemoved { column } => write!(f, "column `{column}` removed"),
            Self::StreamRemoved => write!(f, "stream removed"),
        }
    }
}

/// A change and the commit it arrived in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaHistoryEntry {
    /// The commit.
    pub sequence: u64,
    /// When it was written (RFC 3339).
    pub committed_at: String,
    /// The run that wrote it.
    pub run_id: String,
    /// The stream.
    pub stream: String,
    /// What changed.
    #[serde(flatten)]
    pub change: SchemaEvent,
}

/// Every schema change in `commits` (oldest first), in commit order, streams by name.
pub fn schema_changes(commits: &[Commit]) -> Vec<SchemaHistoryEntry> {
    let mut entries = Vec::new();
    let mut previous: BTreeMap<&str, &Schema> = BTreeMap::new();
    for commit in commits {
        let entry = |stream: &str, change| SchemaHistoryEntry {
            sequence: commit.sequence,
            committed_at: commit.committed_at.clone(),
            run_id: commit.run_id.clone(),
            stream: stream.to_owned(),
            change,
        };
        let current: BTreeMap<&str, &Schema> = commit
            .streams
            .iter()
            .map(|(name, s)| (name.as_str(), &s.schema))
            .collect();
        for (&name, &schema) in &current {
            match previous.get(name) {
                None => entries.push(entry(
                    name,
                    SchemaEvent::StreamAppeared {
                        columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
                    },
                )),
                Some(old) => entries.extend(
                    diff_schemas(old, schema)
                        .into_iter()
                        .map(|change| entry(name, change)),
                ),
            }
        }
        for &name in previous.keys() {
            if !current.contains_key(name) {
                entries.push(entry(name, SchemaEvent::StreamRemoved));
            }
        }
        previous = current;
    }
    entries
}

/// What changed from `old` to `new`, in `new`'s column order, removed columns last.
pub fn diff_schemas(old: &Schema, new: &Schema) -> Vec<SchemaEvent> {
    let mut changes = Vec::new();
    for field in new.fields() {
        let column = field.name().clone();
        let Ok(before) = old.field_with_name(&column) else {
            changes.push(match variant_base(field) {
                Some(base) => SchemaEvent::VariantColumnAdded {
                    column,
                    variant_of: base.to_owned(),
                    data_type: field.data_type().to_string(),
                },
                None => SchemaEvent::ColumnAdded {
                    column,
                    data_type: field.data_type().to_string(),
                },
            });
            continue;
        };
        if before.data_type() != field.data_type() {
            let (from, to) = (before.data_type(), field.data_type());
            changes.push(if widens_to(from, to) {
                SchemaEvent::TypeWidened {
                    column: column.clone(),
                    from: from.to_string(),
                    to: to.to_string(),
                }
            } else {
                SchemaEvent::TypeChanged {
                    column: column.clone(),
                    from: from.to_string(),
                    to: to.to_string(),
                }
            });
        }
        if !before.is_nullable() && field.is_nullable() {
            changes.push(SchemaEvent::NullabilityRelaxed { column });
        }
    }
    for field in old.fields() {
        if new.field_with_name(field.name()).is_err() {
            changes.push(SchemaEvent::ColumnRemoved {
                column: field.name().clone(),
            });
        }
    }
    changes
}

/// The column `field` is a variant of, when its metadata marks it as one.
fn variant_base(field: &Field) -> Option<&str> {
    field
        .metadata()
        .get(VARIANT_OF)
        .map(String::as_str)
        .filter(|base| !base.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::{ConnectorInfo, StreamCommit};
    use arrow_schema::DataType;
    use std::collections::HashMap;

    fn commit(sequence: u64, streams: &[(&str, Schema)]) -> Commit {
        Commit {
            format: 2,
            sequence,
            run_id: format!("run{sequence}"),
            committed_at: format!("t{sequence}"),
            connector: ConnectorInfo {
                name: "c".into(),
                version: "1".into(),
                digest: String::new(),
                settings: None,
            },
            state: None,
            streams: streams
                .iter()
                .map(|(name, schema)| {
                    (
                        name.to_string(),
                        StreamCommit {
                            schema: schema.clone(),
                            primary_key: Vec::new(),
                            cursor_field: None,
                            files: Vec::new(),
                            full_copy: None,
                            reread: false,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn each_kind_of_change_is_told_apart() {
        let old = Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, false),
            Field::new("gone", DataType::Utf8, true),
        ]);
        let variant = Field::new("id__string", DataType::Utf8, true)
            .with_metadata(HashMap::from([(VARIANT_OF.to_owned(), "id".to_owned())]));
        // A source column named like a variant is marked with an empty base.
        let lookalike = Field::new("x__int", DataType::Int64, true)
            .with_metadata(HashMap::from([(VARIANT_OF.to_owned(), String::new())]));
        let new = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            variant,
            lookalike,
        ]);
        let changes = diff_schemas(&old, &new);
        assert_eq!(
            changes,
            [
                SchemaEvent::TypeWidened {
                    column: "id".into(),
                    from: "Int32".into(),
                    to: "Int64".into()
                },
                SchemaEvent::NullabilityRelaxed {
                    column: "name".into()
                },
                SchemaEvent::VariantColumnAdded {
                    column: "id__string".into(),
                    variant_of: "id".into(),
                    data_type: "Utf8".into()
                },
                SchemaEvent::ColumnAdded {
                    column: "x__int".into(),
                    data_type: "Int64".into()
                },
                SchemaEvent::ColumnRemoved {
                    column: "gone".into()
                },
            ]
        );
        assert!(diff_schemas(&new, &new).is_empty());
    }

    #[test]
    fn changes_are_listed_with_the_commit_they_arrived_in() {
        let v1 = Schema::new(vec![Field::new("id", DataType::Int64, false)]);
        let v2 = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("note", DataType::Utf8, true),
        ]);
        let commits = [
            commit(1, &[("a", v1.clone())]),
            commit(2, &[("a", v1.clone()), ("b", v1.clone())]),
            commit(3, &[("a", v2.clone()), ("b", v1.clone())]),
            commit(4, &[("a", v2)]),
        ];
        let entries = schema_changes(&commits);
        let listed: Vec<String> = entries
            .iter()
            .map(|e| format!("{} {}: {}", e.sequence, e.stream, e.change))
            .collect();
        assert_eq!(
            listed,
            [
                "1 a: stream appeared (1 columns)",
                "2 b: stream appeared (1 columns)",
                "3 a: column `note` added (Utf8)",
                "4 b: stream removed",
            ]
        );
        assert_eq!(entries[2].run_id, "run3");
    }
}
