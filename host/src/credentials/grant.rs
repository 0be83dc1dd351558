//! Credential grants: what the operator lets one connection use, by name. A grant says which
//! credential (a Google identity or a secret value), which OAuth scopes, and which hosts it may be
//! sent to. Nothing is granted implicitly: a connection without a grant gets no credential, and
//! the lake's and BigQuery's identity reaches a connector only through a grant that names it.

use super::TokenSource;
use std::fmt;
use std::sync::Arc;

/// Where a Google identity grant sends tokens when the operator names no hosts.
pub const GOOGLE_DEFAULT_HOSTS: &str = "*.googleapis.com";

/// One credential a connection may use.
#[derive(Clone)]
pub struct Grant {
    /// The name the connector asks for (`google`, `developer_token`).
    pub name: String,
    /// What fills the placeholder.
    pub source: GrantSource,
    /// OAuth scopes a Google identity's tokens may carry; the connector may ask for fewer.
    pub scopes: Vec<String>,
    /// Where the credential may be sent.
    pub hosts: Vec<HostPattern>,
}

/// What a grant hands out.
#[derive(Clone)]
pub enum GrantSource {
    /// OAuth access tokens of a Google identity; `who` names it in messages.
    Google {
        tokens: Arc<dyn TokenSource>,
        who: String,
    },
    /// A fixed value (an API token), resolved by the host at start; `origin` says where it came
    /// from (`env META_TOKEN`), never what it is.
    Secret { value: SecretValue, origin: String },
}

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps `value`.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("name", &self.name)
            .field("source", &self.source_description())
            .field("scopes", &self.scopes)
            .field("hosts", &self.hosts)
            .finish()
    }
}

/// Why a connector's request for a credential is refused; the message names the rule and the
/// `inlet.toml` table that would allow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantRefusal {
    #[error(
        "credential `{name}` is not granted to connection `{connection}` (grants: {granted}); the operator grants it in [connections.{connection}.grants.{name}] (`inlet spec` shows what the connector asks for)"
    )]
    NotGranted {
        connection: String,
        name: String,
        granted: String,
    },
    #[error(
        "credential `{name}` asked for scopes the grant does not allow ({missing}); connection `{connection}` is granted {granted}: add them to `scopes` in [connections.{connection}.grants.{name}] if the connector should have them"
    )]
    Scopes {
        connection: String,
        name: String,
        missing: String,
        granted: String,
    },
    #[error("credential `{name}` is a secret value and has no OAuth scopes (asked for {asked})")]
    SecretScopes { name: String, asked: String },
}

impl Grant {
    /// What this grant hands out, for messages (never the secret).
    pub fn source_description(&self) -> String {
        match &self.source {
            GrantSource::Google { who, .. } => format!("Google identity: {who}"),
            GrantSource::Secret { origin, .. } => format!("secret from {origin}"),
        }
    }

    /// The secret value, if this grant holds one (for redaction).
    pub fn secret(&self) -> Option<&SecretValue> {
        match &self.source {
            GrantSource::Secret { value, .. } => Some(value),
            GrantSource::Google { .. } => None,
        }
    }

    /// Checks that `asked` scopes are within the grant; `connection` names it in the refusal.
    pub fn check_scopes(&self, connection: &str, asked: &[String]) -> Result<(), GrantRefusal> {
        match &self.source {
            GrantSource::Secret { .. } if !asked.is_empty() => Err(GrantRefusal::SecretScopes {
                name: self.name.clone(),
                asked: asked.join(", "),
            }),
            GrantSource::Secret { .. } => Ok(()),
            GrantSource::Google { .. } => {
                let missing: Vec<&str> = asked
                    .iter()
                    .filter(|scope| !self.scopes.contains(scope))
                    .map(String::as_str)
                    .collect();
                if missing.is_empty() {
                    return Ok(());
                }
                Err(GrantRefusal::Scopes {
                    connection: connection.to_owned(),
                    name: self.name.clone(),
                    missing: missing.join(", "),
                    granted: if self.scopes.is_empty() {
                        "no scopes".to_owned()
                    } else {
                        self.scopes.join(", ")
                    },
                })
            }
        }
    }

