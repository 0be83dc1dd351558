//! The conformance kit: the rules every source connector keeps, checked by running it (spec,
//! settings, discover, two reads into a lake in memory) and reported check by check, so that
//! `inlet connector test` can tell an author what is wrong and why, and the repository's own
//! connectors are held to the same rules by the same code.
//!
//! The second read restarts the connector (a new instance) from the state the first one
//! committed, and expects a stream read incrementally to return **no row before the saved
//! position**: nothing when the cursor is strict, at most the rows *at* the newest cursor value
//! of the first read (connectors that re-read ties, or a day that is still filling). A connector
//! that ignores its state reads everything again and fails. Run the kit against a source that
//! does not change while it runs, with look-back windows set to zero and, for a connector that
//! keeps a cursor per account or partition, one of them.

use crate::connectors::ConnectorRef;
use crate::lake::{History, Lake, SessionEvent, read_committed};
use crate::runtime::{
    CallFailure, ConnectorError, RunEvent, Runtime, SandboxPolicy, Stream, SyncMode, decode_schema,
};
use crate::sync::{self, Prepared, SyncError, SyncObserver, SyncPlan, SyncReport};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Kept, with what was seen.
    Passed(String),
    /// Broken, with why.
    Failed(String),
    /// Not run, with why (an earlier check it needs failed).
    Skipped(String),
}

/// One rule and how the connector did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The rule, in a few words.
    pub name: &'static str,
    /// The outcome.
    pub outcome: Outcome,
}

/// Every check of one run of the kit.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The connector as given.
    pub connector: String,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        !self
            .checks
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Failed(_)))
    }

    /// The checks that failed.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
            .collect()
    }

    /// A line per check (`ok`, `FAIL`, `skip`) and a last line with the count.
    pub fn render(&self) -> String {
        let mut out = format!("conformance of `{}`\n", self.connector);
        for check in &self.checks {
            let (mark, text) = match &check.outcome {
                Outcome::Passed(text) => ("ok  ", text),
                Outcome::Failed(text) => ("FAIL", text),
                Outcome::Skipped(text) => ("skip", text),
            };
            let _ = writeln!(out, "  {mark}  {}: {text}", check.name);
        }
        let failed = self.failures().len();
        let _ = writeln!(
            out,
            "{}",
            if failed == 0 {
                format!("all {} checks passed", self.checks.len())
            } else {
                format!("{failed} of {} checks failed", self.checks.len())
            }
        );
        out
    }

    fn pass(&mut self, name: &'static str, text: impl Into<String>) {
        self.push(name, Outcome::Passed(text.into()));
    }

    fn fail(&mut self, name: &'static str, text: impl Into<String>) {
        self.push(name, Outcome::Failed(text.into()));
    }

    fn skip(&mut self, names: &[&'static str], text: &str) {
        for name in names {
            self.push(name, Outcome::Skipped(text.to_owned()));
        }
    }

    fn push(&mut self, name: &'static str, outcome: Outcome) {
        self.checks.push(Check { name, outcome });
    }
}

/// Check name: The spec answers with a good name, a semver version and a settings schema.
pub const SPEC: &str = "spec";
/// Check name: `check` succeeds with the given settings.
pub const CHECK: &str = "check";
/// Check name: A setting the connector does not know is a configuration error.
pub const UNKNOWN_SETTING: &str = "unknown settings are refused";
/// Check name: Discover returns streams with unique names, modes, and keys and cursors that are columns.
pub const DISCOVER: &str = "discover";
/// Check name: A first read succeeds.
pub const READ: &str = "first read";
/// Check name: What was committed keeps every declared column with its declared type.
pub const DECLARED: &str = "batches match the declared schemas";
/// Check name: The rows committed equal the rows the run reported.
pub const READ_BACK: &str = "rows read back equal rows reported";
/// Check name: The state the connector checkpointed is a JSON object.
pub const STATE: &str = "state is a JSON object";
/// Check name: A second read from the saved state returns no row before the saved position.
pub const RESTART: &str = "second read from the saved state: nothing before it again";

/// Check name: A push connector opens with the settings and answers `state`.
pub const PUSH: &str = "push: opens with the settings and answers its state";

struct Quiet;

