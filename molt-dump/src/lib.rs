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
#[cfg(feature = "oracle")]
mod oracle;
mod postgres;
mod slices;

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use molt_core::exit::{ExitError, USAGE};
use molt_core::mysql::ZeroDates;
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
    long_about = None,
    about = "Read slices from the source in one consistent snapshot and stream their schema and rows",
    after_help = "Examples:\n  molt-dump --source postgres://app@db/shop --table public.orders --filter \"region = 'A'\" > orders.ndjson\n  molt-slice plan --plan phases.toml --phase A | molt-dump --source env:SRC --jobs 8 | molt-load --target env:DST\n  molt-dump --source postgres://app@db/shop --all --schema public > shop.ndjson\n  molt-dump --source postgres://app@db/shop --all --exclude 'audit_*' --exclude-regex '.*_(tmp|old)' > shop.ndjson\n  molt-dump --source mysql://app@db/shop --all --type-map types.toml --target-schema shop | molt-load --target env:DST\n\nExit codes: 0 success, 1 failure, 2 usage error (see docs/exit-codes.md)."
)]
pub struct Args {
    #[command(flatten)]
    pub diag: molt_core::diag::DiagArgs,
    #[command(flatten)]
    pub metrics: molt_core::metrics::MetricsArgs,
    /// Source database URL (postgres://, mysql://, oracle:// with the `oracle` build feature); `env:VAR` and `file:PATH` read it from elsewhere.
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
    /// Leave out tables matching this glob, after --table, --all and the
    /// slices on stdin are expanded: `audit_*` in any schema,
    /// `public.tmp_*` in one (repeatable)
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Leave out tables whose whole `schema.table` matches this regular
    /// expression, e.g. '.*_(tmp|old)' (repeatable)
    #[arg(long = "exclude-regex", value_name = "REGEX")]
    pub exclude_regexes: Vec<String>,
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
    /// MySQL: what to do with zero and invalid dates (`0000-00-00`, `2020-02-30`), which no
    /// target type can hold. `null` writes NULL and counts each change in the section's `end`
    /// record (a NOT NULL column is an error unless the type map makes it nullable); `error`
    /// stops at the first one, naming table, column and primary key. [default: null]
    #[arg(long, value_name = "null|error", value_parser = zero_dates_parser(), help_heading = "MySQL sources")]
    pub zero_dates: Option<ZeroDates>,
    /// MySQL: per-column target-type overrides, TOML (or JSON for a `.json` file), e.g.
    /// `[[column]] table = "users" column = "active" target_type = "BOOL"`; also UUID for
    /// BINARY(16)/CHAR(36) and `nullable = true`. See docs/type-mapping.md.
    #[arg(long, value_name = "FILE", help_heading = "MySQL sources")]
    pub type_map: Option<PathBuf>,
    /// MySQL: keep table and column names as spelled on the source (`CamelCase`) instead of
    /// lower-casing them; the target then needs them quoted.
    #[arg(long, help_heading = "MySQL sources")]
    pub keep_case: bool,
    /// MySQL and Oracle: the target schema every table lands in. [default: MySQL public;
    /// Oracle the owner's name, lower-cased when unquoted]
    #[arg(long, value_name = "NAME", help_heading = "MySQL sources")]
    pub target_schema: Option<String>,
    /// Oracle: truncate TIMESTAMP and INTERVAL values with digits below the microsecond
    /// (which the target cannot hold) instead of failing on them; each is counted in the
    /// section's `end` record under `truncate-nanoseconds`. See docs/oracle.md.
    #[arg(long, help_heading = "Oracle sources")]
    pub allow_rounding: bool,
    /// Oracle: map RAW(16) columns to UUID (the usual storage of SYS_GUID() values)
    /// instead of BYTEA.
    #[arg(long = "raw16-as-uuid", help_heading = "Oracle sources")]
    pub raw16_as_uuid: bool,
}

/// `--zero-dates`: the two policy names, listed in `--help` and checked by clap.
fn zero_dates_parser() -> impl clap::builder::TypedValueParser<Value = ZeroDates> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["null", "error"])
        .map(|s| s.parse::<ZeroDates>().expect("clap checked the name"))
}

