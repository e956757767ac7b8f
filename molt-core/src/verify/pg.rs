//! The PostgreSQL-protocol side of a comparison: the PostgreSQL source and
//! the target (CockroachDB, or PostgreSQL standing in for it).
//!
//! Rows are read with the dump's own decoder
//! ([`crate::postgres::copy_text::RowDecoder`]): whole-table reads through
//! `COPY (SELECT ...) TO STDOUT` exactly as molt-dump reads, key-range
//! reads (whose bounds must be bound as parameters, which COPY cannot take)
//! through an ordinary query whose text values are re-escaped into COPY
//! lines for the same decoder. Either way each value becomes the stream
//! text molt-dump would have written.
//!
//! When both sides speak this protocol, a chunk of rows is first compared
//! by a (count, hash) computed inside each database (`HashAlgo`), from
//! per-column SQL that prints equal values alike on both sides. Equal
//! printed rows must imply equal canonical values, so that a matching hash
//! never hides a difference; the converse need not hold: a chunk that only
//! differs in spelling is simply fetched and compared in the client.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::compare::Row;
use super::merge::{RowRx, RowTx, CHANNEL_BATCHES};
use super::VerifyError;
use crate::digest::DigestColumn;
use crate::ident::{quote_pg, quote_pg_table};
use crate::postgres::catalog::value_kind;
use crate::postgres::copy_text::{ColumnDecoder, RowDecoder, ValueKind};
use crate::stream::{StreamWriter, TableName};
use crate::target::{describe, Flavour};
use crate::url::ConnUrl;
use crate::value::LogicalType;

/// Most chunks of a table whose key has a text column (see
/// [`TableRead::boundaries`]).
pub const MAX_TEXT_KEY_CHUNKS: usize = 16;

/// Rows per batch sent to the comparison.
const BATCH_ROWS: usize = 2000;

/// A connection of either side, shared by the tasks that read from it.
pub type PgConn = Arc<Conn>;

