//! The Google Ads API version this connector speaks, in one place, with the sunset calendar it
//! is checked against (warn 60 days ahead, refuse after; see `inlet_sdk::versions`).

use inlet_sdk::versions::ApiVersion;

const API: &str = "Google Ads API";
const SUCCESSOR: &str = "update the google-ads connector to a build speaking a newer version (a newer Inlet, or `connector = \"path/to/google-ads.wasm\"`)";
/// Announced sunsets (exact days).
const ANNOUNCED: &str = "the Google Ads developer blog's sunset reminder";
/// Projected sunsets: month only and tentative, written as the month's first day.
const PROJECTED: &str =
    "Google's projected release plan (month only, tentative: the day is the month's first)";

/// The version in every URL (`/v26/customers/...`): the newest of the table.
pub const API_VERSION: ApiVersion = KNOWN_VERSIONS[KNOWN_VERSIONS.len() - 1];

/// What is known of each version still reachable in late 2026 and the ones just before, from
/// /work/shared/ADS-APIS.md (Versions): v20-v22 announced [G-sunblog], v23-v26 projected
/// (Feb, May, Aug, Nov 2027) [G-plan].
pub const KNOWN_VERSIONS: [ApiVersion; 7] = [
    ApiVersion {
        api: API,
        name: "v20",
        sunset: Some("2026-06-10"),
        source: ANNOUNCED,
        successor: SUCCESSOR,
    },
    ApiVersion {
        api: API,
        name: "v21",
        sunset: Some("2026-08-05"),
        source: ANNOUNCED,
        successor: SUCCESSOR,
    },
    ApiVersion {
        api: API,
        name: "v22",
        sunset: Some("2026-10-07"),
        source: ANNOUNCED,
        successor: SUCCESSOR,
    },
    ApiVersion {
        api: API,
        name: "v23",
        sunset: Some("2027-02-01"),
        source: PROJECTED,
        successor: SUCCESSOR,
    },
    ApiVersion {
        api: API,
        name: "v24",
        sunset: Some("2027-05-01"),
        source: PROJECTED,
        successor: SUCCESSOR,
    },
    ApiVersion {
        api: API,
        name: "v25",
        sunset: Some("2027-08-01"),
        source: PROJECTED,
        successor: SUCCESSOR,
    },
    ApiVersion {
        api: API,
        name: "v26",
        sunset: Some("2027-11-01"),
        source: PROJECTED,
        successor: SUCCESSOR,
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use inlet_sdk::versions::{VersionStatus, parse_date};

    fn on(date: &str) -> i64 {
        parse_date(date).unwrap()
    }

    #[test]
    fn the_current_version_is_the_newest_known_and_marked_projected() {
        assert_eq!(API_VERSION.name, "v26");
        assert!(API_VERSION.source.contains("projected"));
        let mut sunsets: Vec<i64> = KNOWN_VERSIONS
            .iter()
            .map(|v| parse_date(v.sunset.unwrap()).unwrap())
            .collect();
        let sorted = sunsets.clone();
        sunsets.sort();
        assert_eq!(sunsets, sorted, "the table is in release order");
    }

    #[test]
    fn v26_is_current_now_warns_in_september_2027_and_is_refused_after_november() {
        assert_eq!(
            API_VERSION.status_on(on("2026-11-29")),
            VersionStatus::Current
        );
        assert_eq!(API_VERSION.check_on(on("2027-09-01")).unwrap(), None);
        assert_eq!(
            API_VERSION.status_on(on("2027-09-15")),
            VersionStatus::SunsetSoon(47)
        );
        let warning = API_VERSION.check_on(on("2027-10-31")).unwrap().unwrap();
        assert!(
            warning.contains("v26 sunsets on 2027-11-01 (1 days left")
                && warning.contains("projected"),
            "{warning}"
        );
        let error = API_VERSION
            .check_on(on("2027-11-02"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("turned off") && error.contains("google-ads.wasm"),
            "{error}"
        );
    }

    #[test]
    fn announced_sunsets_have_passed() {
        for name in ["v20", "v21", "v22"] {
            let version = KNOWN_VERSIONS.iter().find(|v| v.name == name).unwrap();
            assert_eq!(
                version.status_on(on("2026-11-29")),
                VersionStatus::Sunset,
                "{name}"
            );
        }
        let v23 = KNOWN_VERSIONS.iter().find(|v| v.name == "v23").unwrap();
        // 64 days before its projected sunset: not yet within the warning window.
        assert_eq!(v23.status_on(on("2026-11-29")), VersionStatus::Current);
        assert_eq!(
            v23.status_on(on("2026-12-03")),
            VersionStatus::SunsetSoon(60)
        );
    }
}
