//! A rolling Parquet writer per stream, streaming to the object store with bounded memory.
//!
//! Rows are encoded into the current row group in memory; a row group is flushed (and its pages
//! uploaded as multipart parts) once it holds `row_group_rows` rows or `row_group_bytes` bytes,
//! and a file is finished once it exceeds `file_bytes`, so memory stays bounded whatever the table
//! size. A schema change finishes the current file: each file has one schema.
//!
//! Encoding runs on a blocking thread, one batch at a time: `write` hands the batch over and
//! returns, so the connector decodes the next batch while this one is encoded (they used to take
//! turns on one thread). The next `write`, a schema change or `take_files` first waits for it, so
//! at most one batch is in flight and an encoding error is reported at the next call.

use super::DataFile;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Sizes of row groups and files.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Rows per row group at most.
    pub row_group_rows: usize,
    /// Encoded bytes buffered per row group at most.
    pub row_group_bytes: usize,
    /// A file is finished once it reaches this size.
    pub file_bytes: usize,
    /// zstd level.
    pub zstd_level: i32,
    /// A column chunk's dictionary grows to this many bytes before the column falls back to
    /// plain encoding: small enough that high-cardinality columns (ids, amounts, free text) stop
    /// paying for hashing early, large enough for any low-cardinality column.
    pub dictionary_page_bytes: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            row_group_rows: 256 * 1024,
            row_group_bytes: 64 << 20,
            file_bytes: 256 << 20,
            // Level 1 against 3, lineitem SF1: files 3 % larger, encoding 20 % faster.
            zstd_level: 1,
            // Against parquet's 1 MiB, lineitem SF1: files 6 % smaller, encoding 15 % faster.
            dictionary_page_bytes: 256 << 10,
        }
    }
}

struct OpenFile {
    path: Path,
    writer: AsyncArrowWriter<BufWriter>,
    rows: u64,
}

/// Writes one stream's batches into a sequence of Parquet files.
pub struct RollingWriter {
    store: Arc<dyn ObjectStore>,
    dir: Path,
    run_id: String,
    next_part: u32,
    schema: SchemaRef,
    options: WriterOptions,
    /// The open file, unless it is with the encoder.
    open: Option<OpenFile>,
    /// The batch being encoded on a blocking thread, which holds the open file until it is done.
    encoding: Option<JoinHandle<Result<OpenFile, ParquetError>>>,
    finished: Vec<DataFile>,
}

impl RollingWriter {
    /// A writer of files named `<dir>/<run_id>-<part>.parquet`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        dir: Path,
        run_id: &str,
        schema: SchemaRef,
        options: WriterOptions,
    ) -> Self {
        Self {
            store,
            dir,
            run_id: run_id.to_owned(),
            next_part: 0,
            schema,
            options,
            open: None,
            encoding: None,
            finished: Vec::new(),
        }
    }

    /// The schema files are written with.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Switches to a new schema: the open file is finished first.
    pub async fn set_schema(&mut self, schema: SchemaRef) -> Result<(), ParquetError> {
        self.close_file().await?;
        self.schema = schema;
        Ok(())
    }

    /// Appends `batch` (already conformed to the writer's schema). Returns once the previous
    /// batch is encoded and this one handed to the encoder.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<(), ParquetError> {
        self.settle().await?;
        let mut file = match self.open.take() {
            Some(file) => file,
            None => self.open_file()?,
        };
        file.rows += batch.num_rows() as u64;
        let batch = batch.clone();
        let runtime = tokio::runtime::Handle::current();
        self.encoding = Some(tokio::task::spawn_blocking(move || {
            runtime.block_on(file.writer.write(&batch))?;
            Ok(file)
        }));
        Ok(())
    }

    /// Finishes the open file and returns every file finished since the last call.
    pub async fn take_files(&mut self) -> Result<Vec<DataFile>, ParquetError> {
        self.close_file().await?;
        Ok(std::mem::take(&mut self.finished))
    }

    /// Waits for the batch being encoded and finishes the open file once it has reached
    /// `file_bytes`.
    async fn settle(&mut self) -> Result<(), ParquetError> {
        self.take_back_from_encoder().await?;
        let full = self.open.as_ref().is_some_and(|file| {
            file.writer.bytes_written() + file.writer.in_progress_size() >= self.options.file_bytes
        });
        if full {
            self.close_file().await?;
        }
        Ok(())
    }

    /// Waits for the batch being encoded and takes the open file back.
    async fn take_back_from_encoder(&mut self) -> Result<(), ParquetError> {
        let Some(encoding) = self.encoding.take() else {
            return Ok(());
        };
        let file = encoding.await.map_err(|e| {
            ParquetError::General(format!("the Parquet encoder of {} stopped: {e}", self.dir))
        })??;
        self.open = Some(file);
        Ok(())
    }

    fn open_file(&mut self) -> Result<OpenFile, ParquetError> {
        let path = self
            .dir
            .clone()
            .join(format!("{}-{:05}.parquet", self.run_id, self.next_part));
        self.next_part += 1;
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(
                self.options.zstd_level,
            )?))
            .set_max_row_group_row_count(Some(self.options.row_group_rows))
            .set_max_row_group_bytes(Some(self.options.row_group_bytes))
            .set_dictionary_page_size_limit(self.options.dictionary_page_bytes)
            .set_created_by(format!("inlet {}", env!("CARGO_PKG_VERSION")))
            .build();
        let sink = BufWriter::new(self.store.clone(), path.clone());
        let writer = AsyncArrowWriter::try_new(sink, self.schema.clone(), Some(properties))?;
        Ok(OpenFile {
            path,
            writer,
            rows: 0,
        })
    }

    async fn close_file(&mut self) -> Result<(), ParquetError> {
        self.take_back_from_encoder().await?;
        let Some(mut file) = self.open.take() else {
            return Ok(());
        };
        file.writer.finish().await?;
        let bytes = file.writer.bytes_written() as u64;
        self.finished.push(DataFile {
            path: file.path.to_string(),
            rows: file.rows,
            bytes,
        });
        Ok(())
    }
}
