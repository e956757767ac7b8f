//! Proving a plan on the live source: every row in exactly one phase, and no
//! reference from a phase to a row that moves later.
//!
//! Each table is read once: every phase's predicate becomes a 0/1 column,
//! and their sum says how many phases claim the row. A predicate that
//! evaluates to NULL (a NULL region) claims nothing, so those rows are
//! counted on their own as well: they are gaps with a known cause.

use molt_core::stream::TableName;
use serde_json::{json, Value};

use crate::plan::Plan;
use crate::source::{KeyColumn, Source};

/// The audit of one table.
#[derive(Debug, Default, PartialEq)]
pub struct TableAudit {
    pub rows: u64,
    /// Rows no phase matches.
    pub unmatched: u64,
    /// Rows more than one phase matches.
    pub overlapping: u64,
    /// Rows where at least one phase's filter is NULL.
    pub null_filter: u64,
    pub samples: serde_json::Map<String, Value>,
}

/// Dangling references from one phase into a later one.
#[derive(Debug)]
pub struct FkAudit {
    pub child: TableName,
    pub parent: TableName,
    pub constraint: String,
    pub from_phase: String,
    pub to_phase: String,
    pub rows: u64,
    pub samples: Vec<Value>,
}

fn key_json(key: &[KeyColumn], row: &[Option<String>]) -> Value {
    let mut map = serde_json::Map::new();
    for (col, value) in key.iter().zip(row) {
        map.insert(
            col.name.clone(),
            value.clone().map_or(Value::Null, Value::String),
        );
    }
    Value::Object(map)
}

