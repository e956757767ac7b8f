//! molt-load into MySQL/MariaDB: applying a stream to existing tables.
//!
//! Why it exists: after a phase whose source is MySQL has been switched to
//! the target, `molt-cutover rollback --after-cutover` exports the target's
//! slice as a stream, and that stream has to go back into the *source* so
//! writes made on the target are not lost. The PostgreSQL writer (COPY,
//! `pg_catalog`, a ledger schema) cannot do that, so a `mysql://` target
//! gets this writer instead.
//!
//! It keeps the PostgreSQL path's contract, slice replacement per section,
//! in the simplest form MySQL allows:
//!
//! - Sections are applied **one at a time, in stream order** (the rollback
//!   stream orders them so foreign keys hold: slices emptied children
//!   first, refilled parents first).
//! - Each section is **one transaction**: `DELETE` of the section's slice
//!   (its filter, which in a rollback stream is the source's own MySQL
//!   predicate, and its shard range), multi-row `INSERT`s with bound
//!   parameters, and `COMMIT` only at the `end` record, after the stream
//!   reader has checked the section's count and digest and the rows
//!   inserted have been counted. Any failure rolls the transaction back,
//!   so a section is applied whole or not at all.
//! - Tables must exist (they are the source's own); nothing is created,
//!   and the values are converted to each column's exact MySQL type
//!   (`molt_core::mysql::apply`), refusing values that do not fit.
//! - There is no ledger (nothing here creates tables in the source) and no
//!   finalize (the tables keep their indexes and constraints, and InnoDB
//!   moves AUTO_INCREMENT past explicitly inserted keys by itself).
//!
//! Memory stays bounded: a reader thread hands over rows in small chunks
//! through a bounded channel and an INSERT holds at most a batch. Every row
//! of the open section is also written to an anonymous temporary file, so
//! that a transient error (lost connection, deadlock, lock wait timeout,
//! even a lost COMMIT acknowledgement) can be retried by running the whole
//! section again from the file: delete-then-insert gives the same result
//! however often it runs.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use molt_core::exit::{ExitError, SUCCESS, USAGE};
use molt_core::ident::quote_mysql;
use molt_core::metrics::SectionStatus;
use molt_core::mysql::apply::{
    insert_sql, is_transient, row_in_message, rows_per_insert, section_predicate, ColumnWriter,
    TargetColumn, COLUMNS_SQL, SESSION_SQL,
};
use molt_core::stream::{
    Field, Item, ReaderOptions, Record, ResultRecord, SectionEnd, StreamReader, TableHeader,
    TableName,
};
use molt_core::target::ddl::TableHandling;
use molt_core::target::retry::backoff;
use molt_core::ConnUrl;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Params, Row, Value};
use tokio::sync::mpsc;

use crate::output::Output;
use crate::Args;

/// Rows per message from the reader thread.
const CHUNK_ROWS: usize = 512;
/// Bytes of stream text per message from the reader thread.
const CHUNK_BYTES: usize = 1 << 20;
/// An INSERT never carries more than this much value data.
const MAX_INSERT_BYTES: u64 = 16 << 20;

/// One stream value, owned.
#[derive(Debug)]
enum Owned {
    Null,
    Str(String),
    Array(String),
}

impl Owned {
    fn field(&self) -> Field<'_> {
        match self {
            Owned::Null => Field::Null,
            Owned::Str(s) => Field::Str(s),
            Owned::Array(s) => Field::Array(s),
        }
    }

    fn len(&self) -> usize {
        match self {
            Owned::Null => 0,
            Owned::Str(s) | Owned::Array(s) => s.len(),
        }
    }
}

type OwnedRow = Vec<Owned>;

/// What the reader thread sends.
enum Msg {
    Start(Box<TableHeader>),
    Rows(Vec<OwnedRow>),
    /// The section's end; the reader has checked its count and digest.
    End(SectionEnd),
    /// The stream is unusable here (torn, malformed, wrong digest).
    Broken(String),
}

