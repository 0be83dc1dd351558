//! Where one part of a partitioned read writes: batches are conformed to the stream schema all
//! parts share, under the session's lock, and encoded by writers of the part's own, so parts
//! encode on as many threads as there are parts instead of queueing for one encoder.

use super::session::{LakeSession, storage_error, write};
use super::writer::RollingWriter;
use crate::runtime::{BatchSink, SinkError};
use arrow_array::RecordBatch;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;
use tokio::sync::Mutex;

/// The sink of one part. Its checkpoints carry no state (a partitioned read is a full refresh);
/// [`PartSink::finish`] hands its files to the session, which commits the parts together.
pub struct PartSink {
    session: Arc<Mutex<LakeSession>>,
    writers: BTreeMap<String, RollingWriter>,
}

impl PartSink {
    /// A part writing into `session`.
    pub fn new(session: Arc<Mutex<LakeSession>>) -> Self {
        Self {
            session,
            writers: BTreeMap::new(),
        }
    }

    /// Finishes this part's open files and gives every file it wrote to the session's next commit.
    pub async fn finish(mut self) -> Result<(), SinkError> {
        for (stream, writer) in &mut self.writers {
            let files = writer
                .take_files()
                .await
                .map_err(|e| storage_error(stream, e))?;
            self.session.lock().await.take_part_files(stream, files)?;
        }
        Ok(())
    }
}

impl BatchSink for PartSink {
    fn emit<'a>(
        &'a mut self,
        stream: &'a str,
        batch: RecordBatch,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let mut session = self.session.lock().await;
            let (batch, schema) = session.conform(stream, batch)?;
            let writer = match self.writers.entry(stream.to_owned()) {
                Entry::Occupied(own) => own.into_mut(),
                Entry::Vacant(none) => none.insert(session.new_writer(stream, &schema)?),
            };
            // Encoding waits for this part's previous batch only: the other parts go on.
            drop(session);
            write(writer, stream, schema, &batch).await
        })
    }

    fn checkpoint(&mut self, _state: String) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::session_tests;
    use crate::lake::{Lake, read_committed};
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::{Array, ArrayRef, Int64Array, StringArray};

    async fn session(lake: &Lake) -> Arc<Mutex<LakeSession>> {
        Arc::new(Mutex::new(session_tests::open(lake).await))
    }

    fn ids(range: std::ops::Range<i64>) -> RecordBatch {
        let ids = Arc::new(Int64Array::from_iter_values(range)) as ArrayRef;
        RecordBatch::try_from_iter(vec![("id", ids)]).unwrap()
    }

    fn ids_and_names(range: std::ops::Range<i64>) -> RecordBatch {
        let names = StringArray::from_iter(range.clone().map(|i| Some(format!("n{i}"))));
        let names = Arc::new(names) as ArrayRef;
        let ids = Arc::new(Int64Array::from_iter_values(range)) as ArrayRef;
        RecordBatch::try_from_iter(vec![("id", ids), ("name", names)]).unwrap()
    }

    /// `(id, name)` of every committed row, by id.
    async fn committed(lake: &Lake) -> Vec<(i64, Option<String>)> {
        let mut rows = Vec::new();
        for batch in read_committed(lake, "conn", "items").await.unwrap() {
            let ids = batch
                .column_by_name("id")
                .unwrap()
                .as_primitive::<Int64Type>();
            let names = batch.column_by_name("name").map(|n| n.as_string::<i32>());
            for row in 0..batch.num_rows() {
                let name = names.filter(|n| n.is_valid(row)).map(|n| n.value(row));
                rows.push((ids.value(row), name.map(str::to_owned)));
            }
        }
        rows.sort();
        rows
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parts_write_files_of_their_own_under_one_evolving_schema_committed_together() {
        let lake = Lake::in_memory();
        let shared = session(&lake).await;
        let (mut first, mut second) =
            (PartSink::new(shared.clone()), PartSink::new(shared.clone()));
        let mut lost = PartSink::new(shared.clone());
        first.emit("items", ids(0..100)).await.unwrap();
        // The second part adds a column: the first part's next batch is written with it.
        second.emit("items", ids_and_names(100..200)).await.unwrap();
        first.emit("items", ids(200..300)).await.unwrap();
        // A part that never finishes (it failed) leaves nothing in the commit.
        lost.emit("items", ids(1000..1010)).await.unwrap();
        let (a, b) = tokio::join!(first.finish(), second.finish());
        a.unwrap();
        b.unwrap();
        drop(lost);
        let mut session = Arc::try_unwrap(shared).ok().unwrap().into_inner();
        assert_eq!(session.commit().await.unwrap(), Some(1));

        let rows = committed(&lake).await;
        let expected: Vec<(i64, Option<String>)> = (0..300)
            .map(|i| (i, (100..200).contains(&i).then(|| format!("n{i}"))))
            .collect();
        assert_eq!(rows, expected);
        let history = crate::lake::History::read(&lake, "conn").await.unwrap();
        let files = &history.commits[0].streams["items"].files;
        let mut names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            3,
            "the first part's two schemas and the second's: {names:?}"
        );
        assert_eq!(files.iter().map(|f| f.rows).sum::<u64>(), 300);
    }
}
