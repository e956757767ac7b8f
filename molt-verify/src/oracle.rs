//! The Oracle source side of a comparison (cargo feature `oracle`).
//!
//! Rows are read exactly as molt-dump reads them (the select list of
//! `OracleTable::select_list` and `molt_core::oracle::convert::convert_row`)
//! in primary-key order (`NLS_SORT = BINARY` on every molt session: code
//! point order, the order the target's `COLLATE "C"` and the merge join
//! agree on), and merge-joined with the target in the client. Chunk hashes
//! inside Oracle are not used yet: every row is compared.
//!
//! Oracle cannot tell `''` from NULL in text and bytes, so
//! [`molt_core::oracle::fold_empty`] is applied to **both** sides' rows
//! before they are compared (docs/oracle.md).
//!
//! Sub-microsecond digits are truncated as `molt-dump --allow-rounding`
//! writes them, and counted: the count becomes a warning of the table.
//!
//! The `oracle` crate is blocking: the reader runs on a blocking thread
//! with a connection of its own. None of this has run against a real
//! Oracle database yet.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::anyhow;
use molt_core::oracle::conn::{self, find_table, OracleError};
use molt_core::oracle::convert::convert_row;
use molt_core::oracle::driver::Connection;
use molt_core::oracle::sql::count_sql;
use molt_core::oracle::{
    fold_empty, quote_oracle, quote_oracle_table, BuildOptions, ConvertOptions, OracleTable,
};
use molt_core::stream::TableName;
use molt_core::value::LogicalType;
use molt_core::verify::merge::{RowRx, RowTx, CHANNEL_BATCHES};
use molt_core::verify::{Row, VerifyError};
use molt_core::ConnUrl;
use tokio::sync::mpsc;

const BATCH_ROWS: usize = 2000;
const FETCH_ROWS: u32 = 1000;

/// Connects (on a blocking thread).
pub async fn connect(url: &ConnUrl) -> anyhow::Result<Arc<Connection>> {
    let url = url.clone();
    let conn = tokio::task::spawn_blocking(move || conn::connect(&url))
        .await
        .map_err(|e| anyhow!("connecting to Oracle stopped: {e}"))??;
    Ok(Arc::new(conn))
}

/// The table's definition, as molt-dump builds it (`None`: no such table).
pub async fn load_table(
    conn: &Arc<Connection>,
    table: &TableName,
    target_schema: Option<String>,
) -> anyhow::Result<Option<OracleTable>> {
    let (conn, table) = (conn.clone(), table.clone());
    let opts = BuildOptions {
        target_schema,
        ..BuildOptions::default()
    };
    tokio::task::spawn_blocking(move || Ok(find_table(&conn, &table, &opts)?))
        .await
        .map_err(|e| anyhow!("reading the Oracle catalog stopped: {e}"))?
}

/// Empty text and bytes become NULL, in place: Oracle's `''` is NULL.
pub fn fold_row(row: &mut Row, logicals: &[LogicalType]) {
    for (v, &logical) in row.iter_mut().zip(logicals) {
        if v.is_some() && fold_empty(logical, v.as_deref()).is_none() {
            *v = None;
        }
    }
}

/// The target's rows with [`fold_row`] applied, on a task of its own.
pub fn fold_target(mut rx: RowRx, logicals: Arc<Vec<LogicalType>>) -> RowRx {
    let (tx, out) = mpsc::channel(CHANNEL_BATCHES);
    tokio::spawn(async move {
        while let Some(batch) = rx.recv().await {
            let batch = batch.map(|mut rows| {
                for row in &mut rows {
                    fold_row(row, &logicals);
                }
                rows
            });
            if tx.send(batch).await.is_err() {
                break;
            }
        }
    });
    out
}

/// The source's reading of one table slice.
pub struct OracleRead {
    pub table: Arc<OracleTable>,
    /// Header column of each compared column.
    pub source_index: Vec<usize>,
    /// Positions of the key columns among the compared ones, in key order.
    pub key: Vec<usize>,
    pub filter: Option<String>,
    /// Logical type of each compared column (for the `''` rule).
    pub logicals: Arc<Vec<LogicalType>>,
    /// Values truncated to the microsecond so far.
    pub truncated: AtomicU64,
}

