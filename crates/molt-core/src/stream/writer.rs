//! Writing the stream: records through serde, rows by hand.
//!
//! Rows are written straight into one reused byte buffer, JSON-escaping each
//! value in place, because rows are nearly all of a stream and going through
//! `serde_json::Value` would allocate for every value.

use std::io::Write;

use super::record::Record;

/// Flush to the underlying writer once this much is buffered.
const FLUSH_AT: usize = 256 * 1024;

/// Writes records and rows as NDJSON.
pub struct StreamWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    bytes_written: u64,
}

impl<W: Write> StreamWriter<W> {
    pub fn new(out: W) -> Self {
        StreamWriter { out, buf: Vec::with_capacity(FLUSH_AT + 64 * 1024), bytes_written: 0 }
    }

    /// Writes one non-row record.
    pub fn record(&mut self, record: &Record) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.buf, record).map_err(std::io::Error::other)?;
        self.buf.push(b'\n');
        self.maybe_flush()
    }

    /// Starts a row; values are appended with the returned builder.
    pub fn row(&mut self) -> RowBuilder<'_> {
        RowBuilder::new(&mut self.buf)
    }

    /// Appends bytes that already hold complete lines (a section buffered
    /// by a parallel worker).
    pub fn raw_lines(&mut self, lines: &[u8]) -> std::io::Result<()> {
        if self.buf.is_empty() && lines.len() >= FLUSH_AT {
            self.bytes_written += lines.len() as u64;
            return self.out.write_all(lines);
        }
        self.buf.extend_from_slice(lines);
        self.maybe_flush()
    }

    /// Flushes when enough is buffered. Call after each finished row.
    pub fn maybe_flush(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush_buffer()?;
        }
        Ok(())
    }

    fn flush_buffer(&mut self) -> std::io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.bytes_written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Writes out everything buffered and flushes the underlying writer.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.flush_buffer()?;
        self.out.flush()
    }

    /// Bytes handed to the underlying writer so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written + self.buf.len() as u64
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> std::io::Result<W> {
        self.flush()?;
        Ok(self.out)
    }
}

/// Builds one row line, `["v1",null,...]\n`, in a byte buffer.
pub struct RowBuilder<'a> {
    buf: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> RowBuilder<'a> {
    /// Starts a row at the end of `buf`.
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        buf.push(b'[');
        RowBuilder { buf, first: true }
    }

    fn sep(&mut self) {
        if self.first {
            self.first = false;
        } else {
            self.buf.push(b',');
        }
    }

    /// SQL NULL.
    pub fn null(&mut self) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(b"null");
        self
    }

    /// A scalar value in its stream text form.
    pub fn str(&mut self, value: &str) -> &mut Self {
        self.sep();
        push_json_string(self.buf, value);
        self
    }

    /// A scalar whose text the caller writes into the buffer directly, as
    /// raw JSON string content (already escaped). For hot paths that
    /// convert and escape in one pass.
    pub fn escaped_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        self.sep();
        self.buf.push(b'"');
        write(self.buf);
        self.buf.push(b'"');
        self
    }

    /// An array value, given as JSON text (nested arrays of strings and nulls).
    pub fn raw_json(&mut self, json: &str) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(json.as_bytes());
        self
    }

    /// Closes the row and its line.
    pub fn finish(self) {
        self.buf.extend_from_slice(b"]\n");
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Which bytes need escaping inside a JSON string.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = true;
        i += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Appends `value` as a quoted JSON string.
pub fn push_json_string(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    push_json_escaped(out, value.as_bytes());
    out.push(b'"');
}

/// Appends the JSON-escaped content of a string (no quotes). `bytes` must be
/// valid UTF-8; multi-byte characters pass through unescaped.
pub fn push_json_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !NEEDS_ESCAPE[b as usize] {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        push_escape(out, b);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends the JSON escape of one byte that needs escaping.
#[inline]
pub fn push_escape(out: &mut Vec<u8>, b: u8) {
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        _ => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]),
    }
}

/// True when a byte must be escaped inside a JSON string.
#[inline]
pub fn needs_escape(b: u8) -> bool {
    NEEDS_ESCAPE[b as usize]
}
