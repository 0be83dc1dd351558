//! The column types of the streams and how the API's JSON values become them: money as exact
//! decimals, counts as integers (both arrive as strings), datetimes as UTC timestamps.

use crate::dates;
use inlet_sdk::Error;
use inlet_sdk::prelude::{DataType, TimeUnit};
use serde_json::Value;

/// Decimal scale: BigQuery NUMERIC keeps 9 fractional digits, and Meta's money values (spend,
/// cpc, cpm, budgets) carry fewer.
pub const SCALE: i8 = 9;

/// The kinds of column the streams have: the type table from API value to Arrow type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string as it is (ids, names, statuses).
    Text,
    /// A decimal string -> Decimal128(38, 9), exact.
    Money,
    /// An integer string or number -> Int64.
    Count,
    /// A ratio (`ctr`, `frequency`) -> Float64: not money, and Meta writes more than 9 digits.
    Ratio,
    /// `YYYY-MM-DD` -> Date32.
    Day,
    /// `2026-10-01T08:30:00+0000` -> Timestamp(µs, UTC).
    Time,
    /// Any JSON -> its text (Utf8), for nested specs kept whole.
    Json,
}

impl Kind {
    /// The Arrow type of the column.
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Text | Kind::Json => DataType::Utf8,
            Kind::Money => DataType::Decimal128(38, SCALE),
            Kind::Count => DataType::Int64,
            Kind::Ratio => DataType::Float64,
            Kind::Day => DataType::Date32,
            Kind::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        }
    }

    /// The value for the row handed to the encoder; `Null` for absent values. `column` names
    /// the column in a data error.
    pub fn convert(self, value: &Value, column: &str) -> Result<Value, Error> {
        if value.is_null() {
            return Ok(Value::Null);
        }
        let bad = || {
            Error::data(format!(
                "column `{column}`: `{value}` is not a {self:?} value as Meta documents it"
            ))
        };
        let text = value.as_str();
        Ok(match self {
            Kind::Text => Value::String(match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
            Kind::Json => Value::String(value.to_string()),
            Kind::Money => {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                    _ => return Err(bad()),
                };
                Value::String(exact_decimal(&text).ok_or_else(bad)?)
            }
            Kind::Count => {
                let n: i64 = match value {
                    Value::Number(n) => n.as_i64().ok_or_else(bad)?,
                    Value::String(s) => s.trim().parse().map_err(|_| bad())?,
                    _ => return Err(bad()),
                };
                Value::from(n)
            }
            Kind::Ratio => {
                let n: f64 = match value {
                    Value::Number(n) => n.as_f64().ok_or_else(bad)?,
                    Value::String(s) => s.trim().parse().map_err(|_| bad())?,
                    _ => return Err(bad()),
                };
                Value::from(n)
            }
            Kind::Day => Value::String(text.and_then(dates::day_of).ok_or_else(bad)?),
            Kind::Time => Value::String(text.and_then(dates::rfc3339).ok_or_else(bad)?),
        })
    }
}

/// A decimal string checked to fit Decimal128(38, 9) without rounding: optional sign, digits,
/// at most 9 fractional digits (trailing zeros beyond them are dropped). `None` otherwise.
pub fn exact_decimal(text: &str) -> Option<String> {
    let text = text.trim();
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let fraction = fraction.trim_end_matches('0');
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let ok = !whole.is_empty()
        && digits(whole)
        && digits(fraction)
        && fraction.len() <= SCALE as usize
        && whole.trim_start_matches('0').len() <= 38 - SCALE as usize;
    ok.then(|| {
        let sign = if text.starts_with('-') { "-" } else { "" };
        if fraction.is_empty() {
            format!("{sign}{whole}")
        } else {
            format!("{sign}{whole}.{fraction}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn money_stays_exact_and_counts_become_integers() {
        assert_eq!(exact_decimal("5339.5").as_deref(), Some("5339.5"));
        assert_eq!(exact_decimal("0.100000000000").as_deref(), Some("0.1"));
        assert_eq!(exact_decimal("-12").as_deref(), Some("-12"));
        assert_eq!(
            exact_decimal("0.1234567891"),
            None,
            "10 fractional digits would round"
        );
        assert_eq!(exact_decimal("1e5"), None);
        assert_eq!(exact_decimal(".5"), None);
        assert_eq!(
            Kind::Count.convert(&json!("1234"), "impressions").unwrap(),
            json!(1234)
        );
        assert!(Kind::Count.convert(&json!("12.5"), "clicks").is_err());
        assert_eq!(
            Kind::Money.convert(&json!("19.99"), "spend").unwrap(),
            json!("19.99")
        );
        assert_eq!(
            Kind::Time
                .convert(&json!("2026-10-01T08:30:00+0000"), "updated_time")
                .unwrap(),
            json!("2026-10-01T08:30:00+00:00")
        );
        assert_eq!(
            Kind::Json.convert(&json!({"a": 1}), "spec").unwrap(),
            json!("{\"a\":1}")
        );
        assert_eq!(
            Kind::Money.convert(&Value::Null, "spend").unwrap(),
            Value::Null
        );
    }
}
