//! The few questions molt-slice asks a source, in each engine's dialect.
//!
//! Every table and column name is quoted through `molt_core::ident`; the
//! only SQL pasted verbatim is the plan's operator-written filters. Key
//! values come back as text in the stream's value form, so they can be
//! written into shard bounds unchanged.

use anyhow::Context;
use molt_core::ident;
use molt_core::stream::TableName;
use molt_core::{ConnUrl, Engine};
use mysql_async::prelude::Queryable;

/// A foreign key from a child table to its parent.
#[derive(Clone, Debug, PartialEq)]
pub struct ForeignKey {
    pub name: String,
    pub columns: Vec<String>,
    pub parent: TableName,
    pub referenced_columns: Vec<String>,
}

/// A primary-key column and whether its values are bytes (written base64).
#[derive(Clone, Debug)]
pub struct KeyColumn {
    pub name: String,
    pub bytes: bool,
    /// Oracle: how the column is read and its fractional-second digits,
    /// which fix its stream text expression.
    pub oracle: Option<(molt_core::oracle::ReadKind, u8)>,
}

/// A connected source.
pub enum Source {
    Postgres(tokio_postgres::Client),
    Mysql {
        conn: mysql_async::Conn,
        database: String,
    },
    #[cfg(feature = "oracle")]
    Oracle(crate::oracle::OracleSource),
}

/// A row of key values (`None` is NULL).
pub type KeyRow = Vec<Option<String>>;

impl Source {
    pub async fn connect(url: &ConnUrl) -> anyhow::Result<Source> {
        match url.engine() {
            Engine::Postgres => {
                let client = molt_core::connect::postgres(url, "molt-slice").await?;
                client
                    .batch_execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 1")
                    .await
                    .context("setting session parameters")?;
                Ok(Source::Postgres(client))
            }
            Engine::Mysql => {
                let opts = molt_core::connect::mysql_opts(url)?;
                let database = opts.db_name().unwrap_or_default().to_string();
                let mut conn = mysql_async::Conn::new(opts)
                    .await
                    .with_context(|| format!("connecting to {url}"))?;
                conn.query_drop("SET time_zone = '+00:00', NAMES utf8mb4")
                    .await
                    .context("setting session variables")?;
                Ok(Source::Mysql { conn, database })
            }
            #[cfg(feature = "oracle")]
            Engine::Oracle => Ok(Source::Oracle(
                crate::oracle::OracleSource::connect(url).await?,
            )),
            #[cfg(not(feature = "oracle"))]
            Engine::Oracle => anyhow::bail!(molt_core::oracle::built_without_oracle("molt-slice")),
        }
    }

    /// Schema of unqualified names when the plan names none.
    pub fn default_schema(&self) -> String {
        match self {
            Source::Postgres(_) => "public".into(),
            Source::Mysql { database, .. } => database.clone(),
            #[cfg(feature = "oracle")]
            Source::Oracle(o) => o.owner.clone(),
        }
    }

    pub fn quote(&self, name: &str) -> String {
        match self {
            Source::Postgres(_) => ident::quote_pg(name),
            Source::Mysql { .. } => ident::quote_mysql(name),
            #[cfg(feature = "oracle")]
            Source::Oracle(_) => molt_core::oracle::quote_oracle(name),
        }
    }

    pub fn quote_table(&self, table: &TableName) -> String {
        format!("{}.{}", self.quote(&table.schema), self.quote(&table.name))
    }

