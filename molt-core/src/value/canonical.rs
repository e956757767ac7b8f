//! The canonical form: one spelling per value, per logical type.
//!
//! Two values are equal exactly when their canonical forms are byte-equal.
//! The rules follow what the target database itself considers equal:
//! `1.50` and `1.5` are the same DECIMAL, `{"a":1, "b":2}` and
//! `{"b":2,"a":1}` the same JSONB, `'ab  '` and `'ab'` the same CHAR(4).
//! They never merge values the target would keep apart: a float that differs
//! in its last bit, a trailing space in a VARCHAR, a timestamp 1µs later all
//! stay different.

use std::borrow::Cow;

use super::{Interval, LogicalType};

/// The canonical form of one stream-encoded scalar value.
///
/// `padded` marks blank-padded CHAR(n) columns, whose trailing blanks carry
/// no meaning. A value that does not parse as its type is returned as is:
/// it can still be compared, and rejecting it is the reader's job.
pub fn canonical(ty: LogicalType, padded: bool, text: &str) -> Cow<'_, str> {
    match ty {
        LogicalType::Text | LogicalType::Enum => {
            if padded {
                Cow::Borrowed(text.trim_end_matches(' '))
            } else {
                Cow::Borrowed(text)
            }
        }
        LogicalType::Int => canonical_int(text),
        LogicalType::Decimal => canonical_decimal(text),
        LogicalType::Float8 => canonical_float8(text),
        LogicalType::Float4 => canonical_float4(text),
        LogicalType::Bool => canonical_bool(text),
        LogicalType::Date
        | LogicalType::Time
        | LogicalType::Timetz
        | LogicalType::Timestamp
        | LogicalType::Timestamptz => canonical_datetime(ty, text),
        LogicalType::Interval => match Interval::parse_iso(text) {
            Some(iv) => Cow::Owned(iv.to_iso()),
            None => Cow::Borrowed(text),
        },
        LogicalType::Json => match super::canonical_json(text) {
            Some(json) => Cow::Owned(json),
            None => Cow::Borrowed(text),
        },
        LogicalType::Uuid => lower(text),
        LogicalType::Geometry => {
            if text.bytes().any(|b| b.is_ascii_lowercase()) {
                Cow::Owned(text.to_ascii_uppercase())
            } else {
                Cow::Borrowed(text)
            }
        }
        LogicalType::Bytes | LogicalType::Bit => Cow::Borrowed(text),
    }
}

/// The canonical form of an array value given as JSON text (nested arrays of
/// strings and nulls): each element canonicalized, written compactly.
pub fn canonical_array(ty: LogicalType, padded: bool, json: &str) -> String {
    fn walk(v: &serde_json::Value, ty: LogicalType, padded: bool, out: &mut String) {
        match v {
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    walk(item, ty, padded, out);
                }
                out.push(']');
            }
            serde_json::Value::String(s) => {
                let c = canonical(ty, padded, s);
                out.push_str(&serde_json::to_string(c.as_ref()).expect("string serializes"));
            }
            serde_json::Value::Null => out.push_str("null"),
            other => {
                let text = other.to_string();
                let c = canonical(ty, padded, &text);
                out.push_str(&serde_json::to_string(c.as_ref()).expect("string serializes"));
            }
        }
    }
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(v) => {
            let mut out = String::with_capacity(json.len());
            walk(&v, ty, padded, &mut out);
            out
        }
        Err(_) => json.to_string(),
    }
}

fn lower(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

fn canonical_bool(text: &str) -> Cow<'_, str> {
    match text {
        "true" => return Cow::Borrowed("true"),
        "false" => return Cow::Borrowed("false"),
        _ => {}
    }
    let word = |words: &[&str]| words.iter().any(|w| text.eq_ignore_ascii_case(w));
    if word(&["t", "true", "1", "y", "yes", "on"]) {
        Cow::Borrowed("true")
    } else if word(&["f", "false", "0", "n", "no", "off"]) {
        Cow::Borrowed("false")
    } else {
        Cow::Borrowed(text)
    }
}