/// One PostgreSQL-protocol connection.
pub struct Conn {
    pub client: tokio_postgres::Client,
    pub flavour: Flavour,
    /// `server_version_num` (0 when unknown).
    pub version_num: i32,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects `what` ("source" or "target") and sets the session so that
/// both sides print values alike: the target's settings (UTC, ISO dates,
/// ISO 8601 intervals) and the source dump's (shortest exact floats, hex
/// bytea). Settings a CockroachDB version does not know are skipped: they
/// only change how values print, and a chunk that prints differently is
/// compared row by row anyway.
pub async fn connect(url: &ConnUrl, what: &str) -> Result<PgConn, VerifyError> {
    if url.engine() != crate::url::Engine::Postgres {
        return Err(VerifyError::new(format!(
            "{what} {url} is not a PostgreSQL or CockroachDB URL"
        )));
    }
    let (client, task) = crate::connect::postgres_with_task(url, &format!("molt-verify {what}"))
        .await
        .map_err(|e| VerifyError::new(format!("{what}: {e}")))?;
    let version: String = client
        .query_one("SELECT version()", &[])
        .await
        .map_err(|e| {
            VerifyError::new(format!(
                "{what}: reading the server version: {}",
                describe(&e)
            ))
        })?
        .get(0);
    let flavour = Flavour::detect(&version);
    let settings = [
        "SET TimeZone = 'UTC'",
        "SET DateStyle = 'ISO, YMD'",
        "SET IntervalStyle = 'iso_8601'",
        "SET extra_float_digits = 1",
        "SET bytea_output = 'hex'",
    ];
    for setting in settings {
        if let Err(e) = client.batch_execute(setting).await {
            if !flavour.is_cockroach() || setting.contains("TimeZone") {
                return Err(VerifyError::new(format!(
                    "{what}: {setting}: {}",
                    describe(&e)
                )));
            }
        }
    }
    let version_num = match client
        .query_one("SELECT current_setting('server_version_num')", &[])
        .await
    {
        Ok(row) => row.get::<_, String>(0).parse().unwrap_or(0),
        Err(_) => 0,
    };
    Ok(Arc::new(Conn {
        client,
        flavour,
        version_num,
        task,
    }))
}

/// A column as the catalog describes it.
#[derive(Clone, Debug)]
pub struct CatalogColumn {
    pub name: String,
    /// `format_type(...)`: `numeric(12,2)`, `character(3)`, `text[]`.
    pub sql_type: String,
    /// `pg_type.typname` of the column (of the element, for arrays).
    pub typname: String,
    pub is_enum: bool,
    pub is_array: bool,
    pub nullable: bool,
}

/// A table as the catalog describes it.
#[derive(Clone, Debug)]
pub struct CatalogTable {
    pub columns: Vec<CatalogColumn>,
    /// Primary-key column names, in key order.
    pub primary_key: Vec<String>,
}

impl CatalogTable {
    pub fn column(&self, name: &str) -> Option<&CatalogColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Reads a table's columns and primary key; `None` when it does not exist.
pub async fn describe_table(
    conn: &Conn,
    table: &TableName,
    what: &str,
) -> Result<Option<CatalogTable>, VerifyError> {
    let rows = conn
        .client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)::text, \
                    coalesce(et.typname, t.typname)::text, coalesce(et.typtype, t.typtype)::text, \
                    (et.oid IS NOT NULL), NOT a.attnotnull \
             FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_catalog.pg_type et ON et.oid = t.typelem AND t.typcategory = 'A' \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[&table.schema, &table.name],
        )
        .await
        .map_err(|e| {
            VerifyError::new(format!(
                "{what}: reading the columns of {table}: {}",
                describe(&e)
            ))
        })?;
    if rows.is_empty() {
        return Ok(None);
    }
    let columns: Vec<CatalogColumn> = rows
        .iter()
        .map(|r| CatalogColumn {
            name: r.get(0),
            sql_type: r.get(1),
            typname: r.get(2),
            is_enum: r.get::<_, String>(3) == "e",
            is_array: r.get(4),
            nullable: r.get(5),
        })
        .collect();
    let pk = conn
        .client
        .query(
            "SELECT kcu.column_name::text FROM information_schema.table_constraints tc \
             JOIN information_schema.key_column_usage kcu \
               ON kcu.constraint_schema = tc.constraint_schema AND kcu.constraint_name = tc.constraint_name \
              AND kcu.table_schema = tc.table_schema AND kcu.table_name = tc.table_name \
             WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = $1 AND tc.table_name = $2 \
             ORDER BY kcu.ordinal_position",
            &[&table.schema, &table.name],
        )
        .await
        .map_err(|e| VerifyError::new(format!("{what}: reading the primary key of {table}: {}", describe(&e))))?;
    let mut primary_key: Vec<String> = pk.iter().map(|r| r.get(0)).collect();
    let mut columns: Vec<CatalogColumn> = columns;
    if conn.flavour.is_cockroach() && primary_key == ["rowid"] {
        // CockroachDB's hidden key of a table created without one: `rowid
        // INT8 NOT VISIBLE NOT NULL DEFAULT unique_rowid()`, listed in its
        // catalogs since cockroachdb/cockroach#28750. It is not the
        // source's column, so neither a key nor a schema difference. A
        // user's own `rowid` key has another default.
        let default: Option<String> = conn
            .client
            .query_opt(
                "SELECT column_default::text FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2 AND column_name = 'rowid'",
                &[&table.schema, &table.name],
            )
            .await
            .map_err(|e| {
                VerifyError::new(format!(
                    "{what}: reading the default of {table}.rowid: {}",
                    describe(&e)
                ))
            })?
            .and_then(|r| r.get(0));
        primary_key.clear();
        if default.as_deref() == Some("unique_rowid()") {
            columns.retain(|c| c.name != "rowid");
        }
    }
    Ok(Some(CatalogTable {
        columns,
        primary_key,
    }))
}

/// How one column is read on one side.
#[derive(Clone, Debug)]
pub struct ReadColumn {
    /// The SQL read: the quoted column, with the source's read cast if any.
    pub expr: String,
    /// The type values are converted as.
    pub logical: LogicalType,
    pub is_array: bool,
    /// `format_type` of the column on this side (for key bounds).
    pub sql_type: String,
    /// The dump's decoder for the column's COPY text.
    pub decoder: ColumnDecoder,
}

