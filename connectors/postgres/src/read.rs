//! Reading tables: the COPY query of a stream, decoding its rows into Arrow batches, and the
//! incremental cursor with checkpoints at cursor-value boundaries.

use crate::catalog::{ColumnInfo, TableInfo};
use crate::copy_text::TextBatch;
use crate::split::Part;
use crate::types::{Column, PgType, date_as_day_number};
use crate::wire::{Connection, quote_ident, quote_literal};
use crate::{PostgresConfig, TableConfig};
use inlet_sdk::prelude::*;
use std::sync::Arc;

/// The columns a stream reads, in order.
fn selected_columns<'t>(
    table: &'t TableInfo,
    options: Option<&TableConfig>,
    cursor: Option<&str>,
) -> Result<Vec<&'t ColumnInfo>, Error> {
    let Some(names) = options.and_then(|o| o.columns.as_ref()) else {
        return Ok(table.columns.iter().collect());
    };
    for name in names {
        if table.column(name).is_none() {
            return Err(Error::config(format!(
                "tables.\"{}\".columns: table has no column `{name}`",
                table.stream_name()
            )));
        }
    }
    // Keys and the cursor are always read: without them rows cannot be merged or resumed.
    Ok(table
        .columns
        .iter()
        .filter(|c| {
            names.contains(&c.name)
                || table.primary_key.contains(&c.name)
                || cursor == Some(c.name.as_str())
        })
        .collect())
}

fn cursor_column<'t>(
    table: &'t TableInfo,
    options: Option<&TableConfig>,
) -> Result<Option<&'t ColumnInfo>, Error> {
    match options.and_then(|o| o.cursor.as_deref()) {
        Some(name) => {
            let column = table.column(name).ok_or_else(|| {
                Error::config(format!(
                    "tables.\"{}\".cursor: table has no column `{name}`",
                    table.stream_name()
                ))
            })?;
            if !column.ty.can_be_cursor() {
                return Err(Error::config(format!(
                    "tables.\"{}\".cursor: column `{name}` ({:?}) cannot order an incremental read; use a timestamp, date or integer column",
                    table.stream_name(),
                    column.ty
                )));
            }
            Ok(Some(column))
        }
        None => Ok(table.suggested_cursor()),
    }
}

/// Refuses `tables."schema.table"` keys that name no discovered table: a typo must not turn a
/// filtered read into a full read.
pub fn check_table_keys(config: &PostgresConfig, tables: &[TableInfo]) -> Result<(), Error> {
    for key in config.tables.keys() {
        if tables.iter().any(|t| t.stream_name() == *key) {
            continue;
        }
        let known: Vec<String> = tables.iter().map(TableInfo::stream_name).collect();
        let hint = if key.contains('.') {
            String::new()
        } else {
            format!(" (keys are `schema.table`, e.g. `public.{key}`)")
        };
        return Err(Error::config(format!(
            "tables.\"{key}\": no such table in schemas {}{hint}; tables found: {}",
            config.schemas.join(", "),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )));
    }
    Ok(())
}

/// The SQL type a saved cursor value is cast to before `lookback` is subtracted.
fn cursor_sql_type(ty: &PgType) -> &'static str {
    match ty {
        PgType::Timestamp => "timestamp",
        PgType::Timestamptz => "timestamptz",
        PgType::Date => "date",
        // int8 compares with int2/int4 columns through their btree operators (index kept).
        PgType::Int2 | PgType::Int4 | PgType::Int8 => "int8",
        _ => "numeric",
    }
}

/// `lookback` as SQL to subtract from the saved cursor: an interval literal for timestamp and date
/// cursors (checked by the server), a number for the others.
fn lookback_sql(
    connection: &mut Connection,
    stream: &str,
    cursor: &ColumnInfo,
    lookback: &serde_json::Value,
) -> Result<String, Error> {
    let key = format!("tables.\"{stream}\".lookback");
    let temporal = matches!(
        cursor.ty,
        PgType::Timestamp | PgType::Timestamptz | PgType::Date
    );
    match lookback {
        serde_json::Value::String(text) if temporal => {
            let literal = format!("{}::interval", quote_literal(text));
            connection
                .query(&format!("SELECT {literal}"))
                .map_err(|e| {
                    Error::config(format!(
                        "{key}: `{text}` is not a PostgreSQL interval ({e}); write e.g. \"15 minutes\""
                    ))
                })?;
            Ok(literal)
        }
        serde_json::Value::Number(number) if !temporal => Ok(number.to_string()),
        other if temporal => Err(Error::config(format!(
            "{key}: `{other}` is not an interval; the cursor `{}` is a {:?}, so write e.g. \"15 minutes\"",
            cursor.name, cursor.ty
        ))),
        other => Err(Error::config(format!(
            "{key}: `{other}` is not a number; the cursor `{}` is a {:?}, so write e.g. 1000",
            cursor.name, cursor.ty
        ))),
    }
}

