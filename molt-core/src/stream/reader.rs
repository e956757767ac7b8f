//! Reading the stream, one line at a time, in bounded memory.
//!
//! The reader owns one line buffer and one row buffer and reuses both, so a
//! 10 GB stream costs the memory of its longest line, and a line longer than
//! [`ReaderOptions::max_line_bytes`] is refused before it is read whole.
//!
//! It also checks the stream's structure, since every consumer needs the
//! same checks: rows only inside a section, the right number of values per
//! row, and at each `end` record the count and digest of what arrived.

use std::io::BufRead;

use super::checksum::{LineChecksum, LINES_BLAKE3};
use super::record::{Record, TableHeader, CLOSE_SINCE_MINOR, FORMAT_MAJOR, KNOWN_TYPES};
use crate::digest::{DigestColumn, RowHasher, SectionDigest};

/// A stream error, always tied to the line it was found on.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct StreamError {
    pub line: u64,
    pub message: String,
}

/// The default cap on one line: large enough for a 64 MB BLOB in base64,
/// small enough that a corrupt stream cannot exhaust memory.
pub const DEFAULT_MAX_LINE_BYTES: usize = 256 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct ReaderOptions {
    pub max_line_bytes: usize,
    /// Check each section against its `end` record: the row count, and
    /// either the transport checksum (when the header announces one) or
    /// the digest, recomputed from the rows.
    pub check_digests: bool,
    /// Recompute the digest even of sections that carry a transport
    /// checksum, which then is checked as well. It catches a writer whose
    /// digest disagrees with its own rows, at about 40% more CPU.
    pub recompute_digests: bool,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            check_digests: true,
            recompute_digests: false,
        }
    }
}

/// One item read from the stream.
#[derive(Debug)]
pub enum Item<'a> {
    Record(Record),
    Row(&'a RowBuf),
}

