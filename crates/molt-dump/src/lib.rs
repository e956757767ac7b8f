//! molt-dump: read slices from the source in one consistent snapshot and
//! stream their schema and rows.
//!
//! Slices come from stdin (molt-slice's output) or from `--table` flags; the
//! engine is chosen by the source URL's scheme. Each engine module turns the
//! slices into stream sections (a `table` header, rows, an `end` record)
//! read in parallel and written whole, one after another, on stdout.
//!
//! The binary is a one-line `main` over [`run`]; the command-line
//! definition is [`command`], shared with the man page and completions.

pub mod mysql;
mod postgres;
mod slices;

use std::ffi::OsString;

use anyhow::Context;
use clap::Parser;
use molt_core::exit::{ExitError, USAGE};
use molt_core::{ConnUrl, Engine};

pub use slices::{glob_match, has_glob};

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The molt stream (NDJSON), for molt-load and molt-verify.
    Ndjson,
    /// RFC 4180 CSV with a header row, NULL as `\N`; one table and shard only.
    Csv,
}

/// Command-line options of molt-dump.
///
/// Slices given with `--table` (or `--all`) may hold glob table names
/// (`public.*`) and an empty schema (`--table orders`): each engine expands
/// globs against its catalog and fills in its default schema (PostgreSQL:
/// `--schema`, default `public`; MySQL: the URL's database).
#[derive(Debug, Parser)]
#[command(
    name = "molt-dump",
    version,
    about = "Read slices from the source in one consistent snapshot and stream their schema and rows",
    after_help = "Examples:\n  molt-dump --source postgres://app@db/shop --table public.orders --filter \"region = 'A'\" > orders.ndjson\n  molt-slice plan --plan phases.toml --phase A | molt-dump --source env:SRC --jobs 8 | molt-load --target env:DST\n  molt-dump --source postgres://app@db/shop --all --schema public > shop.ndjson\n\nExit codes: 0 success, 1 failure, 2 usage error (see docs/exit-codes.md)."
)]
pub struct Args {
    /// Source database URL (postgres://, mysql://); `env:VAR` and `file:PATH` read it from elsewhere.
    #[arg(long, env = "MOLT_SOURCE", hide_env_values = true, value_name = "URL")]
    pub source: Option<String>,
    /// Table to dump (repeatable); a glob such as `public.*` is allowed. Without it, slice records are read from stdin.
    #[arg(long = "table", value_name = "SCHEMA.TABLE")]
    pub tables: Vec<String>,
    /// SQL boolean expression in the source's dialect selecting the rows of --table/--all (pasted as-is).
    #[arg(long, value_name = "SQL")]
    pub filter: Option<String>,
    /// Phase name recorded in the slices built from --table/--all.
    #[arg(long, value_name = "NAME")]
    pub phase: Option<String>,
    /// With no --table and no slices on stdin: dump every table of --schema.
    #[arg(long)]
    pub all: bool,
    /// Default schema for unqualified table names and --all (PostgreSQL: public; MySQL: the URL's database).
    #[arg(long, value_name = "SCHEMA")]
    pub schema: Option<String>,
    /// Sections read in parallel, each on its own connection.
    #[arg(long, short = 'j', default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Ndjson)]
    pub format: Format,
    /// Memory (MB) each waiting section may use before spilling to a temp file.
    #[arg(long, default_value_t = 4, value_name = "MB")]
    pub spill_memory_mb: usize,
    /// No per-section progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

impl Args {
    /// Memory a buffered section keeps before spilling, in bytes.
    pub fn spill_memory(&self) -> usize {
        self.spill_memory_mb.max(1) * 1024 * 1024
    }
}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// Runs molt-dump with the given arguments (program name first).
pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<i32> {
    let args = Args::parse_from(args);
    let Some(raw_source) = args.source.as_deref() else {
        return Err(
            ExitError::new(USAGE, "no source: give --source URL or set MOLT_SOURCE").into(),
        );
    };
    let source = ConnUrl::resolve(raw_source).context("--source")?;
    let slices = slices::collect(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        // Writing the stream blocks the writing worker while the consumer
        // catches up; extra threads keep the other connections moving.
        .worker_threads(usize::from(args.jobs) + 2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        match source.engine() {
            Engine::Postgres => postgres::dump(&args, &source, slices).await,
            Engine::Mysql => mysql::dump(&args, &source, slices).await,
            Engine::Oracle => oracle(),
        }
    })
}

#[cfg(not(feature = "oracle"))]
fn oracle() -> anyhow::Result<i32> {
    anyhow::bail!("Oracle sources need molt built with the oracle feature (cargo build --features oracle): built without the oracle feature")
}

#[cfg(feature = "oracle")]
fn oracle() -> anyhow::Result<i32> {
    anyhow::bail!("Oracle sources are not supported by molt-dump yet")
}

/// stdout as a plain file: the stream is written in large blocks, so the
/// line buffering of `std::io::Stdout` would only add copies.
pub fn stdout_file() -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsFd;
    let fd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .context("opening stdout")?;
    Ok(std::fs::File::from(fd))
}
