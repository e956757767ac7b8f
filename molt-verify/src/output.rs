//! The report records on stdout, and a readable summary on stderr when
//! stderr is a terminal.
//!
//! Stdout carries only `report` records (NDJSON), so that scripts and
//! molt-cutover can read them; people get the short summary on stderr.

use std::io::{IsTerminal, Stdout, Write};

use molt_core::stream::{Record, StreamWriter, TableName};
use molt_core::verify::{CompareColumn, Finding, Tally};
use serde_json::{json, Map, Value};

/// Everything a table summary reports.
pub struct TableReport<'a> {
    pub phase: &'a str,
    pub table: &'a TableName,
    pub target: &'a TableName,
    pub tally: Tally,
    pub columns_compared: usize,
    pub seconds: f64,
    pub schema_issues: &'a [String],
    pub mode: &'a str,
    /// How rows were compared: `sql-hash`, `client-hash`, `rows`, `count`.
    pub strategy: &'a str,
    /// Why the table was not hashed inside both databases.
    pub strategy_reason: Option<&'a str>,
    /// Source columns printed and hashed in the client.
    pub client_columns: &'a [String],
    pub chunks: u64,
    pub chunks_fetched: u64,
    pub warnings: &'a [String],
}

/// Where report records go: stdout, or (for a table compared by one of
/// several jobs) memory, written to stdout whole and in order once the
/// table is done, so that tables never interleave.
pub struct Output<W: Write = molt_core::exit::Stdout<Stdout>> {
    writer: StreamWriter<W>,
    human: bool,
}

impl Output {
    pub fn new() -> Output {
        Output {
            writer: StreamWriter::new(molt_core::exit::Stdout(std::io::stdout())),
            human: std::io::stderr().is_terminal(),
        }
    }

    /// Writes the records of a table an [`Output::in_memory`] gathered.
    pub fn table_records(&mut self, records: &[u8]) -> std::io::Result<()> {
        self.writer.raw_lines(records)?;
        self.writer.flush()
    }
}

impl Output<Vec<u8>> {
    pub fn in_memory() -> Output<Vec<u8>> {
        Output {
            writer: StreamWriter::new(Vec::new()),
            human: std::io::stderr().is_terminal(),
        }
    }

    pub fn into_records(self) -> std::io::Result<Vec<u8>> {
        self.writer.into_inner()
    }
}

impl<W: Write> Output<W> {
    fn report(&mut self, fields: Map<String, Value>) -> std::io::Result<()> {
        self.writer.record(&Record::Report(fields))
    }

    /// One differing row.
    pub fn finding(
        &mut self,
        phase: &str,
        table: &TableName,
        columns: &[CompareColumn],
        key: &[usize],
        finding: &Finding,
    ) -> std::io::Result<()> {
        let mut m = Map::new();
        let (kind, row) = match finding {
            Finding::Missing(row) => ("missing", row),
            Finding::Extraneous(row) => ("extraneous", row),
            Finding::Mismatch { source, .. } => ("mismatch", source),
        };
        m.insert("kind".into(), json!(kind));
        if !phase.is_empty() {
            m.insert("phase".into(), json!(phase));
        }
        m.insert("table".into(), json!(table));
        // Without a primary key the whole row is the key.
        let all: Vec<usize>;
        let key = if key.is_empty() {
            all = (0..columns.len()).collect();
            &all[..]
        } else {
            key
        };
        let mut k = Map::new();
        for &i in key {
            k.insert(
                columns[i].name.clone(),
                value_json(&columns[i], row[i].as_deref()),
            );
        }
        m.insert("key".into(), Value::Object(k));
        if let Finding::Mismatch {
            source,
            target,
            columns: differing,
        } = finding
        {
            let cols: Vec<Value> = differing
                .iter()
                .map(|&i| {
                    json!({
                        "name": columns[i].name,
                        "source": value_json(&columns[i], source[i].as_deref()),
                        "target": value_json(&columns[i], target[i].as_deref()),
                    })
                })
                .collect();
            m.insert("columns".into(), Value::Array(cols));
        }
        self.report(m)
    }

