//! The rows of one section on the target, as a WHERE clause.
//!
//! Phases may share a table, so a section may only ever touch its own rows:
//! those matching its slice's filter (in the target's dialect) and lying in
//! its shard's key range. Loading deletes exactly those rows before copying
//! (so a re-run replaces the slice instead of duplicating it), and deletes
//! them again when a load fails (so a torn section leaves nothing behind).
//!
//! The filter is SQL the operator wrote in the plan, never data. Shard
//! bounds are data, so they are bound as text parameters and cast to the
//! key column's type on the server (`$1::TEXT::INT8`), never pasted.

use super::ddl::column_type;
use super::{Result, TargetError};
use crate::ident::quote_pg;
use crate::stream::TableHeader;

/// A section's predicate and its parameters (`$1`, `$2`, ... in order).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlicePredicate {
    /// `None` when the section is the whole table.
    pub sql: Option<String>,
    pub params: Vec<String>,
}

impl SlicePredicate {
    /// Parameters as the driver takes them.
    pub fn param_refs(&self) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect()
    }
}

/// Builds the predicate of the section `header` describes.
pub fn section_predicate(
    header: &TableHeader,
    schema_override: Option<&str>,
) -> Result<SlicePredicate> {
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
        let key: Vec<&crate::stream::Column> = if shard.key.is_empty() {
            header.primary_key()
        } else {
            shard
                .key
                .iter()
                .map(|name| {
                    header
                        .columns
                        .iter()
                        .find(|c| &c.name == name)
                        .ok_or_else(|| {
                            TargetError::Invalid(format!(
                            "shard {shard} of {}: key column {name} is not a column of the table",
                            header.table
                        ))
                        })
                })
                .collect::<Result<_>>()?
        };
        if key.is_empty() {
            return Err(TargetError::Invalid(format!(
                "shard {shard} of {} has bounds but the table has no key columns",
                header.table
            )));
        }
        for (bound, op) in [(&shard.lower, ">="), (&shard.upper, "<")] {
            let Some(values) = bound else { continue };
            if values.len() != key.len() {
                return Err(TargetError::Invalid(format!(
                    "shard {shard} of {}: a bound has {} values for {} key columns",
                    header.table,
                    values.len(),
                    key.len()
                )));
            }
            let mut cols = Vec::new();
            let mut exprs = Vec::new();
            for (column, value) in key.iter().zip(values) {
                let text = match value {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    other => {
                        return Err(TargetError::Invalid(format!(
                            "shard {shard} of {}: bound value {other} for key column {} is not a scalar",
                            header.table, column.name
                        )))
                    }
                };
                let text = super::copy_in::pg_input(column.logical, &text)
                    .map_err(|m| {
                        TargetError::Invalid(format!(
                            "shard {shard} of {}: {}: {m}",
                            header.table, column.name
                        ))
                    })?
                    .into_owned();
                params.push(text);
                cols.push(quote_pg(&column.name));
                exprs.push(format!(
                    "${}::TEXT::{}",
                    params.len(),
                    column_type(column, schema_override)
                ));
            }
            if cols.len() == 1 {
                parts.push(format!("{} {op} {}", cols[0], exprs[0]));
            } else {
                parts.push(format!("({}) {op} ({})", cols.join(", "), exprs.join(", ")));
            }
        }
    }
    Ok(SlicePredicate {
        sql: (!parts.is_empty()).then(|| parts.join(" AND ")),
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(slice: serde_json::Value) -> TableHeader {
        serde_json::from_value(serde_json::json!({
            "table": {"schema": "s", "name": "t"},
            "columns": [
                {"name": "a", "source_type": "int", "target_type": "INT8", "type": "int", "nullable": false, "pk": 1},
                {"name": "b", "source_type": "text", "target_type": "TEXT", "type": "text", "nullable": false, "pk": 2}
            ],
            "slice": slice
        }))
        .unwrap()
    }

    #[test]
    fn whole_table_has_no_predicate() {
        let p = section_predicate(
            &header(serde_json::json!({"table": {"schema": "s", "name": "t"}})),
            None,
        )
        .unwrap();
        assert_eq!(p, SlicePredicate::default());
    }

    #[test]
    fn filter_and_bounds() {
        let h = header(serde_json::json!({
            "table": {"schema": "s", "name": "t"}, "filter": "region = 'A'",
            "shard": {"index": 1, "count": 3, "key": ["a", "b"], "lower": ["10", "x"], "upper": [20, "y"]}
        }));
        let p = section_predicate(&h, None).unwrap();
        assert_eq!(
            p.sql.unwrap(),
            "(region = 'A') AND (\"a\", \"b\") >= ($1::TEXT::INT8, $2::TEXT::TEXT) AND (\"a\", \"b\") < ($3::TEXT::INT8, $4::TEXT::TEXT)"
        );
        assert_eq!(p.params, vec!["10", "x", "20", "y"]);
    }
}