fn schema_of(columns: &[&ColumnInfo]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| c.ty.field(&c.name, c.nullable))
            .collect::<Vec<_>>(),
    ))
}

/// The stream a table offers.
pub fn stream_of(table: &TableInfo, options: Option<&TableConfig>) -> Result<Stream, Error> {
    let cursor = cursor_column(table, options)?;
    let columns = selected_columns(table, options, cursor.map(|c| c.name.as_str()))?;
    let stream = Stream::new(table.stream_name())
        .schema(schema_of(&columns))
        .primary_key(table.primary_key.clone());
    Ok(match cursor {
        Some(cursor) => stream.cursor(cursor.name.clone()),
        None => stream,
    })
}

/// Reads every requested stream.
pub fn read(
    connection: &mut Connection,
    config: &PostgresConfig,
    tables: &[TableInfo],
    streams: &[ConfiguredStream],
    mut state: State,
    out: &mut Output,
) -> Result<(), Error> {
    for wanted in streams {
        let table = tables
            .iter()
            .find(|t| t.stream_name() == wanted.name)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "table `{}` (it may have been dropped since discovery)",
                    wanted.name
                ))
            })?;
        let options = config.tables.get(&wanted.name);
        let cursor = match wanted.sync_mode {
            SyncMode::Incremental => Some(cursor_column(table, options)?.ok_or_else(|| {
                Error::config(format!(
                    "stream `{}` has no cursor column; set tables.\"{}\".cursor or read it in full",
                    wanted.name, wanted.name
                ))
            })?),
            SyncMode::FullRefresh => None,
        };
        // A state saved before the cursor column was recorded is a position in the column
        // suggested then, which may differ from today's suggestion.
        let saved_before_column_was_recorded = state
            .get::<serde_json::Value>(&format!("{}.cursor", wanted.name))?
            .is_some()
            && state
                .get::<String>(&format!("{}.cursor_column", wanted.name))?
                .is_none();
        let cursor = match cursor {
            Some(_)
                if saved_before_column_was_recorded
                    && options.and_then(|o| o.cursor.as_ref()).is_none() =>
            {
                table.legacy_suggested_cursor().or(cursor)
            }
            other => other,
        };
        let columns = selected_columns(table, options, cursor.map(|c| c.name.as_str()))?;
        for column in &columns {
            if let PgType::Fallback(type_name) = &column.ty {
                out.log(
                    LogLevel::Warn,
                    &format!("{}: column `{}` has type `{type_name}`, which has no Arrow mapping; it is read as text", wanted.name, column.name),
                );
            }
        }
        let mut reader = StreamReader {
            stream: &wanted.name,
            schema: schema_of(&columns),
            builders: columns.iter().map(|c| Column::new(&c.ty)).collect(),
            names: columns.iter().map(|c| c.name.clone()).collect(),
            // A batch ends on the row that reaches `batch_bytes`: room for one more long row.
            text: TextBatch::with_capacity(config.batch_bytes.min(64 << 20) + (256 << 10)),
            cursor_index: cursor.and_then(|c| columns.iter().position(|col| col.name == c.name)),
            batch_rows: config.batch_rows,
            batch_bytes: config.batch_bytes,
            bytes_in_batch: 0,
            rows: 0,
            unrepresentable: 0,
        };
        let key = format!("{}.cursor", wanted.name);
        let column_key = format!("{}.cursor_column", wanted.name);
        let nulls_key = format!("{}.cursor_nulls_read", wanted.name);
        let (last, nulls_read): (Option<String>, bool) = match cursor {
            Some(cursor) => {
                let saved_column: Option<String> = state.get(&column_key)?;
                if let Some(saved) = saved_column.filter(|saved| *saved != cursor.name) {
                    return Err(Error::config(format!(
                        "stream `{}`: the saved state is a cursor on column `{saved}`, but the cursor is now `{}`; \
                         set tables.\"{}\".cursor = \"{saved}\" to go on, or reset the state (`inlet state reset`) to read the table again",
                        wanted.name, cursor.name, wanted.name
                    )));
                }
                state.set(&column_key, &cursor.name)?;
                (state.get(&key)?, state.get(&nulls_key)?.unwrap_or(false))
            }
            None => (None, false),
        };
        let lookback = match (cursor, options.and_then(|o| o.lookback.as_ref())) {
            (Some(cursor), Some(lookback)) if last.is_some() => {
                Some(lookback_sql(connection, &wanted.name, cursor, lookback)?)
            }
            _ => None,
        };
        let part = match &wanted.partition {
            Some(descriptor) => Some(Part::parse(&wanted.name, descriptor)?),
            None => None,
        };
        if let Some(part) = &part {
            part.begin(connection, &wanted.name)?;
        }
        let query = |bound: Bound<'_>| {
            copy_sql(&CopyQuery {
                table,
                columns: &columns,
                options,
                cursor: cursor.map(|column| (column, bound)),
                part: part.as_ref(),
            })
        };
        if let (Some(last), Some(lookback)) = (&last, &lookback) {
            // Rows at or before the saved cursor, read again: no checkpoint, the state stays.
            let sql = query(Bound::Window { last, lookback });
            connection.copy_out(&sql, |line| {
                reader.push(line)?;
                if reader.full() {
                    reader.flush(out)?;
                }
                Ok(())
            })?;
            reader.flush(out)?;
        }
        let sql = query(match &last {
            Some(last) => Bound::After(last),
            None if nulls_read => Bound::NotNull,
            None => Bound::All,
        });
        let mut current_cursor: Option<String> = last.clone();
        let mut since_checkpoint = 0u64;
        // With NULLs first, a nullable cursor's NULL rows all come before the first value: they
        // are one "value" that a checkpoint never splits, and once a value follows them (or the
        // read ends) they have all been read.
        let nullable = cursor.is_some_and(|c| c.nullable);
        let rows_before = reader.rows;
        // Cursor values compare as text: every cursor type prints one value one way (numeric
        // cursors have a declared scale; unconstrained numeric cannot be a cursor).
        connection.copy_out(&sql, |line| {
            reader.push(line)?;
            if let Some(index) = reader.cursor_index {
                let value = reader.last_field(index).map(String::from_utf8_lossy);
                // Checkpoint only between different cursor values: rows sharing one are never split.
                if value.as_deref() != current_cursor.as_deref() {
                    let value = value.map(|v| v.into_owned());
                    if since_checkpoint >= config.checkpoint_rows {
                        // The rows before this one make the checkpoint; this one goes after it.
                        reader.pop_last();
                        reader.flush(out)?;
                        if let Some(done) = &current_cursor {
                            state.set(&key, done)?;
                        }
                        if nullable {
                            state.set(&nulls_key, &true)?;
                        }
                        out.checkpoint(&state)?;
                        since_checkpoint = 0;
                        reader.push(line)?;
                    }
                    current_cursor = value;
                }
            }
            since_checkpoint += 1;
            if reader.full() {
                reader.flush(out)?;
            }
            Ok(())
        })?;
        reader.flush(out)?;
        if let Some(done) = &current_cursor {
            state.set(&key, done)?;
        }
        // Only a read that saw rows has seen the NULL ones: an empty table's later NULL rows are
        // still to come.
        if nullable && reader.rows > rows_before {
            state.set(&nulls_key, &true)?;
        }
        out.checkpoint(&state)?;
        if reader.unrepresentable > 0 {
            out.log(
                LogLevel::Warn,
                &format!(
                    "{}: {} numeric NaN values have no decimal form and were stored as NULL",
                    wanted.name, reader.unrepresentable
                ),
            );
        }
        if let Some(part) = &part {
            part.end(connection)?;
        }
        let message = match &part {
            Some(part) => format!("{}: {} rows {}", wanted.name, reader.rows, part.describe()),
            None => format!("{}: {} rows", wanted.name, reader.rows),
        };
        out.log(LogLevel::Info, &message);
    }
    Ok(())
}

