//! The foreign keys a target table already has.
//!
//! Tables are created without foreign keys, and finalize adds them after a
//! phase. Loading a later phase into such tables must then respect them:
//! a child's rows can only be copied once the parent rows they reference
//! are there, and a slice's old rows can only be deleted child first. So
//! molt-load asks the target, before each table's first section, which
//! tables its foreign keys reference. `pg_constraint` answers that on both
//! PostgreSQL and CockroachDB, so no flavour-specific SQL is needed.

use super::{DbContext, Result};
use crate::stream::TableName;

/// The SQLSTATE of a foreign key violation (a child row without its parent,
/// or a parent row still referenced).
pub const FOREIGN_KEY_VIOLATION: &str = "23503";

/// The tables that `table`'s foreign keys reference, itself excluded
/// (a self-reference orders nothing between sections), sorted, without
/// duplicates. Empty when the table does not exist.
pub async fn referenced_tables(
    client: &tokio_postgres::Client,
    table: &TableName,
) -> Result<Vec<TableName>> {
    let rows = client
        .query(
            "SELECT DISTINCT rn.nspname::TEXT, rc.relname::TEXT
               FROM pg_catalog.pg_constraint c
               JOIN pg_catalog.pg_class cl ON cl.oid = c.conrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace
               JOIN pg_catalog.pg_class rc ON rc.oid = c.confrelid
               JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
              WHERE c.contype = 'f' AND n.nspname = $1 AND cl.relname = $2",
            &[&table.schema, &table.name],
        )
        .await
        .ctx(|| format!("reading the foreign keys of {table}"))?;
    let mut parents: Vec<TableName> = rows
        .iter()
        .map(|r| TableName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
        .filter(|t| t != table)
        .collect();
    parents.sort();
    parents.dedup();
    Ok(parents)
}
