//! molt-slice: turn a phase plan into slice records, and prove the plan.
//!
//! `plan` prints one slice record per (phase, table, shard) for molt-dump;
//! `audit` proves on the live source that every row belongs to exactly one
//! phase and that no phase references rows of a later one; `estimate` sizes
//! each phase and projects its downtime window. The plan format is
//! documented in `docs/phase-plan.md`.

mod audit;
#[cfg(feature = "oracle")]
mod oracle;
mod plan;
mod shard;
mod source;

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use molt_core::exit;
use molt_core::stream::{Record, Slice, StreamWriter, TableName};
use molt_core::ConnUrl;

pub use plan::{glob_match, Plan, PlanFile};

/// Command-line options of molt-slice.
#[derive(Debug, Parser)]
#[command(
    name = "molt-slice",
    version,
    about = "Turn a phase plan into slice records, and audit that every row belongs to exactly one phase",
    after_help = "Examples:\n  molt-slice plan --plan phases.toml --phase A --source $SRC | molt-dump | molt-load\n  molt-slice audit --plan phases.toml --source $SRC\n  molt-slice plan --plan phases.toml --phase A --exclude 'audit_*' --exclude-regex '.*_(tmp|old)'\n\nExit codes: 0 success, 1 failure, 2 usage error, 3 audit found rows outside the plan (see docs/exit-codes.md)."
)]
pub struct Args {
    #[command(flatten)]
    pub diag: molt_core::diag::DiagArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand shares.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// The phase plan (TOML, see docs/phase-plan.md).
    #[arg(long, value_name = "FILE")]
    pub plan: PathBuf,
    /// Source database URL; `env:VAR` and `file:PATH` read it from elsewhere.
    #[arg(long, env = "MOLT_SOURCE", hide_env_values = true, value_name = "URL")]
    pub source: String,
    /// Leave out tables matching this glob in every phase, beside the plan's
    /// `exclude`: `audit_*` in any schema, `public.tmp_*` in one (repeatable)
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Leave out tables whose whole `schema.table` matches this regular
    /// expression, e.g. '.*_(tmp|old)' (repeatable)
    #[arg(long = "exclude-regex", value_name = "REGEX")]
    pub exclude_regexes: Vec<String>,
}

impl Common {
    fn exclusions(&self) -> anyhow::Result<molt_core::select::Exclusions> {
        molt_core::select::Exclusions::new(
            &self.excludes,
            &self.exclude_regexes,
            "--exclude/--exclude-regex",
        )
        .map_err(|e| molt_core::exit::ExitError::new(molt_core::exit::USAGE, e.to_string()).into())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print slice records for one phase, several, or all.
    Plan {
        #[command(flatten)]
        common: Common,
        /// Phase to print (repeatable); all phases when omitted.
        #[arg(long)]
        phase: Vec<String>,
        /// Target rows per shard; 0 disables sharding.
        #[arg(long, default_value_t = 500_000)]
        shard_rows: u64,
        /// Find shard boundaries from a sample of this percentage of each table.
        #[arg(long, value_name = "PERCENT")]
        sample_percent: Option<f64>,
        /// MySQL and Oracle sources: the target schema the tables land in (as
        /// molt-dump --target-schema), for `via` filters run on the target.
        /// [default: MySQL public; Oracle each owner's name, lower-cased when unquoted]
        #[arg(long, value_name = "NAME")]
        target_schema: Option<String>,
        /// MySQL sources: names keep their case on the target (as molt-dump --keep-case).
        #[arg(long)]
        keep_case: bool,
    },
    /// Prove on the live source that the plan is disjoint and exhaustive.
    Audit {
        #[command(flatten)]
        common: Common,
        /// Sample primary keys to print per finding.
        #[arg(long, default_value_t = 5)]
        samples: u64,
        /// Do not fail on source tables that no phase mentions.
        #[arg(long)]
        allow_unplanned: bool,
    },
    /// Rows and bytes per phase, table and shard, and the projected window.
    Estimate {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        phase: Vec<String>,
        #[arg(long, default_value_t = 500_000)]
        shard_rows: u64,
        /// molt-load result records from an earlier run, for throughput.
        #[arg(long, value_name = "FILE")]
        throughput: Option<PathBuf>,
    },
}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// Runs molt-slice with the given arguments (program name first).
pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<i32> {
    let args = Args::parse_from(args);
    molt_core::diag::set_format(args.diag.log_format);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))
}

