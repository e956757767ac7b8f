//! PostgreSQL wire protocol (v3) framing and the few messages the stand-in
//! builds itself. Messages are framed by their length word only; payloads are
//! never inspected byte by byte unless a rule needs them.

use bytes::{Buf, BufMut, BytesMut};

/// Largest message either side may send (PostgreSQL's own limit is 1 GiB).
pub const MAX_MESSAGE: usize = 1 << 30;

pub const SSL_REQUEST: u32 = 80_877_103;
pub const GSSENC_REQUEST: u32 = 80_877_104;
pub const CANCEL_REQUEST: u32 = 80_877_102;

/// Splits one complete typed message (type byte, length word, payload) off the
/// front of `buf`, or returns `None` when the buffer holds only part of one.
pub fn next_frame(buf: &mut BytesMut) -> anyhow::Result<Option<BytesMut>> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if !(4..=MAX_MESSAGE).contains(&len) {
        anyhow::bail!(
            "bad message length {len} for message type {:?}",
            buf[0] as char
        );
    }
    if buf.len() < len + 1 {
        buf.reserve(len + 1 - buf.len());
        return Ok(None);
    }
    Ok(Some(buf.split_to(len + 1)))
}

/// Splits one complete untyped startup-phase message (length word, payload).
pub fn next_startup(buf: &mut BytesMut) -> anyhow::Result<Option<BytesMut>> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if !(8..=10_000).contains(&len) {
        anyhow::bail!("bad startup message length {len}");
    }
    if buf.len() < len {
        return Ok(None);
    }
    Ok(Some(buf.split_to(len)))
}

/// The payload of a typed frame.
pub fn payload(frame: &[u8]) -> &[u8] {
    &frame[5..]
}

/// Reads a NUL-terminated string at `pos`, returning it and the position after the NUL.
pub fn cstr(data: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = data.get(pos..)?;
    let nul = rest.iter().position(|&b| b == 0)?;
    Some((&rest[..nul], pos + nul + 1))
}

fn begin(out: &mut BytesMut, typ: u8) -> usize {
    out.put_u8(typ);
    let at = out.len();
    out.put_u32(0);
    at
}

fn finish(out: &mut BytesMut, at: usize) {
    let len = (out.len() - at) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// A simple-protocol Query message.
pub fn query(sql: &str) -> BytesMut {
    let mut out = BytesMut::with_capacity(sql.len() + 6);
    let at = begin(&mut out, b'Q');
    out.put_slice(sql.as_bytes());
    out.put_u8(0);
    finish(&mut out, at);
    out
}

/// A Parse message with the given statement name, text and raw parameter-type tail.
pub fn parse(name: &[u8], sql: &str, param_tail: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(name.len() + sql.len() + param_tail.len() + 7);
    let at = begin(&mut out, b'P');
    out.put_slice(name);
    out.put_u8(0);
    out.put_slice(sql.as_bytes());
    out.put_u8(0);
    out.put_slice(param_tail);
    finish(&mut out, at);
    out
}

/// A Parse message carrying no parameter types.
pub fn parse_plain(sql: &str) -> BytesMut {
    parse(b"", sql, &[0, 0])
}

pub fn copy_data(data: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(data.len() + 5);
    let at = begin(&mut out, b'd');
    out.put_slice(data);
    finish(&mut out, at);
    out
}

pub fn copy_fail(msg: &str) -> BytesMut {
    let mut out = BytesMut::new();
    let at = begin(&mut out, b'f');
    out.put_slice(msg.as_bytes());
    out.put_u8(0);
    finish(&mut out, at);
    out
}

pub fn terminate() -> BytesMut {
    let mut out = BytesMut::new();
    let at = begin(&mut out, b'X');
    finish(&mut out, at);
    out
}

pub fn parameter_status(name: &str, value: &str) -> BytesMut {
    let mut out = BytesMut::new();
    let at = begin(&mut out, b'S');
    out.put_slice(name.as_bytes());
    out.put_u8(0);
    out.put_slice(value.as_bytes());
    out.put_u8(0);
    finish(&mut out, at);
    out
}

/// An error (or FATAL) response as CockroachDB would send it.
#[derive(Clone, Debug)]
pub struct PgError {
    pub severity: &'static str,
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl PgError {
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        PgError {
            severity: "ERROR",
            code: code.to_string(),
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn fatal(mut self) -> Self {
        self.severity = "FATAL";
        self
    }

    pub fn frame(&self) -> BytesMut {
        let mut out = BytesMut::new();
        let at = begin(&mut out, b'E');
        let mut field = |tag: u8, value: &str| {
            out.put_u8(tag);
            // A NUL inside a field would end it early; there is none in ours.
            out.put_slice(value.replace('\0', " ").as_bytes());
            out.put_u8(0);
        };
        field(b'S', self.severity);
        field(b'V', self.severity);
        field(b'C', &self.code);
        field(b'M', &self.message);
        if let Some(d) = &self.detail {
            field(b'D', d);
        }
        if let Some(h) = &self.hint {
            field(b'H', h);
        }
        out.put_u8(0);
        finish(&mut out, at);
        out
    }
}

/// Fields (code, message) of an ErrorResponse/NoticeResponse frame.
pub fn error_fields(frame: &[u8]) -> (String, String) {
    let mut code = String::new();
    let mut message = String::new();
    let mut p = payload(frame);
    while let Some((&tag, rest)) = p.split_first() {
        if tag == 0 {
            break;
        }
        let nul = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let value = String::from_utf8_lossy(&rest[..nul]).into_owned();
        match tag {
            b'C' => code = value,
            b'M' => message = value,
            _ => {}
        }
        p = rest.get(nul + 1..).unwrap_or(&[]);
    }
    (code, message)
}

/// The column values of a DataRow frame (None for SQL NULL).
pub fn data_row(frame: &[u8]) -> Vec<Option<Vec<u8>>> {
    let mut p = payload(frame);
    let mut out = Vec::new();
    if p.len() < 2 {
        return out;
    }
    let n = p.get_i16();
    for _ in 0..n.max(0) {
        if p.len() < 4 {
            break;
        }
        let len = p.get_i32();
        if len < 0 {
            out.push(None);
        } else {
            let len = (len as usize).min(p.len());
            out.push(Some(p[..len].to_vec()));
            p.advance(len);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_on_length() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&query("SELECT 1"));
        buf.extend_from_slice(&query("SELECT 2")[..4]);
        let f = next_frame(&mut buf).unwrap().unwrap();
        assert_eq!(&f[..], &query("SELECT 1")[..]);
        assert!(next_frame(&mut buf).unwrap().is_none());
    }

    #[test]
    fn error_round_trip() {
        let e = PgError::error("40001", "restart transaction: x").with_hint("h");
        let (code, msg) = error_fields(&e.frame());
        assert_eq!(code, "40001");
        assert_eq!(msg, "restart transaction: x");
    }
}