fn canonical_int(text: &str) -> Cow<'_, str> {
    let (neg, digits) = split_sign(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Cow::Borrowed(text);
    }
    let trimmed = digits.trim_start_matches('0');
    let trimmed = if trimmed.is_empty() { "0" } else { trimmed };
    let neg = neg && trimmed != "0";
    if !neg && trimmed.len() == text.len() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(if neg {
        format!("-{trimmed}")
    } else {
        trimmed.to_string()
    })
}

fn split_sign(text: &str) -> (bool, &str) {
    if let Some(rest) = text.strip_prefix('-') {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix('+') {
        (false, rest)
    } else {
        (false, text)
    }
}

/// Canonical exact decimal: plain notation, no leading zeros, no trailing
/// fractional zeros, no `-0`. Exponents (`1.5E+3`) are expanded.
pub(crate) fn canonical_decimal(text: &str) -> Cow<'_, str> {
    // The common case first: plain digits need none of the word checks.
    if is_canonical_decimal(text) {
        return Cow::Borrowed(text);
    }
    match text {
        "NaN" | "Infinity" | "-Infinity" => return Cow::Borrowed(text),
        _ => {}
    }
    let word = |words: &[&str]| words.iter().any(|w| text.eq_ignore_ascii_case(w));
    if word(&["nan"]) {
        return Cow::Borrowed("NaN");
    }
    if word(&["infinity", "inf", "+infinity", "+inf"]) {
        return Cow::Borrowed("Infinity");
    }
    if word(&["-infinity", "-inf"]) {
        return Cow::Borrowed("-Infinity");
    }
    match normalize_decimal(text) {
        Some(s) if s == text => Cow::Borrowed(text),
        Some(s) => Cow::Owned(s),
        None => Cow::Borrowed(text),
    }
}

/// Canonical exact decimal that keeps the scale: [`canonical_decimal`]'s
/// value with as many fractional digits as the text has (PostgreSQL's rule
/// for numeric input: the fraction's digits less the exponent, at least
/// none), so `12.300` and `12.3` differ while `1.5E+3` and `1500` do not.
/// This is what a numeric column and a JSONB number hold: the scale is part
/// of the value a client reads.
pub(crate) fn canonical_decimal_scaled(text: &str) -> Cow<'_, str> {
    let value = canonical_decimal(text);
    let Some(scale) = decimal_scale(text) else {
        return value;
    };
    let have = value.find('.').map_or(0, |p| value.len() - p - 1);
    if have >= scale {
        return value;
    }
    let mut out = value.into_owned();
    if have == 0 {
        out.push('.');
    }
    out.extend(std::iter::repeat('0').take(scale - have));
    Cow::Owned(out)
}

/// The scale of a decimal's text (`1.50` → 2, `1.5E+3` → 0, `15E-1` → 1);
/// `None` for words (`NaN`) and what is not a number.
fn decimal_scale(text: &str) -> Option<usize> {
    let body = text.trim_start_matches(['-', '+']);
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(pos) => (&body[..pos], body[pos + 1..].parse::<i64>().ok()?),
        None => (body, 0),
    };
    let fraction = mantissa.split_once('.').map_or(0, |(_, f)| f.len());
    let scale = (fraction as i64).checked_sub(exp)?.max(0);
    // As bounded as normalize_decimal's exponent.
    (scale <= 100_000).then_some(scale as usize)
}

/// The common case without allocating: `-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?`
/// and not `-0`.
fn is_canonical_decimal(text: &str) -> bool {
    let body = text.strip_prefix('-').unwrap_or(text);
    let bytes = body.as_bytes();
    let (int_part, frac_part) = match memchr::memchr(b'.', bytes) {
        Some(pos) => (&bytes[..pos], Some(&bytes[pos + 1..])),
        None => (bytes, None),
    };
    if int_part.is_empty() || !int_part.iter().all(u8::is_ascii_digit) {
        return false;
    }
    if int_part.len() > 1 && int_part[0] == b'0' {
        return false;
    }
    match frac_part {
        None => !(int_part == b"0" && body.len() != text.len()),
        Some(frac) => {
            !frac.is_empty() && frac.iter().all(u8::is_ascii_digit) && frac[frac.len() - 1] != b'0'
        }
    }
}

