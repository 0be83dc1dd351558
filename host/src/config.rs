//! `inlet.toml`: the operator's list of connections, parsed strictly and checked before anything runs.
//!
//! ```toml
//! [lake]
//! url = "./lake"                      # a folder, file://, gs://bucket/prefix, memory://
//! endpoint = "http://127.0.0.1:4443"  # optional: a GCS emulator or private endpoint
//!
//! [google]
//! credentials = "key.json"            # optional: a key file, or "none" (emulators); default: ADC
//!
//! [bigquery]                          # optional: load every commit into BigQuery after a run
//! project = "my-project"
//! location = "asia-northeast1"
//! dataset = "raw_{connection}"        # the default
//! table = "{stream}"                  # the default
//!
//! [connections.pharmacy]
//! connector = "sample"                # a built-in name or a path to a .wasm (relative to this file)
//! config = { patients = 1000 }        # the connector's settings
//! select = ["patients", "orders"]     # optional: only these streams
//! schedule = "*/15 * * * *"           # optional: `inlet serve` runs it (cron, or "every 30m")
//!
//! [connections.pharmacy.streams.orders]
//! sync_mode = "full_refresh"          # or "incremental"
//! on_incompatible = "evolve"          # or "freeze", "discard"
//! parallel = 4                        # full refresh in 4 parts read at once
//! write_mode = "merge"                # BigQuery: "append", "replace" or "merge"
//! partition_by = "ordered_at"         # BigQuery time partitioning column
//! partition_granularity = "day"       # "hour", "day", "month", "year"
//! cluster_by = ["patient_id"]
//!
//! [connections.heroku]                # a push connector, served by `inlet serve`
//! connector = "heroku-logplex"
//! [connections.heroku.drain]
//! basic_auth = "drain:password"       # and/or drain_token = "d.<uuid>"
//! commit_interval_ms = 1000
//! max_pending_bytes = 67108864        # beyond this, waiting senders get 503 + Retry-After
//!
//! [runtime]
//! timezone = "Asia/Tokyo"             # the clock of cron schedules (IANA name; default UTC)
//!
//! [serve]                             # limits of `inlet serve`'s HTTP server
//! max_connections = 256
//! header_timeout_seconds = 10
//! body_timeout_seconds = 30
//!
//! [connections.pharmacy.sandbox]
//! memory_mib = 512
//!
//! [connections.sheets.grants.google]  # the credential `google`, granted to this connection only
//! identity = "operator"               # [google] credentials / ADC; or a key file path
//! impersonate = "reader@p.iam.gserviceaccount.com"   # optional: that account's tokens instead
//! scopes = ["https://www.googleapis.com/auth/spreadsheets.readonly"]
//! hosts = ["sheets.googleapis.com"]   # default for identities: *.googleapis.com
//!
//! [connections.meta.grants.access_token]
//! secret = { env = "META_ACCESS_TOKEN" }   # or { file = "meta.token" }
//! hosts = ["graph.facebook.com"]      # required for secrets
//! ```

use crate::bigquery::{self, Destination, StreamOptions, WriteMode};
use crate::connectors::ConnectorRef;
use crate::credentials::{
    CredentialsError, GoogleAuth, GoogleTokens, Grant, GrantSource, HostPattern, IAM_CREDENTIALS,
    Impersonated, SecretValue, grant::GOOGLE_DEFAULT_HOSTS,
};
use crate::lake::{Codec, IncompatiblePolicy};
use crate::runtime::{SandboxPolicy, SyncMode};
use crate::schedule::Schedule;
use crate::secrets::{ConfigString, SECRET_MANAGER, SecretManager, SecretReader, SecretSource};
use crate::sync::SyncPlan;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InletConfig {
    /// Where output goes.
    pub lake: LakeConfig,
    /// Google credentials for a `gs://` lake and BigQuery.
    #[serde(default)]
    pub google: GoogleConfig,
    /// Load into BigQuery after each run.
    pub bigquery: Option<BigQueryConfig>,
    /// `inlet serve`'s HTTP limits.
    #[serde(default)]
    pub serve: ServeConfig,
    /// Runtime settings.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// Connections by name (lowercase letters, digits, `_` and `-`).
    #[serde(default)]
    pub connections: BTreeMap<String, ConnectionConfig>,
}

/// `[lake]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeConfig {
    /// A folder path, `file://...`, `gs://bucket/prefix` or `memory://`. Example: `"./lake"`.
    pub url: String,
    /// A GCS endpoint instead of Google's (an emulator, a private endpoint).
    pub endpoint: Option<String>,
    /// How Parquet pages are compressed: `"snappy"` (default), `"zstd"` (level 1: about 30 %
    /// smaller files, about 25 % more encoding time) or `"none"`.
    #[serde(default)]
    pub compression: Codec,
}

