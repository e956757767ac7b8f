//! Workers: one connection each, one section at a time.
//!
//! For each section a worker prepares the table (once per run and table,
//! under a lock shared by the workers, since two shards of one table may
//! arrive together), then replaces the section's slice:
//!
//! 1. mark the section `loading` in the ledger;
//! 2. delete the rows of its slice (filter AND shard range);
//! 3. COPY its rows in batches, as the reader sends them;
//! 4. at the `end` record, whose count and digest the reader has checked,
//!    mark it `loaded` with rows and digest.
//!
//! If anything fails after step 1 (a torn stream, a database error), the
//! slice is deleted again and the section marked `failed`: the target holds
//! none of its rows. A section the ledger already has as `loaded` is first
//! read into a temporary file; if its count and digest are unchanged it is
//! skipped without touching the target, otherwise it is replaced from the
//! file. A section whose target table's foreign keys reference a table not
//! loaded yet, or whose old rows are still referenced, is held back in a
//! file the same way and written later, in dependency order (see
//! [`crate::order`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use molt_core::exit;
use molt_core::ident::quote_pg_table;
use molt_core::metrics::SectionStatus;
use molt_core::stream::{ResultRecord, SectionEnd, TableHeader, TableName};
use molt_core::target::copy_binary::{self, BinaryPlan, BinaryType};
use molt_core::target::finalize::finalize;
use molt_core::target::foreign_keys::{referenced_tables, FOREIGN_KEY_VIOLATION};
use molt_core::target::ledger::{self, Ledger, SectionId};
use molt_core::target::sequences::set_sequences;
use molt_core::target::slice::{section_predicate, SlicePredicate};
use molt_core::target::{ddl, retry, Flavour, TargetError};
use molt_core::ConnUrl;
use tokio::sync::{mpsc, oneshot};

use crate::batch::{Batch, Conn, TableCopy};
use crate::order::{Deferred, Order};
use crate::output::Output;
use crate::reader::{read_stream, Batching, Msg, Sections};
use crate::spill::Spill;
use crate::Args;
use molt_core::target::copy_in::BytesText;

/// COPY chunks (about 256 KB each) the reader may encode ahead of a worker.
/// While a batch commits (the server flushes its WAL, then answers the
/// confirming query) the worker sends nothing; with room for 8 MB the
/// reader, and molt-dump behind it, keep working through that pause instead
/// of stalling with it. 4 chunks cost 5-10% of a dump | load pipeline's
/// time on the bench (20 commits per 2M rows); 64 brought peak RSS near
/// 100 MB for little more.
const CHUNKS_AHEAD: usize = 32;

/// State the workers share.
struct Shared {
    args: Arc<Args>,
    url: ConnUrl,
    flavour: Flavour,
    ledger: Ledger,
    /// Tables prepared in this run, with the header they were prepared from.
    tables: tokio::sync::Mutex<BTreeMap<TableName, TableHeader>>,
    failures: Mutex<Vec<String>>,
    stop: Arc<AtomicBool>,
    out: Output,
    /// When each section may be written (foreign keys on the target).
    order: Arc<Order>,
}

impl Shared {
    fn fail(&self, message: String) {
        self.stop.store(true, Ordering::Relaxed);
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message);
    }
}

/// Runs `$body` (a future using the connection `$t`) again after transient
/// errors, reconnecting as needed.
macro_rules! retrying {
    ($conn:expr, $max:expr, |$t:ident| $body:expr) => {{
        let mut attempt = 0u32;
        loop {
            let result = match $conn.get().await {
                Ok($t) => $body.await,
                Err(e) => Err(e),
            };
            match result {
                Ok(v) => break Ok(v),
                Err(e) if e.is_transient() && attempt < $max => {
                    attempt += 1;
                    molt_core::metrics::retry(e.sqlstate());
                    tokio::time::sleep(retry::backoff(attempt)).await;
                }
                Err(e) => break Err(e),
            }
        }
    }};
}

