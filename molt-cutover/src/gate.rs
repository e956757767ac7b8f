//! The switch gate: the conditions under which traffic may move to the
//! target, checked against the ledger and the live source.
//!
//! A cutover is the one step that loses data if taken too early, so the
//! gate lists *every* unmet condition (not just the first) and trusts only
//! recorded facts:
//!
//! 1. every table of the phase is loaded with all its shards: sections with
//!    status `loaded` covering shard indexes `0..count-1`;
//! 2. molt-verify compared every table **after the freeze began** and found
//!    zero differences (an earlier verify proves nothing about rows written
//!    before the freeze held);
//! 3. the freeze is still in place: recorded in the ledger, and its
//!    triggers really exist (and are enabled) on the source.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use molt_core::ledger;
use molt_core::stream::{TableHeader, TableName};
use tokio_postgres::Client;

use crate::freeze::SourceConn;
use crate::ledger_view::LedgerView;
use crate::phase::PhaseTable;

/// What the gate found.
#[derive(Debug, Default)]
pub struct GateReport {
    /// Unmet conditions, each naming the phase's table.
    pub unmet: Vec<String>,
    /// When the freeze began (earliest table), seconds since the epoch.
    pub frozen_since: Option<f64>,
}

impl GateReport {
    pub fn passed(&self) -> bool {
        self.unmet.is_empty()
    }
}

/// Whether the sections cover a table: the shard counts for which every
/// index is loaded, or a description of what is missing.
pub fn coverage(sections: &[&ledger::SectionRow]) -> Result<(), String> {
    if sections.is_empty() {
        return Err("no sections loaded".into());
    }
    let mut by_count: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    let mut not_loaded = Vec::new();
    for s in sections {
        if s.status == "loaded" {
            by_count
                .entry(s.shard_count)
                .or_default()
                .insert(s.shard_index);
        } else {
            not_loaded.push(format!(
                "shard {}/{} is {}",
                s.shard_index + 1,
                s.shard_count,
                s.status
            ));
        }
    }
    let complete = by_count
        .iter()
        .any(|(count, loaded)| (0..*count).all(|i| loaded.contains(&i)));
    if complete {
        return Ok(());
    }
    let mut missing = not_loaded;
    for (count, loaded) in &by_count {
        let absent: Vec<String> = (0..*count)
            .filter(|i| !loaded.contains(i))
            .map(|i| format!("{}/{count}", i + 1))
            .collect();
        if !absent.is_empty() {
            missing.push(format!("shards {} not loaded", absent.join(", ")));
        }
    }
    if missing.is_empty() {
        missing.push("no loaded sections".into());
    }
    Err(missing.join("; "))
}

/// Why the target no longer holds what the ledger has as loaded, one line
/// per loaded section that fails [`molt_core::target::ledger::stale_section`]
/// (a table dropped or truncated, rows deleted since the load). The ledger's
/// `loaded` is a record of the past; the gate and `proof` trust it only
/// together with the target's present.
pub async fn stale_sections(
    target: &Client,
    ledger_schema: &str,
    sections: &[&ledger::SectionRow],
    header: &TableHeader,
) -> anyhow::Result<Vec<String>> {
    let mut stale = Vec::new();
    for s in sections.iter().filter(|s| s.status == "loaded") {
        if let Some(why) =
            molt_core::target::ledger::stale_section(target, ledger_schema, s, header).await?
        {
            stale.push(format!(
                "shard {}/{}: {why} (load it again)",
                s.shard_index + 1,
                s.shard_count
            ));
        }
    }
    Ok(stale)
}