async fn connect(common: &Common) -> anyhow::Result<(source::Source, Plan)> {
    let file = PlanFile::read(&common.plan)?;
    let url = ConnUrl::resolve(&common.source)?;
    let exclusions = common.exclusions()?;
    let mut source = source::Source::connect(&url).await?;
    let plan = Plan::resolve(file, &mut source, exclusions).await?;
    Ok((source, plan))
}

async fn run_async(args: Args) -> anyhow::Result<i32> {
    match args.command {
        Command::Plan {
            common,
            phase,
            shard_rows,
            sample_percent,
            target_schema,
            keep_case,
        } => {
            let (mut source, plan) = connect(&common).await?;
            let naming = match source.engine() {
                molt_core::Engine::Mysql => plan::TargetNaming {
                    schema: Some(target_schema.unwrap_or_else(|| "public".into())),
                    keep_case,
                    oracle: false,
                },
                molt_core::Engine::Oracle => plan::TargetNaming::oracle(target_schema),
                _ => plan::TargetNaming::identity(),
            };
            let method = sample_percent.map_or(shard::Method::Exact, shard::Method::Sample);
            let mut out = StreamWriter::new(molt_core::exit::stdout());
            out.record(&molt_core::stream::header("molt-slice", None))?;
            for phase in plan.select(&phase)? {
                for entry in &phase.entries {
                    let predicate = phase.predicate(&entry.table, &source)?;
                    let key = source.primary_key(&entry.table).await?;
                    if key.is_empty() {
                        molt_core::warn!("{} has no primary key: one shard", entry.table);
                    }
                    let sharding = shard::shard_slice(
                        &mut source,
                        &entry.table,
                        &key,
                        predicate.as_deref(),
                        shard_rows,
                        method,
                    )
                    .await?;
                    for (shard, _) in sharding.shards {
                        out.record(&Record::Slice(Slice {
                            phase: phase.name.clone(),
                            table: entry.table.clone(),
                            filter: predicate.clone(),
                            target_filter: phase.target_predicate(&entry.table, &naming)?,
                            shard,
                        }))?;
                    }
                    out.maybe_flush()?;
                }
            }
            out.record(&molt_core::stream::close())?;
            out.flush()?;
            Ok(exit::SUCCESS)
        }
        Command::Audit {
            common,
            samples,
            allow_unplanned,
        } => {
            let (mut source, plan) = connect(&common).await?;
            let mut out = molt_core::exit::stdout();
            let mut problems = 0u64;
            let planned = plan.tables();
            let mut schemas: Vec<String> = planned.iter().map(|t| t.schema.clone()).collect();
            schemas.dedup();
            for schema in &schemas {
                for table in source.tables(schema).await? {
                    if let Some(pattern) = plan.exclusions.excluding(&table) {
                        writeln!(
                            out,
                            "{}",
                            serde_json::json!({"type":"report","kind":"audit_excluded_table","table":table,"pattern":pattern,"ok":true})
                        )?;
                        continue;
                    }
                    if !planned.contains(&table) {
                        if !allow_unplanned {
                            problems += 1;
                        }
                        writeln!(
                            out,
                            "{}",
                            serde_json::json!({"type":"report","kind":"audit_unplanned_table","table":table,"ok":allow_unplanned})
                        )?;
                        molt_core::info!("{table}: no phase mentions this table");
                    }
                }
            }
            for table in &planned {
                let result = audit::audit_table(&mut source, &plan, table, samples).await?;
                if !result.ok() {
                    problems += 1;
                    molt_core::info!(
                        "{table}: {} rows in no phase, {} in several, {} with a NULL filter (of {})",
                        result.unmatched, result.overlapping, result.null_filter, result.rows
                    );
                }
                writeln!(out, "{}", result.report(table))?;
            }
            for fk in audit::audit_foreign_keys(&mut source, &plan, samples).await? {
                if fk.rows > 0 {
                    problems += 1;
                    molt_core::info!(
                        "{}: {} rows of phase {} reference {} rows of the later phase {} (constraint {})",
                        fk.child, fk.rows, fk.from_phase, fk.parent, fk.to_phase, fk.constraint
                    );
                }
                writeln!(out, "{}", fk.report())?;
            }
            writeln!(
                out,
                "{}",
                serde_json::json!({"type":"report","kind":"audit_summary","problems":problems,"ok":problems == 0})
            )?;
            out.flush()?;
            if problems == 0 {
                molt_core::info!(
                    "audit passed: every row of {} tables belongs to exactly one phase",
                    planned.len()
                );
                Ok(exit::SUCCESS)
            } else {
                Ok(exit::DIFFERENCES)
            }
        }
        Command::Estimate {
            common,
            phase,
            shard_rows,
            throughput,
        } => {
            let (mut source, plan) = connect(&common).await?;
            let rate = match throughput {
                Some(path) => Some(read_throughput(&path)?),
                None => None,
            };
            let mut out = molt_core::exit::stdout();
            for phase in plan.select(&phase)? {
                let (mut phase_rows, mut phase_bytes) = (0u64, 0f64);
                for entry in &phase.entries {
                    let predicate = phase.predicate(&entry.table, &source)?;
                    let key = source.primary_key(&entry.table).await?;
                    let sharding = shard::shard_slice(
                        &mut source,
                        &entry.table,
                        &key,
                        predicate.as_deref(),
                        shard_rows,
                        shard::Method::Exact,
                    )
                    .await?;
                    let row_bytes = source.average_row_bytes(&entry.table).await?;
                    for (shard, rows) in &sharding.shards {
                        writeln!(
                            out,
                            "{}",
                            serde_json::json!({"type":"report","kind":"estimate_shard","phase":phase.name,"table":entry.table,
                                "shard":shard,"rows":rows,"bytes":(*rows as f64 * row_bytes).round()})
                        )?;
                    }
                    let bytes = sharding.rows as f64 * row_bytes;
                    writeln!(
                        out,
                        "{}",
                        serde_json::json!({"type":"report","kind":"estimate_table","phase":phase.name,"table":entry.table,
                            "rows":sharding.rows,"bytes":bytes.round(),"shards":sharding.shards.len()})
                    )?;
                    phase_rows += sharding.rows;
                    phase_bytes += bytes;
                }
                let seconds = rate.map(|r| phase_rows as f64 / r.rows_per_second);
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"type":"report","kind":"estimate_phase","phase":phase.name,"rows":phase_rows,
                        "bytes":phase_bytes.round(),"rows_per_second":rate.map(|r| r.rows_per_second),"projected_seconds":seconds})
                )?;
                match seconds {
                    Some(s) => molt_core::info!(
                        "phase {}: {phase_rows} rows, {:.1} MB, about {:.0} s at {:.0} rows/s",
                        phase.name,
                        phase_bytes / 1e6,
                        s,
                        rate.map_or(0.0, |r| r.rows_per_second)
                    ),
                    None => molt_core::info!(
                        "phase {}: {phase_rows} rows, {:.1} MB",
                        phase.name,
                        phase_bytes / 1e6
                    ),
                }
            }
            out.flush()?;
            Ok(exit::SUCCESS)
        }
    }
}

