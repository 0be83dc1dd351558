//! The sandbox policy of one run: memory budget, CPU and wall-clock limits, network allowlist.

use super::address_class::{AddressClass, classify};
use super::bindings::Destination;
use super::resolve::{self, Resolve};
use super::tape::HttpTape;
use crate::credentials::Grant;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Limits and permissions for one connector run, decided by the operator.
#[derive(Debug, Clone)]
pub struct SandboxPolicy {
    /// Total linear memory and table bytes the component may hold.
    pub memory_bytes: u64,
    /// Time the component may spend executing its own code.
    pub cpu_time: Duration,
    /// Time a whole call (`read`, `discover`...) may take, host calls included.
    pub wall_time: Duration,
    /// Whether destinations may resolve to private addresses (loopback, RFC 1918, shared address
    /// space, IPv6 unique-local); other special-purpose addresses (link-local, metadata,
    /// multicast...) are never allowed. See `address_class`.
    pub allow_private_network: bool,
    /// When set, declared destinations must also appear here (`host:port`).
    pub allowed_destinations: Option<Vec<String>>,
    /// The credentials the operator grants this connection, by name; none by default.
    pub grants: Vec<Grant>,
    /// Where host names are resolved: when the run starts (the grant) and again for every HTTP
    /// request. `None`: the operating system's resolver. Tests hand in their own.
    pub resolver: Option<Arc<dyn Resolve>>,
    /// Where HTTP exchanges are recorded (`--record`) or answered from (`--replay`, which sends
    /// nothing and resolves no HTTP origin).
    pub http_tape: Option<HttpTape>,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        Self {
            memory_bytes: 512 << 20,
            cpu_time: Duration::from_secs(3600),
            wall_time: Duration::from_secs(6 * 3600),
            allow_private_network: false,
            allowed_destinations: None,
            grants: Vec::new(),
            resolver: None,
            http_tape: None,
        }
    }
}

impl SandboxPolicy {
    /// This policy, with `grants`.
    pub fn with_grants(mut self, grants: Vec<Grant>) -> Self {
        self.grants = grants;
        self
    }
}

/// Why a connector may not use the destinations it declared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error(
        "destination template `{template}` names config field `{field}`, which is missing or not a string/number"
    )]
    MissingField { template: String, field: String },
    #[error("destination `{destination}` is not of the form `host:port`")]
    Malformed { destination: String },
    #[error("HTTP destination `{destination}` is not an origin `http(s)://host[:port]`")]
    MalformedOrigin { destination: String },
    #[error("destination `{destination}` cannot be resolved (is the host name right?): {reason}")]
    Unresolvable { destination: String, reason: String },
    #[error(
        "sandbox policy: destination `{destination}` resolves to the private address {address}; allow it with `allow_private_network = true` in the connection's [sandbox]"
    )]
    Private {
        destination: String,
        address: IpAddr,
    },
    #[error(
        "sandbox policy: destination `{destination}` resolves to {address}, and {rule}; no setting allows it"
    )]
    Forbidden {
        destination: String,
        address: IpAddr,
        rule: String,
    },
    #[error(
        "sandbox policy: destination `{destination}` is not in the operator's allowed destinations ({allowed})"
    )]
    NotAllowed {
        destination: String,
        allowed: String,
    },
}

/// An HTTP origin: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HttpOrigin {
    /// `http` or `https`.
    pub scheme: String,
    /// Host name or address, lowercase.
    pub host: String,
    /// Port (the scheme's default when the URL names none).
    pub port: u16,
}

impl HttpOrigin {
    /// Parses `scheme://host[:port]` (a trailing `/` is allowed, a path is not).
    pub fn parse(text: &str) -> Option<Self> {
        let uri: http::Uri = text.parse().ok()?;
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return None;
        }
        Self::of_uri(&uri)
    }

    /// The origin a request goes to.
    pub fn of_uri(uri: &http::Uri) -> Option<Self> {
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return None,
        };
        let host = uri.host()?.trim_matches(['[', ']']).to_ascii_lowercase();
        Some(Self {
            port: uri.port_u16().unwrap_or(default_port),
            scheme,
            host,
        })
    }
}

impl std::fmt::Display for HttpOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "{}://{host}:{}", self.scheme, self.port)
    }
}

