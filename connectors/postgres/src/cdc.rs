//! `replication = "logical"`: change data capture from the write-ahead log. The first run (and
//! any run without a state) creates the slot with an exported snapshot and copies every table
//! inside it; each run then streams the slot's changes up to a marker it writes at its start, and
//! stops. The server is told a position is done only when a later run receives it as its durable
//! state, so a crash anywhere loses nothing, and changes delivered again are skipped by position.

use crate::PostgresConfig;
use crate::catalog::TableInfo;
use crate::cdc_batch::{ChangeBatches, LSN_COLUMN, TableShape};
use crate::cdc_setup::{self, qualified};
use crate::copy_text::RowSplitter;
use crate::pgoutput::{self, Frame, Lsn, Message, Relation, TupleValue};
use crate::types::PgType;
use crate::wire::{Connection, quote_ident, quote_literal};
use bytes::Bytes;
use inlet_sdk::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// How the connector finds changes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReplicationMode {
    /// Incremental by a cursor column (or full refresh).
    #[default]
    Cursor,
    /// Logical replication (pgoutput) from a slot.
    Logical,
}

/// The state key of the position read up to: the end of the last transaction made durable.
pub const LSN_KEY: &str = "_replication.lsn";

/// The state key recording the snapshot a stream was copied in; a stream without it (new, or
/// reset with `inlet state reset --stream`) makes the next run take a new snapshot.
fn snapshot_key(stream: &str) -> String {
    format!("{stream}.snapshot_lsn")
}

/// The stream a table offers under logical replication: no declared schema (the columns follow
/// the replication stream), keyed by the primary key, ordered by `_inlet_lsn`.
pub fn stream_of(table: &TableInfo) -> Stream {
    Stream::new(table.stream_name())
        .primary_key(table.primary_key.clone())
        .cursor(LSN_COLUMN)
}

/// Checks a slot name as PostgreSQL wants it.
fn check_slot_name(slot: &str) -> Result<(), Error> {
    let valid = !slot.is_empty()
        && slot.len() <= 63
        && slot
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(Error::config(format!(
            "`slot`: `{slot}` is not a replication slot name (lowercase letters, digits and `_`, at most 63 bytes)"
        )))
    }
}

