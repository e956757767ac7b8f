//! molt-cutover: run a phase's lifecycle: freeze, finalize, gate, switch,
//! proof, rollback, status.
//!
//! Every step reads and writes the ledger in the target (`_molt`, see
//! `molt_core::ledger`), so any machine can take over a cutover, every step
//! is safe to re-run, and the history of who did what stays with the data.
//! The lifecycle is documented in `docs/cutover.md`.
//!
//! Every step that writes takes `--dry-run`: it prints the SQL it would
//! run, built by the same code a real run executes, and changes nothing
//! ([`dry_run`], [`ledger_view`]).
//!
//! The binary is a one-line `main` over [`run`]; the command-line
//! definition is [`command`], shared with the man page and completions.

pub mod dry_run;
pub mod freeze;
pub mod gate;
pub mod ledger_view;
pub mod phase;
pub mod proof;
pub mod rollback;
pub mod status;
pub mod switch;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use molt_core::exit::{ExitError, DIFFERENCES, REFUSED, SUCCESS};
use molt_core::ledger::{self, PhaseState};
use molt_core::stream::{TableHeader, TableName};
use molt_core::target::Target;
use molt_core::{ConnUrl, Engine};

use crate::freeze::SourceConn;
use crate::ledger_view::LedgerView;

/// Command-line options of molt-cutover.
#[derive(Debug, Parser)]
#[command(
    name = "molt-cutover",
    version,
    about = "Run a phase's lifecycle: freeze, finalize, gate, switch, rollback, status",
    after_help = "A phase goes: freeze (source rejects writes to its rows) -> molt-dump | molt-load -> molt-verify --phase -> \
finalize -> switch (gated) ; rollback undoes it.\n\nExample:\n  molt-cutover freeze --plan phases.toml --phase A --source $SRC --target $TGT\n  \
molt-cutover switch --plan phases.toml --phase A --source $SRC --target $TGT --hook ./route-to-crdb.sh\n  molt-cutover status --target $TGT\n\n\
Exit codes: 0 success, 1 failure, 2 usage error, 3 proof found differences, 4 switch refused (see docs/exit-codes.md)."
)]
pub struct Args {
    #[command(flatten)]
    pub diag: molt_core::diag::DiagArgs,
    #[command(subcommand)]
    pub command: Cmd,
}

/// Where the ledger is.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Target URL (postgresql:// or cockroachdb://), which holds the ledger; `env:VAR` and `file:PATH` read it indirectly.
    #[arg(long, env = "MOLT_TARGET", hide_env_values = true, value_name = "URL")]
    pub target: String,
    /// Schema of the ledger tables in the target.
    #[arg(long, default_value = ledger::DEFAULT_SCHEMA, value_name = "NAME")]
    pub ledger_schema: String,
}

