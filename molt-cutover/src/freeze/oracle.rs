//! The Oracle freeze (cargo feature `oracle`): one row trigger per table.
//!
//! The trigger SQL is `molt_core::oracle::sql::freeze_trigger_sql`: it
//! evaluates the phase's filter unchanged against the row's `:NEW` and
//! `:OLD` values and raises ORA-20001 naming the phase and the table (see
//! docs/oracle.md). Its name is derived from (owner, table, phase), so
//! freeze is idempotent and unfreeze finds it without the ledger.
//!
//! DDL commits on its own in Oracle, as in MySQL, so a freeze is not one
//! transaction: `DDL_LOCK_TIMEOUT` bounds each trigger's wait for
//! in-flight transactions, and on any failure the triggers this run created
//! are dropped again. A trigger that compiles with errors would make every
//! write to its table fail (ORA-04098), so one that does not come out
//! VALID and ENABLED is dropped and the freeze fails. The statements are
//! worked out first, as the [`Script`] that `--dry-run` prints.
//!
//! The `oracle` crate is blocking: every call runs on a blocking thread.
//! None of this has run against a real Oracle database yet.

use std::sync::Arc;

use anyhow::{anyhow, Context};
use molt_core::ledger::FreezeRecord;
use molt_core::oracle::conn::{self, find_table, OracleError};
use molt_core::oracle::driver::Connection;
use molt_core::oracle::quote_oracle;
use molt_core::oracle::sql::{
    freeze_trigger_name, freeze_trigger_sql, unfreeze_sql, FREEZE_EXISTS_SQL,
};
use molt_core::oracle::BuildOptions;
use molt_core::stream::TableName;
use molt_core::ConnUrl;

use super::{Action, FreezeSpec, Script};

/// Whether a trigger compiled: `VALID` or `INVALID` (`:1` owner, `:2` name).
const TRIGGER_VALID_SQL: &str =
    "SELECT status FROM all_objects WHERE owner = :1 AND object_name = :2 AND object_type = 'TRIGGER'";

/// ORA-04080: trigger does not exist (unfreezing twice is fine).
const NO_SUCH_TRIGGER: i32 = 4080;
/// ORA-04021 / ORA-00054: timed out waiting for a lock on the table.
const LOCK_TIMEOUTS: [i32; 2] = [4021, 54];

/// Runs blocking driver work on a blocking thread.
async fn blocking<T: Send + 'static>(
    conn: &Arc<Connection>,
    work: impl FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let conn = conn.clone();
    tokio::task::spawn_blocking(move || work(&conn))
        .await
        .map_err(|e| anyhow!("an Oracle call stopped: {e}"))?
}

/// Connects (on a blocking thread).
pub async fn connect(url: &ConnUrl) -> anyhow::Result<Arc<Connection>> {
    let url = url.clone();
    let conn = tokio::task::spawn_blocking(move || conn::connect(&url))
        .await
        .map_err(|e| anyhow!("connecting to Oracle stopped: {e}"))??;
    Ok(Arc::new(conn))
}

fn ora_code(e: &molt_core::oracle::driver::Error) -> Option<i32> {
    e.db_error().map(|d| d.code())
}

/// The trigger freeze makes for one table.
pub fn expected(phase: &str, spec: &FreezeSpec, started_at: f64) -> FreezeRecord {
    FreezeRecord {
        phase: phase.to_string(),
        table: spec.table.clone(),
        engine: "oracle".into(),
        triggers: vec![freeze_trigger_name(&spec.table, phase)],
        functions: Vec::new(),
        started_at,
    }
}

/// `(status, valid)` of a trigger, `None` when it does not exist.
fn trigger_state(
    conn: &Connection,
    owner: &str,
    name: &str,
) -> Result<Option<(String, bool)>, OracleError> {
    let status = match conn.query_row_as::<String>(FREEZE_EXISTS_SQL, &[&owner, &name]) {
        Ok(s) => s,
        Err(e) if e.kind() == molt_core::oracle::driver::ErrorKind::NoDataFound => return Ok(None),
        Err(e) => return Err(OracleError::db(format!("looking up trigger {name}"), &e)),
    };
    let valid = conn
        .query_row_as::<String>(TRIGGER_VALID_SQL, &[&owner, &name])
        .map(|s| s == "VALID")
        .map_err(|e| OracleError::db(format!("checking trigger {name}"), &e))?;
    Ok(Some((status, valid)))
}