/// Applies the stream on stdin to the MySQL database at `url`.
pub async fn load(args: Arc<Args>, url: ConnUrl) -> anyhow::Result<i32> {
    match args.table_handling {
        TableHandling::None | TableHandling::CreateIfMissing => {}
        other => {
            return Err(ExitError::new(
                USAGE,
                format!(
                    "--table-handling {} is refused for a MySQL target: molt-load writes only into the \
                     existing tables of a MySQL database (the source's own) and never creates, empties or \
                     drops them; use none or create-if-missing (which means none here)",
                    clap::ValueEnum::to_possible_value(&other)
                        .map_or_else(|| format!("{other:?}"), |v| v.get_name().to_string())
                ),
            )
            .into());
        }
    }
    let out = Output::new(args.quiet);
    let opts = molt_core::mysql::opts(&url).context("--target")?;
    let mut conn = Connection::new(opts.clone(), args.max_retries);
    conn.get()
        .await
        .with_context(|| format!("connecting to the target {url}"))?;
    out.note(&format!(
        "target is MySQL/MariaDB ({url}): sections are applied one at a time in stream order, \
         each in one transaction; no ledger is kept there"
    ));
    if args.jobs > 1 {
        out.note("--jobs is ignored for a MySQL target: sections must be applied in stream order");
    }
    if args.finalize {
        out.note(
            "--finalize has nothing to do on a MySQL target: its tables keep their own indexes and \
             constraints, and AUTO_INCREMENT moves past inserted keys by itself",
        );
    }

    let (tx, mut rx) = mpsc::channel::<Msg>(8);
    let stop = Arc::new(AtomicBool::new(false));
    let options = args.reader_options();
    let (reader_stop, quiet, allow_empty) = (stop.clone(), args.quiet, args.allow_empty);
    let reader = std::thread::spawn(move || {
        let input = BufReader::with_capacity(1 << 20, std::io::stdin());
        read_stream(input, options, tx, &reader_stop, quiet, allow_empty);
    });

    let mut writer = Writer {
        args: args.clone(),
        url_database: opts.db_name().map(str::to_string),
        conn,
        out,
        columns: HashMap::new(),
        databases: HashMap::new(),
        max_packet: 0,
    };
    let outcome = writer.run(&mut rx).await;
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    writer.out.finish();
    writer.conn.close().await;
    // The reader may be blocked on stdin; it ends with the stream.
    if outcome.is_ok() {
        let _ = reader.join();
    }
    outcome.map(|()| SUCCESS)
}

/// The reader thread: parses the stream (checking every section's count
/// and digest) and sends owned rows in small chunks.
fn read_stream(
    input: impl BufRead,
    options: ReaderOptions,
    tx: mpsc::Sender<Msg>,
    stop: &AtomicBool,
    quiet: bool,
    allow_empty: bool,
) {
    let mut reader = StreamReader::with_options(input, options);
    let (mut records, mut sections) = (0u64, 0u64);
    let mut chunk: Vec<OwnedRow> = Vec::new();
    let mut chunk_bytes = 0;
    let send = |msg: Msg| tx.blocking_send(msg).is_ok();
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let item = match reader.next() {
            Ok(Some(item)) => item,
            Ok(None) => {
                if let Some(why) = molt_core::stream::nothing_read(records, sections) {
                    if !allow_empty {
                        let _ = send(Msg::Broken(why.to_string()));
                    }
                }
                return;
            }
            Err(e) => {
                let _ = send(Msg::Broken(format!("stream error at {e}")));
                return;
            }
        };
        if let Item::Record(record) = &item {
            records += 1;
            sections += u64::from(matches!(record, Record::Table(_)));
        }
        let msg = match item {
            Item::Row(row) => {
                let owned: OwnedRow = row
                    .iter()
                    .map(|f| match f {
                        Field::Null => Owned::Null,
                        Field::Str(s) => Owned::Str(s.to_string()),
                        Field::Array(s) => Owned::Array(s.to_string()),
                    })
                    .collect();
                chunk_bytes += owned.iter().map(Owned::len).sum::<usize>() + owned.len();
                chunk.push(owned);
                if chunk.len() < CHUNK_ROWS && chunk_bytes < CHUNK_BYTES {
                    continue;
                }
                chunk_bytes = 0;
                Msg::Rows(std::mem::take(&mut chunk))
            }
            Item::Record(Record::Table(header)) => Msg::Start(header),
            Item::Record(Record::End(end)) => {
                if !chunk.is_empty() {
                    chunk_bytes = 0;
                    if !send(Msg::Rows(std::mem::take(&mut chunk))) {
                        return;
                    }
                }
                Msg::End(end)
            }
            Item::Record(Record::Notice(n)) => {
                if !quiet {
                    molt_core::info!("notice from the stream ({}): {}", n.level, n.message);
                }
                continue;
            }
            Item::Record(_) => continue,
        };
        if !send(msg) {
            return;
        }
    }
}

