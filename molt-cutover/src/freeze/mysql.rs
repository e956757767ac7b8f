//! The MySQL/MariaDB freeze: one BEFORE trigger per event and table.
//!
//! For a table `t` of phase `A` with predicate `P` and columns `a, b`:
//!
//! ```sql
//! CREATE TRIGGER `db`.`<stem>_i` BEFORE INSERT ON `db`.`t` FOR EACH ROW
//! BEGIN
//!   IF EXISTS (SELECT 1 FROM (SELECT NEW.`a` AS `a`, NEW.`b` AS `b`) AS t WHERE (P)) THEN
//!     SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'molt: phase A is frozen: ...';
//!   END IF;
//! END
//! ```
//!
//! `<stem>_u` checks OLD and NEW, `<stem>_d` checks OLD. A whole-table
//! slice signals unconditionally. TRUNCATE fires no trigger in MySQL, so it
//! cannot be rejected this way (docs/cutover.md): revoke DROP (which
//! TRUNCATE needs) from the application's user during the phase.
//!
//! DDL commits on its own in MySQL, so a freeze is not one transaction:
//! `lock_wait_timeout` bounds each trigger's wait for the metadata lock of
//! in-flight transactions, and on any failure the triggers created by this
//! run are dropped again before the error is returned. The statements are
//! worked out first (a [`Script`], what `--dry-run` prints), so a table
//! that does not exist fails the freeze before any trigger is created.

use anyhow::Context;
use molt_core::ident::{quote_mysql, quote_mysql_table};
use molt_core::ledger::FreezeRecord;
use molt_core::stream::TableName;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::{message, object_stem, Action, FreezeSpec, Script};

/// MySQL's limit on SIGNAL's MESSAGE_TEXT, in characters.
const MESSAGE_MAX: usize = 128;

/// A MySQL string literal (backslashes escaped too: NO_BACKSLASH_ESCAPES
/// may be off).
pub fn literal_mysql(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// The events, with their trigger suffix and the row images to check.
const EVENTS: [(&str, &str, &[&str]); 3] = [
    ("INSERT", "i", &["NEW"]),
    ("UPDATE", "u", &["OLD", "NEW"]),
    ("DELETE", "d", &["OLD"]),
];

/// The objects freeze makes for one table.
pub fn expected(phase: &str, spec: &FreezeSpec, started_at: f64) -> FreezeRecord {
    let stem = object_stem(phase, &spec.table);
    FreezeRecord {
        phase: phase.to_string(),
        table: spec.table.clone(),
        engine: "mysql".into(),
        triggers: EVENTS
            .iter()
            .map(|(_, suffix, _)| format!("{stem}_{suffix}"))
            .collect(),
        functions: Vec::new(),
        started_at,
    }
}

/// The trigger statements for one table: (trigger name, SQL).
pub fn trigger_sql(phase: &str, spec: &FreezeSpec, columns: &[String]) -> Vec<(String, String)> {
    let stem = object_stem(phase, &spec.table);
    let text: String = message(phase, &spec.table)
        .chars()
        .take(MESSAGE_MAX)
        .collect();
    let signal = format!(
        "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = {}",
        literal_mysql(&text)
    );
    EVENTS
        .iter()
        .map(|(event, suffix, images)| {
            let name = format!("{stem}_{suffix}");
            let body = match &spec.predicate {
                None => format!("  {signal};\n"),
                Some(p) => images
                    .iter()
                    .map(|image| {
                        let select: Vec<String> = columns
                            .iter()
                            .map(|c| format!("{image}.{q} AS {q}", q = quote_mysql(c)))
                            .collect();
                        format!(
                            "  IF EXISTS (SELECT 1 FROM (SELECT {}) AS t WHERE ({p})) THEN\n    {signal};\n  END IF;\n",
                            select.join(", ")
                        )
                    })
                    .collect(),
            };
            let sql = format!(
                "CREATE TRIGGER {} BEFORE {event} ON {} FOR EACH ROW\nBEGIN\n{body}END",
                quote_mysql_table(&TableName::new(spec.table.schema.clone(), name.clone())),
                quote_mysql_table(&spec.table)
            );
            (name, sql)
        })
        .collect()
}

fn redacted(e: &mysql_async::Error) -> anyhow::Error {
    anyhow::anyhow!(molt_core::url::redact_text(&e.to_string()))
}

fn is_lock_timeout(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == 1205)
}

