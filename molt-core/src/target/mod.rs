//! The target: CockroachDB, with PostgreSQL standing in for it in tests.
//!
//! Everything molt-load (and, later, the phase-lifecycle tool) needs to write
//! into the target lives here, one concept per module:
//!
//! - [`conn`]: connecting, and the session settings every connection gets.
//! - [`flavour`]: the one place where CockroachDB and PostgreSQL SQL differ.
//! - [`ddl`]: schemas, enum types and tables from a stream `table` header.
//! - [`copy_in`]: stream values to COPY FROM STDIN text (the hot path).
//! - [`simple`]: the simple-protocol session every COPY goes through
//!   (CockroachDB refuses COPY over the extended protocol).
//! - [`foreign_keys`]: the foreign keys a target table already has.
//! - [`slice`]: the predicate that delimits one section's rows on the target.
//! - [`ledger`]: the `_molt` schema recording tables and sections.
//! - [`retry`]: which errors are transient, and the backoff between attempts.
//! - [`sequences`]: moving sequences past the migrated rows.
//! - [`finalize`]: the deferred indexes and constraints.
//!
//! Every statement is written so that both engines accept it; where that is
//! impossible the CockroachDB form sits in [`flavour`].

pub mod conn;
pub mod copy_binary;
pub mod copy_in;
pub mod ddl;
pub mod finalize;
pub mod flavour;
pub mod foreign_keys;
pub mod ledger;
pub mod retry;
pub mod sequences;
pub mod simple;
pub mod slice;

pub use conn::{connect, connect_retrying, Target};
pub use flavour::Flavour;

/// An error from the target, with what was being done when it happened.
///
/// The driver error is kept (not as `source`, so that the message is printed
/// once) so that [`retry`] can classify it.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{context}: {detail}")]
    Db {
        context: String,
        detail: String,
        error: tokio_postgres::Error,
    },
    /// An error the server reported on a [`simple::SimpleSession`].
    #[error("{context}: {detail}")]
    Server {
        context: String,
        detail: String,
        error: Box<simple::ServerError>,
    },
    /// The connection failed (reset, closed, timed out) on a
    /// [`simple::SimpleSession`]: whether the last statement committed is
    /// unknown.
    #[error("{context}: {detail}")]
    Lost { context: String, detail: String },
    #[error("{0}")]
    Invalid(String),
}

impl TargetError {
    /// Wraps a driver error with context.
    pub fn db(context: impl Into<String>, error: tokio_postgres::Error) -> TargetError {
        TargetError::Db {
            context: context.into(),
            detail: describe(&error),
            error,
        }
    }

    /// The SQLSTATE, when the server reported one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            TargetError::Db { error, .. } => error.code().map(|c| c.code()),
            TargetError::Server { error, .. } => Some(error.code.as_str()),
            TargetError::Lost { .. } | TargetError::Invalid(_) => None,
        }
    }

    /// The server's error context (`COPY t, line N, column c`), if any.
    pub fn where_(&self) -> Option<&str> {
        match self {
            TargetError::Db { error, .. } => error.as_db_error().and_then(|db| db.where_()),
            TargetError::Server { error, .. } => error.where_.as_deref(),
            TargetError::Lost { .. } | TargetError::Invalid(_) => None,
        }
    }

    /// The same error with its description replaced (to add where it
    /// happened), keeping what retries classify.
    pub fn with_detail(self, new_detail: String) -> TargetError {
        match self {
            TargetError::Db { context, error, .. } => TargetError::Db {
                context,
                detail: new_detail,
                error,
            },
            TargetError::Server { context, error, .. } => TargetError::Server {
                context,
                detail: new_detail,
                error,
            },
            TargetError::Lost { context, .. } => TargetError::Lost {
                context,
                detail: new_detail,
            },
            TargetError::Invalid(_) => TargetError::Invalid(new_detail),
        }
    }

    /// The same error, said to have happened while doing `context`.
    pub fn with_context(self, context: String) -> TargetError {
        match self {
            TargetError::Db { detail, error, .. } => TargetError::Db {
                context,
                detail,
                error,
            },
            TargetError::Server { detail, error, .. } => TargetError::Server {
                context,
                detail,
                error,
            },
            TargetError::Lost { detail, .. } => TargetError::Lost { context, detail },
            TargetError::Invalid(text) => TargetError::Invalid(format!("{context}: {text}")),
        }
    }

    /// The description without the context.
    pub fn detail(&self) -> &str {
        match self {
            TargetError::Db { detail, .. }
            | TargetError::Server { detail, .. }
            | TargetError::Lost { detail, .. } => detail,
            TargetError::Invalid(text) => text,
        }
    }

    /// True when retrying the same work may succeed (see [`retry`]).
    pub fn is_transient(&self) -> bool {
        match self {
            TargetError::Db { error, .. } => retry::is_transient(error),
            TargetError::Server { error, .. } => retry::is_transient_sqlstate(&error.code),
            TargetError::Lost { .. } => true,
            TargetError::Invalid(_) => false,
        }
    }
}

