//! One searchStream result row -> one output row: each column's value found at its camelCase
//! path and held to its type (int64 strings parsed exactly, never through a float).

use crate::gaql::{self, FieldType};
use crate::reports::{CUSTOMER_ID, Report};
use inlet_sdk::Error;
use serde_json::{Map, Value};

/// The output row of `result` for `report`, read from account `customer`.
pub fn to_row(report: &Report, customer: i64, result: &Value) -> Result<Value, Error> {
    let mut row = Map::new();
    row.insert(CUSTOMER_ID.to_owned(), Value::from(customer));
    for column in &report.columns {
        let found = if column.field == "resourceName" {
            result
                .get(gaql::json_path(&report.resource).concat())
                .and_then(|r| r.get("resourceName"))
        } else {
            gaql::json_path(&column.field)
                .iter()
                .try_fold(result, |v, key| v.get(key))
        };
        let value = match found {
            None | Some(Value::Null) => {
                if column.key {
                    return Err(Error::data(format!(
                        "stream `{}`, account `{customer}`: a row has no `{}` (a key column): {result}",
                        report.stream, column.field
                    )));
                }
                Value::Null
            }
            Some(value) => typed(value, column.kind).ok_or_else(|| {
                Error::data(format!(
                    "stream `{}`, account `{customer}`: `{}` is `{value}`, not {:?}",
                    report.stream, column.field, column.kind
                ))
            })?,
        };
        row.insert(column.name.clone(), value);
    }
    Ok(Value::Object(row))
}

/// `value` as `kind`: int64 from its JSON string (or integer), doubles as numbers, text as is
/// (objects and lists as JSON text).
fn typed(value: &Value, kind: FieldType) -> Option<Value> {
    match kind {
        FieldType::Int64 => match value {
            Value::String(s) => s.parse::<i64>().ok().map(Value::from),
            Value::Number(n) => n.as_i64().map(Value::from),
            _ => None,
        },
        FieldType::Float64 => match value {
            Value::Number(n) => n.as_f64().map(Value::from),
            Value::String(s) => s.parse::<f64>().ok().map(Value::from),
            _ => None,
        },
        FieldType::Bool => value.as_bool().map(Value::from),
        FieldType::Date => value.as_str().map(Value::from),
        FieldType::Text => Some(match value {
            Value::String(_) => value.clone(),
            other => Value::String(other.to_string()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::{built_ins, custom};
    use serde_json::json;

    #[test]
    fn a_result_row_becomes_typed_columns() {
        let report = built_ins()
            .into_iter()
            .find(|r| r.stream == "campaign_performance")
            .unwrap();
        let result = json!({
            "campaign": {"resourceName": "customers/1234567890/campaigns/111", "id": "111"},
            "metrics": {"impressions": "1000", "clicks": "25", "costMicros": "9223372036854775807",
                        "conversions": 2.5, "conversionsValue": 99.99, "allConversions": 3.0},
            "segments": {"date": "2026-10-01", "device": "MOBILE", "adNetworkType": "SEARCH"}
        });
        let row = to_row(&report, 1234567890, &result).unwrap();
        assert_eq!(
            row,
            json!({"customer_id": 1234567890i64, "campaign_id": 111, "date": "2026-10-01", "device": "MOBILE",
                   "ad_network_type": "SEARCH", "impressions": 1000, "clicks": 25,
                   "cost_micros": 9223372036854775807i64, "conversions": 2.5, "conversions_value": 99.99,
                   "all_conversions": 3.0, "all_conversions_value": null})
        );
        let mut broken = result.clone();
        broken["metrics"]["clicks"] = json!("2.5");
        assert!(to_row(&report, 1, &broken).is_err(), "no silent float");
        let mut keyless = result;
        keyless["segments"]
            .as_object_mut()
            .unwrap()
            .remove("device");
        assert!(to_row(&report, 1, &keyless).is_err());
    }

    #[test]
    fn a_custom_row_keeps_the_resource_name_and_unknown_fields_as_text() {
        let report = custom(
            "labels",
            "SELECT campaign.id, campaign.labels FROM campaign",
        )
        .unwrap();
        let result = json!({"campaign": {"resourceName": "customers/1/campaigns/5", "id": "5",
                                         "labels": ["customers/1/labels/9"]}});
        assert_eq!(
            to_row(&report, 1, &result).unwrap(),
            json!({"customer_id": 1, "resource_name": "customers/1/campaigns/5", "campaign_id": 5,
                   "campaign_labels": "[\"customers/1/labels/9\"]"})
        );
    }
}