/// Loads the stream on stdin; the body of `molt-load`.
pub async fn load(args: Arc<Args>, url: ConnUrl) -> anyhow::Result<i32> {
    let main = molt_core::target::connect_retrying(&url, args.max_retries)
        .await
        .context("connecting to the target")?;
    let out = Output::new(args.quiet);
    out.note(&format!("target is {} ({url})", main.flavour.name()));
    let ledger = Ledger::new(args.ledger_schema.clone());
    if args.dry_run {
        for sql in ledger.setup_sql() {
            out.always(&format!("{sql};"));
        }
    } else {
        ledger
            .ensure(&main.client)
            .await
            .context("creating the ledger")?;
    }
    let shared = Arc::new(Shared {
        args: args.clone(),
        url,
        flavour: main.flavour,
        ledger,
        tables: tokio::sync::Mutex::new(BTreeMap::new()),
        failures: Mutex::new(Vec::new()),
        stop: Arc::new(AtomicBool::new(false)),
        out,
        order: Arc::new(Order::default()),
    });

    let (idle_tx, idle_rx) = std_mpsc::channel();
    let mut senders = Vec::new();
    let mut workers = Vec::new();
    for id in 0..args.jobs as usize {
        let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
        senders.push(tx);
        workers.push(tokio::spawn(worker_loop(
            id,
            rx,
            idle_tx.clone(),
            shared.clone(),
        )));
    }
    drop(idle_tx);
    let options = args.reader_options();
    let batching = Batching {
        rows: args.batch_rows,
        bytes: args.effective_batch_bytes(),
        format: args.copy_format,
        bytes_text: BytesText::for_flavour(shared.flavour),
    };
    let (stop, quiet) = (shared.stop.clone(), args.quiet);
    let (order, schema) = (shared.order.clone(), args.schema.clone());
    let reader = tokio::task::spawn_blocking(move || {
        let input = std::io::BufReader::with_capacity(1 << 20, std::io::stdin());
        let sections = Sections {
            order,
            schema,
            idle: idle_rx,
        };
        read_stream(input, options, senders, sections, batching, stop, quiet)
    });
    let outcome = reader.await.context("the reader thread panicked")?;
    shared.order.end_of_stream();
    for worker in workers {
        worker.await.context("a worker panicked")?;
    }
    if shared.stop.load(Ordering::Relaxed) || outcome.error.is_some() {
        abandon_held_back(&shared).await;
    } else if let Err(message) = write_held_back(&shared).await {
        abandon_held_back(&shared).await;
        shared.fail(message);
    }
    shared.out.finish();

    let mut failures =
        std::mem::take(&mut *shared.failures.lock().unwrap_or_else(|p| p.into_inner()));
    if let Some(error) = outcome.error {
        if !failures.iter().any(|f| f.contains(&error)) {
            failures.push(error);
        }
    }
    if failures.is_empty() && !args.allow_empty {
        if let Some(why) = molt_core::stream::nothing_read(outcome.records, outcome.sections) {
            failures.push(why.to_string());
        }
    }
    if !failures.is_empty() {
        for f in &failures[..failures.len() - 1] {
            molt_core::info!("error: {}", molt_core::url::redact_text(f));
        }
        anyhow::bail!("{}", failures.last().expect("not empty"));
    }

    let tables = std::mem::take(&mut *shared.tables.lock().await);
    if args.dry_run {
        for (target, header) in &tables {
            for seq in &header.sequences {
                shared.out.always(&format!(
                    "-- would move sequence of {target}.{} past the loaded rows",
                    seq.column
                ));
            }
        }
        return Ok(exit::SUCCESS);
    }
    // The first connection has been idle for the whole load: reopen it if lost.
    drop(main);
    let mut conn = Conn::new(shared.url.clone());
    let main = conn.get().await.context("reconnecting to the target")?;
    for (target, header) in &tables {
        let done = set_sequences(&main.client, header, target)
            .await
            .with_context(|| format!("setting the sequences of {target}"))?;
        for s in done {
            shared.out.note(&format!(
                "sequence {} of {target}.{} at {:?}",
                s.sequence, s.column, s.last_value
            ));
        }
    }
    if args.finalize {
        let known = shared
            .ledger
            .stored_headers(&main.client, None)
            .await
            .context("reading the ledger")?;
        let loaded: Vec<(TableName, TableHeader)> = known
            .iter()
            .filter(|(t, _)| tables.contains_key(t))
            .cloned()
            .collect();
        let report = finalize(&main.client, &loaded, &known)
            .await
            .context("finalizing")?;
        for line in &report.created {
            shared.out.note(&format!("finalize: created {line}"));
        }
        for line in &report.skipped {
            molt_core::warn!("finalize skipped {line}");
        }
        if !report.ok() {
            for line in &report.failed {
                molt_core::info!("error: finalize: {line}");
            }
            anyhow::bail!("finalize failed for {} object(s)", report.failed.len());
        }
    }
    Ok(exit::SUCCESS)
}

