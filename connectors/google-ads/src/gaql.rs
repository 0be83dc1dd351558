//! The little of GAQL the connector needs to understand: the fields and resource of a custom
//! query, where a date range goes into it, and how a field's snake_case path reads in the REST
//! answer (lowerCamelCase keys, nested by resource).

use inlet_sdk::Error;

/// A parsed `SELECT a, b FROM resource ...` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The selected fields, as written (`metrics.cost_micros`).
    pub fields: Vec<String>,
    /// The FROM resource (`campaign`).
    pub resource: String,
    /// The whole query text, trimmed.
    pub text: String,
}

/// Clauses that may follow `WHERE` in GAQL; a date condition goes before the first of them.
const AFTER_WHERE: [&str; 3] = ["ORDER BY", "LIMIT", "PARAMETERS"];

/// Parses the SELECT list and FROM resource of `text`.
pub fn parse(text: &str) -> Result<Query, Error> {
    let text = text.trim().trim_end_matches(';').trim().to_owned();
    let upper = text.to_ascii_uppercase();
    if !upper.starts_with("SELECT ") {
        return Err(Error::config(format!(
            "the query `{text}` must start with SELECT"
        )));
    }
    let from = find_keyword(&upper, "FROM")
        .ok_or_else(|| Error::config(format!("the query `{text}` has no FROM clause")))?;
    let fields: Vec<String> = text["SELECT ".len()..from]
        .split(',')
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
        .collect();
    if fields.is_empty() {
        return Err(Error::config(format!(
            "the query `{text}` selects no field"
        )));
    }
    for field in &fields {
        if !field
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
            || !field.contains('.')
        {
            return Err(Error::config(format!(
                "the query `{text}` selects `{field}`: GAQL fields are snake_case paths like `metrics.clicks`"
            )));
        }
    }
    let resource = text[from + "FROM".len()..]
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_owned();
    if resource.is_empty() {
        return Err(Error::config(format!(
            "the query `{text}` names no resource after FROM"
        )));
    }
    Ok(Query {
        fields,
        resource,
        text,
    })
}

/// `query` with `condition` added to its WHERE clause (made when missing), before any ORDER BY,
/// LIMIT or PARAMETERS.
pub fn with_condition(query: &str, condition: &str) -> String {
    let upper = query.to_ascii_uppercase();
    let tail_at = AFTER_WHERE
        .iter()
        .filter_map(|k| find_keyword(&upper, k))
        .min()
        .unwrap_or(query.len());
    let (head, tail) = query.split_at(tail_at);
    let head = head.trim_end();
    let joined = match find_keyword(&upper[..tail_at], "WHERE") {
        Some(_) => format!("{head} AND {condition}"),
        None => format!("{head} WHERE {condition}"),
    };
    if tail.is_empty() {
        joined
    } else {
        format!("{joined} {}", tail.trim_start())
    }
}

/// The date range condition on `segments.date`, both ends included (`YYYY-MM-DD`).
pub fn date_range(from: &str, to: &str) -> String {
    format!("segments.date BETWEEN '{from}' AND '{to}'")
}