/// The phase, the plan and the source.
#[derive(Debug, Clone, clap::Args)]
pub struct PhaseArgs {
    /// The phase plan (TOML, see docs/phase-plan.md).
    #[arg(long, value_name = "FILE")]
    pub plan: PathBuf,
    /// The phase's name in the plan.
    #[arg(long)]
    pub phase: String,
    /// Source URL (postgres://, mysql://, oracle:// with the `oracle` build feature); `env:VAR` and `file:PATH` read it indirectly.
    #[arg(long, env = "MOLT_SOURCE", hide_env_values = true, value_name = "URL")]
    pub source: String,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Make the source reject writes to the phase's rows (database triggers).
    #[command(
        after_help = "Example:\n  molt-cutover freeze --plan phases.toml --phase A --source $SRC --target $TGT --wait-timeout 60\n  \
molt-cutover freeze --plan phases.toml --phase A --source $SRC --target $TGT --dry-run 2> freeze-A.sql\n\n\
Waits up to --wait-timeout seconds for transactions that already wrote a table; on PostgreSQL all tables are frozen \
in one transaction (all or nothing), on MySQL triggers created before a failure are dropped again. --dry-run prints \
the triggers and functions it would create (and the ledger records) without creating them."
    )]
    Freeze {
        #[command(flatten)]
        phase: PhaseArgs,
        #[command(flatten)]
        target: TargetArgs,
        /// Seconds to wait for in-flight transactions holding a table.
        #[arg(long, default_value_t = 30, value_name = "SECS")]
        wait_timeout: u64,
        /// Print the SQL it would run (on stderr) and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove exactly what freeze added (safe to run twice).
    #[command(
        after_help = "Example:\n  molt-cutover unfreeze --plan phases.toml --phase A --source $SRC --target $TGT"
    )]
    Unfreeze {
        #[command(flatten)]
        phase: PhaseArgs,
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long, default_value_t = 30, value_name = "SECS")]
        wait_timeout: u64,
        /// Unfreeze even after the switch (the source then accepts writes the target never sees).
        #[arg(long)]
        force: bool,
        /// Print the SQL it would run (on stderr) and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Create the phase's deferred indexes, constraints and foreign keys, and move sequences.
    #[command(
        after_help = "Example:\n  molt-cutover finalize --plan phases.toml --phase A --target $TGT\n\n\
Finalizes the tables the phase loaded (from the ledger); objects that exist are skipped, so it is safe after an \
earlier phase finalized a shared table."
    )]
    Finalize {
        /// The phase plan (checked to name the phase).
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
        #[arg(long)]
        phase: String,
        #[command(flatten)]
        target: TargetArgs,
        /// Print the SQL it would run (on stderr) and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check the gate and move the phase's traffic to the target.
    #[command(
        after_help = "Example:\n  molt-cutover switch --plan phases.toml --phase A --source $SRC --target $TGT --hook 'consul kv put route/$MOLT_PHASE crdb'\n\n\
Refused (exit 4, every unmet condition listed) unless every table is loaded with all shards, verified with zero \
differences after the freeze began, and still frozen at the source. --force skips the gate and is recorded."
    )]
    Switch {
        #[command(flatten)]
        phase: PhaseArgs,
        #[command(flatten)]
        target: TargetArgs,
        /// Shell command run after the switch is recorded (gets MOLT_PHASE, MOLT_LEDGER_SCHEMA).
        #[arg(long, value_name = "CMD")]
        hook: Option<String>,
        /// Switch even if the gate fails (recorded in the ledger).
        #[arg(long)]
        force: bool,
        /// Only check the gate; change nothing.
        #[arg(long)]
        check: bool,
        /// Check the gate, then print the ledger writes and the hook it would run (on stderr); change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Prove the freeze held: the slice's digest on the source equals what was loaded.
    #[command(
        after_help = "Example:\n  molt-cutover proof --plan phases.toml --phase A --source $SRC --target $TGT\n\n\
Prints one report record per table; exit 3 when a table's rows changed since they were dumped."
    )]
    Proof {
        #[command(flatten)]
        phase: PhaseArgs,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Undo a phase: unfreeze the source; optionally purge the target; after the switch, export the target's rows.
    #[command(
        after_help = "Examples:\n  molt-cutover rollback --phase A --source $SRC --target $TGT --purge-target\n  \
molt-cutover rollback --plan phases.toml --phase A --source $SRC --target $TGT --after-cutover | molt-load --target $SRC\n\n\
After the switch the target's whole slice is written as a molt stream on stdout; molt-load (PostgreSQL-wire \
and MySQL/MariaDB sources) replaces the slice on the source with it. See docs/cutover.md."
    )]
    Rollback {
        /// The phase plan (needed with --after-cutover).
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
        #[arg(long)]
        phase: String,
        /// Source URL.
        #[arg(long, env = "MOLT_SOURCE", hide_env_values = true, value_name = "URL")]
        source: String,
        #[command(flatten)]
        target: TargetArgs,
        /// Delete the phase's rows from the target (before the switch only).
        #[arg(long)]
        purge_target: bool,
        /// Allow rolling back a phase that was switched; exports the target's rows.
        #[arg(long)]
        after_cutover: bool,
        #[arg(long, default_value_t = 30, value_name = "SECS")]
        wait_timeout: u64,
        /// Print the SQL it would run (on stderr) and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show the ledger: every phase's state, freeze, load, verify and routing.
    #[command(
        after_help = "Examples:\n  molt-cutover status --target $TGT\n  molt-cutover status --target $TGT --json | jq ."
    )]
    Status {
        #[command(flatten)]
        target: TargetArgs,
        /// NDJSON records instead of a table.
        #[arg(long)]
        json: bool,
        /// Only this phase.
        #[arg(long)]
        phase: Option<String>,
    },
}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// Runs molt-cutover with the given arguments (program name first).
pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<i32> {
    let args = Args::parse_from(args);
    molt_core::diag::set_format(args.diag.log_format);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(args))
}

/// The target, its URL, and the ledger as this run sees it.
struct TargetConn {
    url: ConnUrl,
    target: Target,
    view: LedgerView,
}

impl TargetConn {
    fn client(&self) -> &tokio_postgres::Client {
        &self.target.client
    }

    fn schema(&self) -> &str {
        &self.view.schema
    }

    /// A ledger table, quoted, for dry-run comments.
    fn table(&self, name: &str) -> String {
        molt_core::ident::quote_pg_table(&TableName::new(self.schema(), name))
    }
}

/// Connects to the target. A real run creates the ledger if needed; a dry
/// run only looks at it, and prints the statements that would create it
/// when it is missing.
async fn open_target(args: &TargetArgs, dry: bool) -> anyhow::Result<TargetConn> {
    let url = ConnUrl::resolve(&args.target).context("--target")?;
    let target = molt_core::target::connect(&url).await?;
    if !dry {
        ledger::ensure(&target.client, &args.ledger_schema).await?;
        return Ok(TargetConn {
            url,
            target,
            view: LedgerView::ensured(&args.ledger_schema),
        });
    }
    let view = LedgerView::inspect(&target.client, &args.ledger_schema).await?;
    if !view.complete() {
        dry_run::comment(format!(
            "on the target {url}: the ledger (schema {}) is missing or incomplete; it is created first:",
            args.ledger_schema
        ));
        for sql in ledger::setup_sql(&args.ledger_schema) {
            dry_run::statement(&sql);
        }
    }
    Ok(TargetConn { url, target, view })
}

