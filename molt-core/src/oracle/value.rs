//! Oracle values in their stream form, from plain parts.
//!
//! The `oracle` crate's types are only taken apart in `convert.rs` (behind
//! the feature); everything that decides a stream value lives here, on
//! plain numbers and strings, so it is tested in the default build.
//!
//! Three Oracle facts shape these functions:
//!
//! - **Years**: Oracle has no year 0 (`-1` is 1 BC); the stream uses
//!   astronomical years (`0000` is 1 BC). [`astronomical_year`].
//! - **Nanoseconds**: TIMESTAMP(9) and INTERVAL DAY TO SECOND(9) hold
//!   nanoseconds; the target holds microseconds. A value with digits below
//!   the microsecond is an error unless the user allows rounding, and then
//!   it is truncated to the microsecond (never rounded up, so nothing
//!   carries into the next second or day) and counted under the policy
//!   [`TRUNCATE_NANOS`].
//! - **Empty strings are NULL** in Oracle: see [`empty_string_is_null`].

use base64::Engine as _;

use crate::value::{canonical, Interval, LogicalType};

/// The `changes` policy name for values truncated to the microsecond.
pub const TRUNCATE_NANOS: &str = "truncate-nanoseconds";

/// Choices about values that the target cannot hold exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConvertOptions {
    /// Truncate sub-microsecond digits instead of refusing the value.
    pub allow_rounding: bool,
}

/// A value that cannot be written: the caller adds table, column and key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn verr<T>(message: impl Into<String>) -> Result<T, ValueError> {
    Err(ValueError(message.into()))
}

/// Oracle treats `''` as NULL in VARCHAR2, CHAR and RAW: inserting `''`
/// stores NULL, so an Oracle source never holds an empty string there.
/// molt-dump therefore writes NULL, and the target holds NULL. Always true;
/// a named function so that the tools state the rule where they use it.
pub const fn empty_string_is_null() -> bool {
    true
}

/// The comparison rule molt-verify applies, **on both sides**, when the
/// source is Oracle: an empty text or bytes value is the same as NULL
/// (Oracle cannot tell them apart, so neither can its applications; an
/// application writing `''` to the target after cutover meant NULL).
/// Other types are returned unchanged.
pub fn fold_empty(logical: LogicalType, value: Option<&str>) -> Option<&str> {
    match (logical, value) {
        (LogicalType::Text | LogicalType::Bytes | LogicalType::Enum, Some("")) => None,
        _ => value,
    }
}

/// Oracle's signed year (no year 0) as an astronomical year.
pub fn astronomical_year(oracle_year: i32) -> i64 {
    if oracle_year < 0 {
        oracle_year as i64 + 1
    } else {
        oracle_year as i64
    }
}

/// An astronomical year as Oracle's signed year.
pub fn oracle_year(astronomical: i64) -> i64 {
    if astronomical <= 0 {
        astronomical - 1
    } else {
        astronomical
    }
}

fn push_year(out: &mut String, year: i64) {
    if year < 0 {
        out.push_str(&format!("-{:04}", -year));
    } else {
        out.push_str(&format!("{year:04}"));
    }
}

/// A date-time as Oracle's client hands it over: Oracle's signed year,
/// and for a value with a time zone the offset of its fields from UTC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DateTimeParts {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanosecond: u32,
    /// Offset of the fields from UTC in minutes (0 without a time zone).
    pub offset_minutes: i32,
}

/// Days since 1970-01-01 of an astronomical (proleptic Gregorian) date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// Microseconds of a nanosecond fraction, under the rounding policy.
/// Returns the microseconds and whether digits were dropped.
fn micros_of(nanos: i64, opts: &ConvertOptions, what: &str) -> Result<(i64, bool), ValueError> {
    let rest = nanos % 1000;
    if rest != 0 && !opts.allow_rounding {
        return verr(format!(
            "{what} has digits below the microsecond ({nanos} ns), which the target cannot hold \
             (allow rounding to truncate them to the microsecond)"
        ));
    }
    Ok((nanos / 1000, rest != 0))
}

