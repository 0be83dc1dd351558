//! Splitting rows of `COPY ... TO STDOUT` text format into unescaped fields, one row at a time
//! or a batch of rows kept for decoding a column at a time.
//!
//! Fields are separated by tabs; `\N` is NULL; backslash escapes `\b \f \n \r \t \v \\`, octal `\ooo`
//! and hex `\xhh` stand for bytes, and a backslash before any other byte (a tab included) stands
//! for that byte. Most rows hold no backslash at all: their fields are spans of the row itself,
//! and only fields with escapes are unescaped, onto the end of the batch's buffer.

use std::ops::Range;

/// Where a field's bytes are in a [`TextBatch`]'s buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// A NULL field.
    const NULL: Span = Span {
        start: usize::MAX,
        end: usize::MAX,
    };
}

/// Rows of COPY text split into fields, kept together so they can be decoded a column at a time.
///
/// Each row's line is copied into one buffer; a field is a span of it, and a field with escapes is
/// unescaped onto the end of the buffer.
#[derive(Default)]
pub struct TextBatch {
    bytes: Vec<u8>,
    spans: Vec<Span>,
    rows: usize,
    /// Where the last row's bytes begin, for [`TextBatch::pop_row`].
    last_row_start: usize,
}

/// One non-NULL field: its bytes, and the same as text when already known to be UTF-8.
#[derive(Clone, Copy)]
pub struct Value<'a> {
    pub bytes: &'a [u8],
    pub text: Option<&'a str>,
}

impl<'a> Value<'a> {
    /// A value whose bytes have not been checked as UTF-8.
    pub fn bytes(bytes: &'a [u8]) -> Self {
        Self { bytes, text: None }
    }

    /// The value as text, checking its UTF-8 only when an earlier check did not cover it.
    #[inline]
    pub fn text(&self) -> Result<&'a str, std::str::Utf8Error> {
        match self.text {
            Some(text) => Ok(text),
            None => std::str::from_utf8(self.bytes),
        }
    }
}

impl TextBatch {
    /// An empty batch with room for `bytes` of rows, so that a batch filled to about that size
    /// does not double its buffer on the last row.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            ..Self::default()
        }
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Adds `line` as a row of `width` fields. A line with another number of fields is not added:
    /// `Err` carries its number of fields.
    pub fn push_row(&mut self, line: &[u8], width: usize) -> Result<(), usize> {
        let (bytes, spans) = (self.bytes.len(), self.spans.len());
        let fields = self.append(line);
        if fields != width {
            self.bytes.truncate(bytes);
            self.spans.truncate(spans);
            return Err(fields);
        }
        self.rows += 1;
        Ok(())
    }

    /// Takes the last row added (a row of `width` fields) out again.
    pub fn pop_row(&mut self, width: usize) {
        let Some(rows) = self.rows.checked_sub(1) else {
            return;
        };
        self.spans.truncate(self.spans.len() - width);
        self.bytes.truncate(self.last_row_start);
        self.rows = rows;
    }

    /// Empties the batch, keeping its memory.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
        self.rows = 0;
    }

    /// The whole buffer as text when it is valid UTF-8: one check covering every field.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.bytes).ok()
    }

    /// Field `column` of `row` in a batch of `width` fields per row; `None` for NULL.
    pub fn field(&self, row: usize, column: usize, width: usize) -> Option<&[u8]> {
        let span = self.spans[row * width + column];
        (span != Span::NULL).then(|| &self.bytes[span.start..span.end])
    }

    /// Field `column` of every row of a batch of `width` fields per row, in row order (`None` for
    /// NULL), each with its text when `text` (from [`TextBatch::text`]) is given and covers it:
    /// columns parsed from bytes pass `None` and skip that.
    pub fn column<'a>(
        &'a self,
        text: Option<&'a str>,
        column: usize,
        width: usize,
    ) -> impl Iterator<Item = Option<Value<'a>>> + 'a {
        let spans = self.spans.get(column..).unwrap_or_default();
        spans.iter().step_by(width.max(1)).map(move |&span| {
            (span != Span::NULL).then(|| Value {
                bytes: &self.bytes[span.start..span.end],
                // Only a span on character boundaries is text on its own.
                text: text.and_then(|t| t.get(span.start..span.end)),
            })
        })
    }

    /// Copies `line` in and records its fields; returns how many.
    fn append(&mut self, line: &[u8]) -> usize {
        let base = self.bytes.len();
        let before = self.spans.len();
        self.last_row_start = base;
        self.bytes.extend_from_slice(line);
        if !split_plain(line, base, &mut self.spans) {
            self.spans.truncate(before);
            self.split_escaped(base, line.len());
        }
        self.spans.len() - before
    }

    /// A row holding backslashes (the line is at `base..base + len` of the buffer): fields end at
    /// unescaped tabs; escaped fields are unescaped onto the end of the buffer.
    fn split_escaped(&mut self, base: usize, len: usize) {
        let mut start = 0;
        loop {
            let line = &self.bytes[base..base + len];
            let end = field_end(line, start);
            let raw = &line[start..end];
            let span = if memchr::memchr(b'\\', raw).is_none() {
                Span {
                    start: base + start,
                    end: base + end,
                }
            } else if raw == b"\\N" {
                Span::NULL
            } else {
                let from = self.bytes.len();
                unescape_within(&mut self.bytes, base + start..base + end);
                Span {
                    start: from,
                    end: self.bytes.len(),
                }
            };
            self.spans.push(span);
            if end == len {
                break;
            }
            start = end + 1;
        }
    }
}

