//! `inlet read`: a sink that prints records as JSON lines instead of writing a lake, and stops
//! the read once every stream printed its `--limit`.

use crate::runtime::{BatchSink, SinkError};
use arrow_array::RecordBatch;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Prints up to `limit` rows per stream to stdout, `{"stream": ..., "record": {...}}` per line,
/// and checkpoints to stderr. Values are written by Arrow's JSON writer as they are (decimals
/// keep every digit).
pub struct PrintSink {
    limit: Option<u64>,
    printed: HashMap<String, u64>,
    streams: Vec<String>,
    enough: Arc<AtomicBool>,
}

/// What ends a read whose every stream printed its limit.
const ENOUGH: &str = "every stream printed its --limit";

impl PrintSink {
    /// A sink printing at most `limit` rows of each of `streams`. Once all have printed that many
    /// it refuses further rows, which ends the read; `enough` then says that was the reason.
    pub fn new(limit: Option<u64>, streams: Vec<String>) -> (Self, Arc<AtomicBool>) {
        let enough = Arc::new(AtomicBool::new(false));
        let sink = Self {
            limit,
            printed: HashMap::new(),
            streams,
            enough: enough.clone(),
        };
        (sink, enough)
    }

    fn all_printed(&self) -> bool {
        self.limit.is_some_and(|limit| {
            self.streams
                .iter()
                .all(|s| self.printed.get(s).copied().unwrap_or(0) >= limit)
        })
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
        let mut lines = Vec::new();
        {
            let mut writer = arrow_json::LineDelimitedWriter::new(&mut lines);
            writer
                .write(&batch)
                .map_err(|e| SinkError::new(e.to_string()))?;
            writer.finish().map_err(|e| SinkError::new(e.to_string()))?;
        }
        // The record is spliced in as Arrow wrote it: parsing it back would turn decimals into
        // floats.
        let stream_json = serde_json::Value::from(stream).to_string();
        let mut out = std::io::stdout().lock();
        for record in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let written = out
                .write_all(b"{\"stream\":")
                .and_then(|()| out.write_all(stream_json.as_bytes()))
                .and_then(|()| out.write_all(b",\"record\":"))
                .and_then(|()| out.write_all(record))
                .and_then(|()| out.write_all(b"}\n"));
            written.map_err(|e| SinkError::new(format!("writing to stdout: {e}")))?;
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
        Box::pin(async move {
            self.print(stream, &batch)?;
            if self.all_printed() {
                self.enough.store(true, Ordering::Relaxed);
                return Err(SinkError::new(ENOUGH));
            }
            Ok(())
        })
    }

    fn checkpoint(&mut self, state: String) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            eprintln!("checkpoint: {state}");
            Ok(())
        })
    }
}
