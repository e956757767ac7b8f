//! Verifying one table slice: schema check, then rows.
//!
//! Every table with a primary key is split into key-range chunks
//! (`--chunk-rows`); each chunk is hashed on both sides at once, and only
//! chunks whose (count, hash) differ are read and merge-joined in the
//! client (mode "chunked-hash"). How the hashes are computed depends on the
//! two sides (the summary's `strategy`):
//!
//! - PostgreSQL-protocol on both sides: inside both databases
//!   (`molt_core::verify::pg::HashAlgo`), "sql-hash".
//! - a MySQL source: the row text both engines print alike
//!   (`molt_core::verify::cross`), hashed inside both ("sql-hash"), or
//!   printed by MySQL and finished and hashed in the client when the table
//!   has JSON or `--hash-rows-in-client` asks for it ("client-hash"). A
//!   table with a column no SQL prints alike is read whole ("rows", with
//!   the reason).
//! - an Oracle source: both sides are streamed in key order and
//!   merge-joined ("rows", mode "merge"); `''` and NULL are the same on
//!   both sides (`molt_core::oracle::fold_empty`).
//! - no primary key: both sides are streamed and compared as multisets of
//!   rows (mode "multiset"), with a warning.
//!
//! A differing chunk of a single integer key that holds many rows is split
//! again by value before any row is read ([`IntSplitter`]). With `--live`,
//! a chunk that differs is compared again after a backoff, up to
//! `--live-retries` times, and only its last result is reported.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use molt_core::mysql::catalog::ServerInfo;
use molt_core::mysql::catalog::{load_table, TableInfo};
use molt_core::mysql::DumpOptions;
use molt_core::postgres::catalog::Catalog;
use molt_core::stream::{TableHeader, TableName};
use molt_core::value::LogicalType;
use molt_core::verify::cross::{self, ColumnFacts, CrossRow, TargetInfo};
use molt_core::verify::keyorder::KeyOrder;
use molt_core::verify::merge::{merge_join, multiset};
use molt_core::verify::mysql::{Chunk, ClientHash, MyRange};
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
    /// Whether values of `logical` are compared with their decimal scale
    /// (`12.300` is not `12.3`). A PostgreSQL source's numeric and JSON
    /// keep their scale as the target does. A MySQL source's JSON does too
    /// (MariaDB keeps the text written; MySQL prints its binary JSON the
    /// same way each time, and the dump copies that text), but its DECIMAL is
    /// compared across engines, where the target's column may have another
    /// scale than the source's (the row text drops trailing zeros, see
    /// `verify::cross`). An Oracle NUMBER has no scale of its own (the dump
    /// prints it without trailing zeros, a NUMERIC(p,s) target pads it).
    fn keeps_scale(&self, logical: LogicalType) -> bool {
        match self {
            SourceTable::Pg(_) => true,
            SourceTable::Mysql(_) => logical == LogicalType::Json,
            #[cfg(feature = "oracle")]
            SourceTable::Oracle(_) => false,
        }
    }

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
    let Sides { source, target } = sides;
    match source {
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
            let mut dump_options = DumpOptions {
                keep_case: options.keep_case,
                target_schema: options
                    .target_schema
                    .clone()
                    .unwrap_or_else(|| "public".into()),
                type_map: options.type_map.clone().unwrap_or_default(),
                ..DumpOptions::default()
            };
            let db = &unit.table.schema;
            let mut plan = load_table(conn, server, db, &info, &dump_options).await?;
            if options.type_map.is_none() {
                let stored = stored_header(target, options, &plan.header).await;
                if let Some(map) = stored.and_then(|h| overrides_from_ledger(db, &plan, &h)) {
                    dump_options.type_map = map;
                    plan = load_table(conn, server, db, &info, &dump_options).await?;
                }
            }
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

/// The header molt-load stored in the ledger for this table's target, if
/// the ledger has one (a target molt-load never wrote has none; nothing is
/// created to find out).
async fn stored_header(
    target: &PgConn,
    options: &Options,
    header: &TableHeader,
) -> Option<TableHeader> {
    let name = match &options.target_schema {
        Some(schema) => TableName::new(schema.clone(), header.target_name().name.clone()),
        None => header.target_name().clone(),
    };
    let ledger = molt_core::target::ledger::Ledger::new(options.ledger_schema.clone());
    let wanted = [name];
    let headers = ledger
        .stored_headers(&target.client, Some(&wanted))
        .await
        .ok()?;
    headers.into_iter().next().map(|(_, h)| h)
}

/// The type-map overrides that turn the default mapping of `plan` into the
/// one the stored header was loaded with (a column loaded as UUID, BOOL,
/// another type, or nullable), so that verify compares what molt-dump was
/// told to write; `None` when they agree.
fn overrides_from_ledger(
    db: &str,
    plan: &molt_core::mysql::catalog::TablePlan,
    stored: &TableHeader,
) -> Option<molt_core::mysql::typemap::TypeMap> {
    use molt_core::mysql::typemap::{ColumnOverride, TypeMap};
    let mut map = TypeMap::default();
    for (column, read) in plan.header.columns.iter().zip(&plan.columns) {
        let Some(loaded) = stored.columns.iter().find(|c| c.name == column.name) else {
            continue;
        };
        let both_enums = column.logical == loaded.logical && column.enum_type.is_some();
        let retyped = !both_enums && !column.target_type.eq_ignore_ascii_case(&loaded.target_type);
        let made_nullable = loaded.nullable && !column.nullable;
        if retyped || made_nullable {
            map.column.push(ColumnOverride {
                table: format!("{db}.{}", plan.header.table.name),
                column: read.source_name.clone(),
                target_type: retyped.then(|| loaded.target_type.clone()),
                nullable: made_nullable.then_some(true),
            });
        }
    }
    (!map.column.is_empty()).then_some(map)
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
    /// PostgreSQL-protocol source: how both sides hash a chunk.
    algo: Option<HashAlgo>,
    /// MySQL source: the row text both sides hash, and the source
    /// connection the hashes are computed on.
    cross: Option<(Arc<CrossRow>, tokio::sync::Mutex<mysql_async::Conn>)>,
    /// MySQL source with JSON columns: how the client hashes its rows.
    client_hash: Option<ClientHash>,
    /// A single integer key: how a big differing chunk is narrowed.
    splitter: Option<IntSplitter>,
}

impl Compare {
    /// Compares one chunk (or the whole slice); `fetched` tells whether
    /// rows had to be read.
    async fn range(
        &self,
        chunk: &Chunk,
        cap: usize,
        findings: &mut Vec<Finding>,
    ) -> Result<Step, VerifyError> {
        findings.clear();
        let hashes = match (&self.source, self.algo, &self.cross) {
            (SourceRead::Pg(sconn, sread), Some(algo), _) => {
                let (s, t) = tokio::join!(
                    sread.chunk_hash(sconn, &chunk.target, algo, "source"),
                    self.target
                        .chunk_hash(&self.target_conn, &chunk.target, algo, "target")
                );
                Some((s?, t?))
            }
            (SourceRead::Mysql(_, sread), _, Some((cross, conn))) => {
                let mut conn = conn.lock().await;
                let (s, t) = match self.client_hash {
                    None => tokio::join!(
                        sread.cross_hash(&mut conn, &chunk.source, cross),
                        self.target
                            .cross_hash(&self.target_conn, &chunk.target, cross, "target")
                    ),
                    Some(form) => tokio::join!(
                        sread.client_hash(&mut conn, &chunk.source, cross, form),
                        self.target.client_cross_hash(
                            &self.target_conn,
                            &chunk.target,
                            cross,
                            form,
                            "target"
                        )
                    ),
                };
                Some((s?, t?))
            }
            _ => None,
        };
        if let Some((s, t)) = hashes {
            if s == t {
                let n = s.0 as u64;
                return Ok(Step::Compared(
                    Tally {
                        source_rows: n,
                        target_rows: n,
                        matched: n,
                        ..Tally::default()
                    },
                    false,
                ));
            }
            // A big chunk (integer keys that cluster) is narrowed further
            // before any row is read.
            let rows = s.0.max(t.0).max(0) as u64;
            if let Some(parts) = self.splitter.as_ref().and_then(|sp| sp.split(chunk, rows)) {
                return Ok(Step::Split(parts));
            }
        }
        let mut src = match &self.source {
            SourceRead::Pg(conn, read) => {
                read.spawn_rows(conn.clone(), chunk.target.clone(), "source")
            }
            SourceRead::Mysql(opts, read) => {
                let conn = molt_core::mysql::connect(opts)
                    .await
                    .map_err(|e| VerifyError::new(format!("source: {e}")))?;
                read.spawn_rows(conn, chunk.source.clone())
            }
            #[cfg(feature = "oracle")]
            SourceRead::Oracle(url, read) => read.spawn_rows(url.clone()),
        };
        let mut tgt =
            self.target
                .spawn_rows(self.target_conn.clone(), chunk.target.clone(), "target");
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
        Ok(Step::Compared(tally, true))
    }
}

/// What comparing one chunk came to.
enum Step {
    /// Its tally, and whether rows had to be read.
    Compared(Tally, bool),
    /// Its hashes differ and it holds many rows: these smaller chunks
    /// cover it.
    Split(Vec<Chunk>),
}

/// Narrows a differing chunk of a single integer key by value: a chunk
/// holding more than four times `--chunk-rows` rows (keys that cluster
/// in a wide span) is split into chunks of about `--chunk-rows` rows
/// before rows are read.
struct IntSplitter {
    /// The slice's smallest and largest key (the outer chunks are open).
    min: i128,
    max: i128,
    chunk_rows: u64,
}

impl IntSplitter {
    fn split(&self, chunk: &Chunk, rows: u64) -> Option<Vec<Chunk>> {
        if rows <= self.chunk_rows.saturating_mul(4) {
            return None;
        }
        let bound = |b: &Option<Vec<String>>| {
            b.as_ref()
                .and_then(|v| v.first())
                .and_then(|s| s.parse::<i128>().ok())
        };
        let low = bound(&chunk.target.lower).unwrap_or(self.min);
        let high = bound(&chunk.target.upper)
            .map(|u| u - 1)
            .unwrap_or(self.max);
        let bounds = molt_core::verify::int_boundaries(low, high, rows, self.chunk_rows);
        if bounds.is_empty() {
            return None;
        }
        let mut parts = Vec::with_capacity(bounds.len() + 1);
        let (mut source_lower, mut target_lower) =
            (chunk.source.lower.clone(), chunk.target.lower.clone());
        for b in bounds {
            let text = b.to_string();
            parts.push(Chunk {
                source: MyRange {
                    lower: source_lower.take(),
                    upper: Some(vec![text.clone().into_bytes()]),
                },
                target: KeyRange {
                    lower: target_lower.take(),
                    upper: Some(vec![text.clone()]),
                },
            });
            source_lower = Some(vec![text.clone().into_bytes()]);
            target_lower = Some(vec![text]);
        }
        parts.push(Chunk {
            source: MyRange {
                lower: source_lower,
                upper: chunk.source.upper.clone(),
            },
            target: KeyRange {
                lower: target_lower,
                upper: chunk.target.upper.clone(),
            },
        });
        Some(parts)
    }
}

/// How a table's rows are compared, for its summary.
struct Strategy {
    /// `sql-hash`, `client-hash` or `rows`.
    name: &'static str,
    /// Why the table was not hashed inside both databases.
    reason: Option<String>,
    /// Columns the client prints and hashes for the source side.
    client_columns: Vec<String>,
}

/// MySQL 8.0 and MariaDB 10.2 have window functions; MySQL 5.7 does not.
fn has_window_functions(server: &ServerInfo) -> bool {
    let mut parts = server
        .version
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if server.mariadb {
        (major, minor) >= (10, 2)
    } else {
        major >= 8
    }
}

/// The row text a MySQL source and the target hash alike, or why there
/// is none.
fn cross_plan(
    source: &SourceTable,
    pairing: &Pairing,
    target: &PgConn,
) -> Result<CrossRow, String> {
    let SourceTable::Mysql(plan) = source else {
        unreachable!("a MySQL source table")
    };
    if target.flavour.is_cockroach() {
        return Err(
            "a CockroachDB target: its hash of the shared row text is not in place yet".into(),
        );
    }
    let facts: Vec<ColumnFacts<'_>> = pairing
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let s = pairing.source_index[i];
            ColumnFacts {
                compare: c,
                source_name: &plan.columns[s].source_name,
                source_type: &plan.header.columns[s].source_type,
                decoder: plan.columns[s].decoder,
                target: &pairing.target[i],
                target_expr: molt_core::ident::quote_pg(&pairing.target[i].name),
            }
        })
        .collect();
    cross::plan(
        &facts,
        TargetInfo {
            trim_scale: target.version_num >= 130000,
        },
    )
}