/// `[google]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleConfig {
    /// A service-account key or authorized-user file (relative to this file), or `"none"` for
    /// emulators; or the key itself from a secret reference (`{ env = "GOOGLE_KEY_JSON" }`,
    /// `{ secret = "projects/p/secrets/inlet-key/versions/1" }`, read with application default
    /// credentials). Default: application default credentials (`GOOGLE_APPLICATION_CREDENTIALS`,
    /// gcloud's login, the metadata server).
    pub credentials: Option<ConfigString>,
    /// A Secret Manager endpoint instead of Google's (a test server). Example:
    /// `"http://127.0.0.1:9090"`.
    pub secret_manager_endpoint: Option<String>,
    /// The key read from a secret reference in `credentials`, once resolved.
    #[serde(skip)]
    resolved_key: Option<SecretValue>,
}

/// `[bigquery]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BigQueryConfig {
    /// The project that runs the jobs and holds the datasets.
    pub project: String,
    /// Dataset location. Example: `"asia-northeast1"`.
    #[serde(default = "default_location")]
    pub location: String,
    /// Dataset name template; `{connection}` is the connection name.
    #[serde(default = "default_dataset")]
    pub dataset: String,
    /// Table name template; `{stream}` is the stream name (`public.orders` -> `public_orders`).
    #[serde(default = "default_table")]
    pub table: String,
    /// An API endpoint instead of `https://bigquery.googleapis.com` (an emulator).
    pub endpoint: Option<String>,
    /// Labels on the datasets and tables Inlet creates.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Source files per load job; a load with more runs several jobs. BigQuery allows 10,000
    /// (the default); lower it only to test the splitting. Example: `2`.
    pub max_files_per_job: Option<usize>,
}

fn default_location() -> String {
    "US".into()
}
fn default_dataset() -> String {
    "raw_{connection}".into()
}
fn default_table() -> String {
    "{stream}".into()
}

/// `[runtime]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Where compiled components are cached. Example: `"/var/cache/inlet"`.
    pub cache_dir: Option<PathBuf>,
    /// Connections run at the same time by `inlet run`. Example: `2`.
    pub parallel: Option<usize>,
    /// Sandbox defaults for every connection.
    #[serde(default)]
    pub sandbox: SandboxConfig,
    /// The IANA time zone whose wall clock cron schedules follow (default `UTC`).
    /// Example: `"Asia/Tokyo"`.
    pub timezone: Option<String>,
}

/// `[connections.<name>]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// A built-in connector name or a path to a `.wasm` component. Example: `"sample"`.
    pub connector: String,
    /// The connector's settings, as described by `inlet spec <connector>`. Any string may be a
    /// secret reference: `password = { env = "PGPASSWORD" }`.
    #[serde(default)]
    pub config: toml::Table,
    /// `config` as written (references, not values) once the references are resolved: what
    /// tells one source from another without hashing a secret.
    #[serde(skip)]
    written_config: Option<toml::Table>,
    /// Only these streams; all when absent. Example: `["patients"]`.
    pub select: Option<Vec<String>>,
    /// Per-stream options.
    #[serde(default)]
    pub streams: BTreeMap<String, StreamConfig>,
    /// Sandbox overrides for this connection.
    #[serde(default)]
    pub sandbox: SandboxConfig,
    /// For push connectors (`heroku-logplex`): where `inlet serve` takes their requests.
    pub drain: Option<DrainConfig>,
    /// Credentials this connection may use, by the name the connector asks for.
    #[serde(default)]
    pub grants: BTreeMap<String, GrantConfig>,
    /// When `inlet serve` runs this connection: a cron pattern of five fields (minute hour
    /// day-of-month month day-of-week, in `[runtime] timezone`) or `every <n>s|m|h`.
    /// Not for drains, which run all the time. Example: `"*/15 * * * *"`, `"0 3 * * mon-fri"`,
    /// `"every 30m"`.
    pub schedule: Option<String>,
}

impl ConnectionConfig {
    /// The secret references among the connection's strings (its `config`, at any depth, and its
    /// `drain`), keyed as errors name them; grants' secrets are checked with the grant.
    fn string_references(&self, name: &str) -> Vec<(String, SecretSource)> {
        let mut references = Vec::new();
        collect_references(
            &self.config,
            &format!("connections.{name}.config"),
            &mut references,
        );
        if let Some(drain) = &self.drain {
            for (field, value) in [
                ("basic_auth", &drain.basic_auth),
                ("drain_token", &drain.drain_token),
            ] {
                if let Some(ConfigString::Reference(source)) = value {
                    references.push((format!("connections.{name}.drain.{field}"), source.clone()));
                }
            }
        }
        references
    }