/// The one connection, reopened after a transient error.
struct Connection {
    opts: Opts,
    max_retries: u32,
    conn: Option<Conn>,
}

impl Connection {
    fn new(opts: Opts, max_retries: u32) -> Connection {
        Connection {
            opts,
            max_retries,
            conn: None,
        }
    }

    /// The connection, (re)connecting with backoff when there is none.
    async fn get(&mut self) -> Result<&mut Conn, mysql_async::Error> {
        if self.conn.is_none() {
            let mut attempt = 0;
            let conn = loop {
                let attempt_result = async {
                    let mut c = Conn::new(self.opts.clone()).await?;
                    c.query_drop(SESSION_SQL).await?;
                    Ok::<_, mysql_async::Error>(c)
                }
                .await;
                match attempt_result {
                    Ok(c) => break c,
                    Err(e) if is_transient(&e) && attempt < self.max_retries => {
                        attempt += 1;
                        molt_core::metrics::retry(sqlstate(&e).as_deref());
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                    Err(e) => return Err(e),
                }
            };
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }

    /// Drops the connection (after an error its state is unknown).
    fn reset(&mut self) {
        self.conn = None;
    }

    async fn close(&mut self) {
        if let Some(c) = self.conn.take() {
            let _ = c.disconnect().await;
        }
    }
}

/// Runs `$body` (a future using the connection `$c`) again after transient
/// errors, reconnecting; for statements outside a section's transaction.
macro_rules! retrying {
    ($self:ident, |$c:ident| $body:expr) => {{
        let mut attempt = 0u32;
        loop {
            let result = match $self.conn.get().await {
                Ok($c) => $body.await,
                Err(e) => Err(e),
            };
            match result {
                Ok(v) => break Ok(v),
                Err(e) if is_transient(&e) && attempt < $self.args.max_retries => {
                    attempt += 1;
                    molt_core::metrics::retry(sqlstate(&e).as_deref());
                    $self.conn.reset();
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => break Err(e),
            }
        }
    }};
}

/// How a step of a section failed.
enum Failure {
    /// Worth running the whole section again: what was being done, and
    /// why; the error's SQLSTATE (`None`: the connection was lost).
    Transient(String, Option<String>),
    /// Final; the message names the column and row when it is about one.
    Final(String),
}

fn classify(doing: &str, error: mysql_async::Error) -> Failure {
    let message = format!("{doing}: {error}");
    if is_transient(&error) {
        Failure::Transient(message, sqlstate(&error))
    } else {
        Failure::Final(message)
    }
}

/// The SQLSTATE of a server error (MySQL's deadlock 1213 is 40001), for
/// `molt_retries_total`.
fn sqlstate(error: &mysql_async::Error) -> Option<String> {
    match error {
        mysql_async::Error::Server(e) => Some(e.state.clone()),
        _ => None,
    }
}

/// A section's rows kept in an anonymous temporary file for a retry.
struct RowSpill {
    file: BufWriter<std::fs::File>,
    rows: u64,
}

impl RowSpill {
    fn new() -> std::io::Result<RowSpill> {
        Ok(RowSpill {
            file: BufWriter::with_capacity(256 * 1024, tempfile::tempfile()?),
            rows: 0,
        })
    }

    fn write(&mut self, row: &OwnedRow) -> std::io::Result<()> {
        self.file.write_all(&(row.len() as u32).to_le_bytes())?;
        for value in row {
            let (tag, text) = match value {
                Owned::Null => (0u8, ""),
                Owned::Str(s) => (1, s.as_str()),
                Owned::Array(s) => (2, s.as_str()),
            };
            self.file.write_all(&[tag])?;
            self.file.write_all(&(text.len() as u32).to_le_bytes())?;
            self.file.write_all(text.as_bytes())?;
        }
        self.rows += 1;
        Ok(())
    }

    /// Reads the rows from the start; [`RowSpill::append`] afterwards.
    fn rewind(&mut self) -> std::io::Result<SpillReader<'_>> {
        self.file.flush()?;
        self.file.get_mut().seek(SeekFrom::Start(0))?;
        Ok(SpillReader {
            input: BufReader::with_capacity(256 * 1024, self.file.get_ref()),
            left: self.rows,
        })
    }

    /// Moves back to the end, to add the section's next rows.
    fn append(&mut self) -> std::io::Result<()> {
        self.file.get_mut().seek(SeekFrom::End(0)).map(|_| ())
    }
}

struct SpillReader<'a> {
    input: BufReader<&'a std::fs::File>,
    left: u64,
}

impl SpillReader<'_> {
    fn next_row(&mut self) -> std::io::Result<Option<OwnedRow>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let mut word = [0u8; 4];
        self.input.read_exact(&mut word)?;
        let n = u32::from_le_bytes(word);
        let mut row = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let mut tag = [0u8; 1];
            self.input.read_exact(&mut tag)?;
            self.input.read_exact(&mut word)?;
            let mut bytes = vec![0; u32::from_le_bytes(word) as usize];
            self.input.read_exact(&mut bytes)?;
            let text = String::from_utf8(bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            row.push(match tag[0] {
                0 => Owned::Null,
                1 => Owned::Str(text),
                _ => Owned::Array(text),
            });
        }
        Ok(Some(row))
    }
}

