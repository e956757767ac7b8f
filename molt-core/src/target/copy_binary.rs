//! Stream values to COPY BINARY, for the sections where it pays.
//!
//! The target's backend is the slowest stage of a load: it parses every
//! value of every row. In text format that means running each type's input
//! function (`numeric_in`, `timestamp_in`, ...); in binary format the value
//! arrives as the type's wire form and is only checked. For the benchmark's
//! `orders` table PostgreSQL ingests binary COPY with 16 to 19% less time
//! (`\copy ... with binary` against text, same 2M rows), and that backend
//! is the critical path of a dump | load pipeline. CockroachDB accepts the
//! same `COPY ... FROM STDIN WITH BINARY` (the form pgx uses).
//!
//! Binary values must match the target column's exact type (an `int8`
//! column takes 8 bytes, not 4), so binary is used only for a section whose
//! every column has a binary form here *and* whose target columns, read
//! from the target's catalog after the table was created or checked, have
//! the type that form is for ([`BinaryType::for_column`]). Anything else
//! (arrays, enums, intervals, times, bit strings, geometry, a pre-existing
//! table with other types) goes as text, unchanged. See docs/loading.md.
//!
//! A COPY BINARY stream is a signature, the rows (a field count, then each
//! field as a 32-bit length, `-1` for NULL, and its bytes) and a trailer;
//! every batch (one COPY) carries its own signature and trailer.

use base64::Engine as _;

use super::copy_in::EncodeError;
use crate::stream::{Field, TableHeader};
use crate::value::LogicalType;

/// The 11-byte signature, then flags and header extension length (zero).
pub const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The end of a COPY BINARY stream: a field count of -1.
pub const TRAILER: &[u8] = &[0xff, 0xff];

/// A target column type with a binary encoder here, by `pg_type.typname`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryType {
    Int2,
    Int4,
    Int8,
    Numeric,
    Float4,
    Float8,
    /// `text`, `varchar`, `bpchar`: the UTF-8 bytes.
    Text,
    Bool,
    Date,
    Timestamp,
    Timestamptz,
    Uuid,
    Jsonb,
    Json,
    Bytea,
}

impl BinaryType {
    /// The binary form for a target column of type `typname` holding
    /// stream values of `logical` type, if there is one.
    pub fn for_column(typname: &str, logical: LogicalType) -> Option<BinaryType> {
        use LogicalType as L;
        let ty = match typname {
            "int2" => BinaryType::Int2,
            "int4" => BinaryType::Int4,
            "int8" => BinaryType::Int8,
            "numeric" => BinaryType::Numeric,
            "float4" => BinaryType::Float4,
            "float8" => BinaryType::Float8,
            "text" | "varchar" | "bpchar" => BinaryType::Text,
            "bool" => BinaryType::Bool,
            "date" => BinaryType::Date,
            "timestamp" => BinaryType::Timestamp,
            "timestamptz" => BinaryType::Timestamptz,
            "uuid" => BinaryType::Uuid,
            "jsonb" => BinaryType::Jsonb,
            "json" => BinaryType::Json,
            "bytea" => BinaryType::Bytea,
            _ => return None,
        };
        let fits = match ty {
            BinaryType::Int2 | BinaryType::Int4 | BinaryType::Int8 => logical == L::Int,
            BinaryType::Numeric => matches!(logical, L::Int | L::Decimal),
            BinaryType::Float4 | BinaryType::Float8 => matches!(logical, L::Float4 | L::Float8),
            BinaryType::Text => matches!(logical, L::Text | L::Enum),
            BinaryType::Bool => logical == L::Bool,
            BinaryType::Date => logical == L::Date,
            BinaryType::Timestamp => logical == L::Timestamp,
            BinaryType::Timestamptz => logical == L::Timestamptz,
            BinaryType::Uuid => logical == L::Uuid,
            BinaryType::Jsonb | BinaryType::Json => logical == L::Json,
            BinaryType::Bytea => logical == L::Bytes,
        };
        fits.then_some(ty)
    }
}