/// Reads the selected streams by logical replication.
pub fn read(
    mut sql: Connection,
    config: &PostgresConfig,
    tables: &[TableInfo],
    streams: &[ConfiguredStream],
    mut state: State,
    out: &mut Output,
) -> Result<(), Error> {
    let slot = config.slot.clone().ok_or_else(|| {
        Error::config(
            "`slot` is not set; inlet sets it to `inlet_<connection>` for postgres connections, so set it when running the connector elsewhere",
        )
    })?;
    check_slot_name(&slot)?;
    if config.include_views {
        return Err(Error::config(
            "`include_views` cannot be used with replication = \"logical\" (views have no change log); remove it, or read them in another connection with replication = \"cursor\"",
        ));
    }
    for (name, options) in &config.tables {
        if options.filter.is_some() || options.columns.is_some() {
            return Err(Error::config(format!(
                "tables.\"{name}\": `where` and `columns` are not supported with replication = \"logical\" (the log carries whole rows); remove them, or read the table with replication = \"cursor\""
            )));
        }
    }
    let selected: Vec<&TableInfo> = streams
        .iter()
        .map(|wanted| {
            tables
                .iter()
                .find(|t| t.stream_name() == wanted.name)
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "table `{}` (it may have been dropped since discovery)",
                        wanted.name
                    ))
                })
        })
        .collect::<Result<_, _>>()?;
    let version = cdc_setup::server_version(&mut sql)?;
    if version < 100_000 {
        return Err(Error::config(
            "replication = \"logical\" needs PostgreSQL 10 or later (the pgoutput plugin)",
        ));
    }
    cdc_setup::check_wal_level(&mut sql)?;
    cdc_setup::check_replica_identity(&mut sql, &selected)?;
    cdc_setup::ensure_publication(&mut sql, &config.publication, &selected)?;

    let saved = match state.get::<String>(LSN_KEY)? {
        Some(text) => Some(
            text.parse::<Lsn>()
                .map_err(|e| Error::config(format!("state key `{LSN_KEY}`: {e}")))?,
        ),
        None => None,
    };
    let existing = cdc_setup::find_slot(&mut sql, &slot)?;
    if let Some(info) = &existing {
        if info.plugin != "pgoutput" {
            return Err(Error::config(format!(
                "replication slot `{slot}` uses the plugin `{}`, not `pgoutput`; choose another `slot`, or drop it: `SELECT pg_drop_replication_slot('{slot}')`",
                info.plugin
            )));
        }
        if let Some(lag) = info.lag_bytes {
            out.log(
                LogLevel::Info,
                &format!("replication slot `{slot}` holds back {lag} bytes of write-ahead log"),
            );
            if lag > config.slot_lag_warn_bytes {
                out.log(
                    LogLevel::Warn,
                    &format!(
                        "replication slot `{slot}` holds back {lag} bytes of write-ahead log (more than slot_lag_warn_bytes = {}): the server keeps it on disk until inlet reads it; run syncs more often, or drop the slot if this connection is gone: `SELECT pg_drop_replication_slot('{slot}')`",
                        config.slot_lag_warn_bytes
                    ),
                );
            }
        }
    }
    let unsnapshotted: Vec<String> = selected
        .iter()
        .map(|t| t.stream_name())
        .filter(|s| {
            state
                .get::<String>(&snapshot_key(s))
                .ok()
                .flatten()
                .is_none()
        })
        .collect();

    let mut replication = config.open(true)?;
    let (start, durable) = match (saved, &existing) {
        (Some(lsn), Some(_)) if unsnapshotted.is_empty() => (lsn, Some(lsn)),
        (Some(lsn), None) => {
            return Err(Error::config(format!(
                "replication slot `{slot}` does not exist, but the state says changes were read up to {lsn}: \
                 the changes since {lsn} cannot be read any more (the slot was dropped, or the server failed over \
                 to a replica without it); run `inlet state reset <connection>` so the next run takes a new snapshot \
                 of every table"
            )));
        }
        (saved, existing) => {
            let reason = match saved {
                None => "no state (first run or after `inlet state reset`)".to_owned(),
                Some(_) => format!(
                    "stream(s) {} have no snapshot yet (new, or reset)",
                    unsnapshotted.join(", ")
                ),
            };
            if let Some(info) = existing {
                if info.active {
                    return Err(Error::Transient(format!(
                        "replication slot `{slot}` is in use by another session; is another run of this connection going on?"
                    )));
                }
                out.log(
                    LogLevel::Info,
                    &format!("dropping replication slot `{slot}` to take a new snapshot: {reason}"),
                );
                cdc_setup::drop_slot(&mut sql, &slot)?;
            } else {
                out.log(
                    LogLevel::Info,
                    &format!("creating replication slot `{slot}` with a snapshot: {reason}"),
                );
            }
            let new = cdc_setup::create_slot(&mut replication, &slot, version)?;
            copy_snapshot(&mut sql, config, &selected, &new, out)?;
            state.set(LSN_KEY, &new.consistent_point.to_string())?;
            for table in &selected {
                state.set(
                    &snapshot_key(&table.stream_name()),
                    &new.consistent_point.to_string(),
                )?;
            }
            out.checkpoint(&state)?;
            if saved.is_some() {
                // Streams reset on their own are rebuilt from this run's rows alone (the loader
                // replaces their tables): those must be the snapshot, one row per key. The
                // changes since are read by the next run.
                out.log(
                    LogLevel::Info,
                    &format!(
                        "snapshot taken at {}; the changes since are read by the next run",
                        new.consistent_point
                    ),
                );
                return Ok(());
            }
            (new.consistent_point, saved)
        }
    };

    let end = cdc_setup::end_marker(&mut sql)?;
    replication.start_copy_both(&format!(
        "START_REPLICATION SLOT {} LOGICAL {start} (proto_version '1', publication_names {})",
        quote_ident(&slot),
        quote_literal(&quote_ident(&config.publication))
    ))?;
    // What the previous runs made durable: the only position ever confirmed to the server.
    let confirmed = durable.unwrap_or_default();
    if durable.is_some() {
        replication.send_copy_data(&pgoutput::standby_status_update(confirmed, now_micros()))?;
    }
    let mut replay = Replay {
        sql: &mut sql,
        selected: &selected,
        relations: HashMap::new(),
        types: HashMap::new(),
        transaction: None,
        skip_before: start,
        batches: ChangeBatches::new(config.batch_rows),
        read_up_to: start,
        since_checkpoint: 0,
        changes: 0,
    };
    loop {
        let Some(payload) = replication.copy_both_data()? else {
            return Err(Error::Transient(
                "the server ended the replication stream before this run's end".into(),
            ));
        };
        let frame = pgoutput::decode_frame(payload)
            .map_err(|e| Error::data(format!("replication slot `{slot}`: {e}")))?;
        let done = match frame {
            Frame::Keepalive { wal_end, reply } => {
                if reply {
                    replication.send_copy_data(&pgoutput::standby_status_update(
                        confirmed,
                        now_micros(),
                    ))?;
                }
                wal_end > end && replay.transaction.is_none()
            }
            Frame::XLogData { data, .. } => {
                let message = pgoutput::decode_message(&data)
                    .map_err(|e| Error::data(format!("replication slot `{slot}`: {e}")))?;
                match replay.apply(message, out)? {
                    Some(commit) => commit > end,
                    None => false,
                }
            }
        };
        if replay.since_checkpoint >= config.checkpoint_rows {
            replay.checkpoint(&mut state, out)?;
        }
        if done {
            break;
        }
    }
    replay.checkpoint(&mut state, out)?;
    if replay.batches.unrepresentable > 0 {
        out.log(
            LogLevel::Warn,
            &format!(
                "{} numeric NaN values have no decimal form and were stored as NULL",
                replay.batches.unrepresentable
            ),
        );
    }
    out.log(
        LogLevel::Info,
        &format!(
            "replication slot `{slot}`: {} changed rows, read up to {}",
            replay.changes, replay.read_up_to
        ),
    );
    Ok(())
}

