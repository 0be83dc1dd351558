//! The streams: each is a GAQL query run on every account, its fields mapped to columns. The
//! built-in ones (entities and daily performance) and the operator's custom queries are the same
//! kind of thing, so one reader serves both.

use crate::gaql::{self, FieldType};
use inlet_sdk::prelude::*;
use std::sync::Arc;

/// The column every row gets: the account it was read from.
pub const CUSTOMER_ID: &str = "customer_id";
/// The cursor of dated streams.
pub const DATE: &str = "date";

/// One column: where its value comes from and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The GAQL field (`metrics.cost_micros`), or `resourceName` of the FROM resource.
    pub field: String,
    /// The column name.
    pub name: String,
    /// The value type.
    pub kind: FieldType,
    /// Part of the primary key.
    pub key: bool,
}

/// A stream: a query on one resource, per account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The stream name.
    pub stream: String,
    /// The query without a date range.
    pub query: String,
    /// The FROM resource (`campaign`), whose `resourceName` every row carries.
    pub resource: String,
    /// The columns after `customer_id`, in order.
    pub columns: Vec<Column>,
    /// The date column (the cursor) when the query selects `segments.date`.
    pub date_column: Option<String>,
}

impl Report {
    /// The declared Arrow schema: `customer_id`, then the columns; key columns not null.
    pub fn schema(&self) -> SchemaRef {
        let mut fields = vec![Field::new(CUSTOMER_ID, DataType::Int64, false)];
        fields.extend(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, arrow_type(c.kind), !c.key)),
        );
        Arc::new(Schema::new(fields))
    }

    /// The primary key: `customer_id` and the key columns.
    pub fn primary_key(&self) -> Vec<String> {
        std::iter::once(CUSTOMER_ID.to_owned())
            .chain(
                self.columns
                    .iter()
                    .filter(|c| c.key)
                    .map(|c| c.name.clone()),
            )
            .collect()
    }

    /// The stream as `discover` declares it: incremental by date when dated.
    pub fn stream(&self) -> Stream {
        let stream = Stream::new(&self.stream)
            .schema(self.schema())
            .primary_key(self.primary_key());
        match &self.date_column {
            Some(date) => stream.cursor(date),
            None => stream,
        }
    }

    /// The query for one account, limited to `from..=to` when dated.
    pub fn query_between(&self, from: &str, to: &str) -> String {
        match self.date_column {
            Some(_) => gaql::with_condition(&self.query, &gaql::date_range(from, to)),
            None => self.query.clone(),
        }
    }
}

/// The Arrow type of a field type. Money is micros in Int64; doubles stay Float64 as the API
/// gives them.
pub fn arrow_type(kind: FieldType) -> DataType {
    match kind {
        FieldType::Int64 => DataType::Int64,
        FieldType::Float64 => DataType::Float64,
        FieldType::Bool => DataType::Boolean,
        FieldType::Date => DataType::Date32,
        FieldType::Text => DataType::Utf8,
    }
}

fn col(field: &str, name: &str, key: bool) -> Column {
    Column {
        field: field.to_owned(),
        name: name.to_owned(),
        kind: gaql::field_type(field),
        key,
    }
}

/// A built-in report from `(field, column, key)` rows.
fn built_in(stream: &str, resource: &str, columns: Vec<Column>) -> Report {
    let fields: Vec<&str> = columns.iter().map(|c| c.field.as_str()).collect();
    let dated = columns.iter().any(|c| c.field == "segments.date");
    Report {
        stream: stream.to_owned(),
        query: format!("SELECT {} FROM {resource}", fields.join(", ")),
        resource: resource.to_owned(),
        columns,
        date_column: dated.then(|| DATE.to_owned()),
    }
}

/// The metrics and segments of every performance stream, after its ids.
fn performance(stream: &str, resource: &str, ids: Vec<Column>) -> Report {
    let mut columns = ids;
    columns.extend([
        col("segments.date", DATE, true),
        col("segments.device", "device", true),
        col("segments.ad_network_type", "ad_network_type", true),
        col("metrics.impressions", "impressions", false),
        col("metrics.clicks", "clicks", false),
        col("metrics.cost_micros", "cost_micros", false),
        col("metrics.conversions", "conversions", false),
        col("metrics.conversions_value", "conversions_value", false),
        col("metrics.all_conversions", "all_conversions", false),
        col(
            "metrics.all_conversions_value",
            "all_conversions_value",
            false,
        ),
    ]);
    built_in(stream, resource, columns)
}