/// Whether every column of the section could have a binary form, judged
/// from the header alone (the target's catalog decides in the end).
pub fn may_use_binary(header: &TableHeader) -> bool {
    use LogicalType as L;
    header.columns.iter().all(|c| {
        c.array_dims == 0
            && matches!(
                c.logical,
                L::Int
                    | L::Decimal
                    | L::Float4
                    | L::Float8
                    | L::Text
                    | L::Enum
                    | L::Bool
                    | L::Date
                    | L::Timestamp
                    | L::Timestamptz
                    | L::Uuid
                    | L::Json
                    | L::Bytes
            )
    })
}

/// How a section goes in binary: each column's binary type, and its SQL
/// type on the target (for the retry path's temp table, which must take
/// the same binary values).
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryPlan {
    pub types: Vec<BinaryType>,
    pub sql_types: Vec<String>,
}

/// Reads the target table's column types and decides: a plan when every
/// column of the section has a binary form for its target type, `None`
/// (text) otherwise.
pub async fn plan(
    client: &tokio_postgres::Client,
    header: &TableHeader,
    table: &crate::stream::TableName,
) -> Result<Option<BinaryPlan>, super::TargetError> {
    if !may_use_binary(header) {
        return Ok(None);
    }
    let rows = client
        .query(
            "SELECT a.attname::TEXT, t.typname::TEXT, format_type(a.atttypid, a.atttypmod) \
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             WHERE a.attrelid = ($1::TEXT)::REGCLASS AND a.attnum > 0 AND NOT a.attisdropped",
            &[&crate::ident::quote_pg_table(table)],
        )
        .await
        .map_err(|e| super::TargetError::db(format!("reading the column types of {table}"), e))?;
    let mut plan = BinaryPlan {
        types: Vec::with_capacity(header.columns.len()),
        sql_types: Vec::with_capacity(header.columns.len()),
    };
    for column in &header.columns {
        let Some(row) = rows.iter().find(|r| r.get::<_, String>(0) == column.name) else {
            return Ok(None);
        };
        let typname: String = row.get(1);
        let Some(ty) = BinaryType::for_column(&typname, column.logical) else {
            return Ok(None);
        };
        plan.types.push(ty);
        plan.sql_types.push(row.get(2));
    }
    Ok(Some(plan))
}

/// Encodes rows of one section into COPY BINARY tuples.
#[derive(Clone, Debug)]
pub struct BinaryEncoder {
    columns: Vec<(String, BinaryType)>,
}

impl BinaryEncoder {
    /// `types` in the header's column order.
    pub fn new(header: &TableHeader, types: &[BinaryType]) -> BinaryEncoder {
        BinaryEncoder {
            columns: header
                .columns
                .iter()
                .zip(types)
                .map(|(c, t)| (c.name.clone(), *t))
                .collect(),
        }
    }

    /// Appends one row as a tuple.
    pub fn encode_row<'a>(
        &mut self,
        fields: impl IntoIterator<Item = Field<'a>>,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let mark = out.len();
        out.extend_from_slice(&(self.columns.len() as i16).to_be_bytes());
        let mut n = 0;
        for (i, field) in fields.into_iter().enumerate() {
            let result = match self.columns.get(i) {
                None => Err("more values than columns".to_string()),
                Some((_, ty)) => match field {
                    Field::Null => {
                        out.extend_from_slice(&(-1i32).to_be_bytes());
                        Ok(())
                    }
                    Field::Str(text) | Field::Array(text) => encode_field(*ty, text, out),
                },
            };
            if let Err(message) = result {
                out.truncate(mark);
                return Err(EncodeError {
                    column: self
                        .columns
                        .get(i)
                        .map_or_else(|| format!("#{}", i + 1), |c| c.0.clone()),
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
                    .map_or_else(String::new, |c| c.0.clone()),
                message: format!(
                    "row has {n} values, the table has {} columns",
                    self.columns.len()
                ),
            });
        }
        Ok(())
    }
}

