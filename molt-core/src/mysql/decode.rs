//! MySQL text-protocol values → stream text.
//!
//! The dump reads with the text protocol (`query_iter`), which hands over
//! every value as bytes in MySQL's own text form: decimals exactly as
//! stored, datetimes as `YYYY-MM-DD HH:MM:SS.ffffff`, TIME as
//! `-838:59:59.000000`, BIT and spatial values as their raw bytes, and text
//! in the column's own charset (the session asks for no conversion). That is
//! the simplest exact route: nothing passes through a float or a driver's
//! date type. Each [`Decoder`] turns one such value into the stream form of
//! its logical type (`docs/stream-format.md`).

use base64::Engine as _;

use super::charset::Charset;
use crate::value::Interval;

/// How one column's values are decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoder {
    /// Decimal integer text, checked.
    Int,
    /// An integer column overridden to BOOL: 0 and 1 only.
    Bool,
    /// BIT(n): big-endian bytes → `n` binary digits.
    Bit {
        bits: u32,
    },
    /// Exact decimal text.
    Decimal,
    /// FLOAT, selected as `col * 1e0` so the server prints the exact double
    /// of the stored single (MariaDB prints FLOAT itself with 6 digits).
    Float4,
    Float8,
    Text(Charset),
    /// Raw bytes → base64.
    Bytes,
    Date,
    Datetime,
    /// TIMESTAMP, read with `time_zone = '+00:00'`.
    Timestamp,
    /// TIME → ISO 8601 interval.
    Time,
    Enum(Charset),
    /// An ENUM that declares `''` as a label of its own, selected as
    /// `CONCAT(IF(col + 0 = 0, '0', '1'), col)`: MySQL's error value (index
    /// 0, stored by a non-strict insert of an unknown label) also reads as
    /// `''`, and the two would land on the one target label `''`. The flag
    /// tells them apart, and the error value is refused.
    EnumDeclaringEmpty(Charset),
    /// SET → JSON array of its members.
    Set(Charset),
    Json,
    /// MySQL's internal geometry (4-byte LE SRID + WKB) → hex EWKB.
    Geometry,
    /// BINARY(16) or CHAR(36) overridden to UUID.
    Uuid,
}

/// The outcome of decoding one non-NULL value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The stream text was written.
    Value,
    /// A JSON document that repeats a key was written without the later
    /// duplicates, which is what it means to MariaDB (see
    /// [`crate::value::without_duplicate_keys`]); the dump counts it as a
    /// change.
    JsonDuplicatesDropped,
    /// A zero or invalid date (`0000-00-00`, `2020-00-10`): nothing was
    /// written; the zero-date policy decides.
    InvalidDate,
}

/// Why a value could not be decoded; the caller adds table, column and key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(msg.into()))
}

fn ascii(raw: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(raw).map_err(|_| {
        DecodeError(format!(
            "unexpected bytes from the server: {}",
            preview(raw)
        ))
    })
}

/// A short, printable rendering of raw bytes for error messages.
pub fn preview(raw: &[u8]) -> String {
    let shown: String = raw.iter().take(32).map(|b| format!("{b:02X}")).collect();
    if raw.len() > 32 {
        format!("0x{shown}... ({} bytes)", raw.len())
    } else {
        format!("0x{shown}")
    }
}

impl Decoder {
    /// [`Decoder::decode`] for molt-verify: a JSON `\u0000`, which the dump
    /// refuses, is read as it is, so that verify reports its row as a
    /// difference instead of stopping.
    pub fn decode_for_verify(&self, raw: &[u8], out: &mut String) -> Result<Decoded, DecodeError> {
        if *self == Decoder::Json {
            if let Ok(text) = std::str::from_utf8(raw) {
                if crate::value::nul_escape_at(text).is_some() {
                    out.clear();
                    out.push_str(text);
                    return Ok(Decoded::Value);
                }
            }
        }
        self.decode(raw, out)
    }