impl ReadColumn {
    /// A plain column of this side's catalog, read as `logical` with the
    /// decoding the dump uses for that type.
    pub fn new(
        name: &str,
        logical: LogicalType,
        padded: bool,
        is_array: bool,
        sql_type: &str,
    ) -> ReadColumn {
        ReadColumn {
            expr: quote_pg(name),
            logical,
            is_array,
            sql_type: sql_type.to_string(),
            decoder: ColumnDecoder {
                name: name.to_string(),
                kind: value_kind(logical),
                array: is_array,
                digest: DigestColumn {
                    logical,
                    padded,
                    is_array,
                },
            },
        }
    }

    fn sorts_as_text(&self) -> bool {
        matches!(self.logical, LogicalType::Text | LogicalType::Enum) && !self.is_array
    }

    /// The key expression rows are ordered by: text in byte order (the
    /// client's order), everything else in its natural order.
    fn sort_expr(&self) -> String {
        if self.sorts_as_text() {
            format!("({})::text COLLATE \"C\"", self.expr)
        } else {
            format!("({})", self.expr)
        }
    }

    /// A bound parameter comparable with [`Self::sort_expr`].
    fn param_expr(&self, n: usize) -> String {
        if self.sorts_as_text() {
            format!("${n}::text COLLATE \"C\"")
        } else {
            format!("${n}::text::{}", self.sql_type)
        }
    }

    /// Text that is equal on both sides whenever the values are equal
    /// (see the module documentation).
    fn hash_expr(&self, algo: HashAlgo) -> String {
        let e = &self.expr;
        if algo == HashAlgo::PgRecordHash {
            return self.record_hash_expr();
        }
        if algo == HashAlgo::PgHashSum {
            // Inside a record, each value prints with its type's output
            // function (the same text `::text` gives), so no casts are
            // needed; a decimal prints with its scale. JSON is printed as
            // jsonb: jsonb's own hash ignores a number's scale (`1.0`, `1`).
            return match self.logical {
                _ if self.is_array => format!("({e})"),
                LogicalType::Json => self.jsonb_text_expr(),
                _ => format!("({e})"),
            };
        }
        if self.is_array {
            return format!("({e})::text");
        }
        match self.logical {
            LogicalType::Json => self.jsonb_text_expr(),
            LogicalType::Bytes => format!("encode({e}, 'hex')"),
            _ => format!("({e})::text"),
        }
    }
}

impl ReadColumn {
    /// The value's text as jsonb prints it. A `json` value may hold the
    /// `\u0000` escape that jsonb refuses (the dump refuses it too): such a
    /// value is hashed as its own text behind a marker no jsonb text
    /// starts with, so that the chunk is compared row by row and the row
    /// reported as a difference, where the cast would fail the whole run.
    fn jsonb_text_expr(&self) -> String {
        let e = &self.expr;
        if !self.sql_type.eq_ignore_ascii_case("json") {
            return format!("({e})::jsonb::text");
        }
        // strpos first: the regular expression (an escape preceded by an
        // even number of backslashes) runs only on the rare candidates.
        format!(
            r#"CASE WHEN strpos(({e})::text, '\u0000') > 0 AND ({e})::text ~ '(^|[^\\])(\\\\)*\\u0000' THEN '\u0000 in json: ' || ({e})::text ELSE ({e})::jsonb::text END"#
        )
    }

