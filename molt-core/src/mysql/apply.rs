//! Writing stream values into an existing MySQL/MariaDB table.
//!
//! The one stream that goes *into* MySQL is the rollback stream of a phase
//! whose source is MySQL (`molt-cutover rollback --after-cutover | molt-load
//! --target mysql://...`): the target's rows go back into the source's own
//! tables. Those tables exist and keep their exact MySQL types, so nothing
//! here creates anything; it decides, per column, how a stream value
//! becomes a value the column holds **unchanged**, which is the dump's rule
//! ([`super::types`]) run backwards: lose nothing.
//!
//! A value the column cannot hold exactly is an error, never a silent
//! change: text longer than the column, an integer out of its range, a
//! decimal with more digits than `DECIMAL(p,s)` keeps, fractional seconds
//! beyond the column's precision, an enum label the column does not have,
//! NaN or infinity into a float. The messages name the column; the writer
//! adds table and key. What only the server can judge (the TIMESTAMP range,
//! which differs between MySQL and MariaDB versions; characters a non-UTF-8
//! column cannot store) is left to it: the writer's session runs with
//! `STRICT_ALL_TABLES`, so those fail too, with the row named.
//!
//! Values are bound as parameters, typed (`Value::Int`, `Value::Date`, ...)
//! where MySQL has a binary form and as text where its own text form is the
//! exact one (DECIMAL, ENUM, SET, JSON).

use base64::Engine as _;
use mysql_async::{Row, Value};

use crate::ident::quote_mysql;
use crate::stream::{Column, Field, TableHeader};
use crate::value::{Interval, LogicalType};

/// The session a writer needs: strict (a value that does not fit is an
/// error, not a warning), an explicit 0 stays 0 in an AUTO_INCREMENT column,
/// TIMESTAMP values are UTC like the stream's, text is UTF-8.
pub const SESSION_SQL: &str = "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,\
NO_ENGINE_SUBSTITUTION,ERROR_FOR_DIVISION_BY_ZERO', SESSION time_zone = '+00:00', NAMES utf8mb4";

/// Placeholders per INSERT. MySQL allows 65 535, but the driver keeps
/// metadata for every parameter of a prepared statement (measured: about
/// 1.5 KB each, 113 MB peak for 16 383 rows of 4 columns), and larger
/// statements were not faster (1M rows: 27 to 31 s for 250 to 16 383 rows
/// per INSERT).
pub const PLACEHOLDERS_PER_INSERT: usize = 8_192;

/// The columns of one table, in order (bind the database and table name).
pub const COLUMNS_SQL: &str = "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, \
CHARACTER_MAXIMUM_LENGTH, CHARACTER_OCTET_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, \
DATETIME_PRECISION, CHARACTER_SET_NAME, EXTRA \
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION";

/// A column of the MySQL table, as information_schema describes it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetColumn {
    pub name: String,
    /// `DATA_TYPE`, lower case.
    pub data_type: String,
    /// `COLUMN_TYPE`: `int(10) unsigned`, `enum('a','b')`.
    pub column_type: String,
    pub nullable: bool,
    pub char_max_length: Option<u64>,
    pub octet_length: Option<u64>,
    pub numeric_precision: Option<u64>,
    pub numeric_scale: Option<u64>,
    pub datetime_precision: Option<u64>,
    pub charset: Option<String>,
    /// A generated (virtual or stored) column: the server computes it.
    pub generated: bool,
}

