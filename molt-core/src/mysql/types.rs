//! The MySQL → CockroachDB type mapping.
//!
//! One function, [`map_column`], decides for every MySQL column type the
//! target type (SQL that CockroachDB and PostgreSQL both accept), the
//! logical stream type, and how the dump decodes the server's text-protocol
//! bytes ([`Decoder`]). The rule is to lose nothing: every value the source
//! column can hold must fit the target column unchanged, which is why e.g.
//! `INT UNSIGNED` widens to `INT8` and `BIGINT UNSIGNED` to `DECIMAL(20,0)`.
//! The reasons for each choice are in `docs/type-mapping.md` ("MySQL →
//! CockroachDB"); keep the two in step.
//!
//! Per-column overrides (tinyint(1) → BOOL, binary(16) → UUID, any target
//! type) come from the type-map file, see [`super::typemap`].

use super::charset::Charset;
use super::decode::Decoder;
use crate::value::LogicalType;

/// A column as `information_schema.COLUMNS` describes it.
#[derive(Clone, Debug, Default)]
pub struct RawColumn {
    pub name: String,
    /// `DATA_TYPE`, lower case: `int`, `varchar`, `enum`...
    pub data_type: String,
    /// `COLUMN_TYPE`, as declared: `int(10) unsigned`, `enum('a','b')`.
    pub column_type: String,
    pub charset: Option<String>,
    pub collation: Option<String>,
    pub numeric_precision: Option<u64>,
    pub numeric_scale: Option<u64>,
    pub datetime_precision: Option<u64>,
    pub char_max_length: Option<u64>,
    pub nullable: bool,
    /// MariaDB's JSON: a LONGTEXT with a `JSON_VALID(col)` check.
    pub is_json: bool,
}

impl RawColumn {
    pub fn unsigned(&self) -> bool {
        self.column_type.to_ascii_lowercase().contains("unsigned")
    }

    /// The `(n)` of `tinyint(1)`, `bit(64)`, `char(10)`, if declared.
    pub fn declared_width(&self) -> Option<u64> {
        let open = self.column_type.find('(')?;
        let close = self.column_type[open..].find(')')? + open;
        self.column_type[open + 1..close].trim().parse().ok()
    }
}

/// What [`map_column`] decides for one column.
#[derive(Clone, Debug)]
pub struct Mapped {
    pub target_type: String,
    pub logical: LogicalType,
    pub array_dims: u8,
    pub padded: bool,
    pub decoder: Decoder,
    /// For ENUM: the labels, in declaration order (the target enum type).
    pub enum_labels: Option<Vec<String>>,
}

/// Why a column cannot be mapped.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("unsupported MySQL type {0}")]
    UnsupportedType(String),
    #[error("unsupported character set {0}: molt cannot decode it (convert the column or override its type to a binary one)")]
    UnsupportedCharset(String),
}

fn mapped(target_type: impl Into<String>, logical: LogicalType, decoder: Decoder) -> Mapped {
    Mapped {
        target_type: target_type.into(),
        logical,
        array_dims: 0,
        padded: false,
        decoder,
        enum_labels: None,
    }
}

/// The text decoder for a column's declared charset. A column in the
/// `binary` charset (or with the `binary` collation) holds bytes.
fn charset_of(col: &RawColumn) -> Result<Option<Charset>, MapError> {
    let name = col.charset.as_deref().unwrap_or("utf8mb4");
    if name.eq_ignore_ascii_case("binary")
        || col
            .collation
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("binary"))
    {
        return Ok(None);
    }
    Charset::from_mysql(name)
        .map(Some)
        .ok_or_else(|| MapError::UnsupportedCharset(name.to_string()))
}

