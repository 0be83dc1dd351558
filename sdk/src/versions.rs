//! API versions with a sunset date: one place per connector says which version it speaks and when
//! the platform turns it off, so every `check` and sync warns in time and fails with the fix after.
//!
//! Ad platforms retire versions on a published calendar (Google Ads about a year after release,
//! Meta's Marketing API a few months after a successor). A connector built with this warns from 60
//! days before the sunset and refuses to run after it, naming the version to move to; a new
//! connector build ships without upgrading Inlet.

use crate::Error;
use crate::bindings::inlet::connector::host;
use crate::bindings::inlet::connector::types as wit;
pub use crate::time::parse_date;

/// Warn this many days before a sunset.
pub const WARN_DAYS: i64 = 60;

/// The version a connector speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersion {
    /// The platform, for messages (`Google Ads API`).
    pub api: &'static str,
    /// As it appears in URLs (`v26`, `v26.0`).
    pub name: &'static str,
    /// The day it stops working, `YYYY-MM-DD`, when announced. A month-only projection is written
    /// as its first day.
    pub sunset: Option<&'static str>,
    /// Where the sunset date comes from, for the message.
    pub source: &'static str,
    /// What to do about it: the version or connector release to move to.
    pub successor: &'static str,
}

/// Where a version stands on a given day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionStatus {
    /// No sunset within [`WARN_DAYS`].
    Current,
    /// Sunsets in this many days (0 = today is the last day).
    SunsetSoon(i64),
    /// Past its sunset.
    Sunset,
}

impl ApiVersion {
    /// Where the version stands on `today` (days since 1970-01-01).
    pub fn status_on(&self, today: i64) -> VersionStatus {
        let Some(sunset) = self.sunset.and_then(parse_date) else {
            return VersionStatus::Current;
        };
        match sunset - today {
            left if left < 0 => VersionStatus::Sunset,
            left if left <= WARN_DAYS => VersionStatus::SunsetSoon(left),
            _ => VersionStatus::Current,
        }
    }

    /// Checks the version on `today`: `Ok(Some(warning))` when it sunsets soon, an error (a config
    /// error: nothing but an update fixes it) after its sunset.
    pub fn check_on(&self, today: i64) -> Result<Option<String>, Error> {
        let sunset = self.sunset.unwrap_or("?");
        match self.status_on(today) {
            VersionStatus::Current => Ok(None),
            VersionStatus::SunsetSoon(left) => Ok(Some(format!(
                "{} {} sunsets on {sunset} ({left} days left, per {}): {}",
                self.api, self.name, self.source, self.successor
            ))),
            VersionStatus::Sunset => Err(Error::config(format!(
                "{} {} was turned off on {sunset} (per {}); this connector build can no longer read it: {}",
                self.api, self.name, self.source, self.successor
            ))),
        }
    }

    /// [`ApiVersion::check_on`] today, logging the warning to the operator.
    pub fn check_now(&self) -> Result<(), Error> {
        if let Some(warning) = self.check_on(today())? {
            host::log(wit::LogLevel::Warn, &warning);
        }
        Ok(())
    }
}

/// Days since 1970-01-01 (UTC) by the wall clock.
pub fn today() -> i64 {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    seconds.div_euclid(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: ApiVersion = ApiVersion {
        api: "Example API",
        name: "v3",
        sunset: Some("2027-02-01"),
        source: "the example release notes",
        successor: "update the connector to one speaking v4",
    };

    #[test]
    fn warns_within_sixty_days_and_refuses_after_the_sunset() {
        let sunset = parse_date("2027-02-01").unwrap();
        assert_eq!(V.status_on(sunset - 61), VersionStatus::Current);
        assert_eq!(V.status_on(sunset - 60), VersionStatus::SunsetSoon(60));
        assert_eq!(V.status_on(sunset), VersionStatus::SunsetSoon(0));
        assert_eq!(V.status_on(sunset + 1), VersionStatus::Sunset);
        let warning = V.check_on(sunset - 10).unwrap().unwrap();
        assert!(
            warning.contains("v3 sunsets on 2027-02-01 (10 days left") && warning.contains("v4"),
            "{warning}"
        );
        let error = V.check_on(sunset + 1).unwrap_err().to_string();
        assert!(
            error.contains("turned off on 2027-02-01") && error.contains("v4"),
            "{error}"
        );
        let unannounced = ApiVersion { sunset: None, ..V };
        assert_eq!(unannounced.check_on(sunset + 999).unwrap(), None);
    }
}