    /// The connector settings as written in the file: secret references, not their values.
    pub fn written_config(&self) -> &toml::Table {
        self.written_config.as_ref().unwrap_or(&self.config)
    }
}

/// `[connections.<name>.grants.<credential>]`: one credential the operator grants a connection.
/// Either a Google identity (`identity` and/or `impersonate`, with `scopes`) or a `secret`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantConfig {
    /// `"operator"` (the identity of `[google] credentials`, else application default
    /// credentials) or the path of a service-account key file (relative to this file).
    pub identity: Option<String>,
    /// A service account whose tokens `identity` (default `"operator"`) mints through the IAM
    /// Credentials API. Example: `"sheets-reader@my-project.iam.gserviceaccount.com"`.
    pub impersonate: Option<String>,
    /// A secret value (an API token): `{ env = "NAME" }`, `{ file = "path" }` or
    /// `{ secret = "projects/P/secrets/S/versions/V" }`.
    pub secret: Option<SecretSource>,
    /// OAuth scopes the identity's tokens may carry; required for identities.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Hosts it may be sent to (`api.example.com`, `host:port`, `*.example.com`); required for
    /// secrets, `*.googleapis.com` for identities when absent.
    pub hosts: Option<Vec<String>>,
    /// `secret`'s value, once resolved.
    #[serde(skip)]
    resolved_secret: Option<SecretValue>,
}

/// `[connections.<name>.drain]`: an HTTP endpoint of `inlet serve`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainConfig {
    /// The path senders POST to. Default: `/drains/<connection>`.
    pub path: Option<String>,
    /// `user:password` the sender must present with HTTP basic auth (the drain URL
    /// `https://user:password@host/drains/x`); or a secret reference (`{ env = "DRAIN_AUTH" }`).
    pub basic_auth: Option<ConfigString>,
    /// The `Logplex-Drain-Token` header value Heroku sends for this drain (`d.<uuid>`), or a
    /// secret reference.
    pub drain_token: Option<ConfigString>,
    /// Commit at least this often while requests wait (ms). Example: `1000`.
    pub commit_interval_ms: Option<u64>,
    /// Commit as soon as this many request bytes wait. Example: `8388608`.
    pub commit_bytes: Option<u64>,
    /// Largest request body accepted; larger ones get 413. Example: `1048576`.
    pub max_body_bytes: Option<u64>,
    /// Request bytes that may wait for a commit; beyond it senders get 503 with `Retry-After`
    /// (default 64 MiB). Example: `67108864`.
    pub max_pending_bytes: Option<u64>,
}

/// `[serve]`: limits of `inlet serve`'s HTTP server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Connections open at once; more are answered 503 and closed (default 256). Example: `256`.
    pub max_connections: Option<usize>,
    /// Seconds a client may take to send a request's headers (default 10). Example: `10`.
    pub header_timeout_seconds: Option<u64>,
    /// Seconds a client may take to send a request's body (default 30). Example: `30`.
    pub body_timeout_seconds: Option<u64>,
}

/// `[connections.<name>.streams.<stream>]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// `incremental` or `full_refresh`; the stream's default when absent.
    pub sync_mode: Option<SyncModeConfig>,
    /// What to do with an incompatible type change. Example: `"evolve"`.
    pub on_incompatible: Option<IncompatiblePolicy>,
    /// Full-refresh reads split into this many parts read at once, when the connector can split
    /// the stream (postgres: ranges of heap pages or of an integer primary key). Example: `4`.
    pub parallel: Option<u32>,
    /// BigQuery write mode; default `replace` for full refresh, `merge` with a primary key,
    /// `append` otherwise.
    pub write_mode: Option<WriteMode>,
    /// BigQuery time-partitioning column (a DATE, TIMESTAMP or DATETIME column).
    pub partition_by: Option<String>,
    /// Partition size (default `day`).
    pub partition_granularity: Option<Granularity>,
    /// BigQuery clustering columns (at most four).
    pub cluster_by: Option<Vec<String>>,
    /// A boolean column marking deleted rows: `merge` deletes them from the table.
    pub deleted_flag: Option<String>,
}

/// Time-partition sizes BigQuery offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// One partition per hour.
    Hour,
    /// Per day.
    Day,
    /// Per month.
    Month,
    /// Per year.
    Year,
}

impl Granularity {
    fn api_name(self) -> &'static str {
        match self {
            Self::Hour => "HOUR",
            Self::Day => "DAY",
            Self::Month => "MONTH",
            Self::Year => "YEAR",
        }
    }
}

/// A sync mode as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncModeConfig {
    /// Read only changes since the saved cursor.
    Incremental,
    /// Read everything.
    FullRefresh,
}

