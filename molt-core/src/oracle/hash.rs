//! molt-verify's per-chunk hash, computed inside Oracle.
//!
//! A chunk (a key range of a slice) is summarized by `(count, sum)`: the sum,
//! over its rows, of the first 15 hex digits (60 bits, so the sum of any
//! number of rows fits Oracle's 38-digit NUMBER exactly) of the MD5 of a
//! canonical row text. The row text is, per column, `N` for NULL or
//! `<length>:<text>`, joined by `|`: the same shape molt-verify builds on
//! the PostgreSQL side (`verify::pg`), with per-column texts that spell a
//! value the way the target prints it in molt-verify's session (UTC, ISO
//! dates): `12.5` and `0.5` for decimals, `2024-01-31 10:00:00.5` for
//! timestamps (`+00` appended for TIMESTAMPTZ, ` BC` for years before 1),
//! lower-case hex for RAW, `true`/`false`, hyphenated UUIDs, and the IEEE
//! bits in hex for floats.
//!
//! The rule that matters: **equal text implies equal values**, so a
//! matching hash never hides a difference. Where the two databases spell
//! equal values differently (a TIMESTAMP(9) with nanoseconds, a NULL
//! against an empty string), the hashes differ and molt-verify compares
//! that chunk row by row, through the canonical values, as it does anyway.
//!
//! Not every table can be hashed this way: `STANDARD_HASH` takes no LOB and
//! a VARCHAR2 of at most 4000 bytes. [`chunk_hash_query`] refuses tables
//! with LOB, LONG, XML, JSON, interval or geometry columns, or whose row
//! text could exceed 4000 bytes; molt-verify compares those row by row.

use super::catalog::OracleTable;
use super::ident::{quote_oracle, quote_oracle_table};
use super::sql::{decimal_text_expr, slice_where, uuid_text_expr, BindValue, Query, SqlError};
use super::types::{Mapped, OracleColumn, ReadKind};
use crate::stream::Slice;

/// The limit of a VARCHAR2 in SQL unless `MAX_STRING_SIZE = EXTENDED`.
const MAX_ROW_TEXT_BYTES: u64 = 4000;

/// The canonical text of one column in Oracle SQL, or why it has none.
/// `c` is the column reference (e.g. `t."SALARY"`).
pub fn column_text_expr(c: &str, column: &OracleColumn, mapped: &Mapped) -> Result<String, String> {
    let base = column.data_type.to_ascii_uppercase();
    let bc = |v: &str| format!("CASE WHEN TO_CHAR({v}, 'SYYYY') LIKE '-%' THEN ' BC' END");
    let ts = |v: &str| {
        format!(
            "TO_CHAR({v}, 'YYYY-MM-DD HH24:MI:SS') || RTRIM(RTRIM(TO_CHAR({v}, '.FF9'), '0'), '.')"
        )
    };
    Ok(match mapped.read {
        ReadKind::Number => {
            if mapped.logical == crate::value::LogicalType::Int {
                format!("TO_CHAR({c})")
            } else {
                decimal_text_expr(c)
            }
        }
        ReadKind::NumberAsFloat8 => {
            format!("LOWER(RAWTOHEX(UTL_RAW.CAST_FROM_BINARY_DOUBLE(TO_BINARY_DOUBLE({c}))))")
        }
        ReadKind::BinaryDouble => format!("LOWER(RAWTOHEX(UTL_RAW.CAST_FROM_BINARY_DOUBLE({c})))"),
        ReadKind::BinaryFloat => format!("LOWER(RAWTOHEX(UTL_RAW.CAST_FROM_BINARY_FLOAT({c})))"),
        ReadKind::Text if matches!(base.as_str(), "VARCHAR2" | "NVARCHAR2" | "VARCHAR") => {
            format!("TO_CHAR({c})")
        }
        ReadKind::Text if matches!(base.as_str(), "CHAR" | "NCHAR") => {
            format!("RTRIM(TO_CHAR({c}), ' ')")
        }
        ReadKind::Text if matches!(base.as_str(), "ROWID" | "UROWID") => {
            format!("CAST({c} AS VARCHAR2(4000))")
        }
        ReadKind::Date => format!("TO_CHAR({c}, 'YYYY-MM-DD HH24:MI:SS') || {}", bc(c)),
        ReadKind::Timestamp => format!("{} || {}", ts(c), bc(c)),
        ReadKind::TimestampUtc => {
            let u = format!("SYS_EXTRACT_UTC({c})");
            format!("{} || '+00' || {}", ts(&u), bc(&u))
        }
        ReadKind::Bytes if base == "RAW" => format!("LOWER(RAWTOHEX({c}))"),
        ReadKind::RawUuid => uuid_text_expr(c),
        ReadKind::Boolean => format!("CASE WHEN {c} THEN 'true' WHEN NOT {c} THEN 'false' END"),
        _ => {
            return Err(format!(
                "column {} ({}) cannot be hashed inside Oracle",
                column.name,
                column.declared_type()
            ))
        }
    })
}

