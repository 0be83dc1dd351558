//! `inlet dbt-sources`: the tables Inlet loads, written as a dbt `sources.yml`, so a dbt project's
//! layers (Raw -> Warehouse -> Mart) start from them: one source per connection (its dataset),
//! one table per stream with its columns and BigQuery types, freshness from the stream's cursor
//! and the connection's schedule, key tests where the table is merged on its key.
//!
//! The YAML is written by hand with every string JSON-quoted (a JSON string is a YAML scalar),
//! so no value can change the document's shape.

use super::WriteMode;
use super::schema::{SchemaError, TableField, to_bigquery};
use crate::lake::evolution::VARIANT_OF;
use arrow_schema::Schema;
use std::fmt::Write as _;
use std::time::Duration;

/// One connection's dataset.
#[derive(Debug, Clone)]
pub struct Source {
    /// The connection (the dbt source name).
    pub connection: String,
    /// The connector that fills it.
    pub connector: String,
    /// The BigQuery project.
    pub project: String,
    /// The dataset.
    pub dataset: String,
    /// How often the connection runs (its schedule), for freshness.
    pub interval: Option<Duration>,
    /// Its tables.
    pub tables: Vec<SourceTable>,
}

/// One stream's table.
#[derive(Debug, Clone)]
pub struct SourceTable {
    /// The stream.
    pub stream: String,
    /// The BigQuery table id.
    pub table: String,
    /// The stream's schema as of its newest commit.
    pub schema: Schema,
    /// Primary key columns.
    pub primary_key: Vec<String>,
    /// The incremental cursor column.
    pub cursor_field: Option<String>,
    /// The column flagging deleted rows (merged tables drop them).
    pub deleted_flag: Option<String>,
    /// The write mode set for it, if any.
    pub write_mode: Option<WriteMode>,
}

/// A dbt `sources.yml` for `sources`; an error names a column BigQuery cannot hold.
pub fn sources_yaml(sources: &[Source]) -> Result<String, SchemaError> {
    let q = |text: &str| serde_json::Value::from(text).to_string();
    let mut out = String::from(
        "# Written by `inlet dbt-sources`: the tables Inlet loads into BigQuery.\n\
         # Write it again after schema changes (`inlet history <connection>` lists them).\n\
         version: 2\n\nsources:\n",
    );
    for source in sources {
        let _ = writeln!(out, "  - name: {}", q(&source.connection));
        let _ = writeln!(
            out,
            "    description: {}",
            q(&format!(
                "Raw tables of connection `{}` (connector `{}`), loaded by Inlet.",
                source.connection, source.connector
            ))
        );
        let _ = writeln!(out, "    database: {}", q(&source.project));
        let _ = writeln!(out, "    schema: {}", q(&source.dataset));
        out.push_str("    loader: \"inlet\"\n    tables:\n");
        for table in &source.tables {
            write_table(&mut out, source, table)?;
        }
    }
    Ok(out)
}

fn write_table(out: &mut String, source: &Source, table: &SourceTable) -> Result<(), SchemaError> {
    let q = |text: &str| serde_json::Value::from(text).to_string();
    let fields = to_bigquery(&table.schema)?;
    let keyed = !table.primary_key.is_empty();
    // A merged table holds one row per key; appended ones may hold several.
    let unique_key = keyed && table.write_mode != Some(WriteMode::Append);
    let mut description = format!(
        "Stream `{}` of connection `{}`.",
        table.stream, source.connection
    );
    if keyed {
        let _ = write!(
            description,
            " Primary key: {}.",
            table.primary_key.join(", ")
        );
    }
    if let Some(flag) = &table.deleted_flag {
        let _ = write!(
            description,
            " Rows the source flags deleted (`{flag}`) are removed by the merge."
        );
    }
    let _ = writeln!(out, "      - name: {}", q(&table.stream));
    let _ = writeln!(out, "        identifier: {}", q(&table.table));
    let _ = writeln!(out, "        description: {}", q(&description));
    if let Some(loaded_at) = loaded_at_field(table, &fields) {
        let _ = writeln!(out, "        loaded_at_field: {}", q(&loaded_at));
        // Without a schedule, a day without new rows is worth a warning, two an error.
        let interval = source.interval.unwrap_or(Duration::from_secs(12 * 3600));
        out.push_str("        freshness:\n");
        let _ = writeln!(out, "          warn_after: {}", period(interval * 2));
        let _ = writeln!(out, "          error_after: {}", period(interval * 4));
    }
    out.push_str("        columns:\n");
    for field in &fields {
        let _ = writeln!(out, "          - name: {}", q(&field.name));
        let _ = writeln!(out, "            data_type: {}", q(&data_type(field)));
        if let Some(text) = column_description(table, &field.name) {
            let _ = writeln!(out, "            description: {}", q(&text));
        }
        let mut tests = Vec::new();
        if table.primary_key.contains(&field.name) {
            tests.push("not_null");
            if unique_key && table.primary_key.len() == 1 {
                tests.push("unique");
            }
        }
        if !tests.is_empty() {
            let tests: Vec<String> = tests.iter().map(|t| q(t)).collect();
            let _ = writeln!(out, "            data_tests: [{}]", tests.join(", "));
        }
    }
    Ok(())
}