fn normalize_decimal(text: &str) -> Option<String> {
    let (neg, body) = split_sign(text);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(pos) => (&body[..pos], body[pos + 1..].parse::<i64>().ok()?),
        None => (body, 0),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part
        .bytes()
        .chain(frac_part.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // All digits, and where the decimal point sits among them.
    // Bounded before any arithmetic: `1e-9223372036854775808` once wrapped
    // `exp.abs()` negative in release builds and asked for a buffer of 2^63
    // zeros (found while fuzzing).
    if exp.unsigned_abs() > 100_000 {
        return None;
    }
    let mut digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
    let mut point = i64::try_from(int_part.len()).ok()?.checked_add(exp)?;
    if point < 0 {
        let mut padded = vec![b'0'; (-point) as usize];
        padded.extend_from_slice(&digits);
        digits = padded;
        point = 0;
    }
    while (digits.len() as i64) < point {
        digits.push(b'0');
    }
    let point = point as usize;
    let (int_digits, frac_digits) = digits.split_at(point);
    let int_str = std::str::from_utf8(int_digits)
        .ok()?
        .trim_start_matches('0');
    let frac_str = std::str::from_utf8(frac_digits).ok()?.trim_end_matches('0');
    let int_str = if int_str.is_empty() { "0" } else { int_str };
    let is_zero = int_str == "0" && frac_str.is_empty();
    let mut out = String::with_capacity(text.len());
    if neg && !is_zero {
        out.push('-');
    }
    out.push_str(int_str);
    if !frac_str.is_empty() {
        out.push('.');
        out.push_str(frac_str);
    }
    Some(out)
}

fn float_special(text: &str) -> Option<&'static str> {
    match text.to_ascii_lowercase().as_str() {
        "nan" | "-nan" | "+nan" => Some("NaN"),
        "infinity" | "inf" | "+infinity" | "+inf" => Some("Infinity"),
        "-infinity" | "-inf" => Some("-Infinity"),
        _ => None,
    }
}

/// The words for the values that are not finite: a literal beyond the
/// type's range (`1e400`) reads as an infinity and is spelt as one, not as
/// Rust's `inf`.
fn non_finite(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("Infinity")
    } else if v == f64::NEG_INFINITY {
        Some("-Infinity")
    } else {
        None
    }
}

fn canonical_float8(text: &str) -> Cow<'_, str> {
    if let Some(s) = float_special(text) {
        return Cow::Borrowed(s);
    }
    match text.parse::<f64>() {
        Ok(v) => non_finite(v).map_or_else(|| Cow::Owned(format!("{v:e}")), Cow::Borrowed),
        Err(_) => Cow::Borrowed(text),
    }
}

fn canonical_float4(text: &str) -> Cow<'_, str> {
    if let Some(s) = float_special(text) {
        return Cow::Borrowed(s);
    }
    match text.parse::<f32>() {
        Ok(v) => {
            non_finite(f64::from(v)).map_or_else(|| Cow::Owned(format!("{v:e}")), Cow::Borrowed)
        }
        Err(_) => Cow::Borrowed(text),
    }
}

/// Dates and times: `T` becomes a space, trailing fractional zeros go, a
/// UTC offset spelled `+00`, `+00:00` or `+0000` becomes `Z` for
/// timestamptz, and infinities are lower case.
fn canonical_datetime(ty: LogicalType, text: &str) -> Cow<'_, str> {
    if is_plain_datetime(ty, text.as_bytes()) {
        return Cow::Borrowed(text);
    }
    canonical_datetime_in_full(ty, text)
}

fn canonical_datetime_in_full(ty: LogicalType, text: &str) -> Cow<'_, str> {
    if text.eq_ignore_ascii_case("infinity") || text.eq_ignore_ascii_case("+infinity") {
        return Cow::Borrowed("infinity");
    }
    if text.eq_ignore_ascii_case("-infinity") {
        return Cow::Borrowed("-infinity");
    }
    let mut s: Cow<'_, str> = Cow::Borrowed(text);
    if matches!(ty, LogicalType::Timestamp | LogicalType::Timestamptz) && s.len() > 10 {
        // The date/time separator sits after the (possibly signed, possibly
        // long) year: the first 'T' or ' ' after the first 8 chars.
        if let Some(pos) = s.find('T') {
            let mut owned = s.into_owned();
            owned.replace_range(pos..pos + 1, " ");
            s = Cow::Owned(owned);
        }
    }
    // Split off a zone suffix for trimming fractional zeros.
    let (body, zone) = split_zone(&s, ty);
    let body_trimmed = trim_fraction(body);
    let zone_norm = match (ty, zone) {
        (LogicalType::Timestamptz, "+00" | "+00:00" | "+0000" | "-00" | "-00:00" | "Z" | "z") => {
            "Z"
        }
        (_, z) => z,
    };
    if body_trimmed.len() == body.len() && zone_norm == zone {
        return s;
    }
    Cow::Owned(format!("{body_trimmed}{zone_norm}"))
}