/// Splits one row at a time (catalog queries, the CDC snapshot, tests).
#[derive(Default)]
pub struct RowSplitter {
    batch: TextBatch,
}

/// One split row, borrowing its splitter.
pub struct Row<'a> {
    batch: &'a TextBatch,
    width: usize,
}

impl RowSplitter {
    /// Splits `line` into fields.
    pub fn split<'a>(&'a mut self, line: &[u8]) -> Row<'a> {
        self.batch.clear();
        let width = self.batch.append(line);
        self.batch.rows = 1;
        Row {
            batch: &self.batch,
            width,
        }
    }
}

impl<'a> Row<'a> {
    /// The number of fields.
    pub fn len(&self) -> usize {
        self.width
    }

    /// Field `index`, `None` for NULL.
    pub fn field(&self, index: usize) -> Option<&'a [u8]> {
        (index < self.width)
            .then(|| self.batch.field(0, index, self.width))
            .flatten()
    }
}

/// Bytes equal to zero in `x`: the high bit of each such byte set, no false positives.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn zero_bytes(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

/// Splits a row without backslashes at its tabs, sixteen bytes at a time (wasm SIMD); `false`
/// (fields incomplete) as soon as a backslash shows up.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn split_plain(line: &[u8], base: usize, fields: &mut Vec<Span>) -> bool {
    use core::arch::wasm32::{u8x16, u8x16_bitmask, u8x16_eq, u8x16_splat};
    let (tab, backslash) = (u8x16_splat(b'\t'), u8x16_splat(b'\\'));
    let (chunks, _) = line.as_chunks::<16>();
    let mut start = 0;
    for (index, c) in chunks.iter().enumerate() {
        let bytes = u8x16(
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12], c[13],
            c[14], c[15],
        );
        if u8x16_bitmask(u8x16_eq(bytes, backslash)) != 0 {
            return false;
        }
        let mut tabs = u8x16_bitmask(u8x16_eq(bytes, tab));
        while tabs != 0 {
            let at = index * 16 + tabs.trailing_zeros() as usize;
            end_field(at, base, &mut start, fields);
            tabs &= tabs - 1;
        }
    }
    split_plain_tail(line, chunks.len() * 16, start, base, fields)
}

