//! Sequences past the migrated rows.
//!
//! Rows arrive with their key values, so a serial/identity/AUTO_INCREMENT
//! column's sequence on the target would still start at 1 and the
//! application's first insert after cutover would collide. After loading,
//! each sequence of a table is created if missing, made the column's
//! default (`nextval`) if the column has none, and moved to the largest of:
//! the column's maximum, the source's next value minus one, and its own
//! current value (never backwards: another phase may have moved it further).
//!
//! [`plan_sequences`] works the statements out by reading only, and
//! [`set_sequences`] runs them, so a dry run prints what a real run does.

use tokio_postgres::Client;

use super::{DbContext, Result};
use crate::ident::{literal_pg, quote_pg, quote_pg_table};
use crate::stream::{Sequence, TableHeader, TableName};

/// The sequence's name on the target: the source's sequence name in the
/// target table's schema, or `<table>_<column>_seq` (AUTO_INCREMENT).
pub fn sequence_target(seq: &Sequence, table: &TableName) -> TableName {
    let name = match &seq.name {
        Some(n) => n.name.clone(),
        None => format!("{}_{}_seq", table.name, seq.column),
    };
    TableName::new(table.schema.clone(), name)
}

/// Refuses, before anything is written, a sequence the target cannot
/// hold: a source's next value past 2^63 - 1 (a MySQL `BIGINT UNSIGNED`
/// AUTO_INCREMENT near 2^64), which `setval` would refuse only after every
/// row had been committed.
pub fn check_sequences(
    header: &TableHeader,
    target: &TableName,
) -> std::result::Result<(), String> {
    for seq in &header.sequences {
        let Some(next) = seq.next_value.as_deref() else {
            continue;
        };
        if next.trim().parse::<i64>().is_err() {
            return Err(format!(
                "table {target}, column {}: the source's sequence is at {next}, which a target sequence (a signed 64-bit integer, at most {}) cannot hold; nothing was loaded. Drop the sequence from the stream's header, or re-dump with a current molt-dump, which leaves such a sequence out with a warning",
                seq.column,
                i64::MAX
            ));
        }
    }
    Ok(())
}

/// What was done to one sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceOutcome {
    pub sequence: TableName,
    pub column: String,
    /// The value the sequence now returned last; the next is one more.
    pub last_value: Option<i64>,
}

/// The statements that create, attach and advance one sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct SequencePlan {
    pub sequence: TableName,
    pub column: String,
    /// `(what it does, SQL)` in order: `CREATE SEQUENCE IF NOT EXISTS`, the
    /// column default when it has none, and `setval` when the sequence has
    /// to move.
    pub statements: Vec<(String, String)>,
    /// The value the sequence returns last once they ran.
    pub last_value: Option<i64>,
}

/// Works out, from the target's catalog and rows, what [`set_sequences`]
/// runs for every sequence of `header`; changes nothing.
pub async fn plan_sequences(
    client: &Client,
    header: &TableHeader,
    target: &TableName,
) -> Result<Vec<SequencePlan>> {
    let mut out = Vec::new();
    let table_sql = quote_pg_table(target);
    for seq in &header.sequences {
        let name = sequence_target(seq, target);
        let seq_sql = quote_pg_table(&name);
        let column = quote_pg(&seq.column);
        let mut statements = vec![(
            format!("creating sequence {name}"),
            format!("CREATE SEQUENCE IF NOT EXISTS {seq_sql}"),
        )];
        let default: Option<String> = client
            .query_opt(
                "SELECT column_default::TEXT FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2 AND column_name = $3",
                &[&target.schema, &target.name, &seq.column],
            )
            .await
            .ctx(|| format!("reading the default of {target}.{}", seq.column))?
            .and_then(|r| r.get(0));
        if default.is_none() {
            statements.push((
                format!("making {name} the default of {target}.{}", seq.column),
                format!(
                    "ALTER TABLE {table_sql} ALTER COLUMN {column} SET DEFAULT nextval({})",
                    literal_pg(&seq_sql)
                ),
            ));
        }
        let max: Option<i64> = client
            .query_one(&format!("SELECT MAX({column})::INT8 FROM {table_sql}"), &[])
            .await
            .ctx(|| format!("reading the maximum of {target}.{}", seq.column))?
            .get(0);
        // A sequence that does not exist yet starts uncalled: no value.
        let current: Option<i64> = match client
            .query_one(&format!("SELECT last_value, is_called FROM {seq_sql}"), &[])
            .await
        {
            Ok(row) => row.get::<_, bool>(1).then(|| row.get(0)),
            Err(_) => None,
        };
        let source_last = seq
            .next_value
            .as_deref()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(|n| n - 1);
        let wanted = [max, current, source_last].into_iter().flatten().max();
        let mut last_value = current;
        if let Some(value) = wanted.filter(|v| *v >= 1) {
            statements.push((
                format!("setting sequence {name} to {value}"),
                format!("SELECT setval({}, {value}, true)", literal_pg(&seq_sql)),
            ));
            last_value = Some(value);
        }
        out.push(SequencePlan {
            sequence: name,
            column: seq.column.clone(),
            statements,
            last_value,
        });
    }
    Ok(out)
}

/// Creates, attaches and advances every sequence of `header` on `target`.
pub async fn set_sequences(
    client: &Client,
    header: &TableHeader,
    target: &TableName,
) -> Result<Vec<SequenceOutcome>> {
    let mut out = Vec::new();
    for plan in plan_sequences(client, header, target).await? {
        for (what, sql) in &plan.statements {
            client.batch_execute(sql).await.ctx(|| what.clone())?;
        }
        out.push(SequenceOutcome {
            sequence: plan.sequence,
            column: plan.column,
            last_value: plan.last_value,
        });
    }
    Ok(out)
}