/// The common case, already canonical: `YYYY-MM-DD` for a date, and
/// `YYYY-MM-DD HH:MM:SS[.fff]` (no trailing fractional zero) for a
/// timestamp without time zone.
fn is_plain_datetime(ty: LogicalType, b: &[u8]) -> bool {
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let date = b.len() >= 10
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10);
    match ty {
        LogicalType::Date => date && b.len() == 10,
        LogicalType::Timestamp => {
            date && b.len() >= 19
                && b[10] == b' '
                && digits(11..13)
                && b[13] == b':'
                && digits(14..16)
                && b[16] == b':'
                && digits(17..19)
                && (b.len() == 19
                    || (b.len() > 20
                        && b[19] == b'.'
                        && digits(20..b.len())
                        && b[b.len() - 1] != b'0'))
        }
        _ => false,
    }
}

fn split_zone(s: &str, ty: LogicalType) -> (&str, &str) {
    match ty {
        LogicalType::Timestamptz | LogicalType::Timetz => {
            if let Some(stripped) = s.strip_suffix(['Z', 'z']) {
                return (stripped, &s[stripped.len()..]);
            }
            // The zone starts at the last '+' or '-' after the time part.
            let time_start = if ty == LogicalType::Timetz {
                0
            } else {
                s.find(' ').unwrap_or(s.len())
            };
            match s[time_start..].rfind(['+', '-']) {
                Some(rel) if time_start + rel > 0 => s.split_at(time_start + rel),
                _ => (s, ""),
            }
        }
        _ => (s, ""),
    }
}