/// How one section is written into its MySQL table.
struct Plan {
    quoted: String,
    /// Per stream column: how it is written; `None` for a generated column
    /// (the server computes it).
    writers: Vec<Option<ColumnWriter>>,
    /// The MySQL names of the written columns.
    columns: Vec<String>,
    delete_sql: String,
    delete_params: Vec<Value>,
    /// Stream column indexes and names of the primary key, for messages.
    key: Vec<(usize, String)>,
    rows_per_insert: usize,
}

impl Plan {
    /// `key (id)=(5)` for a row, or its position without a key.
    fn describe(&self, row: &OwnedRow, position: u64) -> String {
        if self.key.is_empty() {
            return format!("row {position} of the section (no primary key)");
        }
        let names: Vec<&str> = self.key.iter().map(|(_, n)| n.as_str()).collect();
        let values: Vec<&str> = self
            .key
            .iter()
            .map(|(i, _)| match row.get(*i).map(Owned::field) {
                Some(Field::Str(s)) | Some(Field::Array(s)) => s,
                _ => "NULL",
            })
            .collect();
        format!("key ({})=({})", names.join(", "), values.join(", "))
    }

    /// The MySQL values of one row.
    fn convert(&self, row: &OwnedRow, position: u64) -> Result<Vec<Value>, String> {
        let mut out = Vec::with_capacity(self.columns.len());
        for (value, writer) in row.iter().zip(&self.writers) {
            let Some(w) = writer else { continue };
            out.push(w.convert(value.field()).map_err(|e| {
                format!("column {}, {}: {e}", w.name, self.describe(row, position))
            })?);
        }
        Ok(out)
    }
}

/// The open section.
struct Section {
    header: Box<TableHeader>,
    plan: Plan,
    label: String,
    started: Instant,
    spill: Option<RowSpill>,
    /// Rows waiting for the next INSERT.
    pending: Vec<OwnedRow>,
    pending_bytes: u64,
    /// Rows received so far.
    received: u64,
    /// Rows the INSERTs reported in the current transaction.
    inserted: u64,
    bytes: u64,
    /// Times the section was run again after a transient error.
    retries: u32,
}

struct Writer {
    args: Arc<Args>,
    url_database: Option<String>,
    conn: Connection,
    out: Output,
    /// Columns of each MySQL table met so far.
    columns: HashMap<TableName, Arc<Vec<TargetColumn>>>,
    /// Stream schema -> MySQL database.
    databases: HashMap<String, String>,
    max_packet: u64,
}