    /// Decodes one non-NULL value into `out` (cleared first).
    pub fn decode(&self, raw: &[u8], out: &mut String) -> Result<Decoded, DecodeError> {
        out.clear();
        match *self {
            Decoder::Int | Decoder::Decimal => {
                let s = ascii(raw)?;
                let digits = s.strip_prefix('-').unwrap_or(s);
                let ok = match self {
                    Decoder::Int => !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
                    _ => !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.'),
                };
                if !ok {
                    return err(format!("not a number: {s:?}"));
                }
                out.push_str(s);
            }
            Decoder::Bool => match raw {
                b"0" => out.push_str("false"),
                b"1" => out.push_str("true"),
                _ => {
                    return err(format!(
                        "value {} is not 0 or 1, so it cannot become a BOOL (the type map asks for BOOL)",
                        String::from_utf8_lossy(raw)
                    ))
                }
            },
            Decoder::Bit { bits } => {
                let total = raw.len() as u32 * 8;
                if total < bits {
                    return err(format!("BIT({bits}) value has only {} bytes", raw.len()));
                }
                for i in (total - bits)..total {
                    let byte = raw[(i / 8) as usize];
                    out.push(if byte & (0x80 >> (i % 8)) != 0 { '1' } else { '0' });
                }
            }
            Decoder::Float4 => {
                let s = ascii(raw)?;
                let v: f64 = s.parse().map_err(|_| DecodeError(format!("not a float: {s:?}")))?;
                let single = v as f32;
                if single as f64 != v {
                    return err(format!("FLOAT value {s} is not an exact single-precision value"));
                }
                out.push_str(&format!("{single:?}"));
            }
            Decoder::Float8 => {
                let s = ascii(raw)?;
                if s.parse::<f64>().is_err() {
                    return err(format!("not a float: {s:?}"));
                }
                out.push_str(s);
            }
            Decoder::Text(cs) | Decoder::Enum(cs) => match cs.decode(raw) {
                Some(text) => out.push_str(&text),
                None => return err(format!("bytes {} are not valid in the column's character set", preview(raw))),
            },
            Decoder::EnumDeclaringEmpty(cs) => {
                let Some(text) = cs.decode(raw) else {
                    return err(format!("bytes {} are not valid in the column's character set", preview(raw)));
                };
                match text.strip_prefix('1') {
                    Some(label) => out.push_str(label),
                    None => {
                        return err(
                            "the ENUM holds MySQL's error value (index 0, left by a non-strict insert of an unknown label), \
                             which reads as '' like the label '' this column declares: on the target the two would be one value. \
                             Fix the row on the source (UPDATE it to a declared label), or map the column to text with --type-map",
                        )
                    }
                }
            }
            Decoder::Set(cs) => {
                let Some(text) = cs.decode(raw) else {
                    return err(format!("bytes {} are not valid in the column's character set", preview(raw)));
                };
                let members: Vec<&str> = if text.is_empty() { Vec::new() } else { text.split(',').collect() };
                out.push_str(&serde_json::to_string(&members).expect("strings serialize"));
            }
            Decoder::Bytes => base64::engine::general_purpose::STANDARD.encode_string(raw, out),
            Decoder::Json => match std::str::from_utf8(raw) {
                Ok(s) => {
                    if let Some(at) = crate::value::nul_escape_at(s) {
                        return err(crate::value::nul_escape_message(at));
                    }
                    // MariaDB's JSON functions read the first of duplicate
                    // keys, JSONB would keep the last (see value::jsonb).
                    match crate::value::without_duplicate_keys(s) {
                        Some(first_wins) => {
                            out.push_str(&first_wins);
                            return Ok(Decoded::JsonDuplicatesDropped);
                        }
                        None => out.push_str(s),
                    }
                }
                Err(_) => return err(format!("JSON value is not valid UTF-8: {}", preview(raw))),
            },
            Decoder::Date => {
                let s = ascii(raw)?;
                if !valid_date(s)? {
                    return Ok(Decoded::InvalidDate);
                }
                out.push_str(s);
            }
            Decoder::Datetime | Decoder::Timestamp => {
                let s = ascii(raw)?;
                let (date, time) = s.split_once(' ').ok_or_else(|| DecodeError(format!("not a datetime: {s:?}")))?;
                if !valid_date(date)? {
                    return Ok(Decoded::InvalidDate);
                }
                if !valid_time_of_day(time) {
                    return err(format!("not a datetime: {s:?}"));
                }
                out.push_str(s);
                if *self == Decoder::Timestamp {
                    out.push('Z');
                }
            }
            Decoder::Time => {
                let s = ascii(raw)?;
                let micros = parse_time(s).ok_or_else(|| DecodeError(format!("not a TIME value: {s:?}")))?;
                out.push_str(&Interval::from_micros(micros).to_iso());
            }
            Decoder::Geometry => ewkb_hex(raw, out)?,
            Decoder::Uuid => uuid(raw, out)?,
        }
        Ok(Decoded::Value)
    }
}