async fn columns(conn: &mut Conn, table: &TableName) -> anyhow::Result<Vec<String>> {
    let cols: Vec<String> = conn
        .exec(
            "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (&table.schema, &table.name),
        )
        .await
        .map_err(|e| redacted(&e))
        .with_context(|| format!("reading the columns of {table}"))?;
    if cols.is_empty() {
        anyhow::bail!("table {table} does not exist on the source");
    }
    Ok(cols)
}

async fn trigger_exists(conn: &mut Conn, schema: &str, name: &str) -> anyhow::Result<bool> {
    let found: Option<i64> = conn
        .exec_first(
            "SELECT 1 FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME = ?",
            (schema, name),
        )
        .await
        .map_err(|e| redacted(&e))
        .with_context(|| format!("looking up trigger {name}"))?;
    Ok(found.is_some())
}

fn lock_timeout_sql(wait_secs: u64) -> String {
    format!("SET SESSION lock_wait_timeout = {}", wait_secs.max(1))
}

fn drop_trigger_sql(table: &TableName, name: &str) -> String {
    format!(
        "DROP TRIGGER IF EXISTS {}",
        quote_mysql_table(&TableName::new(table.schema.clone(), name.to_string()))
    )
}

/// The freeze's statements: the lock timeout, then the triggers that do not
/// exist yet. Reads the catalog only (columns, existing triggers), so a
/// missing table fails here, before anything was created.
pub async fn freeze_script(
    conn: &mut Conn,
    phase: &str,
    specs: &[FreezeSpec],
    wait_secs: u64,
) -> anyhow::Result<Script> {
    let mut script = Script::new("mysql", false);
    script.run(None, Action::Setting, lock_timeout_sql(wait_secs));
    for spec in specs {
        let cols = columns(conn, &spec.table)
            .await
            .map_err(|e| e.context(format!("phase {phase}")))?;
        script.note(match &spec.predicate {
            Some(p) => format!("{}: rows where {p}", spec.table),
            None => format!("{}: every row", spec.table),
        });
        for (name, sql) in trigger_sql(phase, spec, &cols) {
            if trigger_exists(conn, &spec.table.schema, &name).await? {
                script.note(format!("trigger {name} on {} exists: kept", spec.table));
                continue;
            }
            script.run(
                Some(&spec.table),
                Action::CreateTrigger {
                    name,
                    replaces: false,
                },
                sql,
            );
        }
    }
    Ok(script)
}

/// Freezes every table; on failure drops what this run created.
pub async fn freeze(
    conn: &mut Conn,
    phase: &str,
    specs: &[FreezeSpec],
    wait_secs: u64,
) -> anyhow::Result<Vec<FreezeRecord>> {
    let started_at = molt_core::ledger::now_epoch();
    let script = freeze_script(conn, phase, specs, wait_secs).await?;
    let mut created: Vec<(TableName, String)> = Vec::new();
    let mut failure = None;
    for step in script.steps() {
        let Err(e) = conn.query_drop(&step.sql).await else {
            if let (Some(table), Action::CreateTrigger { name, .. }) = (&step.table, &step.action) {
                created.push((table.clone(), name.clone()));
            }
            continue;
        };
        let table = step
            .table
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        failure = Some(match &step.action {
            Action::CreateTrigger { .. } if is_lock_timeout(&e) => anyhow::anyhow!(
                "phase {phase}: freezing {table}: in-flight transactions still hold the table after {wait_secs}s \
                 (--wait-timeout); the triggers created so far were dropped again. Let them finish and run freeze again"
            ),
            Action::CreateTrigger { name, .. } => redacted(&e).context(format!(
                "phase {phase}: creating trigger {name} on {table} (is the filter valid SQL for its columns?)"
            )),
            Action::Setting => redacted(&e).context("setting lock_wait_timeout"),
            Action::Function | Action::DropTrigger { .. } | Action::DropFunction { .. } => {
                redacted(&e)
            }
        });
        break;
    }
    if let Some(error) = failure {
        for (table, name) in created.iter().rev() {
            if let Err(e) = conn.query_drop(drop_trigger_sql(table, name)).await {
                molt_core::warn!(
                    "could not drop trigger {name} on {table} after the failed freeze: {}",
                    molt_core::url::redact_text(&e.to_string())
                );
            }
        }
        return Err(error);
    }
    Ok(specs
        .iter()
        .map(|spec| expected(phase, spec, started_at))
        .collect())
}

