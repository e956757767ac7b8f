//! Rolling a phase back.
//!
//! **Before the switch** the source still serves the phase, so rolling back
//! means unfreezing it and, with `--purge-target`, deleting exactly the rows
//! the phase's sections loaded (each section's own predicate, as the loader
//! wrote them), children before parents so that `via` predicates still see
//! their parents and foreign keys never block, in one transaction on
//! PostgreSQL and in retried chunks on CockroachDB (see [`purge`]).
//! Other phases' rows in shared tables are untouched.
//!
//! **After the switch** the target has taken writes the source never saw.
//! The source has been frozen since the dump, so the rows that differ
//! between the two are exactly the target's changes; rather than diffing,
//! the target's *whole* current slice is exported as a molt stream, and
//! molt-load's slice replacement (delete the slice, copy the rows) applies
//! inserts, updates and deletes alike:
//!
//! ```sh
//! molt-cutover rollback --phase A --after-cutover ... | molt-load --target "$SOURCE_URL"
//! ```
//!
//! The stream first empties every table's slice, children first (empty
//! sections), then refills them, parents first, so the source's foreign
//! keys hold at every step. molt-load must process sections in order
//! (`--jobs 1`, its default).
//!
//! The purge's DELETEs come from [`purge_steps`], which `--dry-run` prints
//! (with the shard bounds written in) instead of running.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Context;
use futures_util::StreamExt;
use molt_core::digest::DigestColumn;
use molt_core::ident::{literal_pg, quote_pg, quote_pg_table};
use molt_core::ledger::SectionRow;
use molt_core::postgres::catalog::value_kind;
use molt_core::postgres::copy_text::{ColumnDecoder, RowDecoder};
use molt_core::stream::{Record, SectionEnd, Shard, StreamWriter, TableHeader, TableName};
use molt_core::target::slice::{section_predicate, SlicePredicate};
use tokio_postgres::Client;

/// Orders tables so that every table comes before the tables it
/// references (children first). `refs[t]` are the tables `t` references.
pub fn children_first(
    tables: &[TableName],
    refs: &HashMap<TableName, Vec<TableName>>,
) -> Vec<TableName> {
    let mut out: Vec<TableName> = Vec::new();
    let mut remaining: Vec<TableName> = tables.to_vec();
    while !remaining.is_empty() {
        // A table can go when no remaining table (other than itself)
        // references it.
        let pos = remaining.iter().position(|t| {
            !remaining
                .iter()
                .any(|other| other != t && refs.get(other).is_some_and(|r| r.contains(t)))
        });
        let next = remaining.remove(pos.unwrap_or(0)); // a cycle: any order
        out.push(next);
    }
    out
}

/// Foreign-key references between the given target tables, from their
/// stored headers (which name referenced tables by source name).
pub fn references(
    tables: &[(TableName, TableHeader)],
    landed: &HashMap<TableName, (TableName, TableHeader)>,
) -> HashMap<TableName, Vec<TableName>> {
    tables
        .iter()
        .map(|(target, header)| {
            let refs = header
                .foreign_keys
                .iter()
                .map(|fk| {
                    landed
                        .get(&fk.references)
                        .map_or_else(|| fk.references.clone(), |(t, _)| t.clone())
                })
                .collect();
            (target.clone(), refs)
        })
        .collect()
}

/// One DELETE of a purge: the rows of one section.
#[derive(Clone, Debug)]
pub struct PurgeStep {
    pub table: TableName,
    /// 0-based shard index of the section.
    pub shard_index: i64,
    /// The section's filter (target dialect), as the ledger recorded it.
    pub filter: Option<String>,
    /// `DELETE FROM t [WHERE p]`, shard bounds as `$n` parameters.
    pub sql: String,
    pub predicate: SlicePredicate,
}

impl PurgeStep {
    /// Counts the rows the DELETE removes (same predicate and parameters).
    pub fn count_sql(&self) -> String {
        let mut sql = format!("SELECT count(*) FROM {}", quote_pg_table(&self.table));
        if let Some(p) = &self.predicate.sql {
            sql.push_str(" WHERE ");
            sql.push_str(p);
        }
        sql
    }