impl Writer {
    async fn run(&mut self, rx: &mut mpsc::Receiver<Msg>) -> anyhow::Result<()> {
        self.max_packet = retrying!(self, |c| c
            .query_first::<u64, _>("SELECT @@max_allowed_packet"))
        .context("reading max_allowed_packet")?
        .unwrap_or(0);
        let mut section: Option<Section> = None;
        while let Some(msg) = rx.recv().await {
            match msg {
                Msg::Start(header) => {
                    if let Some(open) = section.take() {
                        molt_core::metrics::section(&open.header.table, SectionStatus::Failed);
                        let message = format!(
                            "{}: a new section started before this one ended",
                            open.label
                        );
                        return Err(self.rollback_with(message).await);
                    }
                    section = Some(self.begin(header).await?);
                }
                Msg::Rows(rows) => {
                    let Some(open) = section.as_mut() else {
                        continue;
                    };
                    self.out.rows(
                        rows.len() as u64,
                        rows.iter().flatten().map(|v| v.len() as u64).sum(),
                    );
                    self.rows(open, rows).await?;
                }
                Msg::End(end) => {
                    let Some(open) = section.take() else { continue };
                    let record = self.finish(open, end).await?;
                    self.out
                        .result(record)
                        .context("writing a result to stdout")?;
                }
                Msg::Broken(error) => {
                    return Err(match section.take() {
                        Some(open) => {
                            molt_core::metrics::section(&open.header.table, SectionStatus::Failed);
                            self.rollback_with(format!("{}: {error}", open.label)).await
                        }
                        None => anyhow::anyhow!(error),
                    });
                }
            }
        }
        if let Some(open) = section {
            molt_core::metrics::section(&open.header.table, SectionStatus::Failed);
            let message = format!("{}: the stream ended inside this section", open.label);
            return Err(self.rollback_with(message).await);
        }
        Ok(())
    }

    /// Rolls back the open transaction (if the connection still holds
    /// one); the error to report.
    async fn rollback_with(&mut self, message: String) -> anyhow::Error {
        if !self.args.dry_run {
            if let Some(c) = self.conn.conn.as_mut() {
                if c.query_drop("ROLLBACK").await.is_err() {
                    self.conn.reset();
                }
            }
        }
        anyhow::anyhow!(
            "{message}; the section's transaction was rolled back, so none of its rows were applied \
             (sections before it stay applied)"
        )
    }

    /// After a failed step: a transient error runs the whole section again
    /// from its temporary file (up to `--max-retries` times per section);
    /// anything else rolls back and becomes the error.
    async fn recover(&mut self, section: &mut Section, failure: Failure) -> anyhow::Result<()> {
        let mut failure = failure;
        loop {
            let (error, state) = match failure {
                Failure::Final(m) => {
                    molt_core::metrics::section(&section.header.table, SectionStatus::Failed);
                    return Err(self.rollback_with(format!("{}: {m}", section.label)).await);
                }
                Failure::Transient(e, state) => (e, state),
            };
            if section.spill.is_none() || section.retries >= self.args.max_retries {
                let gave_up = if section.retries > 0 {
                    format!(" (gave up after {} retries)", section.retries)
                } else {
                    String::new()
                };
                let message = format!("{}: {error}{gave_up}", section.label);
                molt_core::metrics::section(&section.header.table, SectionStatus::Failed);
                return Err(self.rollback_with(message).await);
            }
            section.retries += 1;
            molt_core::metrics::retry(state.as_deref());
            self.out.note(&format!(
                "{}: {error}; running the section again (retry {})",
                section.label, section.retries
            ));
            self.conn.reset();
            tokio::time::sleep(backoff(section.retries)).await;
            match self.restart(section).await {
                Ok(()) => return Ok(()),
                Err(f) => failure = f,
            }
        }
    }

    /// Plans a new section, opens its transaction and deletes its slice.
    async fn begin(&mut self, header: Box<TableHeader>) -> anyhow::Result<Section> {
        let phase = if header.slice.phase.is_empty() {
            String::new()
        } else {
            format!(" (phase {})", header.slice.phase)
        };
        let stream_label = format!(
            "table {} shard {}{phase}",
            header.target_name(),
            header.slice.shard
        );
        let table = self
            .mysql_table(header.target_name())
            .await
            .with_context(|| stream_label.clone())?;
        let label = format!("table {table} shard {}{phase}", header.slice.shard);
        let plan = self
            .plan(&header, &table)
            .await
            .with_context(|| label.clone())?;
        let spill = if self.args.max_retries > 0 && !self.args.dry_run {
            Some(RowSpill::new().with_context(|| format!("{label}: creating a temporary file"))?)
        } else {
            None
        };
        let mut section = Section {
            header,
            plan,
            label,
            started: Instant::now(),
            spill,
            pending: Vec::new(),
            pending_bytes: 0,
            received: 0,
            inserted: 0,
            bytes: 0,
            retries: 0,
        };
        if self.args.dry_run {
            self.out.always(&format!(
                "-- {}: replace the slice\nSTART TRANSACTION;\n{}; -- parameters {:?}\n{} ...;\nCOMMIT;",
                section.label,
                section.plan.delete_sql,
                section.plan.delete_params,
                insert_sql(&section.plan.quoted, &section.plan.columns, 1)
            ));
            return Ok(section);
        }
        if let Err(failure) = self.start(&mut section).await {
            self.recover(&mut section, failure).await?;
        }
        Ok(section)
    }