/// A driver error as one line: SQLSTATE, message, detail and hint.
pub fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(&format!("; detail: {detail}"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        if let Some(whr) = db.where_() {
            text.push_str(&format!("; where: {whr}"));
        }
        return crate::url::redact_text(&text);
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    crate::url::redact_text(&text)
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, TargetError>;

/// Extension to add context to driver results.
pub trait DbContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> DbContext<T> for std::result::Result<T, tokio_postgres::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| TargetError::db(context(), e))
    }
}

/// Runs a DDL statement that other molt processes may be running at the
/// same moment (ten pipelines starting together all create the ledger).
/// PostgreSQL's `IF NOT EXISTS` is not safe against a concurrent creator: the
/// loser gets a unique violation on the catalog (23505) or "already exists"
/// (42P07, 42710, 42P06). The object then exists, which is all the statement
/// wanted, so those outcomes are success after one retry. CockroachDB runs
/// schema changes as transactions that may be asked to restart (40001, "DDL
/// can return a retry error" in its transaction-retry-error-reference), and
/// a DDL statement run alone is safe to run again, so those are retried too,
/// with backoff.
pub async fn run_concurrent_ddl(
    client: &tokio_postgres::Client,
    sql: &str,
) -> std::result::Result<(), tokio_postgres::Error> {
    const ALREADY_EXISTS: [&str; 3] = ["42P07", "42710", "42P06"];
    const ATTEMPTS: u32 = 6;
    for attempt in 0..ATTEMPTS {
        match client.batch_execute(sql).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                let code = e.code().map(|c| c.code().to_string());
                match code.as_deref() {
                    Some(c) if ALREADY_EXISTS.contains(&c) => return Ok(()),
                    Some("23505") if attempt < 2 => {
                        tokio::time::sleep(std::time::Duration::from_millis(
                            50 * (u64::from(attempt) + 1),
                        ))
                        .await;
                    }
                    Some(state @ ("40001" | "40003")) if attempt + 1 < ATTEMPTS => {
                        crate::metrics::retry(Some(state));
                        tokio::time::sleep(retry::backoff(attempt + 1)).await;
                    }
                    _ => return Err(e),
                }
            }
        }
    }
    client.batch_execute(sql).await
}

/// Deletes the rows `predicate` selects from `table` the way `flavour`
/// wants it (in chunks of [`flavour::COCKROACH_DELETE_CHUNK`] on
/// CockroachDB, where one DELETE of millions of rows is one huge
/// transaction), each statement retried on a transient error up to
/// `max_retries` times on the same connection. Returns the rows deleted.
pub async fn delete_in_chunks(
    client: &tokio_postgres::Client,
    flavour: Flavour,
    table: &crate::stream::TableName,
    predicate: &slice::SlicePredicate,
    max_retries: u32,
) -> Result<u64> {
    let sql = flavour.delete_sql(
        &crate::ident::quote_pg_table(table),
        predicate.sql.as_deref(),
    );
    let mut total = 0;
    loop {
        let mut attempt = 0;
        let n = loop {
            match client.execute(&sql, &predicate.param_refs()).await {
                Ok(n) => break n,
                Err(e) if retry::is_transient(&e) && attempt < max_retries && !e.is_closed() => {
                    attempt += 1;
                    crate::metrics::retry(e.code().map(|c| c.code()));
                    tokio::time::sleep(retry::backoff(attempt)).await;
                }
                Err(e) => return Err(TargetError::db(format!("deleting rows of {table}"), e)),
            }
        };
        total += n;
        if flavour.delete_chunk().map_or(true, |chunk| n < chunk) {
            return Ok(total);
        }
    }
}