fn trim_fraction(body: &str) -> &str {
    // Only a fraction of seconds: a '.' after the last ':'.
    let Some(colon) = body.rfind(':') else {
        return body;
    };
    match body[colon..].find('.') {
        Some(rel) => {
            let dot = colon + rel;
            let trimmed = body.trim_end_matches('0');
            if trimmed.len() == dot + 1 {
                &body[..dot]
            } else if trimmed.len() > dot {
                trimmed
            } else {
                body
            }
        }
        None => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LogicalType::*;

    fn c(ty: LogicalType, s: &str) -> String {
        canonical(ty, false, s).into_owned()
    }

    #[test]
    fn decimals_ignore_trailing_zeros_and_exponents() {
        assert_eq!(c(Decimal, "1.50"), "1.5");
        assert_eq!(c(Decimal, "001.000"), "1");
        assert_eq!(c(Decimal, "-0.00"), "0");
        assert_eq!(c(Decimal, "1.5E+3"), "1500");
        assert_eq!(c(Decimal, "-12e-3"), "-0.012");
        assert_eq!(c(Decimal, "nan"), "NaN");
        assert_ne!(c(Decimal, "1.000001"), c(Decimal, "1.000000"));
        let scaled = |t: &str| canonical_decimal_scaled(t).into_owned();
        assert_eq!(scaled("12.300"), "12.300");
        assert_ne!(scaled("12.300"), scaled("12.3"));
        assert_eq!(scaled("1.5E+3"), "1500");
        assert_eq!(scaled("1.50E+1"), "15.0");
        assert_eq!(scaled("15E-1"), "1.5");
        assert_eq!(scaled("-0.00"), "0.00");
        assert_eq!(scaled("007"), "7");
        assert_eq!(scaled(".5"), "0.5");
        assert_eq!(scaled("NaN"), "NaN");
        // Exponents out of range are not a decimal: the text stays as it is.
        for text in [
            "1e-9223372036854775808",
            "1e9223372036854775807",
            "-0.5e-9223372036854775807",
            "1e100001",
        ] {
            assert_eq!(c(Decimal, text), text);
        }
    }

    #[test]
    fn floats_compare_by_bits() {
        assert_eq!(c(Float8, "0.1"), c(Float8, "0.10000000000000000"));
        assert_eq!(c(Float8, "1e+100"), c(Float8, "1E100"));
        assert_ne!(c(Float8, "0.1"), c(Float8, "0.10000000000000002"));
        assert_eq!(c(Float8, "Infinity"), "Infinity");
        assert_eq!(c(Float8, "-inf"), "-Infinity");
        // Found by fuzzing: a literal beyond the range reads as an infinity
        // and must be spelt as one (it was Rust's `inf`).
        assert_eq!(c(Float4, "-0011e901"), "-Infinity");
        assert_eq!(c(Float8, "1e400"), "Infinity");
        assert_eq!(c(Float4, "1e39"), c(Float4, "Infinity"));
        assert_eq!(
            c(Float4, "3.4028235e+38"),
            c(Float4, "340282350000000000000000000000000000000")
        );
    }

    #[test]
    fn char_padding_only_for_padded_columns() {
        assert_eq!(canonical(Text, true, "ab  "), "ab");
        assert_eq!(canonical(Text, false, "ab "), "ab ");
    }

    #[test]
    fn timestamps_normalize_spelling_not_value() {
        assert_eq!(
            c(Timestamp, "2020-01-02T03:04:05.120000"),
            "2020-01-02 03:04:05.12"
        );
        assert_eq!(
            c(Timestamp, "2020-01-02 03:04:05.000000"),
            "2020-01-02 03:04:05"
        );
        assert_eq!(
            c(Timestamptz, "2020-01-02 03:04:05.5+00"),
            "2020-01-02 03:04:05.5Z"
        );
        assert_eq!(
            c(Timestamptz, "2020-01-02 03:04:05+00:00"),
            "2020-01-02 03:04:05Z"
        );
        assert_ne!(
            c(Timestamp, "2020-01-02 03:04:05.000001"),
            c(Timestamp, "2020-01-02 03:04:05")
        );
        assert_eq!(c(Timestamp, "Infinity"), "infinity");
        assert_eq!(c(Timestamp, "-0044-03-15 12:00:00"), "-0044-03-15 12:00:00");
        assert_eq!(c(Time, "10:00:00.100"), "10:00:00.1");
        assert_eq!(c(Timetz, "10:00:00.100+02"), "10:00:00.1+02");
    }

    #[test]
    fn bools_and_ints() {
        assert_eq!(c(Bool, "t"), "true");
        assert_eq!(c(Bool, "1"), "true");
        assert_eq!(c(Bool, "0"), "false");
        assert_eq!(c(Int, "+007"), "7");
        assert_eq!(c(Int, "-0"), "0");
        assert_eq!(c(Int, "18446744073709551615"), "18446744073709551615");
    }

    #[test]
    fn plain_datetimes_are_what_the_full_rules_leave_alone() {
        let cases = [
            (LogicalType::Date, "2024-02-29"),
            (LogicalType::Date, "0000-01-01"),
            (LogicalType::Date, "2024-02-2"),
            (LogicalType::Timestamp, "2024-01-01 00:00:01"),
            (LogicalType::Timestamp, "2024-01-01 00:00:01.5"),
            (LogicalType::Timestamp, "2024-01-01 00:00:01.500"),
            (LogicalType::Timestamp, "2024-01-01T00:00:01"),
            (LogicalType::Timestamp, "2024-01-01 00:00:01."),
            (LogicalType::Timestamp, "2024-01-01 00:00:01.000001"),
            (LogicalType::Timestamp, "12024-01-01 00:00:01"),
        ];
        let mut plain = 0;
        for (ty, text) in cases {
            if is_plain_datetime(ty, text.as_bytes()) {
                plain += 1;
                assert_eq!(canonical_datetime_in_full(ty, text), text, "{text}");
            }
            assert_eq!(
                canonical(ty, false, text),
                canonical_datetime_in_full(ty, text),
                "{text}"
            );
        }
        assert_eq!(plain, 5);
    }

    #[test]
    fn arrays_canonicalize_elements() {
        assert_eq!(
            canonical_array(Decimal, false, r#"[["1.50",null],["2.0","3"]]"#),
            r#"[["1.5",null],["2","3"]]"#
        );
    }
}
