//! The MySQL/MariaDB source side of a comparison.
//!
//! Columns are read exactly as molt-dump reads them: the dump's catalog
//! plan gives each column's SELECT expression and its text-protocol
//! [`Decoder`], on a session prepared by [`crate::mysql::connect`] (raw
//! stored bytes, UTC). Rows are ordered by the primary key with text keys
//! compared as bytes (`CAST(... AS BINARY)`), the order the client and the
//! PostgreSQL side (`COLLATE "C"`) agree on.
//!
//! A slice is split into key ranges ([`Chunk`]) only where a range selects
//! the same rows on both sides (numbers, dates and times by value, UTF-8
//! text and enum labels by bytes), and the range bounds are written into
//! the SQL as literals: rows are read with the text protocol, which takes
//! no parameters. Chunk hashes are computed by MySQL
//! ([`TableRead::cross_hash`]) or, for tables with JSON, from row text
//! MySQL prints and the client finishes ([`TableRead::client_hash`]); see
//! [`super::cross`].

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use tokio::sync::mpsc;

use super::compare::Row;
use super::cross::{hash60, pg_text_hash, CrossRow};
use super::merge::{RowRx, RowTx, CHANNEL_BATCHES};
use super::pg::{KeyRange, MAX_TEXT_KEY_CHUNKS};
use super::VerifyError;
use crate::ident::{quote_mysql, quote_mysql_table};
use crate::mysql::charset::Charset;
use crate::mysql::decode::{Decoded, Decoder};
use crate::stream::TableName;
use crate::value::jsonb_text;
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
    /// Whether key ranges of this column mean the same rows on both sides
    /// (see [`TableRead::chunkable`]).
    fn chunkable(&self) -> bool {
        match self.decoder {
            Decoder::Int
            | Decoder::Decimal
            | Decoder::Date
            | Decoder::Datetime
            | Decoder::Timestamp => true,
            // UTF-8 bytes sort as code points on both sides; other
            // charsets' bytes do not.
            Decoder::Text(Charset::Utf8)
            | Decoder::Enum(Charset::Utf8)
            | Decoder::EnumDeclaringEmpty(Charset::Utf8) => true,
            _ => false,
        }
    }

    /// A SQL literal of a key value (as the text protocol returned it),
    /// comparable with [`Self::sort_expr`]; `None` when the value cannot be
    /// written safely (the boundary is then dropped).
    fn literal(&self, raw: &[u8]) -> Option<String> {
        let text = std::str::from_utf8(raw).ok();
        match self.decoder {
            Decoder::Int | Decoder::Decimal => {
                let t = text?;
                let digits = t.strip_prefix('-').unwrap_or(t);
                let ok = !digits.is_empty()
                    && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                    && digits.bytes().filter(|&b| b == b'.').count() <= 1;
                ok.then(|| t.to_string())
            }
            Decoder::Date | Decoder::Datetime | Decoder::Timestamp => {
                let t = text?;
                let mut out = String::new();
                // Zero and invalid dates have no value on the target.
                if self.decoder.decode(raw, &mut out).ok()? != Decoded::Value {
                    return None;
                }
                t.bytes()
                    .all(|b| b.is_ascii_digit() || b" :.-".contains(&b))
                    .then(|| format!("'{t}'"))
            }
            _ => {
                let hex: String = raw.iter().map(|b| format!("{b:02X}")).collect();
                Some(format!("X'{hex}'"))
            }
        }
    }

    /// A key value as the target reads it (a bound of its key range).
    fn pg_bound(&self, raw: &[u8]) -> Option<String> {
        let mut out = String::new();
        if self.decoder.decode(raw, &mut out).ok()? != Decoded::Value || out.contains('\0') {
            return None;
        }
        if self.decoder == Decoder::Timestamp {
            // The stream's `Z` as PostgreSQL reads an offset.
            out.pop();
            out.push_str("+00");
        }
        Some(out)
    }

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

/// A key range `lower <= key < upper` on the source, bounds as the text
/// protocol returned them; the target's bounds are in a [`KeyRange`].
#[derive(Clone, Debug, Default)]
pub struct MyRange {
    pub lower: Option<Vec<Vec<u8>>>,
    pub upper: Option<Vec<Vec<u8>>>,
}

