//! The postgres connector's default replication slot is named after the connection, which a
//! connector never learns: the host fills `slot` in before the connector sees its settings.

/// The connector whose settings get a default slot.
const POSTGRES: &str = "postgres";

/// `config` with `slot = "inlet_<connection>"` added when `connector` is postgres, `replication`
/// is `logical` and no slot is set; `None` when nothing changes.
pub fn with_default_slot(
    connector: &str,
    connection: &str,
    config: &serde_json::Value,
) -> Option<serde_json::Value> {
    let settings = config.as_object()?;
    let logical = settings.get("replication").and_then(|v| v.as_str()) == Some("logical");
    if connector != POSTGRES || !logical || settings.contains_key("slot") {
        return None;
    }
    let mut filled = settings.clone();
    filled.insert(
        "slot".into(),
        serde_json::Value::String(slot_name(connection)),
    );
    Some(serde_json::Value::Object(filled))
}

/// `inlet_<connection>` as PostgreSQL accepts a slot name: lowercase letters, digits and `_`
/// (anything else becomes `_`), at most 63 bytes.
pub fn slot_name(connection: &str) -> String {
    let mut name: String = format!("inlet_{connection}")
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .collect();
    name.truncate(63);
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn logical_postgres_connections_get_a_slot_named_after_them() {
        let config = json!({"host": "db", "replication": "logical"});
        let filled = with_default_slot("postgres", "App-Prod.eu", &config).unwrap();
        assert_eq!(filled["slot"], "inlet_app_prod_eu");
        // A slot the user chose stays; cursor mode and other connectors get none.
        let chosen = json!({"replication": "logical", "slot": "mine"});
        assert_eq!(with_default_slot("postgres", "app", &chosen), None);
        assert_eq!(
            with_default_slot("postgres", "app", &json!({"host": "db"})),
            None
        );
        assert_eq!(with_default_slot("sample", "app", &config), None);
    }

    #[test]
    fn slot_names_fit_postgres_limits() {
        let name = slot_name(&"ü".repeat(100));
        assert_eq!(name.len(), 63);
        assert!(name.starts_with("inlet__"));
        assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    }
}