impl Args {
    /// The tables `--exclude` and `--exclude-regex` leave out.
    pub fn exclusions(&self) -> Result<molt_core::select::Exclusions, ExitError> {
        molt_core::select::Exclusions::new(
            &self.excludes,
            &self.exclude_regexes,
            "--exclude/--exclude-regex",
        )
        .map_err(|e| ExitError::new(USAGE, e.to_string()))
    }

    /// Memory a buffered section keeps before spilling, in bytes.
    pub fn spill_memory(&self) -> usize {
        self.spill_memory_mb.max(1) * 1024 * 1024
    }

    /// The engine-specific flags given on the command line that `engine`
    /// does not take, grouped by the sources they are for, for refusing
    /// them rather than ignoring them: `(flags, "MySQL")`.
    pub fn foreign_flags(&self, engine: Engine) -> Vec<(Vec<&'static str>, &'static str)> {
        type Group<'a> = (&'a [(bool, &'static str)], &'a [Engine], &'static str);
        let groups: [Group; 3] = [
            (
                &[
                    (self.zero_dates.is_some(), "--zero-dates"),
                    (self.type_map.is_some(), "--type-map"),
                    (self.keep_case, "--keep-case"),
                ],
                &[Engine::Mysql],
                "MySQL",
            ),
            (
                &[(self.target_schema.is_some(), "--target-schema")],
                &[Engine::Mysql, Engine::Oracle],
                "MySQL and Oracle",
            ),
            (
                &[
                    (self.allow_rounding, "--allow-rounding"),
                    (self.raw16_as_uuid, "--raw16-as-uuid"),
                ],
                &[Engine::Oracle],
                "Oracle",
            ),
        ];
        groups
            .into_iter()
            .filter(|(_, engines, _)| !engines.contains(&engine))
            .map(|(flags, _, name)| {
                let given: Vec<&'static str> = flags
                    .iter()
                    .filter_map(|(given, flag)| given.then_some(*flag))
                    .collect();
                (given, name)
            })
            .filter(|(given, _)| !given.is_empty())
            .collect()
    }
}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// Runs molt-dump with the given arguments (program name first).
pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<i32> {
    let args = Args::parse_from(args);
    molt_core::diag::set_format(args.diag.log_format);
    // Before any work: a port in use fails the run before a row moves.
    if let Some(addr) = args.metrics.start("molt-dump")? {
        if !args.quiet {
            molt_core::info!("metrics on http://{addr}/metrics");
        }
    }
    let Some(raw_source) = args.source.as_deref() else {
        return Err(
            ExitError::new(USAGE, "no source: give --source URL or set MOLT_SOURCE").into(),
        );
    };
    let source = ConnUrl::resolve(raw_source).context("--source")?;
    if source.engine() == Engine::Oracle && !cfg!(feature = "oracle") {
        anyhow::bail!(molt_core::oracle::built_without_oracle("molt-dump"));
    }
    let foreign = args.foreign_flags(source.engine());
    if !foreign.is_empty() {
        let groups: Vec<String> = foreign
            .iter()
            .map(|(flags, sources)| format!("{}: for {sources} sources only", flags.join(", ")))
            .collect();
        return Err(ExitError::new(
            USAGE,
            format!(
                "{}, but --source is a {} URL",
                groups.join("; "),
                source.engine()
            ),
        )
        .into());
    }
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
            #[cfg(feature = "oracle")]
            Engine::Oracle => oracle::dump(&args, &source, slices).await,
            #[cfg(not(feature = "oracle"))]
            Engine::Oracle => unreachable!("refused above without the oracle feature"),
        }
    })
}

/// stdout as a plain file: the stream is written in large blocks, so the
/// line buffering of `std::io::Stdout` would only add copies.
pub fn stdout_file() -> anyhow::Result<molt_core::exit::Stdout<std::fs::File>> {
    use std::os::fd::AsFd;
    let fd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .context("opening stdout")?;
    Ok(molt_core::exit::Stdout(std::fs::File::from(fd)))
}
