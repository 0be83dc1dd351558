//! Logplex bodies: octet-counted frames (RFC 6587) of RFC 5424 syslog messages as Heroku writes
//! them (`<190>1 2024-05-01T10:00:00.123456+00:00 host app web.1 - message`), and the key=value
//! fields of Heroku router lines.

/// Why a body cannot be split into frames: the whole request is refused.
#[derive(Debug, PartialEq, Eq)]
pub struct FramingError(pub String);

/// Splits a body into frames, checking every declared length against the bytes present.
/// Newlines between frames are tolerated (some senders add them).
pub fn frames(body: &[u8]) -> Result<Vec<&[u8]>, FramingError> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < body.len() {
        if matches!(body[at], b'\n' | b'\r') {
            at += 1;
            continue;
        }
        let digits = body[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        let number = frames.len() + 1;
        if digits == 0 || digits > 9 || body.get(at + digits) != Some(&b' ') {
            return Err(FramingError(format!(
                "frame {number} at byte {at} does not start with `<length> ` (octet counting)"
            )));
        }
        let length: usize = std::str::from_utf8(&body[at..at + digits])
            .expect("ASCII digits")
            .parse()
            .expect("at most nine digits");
        let start = at + digits + 1;
        let remaining = body.len() - start;
        if length > remaining {
            return Err(FramingError(format!(
                "frame {number} declares {length} bytes but only {remaining} remain"
            )));
        }
        frames.push(&body[start..start + length]);
        at = start + length;
    }
    Ok(frames)
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
    let rest = text
        .strip_prefix('<')
        .ok_or("no `<priority>` at the start")?;
    let (priority, rest) = rest.split_once('>').ok_or("no `>` after the priority")?;
    let priority: u8 = priority
        .parse()
        .ok()
        .filter(|p| *p <= 191)
        .ok_or_else(|| format!("priority `{priority}` is not 0..191"))?;
    let mut parts = rest.splitn(7, ' ');
    let mut next = |what: &str| {
        parts
            .next()
            .ok_or_else(|| format!("the message ends before its {what}"))
    };
    let version = next("version")?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("version `{version}` is not a number"));
    }
    let timestamp = next("timestamp")?;
    let hostname = next("hostname")?;
    let app_name = next("app name")?;
    let proc_id = next("proc id")?;
    let msg_id = next("msg id")?;
    let mut body = parts.next().unwrap_or("");
    // Structured data: nil, or `[...]` elements (Heroku sends none).
    if let Some(after) = body.strip_prefix("- ").or((body == "-").then_some("")) {
        body = after;
    } else if body.starts_with('[') {
        body = skip_structured_data(body)?;
    }
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

fn skip_structured_data(mut text: &str) -> Result<&str, String> {
    while text.starts_with('[') {
        let mut escaped = false;
        let mut in_quotes = false;
        let mut end = None;
        for (i, c) in text.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_quotes = !in_quotes,
                ']' if !in_quotes => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.ok_or("structured data without a closing `]`")?;
        text = &text[end + 1..];
    }
    Ok(text.strip_prefix(' ').unwrap_or(text))
}

/// `2024-05-01T10:00:00.123456+09:00` as microseconds since the epoch (UTC).
pub fn rfc3339_micros(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
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
    if b.get(at) == Some(&b'.') {
        let digits = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        let fraction = &text[at + 1..at + 1 + digits.min(6)];
        micros = fraction.parse::<i64>().ok()? * 10i64.pow(6 - fraction.len() as u32);
        at += 1 + digits;
    }
    let offset_minutes = match b.get(at)? {
        b'Z' | b'z' if at + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if b.len() == at + 6 && b[at + 3] == b':' => {
            let minutes = num(at + 1..at + 3)? * 60 + num(at + 4..at + 6)?;
            if *sign == b'+' { minutes } else { -minutes }
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
    while let Some(eq) = rest.find('=') {
        let key = &rest[..eq];
        if key.is_empty() || key.contains(' ') {
            // Not a key: skip the word.
            match rest.find(' ') {
                Some(space) => {
                    rest = rest[space + 1..].trim_start();
                    continue;
                }
                None => break,
            }
        }
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(' ') {
                Some(space) => (&after[..space], &after[space..]),
                None => (after, ""),
            }
        };
        pairs.push((key, value));
        rest = next.trim_start();
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn heroku_messages_parse() {
        let m = parse(b"<158>1 2012-10-11T03:47:20+00:00 host heroku router - at=info method=GET path=\"/\"\n").unwrap();
        assert_eq!(m.priority, 158);
        assert_eq!(m.timestamp_micros, Some(1_349_927_240_000_000));
        assert_eq!(
            (m.app_name, m.proc_id, m.msg_id),
            (Some("heroku"), Some("router"), None)
        );
        assert_eq!(m.text, "at=info method=GET path=\"/\"");
        let sd = parse(b"<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 [exampleSDID@32473 iut=\"3\" x=\"a]b\"] hi").unwrap();
        assert_eq!(sd.text, "hi");
        assert_eq!(sd.timestamp_micros, Some(1_065_910_455_003_000));
        assert!(parse(b"<999>1 - - - - -").unwrap_err().contains("priority"));
        assert!(parse(b"hello").is_err());
        assert_eq!(rfc3339_micros("1970-01-01T09:00:00.5+09:00"), Some(500_000));
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
}
