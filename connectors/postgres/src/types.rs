//! The type mapping: PostgreSQL column types to Arrow, and the text-format decoders that fill
//! Arrow builders straight from COPY output.
//!
//! | PostgreSQL | Arrow |
//! | --- | --- |
//! | int2 / int4 / int8 | Int16 / Int32 / Int64 |
//! | float4 / float8 | Float32 / Float64 (NaN, ±Infinity kept) |
//! | numeric(p,s), p <= 38 | Decimal128(p, s) (a NaN value becomes NULL, with a warning) |
//! | numeric unconstrained or p > 38 | Utf8 (exact text) |
//! | bool | Boolean |
//! | text, varchar, char, bpchar, name, citext | Utf8 |
//! | bytea | Binary |
//! | date | Date32 (±infinity as i32::MAX / i32::MIN) |
//! | time | Time64(µs) |
//! | timestamp | Timestamp(µs) (±infinity as i64::MAX / i64::MIN) |
//! | timestamptz | Timestamp(µs, "+00:00") |
//! | interval | Utf8, ISO 8601 (`P1Y2M3DT4H5M6.5S`): Parquet writers have no month-day-nano interval, and BigQuery casts this text to INTERVAL |
//! | uuid | Utf8 |
//! | json, jsonb | Utf8 with extension `arrow.json` |
//! | enum types | Utf8 |
//! | one-dimensional arrays of the above | List of the element type |
//! | anything else | Utf8 (the value's text form), with a warning naming the column |

use inlet_sdk::arrow::array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use inlet_sdk::arrow::array::{Array, ArrayRef, ListArray};
use inlet_sdk::arrow::schema::{DataType, Field, TimeUnit};
use std::collections::HashMap;
use std::sync::Arc;

/// A column type as the catalog describes it.
#[derive(Debug, Clone, PartialEq)]
pub enum PgType {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric {
        precision: u8,
        scale: i8,
    },
    NumericText,
    Bool,
    Text,
    Bytea,
    Date,
    Time,
    Timestamp,
    Timestamptz,
    Interval,
    Uuid,
    Json,
    Enum,
    Array(Box<PgType>),
    /// Read as text; the name is kept for the warning.
    Fallback(String),
}

impl PgType {
    /// Maps a catalog type name (`pg_type.typname`), its `typtype` (`e` for enums), the element
    /// type of an array, and the column's typmod.
    pub fn from_catalog(
        typname: &str,
        typtype: &str,
        element: Option<(&str, &str)>,
        typmod: i32,
    ) -> Self {
        if let Some((element, element_typtype)) = element {
            return match Self::from_catalog(element, element_typtype, None, typmod) {
                Self::Fallback(name) => Self::Fallback(format!("{name}[]")),
                Self::Array(_) => Self::Fallback(typname.to_owned()),
                inner => Self::Array(Box::new(inner)),
            };
        }
        if typtype == "e" {
            return Self::Enum;
        }
        match typname {
            "int2" => Self::Int2,
            "int4" => Self::Int4,
            "int8" => Self::Int8,
            "float4" => Self::Float4,
            "float8" => Self::Float8,
            "numeric" => {
                if typmod < 4 {
                    return Self::NumericText;
                }
                let precision = ((typmod - 4) >> 16) & 0xffff;
                let scale = ((typmod - 4) & 0x7ff) as i16;
                let scale = if scale > 1023 { scale - 2048 } else { scale };
                if precision > 38 || !(0..=38).contains(&scale) {
                    Self::NumericText
                } else {
                    Self::Numeric {
                        precision: precision as u8,
                        scale: scale as i8,
                    }
                }
            }
            "bool" => Self::Bool,
            "text" | "varchar" | "bpchar" | "char" | "name" | "citext" => Self::Text,
            "bytea" => Self::Bytea,
            "date" => Self::Date,
            "time" => Self::Time,
            "timestamp" => Self::Timestamp,
            "timestamptz" => Self::Timestamptz,
            "interval" => Self::Interval,
            "uuid" => Self::Uuid,
            "json" | "jsonb" => Self::Json,
            other => Self::Fallback(other.to_owned()),
        }
    }

    /// The Arrow field for a column of this type.
    pub fn field(&self, name: &str, nullable: bool) -> Field {
        let field = Field::new(name, self.data_type(), nullable);
        if *self == Self::Json {
            let metadata =
                HashMap::from([("ARROW:extension:name".to_owned(), "arrow.json".to_owned())]);
            return field.with_metadata(metadata);
        }
        field
    }