/// One value of a row, borrowed from the reader's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field<'a> {
    Null,
    /// A scalar in its stream text form.
    Str(&'a str),
    /// An array, as JSON text.
    Array(&'a str),
}

impl<'a> Field<'a> {
    /// The value as text, `None` for NULL.
    pub fn as_text(&self) -> Option<&'a str> {
        match *self {
            Field::Null => None,
            Field::Str(s) | Field::Array(s) => Some(s),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Null,
    /// Unescaped into `RowBuf::data`.
    Str,
    /// A string without escapes, or a number or boolean literal: a span of
    /// the line itself, so the common value is never copied.
    LineStr,
    LineArray,
}

/// The values of the current row: spans of the row's line where the value
/// is written as-is, and of one reused buffer where it had escapes.
#[derive(Debug, Default)]
pub struct RowBuf {
    line: String,
    data: String,
    spans: Vec<(Kind, usize, usize)>,
}

impl RowBuf {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    #[inline]
    pub fn get(&self, index: usize) -> Option<Field<'_>> {
        self.spans.get(index).map(|&(kind, start, end)| match kind {
            Kind::Null => Field::Null,
            Kind::Str => Field::Str(&self.data[start..end]),
            Kind::LineStr => Field::Str(&self.line[start..end]),
            Kind::LineArray => Field::Array(&self.line[start..end]),
        })
    }

    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = Field<'_>> + '_ {
        (0..self.len()).map(move |i| self.get(i).expect("in range"))
    }
}

/// The section currently open.
struct Section {
    header: Box<TableHeader>,
    columns: Vec<DigestColumn>,
    /// Rows counted, and their digest when `recompute` is set.
    digest: SectionDigest,
    recompute: bool,
    checksum: Option<LineChecksum>,
    start_line: u64,
}

/// Reads a stream from any buffered reader.
pub struct StreamReader<R> {
    input: R,
    options: ReaderOptions,
    line: Vec<u8>,
    line_no: u64,
    row: RowBuf,
    hasher: RowHasher,
    section: Option<Section>,
    bytes_read: u64,
    /// The header's format version asks for a close record.
    close_required: bool,
    /// The line of the close record, once read.
    closed_at: Option<u64>,
    /// Sections whose end record was read.
    sections_ended: u64,
}

impl<R: BufRead> StreamReader<R> {
    pub fn new(input: R) -> Self {
        Self::with_options(input, ReaderOptions::default())
    }

    pub fn with_options(input: R, options: ReaderOptions) -> Self {
        StreamReader {
            input,
            options,
            line: Vec::with_capacity(64 * 1024),
            line_no: 0,
            row: RowBuf::default(),
            hasher: RowHasher::default(),
            section: None,
            bytes_read: 0,
            close_required: false,
            closed_at: None,
            sections_ended: 0,
        }
    }

    /// The line number of the item last returned (1-based).
    pub fn line_number(&self) -> u64 {
        self.line_no
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The header of the section being read, if one is open.
    pub fn section(&self) -> Option<&TableHeader> {
        self.section.as_ref().map(|s| &*s.header)
    }

    fn error(&self, message: impl Into<String>) -> StreamError {
        StreamError {
            line: self.line_no,
            message: message.into(),
        }
    }

    /// Reads the next item; `Ok(None)` at a clean end of stream.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Item<'_>>, StreamError> {
        loop {
            if !self.read_line()? {
                if let Some(section) = &self.section {
                    return Err(self.error(format!(
                        "stream ended inside the section of {} shard {} (opened on line {}, {} rows so far): the end record is missing, so the stream was cut short",
                        section.header.table, section.header.slice.shard, section.start_line, section.digest.rows
                    )));
                }
                if self.close_required && self.closed_at.is_none() {
                    return Err(self.error(format!(
                        "stream ended after {} whole section(s) without its close record: the producer stopped between two sections, or the stream was cut there, so sections may be missing",
                        self.sections_ended
                    )));
                }
                return Ok(None);
            }
            let first = self.line.iter().position(|b| !b.is_ascii_whitespace());
            let Some(first) = first else { continue };
            if let Some(at) = self.closed_at {
                return Err(self.error(format!(
                    "data after the stream's close record (line {at}): two streams concatenated, or a producer that wrote on after closing"
                )));
            }
            match self.line[first] {
                b'[' => {
                    self.parse_row(first)?;
                    return Ok(Some(Item::Row(&self.row)));
                }
                b'{' => {
                    let record = self.parse_record()?;
                    return Ok(Some(Item::Record(record)));
                }
                other => {
                    return Err(self.error(format!(
                        "expected a JSON object (record) or array (row), found {:?}",
                        char::from(other)
                    )))
                }
            }
        }
    }

    /// Reads one line into `self.line`, without its terminator. Refuses to
    /// buffer more than the cap.
    fn read_line(&mut self) -> Result<bool, StreamError> {
        self.line.clear();
        let mut saw_any = false;
        loop {
            let available = match self.input.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(StreamError {
                        line: self.line_no + 1,
                        message: format!("reading input: {e}"),
                    })
                }
            };
            if available.is_empty() {
                if saw_any {
                    self.line_no += 1;
                }
                return Ok(saw_any);
            }
            saw_any = true;
            let (take, done) = match memchr::memchr(b'\n', available) {
                Some(pos) => (pos + 1, true),
                None => (available.len(), false),
            };
            if self.line.len() + take > self.options.max_line_bytes.saturating_add(2) {
                self.line_no += 1;
                return Err(self.error(format!(
                    "line is longer than the limit of {} bytes (--max-line-bytes)",
                    self.options.max_line_bytes
                )));
            }
            self.line.extend_from_slice(&available[..take]);
            self.input.consume(take);
            self.bytes_read += take as u64;
            if done {
                self.line_no += 1;
                self.line.pop();
                if self.line.last() == Some(&b'\r') {
                    self.line.pop();
                }
                return Ok(true);
            }
        }
    }

    fn parse_record(&mut self) -> Result<Record, StreamError> {
        #[derive(serde::Deserialize)]
        struct Envelope {
            #[serde(rename = "type")]
            kind: Option<String>,
            version: Option<String>,
        }
        let text = std::str::from_utf8(&self.line)
            .map_err(|e| self.error(format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1)))?;
        let envelope: Envelope =
            serde_json::from_str(text).map_err(|e| self.error(format!("malformed record: {e}")))?;
        let kind = envelope
            .kind
            .ok_or_else(|| self.error("record has no \"type\" field"))?;
        if !KNOWN_TYPES.contains(&kind.as_str()) {
            return Err(self.error(format!(
                "unknown record type {kind:?} (this molt reads stream format {}; known types: {})",
                super::record::FORMAT_VERSION,
                KNOWN_TYPES.join(", ")
            )));
        }
        if kind == "stream" {
            let version = envelope.version.unwrap_or_default();
            let major = version
                .split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok());
            let minor = version
                .split('.')
                .nth(1)
                .and_then(|m| m.parse::<u32>().ok())
                .unwrap_or(0);
            self.close_required = major == Some(FORMAT_MAJOR) && minor >= CLOSE_SINCE_MINOR;
            match major {
                Some(m) if m <= FORMAT_MAJOR => {}
                Some(_) => {
                    return Err(self.error(format!(
                        "stream format version {version} is newer than this molt reads ({FORMAT_MAJOR}.x): upgrade molt"
                    )))
                }
                None => return Err(self.error(format!("stream header has an invalid version {version:?}"))),
            }
        }
        let record: Record = serde_json::from_str(text)
            .map_err(|e| self.error(format!("malformed {kind} record: {e}")))?;
        self.track(&record)?;
        Ok(record)
    }

    /// Section bookkeeping for a non-row record.
    fn track(&mut self, record: &Record) -> Result<(), StreamError> {
        match record {
            Record::Table(header) => {
                if let Some(open) = &self.section {
                    return Err(self.error(format!(
                        "table header for {} while the section of {} (line {}) is still open: its end record is missing",
                        header.table, open.header.table, open.start_line
                    )));
                }
                if header.columns.is_empty() {
                    return Err(
                        self.error(format!("table header for {} has no columns", header.table))
                    );
                }
                let checksum = (self.options.check_digests
                    && header.checksum.as_deref() == Some(LINES_BLAKE3))
                .then(LineChecksum::default);
                self.section = Some(Section {
                    columns: header.columns.iter().map(DigestColumn::from).collect(),
                    header: header.clone(),
                    digest: SectionDigest::default(),
                    recompute: self.options.check_digests
                        && (checksum.is_none() || self.options.recompute_digests),
                    checksum,
                    start_line: self.line_no,
                });
            }
            Record::End(end) => {
                let Some(section) = self.section.take() else {
                    return Err(self.error(format!(
                        "end record for {} without a table header",
                        end.table
                    )));
                };
                if end.table != section.header.table
                    || end.shard.index != section.header.slice.shard.index
                {
                    return Err(self.error(format!(
                        "end record for {} shard {} closes the section of {} shard {}",
                        end.table, end.shard, section.header.table, section.header.slice.shard
                    )));
                }
                self.sections_ended += 1;
                if !self.options.check_digests {
                    return Ok(());
                }
                let got = section.digest;
                if got.rows != end.rows {
                    return Err(self.error(format!(
                        "section {} shard {} does not match its end record: received {} rows, the end record says {} rows",
                        end.table, end.shard, got.rows, end.rows
                    )));
                }
                if let Some(checksum) = section.checksum {
                    let Some(claimed) = &end.checksum else {
                        return Err(self.error(format!(
                            "section {} shard {}: its table header announces a {LINES_BLAKE3} checksum, but the end record has none",
                            end.table, end.shard
                        )));
                    };
                    let received = checksum.finish(end);
                    if received != *claimed {
                        return Err(self.error(format!(
                            "section {} shard {} does not match its end record: its rows, row count, digest or changes are not byte for byte what the writer wrote (checksum {received}, the end record says {claimed}). If a tool re-wrote the rows on purpose, remove the header's \"checksum\" field so that the digest is recomputed",
                            end.table, end.shard
                        )));
                    }
                }
                if section.recompute {
                    let expected = SectionDigest::parse_hex(&end.digest);
                    if expected != Some(got.sum) {
                        return Err(self.error(format!(
                            "section {} shard {} does not match its end record: received {} rows with digest {}, the end record says {} rows with digest {}",
                            end.table,
                            end.shard,
                            got.rows,
                            got.hex(),
                            end.rows,
                            end.digest
                        )));
                    }
                }
            }
            Record::Close => {
                if let Some(open) = &self.section {
                    return Err(self.error(format!(
                        "close record while the section of {} (line {}) is still open: its end record is missing",
                        open.header.table, open.start_line
                    )));
                }
                self.closed_at = Some(self.line_no);
            }
            _ => {}
        }
        Ok(())
    }

    fn parse_row(&mut self, start: usize) -> Result<(), StreamError> {
        // The line moves into the row (its values are spans of it) and the
        // previous row's line becomes the next read buffer: no copy.
        let recycled = std::mem::take(&mut self.row.line).into_bytes();
        let line = std::mem::replace(&mut self.line, recycled);
        match String::from_utf8(line) {
            Ok(text) => self.row.line = text,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                self.line = e.into_bytes();
                return Err(self.error(format!("invalid UTF-8 at byte {} of the row", valid + 1)));
            }
        }
        self.row.data.clear();
        self.row.spans.clear();
        let RowBuf { line, data, spans } = &mut self.row;
        if let Err(message) = parse_row_into(line, start, data, spans) {
            return Err(self.error(format!("malformed row: {message}")));
        }
        let Some(section) = self.section.as_mut() else {
            return Err(StreamError {
                line: self.line_no,
                message: "row outside a section: no table header before it".into(),
            });
        };
        if self.row.len() != section.columns.len() {
            return Err(StreamError {
                line: self.line_no,
                message: format!(
                    "row has {} values but table {} has {} columns",
                    self.row.len(),
                    section.header.table,
                    section.columns.len()
                ),
            });
        }
        if let Some(checksum) = &mut section.checksum {
            checksum.line(self.row.line.as_bytes());
        }
        if section.recompute {
            for (i, column) in section.columns.iter().enumerate() {
                let value = self.row.get(i).expect("length checked").as_text();
                self.hasher.value(*column, value);
            }
            section.digest.add_row(self.hasher.finish_row());
        } else {
            section.digest.rows += 1;
        }
        Ok(())
    }
}

