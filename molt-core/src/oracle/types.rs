//! The Oracle → CockroachDB type mapping.
//!
//! [`map_column`] decides, for one catalog column, the target type (SQL that
//! CockroachDB and PostgreSQL both accept), the logical stream type, and how
//! molt-dump reads the value ([`ReadKind`], which fixes the select-list
//! expression). The rule is the one of every molt source: **lose nothing**.
//! Every value the Oracle column can hold must fit the target column and
//! read back unchanged; where that costs something (an unconstrained
//! `NUMBER` becomes an unconstrained `DECIMAL`, not an `INT8`), the choice
//! and its reason are in `docs/type-mapping.md` ("Oracle → CockroachDB").
//! Keep the two in step.
//!
//! This module needs no Oracle client: it works on plain catalog rows, so
//! it is tested (and usable for planning) without the `oracle` feature.

use crate::stream::TableName;
use crate::value::LogicalType;

/// One column as `ALL_TAB_COLS` describes it (joined with
/// `ALL_TAB_IDENTITY_COLS` and the table's `IS JSON` check constraints).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OracleColumn {
    /// `COLUMN_NAME`, exactly as stored (upper case when created unquoted).
    pub name: String,
    /// `DATA_TYPE`: `NUMBER`, `VARCHAR2`, `TIMESTAMP(6) WITH TIME ZONE`,
    /// `INTERVAL DAY(2) TO SECOND(6)`, `SDO_GEOMETRY`...
    pub data_type: String,
    /// `DATA_TYPE_OWNER`: `MDSYS` for SDO_GEOMETRY, `SYS` for XMLTYPE, the
    /// schema of a user-defined type.
    pub data_type_owner: Option<String>,
    /// `DATA_LENGTH`, in bytes.
    pub data_length: Option<u32>,
    /// `DATA_PRECISION`: decimal digits for NUMBER, binary digits for FLOAT.
    pub data_precision: Option<u32>,
    /// `DATA_SCALE`; may be negative; fractional-second digits of a TIMESTAMP.
    pub data_scale: Option<i32>,
    /// `CHAR_USED`: `B` (byte length semantics) or `C` (characters).
    pub char_used: Option<String>,
    /// `CHAR_LENGTH`, in characters.
    pub char_length: Option<u32>,
    /// `NULLABLE = 'Y'`.
    pub nullable: bool,
    /// `DATA_DEFAULT` as Oracle keeps it (Oracle SQL text).
    pub data_default: Option<String>,
    /// `VIRTUAL_COLUMN = 'YES'`: the default is its generating expression.
    pub virtual_column: bool,
    /// A row of `ALL_TAB_IDENTITY_COLS` exists for the column.
    pub identity: bool,
    /// A check constraint `col IS JSON` holds for the column.
    pub is_json: bool,
}

/// How molt-dump reads one column: the select-list expression(s) and the
/// conversion of the fetched value into stream text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadKind {
    /// NUMBER fetched as its exact decimal text.
    Number,
    /// FLOAT(b) with b <= 49 (at most 15 significant digits), fetched as
    /// decimal text and written as the float8 that holds it exactly.
    NumberAsFloat8,
    BinaryFloat,
    BinaryDouble,
    /// VARCHAR2, NVARCHAR2, CHAR, NCHAR, CLOB, NCLOB, LONG; and ROWID/UROWID
    /// and XMLTYPE through a conversion to text in the select list.
    Text,
    /// RAW, BLOB, LONG RAW: base64.
    Bytes,
    /// RAW(16) read as a UUID (option `raw16_as_uuid`).
    RawUuid,
    /// DATE: a date and a time of day, whole seconds.
    Date,
    /// TIMESTAMP(p).
    Timestamp,
    /// TIMESTAMP WITH [LOCAL] TIME ZONE, selected through `SYS_EXTRACT_UTC`.
    TimestampUtc,
    IntervalYM,
    IntervalDS,
    /// A JSON document stored as text (CLOB/VARCHAR2 `IS JSON`, or the
    /// JSON type serialized to a CLOB): the text as it is.
    JsonText,
    /// A JSON document in a BLOB (`IS JSON`): UTF-8 bytes, as they are.
    JsonBytes,
    /// BOOLEAN (23ai).
    Boolean,
    /// SDO_GEOMETRY: two select-list values, the WKB and the SRID, written
    /// as hex EWKB.
    Geometry,
}

