//! The reader thread: stream in, COPY text chunks out.
//!
//! Parsing is synchronous (`StreamReader` over stdin), so it runs on its own
//! thread. It checks the stream (the reader recomputes every section's
//! count and digest), encodes rows into COPY text in ~256 KB chunks cut at
//! row boundaries, marks where each batch ends, and hands a whole section to
//! one idle worker through that worker's bounded channel. Memory stays
//! bounded: a few chunks per worker in flight, whatever the stream's size.

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use molt_core::stream::checksum::LINES_BLAKE3;
use molt_core::stream::Field;
use molt_core::stream::{
    Item, ReaderOptions, Record, SectionEnd, StreamReader, TableHeader, TableName,
};
use molt_core::target::copy_binary::{self, BinaryEncoder, BinaryType};
use molt_core::target::copy_in::{BytesText, EncodeError, RowEncoder};
use tokio::sync::{mpsc, oneshot};

use crate::order::Order;
use crate::CopyFormat;

/// A chunk is sent once it holds this much COPY text.
const CHUNK_BYTES: usize = 256 * 1024;

/// What the reader tells the worker that owns the current section.
#[derive(Debug)]
pub enum Msg {
    Start {
        header: Box<TableHeader>,
        /// When the reader would send this section in binary: where the
        /// worker answers, once the table is ready, with the binary type of
        /// each column, or `None` for text.
        binary: Option<oneshot::Sender<Option<Vec<BinaryType>>>>,
    },
    /// COPY text of whole rows; `end_of_batch` closes the current batch.
    Rows {
        data: bytes::Bytes,
        rows: u64,
        end_of_batch: bool,
    },
    /// The end record; the reader has checked count and digest.
    End { end: SectionEnd },
    /// The stream is unusable inside this section.
    Torn { error: String },
}

/// Where sections go: idle workers, and the load order's bookkeeping.
pub struct Sections {
    pub order: Arc<Order>,
    /// `--schema`, which moves every table.
    pub schema: Option<String>,
    /// Ids of idle workers.
    pub idle: std_mpsc::Receiver<usize>,
}

impl Sections {
    fn target(&self, table: &TableName) -> TableName {
        match &self.schema {
            Some(s) => TableName::new(s, table.name.clone()),
            None => table.clone(),
        }
    }
}

/// Batching limits, and the COPY format asked for.
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    pub rows: u64,
    pub bytes: u64,
    pub format: CopyFormat,
    /// How text COPY writes bytes values for this target.
    pub bytes_text: BytesText,
}

/// `--copy-format auto` sends sections of at least this many estimated
/// rows in binary: below it, the round trip to ask the target for its
/// column types costs more than binary saves.
const AUTO_BINARY_MIN_ROWS: u64 = 100_000;

/// A section's rows as COPY text or COPY BINARY tuples.
enum Encoder {
    Text(RowEncoder),
    Binary(BinaryEncoder),
}

impl Encoder {
    fn encode_row<'a>(
        &mut self,
        fields: impl IntoIterator<Item = Field<'a>>,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        match self {
            Encoder::Text(e) => e.encode_row(fields, out),
            Encoder::Binary(e) => e.encode_row(fields, out),
        }
    }

    /// Starts a batch (one COPY).
    fn begin_batch(&self, out: &mut Vec<u8>) {
        if let Encoder::Binary(_) = self {
            out.extend_from_slice(copy_binary::SIGNATURE);
        }
    }

    /// Ends a batch.
    fn end_batch(&self, out: &mut Vec<u8>) {
        if let Encoder::Binary(_) = self {
            out.extend_from_slice(copy_binary::TRAILER);
        }
    }
}

/// Whether to ask the worker for binary COPY: only for sections written
/// by molt (a transport checksum means every value is in exactly the
/// stream's documented form), whose columns all may have a binary form.
fn wants_binary(header: &TableHeader, format: CopyFormat) -> bool {
    let big_enough = match format {
        CopyFormat::Text => return false,
        CopyFormat::Binary => true,
        CopyFormat::Auto => header.estimated_rows.unwrap_or(0) >= AUTO_BINARY_MIN_ROWS,
    };
    big_enough
        && header.checksum.as_deref() == Some(LINES_BLAKE3)
        && copy_binary::may_use_binary(header)
}

/// How reading ended.
#[derive(Debug, Default)]
pub struct ReadOutcome {
    /// A stream error (with its line), if reading stopped on one.
    pub error: Option<String>,
    /// Records of any kind read (an empty input has none).
    pub records: u64,
    pub sections: u64,
    pub bytes: u64,
}

