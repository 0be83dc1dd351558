//! Decoding what a connector emits (Arrow IPC or NDJSON) and holding it to the stream's declared schema.

use super::bindings::BatchFormat;
use arrow_array::{Array, RecordBatch};
use arrow_buffer::Buffer;
use arrow_schema::{Schema, SchemaRef};
use std::io::Cursor;
use std::sync::Arc;

/// Decodes an Arrow IPC schema message (as carried by `stream.schema`).
pub fn decode_schema(bytes: &[u8]) -> Result<SchemaRef, String> {
    let reader = arrow_ipc::reader::StreamReader::try_new(Cursor::new(bytes), None)
        .map_err(|e| format!("the declared schema is not an Arrow IPC schema message: {e}"))?;
    Ok(reader.schema())
}

/// Decodes emitted bytes into record batches. `declared` guides NDJSON conversion. Arrow IPC
/// arrays borrow `data` (no copy of what the connector sent, unless a buffer is misaligned).
///
/// The bytes come from the guest, so every array is fully validated (offsets, UTF-8), and a
/// decoder that panics on some input (a bug in arrow-ipc or arrow-json) must not take the host
/// down: the panic becomes an error naming the format.
pub fn decode(
    format: BatchFormat,
    data: Vec<u8>,
    declared: Option<&SchemaRef>,
) -> Result<Vec<RecordBatch>, String> {
    let label = match format {
        BatchFormat::ArrowIpc => "Arrow IPC",
        BatchFormat::Ndjson => "NDJSON",
    };
    std::panic::catch_unwind(|| decode_unguarded(format, data, declared)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        Err(format!(
            "the emitted {label} bytes could not be decoded (the decoder failed: {what})"
        ))
    })
}

fn decode_unguarded(
    format: BatchFormat,
    data: Vec<u8>,
    declared: Option<&SchemaRef>,
) -> Result<Vec<RecordBatch>, String> {
    match format {
        BatchFormat::ArrowIpc => {
            let mut decoder = arrow_ipc::reader::StreamDecoder::new();
            let mut buffer = Buffer::from_vec(data);
            let mut batches = Vec::new();
            while !buffer.is_empty() {
                match decoder.decode(&mut buffer) {
                    Ok(Some(batch)) => batches.push(batch),
                    Ok(None) => {}
                    Err(e) if decoder.schema().is_none() => {
                        return Err(format!("not an Arrow IPC stream: {e}"));
                    }
                    Err(e) => return Err(format!("corrupt Arrow IPC batch: {e}")),
                }
            }
            if decoder.schema().is_none() {
                return Err("not an Arrow IPC stream: it holds no schema message".into());
            }
            decoder
                .finish()
                .map_err(|e| format!("corrupt Arrow IPC batch: {e}"))?;
            Ok(batches)
        }
        BatchFormat::Ndjson => {
            let schema = match declared {
                Some(schema) => schema.clone(),
                None => {
                    let (schema, _) =
                        arrow_json::reader::infer_json_schema(Cursor::new(&data), None)
                            .map_err(|e| format!("NDJSON cannot be read: {e}"))?;
                    Arc::new(schema)
                }
            };
            let reader = arrow_json::ReaderBuilder::new(schema)
                .with_batch_size(64 * 1024)
                .build(Cursor::new(&data))
                .map_err(|e| format!("NDJSON cannot be read: {e}"))?;
            reader
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("NDJSON does not match the schema: {e}"))
        }
    }
}

/// Checks `batch` against the stream's declared schema and returns it with the declared field
/// order and nullability. Any difference is a broken contract, described in the error.
pub fn hold_to_declared(batch: RecordBatch, declared: &SchemaRef) -> Result<RecordBatch, String> {
    let schema = batch.schema();
    for field in schema.fields() {
        if declared.field_with_name(field.name()).is_err() {
            return Err(format!(
                "column `{}` is not in the declared schema",
                field.name()
            ));
        }
    }
    let mut columns = Vec::with_capacity(declared.fields().len());
    for field in declared.fields() {
        let Some(index) = schema.index_of(field.name()).ok() else {
            return Err(format!(
                "declared column `{}` is missing from the batch",
                field.name()
            ));
        };
        let column = batch.column(index);
        if !same_type(column.data_type(), field.data_type()) {
            return Err(format!(
                "column `{}` has type {}, but the stream declared {}",
                field.name(),
                column.data_type(),
                field.data_type()
            ));
        }
        if !field.is_nullable() && column.logical_null_count() > 0 {
            return Err(format!(
                "column `{}` is declared NOT NULL but holds {} nulls",
                field.name(),
                column.logical_null_count()
            ));
        }
        columns.push(column.clone());
    }
    RecordBatch::try_new(declared.clone(), columns).map_err(|e| e.to_string())
}

