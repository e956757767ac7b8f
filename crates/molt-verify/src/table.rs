//! Verifying one table slice: schema check, then rows.
//!
//! The strategy depends on what the two sides are:
//!
//! - PostgreSQL-protocol on both sides, with a primary key: the slice is
//!   split into key-range chunks (`--chunk-rows`), each chunk is hashed
//!   inside both databases at once, and only chunks whose (count, hash)
//!   differ are read and merge-joined in the client ("chunked-hash").
//! - a MySQL or Oracle source, with a primary key: both sides are streamed
//!   in key order and merge-joined ("merge"); for Oracle, `''` and NULL
//!   are the same on both sides (`molt_core::oracle::fold_empty`).
//! - no primary key: both sides are streamed and compared as multisets of
//!   rows ("multiset"), with a warning.
//!
//! With `--live`, a chunk that differs is compared again after a backoff,
//! up to `--live-retries` times, and only its last result is reported.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use molt_core::mysql::catalog::{load_table, TableInfo};
use molt_core::mysql::DumpOptions;
use molt_core::postgres::catalog::Catalog;
use molt_core::stream::{TableHeader, TableName};
use molt_core::verify::keyorder::KeyOrder;
use molt_core::verify::merge::{merge_join, multiset, RowRx};
use molt_core::verify::pg::{self, describe_table, HashAlgo, KeyRange, PgConn};
use molt_core::verify::schema::{pair, Pairing};
use molt_core::verify::{mysql, CompareColumn, Finding, Tally, VerifyError};

use crate::output::{Output, TableReport};
use crate::sides::{Sides, Source};
use crate::units::Unit;
use crate::Options;

/// What one table contributed to the run.
pub struct TableOutcome {
    pub tally: Tally,
    pub issues: u64,
}

impl TableOutcome {
    pub fn differences(&self) -> u64 {
        self.tally.differences() + self.issues
    }
}

/// How the source side of this table is read.
enum SourceRead {
    Pg(PgConn, Arc<pg::TableRead>),
    Mysql(mysql_async::Opts, Arc<mysql::TableRead>),
    #[cfg(feature = "oracle")]
    Oracle(molt_core::ConnUrl, Arc<crate::oracle::OracleRead>),
}

/// The source table: its header and how the dump reads each column.
enum SourceTable {
    Pg(molt_core::postgres::catalog::SourceTable),
    Mysql(molt_core::mysql::catalog::TablePlan),
    #[cfg(feature = "oracle")]
    Oracle(Arc<molt_core::oracle::OracleTable>),
}

impl SourceTable {
    fn header(&self) -> &TableHeader {
        match self {
            SourceTable::Pg(t) => &t.header,
            SourceTable::Mysql(p) => &p.header,
            #[cfg(feature = "oracle")]
            SourceTable::Oracle(t) => &t.header,
        }
    }
}

async fn load_source(
    sides: &mut Sides,
    unit: &Unit,
    options: &Options,
) -> anyhow::Result<SourceTable> {
    match &mut sides.source {
        Source::Pg(conn) => {
            let table = Catalog::new(&conn.client)
                .table(&unit.table)
                .await?
                .with_context(|| format!("table {} does not exist on the source", unit.table))?;
            Ok(SourceTable::Pg(table))
        }
        Source::Mysql { conn, server, .. } => {
            let info = TableInfo {
                name: unit.table.name.clone(),
                estimated_rows: None,
                auto_increment: None,
                engine: None,
                comment: None,
            };
            let dump_options = DumpOptions {
                keep_case: options.keep_case,
                target_schema: options
                    .target_schema
                    .clone()
                    .unwrap_or_else(|| "public".into()),
                ..DumpOptions::default()
            };
            let plan = load_table(conn, server, &unit.table.schema, &info, &dump_options).await?;
            Ok(SourceTable::Mysql(plan))
        }
        #[cfg(feature = "oracle")]
        Source::Oracle { conn, .. } => {
            let table = crate::oracle::load_table(conn, &unit.table, options.target_schema.clone())
                .await?
                .with_context(|| format!("table {} does not exist on the source", unit.table))?;
            Ok(SourceTable::Oracle(Arc::new(table)))
        }
    }
}

