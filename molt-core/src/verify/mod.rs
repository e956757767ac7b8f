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
//! - **Hash first, then narrow**: each key-range chunk is hashed inside
//!   the databases ([`pg`] when both sides speak the PostgreSQL protocol;
//!   [`cross`], a row text MySQL and PostgreSQL print alike, for a MySQL
//!   source); only chunks whose (count, hash) differ are fetched.
//! - **Merge join on the key** ([`merge`]): both sides are read
//!   concurrently, sorted by primary key in an order the client can
//!   reproduce ([`keyorder`]), so memory stays bounded by a few batches and
//!   every difference is reported exactly once. Tables without a primary
//!   key are compared as multisets of rows.
//! - **Schema first** ([`schema`]): columns, type families, nullability and
//!   the primary key are checked before any row is read.

pub mod compare;
pub mod cross;
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

/// Interior chunk boundaries of an integer key running from `min` to `max`:
/// `estimated_rows / chunk_rows` chunks of equal key width (at least one,
/// never more than there are key values). N boundaries make N+1 chunks,
/// the first and last open-ended so that target rows outside the source's
/// span are compared too.
pub fn int_boundaries(min: i128, max: i128, estimated_rows: u64, chunk_rows: u64) -> Vec<i128> {
    let width = max - min + 1;
    if width <= 1 {
        return Vec::new();
    }
    let chunks = (estimated_rows.div_ceil(chunk_rows.max(1)) as i128).clamp(1, width.min(1 << 20));
    let mut bounds: Vec<i128> = Vec::with_capacity(chunks as usize);
    for j in 1..chunks {
        let b = min + width * j / chunks;
        if b > min && bounds.last().map_or(true, |&last| b > last) {
            bounds.push(b);
        }
    }
    bounds
}

#[cfg(test)]
mod tests {
    #[test]
    fn int_boundaries_split_evenly() {
        assert_eq!(super::int_boundaries(1, 100, 100, 25), vec![26, 51, 76]);
        assert_eq!(super::int_boundaries(1, 100, 10, 25), Vec::<i128>::new());
        assert_eq!(super::int_boundaries(5, 5, 1000, 1), Vec::<i128>::new());
        assert_eq!(super::int_boundaries(0, 3, 1000, 1), vec![1, 2, 3]);
        let big = super::int_boundaries(-(1 << 63), (1 << 64) - 1, 4, 1);
        assert_eq!(big.len(), 3);
        assert!(big.windows(2).all(|w| w[0] < w[1]));
    }
}
