//! PostgreSQL as a source: catalog introspection, type mapping to the
//! target, the exported snapshot, and COPY text decoding into stream values.