/// Splits a row without backslashes at its tabs, eight bytes at a time; `false` (fields
/// incomplete) as soon as a backslash shows up.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn split_plain(line: &[u8], base: usize, fields: &mut Vec<Span>) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let (chunks, _) = line.as_chunks::<8>();
    let mut start = 0;
    for (index, chunk) in chunks.iter().enumerate() {
        let word = u64::from_le_bytes(*chunk);
        if zero_bytes(word ^ (ONES * u64::from(b'\\'))) != 0 {
            return false;
        }
        let mut tabs = zero_bytes(word ^ (ONES * u64::from(b'\t')));
        while tabs != 0 {
            let at = index * 8 + (tabs.trailing_zeros() / 8) as usize;
            end_field(at, base, &mut start, fields);
            tabs &= tabs - 1;
        }
    }
    split_plain_tail(line, chunks.len() * 8, start, base, fields)
}

/// Ends the field in progress (from `start`) at the tab at `at` of a line at `base` of the buffer;
/// the next field starts after the tab.
#[inline]
fn end_field(at: usize, base: usize, start: &mut usize, fields: &mut Vec<Span>) {
    fields.push(Span {
        start: base + *start,
        end: base + at,
    });
    *start = at + 1;
}

/// The bytes of `line` from `tail` on, one at a time, the field in progress starting at `start`.
fn split_plain_tail(
    line: &[u8],
    tail: usize,
    mut start: usize,
    base: usize,
    fields: &mut Vec<Span>,
) -> bool {
    for (offset, &byte) in line[tail..].iter().enumerate() {
        match byte {
            b'\\' => return false,
            b'\t' => end_field(tail + offset, base, &mut start, fields),
            _ => {}
        }
    }
    fields.push(Span {
        start: base + start,
        end: base + line.len(),
    });
    true
}

/// Where the field starting at `start` ends: at the next tab that no backslash escapes (`\` and a
/// tab is a data tab, as PostgreSQL reads it), or at the end of the line.
fn field_end(line: &[u8], start: usize) -> usize {
    let mut i = start;
    while let Some(found) = memchr::memchr2(b'\t', b'\\', &line[i..]) {
        let at = i + found;
        if line[at] == b'\t' {
            return at;
        }
        i = at + 2;
        if i >= line.len() {
            break;
        }
    }
    line.len()
}

