//! Stream values to COPY FROM STDIN text: the hot path of molt-load.
//!
//! COPY's text format is one line per row, values separated by tabs, `\N`
//! for NULL, and backslash escapes for backslash, tab, newline and carriage
//! return. Most stream values are already in the form PostgreSQL and
//! CockroachDB read (`true`, `12.30`, `NaN`, `2024-01-31 10:00:00Z`,
//! `P1Y2M`, JSON text, UUIDs, bit strings), so they are only escaped, in one
//! pass straight into the batch buffer. Three kinds are converted:
//!
//! - bytes: base64 in the stream; for PostgreSQL the bytea hex form `\x…`
//!   (its backslash escaped for COPY), for CockroachDB every byte as a COPY
//!   escape ([`BytesText`] says why);
//! - dates and timestamps with astronomical years `<= 0`: `... BC`
//!   ([`crate::value::era`]);
//! - arrays: JSON in the stream, `{...}` array literals for the target,
//!   every element quoted so commas, quotes, braces and the word NULL in
//!   text survive, with unquoted `NULL` for SQL NULL.

use std::borrow::Cow;

use base64::Engine as _;

use crate::stream::{Field, TableHeader};
use crate::value::LogicalType;

/// A value that cannot be written to the target.
#[derive(Debug, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct EncodeError {
    pub column: String,
    pub message: String,
}

/// How a scalar bytes value is written in COPY text.
///
/// PostgreSQL runs the COPY-unescaped field through bytea's input function,
/// so it reads the hex form `\\x0102`. CockroachDB does not: its text COPY
/// stores the COPY-unescaped field bytes as they are (`readTextTupleDatum`
/// in cockroach's `pkg/sql/copy_from.go`, cockroachdb/cockroach#167309), so
/// the hex form would arrive as the six bytes `\x0102`. There each byte that
/// is not printable ASCII (and the backslash) is sent as the COPY escape
/// `\xHH`, which both decode to that byte. Neither form works on the other
/// engine: PostgreSQL rejects raw bytes >= 0x80 in bytea text as invalid
/// UTF-8. Array elements are read by the array parser on both, so they keep
/// the hex form.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BytesText {
    /// `\\x0102`: bytea's hex input form (PostgreSQL).
    #[default]
    ByteaHex,
    /// `\x01\x02`: the raw bytes as COPY escapes (CockroachDB).
    CopyEscapes,
}

impl BytesText {
    pub fn for_flavour(flavour: super::Flavour) -> BytesText {
        if flavour.is_cockroach() {
            BytesText::CopyEscapes
        } else {
            BytesText::ByteaHex
        }
    }
}

/// How one column is encoded.
#[derive(Clone, Debug)]
struct ColumnCodec {
    name: String,
    logical: LogicalType,
    is_array: bool,
}

/// Encodes rows of one table into COPY text. Reuse one per section: it keeps
/// a scratch buffer so that bytes values do not allocate.
#[derive(Clone, Debug)]
pub struct RowEncoder {
    columns: Vec<ColumnCodec>,
    scratch: Vec<u8>,
    bytes: BytesText,
}

impl RowEncoder {
    /// An encoder writing bytes in PostgreSQL's form; see [`Self::with_bytes`].
    pub fn new(header: &TableHeader) -> RowEncoder {
        RowEncoder::with_bytes(header, BytesText::ByteaHex)
    }

    /// An encoder writing scalar bytes values as `bytes` says, which must
    /// match the target ([`BytesText::for_flavour`]).
    pub fn with_bytes(header: &TableHeader, bytes: BytesText) -> RowEncoder {
        RowEncoder {
            bytes,
            columns: header
                .columns
                .iter()
                .map(|c| ColumnCodec {
                    name: c.name.clone(),
                    logical: c.logical,
                    is_array: c.array_dims > 0,
                })
                .collect(),
            scratch: Vec::new(),
        }
    }

    /// Appends one row (values in column order) as a COPY text line.
    pub fn encode_row<'a>(
        &mut self,
        fields: impl IntoIterator<Item = Field<'a>>,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let mark = out.len();
        let mut n = 0;
        for (i, field) in fields.into_iter().enumerate() {
            let Some(column) = self.columns.get(i) else {
                out.truncate(mark);
                return Err(EncodeError {
                    column: format!("#{}", i + 1),
                    message: "more values than columns".into(),
                });
            };
            if i > 0 {
                out.push(b'\t');
            }
            let result = match field {
                Field::Null => {
                    out.extend_from_slice(b"\\N");
                    Ok(())
                }
                Field::Array(json) | Field::Str(json) if column.is_array => {
                    encode_array(column.logical, json, out)
                }
                Field::Str(text) | Field::Array(text) => {
                    encode_scalar(column.logical, text, out, &mut self.scratch, self.bytes)
                }
            };
            if let Err(message) = result {
                out.truncate(mark);
                return Err(EncodeError {
                    column: column.name.clone(),
                    message,
                });
            }
            n += 1;
        }
        if n != self.columns.len() {
            out.truncate(mark);
            return Err(EncodeError {
                column: self
                    .columns
                    .get(n)
                    .map_or_else(String::new, |c| c.name.clone()),
                message: format!(
                    "row has {n} values, the table has {} columns",
                    self.columns.len()
                ),
            });
        }
        out.push(b'\n');
        Ok(())
    }
}