async fn connect_target(args: &TargetArgs) -> anyhow::Result<Target> {
    Ok(open_target(args, false).await?.target)
}

/// The source and its URL.
struct Source {
    url: ConnUrl,
    conn: SourceConn,
}

async fn connect_source(raw: &str) -> anyhow::Result<Source> {
    let url = ConnUrl::resolve(raw).context("--source")?;
    let conn = SourceConn::connect(&url).await?;
    Ok(Source { url, conn })
}

fn say(message: impl AsRef<str>) {
    molt_core::info!("{}", message.as_ref());
}

/// The first line of a dry run.
fn dry_header(command: &str, phase: &str) {
    dry_run::comment(format!(
        "molt-cutover {command} --dry-run, phase {phase}: the SQL it would run. Nothing is changed."
    ));
}

/// In a dry run, the transition a real run would record (`ledger::transition`).
async fn dry_transition(
    t: &TargetConn,
    phase: &str,
    to: PhaseState,
    forced: bool,
    detail: &serde_json::Value,
) -> anyhow::Result<()> {
    let from = t.view.phase_state(t.client(), phase).await?;
    dry_run::comment(format!(
        "ledger: {} gets phase {phase}: {} -> {to}{} (with time, host, user and detail {detail}); {}: phase {phase} is {to}",
        t.table("transitions"),
        from.as_deref().unwrap_or("(none)"),
        if forced { ", forced" } else { "" },
        t.table("phases"),
    ));
    Ok(())
}

impl Cmd {
    /// The source URL argument, for the commands that take one.
    fn source_arg(&self) -> Option<&str> {
        match self {
            Cmd::Freeze { phase, .. }
            | Cmd::Unfreeze { phase, .. }
            | Cmd::Switch { phase, .. }
            | Cmd::Proof { phase, .. } => Some(&phase.source),
            Cmd::Rollback { source, .. } => Some(source),
            Cmd::Finalize { .. } | Cmd::Status { .. } => None,
        }
    }
}

/// An Oracle source needs the cargo feature `oracle`: say so first, in
/// this tool's name, rather than from deep inside the plan resolution.
fn check_oracle_support(command: &Cmd) -> anyhow::Result<()> {
    if cfg!(feature = "oracle") {
        return Ok(());
    }
    let oracle = command
        .source_arg()
        .and_then(|raw| ConnUrl::resolve(raw).ok())
        .is_some_and(|url| url.engine() == Engine::Oracle);
    if oracle {
        anyhow::bail!(molt_core::oracle::built_without_oracle("molt-cutover"));
    }
    Ok(())
}

async fn run_async(args: Args) -> anyhow::Result<i32> {
    check_oracle_support(&args.command)?;
    match args.command {
        Cmd::Freeze {
            phase,
            target,
            wait_timeout,
            dry_run,
        } => freeze_cmd(&phase, &target, wait_timeout, dry_run).await,
        Cmd::Unfreeze {
            phase,
            target,
            wait_timeout,
            force,
            dry_run,
        } => unfreeze_cmd(&phase, &target, wait_timeout, force, dry_run).await,
        Cmd::Finalize {
            plan,
            phase,
            target,
            dry_run,
        } => finalize_cmd(plan.as_deref(), &phase, &target, dry_run).await,
        Cmd::Switch {
            phase,
            target,
            hook,
            force,
            check,
            dry_run,
        } => {
            let mode = SwitchMode {
                force,
                check_only: check,
                dry: dry_run,
            };
            switch_cmd(&phase, &target, hook.as_deref(), mode).await
        }
        Cmd::Proof { phase, target } => proof_cmd(&phase, &target).await,
        Cmd::Rollback {
            plan,
            phase,
            source,
            target,
            purge_target,
            after_cutover,
            wait_timeout,
            dry_run,
        } => {
            let rollback = Rollback {
                plan: plan.as_deref(),
                phase: &phase,
                source: &source,
                purge_target,
                after_cutover,
                wait: wait_timeout,
                dry: dry_run,
            };
            rollback_cmd(&rollback, &target).await
        }
        Cmd::Status {
            target,
            json,
            phase,
        } => status_cmd(&target, json, phase.as_deref()).await,
    }
}