impl ReadKind {
    /// The select-list expressions for a column read through table alias
    /// `alias` (Oracle needs an alias to reach an object's attributes).
    pub fn select_exprs(self, column: &OracleColumn, alias: &str) -> Vec<String> {
        let c = format!("{alias}.{}", super::quote_oracle(&column.name));
        let base = column.data_type.to_ascii_uppercase();
        match self {
            ReadKind::TimestampUtc => vec![format!("SYS_EXTRACT_UTC({c})")],
            ReadKind::Geometry => vec![
                format!("SDO_UTIL.TO_WKBGEOMETRY({c})"),
                format!("{c}.SDO_SRID"),
            ],
            ReadKind::Text if base == "XMLTYPE" => {
                vec![format!("XMLSERIALIZE(CONTENT {c} AS CLOB)")]
            }
            ReadKind::Text if base == "ROWID" || base == "UROWID" => {
                vec![format!("CAST({c} AS VARCHAR2(4000))")]
            }
            ReadKind::JsonText if base == "JSON" => {
                vec![format!("JSON_SERIALIZE({c} RETURNING CLOB)")]
            }
            _ => vec![c],
        }
    }
}

/// What [`map_column`] decides for one column.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapped {
    pub target_type: String,
    pub logical: LogicalType,
    /// Blank-padded CHAR(n)/NCHAR(n).
    pub padded: bool,
    pub read: ReadKind,
    /// Fractional-second digits the source can hold (TIMESTAMP(9) → 9):
    /// more than 6 means values may carry nanoseconds the target cannot.
    pub source_fraction_digits: u8,
}

/// Options of the mapping that express intent the catalog cannot show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapOptions {
    /// Map RAW(16) columns to UUID (the usual storage of `SYS_GUID()`
    /// values) instead of BYTEA.
    pub raw16_as_uuid: bool,
}

/// A column that cannot be mapped: names the table and the column.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{table} column {column}: unsupported Oracle type {data_type}: {reason}")]
pub struct MapError {
    pub table: String,
    pub column: String,
    pub data_type: String,
    pub reason: String,
}

impl OracleColumn {
    /// The type as a DDL would declare it: `NUMBER(8,2)`, `VARCHAR2(255 CHAR)`,
    /// `INTEGER`, `TIMESTAMP(6) WITH TIME ZONE`, `MDSYS.SDO_GEOMETRY`.
    pub fn declared_type(&self) -> String {
        let dt = self.data_type.to_ascii_uppercase();
        let chars = |n: Option<u32>| n.or(self.data_length).unwrap_or(0);
        match dt.as_str() {
            "NUMBER" => match (self.data_precision, self.data_scale) {
                (None, None) => "NUMBER".into(),
                (None, Some(0)) => "INTEGER".into(),
                (None, Some(s)) => format!("NUMBER(*,{s})"),
                (Some(p), None | Some(0)) => format!("NUMBER({p})"),
                (Some(p), Some(s)) => format!("NUMBER({p},{s})"),
            },
            "FLOAT" => format!("FLOAT({})", self.data_precision.unwrap_or(126)),
            "VARCHAR2" | "CHAR" => {
                let unit = if self.char_used.as_deref() == Some("C") {
                    " CHAR"
                } else {
                    " BYTE"
                };
                let n = if unit == " CHAR" {
                    chars(self.char_length)
                } else {
                    self.data_length.unwrap_or(0)
                };
                format!("{dt}({n}{unit})")
            }
            "NVARCHAR2" | "NCHAR" => format!("{dt}({})", chars(self.char_length)),
            "RAW" => format!("RAW({})", self.data_length.unwrap_or(0)),
            _ => match self.data_type_owner.as_deref() {
                Some(owner) if !owner.is_empty() && owner != "SYS" && owner != "PUBLIC" => {
                    format!("{owner}.{dt}")
                }
                _ => dt,
            },
        }
    }

