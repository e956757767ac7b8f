//! A phase as the lifecycle needs it: its tables with their source
//! predicates (from the plan, resolved by molt-slice exactly as `molt-slice
//! plan` and molt-dump see them), and where each table landed on the target
//! (from the loader's ledger).

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use molt_core::stream::{TableHeader, TableName};
use tokio_postgres::Client;

use crate::freeze::FreezeSpec;
use crate::ledger_view::LedgerView;

/// One table of the phase: source name and predicate (`None`: every row).
pub type PhaseTable = FreezeSpec;

/// Checks that the plan names the phase, without touching any database.
pub fn check_phase_in_plan(plan: &Path, phase: &str) -> anyhow::Result<()> {
    let file = molt_slice::PlanFile::read(plan)?;
    if !file.phase.iter().any(|p| p.name == phase) {
        let known: Vec<&str> = file.phase.iter().map(|p| p.name.as_str()).collect();
        anyhow::bail!(
            "plan {}: no phase {phase:?} (phases: {})",
            plan.display(),
            known.join(", ")
        );
    }
    Ok(())
}

/// The phase's tables and source predicates, resolved against the source.
pub async fn tables(plan: &Path, source: &str, phase: &str) -> anyhow::Result<Vec<PhaseTable>> {
    check_phase_in_plan(plan, phase)?;
    let all = molt_slice::predicates(plan, source)
        .await
        .with_context(|| format!("phase {phase}: resolving plan {}", plan.display()))?;
    let tables: Vec<PhaseTable> = all
        .into_iter()
        .filter(|(p, _, _)| p == phase)
        .map(|(_, table, predicate)| FreezeSpec { table, predicate })
        .collect();
    if tables.is_empty() {
        anyhow::bail!("phase {phase} has no tables in plan {}", plan.display());
    }
    Ok(tables)
}

/// The loader's stored headers: source table -> (target table, header).
pub async fn landed(
    client: &Client,
    ledger: &LedgerView,
) -> anyhow::Result<HashMap<TableName, (TableName, TableHeader)>> {
    let headers = ledger.stored_headers(client).await?;
    Ok(headers
        .into_iter()
        .map(|(target, header)| (header.table.clone(), (target, header)))
        .collect())
}
