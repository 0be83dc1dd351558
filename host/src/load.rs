//! The config-file side of the lake and the warehouse: opening the lake `inlet.toml` names (with
//! its Google credentials) and loading connections into BigQuery, for `inlet run`, `inlet load`
//! and the schedules of `inlet serve`.

use crate::bigquery::{self, Client, DEFAULT_ENDPOINT, LoadReport};
use crate::config::LoadedConfig;
use crate::credentials::GoogleAuth;
use crate::lake::{CloudAccess, Lake};
use crate::logging::{Severity, say};
use anyhow::Context;
use std::sync::Arc;

/// The lake of a config file, checked to answer (a missing bucket fails here, before any run).
/// `google` is filled with the credentials when the lake or BigQuery needs them.
pub async fn open_lake(
    loaded: &LoadedConfig,
    google: &mut Option<Arc<GoogleAuth>>,
) -> anyhow::Result<Lake> {
    let location = loaded.lake_location();
    let file = loaded.file.display();
    let access = CloudAccess {
        google: if location.starts_with("gs://") {
            Some(google_auth(loaded, google)?)
        } else {
            None
        },
        gcs_endpoint: loaded.config.lake.endpoint.clone(),
    };
    let lake = Lake::open_with(&location, &access)
        .with_context(|| format!("`{file}`: opening lake.url `{location}`"))?;
    lake.verify()
        .await
        .with_context(|| format!("`{file}`: lake.url `{location}`"))?;
    Ok(lake)
}

fn google_auth(
    loaded: &LoadedConfig,
    google: &mut Option<Arc<GoogleAuth>>,
) -> anyhow::Result<Arc<GoogleAuth>> {
    if let Some(auth) = google {
        return Ok(auth.clone());
    }
    let auth = Arc::new(
        loaded
            .google_auth()
            .with_context(|| format!("`{}`: Google credentials", loaded.file.display()))?,
    );
    *google = Some(auth.clone());
    Ok(auth)
}

/// Loads each of `connections` into BigQuery, printing what was loaded; answers the number that
/// failed (each failure is printed with its cause).
pub async fn load_connections(
    loaded: &LoadedConfig,
    lake: &Lake,
    google: &mut Option<Arc<GoogleAuth>>,
    connections: &[String],
) -> anyhow::Result<usize> {
    let Some(bq) = &loaded.config.bigquery else {
        anyhow::bail!(
            "`{}` has no [bigquery] table; add one with at least `project = \"...\"`",
            loaded.file.display()
        );
    };
    let client = Client::new(
        bq.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT),
        &bq.project,
        google_auth(loaded, google)?,
    );
    let mut failures = 0;
    for connection in connections {
        let destination = loaded
            .destination(connection)
            .expect("[bigquery] is present");
        // A resumed load covers only the interrupted plan; what came after is loaded next.
        loop {
            match bigquery::load_connection(lake, connection, &client, &destination).await {
                Ok(Some(report)) => {
                    say(
                        Severity::Info,
                        &describe(&report),
                        &[("connection", connection)],
                    );
                    if report.resumed {
                        continue;
                    }
                }
                Ok(None) => say(
                    Severity::Info,
                    &format!("`{connection}`: BigQuery is up to date"),
                    &[("connection", connection)],
                ),
                Err(error) => {
                    failures += 1;
                    say(
                        Severity::Error,
                        &format!(
                            "error: loading connection `{connection}` into BigQuery failed: {error}"
                        ),
                        &[("connection", connection)],
                    );
                }
            }
            break;
        }
    }
    Ok(failures)
}

fn describe(report: &LoadReport) -> String {
    let mut out = format!(
        "`{}`: loaded commits {}..={} into BigQuery{}\n",
        report.connection,
        report.first_sequence,
        report.last_sequence,
        if report.resumed {
            " (resumed an interrupted load)"
        } else {
            ""
        }
    );
    for stream in &report.streams {
        out.push_str(&format!(
            "  {:<28} -> {} ({}, {} rows from {} files)\n",
            stream.stream, stream.table, stream.mode, stream.rows, stream.files
        ));
    }
    out
}