    fn data_type(&self) -> DataType {
        match self {
            Self::Int2 => DataType::Int16,
            Self::Int4 => DataType::Int32,
            Self::Int8 => DataType::Int64,
            Self::Float4 => DataType::Float32,
            Self::Float8 => DataType::Float64,
            Self::Numeric { precision, scale } => DataType::Decimal128(*precision, *scale),
            Self::Bool => DataType::Boolean,
            Self::Bytea => DataType::Binary,
            Self::Date => DataType::Date32,
            Self::Time => DataType::Time64(TimeUnit::Microsecond),
            Self::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Self::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            Self::NumericText
            | Self::Text
            | Self::Interval
            | Self::Uuid
            | Self::Json
            | Self::Enum
            | Self::Fallback(_) => DataType::Utf8,
            Self::Array(inner) => DataType::List(Arc::new(inner.field("item", true))),
        }
    }

    /// Whether the SELECT must cast the column to text (types read through their text form).
    pub fn needs_text_cast(&self) -> bool {
        matches!(self, Self::Fallback(_))
    }

    /// Whether the type can order an incremental read.
    pub fn can_be_cursor(&self) -> bool {
        matches!(
            self,
            Self::Int2
                | Self::Int4
                | Self::Int8
                | Self::Numeric { .. }
                | Self::Date
                | Self::Timestamp
                | Self::Timestamptz
        )
    }
}

/// Builds one Arrow column from text values.
pub enum Column {
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Bool(BooleanBuilder),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder, Option<Arc<str>>),
    List {
        field: Arc<Field>,
        offsets: Vec<i32>,
        valid: Vec<bool>,
        child: Box<Column>,
    },
}

/// What went wrong decoding one value (the caller adds column and row).
pub type DecodeError = String;

impl Column {
    /// An empty builder for `ty`.
    pub fn new(ty: &PgType) -> Self {
        match ty {
            PgType::Int2 => Self::Int16(Int16Builder::new()),
            PgType::Int4 => Self::Int32(Int32Builder::new()),
            PgType::Int8 => Self::Int64(Int64Builder::new()),
            PgType::Float4 => Self::Float32(Float32Builder::new()),
            PgType::Float8 => Self::Float64(Float64Builder::new()),
            PgType::Numeric { precision, scale } => {
                Self::Decimal(Decimal128Builder::new(), *precision, *scale)
            }
            PgType::Bool => Self::Bool(BooleanBuilder::new()),
            PgType::Bytea => Self::Binary(BinaryBuilder::new()),
            PgType::Date => Self::Date(Date32Builder::new()),
            PgType::Time => Self::Time(Time64MicrosecondBuilder::new()),
            PgType::Timestamp => Self::Timestamp(TimestampMicrosecondBuilder::new(), None),
            PgType::Timestamptz => {
                Self::Timestamp(TimestampMicrosecondBuilder::new(), Some("+00:00".into()))
            }
            PgType::NumericText
            | PgType::Text
            | PgType::Interval
            | PgType::Uuid
            | PgType::Json
            | PgType::Enum
            | PgType::Fallback(_) => Self::Utf8(StringBuilder::new()),
            PgType::Array(inner) => Self::List {
                field: Arc::new(inner.field("item", true)),
                offsets: vec![0],
                valid: Vec::new(),
                child: Box::new(Self::new(inner)),
            },
        }
    }

    /// Appends one value in PostgreSQL text form (`None` is NULL). Returns `Ok(false)` when the
    /// value could not be represented and was stored as NULL (numeric NaN).
    pub fn append(&mut self, value: Option<&[u8]>) -> Result<bool, DecodeError> {
        let Some(bytes) = value else {
            self.append_null();
            return Ok(true);
        };
        // Numbers and dates are parsed from the bytes; only text needs UTF-8 validation.
        match self {
            Self::Int16(b) => b.append_value(
                parse_int(bytes)
                    .and_then(|v| i16::try_from(v).ok())
                    .ok_or_else(|| bad("int2", bytes))?,
            ),
            Self::Int32(b) => b.append_value(
                parse_int(bytes)
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(|| bad("int4", bytes))?,
            ),
            Self::Int64(b) => b.append_value(parse_int(bytes).ok_or_else(|| bad("int8", bytes))?),
            Self::Decimal(b, _, scale) => {
                if bytes == b"NaN" {
                    b.append_null();
                    return Ok(false);
                }
                b.append_value(parse_decimal(bytes, *scale).ok_or_else(|| bad("numeric", bytes))?)
            }
            Self::Date(b) => b.append_value(parse_date(bytes).ok_or_else(|| bad("date", bytes))?),
            _ => return self.append_text(bytes),
        }
        Ok(true)
    }

