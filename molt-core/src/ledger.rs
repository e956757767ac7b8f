//! The phase ledger: where each phase stands, kept in the target.
//!
//! The loader's ledger ([`crate::target::ledger`]) records tables and
//! sections. This module adds, in the same schema (`_molt` by default), what
//! the phase lifecycle needs so that any machine can pick up a cutover where
//! another left it, and an auditor can see who did what and when:
//!
//! - `phases`: each phase's current state ([`PhaseState`]).
//! - `transitions`: every state change: from, to, when, host, user, whether
//!   a safety gate was forced, and a JSON detail.
//! - `freezes`: exactly what a freeze created on the source (per table:
//!   engine, trigger and function names), so unfreeze removes exactly that.
//! - `verify_results`: molt-verify's outcome per (phase, table), which the
//!   switch gate reads ([`record_verify_result`]).
//! - `routing`: one row per phase saying where its traffic goes, for
//!   applications or a config generator to read.
//!
//! Only portable SQL is used (TEXT, JSONB, TIMESTAMPTZ, INT8, BOOL, primary
//! keys, `INSERT ... ON CONFLICT`), so it runs on CockroachDB and
//! PostgreSQL alike. Creating the ledger and every write is idempotent.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio_postgres::Client;

use crate::ident::{quote_pg, quote_pg_table};
use crate::stream::TableName;
use crate::target::ledger::Ledger;
use crate::target::{DbContext, Result, TargetError};

pub use crate::target::ledger::DEFAULT_SCHEMA;

/// The lifecycle states of a phase, in their usual order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhaseState {
    Planned,
    Frozen,
    Loaded,
    Verified,
    Finalized,
    CutOver,
    RolledBack,
}

impl PhaseState {
    pub const ALL: [PhaseState; 7] = [
        PhaseState::Planned,
        PhaseState::Frozen,
        PhaseState::Loaded,
        PhaseState::Verified,
        PhaseState::Finalized,
        PhaseState::CutOver,
        PhaseState::RolledBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PhaseState::Planned => "planned",
            PhaseState::Frozen => "frozen",
            PhaseState::Loaded => "loaded",
            PhaseState::Verified => "verified",
            PhaseState::Finalized => "finalized",
            PhaseState::CutOver => "cut_over",
            PhaseState::RolledBack => "rolled_back",
        }
    }

    pub fn parse(text: &str) -> Option<PhaseState> {
        PhaseState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for PhaseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a freeze created on the source for one table.
#[derive(Clone, Debug, PartialEq)]
pub struct FreezeRecord {
    pub phase: String,
    pub table: TableName,
    /// `postgres` or `mysql`.
    pub engine: String,
    /// Trigger names (on the table).
    pub triggers: Vec<String>,
    /// Trigger functions (PostgreSQL), schema-qualified.
    pub functions: Vec<TableName>,
    /// When the freeze began (client clock, seconds since the epoch).
    pub started_at: f64,
}

/// One molt-verify outcome for one table of one phase.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyResult {
    pub phase: String,
    /// The table as the plan and the slice records name it (the source
    /// name); the gate also accepts the target name.
    pub table: TableName,
    pub source_rows: u64,
    pub target_rows: u64,
    /// Missing + extraneous + mismatched rows.
    pub differences: u64,
    /// True only when the comparison ran to the end and found nothing.
    pub ok: bool,
    pub started_at: SystemTime,
    pub finished_at: SystemTime,
}

/// A verify result as read back, times as seconds since the epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredVerify {
    pub table: TableName,
    pub source_rows: i64,
    pub target_rows: i64,
    pub differences: i64,
    pub ok: bool,
    pub started_at: f64,
    pub finished_at: f64,
}

/// One section row of the loader's ledger.
#[derive(Clone, Debug, PartialEq)]
pub struct SectionRow {
    pub key: String,
    pub phase: String,
    pub target: TableName,
    pub shard_index: i64,
    pub shard_count: i64,
    pub shard: serde_json::Value,
    pub filter: Option<String>,
    pub status: String,
    pub rows: Option<i64>,
    pub digest: Option<String>,
}