/// At the end of the stream: the held-back sections, old rows deleted
/// children first, then rows written parents first.
async fn write_held_back(shared: &Shared) -> Result<(), String> {
    let (mut held, cycle) = shared.order.drain_in_order();
    if held.is_empty() {
        return Ok(());
    }
    if !cycle.is_empty() {
        let names: Vec<String> = cycle.iter().map(ToString::to_string).collect();
        molt_core::warn!(
            "the foreign keys between {} form a cycle; their held-back sections are written in stream order",
            names.join(", ")
        );
    }
    let mut conn = Conn::new(shared.url.clone());
    let mut index = held.len();
    while index > 0 {
        index -= 1;
        if held[index].needs_delete {
            if let Err(e) = begin_replace(&mut conn, shared, &held[index].section).await {
                let d = held.remove(index);
                for other in held {
                    shared.order.defer(Box::new(other), None);
                }
                return Err(d
                    .section
                    .compensate(&mut conn, shared, true, &e.to_string())
                    .await);
            }
            held[index].needs_delete = false;
        }
    }
    let mut rest = held.into_iter();
    while let Some(d) = rest.next() {
        match attempt_deferred(&mut conn, shared, Box::new(d), true).await {
            Ok(Attempt::Loaded(record)) => shared
                .out
                .result(*record)
                .map_err(|e| format!("writing a result to stdout: {e}"))?,
            Ok(Attempt::Wait(d, _)) => shared.order.defer(d, None),
            Err(message) => {
                for other in rest {
                    shared.order.defer(Box::new(other), None);
                }
                return Err(message);
            }
        }
    }
    Ok(())
}

/// After a failure: removes what the held-back sections deleted or wrote
/// and marks them failed, so none is left half-replaced.
async fn abandon_held_back(shared: &Shared) {
    let (held, _) = shared.order.drain_in_order();
    if held.is_empty() {
        return;
    }
    let mut conn = Conn::new(shared.url.clone());
    for d in held {
        let message = d
            .section
            .compensate(
                &mut conn,
                shared,
                d.needs_delete,
                "the run stopped before this held-back section was written",
            )
            .await;
        shared.out.note(&message);
    }
}

async fn worker_loop(
    id: usize,
    mut rx: mpsc::Receiver<Msg>,
    idle: std_mpsc::Sender<usize>,
    shared: Arc<Shared>,
) {
    let mut conn = Conn::new(shared.url.clone());
    loop {
        if idle.send(id).is_err() {
            return;
        }
        let Some(msg) = rx.recv().await else { return };
        let Msg::Start { header, binary } = msg else {
            continue;
        };
        let target = target_of(&header, shared.args.schema.as_deref());
        let key = header.clone();
        match load_section(&mut conn, &mut rx, &shared, header, binary).await {
            Ok(Outcome::Done(record)) => {
                shared.order.finished(&target, &key);
                if let Err(e) = shared.out.result(*record) {
                    shared.fail(format!("writing a result to stdout: {e}"));
                    return;
                }
            }
            Ok(Outcome::Deferred(deferred)) => {
                if !shared.args.quiet {
                    let waits = shared.order.waits_for(&target);
                    let why = if deferred.needs_delete {
                        "its old rows are still referenced by other tables' rows".to_string()
                    } else {
                        let names: Vec<String> = waits.iter().map(ToString::to_string).collect();
                        format!(
                            "its foreign keys reference {}, not loaded yet",
                            names.join(", ")
                        )
                    };
                    shared.out.note(&format!(
                        "{}: held back in a temporary file: {why}",
                        deferred.section.label
                    ));
                }
                shared.order.defer(deferred, None);
            }
            Err(message) => {
                shared.fail(message);
                return;
            }
        }
        if let Err(message) = run_ready(&mut conn, &shared).await {
            shared.fail(message);
            return;
        }
    }
}

/// How a section's input ended.
enum Ending {
    End(SectionEnd),
    Torn(String),
}

fn ending_of(msg: Option<Msg>) -> Option<Ending> {
    match msg {
        Some(Msg::End { end }) => Some(Ending::End(end)),
        Some(Msg::Torn { error }) => Some(Ending::Torn(error)),
        None => Some(Ending::Torn(
            "the run stopped before the end of this section (another section failed)".into(),
        )),
        Some(Msg::Start { .. }) => Some(Ending::Torn(
            "a new section started before this one ended".into(),
        )),
        Some(Msg::Rows { .. }) => None,
    }
}

fn target_of(header: &TableHeader, schema: Option<&str>) -> TableName {
    match schema {
        Some(s) => TableName::new(s, header.target_name().name.clone()),
        None => header.target_name().clone(),
    }
}