async fn freeze_cmd(p: &PhaseArgs, t: &TargetArgs, wait: u64, dry: bool) -> anyhow::Result<i32> {
    let tables = phase::tables(&p.plan, &p.source, &p.phase).await?;
    if dry {
        dry_header("freeze", &p.phase);
    }
    let target = open_target(t, dry).await?;
    let mut source = connect_source(&p.source).await?;
    let names: Vec<String> = tables.iter().map(|s| s.table.to_string()).collect();
    let detail = serde_json::json!({"tables": names, "engine": source.conn.engine()});
    if dry {
        let script = source.conn.freeze_script(&p.phase, &tables, wait).await?;
        dry_run::comment(format!("on the source {}:", source.url));
        dry_run::script(&script.render());
        dry_run::comment(format!("then on the target {}:", target.url));
        for record in source.conn.expected(&p.phase, &tables) {
            dry_run::comment(format!(
                "ledger: {} records {} ({}): triggers {}{}",
                target.table("freezes"),
                record.table,
                record.engine,
                record.triggers.join(", "),
                if record.functions.is_empty() {
                    String::new()
                } else {
                    let functions: Vec<String> =
                        record.functions.iter().map(ToString::to_string).collect();
                    format!(", functions {}", functions.join(", "))
                }
            ));
        }
        dry_transition(&target, &p.phase, PhaseState::Frozen, false, &detail).await?;
        source.conn.close().await;
        return Ok(SUCCESS);
    }
    let records = source.conn.freeze(&p.phase, &tables, wait).await?;
    for record in &records {
        ledger::record_freeze(target.client(), target.schema(), record)
            .await
            .with_context(|| {
                format!(
                    "phase {}: the source IS frozen but the ledger could not record it; run freeze again",
                    p.phase
                )
            })?;
    }
    ledger::transition(
        target.client(),
        target.schema(),
        &p.phase,
        PhaseState::Frozen,
        false,
        &detail,
    )
    .await?;
    source.conn.close().await;
    say(format!(
        "phase {}: frozen at the source: {}",
        p.phase,
        names.join(", ")
    ));
    Ok(SUCCESS)
}

/// The freeze objects of a phase: those the ledger recorded, plus those a
/// freeze of the plan's tables would have made (in case recording failed).
async fn freeze_objects(
    target: &TargetConn,
    phase: &str,
    source: &SourceConn,
    specs: Option<&[freeze::FreezeSpec]>,
) -> anyhow::Result<Vec<ledger::FreezeRecord>> {
    let mut records = target.view.freezes(target.client(), phase).await?;
    if let Some(specs) = specs {
        for expected in source.expected(phase, specs) {
            if !records.iter().any(|r| r.table == expected.table) {
                records.push(expected);
            }
        }
    }
    Ok(records)
}

/// Drops the phase's freeze objects and their ledger records; in a dry run,
/// prints the statements instead. Returns the tables.
async fn unfreeze(
    target: &TargetConn,
    phase: &str,
    source: &mut Source,
    specs: Option<&[freeze::FreezeSpec]>,
    wait: u64,
    dry: bool,
) -> anyhow::Result<Vec<String>> {
    let records = freeze_objects(target, phase, &source.conn, specs).await?;
    if dry {
        let script = source.conn.unfreeze_script(&records, wait).await?;
        dry_run::comment(format!("on the source {}:", source.url));
        if records.is_empty() {
            dry_run::comment(format!(
                "phase {phase}: the ledger records no freeze (and no --plan names tables): nothing to drop"
            ));
        }
        dry_run::script(&script.render());
        if !records.is_empty() {
            dry_run::comment(format!("then on the target {}:", target.url));
        }
        for record in &records {
            dry_run::comment(format!(
                "ledger: {} forgets the freeze of {} (phase {phase})",
                target.table("freezes"),
                record.table
            ));
        }
    } else {
        source.conn.unfreeze(&records, wait).await?;
        for record in &records {
            ledger::remove_freeze(target.client(), target.schema(), phase, &record.table).await?;
        }
    }
    Ok(records.iter().map(|r| r.table.to_string()).collect())
}

async fn unfreeze_cmd(
    p: &PhaseArgs,
    t: &TargetArgs,
    wait: u64,
    force: bool,
    dry: bool,
) -> anyhow::Result<i32> {
    let tables = phase::tables(&p.plan, &p.source, &p.phase).await?;
    if dry {
        dry_header("unfreeze", &p.phase);
    }
    let target = open_target(t, dry).await?;
    let state = target.view.phase_state(target.client(), &p.phase).await?;
    if state.as_deref() == Some(PhaseState::CutOver.as_str()) && !force {
        return Err(ExitError::new(
            REFUSED,
            format!(
                "phase {}: refusing to unfreeze after the switch (writes to the source would be lost); \
                 use rollback --after-cutover, or --force",
                p.phase
            ),
        )
        .into());
    }
    let mut source = connect_source(&p.source).await?;
    let done = unfreeze(&target, &p.phase, &mut source, Some(&tables), wait, dry).await?;
    let detail = serde_json::json!({"unfrozen": done});
    source.conn.close().await;
    if dry {
        dry_transition(&target, &p.phase, PhaseState::Planned, force, &detail).await?;
        return Ok(SUCCESS);
    }
    ledger::transition(
        target.client(),
        target.schema(),
        &p.phase,
        PhaseState::Planned,
        force,
        &detail,
    )
    .await?;
    say(format!("phase {}: unfrozen: {}", p.phase, done.join(", ")));
    Ok(SUCCESS)
}

/// The phase's tables on the target (from its sections), with headers.
async fn phase_target_tables(
    target: &TargetConn,
    phase: &str,
) -> anyhow::Result<(Vec<(TableName, TableHeader)>, Vec<(TableName, TableHeader)>)> {
    let sections = target.view.sections(target.client(), phase).await?;
    let all = target.view.stored_headers(target.client()).await?;
    let mut mine = Vec::new();
    for s in &sections {
        if mine
            .iter()
            .any(|(t, _): &(TableName, TableHeader)| t == &s.target)
        {
            continue;
        }
        let header = all.iter().find(|(t, _)| t == &s.target).with_context(|| {
            format!("phase {phase}: {}: no table header in the ledger", s.target)
        })?;
        mine.push(header.clone());
    }
    Ok((mine, all))
}

