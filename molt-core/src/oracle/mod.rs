//! Oracle Database as a source.
//!
//! Split by what needs the Oracle client library:
//!
//! - **Always built** (no Oracle client, tested by the default `cargo
//!   test`): the type mapping ([`types`]), the catalog queries and the
//!   function that turns their rows into a stream header ([`catalog`]),
//!   every statement the tools send in Oracle's dialect ([`sql`], [`hash`]),
//!   identifier rules ([`ident`]), value formatting from plain parts
//!   ([`value`]), and a tolerant DDL reader ([`ddl`]) that maps a schema
//!   script without a server.
//! - **Cargo feature `oracle`**: the connection ([`conn`]) and the
//!   conversion of the `oracle` crate's values ([`convert`]). The crate
//!   loads Oracle Instant Client at run time, so the feature builds (and its
//!   tests run) on machines without it, as long as nothing connects.
//!
//! Oracle semantics every tool must know, documented in `docs/oracle.md`:
//! `''` is NULL ([`value::empty_string_is_null`], [`value::fold_empty`]);
//! DATE has a time of day; years have no year 0; TIMESTAMP holds
//! nanoseconds; unquoted names are upper case ([`ident::target_name`]).
//!
//! None of this has run against a real Oracle database yet.

pub mod catalog;
pub mod ddl;
pub mod hash;
pub mod ident;
pub mod params;
pub mod sql;
pub mod types;
pub mod value;

#[cfg(feature = "oracle")]
pub mod conn;
#[cfg(feature = "oracle")]
pub mod convert;

/// The `oracle` driver crate (cargo feature `oracle`), re-exported so that
/// the tools name its types (`Connection`, `ToSql`) without depending on
/// it themselves, and always in the version molt-core was built with.
#[cfg(feature = "oracle")]
pub use ::oracle as driver;

/// The one-line error of a tool built without the cargo feature `oracle`
/// and handed an `oracle://` URL.
pub fn built_without_oracle(tool: &str) -> String {
    format!(
        "this {tool} was built without Oracle support: rebuild with `cargo build --features oracle`"
    )
}

pub use catalog::{build_table, BuildOptions, OracleTable};
pub use ident::{quote_oracle, quote_oracle_table, target_name};
pub use types::{map_column, MapError, MapOptions, Mapped, OracleColumn, ReadKind};
pub use value::{empty_string_is_null, fold_empty, ConvertOptions};