/// Creates (or checks, truncates, recreates) the table once per run.
async fn prepare(
    conn: &mut Conn,
    shared: &Shared,
    header: &TableHeader,
    target: &TableName,
) -> Result<(), TargetError> {
    let mut tables = shared.tables.lock().await;
    if tables.contains_key(target) {
        return Ok(());
    }
    let args = &shared.args;
    shared
        .flavour
        .check_columns(header, target)
        .map_err(TargetError::Invalid)?;
    molt_core::target::sequences::check_sequences(header, target).map_err(TargetError::Invalid)?;
    let session = conn.get().await?;
    let (header, warnings) = ddl::fit_types(session, header, target).await?;
    for warning in &warnings {
        molt_core::warn!("{warning}");
    }
    let client = &session.client;
    let plan = ddl::plan_table(
        client,
        &header,
        target,
        args.table_handling,
        args.schema.as_deref(),
    )
    .await?;
    let mut stored = header.clone();
    stored.target = Some(target.clone());
    if args.dry_run {
        for sql in &plan.statements {
            shared.out.always(&format!("{sql};"));
        }
    } else {
        for sql in &plan.statements {
            // Another molt-load may be creating the same table right now.
            molt_core::target::run_concurrent_ddl(client, sql)
                .await
                .map_err(|e| TargetError::db(format!("running {sql}"), e))?;
        }
        if plan.emptied {
            shared.ledger.forget_table(client, target).await?;
        }
        shared.ledger.record_table(client, target, &stored).await?;
    }
    tables.insert(target.clone(), stored);
    Ok(())
}

/// Deletes the rows of a section's slice; returns how many.
async fn delete_slice(
    conn: &mut Conn,
    shared: &Shared,
    table: &TableName,
    predicate: &SlicePredicate,
) -> Result<u64, TargetError> {
    let sql = shared
        .flavour
        .delete_sql(&quote_pg_table(table), predicate.sql.as_deref());
    let mut total = 0;
    loop {
        let deleted: Result<u64, TargetError> =
            retrying!(conn, shared.args.max_retries, |t| async {
                t.client
                    .execute(&sql, &predicate.param_refs())
                    .await
                    .map_err(|e| {
                        TargetError::db(format!("deleting the section's rows from {table}"), e)
                    })
            });
        let n = match deleted {
            // A `via` slice selects its rows through the parent table. If the
            // parent does not exist on the target yet, no parent row is in
            // the slice there, so no row of this table is either: there is
            // nothing to replace. (The table itself was created just before.)
            Err(e) if e.sqlstate() == Some("42P01") && predicate.sql.is_some() => 0,
            other => other?,
        };
        total += n;
        if shared
            .flavour
            .delete_chunk()
            .map_or(true, |chunk| n < chunk)
        {
            return Ok(total);
        }
    }
}

/// Writes batches into the section's table and counts what was written.
struct Writer<'a> {
    copy: &'a TableCopy,
    batch: Batch,
    rows: u64,
    bytes: u64,
    max_retries: u32,
    /// The open batch's COPY text (shared with `batch`, not copied), to
    /// name the row a server error points at.
    batch_chunks: Vec<Bytes>,
    header: &'a TableHeader,
}

impl Writer<'_> {
    async fn chunk(
        &mut self,
        conn: &mut Conn,
        data: Bytes,
        rows: u64,
        end_of_batch: bool,
    ) -> Result<(), TargetError> {
        self.batch_chunks.push(data.clone());
        self.batch.push(conn, self.copy, data, rows).await;
        if end_of_batch {
            self.commit(conn).await?;
        }
        Ok(())
    }

    async fn commit(&mut self, conn: &mut Conn) -> Result<(), TargetError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let (rows, bytes) = self
            .batch
            .commit(conn, self.copy, self.max_retries)
            .await
            .map_err(|e| self.locate_refused_row(e))?;
        self.batch_chunks.clear();
        self.rows += rows;
        self.bytes += bytes;
        molt_core::metrics::rows(&self.header.table, rows, bytes);
        Ok(())
    }

    /// A value the target refuses (out of range, too long, bad syntax) is
    /// reported by PostgreSQL as `COPY t, line N, column c`, N counted from
    /// the start of the batch, which means nothing to the operator. Adds
    /// which row of the section that is, and its primary key.
    fn locate_refused_row(&self, error: TargetError) -> TargetError {
        let Some(line) = error.where_().and_then(copy_line_of) else {
            return error;
        };
        let detail = error.detail().to_string();
        let mut located = format!(
            "{detail}; line {line} of this batch is row {} of the section",
            self.rows + line
        );
        let fields: Option<Vec<String>> = match &self.copy.binary {
            Some(types) => copy_binary::nth_tuple(&self.batch_chunks, line).map(|tuple| {
                tuple
                    .iter()
                    .zip(types)
                    .map(|(value, ty)| copy_binary::describe(*ty, value.as_deref()))
                    .collect()
            }),
            None => nth_copy_line(&self.batch_chunks, line).map(|row| {
                row.split(|b| *b == b'\t')
                    .map(unescape_copy_field)
                    .collect()
            }),
        };
        if let Some(fields) = fields {
            let key = self.header.primary_key();
            let positions: Vec<(&str, usize)> = key
                .iter()
                .filter_map(|k| {
                    let i = self.header.columns.iter().position(|c| c.name == k.name)?;
                    Some((k.name.as_str(), i))
                })
                .collect();
            if !positions.is_empty() && positions.iter().all(|(_, i)| *i < fields.len()) {
                let names: Vec<&str> = positions.iter().map(|(n, _)| *n).collect();
                let values: Vec<&str> =
                    positions.iter().map(|(_, i)| fields[*i].as_str()).collect();
                located.push_str(&format!(
                    ", primary key ({}) = ({})",
                    names.join(", "),
                    values.join(", ")
                ));
            }
        }
        error.with_detail(molt_core::url::redact_text(&located))
    }
}