/// `[sandbox]` settings; unset fields fall back to the runtime's, then to the defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// Memory cap in MiB (default 512). Example: `256`.
    pub memory_mib: Option<u64>,
    /// CPU time limit in seconds (default 3600).
    pub cpu_seconds: Option<u64>,
    /// Wall-clock limit per call in seconds (default 21600).
    pub timeout_seconds: Option<u64>,
    /// Allow destinations on loopback, private or link-local addresses (a database on a private IP).
    pub allow_private_network: Option<bool>,
    /// When set, the only destinations (`host:port`) the connector may reach.
    pub allow_destinations: Option<Vec<String>>,
    /// Replaced by per-connection grants; kept only to say so.
    #[doc(hidden)]
    pub credential_hosts: Option<toml::Value>,
}

impl SandboxConfig {
    /// This config over `fallback`, over the defaults.
    pub fn policy(&self, fallback: &SandboxConfig) -> SandboxPolicy {
        let defaults = SandboxPolicy::default();
        SandboxPolicy {
            memory_bytes: self
                .memory_mib
                .or(fallback.memory_mib)
                .map_or(defaults.memory_bytes, |m| m << 20),
            cpu_time: self
                .cpu_seconds
                .or(fallback.cpu_seconds)
                .map_or(defaults.cpu_time, Duration::from_secs),
            wall_time: self
                .timeout_seconds
                .or(fallback.timeout_seconds)
                .map_or(defaults.wall_time, Duration::from_secs),
            allow_private_network: self
                .allow_private_network
                .or(fallback.allow_private_network)
                .unwrap_or(false),
            allowed_destinations: self
                .allow_destinations
                .clone()
                .or_else(|| fallback.allow_destinations.clone()),
            grants: Vec::new(),
            resolver: None,
            http_tape: None,
        }
    }
}

/// A config file that cannot be used, with the file and the key named.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read `{file}`: {reason}")]
    Read { file: String, reason: String },
    #[error("invalid `{file}`: {message}")]
    Syntax { file: String, message: String },
    #[error("invalid `{file}`: `{key}`: {message}")]
    Value {
        file: String,
        key: String,
        message: String,
    },
}

/// A checked config: every connector resolved, the lake URL valid.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The parsed file.
    pub config: InletConfig,
    /// The resolved connector of each connection.
    pub connectors: BTreeMap<String, ConnectorRef>,
    /// The file it came from.
    pub file: PathBuf,
    /// The parsed `schedule` of each connection that has one.
    pub schedules: BTreeMap<String, Schedule>,
}