    /// `a, b` quoted.
    pub fn column_list(&self, columns: &[String]) -> String {
        columns
            .iter()
            .map(|c| self.quote(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `(a, b)` quoted; a single column without parentheses.
    pub fn column_tuple(&self, columns: &[String]) -> String {
        if columns.len() == 1 {
            self.quote(&columns[0])
        } else {
            format!("({})", self.column_list(columns))
        }
    }

    /// The expression that yields a key column as stream text.
    fn key_text(&self, column: &KeyColumn, alias: Option<&str>) -> String {
        let col = match alias {
            Some(a) => format!("{a}.{}", self.quote(&column.name)),
            None => self.quote(&column.name),
        };
        match (self, column.bytes) {
            (Source::Postgres(_), true) => {
                format!("translate(encode({col}, 'base64'), E'\\n', '')")
            }
            (Source::Postgres(_), false) => format!("{col}::text"),
            (Source::Mysql { .. }, true) => format!("REPLACE(TO_BASE64({col}), '\\n', '')"),
            (Source::Mysql { .. }, false) => format!("CAST({col} AS CHAR)"),
            #[cfg(feature = "oracle")]
            (Source::Oracle(_), _) => crate::oracle::key_text(column, alias),
        }
    }

    /// Base tables of a schema (partitions of PostgreSQL partitioned tables
    /// are part of their parent, not tables of their own).
    pub async fn tables(&mut self, schema: &str) -> anyhow::Result<Vec<TableName>> {
        let names: Vec<String> = match self {
            Source::Postgres(client) => client
                .query(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname",
                    &[&schema],
                )
                .await
                .with_context(|| format!("listing tables of schema {schema}"))?
                .iter()
                .map(|r| r.get(0))
                .collect(),
            Source::Mysql { conn, .. } => conn
                .exec(
                    "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
                     WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
                    (schema,),
                )
                .await
                .with_context(|| format!("listing tables of database {schema}"))?,
            #[cfg(feature = "oracle")]
            Source::Oracle(o) => return o.tables(schema).await,
        };
        Ok(names
            .into_iter()
            .map(|n| TableName::new(schema, n))
            .collect())
    }

    /// Primary-key columns in key order; empty when the table has none.
    pub async fn primary_key(&mut self, table: &TableName) -> anyhow::Result<Vec<KeyColumn>> {
        let rows: Vec<(String, bool)> = match self {
            Source::Postgres(client) => client
                .query(
                    "SELECT a.attname::text, t.typname = 'bytea' \
                     FROM pg_index i \
                     JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                     CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) \
                     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
                     JOIN pg_type t ON t.oid = a.atttypid \
                     WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary ORDER BY k.pos",
                    &[&table.schema, &table.name],
                )
                .await
                .with_context(|| format!("reading the primary key of {table}"))?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
            Source::Mysql { conn, .. } => {
                let rows: Vec<(String, String)> = conn
                    .exec(
                        // COLUMNS in a derived table with its own constants:
                        // as the inner side of a join, MariaDB reads it for
                        // every table of every database (10,000 tables: 0.3 s
                        // per call, quadratic over a plan).
                        "SELECT CAST(k.COLUMN_NAME AS CHAR), CAST(c.DATA_TYPE AS CHAR) \
                         FROM information_schema.KEY_COLUMN_USAGE k \
                         JOIN (SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS \
                               WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?) c ON c.COLUMN_NAME = k.COLUMN_NAME \
                         WHERE k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ? AND k.CONSTRAINT_NAME = 'PRIMARY' \
                         ORDER BY k.ORDINAL_POSITION",
                        (&table.schema, &table.name, &table.schema, &table.name),
                    )
                    .await
                    .with_context(|| format!("reading the primary key of {table}"))?;
                rows.into_iter()
                    .map(|(name, ty)| {
                        let bytes = matches!(ty.as_str(), "binary" | "varbinary" | "blob" | "tinyblob" | "mediumblob" | "longblob");
                        (name, bytes)
                    })
                    .collect()
            }
            #[cfg(feature = "oracle")]
            Source::Oracle(o) => return o.primary_key(table).await,
        };
        Ok(rows
            .into_iter()
            .map(|(name, bytes)| KeyColumn {
                name,
                bytes,
                oracle: None,
            })
            .collect())
    }

    /// Foreign keys from `table` to other tables.
    pub async fn foreign_keys(&mut self, table: &TableName) -> anyhow::Result<Vec<ForeignKey>> {
        let rows: Vec<(String, String, String, String, String, i64)> = match self {
            Source::Postgres(client) => client
                .query(
                    "SELECT con.conname::text, a.attname::text, pn.nspname::text, pc.relname::text, pa.attname::text, k.pos \
                     FROM pg_constraint con \
                     JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                     JOIN pg_class pc ON pc.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
                     CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(attnum, fattnum, pos) \
                     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
                     JOIN pg_attribute pa ON pa.attrelid = pc.oid AND pa.attnum = k.fattnum \
                     WHERE con.contype = 'f' AND n.nspname = $1 AND c.relname = $2 \
                     ORDER BY con.conname, k.pos",
                    &[&table.schema, &table.name],
                )
                .await
                .with_context(|| format!("reading the foreign keys of {table}"))?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
                .collect(),
            Source::Mysql { conn, .. } => conn
                .exec(
                    "SELECT CAST(CONSTRAINT_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR), CAST(REFERENCED_TABLE_SCHEMA AS CHAR), \
                     CAST(REFERENCED_TABLE_NAME AS CHAR), CAST(REFERENCED_COLUMN_NAME AS CHAR), CAST(ORDINAL_POSITION AS SIGNED) \
                     FROM information_schema.KEY_COLUMN_USAGE \
                     WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND REFERENCED_TABLE_NAME IS NOT NULL \
                     ORDER BY CONSTRAINT_NAME, ORDINAL_POSITION",
                    (&table.schema, &table.name),
                )
                .await
                .with_context(|| format!("reading the foreign keys of {table}"))?,
            #[cfg(feature = "oracle")]
            Source::Oracle(o) => return o.foreign_keys(table).await,
        };
        let mut fks: Vec<ForeignKey> = Vec::new();
        for (name, column, pschema, ptable, pcolumn, _) in rows {
            match fks.last_mut() {
                Some(fk) if fk.name == name => {
                    fk.columns.push(column);
                    fk.referenced_columns.push(pcolumn);
                }
                _ => fks.push(ForeignKey {
                    name,
                    columns: vec![column],
                    parent: TableName::new(pschema, ptable),
                    referenced_columns: vec![pcolumn],
                }),
            }
        }
        Ok(fks)
    }

    /// Runs a query that returns one integer.
    pub async fn query_count(&mut self, sql: &str) -> anyhow::Result<u64> {
        match self {
            Source::Postgres(client) => {
                let row = client.query_one(sql, &[]).await.map_err(pg_error)?;
                let n: Option<i64> = row.get(0);
                Ok(n.unwrap_or(0) as u64)
            }
            Source::Mysql { conn, .. } => {
                let n: Option<Option<i64>> = conn.query_first(sql).await?;
                Ok(n.flatten().unwrap_or(0) as u64)
            }
            #[cfg(feature = "oracle")]
            Source::Oracle(o) => o.query_count(sql).await,
        }
    }

    /// Runs a query whose columns are all text; NULL stays `None`.
    pub async fn query_text_rows(&mut self, sql: &str) -> anyhow::Result<Vec<KeyRow>> {
        match self {
            Source::Postgres(client) => {
                let rows = client.query(sql, &[]).await.map_err(pg_error)?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| r.get::<_, Option<String>>(i))
                            .collect()
                    })
                    .collect())
            }
            Source::Mysql { conn, .. } => {
                let rows: Vec<mysql_async::Row> = conn.query(sql).await?;
                rows.into_iter()
                    .map(|row| {
                        row.unwrap()
                            .into_iter()
                            .map(|v| match v {
                                mysql_async::Value::NULL => Ok(None),
                                mysql_async::Value::Bytes(b) => String::from_utf8(b)
                                    .map(Some)
                                    .map_err(|_| anyhow::anyhow!("key value is not valid UTF-8")),
                                other => {
                                    Ok(Some(other.as_sql(true).trim_matches('\'').to_string()))
                                }
                            })
                            .collect()
                    })
                    .collect()
            }
            #[cfg(feature = "oracle")]
            Source::Oracle(o) => o.query_text_rows(sql).await,
        }
    }

    /// `SELECT <key as text> ...` for a key, aliased columns `k0, k1, ...`.
    pub fn key_select(&self, key: &[KeyColumn], alias: Option<&str>) -> String {
        key.iter()
            .enumerate()
            .map(|(i, c)| format!("{} AS k{i}", self.key_text(c, alias)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The key's columns for ORDER BY, in an order both the source and a
    /// stable shard bound comparison agree on.
    pub fn order_by(&self, key: &[KeyColumn]) -> String {
        self.column_list(&key.iter().map(|k| k.name.clone()).collect::<Vec<_>>())
    }

    /// Average stored bytes per row, for estimates.
    pub async fn average_row_bytes(&mut self, table: &TableName) -> anyhow::Result<f64> {
        match self {
            Source::Postgres(client) => {
                let row = client
                    .query_one(
                        "SELECT pg_total_relation_size(c.oid)::float8, greatest(c.reltuples, 0)::float8 \
                         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                        &[&table.schema, &table.name],
                    )
                    .await
                    .map_err(pg_error)?;
                let (bytes, rows): (f64, f64) = (row.get(0), row.get(1));
                if rows >= 1.0 {
                    return Ok(bytes / rows);
                }
                let sample = format!(
                    "SELECT avg(pg_column_size(t.*))::float8 FROM (SELECT * FROM {}.{} LIMIT 1000) t",
                    ident::quote_pg(&table.schema),
                    ident::quote_pg(&table.name)
                );
                let row = client.query_one(&sample, &[]).await.map_err(pg_error)?;
                Ok(row.get::<_, Option<f64>>(0).unwrap_or(0.0))
            }
            Source::Mysql { conn, .. } => {
                let avg: Option<Option<i64>> = conn
                    .exec_first(
                        "SELECT CAST(AVG_ROW_LENGTH AS SIGNED) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                        (&table.schema, &table.name),
                    )
                    .await?;
                Ok(avg.flatten().unwrap_or(0) as f64)
            }
            #[cfg(feature = "oracle")]
            Source::Oracle(o) => o.average_row_bytes(table).await,
        }
    }

    /// `CASE WHEN (p) THEN 1 ELSE 0 END`, portable.
    pub fn indicator(&self, predicate: Option<&str>) -> String {
        match predicate {
            None => "1".to_string(),
            Some(p) => format!("(CASE WHEN ({p}) THEN 1 ELSE 0 END)"),
        }
    }

    /// `CASE WHEN (p) IS NULL THEN 1 ELSE 0 END`, portable.
    pub fn null_indicator(&self, predicate: Option<&str>) -> String {
        match predicate {
            None => "0".to_string(),
            Some(p) => format!("(CASE WHEN ({p}) IS NULL THEN 1 ELSE 0 END)"),
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            Source::Postgres(_) => Engine::Postgres,
            Source::Mysql { .. } => Engine::Mysql,
            #[cfg(feature = "oracle")]
            Source::Oracle(_) => Engine::Oracle,
        }
    }

    /// ` LIMIT n`, in the source's dialect.
    pub fn limit(&self, n: u64) -> String {
        match self {
            #[cfg(feature = "oracle")]
            Source::Oracle(_) => format!(" FETCH FIRST {n} ROWS ONLY"),
            _ => format!(" LIMIT {n}"),
        }
    }
}

/// tokio-postgres errors print only "db error"; the server's message and
/// SQLSTATE are what an operator needs.
pub fn pg_error(e: tokio_postgres::Error) -> anyhow::Error {
    match e.as_db_error() {
        Some(db) => anyhow::anyhow!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => anyhow::anyhow!("{}", molt_core::url::redact_text(&e.to_string())),
    }
}
