//! Secret references in `inlet.toml`: a string written as `{ env = "NAME" }`, `{ file = "path" }`
//! or `{ secret = "projects/P/secrets/S/versions/V" }` is read by the host at start, and every
//! value read is redacted from what Inlet prints from then on (logs, errors, run records).

mod crc32c;
mod secret_manager;

pub use crc32c::checksum as crc32c;
pub use secret_manager::{SECRET_MANAGER, SecretManager};

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Where a secret value comes from; exactly one field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// An environment variable of the `inlet` process. Example: `"PGPASSWORD"`.
    pub env: Option<String>,
    /// A file (relative to `inlet.toml`); one trailing newline is dropped. Example:
    /// `"/run/secrets/pg"`.
    pub file: Option<PathBuf>,
    /// A Secret Manager secret version, read with the operator's Google credentials. Example:
    /// `"projects/my-project/secrets/pg-password/versions/latest"`.
    pub secret: Option<String>,
}

/// The keys a reference table may hold.
const REFERENCE_KEYS: [&str; 3] = ["env", "file", "secret"];

impl SecretSource {
    /// Reads a reference written as a TOML table; `None` when `table` is not one (a table of
    /// connector settings): a reference is a table whose only key is `env`, `file` or `secret`
    /// with a string value.
    pub fn from_table(table: &toml::Table) -> Option<Self> {
        let (key, value) = table.iter().next()?;
        if table.len() != 1 || !REFERENCE_KEYS.contains(&key.as_str()) {
            return None;
        }
        let value = value.as_str()?.to_owned();
        Some(match key.as_str() {
            "env" => Self {
                env: Some(value),
                ..Self::default()
            },
            "file" => Self {
                file: Some(PathBuf::from(value)),
                ..Self::default()
            },
            _ => Self {
                secret: Some(value),
                ..Self::default()
            },
        })
    }

    /// Checks the shape: exactly one source, a well-formed Secret Manager name.
    pub fn check(&self) -> Result<(), String> {
        let given = [
            self.env.is_some(),
            self.file.is_some(),
            self.secret.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(
                "a secret reference takes exactly one of `env`, `file` or `secret` (`{ env = \"NAME\" }`)".into(),
            );
        }
        if let Some(name) = &self.secret {
            version_name(name)?;
        }
        if self.env.as_ref().is_some_and(String::is_empty) {
            return Err("`env` names no variable".into());
        }
        Ok(())
    }

    /// Where the value comes from, for messages (never the value).
    pub fn describe(&self, base: &Path) -> String {
        match (&self.env, &self.file, &self.secret) {
            (Some(name), _, _) => format!("the environment variable `{name}`"),
            (_, Some(file), _) => format!("the file `{}`", base.join(file).display()),
            (_, _, Some(name)) => format!("the Secret Manager secret `{name}`"),
            _ => "an empty reference".into(),
        }
    }
}

/// `projects/P/secrets/S/versions/V`, or `projects/P/secrets/S` meaning its latest version.
pub fn version_name(name: &str) -> Result<String, String> {
    let parts: Vec<&str> = name.split('/').collect();
    let ok = |i: usize, word: &str| parts.get(i) == Some(&word);
    let named = |i: usize| {
        parts.get(i).is_some_and(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        })
    };
    match parts.len() {
        4 if ok(0, "projects") && ok(2, "secrets") && named(1) && named(3) => {
            Ok(format!("{name}/versions/latest"))
        }
        6 if ok(0, "projects")
            && ok(2, "secrets")
            && ok(4, "versions")
            && named(1)
            && named(3)
            && named(5) =>
        {
            Ok(name.to_owned())
        }
        _ => Err(format!(
            "`{name}` is not a Secret Manager secret version; write `projects/<project>/secrets/<secret>/versions/<version or latest>`"
        )),
    }
}

/// A string in `inlet.toml` that may be written in place or as a secret reference.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ConfigString {
    /// Written in the file.
    Text(String),
    /// Read at start from where the reference points.
    Reference(SecretSource),
}

impl ConfigString {
    /// The value; `None` while it is a reference not yet resolved.
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            Self::Reference(_) => None,
        }
    }
}

/// Reads secret values: environment, files (relative to `base`), Secret Manager (asked only when
/// a reference names it).
pub struct SecretReader {
    base: PathBuf,
    secret_manager: Option<Arc<SecretManager>>,
}

impl SecretReader {
    /// A reader for references in a file under `base`; `secret_manager` answers `secret = ...`.
    pub fn new(base: &Path, secret_manager: Option<Arc<SecretManager>>) -> Self {
        Self {
            base: base.to_owned(),
            secret_manager,
        }
    }

    /// The value `source` points at, remembered for redaction. The error names the source,
    /// never a value. A value that is empty is refused: an unset secret must not pass as "".
    pub async fn read(&self, source: &SecretSource) -> Result<String, String> {
        source.check()?;
        let origin = source.describe(&self.base);
        let value = match &source.secret {
            Some(name) => {
                let manager = self.secret_manager.as_ref().ok_or_else(|| {
                    format!("{origin}: Secret Manager is not available to this command")
                })?;
                manager.access(name).await?
            }
            None => read_local(source, &self.base)?,
        };
        if value.is_empty() {
            return Err(format!("the secret from {origin} is empty"));
        }
        remember(&value);
        Ok(value)
    }
}