impl LoadedConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            file: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, &path.display().to_string(), &base).map(|mut loaded| {
            loaded.file = path.to_path_buf();
            loaded
        })
    }

    /// Parses and checks `text`, naming it `file` in errors; relative paths start at `base`.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<Self, ConfigError> {
        let config: InletConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let value_error = |key: String, message: String| ConfigError::Value {
            file: file.to_owned(),
            key,
            message,
        };
        crate::lake::check_location(&config.lake.url)
            .map_err(|e| value_error("lake.url".into(), e.to_string()))?;
        if let Some(bq) = &config.bigquery {
            if !config.lake.url.starts_with("gs://") {
                return Err(value_error(
                    "bigquery".into(),
                    format!(
                        "BigQuery loads files from Cloud Storage, so lake.url must be gs://<bucket>/<prefix> (it is `{}`)",
                        config.lake.url
                    ),
                ));
            }
            for (key, template, placeholder) in [
                ("bigquery.dataset", &bq.dataset, "{connection}"),
                ("bigquery.table", &bq.table, "{stream}"),
            ] {
                if template.replace(placeholder, "").contains(['{', '}']) {
                    return Err(value_error(
                        key.into(),
                        format!("`{template}`: the only placeholder here is `{placeholder}`"),
                    ));
                }
            }
        }
        if let Some(ConfigString::Reference(source)) = &config.google.credentials {
            source
                .check()
                .map_err(|m| value_error("google.credentials".into(), m))?;
        }
        if config.runtime.sandbox.credential_hosts.is_some() {
            return Err(value_error(
                "runtime.sandbox.credential_hosts".into(),
                "credentials are granted per connection now: write [connections.<name>.grants.<credential>] with `hosts = [...]`".into(),
            ));
        }
        let zone = match &config.runtime.timezone {
            Some(name) => crate::schedule::parse_timezone(name)
                .map_err(|m| value_error("runtime.timezone".into(), m))?,
            None => chrono_tz::UTC,
        };
        let mut connectors = BTreeMap::new();
        let mut schedules = BTreeMap::new();
        for (name, connection) in &config.connections {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
            {
                return Err(value_error(
                    format!("connections.{name}"),
                    "connection names may only hold lowercase letters, digits, `_` and `-`".into(),
                ));
            }
            let connector = ConnectorRef::resolve(&connection.connector, base)
                .map_err(|e| value_error(format!("connections.{name}.connector"), e.to_string()))?;
            if let Some(select) = &connection.select
                && select.is_empty()
            {
                return Err(value_error(
                    format!("connections.{name}.select"),
                    "lists no stream; remove it to sync all".into(),
                ));
            }
            if let Some(drain) = &connection.drain {
                if drain.basic_auth.is_none() && drain.drain_token.is_none() {
                    return Err(value_error(
                        format!("connections.{name}.drain"),
                        "set `basic_auth = \"user:password\"` and/or `drain_token`: a drain takes no anonymous requests".into(),
                    ));
                }
                if let Some(ConfigString::Text(auth)) = &drain.basic_auth
                    && !auth.contains(':')
                {
                    return Err(value_error(
                        format!("connections.{name}.drain.basic_auth"),
                        "must be `user:password`".into(),
                    ));
                }
                if let Some(path) = &drain.path
                    && !path.starts_with('/')
                {
                    return Err(value_error(
                        format!("connections.{name}.drain.path"),
                        format!("`{path}` must start with `/`"),
                    ));
                }
            }
            if connection.sandbox.credential_hosts.is_some() {
                return Err(value_error(
                    format!("connections.{name}.sandbox.credential_hosts"),
                    format!(
                        "credentials are granted per connection now: write [connections.{name}.grants.<credential>] with `hosts = [...]` (`inlet spec` shows what the connector asks for)"
                    ),
                ));
            }
            for (key, source) in connection.string_references(name) {
                source.check().map_err(|m| value_error(key, m))?;
            }
            if let Some(text) = &connection.schedule {
                let key = format!("connections.{name}.schedule");
                if connection.drain.is_some() {
                    return Err(value_error(
                        key,
                        format!(
                            "a drain runs all the time, as requests come; remove `schedule` (or [connections.{name}.drain] to pull on a schedule instead)"
                        ),
                    ));
                }
                let schedule = Schedule::parse(text, zone).map_err(|m| value_error(key, m))?;
                schedules.insert(name.clone(), schedule);
            }
            for (credential, grant) in &connection.grants {
                check_grant(grant).map_err(|m| {
                    value_error(format!("connections.{name}.grants.{credential}"), m)
                })?;
            }
            for (stream, options) in &connection.streams {
                let key = format!("connections.{name}.streams.{stream}");
                if options.cluster_by.as_ref().is_some_and(|c| c.len() > 4) {
                    return Err(value_error(
                        format!("{key}.cluster_by"),
                        "BigQuery clusters by at most four columns".into(),
                    ));
                }
                if options.partition_granularity.is_some() && options.partition_by.is_none() {
                    return Err(value_error(
                        format!("{key}.partition_granularity"),
                        "set partition_by (the column) as well".into(),
                    ));
                }
            }
            connectors.insert(name.clone(), connector);
        }
        Ok(Self {
            config,
            connectors,
            file: PathBuf::from(file),
            schedules,
        })
    }

    /// The lake URL, with a relative folder taken relative to the config file.
    pub fn lake_location(&self) -> String {
        let url = &self.config.lake.url;
        if url.contains("://") || url.starts_with("memory:") || Path::new(url).is_absolute() {
            return url.clone();
        }
        let base = self.file.parent().unwrap_or(Path::new(""));
        base.join(url).display().to_string()
    }
}

impl LoadedConfig {
    /// The Google credentials `[google] credentials` names (relative paths from this file).
    pub fn google_auth(&self) -> Result<GoogleAuth, CredentialsError> {
        let base = self.file.parent().unwrap_or(Path::new(""));
        match &self.config.google.credentials {
            Some(ConfigString::Text(none)) if none == "none" => Ok(GoogleAuth::anonymous()),
            Some(ConfigString::Text(path)) => {
                let origin = format!("`google.credentials` in {}", self.file.display());
                GoogleAuth::from_file(&base.join(path), &origin)
            }
            Some(ConfigString::Reference(source)) => {
                let from = PathBuf::from(source.describe(base));
                match &self.config.google.resolved_key {
                    Some(key) => GoogleAuth::from_key(key.expose(), &from),
                    None => Err(CredentialsError::File {
                        path: from,
                        origin: "`google.credentials`".into(),
                        reason: "the reference was not read before use (a bug in inlet)".into(),
                    }),
                }
            }
            None => GoogleAuth::discover(),
        }
    }

