//! molt-cutover: run a phase's lifecycle: freeze, finalize, gate, switch,
//! proof, rollback, status.
//!
//! Every step reads and writes the ledger in the target (`_molt`, see
//! `molt_core::ledger`), so any machine can take over a cutover, every step
//! is safe to re-run, and the history of who did what stays with the data.
//! The lifecycle is documented in `docs/cutover.md`.
//!
//! The binary is a one-line `main` over [`run`]; the command-line
//! definition is [`command`], shared with the man page and completions.

pub mod freeze;
pub mod gate;
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
        after_help = "Example:\n  molt-cutover freeze --plan phases.toml --phase A --source $SRC --target $TGT --wait-timeout 60\n\n\
Waits up to --wait-timeout seconds for transactions that already wrote a table; on PostgreSQL all tables are frozen \
in one transaction (all or nothing), on MySQL triggers created before a failure are dropped again."
    )]
    Freeze {
        #[command(flatten)]
        phase: PhaseArgs,
        #[command(flatten)]
        target: TargetArgs,
        /// Seconds to wait for in-flight transactions holding a table.
        #[arg(long, default_value_t = 30, value_name = "SECS")]
        wait_timeout: u64,
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
sources) replaces the slice on the source with it. See docs/cutover.md."
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

async fn connect_target(args: &TargetArgs) -> anyhow::Result<Target> {
    let url = ConnUrl::resolve(&args.target).context("--target")?;
    let target = molt_core::target::connect(&url).await?;
    ledger::ensure(&target.client, &args.ledger_schema).await?;
    Ok(target)
}

async fn connect_source(raw: &str) -> anyhow::Result<(ConnUrl, SourceConn)> {
    let url = ConnUrl::resolve(raw).context("--source")?;
    let conn = SourceConn::connect(&url).await?;
    Ok((url, conn))
}

fn say(message: impl AsRef<str>) {
    molt_core::info!("{}", message.as_ref());
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
        } => freeze_cmd(&phase, &target, wait_timeout).await,
        Cmd::Unfreeze {
            phase,
            target,
            wait_timeout,
            force,
        } => unfreeze_cmd(&phase, &target, wait_timeout, force).await,
        Cmd::Finalize {
            plan,
            phase,
            target,
        } => finalize_cmd(plan.as_deref(), &phase, &target).await,
        Cmd::Switch {
            phase,
            target,
            hook,
            force,
            check,
        } => switch_cmd(&phase, &target, hook.as_deref(), force, check).await,
        Cmd::Proof { phase, target } => proof_cmd(&phase, &target).await,
        Cmd::Rollback {
            plan,
            phase,
            source,
            target,
            purge_target,
            after_cutover,
            wait_timeout,
        } => {
            rollback_cmd(
                plan.as_deref(),
                &phase,
                &source,
                &target,
                purge_target,
                after_cutover,
                wait_timeout,
            )
            .await
        }
        Cmd::Status {
            target,
            json,
            phase,
        } => status_cmd(&target, json, phase.as_deref()).await,
    }
}

async fn freeze_cmd(p: &PhaseArgs, t: &TargetArgs, wait: u64) -> anyhow::Result<i32> {
    let tables = phase::tables(&p.plan, &p.source, &p.phase).await?;
    let target = connect_target(t).await?;
    let (_, mut source) = connect_source(&p.source).await?;
    let records = source.freeze(&p.phase, &tables, wait).await?;
    for record in &records {
        ledger::record_freeze(&target.client, &t.ledger_schema, record)
            .await
            .with_context(|| {
                format!(
                    "phase {}: the source IS frozen but the ledger could not record it; run freeze again",
                    p.phase
                )
            })?;
    }
    let names: Vec<String> = tables.iter().map(|s| s.table.to_string()).collect();
    ledger::transition(
        &target.client,
        &t.ledger_schema,
        &p.phase,
        PhaseState::Frozen,
        false,
        &serde_json::json!({"tables": names, "engine": source.engine()}),
    )
    .await?;
    source.close().await;
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
    target: &Target,
    ledger_schema: &str,
    phase: &str,
    source: &SourceConn,
    specs: Option<&[freeze::FreezeSpec]>,
) -> anyhow::Result<Vec<ledger::FreezeRecord>> {
    let mut records = ledger::freezes(&target.client, ledger_schema, phase).await?;
    if let Some(specs) = specs {
        for expected in source.expected(phase, specs) {
            if !records.iter().any(|r| r.table == expected.table) {
                records.push(expected);
            }
        }
    }
    Ok(records)
}

async fn unfreeze(
    target: &Target,
    ledger_schema: &str,
    phase: &str,
    source: &mut SourceConn,
    specs: Option<&[freeze::FreezeSpec]>,
    wait: u64,
) -> anyhow::Result<Vec<String>> {
    let records = freeze_objects(target, ledger_schema, phase, source, specs).await?;
    source.unfreeze(&records, wait).await?;
    for record in &records {
        ledger::remove_freeze(&target.client, ledger_schema, phase, &record.table).await?;
    }
    Ok(records.iter().map(|r| r.table.to_string()).collect())
}

