//! The ledger: what has been loaded into the target, kept in the target.
//!
//! Two tables in a schema of their own (`_molt` unless configured):
//!
//! - `tables`: each target table with the full stream header it was last
//!   loaded from. Finalize needs the deferred indexes, constraints and
//!   sequences, and the header is where they are described.
//! - `sections`: one row per section (phase, table, filter, shard) with
//!   its status (`loading`, `loaded`, `failed`), row count, bytes, digest,
//!   times and who loaded it. A section still `loading` after a crash is
//!   replaced on the next run; one `loaded` with the same digest is skipped.
//!
//! Keeping this in the target (not in a local file) means any machine can
//! resume or finalize, and the record commits with the data it describes.
//! Only portable SQL is used: TEXT, JSONB, TIMESTAMPTZ, INT8, primary keys
//! and `INSERT ... ON CONFLICT`.

use tokio_postgres::Client;

use super::{DbContext, Result, TargetError};
use crate::ident::{quote_pg, quote_pg_table};
use crate::stream::{Shard, TableHeader, TableName};

/// The default ledger schema.
pub const DEFAULT_SCHEMA: &str = "_molt";

/// The identity of one section on the target.
#[derive(Clone, Debug, PartialEq)]
pub struct SectionId {
    /// A stable hash of everything below: the ledger's primary key.
    pub key: String,
    pub phase: String,
    pub target: TableName,
    pub filter: Option<String>,
    pub shard: Shard,
}

impl SectionId {
    pub fn new(header: &TableHeader, target: &TableName) -> SectionId {
        let filter = header.slice.target_predicate().map(str::to_string);
        let shard = header.slice.shard.clone();
        let identity = serde_json::json!([
            target.schema,
            target.name,
            header.slice.phase,
            filter,
            shard.index,
            shard.count,
            shard.key,
            shard.lower,
            shard.upper
        ]);
        let hash = blake3::hash(identity.to_string().as_bytes());
        SectionId {
            key: hash.to_hex()[..32].to_string(),
            phase: header.slice.phase.clone(),
            target: target.clone(),
            filter,
            shard,
        }
    }
}

/// A section as the ledger has it.
#[derive(Clone, Debug, PartialEq)]
pub struct SectionState {
    pub status: String,
    pub rows: Option<i64>,
    pub digest: Option<String>,
    /// The target table's `pg_class` oid when the section was loaded
    /// (`None` in ledgers written before it was recorded). A table dropped
    /// and created again has a new one, on PostgreSQL and CockroachDB.
    pub table_oid: Option<i64>,
}

/// The ledger in one schema.
#[derive(Clone, Debug)]
pub struct Ledger {
    pub schema: String,
}

impl Ledger {
    pub fn new(schema: impl Into<String>) -> Ledger {
        Ledger {
            schema: schema.into(),
        }
    }

    fn table(&self, name: &str) -> String {
        quote_pg_table(&TableName::new(self.schema.clone(), name))
    }

