//! Creating target tables from a stream `table` header.
//!
//! A table is created with its columns and its PRIMARY KEY only: CockroachDB
//! stores rows in primary-key order and cannot add a primary key cheaply
//! later, while secondary indexes, unique constraints, foreign keys and
//! checks load faster (and in any order) when created after the rows, by
//! [`super::finalize`].
//!
//! The functions here only read the catalog and return statements; the
//! caller runs them (or prints them, for `--dry-run`).

use tokio_postgres::Client;

use super::{DbContext, Result, TargetError};
use crate::ident::{literal_pg, quote_pg, quote_pg_table};
use crate::stream::{Column, EnumType, TableHeader, TableName};

/// What to do with a table that already exists (`--table-handling`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TableHandling {
    /// The table must exist; never create or change it.
    None,
    /// Create missing tables; leave existing ones (and their rows) alone.
    CreateIfMissing,
    /// Empty an existing table first (all phases' rows!), create a missing one.
    TruncateIfExists,
    /// Drop and recreate the table (all phases' rows and its constraints!).
    DropAndRecreate,
}

/// The statements that make a table ready for loading.
#[derive(Debug, Default)]
pub struct TablePlan {
    pub statements: Vec<String>,
    /// The table's existing rows are gone (truncated or dropped), so ledger
    /// entries of its sections no longer describe it.
    pub emptied: bool,
    pub created: bool,
}

/// The target enum type of a column, with an optional schema override.
pub fn enum_target(e: &EnumType, schema_override: Option<&str>) -> TableName {
    TableName::new(schema_override.unwrap_or(&e.schema), e.name.clone())
}

/// The column's type as written in CREATE TABLE: the enum type (quoted,
/// with its array dimensions) or the header's `target_type`.
pub fn column_type(column: &Column, schema_override: Option<&str>) -> String {
    match &column.enum_type {
        Some(e) => {
            let mut t = quote_pg_table(&enum_target(e, schema_override));
            for _ in 0..column.array_dims {
                t.push_str("[]");
            }
            t
        }
        None => column.target_type.clone(),
    }
}

/// `header` with every type the target lacks replaced by the nearest one it
/// has, and a warning for each column changed that way. Today that is
/// CITEXT (a PostgreSQL source's `citext`): before CockroachDB v25.3, or
/// on a PostgreSQL without the extension, the column is TEXT, and
/// comparisons on it become case-sensitive.
pub async fn fit_types(
    target: &super::Target,
    header: &TableHeader,
    name: &TableName,
) -> Result<(TableHeader, Vec<String>)> {
    let is_citext = |c: &Column| {
        c.enum_type.is_none()
            && c.target_type
                .trim_end_matches("[]")
                .eq_ignore_ascii_case("citext")
    };
    if !header.columns.iter().any(is_citext) || super::flavour::has_citext(target).await? {
        return Ok((header.clone(), Vec::new()));
    }
    let mut fitted = header.clone();
    let mut warnings = Vec::new();
    for column in fitted.columns.iter_mut().filter(|c| is_citext(c)) {
        let brackets = &column.target_type[column.target_type.trim_end_matches("[]").len()..];
        column.target_type = format!("TEXT{brackets}");
        warnings.push(format!(
            "{name}.{}: the target has no CITEXT type ({} {}; CockroachDB has it from v25.3), so the column is {}: \
             its values are exact, but comparisons on it become case-sensitive",
            column.name,
            target.flavour.name(),
            if target.flavour.is_cockroach() { "before v25.3" } else { "without the citext extension" },
            column.target_type
        ));
    }
    Ok((fitted, warnings))
}

/// `CREATE TABLE` with columns and the primary key.
pub fn create_table_sql(
    header: &TableHeader,
    target: &TableName,
    schema_override: Option<&str>,
) -> String {
    let mut sql = format!("CREATE TABLE {} (", quote_pg_table(target));
    for (i, c) in header.columns.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&quote_pg(&c.name));
        sql.push(' ');
        sql.push_str(&column_type(c, schema_override));
        if !c.nullable {
            sql.push_str(" NOT NULL");
        }
        if let Some(default) = c
            .target_default
            .as_deref()
            .filter(|d| !d.to_ascii_lowercase().contains("nextval("))
        {
            // Sequence defaults are set once the sequence exists (sequences.rs).
            sql.push_str(" DEFAULT ");
            sql.push_str(default);
        }
    }
    let pk = header.primary_key();
    if !pk.is_empty() {
        let cols: Vec<String> = pk.iter().map(|c| quote_pg(&c.name)).collect();
        sql.push_str(&format!(", PRIMARY KEY ({})", cols.join(", ")));
    }
    sql.push(')');
    sql
}

/// `CREATE TYPE ... AS ENUM (...)`.
pub fn create_enum_sql(name: &TableName, labels: &[String]) -> String {
    let labels: Vec<String> = labels.iter().map(|l| literal_pg(l)).collect();
    format!(
        "CREATE TYPE {} AS ENUM ({})",
        quote_pg_table(name),
        labels.join(", ")
    )
}

