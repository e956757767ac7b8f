//! Text-format COPY into bytea columns, decoded the way CockroachDB decodes it.
//!
//! cockroachdb/cockroach pkg/sql/copy_from.go, `readTextTupleDatum` /
//! `readTextTupleVec`: each field of a BYTES column is run through `DecodeCopy`
//! (the COPY text-format backslash unescaping: `\b \f \n \r \t \v \\`, `\xH[H]`,
//! `\N[N[N]]` octal, any other backslashed character stands for itself) and the
//! result is stored as the value's bytes as is:
//! `case types.BytesFamily: d = tree.NewDBytes(tree.DBytes(s))` ("This just
//! bypasses DecodeRawBytesToByteArrayAuto"). The bytea *text* formats (`\x0102`
//! hex, `\001` escape) are never decoded, so the field `\\x0102` that
//! PostgreSQL's own COPY TO writes arrives as the six ASCII bytes `\x0102`.
//! Reported in cockroachdb/cockroach#167309 (open, seen on v26.1.1); CSV was
//! fixed by #81120 for #69640 (CSV fields go through `ParseAndRequireString`).
//!
//! PostgreSQL decodes the bytea text format after unescaping, so the stand-in
//! rewrites each bytea field to `\\x<hex of DecodeCopy(field)>`: PostgreSQL then
//! stores exactly the bytes CockroachDB would store.

use bytes::{BufMut, BytesMut};

use crate::proto;

/// CockroachDB's `DecodeCopy` (pkg/sql/copy_from.go), byte for byte.
pub fn decode_copy(input: &[u8]) -> Vec<u8> {
    let hex = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    let oct = |c: u8| -> Option<u8> { (b'0'..=b'7').contains(&c).then(|| c - b'0') };
    let mut out = Vec::with_capacity(input.len());
    let n = input.len();
    let mut i = 0;
    while i < n {
        if input[i] != b'\\' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        i += 1;
        if i >= n {
            out.push(b'\\');
            break;
        }
        let ch = input[i];
        match ch {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'\\' => out.push(b'\\'),
            b'x' => {
                if i + 1 >= n {
                    out.push(b'x');
                } else if let Some(mut digit) = hex(input[i + 1]) {
                    i += 1;
                    if i + 1 < n {
                        if let Some(v) = hex(input[i + 1]) {
                            i += 1;
                            digit = (digit << 4) + v;
                        }
                    }
                    out.push(digit);
                } else {
                    out.push(b'x');
                }
            }
            b'0'..=b'7' => {
                let mut digit = ch - b'0';
                for _ in 0..2 {
                    if i + 1 < n {
                        if let Some(v) = oct(input[i + 1]) {
                            i += 1;
                            digit = digit.wrapping_shl(3).wrapping_add(v);
                        }
                    }
                }
                out.push(digit);
            }
            other => out.push(other),
        }
        i += 1;
    }
    out
}

/// Rewrites the bytea fields of a text-format COPY stream.
pub struct ByteaRewriter {
    delimiter: u8,
    null: Vec<u8>,
    /// Field positions (0-based) holding bytea values.
    bytea: Vec<bool>,
    partial: Vec<u8>,
    done: bool,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl ByteaRewriter {
    pub fn new(delimiter: u8, null: Vec<u8>, bytea: Vec<bool>) -> Self {
        ByteaRewriter {
            delimiter,
            null,
            bytea,
            partial: Vec::new(),
            done: false,
        }
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        if self.done || line == b"\\." || line == b"\\.\r" {
            self.done = true;
            out.extend_from_slice(line);
            return;
        }
        for (k, field) in line.split(|&b| b == self.delimiter).enumerate() {
            if k > 0 {
                out.push(self.delimiter);
            }
            if self.bytea.get(k).copied().unwrap_or(false) && field != self.null.as_slice() {
                let raw = decode_copy(field);
                out.extend_from_slice(b"\\\\x");
                for b in raw {
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 15) as usize]);
                }
            } else {
                out.extend_from_slice(field);
            }
        }
    }

    /// Rewrites one CopyData payload, returning the CopyData frame to forward
    /// (complete lines only; a trailing partial line waits for the next one).
    pub fn data(&mut self, payload: &[u8]) -> BytesMut {
        let mut out = Vec::with_capacity(payload.len() * 2);
        let mut rest = payload;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(nl);
            if self.partial.is_empty() {
                self.line(head, &mut out);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(head);
                self.line(&line, &mut out);
            }
            out.push(b'\n');
            rest = &tail[1..];
        }
        self.partial.extend_from_slice(rest);
        let mut frame = BytesMut::with_capacity(out.len() + 5);
        frame.put_slice(&proto::copy_data(&out));
        frame
    }

    /// The frame for a last line without its newline, if any (before CopyDone).
    pub fn finish(&mut self) -> Option<BytesMut> {
        if self.partial.is_empty() {
            return None;
        }
        let line = std::mem::take(&mut self.partial);
        let mut out = Vec::new();
        self.line(&line, &mut out);
        Some(proto::copy_data(&out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_copy_matches_cockroachdb() {
        assert_eq!(decode_copy(b"\\\\x0102"), b"\\x0102");
        assert_eq!(decode_copy(b"\\x01\\x02"), vec![1, 2]);
        assert_eq!(decode_copy(b"\\x1g"), vec![1, b'g']);
        assert_eq!(decode_copy(b"\\xg"), b"xg");
        assert_eq!(decode_copy(b"\\001\\1\\t"), vec![1, 1, b'\t']);
        assert_eq!(decode_copy(b"a\\"), b"a\\");
        assert_eq!(decode_copy(b"\\q"), b"q");
    }

    #[test]
    fn rewriter_handles_split_lines() {
        let mut r = ByteaRewriter::new(b'\t', b"\\N".to_vec(), vec![false, true]);
        let f1 = r.data(b"1\t\\\\x01");
        let f2 = r.data(b"02\n2\t\\N\n3\t\\x41\n");
        assert_eq!(proto::payload(&f1), b"");
        assert_eq!(
            proto::payload(&f2),
            b"1\t\\\\x5c7830313032\n2\t\\N\n3\t\\\\x41\n"
        );
    }
}
