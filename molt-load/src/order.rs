//! Loading in foreign-key order, for tables that already have foreign keys.
//!
//! molt-load creates tables without foreign keys, but finalize adds them
//! after a phase, so a later phase loads into tables that check every row.
//! The stream's order is whatever molt-dump wrote (with parallel readers, a
//! child table's shard can come before its parent's), and with `--jobs` > 1
//! sections load at the same time, so a child section could be copied before
//! the parent rows it references have committed, and fail.
//!
//! This module decides when a section may be written. A table is *pending*
//! while it may still get rows from this stream: it has a section that is
//! queued, loading or held back, or one of its slices has shards not seen
//! yet, or (until the stream ends) it was announced by a `slice` record, or
//! it has not been seen at all and the stream carries no announcements (the
//! reader cannot know whether it comes later). A section whose target
//! table's foreign keys reference a pending table is held back: its COPY
//! text goes to a temporary file ([`crate::spill`]) and the worker is freed,
//! and it is written as soon as its parents are loaded, by whichever worker
//! finishes a section next. At the end of the stream whatever is still held
//! back is written in dependency order, parents first; tables in a cycle go
//! in stream order, with a notice.
//!
//! Deleting a slice's old rows has the opposite order: a parent's rows can
//! only be deleted once the child rows referencing them are gone. A delete
//! refused with a foreign key violation is therefore held back too and
//! retried each time another section has deleted or loaded rows, and at the
//! end of the stream the held-back deletes run children first.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use molt_core::stream::{SectionEnd, TableHeader, TableName};

use crate::spill::Spill;
use crate::worker::SectionCtx;

/// A section held back, its rows in a temporary file.
pub struct Deferred {
    pub section: SectionCtx,
    pub spill: Spill,
    pub end: SectionEnd,
    /// Its slice's old rows are not deleted yet (the delete was refused
    /// because other tables' rows still reference them).
    pub needs_delete: bool,
    /// The generation at the last delete attempt; retried when it moved.
    delete_generation: u64,
    /// Position in the stream, for stable ordering.
    seq: u64,
}

/// Which shards of one slice of a table have finished.
#[derive(Default)]
struct SliceProgress {
    count: u32,
    finished: BTreeSet<u32>,
}

#[derive(Default)]
struct TableProgress {
    /// Sections seen and not finished (queued, loading or held back).
    in_flight: u32,
    /// Keyed by (phase, filter).
    slices: HashMap<(String, Option<String>), SliceProgress>,
}

#[derive(Default)]
struct State {
    tables: HashMap<TableName, TableProgress>,
    /// Tables announced by `slice` records, when the stream has any.
    announced: Option<BTreeSet<TableName>>,
    ended: bool,
    /// Moves whenever rows were deleted or a section finished, so held-back
    /// deletes are retried only when something changed.
    generation: u64,
    /// The referenced tables of each target table, looked up once.
    parents: HashMap<TableName, Vec<TableName>>,
    deferred: Vec<Deferred>,
    next_seq: u64,
}

impl State {
    fn pending(&self, table: &TableName) -> bool {
        match self.tables.get(table) {
            Some(t) => {
                t.in_flight > 0
                    || (!self.ended
                        && t.slices
                            .values()
                            .any(|s| (s.finished.len() as u32) < s.count.max(1)))
            }
            None => !self.ended && self.announced.as_ref().map_or(true, |a| a.contains(table)),
        }
    }