pub async fn schema_exists(client: &Client, schema: &str) -> Result<bool> {
    let row = client
        .query_opt(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = $1",
            &[&schema],
        )
        .await
        .ctx(|| format!("looking up schema {schema}"))?;
    Ok(row.is_some())
}

pub async fn type_exists(client: &Client, name: &TableName) -> Result<bool> {
    let row = client
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
             WHERE n.nspname = $1 AND t.typname = $2",
            &[&name.schema, &name.name],
        )
        .await
        .ctx(|| format!("looking up type {name}"))?;
    Ok(row.is_some())
}

/// The table's column names in order, or `None` when it does not exist.
pub async fn table_columns(client: &Client, table: &TableName) -> Result<Option<Vec<String>>> {
    let exists = client
        .query_opt(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2",
            &[&table.schema, &table.name],
        )
        .await
        .ctx(|| format!("looking up table {table}"))?;
    if exists.is_none() {
        return Ok(None);
    }
    let rows = client
        .query(
            "SELECT column_name::TEXT FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 \
             ORDER BY ordinal_position",
            &[&table.schema, &table.name],
        )
        .await
        .ctx(|| format!("reading the columns of {table}"))?;
    Ok(Some(rows.iter().map(|r| r.get::<_, String>(0)).collect()))
}

/// Checks that every column of the header exists in the target table.
pub fn check_columns(header: &TableHeader, target: &TableName, existing: &[String]) -> Result<()> {
    let missing: Vec<&str> = header
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .filter(|n| !existing.iter().any(|e| e == n))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(TargetError::Invalid(format!(
        "table {target} exists on the target but has no column {} (stream columns: {}; target columns: {}); \
         fix the table or use --table-handling drop-and-recreate",
        missing.join(", "),
        header.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
        existing.join(", ")
    )))
}

/// Reads the catalog and returns what makes `target` ready for `header`'s
/// rows under `handling`.
pub async fn plan_table(
    client: &Client,
    header: &TableHeader,
    target: &TableName,
    handling: TableHandling,
    schema_override: Option<&str>,
) -> Result<TablePlan> {
    let mut plan = TablePlan::default();
    let existing = table_columns(client, target).await?;
    let quoted = quote_pg_table(target);
    let create = match (&existing, handling) {
        (None, TableHandling::None) => {
            return Err(TargetError::Invalid(format!(
                "table {target} does not exist on the target (--table-handling none never creates tables)"
            )))
        }
        (None, _) => true,
        (Some(cols), TableHandling::None | TableHandling::CreateIfMissing) => {
            check_columns(header, target, cols)?;
            false
        }
        (Some(cols), TableHandling::TruncateIfExists) => {
            check_columns(header, target, cols)?;
            plan.statements.push(format!("TRUNCATE TABLE {quoted}"));
            plan.emptied = true;
            false
        }
        (Some(_), TableHandling::DropAndRecreate) => {
            plan.statements.push(format!("DROP TABLE {quoted}"));
            plan.emptied = true;
            true
        }
    };
    if create {
        if !schema_exists(client, &target.schema).await? {
            plan.statements.push(format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                quote_pg(&target.schema)
            ));
        }
        let mut seen = Vec::new();
        for column in &header.columns {
            let Some(e) = &column.enum_type else { continue };
            let name = enum_target(e, schema_override);
            if seen.contains(&name) || type_exists(client, &name).await? {
                continue;
            }
            if name.schema != target.schema && !schema_exists(client, &name.schema).await? {
                plan.statements.push(format!(
                    "CREATE SCHEMA IF NOT EXISTS {}",
                    quote_pg(&name.schema)
                ));
            }
            plan.statements.push(create_enum_sql(&name, &e.labels));
            seen.push(name);
        }
        plan.statements
            .push(create_table_sql(header, target, schema_override));
        plan.created = true;
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_table_has_inline_primary_key_and_quotes() {
        let header: TableHeader = serde_json::from_value(serde_json::json!({
            "table": {"schema": "s", "name": "we\"ird"},
            "columns": [
                {"name": "b", "source_type": "int", "target_type": "INT8", "type": "int", "nullable": false, "pk": 2},
                {"name": "a", "source_type": "int", "target_type": "INT8", "type": "int", "nullable": false, "pk": 1,
                 "target_default": "nextval('s.a_seq')"},
                {"name": "m", "source_type": "mood", "target_type": "mood", "type": "enum", "nullable": true,
                 "enum_type": {"schema": "s", "name": "mood", "labels": ["x"]}, "target_default": "'x'"}
            ],
            "slice": {"table": {"schema": "s", "name": "t"}}
        }))
        .unwrap();
        let sql = create_table_sql(&header, header.target_name(), None);
        assert_eq!(
            sql,
            "CREATE TABLE \"s\".\"we\"\"ird\" (\"b\" INT8 NOT NULL, \"a\" INT8 NOT NULL, \"m\" \"s\".\"mood\" DEFAULT 'x', PRIMARY KEY (\"a\", \"b\"))"
        );
        assert_eq!(
            create_enum_sql(&TableName::new("s", "e"), &["it's".into()]),
            "CREATE TYPE \"s\".\"e\" AS ENUM ('it''s')"
        );
    }
}