/// The built-in streams.
pub fn built_ins() -> Vec<Report> {
    vec![
        built_in(
            "accounts",
            "customer",
            vec![
                col("customer.descriptive_name", "name", false),
                col("customer.currency_code", "currency_code", false),
                col("customer.time_zone", "time_zone", false),
                col("customer.manager", "manager", false),
                col("customer.test_account", "test_account", false),
                col("customer.status", "status", false),
            ],
        ),
        built_in(
            "campaigns",
            "campaign",
            vec![
                col("campaign.id", "id", true),
                col("campaign.name", "name", false),
                col("campaign.status", "status", false),
                col(
                    "campaign.advertising_channel_type",
                    "advertising_channel_type",
                    false,
                ),
                col(
                    "campaign.bidding_strategy_type",
                    "bidding_strategy_type",
                    false,
                ),
            ],
        ),
        built_in(
            "ad_groups",
            "ad_group",
            vec![
                col("ad_group.id", "id", true),
                col("campaign.id", "campaign_id", false),
                col("ad_group.name", "name", false),
                col("ad_group.status", "status", false),
                col("ad_group.type", "type", false),
            ],
        ),
        built_in(
            "ads",
            "ad_group_ad",
            vec![
                col("ad_group.id", "ad_group_id", true),
                col("ad_group_ad.ad.id", "id", true),
                col("campaign.id", "campaign_id", false),
                col("ad_group_ad.ad.name", "name", false),
                col("ad_group_ad.ad.type", "type", false),
                col("ad_group_ad.status", "status", false),
            ],
        ),
        performance(
            "campaign_performance",
            "campaign",
            vec![col("campaign.id", "campaign_id", true)],
        ),
        performance(
            "ad_group_performance",
            "ad_group",
            vec![
                col("campaign.id", "campaign_id", false),
                col("ad_group.id", "ad_group_id", true),
            ],
        ),
        performance(
            "ad_performance",
            "ad_group_ad",
            vec![
                col("campaign.id", "campaign_id", false),
                col("ad_group.id", "ad_group_id", true),
                col("ad_group_ad.ad.id", "ad_id", true),
            ],
        ),
        performance(
            "keyword_performance",
            "keyword_view",
            vec![
                col("campaign.id", "campaign_id", false),
                col("ad_group.id", "ad_group_id", true),
                col("ad_group_criterion.criterion_id", "criterion_id", true),
                col("ad_group_criterion.keyword.text", "keyword_text", false),
                col("ad_group_criterion.keyword.match_type", "match_type", false),
            ],
        ),
    ]
}

/// A custom stream from the operator's query: a column per selected field (dots as
/// underscores, types from the built-in table, unknown fields as text), plus `resource_name` of
/// the FROM resource; the key is `customer_id`, `resource_name` and every selected segment.
pub fn custom(stream: &str, query: &str) -> Result<Report, Error> {
    let valid_name = !stream.is_empty()
        && stream
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid_name {
        return Err(Error::config(format!(
            "custom stream name `{stream}`: use lowercase letters, digits and underscores"
        )));
    }
    let parsed =
        gaql::parse(query).map_err(|e| Error::config(format!("custom stream `{stream}`: {e}")))?;
    let mut columns = vec![Column {
        field: "resourceName".into(),
        name: "resource_name".into(),
        kind: FieldType::Text,
        key: true,
    }];
    for field in &parsed.fields {
        let name = field.replace('.', "_");
        if name == CUSTOMER_ID {
            return Err(Error::config(format!(
                "custom stream `{stream}`: leave out `{field}`: every row has the account's `{CUSTOMER_ID}` already"
            )));
        }
        if columns.iter().any(|c| c.name == name) {
            return Err(Error::config(format!(
                "custom stream `{stream}`: field `{field}` would be column `{name}` twice"
            )));
        }
        columns.push(Column {
            field: field.clone(),
            kind: gaql::field_type(field),
            key: field.starts_with("segments."),
            name,
        });
    }
    let date_column = parsed
        .fields
        .iter()
        .any(|f| f == "segments.date")
        .then(|| "segments_date".to_owned());
    Ok(Report {
        stream: stream.to_owned(),
        query: parsed.text,
        resource: parsed.resource,
        columns,
        date_column,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_performance_streams_key_on_ids_date_and_segments() {
        let reports = built_ins();
        let campaign = reports
            .iter()
            .find(|r| r.stream == "campaign_performance")
            .unwrap();
        assert_eq!(
            campaign.primary_key(),
            [
                "customer_id",
                "campaign_id",
                "date",
                "device",
                "ad_network_type"
            ]
        );
        assert_eq!(
            campaign.query_between("2026-10-01", "2026-10-03"),
            "SELECT campaign.id, segments.date, segments.device, segments.ad_network_type, metrics.impressions, metrics.clicks, metrics.cost_micros, metrics.conversions, metrics.conversions_value, metrics.all_conversions, metrics.all_conversions_value FROM campaign WHERE segments.date BETWEEN '2026-10-01' AND '2026-10-03'"
        );
        let schema = campaign.schema();
        assert_eq!(
            schema.field_with_name("cost_micros").unwrap().data_type(),
            &DataType::Int64
        );
        assert_eq!(
            schema.field_with_name("date").unwrap().data_type(),
            &DataType::Date32
        );
        let campaigns = reports.iter().find(|r| r.stream == "campaigns").unwrap();
        assert_eq!(campaigns.date_column, None);
        assert_eq!(campaigns.query_between("a", "b"), campaigns.query);
    }

    #[test]
    fn a_custom_stream_takes_its_columns_and_key_from_the_query() {
        let report = custom(
            "budgets",
            "SELECT campaign.id, campaign_budget.amount_micros, segments.date, segments.device, campaign.labels FROM campaign",
        )
        .unwrap();
        let names: Vec<&str> = report.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "resource_name",
                "campaign_id",
                "campaign_budget_amount_micros",
                "segments_date",
                "segments_device",
                "campaign_labels"
            ]
        );
        assert_eq!(
            report.primary_key(),
            [
                "customer_id",
                "resource_name",
                "segments_date",
                "segments_device"
            ]
        );
        assert_eq!(report.date_column.as_deref(), Some("segments_date"));
        let schema = report.schema();
        assert_eq!(
            schema
                .field_with_name("campaign_labels")
                .unwrap()
                .data_type(),
            &DataType::Utf8
        );
        assert!(custom("Bad-Name", "SELECT a.b FROM a").is_err());
        assert!(custom("x", "SELECT customer.id FROM customer").is_err());
    }
}