/// `YYYY-MM-DD` with a real month and day; `false` for MySQL's zero and
/// invalid dates (year 0, month 0, day 0, Feb 30 under ALLOW_INVALID_DATES).
fn valid_date(s: &str) -> Result<bool, DecodeError> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return err(format!("not a date: {s:?}"));
    }
    let num = |r: std::ops::Range<usize>| {
        s[r].parse::<u32>()
            .map_err(|_| DecodeError(format!("not a date: {s:?}")))
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if y == 0 || m == 0 || m > 12 || d == 0 {
        return Ok(false);
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    Ok(d <= dim)
}

fn valid_time_of_day(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 8
        && b[2] == b':'
        && b[5] == b':'
        && s[..2].parse::<u32>().is_ok_and(|h| h < 24)
        && s[3..5].parse::<u32>().is_ok_and(|m| m < 60)
        && s[6..8].parse::<u32>().is_ok_and(|x| x < 60)
        && (b.len() == 8
            || (b[8] == b'.' && b[9..].iter().all(u8::is_ascii_digit) && b.len() <= 15))
}

/// `[-]H+:MM:SS[.ffffff]` → signed microseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let mut parts = body.splitn(3, ':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let sec_text = parts.next()?;
    let (sec, frac) = sec_text.split_once('.').unwrap_or((sec_text, ""));
    let sec: i64 = sec.parse().ok()?;
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) || m >= 60 || sec >= 60 {
        return None;
    }
    let frac_micros: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().ok()?
    };
    let micros = ((h * 60 + m) * 60 + sec) * 1_000_000 + frac_micros;
    Some(if neg { -micros } else { micros })
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// MySQL's stored geometry (SRID as 4 little-endian bytes, then WKB) as
/// upper-case hex EWKB: the SRID flag and SRID go into the WKB header when
/// the SRID is not 0, as PostGIS writes it.
fn ewkb_hex(raw: &[u8], out: &mut String) -> Result<(), DecodeError> {
    if raw.len() < 9 {
        return err(format!("geometry value too short: {}", preview(raw)));
    }
    let srid = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
    let wkb = &raw[4..];
    let little = match wkb[0] {
        1 => true,
        0 => false,
        other => {
            return err(format!(
                "geometry value has an unknown WKB byte order {other}"
            ))
        }
    };
    let mut push = |bytes: &[u8]| {
        for b in bytes {
            out.push(HEX_UPPER[(b >> 4) as usize] as char);
            out.push(HEX_UPPER[(b & 15) as usize] as char);
        }
    };
    if srid == 0 {
        push(wkb);
        return Ok(());
    }
    let ty_bytes = [wkb[1], wkb[2], wkb[3], wkb[4]];
    let ty = if little {
        u32::from_le_bytes(ty_bytes)
    } else {
        u32::from_be_bytes(ty_bytes)
    } | 0x2000_0000;
    let (ty, srid) = if little {
        (ty.to_le_bytes(), srid.to_le_bytes())
    } else {
        (ty.to_be_bytes(), srid.to_be_bytes())
    };
    push(&wkb[..1]);
    push(&ty);
    push(&srid);
    push(&wkb[5..]);
    Ok(())
}

