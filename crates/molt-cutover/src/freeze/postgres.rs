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
//! replaced, so a re-run with a changed predicate takes effect.

use anyhow::{bail, Context};
use molt_core::ident::{literal_pg, quote_pg, quote_pg_table};
use molt_core::ledger::FreezeRecord;
use molt_core::stream::TableName;
use tokio_postgres::Client;

use super::{message, object_stem, FreezeSpec};

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

async fn trigger_exists(
    tx: &tokio_postgres::Transaction<'_>,
    table: &TableName,
    name: &str,
) -> anyhow::Result<bool> {
    let row = tx
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
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{}s'", wait_secs.max(1)))
        .await
        .map_err(|e| anyhow::anyhow!(molt_core::target::describe(&e)))
        .context("setting lock_timeout")?;
    let mut records = Vec::new();
    for spec in specs {
        let sql = function_sql(phase, spec)?;
        tx.batch_execute(&sql)
            .await
            .map_err(|e| anyhow::anyhow!(molt_core::target::describe(&e)))
            .with_context(|| {
                format!(
                    "phase {phase}: creating the freeze function of {} (is the filter valid SQL for its columns?)",
                    spec.table
                )
            })?;
        for (name, sql) in trigger_sql(phase, spec) {
            if trigger_exists(&tx, &spec.table, &name).await? {
                continue;
            }
            if let Err(e) = tx.batch_execute(&sql).await {
                if is_lock_timeout(&e) {
                    bail!(
                        "phase {phase}: freezing {}: in-flight transactions still hold the table after {wait_secs}s \
                         (--wait-timeout); nothing was frozen. Let them finish (or stop them) and run freeze again",
                        spec.table
                    );
                }
                return Err(anyhow::anyhow!(molt_core::target::describe(&e))).with_context(|| {
                    format!("phase {phase}: creating trigger {name} on {}", spec.table)
                });
            }
        }
        records.push(expected(phase, spec, started_at));
    }
    tx.commit()
        .await
        .map_err(|e| anyhow::anyhow!(molt_core::target::describe(&e)))
        .with_context(|| format!("phase {phase}: committing the freeze"))?;
    Ok(records)
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
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{}s'", wait_secs.max(1)))
        .await
        .map_err(|e| anyhow::anyhow!(molt_core::target::describe(&e)))?;
    for record in records {
        let exists = tx
            .query_opt(
                "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&record.table.schema, &record.table.name],
            )
            .await
            .map_err(|e| anyhow::anyhow!(molt_core::target::describe(&e)))?
            .is_some();
        if exists {
            for trigger in &record.triggers {
                let sql = format!(
                    "DROP TRIGGER IF EXISTS {} ON {}",
                    quote_pg(trigger),
                    quote_pg_table(&record.table)
                );
                if let Err(e) = tx.batch_execute(&sql).await {
                    if is_lock_timeout(&e) {
                        bail!(
                            "phase {}: unfreezing {}: transactions still hold the table after {wait_secs}s \
                             (--wait-timeout); nothing was unfrozen",
                            record.phase,
                            record.table
                        );
                    }
                    return Err(anyhow::anyhow!(molt_core::target::describe(&e))).with_context(
                        || format!("dropping trigger {trigger} on {}", record.table),
                    );
                }
            }
        }
        for function in &record.functions {
            let sql = format!("DROP FUNCTION IF EXISTS {}()", quote_pg_table(function));
            tx.batch_execute(&sql)
                .await
                .map_err(|e| anyhow::anyhow!(molt_core::target::describe(&e)))
                .with_context(|| format!("dropping function {function}"))?;
        }
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