    fn append_text(&mut self, bytes: &[u8]) -> Result<bool, DecodeError> {
        let text = std::str::from_utf8(bytes).map_err(|_| "value is not UTF-8".to_owned())?;
        match self {
            Self::Int16(_)
            | Self::Int32(_)
            | Self::Int64(_)
            | Self::Decimal(..)
            | Self::Date(_) => {
                unreachable!("parsed from bytes in `append`")
            }
            Self::Float32(b) => b.append_value(text.parse().map_err(|_| bad("float4", bytes))?),
            Self::Float64(b) => b.append_value(text.parse().map_err(|_| bad("float8", bytes))?),
            Self::Bool(b) => b.append_value(match text {
                "t" => true,
                "f" => false,
                _ => return Err(bad("bool", bytes)),
            }),
            Self::Utf8(b) => b.append_value(text),
            Self::Binary(b) => {
                b.append_value(parse_bytea(text).ok_or_else(|| bad("bytea", bytes))?)
            }
            Self::Time(b) => b.append_value(parse_time(text).ok_or_else(|| bad("time", bytes))?),
            Self::Timestamp(b, _) => {
                b.append_value(parse_timestamp(text).ok_or_else(|| bad("timestamp", bytes))?)
            }
            Self::List {
                offsets,
                valid,
                child,
                ..
            } => {
                let elements = parse_array(text).ok_or_else(|| bad("array", bytes))?;
                let mut all_represented = true;
                for element in &elements {
                    all_represented &= child.append(element.as_deref().map(str::as_bytes))?;
                }
                let last = *offsets.last().expect("offsets start with 0");
                offsets.push(last + elements.len() as i32);
                valid.push(true);
                return Ok(all_represented);
            }
        }
        Ok(true)
    }

    fn append_null(&mut self) {
        match self {
            Self::Int16(b) => b.append_null(),
            Self::Int32(b) => b.append_null(),
            Self::Int64(b) => b.append_null(),
            Self::Float32(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Decimal(b, _, _) => b.append_null(),
            Self::Bool(b) => b.append_null(),
            Self::Utf8(b) => b.append_null(),
            Self::Binary(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Time(b) => b.append_null(),
            Self::Timestamp(b, _) => b.append_null(),
            Self::List { offsets, valid, .. } => {
                offsets.push(*offsets.last().expect("offsets start with 0"));
                valid.push(false);
            }
        }
    }

    /// The column built so far; the builder is left empty.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Decimal(b, precision, scale) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*precision, *scale)
                    .expect("precision <= 38 was checked"),
            ),
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Utf8(b) => Arc::new(b.finish()),
            Self::Binary(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Time(b) => Arc::new(b.finish()),
            Self::Timestamp(b, zone) => Arc::new(b.finish().with_timezone_opt(zone.clone())),
            Self::List {
                field,
                offsets,
                valid,
                child,
            } => {
                let values = child.finish();
                let offsets = std::mem::replace(offsets, vec![0]);
                let valid = std::mem::take(valid);
                let nulls = valid
                    .iter()
                    .any(|v| !v)
                    .then(|| valid.into_iter().collect());
                let offsets = inlet_sdk::arrow::buffer::OffsetBuffer::new(offsets.into());
                let list = ListArray::new(field.clone(), offsets, values, nulls);
                debug_assert_eq!(list.len() + 1, list.offsets().len());
                Arc::new(list)
            }
        }
    }
}

fn bad(ty: &str, bytes: &[u8]) -> DecodeError {
    let shown: String = String::from_utf8_lossy(bytes).chars().take(60).collect();
    format!("`{shown}` is not a valid {ty}")
}

/// `-123.45` with `scale` 2 -> -12345.
pub fn parse_decimal(bytes: &[u8], scale: i8) -> Option<i128> {
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    let dot = digits.iter().position(|&b| b == b'.');
    let (whole, fraction) = match dot {
        Some(at) => (&digits[..at], &digits[at + 1..]),
        None => (digits, &digits[digits.len()..]),
    };
    if fraction.len() > scale as usize || (whole.is_empty() && fraction.is_empty()) {
        return None;
    }
    let total_digits = whole.len() + scale as usize;
    let mut value: i128 = if total_digits <= 18 {
        // Fits an i64: no 128-bit multiplications on the common path.
        let mut small: i64 = 0;
        for &c in whole.iter().chain(fraction) {
            let digit = c.wrapping_sub(b'0');
            if digit > 9 {
                return None;
            }
            small = small * 10 + i64::from(digit);
        }
        for _ in fraction.len()..scale as usize {
            small *= 10;
        }
        i128::from(small)
    } else {
        let mut big: i128 = 0;
        for &c in whole.iter().chain(fraction) {
            let digit = c.wrapping_sub(b'0');
            if digit > 9 {
                return None;
            }
            big = big.checked_mul(10)?.checked_add(i128::from(digit))?;
        }
        for _ in fraction.len()..scale as usize {
            big = big.checked_mul(10)?;
        }
        big
    };
    if negative {
        value = -value;
    }
    Some(value)
}

