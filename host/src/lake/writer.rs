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

use super::{DataFile, dictionary};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::{ArrowSchemaConverter, AsyncArrowWriter};
use parquet::basic::{Compression, Type as PhysicalType, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
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
    /// How pages are compressed.
    pub codec: Codec,
    /// A column chunk's dictionary grows to this many bytes before the column falls back to
    /// plain encoding: small enough that high-cardinality columns (ids, amounts, free text) stop
    /// paying for hashing early, large enough for any low-cardinality column. Columns whose
    /// first batch shows they would outgrow it start plain (`lake::dictionary`).
    pub dictionary_page_bytes: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            row_group_rows: 256 * 1024,
            row_group_bytes: 64 << 20,
            file_bytes: 256 << 20,
            codec: Codec::default(),
            // Against parquet's 1 MiB, lineitem SF1: files 6 % smaller, encoding 15 % faster.
            dictionary_page_bytes: 256 << 10,
        }
    }
}

/// The compression of the lake's Parquet pages (`[lake] compression`, `inlet sync --compression`).
///
/// Snappy by default: the lake is where loads into BigQuery start, which reads Snappy and zstd
/// alike. Measured on lineitem SF1 (6M rows, a native re-encode of the same batches): Snappy
/// 2.02 s and 204.5 MiB, zstd level 1 2.58-2.84 s and 144.75 MiB, none 1.25 s and 402.5 MiB. A
/// sync's CPU is about 10 % lower with Snappy, and on a machine the database shares, the
/// database gets that CPU; zstd is there for lakes kept for their own sake, where 30 % fewer
/// bytes stored matter more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Snappy: fast, the Parquet ecosystem's common default.
    #[default]
    Snappy,
    /// zstd level 1: about 30 % smaller files than Snappy for about 25 % more encoding time
    /// (level 3 was 3 % smaller again and 20 % slower still).
    Zstd,
    /// No compression.
    None,
}

impl Codec {
    fn parquet(self) -> Compression {
        match self {
            Self::Snappy => Compression::SNAPPY,
            // Level 1, parquet's default.
            Self::Zstd => Compression::ZSTD(ZstdLevel::default()),
            Self::None => Compression::UNCOMPRESSED,
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
    /// The number of the next file, shared by the writers of one stream in one run.
    next_part: Arc<AtomicU32>,
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
            next_part: Arc::default(),
            schema,
            options,
            open: None,
            encoding: None,
            finished: Vec::new(),
        }
    }

