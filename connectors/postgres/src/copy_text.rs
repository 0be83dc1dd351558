//! Splitting one row of `COPY ... TO STDOUT` text format into unescaped fields.
//!
//! Fields are separated by tabs; `\N` is NULL; backslash escapes `\b \f \n \r \t \v \\`, octal `\ooo`
//! and hex `\xhh` stand for bytes.

use std::ops::Range;

/// A reusable splitter: fields are unescaped into one buffer and addressed by ranges.
#[derive(Default)]
pub struct RowSplitter {
    buffer: Vec<u8>,
    fields: Vec<Option<Range<usize>>>,
}

impl RowSplitter {
    /// Splits `line`; afterwards [`Self::field`] returns each field.
    pub fn split(&mut self, line: &[u8]) {
        self.buffer.clear();
        self.fields.clear();
        for raw in line.split(|&b| b == b'\t') {
            if raw == b"\\N" {
                self.fields.push(None);
                continue;
            }
            let start = self.buffer.len();
            if !raw.contains(&b'\\') {
                self.buffer.extend_from_slice(raw);
            } else {
                unescape(raw, &mut self.buffer);
            }
            self.fields.push(Some(start..self.buffer.len()));
        }
    }

    /// The number of fields of the last row.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Field `index` of the last row, `None` for NULL.
    pub fn field(&self, index: usize) -> Option<&[u8]> {
        self.fields
            .get(index)
            .cloned()
            .flatten()
            .map(|r| &self.buffer[r])
    }
}

fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' || i + 1 == raw.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let next = raw[i + 1];
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