    /// Who `[google] credentials` names, for messages.
    fn operator_identity(&self) -> String {
        let base = self.file.parent().unwrap_or(Path::new(""));
        match &self.config.google.credentials {
            Some(ConfigString::Text(none)) if none == "none" => {
                "no credentials ([google] credentials = \"none\")".to_owned()
            }
            Some(ConfigString::Text(path)) => format!("the operator's key file `{path}`"),
            Some(ConfigString::Reference(source)) => {
                format!("the operator's key from {}", source.describe(base))
            }
            None => "the operator's application default credentials".to_owned(),
        }
    }

    /// Where Secret Manager is asked: `[google] secret_manager_endpoint`, else Google's.
    fn secret_manager_endpoint(&self) -> String {
        self.config
            .google
            .secret_manager_endpoint
            .clone()
            .unwrap_or_else(|| SECRET_MANAGER.to_owned())
    }

    /// Reads `[google] credentials` when it is a secret reference (a Secret Manager one with
    /// application default credentials): all that commands which only open the lake and
    /// BigQuery need (`status`, `history`, `state`, `load`, `dbt-sources`).
    pub async fn resolve_google_key(&mut self) -> Result<(), ConfigError> {
        let Some(ConfigString::Reference(source)) = self.config.google.credentials.clone() else {
            return Ok(());
        };
        if self.config.google.resolved_key.is_some() {
            return Ok(());
        }
        let base = self.file.parent().unwrap_or(Path::new("")).to_path_buf();
        let error = |message: String| ConfigError::Value {
            file: self.file.display().to_string(),
            key: "google.credentials".into(),
            message,
        };
        let manager = match &source.secret {
            Some(_) => {
                let auth = GoogleAuth::discover().map_err(|e| error(e.to_string()))?;
                Some(Arc::new(SecretManager::new(
                    &self.secret_manager_endpoint(),
                    Arc::new(auth),
                )))
            }
            None => None,
        };
        let key = SecretReader::new(&base, manager)
            .read(&source)
            .await
            .map_err(error)?;
        self.config.google.resolved_key = Some(SecretValue::new(key));
        Ok(())
    }

    /// Reads every secret reference of the file: in connections' `config`, `[connections.x.drain]`,
    /// grants and `[google] credentials`. Values replace the references in `config` tables and
    /// are remembered for redaction; a reference that cannot be read is an error naming its key
    /// and source. `[google] credentials` is read first (a Secret Manager reference there is
    /// read with application default credentials), then the others with the operator's identity.
    pub async fn resolve_secrets(&mut self) -> Result<(), ConfigError> {
        let file = self.file.display().to_string();
        let base = self.file.parent().unwrap_or(Path::new("")).to_path_buf();
        let error = |key: String, message: String| ConfigError::Value {
            file: file.clone(),
            key,
            message,
        };
        let mut references = Vec::new();
        for (name, connection) in &self.config.connections {
            references.extend(connection.string_references(name));
            for (grant, config) in &connection.grants {
                if let Some(source) = &config.secret {
                    references.push((
                        format!("connections.{name}.grants.{grant}.secret"),
                        source.clone(),
                    ));
                }
            }
        }
        self.resolve_google_key().await?;
        let uses_secret_manager = |source: &SecretSource| source.secret.is_some();
        if references.is_empty() {
            return Ok(());
        }
        let manager = if references.iter().any(|(_, s)| uses_secret_manager(s)) {
            let auth = self
                .google_auth()
                .map_err(|e| error("google.credentials".into(), e.to_string()))?;
            Some(Arc::new(SecretManager::new(
                &self.secret_manager_endpoint(),
                Arc::new(auth),
            )))
        } else {
            None
        };
        let reader = SecretReader::new(&base, manager);
        let mut values = BTreeMap::new();
        for (key, source) in references {
            let value = reader
                .read(&source)
                .await
                .map_err(|m| error(key.clone(), m))?;
            values.insert(key, value);
        }
        for (name, connection) in &mut self.config.connections {
            let prefix = format!("connections.{name}");
            // Kept from the first resolution: a second one sees values, not references.
            if connection.written_config.is_none() {
                connection.written_config = Some(connection.config.clone());
            }
            replace_references(&mut connection.config, &format!("{prefix}.config"), &values);
            if let Some(drain) = &mut connection.drain {
                for (field, value) in [
                    ("basic_auth", &mut drain.basic_auth),
                    ("drain_token", &mut drain.drain_token),
                ] {
                    if let Some(text) = values.get(&format!("{prefix}.drain.{field}")) {
                        *value = Some(ConfigString::Text(text.clone()));
                    }
                }
                if let Some(ConfigString::Text(auth)) = &drain.basic_auth
                    && !auth.contains(':')
                {
                    return Err(error(
                        format!("{prefix}.drain.basic_auth"),
                        "the secret must be `user:password`".into(),
                    ));
                }
            }
            for (grant, config) in &mut connection.grants {
                if let Some(text) = values.get(&format!("{prefix}.grants.{grant}.secret")) {
                    config.resolved_secret = Some(SecretValue::new(text.clone()));
                }
            }
        }
        Ok(())
    }

