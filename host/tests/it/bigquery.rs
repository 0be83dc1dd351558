//! The operator's path to BigQuery: `inlet run` with a `gs://` lake and a `[bigquery]` table,
//! against fake-gcs-server (writes through the harness proxy) and local-bigquery.

use super::gcp::{GcpServices, PROJECT};
use super::{inlet, inlet_with_env, text};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use inlet_host::credentials::GoogleAuth;
use inlet_host::lake::{CloudAccess, Lake, read_committed};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Writes an `inlet.toml` for the sample connector into `dir`; `streams` is appended as is.
pub(super) fn config(dir: &Path, bucket: &str, dataset_prefix: &str, streams: &str) {
    let services = GcpServices::get();
    let text = format!(
        r#"
[lake]
url = "gs://{bucket}/raw"
endpoint = "{gcs}"

[google]
credentials = "none"

[bigquery]
project = "{PROJECT}"
endpoint = "{bq}"
location = "asia-northeast1"
dataset = "{dataset_prefix}_{{connection}}"
labels = {{ source = "inlet" }}

[connections.pharmacy]
connector = "sample"
config = {{ patients = 300, new_per_run = 40, updates_per_run = 25 }}
{streams}
"#,
        gcs = services.gcs_endpoint,
        bq = services.bigquery_endpoint,
    );
    std::fs::write(dir.join("inlet.toml"), text).unwrap();
}

pub(super) fn lake(bucket: &str) -> Lake {
    let access = CloudAccess {
        google: Some(Arc::new(GoogleAuth::anonymous())),
        gcs_endpoint: Some(GcpServices::get().gcs_endpoint.clone()),
    };
    Lake::open_with(&format!("gs://{bucket}/raw"), &access).unwrap()
}

/// Every committed row of a sample stream: (id, updated_at in microseconds), oldest commit first.
fn lake_rows(bucket: &str, stream: &str) -> Vec<(i64, i64)> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let batches = runtime
        .block_on(read_committed(&lake(bucket), "pharmacy", stream))
        .unwrap();
    let mut rows = Vec::new();
    for batch in batches {
        let ids = batch
            .column_by_name("id")
            .unwrap()
            .as_primitive::<Int64Type>();
        let at = batch
            .column_by_name("updated_at")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>();
        rows.extend(
            ids.values()
                .iter()
                .copied()
                .zip(at.values().iter().copied()),
        );
    }
    rows
}

/// id -> updated_at (microseconds) of every row of a BigQuery table, failing on a duplicate id.
fn table_rows(table: &str) -> BTreeMap<i64, i64> {
    let rows = GcpServices::get().query(&format!(
        "SELECT id, UNIX_MICROS(updated_at) FROM `{PROJECT}.{table}` ORDER BY id"
    ));
    let mut out = BTreeMap::new();
    for row in rows {
        let id: i64 = row[0].as_deref().unwrap().parse().unwrap();
        let at: i64 = row[1].as_deref().unwrap().parse().unwrap();
        assert!(out.insert(id, at).is_none(), "{table}: id {id} twice");
    }
    out
}

fn count(table: &str) -> usize {
    let rows = GcpServices::get().query(&format!("SELECT COUNT(*) FROM `{PROJECT}.{table}`"));
    rows[0][0].as_deref().unwrap().parse().unwrap()
}

/// The newest updated_at of each id, as a merge should leave it.
fn newest(rows: &[(i64, i64)]) -> BTreeMap<i64, i64> {
    let mut out = BTreeMap::new();
    for (id, at) in rows {
        let entry = out.entry(*id).or_insert(*at);
        *entry = (*entry).max(*at);
    }
    out
}