/// A DATE or TIMESTAMP as stream text (`YYYY-MM-DD HH:MM:SS[.ffffff]`,
/// astronomical years). With `utc`, the value is moved to UTC by its offset
/// and gets the `Z` suffix (TIMESTAMP WITH TIME ZONE). Returns the text and
/// whether sub-microsecond digits were truncated.
pub fn datetime_text(
    p: &DateTimeParts,
    utc: bool,
    opts: &ConvertOptions,
) -> Result<(String, bool), ValueError> {
    let (micros, truncated) = micros_of(p.nanosecond as i64, opts, "the timestamp")?;
    let mut year = astronomical_year(p.year);
    let (mut month, mut day) = (p.month, p.day);
    let mut secs = p.hour as i64 * 3600 + p.minute as i64 * 60 + p.second as i64;
    if p.offset_minutes != 0 {
        let total =
            days_from_civil(year, month, day) * 86_400 + secs - p.offset_minutes as i64 * 60;
        let (y, m, d) = civil_from_days(total.div_euclid(86_400));
        (year, month, day) = (y, m, d);
        secs = total.rem_euclid(86_400);
    }
    let mut out = String::with_capacity(32);
    push_year(&mut out, year);
    out.push_str(&format!(
        "-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ));
    if micros != 0 {
        let frac = format!("{micros:06}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    if utc {
        out.push('Z');
    }
    Ok((out, truncated))
}

/// INTERVAL YEAR TO MONTH as stream text.
pub fn interval_ym_text(years: i32, months: i32) -> String {
    Interval {
        months: years as i64 * 12 + months as i64,
        days: 0,
        micros: 0,
    }
    .to_iso()
}

/// INTERVAL DAY TO SECOND as stream text. Oracle gives every field with
/// the interval's sign. Returns the text and whether nanoseconds were
/// truncated.
pub fn interval_ds_text(
    days: i32,
    hours: i32,
    minutes: i32,
    seconds: i32,
    nanoseconds: i32,
    opts: &ConvertOptions,
) -> Result<(String, bool), ValueError> {
    let (frac_micros, truncated) = micros_of(nanoseconds as i64, opts, "the interval")?;
    let micros = hours as i64 * 3_600_000_000
        + minutes as i64 * 60_000_000
        + seconds as i64 * 1_000_000
        + frac_micros;
    Ok((
        Interval {
            months: 0,
            days: days as i64,
            micros,
        }
        .to_iso(),
        truncated,
    ))
}

/// An Oracle NUMBER's text (as the client prints it: `.5`, `-1.5E+20`) as
/// stream text: a plain decimal, or for an integer column an integer.
pub fn number_text(raw: &str, logical: LogicalType) -> Result<String, ValueError> {
    let plain = canonical(LogicalType::Decimal, false, raw.trim());
    let valid = {
        let body = plain.strip_prefix('-').unwrap_or(&plain);
        !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    };
    if !valid {
        return verr(format!("NUMBER value {raw:?} is not a decimal number"));
    }
    match logical {
        LogicalType::Int if plain.contains('.') => {
            verr(format!("NUMBER value {raw} is not an integer"))
        }
        LogicalType::Float8 => {
            let v: f64 = plain
                .parse()
                .map_err(|_| ValueError(format!("NUMBER value {raw} is not a number")))?;
            let text = float8_text(v);
            if canonical(LogicalType::Decimal, false, &text) != plain {
                return verr(format!("FLOAT value {raw} does not fit a float8 exactly"));
            }
            Ok(text)
        }
        _ => Ok(plain.into_owned()),
    }
}

/// The shortest text that reads back to the same double.
pub fn float8_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{v:?}")
    }
}

/// The shortest text that reads back to the same float.
pub fn float4_text(v: f32) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{v:?}")
    }
}