    /// The statements that create the ledger (idempotent).
    pub fn setup_sql(&self) -> Vec<String> {
        vec![
            format!("CREATE SCHEMA IF NOT EXISTS {}", quote_pg(&self.schema)),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (\
                 target_schema TEXT NOT NULL, target_table TEXT NOT NULL, \
                 source_schema TEXT NOT NULL, source_table TEXT NOT NULL, \
                 header JSONB NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), \
                 PRIMARY KEY (target_schema, target_table))",
                self.table("tables")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (\
                 section_key TEXT NOT NULL PRIMARY KEY, phase TEXT NOT NULL, \
                 target_schema TEXT NOT NULL, target_table TEXT NOT NULL, \
                 shard_index INT8 NOT NULL, shard_count INT8 NOT NULL, shard JSONB NOT NULL, \
                 filter TEXT, status TEXT NOT NULL, \"rows\" INT8, bytes INT8, digest TEXT, \
                 started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, host TEXT, username TEXT, error TEXT)",
                self.table("sections")
            ),
            // Added after the first ledgers were written.
            format!(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS table_oid INT8",
                self.table("sections")
            ),
        ]
    }

    /// Creates the ledger if needed.
    pub async fn ensure(&self, client: &Client) -> Result<()> {
        for sql in self.setup_sql() {
            crate::target::run_concurrent_ddl(client, &sql)
                .await
                .ctx(|| format!("creating the ledger in schema {}", self.schema))?;
        }
        Ok(())
    }

    /// Stores the header a table was (last) loaded from.
    pub async fn record_table(
        &self,
        client: &Client,
        target: &TableName,
        header: &TableHeader,
    ) -> Result<()> {
        let json =
            serde_json::to_string(header).map_err(|e| TargetError::Invalid(e.to_string()))?;
        let sql = format!(
            "INSERT INTO {} (target_schema, target_table, source_schema, source_table, header, updated_at) \
             VALUES ($1, $2, $3, $4, $5::TEXT::JSONB, now()) \
             ON CONFLICT (target_schema, target_table) DO UPDATE SET source_schema = excluded.source_schema, \
             source_table = excluded.source_table, header = excluded.header, updated_at = excluded.updated_at",
            self.table("tables")
        );
        client
            .execute(
                &sql,
                &[
                    &target.schema,
                    &target.name,
                    &header.table.schema,
                    &header.table.name,
                    &json,
                ],
            )
            .await
            .ctx(|| format!("recording table {target} in the ledger"))?;
        Ok(())
    }

    /// The headers stored for `tables` (all tables when `None`), by target name.
    pub async fn stored_headers(
        &self,
        client: &Client,
        tables: Option<&[TableName]>,
    ) -> Result<Vec<(TableName, TableHeader)>> {
        let sql = format!(
            "SELECT target_schema, target_table, header::TEXT FROM {} ORDER BY target_schema, target_table",
            self.table("tables")
        );
        let rows = client
            .query(&sql, &[])
            .await
            .ctx(|| "reading table headers from the ledger".into())?;
        let mut out = Vec::new();
        for row in rows {
            let target = TableName::new(row.get::<_, String>(0), row.get::<_, String>(1));
            if tables.is_some_and(|t| !t.contains(&target)) {
                continue;
            }
            let header: TableHeader = serde_json::from_str(row.get::<_, &str>(2)).map_err(|e| {
                TargetError::Invalid(format!("ledger header of {target} is unreadable: {e}"))
            })?;
            out.push((target, header));
        }
        Ok(out)
    }

    /// The ledger's state of a section, if it has one.
    pub async fn section(&self, client: &Client, id: &SectionId) -> Result<Option<SectionState>> {
        let sql = format!(
            "SELECT status, \"rows\", digest, table_oid FROM {} WHERE section_key = $1",
            self.table("sections")
        );
        let row = client
            .query_opt(&sql, &[&id.key])
            .await
            .ctx(|| format!("reading the ledger for {}", id.target))?;
        Ok(row.map(|r| SectionState {
            status: r.get(0),
            rows: r.get(1),
            digest: r.get(2),
            table_oid: r.get(3),
        }))
    }

    /// Marks a section `loading` (before its rows are replaced).
    pub async fn mark_loading(&self, client: &Client, id: &SectionId) -> Result<()> {
        let shard =
            serde_json::to_string(&id.shard).map_err(|e| TargetError::Invalid(e.to_string()))?;
        let sql = format!(
            "INSERT INTO {} (section_key, phase, target_schema, target_table, shard_index, shard_count, shard, filter, \
             status, \"rows\", bytes, digest, started_at, finished_at, host, username, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7::TEXT::JSONB, $8, 'loading', NULL, NULL, NULL, now(), NULL, $9, $10, NULL) \
             ON CONFLICT (section_key) DO UPDATE SET status = 'loading', \"rows\" = NULL, bytes = NULL, digest = NULL, \
             started_at = now(), finished_at = NULL, host = excluded.host, username = excluded.username, error = NULL",
            self.table("sections")
        );
        let (index, count) = (i64::from(id.shard.index), i64::from(id.shard.count));
        client
            .execute(
                &sql,
                &[
                    &id.key,
                    &id.phase,
                    &id.target.schema,
                    &id.target.name,
                    &index,
                    &count,
                    &shard,
                    &id.filter,
                    &host(),
                    &username(),
                ],
            )
            .await
            .ctx(|| {
                format!(
                    "marking {} shard {} loading in the ledger",
                    id.target, id.shard
                )
            })?;
        Ok(())
    }

    /// Marks a section `loaded` with what was written.
    pub async fn mark_loaded(
        &self,
        client: &Client,
        id: &SectionId,
        rows: u64,
        bytes: u64,
        digest: &str,
    ) -> Result<()> {
        let sql = format!(
            "UPDATE {} SET status = 'loaded', \"rows\" = $2, bytes = $3, digest = $4, finished_at = now(), error = NULL, \
             table_oid = ({TABLE_OID_SQL}) WHERE section_key = $1",
            self.table("sections")
        );
        client
            .execute(
                &sql,
                &[
                    &id.key,
                    &(rows as i64),
                    &(bytes as i64),
                    &digest,
                    &id.target.schema,
                    &id.target.name,
                ],
            )
            .await
            .ctx(|| {
                format!(
                    "marking {} shard {} loaded in the ledger",
                    id.target, id.shard
                )
            })?;
        Ok(())
    }

    /// Marks a section `failed`, with the reason.
    pub async fn mark_failed(&self, client: &Client, id: &SectionId, error: &str) -> Result<()> {
        let sql = format!(
            "UPDATE {} SET status = 'failed', \"rows\" = NULL, digest = NULL, finished_at = now(), error = $2 \
             WHERE section_key = $1",
            self.table("sections")
        );
        client.execute(&sql, &[&id.key, &error]).await.ctx(|| {
            format!(
                "marking {} shard {} failed in the ledger",
                id.target, id.shard
            )
        })?;
        Ok(())
    }

    /// Forgets every section of a table whose rows were all removed
    /// (truncated or dropped), so none of them is skipped as loaded.
    pub async fn forget_table(&self, client: &Client, target: &TableName) -> Result<()> {
        let sql = format!(
            "DELETE FROM {} WHERE target_schema = $1 AND target_table = $2",
            self.table("sections")
        );
        client
            .execute(&sql, &[&target.schema, &target.name])
            .await
            .ctx(|| format!("clearing the ledger sections of {target}"))?;
        Ok(())
    }
}