/// A recorded transition.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub phase: String,
    pub from: Option<String>,
    pub to: String,
    pub at: f64,
    pub host: String,
    pub user: String,
    pub forced: bool,
    pub detail: serde_json::Value,
}

/// A routing row.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub phase: String,
    pub state: String,
    pub switched_at: f64,
    pub detail: serde_json::Value,
}

fn table(schema: &str, name: &str) -> String {
    quote_pg_table(&TableName::new(schema, name))
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Seconds since the epoch, now (client clock).
pub fn now_epoch() -> f64 {
    epoch(SystemTime::now())
}

/// The statements that create the phase ledger (idempotent); the loader's
/// tables come first, since the gate reads them.
pub fn setup_sql(schema: &str) -> Vec<String> {
    let mut sql = Ledger::new(schema).setup_sql();
    sql.extend([
        format!(
            "CREATE TABLE IF NOT EXISTS {} (phase TEXT NOT NULL PRIMARY KEY, state TEXT NOT NULL, \
             updated_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            table(schema, "phases")
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {} (id TEXT NOT NULL PRIMARY KEY, phase TEXT NOT NULL, \
             from_state TEXT, to_state TEXT NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT now(), \
             host TEXT NOT NULL, username TEXT NOT NULL, forced BOOL NOT NULL DEFAULT false, detail JSONB)",
            table(schema, "transitions")
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {} (phase TEXT NOT NULL, table_schema TEXT NOT NULL, \
             table_name TEXT NOT NULL, engine TEXT NOT NULL, triggers JSONB NOT NULL, functions JSONB NOT NULL, \
             started_at TIMESTAMPTZ NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now(), \
             PRIMARY KEY (phase, table_schema, table_name))",
            table(schema, "freezes")
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {} (id TEXT NOT NULL PRIMARY KEY, phase TEXT NOT NULL, \
             table_schema TEXT NOT NULL, table_name TEXT NOT NULL, source_rows INT8 NOT NULL, \
             target_rows INT8 NOT NULL, differences INT8 NOT NULL, ok BOOL NOT NULL, \
             started_at TIMESTAMPTZ NOT NULL, finished_at TIMESTAMPTZ NOT NULL, host TEXT NOT NULL, \
             username TEXT NOT NULL)",
            table(schema, "verify_results")
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {} (phase TEXT NOT NULL PRIMARY KEY, state TEXT NOT NULL, \
             switched_at TIMESTAMPTZ NOT NULL DEFAULT now(), detail JSONB)",
            table(schema, "routing")
        ),
    ]);
    sql
}

/// Creates the whole ledger (loader's and phase tables) if needed.
pub async fn ensure(client: &Client, schema: &str) -> Result<()> {
    for sql in setup_sql(schema) {
        crate::target::run_concurrent_ddl(client, &sql)
            .await
            .ctx(|| format!("creating the ledger in schema {}", quote_pg(schema)))?;
    }
    Ok(())
}

/// The host name, for the record.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}

/// The operating-system user, for the record.
pub fn username() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(user_from_uid)
        .unwrap_or_default()
}

/// The user of this process by uid (`/proc/self/status`, `/etc/passwd`),
/// for cron jobs and containers that set no `USER`.
fn user_from_uid() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_string())
    });
    Some(name.unwrap_or_else(|| format!("uid {uid}")))
}

