//! molt-verify: Compare a slice on the source with the target, row by row
//!
//! The binary is a one-line `main` over [`run`]; the command-line
//! definition is [`command`], shared with the man page and completions.
//!
//! The comparison itself lives in `molt_core::verify`, next to the readers
//! it reuses; this crate decides what to compare (slices from stdin or the
//! command line, [`units`]), connects ([`sides`]), runs each table
//! ([`table`]) and writes the report records ([`output`]).

#[cfg(feature = "oracle")]
mod oracle;
mod output;
mod sides;
mod table;
mod throttle;
mod units;

use std::ffi::OsString;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use molt_core::exit;
use molt_core::ConnUrl;

/// Command-line options of molt-verify.
#[derive(Debug, Parser)]
#[command(
    name = "molt-verify",
    version,
    about = "Compare a slice on the source with the target, row by row",
    after_help = "Reads slice records (molt-slice output) on stdin, or compares the --table given on the \
command line. Writes NDJSON report records on stdout: one per differing row, one table_summary per \
table, one final summary.\n\nExamples:\n  molt-verify --source $SRC --target $TGT --table public.orders --filter \"region = 'A'\"\n  \
molt-slice plan --plan phases.toml --phase A --source $SRC | molt-verify --source $SRC --target $TGT --exclude 'audit_*'\n\n\
Exit codes: 0 no differences, 1 failure (including a lost connection), 2 usage error, 3 differences found \
(see docs/exit-codes.md and docs/verify.md)."
)]
pub struct Args {
    #[command(flatten)]
    pub diag: molt_core::diag::DiagArgs,
    #[command(flatten)]
    pub metrics: molt_core::metrics::MetricsArgs,
    /// Source URL (postgres://, mysql://, oracle:// with the `oracle` build feature), or env:VAR / file:PATH.
    #[arg(long, env = "MOLT_SOURCE", hide_env_values = true)]
    pub source: String,
    /// Target URL (postgresql:// or cockroachdb://), or env:VAR / file:PATH.
    #[arg(long, env = "MOLT_TARGET", hide_env_values = true)]
    pub target: String,
    /// A table to compare (`schema.table`, or `table` in the default
    /// schema / the URL's database); repeatable. Without it, slice records
    /// are read from stdin.
    #[arg(long = "table", value_name = "TABLE")]
    pub tables: Vec<String>,
    /// Leave out tables matching this glob (`audit_*` in any schema,
    /// `public.tmp_*` in one) among the slices read or the tables given
    /// (repeatable)
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Leave out tables whose whole `schema.table` matches this regular
    /// expression, e.g. '.*_(tmp|old)' (repeatable)
    #[arg(long = "exclude-regex", value_name = "REGEX")]
    pub exclude_regexes: Vec<String>,
    /// Row filter on the source (SQL in the source's dialect).
    #[arg(long, requires = "tables")]
    pub filter: Option<String>,
    /// Row filter on the target, when it differs from --filter (a table
    /// shared by phases: rows of other phases are then neither missing nor
    /// extraneous).
    #[arg(long, requires = "tables")]
    pub target_filter: Option<String>,
    /// Phase name: reported, and each table's result is recorded in the
    /// ledger on the target, where `molt-cutover switch` checks it. Slice
    /// records on stdin carry their own phase; this one applies to those
    /// that have none.
    #[arg(long)]
    pub phase: Option<String>,
    /// Schema of the ledger on the target.
    #[arg(long, default_value = "_molt", value_name = "NAME")]
    pub ledger_schema: String,
    /// MySQL: the type-map file molt-dump was given (see docs/type-mapping.md), so that a
    /// column overridden to UUID or BOOL is compared as one. Without it, the overrides are
    /// taken from the headers molt-load stored in the ledger.
    #[arg(long, value_name = "FILE")]
    pub type_map: Option<std::path::PathBuf>,
    /// Schema the tables are in on the target (default: the source schema
    /// for PostgreSQL, `public` for MySQL).
    #[arg(long)]
    pub target_schema: Option<String>,
    /// MySQL source: keep table and column names as they are instead of
    /// lower-casing them (must match how molt-dump was run).
    #[arg(long)]
    pub keep_case: bool,
    /// Rows per chunk hashed inside the databases (PostgreSQL-protocol
    /// source and target).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_rows: u64,
    /// Compare every row in the client instead of hashing chunks inside the
    /// databases first (slower; for a second opinion).
    #[arg(long)]
    pub no_hash: bool,
    /// MySQL source: have MySQL send each row's canonical text and hash it
    /// in the client, instead of hashing inside MySQL (MySQL's MD5 is slow:
    /// faster when the client has CPU to spare and the network is fast; the
    /// target still hashes in SQL). Tables with JSON always do this.
    #[arg(long, conflicts_with = "no_hash")]
    pub hash_rows_in_client: bool,
    /// Row-level report records per table at most (counts stay exact).
    #[arg(long, default_value_t = 1000)]
    pub max_report_rows: u64,
    /// Floats within this relative difference compare equal (default:
    /// exact; a last-bit difference is a difference).
    #[arg(long, value_name = "REL")]
    pub float_tolerance: Option<f64>,
    /// The source still takes writes: re-check differing chunks after a
    /// backoff before reporting them.
    #[arg(long)]
    pub live: bool,
    /// Re-checks of a differing chunk in --live mode.
    #[arg(long, default_value_t = 3)]
    pub live_retries: u32,
    /// Wait before each re-check, in milliseconds (doubling each time).
    #[arg(long, default_value_t = 1000)]
    pub live_backoff_ms: u64,
    /// Tables compared at once, each job on its own source and target
    /// connections (MOLT Verify's default is 16; a busy production source
    /// may want fewer). Reports still come table by table, in order.
    #[arg(long, short = 'j', default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Read at most this many source rows per second, all jobs together,
    /// averaged over chunks: a throttle for a production source (0: none).
    #[arg(long, value_name = "ROWS", default_value_t = 0)]
    pub rows_per_second: u64,
}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// Options the table comparison needs.
#[derive(Clone, Debug)]
pub struct Options {
    pub chunk_rows: u64,
    pub no_hash: bool,
    pub hash_rows_in_client: bool,
    pub max_report_rows: u64,
    pub float_tolerance: Option<f64>,
    pub live_retries: u32,
    pub live_backoff_ms: u64,
    pub target_schema: Option<String>,
    pub keep_case: bool,
    /// `--type-map`, when given.
    pub type_map: Option<molt_core::mysql::typemap::TypeMap>,
    pub ledger_schema: String,
    /// `--rows-per-second`, shared by every job.
    pub throttle: Option<std::sync::Arc<throttle::Throttle>>,
}