async fn finalize_cmd(
    plan: Option<&std::path::Path>,
    phase: &str,
    t: &TargetArgs,
    dry: bool,
) -> anyhow::Result<i32> {
    if let Some(plan) = plan {
        phase::check_phase_in_plan(plan, phase)?;
    }
    if dry {
        dry_header("finalize", phase);
    }
    let target = open_target(t, dry).await?;
    let (tables, known) = phase_target_tables(&target, phase).await?;
    if tables.is_empty() {
        anyhow::bail!(
            "phase {phase}: the ledger has no loaded tables for this phase; load it first"
        );
    }
    if dry {
        finalize_dry_run(&target, phase, &tables, &known).await?;
        return Ok(SUCCESS);
    }
    let report = molt_core::target::finalize::finalize(target.client(), &tables, &known)
        .await
        .with_context(|| format!("phase {phase}: finalize"))?;
    for c in &report.created {
        say(format!("phase {phase}: created {c}"));
    }
    for s in &report.skipped {
        say(format!("phase {phase}: notice: skipped {s}"));
    }
    for f in &report.failed {
        say(format!("phase {phase}: FAILED {f}"));
    }
    let detail = serde_json::json!({
        "tables": tables.iter().map(|(t, _)| t.to_string()).collect::<Vec<_>>(),
        "created": report.created, "existing": report.existing, "skipped": report.skipped,
        "failed": report.failed,
    });
    if !report.ok() {
        anyhow::bail!(
            "phase {phase}: finalize failed for {} object(s): {}",
            report.failed.len(),
            report.failed.join("; ")
        );
    }
    ledger::transition(
        target.client(),
        target.schema(),
        phase,
        PhaseState::Finalized,
        false,
        &detail,
    )
    .await?;
    say(format!(
        "phase {phase}: finalized {} tables ({} objects created, {} already there)",
        tables.len(),
        report.created.len(),
        report.existing.len()
    ));
    Ok(SUCCESS)
}

/// Prints what finalize would run: the statements of
/// `molt_core::target::finalize::plan` whose objects do not exist yet, and
/// the sequence statements of `plan_sequences`, in the order finalize runs
/// them (each on its own, not in a transaction).
async fn finalize_dry_run(
    target: &TargetConn,
    phase: &str,
    tables: &[(TableName, TableHeader)],
    known: &[(TableName, TableHeader)],
) -> anyhow::Result<()> {
    use molt_core::target::finalize;
    let client = target.client();
    let names: Vec<String> = tables.iter().map(|(t, _)| t.to_string()).collect();
    dry_run::comment(format!(
        "on the target {}: finalize {}",
        target.url,
        names.join(", ")
    ));
    let plan = finalize::plan(tables, known);
    let mut group = "";
    let (mut to_create, mut existing) = (0, 0);
    for step in &plan.steps {
        let this = match step.kind {
            "check" => "CHECK constraints (one the target cannot parse is skipped with a notice)",
            "foreign key" => "foreign keys, validated against the rows",
            _ => "indexes and unique constraints",
        };
        if this != group {
            dry_run::comment(this);
            group = this;
        }
        if finalize::exists(client, step).await? {
            existing += 1;
            dry_run::comment(format!("exists, skipped: {}", step.label()));
        } else {
            to_create += 1;
            dry_run::statement(&step.sql);
        }
    }
    for skipped in &plan.skipped {
        dry_run::comment(format!("not created: {skipped}"));
    }
    let mut first = true;
    for (table, header) in tables {
        for seq in molt_core::target::sequences::plan_sequences(client, header, table).await? {
            if std::mem::take(&mut first) {
                dry_run::comment("sequences past the loaded rows");
            }
            dry_run::comment(format!(
                "{table}.{}: sequence {}{}",
                seq.column,
                seq.sequence,
                seq.last_value
                    .map(|v| format!(", next value {}", v.saturating_add(1)))
                    .unwrap_or_default()
            ));
            for (_, sql) in &seq.statements {
                dry_run::statement(sql);
            }
        }
    }
    let detail = serde_json::json!({"tables": names});
    dry_transition(target, phase, PhaseState::Finalized, false, &detail).await?;
    dry_run::comment(format!(
        "{to_create} objects to create, {existing} already there, {} not translatable",
        plan.skipped.len()
    ));
    Ok(())
}

/// How switch runs.
#[derive(Clone, Copy, Debug)]
struct SwitchMode {
    force: bool,
    check_only: bool,
    dry: bool,
}

