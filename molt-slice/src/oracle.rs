//! Oracle as molt-slice's source (cargo feature `oracle`).
//!
//! Counting, shard boundaries and the audit use the statements of
//! `molt_core::oracle::sql` (`count_sql`, `shard_boundaries_sql`,
//! `audit_sql`, `audit_samples_sql`), which write key values as stream
//! text in Oracle's dialect and evaluate filters without Oracle's missing
//! boolean type tripping them up. Tables are read through
//! `molt_core::oracle::conn::find_table` once and cached.
//!
//! Names are Oracle's own spelling (unquoted names are upper case): plans
//! for an Oracle source name tables as the catalog stores them.
//!
//! The `oracle` crate is blocking: every call runs on a blocking thread.
//! None of this has run against a real Oracle database yet.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use molt_core::oracle::catalog::CONSTRAINTS_SQL;
use molt_core::oracle::conn::{self, find_table, name_candidates, OracleError};
use molt_core::oracle::driver::Connection;
use molt_core::oracle::params::connect_params;
use molt_core::oracle::sql::{audit_samples_sql, audit_sql, count_sql, shard_boundaries_sql};
use molt_core::oracle::{BuildOptions, OracleTable, ReadKind};
use molt_core::stream::TableName;
use molt_core::ConnUrl;

use crate::audit::TableAudit;
use crate::source::{ForeignKey, KeyColumn, KeyRow};

/// Average row size of a table from its statistics: `:1` owner, `:2` table.
const AVG_ROW_LEN_SQL: &str =
    "SELECT avg_row_len FROM all_tables WHERE owner = :1 AND table_name = :2";

/// A connected Oracle source.
pub struct OracleSource {
    conn: Arc<Connection>,
    /// The connecting user's schema: the default owner.
    pub owner: String,
    tables: HashMap<TableName, Arc<OracleTable>>,
}

impl OracleSource {
    pub async fn connect(url: &ConnUrl) -> anyhow::Result<OracleSource> {
        let owner = connect_params(url)
            .map_err(|e| anyhow!(e))?
            .user
            .to_uppercase();
        let url = url.clone();
        let conn = tokio::task::spawn_blocking(move || conn::connect(&url))
            .await
            .map_err(|e| anyhow!("connecting to Oracle stopped: {e}"))??;
        Ok(OracleSource {
            conn: Arc::new(conn),
            owner,
            tables: HashMap::new(),
        })
    }