impl SyncObserver for Quiet {
    fn run_event(&self, _: &str, _: RunEvent) {}
    fn session_event(&self, _: &str, _: SessionEvent) {}
}

/// Runs every check against `reference` with `config` in `policy`'s sandbox.
pub async fn check_source(
    runtime: &Runtime,
    reference: ConnectorRef,
    config: serde_json::Value,
    policy: SandboxPolicy,
) -> Report {
    let mut report = Report {
        connector: reference.display_name(),
        checks: Vec::new(),
    };
    let all_after_spec = [
        CHECK,
        UNKNOWN_SETTING,
        DISCOVER,
        READ,
        DECLARED,
        READ_BACK,
        STATE,
        RESTART,
    ];
    let prepared = match sync::load(runtime, "conformance", &reference) {
        Ok(loaded) => {
            Prepared::new(loaded, "conformance", &config, &policy, Arc::new(|_| {})).await
        }
        Err(error) => Err(error),
    };
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            report.fail(
                SPEC,
                format!("the connector could not be loaded or asked: {error}"),
            );
            report.skip(&all_after_spec, "needs the spec");
            return report;
        }
    };
    match spec_problem(&prepared) {
        Some(problem) => report.fail(SPEC, problem),
        None => report.pass(
            SPEC,
            format!(
                "`{}` {}, a settings schema",
                prepared.spec.name, prepared.spec.version
            ),
        ),
    }

    match prepared.check(&config, &policy).await {
        Ok(()) => report.pass(CHECK, "reaches its source"),
        Err(error) => report.fail(CHECK, error.to_string()),
    }
    report.push(
        UNKNOWN_SETTING,
        unknown_setting(&prepared, &config, &policy).await,
    );

    let streams = match prepared.discover(&config, &policy).await {
        Ok(streams) => streams,
        Err(error) => {
            report.fail(DISCOVER, error.to_string());
            report.skip(&all_after_spec[3..], "needs discover");
            return report;
        }
    };
    match discover_problem(&streams) {
        Some(problem) => report.fail(DISCOVER, problem),
        None => report.pass(
            DISCOVER,
            format!(
                "{} streams: {}",
                streams.len(),
                streams
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }

    // Components built with the SDK export `push` whether or not they take pushes: a push
    // connector is one whose `open` accepts the settings. Its reads are still held to every rule
    // when it answers them; only a push connector whose `read` refuses (a configuration error:
    // "rows arrive through `inlet serve`") has them skipped. A pull connector's refused `open`
    // is not a failure once its read works.
    let push = match prepared.connector.exports_push() {
        true => Some(push_open(runtime, &reference, &prepared, &config, &policy, &streams).await),
        false => None,
    };
    let lake = Lake::in_memory();
    let mut plan = SyncPlan::new("conformance", reference, config);
    plan.sandbox = policy;
    let first = sync::sync(runtime, &lake, &plan, Arc::new(Quiet)).await;
    match (&push, &first) {
        (Some(Outcome::Failed(_)), Ok(_)) => {
            report.skip(&[PUSH], "a pull connector: its `open` refuses pushes")
        }
        (Some(outcome), _) => report.push(PUSH, outcome.clone()),
        (None, _) => {}
    }
    let first = match first {
        Ok(first) => {
            report.pass(READ, rows_text(&first));
            first
        }
        Err(error) if matches!(push, Some(Outcome::Passed(_))) && is_config_error(&error) => {
            report.skip(
                &all_after_spec[3..],
                "a push connector whose `read` refuses: its rows arrive through `inlet serve`",
            );
            return report;
        }
        Err(error) => {
            report.fail(READ, explain(&error));
            report.skip(&all_after_spec[4..], "needs a first read");
            return report;
        }
    };
    let history = match History::read(&lake, "conformance").await {
        Ok(history) => history,
        Err(error) => {
            report.fail(READ, format!("the commits cannot be read back: {error}"));
            return report;
        }
    };
    report.push(DECLARED, declared_schemas(&streams, &history));
    report.push(READ_BACK, read_back(&lake, &first).await);
    let state = history.latest().and_then(|c| c.state.clone());
    if state.as_ref().is_none_or(serde_json::Value::is_object) {
        report.pass(
            STATE,
            if state.is_some() {
                "an object"
            } else {
                "none kept"
            },
        );
    } else {
        report.fail(STATE, format!("got `{}`", state.unwrap_or_default()));
    }
    report.push(
        RESTART,
        restart(runtime, &lake, &plan, &streams, &first).await,
    );
    report
}

/// Opens a push instance the way `inlet serve` does (no state yet) and asks for its state.
async fn push_open(
    runtime: &Runtime,
    reference: &ConnectorRef,
    prepared: &Prepared,
    config: &serde_json::Value,
    policy: &SandboxPolicy,
    streams: &[Stream],
) -> Outcome {
    let bytes = match reference.bytes() {
        Ok(bytes) => bytes,
        Err(error) => return Outcome::Failed(error.to_string()),
    };
    let connector = match runtime.load_push(&reference.display_name(), &bytes) {
        Ok(connector) => connector,
        Err(error) => return Outcome::Failed(error.to_string()),
    };
    let mut run = match connector
        .start(policy, prepared.grant.clone(), prepared.labels.clone())
        .await
    {
        Ok(run) => run,
        Err(error) => return Outcome::Failed(error.to_string()),
    };
    let declared = streams
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.schema.as_deref().and_then(|b| decode_schema(b).ok()),
            )
        })
        .collect();
    if let Err(error) = run
        .open(&config.to_string(), None, declared, Box::new(Discard))
        .await
    {
        return Outcome::Failed(format!("`open` failed: {error}"));
    }
    match run.state().await {
        Ok(_) => Outcome::Passed("opened; `state` answered".into()),
        Err(error) => Outcome::Failed(format!("`state` failed: {error}")),
    }
}