/// An upper bound of the bytes of a column's canonical text, with its
/// length prefix and separator.
fn text_width(column: &OracleColumn, mapped: &Mapped) -> u64 {
    let body = match mapped.read {
        ReadKind::Number | ReadKind::NumberAsFloat8 => 48,
        ReadKind::BinaryDouble | ReadKind::BinaryFloat => 16,
        ReadKind::Text => {
            let chars = column
                .char_length
                .unwrap_or(0)
                .max(column.data_length.unwrap_or(0)) as u64;
            (chars * 4).max(column.data_length.unwrap_or(0) as u64)
        }
        ReadKind::Bytes => 2 * column.data_length.unwrap_or(2000) as u64,
        ReadKind::RawUuid => 36,
        ReadKind::Boolean => 5,
        _ => 48,
    };
    body + 8
}

/// The canonical row text of a table, for [`chunk_hash_query`].
pub fn row_text_expr(table: &OracleTable) -> Result<String, SqlError> {
    let mut parts = Vec::with_capacity(table.source_columns.len());
    let mut width = 0;
    for (col, mapped) in table.source_columns.iter().zip(&table.mapped) {
        let c = format!("t.{}", quote_oracle(&col.name));
        let x = column_text_expr(&c, col, mapped)
            .map_err(|e| SqlError(format!("{}: {e}", table.header.table)))?;
        width += text_width(col, mapped);
        parts.push(format!("NVL2({c}, NVL(LENGTH({x}), 0) || ':' || {x}, 'N')"));
    }
    if width > MAX_ROW_TEXT_BYTES {
        return Err(SqlError(format!(
            "{}: rows can be longer than {MAX_ROW_TEXT_BYTES} bytes of text, too long to hash inside Oracle",
            table.header.table
        )));
    }
    Ok(parts.join(" || '|' || "))
}

/// `(count, sum)` of one chunk of a slice, as text, as of the snapshot
/// SCN: the slice's filter and the chunk's key range come from `slice`
/// (its shard bounds), bound as in [`super::sql::section_query`].
pub fn chunk_hash_query(
    table: &OracleTable,
    slice: &Slice,
    as_of_scn: bool,
) -> Result<Query, SqlError> {
    let row = row_text_expr(table)?;
    let mut binds = Vec::new();
    if as_of_scn {
        binds.push(("scn".to_string(), BindValue::Scn));
    }
    let mut next = 1;
    let wh = slice_where(table, slice, &mut next, &mut binds)?;
    let scn = if as_of_scn { " AS OF SCN :scn" } else { "" };
    let sql = format!(
        "SELECT TO_CHAR(COUNT(*)), TO_CHAR(SUM(TO_NUMBER(SUBSTR(RAWTOHEX(STANDARD_HASH({row}, 'MD5')), 1, 15), \
         'XXXXXXXXXXXXXXX'))) FROM {}{scn} t{wh}",
        quote_oracle_table(&table.header.table)
    );
    Ok(Query { sql, binds })
}

/// The same sum on the PostgreSQL side, over a row text built like
/// `verify::pg` builds it: `sum(('x0' || substr(md5(row), 1, 15))::bit(64)::bigint)`.
/// (The leading `0` makes the 60-bit value a non-negative bigint.)
pub fn pg_sum_expr(row_text: &str) -> String {
    format!("sum(('x0' || substr(md5({row_text}), 1, 15))::bit(64)::bigint)::text")
}

/// The PostgreSQL-side text of a column that matches
/// [`column_text_expr`] (for floats: their IEEE bits, as Oracle hashes them).
pub fn pg_column_text_expr(c: &str, mapped: &Mapped) -> String {
    match mapped.read {
        ReadKind::NumberAsFloat8 | ReadKind::BinaryDouble => format!("encode(float8send({c}), 'hex')"),
        ReadKind::BinaryFloat => format!("encode(float4send({c}), 'hex')"),
        ReadKind::Bytes => format!("encode({c}, 'hex')"),
        ReadKind::Number if mapped.logical == crate::value::LogicalType::Decimal => format!(
            "CASE WHEN strpos(({c})::text, '.') > 0 THEN rtrim(rtrim(({c})::text, '0'), '.') ELSE ({c})::text END"
        ),
        _ => format!("({c})::text"),
    }
}
