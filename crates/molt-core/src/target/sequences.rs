//! Sequences past the migrated rows.
//!
//! Rows arrive with their key values, so a serial/identity/AUTO_INCREMENT
//! column's sequence on the target would still start at 1 and the
//! application's first insert after cutover would collide. After loading,
//! each sequence of a table is created if missing, made the column's
//! default (`nextval`) if the column has none, and moved to the largest of:
//! the column's maximum, the source's next value minus one, and its own
//! current value (never backwards: another phase may have moved it further).

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

/// What was done to one sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceOutcome {
    pub sequence: TableName,
    pub column: String,
    /// The value the sequence now returned last; the next is one more.
    pub last_value: Option<i64>,
}

/// Creates, attaches and advances every sequence of `header` on `target`.
pub async fn set_sequences(
    client: &Client,
    header: &TableHeader,
    target: &TableName,
) -> Result<Vec<SequenceOutcome>> {
    let mut out = Vec::new();
    let table_sql = quote_pg_table(target);
    for seq in &header.sequences {
        let name = sequence_target(seq, target);
        let seq_sql = quote_pg_table(&name);
        let column = quote_pg(&seq.column);
        client
            .batch_execute(&format!("CREATE SEQUENCE IF NOT EXISTS {seq_sql}"))
            .await
            .ctx(|| format!("creating sequence {name}"))?;
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
            client
                .batch_execute(&format!(
                    "ALTER TABLE {table_sql} ALTER COLUMN {column} SET DEFAULT nextval({})",
                    literal_pg(&seq_sql)
                ))
                .await
                .ctx(|| format!("making {name} the default of {target}.{}", seq.column))?;
        }
        let max: Option<i64> = client
            .query_one(&format!("SELECT MAX({column})::INT8 FROM {table_sql}"), &[])
            .await
            .ctx(|| format!("reading the maximum of {target}.{}", seq.column))?
            .get(0);
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
            client
                .query_one(
                    &format!("SELECT setval({}, $1::INT8, true)", literal_pg(&seq_sql)),
                    &[&value],
                )
                .await
                .ctx(|| format!("setting sequence {name} to {value}"))?;
            last_value = Some(value);
        }
        out.push(SequenceOutcome {
            sequence: name,
            column: seq.column.clone(),
            last_value,
        });
    }
    Ok(out)
}
