//! `inlet.toml`: the operator's list of connections, parsed strictly and checked before anything runs.
//!
//! ```toml
//! [lake]
//! url = "./lake"                      # a folder, file://, memory://
//!
//! [connections.pharmacy]
//! connector = "sample"                # a built-in name or a path to a .wasm (relative to this file)
//! config = { patients = 1000 }        # the connector's settings
//! select = ["patients", "orders"]     # optional: only these streams
//!
//! [connections.pharmacy.streams.orders]
//! sync_mode = "full_refresh"          # or "incremental"
//! on_incompatible = "evolve"          # or "freeze", "discard"
//! parallel = 4                        # full refresh in 4 parts read at once
//!
//! [connections.pharmacy.sandbox]
//! memory_mib = 512
//! ```

use crate::connectors::ConnectorRef;
use crate::lake::IncompatiblePolicy;
use crate::runtime::SandboxPolicy;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InletConfig {
    /// Where output goes.
    pub lake: LakeConfig,
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
    /// A folder path, `file://...` or `memory://`. Example: `"./lake"`.
    pub url: String,
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
}

/// `[connections.<name>]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// A built-in connector name or a path to a `.wasm` component. Example: `"sample"`.
    pub connector: String,
    /// The connector's settings, as described by `inlet spec <connector>`.
    #[serde(default)]
    pub config: toml::Table,
    /// Only these streams; all when absent. Example: `["patients"]`.
    pub select: Option<Vec<String>>,
    /// Per-stream options.
    #[serde(default)]
    pub streams: BTreeMap<String, StreamConfig>,
    /// Sandbox overrides for this connection.
    #[serde(default)]
    pub sandbox: SandboxConfig,
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
    /// the stream (postgres: ranges of an integer primary key). Example: `4`.
    pub parallel: Option<u32>,
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
        let mut connectors = BTreeMap::new();
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
            connectors.insert(name.clone(), connector);
        }
        Ok(Self {
            config,
            connectors,
            file: PathBuf::from(file),
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

/// Converts a TOML table of connector settings to the JSON object connectors receive.
pub fn toml_to_json(table: &toml::Table) -> serde_json::Value {
    serde_json::to_value(table).unwrap_or(serde_json::Value::Null)
}
