//! Splitting one row of `COPY ... TO STDOUT` text format into unescaped fields.
//!
//! Fields are separated by tabs; `\N` is NULL; backslash escapes `\b \f \n \r \t \v \\`, octal `\ooo`
//! and hex `\xhh` stand for bytes, and a backslash before any other byte (a tab included) stands
//! for that byte. Most rows hold no backslash at all: their fields are slices of the row itself,
//! and only rows with escapes are unescaped into a buffer.

use std::ops::Range;

/// Where a field's bytes are.
#[derive(Clone)]
enum Place {
    Null,
    Line(Range<usize>),
    Buffer(Range<usize>),
}

/// A reusable splitter.
#[derive(Default)]
pub struct RowSplitter {
    buffer: Vec<u8>,
    fields: Vec<Place>,
}

/// One split row, borrowing the line and the splitter's buffer.
pub struct Row<'a> {
    line: &'a [u8],
    buffer: &'a [u8],
    fields: &'a [Place],
}

impl RowSplitter {
    /// Splits `line` into fields.
    pub fn split<'a>(&'a mut self, line: &'a [u8]) -> Row<'a> {
        self.fields.clear();
        self.buffer.clear();
        let escaped = line.contains(&b'\\');
        let mut start = 0;
        loop {
            let end = if escaped {
                field_end(line, start)
            } else {
                line[start..]
                    .iter()
                    .position(|&b| b == b'\t')
                    .map_or(line.len(), |p| start + p)
            };
            let raw = &line[start..end];
            let place = if !escaped || !raw.contains(&b'\\') {
                Place::Line(start..end)
            } else if raw == b"\\N" {
                Place::Null
            } else {
                let from = self.buffer.len();
                unescape(raw, &mut self.buffer);
                Place::Buffer(from..self.buffer.len())
            };
            self.fields.push(place);
            if end == line.len() {
                break;
            }
            start = end + 1;
        }
        Row {
            line,
            buffer: &self.buffer,
            fields: &self.fields,
        }
    }
}

impl Row<'_> {
    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Field `index`, `None` for NULL.
    pub fn field(&self, index: usize) -> Option<&[u8]> {
        match self.fields.get(index)? {
            Place::Null => None,
            Place::Line(range) => Some(&self.line[range.clone()]),
            Place::Buffer(range) => Some(&self.buffer[range.clone()]),
        }
    }
}

/// Where the field starting at `start` ends: at the next tab that no backslash escapes (`\` and a
/// tab is a data tab, as PostgreSQL reads it), or at the end of the line.
fn field_end(line: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < line.len() {
        match line[i] {
            b'\t' => return i,
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    line.len()
}

fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        // A backslash ending the line stands for nothing, as in PostgreSQL.
        let Some(&next) = raw.get(i + 1) else {
            break;
        };
        i += 2;
        match next {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut value = u32::from(next - b'0');
                let mut digits = 1;
                while digits < 3 && i < raw.len() && (b'0'..=b'7').contains(&raw[i]) {
                    value = value * 8 + u32::from(raw[i] - b'0');
                    i += 1;
                    digits += 1;
                }
                out.push(value as u8);
            }
            b'x' if i < raw.len() && raw[i].is_ascii_hexdigit() => {
                let mut value = hex(raw[i]);
                i += 1;
                if i < raw.len() && raw[i].is_ascii_hexdigit() {
                    value = value * 16 + hex(raw[i]);
                    i += 1;
                }
                out.push(value);
            }
            other => out.push(other),
        }
    }
}