/// N in a PostgreSQL error context `COPY t, line N[, column c: ...]`.
fn copy_line_of(where_: &str) -> Option<u64> {
    let rest = &where_[where_.find("COPY ")?..];
    let after = &rest[rest.find(", line ")? + ", line ".len()..];
    let digits: &str = &after[..after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len())];
    digits.parse().ok().filter(|n| *n > 0)
}

/// The `n`th (1-based) line of COPY text split over chunks of whole rows.
fn nth_copy_line(chunks: &[Bytes], n: u64) -> Option<Vec<u8>> {
    let mut seen = 0;
    for chunk in chunks {
        let lines = chunk.iter().filter(|b| **b == b'\n').count() as u64;
        if seen + lines >= n {
            let line = chunk.split(|b| *b == b'\n').nth((n - seen - 1) as usize)?;
            return Some(line.to_vec());
        }
        seen += lines;
    }
    None
}

/// A COPY text field as the value it stands for (`\N` is NULL).
fn unescape_copy_field(field: &[u8]) -> String {
    if field == b"\\N" {
        return "NULL".into();
    }
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter();
    while let Some(&b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b't') => out.push(b'\t'),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(&other) => out.push(other),
            None => {}
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One section's identity on the target, and the SQL and labels to load it.
pub struct SectionCtx {
    pub header: Box<TableHeader>,
    pub target: TableName,
    label: String,
    id: SectionId,
    predicate: SlicePredicate,
    copy: TableCopy,
    started: Instant,
    /// Why the section is replaced although the ledger had it loaded.
    reason: Option<String>,
}

impl SectionCtx {
    fn new(
        shared: &Shared,
        header: Box<TableHeader>,
        binary: Option<BinaryPlan>,
    ) -> Result<SectionCtx, String> {
        let schema = shared.args.schema.as_deref();
        let target = target_of(&header, schema);
        let phase = if header.slice.phase.is_empty() {
            String::new()
        } else {
            format!(" (phase {})", header.slice.phase)
        };
        let label = format!("table {target} shard {}{phase}", header.slice.shard);
        let predicate = section_predicate(&header, schema).map_err(|e| {
            molt_core::metrics::section(&header.table, SectionStatus::Failed);
            format!("{label}: {e}")
        })?;
        Ok(SectionCtx {
            copy: TableCopy::new(&header, &target, schema, binary),
            id: SectionId::new(&header, &target),
            predicate,
            label,
            target,
            header,
            started: Instant::now(),
            reason: None,
        })
    }

    /// The message of this section's failure (counted as failed).
    fn fail(&self, e: &dyn std::fmt::Display) -> String {
        molt_core::metrics::section(&self.header.table, SectionStatus::Failed);
        format!("{}: {e}", self.label)
    }

    fn result(&self, rows: u64, bytes: u64, end: SectionEnd, status: &str) -> ResultRecord {
        ResultRecord {
            tool: "molt-load".into(),
            phase: self.header.slice.phase.clone(),
            table: self.header.table.clone(),
            shard: self.header.slice.shard.clone(),
            rows,
            bytes,
            digest: end.digest,
            seconds: self.started.elapsed().as_secs_f64(),
            status: status.into(),
            changes: end.changes,
            copy_format: Some(
                if self.copy.binary.is_some() {
                    "binary"
                } else {
                    "text"
                }
                .into(),
            ),
            reason: self.reason.clone(),
        }
    }

    fn writer(&self, max_retries: u32) -> Writer<'_> {
        Writer {
            copy: &self.copy,
            batch: Batch::default(),
            rows: 0,
            bytes: 0,
            max_retries,
            batch_chunks: Vec::new(),
            header: &self.header,
        }
    }

    /// Removes what this section wrote, marks it failed; the message.
    async fn compensate(
        &self,
        conn: &mut Conn,
        shared: &Shared,
        untouched: bool,
        reason: &str,
    ) -> String {
        self.fail(
            &compensate(
                conn,
                shared,
                &self.id,
                &self.target,
                &self.predicate,
                untouched,
                reason,
            )
            .await,
        )
    }
}

/// How a section ended on its worker.
pub enum Outcome {
    Done(Box<ResultRecord>),
    /// Held back until its parents are loaded or its delete can run.
    Deferred(Box<Deferred>),
}