    /// Whether the credential may be sent to `host` on `port` over `scheme`.
    pub fn reaches(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.hosts
            .iter()
            .any(|pattern| pattern.matches(scheme, host, port))
    }

    /// The hosts, for messages.
    pub fn hosts_description(&self) -> String {
        self.hosts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Finds the grant `name` among `grants`, or says which exist.
pub fn find<'a>(
    grants: &'a [Grant],
    connection: &str,
    name: &str,
) -> Result<&'a Grant, GrantRefusal> {
    grants
        .iter()
        .find(|g| g.name == name)
        .ok_or_else(|| GrantRefusal::NotGranted {
            connection: connection.to_owned(),
            name: name.to_owned(),
            granted: if grants.is_empty() {
                "none".to_owned()
            } else {
                grants
                    .iter()
                    .map(|g| format!("`{}`", g.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
}

/// A host a credential may go to: `api.example.com`, `api.example.com:8443` or
/// `*.googleapis.com` (any subdomain). Names without a port match HTTPS on 443 only, so a secret
/// never leaves in clear text unless the operator names the port (`127.0.0.1:8080`, a test
/// fixture).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl HostPattern {
    /// Parses a pattern; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.contains("://") || text.contains('/') {
            return Err(format!(
                "`{text}`: give a host (`api.example.com`, `api.example.com:8443`, `*.googleapis.com`), not a URL"
            ));
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("`{text}`: `{port}` is not a port"))?;
                (host, Some(port))
            }
            _ => (text, None),
        };
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest.to_owned()),
            None => (false, host),
        };
        if host.is_empty() || host.contains('*') {
            return Err(format!(
                "`{text}`: a wildcard may only open the name (`*.example.com`)"
            ));
        }
        if wildcard && !host.contains('.') {
            return Err(format!(
                "`{text}`: a wildcard needs a domain with a dot under it (`*.example.com`)"
            ));
        }
        Ok(Self {
            host,
            wildcard,
            port,
        })
    }

    /// Whether a request to `scheme://host:port` matches.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        let name_matches = if self.wildcard {
            host.strip_suffix(&self.host)
                .is_some_and(|prefix| prefix.ends_with('.') && prefix.len() > 1)
        } else {
            host == self.host
        };
        let port_matches = match self.port {
            Some(wanted) => wanted == port,
            None => scheme == "https" && port == 443,
        };
        name_matches && port_matches
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// What a connector says it will ask for, declared in its config schema under
/// `x-inlet-credentials` so an operator can review it (`inlet spec`) before granting.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialAsk {
    /// The name it passes to `host.credential`.
    pub name: String,
    /// `google` (OAuth tokens of a Google identity) or `secret` (a value such as an API token).
    pub kind: AskKind,
    /// OAuth scopes it will ask for (Google identities only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// What it is used for, in one line.
    #[serde(default)]
    pub purpose: String,
}

/// The kind of a [`CredentialAsk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AskKind {
    /// OAuth access tokens of a Google identity.
    Google,
    /// A fixed secret value.
    Secret,
}

/// The key in a connector's config schema that lists its [`CredentialAsk`]s.
pub const ASKS_KEY: &str = "x-inlet-credentials";

impl CredentialAsk {
    /// The asks declared in `config_schema` (none when the key is absent); an error names what
    /// is malformed.
    pub fn from_schema(config_schema: &str) -> Result<Vec<Self>, String> {
        let schema: serde_json::Value = serde_json::from_str(config_schema)
            .map_err(|e| format!("the config schema is not JSON: {e}"))?;
        match schema.get(ASKS_KEY) {
            None => Ok(Vec::new()),
            Some(asks) => serde_json::from_value(asks.clone())
                .map_err(|e| format!("`{ASKS_KEY}` in the config schema is malformed: {e}")),
        }
    }

