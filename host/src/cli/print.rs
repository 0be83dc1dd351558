//! `inlet read`: a sink that prints records as JSON lines instead of writing a lake.

use crate::runtime::{BatchSink, SinkError};
use arrow_array::RecordBatch;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::io::Write;

/// Prints up to `limit` rows per stream to stdout, `{"stream": ..., "record": {...}}` per line,
/// and checkpoints to stderr.
pub struct PrintSink {
    limit: Option<u64>,
    printed: HashMap<String, u64>,
}

impl PrintSink {
    /// A sink printing at most `limit` rows per stream.
    pub fn new(limit: Option<u64>) -> Self {
        Self {
            limit,
            printed: HashMap::new(),
        }
    }

    fn print(&mut self, stream: &str, batch: &RecordBatch) -> Result<(), SinkError> {
        let printed = self.printed.entry(stream.to_owned()).or_default();
        let room = self
            .limit
            .map_or(batch.num_rows() as u64, |l| l.saturating_sub(*printed))
            .min(batch.num_rows() as u64);
        if room == 0 {
            return Ok(());
        }
        let batch = batch.slice(0, room as usize);
        let mut buffer = Vec::new();
        {
            let mut writer = arrow_json::ArrayWriter::new(&mut buffer);
            writer
                .write(&batch)
                .map_err(|e| SinkError::new(e.to_string()))?;
            writer.finish().map_err(|e| SinkError::new(e.to_string()))?;
        }
        let rows: Vec<serde_json::Value> =
            serde_json::from_slice(&buffer).map_err(|e| SinkError::new(e.to_string()))?;
        let mut out = std::io::stdout().lock();
        for record in rows {
            let line = serde_json::json!({"stream": stream, "record": record});
            writeln!(out, "{line}")
                .map_err(|e| SinkError::new(format!("writing to stdout: {e}")))?;
        }
        *printed += room;
        Ok(())
    }
}

impl BatchSink for PrintSink {
    fn emit<'a>(
        &'a mut self,
        stream: &'a str,
        batch: RecordBatch,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move { self.print(stream, &batch) })
    }

    fn checkpoint(&mut self, state: String) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            eprintln!("checkpoint: {state}");
            Ok(())
        })
    }
}