    /// `START TRANSACTION` and the slice's DELETE.
    async fn start(&mut self, section: &mut Section) -> Result<(), Failure> {
        section.inserted = 0;
        let conn = self
            .conn
            .get()
            .await
            .map_err(|e| classify("connecting", e))?;
        conn.query_drop("START TRANSACTION")
            .await
            .map_err(|e| classify("starting the transaction", e))?;
        let params = if section.plan.delete_params.is_empty() {
            Params::Empty
        } else {
            Params::Positional(section.plan.delete_params.clone())
        };
        conn.exec_drop(&section.plan.delete_sql, params)
            .await
            .map_err(|error| {
                let referenced = matches!(&error, mysql_async::Error::Server(s) if s.code == 1451);
                let failure = classify(&format!("deleting the slice ({})", section.plan.delete_sql), error);
                match failure {
                    Failure::Final(m) if referenced => Failure::Final(format!(
                        "{m}: rows of other tables, outside this stream (a later phase, say), still \
                         reference the slice's rows; roll those back first"
                    )),
                    other => other,
                }
            })
    }

    /// Runs the section again after a transient error: a new transaction,
    /// the delete, then every row received so far, from the temporary file.
    async fn restart(&mut self, section: &mut Section) -> Result<(), Failure> {
        self.start(section).await?;
        section.pending.clear();
        section.pending_bytes = 0;
        let mut spill = section.spill.take().expect("a retry needs the spill");
        let replayed = self.replay(section, &mut spill).await;
        let appended = spill.append();
        section.spill = Some(spill);
        replayed?;
        appended.map_err(|e| Failure::Final(format!("the temporary file: {e}")))?;
        Ok(())
    }

    async fn replay(&mut self, section: &mut Section, spill: &mut RowSpill) -> Result<(), Failure> {
        let io = |e: std::io::Error| Failure::Final(format!("reading the temporary file: {e}"));
        let mut rows = spill.rewind().map_err(io)?;
        while let Some(row) = rows.next_row().map_err(io)? {
            section.pending_bytes += row.iter().map(|v| v.len() as u64).sum::<u64>();
            section.pending.push(row);
            if self.batch_full(section) {
                self.insert_pending(section).await?;
            }
        }
        self.insert_pending(section).await
    }

    fn batch_full(&self, section: &Section) -> bool {
        let packet = if self.max_packet > 0 {
            self.max_packet / 2
        } else {
            MAX_INSERT_BYTES
        };
        let bytes = self
            .args
            .effective_batch_bytes()
            .min(packet)
            .min(MAX_INSERT_BYTES);
        section.pending.len() >= section.plan.rows_per_insert || section.pending_bytes >= bytes
    }

    /// Takes a chunk of rows: keeps them for a retry and inserts full batches.
    async fn rows(&mut self, section: &mut Section, rows: Vec<OwnedRow>) -> anyhow::Result<()> {
        for row in rows {
            section.received += 1;
            if let Some(spill) = section.spill.as_mut() {
                if let Err(e) = spill.write(&row) {
                    let message = format!("{}: writing the temporary file: {e}", section.label);
                    return Err(self.rollback_with(message).await);
                }
            }
            let size = row.iter().map(|v| v.len() as u64).sum::<u64>();
            section.bytes += size;
            if self.args.dry_run {
                if let Err(e) = section.plan.convert(&row, section.received) {
                    return Err(self.rollback_with(format!("{}: {e}", section.label)).await);
                }
                continue;
            }
            section.pending_bytes += size;
            section.pending.push(row);
            if self.batch_full(section) {
                if let Err(failure) = self.insert_pending(section).await {
                    self.recover(section, failure).await?;
                }
            }
        }
        Ok(())
    }