fn target_name(source: &SourceTable, options: &Options) -> TableName {
    let header = source.header();
    match (source, &options.target_schema) {
        (SourceTable::Pg(_), Some(schema)) => {
            TableName::new(schema.clone(), header.target_name().name.clone())
        }
        _ => header.target_name().clone(),
    }
}

fn source_read(sides: &Sides, source: &SourceTable, p: &Pairing, unit: &Unit) -> SourceRead {
    match (&sides.source, source) {
        (Source::Pg(conn), SourceTable::Pg(t)) => {
            let columns = p
                .source_index
                .iter()
                .map(|&i| {
                    let col = &t.header.columns[i];
                    let read = &t.reads[i];
                    pg::ReadColumn {
                        expr: read.select.clone(),
                        logical: col.logical,
                        is_array: col.array_dims > 0,
                        sql_type: read.literal_type.clone(),
                        decoder: read.decoder.clone(),
                    }
                })
                .collect();
            SourceRead::Pg(
                conn.clone(),
                Arc::new(pg::TableRead {
                    table: t.header.table.clone(),
                    columns,
                    key: p.key.clone(),
                    filter: unit.filter.clone(),
                    only: !t.partitioned,
                }),
            )
        }
        (Source::Mysql { opts, .. }, SourceTable::Mysql(plan)) => {
            let columns = p
                .source_index
                .iter()
                .map(|&i| {
                    let c = &plan.columns[i];
                    mysql::ReadColumn {
                        name: c.source_name.clone(),
                        select_expr: c.select_expr.clone(),
                        decoder: c.decoder,
                        logical: plan.header.columns[i].logical,
                    }
                })
                .collect();
            SourceRead::Mysql(
                opts.clone(),
                Arc::new(mysql::TableRead {
                    table: plan.header.table.clone(),
                    columns,
                    key: p.key.clone(),
                    filter: unit.filter.clone(),
                }),
            )
        }
        #[cfg(feature = "oracle")]
        (Source::Oracle { url, .. }, SourceTable::Oracle(t)) => SourceRead::Oracle(
            url.clone(),
            Arc::new(crate::oracle::OracleRead {
                table: t.clone(),
                source_index: p.source_index.clone(),
                key: p.key.clone(),
                filter: unit.filter.clone(),
                logicals: Arc::new(p.columns.iter().map(|c| c.logical).collect()),
                truncated: Default::default(),
            }),
        ),
        _ => unreachable!("the source table was loaded from this source"),
    }
}

fn target_read(target: &TableName, p: &Pairing, unit: &Unit) -> pg::TableRead {
    let columns = p
        .columns
        .iter()
        .zip(&p.target)
        .map(|(c, t)| {
            pg::ReadColumn::new(
                &t.name,
                c.target_logical(),
                c.padded,
                c.is_array,
                &t.sql_type,
            )
        })
        .collect();
    pg::TableRead {
        table: target.clone(),
        columns,
        key: p.key.clone(),
        filter: unit.target_filter.clone(),
        only: false,
    }
}

/// The comparison of one table, across its chunks.
struct Compare {
    source: SourceRead,
    target_conn: PgConn,
    target: Arc<pg::TableRead>,
    columns: Arc<Vec<CompareColumn>>,
    key: Vec<usize>,
    orders: Vec<KeyOrder>,
    algo: Option<HashAlgo>,
}

impl Compare {
    fn spawn_source(&self, range: &KeyRange) -> Result<RowRx, VerifyError> {
        match &self.source {
            SourceRead::Pg(conn, read) => {
                Ok(read.spawn_rows(conn.clone(), range.clone(), "source"))
            }
            SourceRead::Mysql(..) => unreachable!("MySQL rows are read whole"),
            #[cfg(feature = "oracle")]
            SourceRead::Oracle(..) => unreachable!("Oracle rows are read whole"),
        }
    }

    async fn spawn_mysql(&self) -> Result<RowRx, VerifyError> {
        match &self.source {
            SourceRead::Mysql(opts, read) => {
                let conn = molt_core::mysql::connect(opts)
                    .await
                    .map_err(|e| VerifyError::new(format!("source: {e}")))?;
                Ok(read.spawn_rows(conn))
            }
            _ => unreachable!(),
        }
    }

