//! Finalize: the indexes and constraints deferred by loading.
//!
//! Loading creates tables with their primary key only, because rows load
//! faster without secondary indexes and because a foreign key cannot hold
//! while its referenced phase is not loaded yet. Once the tables hold their
//! rows, finalize creates, in dependency order:
//!
//! 1. secondary indexes and unique constraints (foreign keys need the
//!    referenced columns to be unique);
//! 2. CHECK constraints;
//! 3. foreign keys, validated against the rows;
//! 4. sequences moved past the loaded rows ([`super::sequences`]).
//!
//! Everything that already exists is left alone, so finalize is idempotent
//! and safe to run after each phase, including when an earlier phase
//! finalized the same table. What cannot be translated (expression, partial
//! or gin/gist/fulltext indexes) is skipped with a notice, never guessed.
//!
//! The statements come from [`plan`] (no database needed) and whether each
//! object exists from [`exists`] (a catalog read), so a dry run that prints
//! them shows exactly what [`finalize`] runs.

use tokio_postgres::Client;

use super::sequences::{set_sequences, SequenceOutcome};
use super::{describe, DbContext, Result};
use crate::ident::{quote_pg, quote_pg_table};
use crate::stream::{ForeignKey, Index, TableHeader, TableName};

/// What finalize did.
#[derive(Debug, Default)]
pub struct FinalizeReport {
    /// Objects created now (`table: kind name`).
    pub created: Vec<String>,
    /// Objects that already existed.
    pub existing: Vec<String>,
    /// Objects not created because they cannot be translated, with why.
    pub skipped: Vec<String>,
    /// Objects whose creation failed (e.g. a foreign key the rows violate).
    pub failed: Vec<String>,
    pub sequences: Vec<SequenceOutcome>,
}

impl FinalizeReport {
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }
}

/// One statement finalize wants to run.
#[derive(Clone, Debug)]
pub struct Step {
    pub table: TableName,
    /// `index`, `unique index`, `unique constraint`, `check`, `foreign key`.
    pub kind: &'static str,
    pub name: String,
    pub sql: String,
    exists: Exists,
}

impl Step {
    /// `table: kind name`, as the report lists it.
    pub fn label(&self) -> String {
        format!("{}: {} {}", self.table, self.kind, self.name)
    }
}

#[derive(Clone, Copy, Debug)]
enum Exists {
    Index,
    Constraint,
}

/// What finalize would run for some tables: every statement in dependency
/// order (indexes and unique constraints, checks, foreign keys), and the
/// objects it cannot translate, with why.
#[derive(Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub skipped: Vec<String>,
}

/// The statements that finalize `tables` (see [`finalize`]); nothing is
/// read from the database.
pub fn plan(tables: &[(TableName, TableHeader)], known: &[(TableName, TableHeader)]) -> Plan {
    let mut plan = Plan::default();
    for (target, header) in tables {
        for index in &header.indexes {
            match index_step(target, header, index) {
                Ok(step) => plan.steps.push(step),
                Err(why) => plan
                    .skipped
                    .push(format!("{target}: index {}: {why}", index.name)),
            }
        }
    }
    for (target, header) in tables {
        for check in &header.checks {
            plan.steps.push(Step {
                table: target.clone(),
                kind: "check",
                name: check.name.clone(),
                sql: format!(
                    "ALTER TABLE {} ADD CONSTRAINT {} CHECK ({})",
                    quote_pg_table(target),
                    quote_pg(&check.name),
                    check.expression
                ),
                exists: Exists::Constraint,
            });
        }
    }
    for (target, header) in tables {
        for fk in &header.foreign_keys {
            match fk_step(target, fk, tables, known) {
                Ok(step) => plan.steps.push(step),
                Err(why) => plan
                    .skipped
                    .push(format!("{target}: foreign key {}: {why}", fk.name)),
            }
        }
    }
    plan
}

/// Finalizes `tables` (target name, stored header, e.g. from
/// [`super::ledger::Ledger::stored_headers`]). `known` are all tables molt
/// loaded (a superset), used to find where a foreign key's referenced table
/// landed. Database errors on single objects are collected in the report;
/// only errors that stop finalize as a whole (a lost connection) are
/// returned as `Err`.
pub async fn finalize(
    client: &Client,
    tables: &[(TableName, TableHeader)],
    known: &[(TableName, TableHeader)],
) -> Result<FinalizeReport> {
    let Plan { steps, skipped } = plan(tables, known);
    let mut report = FinalizeReport {
        skipped,
        ..FinalizeReport::default()
    };
    for step in steps {
        let label = step.label();
        if exists(client, &step).await? {
            report.existing.push(label);
            continue;
        }
        match client.batch_execute(&step.sql).await {
            Ok(()) => report.created.push(label),
            Err(e) if super::retry::is_transient(&e) && client.is_closed() => {
                return Err(super::TargetError::db(format!("finalizing {label}"), e))
            }
            // A check in the source's dialect the target cannot parse.
            Err(e)
                if step.kind == "check" && e.code().is_some_and(|c| c.code().starts_with("42")) =>
            {
                report
                    .skipped
                    .push(format!("{label}: not translatable: {}", describe(&e)))
            }
            Err(e) => report.failed.push(format!("{label}: {}", describe(&e))),
        }
    }
    for (target, header) in tables {
        match set_sequences(client, header, target).await {
            Ok(done) => report.sequences.extend(done),
            Err(e) => report.failed.push(format!("{target}: sequences: {e}")),
        }
    }
    Ok(report)
}