    /// The credentials granted to `connection`, their secrets read and key files checked now,
    /// so a missing one stops the run before it starts, naming the key and where it looked.
    pub fn grants(&self, connection: &str) -> Result<Vec<Grant>, ConfigError> {
        let Some(config) = self.config.connections.get(connection) else {
            return Ok(Vec::new());
        };
        let base = self.file.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut grants = Vec::new();
        for (name, grant) in &config.grants {
            let key = format!("connections.{connection}.grants.{name}");
            let error = |message: String| ConfigError::Value {
                file: self.file.display().to_string(),
                key: key.clone(),
                message,
            };
            let source = match &grant.secret {
                Some(secret) => {
                    let origin = secret.describe(&base);
                    let value = match &grant.resolved_secret {
                        Some(value) => value.clone(),
                        None => SecretValue::new(
                            crate::secrets::read_local(secret, &base).map_err(error)?,
                        ),
                    };
                    if value.expose().contains(['\r', '\n']) {
                        return Err(error(format!(
                            "the secret from {origin} holds a line break; it goes into an HTTP header"
                        )));
                    }
                    GrantSource::Secret { value, origin }
                }
                None => self
                    .identity_source(grant, &base)
                    .map_err(|e| error(e.to_string()))?,
            };
            let hosts = grant
                .hosts
                .clone()
                .unwrap_or_else(|| vec![GOOGLE_DEFAULT_HOSTS.to_owned()])
                .iter()
                .map(|h| HostPattern::parse(h))
                .collect::<Result<Vec<_>, String>>()
                .map_err(error)?;
            grants.push(Grant {
                name: name.clone(),
                source,
                scopes: grant.scopes.clone(),
                hosts,
            });
        }
        Ok(grants)
    }

    /// The token source of an identity grant.
    fn identity_source(
        &self,
        grant: &GrantConfig,
        base: &Path,
    ) -> Result<GrantSource, CredentialsError> {
        let identity = grant.identity.as_deref().unwrap_or("operator");
        let (auth, who) = if identity == "operator" {
            (self.google_auth()?, self.operator_identity())
        } else {
            let path = base.join(identity);
            let origin = format!("`identity` of a grant in {}", self.file.display());
            let auth = GoogleAuth::from_file(&path, &origin)?;
            let who = auth.who();
            (auth, who)
        };
        if let Some(account) = &grant.impersonate {
            let tokens = Impersonated::new(auth, account, IAM_CREDENTIALS);
            return Ok(GrantSource::Google {
                who: tokens.who(),
                tokens: std::sync::Arc::new(tokens),
            });
        }
        let make: Box<dyn Fn() -> Result<GoogleAuth, CredentialsError> + Send + Sync> =
            if identity == "operator" {
                let loaded = self.clone();
                Box::new(move || loaded.google_auth())
            } else {
                let path = base.join(identity);
                Box::new(move || GoogleAuth::from_file(&path, "a grant's `identity`"))
            };
        Ok(GrantSource::Google {
            tokens: std::sync::Arc::new(GoogleTokens::new(make)),
            who,
        })
    }

    /// What `inlet run` (and a schedule of `inlet serve`) does for `connection`: its connector,
    /// settings, streams, modes and sandbox with the credentials granted to it.
    pub fn plan(&self, connection: &str) -> Result<SyncPlan, ConfigError> {
        let config = self
            .config
            .connections
            .get(connection)
            .ok_or_else(|| ConfigError::Value {
                file: self.file.display().to_string(),
                key: format!("connections.{connection}"),
                message: "no such connection".into(),
            })?;
        let mut plan = SyncPlan::new(
            connection,
            self.connectors[connection].clone(),
            toml_to_json(&config.config),
        );
        plan.select = config.select.clone();
        plan.written_config = Some(toml_to_json(config.written_config()));
        plan.writer.codec = self.config.lake.compression;
        plan.sandbox = config
            .sandbox
            .policy(&self.config.runtime.sandbox)
            .with_grants(self.grants(connection)?);
        for (stream, options) in &config.streams {
            if let Some(mode) = options.sync_mode {
                let mode = match mode {
                    SyncModeConfig::Incremental => SyncMode::Incremental,
                    SyncModeConfig::FullRefresh => SyncMode::FullRefresh,
                };
                plan.sync_modes.insert(stream.clone(), mode);
            }
            if let Some(policy) = options.on_incompatible {
                plan.policies.insert(stream.clone(), policy);
            }
            if let Some(parallel) = options.parallel {
                plan.parallel.insert(stream.clone(), parallel);
            }
        }
        Ok(plan)
    }