fn uuid(raw: &[u8], out: &mut String) -> Result<(), DecodeError> {
    if raw.len() == 16 {
        for (i, b) in raw.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out.push('-');
            }
            out.push_str(&format!("{b:02x}"));
        }
        return Ok(());
    }
    let s = std::str::from_utf8(raw).unwrap_or("");
    let hex_only: String = s.chars().filter(|c| *c != '-').collect();
    if s.len() == 36 && hex_only.len() == 32 && hex_only.bytes().all(|b| b.is_ascii_hexdigit()) {
        out.push_str(&s.to_ascii_lowercase());
        return Ok(());
    }
    err(format!(
        "value {} is not a 16-byte or 36-character UUID",
        preview(raw)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(dec: Decoder, raw: &[u8]) -> String {
        let mut out = String::new();
        assert_eq!(dec.decode(raw, &mut out).unwrap(), Decoded::Value);
        out
    }

    #[test]
    fn times_become_intervals() {
        assert_eq!(d(Decoder::Time, b"-838:59:59.000000"), "PT-838H-59M-59S");
        assert_eq!(d(Decoder::Time, b"838:59:59"), "PT838H59M59S");
        assert_eq!(d(Decoder::Time, b"00:00:00.500000"), "PT0.5S");
        assert_eq!(d(Decoder::Time, b"-00:00:01"), "PT-1S");
    }

    #[test]
    fn zero_dates_are_flagged() {
        let mut out = String::new();
        for z in [&b"0000-00-00"[..], b"2020-00-10", b"2021-02-29"] {
            assert_eq!(
                Decoder::Date.decode(z, &mut out).unwrap(),
                Decoded::InvalidDate
            );
        }
        assert_eq!(
            Decoder::Datetime
                .decode(b"0000-00-00 00:00:00", &mut out)
                .unwrap(),
            Decoded::InvalidDate
        );
        assert_eq!(
            d(Decoder::Timestamp, b"2020-01-02 03:04:05.123456"),
            "2020-01-02 03:04:05.123456Z"
        );
    }

    #[test]
    fn bits_floats_bools_uuids() {
        assert_eq!(d(Decoder::Bit { bits: 10 }, &[0x02, 0x01]), "1000000001");
        assert_eq!(d(Decoder::Bit { bits: 64 }, &[0xff; 8]), "1".repeat(64));
        assert_eq!(d(Decoder::Float4, b"1.2345678806304932"), "1.2345679");
        assert!(Decoder::Float4.decode(b"0.1", &mut String::new()).is_err());
        assert_eq!(d(Decoder::Bool, b"1"), "true");
        assert!(Decoder::Bool.decode(b"2", &mut String::new()).is_err());
        let raw: Vec<u8> = (0..16).collect();
        assert_eq!(
            d(Decoder::Uuid, &raw),
            "00010203-0405-0607-0809-0a0b0c0d0e0f"
        );
        assert_eq!(d(Decoder::Set(Charset::Utf8), b"a,b"), r#"["a","b"]"#);
        assert_eq!(d(Decoder::Set(Charset::Utf8), b""), "[]");
    }

    #[test]
    fn geometry_gets_the_srid_flag() {
        // POINT(1 2), SRID 4326, little-endian WKB.
        let mut raw = 4326u32.to_le_bytes().to_vec();
        raw.extend_from_slice(&[1, 1, 0, 0, 0]);
        raw.extend_from_slice(&1f64.to_le_bytes());
        raw.extend_from_slice(&2f64.to_le_bytes());
        assert_eq!(
            d(Decoder::Geometry, &raw),
            "0101000020E6100000000000000000F03F0000000000000040"
        );
        raw[..4].copy_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            d(Decoder::Geometry, &raw),
            "0101000000000000000000F03F0000000000000040"
        );
    }
}
