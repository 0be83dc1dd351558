//! Applying the replication stream's messages: a transaction's changes are held until its
//! commit (a key changed twice keeps its last version, so one position never holds two rows of a
//! key), unchanged TOAST values are filled from the old row or refused, deletes keep the key.

use crate::catalog::TableInfo;
use crate::cdc::LSN_KEY;
use crate::cdc_batch::{ChangeBatches, TableShape};
use crate::cdc_setup;
use crate::pgoutput::{Lsn, Message, Relation, TupleValue};
use crate::types::PgType;
use crate::wire::{Connection, quote_ident};
use bytes::Bytes;
use inlet_sdk::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// A change waiting for its transaction's commit.
struct Change {
    shape: Arc<TableShape>,
    values: Vec<Option<Bytes>>,
    deleted: bool,
}

/// The transaction being received.
struct Transaction {
    commit_lsn: Lsn,
    /// Already durable: delivered again after a crash.
    skip: bool,
    changes: Vec<Change>,
    /// A key's change in `changes`: a later change of the same key in the transaction replaces
    /// it, so one commit position never holds two versions of a row.
    by_key: HashMap<(String, Vec<Option<Bytes>>), usize>,
}

/// Applies the stream's messages: transactions are held until their commit, then added to the
/// batches.
pub struct Replay<'a> {
    sql: &'a mut Connection,
    selected: &'a [&'a TableInfo],
    /// Relation oid -> its shape, `None` for tables not read.
    relations: HashMap<u32, Option<Arc<TableShape>>>,
    /// Type oid -> its name in `pg_type`.
    types: HashMap<u32, cdc_setup::TypeName>,
    transaction: Option<Transaction>,
    /// Transactions whose commit record starts before this are already in the lake.
    skip_before: Lsn,
    pub batches: ChangeBatches,
    /// The end of the last transaction added to the batches.
    pub read_up_to: Lsn,
    pub since_checkpoint: u64,
    pub changes: u64,
}

