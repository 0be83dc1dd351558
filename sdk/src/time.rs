//! Calendar arithmetic for connectors that parse dates themselves (PostgreSQL text, syslog
//! timestamps, report date ranges) rather than pull in a date library.

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm); `month` is
/// 1-12, years may be zero or negative (1 BC is year 0).
#[inline]
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    if (1..100_000).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day) {
        return i64::from(days_from_civil_ce(year as u32, month as u32, day as u32));
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// [`days_from_civil`] of years 1-99,999 (months 1-12, days 1-31), in 32-bit arithmetic: wasm32
/// turns a 32-bit division by a constant into a multiplication, a 64-bit one stays a division
/// (it has no 64-bit multiply-high). Callers check the ranges: outside them the arithmetic may
/// overflow.
#[inline(always)]
pub fn days_from_civil_ce(year: u32, month: u32, day: u32) -> i32 {
    let y = if month <= 2 {
        year.wrapping_sub(1)
    } else {
        year
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe) as i32 - 719_468
}

/// The proleptic Gregorian `(year, month, day)` of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`), the inverse of [`days_from_civil`].
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `YYYY-MM-DD` of days since 1970-01-01.
pub fn format_date(days: i64) -> String {
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` that names a real day (`2026-02-30` is `None`).
pub fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    let days = days_from_civil(year, month, day);
    (civil_from_days(days) == (year, month, day)).then_some(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_impossible_days_are_refused() {
        for text in ["1970-01-01", "2024-02-29", "2026-12-31", "2027-03-01"] {
            assert_eq!(format_date(parse_date(text).unwrap()), text);
        }
        for bad in ["2026-02-30", "2027-13-01", "2027-02", "soon", "2026-00-10"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 1, 1), 19_723);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(0, 1, 1), -719_528);
    }

    #[test]
    fn the_32_bit_path_inverts_civil_from_days() {
        // Every day of years 1-2,999 (the 32-bit path), every 97th up to past its limit of
        // 99,999, and the years before 1 (the 64-bit path).
        let first = days_from_civil(1, 1, 1);
        let days = (first - 1_000..first + 1_095_000).chain((first..36_600_000).step_by(97));
        for day in days {
            let (year, month, day_of_month) = civil_from_days(day);
            assert_eq!(
                days_from_civil(year, month, day_of_month),
                day,
                "{year}-{month}-{day_of_month}"
            );
        }
    }
}