async fn switch_cmd(
    p: &PhaseArgs,
    t: &TargetArgs,
    hook: Option<&str>,
    mode: SwitchMode,
) -> anyhow::Result<i32> {
    let tables = phase::tables(&p.plan, &p.source, &p.phase).await?;
    if mode.dry {
        dry_header("switch", &p.phase);
    }
    let target = open_target(t, mode.dry).await?;
    let mut source = connect_source(&p.source).await?;
    let landed = phase::landed(target.client(), &target.view).await?;
    let report = gate::check(
        target.client(),
        &target.view,
        &mut source.conn,
        &p.phase,
        &tables,
        &landed,
    )
    .await?;
    source.conn.close().await;
    // `--check` never forces.
    let force = mode.force && !mode.check_only;
    if mode.check_only && !mode.dry {
        switch::enforce(&p.phase, &report, false)?;
        say(format!("phase {}: the gate passes", p.phase));
        return Ok(SUCCESS);
    }
    let names: Vec<String> = tables.iter().map(|s| s.table.to_string()).collect();
    if mode.dry {
        if !force {
            switch::enforce(&p.phase, &report, false)?;
            dry_run::comment("the gate passes");
        }
        for unmet in &report.unmet {
            dry_run::comment(format!("--force would ignore: {unmet}"));
        }
        dry_run::comment(format!("on the target {}:", target.url));
        dry_transition(
            &target,
            &p.phase,
            PhaseState::CutOver,
            force && !report.passed(),
            &switch::transition_detail(&report, force, &names),
        )
        .await?;
        dry_run::comment(format!(
            "ledger: {} gets phase {}: state 'target' (with time and detail {})",
            target.table("routing"),
            p.phase,
            switch::route_detail(&names)
        ));
        match hook {
            Some(hook) => dry_run::comment(format!(
                "then the hook runs: {}",
                switch::hook_command(hook, &p.phase, target.schema())
            )),
            None => dry_run::comment("no --hook: nothing else runs"),
        }
        return Ok(SUCCESS);
    }
    switch::enforce(&p.phase, &report, force)?;
    switch::record(
        target.client(),
        target.schema(),
        &p.phase,
        &report,
        force,
        &names,
    )
    .await?;
    say(format!(
        "phase {}: switched to the target{}",
        p.phase,
        if force && !report.passed() {
            " (FORCED)"
        } else {
            ""
        }
    ));
    if let Some(hook) = hook {
        switch::run_hook(hook, &p.phase, target.schema())?;
    }
    Ok(SUCCESS)
}

async fn proof_cmd(p: &PhaseArgs, t: &TargetArgs) -> anyhow::Result<i32> {
    let tables = phase::tables(&p.plan, &p.source, &p.phase).await?;
    let target = connect_target(t).await?;
    let view = LedgerView::ensured(&t.ledger_schema);
    let landed = phase::landed(&target.client, &view).await?;
    let sections = ledger::sections(&target.client, &t.ledger_schema, &p.phase).await?;
    let url = ConnUrl::resolve(&p.source).context("--source")?;
    let phase_name = p.phase.clone();
    let specs = tables.clone();
    let source_digests =
        tokio::task::spawn_blocking(move || proof::source_digests(&url, &phase_name, &specs))
            .await
            .context("recomputing source digests")??;
    let mut out = molt_core::exit::stdout();
    let mut bad = 0;
    for table in &tables {
        let source = source_digests
            .get(&table.table)
            .copied()
            .unwrap_or_default();
        let mut stale = Vec::new();
        let mut loaded = None;
        if let Some((target_name, header)) = landed.get(&table.table) {
            let mine: Vec<&ledger::SectionRow> = sections
                .iter()
                .filter(|s| &s.target == target_name)
                .collect();
            loaded = proof::loaded_digest(&mine);
            if loaded.is_some() {
                stale =
                    gate::stale_sections(&target.client, &t.ledger_schema, &mine, header).await?;
            }
        }
        let ok = loaded == Some(source) && stale.is_empty();
        if !ok {
            bad += 1;
            match loaded {
                None => say(format!("phase {}: {}: no complete load recorded to compare with", p.phase, table.table)),
                Some(l) if l != source => say(format!(
                    "phase {}: {}: the source changed since the load: {} rows now (digest {}), {} loaded (digest {})",
                    p.phase, table.table, source.rows, source.hex(), l.rows, l.hex()
                )),
                Some(_) => {}
            }
            for why in &stale {
                say(format!(
                    "phase {}: {}: the target no longer holds the load: {why}",
                    p.phase, table.table
                ));
            }
        }
        writeln!(
            out,
            "{}",
            serde_json::json!({"type": "report", "kind": "freeze_proof", "phase": p.phase, "table": table.table,
                "source_rows": source.rows, "source_digest": source.hex(),
                "loaded_rows": loaded.map(|l| l.rows), "loaded_digest": loaded.map(|l| l.hex()),
                "target_stale": stale, "ok": ok})
        )?;
    }
    out.flush()?;
    if bad == 0 {
        say(format!(
            "phase {}: the freeze held: {} tables match what was loaded",
            p.phase,
            tables.len()
        ));
        Ok(SUCCESS)
    } else {
        Ok(DIFFERENCES)
    }
}

