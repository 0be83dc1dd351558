//! Daily insights at one level (account, campaign, ad set, ad) through asynchronous report runs:
//! `POST act_<id>/insights` creates a run, `GET <run id>` is polled until `async_status` is
//! `Job Completed`, then `GET <run id>/insights` is paged. One run per account and window of
//! `report_days`; a checkpoint after each.

use crate::graph::Graph;
use crate::values::{Kind, SCALE, exact_decimal};
use inlet_sdk::bindings::inlet::connector::host;
use inlet_sdk::bindings::inlet::connector::types::LogLevel;
use inlet_sdk::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a report run may take before the sync gives up on it (Meta: up to an hour).
const REPORT_TIMEOUT: Duration = Duration::from_secs(3600);

/// The level of an insights report: which object each row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// One row per account and day.
    Account,
    /// Per campaign and day.
    Campaign,
    /// Per ad set and day.
    Adset,
    /// Per ad and day.
    Ad,
}

impl Level {
    /// Every level.
    pub const ALL: [Level; 4] = [Level::Account, Level::Campaign, Level::Adset, Level::Ad];

    /// `account`, `campaign`, `adset`, `ad`: the API's `level` value.
    pub fn name(self) -> &'static str {
        match self {
            Level::Account => "account",
            Level::Campaign => "campaign",
            Level::Adset => "adset",
            Level::Ad => "ad",
        }
    }

    /// The stream: `insights_campaign`.
    pub fn stream(self) -> String {
        format!("insights_{}", self.name())
    }

    /// The id and name fields of the objects down to this level.
    fn object_fields(self) -> Vec<&'static str> {
        let all = [
            "account_id",
            "account_name",
            "account_currency",
            "campaign_id",
            "campaign_name",
            "adset_id",
            "adset_name",
            "ad_id",
            "ad_name",
        ];
        let take = match self {
            Level::Account => 3,
            Level::Campaign => 5,
            Level::Adset => 7,
            Level::Ad => 9,
        };
        all[..take].to_vec()
    }
}

/// The metrics every insights row asks for, with their kinds.
const METRICS: [(&str, Kind); 8] = [
    ("spend", Kind::Money),
    ("impressions", Kind::Count),
    ("clicks", Kind::Count),
    ("reach", Kind::Count),
    ("cpc", Kind::Money),
    ("cpm", Kind::Money),
    ("ctr", Kind::Ratio),
    ("frequency", Kind::Ratio),
];

/// The action lists, each a list of structs.
const ACTION_LISTS: [&str; 2] = ["actions", "action_values"];

/// What an insights stream asks for besides its level.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    /// The level.
    pub level: Level,
    /// `breakdowns` (`age`, `country`...): each a key column.
    pub breakdowns: &'a [String],
    /// `action_breakdowns` (`action_type` is always there): fields of each action entry.
    pub action_breakdowns: &'a [String],
    /// `action_attribution_windows` (`1d_click`, `7d_click`...): a value per window per action.
    pub windows: &'a [String],
}

