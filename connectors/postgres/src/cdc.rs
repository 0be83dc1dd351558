//! `replication = "logical"`: change data capture from the write-ahead log. The first run (and
//! any run without a state) creates the slot with an exported snapshot and copies every table
//! inside it; each run then streams the slot's changes up to a marker it writes at its start, and
//! stops. The server is told a position is done only when a later run receives it as its durable
//! state, so a crash anywhere loses nothing, and changes delivered again are skipped by position.

use crate::PostgresConfig;
use crate::catalog::TableInfo;
use crate::cdc_batch::{ChangeBatches, LSN_COLUMN, TableShape};
use crate::cdc_replay::Replay;
use crate::cdc_setup::{self, qualified};
use crate::copy_text::RowSplitter;
use crate::pgoutput::{self, Frame, Lsn};
use crate::read::copy_select_list;
use crate::wire::{Connection, quote_ident, quote_literal};
use inlet_sdk::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;
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

    let mut replication = config.open(true).map_err(cdc_setup::replication_refused)?;
    let mut run = Run {
        sql: &mut sql,
        replication: &mut replication,
        config,
        slot: &slot,
        state: &mut state,
    };
    match (saved, &existing) {
        (Some(lsn), None) => Err(Error::config(format!(
            "replication slot `{slot}` does not exist, but the state says changes were read up to {lsn}: \
             the changes since {lsn} cannot be read any more (the slot was dropped, or the server failed over \
             to a replica without it); run `inlet state reset <connection>` so the next run takes a new snapshot \
             of every table"
        ))),
        (Some(lsn), Some(_)) if unsnapshotted.is_empty() => {
            run.stream_changes(&selected, lsn, Some(lsn), out)
        }
        (Some(lsn), Some(info)) => {
            // Streams reset on their own (or new) need a snapshot, which only a new slot gives.
            // First the other streams read their changes up to now from the old slot, so none
            // of theirs is lost with it.
            check_idle(&slot, info)?;
            let keeping: Vec<&TableInfo> = selected
                .iter()
                .copied()
                .filter(|t| !unsnapshotted.contains(&t.stream_name()))
                .collect();
            if !keeping.is_empty() {
                run.stream_changes(&keeping, lsn, Some(lsn), out)?;
                run.replication.end_copy_both()?;
                // A walsender that has streamed cannot create a slot any more: a new session.
                *run.replication = config.open(true).map_err(cdc_setup::replication_refused)?;
            }
            out.log(
                LogLevel::Info,
                &format!(
                    "dropping replication slot `{slot}` to take a new snapshot: stream(s) {} have none yet (new, or reset)",
                    unsnapshotted.join(", ")
                ),
            );
            cdc_setup::drop_slot(run.sql, &slot)?;
            let point = run.take_snapshot(&selected, version, out)?;
            // Streams reset on their own are rebuilt from this run's rows alone (the loader
            // replaces their tables): those must be the snapshot, one row per key. The changes
            // since are read by the next run.
            out.log(
                LogLevel::Info,
                &format!("snapshot taken at {point}; the changes since are read by the next run"),
            );
            Ok(())
        }
        (None, existing) => {
            let reason = "no state (first run or after `inlet state reset`)";
            match existing {
                Some(info) => {
                    check_idle(&slot, info)?;
                    out.log(
                        LogLevel::Info,
                        &format!(
                            "dropping replication slot `{slot}` to take a new snapshot: {reason}"
                        ),
                    );
                    cdc_setup::drop_slot(run.sql, &slot)?;
                }
                None => out.log(
                    LogLevel::Info,
                    &format!("creating replication slot `{slot}` with a snapshot: {reason}"),
                ),
            }
            let point = run.take_snapshot(&selected, version, out)?;
            run.stream_changes(&selected, point, None, out)
        }
    }
}

/// Fails when another session holds the slot (another run of the connection, or the session of a
/// killed one the server has not noticed yet).
fn check_idle(slot: &str, info: &cdc_setup::SlotInfo) -> Result<(), Error> {
    if info.active {
        return Err(Error::Transient(format!(
            "replication slot `{slot}` is in use by another session; is another run of this connection going on?"
        )));
    }
    Ok(())
}

/// What one run works with: its SQL session, its replication session, and the state it moves.
struct Run<'r> {
    sql: &'r mut Connection,
    replication: &'r mut Connection,
    config: &'r PostgresConfig,
    slot: &'r str,
    state: &'r mut State,
}

impl Run<'_> {
    /// Creates the slot, copies `tables` in its snapshot and checkpoints; answers the slot's
    /// consistent point.
    fn take_snapshot(
        &mut self,
        tables: &[&TableInfo],
        version: u32,
        out: &mut Output,
    ) -> Result<Lsn, Error> {
        let new = cdc_setup::create_slot(self.replication, self.slot, version)?;
        copy_snapshot(self.sql, self.config, tables, &new, out)?;
        let point = new.consistent_point.to_string();
        self.state.set(LSN_KEY, &point)?;
        for table in tables {
            self.state
                .set(&snapshot_key(&table.stream_name()), &point)?;
        }
        out.checkpoint(self.state)?;
        Ok(new.consistent_point)
    }

    /// Streams the slot's changes of `tables` from `start` until the marker written now, and
    /// checkpoints. `durable` is the position the previous runs made durable: the only one ever
    /// confirmed to the server.
    fn stream_changes(
        &mut self,
        tables: &[&TableInfo],
        start: Lsn,
        durable: Option<Lsn>,
        out: &mut Output,
    ) -> Result<(), Error> {
        let (config, slot) = (self.config, self.slot);
        let end = cdc_setup::end_marker(self.sql)?;
        self.replication.start_copy_both(&format!(
            "START_REPLICATION SLOT {} LOGICAL {start} (proto_version '1', publication_names {})",
            quote_ident(slot),
            quote_literal(&quote_ident(&config.publication))
        ))?;
        // What the previous runs made durable: the only position ever confirmed to the server.
        let confirmed = durable.unwrap_or_default();
        if durable.is_some() {
            self.replication
                .send_copy_data(&pgoutput::standby_status_update(confirmed, now_micros()))?;
        }
        let mut replay = Replay::new(self.sql, tables, start, config.batch_rows);
        loop {
            let Some(payload) = self.replication.copy_both_data()? else {
                return Err(Error::Transient(
                    "the server ended the replication stream before this run's end".into(),
                ));
            };
            let frame = pgoutput::decode_frame(payload)
                .map_err(|e| Error::data(format!("replication slot `{slot}`: {e}")))?;
            let done = match frame {
                Frame::Keepalive { wal_end, reply } => {
                    if reply {
                        self.replication
                            .send_copy_data(&pgoutput::standby_status_update(
                                confirmed,
                                now_micros(),
                            ))?;
                    }
                    wal_end > end && !replay.in_transaction()
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
                replay.checkpoint(self.state, out)?;
            }
            if done {
                break;
            }
        }
        replay.checkpoint(self.state, out)?;
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
        let list = copy_select_list(&table.columns, None);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_are_checked() {
        assert!(check_slot_name("inlet_app_1").is_ok());
        assert!(check_slot_name("Inlet").is_err());
        assert!(check_slot_name("").is_err());
        assert!(check_slot_name(&"a".repeat(64)).is_err());
    }
}