/// What rollback was asked to do.
struct Rollback<'a> {
    plan: Option<&'a std::path::Path>,
    phase: &'a str,
    source: &'a str,
    purge_target: bool,
    after_cutover: bool,
    wait: u64,
    dry: bool,
}

async fn rollback_cmd(r: &Rollback<'_>, t: &TargetArgs) -> anyhow::Result<i32> {
    let phase = r.phase;
    if r.dry {
        dry_header("rollback", phase);
    }
    let mut target = open_target(t, r.dry).await?;
    let state = target.view.phase_state(target.client(), phase).await?;
    let switched = state.as_deref() == Some(PhaseState::CutOver.as_str());
    if switched && !r.after_cutover {
        return Err(ExitError::new(
            REFUSED,
            format!(
                "phase {phase}: refusing to roll back after the switch without --after-cutover \
                 (the target has taken writes; --after-cutover exports them for the source)"
            ),
        )
        .into());
    }
    if switched && r.purge_target {
        return Err(ExitError::new(
            REFUSED,
            format!("phase {phase}: --purge-target is refused after the switch: the target holds the only copy of new writes"),
        )
        .into());
    }
    let specs = match r.plan {
        Some(plan) => Some(phase::tables(plan, r.source, phase).await?),
        None => None,
    };
    let mut source = connect_source(r.source).await?;
    let mut detail = serde_json::json!({"after_cutover": switched});
    // What a real run says on stderr, a dry run says in a comment.
    let note = |message: String| {
        if r.dry {
            dry_run::comment(message);
        } else {
            say(message);
        }
    };
    let route_back = serde_json::json!({"rolled_back": true});

    if switched {
        let specs = specs.as_deref().with_context(|| {
            format!("phase {phase}: rollback --after-cutover needs --plan (the source predicates of the slice)")
        })?;
        if source.url.engine() == Engine::Oracle {
            note(format!(
                "phase {phase}: warning: the source is {}: molt-load writes PostgreSQL-wire and MySQL/MariaDB \
                 databases, not Oracle, so this stream cannot be applied to it by molt-load (see docs/cutover.md)",
                source.url.engine().as_str()
            ));
        }
        let landed = phase::landed(target.client(), &target.view).await?;
        let sections = target.view.sections(target.client(), phase).await?;
        let tables = export_tables(phase, specs, &landed, &sections)?;
        let pairs: Vec<(TableName, TableHeader)> = tables
            .iter()
            .map(|t| (t.target.clone(), t.header.clone()))
            .collect();
        let refs = rollback::references(&pairs, &landed);
        let done = unfreeze(&target, phase, &mut source, Some(specs), r.wait, r.dry).await?;
        if r.dry {
            dry_run::comment(format!(
                "ledger: {} gets phase {phase}: state 'source' (detail {route_back})",
                target.table("routing")
            ));
            dry_run::comment(
                "then stdout gets a molt stream of the target's current slice (a dry run writes none): \
                 first an empty section per table, children first, then these rows, parents first:",
            );
            let targets: Vec<TableName> = tables.iter().map(|t| t.target.clone()).collect();
            for name in rollback::children_first(&targets, &refs).iter().rev() {
                if let Some(t) = tables.iter().find(|t| &t.target == name) {
                    dry_run::comment(format!(
                        "{} -> {} on the source: {};",
                        t.target,
                        t.source,
                        t.select_sql()
                    ));
                }
            }
        } else {
            say(format!(
                "phase {phase}: source unfrozen: {}",
                done.join(", ")
            ));
            ledger::set_route(
                target.client(),
                target.schema(),
                phase,
                "source",
                &route_back,
            )
            .await?;
            let rows = rollback::export(
                target.client(),
                phase,
                &tables,
                &refs,
                molt_core::exit::stdout(),
            )
            .await?;
            detail["exported_rows"] = rows.into();
        }
        detail["unfrozen"] = done.into();
    } else {
        let done = unfreeze(&target, phase, &mut source, specs.as_deref(), r.wait, r.dry).await?;
        if !r.dry {
            say(format!(
                "phase {phase}: source unfrozen: {}",
                if done.is_empty() {
                    "(nothing was frozen)".to_string()
                } else {
                    done.join(", ")
                }
            ));
        }
        detail["unfrozen"] = done.into();
        if r.purge_target {
            let sections = target.view.sections(target.client(), phase).await?;
            let (tables, _) = phase_target_tables(&target, phase).await?;
            let landed = phase::landed(target.client(), &target.view).await?;
            let refs = rollback::references(&tables, &landed);
            let headers: HashMap<TableName, TableHeader> = tables.into_iter().collect();
            let steps = rollback::purge_steps(phase, &sections, &headers, &refs)?;
            if r.dry {
                purge_dry_run(&target, phase, &steps).await?;
            } else {
                let deleted = rollback::purge(&mut target.target, phase, &steps).await?;
                ledger::set_sections_status(target.client(), target.schema(), phase, "rolled_back")
                    .await?;
                for (table, n) in &deleted {
                    say(format!(
                        "phase {phase}: deleted {n} rows of {table} from the target"
                    ));
                }
                detail["purged"] = deleted
                    .iter()
                    .map(|(t, n)| serde_json::json!({"table": t, "rows": n}))
                    .collect::<Vec<_>>()
                    .into();
            }
        }
        if r.dry {
            dry_run::comment(format!(
                "ledger: {} gets phase {phase}: state 'source' (detail {route_back})",
                target.table("routing")
            ));
        } else {
            ledger::set_route(
                target.client(),
                target.schema(),
                phase,
                "source",
                &route_back,
            )
            .await?;
        }
    }
    source.conn.close().await;
    if r.dry {
        dry_transition(&target, phase, PhaseState::RolledBack, false, &detail).await?;
        return Ok(SUCCESS);
    }
    ledger::transition(
        target.client(),
        target.schema(),
        phase,
        PhaseState::RolledBack,
        false,
        &detail,
    )
    .await?;
    say(format!("phase {phase}: rolled back"));
    Ok(SUCCESS)
}

