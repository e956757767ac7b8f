//! PostgreSQL as a source: catalog introspection, type mapping to the
//! target, the exported snapshot, and COPY text decoding into stream values.
//!
//! - [`snapshot`]: connecting, the session settings, one exported snapshot
//!   shared by the coordinator and every worker connection.
//! - [`catalog`]: a table's columns, keys, indexes and constraints from
//!   `pg_catalog`, as a stream table header plus how to read each column.
//! - [`types`]: PostgreSQL types to logical and target types.
//! - [`query`]: the `COPY (SELECT ...)` of one section (filter, shard bounds).
//! - [`copy_text`]: COPY text output to stream rows (the hot path).
//! - [`array`]: array literals to JSON arrays.

pub mod array;
pub mod catalog;
pub mod copy_text;
pub mod query;
pub mod snapshot;
pub mod types;

/// Session settings applied on every source connection before reading, so
/// that COPY's text output is already close to the stream forms: ISO dates
/// with the year first, ISO 8601 intervals, UTC timestamps, shortest exact
/// floats and hex bytea.
pub const SESSION_SETTINGS: &str = "SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601'; \
SET TimeZone = 'UTC'; SET extra_float_digits = 1; SET bytea_output = 'hex'";

/// A database error, on one line: the server's message, its SQLSTATE and,
/// when there is one, its detail and hint. Other driver errors as they are.
pub fn error_text(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str("; detail: ");
                text.push_str(detail);
            }
            if let Some(hint) = db.hint() {
                text.push_str("; hint: ");
                text.push_str(hint);
            }
            text.replace('\n', " ")
        }
        None => {
            let mut text = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !text.contains(&cause_text) {
                    text.push_str(": ");
                    text.push_str(&cause_text);
                }
                source = cause.source();
            }
            text.replace('\n', " ")
        }
    }
}

/// An error from the source, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {message}")]
pub struct SourceError {
    pub context: String,
    pub message: String,
}

impl SourceError {
    pub fn new(context: impl Into<String>, message: impl Into<String>) -> Self {
        SourceError {
            context: context.into(),
            message: message.into(),
        }
    }

    /// Wraps a driver error.
    pub fn db(context: impl Into<String>, err: &tokio_postgres::Error) -> Self {
        SourceError::new(context, error_text(err))
    }
}

/// Result of the source functions.
pub type Result<T, E = SourceError> = std::result::Result<T, E>;

/// Adds context to driver errors.
pub(crate) trait DbContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> DbContext<T> for std::result::Result<T, tokio_postgres::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| SourceError::db(context(), &e))
    }
}
