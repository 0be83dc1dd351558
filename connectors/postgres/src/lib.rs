//! The `postgres` connector: reads PostgreSQL tables over the wire protocol (WASI sockets),
//! streaming `COPY ... TO STDOUT` text output straight into Arrow builders, batch by batch.
//!
//! Full refresh copies a table; incremental copies rows whose cursor column is greater than the
//! saved value (minus an optional `lookback`), in cursor order with NULLs first, checkpointing
//! every `checkpoint_rows` rows at a cursor-value boundary, so rows sharing a cursor value are
//! never split across checkpoints.

mod catalog;
mod cdc;
mod cdc_batch;
mod cdc_replay;
mod cdc_setup;
mod connect;
mod copy_text;
mod pem_text;
mod pgoutput;
mod read;
mod split;
mod tls;
mod transport;
mod types;
mod verify;
mod wire;

use inlet_sdk::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Settings of the PostgreSQL connector.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Server host name or IP; with `verify-full`, one of the names in the server's certificate.
    /// For Cloud SQL, the instance's IP (with `sslmode = "verify-ca"`) or the Auth Proxy's address. Example: `"10.0.0.3"`.
    pub host: String,
    /// Server port. Example: `5432`.
    #[serde(default = "default_port")]
    pub port: u16,
    /// User name. Example: `"inlet_reader"`.
    pub user: String,
    /// Password (cleartext, md5 or SCRAM-SHA-256); redacted from every log and error.
    #[serde(default)]
    pub password: Option<String>,
    /// Database name. Example: `"app"`.
    pub database: String,
    /// TLS, as libpq: `disable`; `allow` (plain, TLS if the server insists); `prefer` (default: TLS
    /// when the server offers it, else plain); `require` (TLS or nothing; the certificate is checked
    /// only when `sslrootcert` is set); `verify-ca` (the chain against `sslrootcert`); `verify-full`
    /// (the chain, and `host` among the certificate's names). Example: `"verify-ca"`.
    #[serde(default)]
    pub sslmode: Option<String>,
    /// The CA certificate(s) that sign the server's certificate, as PEM text (connectors read no
    /// files: write `{ file = "server-ca.pem" }` and inlet reads it), or `system` for the public
    /// web roots (then sslmode defaults to, and must be, `verify-full`). Example: `{ file = "server-ca.pem" }`.
    #[serde(default)]
    pub sslrootcert: Option<String>,
    /// A client certificate (PEM text), for `cert` authentication or servers that require one.
    /// Example: `{ file = "client-cert.pem" }`.
    #[serde(default)]
    pub sslcert: Option<String>,
    /// The client certificate's private key (PEM text); redacted from every log and error.
    /// Example: `{ file = "client-key.pem" }`.
    #[serde(default)]
    pub sslkey: Option<String>,
    /// Schemas to discover. Example: `["public", "billing"]`.
    #[serde(default = "default_schemas")]
    pub schemas: Vec<String>,
    /// Also offer views and materialized views as streams.
    #[serde(default)]
    pub include_views: bool,
    /// Per-stream options, keyed by `schema.table`.
    #[serde(default)]
    pub tables: BTreeMap<String, TableConfig>,
    /// Rows per Arrow batch. Example: `65536`.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// A batch is also emitted once its rows reach this many bytes of COPY text, which bounds
    /// memory for wide rows (each batch is held by the connector, then copied to the host).
    /// Example: `4194304`.
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: usize,
    /// Incremental reads checkpoint after at least this many rows (at a cursor boundary). Example: `100000`.
    #[serde(default = "default_checkpoint_rows")]
    pub checkpoint_rows: u64,
    /// Seconds that connecting, and each answer until the session is ready, may take. Example: `30`.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u64,
    /// How changes are found: `cursor` (default: incremental by a cursor column, full refresh
    /// otherwise) or `logical` (change data capture from the write-ahead log through a logical
    /// replication slot: inserts, updates and deletes, with `_inlet_lsn` and `_inlet_deleted`
    /// columns; see the README for the privileges and server settings it needs). Example: `"logical"`.
    #[serde(default)]
    pub replication: cdc::ReplicationMode,
    /// The replication slot of `replication = "logical"`, created when missing. Inlet fills in
    /// `inlet_<connection>` (lowercase, `[a-z0-9_]`, at most 63 bytes) when it is not set.
    /// Example: `"inlet_app"`.
    #[serde(default)]
    pub slot: Option<String>,
    /// The publication of `replication = "logical"`, created (or extended with the tables read)
    /// when missing. Example: `"inlet"`.
    #[serde(default = "default_publication")]
    pub publication: String,
    /// Warn when the slot holds back more write-ahead log than this many bytes (the server keeps
    /// it on disk until inlet has read it). Example: `1073741824`.
    #[serde(default = "default_slot_lag_warn_bytes")]
    pub slot_lag_warn_bytes: u64,
}

/// Options of one table.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// Only these columns (primary key and cursor are always read). Example: `["id", "email"]`.
    pub columns: Option<Vec<String>>,
    /// A SQL condition added to the query. Example: `"deleted_at IS NULL"`.
    #[serde(rename = "where")]
    pub filter: Option<String>,
    /// The incremental cursor column, instead of the suggested one. Example: `"updated_at"`.
    pub cursor: Option<String>,
    /// Re-read this far behind the saved cursor on every incremental sync, for rows committed
    /// late (long transactions, `updated_at = now()` taken at statement start): a PostgreSQL
    /// interval for timestamp and date cursors, a number for integer cursors. Re-read rows arrive
    /// again; BigQuery's `merge` keeps one per key. Example: `"15 minutes"`.
    pub lookback: Option<serde_json::Value>,
    /// How a full refresh with `parallel > 1` is split: `auto` (heap page ranges on PostgreSQL 14
    /// or later, else ranges of an integer primary key), `key` (key ranges only; other tables are
    /// read whole) or `ctid` (heap page ranges, PostgreSQL 14 or later). Example: `"key"`.
    pub split: Option<split::SplitMethod>,
}