/// How the client hashes the source's rows (the target hashes them alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientHash {
    /// PostgreSQL's `hashtextextended`, when the target computes it as the
    /// client does ([`super::cross::PG_TEXT_HASH_PROBE`]).
    PgText,
    /// The first 60 MD5 bits, as in SQL on both sides.
    Md5,
}

/// One chunk of a MySQL-sourced table, on both sides.
#[derive(Clone, Debug, Default)]
pub struct Chunk {
    pub source: MyRange,
    pub target: KeyRange,
}

impl TableRead {
    /// Whether the slice can be split into key ranges that select the same
    /// rows on both sides: every key column sorts alike on both (numbers,
    /// dates and times by value, UTF-8 text and enum labels by bytes).
    pub fn chunkable(&self) -> bool {
        !self.key.is_empty() && self.key.iter().all(|&i| self.columns[i].chunkable())
    }

    /// ` WHERE` filter and range, with the bounds written as literals (the
    /// rows are read with the text protocol, which takes no parameters).
    fn where_sql(&self, range: &MyRange) -> String {
        let mut parts = Vec::new();
        if let Some(f) = &self.filter {
            parts.push(format!("({f})"));
        }
        for (bound, strict, last) in [(&range.lower, ">", ">="), (&range.upper, "<", "<")] {
            if let Some(values) = bound {
                let mut literals = Vec::new();
                for (&i, v) in self.key.iter().zip(values) {
                    // Bounds come from this table's own keys: always writable.
                    literals.push(self.columns[i].literal(v).unwrap_or_else(|| "NULL".into()));
                }
                parts.push(self.lexicographic(&literals, strict, last));
            }
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", parts.join(" AND "))
        }
    }

    /// `(k1, k2) op (v1, v2)` spelled out, which every MySQL version's range
    /// optimizer reads as index ranges.
    fn lexicographic(&self, literals: &[String], strict: &str, last: &str) -> String {
        let n = literals.len();
        let mut expr = String::new();
        for (pos, (&i, lit)) in self.key.iter().zip(literals).enumerate().rev() {
            let k = self.columns[i].sort_expr();
            expr = if pos == n - 1 {
                format!("{k} {last} {lit}")
            } else {
                format!("({k} {strict} {lit} OR ({k} = {lit} AND {expr}))")
            };
        }
        expr
    }

    /// Chunk boundaries, as the text protocol returns key values. A single
    /// integer key is split evenly between its smallest and largest value
    /// (two index probes); other keys take every `chunk_rows`-th key with
    /// `ROW_NUMBER()` where the server has window functions (MySQL 8.0,
    /// MariaDB 10.2), and are one chunk on MySQL 5.7. A text key, compared
    /// as bytes where no index can serve the order, gets at most
    /// [`MAX_TEXT_KEY_CHUNKS`] chunks.
    pub async fn boundaries(
        &self,
        conn: &mut Conn,
        chunk_rows: u64,
        window_functions: bool,
    ) -> Result<Vec<Chunk>, VerifyError> {
        let failed = |e: mysql_async::Error| {
            VerifyError::new(format!("source: splitting {} into chunks: {e}", self.table))
        };
        let from = quote_mysql_table(&self.table);
        let wh = self.where_sql(&MyRange::default());
        let mut raw: Vec<Vec<Vec<u8>>> = Vec::new();
        if self.single_int_key() {
            let Some((min, max)) = self.int_key_span(conn).await? else {
                return Ok(vec![Chunk::default()]);
            };
            const ESTIMATE: &str = "SELECT TABLE_ROWS FROM information_schema.TABLES \
                                    WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?";
            let estimate: Option<Option<u64>> = conn
                .exec_first(ESTIMATE, (&self.table.schema, &self.table.name))
                .await
                .map_err(failed)?;
            let estimate = match estimate.flatten().filter(|&n| n > 0) {
                Some(n) => n,
                None => conn
                    .query_first::<u64, _>(format!("SELECT COUNT(*) FROM {from}{wh}"))
                    .await
                    .map_err(failed)?
                    .unwrap_or(0),
            };
            raw = super::int_boundaries(min, max, estimate, chunk_rows)
                .into_iter()
                .map(|b| vec![b.to_string().into_bytes()])
                .collect();
            return Ok(self.chunks(raw));
        }
        if window_functions {
            let keys: Vec<String> = self
                .key
                .iter()
                .enumerate()
                .map(|(n, &i)| format!("{} AS `k{n}`", quote_mysql(&self.columns[i].name)))
                .collect();
            let order: Vec<String> = self
                .key
                .iter()
                .map(|&i| self.columns[i].sort_expr())
                .collect();
            let outer: Vec<String> = (0..self.key.len()).map(|n| format!("`k{n}`")).collect();
            let sql = format!(
                "SELECT {} FROM (SELECT {}, ROW_NUMBER() OVER (ORDER BY {}) AS `rn` FROM {from}{wh}) s \
                 WHERE `rn` % {chunk_rows} = 1 AND `rn` > 1 ORDER BY `rn`",
                outer.join(", "),
                keys.join(", "),
                order.join(", ")
            );
            let rows: Vec<mysql_async::Row> = conn.query(sql).await.map_err(failed)?;
            for row in rows {
                let values: Option<Vec<Vec<u8>>> = row
                    .unwrap()
                    .into_iter()
                    .map(|v| match v {
                        Value::Bytes(b) => Some(b),
                        _ => None,
                    })
                    .collect();
                raw.extend(values);
            }
            let text_key = self.key.iter().any(|&i| {
                matches!(
                    self.columns[i].decoder,
                    Decoder::Text(_) | Decoder::Enum(_) | Decoder::EnumDeclaringEmpty(_)
                )
            });
            if text_key && raw.len() >= MAX_TEXT_KEY_CHUNKS {
                let step = raw.len().div_ceil(MAX_TEXT_KEY_CHUNKS - 1);
                raw = raw.into_iter().skip(step - 1).step_by(step).collect();
            }
        }
        Ok(self.chunks(raw))
    }