/// Which bytes COPY text needs escaped.
static COPY_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    t[b'\\' as usize] = true;
    t[b'\t' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t
};

/// PostgreSQL and CockroachDB store no U+0000 in text, JSON or arrays, and
/// COPY has no escape for it: the row is refused here, naming it, rather
/// than letting the server refuse a whole batch.
pub(crate) const NUL_MESSAGE: &str =
    "the value contains a NUL byte (U+0000), which PostgreSQL and CockroachDB cannot store in text";

/// Appends `text` escaped for COPY text format; refuses a NUL byte (found
/// in the same pass as the bytes to escape).
fn push_copy_escaped(out: &mut Vec<u8>, text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Tab, newline, CR and NUL are control characters; backslash is given.
        i = crate::stream::skip_plain(bytes, i, b'\\', b'\\');
        let end = (i + 8).min(bytes.len());
        while i < end {
            let b = bytes[i];
            if b == 0 {
                return Err(NUL_MESSAGE.to_string());
            }
            if COPY_ESCAPE[b as usize] {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(match b {
                    b'\\' => b"\\\\",
                    b'\t' => b"\\t",
                    b'\n' => b"\\n",
                    _ => b"\\r",
                });
                start = i + 1;
            }
            i += 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    Ok(())
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn encode_scalar(
    ty: LogicalType,
    text: &str,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    bytes: BytesText,
) -> Result<(), String> {
    if ty == LogicalType::Bytes {
        scratch.clear();
        base64::engine::general_purpose::STANDARD
            .decode_vec(text, scratch)
            .map_err(|e| format!("invalid base64 in a bytes value: {e}"))?;
        match bytes {
            BytesText::ByteaHex => {
                // `\x` with its backslash escaped for COPY.
                out.reserve(3 + scratch.len() * 2);
                out.extend_from_slice(b"\\\\x");
                for &b in scratch.iter() {
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 15) as usize]);
                }
            }
            BytesText::CopyEscapes => {
                out.reserve(scratch.len() * 2);
                for &b in scratch.iter() {
                    if (0x20..0x7f).contains(&b) && b != b'\\' {
                        out.push(b);
                    } else {
                        out.extend_from_slice(&[
                            b'\\',
                            b'x',
                            HEX[(b >> 4) as usize],
                            HEX[(b & 15) as usize],
                        ]);
                    }
                }
            }
        }
        return Ok(());
    }
    match pg_input(ty, text)? {
        Cow::Borrowed(t) => push_copy_escaped(out, t),
        Cow::Owned(t) => push_copy_escaped(out, &t),
    }
}

/// The text the target's input function reads for a stream scalar: the
/// stream form itself, except for bytes and BC dates. Used for COPY, for
/// array elements and for bound parameters (shard bounds).
pub fn pg_input(ty: LogicalType, text: &str) -> Result<Cow<'_, str>, String> {
    match ty {
        LogicalType::Bytes => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| format!("invalid base64 in a bytes value: {e}"))?;
            let mut hex = String::with_capacity(2 + raw.len() * 2);
            hex.push_str("\\x");
            for b in raw {
                hex.push(HEX[(b >> 4) as usize] as char);
                hex.push(HEX[(b & 15) as usize] as char);
            }
            Ok(Cow::Owned(hex))
        }
        LogicalType::Date | LogicalType::Timestamp | LogicalType::Timestamptz if maybe_bc(text) => {
            Ok(crate::value::era::to_pg_era(text).map_or(Cow::Borrowed(text), Cow::Owned))
        }
        _ => Ok(Cow::Borrowed(text)),
    }
}

/// Cheap pre-check for a year `<= 0`: a leading `-digit` or year `0000`.
fn maybe_bc(text: &str) -> bool {
    let b = text.as_bytes();
    (b.first() == Some(&b'-') && b.get(1).is_some_and(u8::is_ascii_digit))
        || b.starts_with(b"0000-")
}

fn encode_array(ty: LogicalType, json: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("array value is not valid JSON: {e}"))?;
    let mut literal = String::with_capacity(json.len() + 8);
    array_literal(ty, &value, &mut literal)?;
    push_copy_escaped(out, &literal)
}

/// Writes a PostgreSQL array literal (`{"a",NULL,{"b"}}`) for a JSON array.
pub fn array_literal(
    ty: LogicalType,
    value: &serde_json::Value,
    out: &mut String,
) -> Result<(), String> {
    let serde_json::Value::Array(items) = value else {
        return Err(format!("expected a JSON array, found {value}"));
    };
    out.push('{');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            serde_json::Value::Null => out.push_str("NULL"),
            serde_json::Value::Array(_) => array_literal(ty, item, out)?,
            serde_json::Value::String(s) => push_array_element(out, &pg_input(ty, s)?),
            serde_json::Value::Object(_) => return Err("an array element is a JSON object".into()),
            other => push_array_element(out, &other.to_string()),
        }
    }
    out.push('}');
    Ok(())
}