    /// The statement with its parameters written in as literals, for a
    /// person to read or paste. The parameters are the shard bounds, which
    /// [`section_predicate`] appends after the slice's filter, so only the
    /// text after the filter is searched for `$n`: a filter that itself
    /// contains `$1` is left alone.
    pub fn inlined(&self) -> String {
        let filter_part = self
            .filter
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(|f| format!("({f})"))
            .unwrap_or_default();
        let split = match self.sql.find(" WHERE ") {
            Some(at) if self.sql[at + 7..].starts_with(&filter_part) => at + 7 + filter_part.len(),
            _ => return self.sql.clone(),
        };
        let (head, tail) = self.sql.split_at(split);
        let mut tail = tail.to_string();
        // Highest first, so that `$1` never matches the start of `$10`.
        for (i, value) in self.predicate.params.iter().enumerate().rev() {
            tail = tail.replace(
                &format!("${}::", i + 1),
                &format!("{}::", literal_pg(value)),
            );
        }
        format!("{head}{tail}")
    }
}

/// The DELETEs of a purge, children first (see [`purge`]). Needs no
/// database.
pub fn purge_steps(
    phase: &str,
    sections: &[SectionRow],
    headers: &HashMap<TableName, TableHeader>,
    refs: &HashMap<TableName, Vec<TableName>>,
) -> anyhow::Result<Vec<PurgeStep>> {
    let mut tables: Vec<TableName> = Vec::new();
    for s in sections {
        if !tables.contains(&s.target) {
            tables.push(s.target.clone());
        }
    }
    let mut steps = Vec::new();
    for table in children_first(&tables, refs) {
        let header = headers
            .get(&table)
            .with_context(|| format!("phase {phase}: {table}: no table header in the ledger"))?;
        for s in sections.iter().filter(|s| s.target == table) {
            let mut h = header.clone();
            h.slice.phase = phase.to_string();
            h.slice.filter = s.filter.clone();
            h.slice.target_filter = None;
            h.slice.shard = serde_json::from_value(s.shard.clone()).with_context(|| {
                format!("phase {phase}: {table}: unreadable shard in the ledger")
            })?;
            let predicate = section_predicate(&h, None)
                .with_context(|| format!("phase {phase}: {table}: section predicate"))?;
            let mut sql = format!("DELETE FROM {}", quote_pg_table(&table));
            if let Some(p) = &predicate.sql {
                sql.push_str(" WHERE ");
                sql.push_str(p);
            }
            steps.push(PurgeStep {
                table: table.clone(),
                shard_index: s.shard_index,
                filter: s.filter.clone(),
                sql,
                predicate,
            });
        }
    }
    Ok(steps)
}

/// Retries of each purge DELETE after a transient error (40001 above all).
const PURGE_RETRIES: u32 = 8;

/// Deletes every section's rows of the phase, children first. Returns rows
/// deleted per table.
///
/// On PostgreSQL it is one transaction. On CockroachDB one transaction
/// over a whole phase would be the huge transaction its docs warn against
/// (bulk deletes: batches of thousands of rows), so each section is deleted
/// in chunks of `LIMIT` statements, the way molt-load replaces a slice,
/// each retried on a 40001. A purge cut short there leaves the remaining
/// rows in place: the target slice serves no traffic before the switch,
/// and running the same rollback again deletes the rest (a DELETE of rows
/// already gone deletes nothing).
pub async fn purge(
    target: &mut molt_core::target::Target,
    phase: &str,
    steps: &[PurgeStep],
) -> anyhow::Result<Vec<(TableName, u64)>> {
    if target.flavour.is_cockroach() {
        let mut deleted: Vec<(TableName, u64)> = Vec::new();
        for step in steps {
            let n = molt_core::target::delete_in_chunks(
                &target.client,
                target.flavour,
                &step.table,
                &step.predicate,
                PURGE_RETRIES,
            )
            .await
            .with_context(|| {
                format!(
                    "phase {phase}: deleting the rows of {} shard {} (rows deleted so far stay deleted; run the rollback again to finish)",
                    step.table,
                    step.shard_index + 1
                )
            })?;
            tally(&mut deleted, &step.table, n);
        }
        return Ok(deleted);
    }
    let tx = target
        .client
        .transaction()
        .await
        .map_err(|e| anyhow::anyhow!(molt_core::target::describe(&e)))?;
    let mut deleted: Vec<(TableName, u64)> = Vec::new();
    for step in steps {
        let n = tx
            .execute(&step.sql, &step.predicate.param_refs())
            .await
            .map_err(|e| anyhow::anyhow!(molt_core::target::describe(&e)))
            .with_context(|| {
                format!(
                    "phase {phase}: deleting the rows of {} shard {}",
                    step.table,
                    step.shard_index + 1
                )
            })?;
        tally(&mut deleted, &step.table, n);
    }
    tx.commit()
        .await
        .map_err(|e| anyhow::anyhow!(molt_core::target::describe(&e)))
        .with_context(|| format!("phase {phase}: committing the purge"))?;
    Ok(deleted)
}