    /// Whether the key is one integer column (split by value).
    pub fn single_int_key(&self) -> bool {
        matches!(self.key[..], [k] if self.columns[k].decoder == Decoder::Int)
    }

    /// The smallest and largest key of the slice (a single integer key);
    /// `None` when the slice is empty.
    pub async fn int_key_span(&self, conn: &mut Conn) -> Result<Option<(i128, i128)>, VerifyError> {
        let name = quote_mysql(&self.columns[self.key[0]].name);
        let span: Option<(Option<String>, Option<String>)> = conn
            .query_first(format!(
                "SELECT MIN({name}), MAX({name}) FROM {}{}",
                quote_mysql_table(&self.table),
                self.where_sql(&MyRange::default())
            ))
            .await
            .map_err(|e| {
                VerifyError::new(format!("source: splitting {} into chunks: {e}", self.table))
            })?;
        Ok(span
            .and_then(|(a, b)| a.zip(b))
            .and_then(|(a, b)| Some((a.parse::<i128>().ok()?, b.parse::<i128>().ok()?))))
    }

    /// N boundaries → N+1 chunks covering the whole key space; a boundary
    /// that cannot be written on both sides is left out (its neighbours
    /// merge).
    fn chunks(&self, bounds: Vec<Vec<Vec<u8>>>) -> Vec<Chunk> {
        let mut chunks = Vec::with_capacity(bounds.len() + 1);
        let mut lower: Option<(Vec<Vec<u8>>, Vec<String>)> = None;
        for b in bounds {
            let pg: Option<Vec<String>> = self
                .key
                .iter()
                .zip(&b)
                .map(|(&i, v)| {
                    self.columns[i].literal(v)?;
                    self.columns[i].pg_bound(v)
                })
                .collect();
            let Some(pg) = pg else { continue };
            let (source_lower, target_lower) = match lower.take() {
                Some((s, t)) => (Some(s), Some(t)),
                None => (None, None),
            };
            chunks.push(Chunk {
                source: MyRange {
                    lower: source_lower,
                    upper: Some(b.clone()),
                },
                target: KeyRange {
                    lower: target_lower,
                    upper: Some(pg.clone()),
                },
            });
            lower = Some((b, pg));
        }
        let (source_lower, target_lower) = match lower {
            Some((s, t)) => (Some(s), Some(t)),
            None => (None, None),
        };
        chunks.push(Chunk {
            source: MyRange {
                lower: source_lower,
                upper: None,
            },
            target: KeyRange {
                lower: target_lower,
                upper: None,
            },
        });
        chunks
    }

