//! How one column's values are compared: through the canonical form of the
//! source column's logical type.
//!
//! Both sides' values arrive as stream text, converted by each engine's own
//! reader (the same code molt-dump uses), so the only comparison rule is
//! the one the section digest uses: [`crate::value::canonical`]. The one
//! deliberate exception is an integer column that the target holds as
//! BOOL (MySQL `TINYINT(1)`): its source values 0 and 1 are read as false
//! and true, and any other value stays an integer, so it differs.

use std::borrow::Cow;

use crate::digest::{DigestColumn, RowHasher};
use crate::value::{
    canonical, canonical_array, canonical_decimal_scaled, canonical_json_scaled, LogicalType,
};

/// A row of one side, in stream text, one value per compared column
/// (arrays as JSON text, `None` for NULL).
pub type Row = Vec<Option<String>>;

/// One column compared on both sides.
#[derive(Clone, Debug)]
pub struct CompareColumn {
    /// Name on the source (reports use it).
    pub name: String,
    /// Name on the target.
    pub target_name: String,
    /// The source column's logical type: both sides are read and compared
    /// as this type (or as BOOL, see [`CompareColumn::int_as_bool`]).
    pub logical: LogicalType,
    pub padded: bool,
    pub is_array: bool,
    /// The source holds 0/1 integers and the target a BOOL.
    pub int_as_bool: bool,
    /// Decimals and JSON numbers compare with their scale (`12.300` is not
    /// `12.3`), as PostgreSQL and CockroachDB keep it; molt-verify clears
    /// it for sources compared across engines (MySQL, Oracle).
    pub scale_aware: bool,
    /// For floats: values within this relative difference are equal.
    pub float_tolerance: Option<f64>,
}

impl CompareColumn {
    /// The logical type the target's values are read as.
    pub fn target_logical(&self) -> LogicalType {
        if self.int_as_bool {
            LogicalType::Bool
        } else {
            self.logical
        }
    }

    /// What the digest hashes for this column (after [`Self::source_value`]).
    pub fn digest(&self) -> DigestColumn {
        DigestColumn {
            logical: self.target_logical(),
            padded: self.padded,
            is_array: self.is_array,
        }
    }

    /// A source value as the target type reads it (0/1 → false/true for an
    /// integer compared with a BOOL; anything else unchanged).
    pub fn source_value<'a>(&self, value: &'a str) -> &'a str {
        if self.int_as_bool && !self.is_array {
            match canonical(LogicalType::Int, false, value).as_ref() {
                "0" => return "false",
                "1" => return "true",
                _ => {}
            }
        }
        value
    }

    fn canon<'a>(&self, value: &'a str) -> Cow<'a, str> {
        if self.is_array {
            Cow::Owned(canonical_array(self.target_logical(), self.padded, value))
        } else if self.scale_aware && self.logical == LogicalType::Decimal {
            canonical_decimal_scaled(value)
        } else if self.scale_aware && self.logical == LogicalType::Json {
            match canonical_json_scaled(value) {
                Some(json) => Cow::Owned(json),
                None => Cow::Borrowed(value),
            }
        } else {
            canonical(self.target_logical(), self.padded, value)
        }
    }

    /// True when a source and a target value are the same value.
    pub fn equal(&self, source: Option<&str>, target: Option<&str>) -> bool {
        match (source, target) {
            (None, None) => true,
            (Some(s), Some(t)) => {
                let s = self.source_value(s);
                if s == t {
                    return true;
                }
                let (cs, ct) = (self.canon(s), self.canon(t));
                if cs == ct {
                    return true;
                }
                match self.float_tolerance {
                    Some(tol) if !self.is_array => floats_close(&cs, &ct, tol),
                    _ => false,
                }
            }
            _ => false,
        }
    }
}

/// Relative closeness: |a - b| <= tol * max(|a|, |b|).
fn floats_close(a: &str, b: &str, tol: f64) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => {
            (x - y).abs() <= tol * x.abs().max(y.abs())
        }
        _ => false,
    }
}

/// Indexes of the columns whose values differ between two rows.
pub fn differing_columns(columns: &[CompareColumn], source: &Row, target: &Row) -> Vec<usize> {
    columns
        .iter()
        .enumerate()
        .filter(|(i, c)| !c.equal(source[*i].as_deref(), target[*i].as_deref()))
        .map(|(i, _)| i)
        .collect()
}

/// The 128-bit hash of a whole row, as the section digest computes it, so
/// that rows of tables without a primary key can be counted as a multiset.
pub fn row_hash(
    columns: &[CompareColumn],
    row: &Row,
    from_source: bool,
    hasher: &mut RowHasher,
) -> u128 {
    for (c, v) in columns.iter().zip(row) {
        let v = v
            .as_deref()
            .map(|v| if from_source { c.source_value(v) } else { v });
        hasher.value(c.digest(), v);
    }
    hasher.finish_row()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(logical: LogicalType) -> CompareColumn {
        CompareColumn {
            name: "c".into(),
            target_name: "c".into(),
            logical,
            padded: false,
            is_array: false,
            int_as_bool: false,
            scale_aware: false,
            float_tolerance: None,
        }
    }

    #[test]
    fn decimals_keep_their_scale_where_the_source_does() {
        let scaled = CompareColumn {
            scale_aware: true,
            ..col(LogicalType::Decimal)
        };
        assert!(!scaled.equal(Some("12.300"), Some("12.3")));
        assert!(scaled.equal(Some("1.5E+3"), Some("1500")));
        assert!(scaled.equal(Some("0012.30"), Some("12.30")));
        assert!(col(LogicalType::Decimal).equal(Some("12.300"), Some("12.3")));
    }

    #[test]
    fn canonical_equality() {
        assert!(col(LogicalType::Decimal).equal(Some("1.5000"), Some("1.5")));
        assert!(!col(LogicalType::Decimal).equal(Some("1.5"), Some("1.500001")));
        assert!(col(LogicalType::Json).equal(
            Some(r#"{"b": 1, "a": [1, 2]}"#),
            Some(r#"{"a":[1,2],"b":1}"#)
        ));
        assert!(!col(LogicalType::Text).equal(Some("a"), Some("a ")));
        assert!(!col(LogicalType::Text).equal(None, Some("")));
        let mut padded = col(LogicalType::Text);
        padded.padded = true;
        assert!(padded.equal(Some("ab  "), Some("ab")));
    }

    #[test]
    fn tinyint_against_bool() {
        let mut c = col(LogicalType::Int);
        c.int_as_bool = true;
        assert!(c.equal(Some("1"), Some("true")));
        assert!(c.equal(Some("0"), Some("false")));
        assert!(!c.equal(Some("2"), Some("true")));
        assert!(!c.equal(Some("1"), Some("false")));
    }

    #[test]
    fn float_last_bit_and_tolerance() {
        let mut c = col(LogicalType::Float8);
        assert!(c.equal(Some("0.1"), Some("0.10")));
        assert!(!c.equal(Some("0.1"), Some("0.10000000000000002")));
        c.float_tolerance = Some(1e-12);
        assert!(c.equal(Some("0.1"), Some("0.10000000000000002")));
        assert!(!c.equal(Some("0.1"), Some("0.2")));
    }
}