impl Report<'_> {
    /// The action entry struct: `action_type`, the action breakdowns, `value`, `value_<window>`.
    fn action_struct(&self) -> Vec<Field> {
        let mut fields = vec![Field::new("action_type", DataType::Utf8, true)];
        for breakdown in self
            .action_breakdowns
            .iter()
            .filter(|b| *b != "action_type")
        {
            fields.push(Field::new(breakdown, DataType::Utf8, true));
        }
        fields.push(Field::new("value", DataType::Decimal128(38, SCALE), true));
        for window in self.windows {
            fields.push(Field::new(
                format!("value_{window}"),
                DataType::Decimal128(38, SCALE),
                true,
            ));
        }
        fields
    }

    /// The key: account, object, day, breakdown values.
    pub fn key(&self) -> Vec<String> {
        let mut key = vec![
            "account_id".to_owned(),
            "object_id".to_owned(),
            "date_start".to_owned(),
        ];
        key.extend(self.breakdowns.iter().cloned());
        key
    }

    /// The stream's schema.
    pub fn schema(&self) -> SchemaRef {
        let mut fields = vec![
            Field::new("account_id", DataType::Utf8, false),
            Field::new("object_id", DataType::Utf8, false),
            Field::new("date_start", DataType::Date32, false),
            Field::new("date_stop", DataType::Date32, true),
        ];
        for breakdown in self.breakdowns {
            fields.push(Field::new(breakdown, DataType::Utf8, false));
        }
        for field in self.level.object_fields().into_iter().skip(1) {
            fields.push(Field::new(field, DataType::Utf8, true));
        }
        for (metric, kind) in METRICS {
            fields.push(Field::new(metric, kind.data_type(), true));
        }
        let entry = DataType::Struct(self.action_struct().into());
        for list in ACTION_LISTS {
            fields.push(Field::new(
                list,
                DataType::List(Arc::new(Field::new("item", entry.clone(), true))),
                true,
            ));
        }
        Arc::new(Schema::new(fields))
    }

    /// The stream as discovered: incremental on `date_start`, re-reading the lookback window.
    pub fn stream(&self) -> Stream {
        Stream::new(self.level.stream())
            .schema(self.schema())
            .primary_key(self.key())
            .cursor("date_start")
    }

    fn fields(&self) -> String {
        let mut fields: Vec<&str> = self.level.object_fields();
        fields.extend(["date_start", "date_stop"]);
        fields.extend(METRICS.iter().map(|(m, _)| *m));
        fields.extend(ACTION_LISTS);
        fields.join(",")
    }

    /// The row for the encoder.
    fn row(&self, raw: &Value) -> Result<Value, Error> {
        let mut row = Map::new();
        let object_field = format!("{}_id", self.level.name());
        let object_id = raw[&object_field].clone();
        if object_id.is_null() || raw["account_id"].is_null() {
            return Err(Error::data(format!(
                "an insights row has no `account_id` or `{object_field}`: {raw}"
            )));
        }
        row.insert(
            "account_id".into(),
            Kind::Text.convert(&raw["account_id"], "account_id")?,
        );
        row.insert(
            "object_id".into(),
            Kind::Text.convert(&object_id, "object_id")?,
        );
        row.insert(
            "date_start".into(),
            Kind::Day.convert(&raw["date_start"], "date_start")?,
        );
        row.insert(
            "date_stop".into(),
            Kind::Day.convert(&raw["date_stop"], "date_stop")?,
        );
        for breakdown in self.breakdowns {
            // A key column: a missing value is the empty string, never null.
            let value = match &raw[breakdown] {
                Value::Null => Value::String(String::new()),
                other => Kind::Text.convert(other, breakdown)?,
            };
            row.insert(breakdown.clone(), value);
        }
        for field in self.level.object_fields().into_iter().skip(1) {
            row.insert(field.into(), Kind::Text.convert(&raw[field], field)?);
        }
        for (metric, kind) in METRICS {
            row.insert(metric.into(), kind.convert(&raw[metric], metric)?);
        }
        for list in ACTION_LISTS {
            row.insert(list.into(), self.actions(&raw[list], list)?);
        }
        Ok(Value::Object(row))
    }

    fn actions(&self, list: &Value, column: &str) -> Result<Value, Error> {
        let Some(entries) = list.as_array() else {
            return Ok(Value::Null);
        };
        let money = |value: &Value, name: &str| -> Result<Value, Error> {
            match value {
                Value::Null => Ok(Value::Null),
                Value::String(s) => exact_decimal(s).map(Value::String).ok_or_else(|| {
                    Error::data(format!("`{column}.{name}`: `{s}` is not an exact decimal"))
                }),
                other => Kind::Money.convert(other, name),
            }
        };
        entries
            .iter()
            .map(|entry| {
                let mut out = Map::new();
                out.insert("action_type".into(), entry["action_type"].clone());
                for breakdown in self
                    .action_breakdowns
                    .iter()
                    .filter(|b| *b != "action_type")
                {
                    out.insert(breakdown.clone(), entry[breakdown].clone());
                }
                out.insert("value".into(), money(&entry["value"], "value")?);
                for window in self.windows {
                    out.insert(format!("value_{window}"), money(&entry[window], window)?);
                }
                Ok(Value::Object(out))
            })
            .collect::<Result<Vec<_>, Error>>()
            .map(Value::Array)
    }

    /// Runs one report for `account` over `since..=until` and emits its rows; answers how many.
    pub fn read_window(
        &self,
        graph: &Graph,
        account: &str,
        (since, until): (&str, &str),
        poll_seconds: u64,
        page_size: u32,
        out: &mut Output,
    ) -> Result<u64, Error> {
        let fields = self.fields();
        let time_range = json!({"since": since, "until": until}).to_string();
        let mut params = vec![
            ("level", self.level.name()),
            ("fields", fields.as_str()),
            ("time_range", time_range.as_str()),
            ("time_increment", "1"),
        ];
        let lists = [
            ("breakdowns", self.breakdowns),
            ("action_breakdowns", self.action_breakdowns),
            ("action_attribution_windows", self.windows),
        ];
        let encoded: Vec<(&str, String)> = lists
            .iter()
            .filter(|(_, list)| !list.is_empty())
            .map(|(name, list)| (*name, json!(list).to_string()))
            .collect();
        params.extend(encoded.iter().map(|(n, v)| (*n, v.as_str())));
        let created = graph.post(&format!("act_{account}/insights"), &params)?;
        let run = created["report_run_id"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| created["report_run_id"].as_i64().map(|n| n.to_string()))
            .ok_or_else(|| {
                Error::data(format!(
                    "creating a report run answered no `report_run_id`: {created}"
                ))
            })?;
        self.wait_for(graph, &run, poll_seconds)?;
        let mut encoder = RowEncoder::new(self.schema())?;
        let stream = self.level.stream();
        let limit = page_size.to_string();
        let mut rows_read = 0;
        graph.pages(&format!("{run}/insights"), &[("limit", &limit)], |page| {
            let rows = page
                .iter()
                .map(|r| self.row(r))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| match e {
                    Error::Data(m) => {
                        Error::data(format!("stream `{stream}`, account `{account}`: {m}"))
                    }
                    other => other,
                })?;
            rows_read += rows.len() as u64;
            out.emit(&stream, &encoder.encode(&rows)?)
        })?;
        Ok(rows_read)
    }

    /// Polls a report run until Meta says it completed.
    fn wait_for(&self, graph: &Graph, run: &str, poll_seconds: u64) -> Result<(), Error> {
        let started = Instant::now();
        loop {
            let status = graph.get(
                run,
                &[(
                    "fields",
                    "id,async_status,async_percent_completion,error_code,error_message",
                )],
            )?;
            let state = status["async_status"].as_str().unwrap_or("");
            let percent = status["async_percent_completion"].as_i64().unwrap_or(0);
            match state {
                "Job Completed" if percent >= 100 => return Ok(()),
                "Job Failed" | "Job Skipped" => {
                    return Err(Error::Transient(format!(
                        "Meta's report run `{run}` ended `{state}` ({}); the next sync asks again; if it keeps failing, lower `report_days` or drop breakdowns",
                        status["error_message"].as_str().unwrap_or("no message")
                    )));
                }
                _ => {}
            }
            if started.elapsed() > REPORT_TIMEOUT {
                return Err(Error::Transient(format!(
                    "Meta's report run `{run}` is still `{state}` at {percent}% after an hour; the next sync asks again"
                )));
            }
            host::log(
                LogLevel::Debug,
                &format!("report run `{run}`: {state} {percent}%"),
            );
            if poll_seconds > 0 {
                std::thread::sleep(Duration::from_secs(poll_seconds));
            }
        }
    }
}
