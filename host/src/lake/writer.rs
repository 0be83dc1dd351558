//! A rolling Parquet writer per stream, streaming to the object store with bounded memory.
//!
//! Rows are encoded into the current row group in memory; a row group is flushed (and its pages
//! uploaded as multipart parts) once it holds `row_group_rows` rows or `row_group_bytes` bytes,
//! and a file is finished once it exceeds `file_bytes`, so memory stays bounded whatever the table
//! size. A schema change finishes the current file: each file has one schema.

use super::DataFile;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::sync::Arc;

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
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            row_group_rows: 256 * 1024,
            row_group_bytes: 64 << 20,
            file_bytes: 256 << 20,
            zstd_level: 3,
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
    open: Option<OpenFile>,
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
            finished: Vec::new(),
        }
    }

    /// The schema files are written with.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Switches to a new schema: the open file is finished first.
    pub async fn set_schema(
        &mut self,
        schema: SchemaRef,
    ) -> Result<(), parquet::errors::ParquetError> {
        self.close_file().await?;
        self.schema = schema;
        Ok(())
    }

    /// Appends `batch` (already conformed to the writer's schema).
    pub async fn write(
        &mut self,
        batch: &RecordBatch,
    ) -> Result<(), parquet::errors::ParquetError> {
        if self.open.is_none() {
            self.open = Some(self.open_file()?);
        }
        let file = self.open.as_mut().expect("opened above");
        file.writer.write(batch).await?;
        file.rows += batch.num_rows() as u64;
        if file.writer.bytes_written() + file.writer.in_progress_size() >= self.options.file_bytes {
            self.close_file().await?;
        }
        Ok(())
    }

    /// Finishes the open file and returns every file finished since the last call.
    pub async fn take_files(&mut self) -> Result<Vec<DataFile>, parquet::errors::ParquetError> {
        self.close_file().await?;
        Ok(std::mem::take(&mut self.finished))
    }

    fn open_file(&mut self) -> Result<OpenFile, parquet::errors::ParquetError> {
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

    async fn close_file(&mut self) -> Result<(), parquet::errors::ParquetError> {
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
