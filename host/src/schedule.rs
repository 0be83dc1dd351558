//! When a scheduled connection runs: `schedule = "*/15 * * * *"` (cron) or `"every 30s"` in
//! `inlet.toml`, read once when the config is checked and asked by `inlet serve` for the next time.
//!
//! Cron patterns have exactly five fields (minute, hour, day of month, month, day of week) with
//! `*`, lists, ranges, steps and names (`mon`, `jan`), evaluated on the wall clock of
//! `[runtime] timezone` (default UTC). Across a change of the clock (DST), every wall-clock time
//! the pattern names runs **once**:
//!
//! - a time the clock skips (02:30 on the night New York springs forward) runs at the first
//!   instant after the gap (03:00 EDT), once however many skipped times the pattern names;
//! - a time the clock repeats (01:30 on the night it falls back) runs on its first pass only.
//!
//! So a daily 02:30 job runs every day, never twice; the price is that a pattern like
//! `*/15 * * * *` has one longer (75 min) and one shorter wait a year. `every 15m` counts real
//! time instead: it runs at multiples of its interval since 1970-01-01 00:00 UTC (`every 1h` on
//! the hour), whatever the zone says.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::fmt;
use std::time::Duration;

/// The longest `every` interval; rarer runs are a cron pattern's job.
const MAX_EVERY: Duration = Duration::from_secs(31 * 24 * 3600);

/// A parsed `schedule`.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Every so long, aligned to multiples of it since the Unix epoch.
    Every(Duration),
    /// A cron pattern on the wall clock of a zone.
    Cron { cron: Box<croner::Cron>, zone: Tz },
}

/// The example every error about a schedule shows.
const EXAMPLE: &str = "e.g. `schedule = \"*/15 * * * *\"` (cron: minute hour day-of-month month day-of-week) or `schedule = \"every 30m\"` (units s, m, h)";

/// `[runtime] timezone`: an IANA zone name (`Asia/Tokyo`, `UTC`).
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!(
            "`{name}` is not an IANA time zone name; e.g. `timezone = \"Asia/Tokyo\"`, `\"America/New_York\"` or `\"UTC\"`"
        )
    })
}

impl Schedule {
    /// Parses `text`, a cron pattern evaluated in `zone` or `every <n><s|m|h>`.
    pub fn parse(text: &str, zone: Tz) -> Result<Self, String> {
        let trimmed = text.trim();
        let kind = match trimmed.strip_prefix("every") {
            Some(rest) => Kind::Every(parse_every(trimmed, rest)?),
            None => Kind::Cron {
                cron: Box::new(parse_cron(trimmed)?),
                zone,
            },
        };
        Ok(Self {
            text: trimmed.to_owned(),
            kind,
        })
    }

    /// The first time strictly after `after` at which the connection runs.
    pub fn next_after(&self, after: DateTime<Utc>) -> DateTime<Utc> {
        match &self.kind {
            Kind::Every(interval) => {
                let step = interval.as_secs().max(1) as i64;
                let next = (after.timestamp().div_euclid(step) + 1) * step;
                DateTime::from_timestamp(next, 0).unwrap_or(after)
            }
            Kind::Cron { cron, zone } => next_cron(cron, *zone, after).unwrap_or_else(|| {
                // `parse` checked the pattern matches; croner searches until the year 5000.
                tracing::warn!("schedule `{}` finds no next time after {after}", self.text);
                after + chrono::TimeDelta::days(1)
            }),
        }
    }

    /// How long the connection may normally go between two runs: the interval of `every`, and
    /// for a cron pattern the longest wait between two consecutive runs in a sample of its runs
    /// (up to 512, over at most 8 years), so `0 9 * * mon-fri` says 3 days (the weekend), not 1.
    /// A connection whose last success is older than this (plus a run's length) is late.
    pub fn typical_interval(&self) -> Duration {
        match &self.kind {
            Kind::Every(interval) => *interval,
            Kind::Cron { cron, .. } => longest_gap(cron),
        }
    }

