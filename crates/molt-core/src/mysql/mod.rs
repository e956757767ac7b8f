//! MySQL and MariaDB as a source: information_schema introspection, the type
//! mapping to the target (`types.rs`), charsets, the consistent snapshot, and
//! value decoding into stream values.
