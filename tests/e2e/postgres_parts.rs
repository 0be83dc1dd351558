//! Parallel parts of a PostgreSQL full refresh: key and page (ctid) ranges, read in one snapshot
//! exported by the instance that split the table, whatever other sessions write meanwhile.

use crate::harness::{ids, runtime, sync};
use crate::postgres::{pg_plan, server};
use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use futures::future::BoxFuture;
use inlet_host::lake::{Lake, read_committed};
use inlet_host::runtime::{BatchSink, CallError, ConfiguredStream, SinkError, SyncMode};
use inlet_host::sync::{Prepared, SyncPlan, load};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Keeps what a part emits.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<RecordBatch>>>);

impl BatchSink for Collect {
    fn emit<'a>(
        &'a mut self,
        _stream: &'a str,
        batch: RecordBatch,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        self.0.lock().unwrap().push(batch);
        Box::pin(async { Ok(()) })
    }

    fn checkpoint(&mut self, _state: String) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }
}

async fn prepare(plan: &SyncPlan) -> Prepared {
    let connector = load(runtime(), &plan.connection, &plan.connector).unwrap();
    Prepared::new(
        connector,
        &plan.connection,
        &plan.config,
        &plan.sandbox,
        Arc::new(|_| {}),
    )
    .await
    .unwrap()
}

/// Reads one part in a fresh instance, as the host does.
async fn read_part(
    prepared: &Prepared,
    plan: &SyncPlan,
    stream: &str,
    descriptor: &str,
) -> Result<Vec<RecordBatch>, CallError> {
    let run = prepared.start(&plan.sandbox).await.unwrap();
    let collect = Collect::default();
    let streams = [ConfiguredStream {
        name: stream.to_owned(),
        sync_mode: SyncMode::FullRefresh,
        partition: Some(descriptor.to_owned()),
    }];
    let declared = HashMap::from([(stream.to_owned(), None)]);
    run.read(
        &plan.config.to_string(),
        &streams,
        declared,
        None,
        Box::new(collect.clone()),
    )
    .await?;
    Ok(std::mem::take(&mut *collect.0.lock().unwrap()))
}

fn values(batches: &[RecordBatch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("v")
                .unwrap()
                .as_string::<i32>()
                .iter()
                .map(|v| v.unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Splits `table` in three, lets another session insert, delete and update rows, then reads the
/// parts: together they are exactly the table as it was at the split, each row once. Once the
/// splitting instance is gone, a part names the lost snapshot.
async fn parts_see_the_snapshot_of_the_split(table: &str, create: &str, split: &str) {
    let pg = server();
    let db = pg.database(&format!("parts_{table}"));
    pg.sql(
        &db,
        &format!(
            "{create};
            INSERT INTO {table} SELECT i, 'row ' || i || repeat('.', 40) FROM generate_series(1, 6000) i;"
        ),
    );
    let mut config = pg.config(&db);
    config["tables"] = serde_json::json!({ format!("public.{table}"): { "split": split } });
    let plan = pg_plan(&format!("parts-{table}"), config);
    let prepared = prepare(&plan).await;
    let stream = format!("public.{table}");

    let mut splitter = prepared.start(&plan.sandbox).await.unwrap();
    let descriptors = splitter
        .partitions(&plan.config.to_string(), &stream, 3)
        .await
        .unwrap();
    assert_eq!(descriptors.len(), 3, "{descriptors:?}");
    let kind = if split == "ctid" { "pages" } else { "key" };
    assert!(
        descriptors
            .iter()
            .all(|d| d.contains("\"snapshot\":\"") && d.contains(kind)),
        "{descriptors:?}"
    );

    // Another session changes the table after the split, before any part reads.
    pg.sql(
        &db,
        &format!(
            "INSERT INTO {table} SELECT i, 'late' FROM generate_series(6001, 7000) i;
             DELETE FROM {table} WHERE id <= 500;
             UPDATE {table} SET v = 'changed' WHERE id BETWEEN 1000 AND 2999;"
        ),
    );
    let reads = descriptors
        .iter()
        .map(|d| read_part(&prepared, &plan, &stream, d));
    let mut batches = Vec::new();
    for (index, read) in futures::future::join_all(reads)
        .await
        .into_iter()
        .enumerate()
    {
        let part = read.unwrap_or_else(|e| panic!("part {index}: {e}"));
        assert!(
            part.iter().map(RecordBatch::num_rows).sum::<usize>() > 0,
            "part {index} read rows"
        );
        batches.extend(part);
    }
    assert_eq!(
        ids(&batches),
        (1..=6000).collect::<Vec<i64>>(),
        "the parts hold every row of the snapshot once, and no row written after it"
    );
    assert!(
        values(&batches).iter().all(|v| v.starts_with("row ")),
        "updates after the split are invisible"
    );

    drop(splitter);
    // The server ends the exporting transaction once its connection is gone.
    let mut error = String::new();
    for _ in 0..50 {
        match read_part(&prepared, &plan, &stream, &descriptors[0]).await {
            Err(e) => {
                error = e.to_string();
                break;
            }
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    assert!(
        error.contains("the snapshot `") && error.contains("is gone"),
        "{error}"
    );
}

#[tokio::test]
async fn key_range_parts_read_one_snapshot_while_another_session_writes() {
    parts_see_the_snapshot_of_the_split(
        "keyed",
        "CREATE TABLE keyed (id int8 PRIMARY KEY, v text NOT NULL)",
        "key",
    )
    .await;
}

#[tokio::test]
async fn page_range_parts_read_one_snapshot_while_another_session_writes() {
    parts_see_the_snapshot_of_the_split(
        "heap",
        "CREATE TABLE heap (id int8 NOT NULL, v text NOT NULL)",
        "ctid",
    )
    .await;
}

#[tokio::test]
async fn a_table_without_an_integer_key_is_read_in_parallel_page_ranges_in_small_batches() {
    let pg = server();
    let db = pg.database("pages");
    pg.sql(
        &db,
        "CREATE TABLE notes (code text PRIMARY KEY, id int8 NOT NULL, v text NOT NULL);
        INSERT INTO notes SELECT 'n' || i, i, repeat('x', 60) FROM generate_series(1, 20000) i;
        DELETE FROM notes WHERE id BETWEEN 5000 AND 5999;",
    );
    let lake = Lake::in_memory();
    let mut config = pg.config(&db);
    // Small batches: each part emits many, bounded by bytes rather than rows.
    config["batch_bytes"] = serde_json::json!(16 * 1024);
    let mut plan = pg_plan("pages", config);
    plan.full_refresh = true;
    plan.parallel.insert("public.notes".into(), 3);
    let (result, recorder) = sync(&lake, &plan).await;
    assert_eq!(result.unwrap().streams["public.notes"].rows, 19000);
    let logs = recorder.logs.lock().unwrap().clone();
    let parts = logs
        .iter()
        .filter(|l| l.starts_with("public.notes:") && l.contains(" in pages ["))
        .count();
    assert_eq!(parts, 3, "three instances read three page ranges: {logs:?}");
    let expected: Vec<i64> = (1..=20000).filter(|i| !(5000..=5999).contains(i)).collect();
    assert_eq!(
        ids(&read_committed(&lake, "pages", "public.notes")
            .await
            .unwrap()),
        expected
    );
}