/// Types are the same when they match ignoring field nullability and metadata inside nested types.
fn same_type(a: &arrow_schema::DataType, b: &arrow_schema::DataType) -> bool {
    a.equals_datatype(b)
}

/// A schema reduced to names and types, for messages.
pub fn describe(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| {
            format!(
                "{}: {}{}",
                f.name(),
                f.data_type(),
                if f.is_nullable() { "" } else { " not null" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field};

    fn declared() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    #[test]
    fn reorders_to_the_declared_schema() {
        let batch = RecordBatch::try_from_iter(vec![
            (
                "name",
                Arc::new(StringArray::from(vec![Some("a"), None])) as _,
            ),
            ("id", Arc::new(Int64Array::from(vec![1, 2])) as _),
        ])
        .unwrap();
        let held = hold_to_declared(batch, &declared()).unwrap();
        assert_eq!(held.schema(), declared());
    }

    #[test]
    fn wrong_type_is_named() {
        let batch = RecordBatch::try_from_iter(vec![
            ("id", Arc::new(StringArray::from(vec!["1"])) as _),
            ("name", Arc::new(StringArray::from(vec!["a"])) as _),
        ])
        .unwrap();
        let err = hold_to_declared(batch, &declared()).unwrap_err();
        assert!(err.contains("column `id` has type Utf8"), "{err}");
    }

    fn ipc_stream(batches: &[RecordBatch]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut writer =
            arrow_ipc::writer::StreamWriter::try_new(&mut bytes, &batches[0].schema()).unwrap();
        for batch in batches {
            writer.write(batch).unwrap();
        }
        writer.finish().unwrap();
        drop(writer);
        bytes
    }

    fn two_batches() -> Vec<RecordBatch> {
        (0..2)
            .map(|b| {
                RecordBatch::try_from_iter(vec![
                    (
                        "id",
                        Arc::new(Int64Array::from_iter_values(b * 100..b * 100 + 100)) as _,
                    ),
                    (
                        "name",
                        Arc::new(StringArray::from_iter(
                            (0..100).map(|i| (i % 7 != 0).then(|| format!("name {b} {i}"))),
                        )) as _,
                    ),
                ])
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn an_ipc_stream_decodes_to_exactly_its_batches() {
        let batches = two_batches();
        let decoded = decode(BatchFormat::ArrowIpc, ipc_stream(&batches), None).unwrap();
        assert_eq!(decoded, batches);
        // Without the end-of-stream marker too (other writers may leave it out).
        let mut bytes = ipc_stream(&batches);
        bytes.truncate(bytes.len() - 8);
        assert_eq!(decode(BatchFormat::ArrowIpc, bytes, None).unwrap(), batches);
        let err = decode(BatchFormat::ArrowIpc, b"not arrow".to_vec(), None).unwrap_err();
        assert!(err.starts_with("not an Arrow IPC stream"), "{err}");
        let err = decode(BatchFormat::ArrowIpc, Vec::new(), None).unwrap_err();
        assert!(err.contains("no schema message"), "{err}");
    }

    #[test]
    fn a_damaged_ipc_stream_is_an_error_or_a_prefix_never_wrong_rows() {
        let batches = two_batches();
        let bytes = ipc_stream(&batches);
        // Cut anywhere: an error, or the batches before the cut.
        for cut in 0..bytes.len() {
            if let Ok(decoded) = decode(BatchFormat::ArrowIpc, bytes[..cut].to_vec(), None) {
                assert_eq!(decoded[..], batches[..decoded.len()], "cut at {cut}");
            }
        }
        // Random bytes changed (seeded, printed): the host keeps running, and whatever decodes
        // is valid Arrow (offsets, UTF-8 and all).
        let seed = std::env::var("INLET_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| u64::from(crate::random::random_u32()));
        println!("seed {seed} (INLET_TEST_SEED={seed} replays it)");
        let mut rng = crate::test_rng::Rng::new(seed);
        for _ in 0..2_000 {
            let mut damaged = bytes.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(damaged.len());
                damaged[at] = rng.below(256) as u8;
            }
            if let Ok(decoded) = decode(BatchFormat::ArrowIpc, damaged, None) {
                for batch in decoded {
                    for column in batch.columns() {
                        column.to_data().validate_full().unwrap();
                    }
                }
            }
        }
    }

    #[test]
    fn ndjson_uses_the_declared_schema() {
        let data = b"{\"id\": 1, \"name\": \"x\"}\n{\"id\": 2}\n";
        let batches = decode(BatchFormat::Ndjson, data.to_vec(), Some(&declared())).unwrap();
        assert_eq!(batches[0].num_rows(), 2);
        assert_eq!(batches[0].schema(), declared());
    }
}
