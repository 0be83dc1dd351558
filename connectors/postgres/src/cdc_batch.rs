//! Arrow batches of changes: a table's columns as the replication stream last described them,
//! plus `_inlet_lsn` (the commit's log position) and `_inlet_deleted`. A new description (an
//! added column, a changed type) ends the stream's batch and starts one with the new schema, which
//! the host merges into the lake's schema.

use crate::types::{Column, PgType};
use inlet_sdk::arrow::array::ArrayRef;
use inlet_sdk::arrow::array::builder::{BooleanBuilder, Int64Builder};
use inlet_sdk::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The log position column: the commit LSN of the change's transaction.
pub const LSN_COLUMN: &str = "_inlet_lsn";
/// True for a deleted row (key columns set, the others NULL).
pub const DELETED_COLUMN: &str = "_inlet_deleted";

/// A table's columns at one point of the stream.
#[derive(Debug, PartialEq)]
pub struct TableShape {
    pub stream: String,
    pub columns: Vec<(String, PgType)>,
    /// Positions of the primary key columns (or of the replica identity without one).
    pub key: Vec<usize>,
    /// `REPLICA IDENTITY FULL`: updates carry the whole old row.
    pub full_identity: bool,
}

impl TableShape {
    fn arrow_schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .columns
            .iter()
            .map(|(name, ty)| ty.field(name, true))
            .collect();
        fields.push(Field::new(LSN_COLUMN, DataType::Int64, false));
        fields.push(Field::new(DELETED_COLUMN, DataType::Boolean, false));
        Arc::new(Schema::new(fields))
    }
}

/// The batch being built for one stream.
struct Batch {
    shape: Arc<TableShape>,
    schema: SchemaRef,
    columns: Vec<Column>,
    lsn: Int64Builder,
    deleted: BooleanBuilder,
    rows: usize,
}

/// Batches of every stream, emitted when full, when their table's shape changes, and before
/// each checkpoint.
pub struct ChangeBatches {
    batches: BTreeMap<String, Batch>,
    batch_rows: usize,
    pub unrepresentable: u64,
}

impl ChangeBatches {
    pub fn new(batch_rows: usize) -> Self {
        Self {
            batches: BTreeMap::new(),
            batch_rows,
            unrepresentable: 0,
        }
    }

    /// Adds one row of `shape` (values in PostgreSQL text form, `None` for NULL).
    pub fn push(
        &mut self,
        shape: &Arc<TableShape>,
        values: &[Option<&[u8]>],
        lsn: i64,
        deleted: bool,
        out: &mut Output,
    ) -> Result<(), Error> {
        let stale = self
            .batches
            .get(&shape.stream)
            .is_some_and(|b| !Arc::ptr_eq(&b.shape, shape) && *b.shape != **shape);
        if stale {
            self.flush(&shape.stream, out)?;
        }
        let batch = self
            .batches
            .entry(shape.stream.clone())
            .or_insert_with(|| Batch {
                shape: shape.clone(),
                schema: shape.arrow_schema(),
                columns: shape
                    .columns
                    .iter()
                    .map(|(_, ty)| Column::new(ty))
                    .collect(),
                lsn: Int64Builder::new(),
                deleted: BooleanBuilder::new(),
                rows: 0,
            });
        if values.len() != batch.columns.len() {
            return Err(Error::data(format!(
                "{}: a change has {} columns, the table's description has {}",
                shape.stream,
                values.len(),
                batch.columns.len()
            )));
        }
        for (index, (column, value)) in batch.columns.iter_mut().zip(values).enumerate() {
            let represented = column.append(*value).map_err(|e| {
                Error::data(format!(
                    "{}: column `{}`: {e}",
                    shape.stream, shape.columns[index].0
                ))
            })?;
            if !represented {
                self.unrepresentable += 1;
            }
        }
        batch.lsn.append_value(lsn);
        batch.deleted.append_value(deleted);
        batch.rows += 1;
        if batch.rows >= self.batch_rows {
            self.flush(&shape.stream, out)?;
        }
        Ok(())
    }

    fn flush(&mut self, stream: &str, out: &mut Output) -> Result<(), Error> {
        let Some(mut batch) = self.batches.remove(stream) else {
            return Ok(());
        };
        let mut columns: Vec<ArrayRef> = batch.columns.iter_mut().map(Column::finish).collect();
        columns.push(Arc::new(batch.lsn.finish()));
        columns.push(Arc::new(batch.deleted.finish()));
        let records = RecordBatch::try_new(batch.schema.clone(), columns)?;
        out.emit(stream, &records)?;
        out.progress(stream, None);
        Ok(())
    }

    /// Emits every batch (before a checkpoint).
    pub fn flush_all(&mut self, out: &mut Output) -> Result<(), Error> {
        let streams: Vec<String> = self.batches.keys().cloned().collect();
        for stream in streams {
            self.flush(&stream, out)?;
        }
        Ok(())
    }
}
