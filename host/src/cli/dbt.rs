//! `inlet dbt-sources`: gathers, for each connection of the file, its BigQuery dataset and each
//! stream's newest schema from the lake, and writes them as a dbt `sources.yml`.

use crate::bigquery::dbt::{Source, SourceTable, sources_yaml};
use crate::bigquery::table_name;
use crate::config::LoadedConfig;
use crate::lake::{Lake, Tip};
use crate::logging::{Severity, say};
use anyhow::{Context, bail};

/// The `sources.yml` text for `connections`.
pub async fn sources(
    loaded: &LoadedConfig,
    lake: &Lake,
    connections: &[String],
) -> anyhow::Result<String> {
    let Some(bigquery) = &loaded.config.bigquery else {
        bail!(
            "`{}` has no [bigquery] table: dbt sources describe the tables Inlet loads into BigQuery",
            loaded.file.display()
        );
    };
    let mut sources = Vec::new();
    for connection in connections {
        let destination = loaded
            .destination(connection)
            .context("[bigquery] is present")?;
        let tip = Tip::open(lake, connection)
            .await
            .with_context(|| format!("reading connection `{connection}` in the lake"))?;
        let Some(tip) = tip else {
            say(
                Severity::Warning,
                &format!("`{connection}` has no commits yet, so no tables: run it first"),
                &[("connection", connection)],
            );
            continue;
        };
        let tables = tip
            .commit
            .streams
            .iter()
            .map(|(stream, commit)| {
                let options = destination.streams.get(stream);
                SourceTable {
                    stream: stream.clone(),
                    table: table_name(&destination.table_template, stream),
                    schema: commit.schema.clone(),
                    primary_key: commit.primary_key.clone(),
                    cursor_field: commit.cursor_field.clone(),
                    deleted_flag: options.and_then(|o| o.deleted_flag.clone()),
                    write_mode: options.and_then(|o| o.write_mode),
                }
            })
            .collect();
        sources.push(Source {
            connection: connection.clone(),
            connector: tip.commit.connector.name.clone(),
            project: bigquery.project.clone(),
            dataset: destination.dataset.clone(),
            interval: loaded
                .schedules
                .get(connection)
                .map(|s| s.typical_interval()),
            tables,
        });
    }
    Ok(sources_yaml(&sources)?)
}
