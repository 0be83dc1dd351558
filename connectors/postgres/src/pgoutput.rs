//! Decoding what a logical replication stream carries: the walsender's frames (`XLogData`,
//! primary keepalive) and, inside `XLogData`, the messages of the `pgoutput` plugin (protocol
//! version 1). Every length and tag is checked: a malformed message is an error naming what was
//! wrong, never a panic.

use bytes::Bytes;

/// A write-ahead log position, as PostgreSQL prints it (`16/B374D848`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Lsn(pub u64);

impl std::fmt::Display for Lsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

impl std::str::FromStr for Lsn {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a log position (like `16/B374D848`)");
        let (high, low) = text.trim().split_once('/').ok_or_else(bad)?;
        let high = u32::from_str_radix(high, 16).map_err(|_| bad())?;
        let low = u32::from_str_radix(low, 16).map_err(|_| bad())?;
        Ok(Self((u64::from(high) << 32) | u64::from(low)))
    }
}

/// Something in the stream does not follow the protocol.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("a `{message}` message ends early (at byte {at})")]
    Truncated { message: &'static str, at: usize },
    #[error("unknown replication frame type `{0}`")]
    UnknownFrame(char),
    #[error("unknown pgoutput message type `{0}`")]
    UnknownMessage(char),
    #[error("unknown tuple column kind `{0}` in a `{1}` message")]
    UnknownColumnKind(char, &'static str),
    #[error("unexpected tuple tag `{tag}` in a `{message}` message")]
    UnexpectedTupleTag { tag: char, message: &'static str },
    #[error("a name in a `{0}` message is not UTF-8")]
    NotUtf8(&'static str),
}

/// What the walsender sends inside `CopyData`.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// WAL data: one `pgoutput` message.
    XLogData { wal_end: Lsn, data: Bytes },
    /// The server's position; it wants an answer when `reply` is set.
    Keepalive { wal_end: Lsn, reply: bool },
}

/// One column of a relation.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationColumn {
    /// Part of the replica identity (the key that identifies a row in updates and deletes).
    pub key: bool,
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
}

/// A table as the stream describes it, sent before its first change and after each change of
/// its columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// `d` (primary key), `n` (nothing), `f` (full row), `i` (an index).
    pub replica_identity: u8,
    pub columns: Vec<RelationColumn>,
}

/// One column value of a tuple.
#[derive(Debug, Clone, PartialEq)]
pub enum TupleValue {
    Null,
    /// An unchanged TOASTed value the server did not send.
    UnchangedToast,
    /// The value in PostgreSQL text form.
    Text(Bytes),
}

/// A decoded `pgoutput` message.
#[derive(Debug, PartialEq)]
pub enum Message {
    Begin {
        /// The commit record's position.
        final_lsn: Lsn,
        xid: u32,
    },
    Commit {
        commit_lsn: Lsn,
        /// The end of the commit record: where the next transaction can start.
        end_lsn: Lsn,
    },
    Relation(Relation),
    Insert {
        relation: u32,
        new: Vec<TupleValue>,
    },
    Update {
        relation: u32,
        /// The old key (`K`, when the key changed) or the whole old row (`O`, replica identity full).
        old: Option<Vec<TupleValue>>,
        new: Vec<TupleValue>,
    },
    Delete {
        relation: u32,
        /// The old key, or the whole old row under replica identity full.
        old: Vec<TupleValue>,
    },
    Truncate {
        relations: Vec<u32>,
    },
    /// Messages that change nothing here: `Type`, `Origin`, logical decoding `Message`.
    Other,
}

/// Reads big-endian fields from a message, failing instead of panicking at its end.
struct Reader<'a> {
    data: &'a Bytes,
    at: usize,
    message: &'static str,
}

impl<'a> Reader<'a> {
    fn new(data: &'a Bytes, message: &'static str) -> Self {
        Self {
            data,
            at: 0,
            message,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let slice = self
            .data
            .get(self.at..self.at + n)
            .ok_or(DecodeError::Truncated {
                message: self.message,
                at: self.at,
            })?;
        self.at += n;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut bytes = [0; 8];
        bytes.copy_from_slice(b);
        Ok(u64::from_be_bytes(bytes))
    }

    fn lsn(&mut self) -> Result<Lsn, DecodeError> {
        self.u64().map(Lsn)
    }

    /// A NUL-terminated string.
    fn string(&mut self) -> Result<String, DecodeError> {
        let rest = self.data.get(self.at..).unwrap_or_default();
        let end = memchr::memchr(0, rest).ok_or(DecodeError::Truncated {
            message: self.message,
            at: self.data.len(),
        })?;
        let text = std::str::from_utf8(&rest[..end])
            .map_err(|_| DecodeError::NotUtf8(self.message))?
            .to_owned();
        self.at += end + 1;
        Ok(text)
    }

    fn tuple(&mut self) -> Result<Vec<TupleValue>, DecodeError> {
        let count = self.u16()?;
        let mut values = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let value = match self.u8()? {
                b'n' => TupleValue::Null,
                b'u' => TupleValue::UnchangedToast,
                b't' | b'b' => {
                    let length = self.u32()? as usize;
                    let start = self.at;
                    self.take(length)?;
                    TupleValue::Text(self.data.slice(start..start + length))
                }
                other => {
                    return Err(DecodeError::UnknownColumnKind(
                        char::from(other),
                        self.message,
                    ));
                }
            };
            values.push(value);
        }
        Ok(values)
    }
}