/// Maps one MySQL column to its target type, logical type and decoder.
pub fn map_column(col: &RawColumn) -> Result<Mapped, MapError> {
    use LogicalType as L;
    let unsigned = col.unsigned();
    let dt = col.data_type.to_ascii_lowercase();
    if col.is_json {
        return Ok(mapped("JSONB", L::Json, Decoder::Json));
    }
    let m = match dt.as_str() {
        // Integers: the smallest target integer that holds the full range,
        // signed or unsigned. tinyint(1) is an integer too (it can hold 2,
        // -1...), unless the type map says BOOL.
        "tinyint" => mapped("INT2", L::Int, Decoder::Int),
        "smallint" if unsigned => mapped("INT4", L::Int, Decoder::Int),
        "smallint" => mapped("INT2", L::Int, Decoder::Int),
        "mediumint" | "int" | "integer" if unsigned && dt != "mediumint" => {
            mapped("INT8", L::Int, Decoder::Int)
        }
        "mediumint" | "int" | "integer" => mapped("INT4", L::Int, Decoder::Int),
        "bigint" if unsigned => mapped("DECIMAL(20,0)", L::Decimal, Decoder::Int),
        "bigint" => mapped("INT8", L::Int, Decoder::Int),
        "year" => mapped("INT2", L::Int, Decoder::Int),
        "bit" => {
            let bits = col
                .numeric_precision
                .or(col.declared_width())
                .unwrap_or(1)
                .max(1);
            mapped(
                format!("BIT({bits})"),
                L::Bit,
                Decoder::Bit { bits: bits as u32 },
            )
        }
        "decimal" | "numeric" | "dec" | "fixed" => {
            let p = col.numeric_precision.unwrap_or(10);
            let s = col.numeric_scale.unwrap_or(0);
            mapped(format!("DECIMAL({p},{s})"), L::Decimal, Decoder::Decimal)
        }
        "float" => mapped("FLOAT4", L::Float4, Decoder::Float4),
        "double" | "real" | "double precision" => mapped("FLOAT8", L::Float8, Decoder::Float8),
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => {
            match charset_of(col)? {
                None => mapped("BYTEA", L::Bytes, Decoder::Bytes),
                Some(cs) => {
                    let len = col.char_max_length.or(col.declared_width());
                    let (target, padded) = match (dt.as_str(), len) {
                        ("char", Some(n)) => (format!("CHAR({})", n.max(1)), true),
                        ("varchar", Some(n)) if n > 0 => (format!("VARCHAR({n})"), false),
                        _ => ("TEXT".to_string(), false),
                    };
                    Mapped {
                        padded,
                        ..mapped(target, L::Text, Decoder::Text(cs))
                    }
                }
            }
        }
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            mapped("BYTEA", L::Bytes, Decoder::Bytes)
        }
        "date" => mapped("DATE", L::Date, Decoder::Date),
        "datetime" => {
            let p = col.datetime_precision.unwrap_or(0);
            mapped(format!("TIMESTAMP({p})"), L::Timestamp, Decoder::Datetime)
        }
        "timestamp" => {
            let p = col.datetime_precision.unwrap_or(0);
            mapped(
                format!("TIMESTAMPTZ({p})"),
                L::Timestamptz,
                Decoder::Timestamp,
            )
        }
        // TIME is a duration in MySQL (-838:59:59 to 838:59:59), not a
        // time of day: only INTERVAL holds every value.
        "time" => mapped("INTERVAL", L::Interval, Decoder::Time),
        "enum" => {
            let cs = charset_of(col)?.unwrap_or(Charset::Utf8);
            let mut labels = parse_labels(&col.column_type);
            // MySQL's error value '' (index 0) can be stored in any ENUM
            // column (non-strict inserts); it sorts first, so it is the
            // first label on the target unless it was declared.
            // A declared '' needs the error value told apart from it.
            let decoder = if labels.iter().any(|l| l.is_empty()) {
                Decoder::EnumDeclaringEmpty(cs)
            } else {
                labels.insert(0, String::new());
                Decoder::Enum(cs)
            };
            Mapped {
                enum_labels: Some(labels),
                ..mapped("", L::Enum, decoder)
            }
        }
        "set" => {
            let cs = charset_of(col)?.unwrap_or(Charset::Utf8);
            Mapped {
                array_dims: 1,
                ..mapped("TEXT[]", L::Text, Decoder::Set(cs))
            }
        }
        "json" => mapped("JSONB", L::Json, Decoder::Json),
        // MariaDB 10.7+ native types, sent as their text form.
        "uuid" => mapped("UUID", L::Uuid, Decoder::Uuid),
        "inet4" | "inet6" => mapped("INET", L::Text, Decoder::Text(Charset::Ascii)),
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => {
            mapped("GEOMETRY", L::Geometry, Decoder::Geometry)
        }
        _ => return Err(MapError::UnsupportedType(col.column_type.clone())),
    };
    Ok(m)
}

/// The labels of `enum('a','it''s')` or `set(...)`, in order.
pub fn parse_labels(column_type: &str) -> Vec<String> {
    let Some(open) = column_type.find('(') else {
        return Vec::new();
    };
    let body = &column_type[open + 1..];
    let mut labels = Vec::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            if c == ')' {
                break;
            }
            continue;
        }
        let mut label = String::new();
        loop {
            match chars.next() {
                None => break,
                Some('\'') if chars.peek() == Some(&'\'') => {
                    chars.next();
                    label.push('\'');
                }
                Some('\'') => break,
                Some('\\') => {
                    if let Some(n) = chars.next() {
                        label.push(n);
                    }
                }
                Some(ch) => label.push(ch),
            }
        }
        labels.push(label);
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(data_type: &str, column_type: &str) -> RawColumn {
        RawColumn {
            name: "c".into(),
            data_type: data_type.into(),
            column_type: column_type.into(),
            charset: Some("utf8mb4".into()),
            ..Default::default()
        }
    }

    #[test]
    fn integers_widen_to_hold_unsigned_ranges() {
        assert_eq!(
            map_column(&col("tinyint", "tinyint(1)"))
                .unwrap()
                .target_type,
            "INT2"
        );
        assert_eq!(
            map_column(&col("smallint", "smallint(5) unsigned"))
                .unwrap()
                .target_type,
            "INT4"
        );
        assert_eq!(
            map_column(&col("mediumint", "mediumint(8) unsigned"))
                .unwrap()
                .target_type,
            "INT4"
        );
        assert_eq!(
            map_column(&col("int", "int(10) unsigned"))
                .unwrap()
                .target_type,
            "INT8"
        );
        assert_eq!(
            map_column(&col("int", "int(11)")).unwrap().target_type,
            "INT4"
        );
        let big = map_column(&col("bigint", "bigint(20) unsigned")).unwrap();
        assert_eq!(
            (big.target_type.as_str(), big.logical),
            ("DECIMAL(20,0)", LogicalType::Decimal)
        );
    }

    #[test]
    fn enum_labels_keep_order_and_gain_the_error_value() {
        assert_eq!(
            parse_labels("enum('G','PG','it''s','a,b')"),
            vec!["G", "PG", "it's", "a,b"]
        );
        let m = map_column(&col("enum", "enum('x','y')")).unwrap();
        assert_eq!(m.enum_labels.unwrap(), vec!["", "x", "y"]);
    }

    #[test]
    fn text_in_binary_charset_is_bytes() {
        let mut c = col("varchar", "varchar(10)");
        c.charset = Some("binary".into());
        assert_eq!(map_column(&c).unwrap().logical, LogicalType::Bytes);
        let mut c = col("char", "char(3)");
        c.char_max_length = Some(3);
        let m = map_column(&c).unwrap();
        assert_eq!((m.target_type.as_str(), m.padded), ("CHAR(3)", true));
    }
}