    /// Compares one key range (or the whole slice); `fetched` tells whether
    /// rows had to be read.
    async fn range(
        &self,
        range: &KeyRange,
        cap: usize,
        findings: &mut Vec<Finding>,
    ) -> Result<(Tally, bool), VerifyError> {
        findings.clear();
        if let (Some(algo), SourceRead::Pg(sconn, sread)) = (self.algo, &self.source) {
            let (s, t) = tokio::join!(
                sread.chunk_hash(sconn, range, algo, "source"),
                self.target
                    .chunk_hash(&self.target_conn, range, algo, "target")
            );
            let (s, t) = (s?, t?);
            if s == t {
                let n = s.0 as u64;
                return Ok((
                    Tally {
                        source_rows: n,
                        target_rows: n,
                        matched: n,
                        ..Tally::default()
                    },
                    false,
                ));
            }
        }
        let mut src = match &self.source {
            SourceRead::Pg(..) => self.spawn_source(range)?,
            SourceRead::Mysql(..) => self.spawn_mysql().await?,
            #[cfg(feature = "oracle")]
            SourceRead::Oracle(url, read) => read.spawn_rows(url.clone()),
        };
        let mut tgt = self
            .target
            .spawn_rows(self.target_conn.clone(), range.clone(), "target");
        #[cfg(feature = "oracle")]
        if let SourceRead::Oracle(_, read) = &self.source {
            // Oracle's '' is NULL: the target's '' is folded the same way.
            tgt = crate::oracle::fold_target(tgt, read.logicals.clone());
        }
        let mut keep = |f: Finding| {
            if findings.len() < cap {
                findings.push(f);
            }
        };
        let tally = if self.key.is_empty() {
            multiset(&self.columns, &mut src, &mut tgt, &mut keep).await?
        } else {
            merge_join(
                &self.columns,
                &self.key,
                &self.orders,
                &mut src,
                &mut tgt,
                &mut keep,
            )
            .await?
        };
        Ok((tally, true))
    }
}

