//! The `meta-ads` connector: Meta's Marketing API (Graph API) — ad accounts, campaigns, ad sets,
//! ads and creatives, and daily insights per level through asynchronous report runs, re-reading
//! the last `lookback_days` on every sync because Meta restates recent days.
//!
//! The access token is a granted secret: the connector only ever holds its placeholder, sent as
//! `Authorization: Bearer <placeholder>`; the host writes the token in for Meta's host only.

mod dates;
mod entities;
mod errors;
mod graph;
mod insights;
mod throttle;
mod values;
mod version;

use entities::ENTITIES;
use graph::{Graph, Pacing};
use inlet_sdk::prelude::*;
use insights::{Level, Report};
use schemars::JsonSchema;
use serde::Deserialize;
pub use version::API_VERSION;

/// Attribution windows Meta still returns (7d_view and 28d_view stopped on 2026-01-12).
const WINDOWS: [&str; 5] = ["1d_click", "7d_click", "28d_click", "1d_view", "1d_ev"];

/// Settings of the Meta Ads connector.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetaAdsConfig {
    /// The ad accounts to read: their ids, with or without `act_`. Example: `["1234567890"]`.
    pub account_ids: Vec<String>,
    /// The first day of insights, `YYYY-MM-DD` (Meta keeps about 37 months). Example: `"2026-01-01"`.
    pub start_date: String,
    /// The last day of insights, `YYYY-MM-DD`; today (UTC) when absent. Example: `"2026-10-31"`.
    #[serde(default)]
    pub end_date: Option<String>,
    /// Insights levels, each a stream `insights_<level>`. Default: all four.
    #[serde(default = "all_levels")]
    pub levels: Vec<Level>,
    /// Insights `breakdowns`, each a key column. Example: `["country"]`. Default: none.
    #[serde(default)]
    pub breakdowns: Vec<String>,
    /// Insights `action_breakdowns`, fields of each action entry. Example: `["action_device"]`.
    #[serde(default)]
    pub action_breakdowns: Vec<String>,
    /// `action_attribution_windows`: a `value_<window>` per action entry. One of `1d_click`,
    /// `7d_click`, `28d_click`, `1d_view`, `1d_ev`. Default: Meta's default only (`value`).
    #[serde(default)]
    pub attribution_windows: Vec<String>,
    /// Days re-read before the last day read, on every sync, because Meta restates them
    /// (conversions are booked on the click/view day). Default: 28.
    #[serde(default = "default_lookback")]
    pub lookback_days: u32,
    /// Days per asynchronous report run. Default: 30.
    #[serde(default = "default_report_days")]
    pub report_days: u32,
    /// Rows per page. Default: 500.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Seconds between polls of a report run. Default: 5.
    #[serde(default = "default_poll")]
    pub poll_seconds: u64,
    /// Pause before the next call once a usage header reaches this percentage. Default: 75.
    #[serde(default = "default_threshold")]
    pub throttle_threshold_pct: f64,
    /// The longest pause near the limit, and the first wait after a throttle error without
    /// Meta's own estimate (doubled per retry), in seconds. Default: 60.
    #[serde(default = "default_pause")]
    pub throttle_pause_seconds: u64,
    /// Retries of a throttled or failed call. Default: 5.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// The Graph API origin (tests). Default: `"https://graph.facebook.com"`.
    #[serde(default)]
    pub endpoint: Option<String>,
}

fn all_levels() -> Vec<Level> {
    Level::ALL.to_vec()
}
fn default_lookback() -> u32 {
    28
}
fn default_report_days() -> u32 {
    30
}
fn default_page_size() -> u32 {
    500
}
fn default_poll() -> u64 {
    5
}
fn default_threshold() -> f64 {
    75.0
}
fn default_pause() -> u64 {
    60
}
fn default_retries() -> u32 {
    5
}

impl MetaAdsConfig {
    fn accounts(&self) -> Result<Vec<String>, Error> {
        if self.account_ids.is_empty() {
            return Err(Error::config("`account_ids` lists no ad account"));
        }
        self.account_ids
            .iter()
            .map(|id| {
                let digits = id.trim().trim_start_matches("act_");
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Error::config(format!(
                        "`account_ids`: `{id}` is not an ad account id; write its digits (Ads Manager shows them), with or without `act_`"
                    )));
                }
                Ok(digits.to_owned())
            })
            .collect()
    }

    fn validate(&self) -> Result<(), Error> {
        self.accounts()?;
        dates::parse_day(&self.start_date, "start_date")?;
        if let Some(end) = &self.end_date {
            dates::parse_day(end, "end_date")?;
        }
        for window in &self.attribution_windows {
            if !WINDOWS.contains(&window.as_str()) {
                return Err(Error::config(format!(
                    "`attribution_windows`: `{window}` is not one Meta returns; use {} (7d_view and 28d_view stopped on 2026-01-12)",
                    WINDOWS.join(", ")
                )));
            }
        }
        if self.report_days == 0 || self.page_size == 0 {
            return Err(Error::config(
                "`report_days` and `page_size` must be at least 1",
            ));
        }
        Ok(())
    }

    fn graph(&self) -> Result<Graph, Error> {
        Graph::new(
            self.endpoint
                .as_deref()
                .unwrap_or("https://graph.facebook.com"),
            API_VERSION.name,
            Pacing {
                threshold_pct: self.throttle_threshold_pct,
                pause_seconds: self.throttle_pause_seconds,
                max_retries: self.max_retries,
            },
        )
    }

    fn reports(&self) -> Vec<Report<'_>> {
        let mut levels = self.levels.clone();
        levels.dedup();
        levels
            .into_iter()
            .map(|level| Report {
                level,
                breakdowns: &self.breakdowns,
                action_breakdowns: &self.action_breakdowns,
                windows: &self.attribution_windows,
            })
            .collect()
    }
}

