//! The `google-ads` connector: entities (accounts, campaigns, ad groups, ads) and daily
//! performance (campaign, ad group, ad, keyword) of every account, plus custom GAQL streams,
//! read with `googleAds:searchStream` over REST.
//!
//! Dated streams are incremental per account: each run asks from the account's last date minus
//! `lookback_days` (conversions are booked on the click's day, so past days change) and keys
//! rows by account, ids, date and segments, so a BigQuery `merge` replaces re-read days.

mod accounts;
mod api;
mod dates;
mod gaql;
mod reports;
mod rows;
mod version;

use api::Ads;
use inlet_sdk::prelude::*;
use reports::Report;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use version::API_VERSION;

/// The default re-read window: Google's default click-through conversion window is 30 days
/// (support.google.com/google-ads/answer/3123169; ADS-APIS.md "Late conversions").
pub const DEFAULT_LOOKBACK_DAYS: u32 = 30;
/// Rows emitted at once.
const EMIT_ROWS: usize = 5_000;

/// Settings of the Google Ads connector.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoogleAdsConfig {
    /// The accounts to read (10 digits; dashes are dropped). When absent, every enabled client
    /// account under `login_customer_id` is read. Example: `["1234567890"]`.
    #[serde(default)]
    pub customer_ids: Option<Vec<String>>,
    /// The manager (MCC) account the granted user reaches the accounts through, sent as the
    /// `login-customer-id` header. Not a secret. Example: `"1112223333"`.
    #[serde(default)]
    pub login_customer_id: Option<String>,
    /// The first day of daily performance to read, in each account's time zone. Daily rows exist
    /// for the last 37 months only. Example: `"2026-01-01"`.
    pub start_date: String,
    /// The last day to read (backfills, tests). Default: tomorrow in UTC, so accounts east of UTC
    /// get their today too. Example: `"2026-10-31"`.
    #[serde(default)]
    pub end_date: Option<String>,
    /// Days before an account's last read day that each incremental run reads again, so late
    /// conversions are picked up. Default 30 (Google's default click-through conversion window);
    /// raise it to 90 if conversion actions use longer windows. Example: `30`.
    #[serde(default)]
    pub lookback_days: Option<u32>,
    /// Streams of your own: a GAQL query each, run on every account. A query selecting
    /// `segments.date` is incremental like the built-in reports (leave the date out of WHERE:
    /// the connector adds it).
    #[serde(default)]
    pub custom_queries: Vec<CustomQuery>,
    /// The API endpoint (tests). Example: `"https://googleads.googleapis.com"`.
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// A stream defined by a GAQL query.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomQuery {
    /// The stream name (lowercase, digits, underscores). Example: `"campaign_budgets"`.
    pub name: String,
    /// The GAQL query. Example: `"SELECT campaign.id, campaign_budget.amount_micros FROM campaign"`.
    pub query: String,
}

impl GoogleAdsConfig {
    fn login_customer_id(&self) -> Result<Option<String>, Error> {
        self.login_customer_id
            .as_deref()
            .map(|id| accounts::normalize_id("login_customer_id", id))
            .transpose()
    }

    fn ads(&self) -> Result<Ads, Error> {
        let endpoint = self
            .endpoint
            .as_deref()
            .unwrap_or("https://googleads.googleapis.com");
        Ads::new(endpoint, self.login_customer_id()?.as_deref())
    }

    fn accounts(&self, ads: &Ads) -> Result<Vec<String>, Error> {
        accounts::accounts(
            ads,
            self.customer_ids.as_deref(),
            self.login_customer_id()?.as_deref(),
        )
    }

    /// The built-in streams and the custom ones, names checked unique.
    fn reports(&self) -> Result<Vec<Report>, Error> {
        let mut all = reports::built_ins();
        for custom in &self.custom_queries {
            if all.iter().any(|r| r.stream == custom.name) {
                return Err(Error::config(format!(
                    "custom stream `{}` has the name of another stream; rename it",
                    custom.name
                )));
            }
            all.push(reports::custom(&custom.name, &custom.query)?);
        }
        Ok(all)
    }