    /// Where and how `connection` is loaded into BigQuery; `None` without `[bigquery]`.
    pub fn destination(&self, connection: &str) -> Option<Destination> {
        let bq = self.config.bigquery.as_ref()?;
        let streams = self
            .config
            .connections
            .get(connection)
            .map(|c| {
                c.streams
                    .iter()
                    .map(|(name, s)| {
                        let options = StreamOptions {
                            write_mode: s.write_mode,
                            partition: s.partition_by.clone().map(|column| {
                                let granularity =
                                    s.partition_granularity.unwrap_or(Granularity::Day);
                                (column, granularity.api_name().to_owned())
                            }),
                            cluster_by: s.cluster_by.clone().unwrap_or_default(),
                            deleted_flag: s.deleted_flag.clone(),
                        };
                        (name.clone(), options)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Destination {
            location: bq.location.clone(),
            dataset: bigquery::sanitize(&bq.dataset.replace("{connection}", connection)),
            table_template: bq.table.clone(),
            labels: bq.labels.clone(),
            streams,
            limits: bigquery::LoadLimits {
                max_files_per_job: bq
                    .max_files_per_job
                    .unwrap_or(bigquery::LoadLimits::default().max_files_per_job),
                ..bigquery::LoadLimits::default()
            },
        })
    }
}

/// Checks a grant's shape: one kind of credential, scopes where they mean something, hosts that
/// parse.
fn check_grant(grant: &GrantConfig) -> Result<(), String> {
    let identity = grant.identity.is_some() || grant.impersonate.is_some();
    match (&grant.secret, identity) {
        (Some(_), true) => {
            return Err(
                "give either a Google identity (`identity`, `impersonate`) or a `secret`, not both"
                    .into(),
            );
        }
        (None, false) => {
            return Err(
                "grants nothing: set `identity = \"operator\"` (a Google identity, with `scopes`) or `secret = { env = \"NAME\" }` (with `hosts`)".into(),
            );
        }
        (Some(secret), false) => {
            secret.check()?;
            if !grant.scopes.is_empty() {
                return Err("a secret has no OAuth `scopes`; remove them".into());
            }
            if grant.hosts.as_ref().is_none_or(Vec::is_empty) {
                return Err(
                    "a secret needs `hosts`: where it may be sent (`hosts = [\"api.example.com\"]`)"
                        .into(),
                );
            }
        }
        (None, true) => {
            if grant.hosts.as_ref().is_some_and(Vec::is_empty) {
                return Err(
                    "`hosts = []` lets the tokens go nowhere; remove it for *.googleapis.com or name the hosts".into(),
                );
            }
            if grant.scopes.is_empty() {
                return Err(
                    "a Google identity needs `scopes` (`inlet spec <connector>` shows the ones it asks for)".into(),
                );
            }
        }
    }
    for host in grant.hosts.iter().flatten() {
        HostPattern::parse(host)?;
    }
    Ok(())
}

/// Collects the secret references in a table of connector settings with their keys.
fn collect_references(table: &toml::Table, key: &str, out: &mut Vec<(String, SecretSource)>) {
    for (name, value) in table {
        collect_value(value, &format!("{key}.{name}"), out);
    }
}

fn collect_value(value: &toml::Value, key: &str, out: &mut Vec<(String, SecretSource)>) {
    match value {
        toml::Value::Table(table) => match SecretSource::from_table(table) {
            Some(source) => out.push((key.to_owned(), source)),
            None => collect_references(table, key, out),
        },
        toml::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                collect_value(item, &format!("{key}[{index}]"), out);
            }
        }
        _ => {}
    }
}

/// Replaces each reference in `table` by its value from `values` (keyed as collected).
fn replace_references(table: &mut toml::Table, key: &str, values: &BTreeMap<String, String>) {
    for (name, value) in table.iter_mut() {
        replace_value(value, &format!("{key}.{name}"), values);
    }
}

fn replace_value(value: &mut toml::Value, key: &str, values: &BTreeMap<String, String>) {
    if let Some(text) = values.get(key) {
        *value = toml::Value::String(text.clone());
        return;
    }
    match value {
        toml::Value::Table(table) => replace_references(table, key, values),
        toml::Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                replace_value(item, &format!("{key}[{index}]"), values);
            }
        }
        _ => {}
    }
}

/// Converts a TOML table of connector settings to the JSON object connectors receive.
pub fn toml_to_json(table: &toml::Table) -> serde_json::Value {
    serde_json::to_value(table).unwrap_or(serde_json::Value::Null)
}
