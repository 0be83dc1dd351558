//! The `google-sheets` connector: each sheet (tab) of the configured spreadsheets is a stream, its
//! header row gives the columns, and values keep their types (numbers, booleans, dates, times).
//!
//! Per spreadsheet and read it makes three Sheets API v4 calls (see README.md): the sheet list,
//! the number formats of the first data row (to tell dates from numbers), and one `values:batchGet`
//! for all selected sheets.

mod api;
mod table;

use inlet_sdk::http::Client;
use inlet_sdk::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Read-only access to spreadsheets.
const SCOPE: &str = "https://www.googleapis.com/auth/spreadsheets.readonly";
const DEFAULT_ENDPOINT: &str = "https://sheets.googleapis.com";

/// Settings of the Google Sheets connector.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SheetsConfig {
    /// The spreadsheets to read.
    pub spreadsheets: Vec<SpreadsheetConfig>,
    /// The Sheets API endpoint (tests, private endpoints). Example: `"https://sheets.googleapis.com"`.
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// One spreadsheet.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpreadsheetConfig {
    /// The id in the spreadsheet's URL (`docs.google.com/spreadsheets/d/<id>/edit`).
    pub id: String,
    /// Only these sheets (tab titles); all when absent. A title may carry a range:
    /// `"Orders!A1:F"` reads only those cells (the first row is still the header).
    #[serde(default)]
    pub sheets: Option<Vec<String>>,
    /// Put before each stream name, to keep two spreadsheets' sheets apart. Example: `"budget_"`.
    #[serde(default)]
    pub prefix: Option<String>,
}

/// One sheet to read: where, and which stream it becomes.
#[derive(Debug, Clone)]
struct SheetRef {
    spreadsheet: String,
    title: String,
    /// The A1 range to read (the title, quoted, plus the configured cells).
    range: String,
    stream: String,
}

/// The connector type exported to the host.
#[derive(Default)]
pub struct GoogleSheets;

fn client(config: &SheetsConfig) -> Result<Client, Error> {
    let endpoint = config.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT);
    Client::new(endpoint)?.with_credential("google", &[SCOPE])
}

/// Every selected sheet of every spreadsheet, with unique stream names.
fn sheets(client: &Client, config: &SheetsConfig) -> Result<Vec<SheetRef>, Error> {
    if config.spreadsheets.is_empty() {
        return Err(Error::config("`spreadsheets` lists no spreadsheet"));
    }
    let mut out: Vec<SheetRef> = Vec::new();
    for spreadsheet in &config.spreadsheets {
        let titles = api::sheet_titles(client, &spreadsheet.id)?;
        let wanted: Vec<(String, Option<String>)> = match &spreadsheet.sheets {
            None => titles.iter().map(|t| (t.clone(), None)).collect(),
            Some(list) => list
                .iter()
                .map(|entry| match entry.rsplit_once('!') {
                    Some((title, cells)) => (title.to_owned(), Some(cells.to_owned())),
                    None => (entry.clone(), None),
                })
                .collect(),
        };
        for (title, cells) in wanted {
            if !titles.contains(&title) {
                return Err(Error::NotFound(format!(
                    "spreadsheet `{}` has no sheet `{title}` (sheets: {})",
                    spreadsheet.id,
                    titles.join(", ")
                )));
            }
            let quoted = format!("'{}'", title.replace('\'', "''"));
            let range = match cells {
                Some(cells) => format!("{quoted}!{cells}"),
                None => quoted,
            };
            let stream = format!(
                "{}{}",
                spreadsheet.prefix.as_deref().unwrap_or(""),
                table::normalize(&title)
            );
            if let Some(other) = out.iter().find(|s| s.stream == stream) {
                return Err(Error::config(format!(
                    "sheets `{}` (spreadsheet `{}`) and `{title}` (spreadsheet `{}`) would both be stream `{stream}`; give one spreadsheet a `prefix`",
                    other.title, other.spreadsheet, spreadsheet.id
                )));
            }
            out.push(SheetRef {
                spreadsheet: spreadsheet.id.clone(),
                title,
                range,
                stream,
            });
        }
    }
    Ok(out)
}

impl Source for GoogleSheets {
    type Config = SheetsConfig;

    fn spec() -> Spec {
        Spec::new(
            "google-sheets",
            env!("CARGO_PKG_VERSION"),
            "Google Sheets: one stream per sheet, the header row as columns",
        )
        .http("{endpoint:https://sheets.googleapis.com}")
        .google_credential(&[SCOPE], "reads the spreadsheet (read-only)")
    }

    fn discover(config: &SheetsConfig) -> Result<Vec<Stream>, Error> {
        let client = client(config)?;
        Ok(sheets(&client, config)?
            .into_iter()
            .map(|s| Stream::new(s.stream))
            .collect())
    }

    fn read(
        config: &SheetsConfig,
        selected: &[ConfiguredStream],
        state: State,
        out: &mut Output,
    ) -> Result<(), Error> {
        let client = client(config)?;
        let wanted: Vec<SheetRef> = sheets(&client, config)?
            .into_iter()
            .filter(|s| selected.iter().any(|c| c.name == s.stream))
            .collect();
        let mut by_spreadsheet: BTreeMap<&str, Vec<&SheetRef>> = BTreeMap::new();
        for sheet in &wanted {
            by_spreadsheet
                .entry(sheet.spreadsheet.as_str())
                .or_default()
                .push(sheet);
        }
        for (spreadsheet, sheets) in by_spreadsheet {
            let ranges: Vec<&str> = sheets.iter().map(|s| s.range.as_str()).collect();
            let formats = api::first_data_row_formats(&client, spreadsheet, &ranges)?;
            let values = api::batch_get(&client, spreadsheet, &ranges)?;
            for ((sheet, rows), formats) in sheets.iter().zip(values).zip(formats) {
                let first_row = api::header_row(&sheet.range) + 1;
                let Some(batch) = table::to_batch(&rows, &formats, first_row)
                    .map_err(|e| Error::data(format!("sheet `{}`: {e}", sheet.title)))?
                else {
                    out.log(LogLevel::Info, &format!("sheet `{}` is empty", sheet.title));
                    continue;
                };
                out.emit(&sheet.stream, &batch)?;
                out.progress(&sheet.stream, Some(batch.num_rows() as u64));
            }
        }
        out.checkpoint(&state)
    }
}

inlet_sdk::export_source!(GoogleSheets);
