//! PostgreSQL types to stream logical types and target SQL types.
//!
//! The target type must be SQL that both CockroachDB and PostgreSQL accept,
//! because PostgreSQL stands in for CockroachDB in tests and some users
//! migrate PostgreSQL to PostgreSQL. Each mapping and its reason is listed in
//! `docs/type-mapping.md`; this file is the code form of that table.
//!
//! A type with no mapping is not refused: its values are read as their text
//! output (`::text` in the SELECT) into a TEXT column, and the dump says so
//! on stderr, so nothing is lost silently.

use crate::value::LogicalType;

/// Where the value of a mapped type comes from in the COPY output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub logical: LogicalType,
    /// Target SQL type, without array brackets.
    pub target_type: String,
    /// A cast applied in the SELECT so that COPY writes the stream form
    /// (`money` has a currency symbol in its text form; read as numeric).
    pub read_cast: Option<&'static str>,
    /// Blank-padded CHAR(n).
    pub padded: bool,
    /// Why the mapping loses something, for a notice on stderr.
    pub notice: Option<String>,
}

impl Mapping {
    fn new(logical: LogicalType, target_type: impl Into<String>) -> Mapping {
        Mapping {
            logical,
            target_type: target_type.into(),
            read_cast: None,
            padded: false,
            notice: None,
        }
    }
}

/// The length of `varchar(n)`, `char(n)`, `bit(n)`: the type modifier, when set.
fn length(typmod: i32) -> Option<i32> {
    (typmod >= 4).then_some(typmod - 4)
}

/// Fractional-second precision of time types (the modifier itself).
fn precision(typmod: i32) -> Option<i32> {
    (typmod >= 0).then_some(typmod)
}

/// `numeric(p,s)`: precision and scale, when the modifier is set. The scale
/// is an 11-bit signed field (PostgreSQL 15 allows negative scales).
pub fn numeric_precision_scale(typmod: i32) -> Option<(i32, i32)> {
    if typmod < 4 {
        return None;
    }
    let t = typmod - 4;
    let precision = (t >> 16) & 0xffff;
    let raw_scale = t & 0x7ff;
    let scale = if raw_scale & 0x400 != 0 {
        raw_scale - 0x800
    } else {
        raw_scale
    };
    Some((precision, scale))
}

fn with_precision(name: &str, typmod: i32) -> String {
    match precision(typmod) {
        Some(p) => format!("{name}({p})"),
        None => name.to_string(),
    }
}

/// Maps a built-in (`pg_catalog`) scalar type, given its `pg_type.typname`
/// and the column's type modifier. `None` for a type with no mapping.
pub fn map_builtin(typname: &str, typmod: i32) -> Option<Mapping> {
    use LogicalType as L;
    let m = match typname {
        "int2" => Mapping::new(L::Int, "INT2"),
        "int4" => Mapping::new(L::Int, "INT4"),
        "int8" => Mapping::new(L::Int, "INT8"),
        "oid" => Mapping::new(L::Int, "INT8"),
        "numeric" => match numeric_precision_scale(typmod) {
            Some((p, s)) if (0..=p).contains(&s) => {
                Mapping::new(L::Decimal, format!("DECIMAL({p},{s})"))
            }
            Some((p, s)) => Mapping {
                notice: Some(format!(
                    "numeric({p},{s}) has a scale outside 0..precision; created as DECIMAL"
                )),
                ..Mapping::new(L::Decimal, "DECIMAL")
            },
            None => Mapping::new(L::Decimal, "DECIMAL"),
        },
        "money" => Mapping {
            read_cast: Some("numeric"),
            ..Mapping::new(L::Decimal, "DECIMAL(19,2)")
        },
        "float4" => Mapping::new(L::Float4, "FLOAT4"),
        "float8" => Mapping::new(L::Float8, "FLOAT8"),
        "bool" => Mapping::new(L::Bool, "BOOL"),
        "text" => Mapping::new(L::Text, "TEXT"),
        "name" => Mapping::new(L::Text, "TEXT"),
        "char" => Mapping::new(L::Text, "TEXT"),
        "varchar" => match length(typmod) {
            Some(n) => Mapping::new(L::Text, format!("VARCHAR({n})")),
            None => Mapping::new(L::Text, "VARCHAR"),
        },
        "bpchar" => match length(typmod) {
            Some(n) => Mapping {
                padded: true,
                ..Mapping::new(L::Text, format!("CHAR({n})"))
            },
            // An unbounded bpchar pads nothing, but its trailing blanks do
            // not count: `'a  ' = 'a'`, `length()` is 1, and its text form
            // (`::text`, what every cast and client string sees) is `a`.
            // That text is what moves, into TEXT, where `length()` is 1
            // too; keeping the blanks would make `'a  '` a different value
            // from `'a'` on the target.
            None => Mapping {
                read_cast: Some("text"),
                ..Mapping::new(L::Text, "TEXT")
            },
        },
        "bytea" => Mapping::new(L::Bytes, "BYTEA"),
        "date" => Mapping::new(L::Date, "DATE"),
        "time" => Mapping::new(L::Time, with_precision("TIME", typmod)),
        "timetz" => Mapping::new(L::Timetz, with_precision("TIMETZ", typmod)),
        "timestamp" => Mapping::new(L::Timestamp, with_precision("TIMESTAMP", typmod)),
        "timestamptz" => Mapping::new(L::Timestamptz, with_precision("TIMESTAMPTZ", typmod)),
        "interval" => Mapping::new(L::Interval, "INTERVAL"),
        "json" | "jsonb" => Mapping::new(L::Json, "JSONB"),
        "uuid" => Mapping::new(L::Uuid, "UUID"),
        "bit" => match (typmod > 0).then_some(typmod) {
            Some(n) => Mapping::new(L::Bit, format!("BIT({n})")),
            None => Mapping::new(L::Bit, "BIT"),
        },
        "varbit" => match (typmod > 0).then_some(typmod) {
            Some(n) => Mapping::new(L::Bit, format!("VARBIT({n})")),
            None => Mapping::new(L::Bit, "VARBIT"),
        },
        "inet" | "cidr" => Mapping::new(L::Text, "INET"),
        "tsvector" => Mapping::new(L::Text, "TSVECTOR"),
        _ => return None,
    };
    Some(m)
}

