//! The MySQL/MariaDB source side of a comparison.
//!
//! Columns are read exactly as molt-dump reads them: the dump's catalog
//! plan gives each column's SELECT expression and its text-protocol
//! [`Decoder`], on a session prepared by [`crate::mysql::connect`] (raw
//! stored bytes, UTC). Rows are ordered by the primary key with text keys
//! compared as bytes (`CAST(... AS BINARY)`), the order the client and the
//! PostgreSQL side (`COLLATE "C"`) agree on.

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use tokio::sync::mpsc;

use super::compare::Row;
use super::merge::{RowRx, RowTx, CHANNEL_BATCHES};
use super::VerifyError;
use crate::ident::{quote_mysql, quote_mysql_table};
use crate::mysql::decode::{Decoded, Decoder};
use crate::stream::TableName;
use crate::value::LogicalType;

const BATCH_ROWS: usize = 2000;

/// How one column is read.
#[derive(Clone, Debug)]
pub struct ReadColumn {
    /// Name on the source.
    pub name: String,
    /// The dump's SELECT expression.
    pub select_expr: String,
    pub decoder: Decoder,
    pub logical: LogicalType,
}

impl ReadColumn {
    fn sort_expr(&self) -> String {
        match self.logical {
            LogicalType::Text | LogicalType::Enum => {
                format!("CAST({} AS BINARY)", quote_mysql(&self.name))
            }
            _ => quote_mysql(&self.name),
        }
    }
}

/// The source's reading of one table slice.
#[derive(Clone, Debug)]
pub struct TableRead {
    pub table: TableName,
    pub columns: Vec<ReadColumn>,
    /// Positions of the key columns in `columns`, in key order.
    pub key: Vec<usize>,
    pub filter: Option<String>,
}

impl TableRead {
    fn select_sql(&self) -> String {
        // Aliased, so that ORDER BY names resolve to the table's columns.
        let cols: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} AS `_molt_verify_{i}`", c.select_expr))
            .collect();
        let mut sql = format!(
            "SELECT {} FROM {}",
            cols.join(", "),
            quote_mysql_table(&self.table)
        );
        if let Some(f) = &self.filter {
            sql.push_str(&format!(" WHERE ({f})"));
        }
        if !self.key.is_empty() {
            let keys: Vec<String> = self
                .key
                .iter()
                .map(|&i| self.columns[i].sort_expr())
                .collect();
            sql.push_str(" ORDER BY ");
            sql.push_str(&keys.join(", "));
        }
        sql
    }

    /// Rows of the slice (for a table that cannot be compared row by row).
    pub async fn count(&self, conn: &mut Conn) -> Result<u64, VerifyError> {
        let mut sql = format!("SELECT COUNT(*) FROM {}", quote_mysql_table(&self.table));
        if let Some(f) = &self.filter {
            sql.push_str(&format!(" WHERE ({f})"));
        }
        let n: Option<u64> = conn.query_first(sql).await.map_err(|e| {
            VerifyError::new(format!("source: counting the rows of {}: {e}", self.table))
        })?;
        Ok(n.unwrap_or(0))
    }

    /// Starts reading the slice in key order on a task of its own, which
    /// owns the connection until it is done.
    pub fn spawn_rows(self: &Arc<Self>, conn: Conn) -> RowRx {
        let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
        let read = Arc::clone(self);
        tokio::spawn(async move {
            let mut conn = conn;
            // An empty batch marks the end (see the merge's cursor).
            let last = read.read_rows(&mut conn, &tx).await.map(|()| Vec::new());
            let _ = tx.send(last).await;
            let _ = conn.disconnect().await;
        });
        rx
    }

    async fn read_rows(&self, conn: &mut Conn, tx: &RowTx) -> Result<(), VerifyError> {
        let lost = |e: mysql_async::Error| {
            VerifyError::new(format!("source: reading {}: {e}", self.table))
        };
        let mut result = conn.query_iter(self.select_sql()).await.map_err(lost)?;
        let mut batch: Vec<Row> = Vec::with_capacity(BATCH_ROWS);
        let mut text = String::new();
        let mut n: u64 = 0;
        while let Some(row) = result.next().await.map_err(lost)? {
            n += 1;
            let values = row.unwrap();
            let mut out: Row = Vec::with_capacity(values.len());
            for (col, value) in self.columns.iter().zip(values) {
                match value {
                    Value::NULL => out.push(None),
                    Value::Bytes(raw) => match col.decoder.decode(&raw, &mut text) {
                        Ok(Decoded::Value) => out.push(Some(text.clone())),
                        // The dump's default zero-date policy writes NULL.
                        Ok(Decoded::InvalidDate) => out.push(None),
                        Err(e) => {
                            return Err(VerifyError::new(format!(
                                "source: table {}, row {n}, column {}: {e}",
                                self.table, col.name
                            )))
                        }
                    },
                    other => {
                        return Err(VerifyError::new(format!(
                            "source: table {}, row {n}, column {}: unexpected value {other:?} from the text protocol",
                            self.table, col.name
                        )))
                    }
                }
            }
            batch.push(out);
            if batch.len() == BATCH_ROWS {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                if tx.send(Ok(full)).await.is_err() {
                    return Ok(());
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(Ok(batch)).await;
        }
        Ok(())
    }
}
