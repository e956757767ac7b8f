//! Oracle as the source of molt-dump (cargo feature `oracle`).
//!
//! One snapshot without a transaction: the coordinator reads the current
//! SCN once, and every section is read `AS OF SCN` it, on `--jobs`
//! connections of its own (the `oracle` crate is blocking, so the whole
//! dump runs on blocking threads). Catalog, SQL and value conversion are
//! `molt_core::oracle`; this module only schedules sections and writes them
//! through [`OrderedOutput`], so they never interleave.
//!
//! Values the target cannot hold exactly (digits below the microsecond)
//! are an error naming the row, unless `--allow-rounding`: then they are
//! truncated and counted in the section's `end` record.
//!
//! None of this has run against a real Oracle database yet (docs/oracle.md).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use molt_core::digest::{DigestColumn, RowHasher, SectionDigest};
use molt_core::oracle::conn::{self, bind_params, find_table, name_candidates};
use molt_core::oracle::convert::convert_row;
use molt_core::oracle::driver::Connection;
use molt_core::oracle::params::connect_params;
use molt_core::oracle::sql::section_query;
use molt_core::oracle::value::TRUNCATE_NANOS;
use molt_core::oracle::{BuildOptions, ConvertOptions, MapOptions, OracleTable};
use molt_core::stream::ordered::OrderedOutput;
use molt_core::stream::{
    self, Record, SectionEnd, Slice, SourceInfo, StreamWriter, TableName, ValueChange,
};
use molt_core::{ConnUrl, Engine};

use crate::{glob_match, has_glob, Args, Format};

/// Rows fetched per round trip.
const FETCH_ROWS: u32 = 1000;

/// What the blocking dump needs from the command line.
struct Settings {
    jobs: usize,
    spill_memory: usize,
    quiet: bool,
    schema: Option<String>,
    exclusions: molt_core::select::Exclusions,
    build: BuildOptions,
    convert: ConvertOptions,
}

/// One (table, shard) to read.
struct Section {
    table: Arc<OracleTable>,
    slice: Slice,
}

/// What one section held, for the closing summary.
struct SectionStats {
    table: TableName,
    rows: u64,
    changes: Vec<ValueChange>,
}

/// Dumps `slices` from the Oracle source at `url` to stdout.
pub async fn dump(args: &Args, url: &ConnUrl, slices: Vec<Slice>) -> anyhow::Result<i32> {
    if args.format != Format::Ndjson {
        bail!("CSV output is not supported for Oracle sources yet: use the default NDJSON stream");
    }
    let settings = Settings {
        jobs: usize::from(args.jobs),
        spill_memory: args.spill_memory(),
        quiet: args.quiet,
        schema: args.schema.clone(),
        exclusions: args.exclusions()?,
        build: BuildOptions {
            map: MapOptions {
                raw16_as_uuid: args.raw16_as_uuid,
            },
            target_schema: args.target_schema.clone(),
        },
        convert: ConvertOptions {
            allow_rounding: args.allow_rounding,
        },
    };
    let url = url.clone();
    tokio::task::spawn_blocking(move || dump_blocking(&settings, &url, slices))
        .await
        .map_err(|e| anyhow!("the Oracle dump stopped: {e}"))?
}

fn dump_blocking(settings: &Settings, url: &ConnUrl, slices: Vec<Slice>) -> anyhow::Result<i32> {
    let coordinator = conn::connect(url)?;
    let scn = conn::current_scn(&coordinator)?;
    let server_version = match conn::server_version(&coordinator) {
        Ok(v) => Some(v),
        Err(e) => {
            molt_core::warn!("the stream will carry no server version: {e}");
            None
        }
    };
    let default_owner = match &settings.schema {
        Some(s) => s.clone(),
        None => connect_params(url)
            .map_err(|e| anyhow!(e))?
            .user
            .to_uppercase(),
    };
    let slices = crate::slices::without_excluded(
        &settings.exclusions,
        expand(&coordinator, &default_owner, slices)?,
    )?;
    let sections = introspect(&coordinator, &settings.build, slices)?;
    for section in &sections {
        check_query(&coordinator, section, &scn)?;
    }

    let info = SourceInfo {
        engine: Engine::Oracle,
        url: url.redacted(),
        server_version,
        snapshot: None,
        position: Some(scn.clone()),
    };
    let output = OrderedOutput::new(crate::stdout_file()?, settings.spill_memory);
    output
        .prelude(&stream::header("molt-dump", Some(info)))
        .context("writing the stream header")?;
    let stats = run_workers(settings, url, &scn, coordinator, sections, &output)?;
    output.finish().context("writing the stream")?;
    if !settings.quiet {
        let rows: u64 = stats.iter().map(|s| s.rows).sum();
        molt_core::info!("{} sections, {rows} rows, SCN {scn}", stats.len());
        for s in &stats {
            for c in &s.changes {
                molt_core::info!(
                    "{}.{}: {} values changed ({})",
                    s.table,
                    c.column,
                    c.count,
                    c.policy
                );
            }
        }
    }
    Ok(molt_core::exit::SUCCESS)
}

