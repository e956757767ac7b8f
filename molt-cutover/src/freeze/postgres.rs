//! The PostgreSQL freeze: one plpgsql function and two triggers per table.
//!
//! For a table `t` of phase `A` with predicate `P` freeze creates, in the
//! table's schema (`<stem>` from [`super::object_stem`]):
//!
//! ```sql
//! CREATE OR REPLACE FUNCTION "public"."<stem>"() RETURNS trigger LANGUAGE plpgsql AS $molt_freeze$
//! #variable_conflict use_column
//! BEGIN
//!   IF TG_OP = 'TRUNCATE' THEN RAISE EXCEPTION '%', '<message>'; END IF;
//!   IF TG_OP IN ('UPDATE', 'DELETE') THEN
//!     IF EXISTS (SELECT 1 FROM (SELECT OLD.*) AS t WHERE (P)) THEN RAISE EXCEPTION ...; END IF;
//!   END IF;
//!   IF TG_OP IN ('INSERT', 'UPDATE') THEN
//!     IF EXISTS (SELECT 1 FROM (SELECT NEW.*) AS t WHERE (P)) THEN RAISE EXCEPTION ...; END IF;
//!   END IF;
//!   IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
//!   RETURN NEW;
//! END $molt_freeze$;
//! CREATE TRIGGER "<stem>" BEFORE INSERT OR UPDATE OR DELETE ON "public"."t"
//!   FOR EACH ROW EXECUTE FUNCTION "public"."<stem>"();
//! CREATE TRIGGER "<stem>_t" BEFORE TRUNCATE ON "public"."t"
//!   FOR EACH STATEMENT EXECUTE FUNCTION "public"."<stem>"();
//! ```
//!
//! A whole-table slice raises unconditionally. TRUNCATE is rejected for
//! filtered slices too: it would remove the frozen rows with the others.
//!
//! All tables are frozen in one transaction under `SET LOCAL lock_timeout`,
//! so a phase is frozen entirely or not at all. An existing trigger is not
//! re-created (that would need an ACCESS EXCLUSIVE lock); its function is
//! replaced, so a re-run with a changed predicate takes effect. Which
//! triggers exist is read inside that transaction, and the statements are
//! the [`Script`] that `--dry-run` prints.

use anyhow::{bail, Context};
use molt_core::ident::{literal_pg, quote_pg, quote_pg_table};
use molt_core::ledger::FreezeRecord;
use molt_core::stream::TableName;
use tokio_postgres::{Client, GenericClient};

use super::{message, object_stem, Action, FreezeSpec, Script};

const DOLLAR_TAG: &str = "$molt_freeze$";

/// The objects freeze makes for one table.
pub fn expected(phase: &str, spec: &FreezeSpec, started_at: f64) -> FreezeRecord {
    let stem = object_stem(phase, &spec.table);
    FreezeRecord {
        phase: phase.to_string(),
        table: spec.table.clone(),
        engine: "postgres".into(),
        triggers: vec![stem.clone(), format!("{stem}_t")],
        functions: vec![TableName::new(spec.table.schema.clone(), stem)],
        started_at,
    }
}

/// The trigger function's SQL.
pub fn function_sql(phase: &str, spec: &FreezeSpec) -> anyhow::Result<String> {
    let stem = object_stem(phase, &spec.table);
    let function = quote_pg_table(&TableName::new(spec.table.schema.clone(), stem));
    let raise = format!(
        "RAISE EXCEPTION USING MESSAGE = {}",
        literal_pg(&message(phase, &spec.table))
    );
    let checks = match &spec.predicate {
        None => format!("  {raise};\n"),
        Some(p) => {
            if p.contains(DOLLAR_TAG) {
                bail!(
                    "phase {phase}: the filter of {} contains {DOLLAR_TAG}, which cannot be put into a trigger function",
                    spec.table
                );
            }
            format!(
                "  IF TG_OP = 'TRUNCATE' THEN {raise}; END IF;\n\
                 \x20 IF TG_OP IN ('UPDATE', 'DELETE') THEN\n\
                 \x20   IF EXISTS (SELECT 1 FROM (SELECT OLD.*) AS t WHERE ({p})) THEN {raise}; END IF;\n\
                 \x20 END IF;\n\
                 \x20 IF TG_OP IN ('INSERT', 'UPDATE') THEN\n\
                 \x20   IF EXISTS (SELECT 1 FROM (SELECT NEW.*) AS t WHERE ({p})) THEN {raise}; END IF;\n\
                 \x20 END IF;\n"
            )
        }
    };
    Ok(format!(
        "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS {DOLLAR_TAG}\n\
         #variable_conflict use_column\n\
         BEGIN\n{checks}  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;\n  RETURN NEW;\nEND\n{DOLLAR_TAG}"
    ))
}