/// Verifies one slice and writes its records.
pub async fn verify_table<W: std::io::Write>(
    sides: &mut Sides,
    unit: &Unit,
    options: &Options,
    out: &mut Output<W>,
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
        molt_core::metrics::verify_chunk(&unit.table, &tally, 0);
        out.table_summary(&TableReport {
            phase: &unit.phase,
            table: &unit.table,
            target: &target,
            tally,
            columns_compared: 0,
            seconds: started.elapsed().as_secs_f64(),
            schema_issues: &issues,
            mode: "count",
            strategy: "count",
            strategy_reason: None,
            client_columns: &[],
            chunks: 0,
            chunks_fetched: 0,
            warnings: &warnings,
        })?;
        return Ok(TableOutcome { tally, issues: 1 });
    };

    let mut pairing = pair(&header, &catalog, options.float_tolerance);
    for c in &mut pairing.columns {
        c.scale_aware &= source.keeps_scale(c.logical);
    }
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
            strategy: "count",
            strategy_reason: None,
            client_columns: &[],
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
    let keyed = !pairing.key.is_empty();
    let mut strategy = Strategy {
        name: "rows",
        reason: None,
        client_columns: Vec::new(),
    };
    if !keyed {
        strategy.reason = Some("no primary key".into());
    } else if options.no_hash {
        strategy.reason = Some("--no-hash".into());
    }
    let hashing = keyed && !options.no_hash;
    let algo = match &src_read {
        SourceRead::Pg(sconn, _) if hashing => Some(HashAlgo::for_pair(sconn, &sides.target)),
        _ => None,
    };
    let mut cross = None;
    let mut client_hash = None;
    if let (SourceRead::Mysql(opts, _), true) = (&src_read, hashing) {
        match cross_plan(&source, &pairing, &sides.target) {
            Ok(plan) => {
                if !plan.client_columns().is_empty() || options.hash_rows_in_client {
                    client_hash = Some(if pg::text_hash_agrees(&sides.target).await {
                        ClientHash::PgText
                    } else {
                        ClientHash::Md5
                    });
                }
                let conn = molt_core::mysql::connect(opts)
                    .await
                    .with_context(|| format!("source: connecting to hash {}", unit.table))?;
                cross = Some((Arc::new(plan), tokio::sync::Mutex::new(conn)));
            }
            Err(why) => strategy.reason = Some(why),
        }
    }
    #[cfg(feature = "oracle")]
    if let (SourceRead::Oracle(..), true) = (&src_read, hashing) {
        strategy.reason =
            Some("an Oracle source: chunk hashes inside Oracle are not in place yet".into());
    }
    let mut compare = Compare {
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
        cross,
        client_hash,
        splitter: None,
    };

    let ranges: Vec<Chunk> = match (&compare.source, &compare.cross, &mut sides.source) {
        (SourceRead::Pg(sconn, sread), _, _) if compare.algo.is_some() => {
            strategy.name = "sql-hash";
            let bounds = sread
                .boundaries(sconn, options.chunk_rows, "source")
                .await?;
            if sread.single_int_key() {
                if let Some((min, max)) = sread.int_key_span(sconn, "source").await? {
                    compare.splitter = Some(IntSplitter {
                        min,
                        max,
                        chunk_rows: options.chunk_rows,
                    });
                }
            }
            chunk_ranges(bounds)
        }
        (SourceRead::Mysql(_, sread), Some((plan, _)), Source::Mysql { conn, server, .. }) => {
            let client = plan.client_columns();
            if !client.is_empty() {
                strategy.name = "client-hash";
                strategy.client_columns = client
                    .iter()
                    .map(|&i| compare.columns[i].name.clone())
                    .collect();
                strategy.reason = Some(
                    "JSON is stored as it was written on MySQL/MariaDB: the client prints those columns as JSONB does and hashes each source row".into(),
                );
            } else if compare.client_hash.is_some() {
                strategy.name = "client-hash";
                strategy.reason = Some("--hash-rows-in-client".into());
            } else {
                strategy.name = "sql-hash";
            }
            if sread.single_int_key() {
                if let Some((min, max)) = sread.int_key_span(conn).await? {
                    compare.splitter = Some(IntSplitter {
                        min,
                        max,
                        chunk_rows: options.chunk_rows,
                    });
                }
            }
            if sread.chunkable() {
                sread
                    .boundaries(conn, options.chunk_rows, has_window_functions(server))
                    .await?
            } else {
                vec![Chunk::default()]
            }
        }
        _ => vec![Chunk::default()],
    };
    let mode = if !keyed {
        "multiset"
    } else if strategy.name != "rows" {
        "chunked-hash"
    } else {
        "merge"
    };

    let mut tally = Tally::default();
    let mut reported: u64 = 0;
    let mut fetched = 0u64;
    let mut findings = Vec::new();
    let mut chunks = ranges.len() as u64;
    let mut queue: std::collections::VecDeque<Chunk> = ranges.into();
    while let Some(range) = queue.pop_front() {
        let cap = options.max_report_rows.saturating_sub(reported) as usize;
        let mut attempt = 0;
        let step = loop {
            let step = compare.range(&range, cap, &mut findings).await?;
            match &step {
                Step::Compared(chunk, _)
                    if chunk.differences() > 0 && attempt < options.live_retries => {}
                _ => break step,
            }
            let wait = options.live_backoff_ms.saturating_mul(1 << attempt.min(16));
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(wait)).await;
        };
        let (chunk, was_fetched) = match step {
            Step::Compared(chunk, was_fetched) => (chunk, was_fetched),
            Step::Split(parts) => {
                chunks += parts.len() as u64 - 1;
                for part in parts.into_iter().rev() {
                    queue.push_front(part);
                }
                continue;
            }
        };
        if was_fetched {
            fetched += 1;
        }
        tally.add(&chunk);
        if let Some(throttle) = &options.throttle {
            throttle.pace(chunk.source_rows).await;
        }
        molt_core::metrics::verify_chunk(&unit.table, &chunk, 1);
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
        strategy: strategy.name,
        strategy_reason: strategy.reason.as_deref(),
        client_columns: &strategy.client_columns,
        chunks,
        chunks_fetched: fetched,
        warnings: &warnings,
    })?;
    Ok(TableOutcome {
        tally,
        issues: issues.len() as u64,
    })
}

/// N boundaries → N+1 ranges covering the whole key space.
fn chunk_ranges(bounds: Vec<Vec<String>>) -> Vec<Chunk> {
    let mut ranges = Vec::with_capacity(bounds.len() + 1);
    let mut lower = None;
    for b in bounds {
        ranges.push(Chunk {
            source: Default::default(),
            target: KeyRange {
                lower: lower.take(),
                upper: Some(b.clone()),
            },
        });
        lower = Some(b);
    }
    ranges.push(Chunk {
        source: Default::default(),
        target: KeyRange { lower, upper: None },
    });
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