/// Throughput measured by an earlier molt-load.
#[derive(Clone, Copy, Debug)]
struct Throughput {
    rows_per_second: f64,
}

/// Reads molt-load result records and sums rows over seconds. Sections load
/// in parallel, so the summed seconds understate the real rate: a
/// conservative projection.
fn read_throughput(path: &PathBuf) -> anyhow::Result<Throughput> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let (mut rows, mut seconds) = (0u64, 0f64);
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}: line {}", path.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{}: line {}: not JSON", path.display(), n + 1))?;
        if value["type"] == "result" && value["status"] == "ok" {
            rows += value["rows"].as_u64().unwrap_or(0);
            seconds += value["seconds"].as_f64().unwrap_or(0.0);
        }
    }
    if rows == 0 || seconds <= 0.0 {
        anyhow::bail!(
            "{}: no molt-load result records with rows and seconds",
            path.display()
        );
    }
    Ok(Throughput {
        rows_per_second: rows as f64 / seconds,
    })
}

/// Resolves the plan and returns, for tests and other tools, each phase's
/// tables with their source predicates.
pub async fn predicates(
    plan_path: &std::path::Path,
    source_url: &str,
) -> anyhow::Result<Vec<(String, TableName, Option<String>)>> {
    let file = PlanFile::read(plan_path)?;
    let url = ConnUrl::resolve(source_url)?;
    let mut source = source::Source::connect(&url).await?;
    let plan = Plan::resolve(file, &mut source, Default::default()).await?;
    let mut out = Vec::new();
    for phase in &plan.phases {
        for entry in &phase.entries {
            out.push((
                phase.name.clone(),
                entry.table.clone(),
                phase.predicate(&entry.table, &source)?,
            ));
        }
    }
    Ok(out)
}
