//! `status`: the ledger, for people (a table) or for programs (NDJSON).
//!
//! One line per phase, gathered from every ledger table, so that an
//! operator sees at a glance which phases are frozen, loaded, verified and
//! routed, and a script can branch on the same facts.

use std::collections::BTreeSet;
use std::io::Write;

use molt_core::ident::quote_pg_table;
use molt_core::ledger;
use molt_core::stream::TableName;
use tokio_postgres::Client;

/// One phase's summary.
#[derive(Debug, serde::Serialize)]
pub struct PhaseStatus {
    pub phase: String,
    pub state: String,
    pub frozen_tables: usize,
    pub tables_loaded: usize,
    pub sections_loaded: usize,
    pub sections_total: usize,
    pub rows_loaded: i64,
    pub tables_verified: usize,
    pub verify_differences: i64,
    pub verify_ok: bool,
    pub route: Option<String>,
    pub last_change: Option<f64>,
    pub last_change_by: Option<String>,
}

/// Gathers every phase the ledger knows.
pub async fn gather(
    client: &Client,
    schema: &str,
    only: Option<&str>,
) -> anyhow::Result<Vec<PhaseStatus>> {
    let mut names: BTreeSet<String> = ledger::phases(client, schema)
        .await?
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let sql = format!(
        "SELECT DISTINCT phase FROM {}",
        quote_pg_table(&TableName::new(schema, "sections"))
    );
    for row in client.query(&sql, &[]).await? {
        names.insert(row.get(0));
    }
    let routes = ledger::routes(client, schema).await?;
    names.extend(routes.iter().map(|r| r.phase.clone()));
    let transitions = ledger::transitions(client, schema, None).await?;
    let mut out = Vec::new();
    for phase in names {
        if only.is_some_and(|o| o != phase) {
            continue;
        }
        let state = ledger::phase_state(client, schema, &phase)
            .await?
            .unwrap_or_else(|| "planned".into());
        let sections = ledger::sections(client, schema, &phase).await?;
        let freezes = ledger::freezes(client, schema, &phase).await?;
        let verifies = ledger::verify_results(client, schema, &phase).await?;
        let loaded: Vec<&ledger::SectionRow> =
            sections.iter().filter(|s| s.status == "loaded").collect();
        let mut tables: Vec<&TableName> = sections.iter().map(|s| &s.target).collect();
        tables.sort();
        tables.dedup();
        let tables_loaded = tables
            .iter()
            .filter(|t| {
                let mine: Vec<&ledger::SectionRow> =
                    sections.iter().filter(|s| &s.target == **t).collect();
                crate::gate::coverage(&mine).is_ok()
            })
            .count();
        // The newest result per table.
        let mut seen = BTreeSet::new();
        let latest: Vec<&ledger::StoredVerify> = verifies
            .iter()
            .filter(|v| seen.insert(v.table.clone()))
            .collect();
        let last = transitions.iter().rev().find(|t| t.phase == phase);
        out.push(PhaseStatus {
            state,
            frozen_tables: freezes.len(),
            tables_loaded,
            sections_loaded: loaded.len(),
            sections_total: sections.len(),
            rows_loaded: loaded.iter().filter_map(|s| s.rows).sum(),
            tables_verified: latest.len(),
            verify_differences: latest.iter().map(|v| v.differences).sum(),
            verify_ok: !latest.is_empty() && latest.iter().all(|v| v.ok && v.differences == 0),
            route: routes
                .iter()
                .find(|r| r.phase == phase)
                .map(|r| r.state.clone()),
            last_change: last.map(|t| t.at),
            last_change_by: last.map(|t| format!("{}@{}", t.user, t.host)),
            phase,
        });
    }
    Ok(out)
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SSZ`.
pub fn format_time(epoch: f64) -> String {
    let secs = epoch.floor() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Prints the table for people.
pub fn print_table(out: &mut impl Write, phases: &[PhaseStatus]) -> std::io::Result<()> {
    let header = [
        "PHASE", "STATE", "FROZEN", "LOADED", "SECTIONS", "ROWS", "VERIFY", "ROUTE", "CHANGED",
    ];
    let rows: Vec<[String; 9]> = phases
        .iter()
        .map(|p| {
            [
                p.phase.clone(),
                p.state.clone(),
                format!("{} tables", p.frozen_tables),
                format!("{} tables", p.tables_loaded),
                format!("{}/{}", p.sections_loaded, p.sections_total),
                p.rows_loaded.to_string(),
                if p.tables_verified == 0 {
                    "-".into()
                } else if p.verify_ok {
                    format!("ok ({} tables)", p.tables_verified)
                } else {
                    format!("{} differences", p.verify_differences)
                },
                p.route.clone().unwrap_or_else(|| "source".into()),
                match (&p.last_change, &p.last_change_by) {
                    (Some(t), Some(by)) => format!("{} by {by}", format_time(*t)),
                    _ => "-".into(),
                },
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for r in &rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    if phases.is_empty() {
        writeln!(out, "(the ledger holds no phases yet)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(format_time(0.0), "1970-01-01 00:00:00Z");
        assert_eq!(format_time(1_709_251_199.5), "2024-02-29 23:59:59Z");
    }
}