async fn unfreeze_cmd(
    p: &PhaseArgs,
    t: &TargetArgs,
    wait: u64,
    force: bool,
) -> anyhow::Result<i32> {
    let tables = phase::tables(&p.plan, &p.source, &p.phase).await?;
    let target = connect_target(t).await?;
    let state = ledger::phase_state(&target.client, &t.ledger_schema, &p.phase).await?;
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
    let (_, mut source) = connect_source(&p.source).await?;
    let done = unfreeze(
        &target,
        &t.ledger_schema,
        &p.phase,
        &mut source,
        Some(&tables),
        wait,
    )
    .await?;
    ledger::transition(
        &target.client,
        &t.ledger_schema,
        &p.phase,
        PhaseState::Planned,
        force,
        &serde_json::json!({"unfrozen": done}),
    )
    .await?;
    source.close().await;
    say(format!("phase {}: unfrozen: {}", p.phase, done.join(", ")));
    Ok(SUCCESS)
}

/// The phase's tables on the target (from its sections), with headers.
async fn phase_target_tables(
    target: &Target,
    ledger_schema: &str,
    phase: &str,
) -> anyhow::Result<(Vec<(TableName, TableHeader)>, Vec<(TableName, TableHeader)>)> {
    let sections = ledger::sections(&target.client, ledger_schema, phase).await?;
    let all = molt_core::target::ledger::Ledger::new(ledger_schema)
        .stored_headers(&target.client, None)
        .await?;
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
) -> anyhow::Result<i32> {
    if let Some(plan) = plan {
        phase::check_phase_in_plan(plan, phase)?;
    }
    let target = connect_target(t).await?;
    let (tables, known) = phase_target_tables(&target, &t.ledger_schema, phase).await?;
    if tables.is_empty() {
        anyhow::bail!(
            "phase {phase}: the ledger has no loaded tables for this phase; load it first"
        );
    }
    let report = molt_core::target::finalize::finalize(&target.client, &tables, &known)
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
        &target.client,
        &t.ledger_schema,
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

async fn switch_cmd(
    p: &PhaseArgs,
    t: &TargetArgs,
    hook: Option<&str>,
    force: bool,
    check_only: bool,
) -> anyhow::Result<i32> {
    let tables = phase::tables(&p.plan, &p.source, &p.phase).await?;
    let target = connect_target(t).await?;
    let (_, mut source) = connect_source(&p.source).await?;
    let landed = phase::landed(&target.client, &t.ledger_schema).await?;
    let report = gate::check(
        &target.client,
        &t.ledger_schema,
        &mut source,
        &p.phase,
        &tables,
        &landed,
    )
    .await?;
    source.close().await;
    if check_only {
        switch::enforce(&p.phase, &report, false)?;
        say(format!("phase {}: the gate passes", p.phase));
        return Ok(SUCCESS);
    }
    switch::enforce(&p.phase, &report, force)?;
    let names: Vec<String> = tables.iter().map(|s| s.table.to_string()).collect();
    switch::record(
        &target.client,
        &t.ledger_schema,
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
        switch::run_hook(hook, &p.phase, &t.ledger_schema)?;
    }
    Ok(SUCCESS)
}

async fn proof_cmd(p: &PhaseArgs, t: &TargetArgs) -> anyhow::Result<i32> {
    let tables = phase::tables(&p.plan, &p.source, &p.phase).await?;
    let target = connect_target(t).await?;
    let landed = phase::landed(&target.client, &t.ledger_schema).await?;
    let sections = ledger::sections(&target.client, &t.ledger_schema, &p.phase).await?;
    let url = ConnUrl::resolve(&p.source).context("--source")?;
    let phase_name = p.phase.clone();
    let specs = tables.clone();
    let source_digests =
        tokio::task::spawn_blocking(move || proof::source_digests(&url, &phase_name, &specs))
            .await
            .context("recomputing source digests")??;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut bad = 0;
    for table in &tables {
        let source = source_digests
            .get(&table.table)
            .copied()
            .unwrap_or_default();
        let loaded = landed.get(&table.table).and_then(|(target_name, _)| {
            let mine: Vec<&ledger::SectionRow> = sections
                .iter()
                .filter(|s| &s.target == target_name)
                .collect();
            proof::loaded_digest(&mine)
        });
        let ok = loaded == Some(source);
        if !ok {
            bad += 1;
            match loaded {
                None => say(format!("phase {}: {}: no complete load recorded to compare with", p.phase, table.table)),
                Some(l) => say(format!(
                    "phase {}: {}: the source changed since the load: {} rows now (digest {}), {} loaded (digest {})",
                    p.phase, table.table, source.rows, source.hex(), l.rows, l.hex()
                )),
            }
        }
        writeln!(
            out,
            "{}",
            serde_json::json!({"type": "report", "kind": "freeze_proof", "phase": p.phase, "table": table.table,
                "source_rows": source.rows, "source_digest": source.hex(),
                "loaded_rows": loaded.map(|l| l.rows), "loaded_digest": loaded.map(|l| l.hex()), "ok": ok})
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

async fn rollback_cmd(
    plan: Option<&std::path::Path>,
    phase: &str,
    source_raw: &str,
    t: &TargetArgs,
    purge_target: bool,
    after_cutover: bool,
    wait: u64,
) -> anyhow::Result<i32> {
    let mut target = connect_target(t).await?;
    let state = ledger::phase_state(&target.client, &t.ledger_schema, phase).await?;
    let switched = state.as_deref() == Some(PhaseState::CutOver.as_str());
    if switched && !after_cutover {
        return Err(ExitError::new(
            REFUSED,
            format!(
                "phase {phase}: refusing to roll back after the switch without --after-cutover \
                 (the target has taken writes; --after-cutover exports them for the source)"
            ),
        )
        .into());
    }
    if switched && purge_target {
        return Err(ExitError::new(
            REFUSED,
            format!("phase {phase}: --purge-target is refused after the switch: the target holds the only copy of new writes"),
        )
        .into());
    }
    let specs = match plan {
        Some(plan) => Some(phase::tables(plan, source_raw, phase).await?),
        None => None,
    };
    let (source_url, mut source) = connect_source(source_raw).await?;
    let mut detail = serde_json::json!({"after_cutover": switched});

    if switched {
        let specs = specs.as_deref().with_context(|| {
            format!("phase {phase}: rollback --after-cutover needs --plan (the source predicates of the slice)")
        })?;
        if source_url.engine() != Engine::Postgres {
            say(format!(
                "phase {phase}: warning: the source is {}: molt-load writes PostgreSQL-wire databases only, so \
                 this stream cannot be applied to it by molt-load (see docs/cutover.md)",
                source_url.engine().as_str()
            ));
        }
        let landed = phase::landed(&target.client, &t.ledger_schema).await?;
        let sections = ledger::sections(&target.client, &t.ledger_schema, phase).await?;
        let mut tables = Vec::new();
        let mut pairs = Vec::new();
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
            pairs.push((target_name.clone(), header.clone()));
            tables.push(rollback::ExportTable {
                target: target_name.clone(),
                target_filter,
                header: header.clone(),
                source: spec.table.clone(),
                source_filter: spec.predicate.clone(),
            });
        }
        let refs = rollback::references(&pairs, &landed);
        let done = unfreeze(
            &target,
            &t.ledger_schema,
            phase,
            &mut source,
            Some(specs),
            wait,
        )
        .await?;
        say(format!(
            "phase {phase}: source unfrozen: {}",
            done.join(", ")
        ));
        ledger::set_route(
            &target.client,
            &t.ledger_schema,
            phase,
            "source",
            &serde_json::json!({"rolled_back": true}),
        )
        .await?;
        let stdout = std::io::stdout();
        let rows = rollback::export(&target.client, phase, &tables, &refs, stdout.lock()).await?;
        detail["exported_rows"] = rows.into();
        detail["unfrozen"] = done.into();
    } else {
        let done = unfreeze(
            &target,
            &t.ledger_schema,
            phase,
            &mut source,
            specs.as_deref(),
            wait,
        )
        .await?;
        say(format!(
            "phase {phase}: source unfrozen: {}",
            if done.is_empty() {
                "(nothing was frozen)".to_string()
            } else {
                done.join(", ")
            }
        ));
        detail["unfrozen"] = done.into();
        if purge_target {
            let sections = ledger::sections(&target.client, &t.ledger_schema, phase).await?;
            let (tables, _) = phase_target_tables(&target, &t.ledger_schema, phase).await?;
            let landed = phase::landed(&target.client, &t.ledger_schema).await?;
            let refs = rollback::references(&tables, &landed);
            let headers: HashMap<TableName, TableHeader> = tables.into_iter().collect();
            let deleted =
                rollback::purge(&mut target.client, phase, &sections, &headers, &refs).await?;
            ledger::set_sections_status(&target.client, &t.ledger_schema, phase, "rolled_back")
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
        ledger::set_route(
            &target.client,
            &t.ledger_schema,
            phase,
            "source",
            &serde_json::json!({"rolled_back": true}),
        )
        .await?;
    }
    source.close().await;
    ledger::transition(
        &target.client,
        &t.ledger_schema,
        phase,
        PhaseState::RolledBack,
        false,
        &detail,
    )
    .await?;
    say(format!("phase {phase}: rolled back"));
    Ok(SUCCESS)
}

async fn status_cmd(t: &TargetArgs, json: bool, only: Option<&str>) -> anyhow::Result<i32> {
    let target = connect_target(t).await?;
    let phases = status::gather(&target.client, &t.ledger_schema, only).await?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
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
