//! COPY text output to stream rows: the hot path of a PostgreSQL dump.
//!
//! The dump sets the session so that COPY's text output is already nearly
//! the stream form (ISO dates, ISO 8601 intervals, UTC, shortest exact
//! floats, hex bytea; see [`super::SESSION_SETTINGS`]). What is left is
//! done here, value by value, straight into the output buffer:
//!
//! - COPY escapes (`\N` NULL, `\t`, `\n`, `\\`, octal `\ddd`...) undone;
//! - `t`/`f` to `true`/`false`;
//! - timestamptz `+00` to `Z`, BC years to astronomical years;
//! - bytea `\x...` hex to base64;
//! - array literals to JSON arrays (elements converted the same way).
//!
//! A value without a backslash (nearly all of them) is neither copied nor
//! allocated: it is hashed and JSON-escaped from the COPY buffer itself.
//! Chunks from the server may split lines anywhere; a partial line waits in
//! a small carry-over buffer.

use std::io::Write;

use base64::Engine as _;

use crate::digest::{DigestColumn, RowHasher, SectionDigest};
use crate::stream::{push_json_escaped, push_json_string, StreamWriter};
use crate::value::era;

/// The conversion a column's values need beyond unescaping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// Already the stream form.
    Plain,
    /// `t`/`f`.
    Bool,
    /// Date or timestamp: BC years.
    Era,
    /// `+00` to `Z`, and BC years.
    Timestamptz,
    /// `\x` hex to base64.
    Bytea,
    /// JSON (`json` or `jsonb`) as it is, checked for `\u0000`, which a
    /// `json` value may hold and JSONB cannot.
    Json,
    /// An exact decimal: as it is, unless it is in scientific notation,
    /// which CockroachDB prints for a DECIMAL stored with a positive
    /// exponent (`1E+4`: its DECIMAL is an `apd.Decimal`, whose text form
    /// switches to an exponent then) and PostgreSQL never does. Target
    /// rows are read with this decoder (verify, the rollback export), and
    /// the stream's decimals are plain, so that one is written out, its
    /// scale kept (`1.50E+1` is `15.0`).
    Decimal,
}

/// How to decode one column.
#[derive(Clone, Debug)]
pub struct ColumnDecoder {
    pub name: String,
    pub kind: ValueKind,
    /// The value is an array literal of `kind` elements.
    pub array: bool,
    pub digest: DigestColumn,
}

/// A value that could not be decoded, or the output failing.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// `row` says which row: `row with primary key (id)=(100)` when the
    /// decoder knows the key, the row's position in the section otherwise.
    #[error("table {table}, {row}, column {column}: {message}")]
    Value {
        table: String,
        row: String,
        column: String,
        message: String,
    },
    #[error("table {table}, {row}: {message}")]
    Row {
        table: String,
        row: String,
        message: String,
    },
    #[error("writing the stream: {0}")]
    Io(#[from] std::io::Error),
}

/// Decodes the COPY text output of one section into stream rows and keeps
/// the section's count and digest over exactly the values written.
pub struct RowDecoder {
    table: String,
    columns: Vec<ColumnDecoder>,
    /// Positions of the primary key's columns, in key order, for naming a
    /// refused row by its key.
    key: Vec<usize>,
    carry: Vec<u8>,
    unescaped: Vec<u8>,
    scratch: String,
    bytes: Vec<u8>,
    array_json: Vec<u8>,
    elem_buf: String,
    hasher: RowHasher,
    digest: SectionDigest,
}

impl RowDecoder {
    pub fn new(table: impl Into<String>, columns: Vec<ColumnDecoder>) -> Self {
        RowDecoder {
            table: table.into(),
            columns,
            key: Vec::new(),
            carry: Vec::new(),
            unescaped: Vec::new(),
            scratch: String::new(),
            bytes: Vec::new(),
            array_json: Vec::new(),
            elem_buf: String::new(),
            hasher: RowHasher::default(),
            digest: SectionDigest::default(),
        }
    }