/// The tables `target`'s foreign keys reference, looked up once per run.
async fn parents_of(
    conn: &mut Conn,
    shared: &Shared,
    target: &TableName,
) -> Result<Vec<TableName>, TargetError> {
    if let Some(parents) = shared.order.parents(target) {
        return Ok(parents);
    }
    let parents = retrying!(conn, shared.args.max_retries, |t| referenced_tables(
        &t.client, target
    ))?;
    shared.order.set_parents(target, parents.clone());
    Ok(parents)
}

fn is_fk_violation(e: &TargetError) -> bool {
    e.sqlstate() == Some(FOREIGN_KEY_VIOLATION)
}

async fn load_section(
    conn: &mut Conn,
    rx: &mut mpsc::Receiver<Msg>,
    shared: &Shared,
    header: Box<TableHeader>,
    binary_reply: Option<oneshot::Sender<Option<Vec<BinaryType>>>>,
) -> Result<Outcome, String> {
    let args = &shared.args;
    let schema = args.schema.as_deref();
    let target = target_of(&header, schema);
    let fail = |e: &dyn std::fmt::Display| {
        molt_core::metrics::section(&header.table, SectionStatus::Failed);
        format!("table {target} shard {}: {e}", header.slice.shard)
    };
    if header.slice.filter.is_none() && header.slice.shard.count <= 1 {
        shared.out.expect_rows(header.estimated_rows);
    }
    // Preparing is safe to run again (it plans from what the target holds
    // now), so a transient error (a 40001 on a catalog read or the ledger
    // write, a lost connection) runs it again.
    let mut attempt = 0;
    loop {
        match prepare(conn, shared, &header, &target).await {
            Ok(()) => break,
            Err(e) if e.is_transient() && attempt < args.max_retries => {
                attempt += 1;
                molt_core::metrics::retry(e.sqlstate());
                tokio::time::sleep(retry::backoff(attempt)).await;
            }
            Err(e) => return Err(fail(&e)),
        }
    }
    // The reader waits for this answer before it encodes a row.
    let binary = match binary_reply {
        Some(reply) if !args.dry_run => {
            let plan = retrying!(conn, args.max_retries, |t| copy_binary::plan(
                &t.client, &header, &target
            ))
            .map_err(|e| fail(&e))?;
            let _ = reply.send(plan.as_ref().map(|p| p.types.clone()));
            plan
        }
        Some(reply) => {
            let _ = reply.send(None);
            None
        }
        None => None,
    };
    let mut section = SectionCtx::new(shared, header, binary)?;

    if args.dry_run {
        let delete = shared
            .flavour
            .delete_sql(&quote_pg_table(&target), section.predicate.sql.as_deref());
        shared.out.always(&format!(
            "-- {}: replace the slice\n{delete}; -- parameters {:?}\n{};",
            section.label, section.predicate.params, section.copy.copy_sql
        ));
        let (mut rows, mut bytes) = (0, 0);
        loop {
            let msg = rx.recv().await;
            if let Some(Msg::Rows { data, rows: n, .. }) = &msg {
                rows += n;
                bytes += data.len() as u64;
                continue;
            }
            match ending_of(msg) {
                Some(Ending::End(end)) => {
                    return Ok(Outcome::Done(Box::new(
                        section.result(rows, bytes, end, "dry-run"),
                    )))
                }
                Some(Ending::Torn(e)) => return Err(section.fail(&e)),
                None => unreachable!("rows handled above"),
            }
        }
    }

    parents_of(conn, shared, &target)
        .await
        .map_err(|e| section.fail(&e))?;
    let previous = if args.force_reload {
        None
    } else {
        retrying!(conn, args.max_retries, |t| shared
            .ledger
            .section(&t.client, &section.id))
        .map_err(|e| section.fail(&e))?
    };
    let mut skip_check = previous.as_ref().is_some_and(|p| p.status == "loaded");
    if let (true, false, Some(prev)) = (skip_check, args.trust_ledger, &previous) {
        // The ledger says loaded; believe it only if the target agrees.
        let stale = retrying!(conn, args.max_retries, |t| ledger::stale_reason(
            &t.client,
            prev,
            &section.target,
            &section.predicate
        ))
        .map_err(|e| section.fail(&e))?;
        if let Some(why) = stale {
            shared
                .out
                .note(&format!("{}: replacing it: {why}", section.label));
            section.reason = Some(why);
            skip_check = false;
        }
    }
    // Whether this section's old rows are deleted (the target was touched).
    let mut replaced = false;
    let mut attempted_at = 0;
    if !skip_check {
        attempted_at = shared.order.generation();
        match begin_replace(conn, shared, &section).await {
            Ok(()) => replaced = true,
            Err(e) if is_fk_violation(&e) => {}
            Err(e) => return Err(section.fail(&e)),
        }
    }
    let mut spill = None;
    if skip_check || !replaced || !shared.order.waits_for(&target).is_empty() {
        spill = Some(
            Spill::new().map_err(|e| section.fail(&format!("creating a temporary file: {e}")))?,
        );
    }
    let mut writer = section.writer(args.max_retries);

    // Receive the section.
    let ending = loop {
        let msg = rx.recv().await;
        if let Some(Msg::Rows {
            data,
            rows,
            end_of_batch,
        }) = msg
        {
            shared.out.rows(rows, data.len() as u64);
            let step = match &mut spill {
                Some(s) => s
                    .write(&data, rows, end_of_batch)
                    .map_err(|e| TargetError::Invalid(format!("writing a temporary file: {e}"))),
                None => writer.chunk(conn, data, rows, end_of_batch).await,
            };
            if let Err(e) = step {
                drop(writer);
                return Err(section
                    .compensate(conn, shared, !replaced, &e.to_string())
                    .await);
            }
            continue;
        }
        break ending_of(msg).expect("not rows");
    };
    let end = match ending {
        Ending::End(end) => end,
        Ending::Torn(reason) => {
            // Dropping an unfinished COPY aborts it; the connection must be
            // out of COPY mode before the compensating DELETE can run on it.
            drop(writer);
            return Err(section.compensate(conn, shared, !replaced, &reason).await);
        }
    };

    let Some(spilled) = spill.take() else {
        let record = finish(conn, shared, &section, writer, end).await?;
        return Ok(Outcome::Done(Box::new(record)));
    };
    if let (true, Some(prev)) = (skip_check, &previous) {
        if prev.rows == Some(end.rows as i64) && prev.digest.as_deref() == Some(end.digest.as_str())
        {
            let mut record = section.result(0, 0, end, "skipped");
            record.reason = Some(if args.trust_ledger {
                "the ledger has it loaded with the same rows and digest (--trust-ledger: the target was not checked)".into()
            } else {
                "the ledger has it loaded with the same rows and digest, and the target holds that many rows".into()
            });
            return Ok(Outcome::Done(Box::new(record)));
        }
        // Changed since it was loaded: replace it from the file.
        attempted_at = shared.order.generation();
        match begin_replace(conn, shared, &section).await {
            Ok(()) => replaced = true,
            Err(e) if is_fk_violation(&e) => {}
            Err(e) => return Err(section.fail(&e)),
        }
    }
    if !replaced || !shared.order.waits_for(&target).is_empty() {
        let deferred = shared
            .order
            .new_deferred(section, spilled, end, !replaced, attempted_at);
        return Ok(Outcome::Deferred(deferred));
    }
    let record = write_spilled(conn, shared, &section, spilled, end).await?;
    Ok(Outcome::Done(Box::new(record)))
}