/// Verifies one slice and writes its records.
pub async fn verify_table(
    sides: &mut Sides,
    unit: &Unit,
    options: &Options,
    out: &mut Output,
) -> anyhow::Result<TableOutcome> {
    let started = Instant::now();
    let source = load_source(sides, unit, options).await?;
    let header = source.header().clone();
    let target = target_name(&source, options);
    let mut warnings = Vec::new();

    let Some(catalog) = describe_table(&sides.target, &target, "target").await? else {
        // Nothing to pair: every source row of the slice is missing.
        let issues = vec![format!("table {target} does not exist on the target")];
        let all = Pairing {
            columns: Vec::new(),
            source_index: (0..header.columns.len()).collect(),
            target: Vec::new(),
            key: Vec::new(),
            issues: Vec::new(),
            rows_comparable: false,
        };
        let n = count_source(sides, &source, &all, unit).await?;
        let tally = Tally {
            source_rows: n,
            missing: n,
            ..Tally::default()
        };
        out.table_summary(&TableReport {
            phase: &unit.phase,
            table: &unit.table,
            target: &target,
            tally,
            columns_compared: 0,
            seconds: started.elapsed().as_secs_f64(),
            schema_issues: &issues,
            mode: "count",
            chunks: 0,
            chunks_fetched: 0,
            warnings: &warnings,
        })?;
        return Ok(TableOutcome { tally, issues: 1 });
    };

    let pairing = pair(&header, &catalog, options.float_tolerance);
    let issues = pairing.issues.clone();
    let target_read = Arc::new(target_read(&target, &pairing, unit));

    if !pairing.rows_comparable {
        // A key column is missing on the target: rows cannot be paired.
        let s = count_source(sides, &source, &pairing, unit).await?;
        let t = target_read.count(&sides.target, "target").await?;
        let tally = Tally {
            source_rows: s,
            target_rows: t,
            ..Tally::default()
        };
        warnings
            .push("rows not compared: a primary-key column is missing on the target".to_string());
        out.table_summary(&TableReport {
            phase: &unit.phase,
            table: &unit.table,
            target: &target,
            tally,
            columns_compared: 0,
            seconds: started.elapsed().as_secs_f64(),
            schema_issues: &issues,
            mode: "count",
            chunks: 0,
            chunks_fetched: 0,
            warnings: &warnings,
        })?;
        return Ok(TableOutcome {
            tally,
            issues: issues.len().max(1) as u64,
        });
    }

    let src_read = source_read(sides, &source, &pairing, unit);
    if pairing.key.is_empty() {
        let w = format!(
            "table {} has no primary key: compared as a multiset of rows (memory grows with the number of distinct rows; differing rows are reported with all their values as the key)",
            unit.table
        );
        molt_core::warn!("{w}");
        warnings.push(w);
    }
    let chunked = sides.both_pg() && !pairing.key.is_empty();
    let algo = match &src_read {
        SourceRead::Pg(sconn, _) if chunked && !options.no_hash => {
            Some(HashAlgo::for_pair(sconn, &sides.target))
        }
        _ => None,
    };
    let compare = Compare {
        orders: pairing
            .key
            .iter()
            .map(|&i| KeyOrder {
                logical: pairing.columns[i].target_logical(),
                padded: pairing.columns[i].padded,
            })
            .collect(),
        key: pairing.key.clone(),
        columns: Arc::new(pairing.columns.clone()),
        source: src_read,
        target_conn: sides.target.clone(),
        target: target_read,
        algo,
    };

    let ranges = match &compare.source {
        SourceRead::Pg(sconn, sread) if chunked && !options.no_hash => {
            let bounds = sread
                .boundaries(sconn, options.chunk_rows, "source")
                .await?;
            chunk_ranges(bounds)
        }
        _ => vec![KeyRange::default()],
    };
    let mode = if pairing.key.is_empty() {
        "multiset"
    } else if chunked && !options.no_hash {
        "chunked-hash"
    } else {
        "merge"
    };

    let mut tally = Tally::default();
    let mut reported: u64 = 0;
    let mut fetched = 0u64;
    let mut findings = Vec::new();
    for range in &ranges {
        let cap = options.max_report_rows.saturating_sub(reported) as usize;
        let mut attempt = 0;
        let (chunk, was_fetched) = loop {
            let (chunk, was_fetched) = compare.range(range, cap, &mut findings).await?;
            if chunk.differences() == 0 || attempt >= options.live_retries {
                break (chunk, was_fetched);
            }
            let wait = options.live_backoff_ms.saturating_mul(1 << attempt.min(16));
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(wait)).await;
        };
        if was_fetched {
            fetched += 1;
        }
        tally.add(&chunk);
        out.findings(
            &unit.phase,
            &unit.table,
            &compare.columns,
            &compare.key,
            &findings,
        )?;
        reported += findings.len() as u64;
    }

    #[cfg(feature = "oracle")]
    if let SourceRead::Oracle(_, read) = &compare.source {
        let n = read.truncated.load(std::sync::atomic::Ordering::Relaxed);
        if n > 0 {
            let w = format!(
                "{n} source values had digits below the microsecond: compared truncated to the microsecond,                  as molt-dump --allow-rounding writes them"
            );
            molt_core::warn!("{}: {w}", unit.table);
            warnings.push(w);
        }
    }
    out.table_summary(&TableReport {
        phase: &unit.phase,
        table: &unit.table,
        target: &target,
        tally,
        columns_compared: compare.columns.len(),
        seconds: started.elapsed().as_secs_f64(),
        schema_issues: &issues,
        mode,
        chunks: ranges.len() as u64,
        chunks_fetched: fetched,
        warnings: &warnings,
    })?;
    Ok(TableOutcome {
        tally,
        issues: issues.len() as u64,
    })
}

/// N boundaries → N+1 ranges covering the whole key space.
fn chunk_ranges(bounds: Vec<Vec<String>>) -> Vec<KeyRange> {
    let mut ranges = Vec::with_capacity(bounds.len() + 1);
    let mut lower = None;
    for b in bounds {
        ranges.push(KeyRange {
            lower: lower.take(),
            upper: Some(b.clone()),
        });
        lower = Some(b);
    }
    ranges.push(KeyRange { lower, upper: None });
    ranges
}

async fn count_source(
    sides: &mut Sides,
    source: &SourceTable,
    p: &Pairing,
    unit: &Unit,
) -> anyhow::Result<u64> {
    let read = source_read(sides, source, p, unit);
    Ok(match (read, &mut sides.source) {
        (SourceRead::Pg(conn, read), _) => read.count(&conn, "source").await?,
        (SourceRead::Mysql(_, read), Source::Mysql { conn, .. }) => read.count(conn).await?,
        #[cfg(feature = "oracle")]
        (SourceRead::Oracle(_, read), Source::Oracle { conn, .. }) => read.count(conn).await?,
        _ => unreachable!(),
    })
}