    /// The text as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `every 30s`, `every 15m`, `every 2h` (a space before the unit is fine).
fn parse_every(text: &str, rest: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("`{text}`: {why}; {EXAMPLE}");
    let rest = rest.trim();
    if rest.is_empty() {
        return Err(bad("says every what"));
    }
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let (number, unit) = rest.split_at(digits);
    let unit = unit.trim();
    if number.is_empty() {
        return Err(bad("the interval is a whole number and a unit"));
    }
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "" => return Err(bad("the interval needs a unit: s, m or h")),
        other => return Err(bad(&format!("unknown unit `{other}`: use s, m or h"))),
    };
    let seconds = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(seconds_per_unit))
        .filter(|s| *s <= MAX_EVERY.as_secs())
        .ok_or_else(|| {
            bad("is longer than 744h (31 days); for rarer runs use a cron pattern such as `0 3 1 */2 *`")
        })?;
    if seconds == 0 {
        return Err(bad("the interval is at least 1s"));
    }
    Ok(Duration::from_secs(seconds))
}

/// A five-field cron pattern.
fn parse_cron(text: &str) -> Result<croner::Cron, String> {
    let fields = text.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "`{text}` has {fields} field{} but a cron pattern has 5 (minute hour day-of-month month day-of-week; no seconds, no `@daily`); {EXAMPLE}",
            if fields == 1 { "" } else { "s" }
        ));
    }
    let parser = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build();
    let cron = parser.parse(text).map_err(|e| {
        format!(
            "`{text}` is not a cron pattern: {}; {EXAMPLE}",
            bad_field(&parser, text).unwrap_or_else(|| lowercase(&e))
        )
    })?;
    if cron
        .find_next_occurrence(&reference_start(), false)
        .is_err()
    {
        return Err(format!(
            "`{text}` names no time that exists (a day no month has?); {EXAMPLE}"
        ));
    }
    Ok(cron)
}

/// Which field of `text` croner refuses, with its allowed values, when one alone is to blame.
fn bad_field(parser: &croner::parser::CronParser, text: &str) -> Option<String> {
    const FIELDS: [(&str, &str); 5] = [
        ("minute", "0-59"),
        ("hour", "0-23"),
        ("day-of-month", "1-31"),
        ("month", "1-12 or jan-dec"),
        ("day-of-week", "0-7 or sun-sat"),
    ];
    let fields: Vec<&str> = text.split_whitespace().collect();
    FIELDS.iter().enumerate().find_map(|(i, (name, allowed))| {
        let alone: Vec<&str> = (0..5)
            .map(|j| if i == j { fields[j] } else { "*" })
            .collect();
        parser.parse(&alone.join(" ")).err().map(|e| {
            format!(
                "the {name} field `{}` ({}): allowed are {allowed}, with `*`, `,`, `-` and `/`",
                fields[i],
                lowercase(&e)
            )
        })
    })
}

