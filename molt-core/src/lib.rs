//! molt-core: what the molt tools share.
//!
//! The tools (`molt-slice`, `molt-dump`, `molt-load`, `molt-verify`,
//! `molt-cutover`) are thin binaries; everything two of them need lives
//! here, so that they agree by construction:
//!
//! - [`stream`]: the NDJSON records between the tools, with a bounded-memory
//!   reader and an allocation-light writer, and CSV for single tables.
//! - [`value`]: logical value types and the canonical form of each value,
//!   which both the section [`digest`] and molt-verify use.
//! - [`digest`]: the order-independent section digest.
//! - [`url`]: connection URLs that never print their password.
//! - [`connect`]: opening connections, with TLS, alike in every tool.
//! - [`ident`]: identifier quoting, the one place SQL names are made safe.
//! - [`select`]: choosing tables by glob, and the exclusions every tool applies alike.
//! - [`exit`]: the documented exit codes and the shared `main`.
//! - [`diag`]: diagnostics on stderr, as text or JSON lines.
//! - one module per source engine ([`postgres`], [`mysql`], [`oracle`])
//!   with its introspection, type mapping and SQL.
//! - [`target`]: the target (CockroachDB, PostgreSQL in tests): connecting,
//!   DDL, COPY, the loader's ledger, retries.
//! - [`ledger`]: the phase ledger molt-cutover keeps in the target.
//! - [`verify`]: molt-verify's comparison engine.
//! - [`metrics`]: Prometheus metrics behind `--metrics-addr` (molt-dump,
//!   molt-load, molt-verify); nothing at all without the flag.

pub mod connect;
pub mod diag;
pub mod digest;
pub mod exit;
pub mod ident;
pub mod ledger;
pub mod metrics;
pub mod mysql;
// Pure parts (type mapping, SQL) always; connection and value reading
// with the cargo feature `oracle`.
pub mod oracle;
pub mod postgres;
pub mod select;
pub mod stream;
pub mod target;
pub mod url;
pub mod value;
pub mod verify;

pub use url::{ConnUrl, Engine};
