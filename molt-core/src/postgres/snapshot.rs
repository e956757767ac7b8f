//! One consistent snapshot for every connection of a dump.
//!
//! The coordinator opens a `REPEATABLE READ READ ONLY` transaction and
//! exports its snapshot; each worker opens the same kind of transaction and
//! adopts that snapshot, so all sections, read in parallel on different
//! connections, see the database at the same instant. The coordinator's
//! transaction must stay open until every worker has adopted the snapshot
//! (we keep it open until they all finish).
//!
//! The replication position is read just *before* the snapshot, so it is at
//! or before it: change capture started there may replay a change the dump
//! already holds (harmless for upserts), but never misses one.

use tokio_postgres::Client;

use super::{DbContext, Result, SourceError, SESSION_SETTINGS};
use crate::url::ConnUrl;

/// A source connection; its driver task ends when it is dropped.
pub struct Source {
    pub client: Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Source {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects and applies [`SESSION_SETTINGS`]. Errors name the redacted URL.
pub async fn connect(url: &ConnUrl) -> Result<Source> {
    let (client, task) = crate::connect::postgres_with_task(url, "molt-dump")
        .await
        .map_err(|e| SourceError::new("source", e.to_string()))?;
    client
        .batch_execute(SESSION_SETTINGS)
        .await
        .ctx(|| format!("setting up the session on {url}"))?;
    Ok(Source { client, task })
}

/// The server version (`SHOW server_version`).
pub async fn server_version(client: &Client) -> Result<String> {
    let row = client
        .query_one("SHOW server_version", &[])
        .await
        .ctx(|| "reading the server version".into())?;
    Ok(row.get(0))
}

/// The current WAL position, or the last replayed one on a standby. Call it
/// before [`begin_exported`]. `Err` carries why it is unknown (e.g. missing
/// privileges), which is worth a warning but not a failure.
pub async fn wal_position(client: &Client) -> Result<String> {
    let row = client
        .query_one(
            "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text",
            &[],
        )
        .await
        .ctx(|| "reading the WAL position".into())?;
    let lsn: Option<String> = row.get(0);
    lsn.ok_or_else(|| SourceError::new("reading the WAL position", "the server returned none"))
}

/// Whether a snapshot id has the form PostgreSQL gives them
/// (`00000003-0000001B-1`): it is embedded in SQL, so nothing else passes.
pub fn valid_snapshot_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b) || b == b'-')
}

/// Opens the coordinator's transaction and exports its snapshot.
pub async fn begin_exported(client: &Client) -> Result<String> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .ctx(|| "starting the snapshot transaction".into())?;
    let row = client
        .query_one("SELECT pg_export_snapshot()", &[])
        .await
        .ctx(|| "exporting the snapshot".into())?;
    let id: String = row.get(0);
    if !valid_snapshot_id(&id) {
        return Err(SourceError::new(
            "exporting the snapshot",
            format!("unexpected snapshot id {id:?}"),
        ));
    }
    Ok(id)
}

/// Opens a worker's transaction on the exported snapshot `id`.
pub async fn begin_shared(client: &Client, id: &str) -> Result<()> {
    if !valid_snapshot_id(id) {
        return Err(SourceError::new(
            "joining the snapshot",
            format!("invalid snapshot id {id:?}"),
        ));
    }
    client
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{id}'"
        ))
        .await
        .ctx(|| format!("joining snapshot {id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_ids() {
        assert!(valid_snapshot_id("00000003-0000001B-1"));
        assert!(!valid_snapshot_id("1'; DROP TABLE x; --"));
        assert!(!valid_snapshot_id(""));
    }
}
