//! A sheet's values as an Arrow batch: the header row names the columns (normalized, blanks and
//! duplicates made unique), each column gets the narrowest type all its values share.

use inlet_sdk::arrow::array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use inlet_sdk::arrow::array::{ArrayRef, RecordBatch};
use inlet_sdk::prelude::{DataType, Field, Schema, TimeUnit};
use serde_json::Value;
use std::sync::Arc;

/// Days from the spreadsheet epoch (1899-12-30) to the Unix epoch.
const SERIAL_UNIX_EPOCH: f64 = 25569.0;
const MICROS_PER_DAY: f64 = 86_400_000_000.0;

/// A column or stream name: lowercase letters, digits and `_`; never empty, never starting with
/// a digit.
pub fn normalize(text: &str) -> String {
    let mut out = String::new();
    for c in text.trim().chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_owned();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{out}")
    } else {
        out
    }
}

/// `A`, `B`, ..., `Z`, `AA`: the column letter of a zero-based index.
fn column_letter(mut index: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push((b'A' + (index % 26) as u8) as char);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    letters.iter().rev().collect()
}

fn is_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// The column names of a header row `width` wide.
fn column_names(header: &[Value], width: usize) -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(width + 1);
    names.push("_row".to_owned());
    for index in 0..width {
        let base = header
            .get(index)
            .filter(|v| !is_empty(Some(v)))
            .map(|v| normalize(&as_text(v)))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("column_{}", column_letter(index).to_lowercase()));
        let mut name = base.clone();
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        names.push(name);
    }
    names.remove(0);
    names
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Bool,
    Number,
    Date,
    DateTime,
    Time,
    Text,
}

fn kind_of(rows: &[(u64, &Vec<Value>)], column: usize, format: Option<&str>) -> Kind {
    let mut kind: Option<Kind> = None;
    for (_, row) in rows {
        let value = row.get(column);
        if is_empty(value) {
            continue;
        }
        let this = match value {
            Some(Value::Bool(_)) => Kind::Bool,
            Some(Value::Number(_)) => match format {
                Some("DATE") => Kind::Date,
                Some("DATE_TIME") => Kind::DateTime,
                Some("TIME") => Kind::Time,
                _ => Kind::Number,
            },
            _ => Kind::Text,
        };
        kind = match kind {
            None => Some(this),
            Some(k) if k == this => Some(k),
            Some(_) => return Kind::Text,
        };
    }
    kind.unwrap_or(Kind::Text)
}

/// The batch of a sheet's values whose first row is the header and whose first data row is
/// sheet row `first_row` (a `_row` column keeps each row's sheet row number); `None` for a sheet
/// without any cell. `formats` are the number formats of the first data row, per column.
pub fn to_batch(
    values: &[Vec<Value>],
    formats: &[Option<String>],
    first_row: u64,
) -> Result<Option<RecordBatch>, String> {
    let Some((header, data)) = values.split_first() else {
        return Ok(None);
    };
    let width = values.iter().map(Vec::len).max().unwrap_or(0);
    if width == 0 {
        return Ok(None);
    }
    let names = column_names(header, width);
    // Rows with no value at all are gaps in the sheet, not records.
    let rows: Vec<(u64, &Vec<Value>)> = data
        .iter()
        .enumerate()
        .filter(|(_, row)| row.iter().any(|v| !is_empty(Some(v))))
        .map(|(i, row)| (first_row + i as u64, row))
        .collect();
    let mut fields = vec![Field::new("_row", DataType::Int64, false)];
    let mut row_numbers = Int64Builder::with_capacity(rows.len());
    for (number, _) in &rows {
        row_numbers.append_value(*number as i64);
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(row_numbers.finish())];
    for (index, name) in names.iter().enumerate() {
        let format = formats.get(index).and_then(|f| f.as_deref());
        let kind = kind_of(&rows, index, format);
        let cells = rows
            .iter()
            .map(|(_, row)| row.get(index).filter(|v| !is_empty(Some(v))));
        let (data_type, array): (DataType, ArrayRef) = match kind {
            Kind::Bool => {
                let mut b = BooleanBuilder::new();
                cells.for_each(|c| b.append_option(c.and_then(Value::as_bool)));
                (DataType::Boolean, Arc::new(b.finish()))
            }
            Kind::Number => {
                let mut b = Float64Builder::new();
                cells.for_each(|c| b.append_option(c.and_then(Value::as_f64)));
                (DataType::Float64, Arc::new(b.finish()))
            }
            Kind::Date => {
                let mut b = Date32Builder::new();
                cells.for_each(|c| {
                    b.append_option(
                        c.and_then(Value::as_f64)
                            .map(|s| (s.floor() - SERIAL_UNIX_EPOCH) as i32),
                    )
                });
                (DataType::Date32, Arc::new(b.finish()))
            }
            Kind::DateTime => {
                let mut b = TimestampMicrosecondBuilder::new();
                cells.for_each(|c| {
                    b.append_option(
                        c.and_then(Value::as_f64)
                            .map(|s| ((s - SERIAL_UNIX_EPOCH) * MICROS_PER_DAY).round() as i64),
                    )
                });
                // Sheets holds wall-clock times in the spreadsheet's zone: no zone here.
                (
                    DataType::Timestamp(TimeUnit::Microsecond, None),
                    Arc::new(b.finish()),
                )
            }
            Kind::Time => {
                let mut b = Time64MicrosecondBuilder::new();
                cells.for_each(|c| {
                    b.append_option(
                        c.and_then(Value::as_f64)
                            .map(|s| (s.fract() * MICROS_PER_DAY).round() as i64),
                    )
                });
                (
                    DataType::Time64(TimeUnit::Microsecond),
                    Arc::new(b.finish()),
                )
            }
            Kind::Text => {
                let mut b = StringBuilder::new();
                cells.for_each(|c| b.append_option(c.map(as_text)));
                (DataType::Utf8, Arc::new(b.finish()))
            }
        };
        fields.push(Field::new(name, data_type, true));
        columns.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map(Some)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_normalized_unique_and_never_blank() {
        let header = vec![
            json!("Order ID"),
            json!(""),
            json!("Amount (€)"),
            json!("order id"),
            json!(2024),
        ];
        assert_eq!(
            column_names(&header, 6),
            vec![
                "order_id",
                "column_b",
                "amount",
                "order_id_2",
                "_2024",
                "column_f"
            ]
        );
        assert_eq!(normalize("  Q3 Budget / Plan "), "q3_budget_plan");
        assert_eq!(column_letter(27), "AB");
    }
}
