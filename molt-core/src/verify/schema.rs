//! The schema check: does the target table hold what the source's table
//! header says it should, so that comparing values makes sense?
//!
//! Per column: present on the target, of a type family compatible with the
//! source's logical type under the documented mapping
//! (`docs/type-mapping.md`), with the same nullability; and the same
//! primary key. Every finding is a schema issue, reported with the table
//! summary and counted as a difference. Columns missing on the target are
//! left out of the row comparison; a missing key column makes the rows
//! impossible to pair, so the table is then only counted.

use super::compare::CompareColumn;
use super::pg::{CatalogColumn, CatalogTable};
use crate::stream::{Column, TableHeader};
use crate::value::LogicalType;

/// The source and target columns paired for comparison.
#[derive(Clone, Debug)]
pub struct Pairing {
    /// The compared columns, in source column order.
    pub columns: Vec<CompareColumn>,
    /// For each compared column, its index in the header's columns.
    pub source_index: Vec<usize>,
    /// For each compared column, the target's catalog entry.
    pub target: Vec<CatalogColumn>,
    /// Positions in `columns` of the primary key, in key order (empty: no key).
    pub key: Vec<usize>,
    pub issues: Vec<String>,
    /// False when the key cannot be compared (a key column is missing).
    pub rows_comparable: bool,
}

/// The logical family of a target column type (`padded` for CHAR(n)).
pub fn target_family(c: &CatalogColumn) -> Option<(LogicalType, bool)> {
    use LogicalType as L;
    if c.is_enum {
        return Some((L::Enum, false));
    }
    Some(match c.typname.as_str() {
        "int2" | "int4" | "int8" | "oid" => (L::Int, false),
        "numeric" => (L::Decimal, false),
        "float4" => (L::Float4, false),
        "float8" => (L::Float8, false),
        "bool" => (L::Bool, false),
        "bpchar" => (L::Text, true),
        "text" | "varchar" | "name" | "char" | "citext" | "inet" | "cidr" | "tsvector" => {
            (L::Text, false)
        }
        "bytea" => (L::Bytes, false),
        "date" => (L::Date, false),
        "time" => (L::Time, false),
        "timetz" => (L::Timetz, false),
        "timestamp" => (L::Timestamp, false),
        "timestamptz" => (L::Timestamptz, false),
        "interval" => (L::Interval, false),
        "json" | "jsonb" => (L::Json, false),
        "uuid" => (L::Uuid, false),
        "bit" | "varbit" => (L::Bit, false),
        "geometry" | "geography" => (L::Geometry, false),
        _ => return None,
    })
}

/// Whether a source column declared as an integer holding 0/1 may be a
/// target BOOL: MySQL's `TINYINT(1)`, the conventional boolean.
fn is_tinyint1(column: &Column) -> bool {
    column
        .source_type
        .to_ascii_lowercase()
        .replace(' ', "")
        .starts_with("tinyint(1)")
}

/// `None` when compatible, else why not. Also returns whether the column is
/// compared as an integer against a BOOL.
fn compatibility(source: &Column, target: &CatalogColumn) -> Result<bool, String> {
    use LogicalType as L;
    let Some((family, padded)) = target_family(target) else {
        // An unknown target type: compared by its text form.
        return if source.logical == L::Text {
            Ok(false)
        } else {
            Err(mismatch(source, target))
        };
    };
    if (source.array_dims > 0) != target.is_array {
        return Err(mismatch(source, target));
    }
    let ok = match (source.logical, family) {
        (a, b) if a == b => true,
        (L::Text, L::Enum) | (L::Enum, L::Text) => true,
        (L::Int, L::Decimal) => true,
        (L::Float4, L::Float8) => true,
        (L::Int, L::Bool) if is_tinyint1(source) => return Ok(true),
        _ => false,
    };
    if !ok {
        return Err(mismatch(source, target));
    }
    if source.padded && !padded && family == L::Text {
        return Err(format!(
            "column {}: source {} is blank-padded but target {} is not",
            source.name, source.source_type, target.sql_type
        ));
    }
    Ok(false)
}

fn mismatch(source: &Column, target: &CatalogColumn) -> String {
    format!(
        "column {}: source type {} ({}) is not compatible with target type {}",
        source.name, source.source_type, source.logical, target.sql_type
    )
}

/// Pairs the header's columns with the target's and lists the issues.
pub fn pair(header: &TableHeader, target: &CatalogTable, float_tolerance: Option<f64>) -> Pairing {
    let mut p = Pairing {
        columns: Vec::new(),
        source_index: Vec::new(),
        target: Vec::new(),
        key: Vec::new(),
        issues: Vec::new(),
        rows_comparable: true,
    };
    for (i, col) in header.columns.iter().enumerate() {
        let Some(tc) = target.column(&col.name) else {
            p.issues
                .push(format!("column {} is missing on the target", col.name));
            continue;
        };
        let int_as_bool = match compatibility(col, tc) {
            Ok(b) => b,
            Err(issue) => {
                p.issues.push(issue);
                false
            }
        };
        if col.nullable != tc.nullable {
            p.issues.push(format!(
                "column {}: {} on the source but {} on the target",
                col.name,
                if col.nullable { "nullable" } else { "NOT NULL" },
                if tc.nullable { "nullable" } else { "NOT NULL" }
            ));
        }
        p.columns.push(CompareColumn {
            name: col.name.clone(),
            target_name: tc.name.clone(),
            logical: col.logical,
            padded: col.padded,
            is_array: col.array_dims > 0,
            int_as_bool,
            scale_aware: true,
            float_tolerance: float_tolerance
                .filter(|_| matches!(col.logical, LogicalType::Float4 | LogicalType::Float8)),
        });
        p.source_index.push(i);
        p.target.push(tc.clone());
    }
    for extra in target
        .columns
        .iter()
        .filter(|t| !header.columns.iter().any(|c| c.name == t.name))
    {
        p.issues
            .push(format!("column {} exists only on the target", extra.name));
    }
    let source_key: Vec<String> = header
        .primary_key()
        .iter()
        .map(|c| c.name.clone())
        .collect();
    if source_key != target.primary_key {
        p.issues.push(format!(
            "primary key ({}) on the source but ({}) on the target",
            source_key.join(", "),
            target.primary_key.join(", ")
        ));
    }
    for name in &source_key {
        match p.columns.iter().position(|c| &c.name == name) {
            Some(pos) => p.key.push(pos),
            None => p.rows_comparable = false,
        }
    }
    p
}
