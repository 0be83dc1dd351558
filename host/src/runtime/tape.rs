//! Record and replay of a connector's HTTP exchanges (`--record DIR`, `--replay DIR`), so that an
//! author records a real API once and tests against it afterwards with no network and no account.
//!
//! A tape is a folder of JSON files, one per exchange, named in the order the requests were sent
//! (`0001-get-api.example.com.json`). Each holds `request` (`method`, `url`, `headers`, a body) and
//! `response` (`status`, `headers`, a body); a body is `json` (any JSON value, when it parsed as
//! JSON), `text` (UTF-8) or `base64`, or absent when empty. Secrets never reach a tape: values of
//! the connector's secret settings, granted secrets and secret references are written `***`, and a
//! credential placeholder is written `<credential NAME>` (the real token is filled in by the host
//! after recording and never seen here). `content-length`, `transfer-encoding` and `connection`
//! are not kept. The files are meant to be read and edited by hand.
//!
//! Replay answers a request with the first unused exchange of the same method, URL and body
//! (secrets masked on both sides; JSON bodies compared as JSON values, so key order and spacing do
//! not matter); once all such exchanges were used, the last of them again (a connector that polls).
//! Headers are not compared. A request no exchange answers fails the call with the request named:
//! replay never falls back to the network, and no name is resolved while replaying.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

/// Headers that describe the transfer rather than the message: not recorded.
const TRANSFER_HEADERS: [&str; 3] = ["content-length", "transfer-encoding", "connection"];

/// Where a run's HTTP exchanges go, or come from.
#[derive(Debug, Clone)]
pub enum HttpTape {
    /// Send requests and write every exchange to a folder.
    Record(std::sync::Arc<Recorder>),
    /// Answer requests from a folder; nothing is sent.
    Replay(std::sync::Arc<Replayer>),
}

impl HttpTape {
    /// Whether requests are answered from the tape instead of the network.
    pub fn replays(&self) -> bool {
        matches!(self, Self::Replay(_))
    }
}

/// Why a tape cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TapeError {
    #[error("cannot use `{}` to record: {source}", dir.display())]
    RecordFolder {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "`{}` already holds {count} recorded exchanges: record into an empty folder (remove it to record again)",
        dir.display()
    )]
    NotEmpty { dir: PathBuf, count: usize },
    #[error("cannot read the tape `{}`: {source}", dir.display())]
    ReplayFolder {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("the tape `{}` holds no recorded exchange (`*.json`); record one with --record", dir.display())]
    Empty { dir: PathBuf },
    #[error("recorded exchange `{}`: {reason}", file.display())]
    BadExchange { file: PathBuf, reason: String },
}

/// One request and its response, as written to a tape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// What the connector sent.
    pub request: RecordedRequest,
    /// What came back.
    pub response: RecordedResponse,
}

/// A request as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// `GET`, `POST`...
    pub method: String,
    /// The full URL, query included.
    pub url: String,
    /// Headers in order, names lowercase.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body.
    #[serde(flatten)]
    pub body: RecordedBody,
}

/// A response as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedResponse {
    /// The status code.
    pub status: u16,
    /// Headers in order, names lowercase.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body.
    #[serde(flatten)]
    pub body: RecordedBody,
}

/// A body in its most readable form: at most one field is set; none means empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordedBody {
    /// A body that parsed as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
    /// A UTF-8 body that is not JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Any other body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

impl RecordedBody {
    /// `bytes` in the most readable form that gives them back.
    fn of(bytes: &[u8], mask: &Mask) -> Self {
        if bytes.is_empty() {
            return Self::default();
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                let text = mask.apply(text);
                match serde_json::from_str(&text) {
                    Ok(json) => Self {
                        json: Some(json),
                        ..Self::default()
                    },
                    Err(_) => Self {
                        text: Some(text),
                        ..Self::default()
                    },
                }
            }
            Err(_) => {
                use base64::Engine as _;
                Self {
                    base64: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
                    ..Self::default()
                }
            }
        }
    }

    /// The bytes to send back.
    fn bytes(&self) -> Result<Bytes, String> {
        match (&self.json, &self.text, &self.base64) {
            (None, None, None) => Ok(Bytes::new()),
            (Some(json), None, None) => Ok(Bytes::from(json.to_string())),
            (None, Some(text), None) => Ok(Bytes::from(text.clone())),
            (None, None, Some(encoded)) => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map(Bytes::from)
                    .map_err(|e| format!("`base64` is not base64: {e}"))
            }
            _ => Err("a body has at most one of `json`, `text` and `base64`".to_owned()),
        }
    }
}