    /// Row count and hash of one chunk, computed by the server
    /// ([`CrossRow::mysql_hash_sql`]).
    pub async fn cross_hash(
        &self,
        conn: &mut Conn,
        range: &MyRange,
        cross: &CrossRow,
    ) -> Result<(i64, Option<String>), VerifyError> {
        let sql = format!(
            "SELECT {} FROM {}{}",
            cross.mysql_hash_sql(),
            quote_mysql_table(&self.table),
            self.where_sql(range)
        );
        let row: Option<(i64, Option<String>)> = conn.query_first(sql).await.map_err(|e| {
            VerifyError::new(format!("source: hashing a chunk of {}: {e}", self.table))
        })?;
        Ok(row.unwrap_or((0, None)))
    }

    /// Row count and hash of one chunk whose JSON columns the client
    /// prints: the server sends each row's text of the other columns and
    /// the JSON values, and the client finishes and hashes each row text
    /// exactly as the target does. A JSON value the client cannot print
    /// makes the hash one that never matches, so the chunk is compared
    /// row by row.
    pub async fn client_hash(
        &self,
        conn: &mut Conn,
        range: &MyRange,
        cross: &CrossRow,
        form: ClientHash,
    ) -> Result<(i64, Option<String>), VerifyError> {
        let mut select = vec![cross.mysql_sql_text()];
        select.extend(cross.mysql_client_exprs());
        let sql = format!(
            "SELECT {} FROM {}{}",
            select.join(", "),
            quote_mysql_table(&self.table),
            self.where_sql(range)
        );
        let lost = |e: mysql_async::Error| {
            VerifyError::new(format!("source: hashing a chunk of {}: {e}", self.table))
        };
        let mut result = conn.query_iter(sql).await.map_err(lost)?;
        let mut count: i64 = 0;
        let mut sum: i128 = 0;
        let mut unprintable = false;
        let mut text: Vec<u8> = Vec::new();
        let mut json = String::new();
        while let Some(row) = result.next().await.map_err(lost)? {
            count += 1;
            text.clear();
            for (n, value) in row.unwrap().into_iter().enumerate() {
                if n > 0 {
                    text.push(b'|');
                }
                match value {
                    Value::NULL => text.push(b'N'),
                    Value::Bytes(raw) if n == 0 => text.extend_from_slice(&raw),
                    Value::Bytes(raw) => {
                        json.clear();
                        match std::str::from_utf8(&raw) {
                            Ok(s) if jsonb_text(s, &mut json) => {
                                text.extend_from_slice(json.as_bytes())
                            }
                            _ => unprintable = true,
                        }
                    }
                    _ => unprintable = true,
                }
            }
            sum += match form {
                ClientHash::PgText => i128::from(pg_text_hash(&text)),
                ClientHash::Md5 => i128::from(hash60(&text)),
            };
        }
        Ok((
            count,
            if unprintable {
                Some("unprintable".into())
            } else if count == 0 {
                None
            } else {
                Some(sum.to_string())
            },
        ))
    }

    fn select_sql(&self, range: &MyRange) -> String {
        // Aliased, so that ORDER BY names resolve to the table's columns.
        let cols: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} AS `_molt_verify_{i}`", c.select_expr))
            .collect();
        let mut sql = format!(
            "SELECT {} FROM {}{}",
            cols.join(", "),
            quote_mysql_table(&self.table),
            self.where_sql(range)
        );
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

    /// Starts reading the rows of `range` in key order on a task of its
    /// own, which owns the connection until it is done.
    pub fn spawn_rows(self: &Arc<Self>, conn: Conn, range: MyRange) -> RowRx {
        let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
        let read = Arc::clone(self);
        tokio::spawn(async move {
            let mut conn = conn;
            // An empty batch marks the end (see the merge's cursor).
            let last = read
                .read_rows(&mut conn, &range, &tx)
                .await
                .map(|()| Vec::new());
            let _ = tx.send(last).await;
            let _ = conn.disconnect().await;
        });
        rx
    }

    async fn read_rows(
        &self,
        conn: &mut Conn,
        range: &MyRange,
        tx: &RowTx,
    ) -> Result<(), VerifyError> {
        let lost = |e: mysql_async::Error| {
            VerifyError::new(format!("source: reading {}: {e}", self.table))
        };
        let mut result = conn
            .query_iter(self.select_sql(range))
            .await
            .map_err(lost)?;
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
                    Value::Bytes(raw) => match col.decoder.decode_for_verify(&raw, &mut text) {
                        Ok(Decoded::Value | Decoded::JsonDuplicatesDropped) => {
                            out.push(Some(text.clone()))
                        }
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
