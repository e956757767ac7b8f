//! Freezing a phase's slice at the source, enforced by the database.
//!
//! Why triggers: an application that forgets (or a cron job nobody knew
//! about) must not be able to change rows that are being moved. Asking
//! politely is not enough, so the source itself rejects every INSERT,
//! UPDATE and DELETE whose old or new row lies in the slice, with a message
//! naming the phase and the table. Rows of other phases stay writable.
//!
//! Why a table lock is fine: creating a trigger waits for transactions that
//! already wrote the table (PostgreSQL: SHARE ROW EXCLUSIVE against their
//! ROW EXCLUSIVE; MySQL: the metadata lock). That wait is exactly what makes
//! the freeze safe for in-flight writes: their rows are committed (and
//! dumped) before the freeze holds, or the freeze gives up after
//! `--wait-timeout` and says which table was busy. Nothing is lost either
//! way.
//!
//! Object names are derived from (phase, table), so freeze and unfreeze are
//! idempotent and unfreeze can find what freeze made even if recording it
//! in the ledger failed. The SQL for each engine is in [`postgres`] and
//! [`mysql`].

pub mod mysql;
pub mod postgres;

use molt_core::ledger::FreezeRecord;
use molt_core::stream::TableName;
use molt_core::{ConnUrl, Engine};

/// One table to freeze: its predicate (source dialect, unqualified column
/// names), or `None` for a whole-table slice.
#[derive(Clone, Debug, PartialEq)]
pub struct FreezeSpec {
    pub table: TableName,
    pub predicate: Option<String>,
}

/// The stem of every object a freeze creates for (phase, table):
/// `molt_frz_` and 12 hex digits of a hash, short enough for every engine's
/// identifier limit whatever the names.
pub fn object_stem(phase: &str, table: &TableName) -> String {
    let mut h = blake3::Hasher::new();
    for part in [phase, &table.schema, &table.name] {
        h.update(part.as_bytes());
        h.update(&[0]);
    }
    format!("molt_frz_{}", &h.finalize().to_hex()[..12])
}

/// The message a rejected write gets.
pub fn message(phase: &str, table: &TableName) -> String {
    format!(
        "molt: phase {phase} is frozen: rows of {table} in this phase are being migrated and cannot be written"
    )
}

/// A connection to the source, for freezing.
pub enum SourceConn {
    Postgres(tokio_postgres::Client),
    Mysql(mysql_async::Conn),
}

impl SourceConn {
    pub async fn connect(url: &ConnUrl) -> anyhow::Result<SourceConn> {
        match url.engine() {
            Engine::Postgres => Ok(SourceConn::Postgres(
                molt_core::connect::postgres(url, "molt-cutover").await?,
            )),
            Engine::Mysql => {
                let opts = molt_core::connect::mysql_opts(url)?;
                let conn = mysql_async::Conn::new(opts).await.map_err(|e| {
                    anyhow::anyhow!(
                        "connecting to source {url}: {}",
                        molt_core::url::redact_text(&e.to_string())
                    )
                })?;
                Ok(SourceConn::Mysql(conn))
            }
            Engine::Oracle => anyhow::bail!(
                "freezing an Oracle source is not supported yet: see docs/cutover.md for the trigger to create by hand"
            ),
        }
    }

    pub fn engine(&self) -> &'static str {
        match self {
            SourceConn::Postgres(_) => "postgres",
            SourceConn::Mysql(_) => "mysql",
        }
    }

    /// Freezes every table, all or nothing, waiting at most `wait_secs` for
    /// in-flight transactions. Returns what was created.
    pub async fn freeze(
        &mut self,
        phase: &str,
        specs: &[FreezeSpec],
        wait_secs: u64,
    ) -> anyhow::Result<Vec<FreezeRecord>> {
        match self {
            SourceConn::Postgres(client) => postgres::freeze(client, phase, specs, wait_secs).await,
            SourceConn::Mysql(conn) => mysql::freeze(conn, phase, specs, wait_secs).await,
        }
    }

    /// Drops exactly the given objects (if they exist).
    pub async fn unfreeze(
        &mut self,
        records: &[FreezeRecord],
        wait_secs: u64,
    ) -> anyhow::Result<()> {
        match self {
            SourceConn::Postgres(client) => postgres::unfreeze(client, records, wait_secs).await,
            SourceConn::Mysql(conn) => mysql::unfreeze(conn, records, wait_secs).await,
        }
    }

    /// The triggers of a record that are missing or disabled on the source.
    pub async fn missing_triggers(&mut self, record: &FreezeRecord) -> anyhow::Result<Vec<String>> {
        match self {
            SourceConn::Postgres(client) => postgres::missing_triggers(client, record).await,
            SourceConn::Mysql(conn) => mysql::missing_triggers(conn, record).await,
        }
    }

    /// The objects a freeze of `specs` would create, as records (for
    /// unfreezing without the ledger).
    pub fn expected(&self, phase: &str, specs: &[FreezeSpec]) -> Vec<FreezeRecord> {
        specs
            .iter()
            .map(|s| match self {
                SourceConn::Postgres(_) => postgres::expected(phase, s, 0.0),
                SourceConn::Mysql(_) => mysql::expected(phase, s, 0.0),
            })
            .collect()
    }

    pub async fn close(self) {
        if let SourceConn::Mysql(conn) = self {
            let _ = conn.disconnect().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_stable_and_short() {
        let t = TableName::new("public", "orders");
        let a = object_stem("A", &t);
        assert_eq!(a, object_stem("A", &t));
        assert_ne!(a, object_stem("B", &t));
        assert!(a.len() + 2 <= 63);
    }
}