/// Runs molt-verify with the given arguments (program name first).
pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<i32> {
    let args = match Args::try_parse_from(args) {
        Ok(a) => {
            molt_core::diag::set_format(a.diag.log_format);
            a
        }
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            };
            let _ = e.print();
            return Ok(code);
        }
    };
    // Before any work: a port in use fails the run before a row is read.
    if let Some(addr) = args.metrics.start("molt-verify")? {
        molt_core::info!("metrics on http://{addr}/metrics");
    }
    if let Some(t) = args.float_tolerance {
        if !(t.is_finite() && t >= 0.0) {
            return Err(exit::ExitError::new(
                exit::USAGE,
                "--float-tolerance must be a non-negative number",
            )
            .into());
        }
    }
    let source = ConnUrl::resolve(&args.source).context("--source")?;
    if source.engine() == molt_core::Engine::Oracle && !cfg!(feature = "oracle") {
        anyhow::bail!(molt_core::oracle::built_without_oracle("molt-verify"));
    }
    let target = ConnUrl::resolve(&args.target).context("--target")?;
    let options = Options {
        chunk_rows: args.chunk_rows,
        no_hash: args.no_hash,
        hash_rows_in_client: args.hash_rows_in_client,
        max_report_rows: args.max_report_rows,
        float_tolerance: args.float_tolerance,
        live_retries: if args.live { args.live_retries } else { 0 },
        live_backoff_ms: args.live_backoff_ms,
        target_schema: args.target_schema.clone(),
        keep_case: args.keep_case,
        type_map: match &args.type_map {
            Some(path) => {
                if source.engine() != molt_core::Engine::Mysql {
                    return Err(exit::ExitError::new(
                        exit::USAGE,
                        "--type-map is for MySQL sources (the file molt-dump was given)",
                    )
                    .into());
                }
                Some(molt_core::mysql::typemap::TypeMap::load(path).context("--type-map")?)
            }
            None => None,
        },
        ledger_schema: args.ledger_schema.clone(),
        throttle: throttle::Throttle::new(args.rows_per_second).map(std::sync::Arc::new),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.jobs).clamp(2, 8))
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(verify(&args, source, target, options))
}

