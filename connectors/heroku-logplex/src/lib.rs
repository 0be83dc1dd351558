//! The `heroku-logplex` push connector: Heroku log drains POST `application/logplex-1` bodies to
//! `inlet serve`; each octet-counted syslog frame becomes a row of `logs` (router lines also get
//! their key=value fields as columns), and frames that cannot be parsed become rows of `rejected`
//! with their raw text: nothing is dropped silently. A body whose frame lengths do not add up is
//! refused whole (400), so Logplex does not retry garbage. Deliveries are deduplicated by
//! `Logplex-Frame-Id` over a window of recent ids that is kept in the durable state.

mod syslog;

use inlet_sdk::arrow::array::builder::{
    Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use inlet_sdk::arrow::array::{ArrayRef, RecordBatch};
use inlet_sdk::prelude::*;
use inlet_sdk::{Push, Request, Response};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

const STATE_KEY: &str = "recent_frame_ids";

/// Settings of the Logplex drain connector.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogplexConfig {
    /// How many recent `Logplex-Frame-Id`s to remember, to drop retried deliveries. Example: `2048`.
    #[serde(default = "default_window")]
    pub dedupe_window: usize,
}

fn default_window() -> usize {
    2048
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
}

/// Text columns taken from router lines (`at=info method=GET ...`), in order.
const ROUTER_TEXT: [&str; 10] = [
    "at",
    "code",
    "desc",
    "method",
    "path",
    "host",
    "request_id",
    "fwd",
    "dyno",
    "protocol",
];
/// Numeric router columns: (column, key in the line).
const ROUTER_NUMBERS: [(&str, &str); 4] = [
    ("connect_ms", "connect"),
    ("service_ms", "service"),
    ("status", "status"),
    ("bytes", "bytes"),
];

fn logs_schema() -> Schema {
    let mut fields = vec![
        Field::new("frame_id", DataType::Utf8, true),
        Field::new("frame_index", DataType::Int32, false),
        Field::new("drain_token", DataType::Utf8, true),
        Field::new("timestamp", timestamp(), true),
        Field::new("priority", DataType::Int32, false),
        Field::new("facility", DataType::Int32, false),
        Field::new("severity", DataType::Int32, false),
        Field::new("hostname", DataType::Utf8, true),
        Field::new("app_name", DataType::Utf8, true),
        Field::new("proc_id", DataType::Utf8, true),
        Field::new("msg_id", DataType::Utf8, true),
        Field::new("message", DataType::Utf8, false),
    ];
    fields.extend(
        ROUTER_TEXT
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, true)),
    );
    fields.extend(
        ROUTER_NUMBERS
            .iter()
            .map(|(n, _)| Field::new(*n, DataType::Int64, true)),
    );
    Schema::new(fields)
}

