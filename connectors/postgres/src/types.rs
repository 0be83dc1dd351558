//! The type mapping: PostgreSQL column types to Arrow, and the text-format decoders that fill
//! Arrow builders straight from COPY output.
//!
//! | PostgreSQL | Arrow |
//! | --- | --- |
//! | int2 / int4 / int8 | Int16 / Int32 / Int64 |
//! | float4 / float8 | Float32 / Float64 (NaN, ±Infinity kept) |
//! | numeric(p,s), p <= 38 | Decimal128(p, s) (a NaN value becomes NULL, with a warning) |
//! | numeric unconstrained, p > 38, s < 0 or s > p | Utf8 (exact text) |
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

use crate::copy_text::Value;
use inlet_sdk::arrow::array::builder::PrimitiveBuilder;
use inlet_sdk::arrow::array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use inlet_sdk::arrow::array::cast::AsArray;
use inlet_sdk::arrow::array::types::{ArrowPrimitiveType, Decimal128Type, DecimalType};
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
                // Arrow has no decimal of precision 0 or with scale above precision (PostgreSQL 15
                // allows `numeric(2, 5)`).
                if !(1..=38).contains(&precision) || !(0..=precision as i16).contains(&scale) {
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
        self.append_value(value.map(Value::bytes))
    }

    /// [`Column::append`] of a split field, whose text may already be known to be UTF-8.
    pub fn append_value(&mut self, value: Option<Value<'_>>) -> Result<bool, DecodeError> {
        let Some(value) = value else {
            self.append_null();
            return Ok(true);
        };
        let bytes = value.bytes;
        // Numbers and dates are parsed from the bytes; only text needs UTF-8 validation.
        match self {
            Self::Int16(b) => {
                b.append_value(parse_int_as(bytes).ok_or_else(|| bad("int2", bytes))?)
            }
            Self::Int32(b) => {
                b.append_value(parse_int_as(bytes).ok_or_else(|| bad("int4", bytes))?)
            }
            Self::Int64(b) => b.append_value(parse_int(bytes).ok_or_else(|| bad("int8", bytes))?),
            Self::Decimal(b, precision, scale) => {
                match parse_numeric(bytes, *precision, *scale)
                    .map_err(|()| bad("numeric", bytes))?
                {
                    Some(value) => b.append_value(value),
                    None => {
                        b.append_null();
                        return Ok(false);
                    }
                }
            }
            Self::Date(b) => b.append_value(parse_date(bytes).ok_or_else(|| bad("date", bytes))?),
            _ => return self.append_text(value),
        }
        Ok(true)
    }

    /// Appends a column's worth of values, with one loop per type rather than a type check per
    /// value. Returns how many could not be represented (stored as NULL), or the index of the
    /// value that failed and why.
    pub fn append_values<'v>(
        &mut self,
        values: impl Iterator<Item = Option<Value<'v>>>,
    ) -> Result<u64, (usize, DecodeError)> {
        /// Calls `append` with each value, naming the index of the first that fails; the types
        /// it serves have no unrepresentable values (0).
        fn parsed<T, B>(
            builder: &mut B,
            values: impl Iterator<Item = Option<T>>,
            mut append: impl FnMut(&mut B, Option<T>) -> Result<(), DecodeError>,
        ) -> Result<u64, (usize, DecodeError)> {
            for (index, value) in values.enumerate() {
                append(builder, value).map_err(|e| (index, e))?;
            }
            Ok(0)
        }
        /// Appends what `parse` reads of each value (`Ok(None)` stores NULL and counts it as
        /// unrepresentable; `Err` names the `ty` it is not) or NULL. The values are gathered
        /// first and appended in one call, not one builder call per value.
        fn primitive<'v, T: ArrowPrimitiveType>(
            builder: &mut PrimitiveBuilder<T>,
            values: impl Iterator<Item = Option<Value<'v>>>,
            parse: impl Fn(&[u8]) -> Result<Option<T::Native>, ()>,
            ty: &str,
        ) -> Result<u64, (usize, DecodeError)> {
            let mut natives = Vec::with_capacity(values.size_hint().0);
            // Filled from the first NULL on: a column without NULLs needs no validity.
            let mut validity: Option<Vec<bool>> = None;
            let mut unrepresentable = 0;
            for (index, value) in values.enumerate() {
                let native = match value {
                    Some(v) => parse(v.bytes).map_err(|()| (index, bad(ty, v.bytes)))?,
                    None => None,
                };
                match native {
                    Some(native) => {
                        natives.push(native);
                        if let Some(validity) = &mut validity {
                            validity.push(true);
                        }
                    }
                    None => {
                        unrepresentable += u64::from(value.is_some());
                        natives.push(T::Native::default());
                        validity
                            .get_or_insert_with(|| vec![true; index])
                            .push(false);
                    }
                }
            }
            match validity {
                None => builder.append_slice(&natives),
                Some(validity) => builder.append_values(&natives, &validity),
            }
            Ok(unrepresentable)
        }
        /// A parser for [`primitive`] of values that are always representable.
        fn always<N>(
            parse: impl Fn(&[u8]) -> Option<N>,
        ) -> impl Fn(&[u8]) -> Result<Option<N>, ()> {
            move |bytes| parse(bytes).map(Some).ok_or(())
        }
        match self {
            Self::Int16(b) => primitive(b, values, always(parse_int_as), "int2"),
            Self::Int32(b) => primitive(b, values, always(parse_int_as), "int4"),
            Self::Int64(b) => primitive(b, values, always(parse_int), "int8"),
            Self::Date(b) => primitive(b, values, always(parse_date), "date"),
            Self::Decimal(b, precision, scale) => {
                let (precision, scale) = (*precision, *scale);
                primitive(b, values, |v| parse_numeric(v, precision, scale), "numeric")
            }
            Self::Utf8(b) => parsed(b, values, |b, v| {
                match v {
                    None => b.append_null(),
                    Some(v) => b.append_value(v.text().map_err(|_| bad("UTF-8 text", v.bytes))?),
                }
                Ok(())
            }),
            _ => {
                let mut unrepresentable = 0;
                for (index, value) in values.enumerate() {
                    if !self.append_value(value).map_err(|e| (index, e))? {
                        unrepresentable += 1;
                    }
                }
                Ok(unrepresentable)
            }
        }
    }

    /// Whether [`Column::append_values`] parses this column's values from their bytes alone, so
    /// they need not come with their text.
    pub fn parses_bytes(&self) -> bool {
        matches!(
            self,
            Self::Int16(_) | Self::Int32(_) | Self::Int64(_) | Self::Decimal(..) | Self::Date(_)
        )
    }

    fn append_text(&mut self, value: Value<'_>) -> Result<bool, DecodeError> {
        let bytes = value.bytes;
        let text = value.text().map_err(|_| bad("UTF-8 text", bytes))?;
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

    /// The column built so far; the builder is left empty, with room for as many values (and
    /// bytes) as this batch had, so the next batch does not grow its buffers step by step.
    pub fn finish(&mut self) -> ArrayRef {
        let array = self.finish_values();
        self.make_room(&array);
        array
    }

    fn make_room(&mut self, last: &ArrayRef) {
        let rows = last.len();
        match self {
            Self::Int16(b) => *b = Int16Builder::with_capacity(rows),
            Self::Int32(b) => *b = Int32Builder::with_capacity(rows),
            Self::Int64(b) => *b = Int64Builder::with_capacity(rows),
            Self::Float32(b) => *b = Float32Builder::with_capacity(rows),
            Self::Float64(b) => *b = Float64Builder::with_capacity(rows),
            Self::Decimal(b, ..) => *b = Decimal128Builder::with_capacity(rows),
            Self::Bool(b) => *b = BooleanBuilder::with_capacity(rows),
            Self::Utf8(b) => {
                let bytes = last
                    .as_string_opt::<i32>()
                    .map_or(0, |a| a.value_data().len());
                *b = StringBuilder::with_capacity(rows, bytes);
            }
            Self::Binary(b) => {
                let bytes = last
                    .as_binary_opt::<i32>()
                    .map_or(0, |a| a.value_data().len());
                *b = BinaryBuilder::with_capacity(rows, bytes);
            }
            Self::Date(b) => *b = Date32Builder::with_capacity(rows),
            Self::Time(b) => *b = Time64MicrosecondBuilder::with_capacity(rows),
            Self::Timestamp(b, _) => *b = TimestampMicrosecondBuilder::with_capacity(rows),
            // Lists grow as they go: their element counts vary.
            Self::List { .. } => {}
        }
    }

    fn finish_values(&mut self) -> ArrayRef {
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

/// `-123.45` with `scale` 2 -> -12345; `None` for malformed text, more fraction digits than
/// `scale`, a value past an i128, or a negative `scale`.
pub fn parse_decimal(bytes: &[u8], scale: i8) -> Option<i128> {
    let scale = usize::try_from(scale).ok()?;
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    // PostgreSQL prints a numeric(p, s) with exactly s fraction digits: the whole part and the
    // fraction are then two runs of digits, parsed without looking for the dot.
    let len = digits.len();
    if scale > 0 && len > scale && len <= 18 && digits[len - scale - 1] == b'.' {
        let (whole, fraction) = (
            digit_run(&digits[..len - scale - 1]),
            digit_run(&digits[len - scale..]),
        );
        if let (Some(whole), Some(fraction)) = (whole, fraction) {
            let value = whole * POWERS_OF_TEN[scale] + fraction;
            return Some(i128::from(if negative { -value } else { value }));
        }
    }
    // The common case, one pass in 64-bit arithmetic: at most 18 digits, scaled to at most 18.
    if digits.len() <= 18 {
        let mut value: i64 = 0;
        let mut dot = None;
        for (at, &c) in digits.iter().enumerate() {
            let digit = c.wrapping_sub(b'0');
            if digit <= 9 {
                value = value * 10 + i64::from(digit);
            } else if c == b'.' && dot.is_none() {
                dot = Some(at);
            } else {
                return None;
            }
        }
        let whole = dot.unwrap_or(digits.len());
        let fraction = digits.len() - dot.map_or(digits.len(), |at| at + 1);
        if fraction > scale || whole + fraction == 0 {
            return None;
        }
        if whole + scale <= 18 {
            let value = value * POWERS_OF_TEN[scale - fraction];
            return Some(i128::from(if negative { -value } else { value }));
        }
    }
    parse_wide_decimal(negative, digits, scale)
}

/// The value of at most 17 decimal digits, `None` if another byte is among them. One branch for
/// the run, not one per byte.
fn digit_run(digits: &[u8]) -> Option<i64> {
    let mut value: i64 = 0;
    let mut other = false;
    for &c in digits {
        let digit = c.wrapping_sub(b'0');
        other |= digit > 9;
        // Cannot overflow: 17 bytes of at most 255 stay below 2^62.
        value = value * 10 + i64::from(digit);
    }
    (!other).then_some(value)
}

/// 10^0 ..= 10^18.
const POWERS_OF_TEN: [i64; 19] = {
    let mut powers = [1i64; 19];
    let mut i = 1;
    while i < 19 {
        powers[i] = powers[i - 1] * 10;
        i += 1;
    }
    powers
};

/// [`parse_decimal`] of values past 18 digits, in 128-bit arithmetic.
fn parse_wide_decimal(negative: bool, digits: &[u8], scale: usize) -> Option<i128> {
    let dot = digits.iter().position(|&b| b == b'.');
    let (whole, fraction) = match dot {
        Some(at) => (&digits[..at], &digits[at + 1..]),
        None => (digits, &digits[digits.len()..]),
    };
    if fraction.len() > scale || (whole.is_empty() && fraction.is_empty()) {
        return None;
    }
    let mut big: i128 = 0;
    for &c in whole.iter().chain(fraction) {
        let digit = c.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        big = big.checked_mul(10)?.checked_add(i128::from(digit))?;
    }
    for _ in fraction.len()..scale {
        big = big.checked_mul(10)?;
    }
    Some(if negative { -big } else { big })
}

/// A `numeric` value of a column of `precision` and `scale`: `Ok(None)` for NaN, which no decimal
/// holds (stored as NULL, counted as unrepresentable); `Err` for malformed text or a value past
/// the precision.
fn parse_numeric(bytes: &[u8], precision: u8, scale: i8) -> Result<Option<i128>, ()> {
    if bytes == b"NaN" {
        return Ok(None);
    }
    parse_decimal(bytes, scale)
        .filter(|n| Decimal128Type::is_valid_decimal_precision(*n, precision))
        .map(Some)
        .ok_or(())
}

/// [`parse_int`] of a value that must also fit `N`.
fn parse_int_as<N: TryFrom<i64>>(bytes: &[u8]) -> Option<N> {
    parse_int(bytes).and_then(|v| N::try_from(v).ok())
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
    if digits.len() <= 17 {
        let value = digit_run(digits)?;
        return Some(if negative { -value } else { value });
    }
    let mut value: u64 = 0;
    if digits.len() <= 18 {
        // Cannot overflow: no checked multiplication, which wasm32 does with a 128-bit helper.
        for &c in digits {
            let digit = c.wrapping_sub(b'0');
            if digit > 9 {
                return None;
            }
            value = value * 10 + u64::from(digit);
        }
    } else {
        for &c in digits {
            let digit = c.wrapping_sub(b'0');
            if digit > 9 {
                return None;
            }
            value = value.checked_mul(10)?.checked_add(u64::from(digit))?;
        }
    }
    if negative {
        // Up to 2^63, which is i64::MIN.
        (value <= 1 << 63).then(|| (value as i64).wrapping_neg())
    } else {
        i64::try_from(value).ok()
    }
}

fn parse_bytea(text: &str) -> Option<Vec<u8>> {
    let (pairs, odd) = text.strip_prefix("\\x")?.as_bytes().as_chunks::<2>();
    if !odd.is_empty() {
        return None;
    }
    pairs
        .iter()
        .map(|&[high, low]| Some(hex_digit(high)? << 4 | hex_digit(low)?))
        .collect()
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A field of ASCII digits, at most `max_len` of them (so no arithmetic on it overflows).
fn digits(text: &str, max_len: usize) -> Option<i64> {
    if text.is_empty() || text.len() > max_len {
        return None;
    }
    text.bytes().try_fold(0i64, |value, b| {
        b.is_ascii_digit().then(|| value * 10 + i64::from(b - b'0'))
    })
}

/// Days in `month` (1-12) of a year that is `leap` or not.
fn days_in_month(leap: bool, month: u32) -> u32 {
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Whether `year` (proleptic Gregorian, 1 BC being 0) is a leap year.
fn is_leap<Y: Copy + Eq + std::ops::Rem<Output = Y> + From<u16>>(year: Y) -> bool {
    let divides = |n: u16| year % Y::from(n) == Y::from(0);
    divides(4) && (!divides(100) || divides(400))
}

fn split_bc(text: &str) -> (&str, bool) {
    match text.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (text, false),
    }
}

fn parse_ymd(text: &str, bc: bool) -> Option<i64> {
    let mut parts = text.splitn(3, '-');
    // PostgreSQL's years reach 5874897 (dates) and 4713 BC; there is no year 0.
    let year = digits(parts.next()?, 7).filter(|&y| y > 0)?;
    let month = digits(parts.next()?, 2)?;
    let day = digits(parts.next()?, 2)?;
    // 1 BC is year 0 in the proleptic Gregorian calendar.
    let year = if bc { 1 - year } else { year };
    if !(1..=12).contains(&month)
        || !(1..=i64::from(days_in_month(is_leap(year), month as u32))).contains(&day)
    {
        return None;
    }
    Some(inlet_sdk::time::days_from_civil(year, month, day))
}

/// The select-list expression that reads the date column `quoted` (a quoted identifier) as days
/// since 1970-01-01, `infinity` as i32::MAX and `-infinity` as i32::MIN: the number
/// [`parse_date`] would make of the date's text, and what Arrow's `Date32` holds.
///
/// The server makes `9568` with less CPU than `1996-03-13` (lineitem SF1, `COPY ... TO
/// '/dev/null'` of its three date columns: 1.2-1.7 s against 2.2-2.9 s), sends 6 fewer bytes, and
/// the connector parses an integer. `isfinite` guards the subtraction, which fails on infinities;
/// NULL passes every arm and stays NULL.
pub fn date_as_day_number(quoted: &str) -> String {
    format!(
        "CASE WHEN isfinite({quoted}) THEN {quoted} - DATE '1970-01-01' \
         WHEN {quoted} > DATE '1970-01-01' THEN {} WHEN {quoted} < DATE '1970-01-01' THEN {} END",
        i32::MAX,
        i32::MIN
    )
}

/// `2024-02-29` -> days since the epoch; `infinity` -> i32::MAX. A day number (`19782`, `-1`:
/// what [`date_as_day_number`] selects) is that number: no date's text is digits alone.
pub fn parse_date(bytes: &[u8]) -> Option<i32> {
    // The common `YYYY-MM-DD` shape, without splitting (pgoutput's dates); a day number never
    // has it, and is read next.
    if let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *bytes {
        // In 32-bit arithmetic throughout: this runs for every date of a table.
        let digit = |b: u8| u32::from(b.wrapping_sub(b'0'));
        let all = [y0, y1, y2, y3, m0, m1, d0, d1];
        if all.iter().all(|&b| digit(b) <= 9) {
            let year = digit(y0) * 1000 + digit(y1) * 100 + digit(y2) * 10 + digit(y3);
            let month = digit(m0) * 10 + digit(m1);
            let day = digit(d0) * 10 + digit(d1);
            let month_days = days_in_month(is_leap(year), month);
            if year > 0 && (1..=12).contains(&month) && (1..=month_days).contains(&day) {
                return Some(inlet_sdk::time::days_from_civil_ce(year, month, day));
            }
            return None;
        }
    }
    if let Some(days) = parse_int(bytes) {
        return i32::try_from(days).ok();
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
    let hours = digits(parts.next()?, 2).filter(|&h| h <= 24)?;
    let minutes = digits(parts.next()?, 2).filter(|&m| m < 60)?;
    let seconds = parts.next()?;
    let (whole, fraction) = match seconds.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (seconds, None),
    };
    let whole = digits(whole, 2).filter(|&s| s < 60)?;
    let micros = match fraction.map(str::len) {
        None => 0,
        Some(len @ 1..=6) => digits(fraction?, 6)? * 10_i64.pow(6 - len as u32),
        Some(_) => return None,
    };
    let total = ((hours * 60 + minutes) * 60 + whole) * 1_000_000 + micros;
    // 24:00:00 is the largest time of day.
    (total <= 86_400_000_000).then_some(total)
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
            let hours = digits(fields.next()?, 2)?;
            let minutes = fields.next().map_or(Some(0), |m| digits(m, 2))?;
            let seconds = fields.next().map_or(Some(0), |s| digits(s, 2))?;
            if fields.next().is_some() || minutes >= 60 || seconds >= 60 {
                return None;
            }
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

/// A one-dimensional array literal `{1,NULL,"a b","x\"y"}` -> its elements; `None` for a
/// malformed or multi-dimensional one.
pub fn parse_array(text: &str) -> Option<Vec<Option<String>>> {
    // An array whose lower bound is not 1 starts with its bounds, `[0:2]={1,2,3}`.
    let text = match text.strip_prefix('[') {
        Some(bounded) => bounded.split_once("]=")?.1,
        None => text,
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_pass_decimal_parser_agrees_with_the_wide_one() {
        let mut rng = crate::copy_text::tests::Rng::new("decimal");
        for _ in 0..200_000 {
            let len = rng.below(24);
            let text: Vec<u8> = (0..len)
                .map(|_| *rng.pick(b"0123456789012345678901234567890123456789.-x"))
                .collect();
            let scale = rng.below(22) as i8;
            let (negative, digits) = match text.split_first() {
                Some((b'-', rest)) => (true, rest),
                _ => (false, &text[..]),
            };
            assert_eq!(
                parse_decimal(&text, scale),
                parse_wide_decimal(negative, digits, scale as usize),
                "{} at scale {scale}",
                String::from_utf8_lossy(&text)
            );
        }
        // The shape PostgreSQL prints, `[-]digits.digits` with `scale` fraction digits, now and
        // then with a stray byte in it.
        for _ in 0..200_000 {
            let scale = 1 + rng.below(17);
            let whole = rng.below(19 - scale);
            let mut text: Vec<u8> = Vec::new();
            if rng.below(4) == 0 {
                text.push(b'-');
            }
            text.extend((0..whole).map(|_| *rng.pick(b"0123456789")));
            text.push(b'.');
            text.extend((0..scale).map(|_| *rng.pick(b"0123456789")));
            if rng.below(8) == 0 {
                let at = rng.below(text.len());
                text[at] = *rng.pick(b".-x/:\xff");
            }
            let (negative, digits) = match text.split_first() {
                Some((b'-', rest)) => (true, rest),
                _ => (false, &text[..]),
            };
            assert_eq!(
                parse_decimal(&text, scale as i8),
                parse_wide_decimal(negative, digits, scale),
                "{} at scale {scale}",
                String::from_utf8_lossy(&text)
            );
        }
    }
    use crate::copy_text::tests::Rng;
    use inlet_sdk::arrow::array::cast::AsArray;
    use inlet_sdk::arrow::array::types::{
        Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
        Time64MicrosecondType, TimestampMicrosecondType,
    };
    use std::panic::{AssertUnwindSafe, catch_unwind};

    const DAY: i64 = 86_400_000_000;
    const HOUR: i64 = 3_600_000_000;

    /// `numeric(precision, scale)`'s typmod.
    fn numeric_typmod(precision: i32, scale: i32) -> i32 {
        ((precision << 16) | (scale & 0x7ff)) + 4
    }

    fn numeric(precision: u8, scale: i8) -> PgType {
        PgType::Numeric { precision, scale }
    }

    /// Decodes `values` into one column, failing on any error.
    fn decode(ty: &PgType, values: &[Option<&str>]) -> ArrayRef {
        let mut column = Column::new(ty);
        for value in values {
            let represented = column
                .append(value.map(str::as_bytes))
                .unwrap_or_else(|e| panic!("{ty:?} {value:?}: {e}"));
            assert!(represented, "{ty:?} {value:?} reported unrepresentable");
        }
        let array = column.finish();
        assert_eq!(array.len(), values.len());
        assert_eq!(array.data_type(), &ty.data_type());
        array
    }

    /// The error decoding `value` alone.
    fn error(ty: &PgType, value: &[u8]) -> String {
        match Column::new(ty).append(Some(value)) {
            Ok(_) => panic!(
                "{ty:?}: `{}` decoded but should not",
                String::from_utf8_lossy(value)
            ),
            Err(e) => e,
        }
    }

    fn assert_rejects(ty: &PgType, name: &str, values: &[&str]) {
        for value in values {
            assert_eq!(
                error(ty, value.as_bytes()),
                format!("`{value}` is not a valid {name}"),
                "{ty:?}"
            );
        }
    }

    fn strings(array: &ArrayRef) -> Vec<Option<String>> {
        array
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect()
    }

    // --- The catalog mapping.

    #[test]
    fn maps_catalog_names() {
        let cases = [
            ("int2", PgType::Int2),
            ("int4", PgType::Int4),
            ("int8", PgType::Int8),
            ("float4", PgType::Float4),
            ("float8", PgType::Float8),
            ("bool", PgType::Bool),
            ("text", PgType::Text),
            ("varchar", PgType::Text),
            ("bpchar", PgType::Text),
            ("char", PgType::Text),
            ("name", PgType::Text),
            ("citext", PgType::Text),
            ("bytea", PgType::Bytea),
            ("date", PgType::Date),
            ("time", PgType::Time),
            ("timestamp", PgType::Timestamp),
            ("timestamptz", PgType::Timestamptz),
            ("interval", PgType::Interval),
            ("uuid", PgType::Uuid),
            ("json", PgType::Json),
            ("jsonb", PgType::Json),
            ("point", PgType::Fallback("point".into())),
            ("timetz", PgType::Fallback("timetz".into())),
        ];
        for (name, ty) in cases {
            assert_eq!(PgType::from_catalog(name, "b", None, -1), ty, "{name}");
        }
        assert_eq!(PgType::from_catalog("mood", "e", None, -1), PgType::Enum);
    }

    #[test]
    fn maps_numeric_typmods() {
        let map = |typmod| PgType::from_catalog("numeric", "b", None, typmod);
        assert_eq!(map(-1), PgType::NumericText);
        assert_eq!(map(numeric_typmod(10, 2)), numeric(10, 2));
        assert_eq!(map(numeric_typmod(1, 0)), numeric(1, 0));
        assert_eq!(map(numeric_typmod(38, 0)), numeric(38, 0));
        assert_eq!(map(numeric_typmod(38, 38)), numeric(38, 38));
        assert_eq!(map(numeric_typmod(39, 2)), PgType::NumericText);
        assert_eq!(map(numeric_typmod(1000, 0)), PgType::NumericText);
        // PostgreSQL 15 allows a negative scale and a scale above the precision; Arrow does not.
        assert_eq!(map(numeric_typmod(5, -2)), PgType::NumericText);
        assert_eq!(map(numeric_typmod(2, 5)), PgType::NumericText);
        // No PostgreSQL numeric has precision 0; Arrow rejects it.
        assert_eq!(map(4), PgType::NumericText);
    }

    #[test]
    fn scale_above_precision_no_longer_panics_at_finish() {
        // Mapped to Decimal128(2, 5) before, which `finish` rejected with a panic.
        let ty = PgType::from_catalog("numeric", "b", None, numeric_typmod(2, 5));
        let array = decode(&ty, &[Some("0.00012")]);
        assert_eq!(strings(&array), vec![Some("0.00012".to_owned())]);
    }

    #[test]
    fn maps_arrays() {
        let map = |name, element| PgType::from_catalog(name, "b", Some((element, "b")), -1);
        assert_eq!(map("_int4", "int4"), PgType::Array(Box::new(PgType::Int4)));
        assert_eq!(map("_text", "text"), PgType::Array(Box::new(PgType::Text)));
        assert_eq!(map("_point", "point"), PgType::Fallback("point[]".into()));
        assert_eq!(
            PgType::from_catalog("_mood", "b", Some(("mood", "e")), -1),
            PgType::Array(Box::new(PgType::Enum))
        );
        // The array's typmod is its element's.
        assert_eq!(
            PgType::from_catalog(
                "_numeric",
                "b",
                Some(("numeric", "b")),
                numeric_typmod(5, 2)
            ),
            PgType::Array(Box::new(numeric(5, 2)))
        );
    }

    #[test]
    fn arrow_fields() {
        let field = PgType::Json.field("doc", true);
        assert_eq!(field.data_type(), &DataType::Utf8);
        assert_eq!(
            field
                .metadata()
                .get("ARROW:extension:name")
                .map(String::as_str),
            Some("arrow.json")
        );
        assert!(PgType::Text.field("t", true).metadata().is_empty());
        assert_eq!(
            PgType::Timestamptz.field("at", false).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
        );
        assert!(!PgType::Timestamptz.field("at", false).is_nullable());
        assert_eq!(
            numeric(10, 2).field("n", true).data_type(),
            &DataType::Decimal128(10, 2)
        );
        let list = PgType::Array(Box::new(PgType::Json)).field("docs", true);
        let DataType::List(item) = list.data_type() else {
            panic!("{list:?}");
        };
        assert_eq!(item.name(), "item");
        assert!(item.is_nullable());
        assert_eq!(
            item.metadata()
                .get("ARROW:extension:name")
                .map(String::as_str),
            Some("arrow.json")
        );
    }

    #[test]
    fn text_casts_and_cursors() {
        assert!(PgType::Fallback("point".into()).needs_text_cast());
        assert!(!PgType::Text.needs_text_cast());
        for ty in [
            PgType::Int2,
            PgType::Int4,
            PgType::Int8,
            numeric(10, 2),
            PgType::Date,
            PgType::Timestamp,
            PgType::Timestamptz,
        ] {
            assert!(ty.can_be_cursor(), "{ty:?}");
        }
        for ty in [
            PgType::Text,
            PgType::NumericText,
            PgType::Float8,
            PgType::Uuid,
        ] {
            assert!(!ty.can_be_cursor(), "{ty:?}");
        }
    }

    // --- Integers.

    #[test]
    fn the_integer_parser_agrees_with_the_standard_one() {
        // Runs of digits of every length to 19, a sign now and then, a stray byte now and then.
        // Not made: a leading `+` and 20 digits with leading zeros, which std's parser takes and
        // COPY never prints.
        let mut rng = Rng::new("integers");
        for _ in 0..300_000 {
            let mut text: Vec<u8> = Vec::new();
            if rng.below(3) == 0 {
                text.push(b'-');
            }
            let len = rng.below(20);
            text.extend((0..len).map(|_| *rng.pick(b"0123456789")));
            if !text.is_empty() && rng.below(8) == 0 {
                let at = rng.below(text.len());
                text[at] = *rng.pick(b"-./:x \xff");
            }
            let std = std::str::from_utf8(&text)
                .ok()
                .filter(|t| !t.starts_with('+'))
                .and_then(|t| t.parse::<i64>().ok());
            assert_eq!(parse_int(&text), std, "{}", String::from_utf8_lossy(&text));
        }
    }

    #[test]
    fn int2() {
        let array = decode(
            &PgType::Int2,
            &[
                Some("0"),
                Some("32767"),
                Some("-32768"),
                None,
                Some("-0"),
                Some("007"),
            ],
        );
        let values: Vec<_> = array.as_primitive::<Int16Type>().iter().collect();
        assert_eq!(
            values,
            vec![
                Some(0),
                Some(i16::MAX),
                Some(i16::MIN),
                None,
                Some(0),
                Some(7)
            ]
        );
        assert_rejects(&PgType::Int2, "int2", &["32768", "-32769", "99999999999"]);
    }

    #[test]
    fn int4() {
        let array = decode(
            &PgType::Int4,
            &[Some("2147483647"), Some("-2147483648"), Some("42"), None],
        );
        let values: Vec<_> = array.as_primitive::<Int32Type>().iter().collect();
        assert_eq!(values, vec![Some(i32::MAX), Some(i32::MIN), Some(42), None]);
        assert_rejects(&PgType::Int4, "int4", &["2147483648", "-2147483649"]);
    }

    #[test]
    fn int8() {
        let array = decode(
            &PgType::Int8,
            &[
                Some("9223372036854775807"),
                Some("-9223372036854775808"),
                Some("-1"),
                None,
            ],
        );
        let values: Vec<_> = array.as_primitive::<Int64Type>().iter().collect();
        assert_eq!(values, vec![Some(i64::MAX), Some(i64::MIN), Some(-1), None]);
        assert_rejects(
            &PgType::Int8,
            "int8",
            &[
                "9223372036854775808",
                "-9223372036854775809",
                "18446744073709551615",
                "18446744073709551616",
                "99999999999999999999",
                "00000000000000000001",
            ],
        );
    }

    #[test]
    fn malformed_integers() {
        let bad = [
            "", "-", "--1", "+1", " 1", "1 ", "1.0", "1e3", "0x1f", "1_000", "١",
        ];
        for (ty, name) in [
            (PgType::Int2, "int2"),
            (PgType::Int4, "int4"),
            (PgType::Int8, "int8"),
        ] {
            assert_rejects(&ty, name, &bad);
        }
    }

    // --- Floats.

    #[test]
    fn float4() {
        let array = decode(
            &PgType::Float4,
            &[
                Some("1.5"),
                Some("-0"),
                Some("3.4028235e+38"),
                Some("1e-45"),
                Some("Infinity"),
                Some("-Infinity"),
                Some("NaN"),
                None,
            ],
        );
        let array = array.as_primitive::<Float32Type>();
        assert_eq!(array.value(0), 1.5);
        assert!(array.value(1) == 0.0 && array.value(1).is_sign_negative());
        assert_eq!(array.value(2), f32::MAX);
        assert_eq!(array.value(3), f32::from_bits(1));
        assert_eq!(array.value(4), f32::INFINITY);
        assert_eq!(array.value(5), f32::NEG_INFINITY);
        assert!(array.value(6).is_nan());
        assert!(array.is_null(7));
        assert_rejects(&PgType::Float4, "float4", &["", "abc", "1.5x", "1,5"]);
    }

    #[test]
    fn float8() {
        let array = decode(
            &PgType::Float8,
            &[
                Some("0.1"),
                Some("-1.7976931348623157e+308"),
                Some("5e-324"),
                Some("Infinity"),
                Some("-Infinity"),
                Some("NaN"),
                Some("123456789012345680"),
            ],
        );
        let array = array.as_primitive::<Float64Type>();
        assert_eq!(array.value(0), 0.1);
        assert_eq!(array.value(1), f64::MIN);
        assert_eq!(array.value(2), f64::from_bits(1));
        assert_eq!(array.value(3), f64::INFINITY);
        assert_eq!(array.value(4), f64::NEG_INFINITY);
        assert!(array.value(5).is_nan());
        assert_eq!(array.value(6), 123_456_789_012_345_680.0);
        assert_rejects(&PgType::Float8, "float8", &["", "-", "one", "1.0.0"]);
    }

    // --- Numeric.

    fn decimals(ty: &PgType, values: &[Option<&str>]) -> Vec<Option<i128>> {
        decode(ty, values)
            .as_primitive::<Decimal128Type>()
            .iter()
            .collect()
    }

    #[test]
    fn numeric_exact_with_scale_padding() {
        let ty = numeric(10, 2);
        assert_eq!(
            decimals(
                &ty,
                &[
                    Some("123.45"),
                    Some("-123.45"),
                    Some("5"),
                    Some("5.1"),
                    Some("0.05"),
                    Some("-0.05"),
                    Some("0"),
                    Some("-0"),
                    Some("99999999.99"),
                    Some("-99999999.99"),
                    Some(".5"),
                    None,
                ]
            ),
            vec![
                Some(12345),
                Some(-12345),
                Some(500),
                Some(510),
                Some(5),
                Some(-5),
                Some(0),
                Some(0),
                Some(9_999_999_999),
                Some(-9_999_999_999),
                Some(50),
                None
            ]
        );
        let array = decode(&ty, &[Some("1.00")]);
        assert_eq!(array.data_type(), &DataType::Decimal128(10, 2));
    }

    #[test]
    fn numeric_scale_zero() {
        assert_eq!(
            decimals(&numeric(5, 0), &[Some("12345"), Some("-7")]),
            vec![Some(12345), Some(-7)]
        );
        assert_rejects(&numeric(5, 0), "numeric", &["1.5", "123456"]);
    }

    #[test]
    fn numeric_wide_values() {
        // 18 digits and fewer take the i64 path, more the i128 one.
        assert_eq!(
            decimals(
                &numeric(18, 0),
                &[Some("999999999999999999"), Some("-999999999999999999")]
            ),
            vec![
                Some(999_999_999_999_999_999),
                Some(-999_999_999_999_999_999)
            ]
        );
        assert_eq!(
            decimals(
                &numeric(20, 5),
                &[Some("123456789012345.12345"), Some("-1")]
            ),
            vec![Some(12_345_678_901_234_512_345), Some(-100_000)]
        );
        let max38 = "9".repeat(38);
        assert_eq!(
            decimals(&numeric(38, 0), &[Some(&max38), Some(&format!("-{max38}"))]),
            vec![
                Some(99_999_999_999_999_999_999_999_999_999_999_999_999),
                Some(-99_999_999_999_999_999_999_999_999_999_999_999_999)
            ]
        );
        assert_eq!(
            decimals(
                &numeric(38, 10),
                &[Some("1234567890123456789012345678.1234567891")]
            ),
            vec![Some(12_345_678_901_234_567_890_123_456_781_234_567_891)]
        );
        assert_eq!(
            decimals(
                &numeric(38, 38),
                &[Some("0.12345678901234567890123456789012345678")]
            ),
            vec![Some(12_345_678_901_234_567_890_123_456_789_012_345_678)]
        );
    }

    #[test]
    fn numeric_too_many_digits() {
        // More fraction digits than the scale.
        assert_rejects(&numeric(10, 2), "numeric", &["1.234", "0.001"]);
        // More digits than the precision, though they fit an i128 (10^38).
        let ten_to_38 = format!("1{}", "0".repeat(38));
        assert_eq!(
            parse_decimal(ten_to_38.as_bytes(), 0),
            Some(10_i128.pow(38))
        );
        assert_rejects(&numeric(38, 0), "numeric", &[&ten_to_38]);
        assert_rejects(&numeric(5, 2), "numeric", &["1234.5", "-1000"]);
        // More than an i128 holds.
        let huge = "9".repeat(40);
        assert_eq!(parse_decimal(huge.as_bytes(), 0), None);
        assert_eq!(parse_decimal(b"1", 38), Some(10_i128.pow(38)));
        assert_eq!(parse_decimal(b"100", 38), None);
        assert_rejects(&numeric(38, 0), "numeric", &[&huge]);
    }

    #[test]
    fn numeric_nan_is_null_and_unrepresentable() {
        let mut column = Column::new(&numeric(10, 2));
        assert_eq!(column.append(Some(b"1.5")), Ok(true));
        assert_eq!(column.append(Some(b"NaN")), Ok(false));
        assert_eq!(column.append(None), Ok(true));
        let array = column.finish();
        let values: Vec<_> = array.as_primitive::<Decimal128Type>().iter().collect();
        assert_eq!(values, vec![Some(150), None, None]);
    }

    #[test]
    fn malformed_numerics() {
        assert_rejects(
            &numeric(10, 2),
            "numeric",
            &[
                "",
                "-",
                ".",
                "-.",
                "1.2.3",
                "1e5",
                "+1",
                "--1",
                " 1",
                "1 ",
                "1,5",
                "nan",
                "Infinity",
                "-Infinity",
                "1-",
                "0x10",
            ],
        );
        assert_eq!(parse_decimal(b"1.5", -1), None, "negative scale");
    }

    #[test]
    fn unconstrained_numeric_is_exact_text() {
        let long = format!("{}.{}", "1".repeat(50), "2".repeat(30));
        let values = [Some("NaN"), Some("-0.000001"), Some(long.as_str()), None];
        assert_eq!(
            strings(&decode(&PgType::NumericText, &values)),
            values
                .iter()
                .map(|v| v.map(str::to_owned))
                .collect::<Vec<_>>()
        );
    }

    // --- Booleans and text.

    #[test]
    fn bool() {
        let array = decode(&PgType::Bool, &[Some("t"), Some("f"), None]);
        let values: Vec<_> = array.as_boolean().iter().collect();
        assert_eq!(values, vec![Some(true), Some(false), None]);
        assert_rejects(
            &PgType::Bool,
            "bool",
            &["", "true", "false", "T", "F", "1", "0", "yes", "tt"],
        );
    }

    #[test]
    fn text_like_types_pass_through() {
        let cases: [(PgType, &[Option<&str>]); 7] = [
            (
                PgType::Text,
                &[Some(""), Some("żółć 🦀"), Some("a\tb\nc\\"), None],
            ),
            (
                PgType::Interval,
                &[
                    Some("P1Y2M3DT4H5M6.5S"),
                    Some("PT0S"),
                    Some("P-1DT-0.000001S"),
                ],
            ),
            (
                PgType::Uuid,
                &[Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), None],
            ),
            (
                PgType::Json,
                &[Some("{\"a\": [1, null, \"x\"]}"), Some("null"), None],
            ),
            (PgType::Enum, &[Some("happy"), None]),
            (PgType::Fallback("point".into()), &[Some("(1,2)")]),
            (PgType::NumericText, &[Some("12.50")]),
        ];
        for (ty, values) in cases {
            let expected: Vec<_> = values.iter().map(|v| v.map(str::to_owned)).collect();
            assert_eq!(strings(&decode(&ty, values)), expected, "{ty:?}");
        }
    }

    #[test]
    fn invalid_utf8_is_an_error_naming_the_value() {
        for ty in [PgType::Text, PgType::Json, PgType::Float8, PgType::Time] {
            assert_eq!(
                error(&ty, b"ab\xffcd"),
                "`ab\u{fffd}cd` is not a valid UTF-8 text",
                "{ty:?}"
            );
        }
    }

    #[test]
    fn long_values_are_cut_in_errors() {
        let long = "x".repeat(100);
        assert_eq!(
            error(&PgType::Int4, long.as_bytes()),
            format!("`{}` is not a valid int4", "x".repeat(60))
        );
    }

    // --- bytea.

    #[test]
    fn bytea_hex() {
        let array = decode(
            &PgType::Bytea,
            &[Some("\\x0102"), Some("\\x"), Some("\\xDEADbeef"), None],
        );
        let values: Vec<_> = array.as_binary::<i32>().iter().collect();
        assert_eq!(
            values,
            vec![
                Some(&[1u8, 2][..]),
                Some(&[][..]),
                Some(&[0xde, 0xad, 0xbe, 0xef][..]),
                None
            ]
        );
    }

    #[test]
    fn bytea_from_a_copy_row() {
        let mut splitter = crate::copy_text::RowSplitter::default();
        let row = splitter.split(b"\\\\x0102\t\\N");
        let mut column = Column::new(&PgType::Bytea);
        column.append(row.field(0)).unwrap();
        column.append(row.field(1)).unwrap();
        let array = column.finish();
        let values: Vec<_> = array.as_binary::<i32>().iter().collect();
        assert_eq!(values, vec![Some(&[1u8, 2][..]), None]);
    }

    #[test]
    fn malformed_bytea() {
        assert_rejects(
            &PgType::Bytea,
            "bytea",
            &[
                "", "0102", "\\x010", "\\x0g", "x0102", "\\X0102", "\\x 1",
                // Escape format, which bytea_output = hex rules out.
                "\\001abc", // `u8::from_str_radix` took `+1` for 0x01.
                "\\x+1", "\\x-1",
                // Multibyte text: slicing the string by two bytes panicked.
                "\\xaéb", "\\xé", "\\x🦀",
            ],
        );
    }

    // --- Dates.

    fn dates(values: &[Option<&str>]) -> Vec<Option<i32>> {
        decode(&PgType::Date, values)
            .as_primitive::<Date32Type>()
            .iter()
            .collect()
    }

    #[test]
    fn date() {
        assert_eq!(
            dates(&[
                Some("1970-01-01"),
                Some("1969-12-31"),
                Some("2024-02-29"),
                Some("2000-02-29"),
                Some("0001-01-01"),
                Some("10000-01-01"),
                Some("5874897-12-31"),
                None,
            ]),
            vec![
                Some(0),
                Some(-1),
                Some(19_782),
                Some(11_016),
                Some(-719_162),
                Some(2_932_897),
                Some(2_145_042_905),
                None
            ]
        );
    }

    #[test]
    fn the_fast_date_path_agrees_with_the_general_one_for_every_four_digit_date() {
        // Every YYYY-MM-DD, real or not (months 0-13, days 0-32, leap and century years).
        let mut text = *b"0000-00-00";
        let put = |text: &mut [u8; 10], at: usize, width: usize, mut n: u32| {
            for i in (at..at + width).rev() {
                text[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        let mut valid = 0;
        for year in 0..=9999 {
            put(&mut text, 0, 4, year);
            for month in 0..=13 {
                put(&mut text, 5, 2, month);
                for day in 0..=32 {
                    put(&mut text, 8, 2, day);
                    let general = std::str::from_utf8(&text)
                        .ok()
                        .and_then(|t| parse_ymd(t, false));
                    let fast = parse_date(&text);
                    assert_eq!(
                        fast.map(i64::from),
                        general,
                        "{}",
                        String::from_utf8_lossy(&text)
                    );
                    valid += u32::from(fast.is_some());
                }
            }
        }
        assert_eq!(valid, 9999 * 365 + 9999 / 4 - 9999 / 100 + 9999 / 400);
    }

    #[test]
    fn day_numbers_are_the_days_they_count_and_agree_with_the_dates_text() {
        // What `date_as_day_number` selects for 1970-01-01, 1969-12-31, 2024-02-29, the first
        // and last days PostgreSQL knows, and the infinities.
        let numbers = [
            "0",
            "-1",
            "19782",
            "-2440588",
            "2145042905",
            "2147483647",
            "-2147483648",
        ];
        let texts = [
            "1970-01-01",
            "1969-12-31",
            "2024-02-29",
            "4714-11-24 BC",
            "5874897-12-31",
            "infinity",
            "-infinity",
        ];
        let from_numbers = dates(&numbers.map(Some));
        assert_eq!(from_numbers, dates(&texts.map(Some)));
        assert_eq!(
            from_numbers,
            numbers.map(|n| Some(n.parse::<i32>().unwrap()))
        );
        assert_rejects(
            &PgType::Date,
            "date",
            &[
                "2147483648",
                "-2147483649",
                "99999999999999999999",
                "-",
                "1-",
            ],
        );
    }

    #[test]
    fn date_infinities() {
        assert_eq!(
            dates(&[Some("infinity"), Some("-infinity")]),
            vec![Some(i32::MAX), Some(i32::MIN)]
        );
        assert_rejects(&PgType::Date, "date", &["Infinity", "inf", "+infinity"]);
    }

    #[test]
    fn date_bc() {
        // 1 BC is year 0, a leap year; 4714-11-24 BC is the first day PostgreSQL knows (Julian
        // day 0).
        assert_eq!(
            dates(&[
                Some("0001-12-31 BC"),
                Some("0001-01-01 BC"),
                Some("0001-02-29 BC"),
                Some("4714-11-24 BC"),
            ]),
            vec![
                Some(-719_163),
                Some(-719_528),
                Some(-719_469),
                Some(-2_440_588)
            ]
        );
    }

    #[test]
    fn malformed_dates() {
        assert_rejects(
            &PgType::Date,
            "date",
            &[
                // Digits alone are a day number (`day_numbers_are_the_days_they_count...`).
                "",
                "2024-01",
                "2024-1-1x",
                "2024/01/01",
                "2024-13-01",
                "2024-00-10",
                "2024-01-00",
                "2024-01-32",
                // Days past the month's end: they were taken for days of the next month.
                "2024-02-30",
                "2023-02-29",
                "1900-02-29",
                "2024-04-31",
                "0002-02-29 BC",
                // There is no year 0.
                "0000-01-01",
                "0000-01-01 BC",
                "2024-01-01 AD",
                "2024-01-01BC",
                "-2024-01-01",
                "+2024-01-01",
                "2024-+1-01",
                "2024-01-+1",
                "2024-01-01 00:00:00",
                " 2024-01-01",
                // Past an i32 of days.
                "9999999-01-01",
                // Years too large for the calendar arithmetic overflowed it.
                "99999999-01-01",
                "9223372036854775807-12-31",
            ],
        );
    }

    // --- Times.

    #[test]
    fn time() {
        let array = decode(
            &PgType::Time,
            &[
                Some("00:00:00"),
                Some("13:45:07.25"),
                Some("23:59:59.999999"),
                Some("24:00:00"),
                Some("00:00:00.000001"),
                None,
            ],
        );
        let values: Vec<_> = array
            .as_primitive::<Time64MicrosecondType>()
            .iter()
            .collect();
        assert_eq!(
            values,
            vec![
                Some(0),
                Some(49_507_250_000),
                Some(DAY - 1),
                Some(DAY),
                Some(1),
                None
            ]
        );
    }

    #[test]
    fn time_fractions_of_one_to_six_digits() {
        let cases = [
            ("12:00:00.1", 100_000),
            ("12:00:00.12", 120_000),
            ("12:00:00.123", 123_000),
            ("12:00:00.1234", 123_400),
            ("12:00:00.12345", 123_450),
            ("12:00:00.123456", 123_456),
            ("12:00:00.000010", 10),
        ];
        for (text, micros) in cases {
            assert_eq!(parse_time(text), Some(12 * HOUR + micros), "{text}");
        }
    }

    #[test]
    fn malformed_times() {
        assert_rejects(
            &PgType::Time,
            "time",
            &[
                "",
                "12",
                "12:00",
                "12:00:00.1234567",
                "12:00:00.",
                "12:00:00.1a",
                "12:00:00.-1",
                "12:00:00 ",
                "24:00:01",
                "24:00:00.000001",
                "25:00:00",
                "12:60:00",
                "12:00:60",
                "-1:00:00",
                "12:-1:00",
                "12:00:-1",
                "+1:00:00",
                "12:00:00:00",
                "12:00:00+00",
                "ab:cd:ef",
                // Hours this large overflowed the arithmetic.
                "9223372036854775807:00:00",
                "99999999999:00:00",
            ],
        );
    }

    // --- Timestamps.

    fn timestamps(ty: &PgType, values: &[Option<&str>]) -> Vec<Option<i64>> {
        decode(ty, values)
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .collect()
    }

    #[test]
    fn timestamp() {
        assert_eq!(
            timestamps(
                &PgType::Timestamp,
                &[
                    Some("1970-01-01 00:00:00"),
                    Some("2024-02-29 13:45:07.25"),
                    Some("1969-12-31 23:59:59.999999"),
                    Some("0001-12-31 23:59:59 BC"),
                    Some("294246-01-01 00:00:00"),
                    None,
                ]
            ),
            vec![
                Some(0),
                Some(1_709_214_307_250_000),
                Some(-1),
                Some(-62_135_596_801_000_000),
                Some(9_223_339_708_800_000_000),
                None
            ]
        );
        let array = decode(&PgType::Timestamp, &[Some("2024-01-01 00:00:00")]);
        assert_eq!(
            array.data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, None)
        );
    }

    #[test]
    fn timestamp_fractions_of_one_to_six_digits() {
        let midnight = 19_723 * DAY; // 2024-01-01
        let cases = [
            ("2024-01-01 00:00:00.5", 500_000),
            ("2024-01-01 00:00:00.05", 50_000),
            ("2024-01-01 00:00:00.123", 123_000),
            ("2024-01-01 00:00:00.1234", 123_400),
            ("2024-01-01 00:00:00.12345", 123_450),
            ("2024-01-01 00:00:00.123456", 123_456),
        ];
        for (text, micros) in cases {
            assert_eq!(parse_timestamp(text), Some(midnight + micros), "{text}");
        }
        assert_eq!(parse_timestamp("2024-01-01 00:00:00.1234567"), None);
    }

    #[test]
    fn timestamp_infinities() {
        for ty in [PgType::Timestamp, PgType::Timestamptz] {
            assert_eq!(
                timestamps(&ty, &[Some("infinity"), Some("-infinity")]),
                vec![Some(i64::MAX), Some(i64::MIN)]
            );
        }
    }

    #[test]
    fn timestamptz_offsets_to_utc() {
        let noon = 19_723 * DAY + 12 * HOUR; // 2024-01-01 12:00 UTC
        let cases = [
            ("2024-01-01 12:00:00+00", noon),
            ("2024-01-01 12:00:00+05:30", 1_704_090_600_000_000),
            ("2024-01-01 12:00:00-08", 1_704_139_200_000_000),
            ("2024-01-01 12:00:00+09:00", 1_704_078_000_000_000),
            ("2024-01-01 00:30:00+01", 1_704_065_400_000_000),
            (
                "2024-01-01 12:00:00.5-03:30",
                noon + 3 * HOUR + HOUR / 2 + 500_000,
            ),
            // Local mean time offsets carry seconds.
            ("2024-01-01 12:00:00+00:53:28", noon - 3_208_000_000),
            ("0001-01-01 00:00:00+00 BC", -719_528 * DAY),
        ];
        for (text, utc) in cases {
            assert_eq!(parse_timestamp(text), Some(utc), "{text}");
        }
        assert_eq!(noon, 1_704_110_400_000_000);
        let array = decode(
            &PgType::Timestamptz,
            &[Some("2024-01-01 12:00:00+05:30"), None],
        );
        assert_eq!(
            array.data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
        );
        let values: Vec<_> = array
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .collect();
        assert_eq!(values, vec![Some(1_704_090_600_000_000), None]);
    }

    #[test]
    fn malformed_timestamps() {
        for ty in [PgType::Timestamp, PgType::Timestamptz] {
            assert_rejects(
                &ty,
                "timestamp",
                &[
                    "",
                    "2024-01-01",
                    "2024-01-01T00:00:00",
                    "2024-01-01  00:00:00",
                    "2024-01-01 00:00",
                    "2024-02-30 00:00:00",
                    "2024-01-01 25:00:00",
                    "2024-01-01 00:00:00+",
                    "2024-01-01 00:00:00+5:3x",
                    "2024-01-01 00:00:00+05:60",
                    "2024-01-01 00:00:00+05:30:60",
                    "2024-01-01 00:00:00+05:30:00:00",
                    "2024-01-01 00:00:00+123",
                    "2024-01-01 00:00:00 UTC",
                    "Infinity",
                    "0000-01-01 00:00:00",
                    // Offsets this large overflowed the arithmetic.
                    "2024-01-01 00:00:00+9223372036854775807",
                    "2024-01-01 00:00:00-99999999999:00",
                    // Past an i64 of microseconds since 1970 (PostgreSQL goes to 294276).
                    "294247-01-11 00:00:00",
                    "294276-12-31 23:59:59.999999",
                    "9999999-01-01 00:00:00",
                ],
            );
        }
    }

    // --- Arrays.

    /// The elements of each list, `None` for a NULL list.
    fn lists<T>(array: &ArrayRef, element: impl Fn(&ArrayRef) -> Vec<T>) -> Vec<Option<Vec<T>>> {
        let list = array.as_list::<i32>();
        (0..list.len())
            .map(|i| (!list.is_null(i)).then(|| element(&list.value(i))))
            .collect()
    }

    #[test]
    fn int_arrays() {
        let ty = PgType::Array(Box::new(PgType::Int4));
        let array = decode(
            &ty,
            &[
                Some("{1,2,3}"),
                Some("{}"),
                None,
                Some("{NULL,-5}"),
                Some("{7}"),
            ],
        );
        let values = lists(&array, |a| {
            a.as_primitive::<Int32Type>().iter().collect::<Vec<_>>()
        });
        assert_eq!(
            values,
            vec![
                Some(vec![Some(1), Some(2), Some(3)]),
                Some(vec![]),
                None,
                Some(vec![None, Some(-5)]),
                Some(vec![Some(7)])
            ]
        );
        assert_eq!(array.null_count(), 1);
    }

    #[test]
    fn text_arrays_with_quoting_and_escapes() {
        let ty = PgType::Array(Box::new(PgType::Text));
        let array = decode(
            &ty,
            &[
                Some(r#"{plain,"a b","x\"y","back\\slash","NULL",NULL,"","{}",",","żółć"}"#),
                Some("{}"),
            ],
        );
        let values = lists(&array, strings);
        let expected: Vec<Option<String>> = [
            Some("plain"),
            Some("a b"),
            Some("x\"y"),
            Some("back\\slash"),
            Some("NULL"),
            None,
            Some(""),
            Some("{}"),
            Some(","),
            Some("żółć"),
        ]
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect();
        assert_eq!(values, vec![Some(expected), Some(vec![])]);
    }

    #[test]
    fn array_with_lower_bound_other_than_one() {
        // `'[0:2]={1,2,3}'::int[]` prints its bounds; that was rejected as not an array.
        assert_eq!(
            parse_array("[0:2]={1,2,3}"),
            Some(vec![Some("1".into()), Some("2".into()), Some("3".into())])
        );
        assert_eq!(parse_array("[-1:-1]={x}"), Some(vec![Some("x".into())]));
    }

    #[test]
    fn arrays_of_other_types() {
        let array = decode(
            &PgType::Array(Box::new(numeric(5, 2))),
            &[Some("{1.5,-0.25}")],
        );
        let values = lists(&array, |a| {
            a.as_primitive::<Decimal128Type>()
                .iter()
                .collect::<Vec<_>>()
        });
        assert_eq!(values, vec![Some(vec![Some(150), Some(-25)])]);

        let array = decode(
            &PgType::Array(Box::new(PgType::Date)),
            &[Some("{2024-02-29,infinity,NULL}")],
        );
        let values = lists(&array, |a| {
            a.as_primitive::<Date32Type>().iter().collect::<Vec<_>>()
        });
        assert_eq!(values, vec![Some(vec![Some(19_782), Some(i32::MAX), None])]);

        let array = decode(
            &PgType::Array(Box::new(PgType::Timestamptz)),
            &[Some(r#"{"2024-01-01 12:00:00+05:30"}"#)],
        );
        let values = lists(&array, |a| {
            a.as_primitive::<TimestampMicrosecondType>()
                .iter()
                .collect::<Vec<_>>()
        });
        assert_eq!(values, vec![Some(vec![Some(1_704_090_600_000_000)])]);

        let array = decode(&PgType::Array(Box::new(PgType::Bool)), &[Some("{t,f}")]);
        let values = lists(&array, |a| a.as_boolean().iter().collect::<Vec<_>>());
        assert_eq!(values, vec![Some(vec![Some(true), Some(false)])]);

        // bytea elements hold a backslash, so they are quoted and it is doubled.
        let array = decode(
            &PgType::Array(Box::new(PgType::Bytea)),
            &[Some(r#"{"\\x0102",NULL}"#)],
        );
        let values = lists(&array, |a| {
            a.as_binary::<i32>()
                .iter()
                .map(|v| v.map(<[u8]>::to_vec))
                .collect::<Vec<_>>()
        });
        assert_eq!(values, vec![Some(vec![Some(vec![1, 2]), None])]);

        let array = decode(
            &PgType::Array(Box::new(PgType::Json)),
            &[Some(r#"{"{\"a\": 1}",null}"#)],
        );
        // Only the upper-case NULL is the null marker; `null` is the JSON text.
        assert_eq!(
            lists(&array, strings),
            vec![Some(vec![Some("{\"a\": 1}".into()), Some("null".into())])]
        );
    }

    #[test]
    fn array_with_numeric_nan_reports_unrepresentable() {
        let mut column = Column::new(&PgType::Array(Box::new(numeric(5, 2))));
        assert_eq!(column.append(Some(b"{1.5,NaN}")), Ok(false));
        assert_eq!(column.append(Some(b"{2}")), Ok(true));
        let array = column.finish();
        let values = lists(&array, |a| {
            a.as_primitive::<Decimal128Type>()
                .iter()
                .collect::<Vec<_>>()
        });
        assert_eq!(
            values,
            vec![Some(vec![Some(150), None]), Some(vec![Some(200)])]
        );
    }

    #[test]
    fn nested_and_malformed_arrays_are_errors() {
        let ty = PgType::Array(Box::new(PgType::Int4));
        assert_rejects(
            &ty,
            "array",
            &[
                "{{1,2},{3,4}}",
                "{1,{2}}",
                "[1:2][1:2]={{1,2},{3,4}}",
                "",
                "{",
                "}",
                "1,2",
                "{1,2",
                "[0:1]{1,2}",
                "[0:1=",
                r#"{"a}"#,
                r#"{"a"b}"#,
                r#"{"a\"#,
            ],
        );
        // An element that does not decode names the element.
        assert_eq!(error(&ty, b"{1,x}"), "`x` is not a valid int4");
        assert_eq!(error(&ty, b"{1,,2}"), "`` is not a valid int4");
    }

    #[test]
    fn list_finish_resets_the_builder() {
        let ty = PgType::Array(Box::new(PgType::Int2));
        let mut column = Column::new(&ty);
        column.append(Some(b"{1,2}")).unwrap();
        let first = column.finish();
        column.append(None).unwrap();
        column.append(Some(b"{3}")).unwrap();
        let second = column.finish();
        let ints = |a: &ArrayRef| a.as_primitive::<Int16Type>().iter().collect::<Vec<_>>();
        assert_eq!(lists(&first, ints), vec![Some(vec![Some(1), Some(2)])]);
        assert_eq!(lists(&second, ints), vec![None, Some(vec![Some(3)])]);
    }

    // --- Fuzzing: no input panics.

    fn every_type() -> Vec<PgType> {
        let scalars = vec![
            PgType::Int2,
            PgType::Int4,
            PgType::Int8,
            PgType::Float4,
            PgType::Float8,
            numeric(10, 2),
            numeric(38, 0),
            numeric(38, 38),
            numeric(18, 4),
            PgType::NumericText,
            PgType::Bool,
            PgType::Text,
            PgType::Bytea,
            PgType::Date,
            PgType::Time,
            PgType::Timestamp,
            PgType::Timestamptz,
            PgType::Interval,
            PgType::Uuid,
            PgType::Json,
            PgType::Enum,
            PgType::Fallback("point".into()),
        ];
        let arrays: Vec<_> = scalars
            .iter()
            .map(|ty| PgType::Array(Box::new(ty.clone())))
            .collect();
        scalars.into_iter().chain(arrays).collect()
    }

    /// Valid values of every shape, mutated by the fuzzer.
    const SEEDS: &[&str] = &[
        "-9223372036854775808",
        "32767",
        "123.45",
        "-0.000000001",
        "NaN",
        "-Infinity",
        "1.7976931348623157e+308",
        "t",
        "\\xdeadbeef",
        "2024-02-29",
        "4714-11-24 BC",
        "5874897-12-31",
        "infinity",
        "13:45:07.123456",
        "24:00:00",
        "2024-02-29 13:45:07.25+05:30",
        "0001-12-31 23:59:59-08 BC",
        "294276-12-31 23:59:59.999999+00:53:28",
        "{1,NULL,\"a b\",\"x\\\"y\"}",
        "[0:2]={1,2,3}",
        "{{1,2},{3,4}}",
        "{\"2024-01-01 00:00:00\",NULL}",
        "{\"\\\\x0102\"}",
    ];

    fn fuzz_input(rng: &mut Rng) -> Vec<u8> {
        const BYTES: &[u8] = b"0123456789-+:. {}[]=\",\\NULLxaefBCinfty\xc3\xa9\xff";
        let mut input: Vec<u8> = if rng.below(3) == 0 {
            Vec::new()
        } else {
            rng.pick(SEEDS).as_bytes().to_vec()
        };
        for _ in 0..rng.below(6) {
            let byte = if rng.below(4) == 0 {
                rng.next() as u8
            } else {
                *rng.pick(BYTES)
            };
            let at = rng.below(input.len() + 1);
            match rng.below(3) {
                0 => input.insert(at, byte),
                1 if at < input.len() => input[at] = byte,
                _ if at < input.len() => {
                    input.remove(at);
                }
                _ => input.push(byte),
            }
        }
        if rng.below(20) == 0 {
            // A long run of digits, for overflow.
            let digits: String = (0..20 + rng.below(30))
                .map(|_| char::from(b'0' + rng.below(10) as u8))
                .collect();
            let at = rng.below(input.len() + 1);
            let tail = input.split_off(at);
            input.extend(digits.bytes());
            input.extend(tail);
        }
        input
    }

    #[test]
    fn fuzz_decoders_never_panic() {
        let mut rng = Rng::new("fuzz_decoders_never_panic");
        let types = every_type();
        let mut columns: Vec<Column> = types.iter().map(Column::new).collect();
        for round in 0..5_000 {
            let input = fuzz_input(&mut rng);
            let shown = String::from_utf8_lossy(&input).into_owned();
            for (ty, column) in types.iter().zip(&mut columns) {
                let result = catch_unwind(AssertUnwindSafe(|| column.append(Some(&input))));
                match result {
                    Ok(Err(e)) => assert!(
                        e.contains("is not a valid"),
                        "{ty:?} `{shown}`: error `{e}` does not name the value"
                    ),
                    Ok(Ok(_)) => {}
                    Err(_) => panic!("{ty:?} panicked on `{shown}` ({input:?})"),
                }
            }
            let text = std::str::from_utf8(&input).ok();
            let direct = catch_unwind(|| {
                let _ = parse_decimal(&input, 2);
                let _ = parse_decimal(&input, 38);
                let _ = parse_int(&input);
                let _ = parse_date(&input);
                if let Some(text) = text {
                    let _ = parse_time(text);
                    let _ = parse_timestamp(text);
                    let _ = parse_array(text);
                    let _ = parse_bytea(text);
                }
            });
            assert!(direct.is_ok(), "a parser panicked on `{shown}` ({input:?})");
            if round % 500 == 499 {
                for (ty, column) in types.iter().zip(&mut columns) {
                    let finished = catch_unwind(AssertUnwindSafe(|| column.finish()));
                    assert!(finished.is_ok(), "{ty:?}: finish panicked");
                }
            }
        }
    }
}