/// Decodes one `CopyData` payload of the replication stream.
pub fn decode_frame(payload: Bytes) -> Result<Frame, DecodeError> {
    let mut reader = Reader::new(&payload, "replication frame");
    match reader.u8()? {
        b'w' => {
            let _wal_start = reader.lsn()?;
            let wal_end = reader.lsn()?;
            let _clock = reader.u64()?;
            let data = payload.slice(reader.at..);
            Ok(Frame::XLogData { wal_end, data })
        }
        b'k' => {
            let wal_end = reader.lsn()?;
            let _clock = reader.u64()?;
            let reply = reader.u8()? != 0;
            Ok(Frame::Keepalive { wal_end, reply })
        }
        other => Err(DecodeError::UnknownFrame(char::from(other))),
    }
}

/// Decodes one `pgoutput` message (protocol version 1).
pub fn decode_message(data: &Bytes) -> Result<Message, DecodeError> {
    let tag = *data.first().ok_or(DecodeError::Truncated {
        message: "pgoutput",
        at: 0,
    })?;
    let name = match tag {
        b'B' => "Begin",
        b'C' => "Commit",
        b'R' => "Relation",
        b'I' => "Insert",
        b'U' => "Update",
        b'D' => "Delete",
        b'T' => "Truncate",
        b'Y' | b'O' | b'M' => return Ok(Message::Other),
        other => return Err(DecodeError::UnknownMessage(char::from(other))),
    };
    let mut reader = Reader::new(data, name);
    reader.u8()?;
    Ok(match tag {
        b'B' => {
            let final_lsn = reader.lsn()?;
            let _timestamp = reader.u64()?;
            let xid = reader.u32()?;
            Message::Begin { final_lsn, xid }
        }
        b'C' => {
            let _flags = reader.u8()?;
            let commit_lsn = reader.lsn()?;
            let end_lsn = reader.lsn()?;
            let _timestamp = reader.u64()?;
            Message::Commit {
                commit_lsn,
                end_lsn,
            }
        }
        b'R' => {
            let oid = reader.u32()?;
            let schema = reader.string()?;
            let name = reader.string()?;
            let replica_identity = reader.u8()?;
            let count = reader.u16()?;
            let mut columns = Vec::with_capacity(usize::from(count));
            for _ in 0..count {
                let flags = reader.u8()?;
                let name = reader.string()?;
                let type_oid = reader.u32()?;
                let type_modifier = reader.u32()? as i32;
                columns.push(RelationColumn {
                    key: flags & 1 == 1,
                    name,
                    type_oid,
                    type_modifier,
                });
            }
            Message::Relation(Relation {
                oid,
                schema,
                name,
                replica_identity,
                columns,
            })
        }
        b'I' => {
            let relation = reader.u32()?;
            expect_tag(&mut reader, b'N')?;
            Message::Insert {
                relation,
                new: reader.tuple()?,
            }
        }
        b'U' => {
            let relation = reader.u32()?;
            let (old, new) = match reader.u8()? {
                b'K' | b'O' => {
                    let old = reader.tuple()?;
                    expect_tag(&mut reader, b'N')?;
                    (Some(old), reader.tuple()?)
                }
                b'N' => (None, reader.tuple()?),
                other => {
                    return Err(DecodeError::UnexpectedTupleTag {
                        tag: char::from(other),
                        message: name,
                    });
                }
            };
            Message::Update { relation, old, new }
        }
        b'D' => {
            let relation = reader.u32()?;
            match reader.u8()? {
                b'K' | b'O' => {}
                other => {
                    return Err(DecodeError::UnexpectedTupleTag {
                        tag: char::from(other),
                        message: name,
                    });
                }
            }
            Message::Delete {
                relation,
                old: reader.tuple()?,
            }
        }
        _ => {
            let count = reader.u32()?;
            let _options = reader.u8()?;
            let mut relations = Vec::new();
            for _ in 0..count {
                relations.push(reader.u32()?);
            }
            Message::Truncate { relations }
        }
    })
}

