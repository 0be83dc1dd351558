//! Logplex bodies: octet-counted frames (RFC 6587) of syslog messages in Heroku's variant of
//! RFC 5424, and the key=value fields of Heroku router lines.
//!
//! A frame is `<PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID MSG`, for example
//! `<190>1 2024-05-01T10:00:00.123456+00:00 host app web.1 - [8601b555] Started GET "/"`.
//! Heroku leaves RFC 5424's STRUCTURED-DATA field out without putting a NILVALUE in its place
//! (logplex's `doc/README.http_drains.md`; its HTTP drain writes `PROCID MSGID MSG` with no SD),
//! so the six header fields after `<PRI>` are followed directly by the message:
//!
//! - the message is everything after MSGID and the single space that follows it, byte for byte
//!   (leading spaces, inner newlines, any text);
//! - a leading `[...]` is text, never structured data: Rails tags lines with the request id
//!   (`[8601b555-6a54] Started GET ...`), and an unclosed `[` is text too;
//! - a leading `- ` is text, never a nil SD: Puma logs `- Gracefully stopping, ...` and
//!   `- Goodbye!`. A sender writing real RFC 5424 with a nil SD (`- -` after PROCID) gets
//!   `- ` kept at the start of its messages: nothing is ever cut from a message to guess;
//! - the one byte taken off is a final `\n`: Heroku's log-shuttle reads a dyno's output with
//!   `ReadBytes('\n')` and puts each line, terminator included, in its own frame (logplex's
//!   example frames count it: `70 <174>1 ... Hi from erlang` is 69 bytes and a newline). It ends
//!   the line rather than belonging to it; a `\r` before it, and newlines inside, are kept;
//! - a frame that ends right after MSGID (with or without the space) has an empty message.

/// Why a body cannot be split into frames: the whole request is refused.
#[derive(Debug, PartialEq, Eq)]
pub struct FramingError(pub String);

/// Splits a body into frames, checking every declared length against the bytes present.
/// Newlines between frames are tolerated (some senders add them).
pub fn frames(body: &[u8]) -> Result<Vec<&[u8]>, FramingError> {
    let mut frames = Vec::new();
    let mut rest = body;
    while let Some((&first, after)) = rest.split_first() {
        if matches!(first, b'\n' | b'\r') {
            rest = after;
            continue;
        }
        let number = frames.len() + 1;
        let at = body.len() - rest.len();
        let (length, after) = frame_length(rest).ok_or_else(|| {
            FramingError(format!(
                "frame {number} at byte {at} does not start with `<length> ` (octet counting)"
            ))
        })?;
        let (frame, next) = after.split_at_checked(length).ok_or_else(|| {
            FramingError(format!(
                "frame {number} declares {length} bytes but only {} remain",
                after.len()
            ))
        })?;
        frames.push(frame);
        rest = next;
    }
    Ok(frames)
}

/// The length a frame declares (one to nine ASCII digits and a space) and the bytes after it.
fn frame_length(frame: &[u8]) -> Option<(usize, &[u8])> {
    let digits = frame.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=9).contains(&digits) {
        return None;
    }
    let (number, after) = frame.split_at_checked(digits)?;
    let after = after.strip_prefix(b" ")?;
    let length = number.iter().try_fold(0usize, |length, digit| {
        let digit = char::from(*digit).to_digit(10)?;
        length
            .checked_mul(10)?
            .checked_add(usize::try_from(digit).ok()?)
    })?;
    Some((length, after))
}

/// One parsed syslog message.
#[derive(Debug, Default, PartialEq)]
pub struct Message<'a> {
    pub priority: u8,
    pub timestamp_micros: Option<i64>,
    pub hostname: Option<&'a str>,
    pub app_name: Option<&'a str>,
    pub proc_id: Option<&'a str>,
    pub msg_id: Option<&'a str>,
    pub text: &'a str,
}

fn nil(token: &str) -> Option<&str> {
    (token != "-").then_some(token)
}

