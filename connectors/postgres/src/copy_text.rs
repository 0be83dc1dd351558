//! Splitting one row of `COPY ... TO STDOUT` text format into unescaped fields.
//!
//! Fields are separated by tabs; `\N` is NULL; backslash escapes `\b \f \n \r \t \v \\`, octal `\ooo`
//! and hex `\xhh` stand for bytes. Most rows hold no backslash at all: their fields are slices of
//! the row itself, and only rows with escapes are unescaped into a buffer.

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
            let end = line[start..]
                .iter()
                .position(|&b| b == b'\t')
                .map_or(line.len(), |p| start + p);
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