fn push_array_element(out: &mut String, text: &str) {
    out.push('"');
    for ch in text.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(ty: LogicalType, text: &str) -> String {
        let mut out = Vec::new();
        encode_scalar(ty, text, &mut out, &mut Vec::new(), BytesText::ByteaHex).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn array(ty: LogicalType, json: &str) -> String {
        let mut out = Vec::new();
        encode_array(ty, json, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_copy_specials() {
        assert_eq!(
            scalar(LogicalType::Text, "a\tb\nc\\d\re"),
            "a\\tb\\nc\\\\d\\re"
        );
        assert_eq!(scalar(LogicalType::Text, "\\N"), "\\\\N");
        assert_eq!(scalar(LogicalType::Text, "plain ✓ 😀"), "plain ✓ 😀");
    }

    #[test]
    fn refuses_nul_anywhere_in_a_value() {
        for text in ["\0", "abcdefghijkl\0", "a\tb\0c", "0123456789abcdef\0"] {
            let mut out = b"kept".to_vec();
            let err = encode_scalar(
                LogicalType::Text,
                text,
                &mut out,
                &mut Vec::new(),
                BytesText::ByteaHex,
            )
            .unwrap_err();
            assert!(err.contains("NUL byte"), "{err}");
        }
        let mut out = Vec::new();
        let err = encode_array(LogicalType::Text, r#"["ok","a\u0000b"]"#, &mut out).unwrap_err();
        assert!(err.contains("NUL byte"), "{err}");
    }

    #[test]
    fn converts_bytes_and_eras() {
        assert_eq!(scalar(LogicalType::Bytes, "AAH/"), "\\\\x0001ff");
        assert_eq!(scalar(LogicalType::Bytes, ""), "\\\\x");
        assert_eq!(scalar(LogicalType::Date, "0000-01-01"), "0001-01-01 BC");
        assert_eq!(
            scalar(LogicalType::Timestamp, "-0043-03-15 12:00:00"),
            "0044-03-15 12:00:00 BC"
        );
        assert_eq!(scalar(LogicalType::Date, "-infinity"), "-infinity");
        assert_eq!(scalar(LogicalType::Date, "2024-02-29"), "2024-02-29");
        let mut out = Vec::new();
        let escapes = BytesText::CopyEscapes;
        assert!(
            encode_scalar(LogicalType::Bytes, "!!", &mut out, &mut Vec::new(), escapes).is_err()
        );
    }

    #[test]
    fn bytes_for_cockroach_are_copy_escapes() {
        let mut out = Vec::new();
        // 0x00 0x01 'A' '\\' 0xff 'x' '0'
        let b64 = base64::engine::general_purpose::STANDARD
            .encode([0u8, 1, b'A', b'\\', 0xff, b'x', b'0']);
        encode_scalar(
            LogicalType::Bytes,
            &b64,
            &mut out,
            &mut Vec::new(),
            BytesText::CopyEscapes,
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), r"\x00\x01A\x5c\xffx0");
        let mut out = Vec::new();
        encode_scalar(
            LogicalType::Bytes,
            "",
            &mut out,
            &mut Vec::new(),
            BytesText::CopyEscapes,
        )
        .unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn builds_array_literals() {
        assert_eq!(
            array(
                LogicalType::Text,
                r#"["a",null,"b,c","q\"x","NULL","back\\slash"]"#
            ),
            r#"{"a",NULL,"b,c","q\\"x","NULL","back\\\\slash"}"#
        );
        assert_eq!(
            array(LogicalType::Int, "[[1,2],[3,null]]"),
            r#"{{"1","2"},{"3",NULL}}"#
        );
        assert_eq!(array(LogicalType::Text, "[]"), "{}");
        assert_eq!(array(LogicalType::Bytes, r#"["AAE="]"#), r#"{"\\\\x0001"}"#);
    }

    #[test]
    fn encodes_rows() {
        let header: TableHeader = serde_json::from_value(serde_json::json!({
            "table": {"schema": "s", "name": "t"},
            "columns": [
                {"name": "id", "source_type": "int", "target_type": "INT8", "type": "int", "nullable": false},
                {"name": "tags", "source_type": "text[]", "target_type": "TEXT[]", "type": "text", "array_dims": 1, "nullable": true}
            ],
            "slice": {"table": {"schema": "s", "name": "t"}}
        }))
        .unwrap();
        let mut enc = RowEncoder::new(&header);
        let mut out = Vec::new();
        enc.encode_row([Field::Str("1"), Field::Array(r#"["x"]"#)], &mut out)
            .unwrap();
        enc.encode_row([Field::Str("2"), Field::Null], &mut out)
            .unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "1\t{\"x\"}\n2\t\\N\n"
        );
        let err = enc.encode_row([Field::Str("3")], &mut out).unwrap_err();
        assert!(err.to_string().contains("tags"), "{err}");
        assert_eq!(out.len(), 13, "a failed row leaves nothing behind");
    }
}