pub async fn audit_table(
    source: &mut Source,
    plan: &Plan,
    table: &TableName,
    samples: u64,
) -> anyhow::Result<TableAudit> {
    let mut matched = Vec::new();
    let mut nulls = Vec::new();
    let mut predicates = Vec::new();
    for phase in &plan.phases {
        if phase.entry(table).is_some() {
            let predicate = phase.predicate(table, source)?;
            matched.push(source.indicator(predicate.as_deref()));
            nulls.push(source.null_indicator(predicate.as_deref()));
            predicates.push(predicate);
        }
    }
    let key = source.primary_key(table).await?;
    #[cfg(feature = "oracle")]
    if let Source::Oracle(o) = source {
        // Oracle has no boolean values, so `(p) IS NULL` is not SQL there:
        // its audit tests each filter with CASE WHEN / WHEN NOT
        // (molt_core::oracle::sql::audit_sql).
        return o
            .audit_table(table, &predicates, &key, samples, key_json)
            .await;
    }
    #[cfg(not(feature = "oracle"))]
    let _ = predicates;
    let qtable = source.quote_table(table);
    let key_cols = if key.is_empty() {
        String::new()
    } else {
        format!("{}, ", source.key_select(&key, None))
    };
    let inner = format!(
        "SELECT {key_cols}{} AS m, {} AS nn FROM {qtable}",
        if matched.is_empty() {
            "0".into()
        } else {
            matched.join(" + ")
        },
        if nulls.is_empty() {
            "0".into()
        } else {
            nulls.join(" + ")
        },
    );
    let counts = source
        .query_text_rows(&format!(
            "SELECT CAST(count(*) AS CHAR(20)), CAST(SUM(CASE WHEN m = 0 THEN 1 ELSE 0 END) AS CHAR(20)), \
             CAST(SUM(CASE WHEN m > 1 THEN 1 ELSE 0 END) AS CHAR(20)), CAST(SUM(CASE WHEN nn > 0 THEN 1 ELSE 0 END) AS CHAR(20)) \
             FROM ({inner}) s"
        ))
        .await
        .map_err(|e| e.context(format!("auditing {table}")))?;
    let get = |i: usize| -> u64 {
        counts[0][i]
            .as_deref()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    let mut audit = TableAudit {
        rows: get(0),
        unmatched: get(1),
        overlapping: get(2),
        null_filter: get(3),
        ..Default::default()
    };
    if !key.is_empty() {
        let aliases: Vec<String> = (0..key.len()).map(|i| format!("k{i}")).collect();
        for (name, count, condition) in [
            ("unmatched", audit.unmatched, "m = 0"),
            ("overlapping", audit.overlapping, "m > 1"),
            ("null_filter", audit.null_filter, "nn > 0"),
        ] {
            if count == 0 {
                continue;
            }
            let rows = source
                .query_text_rows(&format!(
                    "SELECT {} FROM ({inner}) s WHERE {condition} ORDER BY {} LIMIT {samples}",
                    aliases.join(", "),
                    aliases.join(", ")
                ))
                .await?;
            audit.samples.insert(
                name.into(),
                Value::Array(rows.iter().map(|r| key_json(&key, r)).collect()),
            );
        }
    }
    Ok(audit)
}

/// Rows of a phase referencing rows that a later phase moves.
pub async fn audit_foreign_keys(
    source: &mut Source,
    plan: &Plan,
    samples: u64,
) -> anyhow::Result<Vec<FkAudit>> {
    let mut out = Vec::new();
    for child in plan.tables() {
        for fk in source.foreign_keys(&child).await? {
            let parent = fk.parent.clone();
            for (i, early) in plan.phases.iter().enumerate() {
                if early.entry(&child).is_none() {
                    continue;
                }
                for late in &plan.phases[i + 1..] {
                    if late.entry(&parent).is_none() {
                        continue;
                    }
                    let child_pred = early.predicate(&child, source)?;
                    let parent_pred = late.predicate(&parent, source)?;
                    let key = source.primary_key(&child).await?;
                    let fk_tuple = source.column_tuple(&fk.columns);
                    let sub = format!(
                        "SELECT {} FROM {}{}",
                        source.column_list(&fk.referenced_columns),
                        source.quote_table(&parent),
                        parent_pred
                            .map(|p| format!(" WHERE ({p})"))
                            .unwrap_or_default()
                    );
                    let condition = format!(
                        "{}{fk_tuple} IN ({sub})",
                        child_pred
                            .map(|p| format!("({p}) AND "))
                            .unwrap_or_default()
                    );
                    let qchild = source.quote_table(&child);
                    let rows = source
                        .query_count(&format!("SELECT count(*) FROM {qchild} WHERE {condition}"))
                        .await
                        .map_err(|e| {
                            e.context(format!("checking foreign key {} of {child}", fk.name))
                        })?;
                    let mut sample_keys = Vec::new();
                    if rows > 0 && !key.is_empty() {
                        let sql = format!(
                            "SELECT {} FROM {qchild} WHERE {condition} ORDER BY {}{}",
                            source.key_select(&key, None),
                            source.order_by(&key),
                            source.limit(samples)
                        );
                        sample_keys = source
                            .query_text_rows(&sql)
                            .await?
                            .iter()
                            .map(|r| key_json(&key, r))
                            .collect();
                    }
                    out.push(FkAudit {
                        child: child.clone(),
                        parent: parent.clone(),
                        constraint: fk.name.clone(),
                        from_phase: early.name.clone(),
                        to_phase: late.name.clone(),
                        rows,
                        samples: sample_keys,
                    });
                }
            }
        }
    }
    Ok(out)
}

impl TableAudit {
    pub fn ok(&self) -> bool {
        self.unmatched == 0 && self.overlapping == 0 && self.null_filter == 0
    }

    pub fn report(&self, table: &TableName) -> Value {
        json!({
            "type": "report", "kind": "audit_table", "table": table,
            "rows": self.rows, "unmatched": self.unmatched, "overlapping": self.overlapping,
            "null_filter": self.null_filter, "samples": self.samples, "ok": self.ok(),
        })
    }
}

impl FkAudit {
    pub fn report(&self) -> Value {
        json!({
            "type": "report", "kind": "audit_foreign_key", "table": self.child, "references": self.parent,
            "constraint": self.constraint, "phase": self.from_phase, "referenced_phase": self.to_phase,
            "rows": self.rows, "samples": self.samples, "ok": self.rows == 0,
        })
    }
}