    /// `start_date..=end_date` as days.
    fn window(&self) -> Result<(i64, i64), Error> {
        let start = dates::parse_day("start_date", &self.start_date)?;
        let end = match &self.end_date {
            Some(end) => dates::parse_day("end_date", end)?,
            None => inlet_sdk::versions::today() + 1,
        };
        if end < start {
            return Err(Error::config(format!(
                "setting `end_date` ({}) is before `start_date` ({})",
                dates::format_day(end),
                self.start_date
            )));
        }
        Ok((start, end))
    }
}

/// The connector type exported to the host.
#[derive(Default)]
pub struct GoogleAds;

impl Source for GoogleAds {
    type Config = GoogleAdsConfig;

    fn spec() -> Spec {
        Spec::new(
            "google-ads",
            env!("CARGO_PKG_VERSION"),
            "Google Ads: accounts, campaigns, ad groups, ads, daily performance and custom GAQL reports",
        )
        .http("{endpoint:https://googleads.googleapis.com}")
        .google_credential(&[api::SCOPE], "reads Google Ads reports (GAQL search)")
        .secret_credential(
            api::DEVELOPER_TOKEN,
            "the Google Ads developer token, sent in the `developer-token` header",
        )
    }

    fn check(config: &GoogleAdsConfig) -> Result<(), Error> {
        API_VERSION.check_now()?;
        config.window()?;
        config.reports()?;
        let ads = config.ads()?;
        for customer in config.accounts(&ads)? {
            ads.search_stream(&customer, "SELECT customer.id FROM customer", "check")?;
        }
        Ok(())
    }

    fn discover(config: &GoogleAdsConfig) -> Result<Vec<Stream>, Error> {
        API_VERSION.check_now()?;
        Ok(config.reports()?.iter().map(Report::stream).collect())
    }

    fn read(
        config: &GoogleAdsConfig,
        selected: &[ConfiguredStream],
        mut state: State,
        out: &mut Output,
    ) -> Result<(), Error> {
        API_VERSION.check_now()?;
        let (start, end) = config.window()?;
        let lookback = i64::from(config.lookback_days.unwrap_or(DEFAULT_LOOKBACK_DAYS));
        let reports = config.reports()?;
        let ads = config.ads()?;
        let customers = config.accounts(&ads)?;
        for wanted in selected {
            let Some(report) = reports.iter().find(|r| r.stream == wanted.name) else {
                return Err(Error::config(format!("no stream `{}`", wanted.name)));
            };
            // Per account: the last day read (`segments.date` is in the account's time zone).
            let mut cursors: BTreeMap<String, String> =
                state.get(&report.stream)?.unwrap_or_default();
            for customer in &customers {
                let customer_number: i64 = customer
                    .parse()
                    .map_err(|_| Error::internal(format!("account id `{customer}`")))?;
                let from = match (wanted.sync_mode, cursors.get(customer)) {
                    (SyncMode::Incremental, Some(last)) => {
                        (dates::parse_day("state", last)? - lookback).max(start)
                    }
                    _ => start,
                };
                let query = report.query_between(&dates::format_day(from), &dates::format_day(end));
                let results =
                    ads.search_stream(customer, &query, &format!("stream `{}`", report.stream))?;
                let mut rows = Vec::with_capacity(results.len());
                for result in &results {
                    rows.push(rows::to_row(report, customer_number, result)?);
                }
                for chunk in rows.chunks(EMIT_ROWS) {
                    out.emit_json(&report.stream, chunk)?;
                }
                out.progress(&report.stream, None);
                if let Some(column) = &report.date_column {
                    let newest = rows
                        .iter()
                        .filter_map(|r| r[column].as_str())
                        .max()
                        .map(str::to_owned);
                    if let Some(newest) = newest.max(cursors.get(customer).cloned()) {
                        cursors.insert(customer.clone(), newest);
                    }
                    state.set(&report.stream, &cursors)?;
                }
                out.checkpoint(&state)?;
            }
        }
        Ok(())
    }
}

inlet_sdk::export_source!(GoogleAds);