/// Parses one frame's syslog message; the error says what is wrong with it.
pub fn parse(frame: &[u8]) -> Result<Message<'_>, String> {
    let text = std::str::from_utf8(frame).map_err(|e| format!("not UTF-8: {e}"))?;
    let (priority, rest) = priority(text)?;
    // The six header fields, then the message: no structured data (see the module doc).
    let mut parts = rest.splitn(7, ' ');
    let mut next = |what: &str| header_field(parts.next(), what);
    let version = next("version")?;
    if !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("version `{version}` is not a number"));
    }
    let timestamp = next("timestamp")?;
    let hostname = next("hostname")?;
    let app_name = next("app name")?;
    let proc_id = next("proc id")?;
    let msg_id = next("msg id")?;
    let body = parts.next().unwrap_or("");
    let timestamp_micros = match nil(timestamp) {
        None => None,
        Some(t) => {
            Some(rfc3339_micros(t).ok_or_else(|| format!("timestamp `{t}` is not RFC 3339"))?)
        }
    };
    Ok(Message {
        priority,
        timestamp_micros,
        hostname: nil(hostname),
        app_name: nil(app_name),
        proc_id: nil(proc_id),
        msg_id: nil(msg_id),
        text: body.strip_suffix('\n').unwrap_or(body),
    })
}

/// `<PRI>` at the start of a message, and what follows it.
fn priority(text: &str) -> Result<(u8, &str), String> {
    let rest = text
        .strip_prefix('<')
        .ok_or("no `<priority>` at the start")?;
    let (priority, rest) = rest.split_once('>').ok_or("no `>` after the priority")?;
    let value = priority
        .parse()
        .ok()
        .filter(|p| *p <= 191)
        .ok_or_else(|| format!("priority `{priority}` is not 0..191"))?;
    Ok((value, rest))
}

/// One space-separated header field: present and not empty.
fn header_field<'a>(token: Option<&'a str>, what: &str) -> Result<&'a str, String> {
    match token {
        None => Err(format!("the message ends before its {what}")),
        Some("") => Err(format!("the {what} is empty (two spaces in the header)")),
        Some(token) => Ok(token),
    }
}