/// `DROP TRIGGER`; a trigger that is already gone is fine.
fn drop_trigger(
    conn: &Connection,
    table: &TableName,
    phase: &str,
    trigger: &str,
) -> anyhow::Result<()> {
    match conn.execute(&drop_sql(table, phase, trigger), &[]) {
        Ok(_) => Ok(()),
        Err(e) if ora_code(&e) == Some(NO_SUCH_TRIGGER) => Ok(()),
        Err(e) => Err(OracleError::db(format!("dropping trigger {trigger} on {table}"), &e).into()),
    }
}

fn lock_timeout_sql(wait_secs: u64) -> String {
    // DDL_LOCK_TIMEOUT is at most 1,000,000 seconds.
    format!(
        "ALTER SESSION SET DDL_LOCK_TIMEOUT = {}",
        wait_secs.clamp(1, 1_000_000)
    )
}

/// The freeze's statements: the DDL lock timeout, then one CREATE OR
/// REPLACE TRIGGER per table. Reads the catalog only.
fn plan_freeze(
    conn: &Connection,
    phase: &str,
    specs: &[FreezeSpec],
    wait_secs: u64,
) -> anyhow::Result<Script> {
    let mut script = Script::new("oracle", false);
    script.run(None, Action::Setting, lock_timeout_sql(wait_secs));
    for spec in specs {
        let table = &spec.table;
        let name = freeze_trigger_name(table, phase);
        let existed = trigger_state(conn, &table.schema, &name)?.is_some();
        let source = find_table(conn, table, &BuildOptions::default())?.with_context(|| {
            format!("table {table} does not exist on the source (or is not visible)")
        })?;
        script.note(match &spec.predicate {
            Some(p) => format!("{table}: rows where {p}"),
            None => format!("{table}: every row"),
        });
        if existed {
            script.note(format!("trigger {name} on {table} exists: replaced"));
        }
        script.run(
            Some(table),
            Action::CreateTrigger {
                name,
                replaces: existed,
            },
            freeze_trigger_sql(
                table,
                &source.source_columns,
                phase,
                spec.predicate.as_deref(),
            ),
        );
    }
    Ok(script)
}

/// Runs one trigger's CREATE and checks that it compiled.
fn create_trigger(
    conn: &Connection,
    phase: &str,
    table: &TableName,
    name: &str,
    sql: &str,
    wait_secs: u64,
) -> anyhow::Result<()> {
    if let Err(e) = conn.execute(sql, &[]) {
        return Err(
            if ora_code(&e).is_some_and(|c| LOCK_TIMEOUTS.contains(&c)) {
                anyhow!(
                "phase {phase}: freezing {table}: in-flight transactions still hold the table after {wait_secs}s \
                 (--wait-timeout); the triggers created so far were dropped again. Let them finish and run freeze again"
            )
            } else {
                OracleError::db(
                format!("phase {phase}: creating trigger {name} on {table} (is the filter valid SQL for its columns?)"),
                &e,
            )
            .into()
            },
        );
    }
    let compiled = conn.last_warning().map(|w| w.to_string());
    match trigger_state(conn, &table.schema, name)? {
        Some((status, true)) if status == "ENABLED" && compiled.is_none() => Ok(()),
        state => {
            // An invalid trigger would refuse every write to the table.
            let _ = drop_trigger(conn, table, phase, name);
            let why = match (state, compiled) {
                (_, Some(w)) => molt_core::url::redact_text(w.lines().next().unwrap_or("")),
                (None, None) => "it does not exist after CREATE".into(),
                (Some((status, valid)), None) => {
                    format!(
                        "it is {status} and {}",
                        if valid { "VALID" } else { "INVALID" }
                    )
                }
            };
            Err(anyhow!(
                "phase {phase}: trigger {name} on {table} did not compile cleanly ({why}); it was dropped again \
                 (is the filter valid Oracle SQL for the table's columns?)"
            ))
        }
    }
}

/// The script a freeze would run (on a blocking thread; catalog reads only).
pub async fn freeze_script(
    conn: &Arc<Connection>,
    phase: &str,
    specs: &[FreezeSpec],
    wait_secs: u64,
) -> anyhow::Result<Script> {
    let phase = phase.to_string();
    let specs = specs.to_vec();
    blocking(conn, move |conn| {
        plan_freeze(conn, &phase, &specs, wait_secs)
    })
    .await
}