fn default_port() -> u16 {
    5432
}
fn default_schemas() -> Vec<String> {
    vec!["public".into()]
}
fn default_batch_rows() -> usize {
    65_536
}
fn default_batch_bytes() -> usize {
    // A batch is decoded a column at a time, so it should stay in a core's cache (2 MiB of L2
    // here) together with its field spans. Lineitem SF1, two parts, 6 interleaved rounds each:
    // 1 MiB 7.21 s against 2 MiB 7.44 s (COPY 7.37 s), with less CPU in both the server and
    // inlet; 512 KiB 8.33 s against 1 MiB 7.59 s (COPY 7.64 s), its first batch of ~4,400 rows
    // too few for the lake's dictionary choice. Peak RSS, two parts: ~170 MB against ~195 MB.
    1 << 20
}
fn default_checkpoint_rows() -> u64 {
    100_000
}
fn default_connect_timeout() -> u64 {
    30
}
fn default_publication() -> String {
    "inlet".into()
}
fn default_slot_lag_warn_bytes() -> u64 {
    1 << 30
}

impl PostgresConfig {
    fn validate(&self) -> Result<tls::TlsSettings, Error> {
        let tls = tls::TlsSettings::parse(&tls::TlsSettingsText {
            sslmode: self.sslmode.as_deref(),
            sslrootcert: self.sslrootcert.as_deref(),
            sslcert: self.sslcert.as_deref(),
            sslkey: self.sslkey.as_deref(),
        })?;
        if self.batch_rows == 0 {
            return Err(Error::config("`batch_rows` must be at least 1"));
        }
        if self.batch_bytes == 0 {
            return Err(Error::config("`batch_bytes` must be at least 1"));
        }
        Ok(tls)
    }

    fn connect(&self) -> Result<wire::Connection, Error> {
        self.open(false)
    }

    /// A session for SQL (`replication = false`) or a logical replication session.
    fn open(&self, replication: bool) -> Result<wire::Connection, Error> {
        let tls = self.validate()?;
        wire::Connection::connect(&wire::ConnectOptions {
            host: &self.host,
            port: self.port,
            user: &self.user,
            password: self.password.as_deref(),
            database: &self.database,
            application_name: "inlet",
            replication,
            handshake_timeout: std::time::Duration::from_secs(self.connect_timeout_seconds.max(1)),
            tls: &tls,
        })
    }
}

/// The connector type exported to the host.
pub struct Postgres;

impl Source for Postgres {
    type Config = PostgresConfig;

    fn spec() -> Spec {
        Spec::new(
            "postgres",
            env!("CARGO_PKG_VERSION"),
            "PostgreSQL tables over the wire protocol: COPY streaming, incremental by cursor",
        )
        .tcp("{host}:{port:5432}")
        .secret("password")
        .secret("sslkey")
    }

    fn check(config: &PostgresConfig) -> Result<(), Error> {
        let mut connection = config.connect()?;
        connection.query("SELECT 1")?;
        Ok(())
    }

    fn discover(config: &PostgresConfig) -> Result<Vec<Stream>, Error> {
        let mut connection = config.connect()?;
        let tables = catalog::tables(&mut connection, &config.schemas, config.include_views)?;
        read::check_table_keys(config, &tables)?;
        if config.replication == cdc::ReplicationMode::Logical {
            return Ok(tables.iter().map(cdc::stream_of).collect());
        }
        tables
            .iter()
            .map(|table| read::stream_of(table, config.tables.get(&table.stream_name())))
            .collect()
    }

    fn partitions(config: &PostgresConfig, stream: &str, count: u32) -> Result<Vec<String>, Error> {
        if config.replication == cdc::ReplicationMode::Logical {
            // Every table is copied in the slot's snapshot, by the instance that created it.
            return Ok(Vec::new());
        }
        let mut connection = config.connect()?;
        let tables = catalog::tables(&mut connection, &config.schemas, config.include_views)?;
        let table = tables
            .iter()
            .find(|t| t.stream_name() == stream)
            .ok_or_else(|| Error::NotFound(format!("table `{stream}`")))?;
        let parts = split::partitions(&mut connection, table, config.tables.get(stream), count)?;
        if !parts.is_empty() {
            // The parts read in this connection's exported snapshot: keep it open until the host
            // ends this instance, after every part.
            split::hold(connection);
        }
        Ok(parts)
    }

    fn read(
        config: &PostgresConfig,
        streams: &[ConfiguredStream],
        state: State,
        out: &mut Output,
    ) -> Result<(), Error> {
        let mut connection = config.connect()?;
        let tables = catalog::tables(&mut connection, &config.schemas, config.include_views)?;
        read::check_table_keys(config, &tables)?;
        match config.replication {
            cdc::ReplicationMode::Cursor => {
                read::read(&mut connection, config, &tables, streams, state, out)
            }
            cdc::ReplicationMode::Logical => {
                cdc::read(connection, config, &tables, streams, state, out)
            }
        }
    }
}

inlet_sdk::export_source!(Postgres);