    /// The digits in the first parentheses of `DATA_TYPE`
    /// (`TIMESTAMP(9)` → 9, `INTERVAL DAY(2) TO SECOND(6)` → 2).
    fn type_digits(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let mut rest = self.data_type.as_str();
        while let Some(open) = rest.find('(') {
            let Some(close) = rest[open..].find(')') else {
                break;
            };
            if let Ok(n) = rest[open + 1..open + close].trim().parse() {
                out.push(n);
            }
            rest = &rest[open + close + 1..];
        }
        out
    }
}

fn m(target_type: impl Into<String>, logical: LogicalType, read: ReadKind) -> Mapped {
    Mapped {
        target_type: target_type.into(),
        logical,
        padded: false,
        read,
        source_fraction_digits: 0,
    }
}

/// NUMBER(p,s) → the narrowest target type that holds every value exactly.
pub fn map_number(precision: Option<u32>, scale: Option<i32>) -> (String, LogicalType) {
    use LogicalType as L;
    match (precision, scale) {
        // NUMBER: up to 38 significant digits at any exponent (1e-130 to
        // 1e126). No fixed (p,s) holds all of that.
        (None, None) => ("DECIMAL".into(), L::Decimal),
        // INTEGER, INT, SMALLINT are NUMBER(*,0): 38 integer digits.
        (None, Some(s)) if s <= 0 => ("DECIMAL(38,0)".into(), L::Decimal),
        (None, Some(s)) => (format!("DECIMAL(38,{s})"), L::Decimal),
        (Some(p), None | Some(0)) => match p {
            0..=4 => ("INT2".into(), L::Int),
            5..=9 => ("INT4".into(), L::Int),
            10..=18 => ("INT8".into(), L::Int),
            _ => (format!("DECIMAL({p},0)"), L::Decimal),
        },
        // Oracle allows s > p (NUMBER(2,5) holds 0.00012): DECIMAL(s,s)
        // holds those, DECIMAL(p,s) would be invalid.
        (Some(p), Some(s)) if s > 0 => (format!("DECIMAL({},{s})", p.max(s as u32)), L::Decimal),
        // Negative scale rounds to tens, hundreds...: integers of p - s digits.
        (Some(p), Some(s)) => (format!("DECIMAL({},0)", p as i64 - s as i64), L::Decimal),
    }
}