/// A unique id for history rows, made on the client (portable: no
/// sequences or UUID functions needed).
fn new_id(parts: &[&str]) -> String {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(&[0]);
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.update(&nanos.to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.update(host().as_bytes());
    h.finalize().to_hex()[..32].to_string()
}

/// The phase's current state; `None` when the ledger has never seen it.
pub async fn phase_state(client: &Client, schema: &str, phase: &str) -> Result<Option<String>> {
    let sql = format!(
        "SELECT state FROM {} WHERE phase = $1",
        table(schema, "phases")
    );
    let row = client
        .query_opt(&sql, &[&phase])
        .await
        .ctx(|| format!("reading the state of phase {phase}"))?;
    Ok(row.map(|r| r.get(0)))
}

/// Every phase with its state, by name.
pub async fn phases(client: &Client, schema: &str) -> Result<Vec<(String, String)>> {
    let sql = format!(
        "SELECT phase, state FROM {} ORDER BY phase",
        table(schema, "phases")
    );
    let rows = client
        .query(&sql, &[])
        .await
        .ctx(|| "reading phase states".into())?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Moves a phase to `to` and records the transition (from the current
/// state) with who, where and why. Recording the same state again is
/// allowed: it is a re-run, and the history says so.
pub async fn transition(
    client: &Client,
    schema: &str,
    phase: &str,
    to: PhaseState,
    forced: bool,
    detail: &serde_json::Value,
) -> Result<()> {
    let from = phase_state(client, schema, phase).await?;
    let id = new_id(&[phase, to.as_str()]);
    let detail_text = detail.to_string();
    let insert = format!(
        "INSERT INTO {} (id, phase, from_state, to_state, at, host, username, forced, detail) \
         VALUES ($1, $2, $3, $4, now(), $5, $6, $7, $8::TEXT::JSONB)",
        table(schema, "transitions")
    );
    client
        .execute(
            &insert,
            &[
                &id,
                &phase,
                &from,
                &to.as_str(),
                &host(),
                &username(),
                &forced,
                &detail_text,
            ],
        )
        .await
        .ctx(|| format!("recording phase {phase} -> {to} in the ledger"))?;
    let upsert = format!(
        "INSERT INTO {} (phase, state, updated_at) VALUES ($1, $2, now()) \
         ON CONFLICT (phase) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        table(schema, "phases")
    );
    client
        .execute(&upsert, &[&phase, &to.as_str()])
        .await
        .ctx(|| format!("setting phase {phase} to {to} in the ledger"))?;
    Ok(())
}

/// The transitions of a phase (all phases when `None`), oldest first.
pub async fn transitions(
    client: &Client,
    schema: &str,
    phase: Option<&str>,
) -> Result<Vec<Transition>> {
    let sql = format!(
        "SELECT phase, from_state, to_state, extract(epoch FROM at)::FLOAT8, host, username, forced, \
         COALESCE(detail::TEXT, 'null') FROM {} WHERE ($1::TEXT IS NULL OR phase = $1) ORDER BY at, id",
        table(schema, "transitions")
    );
    let rows = client
        .query(&sql, &[&phase])
        .await
        .ctx(|| "reading transitions".into())?;
    Ok(rows
        .iter()
        .map(|r| Transition {
            phase: r.get(0),
            from: r.get(1),
            to: r.get(2),
            at: r.get(3),
            host: r.get(4),
            user: r.get(5),
            forced: r.get(6),
            detail: serde_json::from_str(r.get::<_, &str>(7)).unwrap_or(serde_json::Value::Null),
        })
        .collect())
}

/// Records what a freeze created for one table (replacing an earlier record).
pub async fn record_freeze(client: &Client, schema: &str, freeze: &FreezeRecord) -> Result<()> {
    let triggers =
        serde_json::to_string(&freeze.triggers).map_err(|e| TargetError::Invalid(e.to_string()))?;
    let functions = serde_json::to_string(&freeze.functions)
        .map_err(|e| TargetError::Invalid(e.to_string()))?;
    let sql = format!(
        "INSERT INTO {} (phase, table_schema, table_name, engine, triggers, functions, started_at, created_at) \
         VALUES ($1, $2, $3, $4, $5::TEXT::JSONB, $6::TEXT::JSONB, to_timestamp($7::FLOAT8), now()) \
         ON CONFLICT (phase, table_schema, table_name) DO UPDATE SET engine = excluded.engine, \
         triggers = excluded.triggers, functions = excluded.functions, started_at = excluded.started_at, \
         created_at = excluded.created_at",
        table(schema, "freezes")
    );
    client
        .execute(
            &sql,
            &[
                &freeze.phase,
                &freeze.table.schema,
                &freeze.table.name,
                &freeze.engine,
                &triggers,
                &functions,
                &freeze.started_at,
            ],
        )
        .await
        .ctx(|| {
            format!(
                "recording the freeze of {} (phase {}) in the ledger",
                freeze.table, freeze.phase
            )
        })?;
    Ok(())
}

/// The freeze records of a phase.
pub async fn freezes(client: &Client, schema: &str, phase: &str) -> Result<Vec<FreezeRecord>> {
    let sql = format!(
        "SELECT table_schema, table_name, engine, triggers::TEXT, functions::TEXT, \
         extract(epoch FROM started_at)::FLOAT8 FROM {} WHERE phase = $1 ORDER BY table_schema, table_name",
        table(schema, "freezes")
    );
    let rows = client
        .query(&sql, &[&phase])
        .await
        .ctx(|| format!("reading the freeze records of phase {phase}"))?;
    rows.iter()
        .map(|r| {
            let t = TableName::new(r.get::<_, String>(0), r.get::<_, String>(1));
            let bad = |e: serde_json::Error| {
                TargetError::Invalid(format!(
                    "ledger freeze record of {t} (phase {phase}) is unreadable: {e}"
                ))
            };
            Ok(FreezeRecord {
                phase: phase.to_string(),
                engine: r.get(2),
                triggers: serde_json::from_str(r.get::<_, &str>(3)).map_err(bad)?,
                functions: serde_json::from_str(r.get::<_, &str>(4)).map_err(bad)?,
                started_at: r.get(5),
                table: t,
            })
        })
        .collect()
}

/// Forgets the freeze record of one table (after its triggers were dropped).
pub async fn remove_freeze(
    client: &Client,
    schema: &str,
    phase: &str,
    frozen: &TableName,
) -> Result<()> {
    let sql = format!(
        "DELETE FROM {} WHERE phase = $1 AND table_schema = $2 AND table_name = $3",
        table(schema, "freezes")
    );
    client
        .execute(&sql, &[&phase, &frozen.schema, &frozen.name])
        .await
        .ctx(|| format!("removing the freeze record of {frozen} (phase {phase})"))?;
    Ok(())
}

/// Records one molt-verify outcome. molt-verify calls this (with `--phase`)
/// for every table it compared; the switch gate reads the latest result per
/// table that started after the phase's freeze.
pub async fn record_verify_result(
    client: &Client,
    schema: &str,
    result: &VerifyResult,
) -> Result<()> {
    ensure(client, schema).await?;
    let id = new_id(&[&result.phase, &result.table.schema, &result.table.name]);
    let sql = format!(
        "INSERT INTO {} (id, phase, table_schema, table_name, source_rows, target_rows, differences, ok, \
         started_at, finished_at, host, username) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, to_timestamp($9::FLOAT8), to_timestamp($10::FLOAT8), $11, $12)",
        table(schema, "verify_results")
    );
    client
        .execute(
            &sql,
            &[
                &id,
                &result.phase,
                &result.table.schema,
                &result.table.name,
                &(result.source_rows as i64),
                &(result.target_rows as i64),
                &(result.differences as i64),
                &result.ok,
                &epoch(result.started_at),
                &epoch(result.finished_at),
                &host(),
                &username(),
            ],
        )
        .await
        .ctx(|| {
            format!(
                "recording the verify result of {} (phase {})",
                result.table, result.phase
            )
        })?;
    Ok(())
}

/// Verify results of a phase, newest first.
pub async fn verify_results(
    client: &Client,
    schema: &str,
    phase: &str,
) -> Result<Vec<StoredVerify>> {
    let sql = format!(
        "SELECT table_schema, table_name, source_rows, target_rows, differences, ok, \
         extract(epoch FROM started_at)::FLOAT8, extract(epoch FROM finished_at)::FLOAT8 \
         FROM {} WHERE phase = $1 ORDER BY finished_at DESC, id",
        table(schema, "verify_results")
    );
    let rows = client
        .query(&sql, &[&phase])
        .await
        .ctx(|| format!("reading verify results of phase {phase}"))?;
    Ok(rows
        .iter()
        .map(|r| StoredVerify {
            table: TableName::new(r.get::<_, String>(0), r.get::<_, String>(1)),
            source_rows: r.get(2),
            target_rows: r.get(3),
            differences: r.get(4),
            ok: r.get(5),
            started_at: r.get(6),
            finished_at: r.get(7),
        })
        .collect())
}

/// The loader's sections of a phase.
pub async fn sections(client: &Client, schema: &str, phase: &str) -> Result<Vec<SectionRow>> {
    let sql = format!(
        "SELECT section_key, phase, target_schema, target_table, shard_index, shard_count, shard::TEXT, filter, \
         status, \"rows\", digest FROM {} WHERE phase = $1 ORDER BY target_schema, target_table, shard_index",
        table(schema, "sections")
    );
    let rows = client
        .query(&sql, &[&phase])
        .await
        .ctx(|| format!("reading the sections of phase {phase}"))?;
    Ok(rows
        .iter()
        .map(|r| SectionRow {
            key: r.get(0),
            phase: r.get(1),
            target: TableName::new(r.get::<_, String>(2), r.get::<_, String>(3)),
            shard_index: r.get(4),
            shard_count: r.get(5),
            shard: serde_json::from_str(r.get::<_, &str>(6)).unwrap_or(serde_json::Value::Null),
            filter: r.get(7),
            status: r.get(8),
            rows: r.get(9),
            digest: r.get(10),
        })
        .collect())
}

/// Sets the status of every section of a phase (e.g. `rolled_back` after
/// its rows were purged, so that the loader never skips them as loaded).
pub async fn set_sections_status(
    client: &Client,
    schema: &str,
    phase: &str,
    status: &str,
) -> Result<u64> {
    let sql = format!(
        "UPDATE {} SET status = $2, finished_at = now() WHERE phase = $1",
        table(schema, "sections")
    );
    client
        .execute(&sql, &[&phase, &status])
        .await
        .ctx(|| format!("marking the sections of phase {phase} {status}"))
}

/// Writes the phase's routing row: where its traffic goes now.
pub async fn set_route(
    client: &Client,
    schema: &str,
    phase: &str,
    state: &str,
    detail: &serde_json::Value,
) -> Result<()> {
    let sql = format!(
        "INSERT INTO {} (phase, state, switched_at, detail) VALUES ($1, $2, now(), $3::TEXT::JSONB) \
         ON CONFLICT (phase) DO UPDATE SET state = excluded.state, switched_at = excluded.switched_at, \
         detail = excluded.detail",
        table(schema, "routing")
    );
    client
        .execute(&sql, &[&phase, &state, &detail.to_string()])
        .await
        .ctx(|| format!("writing the routing of phase {phase}"))?;
    Ok(())
}

/// Every routing row.
pub async fn routes(client: &Client, schema: &str) -> Result<Vec<Route>> {
    let sql = format!(
        "SELECT phase, state, extract(epoch FROM switched_at)::FLOAT8, COALESCE(detail::TEXT, 'null') \
         FROM {} ORDER BY phase",
        table(schema, "routing")
    );
    let rows = client
        .query(&sql, &[])
        .await
        .ctx(|| "reading the routing table".into())?;
    Ok(rows
        .iter()
        .map(|r| Route {
            phase: r.get(0),
            state: r.get(1),
            switched_at: r.get(2),
            detail: serde_json::from_str(r.get::<_, &str>(3)).unwrap_or(serde_json::Value::Null),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for s in PhaseState::ALL {
            assert_eq!(PhaseState::parse(s.as_str()), Some(s));
        }
        assert_eq!(PhaseState::parse("bogus"), None);
    }

    #[test]
    fn setup_is_idempotent_sql() {
        for sql in setup_sql("_molt") {
            assert!(sql.contains("IF NOT EXISTS"), "{sql}");
        }
    }
}
