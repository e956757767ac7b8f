//! Dumping from PostgreSQL: one exported snapshot, parallel COPY readers,
//! one ordered stream.
//!
//! The coordinator connection opens the snapshot, introspects every table
//! and checks every section's query (so a missing table or a bad filter
//! fails before any row is written), then keeps its transaction open while
//! `--jobs` worker connections, each on the same snapshot, take sections
//! from a queue and COPY them out. Sections go through
//! [`OrderedOutput`], so they never interleave on stdout.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use futures_util::StreamExt;
use molt_core::postgres::catalog::{list_tables, Catalog, SourceTable};
use molt_core::postgres::copy_text::RowDecoder;
use molt_core::postgres::{error_text, query, snapshot};
use molt_core::stream::csv::CsvWriter;
use molt_core::stream::ordered::{OrderedOutput, SpillBuffer};
use molt_core::stream::{
    self, Item, Record, SectionEnd, Slice, SourceInfo, StreamReader, StreamWriter, TableName,
};
use molt_core::{metrics, ConnUrl, Engine};
use tokio_postgres::Client;

use crate::{has_glob, Args, Format};

/// One (table, shard) to read.
struct Section {
    table: Arc<SourceTable>,
    slice: Slice,
}

/// Dumps `slices` from the PostgreSQL source at `url` to stdout.
pub async fn dump(args: &Args, url: &ConnUrl, slices: Vec<Slice>) -> anyhow::Result<i32> {
    let coordinator = snapshot::connect(url).await?;
    let client = &coordinator.client;
    let server_version = snapshot::server_version(client).await?;
    let position = match snapshot::wal_position(client).await {
        Ok(lsn) => Some(lsn),
        Err(e) => {
            molt_core::warn!("the stream will carry no WAL position: {e}");
            None
        }
    };
    let snapshot_id = snapshot::begin_exported(client).await?;

    let slices =
        crate::slices::without_excluded(&args.exclusions()?, expand(client, args, slices).await?)?;
    let sections = introspect(client, slices).await?;
    for section in &sections {
        check_query(client, section).await?;
    }

    let info = SourceInfo {
        engine: Engine::Postgres,
        url: url.redacted(),
        server_version: Some(server_version),
        snapshot: Some(snapshot_id.clone()),
        position,
    };
    let header = stream::header("molt-dump", Some(info));
    match args.format {
        Format::Ndjson => {
            let output = OrderedOutput::new(crate::stdout_file()?, args.spill_memory());
            output
                .prelude(&header)
                .context("writing the stream header")?;
            run_workers(args, url, &snapshot_id, sections, &output).await?;
            output.finish().context("writing the stream")?;
        }
        Format::Csv => write_csv(args, client, sections).await?,
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| anyhow!("closing the snapshot: {}", error_text(&e)))?;
    Ok(molt_core::exit::SUCCESS)
}

/// Fills in the default schema and expands glob table names.
async fn expand(client: &Client, args: &Args, slices: Vec<Slice>) -> anyhow::Result<Vec<Slice>> {
    let default_schema = args.schema.as_deref().unwrap_or("public");
    let mut catalog_tables: Option<Vec<TableName>> = None;
    let mut out = Vec::with_capacity(slices.len());
    for mut slice in slices {
        if slice.table.schema.is_empty() {
            slice.table.schema = default_schema.to_string();
        }
        if !has_glob(&slice.table.schema) && !has_glob(&slice.table.name) {
            out.push(slice);
            continue;
        }
        if catalog_tables.is_none() {
            catalog_tables = Some(list_tables(client).await?);
        }
        let pattern = slice.table.clone();
        let matches: Vec<&TableName> = catalog_tables
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter(|t| {
                crate::glob_match(&pattern.schema, &t.schema)
                    && crate::glob_match(&pattern.name, &t.name)
            })
            .collect();
        if matches.is_empty() {
            bail!("{pattern} matches no table on the source");
        }
        for table in matches {
            out.push(Slice {
                table: table.clone(),
                ..slice.clone()
            });
        }
    }
    Ok(out)
}

