//! The stream format: the versioned NDJSON contract between the tools.
//!
//! See `docs/stream-format.md` for the contract itself. A stream is read
//! with [`StreamReader`] and written with [`StreamWriter`]; both hold one
//! line at a time, whatever the size of the stream.

pub mod checksum;
pub mod csv;
pub mod ordered;
mod reader;
mod record;
mod writer;

pub use reader::{
    Field, Item, ReaderOptions, RowBuf, StreamError, StreamReader, DEFAULT_MAX_LINE_BYTES,
};
pub use record::*;
pub use writer::{
    needs_escape, push_escape, push_json_escaped, push_json_string, skip_plain, RowBuilder,
    StreamWriter,
};

/// The stream header a tool writes first.
pub fn header(producer: &str, source: Option<SourceInfo>) -> Record {
    Record::Stream(StreamHeader {
        version: FORMAT_VERSION.to_string(),
        producer: format!("{producer} {}", env!("CARGO_PKG_VERSION")),
        source,
    })
}
