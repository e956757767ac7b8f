//! Ordered output: many section writers, one stream, sections never interleaved.
//!
//! A parallel dump reads several (table, shard) sections at once, but a
//! stream must carry each section as one contiguous run of lines. So one
//! section at a time owns the output (it is "at the head") and streams
//! straight through; every other section buffers in a [`SpillBuffer`], which
//! keeps the first few MB in memory and spills the rest to an anonymous temp
//! file. When the head section finishes, the finished buffered sections are
//! copied out one after another; a still-running buffered section takes the
//! head as soon as it is free and continues unbuffered.
//!
//! Memory is therefore bounded by `writers × memory limit`, whatever the
//! table sizes; disk holds what the consumer has not taken yet.
//!
//! ```no_run
//! use molt_core::stream::ordered::OrderedOutput;
//! use molt_core::stream::StreamWriter;
//! # fn f(header: &molt_core::stream::Record) -> std::io::Result<()> {
//! let output = OrderedOutput::new(std::io::stdout(), OrderedOutput::DEFAULT_MEMORY_LIMIT);
//! output.prelude(header)?; // the stream header, before any section
//! // In each worker, per section:
//! let mut w = StreamWriter::new(output.section());
//! // ... w.record(table header), w.row()..., w.record(end)
//! w.into_inner()?.finish()?;
//! // After every worker is done:
//! output.finish()?;
//! # Ok(()) }
//! ```
//!
//! Writes to the output block the calling thread (the consumer of stdout
//! sets the pace); async callers should run with enough worker threads or
//! write from blocking tasks.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use super::record::Record;

/// Size of the copy buffer used to replay spilled sections.
const COPY_CHUNK: usize = 256 * 1024;

/// Bytes kept in memory first, spilled to an anonymous temp file after.
pub struct SpillBuffer {
    memory: Vec<u8>,
    limit: usize,
    file: Option<File>,
    len: u64,
}

impl SpillBuffer {
    /// A buffer keeping up to `limit` bytes in memory.
    pub fn new(limit: usize) -> Self {
        SpillBuffer {
            memory: Vec::new(),
            limit,
            file: None,
            len: 0,
        }
    }

    /// Total bytes written.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether part of the content went to disk.
    pub fn spilled(&self) -> bool {
        self.file.is_some()
    }

    /// Reads everything written, from the start.
    pub fn into_reader(mut self) -> io::Result<impl Read> {
        let file = match self.file.take() {
            Some(mut f) => {
                f.flush()?;
                f.seek(SeekFrom::Start(0))?;
                Some(f)
            }
            None => None,
        };
        let memory = io::Cursor::new(std::mem::take(&mut self.memory));
        Ok(memory.chain(OptionalReader(file)))
    }

    /// Copies everything written to `out`.
    fn copy_to(self, out: &mut dyn Write) -> io::Result<()> {
        if self.file.is_none() {
            return out.write_all(&self.memory);
        }
        let mut reader = self.into_reader()?;
        let mut chunk = vec![0u8; COPY_CHUNK];
        loop {
            let n = match reader.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            out.write_all(&chunk[..n])?;
        }
    }
}

impl Write for SpillBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.file.is_none() && self.memory.len() + buf.len() <= self.limit {
            self.memory.extend_from_slice(buf);
        } else {
            let file = match &mut self.file {
                Some(f) => f,
                None => self.file.insert(tempfile::tempfile()?),
            };
            file.write_all(buf)?;
        }
        self.len += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct OptionalReader(Option<File>);

impl Read for OptionalReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.0 {
            Some(f) => f.read(buf),
            None => Ok(0),
        }
    }
}

/// The output and its failure, if any: after one failed write nothing more
/// is written, so a consumer never sees a section after a broken one.
struct Sink {
    out: Box<dyn Write + Send>,
    failed: Option<String>,
}