    /// The `inlet.toml` table that grants this ask to `connection`, for `inlet spec`; `hosts` are
    /// the hosts of the connector's declared HTTP origins (as `host` or `host:port`).
    pub fn grant_example(&self, connection: &str, hosts: &[String]) -> String {
        let table = format!("[connections.{connection}.grants.{}]", self.name);
        let quoted = |items: &[String]| {
            items
                .iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let hosts = if hosts.is_empty() {
            "\"api.example.com\"".to_owned()
        } else {
            quoted(hosts)
        };
        match self.kind {
            AskKind::Google => format!(
                "{table}\nidentity = \"operator\"   # or a key file; add impersonate = \"sa@project.iam.gserviceaccount.com\" for that account's tokens\nscopes = [{}]\nhosts = [{hosts}]",
                quoted(&self.scopes)
            ),
            AskKind::Secret => format!(
                "{table}\nsecret = {{ env = \"{}\" }}   # or {{ file = \"path\" }}\nhosts = [{hosts}]",
                self.name.to_ascii_uppercase()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn google_grant(scopes: &[&str], hosts: &[&str]) -> Grant {
        struct NoTokens;
        impl TokenSource for NoTokens {
            fn token<'a>(
                &'a self,
                _: &'a [String],
            ) -> futures::future::BoxFuture<'a, Result<String, String>> {
                Box::pin(async { Ok(String::new()) })
            }
        }
        Grant {
            name: "google".into(),
            source: GrantSource::Google {
                tokens: Arc::new(NoTokens),
                who: "test".into(),
            },
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            hosts: hosts
                .iter()
                .map(|h| HostPattern::parse(h).unwrap())
                .collect(),
        }
    }

    #[test]
    fn host_patterns_match_names_ports_and_subdomains() {
        let grant = google_grant(
            &[],
            &["*.googleapis.com", "127.0.0.1:8080", "api.example.com"],
        );
        assert!(grant.reaches("https", "sheets.googleapis.com", 443));
        assert!(grant.reaches("https", "a.b.googleapis.com", 443));
        assert!(
            !grant.reaches("https", "googleapis.com", 443),
            "the bare domain"
        );
        assert!(!grant.reaches("https", "evilgoogleapis.com", 443));
        assert!(!grant.reaches("https", "sheets.googleapis.com.evil.io", 443));
        assert!(
            !grant.reaches("http", "sheets.googleapis.com", 80),
            "clear text"
        );
        assert!(!grant.reaches("https", "sheets.googleapis.com", 8443));
        assert!(grant.reaches("http", "127.0.0.1", 8080));
        assert!(!grant.reaches("http", "127.0.0.1", 8081));
        assert!(grant.reaches("https", "API.example.com", 443));
        for bad in [
            "https://x.com",
            "x.com/path",
            "*",
            "*.com",
            "a.*.com",
            "x.com:http",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            HostPattern::parse("[::1]:8080").unwrap().to_string(),
            "[::1]:8080"
        );
    }

    #[test]
    fn scopes_beyond_the_grant_are_refused_with_the_table_to_edit() {
        let grant = google_grant(&["a", "b"], &[]);
        assert!(grant.check_scopes("c", &["a".into()]).is_ok());
        assert!(grant.check_scopes("c", &[]).is_ok());
        let refusal = grant
            .check_scopes("sheets", &["a".into(), "cloud-platform".into()])
            .unwrap_err()
            .to_string();
        assert!(refusal.contains("(cloud-platform)"), "{refusal}");
        assert!(
            refusal.contains("[connections.sheets.grants.google]"),
            "{refusal}"
        );
        let missing = find(&[grant], "sheets", "meta_token")
            .unwrap_err()
            .to_string();
        assert!(missing.contains("grants: `google`"), "{missing}");
        assert!(
            missing.contains("[connections.sheets.grants.meta_token]"),
            "{missing}"
        );
    }

    #[test]
    fn asks_are_read_from_the_config_schema() {
        let schema = serde_json::json!({
            "type": "object",
            ASKS_KEY: [{"name": "google", "kind": "google", "scopes": ["s"], "purpose": "reads"}]
        });
        let asks = CredentialAsk::from_schema(&schema.to_string()).unwrap();
        assert_eq!(asks[0].kind, AskKind::Google);
        let example = asks[0].grant_example("x", &["sheets.googleapis.com".into()]);
        assert!(
            example.contains("scopes = [\"s\"]")
                && example.contains("hosts = [\"sheets.googleapis.com\"]"),
            "{example}"
        );
        assert!(CredentialAsk::from_schema("{}").unwrap().is_empty());
        let bad = serde_json::json!({ASKS_KEY: [{"name": "x", "kind": "magic"}]});
        assert!(CredentialAsk::from_schema(&bad.to_string()).is_err());
    }
}