/// Where `keyword` starts in `upper` as a whole word outside string literals.
fn find_keyword(upper: &str, keyword: &str) -> Option<usize> {
    let bytes = upper.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None => {
                let before_ok = i == 0 || bytes[i - 1].is_ascii_whitespace();
                let end = i + keyword.len();
                if before_ok
                    && upper[i..].starts_with(keyword)
                    && (end == bytes.len() || bytes[end].is_ascii_whitespace())
                {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

/// The JSON path of a GAQL field: `ad_group_criterion.keyword.match_type` ->
/// `["adGroupCriterion", "keyword", "matchType"]`.
pub fn json_path(field: &str) -> Vec<String> {
    field.split('.').map(lower_camel).collect()
}

fn lower_camel(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    let mut upper_next = false;
    for c in segment.chars() {
        if c == '_' {
            upper_next = true;
        } else if upper_next {
            out.push(c.to_ascii_uppercase());
            upper_next = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A value type of a GAQL field, as far as the connector knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// int64 (a JSON string in the answer): ids, counts, micros.
    Int64,
    /// double (a JSON number): conversions, rates, averages.
    Float64,
    /// bool.
    Bool,
    /// `segments.date`, `YYYY-MM-DD`.
    Date,
    /// Strings and enums, and every field not in the table (objects and lists as JSON text).
    Text,
}

/// The small built-in table of field types: ids, `*_micros` and the usual counts are int64, the
/// conversion metrics and rates double, a few flags bool; every other field is text.
pub fn field_type(field: &str) -> FieldType {
    let last = field.rsplit('.').next().unwrap_or(field);
    if field == "segments.date" {
        return FieldType::Date;
    }
    if last == "id" || last.ends_with("_id") || last.ends_with("_micros") {
        return FieldType::Int64;
    }
    match field {
        "customer.manager"
        | "customer.test_account"
        | "customer.auto_tagging_enabled"
        | "customer_client.manager"
        | "customer_client.test_account"
        | "customer_client.hidden"
        | "ad_group_criterion.negative" => FieldType::Bool,
        "customer_client.level" | "segments.hour" | "segments.day_of_week_number" => {
            FieldType::Int64
        }
        _ => match field.strip_prefix("metrics.") {
            Some(
                "impressions"
                | "clicks"
                | "interactions"
                | "view_through_conversions"
                | "video_views"
                | "engagements"
                | "active_view_impressions",
            ) => FieldType::Int64,
            Some(
                "conversions"
                | "conversions_value"
                | "all_conversions"
                | "all_conversions_value"
                | "conversions_by_conversion_date"
                | "conversions_value_by_conversion_date"
                | "ctr"
                | "average_cpc"
                | "average_cpm"
                | "average_cost"
                | "cost_per_conversion"
                | "cost_per_all_conversions"
                | "interaction_rate"
                | "value_per_conversion"
                | "search_impression_share",
            ) => FieldType::Float64,
            _ => FieldType::Text,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_custom_query_is_parsed_into_fields_and_resource() {
        let q = parse(
            " SELECT campaign.id, metrics.cost_micros ,segments.date FROM campaign WHERE campaign.status = 'ENABLED' ;",
        )
        .unwrap();
        assert_eq!(
            q.fields,
            ["campaign.id", "metrics.cost_micros", "segments.date"]
        );
        assert_eq!(q.resource, "campaign");
        assert!(parse("campaign.id FROM campaign").is_err());
        assert!(parse("SELECT campaign.id").is_err());
        assert!(parse("SELECT Campaign.Id FROM campaign").is_err());
    }

    #[test]
    fn the_date_range_goes_into_the_where_clause_before_order_and_limit() {
        let range = date_range("2026-10-01", "2026-10-31");
        assert_eq!(
            with_condition("SELECT a.b FROM a", &range),
            "SELECT a.b FROM a WHERE segments.date BETWEEN '2026-10-01' AND '2026-10-31'"
        );
        assert_eq!(
            with_condition(
                "SELECT a.b FROM a WHERE a.s = 'ORDER BY' ORDER BY a.b LIMIT 5",
                &range
            ),
            "SELECT a.b FROM a WHERE a.s = 'ORDER BY' AND segments.date BETWEEN '2026-10-01' AND '2026-10-31' ORDER BY a.b LIMIT 5"
        );
        assert_eq!(
            with_condition("SELECT a.b FROM a limit 5", "x = 1"),
            "SELECT a.b FROM a WHERE x = 1 limit 5"
        );
    }

    #[test]
    fn fields_read_as_camel_case_paths_and_have_types() {
        assert_eq!(
            json_path("ad_group_criterion.keyword.match_type"),
            ["adGroupCriterion", "keyword", "matchType"]
        );
        assert_eq!(json_path("metrics.cost_micros"), ["metrics", "costMicros"]);
        assert_eq!(field_type("metrics.cost_micros"), FieldType::Int64);
        assert_eq!(
            field_type("campaign_budget.amount_micros"),
            FieldType::Int64
        );
        assert_eq!(
            field_type("ad_group_criterion.criterion_id"),
            FieldType::Int64
        );
        assert_eq!(field_type("metrics.conversions_value"), FieldType::Float64);
        assert_eq!(field_type("segments.date"), FieldType::Date);
        assert_eq!(field_type("campaign.name"), FieldType::Text);
        assert_eq!(field_type("metrics.something_new"), FieldType::Text);
    }
}