/// Fills in the default owner and expands glob table names against the
/// owner's tables (an unquoted lower-case owner is tried in upper case).
fn expand(
    conn: &Connection,
    default_owner: &str,
    slices: Vec<Slice>,
) -> anyhow::Result<Vec<Slice>> {
    let mut out = Vec::with_capacity(slices.len());
    for mut slice in slices {
        if slice.table.schema.is_empty() {
            slice.table.schema = default_owner.to_string();
        }
        if !has_glob(&slice.table.name) {
            out.push(slice);
            continue;
        }
        let mut found = Vec::new();
        for owner in name_candidates(&slice.table.schema) {
            found = conn::list_tables(conn, &owner)?;
            if !found.is_empty() {
                break;
            }
        }
        let matched: Vec<_> = found
            .into_iter()
            .filter(|t| glob_match(&slice.table.name, &t.name))
            .collect();
        if matched.is_empty() {
            bail!("{} matches no table on the source", slice.table);
        }
        for t in matched {
            out.push(Slice {
                table: TableName::new(t.owner, t.name),
                ..slice.clone()
            });
        }
    }
    Ok(out)
}

/// Reads each table's definition once and pairs it with its slices, whose
/// table names become Oracle's spelling.
fn introspect(
    conn: &Connection,
    build: &BuildOptions,
    slices: Vec<Slice>,
) -> anyhow::Result<Vec<Section>> {
    let mut tables: Vec<(TableName, Arc<OracleTable>)> = Vec::new();
    let mut sections = Vec::with_capacity(slices.len());
    for mut slice in slices {
        let table = match tables.iter().find(|(n, _)| n == &slice.table) {
            Some((_, t)) => t.clone(),
            None => {
                let Some(table) = find_table(conn, &slice.table, build)? else {
                    bail!(
                        "table {} does not exist on the source (or is not visible to the user)",
                        slice.table
                    );
                };
                for note in &table.header.notes {
                    molt_core::warn!("{}: {note}", table.header.table);
                }
                let table = Arc::new(table);
                tables.push((slice.table.clone(), table.clone()));
                table
            }
        };
        slice.table = table.header.table.clone();
        sections.push(Section { table, slice });
    }
    Ok(sections)
}

/// Runs the section's query for no rows, so that a bad filter or bound
/// fails before the stream starts.
fn check_query(conn: &Connection, section: &Section, scn: &str) -> anyhow::Result<()> {
    let table = &section.slice.table;
    let query =
        section_query(&section.table, &section.slice).map_err(|e| anyhow!("table {table}: {e}"))?;
    let params = bind_params(&query, Some(scn))?;
    let refs: Vec<&dyn molt_core::oracle::driver::sql_type::ToSql> =
        params.iter().map(|p| p.as_ref()).collect();
    let sql = format!("SELECT COUNT(*) FROM ({}) WHERE 1 = 0", query.sql);
    conn.query_row_as::<u64>(&sql, &refs).map_err(|e| {
        let what = if section.slice.filter.is_some() {
            "filter or shard bounds"
        } else {
            "query"
        };
        anyhow!(
            "{}",
            conn::OracleError::db(format!("table {table}: the slice's {what} failed"), &e)
        )
    })?;
    Ok(())
}

/// Runs up to `--jobs` workers, each on its own connection (the first one
/// reuses the coordinator's). The first failure stops the others.
fn run_workers(
    settings: &Settings,
    url: &ConnUrl,
    scn: &str,
    coordinator: Connection,
    sections: Vec<Section>,
    output: &OrderedOutput,
) -> anyhow::Result<Vec<SectionStats>> {
    let workers = settings.jobs.clamp(1, sections.len().max(1));
    let queue = Mutex::new(sections.into_iter().collect::<VecDeque<_>>());
    let mut coordinator = Some(coordinator);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let first = coordinator.take();
                let queue = &queue;
                scope.spawn(move || {
                    let result = worker(settings, url, scn, first, queue, output);
                    if result.is_err() {
                        // A failed dump must not look complete: stop the others.
                        queue.lock().unwrap_or_else(|p| p.into_inner()).clear();
                    }
                    result
                })
            })
            .collect();
        let mut stats = Vec::new();
        let mut first_error = None;
        for h in handles {
            match h.join() {
                Ok(Ok(s)) => stats.extend(s),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(anyhow!("a dump worker panicked"));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    })
}