/// Reads each table's definition once and pairs it with its slices.
async fn introspect(client: &Client, slices: Vec<Slice>) -> anyhow::Result<Vec<Section>> {
    let mut catalog = Catalog::new(client);
    let mut tables: HashMap<TableName, Arc<SourceTable>> = HashMap::new();
    let mut sections = Vec::with_capacity(slices.len());
    for slice in slices {
        let table = match tables.get(&slice.table) {
            Some(t) => t.clone(),
            None => {
                let Some(table) = catalog.table(&slice.table).await? else {
                    bail!(
                        "table {} does not exist on the source (or is not a table)",
                        slice.table
                    );
                };
                for notice in &table.notices {
                    molt_core::warn!("{notice}");
                }
                let table = Arc::new(table);
                tables.insert(slice.table.clone(), table.clone());
                table
            }
        };
        sections.push(Section { table, slice });
    }
    Ok(sections)
}

/// Plans the section's query without reading a row, so that a bad filter or
/// bound fails before the stream starts. In a savepoint rolled back at
/// once, which releases the locks the query took: the coordinator's
/// transaction lives as long as the dump, and holding a lock on every table
/// (and index) of a large schema exhausts the server's lock table.
async fn check_query(client: &Client, section: &Section) -> anyhow::Result<()> {
    let table = &section.slice.table;
    let sql = query::select_sql(&section.table, &section.slice)
        .map_err(|e| anyhow!("table {table}: {e}"))?;
    client
        .batch_execute(&format!(
            "SAVEPOINT molt_check_query; {sql} LIMIT 0; ROLLBACK TO SAVEPOINT molt_check_query"
        ))
        .await
        .map_err(|e| {
            let what = if section.slice.filter.is_some() {
                "filter or shard bounds"
            } else {
                "query"
            };
            anyhow!(
                "table {table}: the slice's {what} failed: {}",
                error_text(&e)
            )
        })
}

/// Runs up to `--jobs` workers over the sections.
///
/// Each worker is an OS thread with a single-threaded runtime of its own,
/// which runs both the worker's connection task and its decoding. On the
/// shared multi-threaded runtime, every batch of COPY messages went from
/// the connection task on one thread to the decoder on another: about
/// 60,000 context switches and 0.3 s of system time per 2M rows, on a
/// machine whose cores are busy with the source and target servers.
async fn run_workers(
    args: &Args,
    url: &ConnUrl,
    snapshot_id: &str,
    sections: Vec<Section>,
    output: &OrderedOutput,
) -> anyhow::Result<()> {
    let workers = usize::from(args.jobs).min(sections.len());
    let queue = Arc::new(Mutex::new(sections.into_iter().collect::<VecDeque<_>>()));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..workers {
        let (url, snapshot_id, queue, output, quiet, done) = (
            url.clone(),
            snapshot_id.to_string(),
            queue.clone(),
            output.clone(),
            args.quiet,
            done_tx.clone(),
        );
        std::thread::Builder::new()
            .name(format!("molt-dump-{i}"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("starting a dump worker's runtime")
                    .and_then(|runtime| {
                        runtime.block_on(worker(&url, &snapshot_id, &queue, &output, quiet))
                    });
                let _ = done.send(result);
            })
            .context("starting a dump worker")?;
    }
    drop(done_tx);
    // The first error ends the run; exiting ends the other workers.
    let mut finished = 0;
    while let Some(result) = done_rx.recv().await {
        result?;
        finished += 1;
    }
    if finished < workers {
        anyhow::bail!("a dump worker stopped without finishing (it panicked)");
    }
    Ok(())
}

