//! Which accounts a sync reads: the configured `customer_ids`, or every enabled client account
//! under the manager in `login_customer_id`, walked level by level through `customer_client`
//! as Google's account-hierarchy guide does (`level <= 1` on each manager, then its
//! sub-managers).

use crate::api::Ads;
use inlet_sdk::Error;
use std::collections::BTreeSet;

/// The query run on each manager.
pub const CLIENTS_QUERY: &str = "SELECT customer_client.id, customer_client.level, customer_client.manager, customer_client.status, customer_client.descriptive_name FROM customer_client WHERE customer_client.level <= 1";

/// An account id: 10 digits at most, dashes (as the UI shows them) dropped.
pub fn normalize_id(setting: &str, id: &str) -> Result<String, Error> {
    let digits: String = id.chars().filter(|c| *c != '-').collect();
    if digits.is_empty() || digits.len() > 10 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::config(format!(
            "setting `{setting}`: `{id}` is not a Google Ads account id (10 digits, like `1234567890` or `123-456-7890`)"
        )));
    }
    Ok(digits)
}

/// The accounts to read, sorted, each once.
pub fn accounts(
    ads: &Ads,
    customer_ids: Option<&[String]>,
    login_customer_id: Option<&str>,
) -> Result<Vec<String>, Error> {
    if let Some(ids) = customer_ids {
        if ids.is_empty() {
            return Err(Error::config(
                "setting `customer_ids` lists no account; list some, or leave it out to read every account under `login_customer_id`",
            ));
        }
        let ids: BTreeSet<String> = ids
            .iter()
            .map(|id| normalize_id("customer_ids", id))
            .collect::<Result<_, _>>()?;
        return Ok(ids.into_iter().collect());
    }
    let Some(manager) = login_customer_id else {
        return Err(Error::config(
            "set `customer_ids` (the accounts to read) or `login_customer_id` (a manager account whose client accounts are all read)",
        ));
    };
    let mut found = BTreeSet::new();
    let mut visited = BTreeSet::new();
    let mut pending = vec![manager.to_owned()];
    while let Some(current) = pending.pop() {
        if !visited.insert(current.clone()) {
            continue;
        }
        let rows = ads.search_stream(
            &current,
            CLIENTS_QUERY,
            "the account list (customer_client)",
        )?;
        for row in rows {
            let client = &row["customerClient"];
            let id = match &client["id"] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let level = client["level"].as_str().unwrap_or("0");
            let is_manager = client["manager"].as_bool().unwrap_or(false);
            let enabled = client["status"].as_str() == Some("ENABLED");
            if is_manager {
                if level != "0" {
                    pending.push(id);
                }
            } else if enabled {
                found.insert(id);
            }
        }
    }
    if found.is_empty() {
        return Err(Error::NotFound(format!(
            "manager account `{manager}` has no enabled client account; set `customer_ids` to the accounts to read"
        )));
    }
    Ok(found.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_lose_their_dashes_and_must_be_digits() {
        assert_eq!(normalize_id("x", "123-456-7890").unwrap(), "1234567890");
        assert!(normalize_id("x", "12345678901").is_err());
        assert!(normalize_id("x", "abc").is_err());
    }
}
