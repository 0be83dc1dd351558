//! The `inlet` command line: parsing (clap), dispatch, and error reporting with context.

mod args;
mod dbt;
mod grants;
mod history;
mod print;
pub(crate) mod report;
pub mod status;

use crate::config::{LoadedConfig, SandboxConfig};
use crate::connectors::{ConnectorRef, builtin_names};
use crate::lake::{Codec, Lake, Tip, Trigger, record_run, reset_state, reset_streams};
use crate::load;
use crate::logging::{LogFormat, Severity, say};
use crate::progress::{Reporter, summary};
use crate::runtime::{
    CompileCache, HttpTape, Recorder, Replayer, Runtime, RuntimeOptions, SandboxPolicy, SyncMode,
    decode_schema, describe,
};
use crate::shard::Shard;
use crate::sync::{self, Prepared, SyncPlan, SyncReport};
use anyhow::{Context, bail};
use args::ConnectorSettings;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Inlet: extract and load, with connectors in a WebAssembly sandbox.
#[derive(Debug, Parser)]
#[command(name = "inlet", version, about)]
struct Cli {
    /// More detail in logs (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Log lines as JSON for Cloud Logging, or as text; `auto`: JSON on Cloud Run or when stderr
    /// is not a terminal.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "INLET_LOG_FORMAT",
        default_value = "auto"
    )]
    log_format: LogFormat,
    /// Where compiled connectors are cached (default: ~/.cache/inlet, or $INLET_CACHE_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a connector's spec: name, version, settings schema, network destinations.
    Spec {
        /// A built-in connector name or a path to a `.wasm` component.
        connector: String,
    },
    /// Check that a connector can reach its source with the given settings.
    Check {
        /// A built-in connector name or a path to a `.wasm` component.
        connector: String,
        #[command(flatten)]
        settings: ConnectorSettings,
        #[command(flatten)]
        sandbox: SandboxArgs,
    },
    /// List the streams a connector offers with the given settings.
    Discover {
        /// A built-in connector name or a path to a `.wasm` component.
        connector: String,
        #[command(flatten)]
        settings: ConnectorSettings,
        #[command(flatten)]
        sandbox: SandboxArgs,
    },
    /// Read streams and print records as JSON lines (for debugging; nothing is stored).
    Read {
        /// A built-in connector name or a path to a `.wasm` component.
        connector: String,
        #[command(flatten)]
        settings: ConnectorSettings,
        /// Only these streams (repeatable).
        #[arg(long = "stream")]
        streams: Vec<String>,
        /// At most this many records per stream.
        #[arg(long)]
        limit: Option<u64>,
        /// Start from this state (JSON), as an incremental read would.
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        sandbox: SandboxArgs,
    },
    /// Sync one connector into a lake: `inlet sync sample --to ./lake`.
    Sync {
        /// A built-in connector name or a path to a `.wasm` component.
        connector: String,
        #[command(flatten)]
        settings: ConnectorSettings,
        /// The lake: a folder, `file://` or `memory://` URL.
        #[arg(long, value_name = "URL")]
        to: String,
        /// The connection name (the folder in the lake); defaults to the connector name.
        #[arg(long)]
        connection: Option<String>,
        /// Only these streams (repeatable).
        #[arg(long = "stream")]
        streams: Vec<String>,
        /// Read every stream in full, ignoring saved cursors.
        #[arg(long)]
        full_refresh: bool,
        /// Split each full-refresh stream into this many parts read at once (when the connector can).
        #[arg(long, default_value_t = 1)]
        parallel: u32,
        /// How the lake's Parquet pages are compressed (zstd: about 30 % smaller, slower).
        #[arg(long, value_enum, default_value_t)]
        compression: Codec,
        #[command(flatten)]
        sandbox: SandboxArgs,
    },
    /// Sync the connections listed in an `inlet.toml`.
    Run {
        /// The config file.
        #[arg(default_value = "inlet.toml")]
        file: PathBuf,
        /// Only these connections (repeatable); all when absent.
        #[arg(long = "connection")]
        connections: Vec<String>,
        /// Only these streams (repeatable), of the one connection run.
        #[arg(long = "stream")]
        streams: Vec<String>,
        /// Read every stream in full, ignoring saved cursors.
        #[arg(long)]
        full_refresh: bool,
        /// Run only the connections of shard INDEX of COUNT (by a stable hash of their names):
        /// COUNT tasks with indexes 0..COUNT run every connection once. Default: the task of a
        /// Cloud Run Job (`CLOUD_RUN_TASK_INDEX`/`_COUNT`) or of a Kubernetes indexed Job
        /// (`JOB_COMPLETION_INDEX` with `INLET_SHARD_COUNT`).
        #[arg(long, value_name = "INDEX/COUNT")]
        shard: Option<String>,
    },
    /// Receive pushes (log drains) for the connections of an `inlet.toml` that have a
    /// [connections.<name>.drain] table, answering each request once its rows are durable, and
    /// run the connections that have a `schedule` on time.
    Serve {
        /// The config file.
        #[arg(default_value = "inlet.toml")]
        file: PathBuf,
        /// Address to listen on (`0.0.0.0:8080` to take traffic from other hosts). Default:
        /// `0.0.0.0:$PORT` when the environment variable `PORT` is set (Cloud Run), else
        /// `127.0.0.1:8080`.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Write a dbt `sources.yml` describing the BigQuery tables the connections load into.
    DbtSources {
        /// The config file.
        #[arg(default_value = "inlet.toml")]
        file: PathBuf,
        /// Only these connections (repeatable); all when absent.
        #[arg(long = "connection")]
        connections: Vec<String>,
        /// Write to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Load what the connections of an `inlet.toml` committed into BigQuery (`inlet run` does this
    /// after syncing when the file has a [bigquery] table). Resumes an interrupted load.
    Load {
        /// The config file.
        #[arg(default_value = "inlet.toml")]
        file: PathBuf,
        /// Only these connections (repeatable); all when absent.
        #[arg(long = "connection")]
        connections: Vec<String>,
    },
    /// Show each connection of an `inlet.toml`: last commit, rows, cursors, last load into
    /// BigQuery, last run. Exits with 2 when a connection's last run failed or a scheduled one is
    /// overdue.
    Status {
        /// The config file.
        #[arg(default_value = "inlet.toml")]
        file: PathBuf,
        /// Print one JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List how the schemas of a connection's streams changed, with the commit of each change.
    History {
        #[command(flatten)]
        target: StateTarget,
        /// Print one JSON document instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Compile the built-in connectors into the compile cache (`--cache-dir` or `INLET_CACHE_DIR`),
    /// so that a process started later (a container's cold start) compiles nothing.
    Precompile,
    /// For connector authors: check a connector against the rules every source keeps.
    Connector {
        #[command(subcommand)]
        command: ConnectorCommand,
    },
    /// Show or reset the saved state of a connection.
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConnectorCommand {
    /// Write a new connector crate (settings, a secret, a stream with a cursor, checkpoints, unit
    /// tests) that builds with `cargo build --release --target wasm32-wasip2` into a component
    /// `inlet connector test` passes.
    New {
        /// The connector's name: lowercase letters, digits and dashes (`acme-orders`).
        name: String,
        /// The folder to create (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// pull: a source with an incremental stream; http: an HTTP JSON API source with a
        /// declared origin and a replay tape; push: a webhook receiver for `inlet serve`.
        #[arg(long, value_enum, default_value = "pull")]
        kind: crate::scaffold::Kind,
        /// The `sdk/` folder of an Inlet checkout (found on its own inside one).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Run the conformance kit: spec, settings, discover, a read into a lake in memory and a
    /// second read from its state (which must return no rows: use a source that does not change
    /// meanwhile). Prints each check with why it failed; exits 1 if one did.
    Test {
        /// A built-in connector name or a path to a `.wasm` component.
        connector: String,
        #[command(flatten)]
        settings: ConnectorSettings,
        #[command(flatten)]
        sandbox: SandboxArgs,
    },
}

#[derive(Debug, Subcommand)]
enum StateCommand {
    /// Print the newest commit's state and stream schemas.
    Show(StateTarget),
    /// Write a commit with an empty state: the next sync starts from scratch. With `--stream`,
    /// only those streams start over: the next run reads them in full and BigQuery replaces
    /// their tables; the other streams go on from their cursors.
    Reset {
        #[command(flatten)]
        target: StateTarget,
        /// Reset only this stream (repeatable).
        #[arg(long = "stream")]
        streams: Vec<String>,
    },
}

#[derive(Debug, clap::Args)]
struct StateTarget {
    /// The connection.
    connection: String,
    /// The config file naming the lake.
    #[arg(long, default_value = "inlet.toml", conflicts_with = "lake")]
    file: PathBuf,
    /// The lake URL, instead of a config file.
    #[arg(long)]
    lake: Option<String>,
}

/// Sandbox settings for ad-hoc commands.
#[derive(Debug, Clone, Default, clap::Args)]
struct SandboxArgs {
    /// Memory cap for the connector, in MiB.
    #[arg(long)]
    memory_mib: Option<u64>,
    /// CPU time limit for the connector, in seconds.
    #[arg(long)]
    cpu_seconds: Option<u64>,
    /// Wall-clock limit per call, in seconds.
    #[arg(long)]
    timeout_seconds: Option<u64>,
    /// Allow destinations on loopback/private addresses (e.g. a local database).
    #[arg(long)]
    allow_private_network: bool,
    /// Grant a credential the connector declares (`inlet spec` lists them): `google` (application
    /// default credentials, the declared scopes, *.googleapis.com) or `NAME=env:VARIABLE@host`
    /// (a secret, sent only to that host). Repeat for several. None is granted by default.
    #[arg(long = "grant", value_name = "CREDENTIAL")]
    grants: Vec<String>,
    /// Record every HTTP exchange of the connector into DIR, one JSON file each, secrets masked
    /// (to replay later with --replay).
    #[arg(long, value_name = "DIR", conflicts_with = "replay")]
    record: Option<PathBuf>,
    /// Answer the connector's HTTP requests from a folder written by --record: nothing is sent
    /// and no HTTP origin is resolved.
    #[arg(long, value_name = "DIR")]
    replay: Option<PathBuf>,
}

impl SandboxArgs {
    fn policy(&self) -> anyhow::Result<SandboxPolicy> {
        let mut policy = SandboxConfig {
            memory_mib: self.memory_mib,
            cpu_seconds: self.cpu_seconds,
            timeout_seconds: self.timeout_seconds,
            allow_private_network: Some(self.allow_private_network),
            allow_destinations: None,
            credential_hosts: None,
        }
        .policy(&SandboxConfig::default());
        policy.http_tape = match (&self.record, &self.replay) {
            (Some(dir), _) => Some(HttpTape::Record(Arc::new(Recorder::create(dir)?))),
            (None, Some(dir)) => Some(HttpTape::Replay(Arc::new(Replayer::open(dir)?))),
            (None, None) => None,
        };
        Ok(policy)
    }
}

/// Runs the command line; the exit code is 1 on any error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            say(
                Severity::Error,
                &format!("error: cannot start the async runtime: {e}"),
                &[],
            );
            return ExitCode::FAILURE;
        }
    };
    let interruptible = matches!(
        cli.command,
        Command::Sync { .. } | Command::Run { .. } | Command::Load { .. }
    );
    let ad_hoc_connector = match &cli.command {
        Command::Sync { connector, .. }
        | Command::Read { connector, .. }
        | Command::Check { connector, .. }
        | Command::Discover { connector, .. } => Some(connector.clone()),
        _ => None,
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = dispatch(cli) => Some(outcome),
            _ = tokio::signal::ctrl_c(), if interruptible => None,
        }
    });
    match outcome {
        Some(Ok(code)) => code,
        Some(Err(error)) => {
            let message = report::render(&error);
            say(Severity::Error, &format!("error: {message}"), &[]);
            if let Some(connector) = ad_hoc_connector {
                let hint = |text: String| say(Severity::Info, &format!("hint: {text}"), &[]);
                if message.contains("`allow_private_network = true`") {
                    hint("on the command line, `--allow-private-network` allows it".into());
                }
                if let Some(credential) = report::ungranted_credential(&error) {
                    hint(format!(
                        "on the command line, `--grant {credential}` grants it (`inlet spec {connector}` shows what it asks for)"
                    ));
                }
                if report::is_settings_error(&error) {
                    hint(format!(
                        "the settings came from --set and --config; `inlet spec {connector}` lists them"
                    ));
                }
            }
            ExitCode::FAILURE
        }
        None => {
            say(
                Severity::Warning,
                "interrupted: every commit written before now is kept (`inlet state show` says which); \
                 rows read since the last commit are not, and the next run reads them again",
                &[],
            );
            ExitCode::from(130)
        }
    }
}