/// Parses a row line (`["a",null,["x"]]`) into `row`. Scalars may also be
/// JSON numbers or booleans, kept as their literal text.
fn parse_row_into(
    text: &str,
    start: usize,
    data: &mut String,
    spans: &mut Vec<(Kind, usize, usize)>,
) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut pos = start + 1;
    let skip_ws = |pos: &mut usize| {
        while *pos < bytes.len() && matches!(bytes[*pos], b' ' | b'\t' | b'\r' | b'\n') {
            *pos += 1;
        }
    };
    skip_ws(&mut pos);
    if bytes.get(pos) == Some(&b']') {
        pos += 1;
    } else {
        loop {
            skip_ws(&mut pos);
            let Some(&b) = bytes.get(pos) else {
                return Err("unexpected end of line inside the row".into());
            };
            match b {
                b'"' => match plain_string_end(bytes, pos) {
                    Some(close) => {
                        spans.push((Kind::LineStr, pos + 1, close));
                        pos = close + 1;
                    }
                    None => {
                        let begin = data.len();
                        pos = unescape_string(text, pos, data)?;
                        spans.push((Kind::Str, begin, data.len()));
                    }
                },
                b'n' if bytes[pos..].starts_with(b"null") => {
                    pos += 4;
                    spans.push((Kind::Null, 0, 0));
                }
                b'[' => {
                    let end = skip_array(bytes, pos)?;
                    if serde_json::from_str::<serde::de::IgnoredAny>(&text[pos..end]).is_err() {
                        return Err(format!("invalid array value at byte {}", pos + 1));
                    }
                    spans.push((Kind::LineArray, pos, end));
                    pos = end;
                }
                b'-' | b'0'..=b'9' | b't' | b'f' => {
                    let end = bytes[pos..]
                        .iter()
                        .position(|c| matches!(c, b',' | b']' | b' ' | b'\t'))
                        .map_or(bytes.len(), |p| pos + p);
                    let literal = &text[pos..end];
                    let valid = literal == "true"
                        || literal == "false"
                        || serde_json::from_str::<serde_json::Number>(literal).is_ok();
                    if !valid {
                        return Err(format!("invalid value {literal:?} at byte {}", pos + 1));
                    }
                    spans.push((Kind::LineStr, pos, end));
                    pos = end;
                }
                other => {
                    return Err(format!(
                        "unexpected {:?} at byte {} (values are strings, arrays or null)",
                        char::from(other),
                        pos + 1
                    ))
                }
            }
            skip_ws(&mut pos);
            match bytes.get(pos) {
                Some(b',') => pos += 1,
                Some(b']') => {
                    pos += 1;
                    break;
                }
                Some(&other) => {
                    return Err(format!(
                        "expected ',' or ']' at byte {}, found {:?}",
                        pos + 1,
                        char::from(other)
                    ))
                }
                None => return Err("unexpected end of line inside the row".into()),
            }
        }
    }
    skip_ws(&mut pos);
    if pos != bytes.len() {
        return Err(format!("unexpected text after the row at byte {}", pos + 1));
    }
    Ok(())
}