fn rejected_schema() -> Schema {
    Schema::new(vec![
        Field::new("frame_id", DataType::Utf8, true),
        Field::new("frame_index", DataType::Int32, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("raw", DataType::Utf8, false),
    ])
}

/// An open drain: the recent frame ids.
pub struct Logplex {
    window: usize,
    seen: HashSet<String>,
    order: VecDeque<String>,
}

impl Logplex {
    fn remember(&mut self, id: &str) {
        if self.seen.insert(id.to_owned()) {
            self.order.push_back(id.to_owned());
        }
        while self.order.len() > self.window {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
    }
}

impl Source for Logplex {
    type Config = LogplexConfig;

    fn spec() -> Spec {
        Spec::new(
            "heroku-logplex",
            env!("CARGO_PKG_VERSION"),
            "Heroku log drains: logplex syslog frames as rows, router fields as columns",
        )
    }

    fn discover(_: &LogplexConfig) -> Result<Vec<Stream>, Error> {
        Ok(vec![
            Stream::new("logs").schema(logs_schema()),
            Stream::new("rejected").schema(rejected_schema()),
        ])
    }

    fn read(
        _: &LogplexConfig,
        _: &[ConfiguredStream],
        _: State,
        _: &mut Output,
    ) -> Result<(), Error> {
        Err(Error::config(
            "heroku-logplex receives log drains: run `inlet serve` and point `heroku drains:add` at it",
        ))
    }
}

impl Push for Logplex {
    fn open(config: LogplexConfig, state: State) -> Result<Self, Error> {
        if config.dedupe_window == 0 {
            return Err(Error::config("`dedupe_window` must be at least 1"));
        }
        let mut drain = Self {
            window: config.dedupe_window,
            seen: HashSet::new(),
            order: VecDeque::new(),
        };
        let recent: Vec<String> = state.get(STATE_KEY)?.unwrap_or_default();
        for id in recent {
            drain.remember(&id);
        }
        Ok(drain)
    }

    fn handle(&mut self, request: &Request, out: &mut Output) -> Result<Response, Error> {
        if request.method != "POST" {
            return Err(Error::config(format!(
                "a log drain POSTs; got {}",
                request.method
            )));
        }
        if let Some(kind) = request.header("content-type")
            && !kind.starts_with("application/logplex-1")
        {
            return Err(Error::data(format!(
                "Content-Type `{kind}` is not application/logplex-1"
            )));
        }
        let frame_id = request.header("logplex-frame-id");
        if let Some(id) = frame_id
            && self.seen.contains(id)
        {
            let mut response = Response::no_content();
            response
                .headers
                .push(("x-inlet-duplicate".into(), "true".into()));
            return Ok(response);
        }
        let frames = syslog::frames(&request.body).map_err(|e| Error::data(e.0))?;
        if let Some(count) = request.header("logplex-msg-count") {
            let declared: usize = count
                .trim()
                .parse()
                .map_err(|_| Error::data(format!("Logplex-Msg-Count `{count}` is not a number")))?;
            if declared != frames.len() {
                return Err(Error::data(format!(
                    "Logplex-Msg-Count says {declared} frames but the body holds {}",
                    frames.len()
                )));
            }
        }
        let (logs, rejected) = rows(&frames, frame_id, request.header("logplex-drain-token"))?;
        out.emit("logs", &logs)?;
        out.emit("rejected", &rejected)?;
        if let Some(id) = frame_id {
            self.remember(id);
        }
        Ok(Response::no_content())
    }

    /// The recent frame ids, committed with the rows of the requests they came with.
    fn state(&self) -> Result<Option<State>, Error> {
        let mut state = State::default();
        state.set(STATE_KEY, &self.order)?;
        Ok(Some(state))
    }
}

/// The `logs` and `rejected` batches of one request's frames.
fn rows(
    frames: &[&[u8]],
    frame_id: Option<&str>,
    drain_token: Option<&str>,
) -> Result<(RecordBatch, RecordBatch), Error> {
    let n = frames.len();
    let mut frame_ids = StringBuilder::new();
    let mut indexes = Int32Builder::with_capacity(n);
    let mut tokens = StringBuilder::new();
    let mut times = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("+00:00");
    let mut priorities = Int32Builder::with_capacity(n);
    let mut facilities = Int32Builder::with_capacity(n);
    let mut severities = Int32Builder::with_capacity(n);
    let mut text: Vec<StringBuilder> = (0..5).map(|_| StringBuilder::new()).collect();
    let mut router_text: Vec<StringBuilder> =
        ROUTER_TEXT.iter().map(|_| StringBuilder::new()).collect();
    let mut router_numbers: Vec<Int64Builder> =
        ROUTER_NUMBERS.iter().map(|_| Int64Builder::new()).collect();
    let mut rejected_ids = StringBuilder::new();
    let mut rejected_indexes = Int32Builder::new();
    let mut reasons = StringBuilder::new();
    let mut raws = StringBuilder::new();

    for (index, frame) in frames.iter().enumerate() {
        let message = match syslog::parse(frame) {
            Ok(message) => message,
            Err(reason) => {
                rejected_ids.append_option(frame_id);
                rejected_indexes.append_value(index as i32);
                reasons.append_value(reason);
                raws.append_value(String::from_utf8_lossy(frame));
                continue;
            }
        };
        frame_ids.append_option(frame_id);
        indexes.append_value(index as i32);
        tokens.append_option(drain_token);
        times.append_option(message.timestamp_micros);
        priorities.append_value(i32::from(message.priority));
        facilities.append_value(i32::from(message.priority / 8));
        severities.append_value(i32::from(message.priority % 8));
        for (builder, value) in text.iter_mut().zip([
            message.hostname,
            message.app_name,
            message.proc_id,
            message.msg_id,
            Some(message.text),
        ]) {
            builder.append_option(value);
        }
        let router = message.app_name == Some("heroku") && message.proc_id == Some("router");
        let pairs = if router {
            syslog::key_values(message.text)
        } else {
            Vec::new()
        };
        let get = |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        for (builder, key) in router_text.iter_mut().zip(ROUTER_TEXT) {
            builder.append_option(get(key));
        }
        for (builder, (_, key)) in router_numbers.iter_mut().zip(ROUTER_NUMBERS) {
            builder.append_option(get(key).and_then(|v| v.trim_end_matches("ms").parse().ok()));
        }
    }

    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(frame_ids.finish()),
        Arc::new(indexes.finish()),
        Arc::new(tokens.finish()),
        Arc::new(times.finish()),
        Arc::new(priorities.finish()),
        Arc::new(facilities.finish()),
        Arc::new(severities.finish()),
    ];
    columns.extend(text.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.extend(
        router_text
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef),
    );
    columns.extend(
        router_numbers
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef),
    );
    let logs = RecordBatch::try_new(Arc::new(logs_schema()), columns)?;
    let rejected = RecordBatch::try_new(
        Arc::new(rejected_schema()),
        vec![
            Arc::new(rejected_ids.finish()),
            Arc::new(rejected_indexes.finish()),
            Arc::new(reasons.finish()),
            Arc::new(raws.finish()),
        ],
    )?;
    Ok((logs, rejected))
}

inlet_sdk::export_push!(Logplex);
