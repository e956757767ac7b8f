//! Comparing two row streams: a merge join on the primary key, or a
//! multiset count for tables without one.
//!
//! Each side's rows arrive in batches over a channel from a task that
//! reads that side, so both databases are read at the same time and the
//! comparison never holds more than a few batches (the multiset, which
//! has no order to exploit, holds one entry per distinct row instead).

use std::cmp::Ordering;
use std::collections::HashMap;

use tokio::sync::mpsc;

use super::compare::{differing_columns, row_hash, CompareColumn, Row};
use super::keyorder::{cmp_keys, KeyOrder};
use super::VerifyError;
use crate::digest::RowHasher;

/// Batches of rows from one side; an `Err` ends the stream with a failure.
pub type RowRx = mpsc::Receiver<Result<Vec<Row>, VerifyError>>;
/// The sending half, for the readers.
pub type RowTx = mpsc::Sender<Result<Vec<Row>, VerifyError>>;

/// Batches in flight per side.
pub const CHANNEL_BATCHES: usize = 8;

/// One differing row.
#[derive(Clone, Debug)]
pub enum Finding {
    /// On the source, not on the target.
    Missing(Row),
    /// On the target, not on the source.
    Extraneous(Row),
    /// Same key, different values in `columns` (indexes).
    Mismatch {
        source: Row,
        target: Row,
        columns: Vec<usize>,
    },
}

/// Counts of one comparison.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub source_rows: u64,
    pub target_rows: u64,
    pub matched: u64,
    pub missing: u64,
    pub extraneous: u64,
    pub mismatched: u64,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.source_rows += other.source_rows;
        self.target_rows += other.target_rows;
        self.matched += other.matched;
        self.missing += other.missing;
        self.extraneous += other.extraneous;
        self.mismatched += other.mismatched;
    }

    /// Rows that differ in any way.
    pub fn differences(&self) -> u64 {
        self.missing + self.extraneous + self.mismatched
    }
}

fn stopped(side: &str) -> VerifyError {
    VerifyError::new(format!(
        "the reader of the {side} stopped before the end of its rows"
    ))
}

/// Reads rows one at a time from a side's channel and checks that their
/// keys ascend, which the merge join depends on.
struct Cursor<'a> {
    rx: &'a mut RowRx,
    batch: std::vec::IntoIter<Row>,
    side: &'static str,
    key: &'a [usize],
    orders: &'a [KeyOrder],
    columns: &'a [CompareColumn],
    from_source: bool,
    last: Option<Vec<Option<String>>>,
    finished: bool,
}

impl Cursor<'_> {
    async fn next(&mut self) -> Result<Option<Row>, VerifyError> {
        loop {
            if let Some(row) = self.batch.next() {
                self.check_order(&row)?;
                return Ok(Some(row));
            }
            if self.finished {
                return Ok(None);
            }
            match self.rx.recv().await {
                Some(Ok(batch)) if batch.is_empty() => self.finished = true,
                Some(Ok(batch)) => self.batch = batch.into_iter(),
                Some(Err(e)) => return Err(e),
                None => return Err(stopped(self.side)),
            }
        }
    }

    fn check_order(&mut self, row: &Row) -> Result<(), VerifyError> {
        let key = key_of(self.columns, self.key, row, self.from_source);
        if let Some(last) = &self.last {
            if cmp_keys(self.orders, &as_refs(last), &as_refs(&key)) != Ordering::Less {
                return Err(VerifyError::new(format!(
                    "the {} returned key {} after key {}: the rows are not in the key order molt-verify expects \
                     (duplicate key, or a collation or type whose order differs from the byte order; \
                     see docs/verify.md)",
                    self.side,
                    describe_key(&key),
                    describe_key(last)
                )));
            }
        }
        self.last = Some(key);
        Ok(())
    }
}

fn key_of(
    columns: &[CompareColumn],
    key: &[usize],
    row: &Row,
    from_source: bool,
) -> Vec<Option<String>> {
    key.iter()
        .map(|&i| {
            row[i].as_deref().map(|v| {
                if from_source {
                    columns[i].source_value(v).to_string()
                } else {
                    v.to_string()
                }
            })
        })
        .collect()
}