/// The connector type exported to the host.
#[derive(Default)]
pub struct MetaAds;

impl Source for MetaAds {
    type Config = MetaAdsConfig;

    fn spec() -> Spec {
        Spec::new(
            "meta-ads",
            env!("CARGO_PKG_VERSION"),
            "Meta Marketing API: ad accounts, campaigns, ad sets, ads, creatives and daily insights",
        )
        .http("{endpoint:https://graph.facebook.com}")
        .secret_credential(
            "access_token",
            "a Meta access token with `ads_read` (a system user's token is best), sent as `Authorization: Bearer` to graph.facebook.com",
        )
    }

    fn check(config: &MetaAdsConfig) -> Result<(), Error> {
        API_VERSION.check_now()?;
        config.validate()?;
        let graph = config.graph()?;
        for account in config.accounts()? {
            graph.get(&format!("act_{account}"), &[("fields", "id")])?;
        }
        Ok(())
    }

    fn discover(config: &MetaAdsConfig) -> Result<Vec<Stream>, Error> {
        API_VERSION.check_now()?;
        config.validate()?;
        let mut streams: Vec<Stream> = ENTITIES.iter().map(|e| e.stream()).collect();
        streams.extend(config.reports().iter().map(Report::stream));
        Ok(streams)
    }

    fn read(
        config: &MetaAdsConfig,
        selected: &[ConfiguredStream],
        mut state: State,
        out: &mut Output,
    ) -> Result<(), Error> {
        API_VERSION.check_now()?;
        config.validate()?;
        let graph = config.graph()?;
        let accounts = config.accounts()?;
        let mode = |name: &str| {
            selected
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.sync_mode)
        };
        for entity in &ENTITIES {
            let Some(mode) = mode(entity.stream) else {
                continue;
            };
            for account in &accounts {
                let key = format!("{}.{account}", entity.stream);
                let since = match mode {
                    SyncMode::Incremental => state.get::<i64>(&key)?,
                    SyncMode::FullRefresh => None,
                };
                let newest = entity.read(&graph, account, since, config.page_size, out)?;
                if entity.updated_filter.is_some()
                    && let Some(newest) = newest
                {
                    state.set(&key, &newest)?;
                }
                out.checkpoint(&state)?;
            }
        }
        let start = dates::parse_day(&config.start_date, "start_date")?;
        let end = match &config.end_date {
            Some(end) => dates::parse_day(end, "end_date")?,
            None => inlet_sdk::versions::today(),
        };
        for report in config.reports() {
            let stream = report.level.stream();
            let Some(mode) = mode(&stream) else { continue };
            for account in &accounts {
                let key = format!("{stream}.{account}");
                let through = match mode {
                    SyncMode::Incremental => state
                        .get::<String>(&key)?
                        .map(|d| dates::parse_day(&d, &key))
                        .transpose()?,
                    SyncMode::FullRefresh => None,
                };
                // Meta restates recent days: start `lookback_days` before the last day read.
                let from = match through {
                    Some(through) => start.max(through + 1 - i64::from(config.lookback_days)),
                    None => start,
                };
                if through.is_some() {
                    out.log(
                        LogLevel::Info,
                        &format!(
                            "{stream}, account {account}: re-reading from {} ({} lookback days)",
                            dates::format_day(from),
                            config.lookback_days
                        ),
                    );
                }
                let mut since = from;
                while since <= end {
                    let until = end.min(since + i64::from(config.report_days) - 1);
                    let window = (dates::format_day(since), dates::format_day(until));
                    report.read_window(
                        &graph,
                        account,
                        (&window.0, &window.1),
                        config.poll_seconds,
                        config.page_size,
                        out,
                    )?;
                    state.set(&key, &window.1)?;
                    out.checkpoint(&state)?;
                    since = until + 1;
                }
            }
        }
        out.checkpoint(&state)
    }
}

inlet_sdk::export_source!(MetaAds);