/// A sink for a push instance that is opened but sent nothing.
struct Discard;

impl crate::runtime::BatchSink for Discard {
    fn emit<'a>(
        &'a mut self,
        _: &'a str,
        _: arrow_array::RecordBatch,
    ) -> futures::future::BoxFuture<'a, Result<(), crate::runtime::SinkError>> {
        Box::pin(async { Ok(()) })
    }

    fn checkpoint(
        &mut self,
        _: String,
    ) -> futures::future::BoxFuture<'_, Result<(), crate::runtime::SinkError>> {
        Box::pin(async { Ok(()) })
    }
}

fn spec_problem(prepared: &Prepared) -> Option<String> {
    let spec = &prepared.spec;
    let good_name = !spec.name.is_empty()
        && spec
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !good_name {
        return Some(format!(
            "the name `{}` must be lowercase letters, digits and dashes",
            spec.name
        ));
    }
    let semver = spec.version.split('.').count() == 3
        && spec.version.split('.').all(|p| {
            !p.is_empty()
                && p.split(['-', '+'])
                    .next()
                    .is_some_and(|n| n.parse::<u64>().is_ok())
        });
    if !semver {
        return Some(format!(
            "the version `{}` must be semver (`1.2.3`)",
            spec.version
        ));
    }
    match serde_json::from_str::<serde_json::Value>(&spec.config_schema) {
        Err(error) => Some(format!("the settings schema is not JSON: {error}")),
        Ok(schema) if schema.get("properties").is_none() && schema.get("type").is_none() => {
            Some("the settings schema has neither `type` nor `properties`".into())
        }
        Ok(_) => None,
    }
}

/// Whether a run ended with the connector's configuration error.
fn is_config_error(error: &SyncError) -> bool {
    matches!(error, SyncError::Call(call)
        if matches!(*call.failure, CallFailure::Connector(ConnectorError::Config(_))))
}

async fn unknown_setting(
    prepared: &Prepared,
    config: &serde_json::Value,
    policy: &SandboxPolicy,
) -> Outcome {
    let mut typo = config.clone();
    if let Some(object) = typo.as_object_mut() {
        object.insert("surely_not_a_setting".into(), serde_json::json!(1));
    }
    match prepared.check(&typo, policy).await {
        Err(SyncError::Call(error))
            if matches!(
                *error.failure,
                CallFailure::Connector(ConnectorError::Config(_))
            ) =>
        {
            Outcome::Passed("a configuration error".into())
        }
        Err(other) => Outcome::Failed(format!(
            "refused, but not as a configuration error (`#[serde(deny_unknown_fields)]` on the settings, or Error::config): {other}"
        )),
        Ok(()) => Outcome::Failed(
            "a setting `surely_not_a_setting` was accepted: a typo would be ignored silently (`#[serde(deny_unknown_fields)]` on the settings)".into(),
        ),
    }
}