impl<'a> Replay<'a> {
    /// A replay of the stream from `start`, for the tables `selected`.
    pub fn new(
        sql: &'a mut Connection,
        selected: &'a [&'a TableInfo],
        start: Lsn,
        batch_rows: usize,
    ) -> Self {
        Self {
            sql,
            selected,
            relations: HashMap::new(),
            types: HashMap::new(),
            transaction: None,
            skip_before: start,
            batches: ChangeBatches::new(batch_rows),
            read_up_to: start,
            since_checkpoint: 0,
            changes: 0,
        }
    }

    /// Whether a transaction has begun and not yet committed.
    pub fn in_transaction(&self) -> bool {
        self.transaction.is_some()
    }

    /// Applies one message; answers the commit position when it ends a transaction.
    pub fn apply(&mut self, message: Message, out: &mut Output) -> Result<Option<Lsn>, Error> {
        match message {
            Message::Begin { final_lsn, .. } => {
                self.transaction = Some(Transaction {
                    commit_lsn: final_lsn,
                    skip: final_lsn < self.skip_before,
                    changes: Vec::new(),
                    by_key: HashMap::new(),
                });
            }
            Message::Commit {
                commit_lsn,
                end_lsn,
            } => {
                let transaction = self.transaction.take().ok_or_else(|| {
                    Error::data(format!("a commit at {commit_lsn} without its begin"))
                })?;
                if !transaction.skip {
                    let lsn = transaction.commit_lsn.0 as i64;
                    for change in &transaction.changes {
                        let values: Vec<Option<&[u8]>> =
                            change.values.iter().map(|v| v.as_deref()).collect();
                        self.batches
                            .push(&change.shape, &values, lsn, change.deleted, out)?;
                    }
                    self.changes += transaction.changes.len() as u64;
                    self.since_checkpoint += transaction.changes.len() as u64;
                    self.read_up_to = end_lsn;
                }
                return Ok(Some(commit_lsn));
            }
            Message::Relation(relation) => {
                let shape = self.shape_of(&relation)?;
                self.relations.insert(relation.oid, shape);
            }
            Message::Insert { relation, new } => {
                if let Some(shape) = self.relation(relation)? {
                    let values = plain_values(&shape, &new, "an insert")?;
                    self.add(shape, values, false)?;
                }
            }
            Message::Update { relation, old, new } => {
                if let Some(shape) = self.relation(relation)? {
                    let values = new_values(&shape, old.as_deref(), &new)?;
                    if let Some(old) = &old {
                        let old_values = plain_values(&shape, old, "an update's old row")?;
                        let old_key: Vec<_> =
                            shape.key.iter().map(|&i| old_values[i].clone()).collect();
                        let new_key: Vec<_> =
                            shape.key.iter().map(|&i| values[i].clone()).collect();
                        if old_key != new_key {
                            // The key changed: the old key's row is gone.
                            self.add(shape.clone(), deleted_values(&shape, old_values), true)?;
                        }
                    }
                    self.add(shape, values, false)?;
                }
            }
            Message::Delete { relation, old } => {
                if let Some(shape) = self.relation(relation)? {
                    let values = plain_values(&shape, &old, "a delete")?;
                    self.add(shape.clone(), deleted_values(&shape, values), true)?;
                }
            }
            Message::Truncate { relations } => {
                for oid in relations {
                    if let Some(shape) = self.relation(oid)? {
                        return Err(Error::data(format!(
                            "{}: the table was truncated; the lake cannot express that as row changes. \
                             Run `inlet state reset <connection> --stream {}` so the next run takes a new snapshot",
                            shape.stream, shape.stream
                        )));
                    }
                }
            }
            Message::Other => {}
        }
        Ok(None)
    }

    fn relation(&self, oid: u32) -> Result<Option<Arc<TableShape>>, Error> {
        match self.relations.get(&oid) {
            Some(shape) => Ok(shape.clone()),
            None => Err(Error::data(format!(
                "the replication stream sent a change of relation {oid} before describing it"
            ))),
        }
    }

    fn add(
        &mut self,
        shape: Arc<TableShape>,
        values: Vec<Option<Bytes>>,
        deleted: bool,
    ) -> Result<(), Error> {
        let transaction = self
            .transaction
            .as_mut()
            .ok_or_else(|| Error::data("a change outside a transaction"))?;
        if transaction.skip {
            return Ok(());
        }
        let change = Change {
            shape: shape.clone(),
            values,
            deleted,
        };
        if shape.key.is_empty() {
            transaction.changes.push(change);
            return Ok(());
        }
        let key = (
            shape.stream.clone(),
            shape
                .key
                .iter()
                .map(|&i| change.values[i].clone())
                .collect(),
        );
        match transaction.by_key.get(&key) {
            Some(&index) => transaction.changes[index] = change,
            None => {
                transaction.by_key.insert(key, transaction.changes.len());
                transaction.changes.push(change);
            }
        }
        Ok(())
    }

    /// The shape of a described relation, with its column types looked up in the catalog.
    fn shape_of(&mut self, relation: &Relation) -> Result<Option<Arc<TableShape>>, Error> {
        let stream = format!("{}.{}", relation.schema, relation.name);
        let Some(table) = self.selected.iter().find(|t| t.stream_name() == stream) else {
            return Ok(None);
        };
        let unknown: Vec<u32> = relation
            .columns
            .iter()
            .map(|c| c.type_oid)
            .filter(|oid| !self.types.contains_key(oid))
            .collect();
        for (oid, name) in cdc_setup::type_names(self.sql, &unknown)? {
            self.types.insert(oid, name);
        }
        let mut columns = Vec::with_capacity(relation.columns.len());
        for column in &relation.columns {
            let name = self.types.get(&column.type_oid).ok_or_else(|| {
                Error::data(format!(
                    "{stream}: column `{}` has type oid {}, which is not in pg_type",
                    column.name, column.type_oid
                ))
            })?;
            let ty = PgType::from_catalog(
                &name.typname,
                &name.typtype,
                name.element.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
                column.type_modifier,
            );
            columns.push((column.name.clone(), ty));
        }
        let by_primary_key: Option<Vec<usize>> = (!table.primary_key.is_empty())
            .then(|| {
                table
                    .primary_key
                    .iter()
                    .map(|k| relation.columns.iter().position(|c| &c.name == k))
                    .collect()
            })
            .flatten();
        let key = by_primary_key.unwrap_or_else(|| {
            relation
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.key)
                .map(|(i, _)| i)
                .collect()
        });
        Ok(Some(Arc::new(TableShape {
            stream,
            columns,
            key,
            full_identity: relation.replica_identity == b'f',
        })))
    }

    /// Emits the batches and checkpoints the position of the last whole transaction.
    pub fn checkpoint(&mut self, state: &mut State, out: &mut Output) -> Result<(), Error> {
        self.batches.flush_all(out)?;
        state.set(LSN_KEY, &self.read_up_to.to_string())?;
        out.checkpoint(state)?;
        self.since_checkpoint = 0;
        Ok(())
    }
}

