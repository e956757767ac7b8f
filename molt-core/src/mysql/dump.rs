//! Dumping sections: one (table, slice, shard) per call, streamed row by
//! row from the server into the stream writer.
//!
//! `query_iter` runs the SELECT over the text protocol and yields rows as
//! they come off the socket, so memory holds one row at a time whatever the
//! table size. Each value is decoded ([`super::decode`]), written and hashed
//! in one pass, so the `end` record's digest covers exactly the text that
//! was written. A value changed under a policy (a zero date written as
//! NULL) is counted per column in the `end` record; nothing is changed
//! silently.
//!
//! [`dump_all`] runs a whole dump: catalog, snapshot, `--jobs` workers each
//! writing whole sections into [`OrderedOutput`], so sections never
//! interleave on the output.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Value};

use super::catalog::{self, TablePlan};
use super::decode::{preview, Decoded, Decoder};
use super::{DbContext, DumpOptions, MysqlError, ZeroDates};
use crate::digest::{RowHasher, SectionDigest};
use crate::ident::{quote_mysql, quote_mysql_table};
use crate::stream::ordered::OrderedOutput;
use crate::stream::{
    Notice, Record, SectionEnd, Slice, SourceInfo, StreamWriter, TableName, ValueChange,
};

/// What one section held.
#[derive(Clone, Debug, Default)]
pub struct SectionStats {
    pub table: Option<TableName>,
    pub rows: u64,
    pub digest: SectionDigest,
    pub changes: Vec<ValueChange>,
}

/// The policy name recorded for zero dates written as NULL.
pub const ZERO_DATE_TO_NULL: &str = "zero-date-to-null";
/// The [`ValueChange`] policy of a JSON document written without its later
/// duplicate keys ([`Decoded::JsonDuplicatesDropped`]).
pub const JSON_FIRST_OF_DUPLICATE_KEYS: &str = "json-first-of-duplicate-keys";

/// The SELECT for one section: the planned column expressions, the slice's
/// filter (operator-written SQL, in parentheses) and the shard's key range
/// as safely encoded literals.
pub fn section_sql(plan: &TablePlan, slice: &Slice) -> Result<String, MysqlError> {
    let exprs: Vec<&str> = plan
        .columns
        .iter()
        .map(|c| c.select_expr.as_str())
        .collect();
    let mut sql = format!(
        "SELECT {} FROM {}",
        exprs.join(", "),
        quote_mysql_table(&plan.header.table)
    );
    let mut conditions = Vec::new();
    if let Some(filter) = slice.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        conditions.push(format!("({filter})"));
    }
    let shard = &slice.shard;
    for (bound, op) in [(&shard.lower, ">="), (&shard.upper, "<")] {
        let Some(values) = bound else { continue };
        if values.len() != shard.key.len() || values.is_empty() {
            return Err(MysqlError::Data(format!(
                "shard {shard} of {}: {} bound values for key columns {:?}",
                plan.header.table,
                values.len(),
                shard.key
            )));
        }
        let mut cols = Vec::new();
        let mut lits = Vec::new();
        for (key, value) in shard.key.iter().zip(values) {
            let i = plan
                .header
                .columns
                .iter()
                .position(|c| &c.name == key || c.name.eq_ignore_ascii_case(key))
                .ok_or_else(|| {
                    MysqlError::Data(format!(
                        "shard key column {key} is not a column of {}",
                        plan.header.table
                    ))
                })?;
            cols.push(quote_mysql(&plan.columns[i].source_name));
            lits.push(
                bound_literal(&plan.columns[i].decoder, value).map_err(|why| {
                    MysqlError::Data(format!(
                        "shard {shard} of {}, key column {key}: {why}",
                        plan.header.table
                    ))
                })?,
            );
        }
        conditions.push(format!("({}) {op} ({})", cols.join(", "), lits.join(", ")));
    }
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    Ok(sql)
}