/// Checks every condition for `phase`.
pub async fn check(
    target: &Client,
    ledger: &LedgerView,
    source: &mut SourceConn,
    phase: &str,
    tables: &[PhaseTable],
    landed: &HashMap<TableName, (TableName, TableHeader)>,
) -> anyhow::Result<GateReport> {
    let mut report = GateReport::default();
    let sections = ledger.sections(target, phase).await?;
    let freezes = ledger.freezes(target, phase).await?;
    let verifies = ledger.verify_results(target, phase).await?;
    report.frozen_since = freezes
        .iter()
        .map(|f| f.started_at)
        .fold(None, |acc: Option<f64>, t| {
            Some(acc.map_or(t, |a| a.min(t)))
        });

    for table in tables {
        let source_name = &table.table;
        let target_name = landed.get(source_name).map(|(t, _)| t.clone());
        // 1. loaded, every shard.
        match &target_name {
            None => report.unmet.push(format!(
                "phase {phase}: {source_name}: never loaded (no table header in the ledger)"
            )),
            Some(t) => {
                let mine: Vec<&ledger::SectionRow> =
                    sections.iter().filter(|s| &s.target == t).collect();
                if let Err(why) = coverage(&mine) {
                    report.unmet.push(format!(
                        "phase {phase}: {source_name}: not fully loaded: {why}"
                    ));
                } else if let Some((_, header)) = landed.get(source_name) {
                    for why in stale_sections(target, &ledger.schema, &mine, header).await? {
                        report
                            .unmet
                            .push(format!("phase {phase}: {source_name}: {why}"));
                    }
                }
            }
        }
        // 3. frozen, triggers present.
        let freeze = freezes.iter().find(|f| &f.table == source_name);
        match freeze {
            None => report.unmet.push(format!(
                "phase {phase}: {source_name}: not frozen at the source (run molt-cutover freeze)"
            )),
            Some(record) => {
                let missing = source.missing_triggers(record).await?;
                if !missing.is_empty() {
                    report.unmet.push(format!(
                        "phase {phase}: {source_name}: the freeze is no longer in place at the source: trigger {}",
                        missing.join(", ")
                    ));
                }
            }
        }
        // 2. verified after the freeze, zero differences.
        let since = freeze.map(|f| f.started_at);
        let latest = verifies.iter().find(|v| {
            (&v.table == source_name || target_name.as_ref() == Some(&v.table))
                && since.is_some_and(|s| v.started_at >= s)
        });
        match (since, latest) {
            (None, _) => report.unmet.push(format!(
                "phase {phase}: {source_name}: no verify after a freeze (freeze first, then run molt-verify --phase {phase})"
            )),
            (Some(_), None) => {
                let earlier = verifies
                    .iter()
                    .any(|v| &v.table == source_name || target_name.as_ref() == Some(&v.table));
                report.unmet.push(format!(
                    "phase {phase}: {source_name}: not verified since the freeze began{}",
                    if earlier { " (only earlier verify results, which prove nothing about writes before the freeze)" } else { "" }
                ));
            }
            (Some(_), Some(v)) if !v.ok || v.differences != 0 => report.unmet.push(format!(
                "phase {phase}: {source_name}: verify found {} differences (source {} rows, target {} rows{})",
                v.differences,
                v.source_rows,
                v.target_rows,
                if v.ok { "" } else { ", not ok" }
            )),
            (Some(_), Some(_)) => {}
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(index: i64, count: i64, status: &str) -> ledger::SectionRow {
        ledger::SectionRow {
            key: format!("{index}/{count}"),
            phase: "A".into(),
            target: TableName::new("public", "t"),
            shard_index: index,
            shard_count: count,
            shard: serde_json::Value::Null,
            filter: None,
            status: status.into(),
            rows: Some(1),
            digest: None,
        }
    }

    #[test]
    fn coverage_needs_every_shard() {
        let a = [section(0, 2, "loaded"), section(1, 2, "loaded")];
        assert!(coverage(&a.iter().collect::<Vec<_>>()).is_ok());
        let b = [section(0, 3, "loaded"), section(2, 3, "loaded")];
        let err = coverage(&b.iter().collect::<Vec<_>>()).unwrap_err();
        assert!(err.contains("2/3"), "{err}");
        let c = [section(0, 2, "loaded"), section(1, 2, "failed")];
        let err = coverage(&c.iter().collect::<Vec<_>>()).unwrap_err();
        assert!(err.contains("failed"), "{err}");
        assert!(coverage(&[]).is_err());
    }
}