/// Appends one non-NULL field: its length, then its bytes.
fn encode_field(ty: BinaryType, text: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    match ty {
        BinaryType::Int2 => {
            let v = parse_int(text)?;
            let v = i16::try_from(v).map_err(|_| format!("{text} is out of range for int2"))?;
            out.extend_from_slice(&v.to_be_bytes());
        }
        BinaryType::Int4 => {
            let v = parse_int(text)?;
            let v = i32::try_from(v).map_err(|_| format!("{text} is out of range for int4"))?;
            out.extend_from_slice(&v.to_be_bytes());
        }
        BinaryType::Int8 => out.extend_from_slice(&parse_int(text)?.to_be_bytes()),
        BinaryType::Numeric => push_numeric(text, out)?,
        BinaryType::Float4 => out.extend_from_slice(&parse_float(text)?.to_be_bytes()),
        BinaryType::Float8 => out.extend_from_slice(&parse_double(text)?.to_be_bytes()),
        BinaryType::Text | BinaryType::Json => push_text(text, out)?,
        BinaryType::Jsonb => {
            out.push(1); // the JSONB binary format's version
            push_text(text, out)?;
        }
        BinaryType::Bool => out.push(match text {
            "true" | "t" | "1" => 1,
            "false" | "f" | "0" => 0,
            _ => return Err(format!("{text:?} is not a boolean")),
        }),
        BinaryType::Date => {
            let days = match text {
                "infinity" => i32::MAX,
                "-infinity" => i32::MIN,
                _ => {
                    let (days, rest) =
                        parse_date(text).ok_or_else(|| format!("{text:?} is not a date"))?;
                    if !rest.is_empty() {
                        return Err(format!("{text:?} is not a date"));
                    }
                    i32::try_from(days).map_err(|_| format!("{text} is out of range for date"))?
                }
            };
            out.extend_from_slice(&days.to_be_bytes());
        }
        BinaryType::Timestamp | BinaryType::Timestamptz => {
            let micros = parse_timestamp(text, ty == BinaryType::Timestamptz)
                .ok_or_else(|| format!("{text:?} is not a timestamp in the stream's form"))?;
            out.extend_from_slice(&micros.to_be_bytes());
        }
        BinaryType::Uuid => {
            let hex: Vec<u8> = text.bytes().filter(|&b| b != b'-').collect();
            if hex.len() != 32 {
                return Err(format!("{text:?} is not a UUID"));
            }
            for pair in hex.chunks(2) {
                let byte = hex_value(pair[0])
                    .zip(hex_value(pair[1]))
                    .map(|(h, l)| h << 4 | l)
                    .ok_or_else(|| format!("{text:?} is not a UUID"))?;
                out.push(byte);
            }
        }
        BinaryType::Bytea => {
            base64::engine::general_purpose::STANDARD
                .decode_vec(text, out)
                .map_err(|e| format!("invalid base64 in a bytes value: {e}"))?;
        }
    }
    let len = i32::try_from(out.len() - at - 4)
        .map_err(|_| "the value is longer than COPY allows (2 GiB)".to_string())?;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Text as its bytes; PostgreSQL and CockroachDB store no U+0000 in text.
fn push_text(text: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let bytes = text.as_bytes();
    // memchr's setup costs more than a plain loop over a short value.
    let has_nul = if bytes.len() < 32 {
        bytes.contains(&0)
    } else {
        memchr::memchr(0, bytes).is_some()
    };
    if has_nul {
        return Err(super::copy_in::NUL_MESSAGE.to_string());
    }
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

fn parse_int(text: &str) -> Result<i64, String> {
    text.parse::<i64>()
        .map_err(|_| format!("{text} is not an integer that fits int8"))
}

fn parse_float(text: &str) -> Result<f32, String> {
    match text {
        "NaN" => Ok(f32::NAN),
        "Infinity" => Ok(f32::INFINITY),
        "-Infinity" => Ok(f32::NEG_INFINITY),
        _ => text
            .parse::<f32>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{text:?} is not a float4")),
    }
}

fn parse_double(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "Infinity" => Ok(f64::INFINITY),
        "-Infinity" => Ok(f64::NEG_INFINITY),
        _ => text
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{text:?} is not a float8")),
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// NUMERIC's binary form: digit count, weight (of the first base-10000
/// digit), sign, display scale, then the base-10000 digits, all 16-bit.
fn push_numeric(text: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let special = match text {
        "NaN" => Some(0xC000u16),
        "Infinity" => Some(0xD000),
        "-Infinity" => Some(0xF000),
        _ => None,
    };
    if let Some(sign) = special {
        for v in [0u16, 0, sign, 0] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        return Ok(());
    }
    let bad = || format!("{text:?} is not a decimal in the stream's form");
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int_part, frac_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let dscale = u16::try_from(frac_part.len()).map_err(|_| bad())?;
    let int_part = int_part.trim_start_matches('0').as_bytes();
    let frac = frac_part.as_bytes();
    // Base-10000 digits: the integer part grouped from the right, the
    // fraction grouped from the left.
    let lead = (4 - int_part.len() % 4) % 4;
    let int_groups = (int_part.len() + lead) / 4;
    let frac_groups = frac.len().div_ceil(4);
    let digit_at = |i: usize| -> u16 {
        // i indexes the integer part left-padded with `lead` zeros, then
        // the fraction right-padded with zeros.
        if i < lead {
            0
        } else if i < lead + int_part.len() {
            u16::from(int_part[i - lead] - b'0')
        } else {
            frac.get(i - lead - int_part.len())
                .map_or(0, |b| u16::from(b - b'0'))
        }
    };
    // Each group computed once, on the stack for up to 128 digits.
    let groups = int_groups + frac_groups;
    let mut stack = [0u16; 32];
    let mut heap = Vec::new();
    let digits: &mut [u16] = if groups <= stack.len() {
        &mut stack[..groups]
    } else {
        heap.resize(groups, 0);
        &mut heap
    };
    for (g, d) in digits.iter_mut().enumerate() {
        let base = g * 4;
        *d = digit_at(base) * 1000
            + digit_at(base + 1) * 100
            + digit_at(base + 2) * 10
            + digit_at(base + 3);
    }
    // The digits written run from the first to the last non-zero group;
    // the weight counts from the first.
    let (first, last) = match digits.iter().position(|&d| d != 0) {
        Some(first) => (first, digits.iter().rposition(|&d| d != 0).unwrap_or(first)),
        None => (0, 0),
    };
    let nonzero = digits.get(first).is_some_and(|&d| d != 0);
    let (ndigits, weight, sign) = if nonzero {
        (
            last - first + 1,
            int_groups as i64 - 1 - first as i64,
            if negative { 0x4000u16 } else { 0 },
        )
    } else {
        (0, 0, 0)
    };
    let ndigits = u16::try_from(ndigits).map_err(|_| bad())?;
    let weight = i16::try_from(weight).map_err(|_| bad())?;
    out.extend_from_slice(&ndigits.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    if nonzero {
        for d in &digits[first..=last] {
            out.extend_from_slice(&d.to_be_bytes());
        }
    }
    Ok(())
}

/// Days from 2000-01-01 (PostgreSQL's epoch) of `YYYY-MM-DD` with an
/// astronomical year (`0000` is 1 BC, `-0001` 2 BC), and the rest of the
/// text.
fn parse_date(text: &str) -> Option<(i64, &str)> {
    // The usual shape first: a four-digit year, `YYYY-MM-DD...`.
    let b = text.as_bytes();
    if b.len() >= 10 && b[4] == b'-' && b[7] == b'-' {
        let d = |i: usize| b[i].is_ascii_digit().then(|| i64::from(b[i] - b'0'));
        let year = d(0)? * 1000 + d(1)? * 100 + d(2)? * 10 + d(3)?;
        let month = d(5)? * 10 + d(6)?;
        let day = d(8)? * 10 + d(9)?;
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        return Some((days_from_civil(year, month, day) - 10_957, &text[10..]));
    }
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let year_end = body.find('-')?;
    let year_digits = &body[..year_end];
    if year_digits.len() < 4 || !year_digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i64 = year_digits.parse().ok()?;
    let year = if negative { -year } else { year };
    let rest = &body[year_end + 1..];
    let month = two_digits(rest.get(..2)?)?;
    if rest.as_bytes().get(2) != Some(&b'-') {
        return None;
    }
    let day = two_digits(rest.get(3..5)?)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some((days_from_civil(year, month, day) - 10_957, &rest[5..]))
}

fn two_digits(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    (b.len() == 2 && b[0].is_ascii_digit() && b[1].is_ascii_digit())
        .then(|| i64::from(b[0] - b'0') * 10 + i64::from(b[1] - b'0'))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Microseconds from 2000-01-01 00:00 of `YYYY-MM-DD HH:MM:SS[.ffffff]`
/// (with `Z` or `±HH[:MM[:SS]]` when `with_zone`, converted to UTC).
fn parse_timestamp(text: &str, with_zone: bool) -> Option<i64> {
    match text {
        "infinity" => return Some(i64::MAX),
        "-infinity" => return Some(i64::MIN),
        _ => {}
    }
    let (days, rest) = parse_date(text)?;
    let b = rest.as_bytes();
    if b.len() < 9 || !matches!(b[0], b' ' | b'T') || b[3] != b':' || b[6] != b':' {
        return None;
    }
    let d = |i: usize| b[i].is_ascii_digit().then(|| i64::from(b[i] - b'0'));
    let h = d(1)? * 10 + d(2)?;
    let m = d(4)? * 10 + d(5)?;
    let s = d(7)? * 10 + d(8)?;
    let mut rest = &rest[9..];
    let mut micros = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 6 {
            return None;
        }
        for &digit in &frac.as_bytes()[..n] {
            micros = micros * 10 + i64::from(digit - b'0');
        }
        micros *= 10i64.pow(6 - n as u32);
        rest = &frac[n..];
    }
    let in_range = m < 60 && s < 60 && (h < 24 || (h == 24 && m == 0 && s == 0 && micros == 0));
    if !in_range {
        return None;
    }
    let mut total =
        days.checked_mul(MICROS_PER_DAY)? + ((h * 60 + m) * 60 + s) * 1_000_000 + micros;
    if with_zone {
        let offset = parse_offset(rest)?;
        total -= offset * 1_000_000;
    } else if !rest.is_empty() {
        return None;
    }
    Some(total)
}

/// Seconds east of UTC of `Z` or `±HH[:MM[:SS]]`.
fn parse_offset(text: &str) -> Option<i64> {
    if text == "Z" {
        return Some(0);
    }
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let mut parts = text[1..].split(':');
    let h = two_digits(parts.next()?)?;
    let m = parts.next().map_or(Some(0), two_digits)?;
    let s = parts.next().map_or(Some(0), two_digits)?;
    if parts.next().is_some() || m >= 60 || s >= 60 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60 + s))
}

/// The `n`th (1-based) tuple of a batch's COPY BINARY data, split over
/// chunks of whole tuples (the first starting with the signature): each
/// field's bytes, `None` for NULL. To name the row a server error points at.
pub fn nth_tuple(chunks: &[bytes::Bytes], n: u64) -> Option<Vec<Option<Vec<u8>>>> {
    let mut seen = 0u64;
    let mut first = true;
    for chunk in chunks {
        let mut data: &[u8] = chunk;
        if first {
            data = data.strip_prefix(SIGNATURE)?;
            first = false;
        }
        while data.len() >= 2 {
            let count = i16::from_be_bytes([data[0], data[1]]);
            data = &data[2..];
            if count < 0 {
                return None;
            }
            seen += 1;
            let mut fields = Vec::with_capacity(count as usize);
            for _ in 0..count {
                let len = i32::from_be_bytes(data.get(..4)?.try_into().ok()?);
                data = &data[4..];
                if len < 0 {
                    fields.push(None);
                } else {
                    let len = len as usize;
                    fields.push(Some(data.get(..len)?.to_vec()));
                    data = &data[len..];
                }
            }
            if seen == n {
                return Some(fields);
            }
        }
    }
    None
}

/// A key value of a tuple as text, for error messages.
pub fn describe(ty: BinaryType, bytes: Option<&[u8]>) -> String {
    let Some(b) = bytes else {
        return "NULL".into();
    };
    match ty {
        BinaryType::Int2 => b
            .try_into()
            .map(i16::from_be_bytes)
            .map(|v| v.to_string())
            .ok(),
        BinaryType::Int4 => b
            .try_into()
            .map(i32::from_be_bytes)
            .map(|v| v.to_string())
            .ok(),
        BinaryType::Int8 => b
            .try_into()
            .map(i64::from_be_bytes)
            .map(|v| v.to_string())
            .ok(),
        BinaryType::Text | BinaryType::Json => std::str::from_utf8(b).ok().map(str::to_string),
        BinaryType::Uuid => Some(b.iter().map(|x| format!("{x:02x}")).collect()),
        _ => None,
    }
    .unwrap_or_else(|| format!("({} bytes)", b.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(ty: BinaryType, text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        encode_field(ty, text, &mut out).unwrap();
        let len = i32::from_be_bytes(out[..4].try_into().unwrap());
        assert_eq!(len as usize, out.len() - 4);
        out.split_off(4)
    }

    fn words(v: &[i16]) -> Vec<u8> {
        v.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    #[test]
    fn numerics_in_base_10000() {
        // ndigits, weight, sign, dscale, digits...
        assert_eq!(field(BinaryType::Numeric, "0"), words(&[0, 0, 0, 0]));
        assert_eq!(field(BinaryType::Numeric, "0.00"), words(&[0, 0, 0, 2]));
        assert_eq!(
            field(BinaryType::Numeric, "12.50"),
            words(&[2, 0, 0, 2, 12, 5000])
        );
        assert_eq!(
            field(BinaryType::Numeric, "-12345678.9"),
            words(&[3, 1, 0x4000, 1, 1234, 5678, 9000])
        );
        assert_eq!(
            field(BinaryType::Numeric, "0.0001"),
            words(&[1, -1, 0, 4, 1])
        );
        assert_eq!(field(BinaryType::Numeric, "10000"), words(&[1, 1, 0, 0, 1]));
        assert_eq!(
            field(BinaryType::Numeric, "NaN"),
            words(&[0, 0, 0xC000u16 as i16, 0])
        );
        assert!(encode_field(BinaryType::Numeric, "1e5", &mut Vec::new()).is_err());
        assert!(encode_field(BinaryType::Numeric, "-", &mut Vec::new()).is_err());
    }

    #[test]
    fn dates_and_timestamps_from_2000() {
        assert_eq!(field(BinaryType::Date, "2000-01-01"), 0i32.to_be_bytes());
        assert_eq!(field(BinaryType::Date, "1999-12-31"), (-1i32).to_be_bytes());
        assert_eq!(field(BinaryType::Date, "2024-03-01"), 8826i32.to_be_bytes());
        // Astronomical year 0 is 1 BC, a leap year: 0000-03-01 to 2000-01-01.
        assert_eq!(
            field(BinaryType::Date, "0000-03-01"),
            (-730425i32).to_be_bytes()
        );
        assert!(encode_field(BinaryType::Date, "2023-02-29", &mut Vec::new()).is_err());
        assert_eq!(
            field(BinaryType::Timestamp, "2000-01-02 00:00:01.5"),
            (86_401_500_000i64).to_be_bytes()
        );
        assert_eq!(
            field(BinaryType::Timestamptz, "2000-01-01 05:30:00+05:30"),
            0i64.to_be_bytes()
        );
        assert_eq!(
            field(BinaryType::Timestamptz, "2000-01-01 00:00:00Z"),
            0i64.to_be_bytes()
        );
        assert_eq!(
            field(BinaryType::Timestamp, "infinity"),
            i64::MAX.to_be_bytes()
        );
        assert!(encode_field(
            BinaryType::Timestamp,
            "2000-01-01 00:00:00Z",
            &mut Vec::new()
        )
        .is_err());
    }

    #[test]
    fn tuples_are_found_again() {
        let mut data = SIGNATURE.to_vec();
        let mut enc = BinaryEncoder {
            columns: vec![
                ("id".into(), BinaryType::Int8),
                ("v".into(), BinaryType::Text),
            ],
        };
        for i in 0..3 {
            enc.encode_row([Field::Str(&i.to_string()), Field::Null], &mut data)
                .unwrap();
        }
        let chunks = [bytes::Bytes::from(data)];
        let t = nth_tuple(&chunks, 2).unwrap();
        assert_eq!(describe(BinaryType::Int8, t[0].as_deref()), "1");
        assert_eq!(t[1], None);
        assert!(nth_tuple(&chunks, 4).is_none());
    }
}