    /// Names refused rows by these columns (positions, in key order)
    /// rather than by their position in the section.
    pub fn with_key(mut self, key: Vec<usize>) -> Self {
        self.key = key;
        self
    }

    /// Count and digest of the rows written so far.
    pub fn digest(&self) -> SectionDigest {
        self.digest
    }

    /// Decodes a chunk of COPY output, writing every complete row.
    pub fn feed<W: Write>(
        &mut self,
        chunk: &[u8],
        out: &mut StreamWriter<W>,
    ) -> Result<(), CopyError> {
        let mut rest = chunk;
        if !self.carry.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(pos) => {
                    let mut line = std::mem::take(&mut self.carry);
                    line.extend_from_slice(&rest[..pos]);
                    let result = self.line(&line, out);
                    line.clear();
                    self.carry = line;
                    result?;
                    rest = &rest[pos + 1..];
                }
                None => {
                    self.carry.extend_from_slice(rest);
                    return Ok(());
                }
            }
        }
        while let Some(pos) = memchr::memchr(b'\n', rest) {
            self.line(&rest[..pos], out)?;
            rest = &rest[pos + 1..];
        }
        self.carry.extend_from_slice(rest);
        Ok(())
    }

    /// Checks that the output ended on a line boundary.
    pub fn finish(&self) -> Result<(), CopyError> {
        if self.carry.is_empty() {
            Ok(())
        } else {
            Err(self.row_error("COPY output ended in the middle of a row"))
        }
    }

    fn row_error(&self, message: impl Into<String>) -> CopyError {
        CopyError::Row {
            table: self.table.clone(),
            row: format!("row {}", self.digest.rows + 1),
            message: message.into(),
        }
    }

    fn line<W: Write>(&mut self, line: &[u8], out: &mut StreamWriter<W>) -> Result<(), CopyError> {
        let RowDecoder {
            table,
            columns,
            key,
            unescaped,
            scratch,
            bytes,
            array_json,
            elem_buf,
            hasher,
            digest,
            ..
        } = self;
        let row_no = digest.rows + 1;
        let locate = || locate_row(columns, key, line, row_no);
        let value_error = |column: &ColumnDecoder, message: String| CopyError::Value {
            table: table.clone(),
            row: locate(),
            column: column.name.clone(),
            message,
        };
        // One UTF-8 check for the line: fields are then slices of it. A
        // field with escapes is checked after unescaping (an octal escape
        // can make any byte); a line that fails is checked field by field,
        // so that the error names the column.
        let line_text = std::str::from_utf8(line).ok();
        let mut next_field = Some(0);
        let mut row = out.row();
        for column in columns.iter() {
            let Some(start) = next_field else {
                return Err(CopyError::Row {
                    table: table.clone(),
                    row: locate(),
                    message: format!(
                        "COPY row has fewer values than the {} columns",
                        columns.len()
                    ),
                });
            };
            // A raw tab is always a separator: a tab in a value is escaped.
            let rest = &line[start..];
            let (len, escaped) = match memchr::memchr2(b'\t', b'\\', rest) {
                Some(i) if rest[i] == b'\t' => (i, false),
                Some(i) => (
                    memchr::memchr(b'\t', &rest[i..]).map_or(rest.len(), |j| i + j),
                    true,
                ),
                None => (rest.len(), false),
            };
            let end = start + len;
            next_field = (end < line.len()).then_some(end + 1);
            let raw = &line[start..end];
            if raw == b"\\N" {
                row.null();
                hasher.value(column.digest, None);
                continue;
            }
            let invalid = |e: std::str::Utf8Error| {
                value_error(
                    column,
                    format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1),
                )
            };
            let text: &str = if escaped {
                unescape_copy(raw, unescaped);
                std::str::from_utf8(unescaped).map_err(invalid)?
            } else if let Some(line_text) = line_text {
                &line_text[start..end]
            } else {
                std::str::from_utf8(raw).map_err(invalid)?
            };
            if column.array {
                array_json.clear();
                let kind = column.kind;
                let mut element = |elem: &str, out: &mut Vec<u8>| -> Result<(), String> {
                    let value = convert(kind, elem, scratch, bytes)?;
                    push_json_string(out, value.unwrap_or(elem));
                    Ok(())
                };
                super::array::to_json(text, array_json, elem_buf, &mut element)
                    .map_err(|m| value_error(column, m))?;
                let json = std::str::from_utf8(array_json).expect("built from UTF-8 strings");
                row.raw_json(json);
                hasher.value(column.digest, Some(json));
            } else {
                let value = convert(column.kind, text, scratch, bytes)
                    .map_err(|m| value_error(column, m))?;
                let value = value.unwrap_or(text);
                row.escaped_with(|buf| push_json_escaped(buf, value.as_bytes()));
                hasher.value(column.digest, Some(value));
            }
        }
        if next_field.is_some() {
            return Err(CopyError::Row {
                table: table.clone(),
                row: locate(),
                message: format!(
                    "COPY row has more values than the {} columns",
                    columns.len()
                ),
            });
        }
        row.finish();
        digest.add_row(hasher.finish_row());
        out.maybe_flush()?;
        Ok(())
    }
}

