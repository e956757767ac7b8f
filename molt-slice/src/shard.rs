//! Splitting a slice into key ranges of about N rows.
//!
//! Boundaries are read from the slice itself: its rows, filter applied,
//! numbered in primary-key order, and every N-th key becomes the lower bound
//! of the next shard. That works for any key type the database can order
//! (integer, UUID, text, composite), and shards stay even under a filter
//! and under skew, where cutting the key *space* into equal parts does not.
//! Ranges are `[lower, upper)` with open ends, so the shards are disjoint
//! and cover the slice exactly even if rows arrive after planning.

use anyhow::Context;
use molt_core::stream::{Shard, TableName};

use crate::source::{KeyColumn, Source};

/// A slice's shards and the rows each held at planning time.
#[derive(Debug)]
pub struct Sharding {
    pub rows: u64,
    pub shards: Vec<(Shard, u64)>,
}

/// How boundaries are found.
#[derive(Clone, Copy, Debug)]
pub enum Method {
    /// Every row of the slice, in key order (exact sizes).
    Exact,
    /// A random sample of this percentage of the table (faster, approximate).
    Sample(f64),
}

pub async fn shard_slice(
    source: &mut Source,
    table: &TableName,
    key: &[KeyColumn],
    predicate: Option<&str>,
    shard_rows: u64,
    method: Method,
) -> anyhow::Result<Sharding> {
    #[cfg(feature = "oracle")]
    if let Source::Oracle(o) = source {
        return oracle_shards(o, table, key, predicate, shard_rows, method).await;
    }
    let where_clause = predicate
        .map(|p| format!(" WHERE ({p})"))
        .unwrap_or_default();
    let qtable = source.quote_table(table);
    let rows = source
        .query_count(&format!("SELECT count(*) FROM {qtable}{where_clause}"))
        .await
        .map_err(|e| e.context(format!("counting the rows of {table} in the slice")))?;
    let whole = |rows| Sharding {
        rows,
        shards: vec![(Shard::whole(), rows)],
    };
    if key.is_empty() || rows <= shard_rows || shard_rows == 0 {
        return Ok(whole(rows));
    }
    let (from, step, scale) = match method {
        Method::Exact => (format!("{qtable}{where_clause}"), shard_rows, 1.0),
        Method::Sample(percent) => {
            let fraction = (percent / 100.0).clamp(0.000_001, 1.0);
            let step = ((shard_rows as f64) * fraction).round().max(1.0) as u64;
            let from = match source {
                Source::Postgres(_) => {
                    format!("{qtable} TABLESAMPLE SYSTEM ({percent}){where_clause}")
                }
                Source::Mysql { .. } => {
                    let sample = format!("RAND() < {fraction}");
                    match predicate {
                        Some(p) => format!("{qtable} WHERE ({p}) AND {sample}"),
                        None => format!("{qtable} WHERE {sample}"),
                    }
                }
                #[cfg(feature = "oracle")]
                Source::Oracle(_) => unreachable!("Oracle slices are sharded above"),
            };
            (from, step, 1.0 / fraction)
        }
    };
    let rn_text = match source {
        Source::Postgres(_) => "s.rn::text",
        Source::Mysql { .. } => "CAST(s.rn AS CHAR)",
        #[cfg(feature = "oracle")]
        Source::Oracle(_) => unreachable!("Oracle slices are sharded above"),
    };
    let key_aliases: Vec<String> = (0..key.len()).map(|i| format!("k{i}")).collect();
    let sql = format!(
        "SELECT {}, {rn_text} AS rn_text FROM (SELECT {}, ROW_NUMBER() OVER (ORDER BY {}) AS rn FROM {from}) s \
         WHERE MOD(s.rn, {step}) = 1 AND s.rn > 1 ORDER BY s.rn",
        key_aliases.join(", "),
        source.key_select(key, None),
        source.order_by(key),
    );
    let boundaries = source
        .query_text_rows(&sql)
        .await
        .map_err(|e| e.context(format!("finding shard boundaries of {table}")))?;
    shards_from_boundaries(table, key, rows, &boundaries, scale)
}

/// Oracle: the count and the boundaries from `molt_core::oracle::sql`
/// (every row of the slice: sampling is not offered for Oracle yet).
#[cfg(feature = "oracle")]
async fn oracle_shards(
    source: &mut crate::oracle::OracleSource,
    table: &TableName,
    key: &[KeyColumn],
    predicate: Option<&str>,
    shard_rows: u64,
    method: Method,
) -> anyhow::Result<Sharding> {
    let rows = source
        .count(table, predicate)
        .await
        .map_err(|e| e.context(format!("counting the rows of {table} in the slice")))?;
    if key.is_empty() || rows <= shard_rows || shard_rows == 0 {
        return Ok(Sharding {
            rows,
            shards: vec![(Shard::whole(), rows)],
        });
    }
    if let Method::Sample(_) = method {
        molt_core::warn!(
            "{table}: --sample-percent is not supported for Oracle sources: boundaries come from every row"
        );
    }
    let boundaries = source
        .boundaries(table, predicate, shard_rows)
        .await
        .map_err(|e| e.context(format!("finding shard boundaries of {table}")))?;
    shards_from_boundaries(table, key, rows, &boundaries, 1.0)
}

/// Shards from boundary rows (key values, then the row number as text).
fn shards_from_boundaries(
    table: &TableName,
    key: &[KeyColumn],
    rows: u64,
    boundaries: &[Vec<Option<String>>],
    scale: f64,
) -> anyhow::Result<Sharding> {
    if boundaries.is_empty() {
        return Ok(Sharding {
            rows,
            shards: vec![(Shard::whole(), rows)],
        });
    }
    let key_names: Vec<String> = key.iter().map(|k| k.name.clone()).collect();
    let count = boundaries.len() as u32 + 1;
    let mut shards = Vec::with_capacity(count as usize);
    let mut lower: Option<Vec<serde_json::Value>> = None;
    let mut lower_rn = 1u64;
    for (i, boundary) in boundaries.iter().enumerate() {
        let rn: u64 = boundary
            .last()
            .cloned()
            .flatten()
            .and_then(|s| s.parse().ok())
            .filter(|&rn| rn > lower_rn)
            .with_context(|| format!("shard boundaries of {table} are not in key order"))?;
        let values: Vec<serde_json::Value> = boundary[..key.len()]
            .iter()
            .map(|v| {
                v.clone()
                    .map_or(serde_json::Value::Null, serde_json::Value::String)
            })
            .collect();
        let size = ((rn - lower_rn) as f64 * scale).round() as u64;
        shards.push((
            Shard {
                index: i as u32,
                count,
                key: key_names.clone(),
                lower: lower.take(),
                upper: Some(values.clone()),
            },
            size,
        ));
        lower = Some(values);
        lower_rn = rn;
    }
    let assigned: u64 = shards.iter().map(|(_, n)| n).sum();
    shards.push((
        Shard {
            index: count - 1,
            count,
            key: key_names,
            lower,
            upper: None,
        },
        rows.saturating_sub(assigned),
    ));
    Ok(Sharding { rows, shards })
}
