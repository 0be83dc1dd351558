//! Connector settings from the command line: `--config FILE` (JSON or TOML) and `--set key=value`.

use anyhow::{Context, bail};
use std::path::PathBuf;

/// Settings for the connector.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectorSettings {
    /// A JSON or TOML file with the connector's settings.
    #[arg(long = "config", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// A setting, `key=value`; dotted keys nest (`db.port=5432`), a quoted segment may hold dots
    /// (`tables."public.orders".where=id>100`). Values that parse as JSON (numbers, booleans,
    /// arrays, objects) are taken as such, anything else as a string.
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
            let (path, value) =
                split_assignment(assignment).with_context(|| format!("`--set {assignment}`"))?;
            let value = serde_json::from_str(value)
                .unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
            set_path(&mut config, &path, value).with_context(|| format!("`--set {assignment}`"))?;
        }
        Ok(config)
    }
}

/// Splits `a."b.c".d=value` into its key path (`["a", "b.c", "d"]`) and the value text.
fn split_assignment(assignment: &str) -> anyhow::Result<(Vec<String>, &str)> {
    let mut path = Vec::new();
    let mut segment = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    for (at, c) in assignment.char_indices() {
        match c {
            '"' if quoted => quoted = false,
            '"' if segment.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            _ if quoted => segment.push(c),
            '.' | '=' => {
                if segment.is_empty() && !was_quoted {
                    bail!(
                        "the key has an empty segment (write `a.b=value`, or `a.\"b.c\"=value` for a key with dots)"
                    );
                }
                path.push(std::mem::take(&mut segment));
                was_quoted = false;
                if c == '=' {
                    return Ok((path, &assignment[at + 1..]));
                }
            }
            '"' => bail!("a quote may only open a key segment (`a.\"b.c\".d=value`)"),
            _ if was_quoted => {
                bail!("text after a quoted key segment must be `.` or `=`")
            }
            _ => segment.push(c),
        }
    }
    if quoted {
        bail!("a quoted key segment is not closed");
    }
    bail!("not of the form key=value")
}

fn set_path(
    config: &mut serde_json::Value,
    path: &[String],
    value: serde_json::Value,
) -> anyhow::Result<()> {
    let Some((last, parents)) = path.split_last() else {
        bail!("the key is empty");
    };
    let mut target = config;
    for part in parents {
        let object = target
            .as_object_mut()
            .with_context(|| format!("`{part}` is inside a value that is not a table"))?;
        target = object
            .entry(part.clone())
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
    }
    let object = target
        .as_object_mut()
        .with_context(|| format!("`{last}` is inside a value that is not a table"))?;
    object.insert(last.clone(), value);
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

    #[test]
    fn quoted_segments_hold_dots_and_equals_signs() {
        let settings = ConnectorSettings {
            file: None,
            set: vec![
                "tables.\"public.orders\".where=id>100 AND note = 'a.b'".into(),
                "tables.\"public.orders\".cursor=updated_at".into(),
                "tables.\"x=y\".columns=[\"a\"]".into(),
            ],
        };
        assert_eq!(
            settings.to_json().unwrap(),
            serde_json::json!({"tables": {
                "public.orders": {"where": "id>100 AND note = 'a.b'", "cursor": "updated_at"},
                "x=y": {"columns": ["a"]},
            }})
        );
    }

    #[test]
    fn malformed_keys_say_what_is_wrong() {
        for (assignment, expected) in [
            ("novalue", "not of the form key=value"),
            ("a..b=1", "empty segment"),
            ("tables.\"public.x=1", "not closed"),
            ("tables.\"a\"b=1", "after a quoted key segment"),
            ("a\"b\"=1", "only open a key segment"),
        ] {
            let message = format!("{:#}", split_assignment(assignment).unwrap_err());
            assert!(message.contains(expected), "{assignment}: {message}");
        }
        let mut config = serde_json::json!({"port": 5432});
        let error = set_path(&mut config, &["port".into(), "x".into()], 1.into()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`x` is inside a value that is not a table")
        );
    }
}