/// Maps a base type of an extension (any schema), given its `typname` and
/// the column's declared type as `format_type` prints it. PostGIS's
/// `geometry` and `geography` are native in CockroachDB (docs
/// `spatial-data-overview.md`), with the same `(shape, SRID)` modifiers,
/// and read its hex EWKB text output, so they keep their declared type.
pub fn map_extension(typname: &str, declared: &str) -> Option<Mapping> {
    match typname {
        "geometry" | "geography" => {
            // `public.geometry(Point,4326)` when PostGIS is off the search path.
            // The array brackets are added by the caller.
            let unqualified = match declared.find(typname) {
                Some(at) => declared[at..].split('[').next().unwrap_or(typname),
                None => typname,
            };
            Some(Mapping::new(
                LogicalType::Geometry,
                unqualified.to_ascii_uppercase(),
            ))
        }
        // Native in CockroachDB from v25.3; molt-load makes it TEXT, with a
        // warning, on a target without it (`target::ddl::fit_types`).
        "citext" => Some(Mapping::new(LogicalType::Text, "CITEXT")),
        _ => None,
    }
}

/// The mapping of a type without one: its text output into TEXT, with a
/// notice naming the type.
pub fn fallback(source_type: &str) -> Mapping {
    Mapping {
        read_cast: Some("text"),
        notice: Some(format!(
            "type {source_type} has no CockroachDB equivalent in molt; its text form is copied into a TEXT column"
        )),
        ..Mapping::new(LogicalType::Text, "TEXT")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modifiers_decode() {
        // numeric(12,2): ((12 << 16) | 2) + 4
        assert_eq!(numeric_precision_scale((12 << 16 | 2) + 4), Some((12, 2)));
        assert_eq!(
            map_builtin("numeric", (12 << 16 | 2) + 4)
                .unwrap()
                .target_type,
            "DECIMAL(12,2)"
        );
        assert_eq!(map_builtin("numeric", -1).unwrap().target_type, "DECIMAL");
        assert_eq!(
            map_builtin("varchar", 124).unwrap().target_type,
            "VARCHAR(120)"
        );
        let c = map_builtin("bpchar", 5).unwrap();
        assert_eq!((c.target_type.as_str(), c.padded), ("CHAR(1)", true));
        assert_eq!(
            map_builtin("timestamptz", 3).unwrap().target_type,
            "TIMESTAMPTZ(3)"
        );
        assert_eq!(
            map_builtin("timestamp", -1).unwrap().target_type,
            "TIMESTAMP"
        );
        assert_eq!(map_builtin("bit", 8).unwrap().target_type, "BIT(8)");
        assert_eq!(map_builtin("varbit", 16).unwrap().target_type, "VARBIT(16)");
        assert_eq!(map_builtin("money", -1).unwrap().read_cast, Some("numeric"));
        assert!(map_builtin("xml", -1).is_none());
        assert_eq!(
            map_extension("geometry", "public.geometry(Point,4326)")
                .unwrap()
                .target_type,
            "GEOMETRY(POINT,4326)"
        );
        assert_eq!(
            map_extension("geography", "geography").unwrap().logical,
            LogicalType::Geometry
        );
        assert!(map_extension("hstore", "hstore").is_none());
    }
}