fn hex_literal(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2 + 3);
    s.push_str("X'");
    for b in bytes {
        s.push_str(&format!("{b:02X}"));
    }
    s.push('\'');
    s
}

/// A shard bound (stream text) as a MySQL literal that cannot inject SQL:
/// numbers are checked digit by digit, everything else travels as a hex
/// literal (text as `_utf8mb4 X'..'`, converted to the column's charset by
/// the server).
fn bound_literal(decoder: &Decoder, value: &serde_json::Value) -> Result<String, String> {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::Bool(b) => b.to_string(),
        other => return Err(format!("bound {other} is not a scalar")),
    };
    match decoder {
        Decoder::Int | Decoder::Decimal => {
            let body = text.strip_prefix('-').unwrap_or(&text);
            let ok = !body.is_empty()
                && body.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && body.bytes().filter(|b| *b == b'.').count() <= 1;
            if ok {
                Ok(text)
            } else {
                Err(format!("bound {text:?} is not a number"))
            }
        }
        Decoder::Bool => match text.as_str() {
            "true" => Ok("1".into()),
            "false" => Ok("0".into()),
            _ => Err(format!("bound {text:?} is not a bool")),
        },
        Decoder::Text(_)
        | Decoder::Enum(_)
        | Decoder::EnumDeclaringEmpty(_)
        | Decoder::Date
        | Decoder::Datetime => Ok(format!("_utf8mb4 {}", hex_literal(text.as_bytes()))),
        Decoder::Timestamp => Ok(format!(
            "_utf8mb4 {}",
            hex_literal(text.trim_end_matches('Z').as_bytes())
        )),
        Decoder::Bytes => base64::engine::general_purpose::STANDARD
            .decode(&text)
            .map(|b| hex_literal(&b))
            .map_err(|e| format!("bound is not base64: {e}")),
        Decoder::Uuid => {
            let hex: String = text.chars().filter(|c| *c != '-').collect();
            if hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(format!("X'{hex}'"))
            } else {
                Err(format!("bound {text:?} is not a UUID"))
            }
        }
        other => Err(format!("cannot shard on a {other:?} column")),
    }
}

/// The primary key of the current row, for error messages: `(id)=(42)`.
fn key_text(plan: &TablePlan, values: &[Option<Value>]) -> String {
    if plan.key.is_empty() {
        return "(no primary key)".into();
    }
    let names: Vec<&str> = plan
        .key
        .iter()
        .map(|&i| plan.columns[i].source_name.as_str())
        .collect();
    let vals: Vec<String> = plan
        .key
        .iter()
        .map(|&i| match values.get(i) {
            Some(Some(Value::Bytes(b))) => match std::str::from_utf8(b) {
                Ok(s) => s.to_string(),
                Err(_) => preview(b),
            },
            _ => "NULL".into(),
        })
        .collect();
    format!("primary key ({})=({})", names.join(", "), vals.join(", "))
}

