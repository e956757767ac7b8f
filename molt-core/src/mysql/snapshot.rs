//! One consistent snapshot across several connections, as mydumper does it.
//!
//! InnoDB gives each transaction its own snapshot, taken at
//! `START TRANSACTION WITH CONSISTENT SNAPSHOT`. For N connections to see
//! the same data, no write may commit between their N snapshot starts, so a
//! coordinator holds `FLUSH TABLES WITH READ LOCK` while the workers start
//! their transactions and while it reads the binlog position, then unlocks:
//! writes stall for milliseconds, not for the whole dump.
//!
//! FTWRL needs the RELOAD privilege (and is refused on some managed
//! services). Without it there is no way to align several snapshots, so the
//! dump falls back to one connection, with a warning; the position then
//! comes from MariaDB's `binlog_snapshot_*` status (exact for that
//! transaction) or is left out on MySQL.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Row};

use super::catalog::ServerInfo;
use super::{connect, DbContext, MysqlError};

/// The worker connections, each inside the shared snapshot.
pub struct Snapshot {
    pub workers: Vec<Conn>,
    /// Binlog `file:position`, with ` gtid=<set>` when the server tracks
    /// GTIDs; `None` when binary logging is off or the position is unknown.
    pub position: Option<String>,
    /// Warnings for stderr (fallback to one connection...).
    pub warnings: Vec<String>,
}

async fn begin(conn: &mut Conn) -> Result<(), MysqlError> {
    conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await
        .ctx(|| "setting REPEATABLE READ".into())?;
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        .await
        .ctx(|| "starting the snapshot transaction".into())
}

fn cell(row: &Row, name: &str) -> Option<String> {
    let i = row
        .columns_ref()
        .iter()
        .position(|c| c.name_str().eq_ignore_ascii_case(name))?;
    match row.as_ref(i)? {
        mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        mysql_async::Value::Int(n) => Some(n.to_string()),
        mysql_async::Value::UInt(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The binlog position and GTID set, read while writes are locked out.
async fn position(conn: &mut Conn, server: &ServerInfo) -> Option<String> {
    // MySQL 8.2+ renamed the statement; older servers only know the old name.
    let mut status: Option<Row> = conn
        .query_first("SHOW BINARY LOG STATUS")
        .await
        .unwrap_or_default();
    if status.is_none() {
        status = conn.query_first("SHOW MASTER STATUS").await.ok().flatten();
    }
    let mut parts = Vec::new();
    if let Some(row) = &status {
        if let (Some(file), Some(pos)) = (cell(row, "File"), cell(row, "Position")) {
            parts.push(format!("{file}:{pos}"));
        }
    }
    let gtid_sql = if server.mariadb {
        "SELECT @@GLOBAL.gtid_current_pos"
    } else {
        "SELECT @@GLOBAL.gtid_executed"
    };
    if let Ok(Some(gtid)) = conn.query_first::<Option<String>, _>(gtid_sql).await {
        if let Some(g) = gtid
            .map(|g| g.replace('\n', ""))
            .filter(|g| !g.trim().is_empty())
        {
            parts.push(format!("gtid={g}"));
        }
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Opens `jobs` worker connections inside one snapshot.
pub async fn open(opts: &Opts, jobs: usize, server: &ServerInfo) -> Result<Snapshot, MysqlError> {
    let jobs = jobs.max(1);
    let mut coordinator = connect(opts).await?;
    let mut warnings = Vec::new();
    match coordinator.query_drop("FLUSH TABLES WITH READ LOCK").await {
        Ok(()) => {
            let mut workers = Vec::with_capacity(jobs);
            let started: Result<(), MysqlError> = async {
                for _ in 0..jobs {
                    let mut conn = connect(opts).await?;
                    begin(&mut conn).await?;
                    workers.push(conn);
                }
                Ok(())
            }
            .await;
            let position = position(&mut coordinator, server).await;
            let unlocked = coordinator
                .query_drop("UNLOCK TABLES")
                .await
                .ctx(|| "UNLOCK TABLES".into());
            let _ = coordinator.disconnect().await;
            started?;
            unlocked?;
            Ok(Snapshot {
                workers,
                position,
                warnings,
            })
        }
        Err(e) => {
            warnings.push(format!(
                "FLUSH TABLES WITH READ LOCK was refused ({e}): dumping over a single connection so that every section comes from one snapshot{}",
                if jobs > 1 { format!(" (--jobs {jobs} ignored)") } else { String::new() }
            ));
            let _ = coordinator.disconnect().await;
            let mut conn = connect(opts).await?;
            begin(&mut conn).await?;
            let position = if server.mariadb {
                let file: Option<(String, String)> = conn
                    .query_first("SHOW STATUS LIKE 'binlog_snapshot_file'")
                    .await
                    .ok()
                    .flatten();
                let pos: Option<(String, String)> = conn
                    .query_first("SHOW STATUS LIKE 'binlog_snapshot_position'")
                    .await
                    .ok()
                    .flatten();
                match (file, pos) {
                    (Some((_, f)), Some((_, p))) if !f.is_empty() => Some(format!("{f}:{p}")),
                    _ => None,
                }
            } else {
                warnings.push(
                    "binlog position unknown without FLUSH TABLES WITH READ LOCK (needs RELOAD)"
                        .into(),
                );
                None
            };
            Ok(Snapshot {
                workers: vec![conn],
                position,
                warnings,
            })
        }
    }
}