/// Hides secrets and credential placeholders in what is recorded or matched.
pub(super) struct Mask<'a> {
    /// Values of secret settings and granted secrets of this run.
    pub(super) secrets: &'a [String],
}

impl Mask<'_> {
    fn apply(&self, text: &str) -> String {
        let masked = self
            .secrets
            .iter()
            .filter(|s| !s.is_empty())
            .fold(text.to_owned(), |acc, secret| {
                acc.replace(secret.as_str(), "***")
            });
        let masked = crate::secrets::redact(&masked);
        mask_placeholders(&masked)
    }

    fn headers(&self, headers: &http::HeaderMap) -> Vec<(String, String)> {
        headers
            .iter()
            .filter(|(name, _)| !TRANSFER_HEADERS.contains(&name.as_str()))
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    self.apply(&String::from_utf8_lossy(value.as_bytes())),
                )
            })
            .collect()
    }
}

/// `inlet-credential-NAME-0123456789abcdef` becomes `<credential NAME>`: placeholders change
/// every run, the name does not.
fn mask_placeholders(text: &str) -> String {
    let prefix = super::http::PLACEHOLDER_PREFIX;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        out.push_str(&rest[..at]);
        let after = &rest[at + prefix.len()..];
        let token_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(after.len());
        let token = &after[..token_len];
        let name = match token.rsplit_once('-') {
            Some((name, suffix)) if suffix.chars().all(|c| c.is_ascii_hexdigit()) => name,
            _ => token,
        };
        out.push_str(&format!("<credential {name}>"));
        rest = &after[token_len..];
    }
    out.push_str(rest);
    out
}

/// What the connector asked, masked, to find the exchange that answers it.
pub(super) struct Asked {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: RecordedBody,
}

impl Asked {
    /// `parts` and `body` of a request as a tape sees them.
    pub(super) fn new(parts: &http::request::Parts, body: &[u8], mask: &Mask) -> Self {
        Self {
            method: parts.method.as_str().to_owned(),
            url: mask.apply(&parts.uri.to_string()),
            headers: mask.headers(&parts.headers),
            body: RecordedBody::of(body, mask),
        }
    }

    fn describe(&self) -> String {
        format!("{} {}", self.method, self.url)
    }
}

/// Writes the exchanges of a run to a folder.
#[derive(Debug)]
pub struct Recorder {
    dir: PathBuf,
    written: AtomicUsize,
}