fn init_logging(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "warn,connector=info",
        1 => "info",
        _ => "debug,cranelift=info,wasmtime=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("INLET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    crate::logging::init(filter, format);
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let cache_dir = cli.cache_dir.clone().or_else(CompileCache::default_dir);
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: cache_dir.clone(),
    })
    .context("starting the WebAssembly runtime")?;
    let cwd = std::env::current_dir().context("reading the current directory")?;
    match cli.command {
        Command::Spec { connector } => {
            let reference = ConnectorRef::resolve(&connector, &cwd)?;
            let loaded = sync::load(&runtime, &reference.display_name(), &reference)?;
            let spec =
                sync::spec(&loaded, crate::runtime::RunLabels::new("-", loaded.name())).await?;
            let schema: serde_json::Value =
                serde_json::from_str(&spec.config_schema).unwrap_or(serde_json::Value::Null);
            let destinations: Vec<String> = spec
                .destinations
                .iter()
                .map(|d| match d {
                    crate::runtime::Destination::Tcp(t) => format!("tcp:{t}"),
                    crate::runtime::Destination::Http(t) => format!("http:{t}"),
                })
                .collect();
            let asks = crate::credentials::CredentialAsk::from_schema(&spec.config_schema)
                .map_err(|e| anyhow::anyhow!("connector `{}`: {e}", loaded.name()))?;
            let out = serde_json::json!({
                "name": spec.name, "version": spec.version, "description": spec.description,
                "secret_fields": spec.secret_fields, "destinations": destinations,
                "credentials": asks, "config_schema": schema,
            });
            // What it asks for, as the tables that would grant it, for the operator to review.
            let hosts = crate::runtime::sandbox::default_http_hosts(&spec.destinations);
            for ask in &asks {
                eprintln!(
                    "# `{}` asks for credential `{}`{}; grant it with:\n{}\n",
                    spec.name,
                    ask.name,
                    if ask.purpose.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", ask.purpose)
                    },
                    ask.grant_example("<connection>", &hosts)
                );
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::Check {
            connector,
            settings,
            sandbox,
        } => {
            let (prepared, config, policy) =
                prepare(&runtime, &cwd, &connector, &settings, &sandbox).await?;
            prepared.check(&config, &policy).await?;
            println!(
                "ok: connector `{}` can reach its source",
                prepared.connector.name()
            );
        }
        Command::Discover {
            connector,
            settings,
            sandbox,
        } => {
            let (prepared, config, policy) =
                prepare(&runtime, &cwd, &connector, &settings, &sandbox).await?;
            for stream in prepared.discover(&config, &policy).await? {
                let modes: Vec<String> =
                    stream.sync_modes.iter().map(ToString::to_string).collect();
                println!("{}", stream.name);
                println!(
                    "  primary key: {}",
                    if stream.primary_key.is_empty() {
                        "-".into()
                    } else {
                        stream.primary_key.join(", ")
                    }
                );
                println!(
                    "  cursor: {}",
                    stream.cursor_field.as_deref().unwrap_or("-")
                );
                println!("  sync modes: {}", modes.join(", "));
                match &stream.schema {
                    Some(bytes) => println!(
                        "  schema: {}",
                        describe(&*decode_schema(bytes).map_err(anyhow::Error::msg)?)
                    ),
                    None => println!("  schema: (from the data)"),
                }
            }
        }
        Command::Read {
            connector,
            settings,
            streams,
            limit,
            state,
            sandbox,
        } => {
            let (prepared, config, policy) =
                prepare(&runtime, &cwd, &connector, &settings, &sandbox).await?;
            let discovered = prepared.discover(&config, &policy).await?;
            let mut configured = Vec::new();
            let mut declared = std::collections::HashMap::new();
            for stream in &discovered {
                if !streams.is_empty() && !streams.contains(&stream.name) {
                    continue;
                }
                let mode = if state.is_some() {
                    stream
                        .sync_modes
                        .first()
                        .copied()
                        .unwrap_or(SyncMode::FullRefresh)
                } else {
                    SyncMode::FullRefresh
                };
                configured.push(crate::runtime::ConfiguredStream {
                    name: stream.name.clone(),
                    sync_mode: mode,
                    partition: None,
                });
                let schema = stream
                    .schema
                    .as_deref()
                    .map(decode_schema)
                    .transpose()
                    .map_err(anyhow::Error::msg)?;
                declared.insert(stream.name.clone(), schema);
            }
            for wanted in &streams {
                if !discovered.iter().any(|s| &s.name == wanted) {
                    bail!(
                        "stream `{wanted}` does not exist (streams: {})",
                        discovered
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
            let run = prepared.start(&policy).await?;
            let names = configured.iter().map(|s| s.name.clone()).collect();
            let (sink, enough) = print::PrintSink::new(limit, names);
            let outcome = run
                .read(
                    &config.to_string(),
                    &configured,
                    declared,
                    state.as_deref(),
                    Box::new(sink),
                )
                .await;
            // Stopping the connector once every stream printed its limit is how `--limit`
            // avoids reading a whole table.
            if outcome.is_err() && enough.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(ExitCode::SUCCESS);
            }
            outcome?;
        }
        Command::Sync {
            connector,
            settings,
            to,
            connection,
            streams,
            full_refresh,
            parallel,
            compression,
            sandbox,
        } => {
            let reference = ConnectorRef::resolve(&connector, &cwd)?;
            let named = connection.is_some();
            let connection = connection.unwrap_or_else(|| {
                reference
                    .display_name()
                    .trim_end_matches(".wasm")
                    .to_owned()
            });
            let lake = Lake::open(&to).with_context(|| format!("opening the lake `{to}`"))?;
            let mut plan = SyncPlan::new(&connection, reference, settings.to_json()?);
            plan.select = (!streams.is_empty()).then_some(streams);
            plan.full_refresh = full_refresh;
            plan.sandbox = sandbox.policy()?.with_grants(
                grants::from_args(&runtime, &plan.connector, &connection, &sandbox.grants).await?,
            );
            plan.default_parallel = parallel;
            plan.writer.codec = compression;
            plan.same_source_only = !named;
            let reporter = Arc::new(Reporter::new());
            let started_at = chrono::Utc::now();
            let outcome = sync::sync(&runtime, &lake, &plan, reporter)
                .await
                .map_err(anyhow::Error::new);
            keep_run_record(&lake, &connection, Trigger::Sync, started_at, &outcome).await;
            let report = outcome?;
            say(
                Severity::Info,
                &summary(std::slice::from_ref(&report)),
                &[("connection", &report.connection)],
            );
        }
        Command::Connector {
            command:
                ConnectorCommand::New {
                    name,
                    dir,
                    kind,
                    sdk,
                },
        } => {
            let options = crate::scaffold::Options {
                name,
                dir,
                kind,
                sdk,
            };
            let created = crate::scaffold::create(&options, &cwd)?;
            let shown = created
                .dir
                .strip_prefix(&cwd)
                .unwrap_or(&created.dir)
                .display()
                .to_string();
            println!("created {shown} (inlet-sdk from {})", created.sdk_path);
            for file in &created.files {
                println!("  {}", file.display());
            }
            let replay = if kind == crate::scaffold::Kind::Http {
                " --replay tests/tape"
            } else {
                ""
            };
            println!(
                "next:\n  cd {shown}\n  cargo test\n  cargo build --release --target wasm32-wasip2\n  inlet connector test {} --config test-config.json{replay}",
                created.component.display()
            );
        }
        Command::Connector {
            command:
                ConnectorCommand::Test {
                    connector,
                    settings,
                    sandbox,
                },
        } => {
            let reference = ConnectorRef::resolve(&connector, &cwd)?;
            let name = reference.display_name();
            let policy = sandbox.policy()?.with_grants(
                grants::from_args(&runtime, &reference, &name, &sandbox.grants).await?,
            );
            let report =
                crate::conformance::check_source(&runtime, reference, settings.to_json()?, policy)
                    .await;
            print!("{}", report.render());
            if !report.passed() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Precompile => {
            if cache_dir.is_none() {
                bail!("no compile cache: pass --cache-dir DIR or set INLET_CACHE_DIR");
            }
            for name in builtin_names() {
                let reference = ConnectorRef::resolve(name, &cwd)?;
                let connector = sync::load(&runtime, name, &reference)?;
                match connector.cache_outcome() {
                    crate::runtime::CacheOutcome::Hit => println!("{name}: in the cache"),
                    crate::runtime::CacheOutcome::Compiled => println!("{name}: compiled"),
                }
            }
        }
        Command::Run {
            file,
            connections,
            streams,
            full_refresh,
            shard,
        } => {
            let shard = match shard {
                Some(text) => {
                    Some(Shard::parse(&text).map_err(|e| anyhow::anyhow!("--shard {e}"))?)
                }
                None => {
                    Shard::from_env(|name| std::env::var(name).ok()).map_err(anyhow::Error::msg)?
                }
            };
            let only = RunOnly {
                connections,
                streams,
                full_refresh,
                shard,
            };
            return run_config(&runtime, &file, &only).await;
        }
        Command::Serve { file, listen } => {
            let port = std::env::var("PORT").ok();
            let listen = crate::serve::listen_address(listen.as_deref(), port.as_deref())?;
            let loaded = load_config(&file).await?;
            let mut google = None;
            let lake = load::open_lake(&loaded, &mut google).await?;
            crate::serve::serve(Arc::new(runtime), &loaded, lake, google, &listen).await?;
        }
        Command::DbtSources {
            file,
            connections,
            output,
        } => {
            let loaded = load_config_for_lake(&file).await?;
            let names = chosen_connections(&loaded, &connections)?;
            let lake = load::open_lake(&loaded, &mut None).await?;
            let yaml = dbt::sources(&loaded, &lake, &names).await?;
            match output {
                Some(path) => {
                    std::fs::write(&path, yaml)
                        .with_context(|| format!("writing `{}`", path.display()))?;
                    say(Severity::Info, &format!("wrote {}", path.display()), &[]);
                }
                None => print!("{yaml}"),
            }
        }
        Command::Load { file, connections } => {
            let loaded = load_config_for_lake(&file).await?;
            let names = chosen_connections(&loaded, &connections)?;
            let mut google = None;
            let lake = load::open_lake(&loaded, &mut google).await?;
            let failures = load::load_connections(&loaded, &lake, &mut google, &names).await?;
            if failures > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Status { file, json } => {
            let loaded = load_config_for_lake(&file).await?;
            let lake = load::open_lake(&loaded, &mut None).await?;
            return status::status(&loaded, &lake, json).await;
        }
        Command::History { target, json } => {
            let lake = target.lake(&cwd).await?;
            if !history::print_history(&lake, &target.connection, json).await? {
                return Err(no_commits(&lake, &target.connection).await);
            }
        }
        Command::State { command } => match command {
            StateCommand::Show(target) => {
                let lake = target.lake(&cwd).await?;
                let tip = Tip::open(&lake, &target.connection).await?;
                let Some(latest) = tip.as_ref().map(|t| &t.commit) else {
                    return Err(no_commits(&lake, &target.connection).await);
                };
                let streams: serde_json::Map<String, serde_json::Value> = latest
                    .streams
                    .iter()
                    .map(|(name, s)| (name.clone(), serde_json::Value::String(describe(&s.schema))))
                    .collect();
                let out = serde_json::json!({
                    "connection": target.connection, "sequence": latest.sequence, "committed_at": latest.committed_at,
                    "connector": latest.connector, "state": latest.state, "streams": streams,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
            StateCommand::Reset { target, streams } if !streams.is_empty() => {
                let lake = target.lake(&cwd).await?;
                let reset = reset_streams(&lake, &target.connection, &streams).await?;
                let names = streams
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                println!(
                    "{names} of `{}` reset by commit #{}: the next run reads {} in full and BigQuery replaces {}; the other streams go on from their cursors",
                    target.connection,
                    reset.sequence,
                    if streams.len() == 1 { "it" } else { "them" },
                    if streams.len() == 1 {
                        "its table"
                    } else {
                        "their tables"
                    },
                );
                if reset.removed_keys.is_empty() {
                    println!(
                        "no saved state belonged to {names} (a connector keeps a stream's cursor under `<stream>` or `<stream>.*`); if this connector keeps it elsewhere, `inlet state reset {}` starts the whole connection over",
                        target.connection
                    );
                } else {
                    println!("removed state: {}", reset.removed_keys.join(", "));
                }
            }
            StateCommand::Reset { target, .. } => {
                let lake = target.lake(&cwd).await?;
                match reset_state(&lake, &target.connection).await? {
                    Some(sequence) => println!(
                        "state of `{}` reset by commit #{sequence}",
                        target.connection
                    ),
                    None => println!(
                        "connection `{}` has no commits; nothing to reset",
                        target.connection
                    ),
                }
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// The error of a command that needs commits of a connection that has none.
async fn no_commits(lake: &Lake, connection: &str) -> anyhow::Error {
    let known = lake.connections().await.unwrap_or_default();
    anyhow::anyhow!(
        "connection `{connection}` has no commits in `{}` (connections there: {})",
        lake.url(),
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )
}

impl StateTarget {
    async fn lake(&self, cwd: &Path) -> anyhow::Result<Lake> {
        match &self.lake {
            Some(url) => {
                let local = url.strip_prefix("file://").unwrap_or(url);
                if !url.contains("://") || url.starts_with("file://") {
                    let path = cwd.join(local);
                    if !path.is_dir() {
                        bail!(
                            "the lake `{url}` does not exist ({} is not a folder)",
                            path.display()
                        );
                    }
                }
                Lake::open(url).with_context(|| format!("opening the lake `{url}`"))
            }
            None => {
                let loaded = load_config_for_lake(&cwd.join(&self.file)).await?;
                load::open_lake(&loaded, &mut None).await
            }
        }
    }
}

async fn prepare(
    runtime: &Runtime,
    cwd: &Path,
    connector: &str,
    settings: &ConnectorSettings,
    sandbox: &SandboxArgs,
) -> anyhow::Result<(Prepared, serde_json::Value, SandboxPolicy)> {
    let reference = ConnectorRef::resolve(connector, cwd)?;
    let config = settings.to_json()?;
    let name = reference.display_name();
    let policy = sandbox
        .policy()?
        .with_grants(grants::from_args(runtime, &reference, &name, &sandbox.grants).await?);
    let loaded = sync::load(runtime, &name, &reference)?;
    let observer = Arc::new(crate::runtime::log_run_event);
    let prepared = Prepared::new(loaded, &name, &config, &policy, observer).await?;
    Ok((prepared, config, policy))
}

/// Reads and checks `file`, then reads its secret references (env, files, Secret Manager).
async fn load_config(file: &Path) -> anyhow::Result<LoadedConfig> {
    let mut loaded = LoadedConfig::load(file)?;
    loaded.resolve_secrets().await?;
    Ok(loaded)
}

/// Like [`load_config`] for commands that only open the lake and BigQuery: of the secret
/// references, only `[google] credentials` is read (a missing database password does not stop
/// `inlet status`).
async fn load_config_for_lake(file: &Path) -> anyhow::Result<LoadedConfig> {
    let mut loaded = LoadedConfig::load(file)?;
    loaded.resolve_google_key().await?;
    Ok(loaded)
}

/// The connections a command names (all when none), each checked to exist in the file.
fn chosen_connections(loaded: &LoadedConfig, only: &[String]) -> anyhow::Result<Vec<String>> {
    let file = loaded.file.display();
    let known: Vec<String> = loaded.config.connections.keys().cloned().collect();
    if known.is_empty() {
        bail!(
            "`{file}` lists no connections; add a [connections.<name>] table (built-in connectors: {})",
            builtin_names().join(", ")
        );
    }
    for name in only {
        if !known.contains(name) {
            bail!(
                "`{file}` has no connection `{name}` (connections: {})",
                known.join(", ")
            );
        }
    }
    Ok(if only.is_empty() {
        known
    } else {
        only.to_vec()
    })
}

/// What `inlet run` was asked to limit itself to.
struct RunOnly {
    connections: Vec<String>,
    streams: Vec<String>,
    full_refresh: bool,
    shard: Option<Shard>,
}

async fn run_config(runtime: &Runtime, file: &Path, only: &RunOnly) -> anyhow::Result<ExitCode> {
    let loaded = load_config(file).await?;
    let mut names = chosen_connections(&loaded, &only.connections)?;
    if let Some(shard) = only.shard {
        names.retain(|name| shard.owns(name));
        say(
            Severity::Info,
            &format!(
                "shard {shard}: {}",
                if names.is_empty() {
                    "no connection of the file falls in this shard".to_owned()
                } else {
                    format!("connections {}", names.join(", "))
                }
            ),
            &[],
        );
        if names.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let mut google = None;
    let lake = load::open_lake(&loaded, &mut google).await?;
    let reporter = Arc::new(Reporter::new());
    let plans: Vec<SyncPlan> = names
        .iter()
        // Drains receive their data through `inlet serve`; `run` only loads what they committed.
        .filter(|name| loaded.config.connections[*name].drain.is_none())
        .map(|name| {
            let mut plan = loaded.plan(name)?;
            plan.full_refresh = only.full_refresh;
            if !only.streams.is_empty() {
                plan.select = Some(only.streams.clone());
            }
            Ok(plan)
        })
        .collect::<anyhow::Result<_>>()?;
    if !only.streams.is_empty() && plans.len() != 1 {
        bail!(
            "`--stream` picks streams of one connection, and this run has {} ({}); name it with `--connection <name>`",
            plans.len(),
            plans
                .iter()
                .map(|p| p.connection.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let parallel = loaded.config.runtime.parallel.unwrap_or(1).max(1);
    use futures::StreamExt;
    let outcomes: Vec<(String, anyhow::Result<SyncReport>)> = futures::stream::iter(plans)
        .map(|plan| {
            let lake = lake.clone();
            let reporter = reporter.clone();
            async move {
                let started_at = chrono::Utc::now();
                let result = sync::sync(runtime, &lake, &plan, reporter)
                    .await
                    .map_err(anyhow::Error::new);
                keep_run_record(&lake, &plan.connection, Trigger::Run, started_at, &result).await;
                (plan.connection, result)
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    let mut reports = Vec::new();
    let mut failures = 0;
    for (connection, outcome) in outcomes {
        match outcome {
            Ok(report) => reports.push(report),
            Err(error) => {
                failures += 1;
                let message = report::render(&error);
                let labels = [("connection", connection.as_str())];
                if message.contains(&format!("`{connection}`")) {
                    say(Severity::Error, &format!("error: {message}"), &labels);
                } else {
                    say(
                        Severity::Error,
                        &format!("error: connection `{connection}`: {message}"),
                        &labels,
                    );
                }
                if report::is_settings_error(&error) {
                    say(
                        Severity::Info,
                        &format!(
                            "hint: the settings are [connections.{connection}] config in `{}`; `inlet spec {}` lists them",
                            file.display(),
                            loaded.config.connections[&connection].connector
                        ),
                        &labels,
                    );
                }
            }
        }
    }
    reports.sort_by(|a, b| a.connection.cmp(&b.connection));
    if !reports.is_empty() {
        say(Severity::Info, &summary(&reports), &[]);
    }
    let load_failures = if loaded.config.bigquery.is_some() {
        // Failed syncs may have committed checkpoints: those are loaded too.
        load::load_connections(&loaded, &lake, &mut google, &names).await?
    } else {
        0
    };
    if load_failures > 0 {
        say(
            Severity::Error,
            &format!(
                "{load_failures} of {} loads into BigQuery failed",
                names.len()
            ),
            &[],
        );
    }
    if failures > 0 {
        say(
            Severity::Error,
            &format!(
                "{failures} of {} connections failed",
                failures + reports.len()
            ),
            &[],
        );
        return Ok(ExitCode::FAILURE);
    }
    if load_failures > 0 {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Records how a sync ended in the lake (`_runs/`); failing to record only warns, as the sync's
/// own outcome is what the command reports.
async fn keep_run_record(
    lake: &Lake,
    connection: &str,
    trigger: Trigger,
    started_at: chrono::DateTime<chrono::Utc>,
    outcome: &anyhow::Result<SyncReport>,
) {
    if let Err(error) = record_run(lake, connection, trigger, started_at, outcome).await {
        tracing::warn!(connection, "the run record was not written: {error}");
    }
}