    /// One multi-row INSERT of the pending rows.
    async fn insert_pending(&mut self, section: &mut Section) -> Result<(), Failure> {
        if section.pending.is_empty() {
            return Ok(());
        }
        let first = section.inserted + 1;
        let mut params = Vec::with_capacity(section.pending.len() * section.plan.columns.len());
        for (i, row) in section.pending.iter().enumerate() {
            params.extend(
                section
                    .plan
                    .convert(row, first + i as u64)
                    .map_err(Failure::Final)?,
            );
        }
        let n = section.pending.len();
        let sql = insert_sql(&section.plan.quoted, &section.plan.columns, n);
        let conn = self
            .conn
            .get()
            .await
            .map_err(|e| classify("connecting", e))?;
        match conn.exec_drop(sql, Params::Positional(params)).await {
            Ok(()) => {
                let affected = conn.affected_rows();
                if affected != n as u64 {
                    return Err(Failure::Final(format!(
                        "an INSERT of {n} rows reported {affected}"
                    )));
                }
                section.inserted += affected;
                section.pending.clear();
                section.pending_bytes = 0;
                Ok(())
            }
            Err(error) if is_transient(&error) => Err(Failure::Transient(
                format!("inserting {n} rows: {error}"),
                sqlstate(&error),
            )),
            Err(error) => {
                let text = error.to_string();
                // Strict mode names the offending row of the statement.
                let which = row_in_message(&text)
                    .and_then(|r| Some((r, section.pending.get(r.checked_sub(1)?)?)))
                    .map(|(r, row)| {
                        format!(" ({})", section.plan.describe(row, first + r as u64 - 1))
                    })
                    .unwrap_or_default();
                Err(Failure::Final(format!("inserting rows{which}: {text}")))
            }
        }
    }

    /// The end record: the last INSERT, the row count, COMMIT.
    async fn finish(
        &mut self,
        mut section: Section,
        end: SectionEnd,
    ) -> anyhow::Result<ResultRecord> {
        let status = if self.args.dry_run {
            if section.received != end.rows {
                let message = format!(
                    "{}: received {} rows but the section has {}",
                    section.label, section.received, end.rows
                );
                return Err(self.rollback_with(message).await);
            }
            "dry-run"
        } else {
            while let Err(failure) = self.commit(&mut section, &end).await {
                self.recover(&mut section, failure).await?;
            }
            // Counted when committed: the section is one transaction.
            molt_core::metrics::rows(&section.header.table, section.received, section.bytes);
            "ok"
        };
        Ok(ResultRecord {
            tool: "molt-load".into(),
            phase: section.header.slice.phase.clone(),
            table: section.header.table.clone(),
            shard: section.header.slice.shard.clone(),
            rows: section.received,
            bytes: section.bytes,
            digest: end.digest,
            seconds: section.started.elapsed().as_secs_f64(),
            status: status.into(),
            changes: end.changes,
            copy_format: None,
            reason: None,
        })
    }

    async fn commit(&mut self, section: &mut Section, end: &SectionEnd) -> Result<(), Failure> {
        self.insert_pending(section).await?;
        if section.inserted != end.rows || section.received != end.rows {
            return Err(Failure::Final(format!(
                "inserted {} rows but the section has {}",
                section.inserted, end.rows
            )));
        }
        let conn = self
            .conn
            .get()
            .await
            .map_err(|e| classify("connecting", e))?;
        conn.query_drop("COMMIT")
            .await
            .map_err(|e| classify(&format!("committing {} rows", end.rows), e))
    }

