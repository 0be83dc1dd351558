//! Connector settings from the command line: `--config FILE` (JSON or TOML) and `--set key=value`.

use anyhow::{Context, bail};
use std::path::PathBuf;

/// Settings for the connector.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectorSettings {
    /// A JSON or TOML file with the connector's settings.
    #[arg(long = "config", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// A setting, `key=value`; dotted keys nest (`db.port=5432`). Values that parse as JSON
    /// (numbers, booleans, arrays) are taken as such, anything else as a string.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl ConnectorSettings {
    /// The settings as the JSON object a connector receives.
    pub fn to_json(&self) -> anyhow::Result<serde_json::Value> {
        let mut config = match &self.file {
            None => serde_json::Value::Object(Default::default()),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading connector settings `{}`", path.display()))?;
                let is_toml = path.extension().is_some_and(|e| e == "toml");
                if is_toml {
                    let table: toml::Table = toml::from_str(&text)
                        .with_context(|| format!("parsing `{}` as TOML", path.display()))?;
                    crate::config::toml_to_json(&table)
                } else {
                    serde_json::from_str(&text)
                        .with_context(|| format!("parsing `{}` as JSON", path.display()))?
                }
            }
        };
        if !config.is_object() {
            bail!("connector settings must be an object");
        }
        for assignment in &self.set {
            let (key, value) = assignment
                .split_once('=')
                .with_context(|| format!("`--set {assignment}` is not of the form key=value"))?;
            let value = serde_json::from_str(value)
                .unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
            set_path(&mut config, key, value).with_context(|| format!("`--set {assignment}`"))?;
        }
        Ok(config)
    }
}

fn set_path(
    config: &mut serde_json::Value,
    key: &str,
    value: serde_json::Value,
) -> anyhow::Result<()> {
    let mut target = config;
    let parts: Vec<&str> = key.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        let object = target
            .as_object_mut()
            .with_context(|| format!("`{part}` is not an object"))?;
        target = object
            .entry(part.to_string())
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
    }
    let object = target
        .as_object_mut()
        .context("the parent of the key is not an object")?;
    object.insert(parts[parts.len() - 1].to_owned(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_parses_json_values_and_nests() {
        let settings = ConnectorSettings {
            file: None,
            set: vec![
                "patients=10".into(),
                "db.host=localhost".into(),
                "name=x=y".into(),
            ],
        };
        let json = settings.to_json().unwrap();
        assert_eq!(
            json,
            serde_json::json!({"patients": 10, "db": {"host": "localhost"}, "name": "x=y"})
        );
    }
}
