//! The one Marketing API version this connector speaks, and the table of known sunset dates it
//! is checked against (ADS-APIS.md, Meta's Marketing API version list [M-mver]).

use inlet_sdk::versions::ApiVersion;

const SOURCE: &str = "Meta's Marketing API versions page (developers.facebook.com/documentation/ads-commerce/marketing-api/marketing-api-changelog/versions)";
const SUCCESSOR: &str = "install a newer meta-ads connector (a newer Inlet, or `connector = \"path/to/meta-ads.wasm\"` in inlet.toml)";

/// Marketing API versions and their end dates as Meta lists them; `None` = not announced yet.
/// The Marketing API runs on its own, shorter clock than the Graph API: a version ends at least
/// 90 days after its successor ships.
pub const KNOWN_VERSIONS: [ApiVersion; 5] = [
    version("v23.0", Some("2026-06-09")),
    version("v24.0", Some("2026-11-10")),
    version("v25.0", Some("2027-02-23")),
    version("v26.0", None),
    version("v27.0", None),
];

/// The version in every URL this connector sends (`https://graph.facebook.com/v26.0/...`).
/// v26.0 (released 2026-07-29) is the version facebook-business 26.0.3 pins; its end date is not
/// announced yet, so the check stays quiet until a connector update writes one into the table.
pub const API_VERSION: ApiVersion = KNOWN_VERSIONS[3];

const fn version(name: &'static str, sunset: Option<&'static str>) -> ApiVersion {
    ApiVersion {
        api: "Meta Marketing API",
        name,
        sunset,
        source: SOURCE,
        successor: SUCCESSOR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inlet_sdk::versions::{VersionStatus, parse_date};

    fn on(date: &str) -> i64 {
        parse_date(date).unwrap()
    }

    #[test]
    fn the_current_version_is_v26_with_no_announced_end() {
        assert_eq!(API_VERSION.name, "v26.0");
        assert_eq!(API_VERSION.sunset, None);
        assert_eq!(API_VERSION.check_on(on("2030-01-01")).unwrap(), None);
    }

    #[test]
    fn the_table_warns_and_refuses_on_the_documented_dates() {
        let v24 = KNOWN_VERSIONS[1];
        assert_eq!(v24.status_on(on("2026-09-10")), VersionStatus::Current);
        assert_eq!(
            v24.status_on(on("2026-09-11")),
            VersionStatus::SunsetSoon(60)
        );
        assert_eq!(
            v24.status_on(on("2026-11-10")),
            VersionStatus::SunsetSoon(0)
        );
        assert_eq!(v24.status_on(on("2026-11-11")), VersionStatus::Sunset);
        let warning = KNOWN_VERSIONS[2]
            .check_on(on("2027-02-01"))
            .unwrap()
            .unwrap();
        assert!(
            warning.contains("v25.0 sunsets on 2027-02-23 (22 days left"),
            "{warning}"
        );
        let error = KNOWN_VERSIONS[0]
            .check_on(on("2026-06-10"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("v23.0 was turned off on 2026-06-09")
                && error.contains("newer meta-ads"),
            "{error}"
        );
    }

    #[test]
    fn versions_are_in_order_and_end_in_order() {
        let ends: Vec<i64> = KNOWN_VERSIONS
            .iter()
            .filter_map(|v| v.sunset)
            .map(on)
            .collect();
        assert!(ends.windows(2).all(|w| w[0] < w[1]), "{ends:?}");
    }
}