    /// The value as a field of the record [`HashAlgo::PgRecordHash`]
    /// hashes: the value itself where its type's hash function tells apart
    /// exactly the values the canonical form does (integers, whose hashes
    /// agree across widths; numerics, whose hash ignores trailing zeros, so
    /// their `scale()` is hashed beside them; booleans, dates, times,
    /// timestamps, UUIDs, bytes), and its text otherwise: JSON (as jsonb,
    /// whose hash ignores a number's scale too), floats (whose hash
    /// merges `-0` and `0`), enums (hashed by OID, which differs between
    /// databases), intervals (`1 day` hashes as `24 hours`), arrays, and
    /// text in the `C` collation (a case-insensitive collation would hash
    /// `a` as `A`).
    fn record_hash_expr(&self) -> String {
        let e = &self.expr;
        let ty = self.sql_type.to_ascii_lowercase();
        let bpchar = ty == "bpchar" || ty.starts_with("character(") || ty == "character";
        if self.is_array {
            return format!("({e})::text COLLATE \"C\"");
        }
        let by_value = [
            "smallint",
            "integer",
            "bigint",
            "numeric",
            "boolean",
            "date",
            "time",
            "timestamp",
            "uuid",
            "bytea",
        ]
        .iter()
        .any(|t| ty == *t || ty.starts_with(&format!("{t}(")) || ty.starts_with(&format!("{t} ")));
        match self.logical {
            LogicalType::Decimal if by_value => format!("({e}), scale({e})"),
            LogicalType::Int
            | LogicalType::Bool
            | LogicalType::Date
            | LogicalType::Time
            | LogicalType::Timetz
            | LogicalType::Timestamp
            | LogicalType::Timestamptz
            | LogicalType::Uuid
            | LogicalType::Bytes
                if by_value =>
            {
                format!("({e})")
            }
            LogicalType::Json => format!("({}) COLLATE \"C\"", self.jsonb_text_expr()),
            LogicalType::Text | LogicalType::Enum if self.decoder.digest.padded => {
                if bpchar {
                    // bpchar's text drops the padding, as the canonical form does.
                    format!("({e})::text COLLATE \"C\"")
                } else {
                    format!("rtrim(({e})::text, ' ') COLLATE \"C\"")
                }
            }
            // Compared with its padding: print it with its output function
            // (a cast to text would drop the blanks).
            LogicalType::Text if bpchar => format!("textin(bpcharout({e})) COLLATE \"C\""),
            _ => format!("({e})::text COLLATE \"C\""),
        }
    }
}

/// A key range `lower <= key < upper`, bounds in PostgreSQL text form.
#[derive(Clone, Debug, Default)]
pub struct KeyRange {
    pub lower: Option<Vec<String>>,
    pub upper: Option<Vec<String>>,
}

/// How a chunk's rows are hashed inside the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgo {
    /// PostgreSQL 14 or later on both sides: the sum of each row's
    /// `hash_record_extended` (each value hashed by its type's own hash
    /// function, no printing; see `ReadColumn::record_hash_expr`), mixed
    /// through `hashint8extended` so that the sum of rows is not linear in
    /// the values (a linear one would not see two rows swap a value).
    PgRecordHash,
    /// PostgreSQL on both sides: the sum of `hashtextextended` of each
    /// row's record text (one pass, no sort).
    /// Should the two servers hash differently (another architecture), every
    /// chunk is compared row by row: slower, never wrong.
    PgHashSum,
    /// CockroachDB on either side: md5 over the ordered row md5s of
    /// length-prefixed values, which both engines compute alike.
    Md5Agg,
}

impl HashAlgo {
    /// The form both sides accept.
    pub fn for_pair(a: &Conn, b: &Conn) -> HashAlgo {
        if a.flavour.is_cockroach() || b.flavour.is_cockroach() {
            HashAlgo::Md5Agg
        } else if a.version_num >= 140000 && b.version_num >= 140000 {
            HashAlgo::PgRecordHash
        } else {
            HashAlgo::PgHashSum
        }
    }
}

/// One side's reading of one table slice.
#[derive(Clone, Debug)]
pub struct TableRead {
    pub table: TableName,
    pub columns: Vec<ReadColumn>,
    /// Positions of the key columns in `columns`, in key order.
    pub key: Vec<usize>,
    /// The row filter in this side's dialect.
    pub filter: Option<String>,
    /// Read with `FROM ONLY` (a source table that is not partitioned, so
    /// that inheritance children are not read twice, as the dump does).
    pub only: bool,
}

impl TableRead {
    fn from(&self) -> String {
        format!(
            "{}{}",
            if self.only { "ONLY " } else { "" },
            quote_pg_table(&self.table)
        )
    }

    fn order_by(&self) -> String {
        let keys: Vec<String> = self
            .key
            .iter()
            .map(|&i| self.columns[i].sort_expr())
            .collect();
        keys.join(", ")
    }

    fn key_tuple(&self) -> String {
        format!("({})", self.order_by())
    }