/// The TCP endpoints and HTTP origins a run may reach, resolved before it starts.
///
/// TCP is pinned: the guest may connect only to `addresses`, and its name lookups answer only the
/// declared names, with the addresses checked here. HTTP origins are checked here and again, with
/// a fresh lookup, for every request (`sender`).
#[derive(Debug, Clone, Default)]
pub struct NetworkGrant {
    /// Declared destinations as the user wrote them (for messages).
    pub destinations: Vec<String>,
    /// The addresses TCP destinations resolved to.
    pub addresses: BTreeSet<SocketAddr>,
    /// The host names of TCP destinations (lowercase, see [`normalize_name`]) and the checked
    /// addresses they resolved to: the only names the guest may look up, and their answers.
    pub names: BTreeMap<String, Vec<IpAddr>>,
    /// HTTP origins.
    pub http: Vec<HttpOrigin>,
}

/// A host name as compared with declared ones: lowercase, without a trailing dot.
pub fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl NetworkGrant {
    /// No network at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// Resolves the connector's declared destinations against its config and the operator policy.
    pub async fn resolve(
        declared: &[Destination],
        config: &serde_json::Value,
        policy: &SandboxPolicy,
    ) -> Result<Self, PolicyError> {
        let mut grant = Self::default();
        for destination in declared {
            let template = match destination {
                Destination::Tcp(template) => template,
                Destination::Http(template) => {
                    let origin = Self::resolve_http(template, config, policy).await?;
                    grant.destinations.push(origin.to_string());
                    grant.http.push(origin);
                    continue;
                }
            };
            let destination = fill_template(template, config)?;
            if let Some(allowed) = &policy.allowed_destinations
                && !allowed.iter().any(|a| a == &destination)
            {
                return Err(PolicyError::NotAllowed {
                    destination,
                    allowed: allowed.join(", "),
                });
            }
            let malformed = || PolicyError::Malformed {
                destination: destination.clone(),
            };
            let (host, port) = destination.rsplit_once(':').ok_or_else(malformed)?;
            let port: u16 = port.parse().map_err(|_| malformed())?;
            let host = host.trim_matches(['[', ']']);
            if host.is_empty() {
                return Err(malformed());
            }
            let addresses = lookup_allowed(&destination, host, port, policy).await?;
            if host.parse::<IpAddr>().is_err() {
                let pinned = grant.names.entry(normalize_name(host)).or_default();
                for address in &addresses {
                    if !pinned.contains(&address.ip()) {
                        pinned.push(address.ip());
                    }
                }
            }
            grant.addresses.extend(addresses);
            grant.destinations.push(destination);
        }
        Ok(grant)
    }

    /// Whether a connect to `address` is allowed.
    pub fn allows(&self, address: &SocketAddr) -> bool {
        self.addresses.contains(address)
    }

    /// An HTTP origin checked like a TCP destination: operator allowlist (`host:port`), and every
    /// address it resolves to allowed by the address policy. The sender resolves and checks the
    /// name again for every request and connects only to an address it checked.
    async fn resolve_http(
        template: &str,
        config: &serde_json::Value,
        policy: &SandboxPolicy,
    ) -> Result<HttpOrigin, PolicyError> {
        let destination = fill_template(template, config)?;
        let origin =
            HttpOrigin::parse(&destination).ok_or_else(|| PolicyError::MalformedOrigin {
                destination: destination.clone(),
            })?;
        let host_port = format!("{}:{}", origin.host, origin.port);
        if let Some(allowed) = &policy.allowed_destinations
            && !allowed.iter().any(|a| a == &host_port || a == &destination)
        {
            return Err(PolicyError::NotAllowed {
                destination,
                allowed: allowed.join(", "),
            });
        }
        // A replayed run sends nothing: its origins need not resolve (an author's CI offline).
        if !policy.http_tape.as_ref().is_some_and(HttpTape::replays) {
            lookup_allowed(&destination, &origin.host, origin.port, policy).await?;
        }
        Ok(origin)
    }
}