/// Reads an `env` or `file` reference (`secret` needs [`SecretReader`]); the value is
/// remembered for redaction. Errors name the variable or file, never a value.
pub fn read_local(source: &SecretSource, base: &Path) -> Result<String, String> {
    let value = match (&source.env, &source.file) {
        (Some(name), _) => std::env::var(name)
            .map_err(|e| format!("the environment variable `{name}` is not usable: {e}"))?,
        (None, Some(file)) => {
            let path = base.join(file);
            let mut value = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read the secret file `{}`: {e}", path.display()))?;
            if value.ends_with('\n') {
                value.pop();
                if value.ends_with('\r') {
                    value.pop();
                }
            }
            value
        }
        (None, None) => {
            return Err(format!(
                "{} is read only when the file is loaded by a command that resolves secrets",
                source.describe(base)
            ));
        }
    };
    if value.is_empty() {
        return Err(format!(
            "the secret from {} is empty",
            source.describe(base)
        ));
    }
    remember(&value);
    Ok(value)
}

/// Every secret value read by this process, longest first (so a secret that contains another
/// is replaced whole).
static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Shorter values are not redacted: replacing every `1` or `ab` in a log would garble it
/// without hiding anything a guess would not find.
const SHORTEST_REDACTED: usize = 4;

/// Adds `value` to what [`redact`] hides.
pub fn remember(value: &str) {
    if value.len() < SHORTEST_REDACTED {
        return;
    }
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    if !known.iter().any(|k| k == value) {
        known.push(value.to_owned());
        known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    }
}

/// `text` with every secret value this process read replaced by `***`.
pub fn redact(text: &str) -> String {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_owned();
    for secret in known.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

/// Every secret value this process read (for the sandbox's own redaction of connector output).
pub fn known() -> Vec<String> {
    KNOWN.read().unwrap_or_else(|e| e.into_inner()).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_is_a_table_with_one_known_key_and_a_string() {
        let table = |text: &str| -> toml::Table { toml::from_str(text).unwrap() };
        assert_eq!(
            SecretSource::from_table(&table("env = \"PG\""))
                .unwrap()
                .env,
            Some("PG".into())
        );
        assert!(SecretSource::from_table(&table("secret = \"projects/p/secrets/s\"")).is_some());
        // Settings tables are left alone.
        assert!(SecretSource::from_table(&table("env = \"PG\"\nport = 1")).is_none());
        assert!(SecretSource::from_table(&table("cursor = \"id\"")).is_none());
        assert!(SecretSource::from_table(&table("file = 3")).is_none());
    }

    #[test]
    fn secret_manager_names_are_checked() {
        assert_eq!(
            version_name("projects/p/secrets/s").unwrap(),
            "projects/p/secrets/s/versions/latest"
        );
        assert_eq!(
            version_name("projects/p/secrets/s/versions/3").unwrap(),
            "projects/p/secrets/s/versions/3"
        );
        for bad in [
            "p/s",
            "projects//secrets/s",
            "projects/p/secrets/s/versions",
            "projects/p/secrets/s/v/1",
            "projects/p/secrets/s?x",
        ] {
            assert!(version_name(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn values_are_read_and_redacted_and_errors_name_the_source() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "file-secret-value\n").unwrap();
        let reader = SecretReader::new(dir.path(), None);
        let file = SecretSource {
            file: Some("pw".into()),
            ..SecretSource::default()
        };
        assert_eq!(reader.read(&file).await.unwrap(), "file-secret-value");
        assert_eq!(
            redact("login with file-secret-value now"),
            "login with *** now"
        );
        let missing = SecretSource {
            env: Some("INLET_TEST_SURELY_UNSET_VARIABLE".into()),
            ..SecretSource::default()
        };
        let error = reader.read(&missing).await.unwrap_err();
        assert!(
            error.contains("`INLET_TEST_SURELY_UNSET_VARIABLE`"),
            "{error}"
        );
        let manager = SecretSource {
            secret: Some("projects/p/secrets/s".into()),
            ..SecretSource::default()
        };
        assert!(
            reader
                .read(&manager)
                .await
                .unwrap_err()
                .contains("not available")
        );
        std::fs::write(dir.path().join("empty"), "\n").unwrap();
        let empty = SecretSource {
            file: Some("empty".into()),
            ..SecretSource::default()
        };
        assert!(reader.read(&empty).await.unwrap_err().contains("is empty"));
    }

    #[test]
    fn short_values_are_not_redacted_and_longer_secrets_win() {
        remember("abc");
        assert_eq!(redact("abc"), "abc");
        remember("prefix-secret");
        remember("prefix-secret-longer");
        assert_eq!(redact("x prefix-secret-longer y"), "x *** y");
    }
}