/// Copies a held-back section from its file and marks it loaded.
async fn write_spilled(
    conn: &mut Conn,
    shared: &Shared,
    section: &SectionCtx,
    spilled: Spill,
    end: SectionEnd,
) -> Result<ResultRecord, String> {
    let mut writer = section.writer(shared.args.max_retries);
    if let Err(e) = replay(conn, &mut writer, spilled).await {
        drop(writer);
        return Err(section
            .compensate(conn, shared, false, &e.to_string())
            .await);
    }
    finish(conn, shared, section, writer, end).await
}

/// Commits the last batch, checks the count and marks the section loaded;
/// removes the section's rows again if that fails.
async fn finish(
    conn: &mut Conn,
    shared: &Shared,
    section: &SectionCtx,
    mut writer: Writer<'_>,
    end: SectionEnd,
) -> Result<ResultRecord, String> {
    let finished = async {
        writer.commit(conn).await?;
        if writer.rows != end.rows {
            return Err(TargetError::Invalid(format!(
                "wrote {} rows but the section has {}",
                writer.rows, end.rows
            )));
        }
        retrying!(conn, shared.args.max_retries, |t| shared
            .ledger
            .mark_loaded(
                &t.client,
                &section.id,
                writer.rows,
                writer.bytes,
                &end.digest
            ))
    }
    .await;
    if let Err(e) = finished {
        drop(writer);
        return Err(section
            .compensate(conn, shared, false, &e.to_string())
            .await);
    }
    let (rows, bytes) = (writer.rows, writer.bytes);
    Ok(section.result(rows, bytes, end, "ok"))
}

/// What an attempt at a held-back section did.
enum Attempt {
    Loaded(Box<ResultRecord>),
    /// Must wait longer; with the generation of a refused delete.
    Wait(Box<Deferred>, Option<u64>),
}