/// Resolves `host` with the policy's resolver and checks every address it resolves to: one
/// refused address refuses the destination. `destination` names it in errors.
async fn lookup_allowed(
    destination: &str,
    host: &str,
    port: u16,
    policy: &SandboxPolicy,
) -> Result<Vec<SocketAddr>, PolicyError> {
    let resolver = resolve::or_system(policy.resolver.as_ref());
    let addresses = resolve::lookup(resolver.as_ref(), host, port)
        .await
        .map_err(|e| PolicyError::Unresolvable {
            destination: destination.to_owned(),
            reason: e.to_string(),
        })?;
    for address in &addresses {
        let class = classify(address.ip());
        let Some(rule) = class.refusal(policy.allow_private_network) else {
            continue;
        };
        return Err(match class {
            AddressClass::Private { .. } => PolicyError::Private {
                destination: destination.to_owned(),
                address: address.ip(),
            },
            _ => PolicyError::Forbidden {
                destination: destination.to_owned(),
                address: address.ip(),
                rule,
            },
        });
    }
    Ok(addresses)
}

/// The hosts of the declared HTTP origins with every setting at its default (`host` for HTTPS on
/// 443, else `host:port`): what a grant's `hosts` would usually name.
pub fn default_http_hosts(declared: &[Destination]) -> Vec<String> {
    let defaults = serde_json::json!({});
    declared
        .iter()
        .filter_map(|d| match d {
            Destination::Http(template) => fill_template(template, &defaults).ok(),
            Destination::Tcp(_) => None,
        })
        .filter_map(|origin| HttpOrigin::parse(&origin))
        .map(|origin| match (origin.scheme.as_str(), origin.port) {
            ("https", 443) => origin.host,
            _ => format!("{}:{}", origin.host, origin.port),
        })
        .collect()
}

/// Replaces `{field}` in a destination template by the top-level config value `field`.
fn fill_template(template: &str, config: &serde_json::Value) -> Result<String, PolicyError> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end =
            rest[start..]
                .find('}')
                .map(|e| start + e)
                .ok_or_else(|| PolicyError::Malformed {
                    destination: template.to_owned(),
                })?;
        // `{field}` or `{field:default}`.
        let (field, default) = match rest[start + 1..end].split_once(':') {
            Some((field, default)) => (field, Some(default)),
            None => (&rest[start + 1..end], None),
        };
        let value = match (config.get(field), default) {
            (Some(serde_json::Value::String(s)), _) => s.clone(),
            (Some(serde_json::Value::Number(n)), _) => n.to_string(),
            (None | Some(serde_json::Value::Null), Some(default)) => default.to_owned(),
            _ => {
                return Err(PolicyError::MissingField {
                    template: template.to_owned(),
                    field: field.to_owned(),
                });
            }
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A [`wasmtime::ResourceLimiter`] that budgets the total of all memories and tables of a store.
///
/// `StoreLimits` caps each memory on its own; a component has several, so the budget is kept here.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: u64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Self { limit, used: 0 }
    }

    fn grow(&mut self, current: usize, desired: usize) -> wasmtime::Result<bool> {
        let next = self.used + (desired.saturating_sub(current)) as u64;
        if next > self.limit {
            return Err(wasmtime::Error::new(Violation::Memory {
                limit: self.limit,
                wanted: next,
            }));
        }
        self.used = next;
        Ok(true)
    }
}

impl wasmtime::ResourceLimiter for MemoryBudget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(current, desired)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A table element is a pointer-sized reference on the host.
        self.grow(current * 8, desired * 8)
    }
}