fn cell_text(row: &Row, i: usize) -> Option<String> {
    match row.as_ref(i)? {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(n) => Some(n.to_string()),
        Value::UInt(n) => Some(n.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn cell_number(row: &Row, i: usize) -> Option<u64> {
    match row.as_ref(i)? {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::UInt(n) => Some(*n),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

impl TargetColumn {
    /// One row of [`COLUMNS_SQL`].
    pub fn from_row(row: &Row) -> TargetColumn {
        let extra = cell_text(row, 10).unwrap_or_default().to_ascii_lowercase();
        TargetColumn {
            name: cell_text(row, 0).unwrap_or_default(),
            data_type: cell_text(row, 1).unwrap_or_default().to_ascii_lowercase(),
            column_type: cell_text(row, 2).unwrap_or_default(),
            nullable: cell_text(row, 3).is_some_and(|s| s.eq_ignore_ascii_case("YES")),
            char_max_length: cell_number(row, 4),
            octet_length: cell_number(row, 5),
            numeric_precision: cell_number(row, 6),
            numeric_scale: cell_number(row, 7),
            datetime_precision: cell_number(row, 8),
            charset: cell_text(row, 9),
            generated: extra.contains("generated"),
        }
    }

    fn unsigned(&self) -> bool {
        self.column_type.to_ascii_lowercase().contains("unsigned")
    }

    fn utf8(&self) -> bool {
        self.charset
            .as_deref()
            .map_or(true, |c| c.to_ascii_lowercase().starts_with("utf8"))
    }
}

/// What the MySQL column is, for writing.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Int {
        min: i128,
        max: i128,
    },
    Year,
    Bit {
        bits: u32,
    },
    Decimal {
        integer_digits: u32,
        scale: u32,
    },
    Float,
    Double,
    /// Text; limits in characters (CHAR/VARCHAR) or bytes (TEXT types).
    Text {
        max_chars: Option<u64>,
        max_bytes: Option<u64>,
    },
    Binary {
        max_bytes: Option<u64>,
    },
    Date,
    Datetime {
        precision: u32,
    },
    Time {
        precision: u32,
    },
    Enum {
        labels: Vec<String>,
    },
    Set {
        labels: Vec<String>,
    },
    Json,
    Geometry,
}

fn kind_of(col: &TargetColumn) -> Result<Kind, String> {
    let unsigned = col.unsigned();
    let int = |bits: u32| {
        if unsigned {
            Kind::Int {
                min: 0,
                max: (1i128 << bits) - 1,
            }
        } else {
            Kind::Int {
                min: -(1i128 << (bits - 1)),
                max: (1i128 << (bits - 1)) - 1,
            }
        }
    };
    let precision = col.datetime_precision.unwrap_or(0).min(6) as u32;
    Ok(match col.data_type.as_str() {
        "tinyint" => int(8),
        "smallint" => int(16),
        "mediumint" => int(24),
        "int" | "integer" => int(32),
        "bigint" => int(64),
        "year" => Kind::Year,
        "bit" => Kind::Bit {
            bits: col.numeric_precision.unwrap_or(1).clamp(1, 64) as u32,
        },
        "decimal" | "numeric" => {
            let p = col.numeric_precision.unwrap_or(10) as u32;
            let s = col.numeric_scale.unwrap_or(0) as u32;
            Kind::Decimal {
                integer_digits: p.saturating_sub(s),
                scale: s,
            }
        }
        "float" => Kind::Float,
        "double" | "real" | "double precision" => Kind::Double,
        "char" | "varchar" => Kind::Text {
            max_chars: col.char_max_length,
            max_bytes: None,
        },
        "tinytext" | "text" | "mediumtext" | "longtext" => Kind::Text {
            max_chars: None,
            // TEXT limits are bytes in the column's charset; only a UTF-8
            // column stores the stream's bytes one to one.
            max_bytes: col.octet_length.filter(|_| col.utf8()),
        },
        // MariaDB's native types take their text form.
        "uuid" | "inet4" | "inet6" => Kind::Text {
            max_chars: None,
            max_bytes: None,
        },
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => Kind::Binary {
            max_bytes: col.octet_length.or(col.char_max_length),
        },
        "date" => Kind::Date,
        "datetime" | "timestamp" => Kind::Datetime { precision },
        "time" => Kind::Time { precision },
        "enum" => Kind::Enum {
            labels: super::types::parse_labels(&col.column_type),
        },
        "set" => Kind::Set {
            labels: super::types::parse_labels(&col.column_type),
        },
        "json" => Kind::Json,
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => Kind::Geometry,
        other => {
            return Err(format!(
                "MySQL type {other} ({}) is not supported",
                col.column_type
            ))
        }
    })
}

/// Whether a column of `kind` can take values of the stream type `ty`.
fn accepts(kind: &Kind, ty: LogicalType, array: bool) -> bool {
    use LogicalType as L;
    if array {
        return matches!(kind, Kind::Set { .. }) && matches!(ty, L::Text | L::Enum);
    }
    match kind {
        Kind::Int { .. } | Kind::Year => matches!(ty, L::Int | L::Bool | L::Decimal),
        Kind::Bit { .. } => matches!(ty, L::Bit | L::Int | L::Bool),
        Kind::Decimal { .. } | Kind::Float | Kind::Double => {
            matches!(ty, L::Int | L::Decimal | L::Float4 | L::Float8)
        }
        Kind::Text { .. } | Kind::Binary { .. } => ty != L::Geometry,
        Kind::Date | Kind::Datetime { .. } => {
            matches!(ty, L::Date | L::Timestamp | L::Timestamptz)
        }
        Kind::Time { .. } => matches!(ty, L::Interval | L::Time),
        Kind::Enum { .. } | Kind::Set { .. } => matches!(ty, L::Enum | L::Text),
        Kind::Json => matches!(ty, L::Json | L::Text),
        Kind::Geometry => ty == L::Geometry,
    }
}

/// How one stream column is written into its MySQL column.
#[derive(Clone, Debug)]
pub struct ColumnWriter {
    /// The MySQL column's own name.
    pub name: String,
    logical: LogicalType,
    nullable: bool,
    kind: Kind,
    column_type: String,
}

impl ColumnWriter {
    /// Decides how `stream` values go into `target`; an error when the
    /// column can never take them (say, bytes into an INT column).
    pub fn new(stream: &Column, target: &TargetColumn) -> Result<ColumnWriter, String> {
        let kind = kind_of(target)?;
        let array = stream.array_dims > 0;
        if !accepts(&kind, stream.logical, array) {
            return Err(format!(
                "the stream's {}{} values cannot go into the MySQL column {} {}",
                stream.logical,
                if array { " array" } else { "" },
                target.name,
                target.column_type
            ));
        }
        Ok(ColumnWriter {
            name: target.name.clone(),
            logical: stream.logical,
            nullable: target.nullable,
            kind,
            column_type: target.column_type.clone(),
        })
    }

    /// The MySQL value for one stream value, or why it does not fit.
    pub fn convert(&self, field: Field<'_>) -> Result<Value, String> {
        let text = match field {
            Field::Null if self.nullable => return Ok(Value::NULL),
            Field::Null => return Err(format!("NULL into NOT NULL column {}", self.name)),
            Field::Array(json) => return self.set_from_array(json),
            Field::Str(s) => s,
        };
        let fits = |why: String| format!("value {} {why}", preview(text));
        match &self.kind {
            Kind::Int { min, max } => {
                let n = self.integer(text).map_err(fits)?;
                if n < *min || n > *max {
                    return Err(fits(format!(
                        "is out of range for {} ({min} to {max})",
                        self.column_type
                    )));
                }
                Ok(if n < 0 {
                    Value::Int(n as i64)
                } else {
                    Value::UInt(n as u64)
                })
            }
            Kind::Year => {
                let n = self.integer(text).map_err(fits)?;
                if n != 0 && !(1901..=2155).contains(&n) {
                    return Err(fits("is not a YEAR (1901 to 2155, or 0)".into()));
                }
                Ok(Value::Int(n as i64))
            }
            Kind::Bit { bits } => {
                let n: u128 = match self.logical {
                    LogicalType::Bit => {
                        if text.is_empty() || !text.bytes().all(|b| b == b'0' || b == b'1') {
                            return Err(fits("is not a bit string".into()));
                        }
                        let significant = text.trim_start_matches('0');
                        if significant.len() > *bits as usize {
                            return Err(fits(format!("has more than {bits} bits")));
                        }
                        u128::from_str_radix(
                            if significant.is_empty() {
                                "0"
                            } else {
                                significant
                            },
                            2,
                        )
                        .map_err(|e| fits(e.to_string()))?
                    }
                    _ => {
                        let n = self.integer(text).map_err(fits)?;
                        if n < 0 || n >= (1i128 << bits) {
                            return Err(fits(format!("does not fit BIT({bits})")));
                        }
                        n as u128
                    }
                };
                Ok(Value::UInt(n as u64))
            }
            Kind::Decimal {
                integer_digits,
                scale,
            } => decimal(text, *integer_digits, *scale)
                .map(|d| Value::Bytes(d.into_bytes()))
                .map_err(|why| fits(format!("{why} for {}", self.column_type))),
            Kind::Float | Kind::Double => {
                let v: f64 = text.parse().map_err(|_| fits("is not a number".into()))?;
                if !v.is_finite() {
                    return Err(fits(
                        "cannot be stored: MySQL has no NaN or infinity".into(),
                    ));
                }
                if self.kind == Kind::Float {
                    let single = v as f32;
                    if !single.is_finite() {
                        return Err(fits("is out of range for FLOAT".into()));
                    }
                    Ok(Value::Float(single))
                } else {
                    Ok(Value::Double(v))
                }
            }
            Kind::Text {
                max_chars,
                max_bytes,
            } => {
                let owned;
                let s = if self.logical == LogicalType::Bytes {
                    owned = String::from_utf8(base64_bytes(text).map_err(fits)?).map_err(|_| {
                        fits("holds bytes that are not UTF-8 text, which the text column cannot store".into())
                    })?;
                    owned.as_str()
                } else {
                    text
                };
                if let Some(max) = max_chars {
                    let n = s.chars().count() as u64;
                    if n > *max {
                        return Err(fits(format!(
                            "is {n} characters, longer than {} allows",
                            self.column_type
                        )));
                    }
                }
                if let Some(max) = max_bytes {
                    if s.len() as u64 > *max {
                        return Err(fits(format!(
                            "is {} bytes, longer than {} allows ({max})",
                            s.len(),
                            self.column_type
                        )));
                    }
                }
                Ok(Value::Bytes(s.as_bytes().to_vec()))
            }
            Kind::Binary { max_bytes } => {
                let bytes = match self.logical {
                    LogicalType::Bytes => base64_bytes(text).map_err(fits)?,
                    LogicalType::Uuid if *max_bytes == Some(16) => {
                        uuid_bytes(text).map_err(fits)?
                    }
                    _ => text.as_bytes().to_vec(),
                };
                if let Some(max) = max_bytes {
                    if bytes.len() as u64 > *max {
                        return Err(fits(format!(
                            "is {} bytes, longer than {} allows",
                            bytes.len(),
                            self.column_type
                        )));
                    }
                }
                Ok(Value::Bytes(bytes))
            }
            Kind::Date => {
                let t = datetime(text).map_err(fits)?;
                if (t.hour, t.minute, t.second, t.micros) != (0, 0, 0, 0) {
                    return Err(fits("has a time of day, which a DATE column drops".into()));
                }
                Ok(Value::Date(t.year, t.month, t.day, 0, 0, 0, 0))
            }
            Kind::Datetime { precision } => {
                let t = datetime(text).map_err(fits)?;
                check_fraction(t.micros, *precision)
                    .map_err(|why| fits(format!("{why}, more than {} keeps", self.column_type)))?;
                Ok(Value::Date(
                    t.year, t.month, t.day, t.hour, t.minute, t.second, t.micros,
                ))
            }
            Kind::Time { precision } => {
                let micros = match self.logical {
                    LogicalType::Time => crate::mysql::decode::parse_time(text)
                        .ok_or_else(|| fits("is not a time of day".into()))?,
                    _ => {
                        let iv = Interval::parse_iso(text)
                            .ok_or_else(|| fits("is not an ISO 8601 interval".into()))?;
                        if iv.months != 0 {
                            return Err(fits(
                                "has months or years, which a TIME column cannot hold".into(),
                            ));
                        }
                        iv.days
                            .checked_mul(86_400_000_000)
                            .and_then(|d| d.checked_add(iv.micros))
                            .ok_or_else(|| fits("is out of range for TIME".into()))?
                    }
                };
                const MAX: i64 = (838 * 3600 + 59 * 60 + 59) * 1_000_000;
                if micros.abs() > MAX {
                    return Err(fits(
                        "is out of range for TIME (-838:59:59 to 838:59:59)".into(),
                    ));
                }
                let abs = micros.unsigned_abs();
                check_fraction((abs % 1_000_000) as u32, *precision)
                    .map_err(|why| fits(format!("{why}, more than {} keeps", self.column_type)))?;
                let secs = abs / 1_000_000;
                Ok(Value::Time(
                    micros < 0,
                    (secs / 86_400) as u32,
                    ((secs / 3600) % 24) as u8,
                    ((secs / 60) % 60) as u8,
                    (secs % 60) as u8,
                    (abs % 1_000_000) as u32,
                ))
            }
            Kind::Enum { labels } => {
                if !labels.iter().any(|l| l == text) {
                    return Err(fits(format!("is not a label of {}", self.column_type)));
                }
                Ok(Value::Bytes(text.as_bytes().to_vec()))
            }
            Kind::Set { labels } => {
                let members: Vec<&str> = if text.is_empty() {
                    Vec::new()
                } else {
                    text.split(',').collect()
                };
                self.set_value(labels, &members).map_err(fits)
            }
            Kind::Json => {
                if serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
                    return Err(fits("is not valid JSON".into()));
                }
                Ok(Value::Bytes(text.as_bytes().to_vec()))
            }
            Kind::Geometry => mysql_geometry(text).map(Value::Bytes).map_err(fits),
        }
    }

    fn integer(&self, text: &str) -> Result<i128, String> {
        match (self.logical, text) {
            (LogicalType::Bool, "true") => Ok(1),
            (LogicalType::Bool, "false") => Ok(0),
            _ => integer(text),
        }
    }

    fn set_from_array(&self, json: &str) -> Result<Value, String> {
        let Kind::Set { labels } = &self.kind else {
            return Err(format!("an array cannot go into column {}", self.name));
        };
        let members: Vec<Option<String>> = serde_json::from_str(json)
            .map_err(|_| format!("value {} is not an array of labels", preview(json)))?;
        let members: Vec<&str> = members
            .iter()
            .map(|m| m.as_deref().ok_or("a SET cannot hold NULL members"))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("value {}: {e}", preview(json)))?;
        self.set_value(labels, &members)
            .map_err(|why| format!("value {} {why}", preview(json)))
    }

    fn set_value(&self, labels: &[String], members: &[&str]) -> Result<Value, String> {
        for m in members {
            if m.contains(',') || !labels.iter().any(|l| l == m) {
                return Err(format!(
                    "has {:?}, which is not a member of {}",
                    m, self.column_type
                ));
            }
        }
        Ok(Value::Bytes(members.join(",").into_bytes()))
    }
}

/// A value for messages: short, quoted.
fn preview(text: &str) -> String {
    if text.chars().count() <= 40 {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(40).collect();
        format!("{head:?}... ({} characters)", text.chars().count())
    }
}

fn base64_bytes(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| "is not base64".to_string())
}