async fn verify(
    args: &Args,
    source: ConnUrl,
    target: ConnUrl,
    options: Options,
) -> anyhow::Result<i32> {
    let started = Instant::now();
    let exclusions = molt_core::select::Exclusions::new(
        &args.excludes,
        &args.exclude_regexes,
        "--exclude/--exclude-regex",
    )
    .map_err(|e| exit::ExitError::new(exit::USAGE, e.to_string()))?;
    let mut out = output::Output::new();
    let sides = sides::Sides::connect(&source, &target).await?;
    let mut units = if args.tables.is_empty() {
        units::from_stdin(sides.default_schema())?
    } else {
        units::from_args(args, sides.default_schema())
    };
    let before = units.len();
    for table in exclusions.retain(&mut units, |u| &u.table) {
        let pattern = exclusions.excluding(&table).unwrap_or_default();
        molt_core::info!("{table}: excluded by {pattern:?}");
    }
    if units.is_empty() && before > 0 {
        return Err(exit::ExitError::new(
            exit::USAGE,
            "nothing to verify: --exclude/--exclude-regex left out every table",
        )
        .into());
    }
    if let Some(phase) = &args.phase {
        for unit in units.iter_mut().filter(|u| u.phase.is_empty()) {
            unit.phase = phase.clone();
        }
    }
    if units.is_empty() {
        return Err(exit::ExitError::new(
            exit::USAGE,
            "nothing to verify: no --table given and no slice records on stdin",
        )
        .into());
    }
    let jobs = usize::from(args.jobs).min(units.len()).max(1);
    let mut pool = vec![sides];
    let more = (1..jobs).map(|_| sides::Sides::connect(&source, &target));
    pool.extend(futures_util::future::try_join_all(more).await?);
    let (tables, differences) =
        compare_all(pool, units, options, &args.ledger_schema, &mut out).await?;
    out.summary(tables, differences, started.elapsed().as_secs_f64())?;
    Ok(if differences == 0 {
        exit::SUCCESS
    } else {
        exit::DIFFERENCES
    })
}

/// Compares `units` on the connections of `pool`, one job per entry, and
/// writes each table's records whole, in the order of `units`, as soon as
/// it and every table before it are done. Each job records its table's
/// result in the ledger. Returns the tables compared and the differences.
async fn compare_all(
    pool: Vec<sides::Sides>,
    units: Vec<units::Unit>,
    options: Options,
    ledger_schema: &str,
    out: &mut output::Output,
) -> anyhow::Result<(u64, u64)> {
    use std::collections::{BTreeMap, VecDeque};
    use std::sync::{Arc, Mutex};

    type Done = anyhow::Result<(table::TableOutcome, Vec<u8>)>;
    let total = units.len();
    let queue = Arc::new(Mutex::new(
        units.into_iter().enumerate().collect::<VecDeque<_>>(),
    ));
    let options = Arc::new(options);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, Done)>(pool.len());
    let mut workers = tokio::task::JoinSet::new();
    for mut sides in pool {
        let (queue, options, tx) = (queue.clone(), options.clone(), tx.clone());
        let ledger_schema = ledger_schema.to_string();
        workers.spawn(async move {
            loop {
                let next = queue.lock().expect("the queue lock").pop_front();
                let Some((index, unit)) = next else { break };
                let done = compare_one(&mut sides, &unit, &options, &ledger_schema).await;
                if tx.send((index, done)).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let (mut tables, mut differences) = (0u64, 0u64);
    let mut finished: BTreeMap<usize, (table::TableOutcome, Vec<u8>)> = BTreeMap::new();
    let mut next = 0;
    while let Some((index, done)) = rx.recv().await {
        // The first failure ends the run; the other jobs are dropped with
        // the runtime.
        finished.insert(index, done?);
        while let Some((outcome, records)) = finished.remove(&next) {
            out.table_records(&records)?;
            tables += 1;
            differences += outcome.differences();
            next += 1;
        }
    }
    if next != total {
        anyhow::bail!("a verify job stopped before its tables were compared");
    }
    Ok((tables, differences))
}

/// One table on one job's connections: its records, and its result in the
/// ledger when it belongs to a phase.
async fn compare_one(
    sides: &mut sides::Sides,
    unit: &units::Unit,
    options: &Options,
    ledger_schema: &str,
) -> anyhow::Result<(table::TableOutcome, Vec<u8>)> {
    let table_started = std::time::SystemTime::now();
    let mut records = output::Output::in_memory();
    let summary = table::verify_table(sides, unit, options, &mut records)
        .await
        .with_context(|| format!("verifying {}", unit.table))?;
    if !unit.phase.is_empty() {
        let result = molt_core::ledger::VerifyResult {
            phase: unit.phase.clone(),
            table: unit.table.clone(),
            source_rows: summary.tally.source_rows,
            target_rows: summary.tally.target_rows,
            differences: summary.differences(),
            ok: summary.differences() == 0,
            started_at: table_started,
            finished_at: std::time::SystemTime::now(),
        };
        molt_core::ledger::record_verify_result(&sides.target.client, ledger_schema, &result)
            .await
            .with_context(|| format!("recording the result of {} in the ledger", unit.table))?;
    }
    Ok((summary, records.into_records()?))
}