fn discover_problem(streams: &[Stream]) -> Option<String> {
    if streams.is_empty() {
        return Some("no stream".into());
    }
    let mut names = HashSet::new();
    for stream in streams {
        if !names.insert(&stream.name) {
            return Some(format!("stream `{}` appears twice", stream.name));
        }
        if stream.sync_modes.is_empty() {
            return Some(format!("stream `{}` supports no sync mode", stream.name));
        }
        if stream.sync_modes.contains(&SyncMode::Incremental) != stream.cursor_field.is_some() {
            return Some(format!(
                "stream `{}` must name a cursor exactly when it supports incremental",
                stream.name
            ));
        }
        if let Some(bytes) = &stream.schema {
            let schema = match decode_schema(bytes) {
                Ok(schema) => schema,
                Err(error) => return Some(format!("stream `{}`: {error}", stream.name)),
            };
            for column in stream.primary_key.iter().chain(stream.cursor_field.iter()) {
                if schema.field_with_name(column).is_err() {
                    return Some(format!(
                        "stream `{}`: key or cursor `{column}` is not a column of its schema",
                        stream.name
                    ));
                }
            }
        }
    }
    None
}

fn declared_schemas(streams: &[Stream], history: &History) -> Outcome {
    let Some(latest) = history.latest() else {
        return Outcome::Skipped("nothing was committed".into());
    };
    let mut compared = 0;
    for stream in streams {
        let (Some(bytes), Some(committed)) = (&stream.schema, latest.streams.get(&stream.name))
        else {
            continue;
        };
        let Ok(declared) = decode_schema(bytes) else {
            continue;
        };
        for field in declared.fields() {
            match committed.schema.field_with_name(field.name()) {
                Err(_) => {
                    return Outcome::Failed(format!(
                        "`{}` lost declared column `{}`",
                        stream.name,
                        field.name()
                    ));
                }
                Ok(found) if found.data_type() != field.data_type() => {
                    return Outcome::Failed(format!(
                        "`{}`.`{}` is declared {} and was committed as {}",
                        stream.name,
                        field.name(),
                        field.data_type(),
                        found.data_type()
                    ));
                }
                Ok(_) => {}
            }
        }
        compared += 1;
    }
    Outcome::Passed(format!("{compared} declared schemas kept"))
}

async fn read_back(lake: &Lake, first: &SyncReport) -> Outcome {
    for (stream, stats) in &first.streams {
        let rows: u64 = match read_committed(lake, "conformance", stream).await {
            Ok(batches) => batches.iter().map(|b| b.num_rows() as u64).sum(),
            Err(error) => return Outcome::Failed(format!("`{stream}`: {error}")),
        };
        if rows != stats.rows {
            return Outcome::Failed(format!(
                "`{stream}`: {} rows reported, {rows} read back",
                stats.rows
            ));
        }
    }
    Outcome::Passed(rows_text(first))
}

/// The second read, in new instances, from the committed state: a stream read incrementally
/// by default may return only rows at or after the newest cursor value the first read committed.
async fn restart(
    runtime: &Runtime,
    lake: &Lake,
    plan: &SyncPlan,
    streams: &[Stream],
    first: &SyncReport,
) -> Outcome {
    let incremental: Vec<&Stream> = streams
        .iter()
        .filter(|s| s.sync_modes.first() == Some(&SyncMode::Incremental))
        .collect();
    if incremental.is_empty() {
        return Outcome::Skipped("no stream is read incrementally".into());
    }
    let second = match sync::sync(runtime, lake, plan, Arc::new(Quiet)).await {
        Ok(second) => second,
        Err(error) => {
            return Outcome::Failed(format!("the second read failed: {}", explain(&error)));
        }
    };
    let mut boundary = 0;
    for stream in &incremental {
        let rows = second.streams.get(&stream.name).map_or(0, |s| s.rows);
        if rows == 0 {
            continue;
        }
        let before = first.streams.get(&stream.name).map_or(0, |s| s.rows);
        let Some(cursor) = &stream.cursor_field else {
            continue;
        };
        match reread_before(lake, &stream.name, cursor, before).await {
            Ok(0) => boundary += rows,
            Ok(earlier) => {
                return Outcome::Failed(format!(
                    "`{}` read {rows} rows again, {earlier} of them before the newest `{cursor}` of the first read: an incremental read must start from the state it is given (or the source changed during the test, or a look-back window is set: run the kit against a source that does not change, with look-back 0)",
                    stream.name
                ));
            }
            Err(error) => return Outcome::Failed(format!("`{}`: {error}", stream.name)),
        }
    }
    Outcome::Passed(if boundary == 0 {
        format!("{} incremental streams read nothing new", incremental.len())
    } else {
        format!(
            "{} incremental streams read nothing before their saved position ({boundary} rows at it read again)",
            incremental.len()
        )
    })
}