/// The unfreeze's statements: every recorded trigger, `IF EXISTS`.
pub fn unfreeze_script(records: &[FreezeRecord], wait_secs: u64) -> Script {
    let mut script = Script::new("mysql", false);
    script.run(None, Action::Setting, lock_timeout_sql(wait_secs));
    for record in records {
        script.note(format!("{} (phase {})", record.table, record.phase));
        for trigger in &record.triggers {
            script.run(
                Some(&record.table),
                Action::DropTrigger {
                    name: trigger.clone(),
                },
                drop_trigger_sql(&record.table, trigger),
            );
        }
    }
    script
}

/// Drops the recorded triggers (if they exist).
pub async fn unfreeze(
    conn: &mut Conn,
    records: &[FreezeRecord],
    wait_secs: u64,
) -> anyhow::Result<()> {
    for step in unfreeze_script(records, wait_secs).steps() {
        let Err(e) = conn.query_drop(&step.sql).await else {
            continue;
        };
        let table = step
            .table
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let phase = records
            .iter()
            .find(|r| step.table.as_ref() == Some(&r.table))
            .map(|r| r.phase.as_str())
            .unwrap_or_default();
        return Err(match &step.action {
            Action::DropTrigger { .. } if is_lock_timeout(&e) => anyhow::anyhow!(
                "phase {phase}: unfreezing {table}: transactions still hold the table after {wait_secs}s (--wait-timeout)"
            ),
            Action::DropTrigger { name } => {
                redacted(&e).context(format!("dropping trigger {name} on {table}"))
            }
            _ => redacted(&e),
        });
    }
    Ok(())
}

/// Recorded triggers that are missing on the source.
pub async fn missing_triggers(
    conn: &mut Conn,
    record: &FreezeRecord,
) -> anyhow::Result<Vec<String>> {
    let mut missing = Vec::new();
    for trigger in &record.triggers {
        let found: Option<String> = conn
            .exec_first(
                "SELECT CAST(EVENT_OBJECT_TABLE AS CHAR) FROM information_schema.TRIGGERS \
                 WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME = ?",
                (&record.table.schema, trigger),
            )
            .await
            .map_err(|e| redacted(&e))
            .with_context(|| format!("looking up trigger {trigger}"))?;
        match found {
            Some(t) if t == record.table.name => {}
            Some(_) => missing.push(format!("{trigger} (on another table)")),
            None => missing.push(format!("{trigger} (missing)")),
        }
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_per_event() {
        let spec = FreezeSpec {
            table: TableName::new("shop", "orders"),
            predicate: Some("region = 'A'".into()),
        };
        let sql = trigger_sql("A", &spec, &["id".into(), "region".into()]);
        assert_eq!(sql.len(), 3);
        assert!(sql[0].1.contains("BEFORE INSERT"));
        assert!(sql[0]
            .1
            .contains("SELECT NEW.`id` AS `id`, NEW.`region` AS `region`"));
        assert!(sql[1].1.contains("OLD.`id`") && sql[1].1.contains("NEW.`id`"));
        assert!(!sql[2].1.contains("NEW."));
        assert_eq!(literal_mysql("a'b\\c"), "'a''b\\\\c'");
    }
}
