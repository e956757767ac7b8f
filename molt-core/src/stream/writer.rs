//! Writing the stream: records through serde, rows by hand.
//!
//! Rows are written straight into one reused byte buffer, JSON-escaping each
//! value in place, because rows are nearly all of a stream and going through
//! `serde_json::Value` would allocate for every value.
//!
//! The writer also keeps each section's transport checksum
//! ([`super::checksum`]): it announces it in the table header, hashes the
//! row lines in bulk as the buffer is flushed, and puts the result in the
//! end record, so every producer gets it without doing anything.

use std::io::Write;

use super::checksum::{LineChecksum, LINES_BLAKE3};
use super::record::Record;

/// Flush to the underlying writer once this much is buffered.
const FLUSH_AT: usize = 256 * 1024;

/// Writes records and rows as NDJSON.
pub struct StreamWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    bytes_written: u64,
    /// The open section's checksum, and where in `buf` its unhashed row
    /// lines start.
    checksum: Option<(LineChecksum, usize)>,
}

impl<W: Write> StreamWriter<W> {
    pub fn new(out: W) -> Self {
        StreamWriter {
            out,
            buf: Vec::with_capacity(FLUSH_AT + 64 * 1024),
            bytes_written: 0,
            checksum: None,
        }
    }

    /// Writes one non-row record. A table header opens a checksummed
    /// section and an end record closes it, with its `checksum` set.
    pub fn record(&mut self, record: &Record) -> std::io::Result<()> {
        self.hash_rows();
        match record {
            Record::Table(header) => {
                let mut header = header.clone();
                header.checksum = Some(LINES_BLAKE3.to_string());
                self.push_record(&Record::Table(header))?;
                self.checksum = Some((LineChecksum::default(), self.buf.len()));
            }
            Record::End(end) => {
                let mut end = end.clone();
                end.checksum = self.checksum.take().map(|(sum, _)| sum.finish(&end));
                self.push_record(&Record::End(end))?;
            }
            other => {
                self.push_record(other)?;
                if let Some((_, from)) = &mut self.checksum {
                    *from = self.buf.len();
                }
            }
        }
        self.maybe_flush()
    }

    fn push_record(&mut self, record: &Record) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.buf, record).map_err(std::io::Error::other)?;
        self.buf.push(b'\n');
        Ok(())
    }

    /// Adds the row lines buffered since the last call to the checksum.
    fn hash_rows(&mut self) {
        if let Some((sum, from)) = &mut self.checksum {
            sum.lines(&self.buf[*from..]);
            *from = self.buf.len();
        }
    }

    /// Starts a row; values are appended with the returned builder.
    pub fn row(&mut self) -> RowBuilder<'_> {
        RowBuilder::new(&mut self.buf)
    }

    /// Appends bytes that already hold complete lines (rows, inside a
    /// section).
    pub fn raw_lines(&mut self, lines: &[u8]) -> std::io::Result<()> {
        if self.buf.is_empty() && lines.len() >= FLUSH_AT {
            if let Some((sum, _)) = &mut self.checksum {
                sum.lines(lines);
            }
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
        self.hash_rows();
        self.out.write_all(&self.buf)?;
        self.bytes_written += self.buf.len() as u64;
        self.buf.clear();
        if let Some((_, from)) = &mut self.checksum {
            *from = 0;
        }
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
    let mut i = 0;
    while i < bytes.len() {
        i = skip_plain(bytes, i, b'"', b'\\');
        let end = (i + 8).min(bytes.len());
        while i < end {
            let b = bytes[i];
            if NEEDS_ESCAPE[b as usize] {
                out.extend_from_slice(&bytes[start..i]);
                push_escape(out, b);
                start = i + 1;
            }
            i += 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Skips, eight bytes at a time, from `i` over bytes that are neither
/// control characters (below 0x20) nor `a` nor `b`; returns where the first
/// eight-byte block holding one of them starts (or the tail shorter than
/// eight bytes). Escaping loops use it to pass over the plain text that is
/// nearly all of every value, then check the block byte by byte.
#[inline]
pub fn skip_plain(bytes: &[u8], mut i: usize, a: u8, b: u8) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while i + 8 <= bytes.len() {
        let x = u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        // A byte's high bit is set where it is below 0x20, or equal to a or
        // b (possibly also after such a byte, which is harmless: the block
        // is then checked byte by byte).
        let control = x.wrapping_sub(ONES * 0x20) & !x;
        let xa = x ^ (ONES * u64::from(a));
        let xb = x ^ (ONES * u64::from(b));
        let hits = (control | (xa.wrapping_sub(ONES) & !xa) | (xb.wrapping_sub(ONES) & !xb)) & HIGH;
        if hits != 0 {
            break;
        }
        i += 8;
    }
    i
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
        _ => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[(b >> 4) as usize],
            HEX[(b & 15) as usize],
        ]),
    }
}

/// True when a byte must be escaped inside a JSON string.
#[inline]
pub fn needs_escape(b: u8) -> bool {
    NEEDS_ESCAPE[b as usize]
}

#[cfg(test)]
mod escape_tests {
    use super::*;

    fn slow(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in bytes {
            if NEEDS_ESCAPE[b as usize] {
                push_escape(&mut out, b);
            } else {
                out.push(b);
            }
        }
        out
    }

    #[test]
    fn block_skipping_escapes_every_byte_that_needs_it() {
        let mut cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"plain text longer than eight bytes".to_vec(),
            "é and ü and 日本語 \" a".as_bytes().to_vec(),
        ];
        for special in [b'"', b'\\', b'\n', b'\t', 0x01, 0x1f, b'\r'] {
            for pos in 0..20 {
                let mut v = b"abcdefghijklmnopqrstuvwxyz".to_vec();
                v[pos] = special;
                cases.push(v);
            }
        }
        for (i, c) in cases.iter().enumerate() {
            let mut out = Vec::new();
            push_json_escaped(&mut out, c);
            assert_eq!(out, slow(c), "case {i}");
        }
        // Every byte value, alone and inside plain text.
        for b in 0..=255u8 {
            let v = [b'a', b'b', b'c', b'd', b'e', b'f', b'g', b, b'h'];
            if std::str::from_utf8(&v).is_ok() {
                let mut out = Vec::new();
                push_json_escaped(&mut out, &v);
                assert_eq!(out, slow(&v), "byte {b}");
            }
        }
    }
}
