//! The object streams: ad accounts, campaigns, ad sets, ads and creatives, each a Graph API edge
//! of the ad account read page by page. Campaigns, ad sets and ads are read incrementally with
//! Meta's `filtering` on `<object>.updated_time`; creatives have no `updated_time` and accounts
//! are single nodes, so those two are read whole.

use crate::dates;
use crate::graph::Graph;
use crate::values::Kind;
use inlet_sdk::prelude::*;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// One object stream: the edge, its columns (name, API field path, kind), and the object name
/// Meta's `filtering` uses for `updated_time`, when it takes one.
pub struct Entity {
    /// The stream.
    pub stream: &'static str,
    /// The edge under `act_<id>/` (empty: the account node itself).
    pub edge: &'static str,
    /// Column, the API field (a `parent.child` path for nested objects), kind.
    pub columns: &'static [(&'static str, &'static str, Kind)],
    /// `campaign` for `campaign.updated_time`.
    pub updated_filter: Option<&'static str>,
}

use Kind::{Count, Json, Money, Text, Time};

/// Every object stream.
pub const ENTITIES: [Entity; 5] = [
    Entity {
        stream: "ad_accounts",
        edge: "",
        columns: &[
            ("id", "id", Text),
            ("account_id", "account_id", Text),
            ("name", "name", Text),
            ("currency", "currency", Text),
            ("timezone_name", "timezone_name", Text),
            ("account_status", "account_status", Count),
        ],
        updated_filter: None,
    },
    Entity {
        stream: "campaigns",
        edge: "campaigns",
        columns: &[
            ("id", "id", Text),
            ("account_id", "account_id", Text),
            ("name", "name", Text),
            ("status", "status", Text),
            ("effective_status", "effective_status", Text),
            ("objective", "objective", Text),
            ("daily_budget", "daily_budget", Money),
            ("lifetime_budget", "lifetime_budget", Money),
            ("budget_remaining", "budget_remaining", Money),
            ("created_time", "created_time", Time),
            ("start_time", "start_time", Time),
            ("stop_time", "stop_time", Time),
            ("updated_time", "updated_time", Time),
        ],
        updated_filter: Some("campaign"),
    },
    Entity {
        stream: "ad_sets",
        edge: "adsets",
        columns: &[
            ("id", "id", Text),
            ("account_id", "account_id", Text),
            ("campaign_id", "campaign_id", Text),
            ("name", "name", Text),
            ("status", "status", Text),
            ("effective_status", "effective_status", Text),
            ("daily_budget", "daily_budget", Money),
            ("lifetime_budget", "lifetime_budget", Money),
            ("budget_remaining", "budget_remaining", Money),
            ("created_time", "created_time", Time),
            ("start_time", "start_time", Time),
            ("end_time", "end_time", Time),
            ("updated_time", "updated_time", Time),
        ],
        updated_filter: Some("adset"),
    },
    Entity {
        stream: "ads",
        edge: "ads",
        columns: &[
            ("id", "id", Text),
            ("account_id", "account_id", Text),
            ("campaign_id", "campaign_id", Text),
            ("adset_id", "adset_id", Text),
            ("creative_id", "creative.id", Text),
            ("name", "name", Text),
            ("status", "status", Text),
            ("effective_status", "effective_status", Text),
            ("created_time", "created_time", Time),
            ("updated_time", "updated_time", Time),
        ],
        updated_filter: Some("ad"),
    },
    Entity {
        stream: "ad_creatives",
        edge: "adcreatives",
        columns: &[
            ("id", "id", Text),
            ("account_id", "account_id", Text),
            ("name", "name", Text),
            ("status", "status", Text),
            ("title", "title", Text),
            ("body", "body", Text),
            ("thumbnail_url", "thumbnail_url", Text),
            ("image_url", "image_url", Text),
            ("object_story_spec", "object_story_spec", Json),
        ],
        updated_filter: None,
    },
];

impl Entity {
    /// The Arrow schema: `id` is never null.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|(name, _, kind)| Field::new(*name, kind.data_type(), *name != "id"))
                .collect::<Vec<_>>(),
        ))
    }

    /// The stream as discovered: key `id`, cursor `updated_time` where Meta filters on it.
    pub fn stream(&self) -> Stream {
        let stream = Stream::new(self.stream)
            .schema(self.schema())
            .primary_key(["id"]);
        match self.updated_filter {
            Some(_) => stream.cursor("updated_time"),
            None => stream,
        }
    }

    /// The `fields` parameter: `creative.id` is asked for as `creative{id}`.
    fn fields(&self) -> String {
        self.columns
            .iter()
            .map(|(_, path, _)| match path.split_once('.') {
                Some((parent, child)) => format!("{parent}{{{child}}}"),
                None => (*path).to_owned(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The row for the encoder.
    fn row(&self, object: &Value) -> Result<Value, Error> {
        let mut row = Map::new();
        for (name, path, kind) in self.columns {
            let value = path.split('.').fold(object, |v, key| &v[key]);
            row.insert((*name).to_owned(), kind.convert(value, name)?);
        }
        Ok(Value::Object(row))
    }

    /// Reads the stream for one account; `since` (unix seconds) limits to objects updated after
    /// it. Emits page by page and answers the newest `updated_time` seen.
    pub fn read(
        &self,
        graph: &Graph,
        account: &str,
        since: Option<i64>,
        page_size: u32,
        out: &mut Output,
    ) -> Result<Option<i64>, Error> {
        let mut encoder = RowEncoder::new(self.schema())?;
        let fields = self.fields();
        let mut newest = since;
        let mut emit = |objects: Vec<Value>, out: &mut Output| -> Result<(), Error> {
            let rows = objects
                .iter()
                .map(|o| self.row(o))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| prefix(e, self.stream, account))?;
            for object in &objects {
                if let Some(t) = object["updated_time"]
                    .as_str()
                    .and_then(dates::unix_seconds)
                {
                    newest = Some(newest.map_or(t, |n| n.max(t)));
                }
            }
            out.emit(self.stream, &encoder.encode(&rows)?)
        };
        if self.edge.is_empty() {
            let node = graph.get(&format!("act_{account}"), &[("fields", &fields)])?;
            emit(vec![node], out)?;
            return Ok(None);
        }
        let limit = page_size.to_string();
        let filtering = match (self.updated_filter, since) {
            // One second back: objects updated in the second of the last read are read again
            // rather than missed (the key merges them).
            (Some(object), Some(since)) => Some(
                json!([{"field": format!("{object}.updated_time"), "operator": "GREATER_THAN", "value": since - 1}])
                    .to_string(),
            ),
            _ => None,
        };
        let mut query = vec![("fields", fields.as_str()), ("limit", limit.as_str())];
        if let Some(filtering) = &filtering {
            query.push(("filtering", filtering));
        }
        graph.pages(&format!("act_{account}/{}", self.edge), &query, |page| {
            emit(page, out)
        })?;
        Ok(newest)
    }
}

fn prefix(error: Error, stream: &str, account: &str) -> Error {
    match error {
        Error::Data(m) => Error::data(format!("stream `{stream}`, account `{account}`: {m}")),
        other => other,
    }
}