/// The `pg_class` oid of the table named by `$5` (schema) and `$6`
/// (name), as INT8; NULL when there is none. Catalog tables rather than a
/// `regclass` cast, so that a missing table is NULL and not an error.
const TABLE_OID_SQL: &str = "SELECT c.oid::INT8 FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $5::TEXT AND c.relname = $6::TEXT";

/// Why a section the ledger has as `loaded` is not on the target any more,
/// or `None` when the target still holds it: the same table (by oid, when
/// the ledger recorded one) with the slice's row count equal to the
/// ledger's. A dropped, recreated or truncated table, or rows deleted
/// behind molt's back, all fail this; a changed row that keeps the count
/// does not (that is molt-verify's job).
pub async fn stale_reason(
    client: &Client,
    state: &SectionState,
    target: &TableName,
    predicate: &super::slice::SlicePredicate,
) -> Result<Option<String>> {
    let oid: Option<i64> = client
        .query_opt(
            "SELECT c.oid::INT8 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n \
             ON n.oid = c.relnamespace WHERE n.nspname = $1::TEXT AND c.relname = $2::TEXT",
            &[&target.schema, &target.name],
        )
        .await
        .ctx(|| format!("looking up table {target} on the target"))?
        .map(|r| r.get(0));
    let Some(oid) = oid else {
        return Ok(Some(format!(
            "the ledger has it loaded but table {target} no longer exists on the target"
        )));
    };
    if state.table_oid.is_some_and(|recorded| recorded != oid) {
        return Ok(Some(format!(
            "the ledger has it loaded into an earlier table {target} (dropped and created again since)"
        )));
    }
    let sql = match &predicate.sql {
        Some(p) => format!("SELECT count(*) FROM {} WHERE {p}", quote_pg_table(target)),
        None => format!("SELECT count(*) FROM {}", quote_pg_table(target)),
    };
    let count: i64 = client
        .query_one(&sql, &predicate.param_refs())
        .await
        .ctx(|| format!("counting the section's rows in {target}"))?
        .get(0);
    let expected = state.rows.unwrap_or(-1);
    if count != expected {
        return Ok(Some(format!(
            "the ledger has it loaded with {expected} rows but the target holds {count} of them"
        )));
    }
    Ok(None)
}

/// [`stale_reason`] for a section as the cutover tools read it from the
/// ledger (`row`), with the header its table was loaded from (for the key
/// columns' types in the shard bounds). Ledgers written before `table_oid`
/// was recorded are checked by row count alone.
pub async fn stale_section(
    client: &Client,
    ledger_schema: &str,
    row: &crate::ledger::SectionRow,
    header: &TableHeader,
) -> Result<Option<String>> {
    let mut sliced = header.clone();
    sliced.slice.filter = row.filter.clone();
    sliced.slice.target_filter = None;
    sliced.slice.shard = serde_json::from_value(row.shard.clone()).map_err(|e| {
        TargetError::Invalid(format!(
            "the ledger's shard of {} is unreadable: {e}",
            row.target
        ))
    })?;
    // The ledger already names the target table: no schema override.
    sliced.target = Some(row.target.clone());
    let predicate = super::slice::section_predicate(&sliced, None)?;
    let sections = TableName::new(ledger_schema, "sections");
    let has_oid = client
        .query_opt(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 \
             AND column_name = 'table_oid'",
            &[&sections.schema, &sections.name],
        )
        .await
        .ctx(|| "reading the ledger's columns".into())?
        .is_some();
    let table_oid = if has_oid {
        client
            .query_one(
                &format!(
                    "SELECT table_oid FROM {} WHERE section_key = $1",
                    quote_pg_table(&sections)
                ),
                &[&row.key],
            )
            .await
            .ctx(|| format!("reading the ledger for {}", row.target))?
            .get(0)
    } else {
        None
    };
    let state = SectionState {
        status: row.status.clone(),
        rows: row.rows,
        digest: row.digest.clone(),
        table_oid,
    };
    stale_reason(client, &state, &row.target, &predicate).await
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}

fn username() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_default()
}