/// A tuple's values; an unchanged TOAST value is an error here (inserts and old rows carry all).
fn plain_values(
    shape: &TableShape,
    tuple: &[TupleValue],
    what: &str,
) -> Result<Vec<Option<Bytes>>, Error> {
    check_width(shape, tuple)?;
    tuple
        .iter()
        .enumerate()
        .map(|(index, value)| match value {
            TupleValue::Null => Ok(None),
            TupleValue::Text(bytes) => Ok(Some(bytes.clone())),
            TupleValue::UnchangedToast => Err(Error::data(format!(
                "{}: column `{}` of {what} was not sent (an unchanged TOAST value)",
                shape.stream, shape.columns[index].0
            ))),
        })
        .collect()
}

fn check_width(shape: &TableShape, tuple: &[TupleValue]) -> Result<(), Error> {
    if tuple.len() != shape.columns.len() {
        return Err(Error::data(format!(
            "{}: a change has {} columns, the table's description has {}",
            shape.stream,
            tuple.len(),
            shape.columns.len()
        )));
    }
    Ok(())
}

/// An update's new row; unchanged TOAST values come from the old row under replica identity
/// full, and are an error otherwise (they would silently become NULL).
fn new_values(
    shape: &TableShape,
    old: Option<&[TupleValue]>,
    new: &[TupleValue],
) -> Result<Vec<Option<Bytes>>, Error> {
    check_width(shape, new)?;
    new.iter()
        .enumerate()
        .map(|(index, value)| match value {
            TupleValue::Null => Ok(None),
            TupleValue::Text(bytes) => Ok(Some(bytes.clone())),
            TupleValue::UnchangedToast => match old.and_then(|old| old.get(index)) {
                Some(TupleValue::Text(bytes)) if shape.full_identity => Ok(Some(bytes.clone())),
                Some(TupleValue::Null) if shape.full_identity => Ok(None),
                _ => Err(Error::data(format!(
                    "{}: an update left column `{}` unchanged and the server did not send its (TOASTed) value, \
                     which inlet cannot fill in without the old row; run `ALTER TABLE {} REPLICA IDENTITY FULL` \
                     so updates carry it, then `inlet state reset <connection> --stream {}`",
                    shape.stream,
                    shape.columns[index].0,
                    quoted_stream(&shape.stream),
                    shape.stream
                ))),
            },
        })
        .collect()
}

/// `schema.table` quoted for SQL.
fn quoted_stream(stream: &str) -> String {
    match stream.split_once('.') {
        Some((schema, table)) => format!("{}.{}", quote_ident(schema), quote_ident(table)),
        None => quote_ident(stream),
    }
}

/// A deleted row: its key, the other columns NULL.
fn deleted_values(shape: &TableShape, mut values: Vec<Option<Bytes>>) -> Vec<Option<Bytes>> {
    for (index, value) in values.iter_mut().enumerate() {
        if !shape.key.contains(&index) {
            *value = None;
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(full_identity: bool) -> TableShape {
        TableShape {
            stream: "public.docs".into(),
            columns: vec![("id".into(), PgType::Int4), ("body".into(), PgType::Text)],
            key: vec![0],
            full_identity,
        }
    }

    fn text(value: &str) -> TupleValue {
        TupleValue::Text(Bytes::copy_from_slice(value.as_bytes()))
    }

    #[test]
    fn unchanged_toast_values_come_from_the_old_row_or_fail_naming_the_fix() {
        let new = [text("1"), TupleValue::UnchangedToast];
        let old = [text("1"), text("long body")];
        let filled = new_values(&shape(true), Some(&old), &new).unwrap();
        assert_eq!(filled[1].as_deref(), Some(&b"long body"[..]));
        let error = new_values(&shape(false), None, &new)
            .unwrap_err()
            .to_string();
        assert!(error.contains("public.docs"), "{error}");
        assert!(error.contains("`body`"), "{error}");
        assert!(
            error.contains("ALTER TABLE \"public\".\"docs\" REPLICA IDENTITY FULL"),
            "{error}"
        );
    }

    #[test]
    fn deletes_keep_only_the_key() {
        let values = vec![
            Some(Bytes::from_static(b"7")),
            Some(Bytes::from_static(b"x")),
        ];
        assert_eq!(
            deleted_values(&shape(true), values),
            vec![Some(Bytes::from_static(b"7")), None]
        );
    }
}