fn worker(
    settings: &Settings,
    url: &ConnUrl,
    scn: &str,
    conn: Option<Connection>,
    queue: &Mutex<VecDeque<Section>>,
    output: &OrderedOutput,
) -> anyhow::Result<Vec<SectionStats>> {
    let mut stats = Vec::new();
    let mut conn = conn;
    loop {
        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
        let Some(section) = next else { break };
        if conn.is_none() {
            conn = Some(conn::connect(url)?);
        }
        let c = conn.as_ref().expect("connected");
        let started = Instant::now();
        let mut writer = StreamWriter::new(output.section());
        let s = dump_section(c, scn, &settings.convert, &section, &mut writer)?;
        writer
            .into_inner()
            .context("writing the stream")?
            .finish()
            .context("writing the stream")?;
        if !settings.quiet {
            molt_core::info!(
                "{} shard {}: {} rows in {:.2}s",
                section.slice.table,
                section.slice.shard,
                s.rows,
                started.elapsed().as_secs_f64()
            );
        }
        stats.push(s);
    }
    if let Some(c) = conn {
        let _ = c.close();
    }
    Ok(stats)
}

/// The row's primary key as far as it was converted, for error messages.
fn key_text(table: &OracleTable, values: &[Option<String>], row: u64) -> String {
    let key: Vec<(usize, &str)> = table
        .header
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.pk.is_some())
        .map(|(i, c)| (i, c.name.as_str()))
        .collect();
    if key.is_empty() || key.iter().any(|(i, _)| *i >= values.len()) {
        return format!("row {row} of the section");
    }
    let names: Vec<&str> = key.iter().map(|(_, n)| *n).collect();
    let vals: Vec<&str> = key
        .iter()
        .map(|(i, _)| values[*i].as_deref().unwrap_or("NULL"))
        .collect();
    format!(
        "row with primary key ({})=({})",
        names.join(", "),
        vals.join(", ")
    )
}

/// Writes one section (header, rows, end) as of the SCN.
fn dump_section<W: std::io::Write>(
    conn: &Connection,
    scn: &str,
    convert: &ConvertOptions,
    section: &Section,
    writer: &mut StreamWriter<W>,
) -> anyhow::Result<SectionStats> {
    let table = &section.slice.table;
    let mut progress = molt_core::metrics::Progress::new(table);
    let base = writer.bytes_written();
    let mut header = section.table.header.clone();
    header.slice = section.slice.clone();
    writer
        .record(&Record::Table(Box::new(header)))
        .context("writing the stream")?;
    let query =
        section_query(&section.table, &section.slice).map_err(|e| anyhow!("table {table}: {e}"))?;
    let params = bind_params(&query, Some(scn))?;
    let refs: Vec<&dyn molt_core::oracle::driver::sql_type::ToSql> =
        params.iter().map(|p| p.as_ref()).collect();
    let reading = || format!("table {table} shard {}: reading rows", section.slice.shard);
    let mut stmt = conn
        .statement(&query.sql)
        .fetch_array_size(FETCH_ROWS)
        .build()
        .map_err(|e| conn::OracleError::db(reading(), &e))?;
    let rows = stmt
        .query(&refs)
        .map_err(|e| conn::OracleError::db(reading(), &e))?;

    let columns = &section.table.header.columns;
    let digest_columns: Vec<DigestColumn> = columns.iter().map(DigestColumn::from).collect();
    let mut hasher = RowHasher::default();
    let mut digest = SectionDigest::default();
    let mut truncated = vec![0u64; columns.len()];
    let mut values: Vec<Option<String>> = Vec::with_capacity(columns.len());
    for (n, row) in (1u64..).zip(rows) {
        let row = row.map_err(|e| conn::OracleError::db(reading(), &e))?;
        convert_row(&section.table, &row, convert, &mut values, &mut truncated).map_err(|e| {
            let hint = if e.message.contains("microsecond") || e.message.contains("nanosecond") {
                " (--allow-rounding truncates such values to the microsecond and counts them)"
            } else {
                ""
            };
            anyhow!(
                "table {table}, {}, column {}: {}{hint}",
                key_text(&section.table, &values, n),
                e.column,
                e.message
            )
        })?;
        let mut out = writer.row();
        for (value, dc) in values.iter().zip(&digest_columns) {
            match value {
                Some(v) => out.str(v),
                None => out.null(),
            };
            hasher.value(*dc, value.as_deref());
        }
        out.finish();
        digest.add_row(hasher.finish_row());
        writer.maybe_flush().context("writing the stream")?;
        progress.update(digest.rows, writer.bytes_written() - base);
    }
    let changes: Vec<ValueChange> = columns
        .iter()
        .zip(&truncated)
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| ValueChange {
            column: c.name.clone(),
            policy: TRUNCATE_NANOS.into(),
            count: *n,
        })
        .collect();
    writer
        .record(&Record::End(SectionEnd {
            table: table.clone(),
            shard: section.slice.shard.clone(),
            rows: digest.rows,
            digest: digest.hex(),
            changes: changes.clone(),
            checksum: None,
        }))
        .context("writing the stream")?;
    progress.finish(digest.rows, writer.bytes_written() - base);
    molt_core::metrics::section(table, molt_core::metrics::SectionStatus::Done);
    Ok(SectionStats {
        table: table.clone(),
        rows: digest.rows,
        changes,
    })
}
