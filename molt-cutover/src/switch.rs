//! The switch: record the cutover, route the phase to the target, and tell
//! the world through an optional hook.
//!
//! The ledger is written first (transition, then the routing row), so that
//! a hook which fails or hangs never leaves the ledger claiming the source
//! still serves a phase whose applications were already moved. The hook is
//! a shell command (for a config push, a feature flag, a load balancer); it
//! gets `MOLT_PHASE` and `MOLT_LEDGER_SCHEMA` and never a URL or password:
//! the molt URL variables are removed from its environment.

use std::process::Command;

use anyhow::Context;
use molt_core::exit::{ExitError, REFUSED};
use molt_core::ledger::{self, PhaseState};
use tokio_postgres::Client;

use crate::gate::GateReport;

/// Refuses with every unmet condition, unless forced.
pub fn enforce(phase: &str, gate: &GateReport, force: bool) -> anyhow::Result<()> {
    if gate.passed() {
        return Ok(());
    }
    if force {
        for unmet in &gate.unmet {
            molt_core::warn!("--force: ignoring: {unmet}");
        }
        return Ok(());
    }
    let mut message = format!(
        "phase {phase}: switch refused, {} condition(s) unmet:",
        gate.unmet.len()
    );
    for unmet in &gate.unmet {
        message.push_str("\n  - ");
        message.push_str(unmet);
    }
    Err(ExitError::new(REFUSED, message).into())
}

/// The detail of the `cut_over` transition.
pub fn transition_detail(gate: &GateReport, force: bool, tables: &[String]) -> serde_json::Value {
    serde_json::json!({
        "tables": tables,
        "forced": force,
        "skipped_conditions": if force { gate.unmet.clone() } else { Vec::new() },
        "frozen_since": gate.frozen_since,
    })
}

/// The detail of the phase's routing row.
pub fn route_detail(tables: &[String]) -> serde_json::Value {
    serde_json::json!({ "tables": tables })
}

/// Records the cutover and writes the routing row.
pub async fn record(
    client: &Client,
    ledger_schema: &str,
    phase: &str,
    gate: &GateReport,
    force: bool,
    tables: &[String],
) -> anyhow::Result<()> {
    ledger::transition(
        client,
        ledger_schema,
        phase,
        PhaseState::CutOver,
        force && !gate.passed(),
        &transition_detail(gate, force, tables),
    )
    .await?;
    ledger::set_route(
        client,
        ledger_schema,
        phase,
        "target",
        &route_detail(tables),
    )
    .await?;
    Ok(())
}

/// The hook as `run_hook` starts it, for a person to read.
pub fn hook_command(hook: &str, phase: &str, ledger_schema: &str) -> String {
    format!(
        "MOLT_PHASE={} MOLT_LEDGER_SCHEMA={} sh -c {}",
        crate::dry_run::shell_quote(phase),
        crate::dry_run::shell_quote(ledger_schema),
        crate::dry_run::shell_quote(hook)
    )
}

/// Runs the hook with `sh -c`; a failing hook is an error (the cutover
/// stays recorded: re-run the hook, or switch again, which is idempotent).
pub fn run_hook(hook: &str, phase: &str, ledger_schema: &str) -> anyhow::Result<()> {
    let status = Command::new("sh")
        .arg("-c")
        .arg(hook)
        .env("MOLT_PHASE", phase)
        .env("MOLT_LEDGER_SCHEMA", ledger_schema)
        .env_remove("MOLT_SOURCE")
        .env_remove("MOLT_TARGET")
        .env_remove("PGPASSWORD")
        .env_remove("MYSQL_PWD")
        .status()
        .with_context(|| format!("phase {phase}: starting the hook"))?;
    if !status.success() {
        anyhow::bail!(
            "phase {phase}: the hook failed ({status}); the cutover is recorded in the ledger: fix the hook and run switch again"
        );
    }
    Ok(())
}