/// Microseconds since 2000-01-01, the epoch of the replication protocol.
fn now_micros() -> i64 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    unix - 946_684_800_000_000
}

/// Copies every table in the slot's exported snapshot; the rows carry the position just before
/// the slot's first change.
fn copy_snapshot(
    sql: &mut Connection,
    config: &PostgresConfig,
    tables: &[&TableInfo],
    slot: &cdc_setup::NewSlot,
    out: &mut Output,
) -> Result<(), Error> {
    sql.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
    sql.query(&format!(
        "SET TRANSACTION SNAPSHOT {}",
        quote_literal(&slot.snapshot)
    ))?;
    let lsn = slot.consistent_point.0.saturating_sub(1) as i64;
    let mut batches = ChangeBatches::new(config.batch_rows);
    for table in tables {
        let shape = Arc::new(TableShape {
            stream: table.stream_name(),
            columns: table
                .columns
                .iter()
                .map(|c| (c.name.clone(), c.ty.clone()))
                .collect(),
            key: table
                .primary_key
                .iter()
                .filter_map(|k| table.columns.iter().position(|c| &c.name == k))
                .collect(),
            full_identity: false,
        });
        let list = table
            .columns
            .iter()
            .map(|c| {
                if c.ty.needs_text_cast() {
                    format!("{}::text", quote_ident(&c.name))
                } else {
                    quote_ident(&c.name)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let mut splitter = RowSplitter::default();
        let mut values: Vec<Option<Vec<u8>>> = Vec::new();
        let rows = sql.copy_out(
            &format!("COPY (SELECT {list} FROM {}) TO STDOUT", qualified(table)),
            |line| {
                let row = splitter.split(line);
                values.clear();
                values.extend((0..row.len()).map(|i| row.field(i).map(<[u8]>::to_vec)));
                let borrowed: Vec<Option<&[u8]>> = values.iter().map(|v| v.as_deref()).collect();
                batches.push(&shape, &borrowed, lsn, false, out)
            },
        )?;
        batches.flush_all(out)?;
        out.log(
            LogLevel::Info,
            &format!(
                "{}: {rows} rows in the snapshot of slot position {}",
                table.stream_name(),
                slot.consistent_point
            ),
        );
    }
    sql.query("COMMIT")?;
    Ok(())
}

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
struct Replay<'a> {
    sql: &'a mut Connection,
    selected: &'a [&'a TableInfo],
    /// Relation oid -> its shape, `None` for tables not read.
    relations: HashMap<u32, Option<Arc<TableShape>>>,
    /// Type oid -> its name in `pg_type`.
    types: HashMap<u32, cdc_setup::TypeName>,
    transaction: Option<Transaction>,
    /// Transactions whose commit record starts before this are already in the lake.
    skip_before: Lsn,
    batches: ChangeBatches,
    /// The end of the last transaction added to the batches.
    read_up_to: Lsn,
    since_checkpoint: u64,
    changes: u64,
}

impl Replay<'_> {
    /// Applies one message; answers the commit position when it ends a transaction.
    fn apply(&mut self, message: Message, out: &mut Output) -> Result<Option<Lsn>, Error> {
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
    fn checkpoint(&mut self, state: &mut State, out: &mut Output) -> Result<(), Error> {
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

    #[test]
    fn slot_names_are_checked() {
        assert!(check_slot_name("inlet_app_1").is_ok());
        assert!(check_slot_name("Inlet").is_err());
        assert!(check_slot_name("").is_err());
        assert!(check_slot_name(&"a".repeat(64)).is_err());
    }
}
