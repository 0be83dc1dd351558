//! Everything a connector sends to the host while reading: batches, checkpoints, logs, progress.

use crate::bindings::inlet::connector::{host, types as wit};
use crate::{Error, State};
use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use serde::Serialize;

/// Severity of a log message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Detail for debugging.
    Debug,
    /// Normal progress.
    Info,
    /// Worth a look; the run goes on.
    Warn,
    /// Something failed.
    Error,
}

/// The connector's channel to the host during `read`.
///
/// Rows are committed only by a later [`Output::checkpoint`] (or the end of a successful read), so
/// checkpoint after every unit of work that can be resumed from its state.
#[derive(Debug, Default)]
pub struct Output {
    rows: std::collections::HashMap<String, u64>,
}

impl Output {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Emits one Arrow record batch for `stream`.
    pub fn emit(&mut self, stream: &str, batch: &RecordBatch) -> Result<(), Error> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(batch.get_array_memory_size() + 1024);
        {
            let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut bytes, &batch.schema())?;
            writer.write(batch)?;
            writer.finish()?;
        }
        host::emit(stream, wit::BatchFormat::ArrowIpc, &bytes)?;
        self.count(stream, batch.num_rows() as u64);
        Ok(())
    }

    /// Emits JSON objects for `stream`; the host converts them to Arrow with the stream's declared
    /// schema, or infers one.
    pub fn emit_json<T: Serialize>(&mut self, stream: &str, rows: &[T]) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::new();
        for row in rows {
            serde_json::to_writer(&mut bytes, row)
                .map_err(|e| Error::data(format!("stream `{stream}`: row is not JSON: {e}")))?;
            bytes.push(b'\n');
        }
        host::emit(stream, wit::BatchFormat::Ndjson, &bytes)?;
        self.count(stream, rows.len() as u64);
        Ok(())
    }

    /// Makes every row emitted so far durable together with `state`.
    pub fn checkpoint(&mut self, state: &State) -> Result<(), Error> {
        host::checkpoint(&state.to_json())?;
        Ok(())
    }

    /// Writes a message to the operator's log.
    pub fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Debug => wit::LogLevel::Debug,
            LogLevel::Info => wit::LogLevel::Info,
            LogLevel::Warn => wit::LogLevel::Warn,
            LogLevel::Error => wit::LogLevel::Error,
        };
        host::log(level, message);
    }

    /// Reports rows read so far for `stream`, with the total when known.
    pub fn progress(&self, stream: &str, total: Option<u64>) {
        host::progress(stream, self.rows_emitted(stream), total);
    }

    /// Rows emitted for `stream` during this read.
    pub fn rows_emitted(&self, stream: &str) -> u64 {
        self.rows.get(stream).copied().unwrap_or(0)
    }

    fn count(&mut self, stream: &str, rows: u64) {
        *self.rows.entry(stream.to_owned()).or_default() += rows;
    }
}

/// Turns serde-serializable rows into Arrow record batches of a fixed schema.
///
/// Field names of the rows are matched to schema fields by name; strings are parsed into dates,
/// timestamps and decimals the way Arrow's JSON reader does.
pub struct RowEncoder {
    schema: SchemaRef,
}

impl RowEncoder {
    /// An encoder for `schema`.
    pub fn new(schema: SchemaRef) -> Result<Self, Error> {
        Ok(Self { schema })
    }

    /// The schema batches are built with.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Encodes `rows` into one record batch.
    pub fn encode<T: Serialize>(&mut self, rows: &[T]) -> Result<RecordBatch, Error> {
        let mut decoder = arrow_json::ReaderBuilder::new(self.schema.clone())
            .with_batch_size(rows.len().max(1))
            .build_decoder()?;
        decoder.serialize(rows)?;
        match decoder.flush()? {
            Some(batch) => Ok(batch),
            None => Ok(RecordBatch::new_empty(self.schema.clone())),
        }
    }
}

/// Encodes a schema as the Arrow IPC schema message the WIT contract carries.
pub(crate) fn encode_schema(schema: &Schema) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut bytes, schema)?;
    writer.finish()?;
    drop(writer);
    Ok(bytes)
}