/// Adds `n` deleted rows of `table` to the per-table totals (steps come
/// table by table).
fn tally(deleted: &mut Vec<(TableName, u64)>, table: &TableName, n: u64) {
    match deleted.last_mut() {
        Some((last, total)) if last == table => *total += n,
        _ => deleted.push((table.clone(), n)),
    }
}

/// One table of the rollback export.
pub struct ExportTable {
    /// Where the rows live now.
    pub target: TableName,
    /// The target-dialect predicate of the phase's slice.
    pub target_filter: Option<String>,
    /// The stored header (columns); its names are rewritten to `source`.
    pub header: TableHeader,
    pub source: TableName,
    /// The source-dialect predicate (what molt-load deletes on the source).
    pub source_filter: Option<String>,
}

impl ExportTable {
    /// The query that reads the slice's rows on the target, as text.
    pub fn select_sql(&self) -> String {
        let select: Vec<String> = self
            .header
            .columns
            .iter()
            .map(|c| format!("({})::TEXT", quote_pg(&c.name)))
            .collect();
        let mut sql = format!(
            "SELECT {} FROM {}",
            select.join(", "),
            quote_pg_table(&self.target)
        );
        if let Some(f) = &self.target_filter {
            sql.push_str(&format!(" WHERE ({f})"));
        }
        sql
    }

    fn reverse_header(&self, phase: &str) -> TableHeader {
        let mut h = self.header.clone();
        h.table = self.source.clone();
        h.target = Some(self.source.clone());
        h.slice.phase = phase.to_string();
        h.slice.table = self.source.clone();
        h.slice.filter = self.source_filter.clone();
        h.slice.target_filter = None;
        h.slice.shard = Shard::whole();
        h.indexes.clear();
        h.foreign_keys.clear();
        h.checks.clear();
        h.estimated_rows = None;
        h.notes = vec![format!(
            "rollback of phase {phase}: the target's rows of {}",
            self.target
        )];
        h
    }
}

/// Writes the rollback stream: empty sections children first, then the
/// target's rows parents first.
pub async fn export(
    client: &Client,
    phase: &str,
    tables: &[ExportTable],
    refs: &HashMap<TableName, Vec<TableName>>,
    out: impl Write,
) -> anyhow::Result<u64> {
    for setting in ["SET extra_float_digits = 1", "SET bytea_output = 'hex'"] {
        let _ = client.batch_execute(setting).await;
    }
    let targets: Vec<TableName> = tables.iter().map(|t| t.target.clone()).collect();
    let order = children_first(&targets, refs);
    let by_target: HashMap<&TableName, &ExportTable> =
        tables.iter().map(|t| (&t.target, t)).collect();
    let mut writer = StreamWriter::new(out);
    writer.record(&molt_core::stream::header("molt-cutover", None))?;
    for target in &order {
        let t = by_target[target];
        let header = t.reverse_header(phase);
        writer.record(&Record::Table(Box::new(header.clone())))?;
        writer.record(&Record::End(SectionEnd {
            table: header.table.clone(),
            shard: Shard::whole(),
            rows: 0,
            digest: molt_core::digest::SectionDigest::default().hex(),
            changes: Vec::new(),
            checksum: None,
        }))?;
    }
    let mut total = 0;
    for target in order.iter().rev() {
        let t = by_target[target];
        let header = t.reverse_header(phase);
        writer.record(&Record::Table(Box::new(header.clone())))?;
        let digest = copy_rows(client, phase, t, &mut writer).await?;
        writer.record(&Record::End(SectionEnd {
            table: header.table.clone(),
            shard: Shard::whole(),
            rows: digest.rows,
            digest: digest.hex(),
            changes: Vec::new(),
            checksum: None,
        }))?;
        writer.maybe_flush()?;
        total += digest.rows;
        molt_core::info!(
            "phase {phase}: exported {} rows of {} for {}",
            digest.rows,
            t.target,
            t.source
        );
    }
    writer.record(&molt_core::stream::close())?;
    writer.flush()?;
    Ok(total)
}