/// RAW and BLOB bytes as stream text (base64).
pub fn bytes_text(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// RAW(16) as a UUID.
pub fn uuid_text(bytes: &[u8]) -> Result<String, ValueError> {
    if bytes.len() != 16 {
        return verr(format!(
            "RAW value of {} bytes is not a UUID (16 bytes)",
            bytes.len()
        ));
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// A JSON document stored in a BLOB: its UTF-8 text, unchanged.
pub fn json_bytes_text(bytes: &[u8]) -> Result<String, ValueError> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => verr(format!("JSON document in a BLOB is not UTF-8 ({e}); OSON or UTF-16 documents are not supported")),
    }
}

/// `SDO_UTIL.TO_WKBGEOMETRY` output (ISO/OGC WKB) and the SDO_SRID as hex
/// EWKB, upper case: the SRID flag and value go into the outer geometry's
/// header, ISO Z/M type codes (1000s, 2000s, 3000s) become EWKB flags.
pub fn geometry_text(wkb: &[u8], srid: Option<u32>) -> Result<String, ValueError> {
    if wkb.len() < 5 || wkb[0] > 1 {
        return verr("SDO_GEOMETRY did not convert to WKB (the value is too short or has no byte order mark)");
    }
    let little = wkb[0] == 1;
    let raw: [u8; 4] = wkb[1..5].try_into().expect("4 bytes");
    let code = if little {
        u32::from_le_bytes(raw)
    } else {
        u32::from_be_bytes(raw)
    };
    let (mut ty, flags) = if code & 0xE000_0000 != 0 {
        (code & 0x0FFF_FFFF, code & 0xE000_0000)
    } else {
        (code, 0)
    };
    let mut ewkb_flags = flags;
    if ty >= 1000 {
        let dims = ty / 1000;
        ty %= 1000;
        if dims == 1 || dims == 3 {
            ewkb_flags |= 0x8000_0000;
        }
        if dims == 2 || dims == 3 {
            ewkb_flags |= 0x4000_0000;
        }
    }
    let mut out_code = ty | ewkb_flags;
    let srid = srid.filter(|&s| s != 0);
    if srid.is_some() {
        out_code |= 0x2000_0000;
    }
    let mut out = Vec::with_capacity(wkb.len() + 4);
    out.push(wkb[0]);
    out.extend_from_slice(&if little {
        out_code.to_le_bytes()
    } else {
        out_code.to_be_bytes()
    });
    if let Some(s) = srid {
        out.extend_from_slice(&if little {
            s.to_le_bytes()
        } else {
            s.to_be_bytes()
        });
    }
    out.extend_from_slice(&wkb[5..]);
    Ok(out.iter().map(|b| format!("{b:02X}")).collect())
}

/// A stream value (a shard bound) as the text bound to Oracle for the
/// key-comparison expression of [`super::sql::bind_expr`]: astronomical
/// years become Oracle years, `Z` becomes `+00:00`, base64 and UUIDs
/// become hex.
pub fn bind_text(logical: LogicalType, value: &str) -> Result<String, ValueError> {
    match logical {
        LogicalType::Timestamp | LogicalType::Timestamptz | LogicalType::Date => {
            let (neg, rest) = match value.strip_prefix('-') {
                Some(r) => (true, r),
                None => (false, value),
            };
            let dash = rest
                .find('-')
                .ok_or_else(|| ValueError(format!("bad timestamp {value:?}")))?;
            let year: i64 = rest[..dash]
                .parse()
                .map_err(|_| ValueError(format!("bad timestamp {value:?}")))?;
            let year = oracle_year(if neg { -year } else { year });
            let mut body = rest[dash..].to_string();
            if logical == LogicalType::Timestamptz {
                body = match body.strip_suffix('Z') {
                    Some(b) => format!("{b} +00:00"),
                    None => return verr(format!("timestamptz bound {value:?} is not in UTC (Z)")),
                };
            }
            let mut out = String::new();
            push_year(&mut out, year);
            out.push_str(&body);
            Ok(out)
        }
        LogicalType::Bytes => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value)
                .map_err(|e| ValueError(format!("bytes bound is not base64: {e}")))?;
            Ok(bytes.iter().map(|b| format!("{b:02X}")).collect())
        }
        LogicalType::Uuid => Ok(value.replace('-', "").to_ascii_uppercase()),
        _ => Ok(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::too_many_arguments)]
    fn dt(
        year: i32,
        month: u32,
        day: u32,
        h: u32,
        mi: u32,
        s: u32,
        ns: u32,
        off: i32,
    ) -> DateTimeParts {
        DateTimeParts {
            year,
            month,
            day,
            hour: h,
            minute: mi,
            second: s,
            nanosecond: ns,
            offset_minutes: off,
        }
    }

    #[test]
    fn timestamps() {
        let o = ConvertOptions::default();
        assert_eq!(
            datetime_text(&dt(2024, 2, 29, 23, 59, 59, 1000, 0), false, &o)
                .unwrap()
                .0,
            "2024-02-29 23:59:59.000001"
        );
        assert_eq!(
            datetime_text(&dt(-44, 3, 15, 12, 0, 0, 0, 0), false, &o)
                .unwrap()
                .0,
            "-0043-03-15 12:00:00"
        );
        assert_eq!(
            datetime_text(&dt(-1, 1, 1, 0, 0, 0, 0, 0), false, &o)
                .unwrap()
                .0,
            "0000-01-01 00:00:00"
        );
        // 00:30 at +01:00 is the previous day in UTC, across a year.
        assert_eq!(
            datetime_text(&dt(2024, 1, 1, 0, 30, 0, 0, 60), true, &o)
                .unwrap()
                .0,
            "2023-12-31 23:30:00Z"
        );
        assert_eq!(
            datetime_text(&dt(2024, 2, 28, 22, 0, 0, 0, -150), true, &o)
                .unwrap()
                .0,
            "2024-02-29 00:30:00Z"
        );
        let err = datetime_text(&dt(2024, 1, 1, 0, 0, 0, 123_456_789, 0), false, &o).unwrap_err();
        assert!(err.0.contains("123456789 ns"), "{err}");
        let (text, truncated) = datetime_text(
            &dt(2024, 1, 1, 0, 0, 0, 999_999_999, 0),
            false,
            &ConvertOptions {
                allow_rounding: true,
            },
        )
        .unwrap();
        assert_eq!(
            (text.as_str(), truncated),
            ("2024-01-01 00:00:00.999999", true)
        );
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -719_468, -1, 0, 1, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(number_text(".5", LogicalType::Decimal).unwrap(), "0.5");
        assert_eq!(
            number_text("-1.5E+3", LogicalType::Decimal).unwrap(),
            "-1500"
        );
        assert_eq!(number_text("42", LogicalType::Int).unwrap(), "42");
        assert!(number_text("4.2", LogicalType::Int).is_err());
        assert_eq!(number_text("0.1", LogicalType::Float8).unwrap(), "0.1");
        assert!(number_text("0.12345678901234567", LogicalType::Float8).is_err());
        assert_eq!(float8_text(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(float4_text(0.1f32), "0.1");
    }

    #[test]
    fn intervals() {
        assert_eq!(interval_ym_text(1, 2), "P1Y2M");
        assert_eq!(interval_ym_text(-1, -2), "P-1Y-2M");
        let o = ConvertOptions::default();
        assert_eq!(
            interval_ds_text(3, 4, 5, 6, 7000, &o).unwrap().0,
            "P3DT4H5M6.000007S"
        );
        assert_eq!(interval_ds_text(-1, -2, 0, 0, 0, &o).unwrap().0, "P-1DT-2H");
        assert!(interval_ds_text(0, 0, 0, 0, 1, &o).is_err());
    }

    #[test]
    fn geometry_gets_srid() {
        // POINT(1 2), little endian.
        let mut wkb = vec![1u8, 1, 0, 0, 0];
        wkb.extend_from_slice(&1f64.to_le_bytes());
        wkb.extend_from_slice(&2f64.to_le_bytes());
        let hex = geometry_text(&wkb, Some(4326)).unwrap();
        assert!(hex.starts_with("0101000020E6100000"), "{hex}");
        assert!(geometry_text(&wkb, None).unwrap().starts_with("0101000000"));
        // ISO POINT Z (1001) big endian becomes the EWKB Z flag.
        let iso_z = [0u8, 0, 0, 0x03, 0xE9];
        assert!(geometry_text(&iso_z, None)
            .unwrap()
            .starts_with("0080000001"));
    }

    #[test]
    fn binds_and_empty_strings() {
        assert_eq!(
            bind_text(LogicalType::Timestamp, "-0043-03-15 12:00:00").unwrap(),
            "-0044-03-15 12:00:00"
        );
        assert_eq!(
            bind_text(LogicalType::Timestamptz, "2024-01-01 00:00:00Z").unwrap(),
            "2024-01-01 00:00:00 +00:00"
        );
        assert_eq!(
            bind_text(LogicalType::Bytes, "3q2+7w==").unwrap(),
            "DEADBEEF"
        );
        assert_eq!(
            uuid_text(&[0x12; 16]).unwrap(),
            "12121212-1212-1212-1212-121212121212"
        );
        assert!(empty_string_is_null());
        assert_eq!(fold_empty(LogicalType::Text, Some("")), None);
        assert_eq!(fold_empty(LogicalType::Int, Some("")), Some(""));
        assert_eq!(fold_empty(LogicalType::Text, Some("a")), Some("a"));
    }
}