/// croner's message, lowercased at the start to read as part of ours, without its final dot.
fn lowercase(error: &croner::errors::CronError) -> String {
    let message = error.to_string();
    let message = message.trim_end_matches('.');
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A fixed start for samples: Monday 2001-01-01 00:00.
fn reference_start() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2001, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

/// The next run of a cron pattern after `after`, by the rule in the module comment.
fn next_cron(cron: &croner::Cron, zone: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut wall = after.with_timezone(&zone).naive_local();
    // Candidates at or before `after` come only from a repeated hour's second pass or a gap's
    // collapsed times: at most a few hours of minutes.
    for _ in 0..10_000 {
        let candidate = cron.find_next_occurrence(&wall, false).ok()?;
        let instant = match zone.from_local_datetime(&candidate) {
            LocalResult::Single(instant) => instant,
            // Repeated: the first pass only.
            LocalResult::Ambiguous(earlier, _) => earlier,
            // Skipped: the first instant after the gap.
            LocalResult::None => first_after_gap(zone, candidate)?,
        }
        .with_timezone(&Utc);
        if instant > after {
            return Some(instant);
        }
        wall = candidate;
    }
    None
}

/// The first wall-clock minute after `skipped` that exists in `zone`, as an instant.
fn first_after_gap(zone: Tz, skipped: NaiveDateTime) -> Option<DateTime<Tz>> {
    let mut wall = skipped;
    for _ in 0..(24 * 60) {
        wall += chrono::TimeDelta::minutes(1);
        if let Some(instant) = zone.from_local_datetime(&wall).earliest() {
            return Some(instant);
        }
    }
    None
}

/// The longest wait between consecutive runs among the first 512 after [`reference_start`]
/// (at most 8 years on, so yearly and leap-day patterns are seen at least twice).
fn longest_gap(cron: &croner::Cron) -> Duration {
    let start = reference_start();
    let horizon = start + chrono::TimeDelta::days(8 * 366);
    let mut longest = chrono::TimeDelta::zero();
    let mut previous: Option<NaiveDateTime> = None;
    let mut cursor = start;
    for _ in 0..512 {
        let Ok(next) = cron.find_next_occurrence(&cursor, false) else {
            break;
        };
        if next > horizon {
            break;
        }
        if let Some(previous) = previous {
            longest = longest.max(next - previous);
        }
        previous = Some(next);
        cursor = next;
    }
    if previous.is_none() || longest.is_zero() {
        longest = horizon - start;
    }
    longest.to_std().unwrap_or(MAX_EVERY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn cron(text: &str, zone: &str) -> Schedule {
        Schedule::parse(text, parse_timezone(zone).unwrap()).unwrap()
    }

    /// The first `n` runs after `from`, as RFC 3339 in UTC.
    fn runs(schedule: &Schedule, from: &str, n: usize) -> Vec<String> {
        let mut at = utc(from);
        (0..n)
            .map(|_| {
                at = schedule.next_after(at);
                at.to_rfc3339()
            })
            .collect()
    }

    #[test]
    fn cron_fields_lists_ranges_steps_and_names() {
        let every_quarter = cron("*/15 * * * *", "UTC");
        assert_eq!(
            runs(&every_quarter, "2026-03-02T10:07:00Z", 3),
            [
                "2026-03-02T10:15:00+00:00",
                "2026-03-02T10:30:00+00:00",
                "2026-03-02T10:45:00+00:00"
            ]
        );
        // 2026-03-06 is a Friday: the next weekday run is Monday.
        let weekdays = cron("0 9 * * mon-fri", "UTC");
        assert_eq!(
            runs(&weekdays, "2026-03-06T09:00:00Z", 1),
            ["2026-03-09T09:00:00+00:00"]
        );
        let names = cron("30 6,18 1 jan,JUL *", "UTC");
        assert_eq!(
            runs(&names, "2026-01-01T07:00:00Z", 2),
            ["2026-01-01T18:30:00+00:00", "2026-07-01T06:30:00+00:00"]
        );
        let range_step = cron("0 8-20/6 * * *", "UTC");
        assert_eq!(
            runs(&range_step, "2026-05-05T00:00:00Z", 4),
            [
                "2026-05-05T08:00:00+00:00",
                "2026-05-05T14:00:00+00:00",
                "2026-05-05T20:00:00+00:00",
                "2026-05-06T08:00:00+00:00"
            ]
        );
    }

    #[test]
    fn cron_runs_on_the_wall_clock_of_the_zone() {
        // 09:00 in Tokyo (UTC+9, no DST) is 00:00 UTC.
        let tokyo = cron("0 9 * * *", "Asia/Tokyo");
        assert_eq!(
            runs(&tokyo, "2026-04-01T01:00:00Z", 1),
            ["2026-04-02T00:00:00+00:00"]
        );
    }

    #[test]
    fn a_skipped_time_runs_once_right_after_the_gap() {
        // New York springs forward on 2026-03-08: 02:00 EST becomes 03:00 EDT (07:00 UTC).
        let daily = cron("30 2 * * *", "America/New_York");
        assert_eq!(
            runs(&daily, "2026-03-07T12:00:00Z", 3),
            [
                "2026-03-08T07:00:00+00:00", // 03:00 EDT, the first instant after the gap
                "2026-03-09T06:30:00+00:00", // 02:30 EDT
                "2026-03-10T06:30:00+00:00",
            ]
        );
        // Four skipped quarters collapse into one run at 03:00, then the clock goes on.
        let quarters = cron("*/15 * * * *", "America/New_York");
        assert_eq!(
            runs(&quarters, "2026-03-08T06:40:00Z", 3),
            [
                "2026-03-08T06:45:00+00:00", // 01:45 EST
                "2026-03-08T07:00:00+00:00", // 03:00 EDT
                "2026-03-08T07:15:00+00:00", // 03:15 EDT
            ]
        );
    }

    #[test]
    fn a_repeated_time_runs_on_its_first_pass_only() {
        // New York falls back on 2026-11-01: 01:00-02:00 happens twice (EDT 05:00-06:00 UTC,
        // then EST 06:00-07:00 UTC).
        let daily = cron("30 1 * * *", "America/New_York");
        assert_eq!(
            runs(&daily, "2026-10-31T12:00:00Z", 2),
            [
                "2026-11-01T05:30:00+00:00", // 01:30 EDT
                "2026-11-02T06:30:00+00:00", // 01:30 EST the next day, not 01:30 EST today
            ]
        );
        let twice = cron("30 1,13 * * *", "America/New_York");
        assert_eq!(
            runs(&twice, "2026-11-01T05:00:00Z", 2),
            ["2026-11-01T05:30:00+00:00", "2026-11-01T18:30:00+00:00"]
        );
        // Asked from inside the second pass, the next run is after it.
        let hourly = cron("0 * * * *", "America/New_York");
        assert_eq!(
            runs(&hourly, "2026-11-01T06:10:00Z", 1),
            ["2026-11-01T07:00:00+00:00"] // 02:00 EST
        );
    }

    #[test]
    fn every_counts_real_time_from_the_epoch() {
        let zone = parse_timezone("America/New_York").unwrap();
        let every = Schedule::parse("every 15m", zone).unwrap();
        assert_eq!(every.typical_interval(), Duration::from_secs(900));
        assert_eq!(
            runs(&every, "2026-03-08T06:50:00Z", 2),
            ["2026-03-08T07:00:00+00:00", "2026-03-08T07:15:00+00:00"]
        );
        let seconds = Schedule::parse("every 30 s", zone).unwrap();
        assert_eq!(
            runs(&seconds, "2026-01-01T00:00:00Z", 1),
            ["2026-01-01T00:00:30+00:00"]
        );
        assert_eq!(
            Schedule::parse("every 2h", zone)
                .unwrap()
                .typical_interval(),
            Duration::from_secs(7200)
        );
    }

    #[test]
    fn typical_interval_is_the_longest_normal_wait() {
        let utc = parse_timezone("UTC").unwrap();
        let interval = |text| Schedule::parse(text, utc).unwrap().typical_interval();
        assert_eq!(interval("*/15 * * * *"), Duration::from_secs(900));
        assert_eq!(interval("0 9 * * mon-fri"), Duration::from_secs(3 * 86400));
        assert_eq!(interval("0 0 1 * *"), Duration::from_secs(31 * 86400));
    }

    #[test]
    fn bad_schedules_say_what_is_wrong_with_an_example() {
        let utc = parse_timezone("UTC").unwrap();
        let error = |text| Schedule::parse(text, utc).unwrap_err();
        for (text, expected) in [
            ("*/15 * * *", "has 4 fields but a cron pattern has 5"),
            ("0 */15 * * * *", "has 6 fields"),
            ("@daily", "has 1 field but"),
            ("61 * * * *", "the minute field `61`"),
            ("0 0 * * funday", "the day-of-week field `funday`"),
            ("0 0 * 13 *", "the month field `13`"),
            ("0 0 31 2 *", "names no time that exists"),
            ("every 0s", "at least 1s"),
            ("every 30", "needs a unit"),
            ("every 5d", "unknown unit `d`"),
            ("every", "says every what"),
            ("every m", "a whole number and a unit"),
            ("every 1.5h", "unknown unit `.5h`"),
            ("every 99999999999999999999h", "longer than 744h"),
        ] {
            let message = error(text);
            assert!(message.contains(expected), "{text}: {message}");
            assert!(message.contains("*/15 * * * *"), "{text}: {message}");
        }
        let zone = parse_timezone("Asia/Tokio").unwrap_err();
        assert!(
            zone.contains("`Asia/Tokio` is not an IANA time zone"),
            "{zone}"
        );
    }
}
