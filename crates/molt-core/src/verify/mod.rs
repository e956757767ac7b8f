//! molt-verify's engine: compare a slice of a table on the source with the
//! target, row by row, through the same canonical values the section digest
//! uses.
//!
//! Why it is built this way:
//!
//! - **Values are read by each engine's own reader** (the PostgreSQL COPY
//!   text decoder, the MySQL text-protocol decoders) into stream text, and
//!   compared through [`crate::value::canonical`]: verify cannot disagree
//!   with dump, load or the digest about what "equal" means ([`compare`]).
//! - **Hash first, then narrow**: when both sides speak the PostgreSQL
//!   protocol, each key-range chunk is hashed inside the databases
//!   ([`pg`]); only chunks whose (count, hash) differ are fetched.
//! - **Merge join on the key** ([`merge`]): both sides are read
//!   concurrently, sorted by primary key in an order the client can
//!   reproduce ([`keyorder`]), so memory stays bounded by a few batches and
//!   every difference is reported exactly once. Tables without a primary
//!   key are compared as multisets of rows.
//! - **Schema first** ([`schema`]): columns, type families, nullability and
//!   the primary key are checked before any row is read.

pub mod compare;
pub mod keyorder;
pub mod merge;
pub mod mysql;
pub mod pg;
pub mod schema;

pub use compare::{CompareColumn, Row};
pub use merge::{Finding, Tally};

/// A verification failure that is not a difference: a lost connection, a
/// query error, a value that cannot be read. It never means "equal".
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct VerifyError(pub String);

impl VerifyError {
    pub fn new(message: impl Into<String>) -> Self {
        VerifyError(crate::url::redact_text(&message.into()))
    }
}
