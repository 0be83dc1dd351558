//! Firestore's typed values (`{"integerValue": "7"}`, `{"mapValue": {...}}`...) as Arrow: each
//! batch's schema is inferred from its documents, and values become the plain JSON arrow-json
//! decodes into that schema.
//!
//! | Firestore | Arrow |
//! |---|---|
//! | nullValue | null (a column only ever null is Utf8) |
//! | booleanValue | Boolean |
//! | integerValue | Int64 |
//! | doubleValue | Float64 (integers and doubles in one field: Float64) |
//! | timestampValue | Timestamp(µs, UTC) |
//! | stringValue | Utf8 |
//! | bytesValue | Binary |
//! | referenceValue | Utf8 (the document's resource name) |
//! | geoPointValue | Struct{latitude, longitude: Float64} |
//! | arrayValue | List of the elements' common type |
//! | mapValue | Struct of its fields, or Utf8 JSON (`maps = "json"`) |

use base64::Engine;
use inlet_sdk::prelude::{DataType, Field, TimeUnit};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// How map fields are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MapMode {
    /// A struct column with one child per key (keys across documents are merged).
    #[default]
    Struct,
    /// A JSON text column (`arrow.json`), for maps whose keys are data.
    Json,
}

/// The type a field has in some documents.
#[derive(Debug, Clone, PartialEq)]
pub enum FsType {
    Null,
    Bool,
    Int,
    Double,
    Timestamp,
    String,
    Bytes,
    Reference,
    GeoPoint,
    Array(Box<FsType>),
    Map(BTreeMap<String, FsType>),
    Json,
}

impl FsType {
    /// The type of one value.
    pub fn of(value: &Value, maps: MapMode) -> Result<Self, String> {
        let object = value.as_object().ok_or("a value is not an object")?;
        let (kind, inner) = object.iter().next().ok_or("a value has no type")?;
        Ok(match kind.as_str() {
            "nullValue" => Self::Null,
            "booleanValue" => Self::Bool,
            "integerValue" => Self::Int,
            "doubleValue" => Self::Double,
            "timestampValue" => Self::Timestamp,
            "stringValue" => Self::String,
            "bytesValue" => Self::Bytes,
            "referenceValue" => Self::Reference,
            "geoPointValue" => Self::GeoPoint,
            "arrayValue" => {
                let mut element = Self::Null;
                for item in inner["values"].as_array().into_iter().flatten() {
                    element = element
                        .unify(&Self::of(item, maps)?)
                        .ok_or("an array holds values of different types")?;
                }
                Self::Array(Box::new(element))
            }
            "mapValue" if maps == MapMode::Json => Self::Json,
            "mapValue" => Self::Map(fields_type(inner["fields"].as_object(), maps)?),
            other => return Err(format!("unknown value type `{other}`")),
        })
    }

    /// The type both `self` and `other` fit, or `None` when they conflict.
    pub fn unify(&self, other: &Self) -> Option<Self> {
        use FsType::*;
        Some(match (self, other) {
            (Null, t) | (t, Null) => t.clone(),
            (Int, Double) | (Double, Int) => Double,
            (Array(a), Array(b)) => Array(Box::new(a.unify(b)?)),
            (Map(a), Map(b)) => {
                let mut merged = a.clone();
                for (key, t) in b {
                    let unified = match merged.get(key) {
                        Some(existing) => existing.unify(t)?,
                        None => t.clone(),
                    };
                    merged.insert(key.clone(), unified);
                }
                Map(merged)
            }
            (a, b) if a == b => a.clone(),
            _ => return None,
        })
    }

    /// The Arrow type.
    pub fn arrow(&self) -> DataType {
        match self {
            Self::Null | Self::String | Self::Reference | Self::Json => DataType::Utf8,
            Self::Bool => DataType::Boolean,
            Self::Int => DataType::Int64,
            Self::Double => DataType::Float64,
            Self::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            Self::Bytes => DataType::Binary,
            Self::GeoPoint => DataType::Struct(
                vec![
                    // proto3 JSON may leave a zero coordinate out.
                    Field::new("latitude", DataType::Float64, true),
                    Field::new("longitude", DataType::Float64, true),
                ]
                .into(),
            ),
            Self::Array(element) => {
                DataType::List(Arc::new(Field::new("item", element.arrow(), true)))
            }
            Self::Map(fields) => DataType::Struct(
                fields
                    .iter()
                    .map(|(name, t)| t.field(name))
                    .collect::<Vec<_>>()
                    .into(),
            ),
        }
    }

