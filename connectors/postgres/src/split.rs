//! Splitting a full refresh into parts that separate instances read at once: ranges of an integer
//! key or of heap pages (`ctid`), all read in one snapshot exported by the instance that split.
//!
//! The instance answering `partitions` opens a `REPEATABLE READ` transaction, exports its snapshot
//! (`pg_export_snapshot()`), computes the ranges inside it, and keeps that connection open in
//! [`hold`] until the host drops the instance. Each part imports the snapshot
//! (`SET TRANSACTION SNAPSHOT`) before its COPY, so all parts see exactly the same rows.

use crate::TableConfig;
use crate::catalog::TableInfo;
use crate::types::PgType;
use crate::wire::{Connection, quote_ident, quote_literal};
use inlet_sdk::prelude::*;
use std::sync::Mutex;

/// How a table is split (`tables."schema.table".split`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SplitMethod {
    /// Page ranges on PostgreSQL 14 and later; ranges of the leading primary-key column when it
    /// is an integer on older servers, or when the relation has too few pages of its own.
    #[default]
    Auto,
    /// Ranges of the leading integer primary-key column only; other tables are read whole.
    Key,
    /// Ranges of heap pages (`ctid`), whatever the key (PostgreSQL 14 or later).
    Ctid,
}

/// The rows of one part.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Range {
    /// `column >= from AND column < to`; `to == i64::MAX` is open-ended.
    Key { column: String, from: i64, to: i64 },
    /// Heap pages `from..to` (`ctid >= '(from,0)' AND ctid < '(to,0)'`); `to` is `None` for the
    /// last part, which also takes pages added after the split.
    Pages { from: u64, to: Option<u64> },
}

/// A part descriptor, as it travels through the host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Part {
    pub range: Range,
    /// The snapshot exported by the instance that split the table; every part reads in it.
    pub snapshot: Option<String>,
}

impl Part {
    /// Reads a descriptor given back by the host.
    pub fn parse(stream: &str, descriptor: &str) -> Result<Self, Error> {
        serde_json::from_str(descriptor).map_err(|e| {
            Error::internal(format!(
                "{stream}: partition descriptor `{descriptor}` was not written by this connector: {e}"
            ))
        })
    }

    /// The SQL condition selecting this part's rows.
    pub fn condition(&self) -> String {
        match &self.range {
            Range::Key { column, from, to } => {
                let column = quote_ident(column);
                if *to == i64::MAX {
                    format!("{column} >= {from}")
                } else {
                    format!("{column} >= {from} AND {column} < {to}")
                }
            }
            Range::Pages { from, to } => {
                let mut sql = format!("ctid >= '({from},0)'::tid");
                if let Some(to) = to {
                    sql.push_str(&format!(" AND ctid < '({to},0)'::tid"));
                }
                sql
            }
        }
    }

    /// How the part is named in logs: `with id in [1, 500)`, `in pages [0, 1200)`.
    pub fn describe(&self) -> String {
        match &self.range {
            Range::Key { column, from, to } => format!("with {column} in [{from}, {to})"),
            Range::Pages { from, to: Some(to) } => format!("in pages [{from}, {to})"),
            Range::Pages { from, to: None } => format!("in pages [{from}, end]"),
        }
    }

    /// Starts the part's transaction in the shared snapshot (before its COPY); a no-op without one.
    pub fn begin(&self, connection: &mut Connection, stream: &str) -> Result<(), Error> {
        let Some(snapshot) = &self.snapshot else {
            return Ok(());
        };
        connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
        connection
            .query(&format!("SET TRANSACTION SNAPSHOT {}", quote_literal(snapshot)))
            .map_err(|e| {
                Error::Transient(format!(
                    "{stream}: part {}: the snapshot `{snapshot}` shared by the parts of this read is gone \
                     (the instance that split the table has ended, or the server closed its idle transaction, \
                     e.g. `idle_in_transaction_session_timeout`); run the sync again: {e}",
                    self.describe()
                ))
            })?;
        Ok(())
    }

    /// Ends the part's transaction.
    pub fn end(&self, connection: &mut Connection) -> Result<(), Error> {
        if self.snapshot.is_some() {
            connection.query("COMMIT")?;
        }
        Ok(())
    }
}

/// The connection whose transaction exported the parts' snapshot: open for as long as the
/// instance lives (the host drops the instance once every part has been read).
static HOLDER: Mutex<Option<Connection>> = Mutex::new(None);

