//! The transport checksum: proof that a section arrived byte for byte as its
//! writer wrote it, at a fraction of the cost of recomputing its digest.
//!
//! Every section carries the order-independent content digest of its rows
//! ([`crate::digest`]), and a reader could check a section by recomputing
//! it. That means canonicalizing every value and hashing every row on its
//! own (short BLAKE3 inputs, block by block): about 40% of molt-load's CPU.
//! Yet the reader of a molt-dump stream only needs to know that nothing
//! changed on the way. So the writer also hashes the section's lines as
//! they are (header and rows, in bulk, where BLAKE3 runs several chunks at
//! once), binds the end record's row count, digest and counted changes into
//! the same hash, and puts the result in the end record. A reader that
//! finds the same checksum knows the rows, the count and the digest are
//! exactly what the writer produced, so the digest the writer computed over
//! those rows is the digest of what arrived.
//!
//! A section whose header does not announce a checksum (a hand-written or
//! re-written stream) is still checked by recomputing its digest.

use super::record::SectionEnd;

/// The header's `checksum` value announcing this scheme.
pub const LINES_BLAKE3: &str = "blake3-lines";

/// Lines are gathered up to this size before they are hashed, so that
/// BLAKE3 hashes whole chunks in parallel instead of one short line at a
/// time.
const GATHER_BYTES: usize = 64 * 1024;

/// The running checksum of one section's lines.
pub struct LineChecksum {
    hasher: blake3::Hasher,
    pending: Vec<u8>,
}

impl Default for LineChecksum {
    fn default() -> Self {
        LineChecksum {
            hasher: blake3::Hasher::new(),
            pending: Vec::with_capacity(GATHER_BYTES + 4096),
        }
    }
}

impl LineChecksum {
    /// Adds one line, given without its terminator.
    #[inline]
    pub fn line(&mut self, line: &[u8]) {
        self.pending.extend_from_slice(line);
        self.pending.push(b'\n');
        if self.pending.len() >= GATHER_BYTES {
            self.hasher.update(&self.pending);
            self.pending.clear();
        }
    }

    /// Adds complete lines, each ending in `\n`.
    pub fn lines(&mut self, lines: &[u8]) {
        if !self.pending.is_empty() {
            self.hasher.update(&self.pending);
            self.pending.clear();
        }
        self.hasher.update(lines);
    }

    /// The checksum of the lines added and the end record's row count,
    /// digest and changes, as 32 lower-case hex digits. The end record's own
    /// `checksum` field is not part of it.
    pub fn finish(mut self, end: &SectionEnd) -> String {
        self.hasher.update(&self.pending);
        let changes = serde_json::to_string(&end.changes).expect("changes serialize");
        // A byte that never occurs in a line separates the lines from the
        // end record's values.
        self.hasher.update(b"\xffend\n");
        self.hasher.update(end.rows.to_string().as_bytes());
        self.hasher.update(b"\n");
        self.hasher.update(end.digest.as_bytes());
        self.hasher.update(b"\n");
        self.hasher.update(changes.as_bytes());
        let hash = self.hasher.finalize();
        hash.as_bytes()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{Shard, TableName, ValueChange};

    fn end(rows: u64, digest: &str) -> SectionEnd {
        SectionEnd {
            table: TableName::new("public", "t"),
            shard: Shard::default(),
            rows,
            digest: digest.into(),
            changes: Vec::new(),
            checksum: None,
        }
    }

    fn sum(lines: &[&str], end: &SectionEnd) -> String {
        let mut c = LineChecksum::default();
        for l in lines {
            c.line(l.as_bytes());
        }
        c.finish(end)
    }

    #[test]
    fn line_by_line_and_in_bulk_agree() {
        let lines: Vec<String> = (0..5000).map(|i| format!("[\"{i}\",\"x\"]")).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let e = end(5000, &"0".repeat(32));
        let mut bulk = LineChecksum::default();
        bulk.lines(format!("{}\n", lines.join("\n")).as_bytes());
        assert_eq!(sum(&refs, &e), bulk.finish(&e));
    }

    #[test]
    fn every_part_counts() {
        let e = end(2, &"0".repeat(32));
        let base = sum(&["a", "b"], &e);
        assert_eq!(base.len(), 32);
        assert_ne!(base, sum(&["a", "c"], &e), "a changed line");
        assert_ne!(base, sum(&["b", "a"], &e), "reordered lines");
        assert_ne!(base, sum(&["ab"], &e), "joined lines");
        assert_ne!(base, sum(&["a", "b"], &end(3, &"0".repeat(32))), "count");
        assert_ne!(base, sum(&["a", "b"], &end(2, &"1".repeat(32))), "digest");
        let mut changed = end(2, &"0".repeat(32));
        changed.changes.push(ValueChange {
            column: "d".into(),
            policy: "zero-date-to-null".into(),
            count: 1,
        });
        assert_ne!(base, sum(&["a", "b"], &changed), "changes");
    }
}