impl Sink {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(why) = &self.failed {
            return Err(io::Error::other(format!("output already failed: {why}")));
        }
        self.out
            .write_all(bytes)
            .inspect_err(|e| self.failed = Some(e.to_string()))
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Sink::write_all(self, buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Sink::write_all(self, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Who owns the output, and the finished sections waiting for it.
#[derive(Default)]
struct Queue {
    head: bool,
    waiting: VecDeque<SpillBuffer>,
    open: usize,
}

struct Shared {
    sink: Mutex<Sink>,
    queue: Mutex<Queue>,
    memory_limit: usize,
}

impl Shared {
    fn sink(&self) -> MutexGuard<'_, Sink> {
        self.sink.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by the head owner when its own section is complete: writes
    /// out the waiting sections, then frees the head.
    fn release_head(&self) -> io::Result<()> {
        loop {
            let next = {
                let mut q = self.queue();
                match q.waiting.pop_front() {
                    Some(buffer) => buffer,
                    None => {
                        q.head = false;
                        return Ok(());
                    }
                }
            };
            if let Err(e) = next.copy_to(&mut *self.sink()) {
                self.queue().head = false;
                return Err(e);
            }
        }
    }

    fn poison(&self, why: &str) {
        let mut sink = self.sink();
        if sink.failed.is_none() {
            sink.failed = Some(why.to_string());
        }
    }
}

/// A stream output shared by parallel section writers. Cheap to clone.
#[derive(Clone)]
pub struct OrderedOutput {
    shared: Arc<Shared>,
}

impl OrderedOutput {
    /// Memory a buffered section keeps before spilling to disk.
    pub const DEFAULT_MEMORY_LIMIT: usize = 4 * 1024 * 1024;

    /// Wraps `out`; each buffered section keeps up to `memory_limit` bytes
    /// in memory.
    pub fn new(out: impl Write + Send + 'static, memory_limit: usize) -> Self {
        OrderedOutput {
            shared: Arc::new(Shared {
                sink: Mutex::new(Sink {
                    out: Box::new(out),
                    failed: None,
                }),
                queue: Mutex::new(Queue::default()),
                memory_limit,
            }),
        }
    }

    /// Writes a record outside any section (the stream header). Call it
    /// before the first section starts.
    pub fn prelude(&self, record: &Record) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        self.shared.sink().write_all(&line)
    }

    /// Starts a section. Write its lines (table header, rows, end) into the
    /// returned writer, usually through a `StreamWriter`, then call
    /// [`SectionSpill::finish`]. Dropping it unfinished stops the output: a
    /// partial section is never followed by another one.
    pub fn section(&self) -> SectionSpill {
        self.shared.queue().open += 1;
        SectionSpill {
            shared: self.shared.clone(),
            state: State::Buffered(SpillBuffer::new(self.shared.memory_limit)),
        }
    }

    /// Checks that every section finished, writes the stream's close
    /// record (see [`Record::Close`]) and flushes the output.
    pub fn finish(&self) -> io::Result<()> {
        {
            let q = self.shared.queue();
            if q.open > 0 || q.head || !q.waiting.is_empty() {
                return Err(io::Error::other(format!(
                    "{} section(s) still open or waiting at the end of the output",
                    q.open + q.waiting.len()
                )));
            }
        }
        self.prelude(&super::close())?;
        self.shared.sink().flush()
    }
}

enum State {
    /// Owns the head: writes go straight to the output.
    Head,
    /// Someone else owns the head: writes are buffered.
    Buffered(SpillBuffer),
    /// Finished or abandoned.
    Done,
}

/// The writer of one section; see [`OrderedOutput::section`].
pub struct SectionSpill {
    shared: Arc<Shared>,
    state: State,
}

impl SectionSpill {
    /// Takes the head if it is free and nothing is waiting, writing out what
    /// was buffered so far.
    fn try_take_head(&mut self) -> io::Result<()> {
        {
            let mut q = self.shared.queue();
            if q.head || !q.waiting.is_empty() {
                return Ok(());
            }
            q.head = true;
        }
        let State::Buffered(buffer) = std::mem::replace(&mut self.state, State::Head) else {
            unreachable!("only a buffered section takes the head")
        };
        buffer.copy_to(&mut *self.shared.sink())
    }

    /// Whether this section currently streams straight to the output.
    pub fn is_head(&self) -> bool {
        matches!(self.state, State::Head)
    }

    /// Completes the section: it is written out now (if it is at the head or
    /// the head is free) or queued behind the head.
    pub fn finish(mut self) -> io::Result<()> {
        let state = std::mem::replace(&mut self.state, State::Done);
        let shared = self.shared.clone();
        shared.queue().open -= 1;
        match state {
            State::Head => shared.release_head(),
            State::Buffered(buffer) => {
                {
                    let mut q = shared.queue();
                    if q.head {
                        q.waiting.push_back(buffer);
                        return Ok(());
                    }
                    q.head = true;
                }
                let written = buffer.copy_to(&mut *shared.sink());
                match written {
                    Ok(()) => shared.release_head(),
                    Err(e) => {
                        shared.queue().head = false;
                        Err(e)
                    }
                }
            }
            State::Done => Ok(()),
        }
    }
}

impl Write for SectionSpill {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if matches!(self.state, State::Buffered(_)) {
            self.try_take_head()?;
        }
        match &mut self.state {
            State::Head => self.shared.sink().write_all(buf),
            State::Buffered(buffer) => buffer.write_all(buf),
            State::Done => Err(io::Error::other("write to a finished section")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SectionSpill {
    fn drop(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Done);
        if matches!(state, State::Done) {
            return;
        }
        // Abandoned (an error upstream): stop the output so that nothing
        // follows a partial section, and free the head.
        self.shared.poison("a section was abandoned before its end");
        let mut q = self.shared.queue();
        q.open = q.open.saturating_sub(1);
        if matches!(state, State::Head) {
            q.head = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cloneable in-memory output for inspecting what was written.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn sections_never_interleave() {
        let sink = Shared::default();
        let output = OrderedOutput::new(sink.clone(), 16);
        let mut a = output.section();
        let mut b = output.section();
        let mut c = output.section();
        a.write_all(b"a1\n").unwrap();
        assert!(a.is_head());
        b.write_all(b"b1\n").unwrap();
        c.write_all(b"c1\n").unwrap();
        b.write_all(&b"b2-long-enough-to-spill\n".repeat(10))
            .unwrap();
        a.write_all(b"a2\n").unwrap();
        b.finish().unwrap();
        c.write_all(b"c2\n").unwrap();
        a.finish().unwrap();
        // c took nothing yet; the head is free now, so c streams on.
        c.write_all(b"c3\n").unwrap();
        assert!(c.is_head());
        c.finish().unwrap();
        output.finish().unwrap();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let expected = format!(
            "a1\na2\nb1\n{}c1\nc2\nc3\n{{\"type\":\"close\"}}\n",
            "b2-long-enough-to-spill\n".repeat(10)
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn parallel_writers_keep_sections_whole() {
        let sink = Shared::default();
        let output = OrderedOutput::new(sink.clone(), 100);
        std::thread::scope(|s| {
            for t in 0..6 {
                let output = output.clone();
                s.spawn(move || {
                    let mut w = output.section();
                    for i in 0..500 {
                        writeln!(w, "{t} {i}").unwrap();
                    }
                    w.finish().unwrap();
                });
            }
        });
        output.finish().unwrap();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3001);
        assert_eq!(
            lines[3000], r#"{"type":"close"}"#,
            "the close record comes last"
        );
        let lines = &lines[..3000];
        for chunk in lines.chunks(500) {
            let t = chunk[0].split(' ').next().unwrap();
            for (i, line) in chunk.iter().enumerate() {
                assert_eq!(*line, format!("{t} {i}"));
            }
        }
    }

    #[test]
    fn abandoned_section_stops_the_output() {
        let sink = Shared::default();
        let output = OrderedOutput::new(sink.clone(), 16);
        let mut a = output.section();
        a.write_all(b"partial").unwrap();
        drop(a);
        let mut b = output.section();
        assert!(b.write_all(b"b\n").and_then(|_| b.finish()).is_err());
    }

    #[test]
    fn spill_buffer_reads_back_memory_and_file() {
        let mut buf = SpillBuffer::new(4);
        buf.write_all(b"abc").unwrap();
        buf.write_all(b"defgh").unwrap();
        assert!(buf.spilled());
        let mut text = String::new();
        buf.into_reader()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "abcdefgh");
    }
}