    /// The MySQL database a stream schema goes to: `--schema`, else the
    /// database of that name, else the URL's database.
    async fn database_for(&mut self, schema: &str) -> anyhow::Result<String> {
        if let Some(s) = &self.args.schema {
            return Ok(s.clone());
        }
        if let Some(db) = self.databases.get(schema) {
            return Ok(db.clone());
        }
        let found: Option<String> = retrying!(self, |c| c.exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (schema,)
        ))
        .context("looking up databases")?;
        let db = match (found, &self.url_database) {
            (Some(db), _) => db,
            (None, Some(db)) => {
                self.out.note(&format!(
                    "the stream's schema {schema} is not a database on the MySQL target; its tables go \
                     into the URL's database {db} (--schema NAME chooses another)"
                ));
                db.clone()
            }
            (None, None) => anyhow::bail!(
                "the stream's schema {schema} is not a database on the MySQL target and the URL names \
                 none: give the database in the URL or --schema NAME"
            ),
        };
        self.databases.insert(schema.to_string(), db.clone());
        Ok(db)
    }

    /// The existing MySQL table a stream table names (exact name first,
    /// else the one table whose name differs only in case).
    async fn mysql_table(&mut self, name: &TableName) -> anyhow::Result<TableName> {
        let db = self.database_for(&name.schema).await?;
        let found: Vec<String> = retrying!(self, |c| c.exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? \
             AND TABLE_TYPE = 'BASE TABLE' AND LOWER(TABLE_NAME) = LOWER(?)",
            (&db, &name.name)
        ))
        .context("looking up tables")?;
        let table = if found.contains(&name.name) {
            name.name.clone()
        } else if found.len() == 1 {
            found[0].clone()
        } else if found.is_empty() {
            return Err(ExitError::new(
                molt_core::exit::FAILURE,
                format!(
                    "table {} does not exist on the MySQL target: molt-load writes only into existing \
                     MySQL tables (the source's own) and never creates them",
                    TableName::new(db, name.name.clone())
                ),
            )
            .into());
        } else {
            anyhow::bail!(
                "{}: several tables of database {db} match in a different case ({})",
                name.name,
                found.join(", ")
            );
        };
        Ok(TableName::new(db, table))
    }

    async fn table_columns(&mut self, table: &TableName) -> anyhow::Result<Arc<Vec<TargetColumn>>> {
        if let Some(c) = self.columns.get(table) {
            return Ok(c.clone());
        }
        let rows: Vec<Row> = retrying!(self, |c| c.exec(COLUMNS_SQL, (&table.schema, &table.name)))
            .with_context(|| format!("reading the columns of {table}"))?;
        let columns = Arc::new(rows.iter().map(TargetColumn::from_row).collect::<Vec<_>>());
        self.columns.insert(table.clone(), columns.clone());
        Ok(columns)
    }

    /// Matches the stream's columns to the table's and builds the SQL.
    async fn plan(&mut self, header: &TableHeader, table: &TableName) -> anyhow::Result<Plan> {
        let columns = self.table_columns(table).await?;
        let mut writers = Vec::with_capacity(header.columns.len());
        for c in &header.columns {
            // MySQL column names are case-insensitive; the dump may have
            // lower-cased them.
            let target = columns.iter().find(|t| t.name == c.name).or_else(|| {
                columns
                    .iter()
                    .find(|t| t.name.eq_ignore_ascii_case(&c.name))
            });
            let Some(target) = target else {
                let names: Vec<&str> = columns.iter().map(|t| t.name.as_str()).collect();
                anyhow::bail!(
                    "column {} of the stream is not a column of {table} (its columns: {})",
                    c.name,
                    names.join(", ")
                );
            };
            if target.generated {
                writers.push(None);
                continue;
            }
            writers.push(Some(
                ColumnWriter::new(c, target)
                    .map_err(|e| anyhow::anyhow!("column {}: {e}", c.name))?,
            ));
        }
        let names: Vec<String> = writers.iter().flatten().map(|w| w.name.clone()).collect();
        if names.is_empty() {
            anyhow::bail!("the stream has no column of {table} that can be written");
        }
        let quoted = format!(
            "{}.{}",
            quote_mysql(&table.schema),
            quote_mysql(&table.name)
        );
        let (predicate, delete_params) = section_predicate(header, |name| {
            let i = header.columns.iter().position(|c| c.name == name)?;
            writers[i].clone()
        })
        .map_err(|e| anyhow::anyhow!(e))?;
        let mut delete_sql = format!("DELETE FROM {quoted}");
        if let Some(p) = predicate {
            delete_sql.push_str(" WHERE ");
            delete_sql.push_str(&p);
        }
        let mut key: Vec<(usize, u16, String)> = header
            .columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.pk.map(|p| (i, p, c.name.clone())))
            .collect();
        key.sort_by_key(|(_, p, _)| *p);
        Ok(Plan {
            rows_per_insert: rows_per_insert(names.len(), self.args.batch_rows),
            quoted,
            writers,
            columns: names,
            delete_sql,
            delete_params,
            key: key.into_iter().map(|(i, _, n)| (i, n)).collect(),
        })
    }
}
