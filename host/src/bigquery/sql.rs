//! The text BigQuery runs: job configurations (load, query) and the `MERGE` statement, kept apart
//! from the planning and execution logic so each can be read (and tested) on its own.

use super::Client;
use super::records::StreamPlan;
use super::schema::TableField;
use serde_json::{Value, json};

/// A Parquet load job's `configuration` into `dataset.table`. Appends take new columns and relaxed
/// modes on the way; truncates replace rows and schema at once.
pub(super) fn load_config(
    client: &Client,
    dataset: &str,
    table: &str,
    uris: &[String],
    schema: &[TableField],
    truncate: bool,
) -> Value {
    let disposition = if truncate {
        "WRITE_TRUNCATE"
    } else {
        "WRITE_APPEND"
    };
    let mut load = json!({
        "destinationTable": {"projectId": client.project(), "datasetId": dataset, "tableId": table},
        "sourceUris": uris,
        "sourceFormat": "PARQUET",
        "writeDisposition": disposition,
        "createDisposition": "CREATE_IF_NEEDED",
        "schema": {"fields": schema},
        "parquetOptions": {"enableListInference": true},
        "decimalTargetTypes": ["NUMERIC", "BIGNUMERIC"],
    });
    if !truncate {
        load["schemaUpdateOptions"] = json!(["ALLOW_FIELD_ADDITION", "ALLOW_FIELD_RELAXATION"]);
    }
    json!({ "load": load })
}

/// A standard-SQL query job's `configuration`.
pub(super) fn query_config(sql: &str) -> Value {
    json!({"query": {"query": sql, "useLegacySql": false}})
}

/// `DELETE` of every row: what replacing a table with an empty full copy does.
pub(super) fn empty_sql(client: &Client, dataset: &str, table: &str) -> String {
    format!("DELETE FROM {} WHERE TRUE", quoted(client, dataset, table))
}

fn quoted(client: &Client, dataset: &str, table: &str) -> String {
    format!("`{}.{dataset}.{table}`", client.project())
}

fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "\\`"))
}

/// `MERGE` of the staging table into the target: one row per key (the newest cursor), updated
/// when the key exists, inserted when not, deleted when flagged.
pub(super) fn merge_sql(
    client: &Client,
    dataset: &str,
    table: &str,
    staging: &str,
    stream: &StreamPlan,
) -> String {
    let keys: Vec<String> = stream.primary_key.iter().map(|k| ident(k)).collect();
    let order = match &stream.cursor_field {
        Some(cursor) => format!(" ORDER BY {} DESC", ident(cursor)),
        None => String::new(),
    };
    let on = keys
        .iter()
        .map(|k| format!("T.{k} = S.{k}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let columns: Vec<String> = stream.schema.iter().map(|f| ident(&f.name)).collect();
    let set = columns
        .iter()
        .map(|c| format!("{c} = S.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let values = columns
        .iter()
        .map(|c| format!("S.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let (delete, insert_if) = match &stream.deleted_flag {
        Some(flag) => (
            format!(
                " WHEN MATCHED AND S.{f} IS TRUE THEN DELETE",
                f = ident(flag)
            ),
            format!(" AND S.{f} IS NOT TRUE", f = ident(flag)),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        "MERGE {target} T USING (SELECT * EXCEPT (__inlet_rank) FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {keys}{order}) AS __inlet_rank FROM {source}) WHERE __inlet_rank = 1) S ON {on}{delete} WHEN MATCHED THEN UPDATE SET {set} WHEN NOT MATCHED{insert_if} THEN INSERT ({columns}) VALUES ({values})",
        target = quoted(client, dataset, table),
        source = quoted(client, dataset, staging),
        keys = keys.join(", "),
        columns = columns.join(", "),
    )
}
