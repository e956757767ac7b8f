//! The query of one section: `COPY (SELECT ...) TO STDOUT`.
//!
//! COPY takes no parameters, so the two things that are not identifiers go
//! into the SQL text, each in its own well-defined way:
//!
//! - the slice filter is SQL written by the operator (in the plan or on the
//!   command line) and is pasted as-is, in parentheses; it is trusted like
//!   the rest of the plan and is never built from data;
//! - shard bounds are values: each is quoted with [`literal_pg`] and cast to
//!   the key column's source type, so it is compared as that type.
//!
//! A plain table is read with `FROM ONLY`, so inheritance children (which
//! are tables of their own) are not read twice; a partitioned table is read
//! from its parent, which covers every partition.

use super::catalog::SourceTable;
use crate::ident::{literal_pg, quote_pg, quote_pg_table};
use crate::stream::Slice;
use crate::value::{era, LogicalType};

/// The `SELECT` of a section (without `COPY`), or why it cannot be built.
pub fn select_sql(table: &SourceTable, slice: &Slice) -> Result<String, String> {
    let columns: Vec<&str> = table.reads.iter().map(|r| r.select.as_str()).collect();
    let mut sql = format!(
        "SELECT {} FROM {}{}",
        columns.join(", "),
        if table.partitioned { "" } else { "ONLY " },
        quote_pg_table(&table.header.table)
    );
    let mut conditions = Vec::new();
    if let Some(filter) = slice.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        conditions.push(format!("({filter})"));
    }
    let shard = &slice.shard;
    if shard.lower.is_some() || shard.upper.is_some() {
        let key = key_columns(table, &shard.key)?;
        let names: Vec<String> = key
            .iter()
            .map(|&i| quote_pg(&table.header.columns[i].name))
            .collect();
        let left = if names.len() == 1 {
            names[0].clone()
        } else {
            format!("({})", names.join(", "))
        };
        for (bound, op) in [(&shard.lower, ">="), (&shard.upper, "<")] {
            if let Some(values) = bound {
                conditions.push(format!(
                    "{left} {op} {}",
                    bound_literal(table, &key, values)?
                ));
            }
        }
    }
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    Ok(sql)
}

/// `COPY (<select>) TO STDOUT` in text format.
pub fn copy_sql(table: &SourceTable, slice: &Slice) -> Result<String, String> {
    Ok(format!("COPY ({}) TO STDOUT", select_sql(table, slice)?))
}

/// Column indexes of the shard key: the named columns, else the primary key.
fn key_columns(table: &SourceTable, names: &[String]) -> Result<Vec<usize>, String> {
    let columns = &table.header.columns;
    if names.is_empty() {
        let mut pk: Vec<(u16, usize)> = columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.pk.map(|p| (p, i)))
            .collect();
        pk.sort();
        if pk.is_empty() {
            return Err(format!(
                "shard bounds need key columns, and {} has no primary key: name them in the shard's \"key\"",
                table.header.table
            ));
        }
        return Ok(pk.into_iter().map(|(_, i)| i).collect());
    }
    names
        .iter()
        .map(|name| {
            columns.iter().position(|c| &c.name == name).ok_or_else(|| {
                format!(
                    "shard key column {name:?} is not a column of {}",
                    table.header.table
                )
            })
        })
        .collect()
}

/// `(lit1::type1, lit2::type2)` for a bound.
fn bound_literal(
    table: &SourceTable,
    key: &[usize],
    values: &[serde_json::Value],
) -> Result<String, String> {
    if values.len() != key.len() {
        return Err(format!(
            "shard bound of {} has {} values for {} key columns",
            table.header.table,
            values.len(),
            key.len()
        ));
    }
    let mut parts = Vec::with_capacity(values.len());
    for (&i, value) in key.iter().zip(values) {
        let column = &table.header.columns[i];
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            other => {
                return Err(format!(
                    "shard bound for column {} of {} must be a value, not {other}",
                    column.name, table.header.table
                ))
            }
        };
        let literal = match column.logical {
            LogicalType::Date | LogicalType::Timestamp | LogicalType::Timestamptz => {
                literal_pg(&era::to_pg_era(&text).unwrap_or(text))
            }
            LogicalType::Bytes => format!("decode({}, 'base64')", literal_pg(&text)),
            _ => literal_pg(&text),
        };
        parts.push(format!("{literal}::{}", table.reads[i].literal_type));
    }
    Ok(if parts.len() == 1 {
        parts.remove(0)
    } else {
        format!("({})", parts.join(", "))
    })
}