/// `2024-05-01T10:00:00.123456+09:00` as microseconds since the epoch (UTC).
pub fn rfc3339_micros(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let is = |at: usize, expected: &[u8]| b.get(at).is_some_and(|c| expected.contains(c));
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if !(is(4, b"-") && is(7, b"-") && is(10, b"Tt") && is(13, b":") && is(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut at = 19;
    let mut micros = 0i64;
    if is(at, b".") {
        let digits = b
            .get(at + 1..)?
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        // Microseconds: digits past the sixth are dropped, fewer are scaled up.
        let fraction = text.get(at + 1..at + 1 + digits.min(6))?;
        let scale = 10i64.pow(u32::try_from(6 - fraction.len()).ok()?);
        micros = fraction.parse::<i64>().ok()? * scale;
        at += 1 + digits;
    }
    let offset_minutes = match (b.get(at)?, b.get(at + 1..)?) {
        (b'Z' | b'z', []) => 0,
        (sign @ (b'+' | b'-'), [_, _, b':', _, _]) => {
            let (hours, minutes) = (num(at + 1..at + 3)?, num(at + 4..at + 6)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 60 + minutes;
            if *sign == b'+' { offset } else { -offset }
        }
        _ => return None,
    };
    let days = inlet_sdk::time::days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000_000 + micros)
}

/// `key=value` and `key="quoted value"` pairs of a Heroku router line.
pub fn key_values(text: &str) -> Vec<(&str, &str)> {
    let mut pairs = Vec::new();
    let mut rest = text.trim_start();
    while let Some((key, after)) = rest.split_once('=') {
        if key.is_empty() || key.contains(' ') {
            // Not a key: skip the word.
            match rest.split_once(' ') {
                Some((_, next)) => {
                    rest = next.trim_start();
                    continue;
                }
                None => break,
            }
        }
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
            None => after.split_once(' ').unwrap_or((after, "")),
        };
        pairs.push((key, value));
        rest = next.trim_start();
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `line` as one octet-counted frame: its length in bytes, a space, the line.
    fn framed(line: &str) -> Vec<u8> {
        format!("{} {line}", line.len()).into_bytes()
    }

    /// Frames `line` and parses it back: the frame must be exactly the line's bytes.
    fn parse_framed(line: &str) -> Message<'_> {
        let body = framed(line);
        assert_eq!(frames(&body).unwrap(), vec![line.as_bytes()]);
        parse(line.as_bytes()).unwrap()
    }

    #[test]
    fn frames_follow_the_declared_lengths() {
        let body = b"5 hello3 abc\n2 hi";
        assert_eq!(frames(body).unwrap(), vec![&b"hello"[..], b"abc", b"hi"]);
        assert!(
            frames(b"10 short")
                .unwrap_err()
                .0
                .contains("declares 10 bytes but only 5 remain")
        );
        assert!(
            frames(b"garbage")
                .unwrap_err()
                .0
                .contains("does not start with")
        );
        assert!(frames(b"").unwrap().is_empty());
        assert_eq!(frames(b"0 ").unwrap(), vec![&b""[..]]);
    }

    #[test]
    fn framing_errors_name_the_frame_and_byte() {
        let cases: [(&[u8], &str); 5] = [
            (b"5", "frame 1 at byte 0 does not start with `<length> `"),
            (
                b"5hello",
                "frame 1 at byte 0 does not start with `<length> `",
            ),
            (
                b"2 hi1234567890 x",
                "frame 2 at byte 4 does not start with `<length> `",
            ),
            (
                b"2 hi\n999999999 x",
                "frame 2 declares 999999999 bytes but only 1 remain",
            ),
            (
                b"\xff\xfe",
                "frame 1 at byte 0 does not start with `<length> `",
            ),
        ];
        for (body, expected) in cases {
            let error = frames(body).unwrap_err().0;
            assert!(error.starts_with(expected), "{error:?} lacks {expected:?}");
        }
    }

    #[test]
    fn lengths_count_bytes_not_characters() {
        let line = "<190>1 2024-05-01T19:00:00.250000+09:00 host app web.1 - 注文\n";
        let body = [framed(line), framed(line)].concat();
        assert_eq!(frames(&body).unwrap(), vec![line.as_bytes(); 2]);
    }

    #[test]
    fn router_lines() {
        let line = "<158>1 2024-05-01T10:00:00.123456+00:00 host heroku router - at=info method=GET path=\"/orders?page=2\" host=myapp.herokuapp.com request_id=8601b555-6a54-4e2c-b6a5-0c5a3c8e2f1d fwd=\"1.2.3.4\" dyno=web.1 connect=1ms service=23ms status=200 bytes=1523 protocol=https\n";
        let text = "at=info method=GET path=\"/orders?page=2\" host=myapp.herokuapp.com request_id=8601b555-6a54-4e2c-b6a5-0c5a3c8e2f1d fwd=\"1.2.3.4\" dyno=web.1 connect=1ms service=23ms status=200 bytes=1523 protocol=https";
        assert_eq!(
            parse_framed(line),
            Message {
                priority: 158,
                timestamp_micros: Some(1_714_557_600_123_456),
                hostname: Some("host"),
                app_name: Some("heroku"),
                proc_id: Some("router"),
                msg_id: None,
                text,
            }
        );
        assert_eq!(
            key_values(text),
            vec![
                ("at", "info"),
                ("method", "GET"),
                ("path", "/orders?page=2"),
                ("host", "myapp.herokuapp.com"),
                ("request_id", "8601b555-6a54-4e2c-b6a5-0c5a3c8e2f1d"),
                ("fwd", "1.2.3.4"),
                ("dyno", "web.1"),
                ("connect", "1ms"),
                ("service", "23ms"),
                ("status", "200"),
                ("bytes", "1523"),
                ("protocol", "https"),
            ]
        );
    }

    #[test]
    fn router_h12_error_line() {
        let text = "at=error code=H12 desc=\"Request timeout\" method=GET path=\"/\" host=myapp.herokuapp.com request_id=2c1e5a7b-9d3f-4e8a-b6c1-7f0e9d2a4b58 fwd=\"1.2.3.4\" dyno=web.1 connect=0ms service=30000ms status=503 bytes=0 protocol=https";
        let line = format!("<158>1 2024-05-01T10:00:30.000001+00:00 host heroku router - {text}\n");
        assert_eq!(
            parse_framed(&line),
            Message {
                priority: 158,
                timestamp_micros: Some(1_714_557_630_000_001),
                hostname: Some("host"),
                app_name: Some("heroku"),
                proc_id: Some("router"),
                msg_id: None,
                text,
            }
        );
        assert_eq!(
            key_values(text),
            vec![
                ("at", "error"),
                ("code", "H12"),
                ("desc", "Request timeout"),
                ("method", "GET"),
                ("path", "/"),
                ("host", "myapp.herokuapp.com"),
                ("request_id", "2c1e5a7b-9d3f-4e8a-b6c1-7f0e9d2a4b58"),
                ("fwd", "1.2.3.4"),
                ("dyno", "web.1"),
                ("connect", "0ms"),
                ("service", "30000ms"),
                ("status", "503"),
                ("bytes", "0"),
                ("protocol", "https"),
            ]
        );
    }

    #[test]
    fn heroku_postgres_metrics_lines() {
        let text = "source=DATABASE addon=postgresql-curly-12345 sample#current_transaction=1873 sample#db_size=12345678bytes sample#tables=12 sample#active-connections=5 sample#waiting-connections=0 sample#index-cache-hit-rate=0.99 sample#table-cache-hit-rate=0.98 sample#load-avg-1m=0.005 sample#read-iops=0 sample#write-iops=0.1 sample#memory-total=4023124kB sample#memory-free=2395924kB";
        let line = format!("<134>1 2024-05-01T10:01:02+00:00 host app heroku-postgres - {text}\n");
        assert_eq!(
            parse_framed(&line),
            Message {
                priority: 134,
                timestamp_micros: Some(1_714_557_662_000_000),
                hostname: Some("host"),
                app_name: Some("app"),
                proc_id: Some("heroku-postgres"),
                msg_id: None,
                text,
            }
        );
        assert_eq!(
            key_values(text),
            vec![
                ("source", "DATABASE"),
                ("addon", "postgresql-curly-12345"),
                ("sample#current_transaction", "1873"),
                ("sample#db_size", "12345678bytes"),
                ("sample#tables", "12"),
                ("sample#active-connections", "5"),
                ("sample#waiting-connections", "0"),
                ("sample#index-cache-hit-rate", "0.99"),
                ("sample#table-cache-hit-rate", "0.98"),
                ("sample#load-avg-1m", "0.005"),
                ("sample#read-iops", "0"),
                ("sample#write-iops", "0.1"),
                ("sample#memory-total", "4023124kB"),
                ("sample#memory-free", "2395924kB"),
            ]
        );
    }

    #[test]
    fn dyno_runtime_metrics_lines() {
        let load = "source=web.1 dyno=heroku.1234.abcd1234-5678-90ef-1234-567890abcdef sample#load_avg_1m=0.00 sample#load_avg_5m=0.01 sample#load_avg_15m=0.02";
        let memory = "source=web.1 dyno=heroku.1234.abcd sample#memory_total=21.00MB sample#memory_rss=20.86MB sample#memory_cache=0.14MB sample#memory_swap=0.00MB sample#memory_pgpgin=5987pages sample#memory_pgpgout=612pages sample#memory_quota=512.00MB";
        for text in [load, memory] {
            let line =
                format!("<45>1 2024-05-01T10:02:03.456789+00:00 host heroku web.1 - {text}\n");
            assert_eq!(
                parse_framed(&line),
                Message {
                    priority: 45,
                    timestamp_micros: Some(1_714_557_723_456_789),
                    hostname: Some("host"),
                    app_name: Some("heroku"),
                    proc_id: Some("web.1"),
                    msg_id: None,
                    text,
                }
            );
        }
        assert_eq!(
            key_values(memory)[..3],
            [
                ("source", "web.1"),
                ("dyno", "heroku.1234.abcd"),
                ("sample#memory_total", "21.00MB")
            ]
        );
    }

    /// An app line on web.1 (local7.info), as log-shuttle sends it through logplex.
    fn app_line(text: &str) -> String {
        format!("<190>1 2024-05-01T10:00:00.100000+00:00 host app web.1 - {text}")
    }

    fn app_message(text: &str) -> Message<'_> {
        Message {
            priority: 190,
            timestamp_micros: Some(1_714_557_600_100_000),
            hostname: Some("host"),
            app_name: Some("app"),
            proc_id: Some("web.1"),
            msg_id: None,
            text,
        }
    }

    #[test]
    fn rails_request_id_tags_are_message_text() {
        for text in [
            "[8601b555-6a54] Started GET \"/orders\" for 1.2.3.4 at 2024-05-01 10:00:00 +0000",
            "[8601b555-6a54] [user:42] Processing by OrdersController#index as HTML",
            "[8601b555-6a54] Completed 200 OK in 12ms (Views: 8.1ms | ActiveRecord: 2.3ms)",
            "[8601b555-6a54 Completed 500 Internal Server Error in 12ms",
            "[",
            "[a=\"]\"] quoted brackets stay too",
        ] {
            let line = app_line(&format!("{text}\n"));
            assert_eq!(parse_framed(&line), app_message(text));
        }
    }

    #[test]
    fn a_leading_dash_is_message_text() {
        // Puma, on every dyno restart: the `- ` is the message's, not a nil structured data.
        for text in [
            "- Gracefully stopping, waiting for requests to finish",
            "- Goodbye!",
            "-",
            "- ",
            "-- not a header",
        ] {
            let line = app_line(&format!("{text}\n"));
            assert_eq!(parse_framed(&line), app_message(text));
        }
    }

    #[test]
    fn multi_line_messages_keep_their_newlines() {
        let text = "Traceback (most recent call last):\n  File \"/app/jobs.py\", line 12, in run\n    total = items / count\nZeroDivisionError: division by zero";
        let line = app_line(&format!("{text}\n"));
        assert_eq!(parse_framed(&line), app_message(text));
    }

    #[test]
    fn japanese_text_and_a_plus_nine_offset() {
        let text = "注文を受け付けました（注文番号: 12345、合計 ¥3,980）";
        let line = format!("<190>1 2024-05-01T19:00:00.250000+09:00 host app web.1 - {text}\n");
        assert_eq!(
            parse_framed(&line),
            Message {
                // 19:00:00.25 in Tokyo is 10:00:00.25 UTC.
                timestamp_micros: Some(1_714_557_600_250_000),
                ..app_message(text)
            }
        );
        assert_eq!(
            parse(line.as_bytes()).unwrap().text.as_bytes(),
            text.as_bytes()
        );
    }

    #[test]
    fn only_one_final_newline_is_taken_off() {
        let cases = [
            ("", ""),
            ("no newline", "no newline"),
            ("crlf\r\n", "crlf\r"),
            ("two\n\n", "two\n"),
            (
                "   Rendered orders/index.html.erb (2.1ms)\n",
                "   Rendered orders/index.html.erb (2.1ms)",
            ),
            ("trailing spaces  \n", "trailing spaces  "),
            ("\n", ""),
        ];
        for (sent, stored) in cases {
            assert_eq!(parse_framed(&app_line(sent)), app_message(stored));
        }
    }

    #[test]
    fn a_frame_ending_at_the_msg_id_has_an_empty_message() {
        let line = "<190>1 2024-05-01T10:00:00.100000+00:00 host app web.1 -";
        assert_eq!(parse_framed(line), app_message(""));
    }

    #[test]
    fn nil_header_fields_are_null() {
        assert_eq!(
            parse(b"<14>1 - - - - - hello").unwrap(),
            Message {
                priority: 14,
                text: "hello",
                ..Message::default()
            }
        );
    }

    #[test]
    fn rfc5424_structured_data_is_kept_as_text() {
        // Heroku never sends structured data: a generic RFC 5424 sender's SD stays in the message.
        let m = parse(b"<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 [exampleSDID@32473 iut=\"3\" x=\"a]b\"] hi").unwrap();
        assert_eq!(
            m,
            Message {
                priority: 34,
                timestamp_micros: Some(1_065_910_455_003_000),
                hostname: Some("mymachine"),
                app_name: Some("su"),
                proc_id: None,
                msg_id: Some("ID47"),
                text: "[exampleSDID@32473 iut=\"3\" x=\"a]b\"] hi",
            }
        );
    }

    #[test]
    fn malformed_messages_say_why() {
        let cases: [(&[u8], &str); 9] = [
            (b"hello", "no `<priority>` at the start"),
            (b"<190 1 - - - - - x", "no `>` after the priority"),
            (b"<999>1 - - - - - x", "priority `999` is not 0..191"),
            (b"<190>x - - - - - x", "version `x` is not a number"),
            (
                b"<190>1 - host app web.1",
                "the message ends before its msg id",
            ),
            (
                b"<190>1  host app web.1 - x",
                "the timestamp is empty (two spaces in the header)",
            ),
            (
                b"<190>1 yesterday host app web.1 - x",
                "timestamp `yesterday` is not RFC 3339",
            ),
            (b"<190>1 - host app web.1 - \xff", "not UTF-8"),
            (b"", "no `<priority>` at the start"),
        ];
        for (frame, expected) in cases {
            let error = parse(frame).unwrap_err();
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        }
    }

    #[test]
    fn timestamps() {
        let cases = [
            ("1970-01-01T09:00:00.5+09:00", Some(500_000)),
            ("2024-05-01T10:00:05.5-07:30", Some(1_714_584_605_500_000)),
            (
                "1999-12-31T23:59:59.1234567+00:00",
                Some(946_684_799_123_456),
            ),
            ("2024-05-01t10:00:00z", Some(1_714_557_600_000_000)),
            ("2024-05-01T10:00:00", None),
            ("2024-05-01T10:00:00.Z", None),
            ("2024-05-01T10:00:00+0900", None),
            ("2024-05-01T10:00:00+24:00", None),
            ("2024-13-01T10:00:00Z", None),
            ("2024-05-01T10:00:00Zjunk", None),
            ("２０２４-05-01T10:00:00Z", None),
            ("2024-05-01T10:00:00.１Z", None),
        ];
        for (text, micros) in cases {
            assert_eq!(rfc3339_micros(text), micros, "{text}");
        }
    }

    #[test]
    fn router_lines_split_into_pairs() {
        let pairs =
            key_values("at=info method=GET path=\"/a b\" fwd=\"1.2.3.4\" connect=1ms status=200");
        assert_eq!(
            pairs,
            vec![
                ("at", "info"),
                ("method", "GET"),
                ("path", "/a b"),
                ("fwd", "1.2.3.4"),
                ("connect", "1ms"),
                ("status", "200")
            ]
        );
    }

    /// Arbitrary bytes (a fixed pseudo-random sequence, plus the awkward characters of the format)
    /// never make the parser panic: every outcome is a value or an error.
    #[test]
    fn no_input_panics() {
        let alphabet: &[u8] = b"0123456789 <>-[]\"=:.+TZ\n\r\xe6\x97\xa5\xff";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..20_000 {
            let len = round % 40;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let pick = usize::try_from(seed % 64).unwrap_or(0);
                    alphabet.get(pick).copied().unwrap_or(b'a')
                })
                .collect();
            if let Ok(frames) = frames(&bytes) {
                for frame in frames {
                    let _ = parse(frame);
                }
            }
            let _ = parse(&bytes);
            let text = String::from_utf8_lossy(&bytes);
            let _ = rfc3339_micros(&text);
            let _ = key_values(&text);
        }
        for prefix in ["<190>1 ", "<190>1 2024-05-01T10:00:00", "5 <1>1"] {
            let _ = parse(prefix.as_bytes());
            let _ = frames(prefix.as_bytes());
        }
    }
}