/// Maps one Oracle column of `table` to its target type, logical type and
/// reading. An unknown or unsupported type is an error naming both.
pub fn map_column(
    table: &TableName,
    col: &OracleColumn,
    opts: &MapOptions,
) -> Result<Mapped, MapError> {
    use LogicalType as L;
    let fail = |reason: &str| MapError {
        table: table.to_string(),
        column: col.name.clone(),
        data_type: col.declared_type(),
        reason: reason.to_string(),
    };
    let dt = col.data_type.trim().to_ascii_uppercase();
    let head = dt.split(['(', ' ']).next().unwrap_or("");
    let digits = col.type_digits();
    let json_read = |bytes: bool| {
        m(
            "JSONB",
            L::Json,
            if bytes {
                ReadKind::JsonBytes
            } else {
                ReadKind::JsonText
            },
        )
    };
    let mapped = match head {
        "NUMBER" if col.is_json => return Err(fail("an IS JSON check on a NUMBER column makes no sense")),
        "NUMBER" => {
            let (target, logical) = map_number(col.data_precision, col.data_scale);
            m(target, logical, ReadKind::Number)
        }
        "FLOAT" => {
            // FLOAT(b) is a decimal NUMBER of about b * 0.30103 digits. A
            // double holds any decimal of up to 15 significant digits
            // exactly (text → double → shortest text gives it back), which
            // is b <= 49. Wider FLOATs stay decimal.
            let b = col.data_precision.unwrap_or(126);
            if b <= 49 {
                m("FLOAT8", L::Float8, ReadKind::NumberAsFloat8)
            } else {
                m("DECIMAL", L::Decimal, ReadKind::Number)
            }
        }
        "BINARY_FLOAT" => m("FLOAT4", L::Float4, ReadKind::BinaryFloat),
        "BINARY_DOUBLE" => m("FLOAT8", L::Float8, ReadKind::BinaryDouble),
        "VARCHAR2" | "NVARCHAR2" | "VARCHAR" if col.is_json => json_read(false),
        "VARCHAR2" | "NVARCHAR2" | "VARCHAR" => {
            // VARCHAR(n) counts characters. With BYTE semantics n bytes
            // hold at most n characters, so VARCHAR(n) is always enough.
            let n = col.char_length.filter(|&n| n > 0).or(col.data_length).unwrap_or(0);
            if n == 0 {
                m("TEXT", L::Text, ReadKind::Text)
            } else {
                m(format!("VARCHAR({n})"), L::Text, ReadKind::Text)
            }
        }
        "CHAR" | "NCHAR" => {
            let n = col.char_length.filter(|&n| n > 0).or(col.data_length).unwrap_or(1).max(1);
            Mapped { padded: true, ..m(format!("CHAR({n})"), L::Text, ReadKind::Text) }
        }
        "CLOB" | "NCLOB" if col.is_json => json_read(false),
        "CLOB" | "NCLOB" | "LONG" if dt != "LONG RAW" => m("TEXT", L::Text, ReadKind::Text),
        "BLOB" if col.is_json => json_read(true),
        "BLOB" | "LONG" => m("BYTEA", L::Bytes, ReadKind::Bytes),
        "RAW" if opts.raw16_as_uuid && col.data_length == Some(16) => m("UUID", L::Uuid, ReadKind::RawUuid),
        "RAW" => m("BYTEA", L::Bytes, ReadKind::Bytes),
        // Oracle's DATE has a time of day (whole seconds).
        "DATE" => m("TIMESTAMP(0)", L::Timestamp, ReadKind::Date),
        "TIMESTAMP" => {
            let p = digits.first().copied().or(col.data_scale.map(|s| s.max(0) as u32)).unwrap_or(6);
            let target_p = p.min(6);
            let (target, logical, read) = if dt.contains("TIME ZONE") {
                (format!("TIMESTAMPTZ({target_p})"), L::Timestamptz, ReadKind::TimestampUtc)
            } else {
                (format!("TIMESTAMP({target_p})"), L::Timestamp, ReadKind::Timestamp)
            };
            Mapped { source_fraction_digits: p as u8, ..m(target, logical, read) }
        }
        "INTERVAL" if dt.contains("YEAR") => m("INTERVAL", L::Interval, ReadKind::IntervalYM),
        "INTERVAL" => {
            let frac = digits.get(1).copied().or(col.data_scale.map(|s| s.max(0) as u32)).unwrap_or(6);
            Mapped { source_fraction_digits: frac as u8, ..m("INTERVAL", L::Interval, ReadKind::IntervalDS) }
        }
        "ROWID" | "UROWID" => m("TEXT", L::Text, ReadKind::Text),
        "XMLTYPE" => m("TEXT", L::Text, ReadKind::Text),
        "JSON" => json_read(false),
        "BOOLEAN" => m("BOOL", L::Bool, ReadKind::Boolean),
        "SDO_GEOMETRY" => m("GEOMETRY", L::Geometry, ReadKind::Geometry),
        "BFILE" => return Err(fail("a BFILE points at a file outside the database; copy the files and store their names instead")),
        "VECTOR" => return Err(fail("VECTOR has no CockroachDB equivalent yet; convert it to a BLOB or CLOB first")),
        _ if col.data_type_owner.as_deref().is_some_and(|o| !o.is_empty() && o != "SYS") => {
            return Err(fail("user-defined object types are not migrated; flatten them into columns in a view or a copy of the table"))
        }
        _ => return Err(fail("no mapping is defined for this type")),
    };
    Ok(mapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(data_type: &str) -> OracleColumn {
        OracleColumn {
            name: "C".into(),
            data_type: data_type.into(),
            nullable: true,
            ..Default::default()
        }
    }

    fn target(c: &OracleColumn) -> String {
        map_column(&TableName::new("HR", "T"), c, &MapOptions::default())
            .unwrap()
            .target_type
    }

    #[test]
    fn numbers() {
        let n = |p, s| {
            target(&OracleColumn {
                data_precision: p,
                data_scale: s,
                ..col("NUMBER")
            })
        };
        assert_eq!(n(Some(4), Some(0)), "INT2");
        assert_eq!(n(Some(5), Some(0)), "INT4");
        assert_eq!(n(Some(9), None), "INT4");
        assert_eq!(n(Some(18), Some(0)), "INT8");
        assert_eq!(n(Some(19), Some(0)), "DECIMAL(19,0)");
        assert_eq!(n(Some(8), Some(2)), "DECIMAL(8,2)");
        assert_eq!(n(Some(2), Some(5)), "DECIMAL(5,5)");
        assert_eq!(n(Some(5), Some(-2)), "DECIMAL(7,0)");
        assert_eq!(n(None, None), "DECIMAL");
        assert_eq!(n(None, Some(0)), "DECIMAL(38,0)");
        let f = |b| {
            target(&OracleColumn {
                data_precision: Some(b),
                ..col("FLOAT")
            })
        };
        assert_eq!(f(49), "FLOAT8");
        assert_eq!(f(53), "DECIMAL");
        assert_eq!(f(126), "DECIMAL");
    }

    #[test]
    fn times_and_others() {
        assert_eq!(target(&col("DATE")), "TIMESTAMP(0)");
        assert_eq!(target(&col("TIMESTAMP(9)")), "TIMESTAMP(6)");
        assert_eq!(
            target(&col("TIMESTAMP(3) WITH TIME ZONE")),
            "TIMESTAMPTZ(3)"
        );
        assert_eq!(
            target(&col("TIMESTAMP(6) WITH LOCAL TIME ZONE")),
            "TIMESTAMPTZ(6)"
        );
        assert_eq!(target(&col("INTERVAL DAY(2) TO SECOND(6)")), "INTERVAL");
        assert_eq!(target(&col("INTERVAL YEAR(2) TO MONTH")), "INTERVAL");
        assert_eq!(target(&col("LONG RAW")), "BYTEA");
        assert_eq!(target(&col("LONG")), "TEXT");
        assert_eq!(target(&col("BOOLEAN")), "BOOL");
        let raw16 = OracleColumn {
            data_length: Some(16),
            ..col("RAW")
        };
        let uuid = map_column(
            &TableName::new("A", "B"),
            &raw16,
            &MapOptions {
                raw16_as_uuid: true,
            },
        )
        .unwrap();
        assert_eq!(
            (uuid.target_type.as_str(), uuid.logical),
            ("UUID", LogicalType::Uuid)
        );
        assert_eq!(target(&raw16), "BYTEA");
    }

    #[test]
    fn unknown_types_name_table_and_column() {
        let err = map_column(
            &TableName::new("HR", "T"),
            &col("BFILE"),
            &MapOptions::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("HR.T column C: unsupported Oracle type BFILE"),
            "{err}"
        );
        let udt = OracleColumn {
            data_type_owner: Some("HR".into()),
            ..col("ADDRESS_T")
        };
        let err = map_column(&TableName::new("HR", "T"), &udt, &MapOptions::default()).unwrap_err();
        assert!(err.to_string().contains("HR.ADDRESS_T"), "{err}");
    }
}