    /// `WHERE` clause (filter and range) with its parameters.
    fn where_clause(&self, range: &KeyRange) -> (String, Vec<String>) {
        let mut parts = Vec::new();
        let mut params = Vec::new();
        if let Some(f) = &self.filter {
            parts.push(format!("({f})"));
        }
        for (bound, op) in [(&range.lower, ">="), (&range.upper, "<")] {
            if let Some(values) = bound {
                let exprs: Vec<String> = self
                    .key
                    .iter()
                    .zip(values)
                    .map(|(&i, v)| {
                        params.push(v.clone());
                        self.columns[i].param_expr(params.len())
                    })
                    .collect();
                parts.push(format!("{} {op} ({})", self.key_tuple(), exprs.join(", ")));
            }
        }
        if parts.is_empty() {
            (String::new(), params)
        } else {
            (format!(" WHERE {}", parts.join(" AND ")), params)
        }
    }

    /// Chunk boundaries: every `chunk_rows`-th key of the slice (after the
    /// first), in PostgreSQL text form. N boundaries make N+1 chunks.
    ///
    /// A text key is compared `COLLATE "C"` (the order the client and every
    /// engine agree on), which an index built with another collation cannot
    /// serve: each chunk then costs a scan of the table. So a text key gets
    /// at most [`MAX_TEXT_KEY_CHUNKS`] chunks.
    pub async fn boundaries(
        &self,
        conn: &Conn,
        chunk_rows: u64,
        what: &str,
    ) -> Result<Vec<Vec<String>>, VerifyError> {
        if let Some(bounds) = self.int_boundaries(conn, chunk_rows, what).await? {
            return Ok(bounds);
        }
        let (wh, _) = self.where_clause(&KeyRange::default());
        let inner: Vec<String> = self
            .key
            .iter()
            .enumerate()
            .map(|(n, &i)| format!("{} AS k{n}", self.columns[i].sort_expr()))
            .collect();
        let outer: Vec<String> = (0..self.key.len()).map(|n| format!("k{n}::text")).collect();
        let sql = format!(
            "SELECT {} FROM (SELECT {}, row_number() OVER (ORDER BY {}) AS rn FROM {}{wh}) s \
             WHERE rn % {chunk_rows} = 1 AND rn > 1 ORDER BY rn",
            outer.join(", "),
            inner.join(", "),
            self.order_by(),
            self.from(),
        );
        let rows = conn.client.query(&sql, &[]).await.map_err(|e| {
            VerifyError::new(format!(
                "{what}: splitting {} into chunks: {}",
                self.table,
                describe(&e)
            ))
        })?;
        let mut bounds: Vec<Vec<String>> = rows
            .iter()
            .map(|r| (0..self.key.len()).map(|n| r.get::<_, String>(n)).collect())
            .collect();
        if self.key.iter().any(|&i| self.columns[i].sorts_as_text())
            && bounds.len() >= MAX_TEXT_KEY_CHUNKS
        {
            let step = bounds.len().div_ceil(MAX_TEXT_KEY_CHUNKS - 1);
            bounds = bounds.into_iter().skip(step - 1).step_by(step).collect();
        }
        Ok(bounds)
    }

    /// Boundaries of a single integer key, split evenly between its
    /// smallest and largest value into as many chunks as the table's
    /// estimated rows call for: two index probes instead of a
    /// `row_number()` pass over the whole slice (which costs as much as
    /// hashing it). Gaps in the keys only make some chunks smaller than
    /// others. `None` when the key is not one integer column or the
    /// table has no row estimate (never analyzed, or partitioned).
    async fn int_boundaries(
        &self,
        conn: &Conn,
        chunk_rows: u64,
        what: &str,
    ) -> Result<Option<Vec<Vec<String>>>, VerifyError> {
        if !self.single_int_key() {
            return Ok(None);
        }
        let estimate: Option<f64> = conn
            .client
            .query_opt(
                "SELECT reltuples::float8 FROM pg_catalog.pg_class WHERE oid = to_regclass($1)",
                &[&quote_pg_table(&self.table)],
            )
            .await
            .map_err(|e| self.split_failed(what, e))?
            .and_then(|r| r.get(0));
        let Some(estimate) = estimate.filter(|e| *e >= 1.0) else {
            return Ok(None);
        };
        let Some((min, max)) = self.int_key_span(conn, what).await? else {
            // No rows in the slice: one chunk (the target may still have some).
            return Ok(Some(Vec::new()));
        };
        Ok(Some(
            super::int_boundaries(min, max, estimate as u64, chunk_rows)
                .into_iter()
                .map(|b| vec![b.to_string()])
                .collect(),
        ))
    }

