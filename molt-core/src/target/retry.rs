//! Transient errors and backoff.
//!
//! A distributed database aborts transactions under contention (40001) and
//! drops connections during rolling restarts (57P01, 08xxx); both are
//! expected in a long load and are retried. Anything else (a type error, a
//! duplicate key) would fail the same way again and is reported at once.

use std::time::Duration;

/// True for errors worth retrying: serialization failures, statement
/// completion unknown, connection failures, server shutdown/restart, and a
/// connection the driver found closed.
pub fn is_transient(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        Some(code) => is_transient_sqlstate(code.code()),
        // No SQLSTATE: an I/O error talking to the server (reset, EOF).
        None => error.as_db_error().is_none() && is_io(error),
    }
}

fn is_io(error: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return true;
        }
        source = cause.source();
    }
    let text = error.to_string();
    text.contains("error communicating with the server") || text.contains("connection closed")
}

/// The transient SQLSTATEs.
pub fn is_transient_sqlstate(code: &str) -> bool {
    matches!(
        code,
        "40001" | "40003" | "40P01" | "57P01" | "57P02" | "57P03"
    ) || code.starts_with("08")
}

/// The wait before attempt `attempt` (1 = first retry): 100 ms doubling,
/// capped at 10 s.
pub fn backoff(attempt: u32) -> Duration {
    let ms = 100u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(7));
    Duration::from_millis(ms.min(10_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_sqlstates() {
        for code in ["40001", "40003", "08006", "08003", "57P01", "57P03"] {
            assert!(is_transient_sqlstate(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02", "40P01x"] {
            assert!(!is_transient_sqlstate(code), "{code}");
        }
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(400));
        assert_eq!(backoff(30), Duration::from_millis(10_000));
    }
}