/// Dumps one section: the table header (with `slice`), every row, and the
/// `end` record with the row count, digest and counted value changes.
pub async fn dump_section<W: Write>(
    conn: &mut Conn,
    plan: &TablePlan,
    slice: &Slice,
    options: &DumpOptions,
    writer: &mut StreamWriter<W>,
) -> Result<SectionStats, MysqlError> {
    let table = &plan.header.table;
    let sql = section_sql(plan, slice)?;
    let mut progress = crate::metrics::Progress::new(table);
    let base = writer.bytes_written();
    let mut header = plan.header.clone();
    header.slice = slice.clone();
    writer.record(&Record::Table(Box::new(header)))?;

    let mut result = conn
        .query_iter(sql)
        .await
        .ctx(|| format!("reading {table} shard {}", slice.shard))?;
    let mut hasher = RowHasher::default();
    let mut digest = SectionDigest::default();
    let mut zero_dates = vec![0u64; plan.columns.len()];
    let mut json_duplicates = vec![0u64; plan.columns.len()];
    let mut text = String::with_capacity(256);
    while let Some(row) = result
        .next()
        .await
        .ctx(|| format!("reading {table} shard {}", slice.shard))?
    {
        let values = row.unwrap_raw();
        if values.len() != plan.columns.len() {
            return Err(MysqlError::Data(format!(
                "{table}: the server returned {} columns, expected {}",
                values.len(),
                plan.columns.len()
            )));
        }
        let mut out = writer.row();
        for (i, (col, value)) in plan.columns.iter().zip(&values).enumerate() {
            let raw = match value {
                None | Some(Value::NULL) => {
                    out.null();
                    hasher.value(col.digest, None);
                    continue;
                }
                Some(Value::Bytes(b)) => b,
                Some(other) => {
                    return Err(MysqlError::Data(format!(
                        "{table}, column {}: unexpected value {other:?} from the text protocol",
                        col.source_name
                    )))
                }
            };
            let decoded = col.decoder.decode(raw, &mut text).map_err(|e| {
                MysqlError::Data(format!(
                    "table {table}, column {}, row with {}: {e}",
                    col.source_name,
                    key_text(plan, &values)
                ))
            })?;
            match decoded {
                Decoded::Value | Decoded::JsonDuplicatesDropped => {
                    if decoded == Decoded::JsonDuplicatesDropped {
                        json_duplicates[i] += 1;
                    }
                    if col.digest.is_array {
                        out.raw_json(&text);
                    } else {
                        out.str(&text);
                    }
                    hasher.value(col.digest, Some(&text));
                }
                Decoded::InvalidDate => {
                    let shown = String::from_utf8_lossy(raw);
                    if options.zero_dates == ZeroDates::Error {
                        return Err(MysqlError::Data(format!(
                            "table {table}, column {}, row with {}: zero or invalid date {shown} (--zero-dates error)",
                            col.source_name,
                            key_text(plan, &values)
                        )));
                    }
                    if !col.nullable {
                        return Err(MysqlError::Data(format!(
                            "table {table}, column {}, row with {}: zero or invalid date {shown} in a NOT NULL column; \
                             it cannot become NULL (fix the row, or make the target column nullable with \
                             `nullable = true` in the --type-map file)",
                            col.source_name,
                            key_text(plan, &values)
                        )));
                    }
                    zero_dates[i] += 1;
                    out.null();
                    hasher.value(col.digest, None);
                }
            }
        }
        out.finish();
        digest.add_row(hasher.finish_row());
        writer.maybe_flush()?;
        progress.update(digest.rows, writer.bytes_written() - base);
    }
    let counted = [
        (ZERO_DATE_TO_NULL, &zero_dates),
        (JSON_FIRST_OF_DUPLICATE_KEYS, &json_duplicates),
    ];
    let changes: Vec<ValueChange> = counted
        .iter()
        .flat_map(|(policy, counts)| {
            plan.header
                .columns
                .iter()
                .zip(counts.iter())
                .filter(|(_, n)| **n > 0)
                .map(|(c, n)| ValueChange {
                    column: c.name.clone(),
                    policy: (*policy).into(),
                    count: *n,
                })
        })
        .collect();
    writer.record(&Record::End(SectionEnd {
        table: table.clone(),
        shard: slice.shard.clone(),
        rows: digest.rows,
        digest: digest.hex(),
        changes: changes.clone(),
        checksum: None,
    }))?;
    progress.finish(digest.rows, writer.bytes_written() - base);
    crate::metrics::section(table, crate::metrics::SectionStatus::Done);
    Ok(SectionStats {
        table: Some(table.clone()),
        rows: digest.rows,
        digest,
        changes,
    })
}

