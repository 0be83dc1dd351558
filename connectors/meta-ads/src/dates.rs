//! Calendar days as the API writes them (`YYYY-MM-DD`) and the arithmetic the date windows need
//! (lookback, report chunks), without a date library in the guest.

use inlet_sdk::Error;
use inlet_sdk::versions::parse_date;

/// Days since 1970-01-01 of `YYYY-MM-DD`, or a configuration error naming `setting`.
pub fn parse_day(text: &str, setting: &str) -> Result<i64, Error> {
    parse_date(text).ok_or_else(|| {
        Error::config(format!(
            "`{setting}` = `{text}` is not a date; write it as YYYY-MM-DD, e.g. `2026-01-01`"
        ))
    })
}

/// `YYYY-MM-DD` of days since 1970-01-01.
pub fn format_day(days: i64) -> String {
    inlet_sdk::time::format_date(days)
}

/// Seconds since the epoch of a Graph API datetime (`2026-10-01T08:30:00+0000`, or with
/// `+02:00`); `None` when it is not one.
pub fn unix_seconds(text: &str) -> Option<i64> {
    let (date, rest) = text.split_at_checked(10)?;
    let days = parse_date(date)?;
    let rest = rest.strip_prefix('T')?;
    let time = rest.get(..8)?;
    let mut parts = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    let zone = rest[8..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match zone {
        "" | "Z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(char::is_ascii_digit).collect();
            if digits.len() != 4 {
                return None;
            }
            sign * (digits[..2].parse::<i64>().ok()? * 3600 + digits[2..].parse::<i64>().ok()? * 60)
        }
    };
    Some(days * 86_400 + h * 3600 + m * 60 + s - offset)
}

/// A Graph API datetime in the RFC 3339 form Arrow parses (`+0000` -> `+00:00`).
pub fn rfc3339(text: &str) -> Option<String> {
    let seconds = unix_seconds(text)?;
    let days = seconds.div_euclid(86_400);
    let rest = seconds.rem_euclid(86_400);
    Some(format!(
        "{}T{:02}:{:02}:{:02}+00:00",
        format_day(days),
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    ))
}

/// Checks `YYYY-MM-DD` and leaves it as it is.
pub fn day_of(text: &str) -> Option<String> {
    parse_date(text).map(|_| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use inlet_sdk::time::days_from_civil;

    fn _assert_inverse(days: i64) -> bool {
        let text = format_day(days);
        let (y, rest) = text.split_at(4);
        days_from_civil(
            y.parse().unwrap(),
            rest[1..3].parse().unwrap(),
            rest[4..6].parse().unwrap(),
        ) == days
    }

    #[test]
    fn days_round_trip() {
        for days in [-1000, 0, 19_723, 20_400, 20_759] {
            assert!(_assert_inverse(days), "{days}");
        }
        assert_eq!(format_day(19_723), "2024-01-01");
        assert_eq!(
            parse_day("2026-10-31", "x").unwrap() - 27,
            parse_day("2026-10-04", "x").unwrap()
        );
        assert!(
            parse_day("31/10/2026", "start_date")
                .unwrap_err()
                .to_string()
                .contains("`start_date`")
        );
    }

    #[test]
    fn graph_datetimes_become_rfc3339_in_utc() {
        assert_eq!(
            rfc3339("2026-10-01T08:30:00+0000").as_deref(),
            Some("2026-10-01T08:30:00+00:00")
        );
        assert_eq!(
            rfc3339("2026-10-01T01:30:00+0200").as_deref(),
            Some("2026-09-30T23:30:00+00:00")
        );
        assert_eq!(unix_seconds("1970-01-01T00:01:00-0000"), Some(60));
        assert_eq!(unix_seconds("yesterday"), None);
    }
}