/// Which row a COPY line is, for an error: by its primary key when `key`
/// names columns the line has, by its position in the section otherwise.
fn locate_row(columns: &[ColumnDecoder], key: &[usize], line: &[u8], row_no: u64) -> String {
    let fields: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
    if key.is_empty() || key.iter().any(|&i| i >= fields.len() || i >= columns.len()) {
        return format!("row {row_no} of the section");
    }
    let mut unescaped = Vec::new();
    let values: Vec<String> = key
        .iter()
        .map(|&i| {
            if fields[i] == b"\\N" {
                return "NULL".to_string();
            }
            unescape_copy(fields[i], &mut unescaped);
            String::from_utf8_lossy(&unescaped).into_owned()
        })
        .collect();
    let names: Vec<&str> = key.iter().map(|&i| columns[i].name.as_str()).collect();
    format!(
        "row with primary key ({})=({})",
        names.join(", "),
        values.join(", ")
    )
}

/// Converts one value (or array element) of `kind`; `Ok(None)` when the
/// text is already the stream form.
fn convert<'a>(
    kind: ValueKind,
    text: &str,
    scratch: &'a mut String,
    bytes: &mut Vec<u8>,
) -> Result<Option<&'a str>, String> {
    match kind {
        ValueKind::Plain => Ok(None),
        ValueKind::Decimal => {
            if memchr::memchr2(b'e', b'E', text.as_bytes()).is_none() {
                return Ok(None);
            }
            match crate::value::canonical_decimal_scaled(text) {
                std::borrow::Cow::Owned(plain) => {
                    *scratch = plain;
                    Ok(Some(scratch))
                }
                std::borrow::Cow::Borrowed(_) => Err(format!(
                    "decimal {text:?} cannot be written in plain notation"
                )),
            }
        }
        ValueKind::Json => match crate::value::nul_escape_at(text) {
            None => Ok(None),
            Some(at) => Err(crate::value::nul_escape_message(at)),
        },
        ValueKind::Bool => {
            scratch.clear();
            scratch.push_str(match text {
                "t" => "true",
                "f" => "false",
                other => return Err(format!("unexpected boolean {other:?}")),
            });
            Ok(Some(scratch))
        }
        ValueKind::Era => match era::from_pg_era(text) {
            Some(converted) => {
                *scratch = converted;
                Ok(Some(scratch))
            }
            None if text.ends_with(" BC") => Err(format!("cannot read the BC date {text:?}")),
            None => Ok(None),
        },
        ValueKind::Timestamptz => {
            scratch.clear();
            match era::from_pg_era(text) {
                Some(converted) => scratch.push_str(&converted),
                None if text.ends_with(" BC") => {
                    return Err(format!("cannot read the BC timestamp {text:?}"))
                }
                None => scratch.push_str(text),
            }
            if let Some(body) = scratch.strip_suffix("+00") {
                let len = body.len();
                scratch.truncate(len);
                scratch.push('Z');
            }
            Ok(Some(scratch))
        }
        ValueKind::Bytea => {
            let hex = text.strip_prefix("\\x").ok_or_else(|| {
                "bytea value is not in hex format (bytea_output = hex)".to_string()
            })?;
            bytes.clear();
            decode_hex(hex.as_bytes(), bytes)
                .ok_or_else(|| "bytea value has invalid hex digits".to_string())?;
            scratch.clear();
            base64::engine::general_purpose::STANDARD.encode_string(&*bytes, scratch);
            Ok(Some(scratch))
        }
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode_hex(hex: &[u8], out: &mut Vec<u8>) -> Option<()> {
    if hex.len() % 2 != 0 {
        return None;
    }
    out.reserve(hex.len() / 2);
    for pair in hex.chunks_exact(2) {
        out.push(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?);
    }
    Some(())
}

/// Undoes COPY text escapes into `out` (cleared first).
pub fn unescape_copy(raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
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
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
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
            b'x' if i < raw.len() && hex_digit(raw[i]).is_some() => {
                let mut value = hex_digit(raw[i]).expect("checked");
                i += 1;
                if let Some(d) = raw.get(i).and_then(|&b| hex_digit(b)) {
                    value = value << 4 | d;
                    i += 1;
                }
                out.push(value);
            }
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{Item, Record, StreamReader};
    use crate::value::LogicalType;

    fn col(name: &str, kind: ValueKind, logical: LogicalType, array: bool) -> ColumnDecoder {
        ColumnDecoder {
            name: name.into(),
            kind,
            array,
            digest: DigestColumn {
                logical,
                padded: false,
                is_array: array,
            },
        }
    }

    fn decode(
        columns: Vec<ColumnDecoder>,
        copy: &[u8],
        chunk: usize,
    ) -> Result<(String, SectionDigest), CopyError> {
        let mut decoder = RowDecoder::new("public.t", columns);
        let mut w = StreamWriter::new(Vec::new());
        for part in copy.chunks(chunk) {
            decoder.feed(part, &mut w)?;
        }
        decoder.finish()?;
        Ok((
            String::from_utf8(w.into_inner().unwrap()).unwrap(),
            decoder.digest(),
        ))
    }

    #[test]
    fn converts_values_across_chunk_boundaries() {
        let columns = vec![
            col("b", ValueKind::Bool, LogicalType::Bool, false),
            col("t", ValueKind::Plain, LogicalType::Text, false),
            col(
                "ts",
                ValueKind::Timestamptz,
                LogicalType::Timestamptz,
                false,
            ),
            col("d", ValueKind::Era, LogicalType::Date, false),
            col("x", ValueKind::Bytea, LogicalType::Bytes, false),
            col("a", ValueKind::Plain, LogicalType::Text, true),
        ];
        let copy = b"t\ta\\tb\\\\c\\n\"\\101\t2020-01-02 03:04:05.5+00\t0044-03-15 BC\t\\\\x00ff\t{x,NULL,\"a\\\\\\\\b\"}\n\
f\t\\N\t0001-01-01 00:00:00+00 BC\tinfinity\t\\\\x\t{}\n";
        for chunk in [1, 3, 7, 1000] {
            let (out, digest) = decode(columns.clone(), copy, chunk).unwrap();
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(
                lines[0],
                r#"["true","a\tb\\c\n\"A","2020-01-02 03:04:05.5Z","-0043-03-15","AP8=",["x",null,"a\\b"]]"#
            );
            assert_eq!(
                lines[1],
                r#"["false",null,"0000-01-01 00:00:00Z","infinity","",[]]"#
            );
            assert_eq!(digest.rows, 2);
        }
    }

    #[test]
    fn cockroach_scientific_decimals_become_plain_with_their_scale() {
        let columns = vec![
            col("n", ValueKind::Decimal, LogicalType::Decimal, false),
            col("a", ValueKind::Decimal, LogicalType::Decimal, true),
        ];
        let scientific = b"1E+4\t{1.50E+1,-2.5e-3,NULL}\n12.300\t{NaN}\n";
        let plain = b"10000\t{15.0,-0.0025,NULL}\n12.300\t{NaN}\n";
        let (out, digest) = decode(columns.clone(), scientific, 5).unwrap();
        assert_eq!(
            out,
            "[\"10000\",[\"15.0\",\"-0.0025\",null]]\n[\"12.300\",[\"NaN\"]]\n"
        );
        let (same, plain_digest) = decode(columns.clone(), plain, 1000).unwrap();
        assert_eq!(out, same);
        assert_eq!(digest, plain_digest);
        let err = decode(columns, b"1E+x\t\\N\n", 1000).unwrap_err();
        assert!(err.to_string().contains("column n"), "{err}");
    }

    #[test]
    fn digest_matches_what_the_reader_recomputes() {
        use crate::stream::{Column, SectionEnd, Shard, Slice, TableHeader, TableName};
        let columns = vec![
            col("n", ValueKind::Plain, LogicalType::Decimal, false),
            col("a", ValueKind::Bool, LogicalType::Bool, true),
        ];
        let mk = |name: &str, logical, dims| Column {
            name: name.into(),
            source_type: "x".into(),
            target_type: "X".into(),
            logical,
            array_dims: dims,
            nullable: true,
            pk: None,
            default: None,
            target_default: None,
            enum_type: None,
            domain: None,
            charset: None,
            collation: None,
            generation: None,
            padded: false,
        };
        let table = TableName::new("public", "t");
        let header = TableHeader {
            table: table.clone(),
            target: None,
            columns: vec![
                mk("n", LogicalType::Decimal, 0),
                mk("a", LogicalType::Bool, 1),
            ],
            slice: Slice {
                phase: String::new(),
                table: table.clone(),
                filter: None,
                target_filter: None,
                shard: Shard::whole(),
            },
            indexes: vec![],
            foreign_keys: vec![],
            checks: vec![],
            sequences: vec![],
            estimated_rows: None,
            notes: vec![],
            checksum: None,
        };
        let mut decoder = RowDecoder::new("public.t", columns);
        let mut w = StreamWriter::new(Vec::new());
        w.record(&Record::Table(Box::new(header))).unwrap();
        decoder
            .feed(b"1.50\t{t,f,NULL}\nNaN\t\\N\n", &mut w)
            .unwrap();
        let d = decoder.digest();
        w.record(&Record::End(SectionEnd {
            table,
            shard: Shard::whole(),
            rows: d.rows,
            digest: d.hex(),
            changes: vec![],
            checksum: None,
        }))
        .unwrap();
        let bytes = w.into_inner().unwrap();
        let mut reader = StreamReader::new(&bytes[..]);
        let mut n = 0;
        while let Some(item) = reader.next().unwrap() {
            if let Item::Row(_) = item {
                n += 1;
            }
        }
        assert_eq!(n, 2);
    }

    #[test]
    fn errors_name_table_row_and_column() {
        let columns = vec![col("a", ValueKind::Plain, LogicalType::Int, true)];
        let err = decode(columns.clone(), b"{1}\n[0:1]={1,2}\n", 100)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("public.t") && err.contains("row 2") && err.contains("column a"),
            "{err}"
        );
        let err = decode(columns.clone(), b"{1}\t2\n", 100)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more values"), "{err}");
        let err = decode(columns, b"{1}", 100).unwrap_err().to_string();
        assert!(err.contains("middle of a row"), "{err}");
    }

    #[test]
    fn unescapes_octal_and_hex() {
        let mut out = Vec::new();
        unescape_copy(b"\\101\\x42\\7\\\\", &mut out);
        assert_eq!(out, b"AB\x07\\");
    }
}