/// Refuses a dump in which two source tables (or two ENUM types) would get
/// the same target name: on a case-sensitive server `Orders` and `orders`
/// are two tables, and lower-casing would pour both into one.
fn check_target_names(plans: &[Arc<TablePlan>]) -> Result<(), MysqlError> {
    let mut seen: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for p in plans {
        let source = p.header.table.to_string();
        let enums = p
            .header
            .columns
            .iter()
            .filter_map(|c| c.enum_type.as_ref().map(|e| (c, e)))
            .map(|(c, e)| {
                (
                    format!("type {}.{}", e.schema, e.name),
                    format!("the ENUM of {source}.{}", c.name),
                )
            });
        let table = p
            .header
            .target
            .as_ref()
            .map(|t| (format!("table {t}"), source.clone()));
        for (target, from) in table.into_iter().chain(enums) {
            if let Some(other) = seen.insert(target.clone(), from.clone()) {
                if other != from {
                    return Err(MysqlError::Data(format!(
                        "{other} and {from} would both become {target} on the target: \
                         keep the source's case with --keep-case, or rename one on the source"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// What a whole dump did.
#[derive(Debug, Default)]
pub struct DumpSummary {
    pub sections: Vec<SectionStats>,
    pub position: Option<String>,
    /// Warnings already written to stderr and as `notice` records.
    pub warnings: Vec<String>,
}

/// Dumps `slices` (every base table of the URL's database when empty) from
/// one snapshot with `jobs` connections, writing the whole stream to `out`.
/// Each waiting section keeps up to `spill_memory` bytes in memory before
/// spilling to a temp file.
pub async fn dump_all(
    opts: &Opts,
    redacted_url: &str,
    options: &DumpOptions,
    slices: Vec<Slice>,
    jobs: usize,
    spill_memory: usize,
    out: impl Write + Send + 'static,
) -> Result<DumpSummary, MysqlError> {
    let db = super::database(opts)?;
    let mut conn = super::connect(opts).await?;
    let server = catalog::server_info(&mut conn).await?;

    // Schema first, outside the snapshot: the catalog is not transactional
    // anyway, and DDL during a dump is outside what any dump tool supports.
    let mut work: Vec<(Arc<TablePlan>, Slice)> = Vec::new();
    let mut notices = Vec::new();
    let slices = if slices.is_empty() {
        catalog::list_tables(&mut conn, &db)
            .await?
            .into_iter()
            .map(|t| Slice {
                phase: String::new(),
                table: TableName::new(db.clone(), t.name),
                filter: None,
                target_filter: None,
                shard: crate::stream::Shard::whole(),
            })
            .collect()
    } else {
        slices
    };
    let mut plans: Vec<Arc<TablePlan>> = Vec::new();
    // Looked up by name, and each database listed once: per slice, both
    // would be quadratic in the number of tables.
    let mut plan_of: std::collections::HashMap<(String, String), Arc<TablePlan>> =
        std::collections::HashMap::new();
    let mut listed: std::collections::HashMap<
        String,
        std::collections::HashMap<String, catalog::TableInfo>,
    > = std::collections::HashMap::new();
    let mut databases: Vec<String> = Vec::new();
    for slice in slices {
        let schema = if slice.table.schema.is_empty() {
            db.clone()
        } else {
            slice.table.schema.clone()
        };
        if !databases.contains(&schema) {
            databases.push(schema.clone());
        }
        let key = (schema.clone(), slice.table.name.clone());
        let plan = match plan_of.get(&key) {
            Some(p) => p.clone(),
            None => {
                if !listed.contains_key(&schema) {
                    let tables = catalog::list_tables(&mut conn, &schema).await?;
                    listed.insert(
                        schema.clone(),
                        tables.into_iter().map(|t| (t.name.clone(), t)).collect(),
                    );
                }
                let info = listed[&schema]
                    .get(&slice.table.name)
                    .cloned()
                    .ok_or_else(|| {
                        MysqlError::Data(format!(
                            "table {schema}.{} not found (or not a base table)",
                            slice.table.name
                        ))
                    })?;
                let p = Arc::new(
                    catalog::load_table(&mut conn, &server, &schema, &info, options).await?,
                );
                plans.push(p.clone());
                plan_of.insert(key, p.clone());
                p
            }
        };
        let slice = Slice {
            table: TableName::new(schema, slice.table.name.clone()),
            ..slice
        };
        work.push((plan, slice));
    }
    check_target_names(&plans)?;
    let mut source_columns = Vec::new();
    for d in &databases {
        notices.extend(catalog::not_migrated(&mut conn, d).await?);
        if !options.type_map.column.is_empty() {
            source_columns.extend(catalog::list_columns(&mut conn, d).await?);
        }
    }
    for o in options.type_map.unmatched(&source_columns) {
        notices.push(Notice {
            level: "warning".into(),
            message: format!(
                "type map entry table = {:?}, column = {:?} names no column of database {}: not applied (a typo?)",
                o.table,
                o.column,
                databases.join(", ")
            ),
            object: Some(format!("{}.{}", o.table, o.column)),
        });
    }
    let _ = conn.disconnect().await;
    let mut warnings: Vec<String> = plans.iter().flat_map(|p| p.warnings.clone()).collect();

    let jobs = jobs.clamp(1, work.len().max(1));
    let snapshot = super::snapshot::open(opts, jobs, &server).await?;
    warnings.extend(snapshot.warnings.iter().cloned());
    for w in &warnings {
        crate::warn!("{w}");
    }
    for n in &notices {
        crate::warn!("{}", n.message);
    }

    let output = Arc::new(OrderedOutput::new(out, spill_memory));
    let source = SourceInfo {
        engine: crate::Engine::Mysql,
        url: redacted_url.to_string(),
        server_version: Some(server.version.clone()),
        snapshot: None,
        position: snapshot.position.clone(),
    };
    output.prelude(&crate::stream::header("molt-dump", Some(source)))?;
    {
        let mut w = StreamWriter::new(output.section());
        for n in notices.iter().cloned().chain(
            snapshot
                .warnings
                .iter()
                .chain(plans.iter().flat_map(|p| p.warnings.iter()))
                .map(|m| Notice {
                    level: "warning".into(),
                    message: m.clone(),
                    object: None,
                }),
        ) {
            w.record(&Record::Notice(n))?;
        }
        w.into_inner()?.finish()?;
    }

    let queue = Arc::new(Mutex::new(work.into_iter().collect::<VecDeque<_>>()));
    let mut tasks = Vec::new();
    for mut conn in snapshot.workers {
        let queue = queue.clone();
        let output = output.clone();
        let options = options.clone();
        tasks.push(tokio::spawn(async move {
            let mut stats = Vec::new();
            loop {
                let next = queue.lock().expect("queue lock").pop_front();
                let Some((plan, slice)) = next else { break };
                let mut w = StreamWriter::new(output.section());
                let result = dump_section(&mut conn, &plan, &slice, &options, &mut w).await;
                match result {
                    Ok(s) => {
                        w.into_inner()?.finish()?;
                        stats.push(s);
                    }
                    Err(e) => {
                        // Stop the others: a failed dump must not look complete.
                        queue.lock().expect("queue lock").clear();
                        return Err(e);
                    }
                }
            }
            let _ = conn.query_drop("COMMIT").await;
            let _ = conn.disconnect().await;
            Ok::<_, MysqlError>(stats)
        }));
    }
    let mut summary = DumpSummary {
        position: snapshot.position,
        warnings,
        ..Default::default()
    };
    let mut first_error = None;
    for t in tasks {
        match t.await {
            Ok(Ok(stats)) => summary.sections.extend(stats),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(join) => {
                first_error
                    .get_or_insert(MysqlError::Data(format!("a dump worker failed: {join}")));
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    output.finish()?;
    Ok(summary)
}