/// Whether the object a step creates exists on the target already.
pub async fn exists(client: &Client, step: &Step) -> Result<bool> {
    let t = &step.table;
    let row = match step.exists {
        Exists::Index => client
            .query_opt(
                "SELECT 1 FROM pg_catalog.pg_indexes WHERE schemaname = $1 AND tablename = $2 AND indexname = $3",
                &[&t.schema, &t.name, &step.name],
            )
            .await
            .ctx(|| format!("looking up index {} of {t}", step.name))?,
        Exists::Constraint => client
            .query_opt(
                "SELECT 1 FROM information_schema.table_constraints \
                 WHERE table_schema = $1 AND table_name = $2 AND constraint_name = $3",
                &[&t.schema, &t.name, &step.name],
            )
            .await
            .ctx(|| format!("looking up constraint {} of {t}", step.name))?,
    };
    Ok(row.is_some())
}

/// A key column of an index as SQL, when it is a plain column (optionally
/// with ASC/DESC).
fn index_column(header: &TableHeader, text: &str) -> Option<String> {
    let trimmed = text.trim();
    if header.columns.iter().any(|c| c.name == trimmed) {
        return Some(quote_pg(trimmed));
    }
    for dir in [" DESC", " ASC", " desc", " asc"] {
        if let Some(name) = trimmed.strip_suffix(dir) {
            if header.columns.iter().any(|c| c.name == name.trim()) {
                return Some(format!(
                    "{}{}",
                    quote_pg(name.trim()),
                    dir.to_ascii_uppercase()
                ));
            }
        }
    }
    None
}

fn index_step(
    target: &TableName,
    header: &TableHeader,
    index: &Index,
) -> std::result::Result<Step, String> {
    if let Some(method) = index
        .method
        .as_deref()
        .filter(|m| !m.eq_ignore_ascii_case("btree"))
    {
        return Err(format!(
            "{method} indexes are not translated; create it by hand"
        ));
    }
    if index.predicate.is_some() {
        return Err(
            "partial index (its predicate is in the source dialect); create it by hand".into(),
        );
    }
    let columns: Vec<String> = index
        .columns
        .iter()
        .map(|c| {
            index_column(header, c).ok_or_else(|| {
                format!("key {c:?} is an expression, not a column; create it by hand")
            })
        })
        .collect::<std::result::Result<_, _>>()?;
    if columns.is_empty() {
        return Err("no key columns".into());
    }
    let table = quote_pg_table(target);
    if index.unique && index.constraint {
        return Ok(Step {
            table: target.clone(),
            kind: "unique constraint",
            name: index.name.clone(),
            sql: format!(
                "ALTER TABLE {table} ADD CONSTRAINT {} UNIQUE ({})",
                quote_pg(&index.name),
                columns.join(", ")
            ),
            exists: Exists::Constraint,
        });
    }
    Ok(Step {
        table: target.clone(),
        kind: if index.unique {
            "unique index"
        } else {
            "index"
        },
        name: index.name.clone(),
        sql: format!(
            "CREATE {}INDEX IF NOT EXISTS {} ON {table} ({})",
            if index.unique { "UNIQUE " } else { "" },
            quote_pg(&index.name),
            columns.join(", ")
        ),
        exists: Exists::Index,
    })
}

/// Referential actions accepted as they are; anything else is refused
/// rather than pasted into SQL.
fn action(text: Option<&str>) -> std::result::Result<Option<&'static str>, String> {
    let Some(text) = text else { return Ok(None) };
    let upper = text.trim().to_ascii_uppercase();
    for known in [
        "NO ACTION",
        "RESTRICT",
        "CASCADE",
        "SET NULL",
        "SET DEFAULT",
    ] {
        if upper == known {
            return Ok(Some(known));
        }
    }
    Err(format!("unknown referential action {text:?}"))
}

fn fk_step(
    target: &TableName,
    fk: &ForeignKey,
    tables: &[(TableName, TableHeader)],
    known: &[(TableName, TableHeader)],
) -> std::result::Result<Step, String> {
    if fk.columns.is_empty() || fk.columns.len() != fk.referenced_columns.len() {
        return Err("column lists are empty or of different lengths".into());
    }
    // The referenced table where it landed, when it was loaded with molt.
    let referenced = tables
        .iter()
        .chain(known)
        .find(|(_, h)| h.table == fk.references)
        .map_or_else(|| fk.references.clone(), |(t, _)| t.clone());
    let cols: Vec<String> = fk.columns.iter().map(|c| quote_pg(c)).collect();
    let refs: Vec<String> = fk.referenced_columns.iter().map(|c| quote_pg(c)).collect();
    let mut sql = format!(
        "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({})",
        quote_pg_table(target),
        quote_pg(&fk.name),
        cols.join(", "),
        quote_pg_table(&referenced),
        refs.join(", ")
    );
    if let Some(a) = action(fk.on_delete.as_deref())? {
        sql.push_str(&format!(" ON DELETE {a}"));
    }
    if let Some(a) = action(fk.on_update.as_deref())? {
        sql.push_str(&format!(" ON UPDATE {a}"));
    }
    Ok(Step {
        table: target.clone(),
        kind: "foreign key",
        name: fk.name.clone(),
        sql,
        exists: Exists::Constraint,
    })
}
