//! Where the slices come from: stdin (molt-slice's records) or the flags.

use std::io::IsTerminal;

use molt_core::exit::{ExitError, USAGE};
use molt_core::stream::{Item, Record, Shard, Slice, StreamReader, TableName};

use crate::Args;

/// `slices` (expanded) without the tables `--exclude` and
/// `--exclude-regex` leave out, each named on stderr. Excluding every
/// table is an error: a dump with nothing in it must not look like success.
pub fn without_excluded(
    exclusions: &molt_core::select::Exclusions,
    mut slices: Vec<Slice>,
) -> anyhow::Result<Vec<Slice>> {
    if exclusions.is_empty() {
        return Ok(slices);
    }
    let dropped = exclusions.retain(&mut slices, |s| &s.table);
    for table in &dropped {
        let pattern = exclusions.excluding(table).unwrap_or_default();
        molt_core::info!("{table}: excluded by {pattern:?}");
    }
    if slices.is_empty() {
        return Err(ExitError::new(
            USAGE,
            format!(
                "nothing to dump: --exclude/--exclude-regex left out every table selected ({})",
                dropped
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .into());
    }
    Ok(slices)
}

/// The slices to dump, before glob expansion (see [`crate::Args`]).
pub fn collect(args: &Args) -> anyhow::Result<Vec<Slice>> {
    if !args.tables.is_empty() {
        return Ok(args
            .tables
            .iter()
            .map(|t| flag_slice(args, TableName::parse(t, "")))
            .collect());
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        if args.all {
            return Ok(vec![all_slice(args)]);
        }
        return Err(ExitError::new(
            USAGE,
            "no slices: give --table SCHEMA.TABLE (or --all), or pipe slice records from molt-slice into stdin",
        )
        .into());
    }
    let slices = read_slices(stdin.lock())?;
    if slices.is_empty() {
        if args.all {
            return Ok(vec![all_slice(args)]);
        }
        return Err(ExitError::new(
            USAGE,
            "no slice records on stdin (give --table or --all to dump without them)",
        )
        .into());
    }
    if args.filter.is_some() || args.phase.is_some() {
        return Err(ExitError::new(
            USAGE,
            "--filter and --phase apply to --table/--all, not to slices read from stdin",
        )
        .into());
    }
    Ok(slices)
}

fn flag_slice(args: &Args, table: TableName) -> Slice {
    Slice {
        phase: args.phase.clone().unwrap_or_default(),
        table,
        filter: args.filter.clone(),
        target_filter: None,
        shard: Shard::whole(),
    }
}

/// `--all` is the glob `<schema>.*`.
fn all_slice(args: &Args) -> Slice {
    flag_slice(
        args,
        TableName::new(args.schema.clone().unwrap_or_default(), "*"),
    )
}

/// Reads slice records (and an optional stream header) from a stream.
pub fn read_slices(input: impl std::io::BufRead) -> anyhow::Result<Vec<Slice>> {
    let mut reader = StreamReader::new(input);
    let mut slices = Vec::new();
    loop {
        let item = reader
            .next()
            .map_err(|e| anyhow::anyhow!("reading slices from stdin: {e}"))?;
        match item {
            None => return Ok(slices),
            Some(Item::Record(Record::Slice(slice))) => slices.push(slice),
            Some(Item::Record(Record::Stream(_) | Record::Close)) => {}
            Some(Item::Record(other)) => {
                let kind = serde_json::to_value(&other)
                    .ok()
                    .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
                    .unwrap_or_default();
                anyhow::bail!(
                    "reading slices from stdin: line {}: expected slice records, found a {kind} record",
                    reader.line_number()
                )
            }
            Some(Item::Row(_)) => anyhow::bail!(
                "reading slices from stdin: line {}: expected slice records, found a row",
                reader.line_number()
            ),
        }
    }
}

pub use molt_core::select::{glob_match, has_glob};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_slices_and_refuses_other_records() {
        let input = b"{\"type\":\"stream\",\"version\":\"1.0\",\"producer\":\"molt-slice\"}\n{\"type\":\"slice\",\"phase\":\"A\",\"table\":{\"schema\":\"public\",\"name\":\"t\"}}\n";
        let slices = read_slices(&input[..]).unwrap();
        assert_eq!(slices.len(), 1);
        assert_eq!(slices[0].shard, Shard::whole());
        let bad = b"{\"type\":\"slice\",\"table\":{\"schema\":\"public\",\"name\":\"t\"}}\n{\"type\":\"notice\",\"level\":\"warn\",\"message\":\"x\"}\n";
        let err = read_slices(&bad[..]).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("notice"), "{err}");
    }
}