fn uuid_bytes(text: &str) -> Result<Vec<u8>, String> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return Err("is not a UUID".into());
    }
    (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| "is not a UUID".into()))
        .collect()
}

/// An integer in stream text: `-12`, also an integral decimal `12.00`.
fn integer(text: &str) -> Result<i128, String> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if !fraction.bytes().all(|b| b == b'0') {
        return Err("is not an integer".into());
    }
    let digits = whole.strip_prefix(['-', '+']).unwrap_or(whole);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("is not an integer".into());
    }
    whole
        .parse::<i128>()
        .map_err(|_| "is out of range".to_string())
}

/// A decimal that `DECIMAL(p,s)` holds exactly, in plain notation.
fn decimal(text: &str, integer_digits: u32, scale: u32) -> Result<String, String> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    if (whole.is_empty() && fraction.is_empty())
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err("is not a plain decimal (NaN and infinity cannot be stored)".into());
    }
    let whole = whole.trim_start_matches('0');
    let fraction = fraction.trim_end_matches('0');
    if whole.len() > integer_digits as usize {
        return Err("has too many integer digits".into());
    }
    if fraction.len() > scale as usize {
        return Err(format!("has more than {scale} fractional digits"));
    }
    let mut out = String::with_capacity(text.len() + 1);
    if negative && !(whole.is_empty() && fraction.is_empty()) {
        out.push('-');
    }
    out.push_str(if whole.is_empty() { "0" } else { whole });
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    Ok(out)
}