    fn split_failed(&self, what: &str, e: tokio_postgres::Error) -> VerifyError {
        VerifyError::new(format!(
            "{what}: splitting {} into chunks: {}",
            self.table,
            describe(&e)
        ))
    }

    /// Whether the key is one integer column (split by value).
    pub fn single_int_key(&self) -> bool {
        let [k] = self.key[..] else {
            return false;
        };
        let col = &self.columns[k];
        !col.is_array
            && col.logical == LogicalType::Int
            && matches!(col.sql_type.as_str(), "smallint" | "integer" | "bigint")
    }

    /// The smallest and largest key of the slice (a single integer key);
    /// `None` when the slice is empty.
    pub async fn int_key_span(
        &self,
        conn: &Conn,
        what: &str,
    ) -> Result<Option<(i128, i128)>, VerifyError> {
        let e = &self.columns[self.key[0]].expr;
        let (wh, _) = self.where_clause(&KeyRange::default());
        let sql = format!(
            "SELECT min({e})::text, max({e})::text FROM {}{wh}",
            self.from()
        );
        let row = conn
            .client
            .query_one(&sql, &[])
            .await
            .map_err(|e| self.split_failed(what, e))?;
        Ok(row
            .get::<_, Option<String>>(0)
            .zip(row.get::<_, Option<String>>(1))
            .and_then(|(a, b)| Some((a.parse::<i128>().ok()?, b.parse::<i128>().ok()?))))
    }

