//! The `heroku-logplex` push connector: Heroku log drains POST `application/logplex-1` bodies to
//! `inlet serve`; each octet-counted syslog frame becomes a row of `logs` (router lines also get
//! their key=value fields as columns), and frames that cannot be parsed become rows of `rejected`
//! with their raw text: nothing is dropped silently. A body whose frame lengths do not add up is
//! refused whole (400), so Logplex does not retry garbage. Deliveries are deduplicated by
//! `Logplex-Frame-Id` over a window of recent ids that is kept in the durable state; a request
//! without one (Shield Private Spaces, where log-shuttle posts to the drain without logplex) is
//! written with a null `frame_id` and cannot be recognised if it is sent again.

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

/// What a request amounts to, decided before anything is emitted.
enum Batch {
    /// A retry of a request already written (its `Logplex-Frame-Id` was seen).
    Duplicate,
    /// The request's rows.
    Rows {
        logs: RecordBatch,
        rejected: RecordBatch,
    },
}

impl Logplex {
    /// Validates a request whole and builds its rows. Without a `Logplex-Frame-Id` there is
    /// nothing to deduplicate by: the rows are built, with a null `frame_id`.
    fn batch(&self, request: &Request) -> Result<Batch, Error> {
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
        if frame_id.is_some_and(|id| self.seen.contains(id)) {
            return Ok(Batch::Duplicate);
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
        Ok(Batch::Rows { logs, rejected })
    }

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
        let (logs, rejected) = match self.batch(request)? {
            Batch::Duplicate => {
                let mut response = Response::no_content();
                response
                    .headers
                    .push(("x-inlet-duplicate".into(), "true".into()));
                return Ok(response);
            }
            Batch::Rows { logs, rejected } => (logs, rejected),
        };
        out.emit("logs", &logs)?;
        out.emit("rejected", &rejected)?;
        if let Some(id) = request.header("logplex-frame-id") {
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
        let index = i32::try_from(index).map_err(|_| {
            Error::data(format!("frame {index} does not fit `frame_index` (Int32)"))
        })?;
        let message = match syslog::parse(frame) {
            Ok(message) => message,
            Err(reason) => {
                rejected_ids.append_option(frame_id);
                rejected_indexes.append_value(index);
                reasons.append_value(reason);
                raws.append_value(String::from_utf8_lossy(frame));
                continue;
            }
        };
        frame_ids.append_option(frame_id);
        indexes.append_value(index);
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

#[cfg(test)]
mod tests {
    use super::*;
    use inlet_sdk::arrow::array::{
        Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };

    fn drain() -> Logplex {
        Logplex::open(LogplexConfig { dedupe_window: 4 }, State::default()).unwrap()
    }

    fn request(headers: &[(&str, &str)], lines: &[&str]) -> Request {
        Request {
            method: "POST".into(),
            path: "/drains/heroku".into(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: lines
                .iter()
                .flat_map(|line| format!("{} {line}", line.len()).into_bytes())
                .collect(),
        }
    }

    fn rows_of(batch: Batch) -> (RecordBatch, RecordBatch) {
        match batch {
            Batch::Rows { logs, rejected } => (logs, rejected),
            Batch::Duplicate => panic!("rows expected, got a duplicate"),
        }
    }

    fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .unwrap_or_else(|| panic!("no column `{name}` of that type"))
    }

    fn texts(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
        column::<StringArray>(batch, name)
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect()
    }

    fn numbers(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
        column::<Int64Array>(batch, name).iter().collect()
    }

    const RAILS: &str = "<190>1 2024-05-01T10:00:00.100000+00:00 host app web.1 - [8601b555-6a54] Started GET \"/orders\" for 1.2.3.4 at 2024-05-01 10:00:00 +0000\n";
    const H12: &str = "<158>1 2024-05-01T10:00:30.000001+00:00 host heroku router - at=error code=H12 desc=\"Request timeout\" method=GET path=\"/\" host=myapp.herokuapp.com request_id=2c1e5a7b-9d3f-4e8a-b6c1-7f0e9d2a4b58 fwd=\"1.2.3.4\" dyno=web.1 connect=0ms service=30000ms status=503 bytes=0 protocol=https\n";

    /// Shield Private Spaces: log-shuttle posts straight to the drain, with no `Logplex-Frame-Id`
    /// (nor `Logplex-Drain-Token`). The batch is written; it cannot be deduplicated.
    #[test]
    fn a_batch_without_a_frame_id_is_written_and_not_deduplicated() {
        let drain = drain();
        let request = request(
            &[
                ("content-type", "application/logplex-1"),
                ("logplex-msg-count", "3"),
            ],
            &[RAILS, H12, "not syslog"],
        );
        let (logs, rejected) = rows_of(drain.batch(&request).unwrap());

        assert_eq!(logs.num_rows(), 2);
        assert_eq!(texts(&logs, "frame_id"), vec![None, None]);
        assert_eq!(texts(&logs, "drain_token"), vec![None, None]);
        assert_eq!(column::<Int32Array>(&logs, "frame_index").values(), &[0, 1]);
        assert_eq!(
            column::<TimestampMicrosecondArray>(&logs, "timestamp").values(),
            &[1_714_557_600_100_000, 1_714_557_630_000_001]
        );
        assert_eq!(column::<Int32Array>(&logs, "severity").values(), &[6, 6]);
        assert_eq!(
            texts(&logs, "message"),
            vec![
                Some("[8601b555-6a54] Started GET \"/orders\" for 1.2.3.4 at 2024-05-01 10:00:00 +0000".to_owned()),
                H12.split_once(" - ").map(|(_, m)| m.trim_end_matches('\n').to_owned()),
            ]
        );
        // Router columns: only for heroku/router lines.
        assert_eq!(texts(&logs, "at"), vec![None, Some("error".into())]);
        assert_eq!(texts(&logs, "code"), vec![None, Some("H12".into())]);
        assert_eq!(
            texts(&logs, "desc"),
            vec![None, Some("Request timeout".into())]
        );
        assert_eq!(texts(&logs, "path"), vec![None, Some("/".into())]);
        assert_eq!(texts(&logs, "dyno"), vec![None, Some("web.1".into())]);
        assert_eq!(numbers(&logs, "status"), vec![None, Some(503)]);
        assert_eq!(numbers(&logs, "service_ms"), vec![None, Some(30_000)]);
        assert_eq!(numbers(&logs, "connect_ms"), vec![None, Some(0)]);
        assert_eq!(numbers(&logs, "bytes"), vec![None, Some(0)]);

        assert_eq!(rejected.num_rows(), 1);
        assert_eq!(texts(&rejected, "frame_id"), vec![None]);
        assert_eq!(
            column::<Int32Array>(&rejected, "frame_index").values(),
            &[2]
        );
        assert_eq!(texts(&rejected, "raw"), vec![Some("not syslog".into())]);

        // Sent again (a retry looks the same): written again, nothing to recognise it by.
        let (again, _) = rows_of(drain.batch(&request).unwrap());
        assert_eq!(again.num_rows(), 2);
        let state = drain.state().unwrap().unwrap_or_default();
        assert_eq!(state.get::<Vec<String>>(STATE_KEY).unwrap(), Some(vec![]));
    }

    #[test]
    fn a_frame_id_seen_before_is_a_duplicate() {
        let mut drain = drain();
        let request = request(
            &[
                ("content-type", "application/logplex-1"),
                ("logplex-msg-count", "1"),
                ("logplex-frame-id", "09C557EAFCFB6CF2740EE62F62971098"),
                (
                    "logplex-drain-token",
                    "d.fc6b856b-3332-4546-93de-7d0ee272c3bd",
                ),
            ],
            &[RAILS],
        );
        let (logs, _) = rows_of(drain.batch(&request).unwrap());
        assert_eq!(
            texts(&logs, "frame_id"),
            vec![Some("09C557EAFCFB6CF2740EE62F62971098".into())]
        );
        assert_eq!(
            texts(&logs, "drain_token"),
            vec![Some("d.fc6b856b-3332-4546-93de-7d0ee272c3bd".into())]
        );
        drain.remember("09C557EAFCFB6CF2740EE62F62971098");
        assert!(matches!(drain.batch(&request).unwrap(), Batch::Duplicate));
        // `handle` answers a duplicate without emitting anything.
        let response = drain.handle(&request, &mut Output::default()).unwrap();
        assert_eq!(response.status, 204);
        assert_eq!(
            response.headers,
            vec![("x-inlet-duplicate".to_owned(), "true".to_owned())]
        );
    }

    #[test]
    fn bad_requests_are_refused_whole() {
        let drain = drain();
        let cases = [
            (
                request(&[("logplex-msg-count", "2")], &[RAILS]),
                "Logplex-Msg-Count says 2 frames but the body holds 1",
            ),
            (
                request(&[("content-type", "text/plain")], &[RAILS]),
                "Content-Type `text/plain` is not application/logplex-1",
            ),
            (
                Request {
                    body: b"70 <174>1 short".to_vec(),
                    ..request(&[], &[])
                },
                "declares 70 bytes but only 12 remain",
            ),
        ];
        for (request, expected) in cases {
            let error = drain.batch(&request).err().map(|e| e.to_string());
            assert!(
                error.as_deref().is_some_and(|e| e.contains(expected)),
                "{error:?} lacks {expected:?}"
            );
        }
    }
}
