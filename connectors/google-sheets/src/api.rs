//! The Sheets API v4 calls the connector makes, with Google's error answers turned into messages
//! that say what to fix.

use inlet_sdk::Error;
use inlet_sdk::http::Client;
use serde_json::Value;

/// The titles of a spreadsheet's sheets, in order. (`spreadsheets.get`, properties only.)
pub fn sheet_titles(client: &Client, spreadsheet: &str) -> Result<Vec<String>, Error> {
    let answer: Value = client
        .get_json(
            &format!("/v4/spreadsheets/{}", encode_path(spreadsheet)),
            &[("fields", "sheets.properties.title")],
        )
        .map_err(|e| explain(e, spreadsheet))?;
    Ok(answer["sheets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["properties"]["title"].as_str().map(str::to_owned))
        .collect())
}

/// Per range: the number format type (`DATE`, `TIME`, `DATE_TIME`, `NUMBER`...) of each column
/// of the range's first data row (`spreadsheets.get` with grid data limited to two rows and the
/// format type field).
pub fn first_data_row_formats(
    client: &Client,
    spreadsheet: &str,
    ranges: &[&str],
) -> Result<Vec<Vec<Option<String>>>, Error> {
    let header_and_first: Vec<String> = ranges.iter().map(|r| first_two_rows(r)).collect();
    let mut query: Vec<(&str, &str)> = header_and_first
        .iter()
        .map(|r| ("ranges", r.as_str()))
        .collect();
    query.push((
        "fields",
        "sheets(properties(title),data(rowData(values(effectiveFormat(numberFormat(type))))))",
    ));
    let answer: Value = client
        .get_json(
            &format!("/v4/spreadsheets/{}", encode_path(spreadsheet)),
            &query,
        )
        .map_err(|e| explain(e, spreadsheet))?;
    let sheets = answer["sheets"].as_array().cloned().unwrap_or_default();
    Ok(ranges
        .iter()
        .map(|range| {
            let title = title_of(range);
            let sheet = sheets
                .iter()
                .find(|s| s["properties"]["title"].as_str() == Some(title.as_str()));
            let row = sheet.and_then(|s| s["data"][0]["rowData"].get(1));
            row.and_then(|r| r["values"].as_array())
                .map(|cells| {
                    cells
                        .iter()
                        .map(|c| {
                            c["effectiveFormat"]["numberFormat"]["type"]
                                .as_str()
                                .map(str::to_owned)
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect())
}

/// The values of every range, unformatted, dates as serial numbers (`values:batchGet`, one call).
pub fn batch_get(
    client: &Client,
    spreadsheet: &str,
    ranges: &[&str],
) -> Result<Vec<Vec<Vec<Value>>>, Error> {
    let mut query: Vec<(&str, &str)> = ranges.iter().map(|r| ("ranges", *r)).collect();
    query.extend([
        ("majorDimension", "ROWS"),
        ("valueRenderOption", "UNFORMATTED_VALUE"),
        ("dateTimeRenderOption", "SERIAL_NUMBER"),
    ]);
    let answer: Value = client
        .get_json(
            &format!(
                "/v4/spreadsheets/{}/values:batchGet",
                encode_path(spreadsheet)
            ),
            &query,
        )
        .map_err(|e| explain(e, spreadsheet))?;
    let value_ranges = answer["valueRanges"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if value_ranges.len() != ranges.len() {
        return Err(Error::data(format!(
            "spreadsheet `{spreadsheet}`: asked for {} ranges, got {}",
            ranges.len(),
            value_ranges.len()
        )));
    }
    Ok(value_ranges
        .into_iter()
        .map(|range| {
            range["values"]
                .as_array()
                .map(|rows| {
                    rows.iter()
                        .map(|row| row.as_array().cloned().unwrap_or_default())
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect())
}

/// Adds what to check to Google's words.
fn explain(error: Error, spreadsheet: &str) -> Error {
    match error {
        Error::NotFound(m) => Error::NotFound(format!(
            "spreadsheet `{spreadsheet}` was not found; check the id (the part of its URL after /d/): {m}"
        )),
        Error::Auth(m) => Error::Auth(format!(
            "spreadsheet `{spreadsheet}`: share it with the service account Inlet runs as (Viewer is enough), and enable the Sheets API: {m}"
        )),
        other => other,
    }
}

/// The sheet title of an A1 range (`'It''s'!A1:B` -> `It's`).
pub fn title_of(range: &str) -> String {
    let title = match range.rsplit_once('!') {
        Some((title, _)) => title,
        None => range,
    };
    let title = title
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .unwrap_or(title);
    title.replace("''", "'")
}

/// The header row and first data row of an A1 range: `'T'` -> `'T'!1:2`, `'T'!B3:F` -> `'T'!B3:F4`.
pub fn first_two_rows(range: &str) -> String {
    let Some((sheet, cells)) = range.rsplit_once('!') else {
        return format!("{range}!1:2");
    };
    let (start, end) = cells.split_once(':').unwrap_or((cells, cells));
    let split = |cell: &str| {
        let letters: String = cell
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        let row: Option<u64> = cell[letters.len()..].parse().ok();
        (letters, row)
    };
    let (start_col, _) = split(start);
    let (end_col, _) = split(end);
    let first = header_row(range);
    format!("{sheet}!{start_col}{first}:{end_col}{}", first + 1)
}

/// The sheet row of a range's header (its first row): `'T'` -> 1, `'T'!B3:F` -> 3.
pub fn header_row(range: &str) -> u64 {
    let Some((_, cells)) = range.rsplit_once('!') else {
        return 1;
    };
    let start = cells.split(':').next().unwrap_or("");
    start
        .trim_start_matches(|c: char| c.is_ascii_alphabetic())
        .parse()
        .unwrap_or(1)
}

/// Spreadsheet ids are URL-safe, but say so rather than trust it.
fn encode_path(segment: &str) -> String {
    inlet_sdk::http::percent_encode(segment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_for_the_header_and_first_data_row() {
        assert_eq!(first_two_rows("'Orders'"), "'Orders'!1:2");
        assert_eq!(first_two_rows("'Orders'!B3:F"), "'Orders'!B3:F4");
        assert_eq!(first_two_rows("'Orders'!A:C"), "'Orders'!A1:C2");
        assert_eq!(title_of("'It''s here'!A1:B"), "It's here");
        assert_eq!(header_row("'T'!B3:F"), 3);
        assert_eq!(header_row("'T'"), 1);
    }
}