/// Keeps `connection` (and its exported snapshot) open until the instance ends.
pub fn hold(connection: Connection) {
    let mut holder = HOLDER.lock().unwrap_or_else(|e| e.into_inner());
    *holder = Some(connection);
}

/// TID range scans (`ctid >= ... AND ctid < ...` read only those pages) came with PostgreSQL 14;
/// before, every part would scan the whole table.
pub const TID_RANGE_SCAN_VERSION: u32 = 140_000;

/// Splits `table` into at most `count` parts in a snapshot exported on `connection`; an empty list
/// when it cannot or need not be split (the host then reads it whole).
pub fn partitions(
    connection: &mut Connection,
    table: &TableInfo,
    options: Option<&TableConfig>,
    count: u32,
) -> Result<Vec<String>, Error> {
    if count < 2 {
        return Ok(Vec::new());
    }
    let method = options.and_then(|o| o.split).unwrap_or_default();
    let key = table
        .primary_key
        .first()
        .and_then(|key| table.column(key))
        .filter(|c| matches!(c.ty, PgType::Int2 | PgType::Int4 | PgType::Int8))
        .filter(|_| method != SplitMethod::Ctid);
    // Page ranges first where the server reads only a part's pages: key ranges of a large share
    // of a table get a sequential scan with a filter, so every part would scan the whole table
    // (lineitem SF1 in two key ranges: 0.4-1.3 s more of server CPU than in two page ranges).
    let by_pages =
        method != SplitMethod::Key && server_version(connection)? >= TID_RANGE_SCAN_VERSION;
    if !by_pages && key.is_none() {
        return Ok(Vec::new());
    }
    // Everything below runs in the snapshot the parts will read in.
    connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
    let snapshot = match connection.query("SELECT pg_export_snapshot()") {
        Ok(rows) => rows.first().and_then(|r| r.first().cloned().flatten()),
        // A server that cannot export snapshots (a pooler in transaction mode, an old standby):
        // one consistent read of the whole table rather than parts that might disagree.
        Err(_) => return Ok(Vec::new()),
    };
    let Some(snapshot) = snapshot else {
        return Ok(Vec::new());
    };
    let mut ranges = if by_pages {
        page_ranges(connection, table, count)?
    } else {
        Vec::new()
    };
    // Too few pages, or none of its own (a view, a partitioned parent): its key, if any.
    if let (true, Some(key)) = (ranges.len() < 2, key) {
        ranges = key_ranges(connection, table, options, &key.name, count)?;
    }
    if ranges.len() < 2 {
        return Ok(Vec::new());
    }
    ranges
        .into_iter()
        .map(|range| {
            serde_json::to_string(&Part {
                range,
                snapshot: Some(snapshot.clone()),
            })
            .map_err(|e| Error::internal(format!("writing a partition descriptor: {e}")))
        })
        .collect()
}