/// One attempt at a held-back section: its delete, then (parents loaded,
/// or `in_order` at the end of the stream) its rows.
async fn attempt_deferred(
    conn: &mut Conn,
    shared: &Shared,
    mut d: Box<Deferred>,
    in_order: bool,
) -> Result<Attempt, String> {
    if d.needs_delete {
        let attempted_at = shared.order.generation();
        match begin_replace(conn, shared, &d.section).await {
            Ok(()) => d.needs_delete = false,
            Err(e) if is_fk_violation(&e) && !in_order => {
                return Ok(Attempt::Wait(d, Some(attempted_at)))
            }
            Err(e) => {
                return Err(d
                    .section
                    .compensate(conn, shared, true, &e.to_string())
                    .await)
            }
        }
    }
    if !in_order && !shared.order.waits_for(&d.section.target).is_empty() {
        return Ok(Attempt::Wait(d, None));
    }
    let Deferred {
        section,
        spill,
        end,
        ..
    } = *d;
    let record = write_spilled(conn, shared, &section, spill, end).await?;
    shared.order.finished(&section.target, &section.header);
    Ok(Attempt::Loaded(Box::new(record)))
}

/// Writes held-back sections that became ready, until none is.
async fn run_ready(conn: &mut Conn, shared: &Shared) -> Result<(), String> {
    while let Some(d) = shared.order.take_ready() {
        match attempt_deferred(conn, shared, d, false).await? {
            Attempt::Loaded(record) => shared
                .out
                .result(*record)
                .map_err(|e| format!("writing a result to stdout: {e}"))?,
            Attempt::Wait(d, refused_at) => shared.order.defer(d, refused_at),
        }
    }
    Ok(())
}

/// Marks the section `loading` and deletes its slice. A foreign key
/// violation (other tables' rows still reference the slice) comes back as
/// the error, for the caller to hold the section back.
async fn begin_replace(
    conn: &mut Conn,
    shared: &Shared,
    section: &SectionCtx,
) -> Result<(), TargetError> {
    retrying!(conn, shared.args.max_retries, |t| shared
        .ledger
        .mark_loading(&t.client, &section.id))?;
    delete_slice(conn, shared, &section.target, &section.predicate).await?;
    shared.order.deleted();
    Ok(())
}

async fn replay(conn: &mut Conn, writer: &mut Writer<'_>, spill: Spill) -> Result<(), TargetError> {
    let io = |e: std::io::Error| TargetError::Invalid(format!("reading the temporary file: {e}"));
    let mut chunks = spill.replay().map_err(io)?;
    while let Some((data, rows, end_of_batch)) = chunks.next_chunk().map_err(io)? {
        writer.chunk(conn, data, rows, end_of_batch).await?;
    }
    Ok(())
}

/// Removes whatever the failed section wrote and marks it failed; returns
/// the error message to report.
async fn compensate(
    conn: &mut Conn,
    shared: &Shared,
    id: &SectionId,
    target: &TableName,
    predicate: &SlicePredicate,
    untouched: bool,
    reason: &str,
) -> String {
    if untouched {
        return format!(
            "{reason}; nothing was written: the rows loaded earlier for this section are unchanged"
        );
    }
    if let Err(e) = delete_slice(conn, shared, target, predicate).await {
        return format!(
            "{reason}; removing the section's rows failed too ({e}): the ledger still marks it loading, re-run to replace it"
        );
    }
    let max = shared.args.max_retries;
    let reason_text = reason.to_string();
    match retrying!(conn, max, |t| shared.ledger.mark_failed(&t.client, id, &reason_text)) {
        Ok(_) => format!("{reason}; the section's rows were removed from the target (marked failed in {}.sections)", shared.ledger.schema),
        Err(e) => format!("{reason}; the section's rows were removed, but marking it failed in the ledger failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_row_is_found_in_the_batch() {
        assert_eq!(
            copy_line_of("COPY qtys, line 12, column qty: \"99999999999\""),
            Some(12)
        );
        assert_eq!(copy_line_of("COPY t, line 3"), Some(3));
        assert_eq!(copy_line_of("SQL statement \"SELECT 1\""), None);
        let chunks = [
            Bytes::from_static(b"1\ta\n2\tb\n"),
            Bytes::from_static(b"3\\tx\tc\n"),
        ];
        assert_eq!(nth_copy_line(&chunks, 2).unwrap(), b"2\tb");
        assert_eq!(nth_copy_line(&chunks, 3).unwrap(), b"3\\tx\tc");
        assert_eq!(nth_copy_line(&chunks, 4), None);
        assert_eq!(unescape_copy_field(b"3\\tx\\\\y"), "3\tx\\y");
        assert_eq!(unescape_copy_field(b"\\N"), "NULL");
    }
}