/// A sandbox rule the connector broke. Raised as a trap, so the run ends.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    #[error("memory limit: the connector asked for {} MiB, over its limit of {} MiB", wanted >> 20, limit >> 20)]
    Memory { limit: u64, wanted: u64 },
    #[error("cpu limit: the connector ran for more than {0:?} of CPU time")]
    Cpu(Duration),
    #[error("wall-clock limit: the call took longer than {0:?}")]
    WallClock(Duration),
    #[error(
        "network policy: connecting to {address} was refused; the connector may only reach its declared destinations ({declared})"
    )]
    Network {
        address: SocketAddr,
        declared: String,
    },
    #[error(
        "network policy: the HTTP request to {url} was refused; the connector may only reach its declared destinations ({declared})"
    )]
    Http { url: String, declared: String },
    #[error(
        "network policy: the HTTP request to {url} was refused: `{host}` resolved to {address} when it was sent, and {rule}"
    )]
    Address {
        url: String,
        host: String,
        address: IpAddr,
        rule: String,
    },
    #[error(
        "network policy: name lookup of `{name}` refused: the connector may only look up its declared destinations ({declared})"
    )]
    NameLookup { name: String, declared: String },
    #[error("credential policy: credential `{credential}` may not be sent to {url}: {rule}")]
    Credential {
        credential: String,
        url: String,
        rule: String,
    },
    #[error("credential policy: {0}")]
    Grant(#[from] crate::credentials::GrantRefusal),
    #[error("{0}")]
    Replay(String),
    #[error("schema contract: {0}")]
    Schema(String),
    #[error("emit: {0}")]
    Emit(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_from_config() {
        let config = serde_json::json!({"host": "db.internal", "port": 5432});
        assert_eq!(
            fill_template("{host}:{port}", &config).unwrap(),
            "db.internal:5432"
        );
        let no_port = serde_json::json!({"host": "db"});
        assert_eq!(
            fill_template("{host}:{port:5432}", &no_port).unwrap(),
            "db:5432"
        );
        let missing = fill_template("{hostname}:1", &config).unwrap_err();
        assert!(missing.to_string().contains("`hostname`"), "{missing}");
    }

    #[test]
    fn http_origins_parse_with_default_ports_and_refuse_paths() {
        let origin = HttpOrigin::parse("https://Sheets.googleapis.com").unwrap();
        assert_eq!(origin.to_string(), "https://sheets.googleapis.com:443");
        assert_eq!(
            HttpOrigin::parse("http://127.0.0.1:8080/").unwrap().port,
            8080
        );
        assert!(HttpOrigin::parse("https://example.com/v4").is_none());
        assert!(HttpOrigin::parse("ftp://example.com").is_none());
        let config = serde_json::json!({});
        assert_eq!(
            fill_template("{endpoint:https://sheets.googleapis.com}", &config).unwrap(),
            "https://sheets.googleapis.com"
        );
    }

    /// Answers a fixed list of addresses for every name.
    #[derive(Debug)]
    struct Fixed(Vec<IpAddr>);

    impl Resolve for Fixed {
        fn resolve<'a>(
            &'a self,
            _: &'a str,
            port: u16,
        ) -> futures::future::BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
            let answer = self.0.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
            Box::pin(async move { Ok(answer) })
        }
    }

    fn policy_answering(addresses: &[&str], allow_private_network: bool) -> SandboxPolicy {
        let answer = addresses.iter().map(|a| a.parse().unwrap()).collect();
        SandboxPolicy {
            allow_private_network,
            resolver: Some(Arc::new(Fixed(answer))),
            ..SandboxPolicy::default()
        }
    }

    #[tokio::test]
    async fn every_resolved_address_is_checked_and_names_are_pinned() {
        let tcp = [Destination::Tcp("DB.Example.:5432".into())];
        let config = serde_json::json!({});
        // One public and one private answer: the private one refuses the destination.
        let mixed = policy_answering(&["8.8.8.8", "10.0.0.1"], false);
        let error = NetworkGrant::resolve(&tcp, &config, &mixed)
            .await
            .unwrap_err();
        assert!(
            matches!(error, PolicyError::Private { address, .. } if address.to_string() == "10.0.0.1"),
            "{error}"
        );
        // Metadata is refused even with the flag, naming the rule.
        let metadata = policy_answering(&["10.0.0.1", "169.254.169.254"], true);
        let error = NetworkGrant::resolve(&tcp, &config, &metadata)
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("169.254.169.254") && message.contains("link-local"),
            "{message}"
        );
        // Allowed: the name is recorded with its checked addresses, for the guest's lookups.
        let allowed = policy_answering(&["10.0.0.1", "10.0.0.2"], true);
        let grant = NetworkGrant::resolve(&tcp, &config, &allowed)
            .await
            .unwrap();
        assert_eq!(
            grant.names["db.example"],
            vec![
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "10.0.0.2".parse().unwrap()
            ]
        );
        assert!(grant.allows(&"10.0.0.2:5432".parse().unwrap()));
        // HTTP origins go through the same resolver and checks.
        let http = [Destination::Http("https://api.example".into())];
        let error = NetworkGrant::resolve(&http, &config, &metadata)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("169.254.169.254"), "{error}");
    }

    #[test]
    fn budget_counts_all_memories_together() {
        let mut budget = MemoryBudget::new(100 << 20);
        assert!(budget.grow(0, 60 << 20).unwrap());
        let err = budget.grow(0, 60 << 20).unwrap_err();
        assert!(err.to_string().contains("memory limit"), "{err}");
    }
}