fn check_fraction(micros: u32, precision: u32) -> Result<(), String> {
    let unit = 10u32.pow(6 - precision.min(6));
    if micros % unit != 0 {
        return Err(format!("has fractional seconds .{micros:06}"));
    }
    Ok(())
}

#[derive(Debug, PartialEq)]
struct DateTime {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    micros: u32,
}

/// `YYYY-MM-DD[ HH:MM:SS[.ffffff]][Z]` within years 1 to 9999.
fn datetime(text: &str) -> Result<DateTime, String> {
    let bad = || "is not a date or timestamp MySQL can hold (years 1 to 9999)".to_string();
    let s = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = s.split_once(' ').unwrap_or((s, ""));
    let d = date.as_bytes();
    if d.len() != 10 || d[4] != b'-' || d[7] != b'-' {
        return Err(bad());
    }
    let num = |t: &str| t.parse::<u32>().map_err(|_| bad());
    let (year, month, day) = (num(&date[0..4])?, num(&date[5..7])?, num(&date[8..10])?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if year == 0 || !(1..=12).contains(&month) || day == 0 || day > days_in_month {
        return Err(bad());
    }
    let mut out = DateTime {
        year: year as u16,
        month: month as u8,
        day: day as u8,
        hour: 0,
        minute: 0,
        second: 0,
        micros: 0,
    };
    if !time.is_empty() {
        let micros = crate::mysql::decode::parse_time(time).ok_or_else(bad)?;
        if !(0..86_400_000_000).contains(&micros) || time.starts_with('-') {
            return Err(bad());
        }
        let secs = micros / 1_000_000;
        out.hour = (secs / 3600) as u8;
        out.minute = ((secs / 60) % 60) as u8;
        out.second = (secs % 60) as u8;
        out.micros = (micros % 1_000_000) as u32;
    }
    Ok(out)
}

/// Hex EWKB (the stream form) → MySQL's stored geometry: the SRID as 4
/// little-endian bytes, then plain WKB (the SRID flag and field removed).
fn mysql_geometry(hex: &str) -> Result<Vec<u8>, String> {
    if hex.len() % 2 != 0 || hex.len() < 10 {
        return Err("is not hex EWKB".into());
    }
    let wkb: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| "is not hex EWKB".to_string())?;
    let little = match wkb[0] {
        1 => true,
        0 => false,
        _ => return Err("is not hex EWKB (unknown byte order)".into()),
    };
    let word = |b: &[u8]| {
        let b = [b[0], b[1], b[2], b[3]];
        if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let ty = word(&wkb[1..5]);
    if ty & 0xC000_0000 != 0 {
        return Err("has Z or M coordinates, which MySQL geometries cannot hold".into());
    }
    let mut out = Vec::with_capacity(wkb.len() + 4);
    if ty & 0x2000_0000 == 0 {
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&wkb);
        return Ok(out);
    }
    if wkb.len() < 9 {
        return Err("is not hex EWKB (too short)".into());
    }
    let srid = word(&wkb[5..9]);
    let plain = ty & !0x2000_0000;
    out.extend_from_slice(&srid.to_le_bytes());
    out.push(wkb[0]);
    out.extend_from_slice(&if little {
        plain.to_le_bytes()
    } else {
        plain.to_be_bytes()
    });
    out.extend_from_slice(&wkb[9..]);
    Ok(out)
}