/// The trigger statements: (trigger name, SQL).
pub fn trigger_sql(phase: &str, spec: &FreezeSpec) -> Vec<(String, String)> {
    let stem = object_stem(phase, &spec.table);
    let function = quote_pg_table(&TableName::new(spec.table.schema.clone(), stem.clone()));
    let table = quote_pg_table(&spec.table);
    let truncate = format!("{stem}_t");
    vec![
        (
            stem.clone(),
            format!(
                "CREATE TRIGGER {} BEFORE INSERT OR UPDATE OR DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION {function}()",
                quote_pg(&stem)
            ),
        ),
        (
            truncate.clone(),
            format!(
                "CREATE TRIGGER {} BEFORE TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
                quote_pg(&truncate)
            ),
        ),
    ]
}

fn is_lock_timeout(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| c.code() == "55P03")
}

fn lock_timeout_sql(wait_secs: u64) -> String {
    format!("SET LOCAL lock_timeout = '{}s'", wait_secs.max(1))
}

async fn trigger_exists(
    client: &impl GenericClient,
    table: &TableName,
    name: &str,
) -> anyhow::Result<bool> {
    let row = client
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_trigger g JOIN pg_catalog.pg_class c ON c.oid = g.tgrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND g.tgname = $3",
            &[&table.schema, &table.name, &name],
        )
        .await
        .map_err(|e| anyhow::anyhow!(molt_core::target::describe(&e)))
        .with_context(|| format!("looking up trigger {name} on {table}"))?;
    Ok(row.is_some())
}

async fn table_exists(client: &impl GenericClient, table: &TableName) -> anyhow::Result<bool> {
    let row = client
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&table.schema, &table.name],
        )
        .await
        .map_err(|e| anyhow::anyhow!(molt_core::target::describe(&e)))
        .with_context(|| format!("looking up table {table}"))?;
    Ok(row.is_some())
}