/// Where the JSON string starting at `bytes[open] == '"'` closes, when it
/// holds no escape and no control character (the common case); `None`
/// otherwise, for [`unescape_string`] to handle or report.
fn plain_string_end(bytes: &[u8], open: usize) -> Option<usize> {
    let mut pos = super::writer::skip_plain(bytes, open + 1, b'"', b'\\');
    while let Some(&b) = bytes.get(pos) {
        match b {
            b'"' => return Some(pos),
            b'\\' => return None,
            b if b < 0x20 => return None,
            _ => pos += 1,
        }
    }
    None
}

/// Unescapes the JSON string starting at `text[pos] == '"'` into `out`;
/// returns the position after the closing quote.
fn unescape_string(text: &str, mut pos: usize, out: &mut String) -> Result<usize, String> {
    let bytes = text.as_bytes();
    let open = pos;
    pos += 1;
    let mut run_start = pos;
    // The str slices below are split only at ASCII bytes, so they stay on
    // character boundaries.
    loop {
        // Plain text a block at a time, then the special byte in the block.
        pos = super::writer::skip_plain(bytes, pos, b'"', b'\\');
        let Some(rel) = bytes[pos..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        else {
            return Err(format!("unterminated string starting at byte {}", open + 1));
        };
        pos += rel;
        match bytes[pos] {
            b'"' => {
                out.push_str(&text[run_start..pos]);
                return Ok(pos + 1);
            }
            b'\\' => {
                out.push_str(&text[run_start..pos]);
                let Some(&esc) = bytes.get(pos + 1) else {
                    return Err(format!("unterminated escape at byte {}", pos + 1));
                };
                pos += 2;
                match esc {
                    b'"' => out.push('"'),
                    b'\\' => out.push('\\'),
                    b'/' => out.push('/'),
                    b'b' => out.push('\u{8}'),
                    b'f' => out.push('\u{c}'),
                    b'n' => out.push('\n'),
                    b'r' => out.push('\r'),
                    b't' => out.push('\t'),
                    b'u' => {
                        let (ch, next) = parse_unicode_escape(bytes, pos)?;
                        out.push(ch);
                        pos = next;
                    }
                    other => {
                        return Err(format!(
                            "invalid escape \\{} at byte {}",
                            char::from(other),
                            pos - 1
                        ))
                    }
                }
                run_start = pos;
            }
            b'\n' => return Err(format!("raw newline in a string at byte {}", pos + 1)),
            other => {
                return Err(format!(
                    "raw control character 0x{other:02x} in a string at byte {}",
                    pos + 1
                ))
            }
        }
    }
}

fn hex4(bytes: &[u8], pos: usize) -> Result<u32, String> {
    let digits = bytes
        .get(pos..pos + 4)
        .ok_or_else(|| format!("truncated \\u escape at byte {}", pos - 1))?;
    let text = std::str::from_utf8(digits)
        .map_err(|_| format!("invalid \\u escape at byte {}", pos - 1))?;
    u32::from_str_radix(text, 16).map_err(|_| format!("invalid \\u escape at byte {}", pos - 1))
}

fn parse_unicode_escape(bytes: &[u8], pos: usize) -> Result<(char, usize), String> {
    let first = hex4(bytes, pos)?;
    if (0xD800..0xDC00).contains(&first) {
        if bytes.get(pos + 4..pos + 6) != Some(b"\\u") {
            return Err(format!(
                "unpaired surrogate \\u{first:04x} at byte {}",
                pos - 1
            ));
        }
        let second = hex4(bytes, pos + 6)?;
        if !(0xDC00..0xE000).contains(&second) {
            return Err(format!("invalid surrogate pair at byte {}", pos - 1));
        }
        let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
        let ch = char::from_u32(code)
            .ok_or_else(|| format!("invalid code point at byte {}", pos - 1))?;
        return Ok((ch, pos + 10));
    }
    if (0xDC00..0xE000).contains(&first) {
        return Err(format!(
            "unpaired surrogate \\u{first:04x} at byte {}",
            pos - 1
        ));
    }
    let ch =
        char::from_u32(first).ok_or_else(|| format!("invalid code point at byte {}", pos - 1))?;
    Ok((ch, pos + 4))
}

/// Finds the end of the JSON array starting at `bytes[pos] == '['`.
fn skip_array(bytes: &[u8], mut pos: usize) -> Result<usize, String> {
    let open = pos;
    let mut depth = 0usize;
    let mut in_string = false;
    while pos < bytes.len() {
        let b = bytes[pos];
        if in_string {
            match b {
                b'\\' => pos += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' => depth += 1,
                b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(pos + 1);
                    }
                }
                _ => {}
            }
        }
        pos += 1;
    }
    Err(format!("unterminated array starting at byte {}", open + 1))
}
