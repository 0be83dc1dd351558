//! Calendar days as `YYYY-MM-DD` text and back, for the date ranges of queries and cursors.

use inlet_sdk::Error;
use inlet_sdk::versions::parse_date;

/// `YYYY-MM-DD` of days since 1970-01-01.
pub fn format_day(days: i64) -> String {
    inlet_sdk::time::format_date(days)
}

/// Parses setting `name`'s `YYYY-MM-DD`.
pub fn parse_day(name: &str, text: &str) -> Result<i64, Error> {
    parse_date(text)
        .filter(|days| format_day(*days) == text)
        .ok_or_else(|| {
            Error::config(format!(
                "setting `{name}`: `{text}` is not a date like `2026-01-31`"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        for text in ["1970-01-01", "2024-02-29", "2026-12-31", "2027-03-01"] {
            assert_eq!(format_day(parse_day("d", text).unwrap()), text);
        }
        assert!(parse_day("d", "2026-02-30").is_err());
        assert!(parse_day("d", "2026-1-5").is_err());
    }
}
