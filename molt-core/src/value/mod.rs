//! Logical value types and their one canonical form.
//!
//! A row in the stream carries each value as text in a fixed, engine-neutral
//! form chosen by the column's [`LogicalType`] (the table in
//! `docs/stream-format.md`). Source readers convert into that form; the
//! target writer converts out of it. Everything that compares values, the
//! section digest and molt-verify alike, goes through [`canonical`], so the
//! two can never disagree about whether two values are equal.

mod canonical;
pub mod era;
mod interval;
mod json;
mod jsonb;

pub(crate) use canonical::canonical_decimal_scaled;
pub use canonical::{canonical, canonical_array};
pub use interval::Interval;
pub use json::{
    canonical_json, canonical_json_into, canonical_json_scaled, nul_escape_at, nul_escape_message,
};
pub use jsonb::{jsonb_text, without_duplicate_keys};

use serde::{Deserialize, Serialize};

/// How a column's values are encoded in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogicalType {
    /// `true` / `false`.
    Bool,
    /// Decimal integer of any width, signed or unsigned: `-9223372036854775808`,
    /// `18446744073709551615`.
    Int,
    /// Exact decimal in plain notation, scale kept: `12.30`; also `NaN`,
    /// `Infinity`, `-Infinity`.
    Decimal,
    /// 4-byte float: shortest text that reads back to the same bits;
    /// `NaN`, `Infinity`, `-Infinity`.
    Float4,
    /// 8-byte float, as `Float4`.
    Float8,
    /// Unicode text.
    Text,
    /// Raw bytes, base64 (RFC 4648, padded).
    Bytes,
    /// `YYYY-MM-DD`, astronomical years (`0000` is 1 BC, `-0001` is 2 BC),
    /// `infinity`, `-infinity`.
    Date,
    /// `HH:MM:SS[.ffffff]` (up to `24:00:00`).
    Time,
    /// `HH:MM:SS[.ffffff]±HH[:MM]`.
    Timetz,
    /// `YYYY-MM-DD HH:MM:SS[.ffffff]`, years as for `Date`; `infinity`, `-infinity`.
    Timestamp,
    /// As `Timestamp`, in UTC, with a `Z` suffix.
    Timestamptz,
    /// ISO 8601 duration with designators, as PostgreSQL's `iso_8601`
    /// interval style writes it: `P1Y2M3DT4H5M6.000007S`, `PT-838H-59M-59S`.
    Interval,
    /// JSON text, exactly as the source gave it.
    Json,
    /// Lower-case hyphenated UUID.
    Uuid,
    /// Bit string: `0101`.
    Bit,
    /// An enum label.
    Enum,
    /// Spatial value as hex EWKB (upper case).
    Geometry,
}

impl LogicalType {
    pub fn as_str(self) -> &'static str {
        match self {
            LogicalType::Bool => "bool",
            LogicalType::Int => "int",
            LogicalType::Decimal => "decimal",
            LogicalType::Float4 => "float4",
            LogicalType::Float8 => "float8",
            LogicalType::Text => "text",
            LogicalType::Bytes => "bytes",
            LogicalType::Date => "date",
            LogicalType::Time => "time",
            LogicalType::Timetz => "timetz",
            LogicalType::Timestamp => "timestamp",
            LogicalType::Timestamptz => "timestamptz",
            LogicalType::Interval => "interval",
            LogicalType::Json => "json",
            LogicalType::Uuid => "uuid",
            LogicalType::Bit => "bit",
            LogicalType::Enum => "enum",
            LogicalType::Geometry => "geometry",
        }
    }
}

impl std::fmt::Display for LogicalType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