fn hex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The fields of `line`, owned; `None` for NULL.
    fn split(line: &[u8]) -> Vec<Option<Vec<u8>>> {
        let mut splitter = RowSplitter::default();
        let row = splitter.split(line);
        (0..row.len())
            .map(|i| row.field(i).map(<[u8]>::to_vec))
            .collect()
    }

    fn one(line: &[u8]) -> Option<Vec<u8>> {
        let fields = split(line);
        assert_eq!(fields.len(), 1, "{:?}", String::from_utf8_lossy(line));
        fields.into_iter().next().unwrap()
    }

    fn some(bytes: &[u8]) -> Option<Vec<u8>> {
        Some(bytes.to_vec())
    }

    #[test]
    fn splits_on_tabs() {
        assert_eq!(
            split(b"1\tabc\t2024-01-01"),
            vec![some(b"1"), some(b"abc"), some(b"2024-01-01")]
        );
    }

    #[test]
    fn single_field_row() {
        assert_eq!(split(b"only"), vec![some(b"only")]);
        assert_eq!(split(b"a\\\\b"), vec![some(b"a\\b")]);
    }

    #[test]
    fn empty_line_is_one_empty_field() {
        assert_eq!(split(b""), vec![some(b"")]);
    }

    #[test]
    fn empty_string_is_not_null() {
        assert_eq!(split(b"\t\\N\t"), vec![some(b""), None, some(b"")]);
        assert_eq!(split(b"a\t\tb"), vec![some(b"a"), some(b""), some(b"b")]);
    }

    #[test]
    fn trailing_empty_field() {
        assert_eq!(split(b"a\t"), vec![some(b"a"), some(b"")]);
        assert_eq!(split(b"a\\n\t"), vec![some(b"a\n"), some(b"")]);
        assert_eq!(split(b"\t"), vec![some(b""), some(b"")]);
    }

    #[test]
    fn backslash_n_alone_is_null() {
        assert_eq!(split(b"\\N"), vec![None]);
        assert_eq!(split(b"1\t\\N\tx"), vec![some(b"1"), None, some(b"x")]);
        assert_eq!(split(b"\\N\t\\N"), vec![None, None]);
    }

    #[test]
    fn escaped_backslash_n_is_text() {
        // The text `\N` is written `\\N`.
        assert_eq!(one(b"\\\\N"), some(b"\\N"));
        assert_eq!(split(b"\\\\N\t\\N"), vec![some(b"\\N"), None]);
        // `\N` inside a longer field is an escaped N.
        assert_eq!(one(b"a\\N"), some(b"aN"));
        assert_eq!(one(b"\\Nb"), some(b"Nb"));
        // A field reading `N` is just N.
        assert_eq!(one(b"N"), some(b"N"));
    }

    #[test]
    fn simple_escapes() {
        assert_eq!(one(b"\\\\"), some(b"\\"));
        assert_eq!(one(b"a\\tb"), some(b"a\tb"));
        assert_eq!(one(b"a\\nb"), some(b"a\nb"));
        assert_eq!(one(b"a\\rb"), some(b"a\rb"));
        assert_eq!(one(b"\\b"), some(&[8]));
        assert_eq!(one(b"\\f"), some(&[12]));
        assert_eq!(one(b"\\v"), some(&[11]));
        assert_eq!(
            one(b"\\b\\f\\n\\r\\t\\v\\\\"),
            some(&[8, 12, b'\n', b'\r', b'\t', 11, b'\\'])
        );
    }

    #[test]
    fn escaped_tab_does_not_split() {
        assert_eq!(split(b"a\\tb\tc"), vec![some(b"a\tb"), some(b"c")]);
    }

    #[test]
    fn backslash_before_a_literal_tab_is_a_data_tab() {
        // PostgreSQL reads `\` followed by the delimiter as the delimiter character itself.
        assert_eq!(split(b"a\\\tb\tc"), vec![some(b"a\tb"), some(b"c")]);
        // An escaped backslash before a tab leaves the tab a delimiter.
        assert_eq!(split(b"a\\\\\tb"), vec![some(b"a\\"), some(b"b")]);
    }

    #[test]
    fn octal_escapes_of_one_to_three_digits() {
        assert_eq!(one(b"\\101"), some(b"A"));
        assert_eq!(one(b"\\0"), some(&[0]));
        assert_eq!(one(b"\\7"), some(&[7]));
        assert_eq!(one(b"\\12"), some(&[0o12]));
        assert_eq!(one(b"\\377"), some(&[0xff]));
        // At most three digits: the fourth is a plain character.
        assert_eq!(one(b"\\1011"), some(b"A1"));
        // A non-octal digit ends the escape.
        assert_eq!(one(b"\\18"), some(&[1, b'8']));
        assert_eq!(one(b"\\9"), some(b"9"));
        // Values past 255 keep their low byte, as PostgreSQL's `val & 0377`.
        assert_eq!(one(b"\\777"), some(&[0xff]));
        assert_eq!(one(b"\\400"), some(&[0]));
        // Octal escapes spelling a UTF-8 sequence: é is C3 A9.
        assert_eq!(one(b"caf\\303\\251"), some("café".as_bytes()));
    }

    #[test]
    fn hex_escapes_of_one_or_two_digits() {
        assert_eq!(one(b"\\x41"), some(b"A"));
        assert_eq!(one(b"\\x4"), some(&[4]));
        assert_eq!(one(b"\\xfF"), some(&[0xff]));
        assert_eq!(one(b"\\xAb"), some(&[0xab]));
        // At most two digits.
        assert_eq!(one(b"\\x414"), some(b"A4"));
        // A non-hex character ends the escape.
        assert_eq!(one(b"\\x4g"), some(&[4, b'g']));
        // `\x` without a hex digit is an escaped x.
        assert_eq!(one(b"\\xg"), some(b"xg"));
        assert_eq!(one(b"\\x"), some(b"x"));
        assert_eq!(split(b"\\x\t1"), vec![some(b"x"), some(b"1")]);
    }

    #[test]
    fn backslash_before_other_characters_is_that_character() {
        assert_eq!(one(b"\\a\\q\\z\\.\\,\\\""), some(b"aqz.,\""));
        assert_eq!(one(b"\\X41"), some(b"X41"));
        assert_eq!(one(b"\\8"), some(b"8"));
        assert_eq!(one("\\é".as_bytes()), some("é".as_bytes()));
    }

    #[test]
    fn trailing_backslash_is_dropped() {
        // PostgreSQL never writes one; when reading, a backslash ending the line stands for nothing.
        assert_eq!(one(b"ab\\"), some(b"ab"));
        assert_eq!(split(b"a\tb\\"), vec![some(b"a"), some(b"b")]);
        assert_eq!(one(b"\\"), some(b""));
    }

    #[test]
    fn multibyte_utf8_passes_through() {
        let text = "żółć 日本語 🦀";
        assert_eq!(one(text.as_bytes()), some(text.as_bytes()));
        let line = "żółć\\t🦀\t日本\\\\語".as_bytes();
        assert_eq!(
            split(line),
            vec![some("żółć\t🦀".as_bytes()), some("日本\\語".as_bytes())]
        );
    }

    #[test]
    fn bytea_hex_form() {
        // bytea `\x0102` is written with its backslash doubled.
        assert_eq!(one(b"\\\\x0102"), some(b"\\x0102"));
        assert_eq!(
            split(b"1\t\\\\x\t\\\\xdeadbeef"),
            vec![some(b"1"), some(b"\\x"), some(b"\\xdeadbeef")]
        );
    }

    #[test]
    fn rows_with_and_without_escapes_mix() {
        assert_eq!(
            split(b"plain\t\\N\tesc\\\\aped\t\tlast"),
            vec![
                some(b"plain"),
                None,
                some(b"esc\\aped"),
                some(b""),
                some(b"last")
            ]
        );
    }

    #[test]
    fn splitter_is_reusable() {
        let mut splitter = RowSplitter::default();
        let row = splitter.split(b"a\\tb\t\\N");
        assert_eq!(row.len(), 2);
        assert_eq!(row.field(0), Some(&b"a\tb"[..]));
        assert_eq!(row.field(1), None);
        let row = splitter.split(b"x\\\\y");
        assert_eq!(row.len(), 1);
        assert_eq!(row.field(0), Some(&b"x\\y"[..]));
        assert_eq!(row.field(1), None, "past the last field");
        let row = splitter.split(b"p\tq");
        assert_eq!(row.len(), 2);
        assert_eq!(row.field(1), Some(&b"q"[..]));
    }

    /// xorshift64*: a small seeded generator for property and fuzz tests.
    pub(crate) struct Rng(u64);

    impl Rng {
        /// Seeded from `INLET_TEST_SEED` when set, else from the clock; the seed is printed so a
        /// failure can be replayed.
        pub(crate) fn new(test: &str) -> Self {
            let seed = std::env::var("INLET_TEST_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| {
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(1, |d| d.as_nanos() as u64)
                });
            println!("{test}: INLET_TEST_SEED={seed}");
            Self(seed | 1)
        }

        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        /// Uniform in `0..n`.
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    /// One field as PostgreSQL's COPY TO writes it (`CopyAttributeOutText`, tab delimiter).
    fn encode_like_postgres(value: &[u8], out: &mut Vec<u8>) {
        for &b in value {
            match b {
                8 => out.extend_from_slice(b"\\b"),
                12 => out.extend_from_slice(b"\\f"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                11 => out.extend_from_slice(b"\\v"),
                b'\\' => out.extend_from_slice(b"\\\\"),
                _ => out.push(b),
            }
        }
    }

    /// One field in any spelling PostgreSQL's COPY FROM reads back as `value`: octal and hex
    /// escapes of every length, a backslash before an ordinary byte or before a tab.
    fn encode_any_way(value: &[u8], rng: &mut Rng, out: &mut Vec<u8>) {
        for (i, &b) in value.iter().enumerate() {
            let next = value.get(i + 1).copied();
            match rng.below(6) {
                0 => out.extend_from_slice(format!("\\{b:03o}").as_bytes()),
                1 if next.is_none_or(|n| !(b'0'..=b'7').contains(&n)) => {
                    out.extend_from_slice(format!("\\{b:o}").as_bytes());
                }
                2 => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                3 if next.is_none_or(|n| !n.is_ascii_hexdigit()) => {
                    out.extend_from_slice(format!("\\x{b:X}").as_bytes());
                }
                // A backslash before a byte with no escape meaning stands for the byte; `N` alone
                // would read as NULL.
                4 if !b"bfnrtvx01234567".contains(&b) && value != b"N" => {
                    out.push(b'\\');
                    out.push(b);
                }
                _ => encode_like_postgres(&[b], out),
            }
        }
    }

    fn random_value(rng: &mut Rng) -> Option<Vec<u8>> {
        const PIECES: &[&str] = &[
            "a",
            "N",
            "\\",
            "\\N",
            "\t",
            "\n",
            "\r",
            "\x08",
            "\x0b",
            "\x0c",
            "\x01",
            "\x7f",
            "x",
            "0",
            "7",
            "8",
            "f",
            "é",
            "日本",
            "🦀",
            " ",
            "NULL",
            "\\x0102",
            "{\"a\",NULL}",
        ];
        if rng.below(8) == 0 {
            return None;
        }
        let mut value = Vec::new();
        for _ in 0..rng.below(8) {
            value.extend_from_slice(rng.pick(PIECES).as_bytes());
        }
        if rng.below(16) == 0 {
            // Arbitrary bytes: the splitter does not care about UTF-8.
            value.push(rng.next() as u8);
        }
        Some(value)
    }

    #[test]
    fn property_rows_encoded_by_postgres_decode_back() {
        let mut rng = Rng::new("property_rows_encoded_by_postgres_decode_back");
        let mut splitter = RowSplitter::default();
        for _ in 0..20_000 {
            let fields: Vec<Option<Vec<u8>>> = (0..1 + rng.below(6))
                .map(|_| random_value(&mut rng))
                .collect();
            let lenient = rng.below(2) == 0;
            let mut line = Vec::new();
            for (i, field) in fields.iter().enumerate() {
                if i > 0 {
                    line.push(b'\t');
                }
                match field {
                    None => line.extend_from_slice(b"\\N"),
                    Some(value) if lenient => encode_any_way(value, &mut rng, &mut line),
                    Some(value) => encode_like_postgres(value, &mut line),
                }
            }
            let row = splitter.split(&line);
            let decoded: Vec<Option<Vec<u8>>> = (0..row.len())
                .map(|i| row.field(i).map(<[u8]>::to_vec))
                .collect();
            assert_eq!(decoded, fields, "line {:?}", String::from_utf8_lossy(&line));
        }
    }

    #[test]
    fn fuzz_random_lines_never_panic() {
        let mut rng = Rng::new("fuzz_random_lines_never_panic");
        let mut splitter = RowSplitter::default();
        const BYTES: &[u8] = b"\\\t\\Nxab07989fF\n\xc3\xa9\xff";
        for _ in 0..20_000 {
            let line: Vec<u8> = (0..rng.below(24))
                .map(|_| {
                    if rng.below(4) == 0 {
                        rng.next() as u8
                    } else {
                        *rng.pick(BYTES)
                    }
                })
                .collect();
            let row = splitter.split(&line);
            let tabs = line.iter().filter(|&&b| b == b'\t').count();
            assert!(row.len() >= 1 && row.len() <= tabs + 1, "{line:?}");
            for i in 0..row.len() {
                if let Some(field) = row.field(i) {
                    // Unescaping never lengthens.
                    assert!(field.len() <= line.len(), "{line:?}");
                }
            }
        }
    }
}