/// Compares the keys of two rows without copying them.
fn cmp_row_keys(
    columns: &[CompareColumn],
    key: &[usize],
    orders: &[KeyOrder],
    a: &Row,
    a_source: bool,
    b: &Row,
    b_source: bool,
) -> Ordering {
    fn value<'r>(
        columns: &[CompareColumn],
        row: &'r Row,
        i: usize,
        from_source: bool,
    ) -> Option<&'r str> {
        let v = row[i].as_deref()?;
        Some(if from_source {
            columns[i].source_value(v)
        } else {
            v
        })
    }
    for (&i, order) in key.iter().zip(orders) {
        let o = match (
            value(columns, a, i, a_source),
            value(columns, b, i, b_source),
        ) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) if x == y => Ordering::Equal,
            (Some(x), Some(y)) => order.cmp(x, y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn as_refs(key: &[Option<String>]) -> Vec<Option<&str>> {
    key.iter().map(|v| v.as_deref()).collect()
}

fn describe_key(key: &[Option<String>]) -> String {
    serde_json::to_string(key).unwrap_or_default()
}

/// Merge-joins two streams sorted by key, reporting each differing row.
pub async fn merge_join(
    columns: &[CompareColumn],
    key: &[usize],
    orders: &[KeyOrder],
    source: &mut RowRx,
    target: &mut RowRx,
    on_finding: &mut (dyn FnMut(Finding) + Send),
) -> Result<Tally, VerifyError> {
    let mut src = Cursor {
        rx: source,
        batch: Vec::new().into_iter(),
        side: "source",
        key,
        orders,
        columns,
        from_source: true,
        last: None,
        finished: false,
    };
    let mut tgt = Cursor {
        rx: target,
        batch: Vec::new().into_iter(),
        side: "target",
        key,
        orders,
        columns,
        from_source: false,
        last: None,
        finished: false,
    };
    let mut tally = Tally::default();
    let mut s = src.next().await?;
    let mut t = tgt.next().await?;
    loop {
        let order = match (&s, &t) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(sr), Some(tr)) => cmp_row_keys(columns, key, orders, sr, true, tr, false),
        };
        match order {
            Ordering::Less => {
                tally.source_rows += 1;
                tally.missing += 1;
                on_finding(Finding::Missing(s.take().expect("present")));
                s = src.next().await?;
            }
            Ordering::Greater => {
                tally.target_rows += 1;
                tally.extraneous += 1;
                on_finding(Finding::Extraneous(t.take().expect("present")));
                t = tgt.next().await?;
            }
            Ordering::Equal => {
                let (sr, tr) = (s.take().expect("present"), t.take().expect("present"));
                tally.source_rows += 1;
                tally.target_rows += 1;
                let differing = differing_columns(columns, &sr, &tr);
                if differing.is_empty() {
                    tally.matched += 1;
                } else {
                    tally.mismatched += 1;
                    on_finding(Finding::Mismatch {
                        source: sr,
                        target: tr,
                        columns: differing,
                    });
                }
                s = src.next().await?;
                t = tgt.next().await?;
            }
        }
    }
    Ok(tally)
}

/// Compares two unordered streams as multisets of rows (tables without a
/// primary key): every row counts by its digest hash, and the surplus of
/// either side is reported, once per extra copy.
pub async fn multiset(
    columns: &[CompareColumn],
    source: &mut RowRx,
    target: &mut RowRx,
    on_finding: &mut (dyn FnMut(Finding) + Send),
) -> Result<Tally, VerifyError> {
    // hash -> (source copies - target copies, one example row)
    let mut counts: HashMap<u128, (i64, Row)> = HashMap::new();
    let mut hasher = RowHasher::default();
    let mut tally = Tally::default();
    let (mut src_open, mut tgt_open) = (true, true);
    while src_open || tgt_open {
        tokio::select! {
            batch = source.recv(), if src_open => match batch {
                Some(Ok(batch)) if batch.is_empty() => src_open = false,
                Some(batch) => {
                    for row in batch? {
                        tally.source_rows += 1;
                        let h = row_hash(columns, &row, true, &mut hasher);
                        counts.entry(h).or_insert_with(|| (0, row)).0 += 1;
                    }
                }
                None => return Err(stopped("source")),
            },
            batch = target.recv(), if tgt_open => match batch {
                Some(Ok(batch)) if batch.is_empty() => tgt_open = false,
                Some(batch) => {
                    for row in batch? {
                        tally.target_rows += 1;
                        let h = row_hash(columns, &row, false, &mut hasher);
                        counts.entry(h).or_insert_with(|| (0, row)).0 -= 1;
                    }
                }
                None => return Err(stopped("target")),
            },
        }
    }
    let mut surplus: Vec<(i64, Row)> = counts.into_values().filter(|(n, _)| *n != 0).collect();
    // A stable report order: missing first, then by row text.
    surplus.sort_by(|a, b| (a.0 < 0).cmp(&(b.0 < 0)).then_with(|| a.1.cmp(&b.1)));
    for (n, row) in surplus {
        for _ in 0..n.unsigned_abs() {
            if n > 0 {
                tally.missing += 1;
                on_finding(Finding::Missing(row.clone()));
            } else {
                tally.extraneous += 1;
                on_finding(Finding::Extraneous(row.clone()));
            }
        }
    }
    tally.matched = tally.source_rows - tally.missing;
    Ok(tally)
}