fn server_version(connection: &mut Connection) -> Result<u32, Error> {
    let rows = connection.query("SHOW server_version_num")?;
    Ok(rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

/// Up to `count` disjoint ranges covering `min..=max` of `column`.
fn key_ranges(
    connection: &mut Connection,
    table: &TableInfo,
    options: Option<&TableConfig>,
    column: &str,
    count: u32,
) -> Result<Vec<Range>, Error> {
    let filter = options
        .and_then(|o| o.filter.as_deref())
        .map(|f| format!(" WHERE ({f})"))
        .unwrap_or_default();
    let rows = connection.query(&format!(
        "SELECT min({c})::text, max({c})::text FROM {}.{}{filter}",
        quote_ident(&table.schema),
        quote_ident(&table.name),
        c = quote_ident(column)
    ))?;
    let bound = |i: usize| {
        rows.first()
            .and_then(|r| r.get(i).cloned().flatten())
            .and_then(|v| v.parse::<i64>().ok())
    };
    let (Some(min), Some(max)) = (bound(0), bound(1)) else {
        return Ok(Vec::new());
    };
    Ok(split_keys(column, min, max, count))
}

/// Up to `count` ranges of `min..=max`, each `[from, to)`; the last ends at `max + 1` (or is
/// open-ended at `i64::MAX`).
pub fn split_keys(column: &str, min: i64, max: i64, count: u32) -> Vec<Range> {
    let span = i128::from(max) - i128::from(min) + 1;
    let parts = i128::from(count).min(span);
    let step = (span + parts - 1) / parts;
    (0..parts)
        .map(|i| {
            let from = i128::from(min) + i * step;
            let to = (from + step).min(i128::from(max) + 1);
            // `to` may be i64::MAX + 1 for the last range; it is exclusive, so clamp and include the end.
            (from as i64, to.min(i128::from(i64::MAX)) as i64)
        })
        .filter(|(from, to)| from < to || *to == i64::MAX)
        .map(|(from, to)| Range::Key {
            column: column.to_owned(),
            from,
            to,
        })
        .collect()
}

/// Up to `count` ranges of the relation's pages, the last one open-ended.
fn page_ranges(
    connection: &mut Connection,
    table: &TableInfo,
    count: u32,
) -> Result<Vec<Range>, Error> {
    let relation = quote_literal(&format!(
        "{}.{}",
        quote_ident(&table.schema),
        quote_ident(&table.name)
    ));
    // Views and partitioned tables have no pages of their own: size 0, read whole.
    let rows = connection.query(&format!(
        "SELECT (pg_relation_size({relation}::regclass) / current_setting('block_size')::int8)::text"
    ))?;
    let pages = rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    Ok(split_pages(pages, count))
}

/// Up to `count` ranges of `0..pages`; the last is open-ended.
pub fn split_pages(pages: u64, count: u32) -> Vec<Range> {
    let parts = u64::from(count).min(pages);
    if parts < 2 {
        return Vec::new();
    }
    let step = pages.div_ceil(parts);
    let mut ranges = Vec::new();
    let mut from = 0;
    while from < pages {
        let to = from + step;
        ranges.push(Range::Pages {
            from,
            to: (to < pages).then_some(to),
        });
        from = to;
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(ranges: &[Range]) -> Vec<(u64, Option<u64>)> {
        ranges
            .iter()
            .map(|r| match r {
                Range::Pages { from, to } => (*from, *to),
                Range::Key { .. } => panic!("a key range"),
            })
            .collect()
    }

    #[test]
    fn pages_are_split_into_contiguous_ranges_the_last_open_ended() {
        assert_eq!(
            pages(&split_pages(10, 3)),
            vec![(0, Some(4)), (4, Some(8)), (8, None)]
        );
        assert_eq!(pages(&split_pages(4, 2)), vec![(0, Some(2)), (2, None)]);
        assert_eq!(
            pages(&split_pages(3, 8)),
            vec![(0, Some(1)), (1, Some(2)), (2, None)]
        );
        // Too small to split: read whole.
        assert!(split_pages(1, 4).is_empty());
        assert!(split_pages(0, 4).is_empty());
        assert!(split_pages(100, 1).is_empty());
    }

    #[test]
    fn key_ranges_cover_min_to_max_once() {
        let ranges = split_keys("id", 1, 10, 3);
        let bounds: Vec<(i64, i64)> = ranges
            .iter()
            .map(|r| match r {
                Range::Key { from, to, .. } => (*from, *to),
                Range::Pages { .. } => panic!("a page range"),
            })
            .collect();
        assert_eq!(bounds, vec![(1, 5), (5, 9), (9, 11)]);
        assert_eq!(split_keys("id", 7, 7, 4).len(), 1);
        let edge = split_keys("id", i64::MAX - 1, i64::MAX, 2);
        assert!(matches!(edge.last(), Some(Range::Key { to, .. }) if *to == i64::MAX));
    }

    #[test]
    fn descriptors_round_trip_and_name_their_rows() {
        let part = Part {
            range: Range::Pages {
                from: 4,
                to: Some(8),
            },
            snapshot: Some("00000003-0000001B-1".into()),
        };
        let text = serde_json::to_string(&part).unwrap();
        assert_eq!(Part::parse("public.t", &text).unwrap(), part);
        assert_eq!(
            part.condition(),
            "ctid >= '(4,0)'::tid AND ctid < '(8,0)'::tid"
        );
        let last = Part {
            range: Range::Pages { from: 8, to: None },
            snapshot: None,
        };
        assert_eq!(last.condition(), "ctid >= '(8,0)'::tid");
        assert_eq!(last.describe(), "in pages [8, end]");
        let key = Part {
            range: Range::Key {
                column: "id".into(),
                from: 1,
                to: 5,
            },
            snapshot: None,
        };
        assert_eq!(key.condition(), "\"id\" >= 1 AND \"id\" < 5");
        assert_eq!(key.describe(), "with id in [1, 5)");
        let bad = Part::parse("public.t", "{\"from\": 1}")
            .unwrap_err()
            .to_string();
        assert!(bad.contains("public.t"), "{bad}");
    }
}