impl Recorder {
    /// A recorder writing into `dir`, created if missing; refused when it holds exchanges already.
    pub fn create(dir: &Path) -> Result<Self, TapeError> {
        let folder_error = |source| TapeError::RecordFolder {
            dir: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(folder_error)?;
        let count = exchange_files(dir).map_err(folder_error)?.len();
        if count > 0 {
            return Err(TapeError::NotEmpty {
                dir: dir.to_owned(),
                count,
            });
        }
        Ok(Self {
            dir: dir.to_owned(),
            written: AtomicUsize::new(0),
        })
    }

    /// Writes one exchange; returns the file written.
    pub(super) fn write(
        &self,
        asked: Asked,
        status: u16,
        headers: &http::HeaderMap,
        body: &[u8],
        mask: &Mask,
    ) -> std::io::Result<PathBuf> {
        let number = self.written.fetch_add(1, Ordering::SeqCst) + 1;
        let host = http::Uri::try_from(asked.url.as_str())
            .ok()
            .and_then(|u| u.host().map(str::to_owned))
            .unwrap_or_default();
        let name = format!(
            "{number:04}-{}-{}.json",
            asked.method.to_ascii_lowercase(),
            host.replace(
                |c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'),
                "_"
            )
        );
        let exchange = Exchange {
            request: RecordedRequest {
                method: asked.method,
                url: asked.url,
                headers: asked.headers,
                body: asked.body,
            },
            response: RecordedResponse {
                status,
                headers: mask.headers(headers),
                body: RecordedBody::of(body, mask),
            },
        };
        let path = self.dir.join(name);
        let mut text = serde_json::to_string_pretty(&exchange).map_err(std::io::Error::other)?;
        text.push('\n');
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

/// Answers requests from a folder of recorded exchanges.
#[derive(Debug)]
pub struct Replayer {
    dir: PathBuf,
    exchanges: Vec<Replayable>,
    used: Mutex<Vec<bool>>,
}

/// One recorded exchange: where it came from, the request to match, and its checked answer.
#[derive(Debug)]
struct Replayable {
    file: PathBuf,
    request: RecordedRequest,
    answer: Answer,
}

/// A recorded answer, ready to hand to the connector.
#[derive(Debug, Clone)]
pub(super) struct Answer {
    pub(super) status: http::StatusCode,
    pub(super) headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub(super) body: Bytes,
}

impl Replayer {
    /// Reads every exchange of the tape in `dir`, checking each.
    pub fn open(dir: &Path) -> Result<Self, TapeError> {
        let files = exchange_files(dir).map_err(|source| TapeError::ReplayFolder {
            dir: dir.to_owned(),
            source,
        })?;
        if files.is_empty() {
            return Err(TapeError::Empty {
                dir: dir.to_owned(),
            });
        }
        let mut exchanges = Vec::with_capacity(files.len());
        for file in files {
            let bad = |reason: String| TapeError::BadExchange {
                file: file.clone(),
                reason,
            };
            let text = std::fs::read_to_string(&file).map_err(|e| bad(e.to_string()))?;
            let exchange: Exchange = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
            let answer = answer_of(&exchange).map_err(bad)?;
            exchanges.push(Replayable {
                file,
                request: exchange.request,
                answer,
            });
        }
        let used = Mutex::new(vec![false; exchanges.len()]);
        Ok(Self {
            dir: dir.to_owned(),
            exchanges,
            used,
        })
    }

    /// The answer to `asked`, or why there is none.
    pub(super) fn answer(&self, asked: &Asked) -> Result<Answer, String> {
        let same: Vec<usize> = self
            .exchanges
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                e.request.method.eq_ignore_ascii_case(&asked.method)
                    && e.request.url == asked.url
                    // JSON bodies compare as values: key order and spacing do not matter.
                    && e.request.body == asked.body
            })
            .map(|(index, _)| index)
            .collect();
        let Some(&last) = same.last() else {
            return Err(self.unanswered(asked));
        };
        let chosen = {
            let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
            let index = same.iter().copied().find(|&i| !used[i]).unwrap_or(last);
            used[index] = true;
            index
        };
        Ok(self.exchanges[chosen].answer.clone())
    }

    /// Why nothing answers `asked`, with the recorded requests closest to it.
    fn unanswered(&self, asked: &Asked) -> String {
        let same_url: Vec<&str> = self
            .exchanges
            .iter()
            .filter(|e| e.request.url == asked.url)
            .filter_map(|e| e.file.file_name()?.to_str())
            .collect();
        let hint = if same_url.is_empty() {
            let path = asked.url.split('?').next().unwrap_or_default();
            let near: Vec<String> = self
                .exchanges
                .iter()
                .filter(|e| e.request.url.split('?').next() == Some(path))
                .map(|e| format!("{} {}", e.request.method, e.request.url))
                .take(3)
                .collect();
            if near.is_empty() {
                "no recorded request has this URL's path".to_owned()
            } else {
                format!("recorded with this path: {}", near.join("; "))
            }
        } else {
            format!(
                "{} has this URL with another method or body",
                same_url.join(", ")
            )
        };
        format!(
            "replay: the tape `{}` has no exchange for {} ({hint}); record it again with --record",
            self.dir.display(),
            asked.describe()
        )
    }
}

/// The status, headers and body of `exchange`'s response, checked.
fn answer_of(exchange: &Exchange) -> Result<Answer, String> {
    let response = &exchange.response;
    let status = http::StatusCode::from_u16(response.status)
        .map_err(|_| format!("`{}` is not an HTTP status", response.status))?;
    let headers = response
        .headers
        .iter()
        .map(|(name, value)| {
            let header = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`{name}` is not a header name"))?;
            let value = http::HeaderValue::from_str(value)
                .map_err(|_| format!("header `{name}` has a value that cannot be sent"))?;
            Ok((header, value))
        })
        .collect::<Result<_, String>>()?;
    let body = response
        .body
        .bytes()
        .map_err(|e| format!("response: {e}"))?;
    exchange
        .request
        .body
        .bytes()
        .map_err(|e| format!("request: {e}"))?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// The `*.json` files of `dir`, sorted by name.
fn exchange_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "json") && path.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// A whole body, read.
pub(super) async fn collect(body: WasiBody) -> Result<Bytes, HttpError> {
    Ok(body.collect().await?.to_bytes())
}

/// `bytes` as a body wasmtime-wasi-http can hand to the guest.
pub(super) fn full(bytes: Bytes) -> WasiBody {
    Full::new(bytes)
        .map_err(|never: std::convert::Infallible| match never {})
        .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, url: &str) -> http::request::Parts {
        http::Request::builder()
            .method(method)
            .uri(url)
            .header("x-api-key", "key-12345")
            .header("authorization", "Bearer inlet-credential-google-0123abcd")
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn placeholders_and_secrets_are_masked() {
        let secrets = vec!["key-12345".to_owned()];
        let mask = Mask { secrets: &secrets };
        let asked = Asked::new(
            &parts("GET", "https://api.example.com/o?k=key-12345"),
            b"",
            &mask,
        );
        assert_eq!(asked.url, "https://api.example.com/o?k=***");
        assert!(asked.headers.contains(&("x-api-key".into(), "***".into())));
        assert!(
            asked
                .headers
                .contains(&("authorization".into(), "Bearer <credential google>".into()))
        );
        assert_eq!(
            mask_placeholders("a inlet-credential-developer_token-ff00 b inlet-credential-x"),
            "a <credential developer_token> b <credential x>"
        );
    }

    #[test]
    fn recorded_exchanges_answer_in_order_then_repeat_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Recorder::create(dir.path()).unwrap();
        let mask = Mask { secrets: &[] };
        let url = "https://api.example.com/orders?page=1";
        for (status, body) in [(200u16, &br#"{"n": 1}"#[..]), (200, b"second")] {
            let asked = Asked::new(&parts("GET", url), b"", &mask);
            recorder
                .write(asked, status, &http::HeaderMap::new(), body, &mask)
                .unwrap();
        }
        let post = Asked::new(&parts("POST", url), br#"{"b":1,"a":[2]}"#, &mask);
        recorder
            .write(post, 201, &http::HeaderMap::new(), &[0xff, 0x00], &mask)
            .unwrap();
        assert!(matches!(
            Recorder::create(dir.path()),
            Err(TapeError::NotEmpty { count: 3, .. })
        ));

        let replayer = Replayer::open(dir.path()).unwrap();
        let get = || Asked::new(&parts("GET", url), b"", &mask);
        assert_eq!(replayer.answer(&get()).unwrap().body, r#"{"n":1}"#);
        assert_eq!(replayer.answer(&get()).unwrap().body, "second");
        assert_eq!(replayer.answer(&get()).unwrap().body, "second");
        // Same JSON, other key order and spacing.
        let post = Asked::new(&parts("POST", url), br#"{ "a": [2], "b": 1 }"#, &mask);
        let answer = replayer.answer(&post).unwrap();
        assert_eq!(answer.status, 201);
        assert_eq!(&answer.body[..], &[0xff, 0x00]);
        let other = Asked::new(&parts("POST", url), br#"{"a":[3]}"#, &mask);
        let why = replayer.answer(&other).err().unwrap();
        assert!(
            why.contains("POST https://api.example.com/orders?page=1"),
            "{why}"
        );
        assert!(why.contains("another method or body"), "{why}");
        let unknown = Asked::new(&parts("GET", "https://api.example.com/users"), b"", &mask);
        let why = replayer.answer(&unknown).err().unwrap();
        assert!(
            why.contains("no recorded request has this URL's path"),
            "{why}"
        );
    }

    #[test]
    fn a_damaged_tape_names_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Replayer::open(dir.path()),
            Err(TapeError::Empty { .. })
        ));
        std::fs::write(
            dir.path().join("0001-get-x.json"),
            r#"{"request":{"method":"GET","url":"https://x/"},"response":{"status":99}}"#,
        )
        .unwrap();
        let error = Replayer::open(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("0001-get-x.json") && error.contains("`99`"),
            "{error}"
        );
        std::fs::write(
            dir.path().join("0001-get-x.json"),
            r#"{"request":{"method":"GET","url":"https://x/"},"response":{"status":200,"text":"a","json":1}}"#,
        )
        .unwrap();
        let error = Replayer::open(dir.path()).unwrap_err().to_string();
        assert!(error.contains("at most one of"), "{error}");
    }
}
