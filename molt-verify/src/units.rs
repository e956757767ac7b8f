//! What to compare: one unit per (phase, table, filters).
//!
//! Slice records may come as several shards of one slice (molt-slice
//! splits big tables); verify compares the whole slice once, since the
//! shards of a slice cover it exactly, and a chunked comparison already
//! bounds its memory and work per chunk.

use std::io::IsTerminal;

use anyhow::Context;
use molt_core::exit::{ExitError, USAGE};
use molt_core::stream::{Item, Record, StreamReader, TableName};

use crate::Args;

/// One slice to compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    pub phase: String,
    pub table: TableName,
    /// Source-side filter.
    pub filter: Option<String>,
    /// Target-side filter (defaults to `filter`).
    pub target_filter: Option<String>,
}

fn clean(filter: Option<&str>) -> Option<String> {
    filter
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_string)
}

/// Units from `--table` flags.
pub fn from_args(args: &Args, default_schema: &str) -> Vec<Unit> {
    let filter = clean(args.filter.as_deref());
    let target_filter = clean(args.target_filter.as_deref()).or_else(|| filter.clone());
    let mut units = Vec::new();
    for t in &args.tables {
        let unit = Unit {
            phase: args.phase.clone().unwrap_or_default(),
            table: TableName::parse(t, default_schema),
            filter: filter.clone(),
            target_filter: target_filter.clone(),
        };
        if !units.contains(&unit) {
            units.push(unit);
        }
    }
    units
}

/// Units from slice records on stdin.
pub fn from_stdin(default_schema: &str) -> anyhow::Result<Vec<Unit>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(ExitError::new(USAGE, "no --table given and stdin is a terminal: pipe slice records in (molt-slice plan ...) or name tables with --table").into());
    }
    let mut reader = StreamReader::new(stdin.lock());
    let mut units = Vec::new();
    loop {
        let record = match reader.next().context("reading slice records from stdin")? {
            None => break,
            Some(Item::Record(record)) => Some(record),
            Some(Item::Row(_)) => None,
        };
        let line = reader.line_number();
        match record {
            Some(Record::Slice(slice)) => {
                let table = if slice.table.schema.is_empty() {
                    TableName::new(default_schema, slice.table.name.clone())
                } else {
                    slice.table.clone()
                };
                let filter = clean(slice.filter.as_deref());
                let unit = Unit {
                    phase: slice.phase.clone(),
                    table,
                    target_filter: clean(slice.target_predicate()),
                    filter,
                };
                if !units.contains(&unit) {
                    units.push(unit);
                }
            }
            Some(Record::Stream(_) | Record::Notice(_) | Record::Close) => {}
            Some(other) => {
                let kind = serde_json::to_value(&other)
                    .ok()
                    .and_then(|v| v.get("type").and_then(|t| t.as_str().map(str::to_string)))
                    .unwrap_or_default();
                anyhow::bail!("stdin line {line}: expected slice records, found a {kind:?} record");
            }
            None => anyhow::bail!("stdin line {line}: expected slice records, found a row"),
        }
    }
    if units.is_empty() {
        // An empty pipe is how a failed molt-slice upstream looks: verifying
        // nothing must not pass for a clean verify.
        anyhow::bail!(
            "no slice records on stdin: the input is empty (did the command before molt-verify fail? run pipelines under `set -o pipefail`); give --table to verify without them"
        );
    }
    Ok(units)
}