/// The tables a rollback after the switch exports: where each of the
/// phase's source tables landed, and its slice in both dialects.
fn export_tables(
    phase: &str,
    specs: &[freeze::FreezeSpec],
    landed: &HashMap<TableName, (TableName, TableHeader)>,
    sections: &[ledger::SectionRow],
) -> anyhow::Result<Vec<rollback::ExportTable>> {
    let mut tables = Vec::new();
    for spec in specs {
        let (target_name, header) = landed.get(&spec.table).with_context(|| {
            format!(
                "phase {phase}: {}: never loaded (no header in the ledger)",
                spec.table
            )
        })?;
        let mut filters: Vec<Option<String>> = sections
            .iter()
            .filter(|s| &s.target == target_name)
            .map(|s| s.filter.clone())
            .collect();
        filters.dedup();
        if filters.len() > 1 {
            anyhow::bail!("phase {phase}: {target_name}: sections were loaded with different filters; cannot tell the slice");
        }
        let target_filter = match filters.pop() {
            Some(f) => f,
            None => header.slice.target_predicate().map(str::to_string),
        };
        tables.push(rollback::ExportTable {
            target: target_name.clone(),
            target_filter,
            header: header.clone(),
            source: spec.table.clone(),
            source_filter: spec.predicate.clone(),
        });
    }
    Ok(tables)
}

/// Prints the purge's DELETEs (bounds written in), each with the number of
/// rows it would delete now, in the one transaction the purge uses.
async fn purge_dry_run(
    target: &TargetConn,
    phase: &str,
    steps: &[rollback::PurgeStep],
) -> anyhow::Result<()> {
    dry_run::comment(format!(
        "on the target {}: delete the phase's rows, children first, in one transaction:",
        target.url
    ));
    dry_run::statement("BEGIN");
    let mut total = 0i64;
    for step in steps {
        let n: i64 = target
            .client()
            .query_one(&step.count_sql(), &step.predicate.param_refs())
            .await
            .map_err(|e| anyhow::anyhow!(molt_core::target::describe(&e)))
            .with_context(|| format!("phase {phase}: counting the rows of {}", step.table))?
            .get(0);
        total += n;
        dry_run::comment(format!(
            "{}, section {}: {n} rows now",
            step.table,
            step.shard_index + 1
        ));
        dry_run::statement(&step.inlined());
    }
    dry_run::statement("COMMIT");
    dry_run::comment(format!(
        "{total} rows in all; then ledger: {} marks every section of phase {phase} rolled_back",
        target.table("sections")
    ));
    Ok(())
}

async fn status_cmd(t: &TargetArgs, json: bool, only: Option<&str>) -> anyhow::Result<i32> {
    // A read-only command: it looks at the ledger and creates nothing.
    let url = ConnUrl::resolve(&t.target).context("--target")?;
    let target = molt_core::target::connect(&url).await?;
    let view = LedgerView::inspect(&target.client, &t.ledger_schema).await?;
    if view.absent() {
        molt_core::info!(
            "no molt ledger in schema {} on the target {url}: no phase has run there yet (or --target/--ledger-schema name another place)",
            t.ledger_schema
        );
        return Ok(SUCCESS);
    }
    if !view.complete() {
        // A ledger molt-load alone wrote (or an older molt): the lifecycle's
        // tables are added, as any command that records a phase would.
        ledger::ensure(&target.client, &t.ledger_schema).await?;
    }
    let phases = status::gather(&target.client, &t.ledger_schema, only).await?;
    let mut out = molt_core::exit::stdout();
    if json {
        for p in &phases {
            let mut v = serde_json::to_value(p)?;
            v["type"] = "report".into();
            v["kind"] = "phase_status".into();
            writeln!(out, "{v}")?;
        }
        for tr in ledger::transitions(&target.client, &t.ledger_schema, only).await? {
            writeln!(
                out,
                "{}",
                serde_json::json!({"type": "report", "kind": "transition", "phase": tr.phase, "from": tr.from,
                    "to": tr.to, "at": status::format_time(tr.at), "host": tr.host, "user": tr.user,
                    "forced": tr.forced, "detail": tr.detail})
            )?;
        }
    } else {
        status::print_table(&mut out, &phases)?;
    }
    out.flush()?;
    Ok(SUCCESS)
}