/// Freezes every table; on failure drops what this run created.
pub async fn freeze(
    conn: &Arc<Connection>,
    phase: &str,
    specs: &[FreezeSpec],
    wait_secs: u64,
) -> anyhow::Result<Vec<FreezeRecord>> {
    let phase = phase.to_string();
    let specs = specs.to_vec();
    blocking(conn, move |conn| {
        let started_at = molt_core::ledger::now_epoch();
        let script = plan_freeze(conn, &phase, &specs, wait_secs)?;
        let mut created: Vec<(&TableName, &str)> = Vec::new();
        for step in script.steps() {
            let result = match (&step.action, &step.table) {
                (Action::CreateTrigger { name, replaces }, Some(table)) => {
                    create_trigger(conn, &phase, table, name, &step.sql, wait_secs).map(|()| {
                        if !replaces {
                            created.push((table, name));
                        }
                    })
                }
                _ => conn
                    .execute(&step.sql, &[])
                    .map(|_| ())
                    .map_err(|e| OracleError::db("setting DDL_LOCK_TIMEOUT", &e).into()),
            };
            if let Err(error) = result {
                for (table, name) in created.iter().rev() {
                    if let Err(e) = drop_trigger(conn, table, &phase, name) {
                        molt_core::warn!(
                            "could not drop trigger {name} on {table} after the failed freeze: {e}"
                        );
                    }
                }
                return Err(error);
            }
        }
        Ok(specs
            .iter()
            .map(|spec| expected(&phase, spec, started_at))
            .collect())
    })
    .await
}

fn drop_sql(table: &TableName, phase: &str, trigger: &str) -> String {
    if trigger == freeze_trigger_name(table, phase) {
        unfreeze_sql(table, phase)
    } else {
        format!(
            "DROP TRIGGER {}.{}",
            quote_oracle(&table.schema),
            quote_oracle(trigger)
        )
    }
}

/// The unfreeze's statements: the recorded triggers that exist.
fn plan_unfreeze(
    conn: &Connection,
    records: &[FreezeRecord],
    wait_secs: u64,
) -> anyhow::Result<Script> {
    let mut script = Script::new("oracle", false);
    script.run(None, Action::Setting, lock_timeout_sql(wait_secs));
    for record in records {
        script.note(format!("{} (phase {})", record.table, record.phase));
        for trigger in &record.triggers {
            if trigger_state(conn, &record.table.schema, trigger)?.is_none() {
                script.note(format!("trigger {trigger} does not exist"));
                continue;
            }
            script.run(
                Some(&record.table),
                Action::DropTrigger {
                    name: trigger.clone(),
                },
                drop_sql(&record.table, &record.phase, trigger),
            );
        }
    }
    Ok(script)
}

/// The script an unfreeze would run (on a blocking thread).
pub async fn unfreeze_script(
    conn: &Arc<Connection>,
    records: &[FreezeRecord],
    wait_secs: u64,
) -> anyhow::Result<Script> {
    let records = records.to_vec();
    blocking(conn, move |conn| plan_unfreeze(conn, &records, wait_secs)).await
}

/// Drops the recorded triggers (if they exist).
pub async fn unfreeze(
    conn: &Arc<Connection>,
    records: &[FreezeRecord],
    wait_secs: u64,
) -> anyhow::Result<()> {
    let records = records.to_vec();
    blocking(conn, move |conn| {
        let script = plan_unfreeze(conn, &records, wait_secs)?;
        for step in script.steps() {
            let (Action::DropTrigger { name }, Some(table)) = (&step.action, &step.table) else {
                conn.execute(&step.sql, &[])
                    .map_err(|e| OracleError::db("setting DDL_LOCK_TIMEOUT", &e))?;
                continue;
            };
            let phase = records
                .iter()
                .find(|r| &r.table == table)
                .map(|r| r.phase.as_str())
                .unwrap_or_default();
            drop_trigger(conn, table, phase, name).map_err(|e| {
                e.context(format!(
                    "phase {phase}: unfreezing {table} (--wait-timeout {wait_secs}s)"
                ))
            })?;
        }
        Ok(())
    })
    .await
}

/// Recorded triggers that are missing, disabled or invalid on the source.
pub async fn missing_triggers(
    conn: &Arc<Connection>,
    record: &FreezeRecord,
) -> anyhow::Result<Vec<String>> {
    let record = record.clone();
    blocking(conn, move |conn| {
        let mut missing = Vec::new();
        for trigger in &record.triggers {
            match trigger_state(conn, &record.table.schema, trigger)? {
                None => missing.push(format!("{trigger} (missing)")),
                Some((status, _)) if status != "ENABLED" => {
                    missing.push(format!("{trigger} ({})", status.to_lowercase()))
                }
                Some((_, false)) => missing.push(format!("{trigger} (invalid)")),
                Some(_) => {}
            }
        }
        Ok(missing)
    })
    .await
}

/// Closes the connection (on a blocking thread).
pub async fn close(conn: Arc<Connection>) {
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(c) = Arc::try_unwrap(conn) {
            let _ = c.close();
        }
    })
    .await;
}