    /// Rows of the slice (for a table that cannot be compared row by row).
    pub async fn count(&self, conn: &Conn, what: &str) -> Result<u64, VerifyError> {
        let (wh, _) = self.where_clause(&KeyRange::default());
        let sql = format!("SELECT count(*)::int8 FROM {}{wh}", self.from());
        let row = conn.client.query_one(&sql, &[]).await.map_err(|e| {
            VerifyError::new(format!(
                "{what}: counting the rows of {}: {}",
                self.table,
                describe(&e)
            ))
        })?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    /// Row count and hash of one chunk.
    pub async fn chunk_hash(
        &self,
        conn: &Conn,
        range: &KeyRange,
        algo: HashAlgo,
        what: &str,
    ) -> Result<(i64, Option<String>), VerifyError> {
        let values = self.columns.iter().map(|c| c.hash_expr(algo));
        let agg = match algo {
            HashAlgo::PgRecordHash => {
                let fields: Vec<String> = values.collect();
                format!(
                    "sum(hashint8extended(hash_record_extended(ROW({}), 0), 0))::text",
                    fields.join(", ")
                )
            }
            HashAlgo::PgHashSum => {
                // The record text quotes each value as needed, so it is
                // injective: no two different rows print alike.
                let row_text = format!("ROW({})::text", values.collect::<Vec<_>>().join(", "));
                format!("sum(hashtextextended({row_text}, 0))::text")
            }
            HashAlgo::Md5Agg => {
                let parts: Vec<String> = values
                    .map(|e| format!("coalesce(length({e})::text || ':' || {e}, 'N')"))
                    .collect();
                let row_text = parts.join(" || '|' || ");
                format!(
                    "md5(string_agg(md5({row_text}), '' ORDER BY {}))",
                    self.order_by()
                )
            }
        };
        self.chunk_aggregate(conn, range, &format!("count(*)::int8, {agg}"), what)
            .await
    }

    /// Row count and hash of one chunk, in the row text shared with a
    /// MySQL source ([`super::cross::CrossRow::pg_hash_sql`]).
    pub async fn cross_hash(
        &self,
        conn: &Conn,
        range: &KeyRange,
        cross: &super::cross::CrossRow,
        what: &str,
    ) -> Result<(i64, Option<String>), VerifyError> {
        self.chunk_aggregate(conn, range, &cross.pg_hash_sql(), what)
            .await
    }

    /// Row count and hash of one chunk whose source rows the client hashes
    /// ([`super::cross::CrossRow::pg_client_hash_sql`], or MD5 as in
    /// [`Self::cross_hash`]).
    pub async fn client_cross_hash(
        &self,
        conn: &Conn,
        range: &KeyRange,
        cross: &super::cross::CrossRow,
        form: super::mysql::ClientHash,
        what: &str,
    ) -> Result<(i64, Option<String>), VerifyError> {
        let select = match form {
            super::mysql::ClientHash::PgText => cross.pg_client_hash_sql(),
            super::mysql::ClientHash::Md5 => cross.pg_hash_sql(),
        };
        self.chunk_aggregate(conn, range, &select, what).await
    }

    /// `SELECT <count>, <hash> FROM` the chunk.
    async fn chunk_aggregate(
        &self,
        conn: &Conn,
        range: &KeyRange,
        select: &str,
        what: &str,
    ) -> Result<(i64, Option<String>), VerifyError> {
        let (wh, params) = self.where_clause(range);
        let sql = format!("SELECT {select} FROM {}{wh}", self.from());
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let row = conn.client.query_one(&sql, &refs).await.map_err(|e| {
            VerifyError::new(format!(
                "{what}: hashing a chunk of {}: {}",
                self.table,
                describe(&e)
            ))
        })?;
        Ok((row.get(0), row.get(1)))
    }

    /// Starts reading the rows of `range` in key order (or, without a key,
    /// in any order) on a task of its own.
    pub fn spawn_rows(
        self: &Arc<Self>,
        conn: PgConn,
        range: KeyRange,
        what: &'static str,
    ) -> RowRx {
        let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
        let read = Arc::clone(self);
        tokio::spawn(async move {
            let result = if range.lower.is_none() && range.upper.is_none() {
                read.copy_rows(&conn, &tx, what).await
            } else {
                read.query_rows(&conn, &range, &tx, what).await
            };
            // An empty batch marks the end, so that a reader that stops
            // without one is an error, never a short stream.
            let last = result.map(|()| Vec::new());
            let _ = tx.send(last).await;
        });
        rx
    }

    /// The rows' SELECT. Every output column gets an alias of its own:
    /// `ORDER BY "id"` resolves a name against the output columns first,
    /// and an output `"id"::text` named `id` would sort the keys as text.
    fn select_sql(&self, range: &KeyRange, as_text: bool) -> (String, Vec<String>) {
        let cols: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if as_text {
                    format!("({})::text AS \"_molt_verify_{i}\"", c.expr)
                } else {
                    format!("{} AS \"_molt_verify_{i}\"", c.expr)
                }
            })
            .collect();
        let (wh, params) = self.where_clause(range);
        let mut sql = format!("SELECT {} FROM {}{wh}", cols.join(", "), self.from());
        if !self.key.is_empty() {
            sql.push_str(" ORDER BY ");
            sql.push_str(&self.order_by());
        }
        (sql, params)
    }

    fn decoder(&self) -> RowDecoder {
        // A JSON `\u0000`, which the dump refuses, is read as it is: verify
        // reports its row as a difference instead of stopping.
        let columns = self
            .columns
            .iter()
            .map(|c| {
                let mut decoder = c.decoder.clone();
                if decoder.kind == ValueKind::Json {
                    decoder.kind = ValueKind::Plain;
                }
                decoder
            })
            .collect();
        RowDecoder::new(self.table.to_string(), columns).with_key(self.key.clone())
    }

    /// The whole slice through COPY, as the dump reads it.
    async fn copy_rows(&self, conn: &Conn, tx: &RowTx, what: &str) -> Result<(), VerifyError> {
        use futures_util::StreamExt;
        let (sql, _) = self.select_sql(&KeyRange::default(), false);
        let copy = format!("COPY ({sql}) TO STDOUT");
        let lost = |e: tokio_postgres::Error| {
            VerifyError::new(format!("{what}: reading {}: {}", self.table, describe(&e)))
        };
        let stream = conn.client.copy_out(&copy).await.map_err(lost)?;
        futures_util::pin_mut!(stream);
        let mut decoder = self.decoder();
        let mut pending = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(lost)?;
            pending.extend_from_slice(&chunk);
            if pending.len() >= 256 * 1024 {
                self.decode_send(&mut decoder, &mut pending, tx).await?;
            }
        }
        self.decode_send(&mut decoder, &mut pending, tx).await?;
        decoder
            .finish()
            .map_err(|e| VerifyError::new(format!("{what}: {e}")))
    }

    /// A key range through a parameterized query; the text values are
    /// escaped back into COPY lines for the same decoder.
    async fn query_rows(
        &self,
        conn: &Conn,
        range: &KeyRange,
        tx: &RowTx,
        what: &str,
    ) -> Result<(), VerifyError> {
        use futures_util::StreamExt;
        let (sql, params) = self.select_sql(range, true);
        let lost = |e: tokio_postgres::Error| {
            VerifyError::new(format!("{what}: reading {}: {}", self.table, describe(&e)))
        };
        let stream = conn
            .client
            .query_raw(&sql, params.iter())
            .await
            .map_err(lost)?;
        futures_util::pin_mut!(stream);
        let mut decoder = self.decoder();
        let mut pending = Vec::new();
        let mut rows = 0;
        while let Some(row) = stream.next().await {
            let row = row.map_err(lost)?;
            for i in 0..self.columns.len() {
                if i > 0 {
                    pending.push(b'\t');
                }
                match row.get::<_, Option<&str>>(i) {
                    None => pending.extend_from_slice(b"\\N"),
                    Some(v) => escape_copy(v, &mut pending),
                }
            }
            pending.push(b'\n');
            rows += 1;
            if rows % BATCH_ROWS == 0 {
                self.decode_send(&mut decoder, &mut pending, tx).await?;
            }
        }
        self.decode_send(&mut decoder, &mut pending, tx).await
    }

    /// Decodes complete COPY lines of `pending` and sends them as a batch.
    async fn decode_send(
        &self,
        decoder: &mut RowDecoder,
        pending: &mut Vec<u8>,
        tx: &RowTx,
    ) -> Result<(), VerifyError> {
        if pending.is_empty() {
            return Ok(());
        }
        let mut writer = StreamWriter::new(Vec::with_capacity(pending.len() + pending.len() / 4));
        decoder
            .feed(pending, &mut writer)
            .map_err(|e| VerifyError::new(e.to_string()))?;
        pending.clear();
        let ndjson = writer
            .into_inner()
            .map_err(|e| VerifyError::new(e.to_string()))?;
        let batch = parse_rows(&ndjson)?;
        if !batch.is_empty() && tx.send(Ok(batch)).await.is_err() {
            // The comparison stopped (it failed on the other side).
            return Err(VerifyError::new("comparison ended"));
        }
        Ok(())
    }
}