/// The cursor as a TIMESTAMP expression, when it is a time: dbt compares it with the current
/// time. Integer cursors (ids) say nothing about freshness.
fn loaded_at_field(table: &SourceTable, fields: &[TableField]) -> Option<String> {
    let cursor = table.cursor_field.as_ref()?;
    let field = fields.iter().find(|f| &f.name == cursor)?;
    if field.mode == "REPEATED" {
        return None;
    }
    let quoted = format!("`{}`", cursor.replace('`', "\\`"));
    match field.field_type.as_str() {
        "TIMESTAMP" => Some(cursor.clone()),
        "DATETIME" | "DATE" => Some(format!("TIMESTAMP({quoted})")),
        _ => None,
    }
}

/// `{count: N, period: minute|hour|day}`, rounded up.
fn period(duration: Duration) -> String {
    let minutes = duration.as_secs().div_ceil(60).max(1);
    let (count, unit) = if minutes.is_multiple_of(24 * 60) {
        (minutes / (24 * 60), "day")
    } else if minutes.is_multiple_of(60) {
        (minutes / 60, "hour")
    } else {
        (minutes, "minute")
    };
    format!("{{count: {count}, period: {unit}}}")
}

/// `INT64`, `ARRAY<STRING>`, `STRUCT<a INT64, b STRING>`.
fn data_type(field: &TableField) -> String {
    let inner = if field.fields.is_empty() {
        field.field_type.clone()
    } else {
        let members: Vec<String> = field
            .fields
            .iter()
            .map(|f| format!("{} {}", f.name, data_type(f)))
            .collect();
        format!("STRUCT<{}>", members.join(", "))
    };
    if field.mode == "REPEATED" {
        format!("ARRAY<{inner}>")
    } else {
        inner
    }
}

fn column_description(table: &SourceTable, column: &str) -> Option<String> {
    let field = table.schema.field_with_name(column).ok()?;
    if let Some(base) = field.metadata().get(VARIANT_OF).filter(|b| !b.is_empty()) {
        return Some(format!(
            "Variant of `{base}`: its values that arrived with this type after the source changed the column's type (`{base}` keeps the earlier type; coalesce them in the warehouse layer)."
        ));
    }
    if table.cursor_field.as_deref() == Some(column) {
        return Some("The incremental cursor.".into());
    }
    if table.deleted_flag.as_deref() == Some(column) {
        return Some("True for rows deleted at the source.".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::{DataType, Field, TimeUnit};
    use std::collections::HashMap;

    #[test]
    fn a_source_has_types_keys_freshness_and_variant_notes() {
        let variant = Field::new("score__string", DataType::Utf8, true)
            .with_metadata(HashMap::from([(VARIANT_OF.to_owned(), "score".to_owned())]));
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("score", DataType::Int64, true),
            variant,
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
            Field::new(
                "updated_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
        ]);
        let yaml = sources_yaml(&[Source {
            connection: "shop".into(),
            connector: "postgres".into(),
            project: "my-project".into(),
            dataset: "raw_shop".into(),
            interval: Some(Duration::from_secs(15 * 60)),
            tables: vec![SourceTable {
                stream: "public.orders".into(),
                table: "public_orders".into(),
                schema,
                primary_key: vec!["id".into()],
                cursor_field: Some("updated_at".into()),
                deleted_flag: None,
                write_mode: None,
            }],
        }])
        .unwrap();
        for expected in [
            "  - name: \"shop\"\n",
            "    schema: \"raw_shop\"\n",
            "      - name: \"public.orders\"\n        identifier: \"public_orders\"\n",
            "        loaded_at_field: \"updated_at\"\n",
            "          warn_after: {count: 30, period: minute}\n          error_after: {count: 1, period: hour}\n",
            "          - name: \"id\"\n            data_type: \"INT64\"\n            data_tests: [\"not_null\", \"unique\"]\n",
            "            data_type: \"ARRAY<STRING>\"\n",
            "Variant of `score`",
        ] {
            assert!(yaml.contains(expected), "{expected:?} not in\n{yaml}");
        }
    }

    #[test]
    fn periods_round_up_to_the_largest_whole_unit() {
        assert_eq!(
            period(Duration::from_secs(90)),
            "{count: 2, period: minute}"
        );
        assert_eq!(
            period(Duration::from_secs(7200)),
            "{count: 2, period: hour}"
        );
        assert_eq!(
            period(Duration::from_secs(2 * 86400)),
            "{count: 2, period: day}"
        );
    }

    use std::sync::Arc;
}