    /// Findings of one accepted chunk.
    pub fn findings(
        &mut self,
        phase: &str,
        table: &TableName,
        columns: &[CompareColumn],
        key: &[usize],
        findings: &[Finding],
    ) -> std::io::Result<()> {
        for f in findings {
            self.finding(phase, table, columns, key, f)?;
        }
        self.writer.flush()
    }

    pub fn table_summary(&mut self, r: &TableReport<'_>) -> std::io::Result<()> {
        let t = r.tally;
        let mut m = Map::new();
        m.insert("kind".into(), json!("table_summary"));
        if !r.phase.is_empty() {
            m.insert("phase".into(), json!(r.phase));
        }
        m.insert("table".into(), json!(r.table));
        m.insert("target".into(), json!(r.target));
        m.insert("source_rows".into(), json!(t.source_rows));
        m.insert("target_rows".into(), json!(t.target_rows));
        m.insert("matched".into(), json!(t.matched));
        m.insert("missing".into(), json!(t.missing));
        m.insert("extraneous".into(), json!(t.extraneous));
        m.insert("mismatched".into(), json!(t.mismatched));
        m.insert("columns_compared".into(), json!(r.columns_compared));
        m.insert("seconds".into(), json!(round3(r.seconds)));
        m.insert("schema_issues".into(), json!(r.schema_issues));
        m.insert("mode".into(), json!(r.mode));
        m.insert("strategy".into(), json!(r.strategy));
        if let Some(reason) = r.strategy_reason {
            m.insert("strategy_reason".into(), json!(reason));
        }
        if !r.client_columns.is_empty() {
            m.insert("client_hashed_columns".into(), json!(r.client_columns));
        }
        m.insert("chunks".into(), json!(r.chunks));
        m.insert("chunks_fetched".into(), json!(r.chunks_fetched));
        if !r.warnings.is_empty() {
            m.insert("warnings".into(), json!(r.warnings));
        }
        self.report(m)?;
        self.writer.flush()?;
        if self.human {
            let diffs = t.differences() + r.schema_issues.len() as u64;
            let mut err = std::io::stderr().lock();
            let _ = writeln!(
                err,
                "molt-verify: {}{}: {} source rows, {} target rows, {} matched, {} missing, {} extraneous, {} mismatched, {} schema issues ({:.1}s){}",
                if r.phase.is_empty() { String::new() } else { format!("[{}] ", r.phase) },
                r.table,
                t.source_rows,
                t.target_rows,
                t.matched,
                t.missing,
                t.extraneous,
                t.mismatched,
                r.schema_issues.len(),
                r.seconds,
                if diffs == 0 { "" } else { "  DIFFERENT" }
            );
            for issue in r.schema_issues {
                let _ = writeln!(err, "  schema: {issue}");
            }
        }
        Ok(())
    }

    pub fn summary(&mut self, tables: u64, differences: u64, seconds: f64) -> std::io::Result<()> {
        let mut m = Map::new();
        m.insert("kind".into(), json!("summary"));
        m.insert("tables".into(), json!(tables));
        m.insert("differences".into(), json!(differences));
        m.insert("seconds".into(), json!(round3(seconds)));
        m.insert("ok".into(), json!(differences == 0));
        self.report(m)?;
        self.writer.flush()?;
        if self.human {
            let _ = writeln!(
                std::io::stderr().lock(),
                "molt-verify: {tables} tables, {differences} differences ({seconds:.1}s): {}",
                if differences == 0 { "OK" } else { "DIFFERENT" }
            );
        }
        Ok(())
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A stream value as JSON: a string, null, or (arrays) nested arrays.
fn value_json(column: &CompareColumn, value: Option<&str>) -> Value {
    match value {
        None => Value::Null,
        Some(v) if column.is_array => serde_json::from_str(v).unwrap_or_else(|_| json!(v)),
        Some(v) => json!(v),
    }
}