fn expect_tag(reader: &mut Reader<'_>, wanted: u8) -> Result<(), DecodeError> {
    match reader.u8()? {
        tag if tag == wanted => Ok(()),
        tag => Err(DecodeError::UnexpectedTupleTag {
            tag: char::from(tag),
            message: reader.message,
        }),
    }
}

/// A standby status update: what the client has written, flushed and applied, as of `now_micros`
/// (microseconds since 2000-01-01). Inlet reports the durable position for all three.
pub fn standby_status_update(durable: Lsn, now_micros: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(34);
    out.push(b'r');
    for _ in 0..3 {
        out.extend_from_slice(&durable.0.to_be_bytes());
    }
    out.extend_from_slice(&now_micros.to_be_bytes());
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(values: &[Option<&str>]) -> Vec<u8> {
        let mut out = (values.len() as u16).to_be_bytes().to_vec();
        for value in values {
            match value {
                None => out.push(b'n'),
                Some("<toast>") => out.push(b'u'),
                Some(text) => {
                    out.push(b't');
                    out.extend_from_slice(&(text.len() as u32).to_be_bytes());
                    out.extend_from_slice(text.as_bytes());
                }
            }
        }
        out
    }

    fn text(value: &str) -> TupleValue {
        TupleValue::Text(Bytes::copy_from_slice(value.as_bytes()))
    }

    #[test]
    fn log_positions_print_and_parse_as_postgres_does() {
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn, Lsn(0x16_B374_D848));
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert_eq!(Lsn(0).to_string(), "0/0");
        assert!("16B374D848".parse::<Lsn>().is_err());
        assert!("x/1".parse::<Lsn>().is_err());
    }

    #[test]
    fn frames_carry_data_or_a_keepalive() {
        let mut w = vec![b'w'];
        w.extend_from_slice(&1u64.to_be_bytes());
        w.extend_from_slice(&2u64.to_be_bytes());
        w.extend_from_slice(&3u64.to_be_bytes());
        w.extend_from_slice(b"B...");
        assert_eq!(
            decode_frame(Bytes::from(w)).unwrap(),
            Frame::XLogData {
                wal_end: Lsn(2),
                data: Bytes::from_static(b"B...")
            }
        );
        let mut k = vec![b'k'];
        k.extend_from_slice(&9u64.to_be_bytes());
        k.extend_from_slice(&0u64.to_be_bytes());
        k.push(1);
        assert_eq!(
            decode_frame(Bytes::from(k.clone())).unwrap(),
            Frame::Keepalive {
                wal_end: Lsn(9),
                reply: true
            }
        );
        // Cut anywhere, a frame is an error, not a panic.
        for cut in 0..k.len() {
            assert!(decode_frame(Bytes::copy_from_slice(&k[..cut])).is_err());
        }
        assert_eq!(
            decode_frame(Bytes::from_static(b"z")),
            Err(DecodeError::UnknownFrame('z'))
        );
    }

    #[test]
    fn transactions_relations_and_changes_decode() {
        let mut begin = vec![b'B'];
        begin.extend_from_slice(&0x10u64.to_be_bytes());
        begin.extend_from_slice(&0u64.to_be_bytes());
        begin.extend_from_slice(&7u32.to_be_bytes());
        assert_eq!(
            decode_message(&Bytes::from(begin)).unwrap(),
            Message::Begin {
                final_lsn: Lsn(0x10),
                xid: 7
            }
        );

        let mut commit = vec![b'C', 0];
        commit.extend_from_slice(&0x10u64.to_be_bytes());
        commit.extend_from_slice(&0x18u64.to_be_bytes());
        commit.extend_from_slice(&0u64.to_be_bytes());
        assert_eq!(
            decode_message(&Bytes::from(commit)).unwrap(),
            Message::Commit {
                commit_lsn: Lsn(0x10),
                end_lsn: Lsn(0x18)
            }
        );

        let mut relation = vec![b'R'];
        relation.extend_from_slice(&42u32.to_be_bytes());
        relation.extend_from_slice(b"public\0users\0d");
        relation.extend_from_slice(&2u16.to_be_bytes());
        relation.push(1);
        relation.extend_from_slice(b"id\0");
        relation.extend_from_slice(&23u32.to_be_bytes());
        relation.extend_from_slice(&(-1i32).to_be_bytes());
        relation.push(0);
        relation.extend_from_slice(b"name\0");
        relation.extend_from_slice(&25u32.to_be_bytes());
        relation.extend_from_slice(&(-1i32).to_be_bytes());
        let decoded = decode_message(&Bytes::from(relation.clone())).unwrap();
        let Message::Relation(decoded) = decoded else {
            panic!("{decoded:?}")
        };
        assert_eq!(
            (decoded.oid, decoded.schema.as_str(), decoded.name.as_str()),
            (42, "public", "users")
        );
        assert_eq!(decoded.replica_identity, b'd');
        assert!(decoded.columns[0].key && !decoded.columns[1].key);
        assert_eq!(decoded.columns[1].name, "name");
        assert_eq!(decoded.columns[0].type_oid, 23);
        assert_eq!(decoded.columns[0].type_modifier, -1);
        for cut in 1..relation.len() {
            assert!(
                decode_message(&Bytes::copy_from_slice(&relation[..cut])).is_err(),
                "cut at {cut}"
            );
        }

        let mut insert = vec![b'I'];
        insert.extend_from_slice(&42u32.to_be_bytes());
        insert.push(b'N');
        insert.extend(tuple(&[Some("1"), None]));
        assert_eq!(
            decode_message(&Bytes::from(insert)).unwrap(),
            Message::Insert {
                relation: 42,
                new: vec![text("1"), TupleValue::Null]
            }
        );

        let mut update = vec![b'U'];
        update.extend_from_slice(&42u32.to_be_bytes());
        update.push(b'O');
        update.extend(tuple(&[Some("1"), Some("old")]));
        update.push(b'N');
        update.extend(tuple(&[Some("2"), Some("<toast>")]));
        assert_eq!(
            decode_message(&Bytes::from(update)).unwrap(),
            Message::Update {
                relation: 42,
                old: Some(vec![text("1"), text("old")]),
                new: vec![text("2"), TupleValue::UnchangedToast]
            }
        );
        let mut plain_update = vec![b'U'];
        plain_update.extend_from_slice(&42u32.to_be_bytes());
        plain_update.push(b'N');
        plain_update.extend(tuple(&[Some("3"), Some("x")]));
        assert!(matches!(
            decode_message(&Bytes::from(plain_update)).unwrap(),
            Message::Update { old: None, .. }
        ));

        let mut delete = vec![b'D'];
        delete.extend_from_slice(&42u32.to_be_bytes());
        delete.push(b'K');
        delete.extend(tuple(&[Some("1"), None]));
        assert_eq!(
            decode_message(&Bytes::from(delete)).unwrap(),
            Message::Delete {
                relation: 42,
                old: vec![text("1"), TupleValue::Null]
            }
        );
        let mut bad_delete = vec![b'D'];
        bad_delete.extend_from_slice(&42u32.to_be_bytes());
        bad_delete.push(b'N');
        assert_eq!(
            decode_message(&Bytes::from(bad_delete)),
            Err(DecodeError::UnexpectedTupleTag {
                tag: 'N',
                message: "Delete"
            })
        );

        let mut truncate = vec![b'T'];
        truncate.extend_from_slice(&2u32.to_be_bytes());
        truncate.push(0);
        truncate.extend_from_slice(&42u32.to_be_bytes());
        truncate.extend_from_slice(&43u32.to_be_bytes());
        assert_eq!(
            decode_message(&Bytes::from(truncate)).unwrap(),
            Message::Truncate {
                relations: vec![42, 43]
            }
        );
        assert_eq!(
            decode_message(&Bytes::from_static(b"Yanything")).unwrap(),
            Message::Other
        );
        assert_eq!(
            decode_message(&Bytes::from_static(b"Q")),
            Err(DecodeError::UnknownMessage('Q'))
        );
        assert!(decode_message(&Bytes::new()).is_err());
    }

    #[test]
    fn a_tuple_length_beyond_the_message_is_an_error() {
        let mut insert = vec![b'I'];
        insert.extend_from_slice(&42u32.to_be_bytes());
        insert.push(b'N');
        insert.extend_from_slice(&1u16.to_be_bytes());
        insert.push(b't');
        insert.extend_from_slice(&u32::MAX.to_be_bytes());
        insert.extend_from_slice(b"short");
        assert!(matches!(
            decode_message(&Bytes::from(insert)),
            Err(DecodeError::Truncated {
                message: "Insert",
                ..
            })
        ));
        let mut kind = vec![b'I'];
        kind.extend_from_slice(&42u32.to_be_bytes());
        kind.push(b'N');
        kind.extend_from_slice(&1u16.to_be_bytes());
        kind.push(b'?');
        assert_eq!(
            decode_message(&Bytes::from(kind)),
            Err(DecodeError::UnknownColumnKind('?', "Insert"))
        );
    }

    #[test]
    fn the_status_update_reports_one_position_three_times() {
        let update = standby_status_update(Lsn(0x0102), 5);
        assert_eq!(update.len(), 34);
        assert_eq!(update[0], b'r');
        assert_eq!(&update[1..9], &0x0102u64.to_be_bytes());
        assert_eq!(&update[17..25], &0x0102u64.to_be_bytes());
        assert_eq!(update[33], 0);
    }
}