    /// Numbers files from `numbers`, shared with other writers of the same directory and run, so
    /// that writers of the parts of one read never pick the same name.
    pub fn numbering_files_from(mut self, numbers: Arc<AtomicU32>) -> Self {
        self.next_part = numbers;
        self
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
            None => self.open_file(batch)?,
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

    /// Opens the next file, its encodings chosen for `first`, the batch it starts with.
    fn open_file(&mut self, first: &RecordBatch) -> Result<OpenFile, ParquetError> {
        let part = self.next_part.fetch_add(1, Ordering::Relaxed);
        let path = self
            .dir
            .clone()
            .join(format!("{}-{part:05}.parquet", self.run_id));
        let mut properties = WriterProperties::builder()
            .set_compression(self.options.codec.parquet())
            .set_max_row_group_row_count(Some(self.options.row_group_rows))
            .set_max_row_group_bytes(Some(self.options.row_group_bytes))
            .set_dictionary_page_size_limit(self.options.dictionary_page_bytes)
            .set_created_by(format!("inlet {}", env!("CARGO_PKG_VERSION")));
        // Text and binary columns carry no min/max statistics: computing them compares every
        // value (about 15 % of the encode of lineitem SF1) and loads into BigQuery do not read
        // them; numbers, dates and times keep theirs for readers that prune row groups.
        for path in byte_array_columns(&self.schema)? {
            properties = properties.set_column_statistics_enabled(path, EnabledStatistics::None);
        }
        for path in dictionary::columns_without_dictionary(
            first,
            self.options.row_group_rows,
            self.options.dictionary_page_bytes,
        ) {
            properties = properties.set_column_dictionary_enabled(path, false);
        }
        let properties = properties.build();
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

/// The Parquet leaf columns of `schema` stored as byte arrays (text, binary, JSON).
fn byte_array_columns(schema: &SchemaRef) -> Result<Vec<ColumnPath>, ParquetError> {
    let parquet_schema = ArrowSchemaConverter::new().convert(schema)?;
    Ok(parquet_schema
        .columns()
        .iter()
        .filter(|column| column.physical_type() == PhysicalType::BYTE_ARRAY)
        .map(|column| column.path().clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use object_store::ObjectStoreExt;
    use object_store::local::LocalFileSystem;
    use object_store::memory::InMemory;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn ids(from: i64, count: i64) -> RecordBatch {
        let schema = Schema::new(vec![Field::new("id", DataType::Int64, false)]);
        let ids = Int64Array::from_iter_values(from..from + count);
        RecordBatch::try_new(Arc::new(schema), vec![Arc::new(ids)]).unwrap()
    }

    fn ids_and_names(from: i64, count: i64) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]);
        let ids = Int64Array::from_iter_values(from..from + count);
        let names = StringArray::from_iter((from..from + count).map(|i| Some(format!("n{i}"))));
        RecordBatch::try_new(Arc::new(schema), vec![Arc::new(ids), Arc::new(names)]).unwrap()
    }

    /// The Parquet reader of `file`, read back from the store.
    async fn reader_of(
        store: &InMemory,
        file: &DataFile,
    ) -> ParquetRecordBatchReaderBuilder<bytes::Bytes> {
        let path = Path::from(file.path.as_str());
        let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
        ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap()
    }

    /// Whether each column of a file's first row group has a dictionary page.
    fn with_dictionary(reader: &ParquetRecordBatchReaderBuilder<bytes::Bytes>) -> Vec<bool> {
        reader.metadata().row_groups()[0]
            .columns()
            .iter()
            .map(|c| c.dictionary_page_offset().is_some())
            .collect()
    }

    /// The ids of each file, read back from the store.
    async fn ids_in(store: &InMemory, files: &[DataFile]) -> Vec<Vec<i64>> {
        let mut all = Vec::new();
        for file in files {
            let mut ids = Vec::new();
            for batch in reader_of(store, file).await.build().unwrap() {
                let batch = batch.unwrap();
                ids.extend(batch.column(0).as_primitive::<Int64Type>().values().iter());
            }
            assert_eq!(ids.len() as u64, file.rows, "{}", file.path);
            all.push(ids);
        }
        all
    }

    /// Batches handed over while the one before is still being encoded land in order, in files
    /// rolled at `file_bytes` and at a schema change, on either kind of runtime.
    async fn every_row_lands_in_order(writer_options: WriterOptions) -> Vec<Vec<i64>> {
        let store = Arc::new(InMemory::new());
        let mut writer = RollingWriter::new(
            store.clone(),
            Path::from("c/s"),
            "run",
            ids(0, 0).schema(),
            writer_options,
        );
        for from in (0..5_000).step_by(500) {
            writer.write(&ids(from, 500)).await.unwrap();
        }
        let first = writer.take_files().await.unwrap();
        writer
            .set_schema(ids_and_names(0, 0).schema())
            .await
            .unwrap();
        for from in (5_000..6_000).step_by(250) {
            writer.write(&ids_and_names(from, 250)).await.unwrap();
        }
        let second = writer.take_files().await.unwrap();
        let files: Vec<DataFile> = first.into_iter().chain(second).collect();
        let per_file = ids_in(&store, &files).await;
        let all: Vec<i64> = per_file.iter().flatten().copied().collect();
        assert_eq!(all, (0..6_000).collect::<Vec<_>>());
        per_file
    }

    #[tokio::test]
    async fn rows_land_in_order_on_a_current_thread_runtime() {
        // A file per batch: each `write` finishes the file the previous batch filled.
        let per_file = every_row_lands_in_order(WriterOptions {
            file_bytes: 1,
            ..WriterOptions::default()
        })
        .await;
        assert_eq!(per_file.len(), 14);
        assert!(per_file[..10].iter().all(|ids| ids.len() == 500));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_land_in_order_on_a_multi_thread_runtime() {
        let per_file = every_row_lands_in_order(WriterOptions::default()).await;
        // One file per schema.
        assert_eq!(per_file.len(), 2);
        assert_eq!(per_file[1].len(), 1_000);
    }

    #[tokio::test]
    async fn text_columns_carry_no_statistics_and_numbers_keep_theirs() {
        let store = Arc::new(InMemory::new());
        let tags = Field::new_list("tags", Field::new_list_field(DataType::Utf8, true), true);
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            tags,
        ]));
        let mut tags =
            arrow_array::builder::ListBuilder::new(arrow_array::builder::StringBuilder::new());
        for i in 0..3 {
            tags.values().append_value(format!("t{i}"));
            tags.append(true);
        }
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![7, 3, 9])),
                Arc::new(StringArray::from(vec![Some("b"), None, Some("a")])),
                Arc::new(tags.finish()),
            ],
        )
        .unwrap();
        let mut writer = RollingWriter::new(
            store.clone(),
            Path::from("c/s"),
            "run",
            schema,
            WriterOptions::default(),
        );
        writer.write(&batch).await.unwrap();
        let files = writer.take_files().await.unwrap();
        let reader = reader_of(&store, &files[0]).await;
        let row_group = &reader.metadata().row_groups()[0];
        let statistics: Vec<_> = row_group
            .columns()
            .iter()
            .map(|c| (c.column_path().string(), c.statistics().cloned()))
            .collect();
        assert_eq!(statistics.len(), 3);
        let (id, id_statistics) = &statistics[0];
        assert_eq!(id, "id");
        match id_statistics {
            Some(parquet::file::statistics::Statistics::Int64(s)) => {
                assert_eq!((s.min_opt(), s.max_opt()), (Some(&3), Some(&9)));
            }
            other => panic!("id has statistics {other:?}"),
        }
        for (path, statistics) in &statistics[1..] {
            assert!(statistics.is_none(), "{path} has statistics {statistics:?}");
        }
        // The data is all there.
        let read = reader.build().unwrap().next().unwrap().unwrap();
        assert_eq!(read, batch);
    }

    #[tokio::test]
    async fn unique_columns_are_written_plain_and_repeated_ones_with_a_dictionary() {
        let store = Arc::new(InMemory::new());
        let rows = 20_000;
        let first = ids_and_names(0, rows);
        // The next batch repeats names: the choice made on the first batch holds for the file.
        let second = RecordBatch::try_new(
            first.schema(),
            vec![
                Arc::new(Int64Array::from_iter_values(rows..2 * rows)),
                Arc::new(StringArray::from_iter_values((0..rows).map(|_| "same"))),
            ],
        )
        .unwrap();
        let mut writer = RollingWriter::new(
            store.clone(),
            Path::from("c/s"),
            "run",
            first.schema(),
            WriterOptions::default(),
        );
        writer.write(&first).await.unwrap();
        writer.write(&second).await.unwrap();
        let files = writer.take_files().await.unwrap();
        assert_eq!(
            ids_in(&store, &files).await,
            [(0..2 * rows).collect::<Vec<_>>()]
        );
        let reader = reader_of(&store, &files[0]).await;
        let dictionaries = with_dictionary(&reader);
        assert_eq!(
            dictionaries,
            [false, false],
            "unique ids and names go plain"
        );
        let read: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
        let read = arrow_select::concat::concat_batches(&first.schema(), &read).unwrap();
        let written = arrow_select::concat::concat_batches(&first.schema(), [&first, &second]);
        assert_eq!(read, written.unwrap());

        // A file starting with repeated names keeps their dictionary; the ids still go plain.
        let mut writer = RollingWriter::new(
            store.clone(),
            Path::from("c/t"),
            "run",
            second.schema(),
            WriterOptions::default(),
        );
        writer.write(&second).await.unwrap();
        let files = writer.take_files().await.unwrap();
        let reader = reader_of(&store, &files[0]).await;
        let dictionaries = with_dictionary(&reader);
        assert_eq!(dictionaries, [false, true]);
    }

    #[tokio::test]
    async fn every_codec_writes_every_column_with_it_and_reads_back_whole() {
        let batch = ids_and_names(0, 5_000);
        let mut sizes = Vec::new();
        for (codec, expected) in [
            (Codec::Snappy, Compression::SNAPPY),
            (
                Codec::Zstd,
                Compression::ZSTD(ZstdLevel::try_new(1).unwrap()),
            ),
            (Codec::None, Compression::UNCOMPRESSED),
        ] {
            let store = Arc::new(InMemory::new());
            let mut writer = RollingWriter::new(
                store.clone(),
                Path::from("c/s"),
                "run",
                batch.schema(),
                WriterOptions {
                    codec,
                    ..WriterOptions::default()
                },
            );
            writer.write(&batch).await.unwrap();
            let files = writer.take_files().await.unwrap();
            let reader = reader_of(&store, &files[0]).await;
            let codecs: Vec<Compression> = reader.metadata().row_groups()[0]
                .columns()
                .iter()
                .map(|c| c.compression())
                .collect();
            assert_eq!(codecs, [expected; 2], "{codec:?}");
            let read: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
            let read = arrow_select::concat::concat_batches(&batch.schema(), &read).unwrap();
            assert_eq!(read, batch, "{codec:?}");
            sizes.push((codec, files[0].bytes));
        }
        // Names repeat their digits: each codec shrinks them, zstd most.
        let [(_, snappy), (_, zstd), (_, none)] = sizes[..] else {
            unreachable!()
        };
        assert!(zstd < snappy && snappy < none, "{sizes:?}");
    }

    #[tokio::test]
    async fn a_failed_upload_is_reported_by_the_next_call() {
        let root = tempfile::tempdir().unwrap();
        // A file where the stream's folder should be: no folder can be made there, even by root.
        std::fs::write(root.path().join("blocked"), b"").unwrap();
        let store = Arc::new(LocalFileSystem::new_with_prefix(root.path()).unwrap());
        let mut writer = RollingWriter::new(
            store,
            Path::from("blocked/stream"),
            "run",
            ids(0, 0).schema(),
            WriterOptions::default(),
        );
        writer.write(&ids(0, 100)).await.unwrap();
        let error = writer.take_files().await.unwrap_err().to_string();
        assert!(error.contains("blocked"), "{error}");
    }
}
