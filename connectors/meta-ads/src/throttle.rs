//! Meta's usage headers read after every call, so the connector slows down before the limit
//! instead of running into it: `X-Business-Use-Case-Usage` (the limit Marketing API calls count
//! against), `X-Ad-Account-Usage` and the legacy `x-fb-ads-insights-throttle`.

use serde_json::Value;

/// The most-used limit the response headers report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// The highest percentage of any limit in any header (0-100, may exceed 100).
    pub percent: f64,
    /// Which header and limit that is, for the log (`x-business-use-case-usage ads_insights call_count`).
    pub what: String,
    /// Minutes Meta says it will take to regain access (`estimated_time_to_regain_access`).
    pub regain_minutes: u64,
}

impl Usage {
    /// Reads the usage headers of a response (names lowercase).
    pub fn from_headers(headers: &[(String, String)]) -> Self {
        let mut usage = Usage::default();
        for (name, value) in headers {
            let Ok(json) = serde_json::from_str::<Value>(value) else {
                continue;
            };
            match name.as_str() {
                "x-business-use-case-usage" => {
                    for entries in json.as_object().into_iter().flat_map(|o| o.values()) {
                        for entry in entries.as_array().into_iter().flatten() {
                            let kind = entry["type"].as_str().unwrap_or("?");
                            for field in ["call_count", "total_cputime", "total_time"] {
                                usage.note(number(&entry[field]), || {
                                    format!("{name} {kind} {field}")
                                });
                            }
                            let regain = number(&entry["estimated_time_to_regain_access"]);
                            usage.regain_minutes = usage.regain_minutes.max(regain as u64);
                        }
                    }
                }
                "x-fb-ads-insights-throttle" | "x-ad-account-usage" | "x-app-usage" => {
                    for (field, value) in json.as_object().into_iter().flatten() {
                        if field.ends_with("_pct") || field == "call_count" {
                            usage.note(number(value), || format!("{name} {field}"));
                        }
                    }
                }
                _ => {}
            }
        }
        usage
    }

    fn note(&mut self, percent: f64, what: impl FnOnce() -> String) {
        if percent > self.percent {
            self.percent = percent;
            self.what = what();
        }
    }

    /// How long to pause before the next call, in seconds: Meta's own estimate when it gives one,
    /// else a pause growing from 0 at `threshold` % to `max_pause` seconds at 100 %.
    pub fn pause_seconds(&self, threshold: f64, max_pause: u64) -> u64 {
        if self.regain_minutes > 0 {
            return self.regain_minutes * 60;
        }
        if self.percent < threshold {
            return 0;
        }
        let share = ((self.percent - threshold) / (100.0 - threshold).max(1.0)).clamp(0.0, 1.0);
        ((max_pause as f64 * share).ceil() as u64)
            .max(1)
            .min(max_pause.max(1))
    }
}

/// Numbers arrive as JSON numbers or strings.
fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_highest_limit_of_every_header_counts() {
        let usage = Usage::from_headers(&headers(&[
            (
                "x-business-use-case-usage",
                r#"{"1234": [{"type": "ads_insights", "call_count": 12, "total_cputime": 81, "total_time": 40, "estimated_time_to_regain_access": 0, "ads_api_access_tier": "standard_access"}]}"#,
            ),
            (
                "x-fb-ads-insights-throttle",
                r#"{"app_id_util_pct": 3.5, "acc_id_util_pct": 20}"#,
            ),
            ("content-type", "application/json"),
        ]));
        assert_eq!(usage.percent, 81.0);
        assert_eq!(
            usage.what,
            "x-business-use-case-usage ads_insights total_cputime"
        );
        assert_eq!(usage.pause_seconds(75.0, 60), 15);
        assert_eq!(usage.pause_seconds(90.0, 60), 0);
    }

    #[test]
    fn metas_estimate_to_regain_access_wins() {
        let usage = Usage::from_headers(&headers(&[(
            "x-business-use-case-usage",
            r#"{"1234": [{"type": "ads_management", "call_count": 100, "total_cputime": 5, "total_time": 5, "estimated_time_to_regain_access": 7}]}"#,
        )]));
        assert_eq!(usage.regain_minutes, 7);
        assert_eq!(usage.pause_seconds(75.0, 60), 420);
    }
}