/// Of the rows committed after the first `first_rows` of `stream` (the second read's), how
/// many have a cursor before the newest cursor of the first read (null counts as before).
async fn reread_before(
    lake: &Lake,
    stream: &str,
    cursor: &str,
    first_rows: u64,
) -> Result<u64, String> {
    let batches = read_committed(lake, "conformance", stream)
        .await
        .map_err(|e| e.to_string())?;
    let mut values = Vec::new();
    for batch in &batches {
        let column = batch
            .column_by_name(cursor)
            .ok_or_else(|| format!("the cursor `{cursor}` is not a committed column"))?;
        values.extend(cursor_keys(column)?);
    }
    let split = usize::try_from(first_rows)
        .unwrap_or(usize::MAX)
        .min(values.len());
    let (earlier, later) = values.split_at(split);
    let newest = earlier
        .iter()
        .flatten()
        .fold(None::<&CursorKey>, |max, v| match max {
            Some(m) if m >= v => Some(m),
            _ => Some(v),
        });
    Ok(later
        .iter()
        .filter(|v| match (v, newest) {
            (None, _) => true,
            (Some(v), Some(newest)) => v < newest,
            (Some(_), None) => false,
        })
        .count() as u64)
}

/// A cursor value, ordered as the column's type orders it.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum CursorKey {
    Integer(i64),
    Number(f64),
    Text(String),
}

fn cursor_keys(column: &arrow_array::ArrayRef) -> Result<Vec<Option<CursorKey>>, String> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_schema::DataType;
    let cast = |to: &DataType| {
        arrow_cast::cast(column, to).map_err(|e| format!("cursor values cannot be compared: {e}"))
    };
    let keys = match column.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let text = cast(&DataType::Utf8)?;
            let text = text.as_string::<i32>();
            (0..text.len())
                .map(|i| (!text.is_null(i)).then(|| CursorKey::Text(text.value(i).to_owned())))
                .collect()
        }
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => {
            let numbers = cast(&DataType::Float64)?;
            let numbers = numbers.as_primitive::<arrow_array::types::Float64Type>();
            (0..numbers.len())
                .map(|i| (!numbers.is_null(i)).then(|| CursorKey::Number(numbers.value(i))))
                .collect()
        }
        DataType::Date32 => {
            let days = column.as_primitive::<arrow_array::types::Date32Type>();
            (0..days.len())
                .map(|i| (!days.is_null(i)).then(|| CursorKey::Integer(i64::from(days.value(i)))))
                .collect()
        }
        _ => {
            let integers = cast(&DataType::Int64)?;
            let integers = integers.as_primitive::<arrow_array::types::Int64Type>();
            (0..integers.len())
                .map(|i| (!integers.is_null(i)).then(|| CursorKey::Integer(integers.value(i))))
                .collect()
        }
    };
    Ok(keys)
}

fn rows_text(report: &SyncReport) -> String {
    let text = report
        .streams
        .iter()
        .map(|(stream, stats)| format!("`{stream}` {} rows", stats.rows))
        .collect::<Vec<_>>()
        .join(", ");
    if text.is_empty() {
        "no rows".to_owned()
    } else {
        text
    }
}

/// A failed read, with the rule when the sandbox refused something.
fn explain(error: &SyncError) -> String {
    match error {
        SyncError::Call(call) if matches!(*call.failure, CallFailure::Violation(_)) => {
            format!("the sandbox refused it: {error}")
        }
        other => other.to_string(),
    }
}