/// Reads the target's slice rows as text and converts them to stream rows
/// with the dump's own decoder.
async fn copy_rows<W: Write>(
    client: &Client,
    phase: &str,
    t: &ExportTable,
    writer: &mut StreamWriter<W>,
) -> anyhow::Result<molt_core::digest::SectionDigest> {
    let columns: Vec<ColumnDecoder> = t
        .header
        .columns
        .iter()
        .map(|c| ColumnDecoder {
            name: c.name.clone(),
            kind: value_kind(c.logical),
            array: c.array_dims > 0,
            digest: DigestColumn::from(c),
        })
        .collect();
    let sql = t.select_sql();
    let failed = |e: tokio_postgres::Error| {
        anyhow::anyhow!(
            "phase {phase}: reading {} from the target: {}",
            t.target,
            molt_core::target::describe(&e)
        )
    };
    let no_params: [&str; 0] = [];
    let rows = client.query_raw(&sql, no_params).await.map_err(failed)?;
    futures_util::pin_mut!(rows);
    let mut decoder = RowDecoder::new(t.target.to_string(), columns);
    let mut line = Vec::new();
    while let Some(row) = rows.next().await {
        let row = row.map_err(failed)?;
        line.clear();
        for i in 0..t.header.columns.len() {
            if i > 0 {
                line.push(b'\t');
            }
            match row.get::<_, Option<&str>>(i) {
                None => line.extend_from_slice(b"\\N"),
                Some(v) => escape_copy(v, &mut line),
            }
        }
        line.push(b'\n');
        decoder
            .feed(&line, writer)
            .with_context(|| format!("phase {phase}: converting a row of {}", t.target))?;
        writer.maybe_flush()?;
    }
    decoder.finish()?;
    Ok(decoder.digest())
}

/// COPY text escaping of one value (what the decoder undoes).
fn escape_copy(value: &str, out: &mut Vec<u8>) {
    for &b in value.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_come_first() {
        let c = TableName::new("s", "customers");
        let o = TableName::new("s", "orders");
        let i = TableName::new("s", "items");
        let refs = HashMap::from([(o.clone(), vec![c.clone()]), (i.clone(), vec![o.clone()])]);
        let order = children_first(&[c.clone(), o.clone(), i.clone()], &refs);
        assert_eq!(order, vec![i, o, c]);
    }

    #[test]
    fn inlined_deletes_write_the_bounds_in_and_leave_the_filter_alone() {
        let step = PurgeStep {
            table: TableName::new("s", "t"),
            shard_index: 0,
            filter: Some("note <> '$1::x'".into()),
            sql: "DELETE FROM \"s\".\"t\" WHERE (note <> '$1::x') AND \"a\" >= $1::TEXT::INT8 AND \"a\" < $10::TEXT::INT8".into(),
            predicate: SlicePredicate {
                sql: None,
                params: (1..=10).map(|i| format!("{i}'")).collect(),
            },
        };
        assert_eq!(
            step.inlined(),
            "DELETE FROM \"s\".\"t\" WHERE (note <> '$1::x') AND \"a\" >= '1'''::TEXT::INT8 AND \"a\" < '10'''::TEXT::INT8"
        );
    }
}