/// Reads the whole stream, dispatching sections to idle workers.
pub fn read_stream(
    input: impl BufRead,
    options: ReaderOptions,
    workers: Vec<mpsc::Sender<Msg>>,
    sections: Sections,
    batching: Batching,
    stop: Arc<AtomicBool>,
    quiet: bool,
) -> ReadOutcome {
    let mut reader = StreamReader::with_options(input, options);
    let mut outcome = ReadOutcome::default();
    // The open section: its worker, encoder and pending chunk.
    let mut open: Option<(usize, Encoder, Vec<u8>, u64, u64, u64)> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let item = match reader.next() {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(e) => {
                let message = format!("stream error at {e}");
                if let Some((w, ..)) = &open {
                    let _ = workers[*w].blocking_send(Msg::Torn {
                        error: message.clone(),
                    });
                }
                outcome.error = Some(message);
                break;
            }
        };
        let mut bad_row = None;
        if matches!(item, Item::Record(_)) {
            outcome.records += 1;
        }
        match item {
            Item::Row(row) => {
                let Some((w, encoder, buf, chunk_rows, batch_rows, batch_bytes)) = open.as_mut()
                else {
                    continue; // the reader refuses rows outside sections
                };
                if *batch_rows == 0 {
                    encoder.begin_batch(buf);
                }
                let before = buf.len();
                if let Err(e) = encoder.encode_row(row.iter(), buf) {
                    bad_row = Some((*w, e));
                } else {
                    *chunk_rows += 1;
                    *batch_rows += 1;
                    *batch_bytes += (buf.len() - before) as u64;
                    let end_of_batch =
                        *batch_rows >= batching.rows || *batch_bytes >= batching.bytes;
                    if end_of_batch {
                        encoder.end_batch(buf);
                    }
                    if end_of_batch || buf.len() >= CHUNK_BYTES {
                        let data = bytes::Bytes::from(std::mem::replace(
                            buf,
                            Vec::with_capacity(CHUNK_BYTES + 4096),
                        ));
                        let msg = Msg::Rows {
                            data,
                            rows: *chunk_rows,
                            end_of_batch,
                        };
                        *chunk_rows = 0;
                        if end_of_batch {
                            *batch_rows = 0;
                            *batch_bytes = 0;
                        }
                        if workers[*w].blocking_send(msg).is_err() {
                            break;
                        }
                    }
                }
            }
            Item::Record(Record::Table(header)) => {
                let target = sections.target(header.target_name());
                sections.order.started(&target, &header);
                let Ok(w) = sections.idle.recv() else { break };
                let (reply, answer) = if wants_binary(&header, batching.format) {
                    let (tx, rx) = oneshot::channel();
                    (Some(tx), Some(rx))
                } else {
                    (None, None)
                };
                let text = RowEncoder::with_bytes(&header, batching.bytes_text);
                let binary_header = answer.is_some().then(|| header.clone());
                if workers[w]
                    .blocking_send(Msg::Start {
                        header,
                        binary: reply,
                    })
                    .is_err()
                {
                    break;
                }
                // The worker answers once the table is ready (or drops the
                // sender when it fails, and text is as good as anything).
                let encoder = match (answer.map(|rx| rx.blocking_recv()), binary_header) {
                    (Some(Ok(Some(types))), Some(h)) => {
                        Encoder::Binary(BinaryEncoder::new(&h, &types))
                    }
                    _ => Encoder::Text(text),
                };
                outcome.sections += 1;
                open = Some((w, encoder, Vec::with_capacity(CHUNK_BYTES + 4096), 0, 0, 0));
            }
            Item::Record(Record::End(end)) => {
                let Some((w, encoder, mut buf, chunk_rows, batch_rows, _)) = open.take() else {
                    continue;
                };
                if batch_rows > 0 {
                    encoder.end_batch(&mut buf);
                }
                if !buf.is_empty() {
                    let msg = Msg::Rows {
                        data: bytes::Bytes::from(buf),
                        rows: chunk_rows,
                        end_of_batch: true,
                    };
                    if workers[w].blocking_send(msg).is_err() {
                        break;
                    }
                }
                if workers[w].blocking_send(Msg::End { end }).is_err() {
                    break;
                }
            }
            Item::Record(Record::Notice(n)) => {
                if !quiet {
                    molt_core::info!("notice from the stream ({}): {}", n.level, n.message);
                }
            }
            Item::Record(Record::Slice(slice)) => {
                sections.order.announce(sections.target(&slice.table));
            }
            Item::Record(_) => {}
        }
        if let Some((w, e)) = bad_row {
            let message = format!("stream error at line {}: {e}", reader.line_number());
            let _ = workers[w].blocking_send(Msg::Torn {
                error: message.clone(),
            });
            outcome.error = Some(message);
            break;
        }
    }
    outcome.bytes = reader.bytes_read();
    outcome
}