/// Unescapes the field at `raw` of `buffer` onto the end of `buffer`.
fn unescape_within(buffer: &mut Vec<u8>, raw: Range<usize>) {
    let mut i = raw.start;
    while i < raw.end {
        let b = buffer[i];
        if b != b'\\' {
            buffer.push(b);
            i += 1;
            continue;
        }
        // A backslash ending the line stands for nothing, as in PostgreSQL.
        let Some(&next) = buffer[..raw.end].get(i + 1) else {
            break;
        };
        i += 2;
        match next {
            b'b' => buffer.push(8),
            b'f' => buffer.push(12),
            b'n' => buffer.push(b'\n'),
            b'r' => buffer.push(b'\r'),
            b't' => buffer.push(b'\t'),
            b'v' => buffer.push(11),
            b'0'..=b'7' => {
                let mut value = u32::from(next - b'0');
                let mut digits = 1;
                while digits < 3 && i < raw.end && (b'0'..=b'7').contains(&buffer[i]) {
                    value = value * 8 + u32::from(buffer[i] - b'0');
                    i += 1;
                    digits += 1;
                }
                buffer.push(value as u8);
            }
            b'x' if i < raw.end && buffer[i].is_ascii_hexdigit() => {
                let mut value = hex(buffer[i]);
                i += 1;
                if i < raw.end && buffer[i].is_ascii_hexdigit() {
                    value = value * 16 + hex(buffer[i]);
                    i += 1;
                }
                buffer.push(value);
            }
            other => buffer.push(other),
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
    fn tabs_and_backslashes_are_found_at_every_offset_of_a_word() {
        for length in 0..20 {
            for at in 0..length {
                let mut line = vec![b'a'; length];
                line[at] = b'\t';
                assert_eq!(
                    split(&line),
                    vec![some(&line[..at]), some(&line[at + 1..])],
                    "tab at {at} of {length}"
                );
                line[at] = b'\\';
                let fields = split(&line);
                assert_eq!(fields.len(), 1);
                assert!(
                    !fields[0].as_ref().unwrap().contains(&b'\\'),
                    "{at} of {length}"
                );
            }
        }
        // Bytes one off a tab or backslash (borrows in the word tricks) are not taken for one.
        assert_eq!(
            split(b"\x08\x0a\x5b\x5d\x08\tz"),
            vec![some(b"\x08\x0a\x5b\x5d\x08"), some(b"z")]
        );
    }

    #[test]
    fn values_carry_text_when_the_batch_is_utf8() {
        fn value(
            batch: &TextBatch,
            row: usize,
            column: usize,
        ) -> Option<(Option<&str>, Option<&str>)> {
            let text = batch.text();
            batch
                .column(text, column, 2)
                .nth(row)
                .flatten()
                .map(|v| (v.text, v.text().ok()))
        }
        let mut batch = TextBatch::default();
        batch.push_row("żółć\t1".as_bytes(), 2).unwrap();
        assert_eq!(value(&batch, 0, 0), Some((Some("żółć"), Some("żółć"))));
        assert_eq!(value(&batch, 0, 1), Some((Some("1"), Some("1"))));
        // An invalid row makes the batch invalid: every field is then checked on its own.
        batch.push_row(b"ok\t\xff", 2).unwrap();
        assert_eq!(value(&batch, 0, 0), Some((None, Some("żółć"))));
        assert_eq!(value(&batch, 1, 0), Some((None, Some("ok"))));
        assert_eq!(value(&batch, 1, 1), Some((None, None)));
        // Unescaped fields are covered by the same check.
        batch.clear();
        batch.push_row(b"a\\303\\251\t\\N", 2).unwrap();
        assert_eq!(value(&batch, 0, 0), Some((Some("aé"), Some("aé"))));
        assert_eq!(value(&batch, 0, 1), None);
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

    /// A row as PostgreSQL writes it: fields escaped, NULL as `\N`, tab-separated.
    fn line_of(fields: &[Option<Vec<u8>>]) -> Vec<u8> {
        let mut line = Vec::new();
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                line.push(b'\t');
            }
            match field {
                None => line.extend_from_slice(b"\\N"),
                Some(value) => encode_like_postgres(value, &mut line),
            }
        }
        line
    }

    #[test]
    fn property_a_batch_holds_the_rows_pushed_and_not_popped() {
        let mut rng = Rng::new("property_a_batch_holds_the_rows_pushed_and_not_popped");
        let mut batch = TextBatch::default();
        for _ in 0..2_000 {
            batch.clear();
            let width = 1 + rng.below(6);
            let mut expected: Vec<Vec<Option<Vec<u8>>>> = Vec::new();
            for _ in 0..rng.below(40) {
                match rng.below(8) {
                    0 => {
                        // A row of another width is refused and leaves the batch as it was.
                        let other = (width + 1 + rng.below(3)) % 9 + 1;
                        let fields: Vec<_> = (0..other).map(|_| random_value(&mut rng)).collect();
                        if other != width {
                            assert_eq!(batch.push_row(&line_of(&fields), width), Err(other));
                        }
                    }
                    1 if !expected.is_empty() => {
                        batch.pop_row(width);
                        expected.pop();
                    }
                    _ => {
                        let fields: Vec<_> = (0..width).map(|_| random_value(&mut rng)).collect();
                        batch.push_row(&line_of(&fields), width).unwrap();
                        expected.push(fields);
                    }
                }
            }
            assert_eq!(batch.rows(), expected.len());
            let text = batch.text();
            for column in 0..width {
                let values: Vec<_> = batch.column(text, column, width).collect();
                assert_eq!(values.len(), expected.len());
                for (row, (value, fields)) in values.iter().zip(&expected).enumerate() {
                    let field = fields[column].as_deref();
                    assert_eq!(batch.field(row, column, width), field);
                    assert_eq!(value.map(|v| v.bytes), field);
                    if let Some(value) = value {
                        let checked = std::str::from_utf8(value.bytes).ok();
                        assert_eq!(value.text().ok(), checked);
                        assert!(value.text.is_none() || value.text == checked);
                    }
                }
                // Without the batch's text, values carry none (and still check their own).
                let untexted = batch.column(None, column, width).flatten();
                assert!(untexted.into_iter().all(|v| v.text.is_none()));
            }
        }
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