/// Which rows of an incremental read a query takes, by cursor value.
#[derive(Clone, Copy)]
enum Bound<'a> {
    /// Every row (the first sync).
    All,
    /// Rows whose cursor is set (a nullable cursor's NULL rows were read before).
    NotNull,
    /// Rows after the saved cursor.
    After(&'a str),
    /// Rows within `lookback` (checked SQL) before the saved cursor, and at it.
    Window { last: &'a str, lookback: &'a str },
}

/// Everything the COPY query of one stream depends on.
struct CopyQuery<'a> {
    table: &'a TableInfo,
    columns: &'a [&'a ColumnInfo],
    options: Option<&'a TableConfig>,
    cursor: Option<(&'a ColumnInfo, Bound<'a>)>,
    part: Option<&'a Part>,
}

/// The select list of a COPY of `columns`: each quoted, cast to text where COPY's own text form is
/// not the one the decoders read, dates as day numbers ([`date_as_day_number`]) except `cursor`,
/// whose text is saved as the state and compared with in SQL.
pub(crate) fn copy_select_list<'c>(
    columns: impl IntoIterator<Item = &'c ColumnInfo>,
    cursor: Option<&str>,
) -> String {
    columns
        .into_iter()
        .map(|c| {
            let name = quote_ident(&c.name);
            match c.ty {
                PgType::Date if cursor != Some(c.name.as_str()) => date_as_day_number(&name),
                ref ty if ty.needs_text_cast() => format!("{name}::text"),
                _ => name,
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn copy_sql(query: &CopyQuery<'_>) -> String {
    let list = copy_select_list(
        query.columns.iter().copied(),
        query.cursor.map(|(c, _)| c.name.as_str()),
    );
    let mut conditions = Vec::new();
    if let Some(filter) = query.options.and_then(|o| o.filter.as_deref()) {
        conditions.push(format!("({filter})"));
    }
    if let Some(part) = query.part {
        conditions.push(part.condition());
    }
    if let Some((cursor, bound)) = query.cursor {
        let column = quote_ident(&cursor.name);
        match bound {
            Bound::All => {}
            Bound::NotNull => conditions.push(format!("{column} IS NOT NULL")),
            Bound::After(last) => conditions.push(format!("{column} > {}", quote_literal(last))),
            Bound::Window { last, lookback } => conditions.push(format!(
                "{column} > {last}::{ty} - {lookback} AND {column} <= {last}::{ty}",
                last = quote_literal(last),
                ty = cursor_sql_type(&cursor.ty)
            )),
        }
    }
    let mut sql = format!(
        "COPY (SELECT {list} FROM {}.{}",
        quote_ident(&query.table.schema),
        quote_ident(&query.table.name)
    );
    if !conditions.is_empty() {
        sql.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
    }
    if let Some((cursor, _)) = query.cursor {
        sql.push_str(&format!(
            " ORDER BY {} NULLS FIRST",
            quote_ident(&cursor.name)
        ));
    }
    sql.push_str(") TO STDOUT");
    sql
}

/// Decodes the rows of one stream into batches: rows are split as they arrive and decoded a
/// column at a time when the batch is due.
struct StreamReader<'a> {
    stream: &'a str,
    schema: SchemaRef,
    builders: Vec<Column>,
    names: Vec<String>,
    /// The rows of the batch, split, not yet decoded.
    text: TextBatch,
    cursor_index: Option<usize>,
    batch_rows: usize,
    batch_bytes: usize,
    /// COPY text bytes of the rows in the batch: bounds its memory whatever the row width.
    bytes_in_batch: usize,
    rows: u64,
    unrepresentable: u64,
}

impl StreamReader<'_> {
    /// Whether the batch is due: `batch_rows` rows or `batch_bytes` bytes of text.
    fn full(&self) -> bool {
        self.text.rows() >= self.batch_rows || self.bytes_in_batch >= self.batch_bytes
    }

    /// Adds one COPY text row to the batch.
    fn push(&mut self, line: &[u8]) -> Result<(), Error> {
        let width = self.builders.len();
        self.text.push_row(line, width).map_err(|fields| {
            Error::data(format!(
                "{}: row {} has {fields} fields, expected {width}",
                self.stream,
                self.rows + 1,
            ))
        })?;
        self.rows += 1;
        self.bytes_in_batch += line.len();
        Ok(())
    }

    /// Takes the row pushed last back out of the batch, which is flushed next (so its bytes need
    /// not come off `bytes_in_batch`).
    fn pop_last(&mut self) {
        if self.text.rows() > 0 {
            self.text.pop_row(self.builders.len());
            self.rows -= 1;
        }
    }

    /// Field `index` of the row pushed last.
    fn last_field(&self, index: usize) -> Option<&[u8]> {
        let row = self.text.rows().checked_sub(1)?;
        self.text.field(row, index, self.builders.len())
    }

    /// Decodes the batch and emits it.
    fn flush(&mut self, out: &mut Output) -> Result<(), Error> {
        let rows = self.text.rows();
        if rows == 0 {
            return Ok(());
        }
        let width = self.builders.len();
        let first_row = self.rows - rows as u64;
        let text = self.text.text();
        for (index, builder) in self.builders.iter_mut().enumerate() {
            // Numbers and dates are parsed from bytes: their fields need no text.
            let text = if builder.parses_bytes() { None } else { text };
            let values = self.text.column(text, index, width);
            self.unrepresentable += builder.append_values(values).map_err(|(row, e)| {
                Error::data(format!(
                    "{}: row {}, column `{}`: {e}",
                    self.stream,
                    first_row + row as u64 + 1,
                    self.names[index]
                ))
            })?;
        }
        self.text.clear();
        let columns = self.builders.iter_mut().map(Column::finish).collect();
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        out.emit(self.stream, &batch)?;
        out.progress(self.stream, None);
        self.bytes_in_batch = 0;
        Ok(())
    }
}