async fn worker(
    url: &ConnUrl,
    snapshot_id: &str,
    queue: &Mutex<VecDeque<Section>>,
    output: &OrderedOutput,
    quiet: bool,
) -> anyhow::Result<()> {
    let source = snapshot::connect(url).await?;
    loop {
        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
        let Some(section) = next else { break };
        let mut writer = StreamWriter::new(output.section());
        let started = Instant::now();
        // A transaction per section on the shared snapshot: a transaction
        // keeps the lock of every table it read until it ends, and the
        // server's lock table (max_locks_per_transaction x max_connections)
        // runs out long before 10,000 tables.
        snapshot::begin_shared(&source.client, snapshot_id).await?;
        let rows = dump_section(&source.client, &section, &mut writer).await?;
        source
            .client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| anyhow!("closing a worker transaction: {}", error_text(&e)))?;
        let spill = writer.into_inner().context("writing the stream")?;
        spill.finish().context("writing the stream")?;
        if !quiet {
            molt_core::info!(
                "{} shard {}: {rows} rows in {:.2}s",
                section.slice.table,
                section.slice.shard,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// Writes one section (header, rows, end) and returns its row count.
async fn dump_section<W: Write>(
    client: &Client,
    section: &Section,
    writer: &mut StreamWriter<W>,
) -> anyhow::Result<u64> {
    let table = &section.slice.table;
    let mut progress = metrics::Progress::new(table);
    let base = writer.bytes_written();
    let mut header = section.table.header.clone();
    header.slice = section.slice.clone();
    writer
        .record(&Record::Table(Box::new(header)))
        .context("writing the stream")?;
    let sql = query::copy_sql(&section.table, &section.slice)
        .map_err(|e| anyhow!("table {table}: {e}"))?;
    let copy = client
        .copy_out(sql.as_str())
        .await
        .map_err(|e| anyhow!("table {table}: COPY failed: {}", error_text(&e)))?;
    futures_util::pin_mut!(copy);
    let decoders = section
        .table
        .reads
        .iter()
        .map(|r| r.decoder.clone())
        .collect();
    let mut decoder = RowDecoder::new(table.to_string(), decoders)
        .with_key(section.table.header.primary_key_positions());
    while let Some(chunk) = copy.next().await {
        let chunk =
            chunk.map_err(|e| anyhow!("table {table}: reading rows: {}", error_text(&e)))?;
        decoder.feed(&chunk, writer)?;
        if progress.wanted() {
            progress.update(decoder.digest().rows, writer.bytes_written() - base);
        }
    }
    decoder.finish()?;
    let digest = decoder.digest();
    writer
        .record(&Record::End(SectionEnd {
            table: table.clone(),
            shard: section.slice.shard.clone(),
            rows: digest.rows,
            digest: digest.hex(),
            changes: Vec::new(),
            checksum: None,
        }))
        .context("writing the stream")?;
    progress.finish(digest.rows, writer.bytes_written() - base);
    metrics::section(table, metrics::SectionStatus::Done);
    Ok(digest.rows)
}

/// `--format csv`: the one section, read on the coordinator's snapshot into a
/// spill buffer, checked by the stream reader and written as CSV.
async fn write_csv(args: &Args, client: &Client, sections: Vec<Section>) -> anyhow::Result<()> {
    if sections.len() != 1 {
        return Err(molt_core::exit::ExitError::new(
            molt_core::exit::USAGE,
            format!(
                "--format csv writes exactly one table and shard; the slices name {} sections",
                sections.len()
            ),
        )
        .into());
    }
    let section = &sections[0];
    let started = Instant::now();
    let mut writer = StreamWriter::new(SpillBuffer::new(args.spill_memory()));
    let rows = dump_section(client, section, &mut writer).await?;
    let buffer = writer.into_inner().context("buffering the section")?;
    let mut reader = StreamReader::new(std::io::BufReader::new(buffer.into_reader()?));
    let out = std::io::BufWriter::with_capacity(256 * 1024, crate::stdout_file()?);
    let mut csv: Option<CsvWriter<_>> = None;
    let mut out = Some(out);
    while let Some(item) = reader
        .next()
        .map_err(|e| anyhow!("re-reading the section: {e}"))?
    {
        match item {
            Item::Record(Record::Table(header)) => {
                let names: Vec<&str> = header.columns.iter().map(|c| c.name.as_str()).collect();
                let sink = out.take().expect("one table header");
                csv = Some(CsvWriter::new(sink, &names).context("writing CSV")?);
            }
            Item::Row(row) => {
                csv.as_mut()
                    .expect("rows follow the header")
                    .write_row(row)
                    .context("writing CSV")?;
            }
            Item::Record(_) => {}
        }
    }
    if let Some(mut csv) = csv {
        csv.flush().context("writing CSV")?;
    }
    if !args.quiet {
        molt_core::info!(
            "{} shard {}: {rows} rows in {:.2}s",
            section.slice.table,
            section.slice.shard,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