#[test]
fn run_loads_each_write_mode_into_bigquery() {
    let services = GcpServices::get();
    let bucket = services.bucket("modes-lake");
    let dir = tempfile::tempdir().unwrap();
    config(
        dir.path(),
        &bucket,
        "modes",
        r#"
[connections.pharmacy.streams.consultations]
write_mode = "append"
partition_by = "consulted_at"
partition_granularity = "month"
cluster_by = ["patient_id"]

[connections.pharmacy.streams.orders]
sync_mode = "full_refresh"
"#,
    );
    for run in 1..=2 {
        let output = inlet(dir.path(), &["run", "inlet.toml"]);
        assert!(output.status.success(), "run {run}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("loaded commits"), "{stderr}");

        // merge (the default with a primary key): one row per id, the newest version.
        let patients = lake_rows(&bucket, "patients");
        assert_eq!(table_rows("modes_pharmacy.patients"), newest(&patients));
        // append: every committed row, updates included.
        let consultations = lake_rows(&bucket, "consultations");
        assert_eq!(count("modes_pharmacy.consultations"), consultations.len());
        // replace (the default for full refresh): exactly the newest full copy.
        let orders = lake_rows(&bucket, "orders");
        let copies = orders.len();
        let newest_orders = newest(&orders);
        assert_eq!(table_rows("modes_pharmacy.orders"), newest_orders);
        assert!(
            run == 1 || copies > newest_orders.len(),
            "the lake keeps both copies"
        );
    }
    assert_eq!(table_rows("modes_pharmacy.patients").len(), 340);

    let columns = services
        .table_columns("modes_pharmacy", "consultations")
        .unwrap();
    let column = |name: &str| {
        columns
            .iter()
            .find(|c| c.0 == name)
            .map(|c| (c.1.as_str(), c.2.as_str()))
            .unwrap()
    };
    assert!(matches!(column("id"), ("INTEGER" | "INT64", "REQUIRED")));
    assert_eq!(column("fee").0, "NUMERIC");
    assert_eq!(column("consulted_at").0, "TIMESTAMP");
    assert!(matches!(column("notes"), ("STRING", "NULLABLE")));

    let output = inlet(dir.path(), &["load", "inlet.toml"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("BigQuery is up to date"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_crash_after_the_load_jobs_loads_nothing_twice() {
    let services = GcpServices::get();
    let bucket = services.bucket("crash-lake");
    let dir = tempfile::tempdir().unwrap();
    // Append makes a second load visible as duplicate ids.
    config(
        dir.path(),
        &bucket,
        "crash",
        r#"select = ["patients"]
[connections.pharmacy.streams.patients]
write_mode = "append"
"#,
    );
    let output = inlet_with_env(
        dir.path(),
        &["run", "inlet.toml"],
        &[("INLET_FAULT", "crash-before-load-record")],
    );
    assert!(
        !output.status.success(),
        "the fault aborts: {}",
        text(&output)
    );
    assert_eq!(
        count("crash_pharmacy.patients"),
        300,
        "the job ran before the crash"
    );

    // The next run syncs the next generation, finishes the interrupted load without loading its
    // files again, then loads the new commits: every committed row exactly once.
    let output = inlet(dir.path(), &["run", "inlet.toml"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("resumed an interrupted load"),
        "{}",
        text(&output)
    );
    let committed = lake_rows(&bucket, "patients");
    assert!(committed.len() > 300, "the second generation was committed");
    assert_eq!(
        count("crash_pharmacy.patients"),
        committed.len(),
        "no row loaded twice, none missing"
    );
}

#[test]
fn a_missing_bucket_and_a_conflicting_table_are_named() {
    let services = GcpServices::get();
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), "no-such-bucket", "missing", "");
    let output = inlet(dir.path(), &["run", "inlet.toml"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("gs://no-such-bucket/raw")
            && stderr.contains("gcloud storage buckets create"),
        "{stderr}"
    );

    // A credentials file that is not one: named, with what to use instead.
    let toml = std::fs::read_to_string(dir.path().join("inlet.toml")).unwrap();
    std::fs::write(dir.path().join("key.json"), "{\"type\": \"api_key\"}").unwrap();
    std::fs::write(
        dir.path().join("inlet.toml"),
        toml.replace("credentials = \"none\"", "credentials = \"key.json\""),
    )
    .unwrap();
    let output = inlet(dir.path(), &["run", "inlet.toml"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("key.json")
            && stderr.contains("`api_key`")
            && stderr.contains("service_account"),
        "{stderr}"
    );

    // A table someone else made, where `id` is text: BigQuery cannot change it, Inlet says so.
    let bucket = services.bucket("conflict-lake");
    config(dir.path(), &bucket, "conflict", "select = [\"patients\"]\n");
    let port = services.bigquery_port();
    let dataset = serde_json::json!({"datasetReference": {"projectId": PROJECT, "datasetId": "conflict_pharmacy"}});
    let (status, body) = super::gcp::http(
        "POST",
        port,
        &format!("/bigquery/v2/projects/{PROJECT}/datasets"),
        Some(&dataset.to_string()),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let table = serde_json::json!({
        "tableReference": {"projectId": PROJECT, "datasetId": "conflict_pharmacy", "tableId": "patients"},
        "schema": {"fields": [{"name": "id", "type": "STRING", "mode": "NULLABLE"}]},
    });
    let (status, body) = super::gcp::http(
        "POST",
        port,
        &format!("/bigquery/v2/projects/{PROJECT}/datasets/conflict_pharmacy/tables"),
        Some(&table.to_string()),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let output = inlet(dir.path(), &["run", "inlet.toml"]);
    assert!(!output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("stream `patients` -> table `conflict_pharmacy.patients`")
            && stderr.contains("column `id`")
            && stderr.contains("cannot change a column's type"),
        "{stderr}"
    );
    // The sync itself was committed; only the load is missing, and a later load can finish it.
    assert_eq!(lake_rows(&bucket, "patients").len(), 300);
}

/// `inlet dbt-sources` after a run: dbt's own parser (dbt-core with dbt-bigquery, installed by
/// `tests/services/install.sh`) reads the file, a model selects from a source, and the sources
/// name the loaded tables with the lake's columns, the cursor as `loaded_at_field`, freshness
/// from the schedule and key tests.
#[test]
fn dbt_sources_describe_the_loaded_tables_and_dbt_parses_them() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = GcpServices::get().bucket("dbt-lake");
    config(dir.path(), &bucket, "dbt", "schedule = \"every 15m\"");
    let run = inlet(dir.path(), &["run", "inlet.toml"]);
    assert!(run.status.success(), "{}", text(&run));

    let project = dir.path().join("warehouse");
    std::fs::create_dir_all(project.join("models")).unwrap();
    std::fs::write(
        project.join("dbt_project.yml"),
        "name: \"warehouse\"\nversion: \"1.0.0\"\nconfig-version: 2\nprofile: \"inlet_test\"\n",
    )
    .unwrap();
    std::fs::write(
        project.join("profiles.yml"),
        format!(
            "inlet_test:\n  target: test\n  outputs:\n    test:\n      type: bigquery\n      method: oauth\n      project: {PROJECT}\n      dataset: warehouse\n      threads: 1\n"
        ),
    )
    .unwrap();
    std::fs::write(
        project.join("models/stg_orders.sql"),
        "select id, updated_at from {{ source('pharmacy', 'orders') }}\n",
    )
    .unwrap();
    let written = inlet(
        dir.path(),
        &[
            "dbt-sources",
            "inlet.toml",
            "--output",
            "warehouse/models/sources.yml",
        ],
    );
    assert!(written.status.success(), "{}", text(&written));

    let dbt = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/.venv-dbt/bin/dbt");
    assert!(
        dbt.exists(),
        "{} is missing: run tests/services/install.sh",
        dbt.display()
    );
    let parsed = std::process::Command::new(&dbt)
        .args([
            "parse",
            "--no-send-anonymous-usage-stats",
            "--profiles-dir",
            ".",
        ])
        .current_dir(&project)
        .env("DBT_LOG_PATH", dir.path().join("dbt-logs"))
        .output()
        .unwrap();
    assert!(parsed.status.success(), "{}", text(&parsed));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.join("target/manifest.json")).unwrap())
            .unwrap();
    let source = &manifest["sources"]["source.warehouse.pharmacy.orders"];
    assert_eq!(
        source["relation_name"],
        format!("`{PROJECT}`.`dbt_pharmacy`.`orders`"),
        "{source}"
    );
    let tip = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(inlet_host::lake::Tip::open(&lake(&bucket), "pharmacy"))
        .unwrap()
        .unwrap();
    let lake_columns: Vec<String> = tip.commit.streams["orders"]
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut dbt_columns: Vec<String> = source["columns"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let mut expected = lake_columns.clone();
    dbt_columns.sort();
    expected.sort();
    assert_eq!(dbt_columns, expected);
    assert!(
        source["loaded_at_field"]
            .as_str()
            .unwrap()
            .contains("updated_at"),
        "{source}"
    );
    assert_eq!(
        source["freshness"]["warn_after"],
        serde_json::json!({"count": 30, "period": "minute"})
    );
    let model = &manifest["nodes"]["model.warehouse.stg_orders"];
    assert_eq!(
        model["depends_on"]["nodes"],
        serde_json::json!(["source.warehouse.pharmacy.orders"])
    );
    let tests: Vec<&String> = manifest["nodes"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("test.warehouse.source_"))
        .collect();
    assert!(
        tests
            .iter()
            .any(|t| t.contains("unique_pharmacy_orders_id")),
        "{tests:?}"
    );
}
