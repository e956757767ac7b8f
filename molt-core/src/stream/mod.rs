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

/// The record a tool writes last, once every section is written (see
/// [`Record::Close`]).
pub fn close() -> Record {
    Record::Close
}

/// Why a stream that ended without one table section is not a success, or
/// `None` when it had one. `records` counts every record read, `sections`
/// the table headers. A pipeline whose producer died before writing
/// anything hands the consumer an empty stdin; without `set -o pipefail`
/// the consumer's exit status is the pipeline's, so reporting success over
/// nothing done would hide the failure (pgloader#1255 is that bug).
pub fn nothing_read(records: u64, sections: u64) -> Option<&'static str> {
    if records == 0 {
        Some("no molt stream on stdin: the input is empty (did the command before this one fail? run pipelines under `set -o pipefail`; --allow-empty accepts an empty stream)")
    } else if sections == 0 {
        Some("the molt stream on stdin holds no table sections, so there is nothing to load (--allow-empty accepts such a stream)")
    } else {
        None
    }
}