/// The freeze's statements, run in one transaction: the lock timeout, then
/// per table its function (always: a changed predicate takes effect) and
/// the triggers that do not exist yet. Reads the catalog only.
pub async fn freeze_script(
    client: &impl GenericClient,
    phase: &str,
    specs: &[FreezeSpec],
    wait_secs: u64,
) -> anyhow::Result<Script> {
    let mut script = Script::new("postgres", true);
    script.run(None, Action::Setting, lock_timeout_sql(wait_secs));
    for spec in specs {
        script.note(match &spec.predicate {
            Some(p) => format!("{}: rows where {p}", spec.table),
            None => format!("{}: every row", spec.table),
        });
        script.run(
            Some(&spec.table),
            Action::Function,
            function_sql(phase, spec)?,
        );
        for (name, sql) in trigger_sql(phase, spec) {
            if trigger_exists(client, &spec.table, &name).await? {
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

/// Freezes every table in one transaction.
pub async fn freeze(
    client: &mut Client,
    phase: &str,
    specs: &[FreezeSpec],
    wait_secs: u64,
) -> anyhow::Result<Vec<FreezeRecord>> {
    let started_at = molt_core::ledger::now_epoch();
    let tx = client
        .transaction()
        .await
        .map_err(|e| anyhow::anyhow!(molt_core::target::describe(&e)))
        .context("starting the freeze transaction")?;
    let script = freeze_script(&tx, phase, specs, wait_secs).await?;
    for step in script.steps() {
        let Err(e) = tx.batch_execute(&step.sql).await else {
            continue;
        };
        let table = step
            .table
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let describe = || anyhow::anyhow!(molt_core::target::describe(&e));
        return Err(match &step.action {
            Action::Setting => describe().context("setting lock_timeout"),
            Action::Function => describe().context(format!(
                "phase {phase}: creating the freeze function of {table} (is the filter valid SQL for its columns?)"
            )),
            Action::CreateTrigger { .. } if is_lock_timeout(&e) => anyhow::anyhow!(
                "phase {phase}: freezing {table}: in-flight transactions still hold the table after {wait_secs}s \
                 (--wait-timeout); nothing was frozen. Let them finish (or stop them) and run freeze again"
            ),
            Action::CreateTrigger { name, .. } => {
                describe().context(format!("phase {phase}: creating trigger {name} on {table}"))
            }
            Action::DropTrigger { .. } | Action::DropFunction { .. } => describe(),
        });
    }
    tx.commit()
        .await
        .map_err(|e| anyhow::anyhow!(molt_core::target::describe(&e)))
        .with_context(|| format!("phase {phase}: committing the freeze"))?;
    Ok(specs
        .iter()
        .map(|spec| expected(phase, spec, started_at))
        .collect())
}

/// The unfreeze's statements, run in one transaction: the recorded
/// triggers (of tables that still exist) and functions, each `IF EXISTS`.
pub async fn unfreeze_script(
    client: &impl GenericClient,
    records: &[FreezeRecord],
    wait_secs: u64,
) -> anyhow::Result<Script> {
    let mut script = Script::new("postgres", true);
    script.run(None, Action::Setting, lock_timeout_sql(wait_secs));
    for record in records {
        script.note(format!("{} (phase {})", record.table, record.phase));
        if table_exists(client, &record.table).await? {
            for trigger in &record.triggers {
                script.run(
                    Some(&record.table),
                    Action::DropTrigger {
                        name: trigger.clone(),
                    },
                    format!(
                        "DROP TRIGGER IF EXISTS {} ON {}",
                        quote_pg(trigger),
                        quote_pg_table(&record.table)
                    ),
                );
            }
        } else {
            script.note(format!(
                "{} does not exist: no triggers to drop",
                record.table
            ));
        }
        for function in &record.functions {
            script.run(
                Some(&record.table),
                Action::DropFunction {
                    name: function.clone(),
                },
                format!("DROP FUNCTION IF EXISTS {}()", quote_pg_table(function)),
            );
        }
    }
    Ok(script)
}

/// Drops the recorded triggers and functions, in one transaction.
pub async fn unfreeze(
    client: &mut Client,
    records: &[FreezeRecord],
    wait_secs: u64,
) -> anyhow::Result<()> {
    let tx = client
        .transaction()
        .await
        .map_err(|e| anyhow::anyhow!(molt_core::target::describe(&e)))
        .context("starting the unfreeze transaction")?;
    let script = unfreeze_script(&tx, records, wait_secs).await?;
    for step in script.steps() {
        let Err(e) = tx.batch_execute(&step.sql).await else {
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
        let describe = || anyhow::anyhow!(molt_core::target::describe(&e));
        return Err(match &step.action {
            Action::DropTrigger { .. } if is_lock_timeout(&e) => anyhow::anyhow!(
                "phase {phase}: unfreezing {table}: transactions still hold the table after {wait_secs}s \
                 (--wait-timeout); nothing was unfrozen"
            ),
            Action::DropTrigger { name } => {
                describe().context(format!("dropping trigger {name} on {table}"))
            }
            Action::DropFunction { name } => describe().context(format!("dropping function {name}")),
            Action::Setting | Action::Function | Action::CreateTrigger { .. } => describe(),
        });
    }
    tx.commit()
        .await
        .map_err(|e| anyhow::anyhow!(molt_core::target::describe(&e)))
        .context("committing the unfreeze")?;
    Ok(())
}

/// Recorded triggers that are missing on the source or disabled.
pub async fn missing_triggers(
    client: &Client,
    record: &FreezeRecord,
) -> anyhow::Result<Vec<String>> {
    let mut missing = Vec::new();
    for trigger in &record.triggers {
        let row = client
            .query_opt(
                "SELECT g.tgenabled::TEXT FROM pg_catalog.pg_trigger g JOIN pg_catalog.pg_class c ON c.oid = g.tgrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 AND g.tgname = $3",
                &[&record.table.schema, &record.table.name, trigger],
            )
            .await
            .map_err(|e| anyhow::anyhow!(molt_core::target::describe(&e)))
            .with_context(|| format!("looking up trigger {trigger} on {}", record.table))?;
        match row {
            None => missing.push(format!("{trigger} (missing)")),
            Some(r) if r.get::<_, String>(0) == "D" => {
                missing.push(format!("{trigger} (disabled)"))
            }
            Some(_) => {}
        }
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_checks_old_and_new() {
        let spec = FreezeSpec {
            table: TableName::new("public", "orders"),
            predicate: Some("region = 'A'".into()),
        };
        let sql = function_sql("A", &spec).unwrap();
        assert!(
            sql.contains("(SELECT OLD.*) AS t WHERE (region = 'A')"),
            "{sql}"
        );
        assert!(
            sql.contains("(SELECT NEW.*) AS t WHERE (region = 'A')"),
            "{sql}"
        );
        assert!(sql.contains("phase A is frozen"), "{sql}");
        let bad = FreezeSpec {
            table: spec.table.clone(),
            predicate: Some("x = $molt_freeze$".into()),
        };
        assert!(function_sql("A", &bad).is_err());
    }
}
