//! A section's COPY text kept in a temporary file instead of being sent.
//!
//! Two things make molt-load hold a section back while the reader goes on:
//! a section the ledger has as loaded (it is skipped if its digest did not
//! change, which is only known at its `end` record), and a section whose
//! parent tables, by the target's foreign keys, are not loaded yet. The
//! stream cannot be paused and rows cannot stay in memory, so the COPY
//! text goes to an anonymous temporary file, chunk by chunk, with each
//! chunk's row count and batch boundary, and is replayed from there.

use std::io::{BufWriter, Read, Seek, Write};

use bytes::Bytes;

pub struct Spill {
    file: BufWriter<std::fs::File>,
    chunks: Vec<(usize, u64, bool)>,
}

impl Spill {
    pub fn new() -> std::io::Result<Spill> {
        Ok(Spill {
            file: BufWriter::with_capacity(256 * 1024, tempfile::tempfile()?),
            chunks: Vec::new(),
        })
    }

    pub fn write(&mut self, data: &[u8], rows: u64, end_of_batch: bool) -> std::io::Result<()> {
        self.file.write_all(data)?;
        self.chunks.push((data.len(), rows, end_of_batch));
        Ok(())
    }

    /// The chunks in order, each as (COPY text, rows, end of batch).
    pub fn replay(self) -> std::io::Result<Replay> {
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        Ok(Replay {
            file,
            chunks: self.chunks.into_iter(),
        })
    }
}

/// Reads a spill back, one chunk at a time.
pub struct Replay {
    file: std::fs::File,
    chunks: std::vec::IntoIter<(usize, u64, bool)>,
}

impl Replay {
    pub fn next_chunk(&mut self) -> std::io::Result<Option<(Bytes, u64, bool)>> {
        let Some((len, rows, end_of_batch)) = self.chunks.next() else {
            return Ok(None);
        };
        let mut data = vec![0; len];
        self.file.read_exact(&mut data)?;
        Ok(Some((Bytes::from(data), rows, end_of_batch)))
    }
}