/// `INSERT INTO t (a, b) VALUES (?, ?), (?, ?), ...` for `rows` rows.
pub fn insert_sql(table: &str, columns: &[String], rows: usize) -> String {
    let names: Vec<String> = columns.iter().map(|c| quote_mysql(c)).collect();
    let one = format!("({})", vec!["?"; columns.len()].join(", "));
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", names.join(", "));
    sql.reserve(rows * (one.len() + 2));
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&one);
    }
    sql
}

/// Rows per INSERT: [`PLACEHOLDERS_PER_INSERT`] and `batch_rows` at most.
pub fn rows_per_insert(columns: usize, batch_rows: u64) -> usize {
    (PLACEHOLDERS_PER_INSERT / columns.max(1))
        .min(usize::try_from(batch_rows).unwrap_or(usize::MAX))
        .max(1)
}

/// A section's slice on the MySQL table: the stream's filter (the source
/// dialect, which is MySQL's for a rollback stream) and the shard bounds,
/// bound as parameters converted like row values.
pub fn section_predicate(
    header: &TableHeader,
    writer_of: impl Fn(&str) -> Option<ColumnWriter>,
) -> Result<(Option<String>, Vec<Value>), String> {
    let mut parts = Vec::new();
    let mut params = Vec::new();
    if let Some(filter) = header
        .slice
        .target_predicate()
        .map(str::trim)
        .filter(|f| !f.is_empty())
    {
        parts.push(format!("({filter})"));
    }
    let shard = &header.slice.shard;
    if !shard.is_whole() {
        let key: Vec<String> = if shard.key.is_empty() {
            header
                .primary_key()
                .iter()
                .map(|c| c.name.clone())
                .collect()
        } else {
            shard.key.clone()
        };
        if key.is_empty() {
            return Err(format!("shard {shard} has bounds but the table has no key"));
        }
        for (bound, op) in [(&shard.lower, ">="), (&shard.upper, "<")] {
            let Some(values) = bound else { continue };
            if values.len() != key.len() {
                return Err(format!(
                    "shard {shard}: a bound has {} values for {} key columns",
                    values.len(),
                    key.len()
                ));
            }
            let mut cols = Vec::new();
            for (name, value) in key.iter().zip(values) {
                let writer = writer_of(name).ok_or_else(|| {
                    format!("shard {shard}: key column {name} is not in the table")
                })?;
                let text = match value {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    other => return Err(format!("shard {shard}: bound {other} is not a scalar")),
                };
                params.push(
                    writer
                        .convert(Field::Str(&text))
                        .map_err(|e| format!("shard {shard} bound of {name}: {e}"))?,
                );
                cols.push(quote_mysql(&writer.name));
            }
            let marks = vec!["?"; cols.len()].join(", ");
            if cols.len() == 1 {
                parts.push(format!("{} {op} ?", cols[0]));
            } else {
                parts.push(format!("({}) {op} ({marks})", cols.join(", ")));
            }
        }
    }
    Ok(((!parts.is_empty()).then(|| parts.join(" AND ")), params))
}