    /// A nullable field of this type (JSON maps carry the `arrow.json` extension).
    pub fn field(&self, name: &str) -> Field {
        let field = Field::new(name, self.arrow(), true);
        if *self == Self::Json {
            field.with_metadata(HashMap::from([(
                "ARROW:extension:name".to_owned(),
                "arrow.json".to_owned(),
            )]))
        } else {
            field
        }
    }
}

/// The types of a document's (or map's) fields.
pub fn fields_type(
    fields: Option<&Map<String, Value>>,
    maps: MapMode,
) -> Result<BTreeMap<String, FsType>, String> {
    fields
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            FsType::of(value, maps)
                .map(|t| (name.clone(), t))
                .map_err(|e| format!("field `{name}`: {e}"))
        })
        .collect()
}

/// A typed value as the plain JSON arrow-json reads for its Arrow type.
pub fn plain(value: &Value, maps: MapMode) -> Result<Value, String> {
    let object = value.as_object().ok_or("a value is not an object")?;
    let (kind, inner) = object.iter().next().ok_or("a value has no type")?;
    Ok(match kind.as_str() {
        "nullValue" => Value::Null,
        "integerValue" => {
            let text = inner
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| inner.to_string());
            Value::from(
                text.parse::<i64>()
                    .map_err(|e| format!("integerValue `{text}`: {e}"))?,
            )
        }
        "doubleValue" => match inner {
            // The REST API writes NaN and infinities as strings.
            Value::String(s) => match s.as_str() {
                "NaN" | "Infinity" | "-Infinity" => Value::String(s.clone()),
                _ => Value::from(
                    s.parse::<f64>()
                        .map_err(|e| format!("doubleValue `{s}`: {e}"))?,
                ),
            },
            other => other.clone(),
        },
        "bytesValue" => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(inner.as_str().unwrap_or(""))
                .map_err(|e| format!("bytesValue: {e}"))?;
            Value::String(bytes.iter().map(|b| format!("{b:02x}")).collect())
        }
        "arrayValue" => Value::Array(
            inner["values"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| plain(v, maps))
                .collect::<Result<_, _>>()?,
        ),
        "mapValue" => {
            let fields: Map<String, Value> = inner["fields"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| plain(v, maps).map(|p| (k.clone(), p)))
                .collect::<Result<_, _>>()?;
            match maps {
                MapMode::Struct => Value::Object(fields),
                MapMode::Json => Value::String(Value::Object(fields).to_string()),
            }
        }
        // booleanValue, timestampValue (RFC 3339), stringValue, referenceValue, geoPointValue
        // ({latitude, longitude}) are already what arrow-json reads.
        _ => inner.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn types_unify_or_conflict() {
        assert_eq!(FsType::Int.unify(&FsType::Double), Some(FsType::Double));
        assert_eq!(FsType::Null.unify(&FsType::Bool), Some(FsType::Bool));
        assert_eq!(FsType::Int.unify(&FsType::String), None);
        let a = FsType::of(
            &json!({"mapValue": {"fields": {"x": {"integerValue": "1"}}}}),
            MapMode::Struct,
        )
        .unwrap();
        let b = FsType::of(
            &json!({"mapValue": {"fields": {"y": {"stringValue": "s"}}}}),
            MapMode::Struct,
        )
        .unwrap();
        let FsType::Map(merged) = a.unify(&b).unwrap() else {
            panic!()
        };
        assert_eq!(merged.len(), 2);
    }

    #[test]
    fn values_become_plain_json() {
        let value = json!({"mapValue": {"fields": {
            "n": {"integerValue": "42"},
            "b": {"bytesValue": "AQL/"},
            "tags": {"arrayValue": {"values": [{"stringValue": "a"}, {"nullValue": null}]}},
        }}});
        assert_eq!(
            plain(&value, MapMode::Struct).unwrap(),
            json!({"n": 42, "b": "0102ff", "tags": ["a", null]})
        );
        assert_eq!(
            plain(&value, MapMode::Json).unwrap(),
            json!(r#"{"b":"0102ff","n":42,"tags":["a",null]}"#)
        );
    }
}