impl OracleRead {
    fn select_sql(&self) -> String {
        let mut sql = format!(
            "SELECT {} FROM {} t",
            self.table.select_list().join(", "),
            quote_oracle_table(&self.table.header.table)
        );
        if let Some(f) = self.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            sql.push_str(&format!(" WHERE ({f})"));
        }
        if !self.key.is_empty() {
            let keys: Vec<String> = self
                .key
                .iter()
                .map(|&k| {
                    let column = &self.table.source_columns[self.source_index[k]];
                    format!("t.{}", quote_oracle(&column.name))
                })
                .collect();
            sql.push_str(" ORDER BY ");
            sql.push_str(&keys.join(", "));
        }
        sql
    }

    /// Rows of the slice (for a table that cannot be compared row by row).
    pub async fn count(&self, conn: &Arc<Connection>) -> Result<u64, VerifyError> {
        let sql = count_sql(&self.table.header.table, self.filter.as_deref(), false);
        let (conn, table) = (conn.clone(), self.table.header.table.clone());
        tokio::task::spawn_blocking(move || {
            let text = conn.query_row_as::<String>(&sql, &[]).map_err(|e| {
                VerifyError::new(format!(
                    "source: {}",
                    OracleError::db(format!("counting the rows of {table}"), &e)
                ))
            })?;
            text.trim().parse::<u64>().map_err(|_| {
                VerifyError::new(format!("source: counting {table}: {text:?} is not a count"))
            })
        })
        .await
        .map_err(|e| VerifyError::new(format!("source: counting stopped: {e}")))?
    }

    /// Starts reading the slice in key order on a blocking thread with its
    /// own connection.
    pub fn spawn_rows(self: &Arc<Self>, url: ConnUrl) -> RowRx {
        let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
        let read = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            // An empty batch marks the end (see the merge's cursor).
            let last = read.read_rows(&url, &tx).map(|()| Vec::new());
            let _ = tx.blocking_send(last);
        });
        rx
    }

    fn read_rows(&self, url: &ConnUrl, tx: &RowTx) -> Result<(), VerifyError> {
        let table = &self.table.header.table;
        let lost = |e: &molt_core::oracle::driver::Error| {
            VerifyError::new(format!(
                "source: {}",
                OracleError::db(format!("reading {table}"), e)
            ))
        };
        let conn = conn::connect(url).map_err(|e| VerifyError::new(format!("source: {e}")))?;
        let sql = self.select_sql();
        let mut stmt = conn
            .statement(&sql)
            .fetch_array_size(FETCH_ROWS)
            .build()
            .map_err(|e| lost(&e))?;
        let rows = stmt.query(&[]).map_err(|e| lost(&e))?;
        let opts = ConvertOptions {
            allow_rounding: true,
        };
        let columns = self.table.header.columns.len();
        let mut truncated = vec![0u64; columns];
        let mut values: Vec<Option<String>> = Vec::with_capacity(columns);
        let mut batch: Vec<Row> = Vec::with_capacity(BATCH_ROWS);
        for (n, row) in (1u64..).zip(rows) {
            let row = row.map_err(|e| lost(&e))?;
            convert_row(&self.table, &row, &opts, &mut values, &mut truncated)
                .map_err(|e| VerifyError::new(format!("source: table {table}, row {n}, {e}")))?;
            let mut out: Row = self
                .source_index
                .iter()
                .map(|&i| values[i].take())
                .collect();
            fold_row(&mut out, &self.logicals);
            batch.push(out);
            if batch.len() == BATCH_ROWS {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                if tx.blocking_send(Ok(full)).is_err() {
                    return Ok(());
                }
            }
        }
        self.truncated
            .fetch_add(truncated.iter().sum(), Ordering::Relaxed);
        if !batch.is_empty() {
            let _ = tx.blocking_send(Ok(batch));
        }
        let _ = conn.close();
        Ok(())
    }
}