    fn waits_for(&self, table: &TableName) -> Vec<TableName> {
        self.parents
            .get(table)
            .map(|ps| {
                ps.iter()
                    .filter(|p| *p != table && self.pending(p))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The shared bookkeeping; see the module docs.
#[derive(Default)]
pub struct Order {
    state: Mutex<State>,
}

fn slice_key(header: &TableHeader) -> (String, Option<String>) {
    (
        header.slice.phase.clone(),
        header.slice.target_predicate().map(str::to_string),
    )
}

impl Order {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A `slice` record announced that `table` comes in this stream.
    pub fn announce(&self, table: TableName) {
        self.lock()
            .announced
            .get_or_insert_with(BTreeSet::new)
            .insert(table);
    }

    /// The reader handed a section of `table` to a worker.
    pub fn started(&self, table: &TableName, header: &TableHeader) {
        let mut state = self.lock();
        let progress = state.tables.entry(table.clone()).or_default();
        progress.in_flight += 1;
        progress.slices.entry(slice_key(header)).or_default().count = header.slice.shard.count;
    }

    /// A section of `table` is loaded (or skipped).
    pub fn finished(&self, table: &TableName, header: &TableHeader) {
        let mut state = self.lock();
        state.generation += 1;
        if let Some(progress) = state.tables.get_mut(table) {
            progress.in_flight = progress.in_flight.saturating_sub(1);
            progress
                .slices
                .entry(slice_key(header))
                .or_default()
                .finished
                .insert(header.slice.shard.index);
        }
    }

    /// Rows were deleted: held-back deletes may succeed now.
    pub fn deleted(&self) {
        self.lock().generation += 1;
    }

    /// The stream ended: tables not seen by now will not come.
    pub fn end_of_stream(&self) {
        self.lock().ended = true;
    }

    /// The referenced tables of `table`, if already looked up.
    pub fn parents(&self, table: &TableName) -> Option<Vec<TableName>> {
        self.lock().parents.get(table).cloned()
    }

    pub fn set_parents(&self, table: &TableName, parents: Vec<TableName>) {
        self.lock().parents.insert(table.clone(), parents);
    }

    /// The pending tables `table` must wait for.
    pub fn waits_for(&self, table: &TableName) -> Vec<TableName> {
        self.lock().waits_for(table)
    }

    /// The current generation, to remember at a delete attempt.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Holds a section back. A new one gets its stream position; one put
    /// back after an attempt keeps it.
    pub fn defer(&self, mut deferred: Box<Deferred>, attempted_at: Option<u64>) {
        let mut state = self.lock();
        if let Some(generation) = attempted_at {
            deferred.delete_generation = generation;
        }
        state.deferred.push(*deferred);
    }

    /// Makes a new held-back section.
    pub fn new_deferred(
        &self,
        section: SectionCtx,
        spill: Spill,
        end: SectionEnd,
        needs_delete: bool,
        attempted_at: u64,
    ) -> Box<Deferred> {
        let mut state = self.lock();
        state.next_seq += 1;
        Box::new(Deferred {
            section,
            spill,
            end,
            needs_delete,
            delete_generation: attempted_at,
            seq: state.next_seq,
        })
    }

    /// A held-back section worth another attempt now: its delete may pass
    /// (something changed since it was refused), or its parents are loaded.
    pub fn take_ready(&self) -> Option<Box<Deferred>> {
        let mut state = self.lock();
        let ready = state.deferred.iter().position(|d| {
            if d.needs_delete {
                d.delete_generation < state.generation
            } else {
                state.waits_for(&d.section.target).is_empty()
            }
        })?;
        Some(Box::new(state.deferred.remove(ready)))
    }

    /// Everything still held back, parents before children (stream order
    /// among independent sections), and the tables found in a cycle.
    pub fn drain_in_order(&self) -> (Vec<Deferred>, Vec<TableName>) {
        let mut state = self.lock();
        let mut rest = std::mem::take(&mut state.deferred);
        rest.sort_by_key(|d| d.seq);
        let held: BTreeSet<TableName> = rest.iter().map(|d| d.section.target.clone()).collect();
        // Each held table's parents that are also held.
        let deps: BTreeMap<TableName, Vec<TableName>> = held
            .iter()
            .map(|t| {
                let ps = state
                    .parents
                    .get(t)
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| *p != t && held.contains(p))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                (t.clone(), ps)
            })
            .collect();
        let mut placed: BTreeSet<TableName> = BTreeSet::new();
        let mut ordered = Vec::with_capacity(rest.len());
        let mut cycle = Vec::new();
        while !rest.is_empty() {
            // The first section (in stream order) whose held parents are all
            // placed; its table's other sections follow with it.
            let next = rest
                .iter()
                .position(|d| deps[&d.section.target].iter().all(|p| placed.contains(p)));
            let table = match next {
                Some(i) => rest[i].section.target.clone(),
                None => {
                    // A cycle: take the earliest in stream order.
                    let t = rest[0].section.target.clone();
                    cycle.push(t.clone());
                    t
                }
            };
            let (same, others): (Vec<Deferred>, Vec<Deferred>) =
                rest.into_iter().partition(|d| d.section.target == table);
            ordered.extend(same);
            rest = others;
            placed.insert(table);
        }
        (ordered, cycle)
    }
}
