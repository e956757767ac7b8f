//! MySQL and MariaDB as a source: information_schema introspection, the type
//! mapping to the target (`types.rs`), charsets, the consistent snapshot, and
//! value decoding into stream values.
//!
//! Everything here works on MySQL 5.7 to 8.4 and MariaDB 10.x alike: the
//! catalog queries use only what all of them have, and the few differences
//! (CHECK_CONSTRAINTS, the binlog status statement, GTID variables) are
//! probed, never assumed.

pub mod apply;
pub mod catalog;
pub mod charset;
pub mod decode;
pub mod dump;
mod hidden_chars;
pub mod snapshot;
pub mod typemap;
pub mod types;

use mysql_async::prelude::Queryable;

pub use catalog::{ColumnPlan, TablePlan};
pub use dump::{dump_section, SectionStats};
/// Connection options, re-exported so tools need not depend on the driver.
pub use mysql_async::Opts;

/// What to do with MySQL's zero and invalid dates (`0000-00-00`,
/// `2020-00-10`), which no target type can hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ZeroDates {
    /// Write NULL into a nullable target column, counting each change in
    /// the section's `end` record; a NOT NULL column is an error.
    #[default]
    Null,
    /// Any zero date is an error naming table, column and key.
    Error,
}

impl std::str::FromStr for ZeroDates {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "null" => Ok(ZeroDates::Null),
            "error" => Ok(ZeroDates::Error),
            other => Err(format!(
                "unknown zero-date policy {other:?} (expected null or error)"
            )),
        }
    }
}

/// How a MySQL dump is shaped.
#[derive(Clone, Debug)]
pub struct DumpOptions {
    pub zero_dates: ZeroDates,
    /// Keep table and column names as they are instead of lower-casing them.
    pub keep_case: bool,
    /// The target schema every table of the source database lands in.
    pub target_schema: String,
    pub type_map: typemap::TypeMap,
}

impl Default for DumpOptions {
    fn default() -> Self {
        DumpOptions {
            zero_dates: ZeroDates::Null,
            keep_case: false,
            target_schema: "public".into(),
            type_map: typemap::TypeMap::default(),
        }
    }
}

impl DumpOptions {
    /// A source identifier as it is named on the target.
    pub fn fold(&self, name: &str) -> String {
        if self.keep_case {
            name.to_string()
        } else {
            name.to_lowercase()
        }
    }
}

/// Errors of the MySQL source.
#[derive(Debug, thiserror::Error)]
pub enum MysqlError {
    #[error("{context}: {source}")]
    Db {
        context: String,
        source: mysql_async::Error,
    },
    /// Bad data or an unsupported schema: the message names table, column
    /// and key.
    #[error("{0}")]
    Data(String),
    #[error("writing the stream: {0}")]
    Io(#[from] std::io::Error),
}

/// Adds context to driver errors.
pub(crate) trait DbContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, MysqlError>;
}

impl<T> DbContext<T> for Result<T, mysql_async::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, MysqlError> {
        self.map_err(|source| MysqlError::Db {
            context: context(),
            source,
        })
    }
}

/// Connection options from a URL, with the URL's password kept out of
/// every message.
pub fn opts(url: &crate::ConnUrl) -> Result<mysql_async::Opts, MysqlError> {
    // TLS parameters (sslmode, sslrootcert, ...) as for every engine.
    let opts = crate::connect::mysql_opts(url)
        .map_err(|e| MysqlError::Data(format!("bad MySQL URL: {e}")))?;
    // Large rows (a 16 MB BLOB) must not be refused by the client side.
    Ok(mysql_async::OptsBuilder::from_opts(opts)
        .max_allowed_packet(Some(1 << 30))
        .into())
}

/// The source database named in the URL.
pub fn database(opts: &mysql_async::Opts) -> Result<String, MysqlError> {
    opts.db_name().map(str::to_string).ok_or_else(|| {
        MysqlError::Data("the MySQL URL names no database (mysql://user@host/DATABASE)".into())
    })
}

/// Sets up a connection for dumping: raw stored bytes (no charset
/// conversion), UTC for TIMESTAMP, and a write timeout long enough for a
/// slow consumer at the other end of a pipe.
pub async fn prepare_session(conn: &mut mysql_async::Conn) -> Result<(), MysqlError> {
    conn.query_drop(
        "SET SESSION character_set_results = NULL, SESSION time_zone = '+00:00', \
         SESSION net_write_timeout = 86400, SESSION net_read_timeout = 86400, \
         SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'",
    )
    .await
    .ctx(|| "setting up the MySQL session".into())?;
    // MySQL 8 caches information_schema.TABLES statistics (AUTO_INCREMENT
    // among them) for a day by default; other servers have no such variable.
    let _ = conn
        .query_drop("SET SESSION information_schema_stats_expiry = 0")
        .await;
    Ok(())
}

/// Connects and prepares a session.
pub async fn connect(opts: &mysql_async::Opts) -> Result<mysql_async::Conn, MysqlError> {
    let mut conn = mysql_async::Conn::new(opts.clone()).await.ctx(|| {
        format!(
            "connecting to MySQL at {}:{}",
            opts.ip_or_hostname(),
            opts.tcp_port()
        )
    })?;
    prepare_session(&mut conn).await?;
    Ok(conn)
}