/// COPY text escaping of one value (the inverse of the decoder's unescape).
fn escape_copy(value: &str, out: &mut Vec<u8>) {
    for &b in value.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// Stream rows (NDJSON arrays) back into [`Row`]s.
pub fn parse_rows(ndjson: &[u8]) -> Result<Vec<Row>, VerifyError> {
    let mut rows = Vec::new();
    for line in ndjson.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let values: Vec<serde_json::Value> = serde_json::from_slice(line)
            .map_err(|e| VerifyError::new(format!("decoded row is not JSON: {e}")))?;
        rows.push(
            values
                .into_iter()
                .map(|v| match v {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some(s),
                    other => Some(other.to_string()),
                })
                .collect(),
        );
    }
    Ok(rows)
}

/// Whether the server computes `hashtextextended` as the client does
/// ([`super::cross::pg_text_hash`]; a big-endian server would not).
pub async fn text_hash_agrees(conn: &Conn) -> bool {
    let probe = super::cross::PG_TEXT_HASH_PROBE;
    match conn
        .client
        .query_one(
            "SELECT hashtextextended($1::text COLLATE \"C\", 0)",
            &[&probe],
        )
        .await
    {
        Ok(row) => row.get::<_, i64>(0) == super::cross::pg_text_hash(probe.as_bytes()),
        Err(_) => false,
    }
}
