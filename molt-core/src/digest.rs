//! The section digest: an order-independent, duplicate-sensitive checksum.
//!
//! Rows arrive from parallel shards in any order, so the digest must not
//! depend on order; a duplicated row must change it, so XOR (where two
//! copies cancel) is out. Each row is hashed with BLAKE3 over the canonical
//! form of its values, and the first 128 bits of those hashes are added with
//! wrapping arithmetic. Two copies of a row add twice; a missing row is
//! missing from the sum.
//!
//! The per-row hash is also what molt-verify compares, so dump, load and
//! verify all agree by construction.

use crate::value::{canonical, canonical_array, canonical_json_into, LogicalType};

/// What the digest needs to know about a column.
#[derive(Clone, Copy, Debug)]
pub struct DigestColumn {
    pub logical: LogicalType,
    pub padded: bool,
    pub is_array: bool,
}

impl From<&crate::stream::Column> for DigestColumn {
    fn from(c: &crate::stream::Column) -> Self {
        DigestColumn {
            logical: c.logical,
            padded: c.padded,
            is_array: c.array_dims > 0,
        }
    }
}

/// Hashes rows one value at a time. Reuse one per section.
///
/// The row's encoded values are gathered in one reused buffer and hashed
/// with a single BLAKE3 call per row: many small `update` calls cost more
/// than the hashing itself on typical rows.
#[derive(Clone, Default)]
pub struct RowHasher {
    row: Vec<u8>,
    /// Scratch space for canonical JSON.
    json: Vec<u8>,
}

impl RowHasher {
    /// Adds the next value of the current row (`None` is SQL NULL).
    pub fn value(&mut self, column: DigestColumn, value: Option<&str>) {
        match value {
            None => self.row.push(0),
            Some(text) => {
                if column.is_array {
                    let c = canonical_array(column.logical, column.padded, text);
                    self.bytes(c.as_bytes());
                } else if column.logical == LogicalType::Json {
                    // Written straight into the row buffer: no allocation.
                    // Written into the scratch buffer without allocating,
                    // then framed like any other value.
                    let mut json = std::mem::take(&mut self.json);
                    json.clear();
                    if !canonical_json_into(text, &mut json) {
                        json.extend_from_slice(text.as_bytes());
                    }
                    self.bytes(&json);
                    self.json = json;
                } else {
                    let c = canonical(column.logical, column.padded, text);
                    self.bytes(c.as_bytes());
                }
            }
        }
    }

    /// `0x01`, the length as unsigned LEB128, the bytes. A varint rather
    /// than a fixed u64 keeps a typical row inside fewer BLAKE3 blocks.
    fn bytes(&mut self, bytes: &[u8]) {
        self.row.push(1);
        let mut len = bytes.len() as u64;
        while len >= 0x80 {
            self.row.push((len as u8) | 0x80);
            len >>= 7;
        }
        self.row.push(len as u8);
        self.row.extend_from_slice(bytes);
    }

    /// Adds the next value, already in canonical form (a hot path that has
    /// canonicalized it, or knows its type needs no canonicalization).
    pub fn canonical_value(&mut self, canonical: Option<&[u8]>) {
        match canonical {
            None => self.row.push(0),
            Some(bytes) => self.bytes(bytes),
        }
    }

    /// Finishes the row: its 128-bit hash. The hasher is ready for the next row.
    pub fn finish_row(&mut self) -> u128 {
        let hash = blake3::hash(&self.row);
        self.row.clear();
        let mut first = [0u8; 16];
        first.copy_from_slice(&hash.as_bytes()[..16]);
        u128::from_le_bytes(first)
    }
}

/// The running digest of a section: a row count and a wrapping sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SectionDigest {
    pub rows: u64,
    pub sum: u128,
}

impl SectionDigest {
    pub fn add_row(&mut self, row_hash: u128) {
        self.rows += 1;
        self.sum = self.sum.wrapping_add(row_hash);
    }

    /// Combines digests of disjoint parts (shards) into the digest of the whole.
    pub fn merge(&mut self, other: &SectionDigest) {
        self.rows += other.rows;
        self.sum = self.sum.wrapping_add(other.sum);
    }

    /// 32 lower-case hex digits.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.sum)
    }

    /// Parses [`SectionDigest::hex`] output.
    pub fn parse_hex(text: &str) -> Option<u128> {
        (text.len() == 32)
            .then(|| u128::from_str_radix(text, 16).ok())
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INT: DigestColumn = DigestColumn {
        logical: LogicalType::Int,
        padded: false,
        is_array: false,
    };
    const TEXT: DigestColumn = DigestColumn {
        logical: LogicalType::Text,
        padded: false,
        is_array: false,
    };

    fn row(h: &mut RowHasher, id: &str, text: Option<&str>) -> u128 {
        h.value(INT, Some(id));
        h.value(TEXT, text);
        h.finish_row()
    }

    /// The framing is part of the stream format (docs/stream-format.md):
    /// pin it, including a length that needs two varint bytes.
    #[test]
    fn row_encoding_is_the_documented_one() {
        let long = "x".repeat(200);
        let mut h = RowHasher::default();
        let got = row(&mut h, "1", Some(&long));
        let mut expected = vec![1u8, 1, b'1', 1, 0xC8, 0x01];
        expected.extend_from_slice(long.as_bytes());
        let hash = blake3::hash(&expected);
        let mut first = [0u8; 16];
        first.copy_from_slice(&hash.as_bytes()[..16]);
        assert_eq!(got, u128::from_le_bytes(first));
        let null_row = row(&mut h, "7", None);
        let hash = blake3::hash(&[1, 1, b'7', 0]);
        first.copy_from_slice(&hash.as_bytes()[..16]);
        assert_eq!(null_row, u128::from_le_bytes(first));
    }

    #[test]
    fn order_independent_and_duplicate_sensitive() {
        let mut h = RowHasher::default();
        let (a, b) = (row(&mut h, "1", Some("x")), row(&mut h, "2", None));
        let mut d1 = SectionDigest::default();
        d1.add_row(a);
        d1.add_row(b);
        let mut d2 = SectionDigest::default();
        d2.add_row(b);
        d2.add_row(a);
        assert_eq!(d1, d2);
        let mut dup = SectionDigest::default();
        dup.add_row(a);
        dup.add_row(a);
        let mut single = SectionDigest::default();
        single.add_row(a);
        assert_ne!(dup.sum, single.sum);
        assert_ne!(dup.sum, 0, "two copies must not cancel");
    }

    #[test]
    fn null_differs_from_empty_string() {
        let mut h = RowHasher::default();
        assert_ne!(row(&mut h, "1", None), row(&mut h, "1", Some("")));
    }

    #[test]
    fn value_boundaries_matter() {
        let mut h = RowHasher::default();
        h.value(TEXT, Some("ab"));
        h.value(TEXT, Some("c"));
        let x = h.finish_row();
        h.value(TEXT, Some("a"));
        h.value(TEXT, Some("bc"));
        assert_ne!(x, h.finish_row());
    }

    #[test]
    fn hex_round_trip() {
        let d = SectionDigest {
            rows: 1,
            sum: 0xdead_beef,
        };
        assert_eq!(SectionDigest::parse_hex(&d.hex()), Some(0xdead_beef));
    }
}