/// Errors worth retrying: a lost connection, a deadlock or lock wait
/// timeout (the transaction was rolled back), a server shutting down or a
/// killed connection.
pub fn is_transient(error: &mysql_async::Error) -> bool {
    match error {
        mysql_async::Error::Io(_) => true,
        mysql_async::Error::Driver(d) => matches!(
            d,
            mysql_async::DriverError::ConnectionClosed | mysql_async::DriverError::PoolDisconnected
        ),
        mysql_async::Error::Server(e) => {
            matches!(
                e.code,
                1040 | 1053 | 1205 | 1213 | 1927 | 2006 | 2013 | 4031
            )
        }
        _ => false,
    }
}

/// The number in MySQL's "... at row N" (1-based within the statement).
pub fn row_in_message(message: &str) -> Option<usize> {
    let at = message.rfind(" at row ")?;
    let digits: String = message[at + 8..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(data_type: &str, column_type: &str) -> TargetColumn {
        TargetColumn {
            name: "c".into(),
            data_type: data_type.into(),
            column_type: column_type.into(),
            nullable: true,
            charset: Some("utf8mb4".into()),
            ..Default::default()
        }
    }

    fn stream(ty: LogicalType, array: bool) -> Column {
        serde_json::from_value(serde_json::json!({
            "name": "c", "source_type": "x", "target_type": "x", "type": ty,
            "array_dims": u8::from(array), "nullable": true
        }))
        .unwrap()
    }

    fn writer(ty: LogicalType, t: TargetColumn) -> ColumnWriter {
        ColumnWriter::new(&stream(ty, false), &t).unwrap()
    }

    #[test]
    fn integers_are_range_checked() {
        let w = writer(LogicalType::Int, target("tinyint", "tinyint(4)"));
        assert_eq!(w.convert(Field::Str("-128")).unwrap(), Value::Int(-128));
        assert!(w
            .convert(Field::Str("128"))
            .unwrap_err()
            .contains("out of range"));
        let w = writer(
            LogicalType::Decimal,
            target("bigint", "bigint(20) unsigned"),
        );
        assert_eq!(
            w.convert(Field::Str("18446744073709551615")).unwrap(),
            Value::UInt(u64::MAX)
        );
        assert!(w.convert(Field::Str("-1")).is_err());
        assert!(w
            .convert(Field::Str("1.5"))
            .unwrap_err()
            .contains("not an integer"));
        let w = writer(LogicalType::Bool, target("tinyint", "tinyint(1)"));
        assert_eq!(w.convert(Field::Str("true")).unwrap(), Value::UInt(1));
        let w = writer(LogicalType::Int, target("year", "year(4)"));
        assert!(w.convert(Field::Str("1900")).is_err());
        assert_eq!(w.convert(Field::Str("2155")).unwrap(), Value::Int(2155));
    }

    #[test]
    fn decimals_keep_every_digit_or_fail() {
        let mut t = target("decimal", "decimal(5,2)");
        t.numeric_precision = Some(5);
        t.numeric_scale = Some(2);
        let w = writer(LogicalType::Decimal, t);
        assert_eq!(
            w.convert(Field::Str("-012.30")).unwrap(),
            Value::Bytes(b"-12.3".to_vec())
        );
        assert!(w.convert(Field::Str("1000.00")).is_err());
        assert!(w
            .convert(Field::Str("1.005"))
            .unwrap_err()
            .contains("fractional"));
        assert!(w.convert(Field::Str("NaN")).is_err());
        assert_eq!(
            w.convert(Field::Str("-0.00")).unwrap(),
            Value::Bytes(b"0".to_vec())
        );
    }

    #[test]
    fn text_lengths_are_characters_for_varchar() {
        let mut t = target("varchar", "varchar(3)");
        t.char_max_length = Some(3);
        t.nullable = false;
        let w = writer(LogicalType::Text, t);
        assert!(w.convert(Field::Str("äöü")).is_ok());
        let e = w.convert(Field::Str("abcd")).unwrap_err();
        assert!(
            e.contains("4 characters") && e.contains("varchar(3)"),
            "{e}"
        );
        assert!(w.convert(Field::Null).unwrap_err().contains("NOT NULL"));
    }

    #[test]
    fn bytes_bits_and_uuids() {
        let mut t = target("varbinary", "varbinary(2)");
        t.octet_length = Some(2);
        let w = writer(LogicalType::Bytes, t);
        assert_eq!(
            w.convert(Field::Str("AP8=")).unwrap(),
            Value::Bytes(vec![0, 255])
        );
        assert!(w.convert(Field::Str("AP8Q")).is_err());
        let mut t = target("bit", "bit(5)");
        t.numeric_precision = Some(5);
        let w = writer(LogicalType::Bit, t);
        assert_eq!(w.convert(Field::Str("10101")).unwrap(), Value::UInt(21));
        assert!(w.convert(Field::Str("100000")).is_err());
        let mut t = target("binary", "binary(16)");
        t.octet_length = Some(16);
        let w = writer(LogicalType::Uuid, t);
        let Value::Bytes(b) = w
            .convert(Field::Str("123e4567-e89b-12d3-a456-426614174000"))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(b[0], 0x12);
        assert_eq!(b.len(), 16);
    }

    #[test]
    fn dates_times_and_intervals() {
        let mut t = target("datetime", "datetime(3)");
        t.datetime_precision = Some(3);
        let w = writer(LogicalType::Timestamp, t);
        assert_eq!(
            w.convert(Field::Str("2024-02-29 23:59:59.123")).unwrap(),
            Value::Date(2024, 2, 29, 23, 59, 59, 123_000)
        );
        assert!(w
            .convert(Field::Str("2024-02-29 23:59:59.1234"))
            .unwrap_err()
            .contains("fractional"));
        assert!(w.convert(Field::Str("2023-02-29 00:00:00")).is_err());
        assert!(w.convert(Field::Str("infinity")).is_err());
        let w = writer(LogicalType::Timestamptz, target("timestamp", "timestamp"));
        assert_eq!(
            w.convert(Field::Str("2024-01-02 03:04:05Z")).unwrap(),
            Value::Date(2024, 1, 2, 3, 4, 5, 0)
        );
        let w = writer(LogicalType::Interval, target("time", "time"));
        assert_eq!(
            w.convert(Field::Str("PT-12H-34M-56S")).unwrap(),
            Value::Time(true, 0, 12, 34, 56, 0)
        );
        assert_eq!(
            w.convert(Field::Str("PT838H59M59S")).unwrap(),
            Value::Time(false, 34, 22, 59, 59, 0)
        );
        assert!(w.convert(Field::Str("PT839H")).is_err());
        assert!(w.convert(Field::Str("P1M")).is_err());
        let w = writer(LogicalType::Date, target("date", "date"));
        assert_eq!(
            w.convert(Field::Str("1000-01-01")).unwrap(),
            Value::Date(1000, 1, 1, 0, 0, 0, 0)
        );
        assert!(w.convert(Field::Str("0000-01-01")).is_err());
    }

    #[test]
    fn enums_sets_json_and_floats() {
        let w = writer(LogicalType::Enum, target("enum", "enum('a','b')"));
        assert_eq!(
            w.convert(Field::Str("b")).unwrap(),
            Value::Bytes(b"b".to_vec())
        );
        assert!(w.convert(Field::Str("c")).is_err());
        let w = ColumnWriter::new(
            &stream(LogicalType::Text, true),
            &target("set", "set('x','y','z')"),
        )
        .unwrap();
        assert_eq!(
            w.convert(Field::Array(r#"["x","z"]"#)).unwrap(),
            Value::Bytes(b"x,z".to_vec())
        );
        assert_eq!(
            w.convert(Field::Array("[]")).unwrap(),
            Value::Bytes(Vec::new())
        );
        assert!(w.convert(Field::Array(r#"["q"]"#)).is_err());
        let w = writer(LogicalType::Json, target("json", "json"));
        assert!(w.convert(Field::Str("{\"a\": [1, 2.50]}")).is_ok());
        assert!(w.convert(Field::Str("{nope")).is_err());
        let w = writer(LogicalType::Float4, target("float", "float"));
        assert_eq!(w.convert(Field::Str("1.5")).unwrap(), Value::Float(1.5));
        assert!(w.convert(Field::Str("NaN")).is_err());
        assert!(ColumnWriter::new(
            &stream(LogicalType::Bytes, false),
            &target("int", "int(11)")
        )
        .is_err());
    }

    #[test]
    fn geometry_goes_back_to_mysql_storage() {
        // POINT(1 2) with SRID 4326, as the dump writes it.
        let ewkb = "0101000020E6100000000000000000F03F0000000000000040";
        let raw = mysql_geometry(ewkb).unwrap();
        assert_eq!(&raw[..4], &4326u32.to_le_bytes());
        assert_eq!(&raw[4..9], &[1, 1, 0, 0, 0]);
        assert_eq!(raw.len(), 4 + 21);
    }

    #[test]
    fn statements() {
        assert_eq!(
            insert_sql("`d`.`t`", &["a".into(), "b".into()], 2),
            "INSERT INTO `d`.`t` (`a`, `b`) VALUES (?, ?), (?, ?)"
        );
        assert_eq!(rows_per_insert(3, 100_000), 2_730);
        assert_eq!(rows_per_insert(3, 100), 100);
        assert_eq!(
            row_in_message("Data too long for column 'name' at row 3"),
            Some(3)
        );
    }
}
