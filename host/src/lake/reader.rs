//! Reading committed data back: every file of a stream that a commit references, conformed to the
//! stream's newest schema. Used by tests today and by loaders that need rows rather than files.

use super::Lake;
use super::commit::CommitError;
use super::evolution;
use super::history::History;
use arrow_array::RecordBatch;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::sync::Arc;

/// Why committed data could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error("connection `{connection}` has no stream `{stream}` in its newest commit")]
    UnknownStream { connection: String, stream: String },
    #[error("reading `{path}`: {reason}")]
    File { path: String, reason: String },
}

/// All committed rows of `stream`, oldest commit first, in the stream's newest schema.
pub async fn read_committed(
    lake: &Lake,
    connection: &str,
    stream: &str,
) -> Result<Vec<RecordBatch>, ReadError> {
    let history = History::read(lake, connection).await?;
    let schema = history
        .latest()
        .and_then(|c| c.streams.get(stream))
        .map(|s| Arc::new(s.schema.clone()))
        .ok_or_else(|| ReadError::UnknownStream {
            connection: connection.to_owned(),
            stream: stream.to_owned(),
        })?;
    let mut batches = Vec::new();
    for commit in &history.commits {
        let Some(files) = commit.streams.get(stream).map(|s| &s.files) else {
            continue;
        };
        for file in files {
            let file_error = |reason: String| ReadError::File {
                path: file.path.clone(),
                reason,
            };
            // Whole files are fetched: this reader serves tests and small loads, not scans.
            let bytes = lake
                .store()
                .get(&Path::from(file.path.as_str()))
                .await
                .map_err(|e| file_error(e.to_string()))?
                .bytes()
                .await
                .map_err(|e| file_error(e.to_string()))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .map_err(|e| file_error(e.to_string()))?
                .build()
                .map_err(|e| file_error(e.to_string()))?;
            for batch in reader {
                let batch = batch.map_err(|e| file_error(e.to_string()))?;
                batches.push(
                    evolution::conform(&batch, &schema).map_err(|e| file_error(e.to_string()))?,
                );
            }
        }
    }
    Ok(batches)
}
