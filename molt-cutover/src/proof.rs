//! Proof that the freeze held: the slice's digest on the source now equals
//! the digest of what molt-load loaded.
//!
//! The digest is a sum over rows, so the loaded sections' digests (one per
//! shard, recorded by molt-load) merge into the digest of the whole slice,
//! and the source side is recomputed in one pass without sorting. Any row
//! written, changed or deleted in the slice since the dump changes it.
//!
//! Recomputing needs the source's exact value conversion, which is
//! molt-dump's: the `molt-dump` binary next to this one is run with the
//! phase's slice records and only its `end` records are kept. The source
//! URL reaches it through `MOLT_SOURCE`, never the command line.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::Context;
use molt_core::digest::SectionDigest;
use molt_core::ledger::SectionRow;
use molt_core::stream::{Item, Record, Shard, Slice, StreamReader, StreamWriter, TableName};
use molt_core::ConnUrl;

use crate::phase::PhaseTable;

/// The `molt-dump` binary: next to the running executable, else on PATH.
pub fn dump_binary() -> PathBuf {
    let name = format!("molt-dump{}", std::env::consts::EXE_SUFFIX);
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Dumps the phase's slices from the source and returns each table's
/// (rows, digest), keyed by source table.
pub fn source_digests(
    source: &ConnUrl,
    phase: &str,
    tables: &[PhaseTable],
) -> anyhow::Result<HashMap<TableName, SectionDigest>> {
    let binary = dump_binary();
    let mut child = Command::new(&binary)
        .args(["--quiet", "--jobs", "2"])
        .env("MOLT_SOURCE", source.expose())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let mut slices = Vec::new();
    {
        let mut writer = StreamWriter::new(&mut slices);
        for t in tables {
            writer.record(&Record::Slice(Slice {
                phase: phase.to_string(),
                table: t.table.clone(),
                filter: t.predicate.clone(),
                target_filter: None,
                shard: Shard::whole(),
            }))?;
        }
        writer.flush()?;
    }
    let mut stdin = child.stdin.take().context("molt-dump stdin")?;
    let feeder = std::thread::spawn(move || -> std::io::Result<()> {
        stdin.write_all(&slices)?;
        Ok(())
    });
    let stdout = child.stdout.take().context("molt-dump stdout")?;
    let mut reader = StreamReader::new(BufReader::new(stdout));
    let mut digests: HashMap<TableName, SectionDigest> = HashMap::new();
    let mut failure = None;
    loop {
        match reader.next() {
            Ok(None) => break,
            Ok(Some(Item::Record(Record::End(end)))) => {
                let sum = SectionDigest::parse_hex(&end.digest).with_context(|| {
                    format!("molt-dump wrote an unreadable digest for {}", end.table)
                })?;
                digests
                    .entry(end.table.clone())
                    .or_default()
                    .merge(&SectionDigest {
                        rows: end.rows,
                        sum,
                    });
            }
            Ok(Some(_)) => {}
            Err(e) => {
                failure = Some(anyhow::anyhow!("reading molt-dump's output: {e}"));
                break;
            }
        }
    }
    drop(reader);
    let _ = feeder.join();
    let status = child.wait().context("waiting for molt-dump")?;
    if let Some(e) = failure {
        return Err(e);
    }
    if !status.success() {
        anyhow::bail!("phase {phase}: molt-dump failed ({status}) recomputing the source digests");
    }
    Ok(digests)
}

/// The merged digest of a table's loaded sections: the shard set that is
/// complete (see [`crate::gate::coverage`]), or `None`.
pub fn loaded_digest(sections: &[&SectionRow]) -> Option<SectionDigest> {
    let mut counts: Vec<i64> = sections.iter().map(|s| s.shard_count).collect();
    counts.sort_unstable();
    counts.dedup();
    for count in counts {
        let mut total = SectionDigest::default();
        let mut seen = std::collections::BTreeSet::new();
        for s in sections
            .iter()
            .filter(|s| s.shard_count == count && s.status == "loaded")
        {
            if !seen.insert(s.shard_index) {
                continue;
            }
            let sum = SectionDigest::parse_hex(s.digest.as_deref()?)?;
            total.merge(&SectionDigest {
                rows: u64::try_from(s.rows?).ok()?,
                sum,
            });
        }
        if (0..count).all(|i| seen.contains(&i)) {
            return Some(total);
        }
    }
    None
}