/// A decimal integer, optionally negative.
fn parse_int(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut value: u64 = 0;
    for &c in digits {
        let digit = c.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    if negative {
        // Up to 2^63, which is i64::MIN.
        (value <= 1 << 63).then(|| (value as i64).wrapping_neg())
    } else {
        i64::try_from(value).ok()
    }
}

fn parse_bytea(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

fn split_bc(text: &str) -> (&str, bool) {
    match text.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (text, false),
    }
}

fn parse_ymd(text: &str, bc: bool) -> Option<i64> {
    let mut parts = text.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // 1 BC is year 0 in the proleptic Gregorian calendar.
    let year = if bc { 1 - year } else { year };
    Some(inlet_sdk::time::days_from_civil(year, month, day))
}

/// `2024-02-29` -> days since the epoch; `infinity` -> i32::MAX.
pub fn parse_date(bytes: &[u8]) -> Option<i32> {
    // The common `YYYY-MM-DD` shape, without splitting.
    if let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *bytes {
        let digit = |b: u8| b.wrapping_sub(b'0');
        let all = [y0, y1, y2, y3, m0, m1, d0, d1];
        if all.iter().all(|&b| digit(b) <= 9) {
            let year = i64::from(digit(y0)) * 1000
                + i64::from(digit(y1)) * 100
                + i64::from(digit(y2)) * 10
                + i64::from(digit(y3));
            let month = i64::from(digit(m0)) * 10 + i64::from(digit(m1));
            let day = i64::from(digit(d0)) * 10 + i64::from(digit(d1));
            if (1..=12).contains(&month) && (1..=31).contains(&day) {
                return i32::try_from(inlet_sdk::time::days_from_civil(year, month, day)).ok();
            }
            return None;
        }
    }
    let text = std::str::from_utf8(bytes).ok()?;
    match text {
        "infinity" => return Some(i32::MAX),
        "-infinity" => return Some(i32::MIN),
        _ => {}
    }
    let (text, bc) = split_bc(text);
    i32::try_from(parse_ymd(text, bc)?).ok()
}

/// `13:45:07.25` -> microseconds since midnight.
pub fn parse_time(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, ':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let seconds = parts.next()?;
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    let whole: i64 = whole.parse().ok()?;
    if fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<6}").parse().ok()?
    };
    Some(((hours * 60 + minutes) * 60 + whole) * 1_000_000 + micros)
}

/// `2024-02-29 13:45:07.25+00` (offset optional) -> microseconds since the epoch, UTC.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    match text {
        "infinity" => return Some(i64::MAX),
        "-infinity" => return Some(i64::MIN),
        _ => {}
    }
    let (text, bc) = split_bc(text);
    let (date, time) = text.split_once(' ')?;
    // The offset starts at the last '+' or '-' after the time of day.
    let (time, offset_seconds) = match time.rfind(['+', '-']) {
        Some(at) => {
            let sign = if &time[at..at + 1] == "-" { -1 } else { 1 };
            let mut fields = time[at + 1..].split(':');
            let hours: i64 = fields.next()?.parse().ok()?;
            let minutes: i64 = fields.next().map_or(Some(0), |m| m.parse().ok())?;
            let seconds: i64 = fields.next().map_or(Some(0), |s| s.parse().ok())?;
            (&time[..at], sign * (hours * 3600 + minutes * 60 + seconds))
        }
        None => (time, 0),
    };
    let days = parse_ymd(date, bc)?;
    let micros = parse_time(time)?;
    days.checked_mul(86_400_000_000)?
        .checked_add(micros)?
        .checked_sub(offset_seconds * 1_000_000)
}

/// A one-dimensional array literal `{1,NULL,"a b","x\"y"}` -> its elements.
pub fn parse_array(text: &str) -> Option<Vec<Option<String>>> {
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    let mut elements = Vec::new();
    if inner.is_empty() {
        return Some(elements);
    }
    let mut chars = inner.chars().peekable();
    loop {
        let mut value = String::new();
        let element = if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '\\' => value.push(chars.next()?),
                    '"' => break,
                    c => value.push(c),
                }
            }
            Some(value)
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '{' {
                    return None; // multi-dimensional
                }
                value.push(c);
                chars.next();
            }
            if value == "NULL" { None } else { Some(value) }
        };
        elements.push(element);
        match chars.next() {
            None => return Some(elements),
            Some(',') => continue,
            Some(_) => return None,
        }
    }
}