    /// Runs blocking driver work on a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || work(&conn))
            .await
            .map_err(|e| anyhow!("an Oracle call stopped: {e}"))?
    }

    /// The table's definition (read once).
    pub async fn table(&mut self, table: &TableName) -> anyhow::Result<Arc<OracleTable>> {
        if let Some(t) = self.tables.get(table) {
            return Ok(t.clone());
        }
        let name = table.clone();
        let found = self
            .run(move |c| Ok(find_table(c, &name, &BuildOptions::default())?))
            .await?
            .with_context(|| {
                format!(
                    "table {table} does not exist on the source (or is not visible to the user)"
                )
            })?;
        let found = Arc::new(found);
        self.tables.insert(table.clone(), found.clone());
        Ok(found)
    }

    /// Tables of an owner (tried as written, then upper case).
    pub async fn tables(&self, schema: &str) -> anyhow::Result<Vec<TableName>> {
        let schema = schema.to_string();
        self.run(move |c| {
            for owner in name_candidates(&schema) {
                let found = conn::list_tables(c, &owner)?;
                if !found.is_empty() {
                    return Ok(found
                        .into_iter()
                        .map(|t| TableName::new(t.owner, t.name))
                        .collect());
                }
            }
            Ok(Vec::new())
        })
        .await
    }

    /// Primary-key columns in key order, with how each is read (for the
    /// key-text expressions of boundaries and samples).
    pub async fn primary_key(&mut self, table: &TableName) -> anyhow::Result<Vec<KeyColumn>> {
        let t = self.table(table).await?;
        Ok(t.key_source_names()
            .into_iter()
            .map(|name| {
                let i = t
                    .source_columns
                    .iter()
                    .position(|c| c.name == name)
                    .expect("a key column is a column");
                let m = &t.mapped[i];
                KeyColumn {
                    name: name.to_string(),
                    bytes: m.read == ReadKind::Bytes,
                    oracle: Some((m.read, m.source_fraction_digits)),
                }
            })
            .collect())
    }

    /// Foreign keys from `table` (source names), from the catalog query
    /// the dump uses.
    pub async fn foreign_keys(&self, table: &TableName) -> anyhow::Result<Vec<ForeignKey>> {
        let t = table.clone();
        let rows: Vec<(String, String, String, String, String)> = self
            .run(move |c| {
                let ctx = || format!("reading the foreign keys of {t}");
                let mut out = Vec::new();
                for row in c
                    .query(CONSTRAINTS_SQL, &[&t.schema, &t.name])
                    .map_err(|e| OracleError::db(ctx(), &e))?
                {
                    let r = row.map_err(|e| OracleError::db(ctx(), &e))?;
                    let get = |i: usize| -> anyhow::Result<Option<String>> {
                        Ok(r.get::<_, Option<String>>(i)
                            .map_err(|e| OracleError::db(ctx(), &e))?)
                    };
                    if get(1)?.as_deref() != Some("R") {
                        continue;
                    }
                    if let (Some(name), Some(col), Some(po), Some(pt), Some(pc)) =
                        (get(0)?, get(5)?, get(7)?, get(8)?, get(9)?)
                    {
                        out.push((name, col, po, pt, pc));
                    }
                }
                Ok(out)
            })
            .await?;
        let mut fks: Vec<ForeignKey> = Vec::new();
        for (name, column, powner, ptable, pcolumn) in rows {
            match fks.last_mut() {
                Some(fk) if fk.name == name => {
                    fk.columns.push(column);
                    fk.referenced_columns.push(pcolumn);
                }
                _ => fks.push(ForeignKey {
                    name,
                    columns: vec![column],
                    parent: TableName::new(powner, ptable),
                    referenced_columns: vec![pcolumn],
                }),
            }
        }
        Ok(fks)
    }

    /// A query returning one number (or its text).
    pub async fn query_count(&self, sql: &str) -> anyhow::Result<u64> {
        let sql = sql.to_string();
        self.run(move |c| {
            let text = c
                .query_row_as::<Option<String>>(&sql, &[])
                .map_err(|e| OracleError::db("counting rows", &e))?;
            let text = text.unwrap_or_else(|| "0".into());
            text.trim()
                .parse::<u64>()
                .map_err(|_| anyhow!("counting rows: {text:?} is not a count"))
        })
        .await
    }

    /// A query whose columns are all read as text; NULL stays `None`.
    pub async fn query_text_rows(&self, sql: &str) -> anyhow::Result<Vec<KeyRow>> {
        let sql = sql.to_string();
        self.run(move |c| {
            let mut out = Vec::new();
            for row in c
                .query(&sql, &[])
                .map_err(|e| OracleError::db("reading key values", &e))?
            {
                let r = row.map_err(|e| OracleError::db("reading key values", &e))?;
                let values = (0..r.sql_values().len())
                    .map(|i| r.get::<_, Option<String>>(i))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| OracleError::db("reading key values", &e))?;
                out.push(values);
            }
            Ok(out)
        })
        .await
    }

    /// Average stored bytes per row, from the optimizer statistics (0 when
    /// the table was never analyzed).
    pub async fn average_row_bytes(&self, table: &TableName) -> anyhow::Result<f64> {
        let t = table.clone();
        self.run(move |c| {
            match c.query_row_as::<Option<f64>>(AVG_ROW_LEN_SQL, &[&t.schema, &t.name]) {
                Ok(v) => Ok(v.unwrap_or(0.0)),
                Err(e) if e.kind() == molt_core::oracle::driver::ErrorKind::NoDataFound => Ok(0.0),
                Err(e) => Err(OracleError::db(format!("reading the statistics of {t}"), &e).into()),
            }
        })
        .await
    }

    /// Rows of the slice.
    pub async fn count(&self, table: &TableName, predicate: Option<&str>) -> anyhow::Result<u64> {
        self.query_count(&count_sql(table, predicate, false)).await
    }

    /// Every `step`-th primary key of the slice in key order, as stream
    /// text, each followed by its row number.
    pub async fn boundaries(
        &mut self,
        table: &TableName,
        predicate: Option<&str>,
        step: u64,
    ) -> anyhow::Result<Vec<KeyRow>> {
        let t = self.table(table).await?;
        let key = t.key_columns(&[]).map_err(|e| anyhow!("{e}"))?;
        let sql = shard_boundaries_sql(&t, &key, predicate, step).map_err(|e| anyhow!("{e}"))?;
        self.query_text_rows(&sql).await
    }

    /// The audit of one table: `filters` holds each phase's predicate
    /// (`None`: the whole table).
    pub async fn audit_table(
        &mut self,
        table: &TableName,
        filters: &[Option<String>],
        key: &[KeyColumn],
        samples: u64,
        key_json: impl Fn(&[KeyColumn], &[Option<String>]) -> serde_json::Value,
    ) -> anyhow::Result<TableAudit> {
        let t = self.table(table).await?;
        let filters: Vec<&str> = filters
            .iter()
            .map(|f| f.as_deref().unwrap_or("1 = 1"))
            .collect();
        let counts = self
            .query_text_rows(&audit_sql(table, &filters))
            .await
            .map_err(|e| e.context(format!("auditing {table}")))?;
        let get = |i: usize| -> u64 {
            counts
                .first()
                .and_then(|r| r.get(i))
                .cloned()
                .flatten()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0)
        };
        let mut audit = TableAudit {
            rows: get(0),
            unmatched: get(1),
            overlapping: get(2),
            null_filter: get(3),
            ..Default::default()
        };
        if key.is_empty() {
            return Ok(audit);
        }
        let key_cols = t.key_columns(&[]).map_err(|e| anyhow!("{e}"))?;
        for (name, count, condition) in [
            ("unmatched", audit.unmatched, "s.m = 0"),
            ("overlapping", audit.overlapping, "s.m > 1"),
            ("null_filter", audit.null_filter, "s.nn > 0"),
        ] {
            if count == 0 {
                continue;
            }
            let sql = audit_samples_sql(&t, &key_cols, &filters, condition, samples)
                .map_err(|e| anyhow!("{e}"))?;
            let rows = self.query_text_rows(&sql).await?;
            audit.samples.insert(
                name.into(),
                serde_json::Value::Array(rows.iter().map(|r| key_json(key, r)).collect()),
            );
        }
        Ok(audit)
    }
}

/// A key column as stream text in Oracle's dialect, through `alias`
/// (`None`: unqualified): `molt_core::oracle::sql::key_text_expr`.
pub fn key_text(column: &KeyColumn, alias: Option<&str>) -> String {
    let quoted = molt_core::oracle::quote_oracle(&column.name);
    let col = match alias {
        Some(a) => format!("{a}.{quoted}"),
        None => quoted.clone(),
    };
    let Some((read, digits)) = column.oracle else {
        return format!("TO_CHAR({col})");
    };
    match molt_core::oracle::sql::key_text_expr(&column.name, read, digits) {
        // The generated expression reads the column through alias `t`.
        Ok(expr) => expr.replace(&format!("t.{quoted}"), &col),
        Err(_) => format!("TO_CHAR({col})"),
    }
}
