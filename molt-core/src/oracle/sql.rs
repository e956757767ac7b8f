//! SQL in Oracle's dialect for every molt tool, generated here and checked
//! against golden files (`tests/fixtures/oracle/*.sql`).
//!
//! - **One snapshot**: molt-dump reads the SCN once ([`CURRENT_SCN_SQL`],
//!   or [`FLASHBACK_SCN_SQL`] without access to `V$DATABASE`), and every
//!   worker reads `... FROM t AS OF SCN :scn`: all sections see the same
//!   committed state without holding a transaction open (the SCN must stay
//!   within `UNDO_RETENTION`, or Oracle answers ORA-01555).
//! - **Bind variables**: the SCN is `:scn`, shard bounds are `:1`, `:2`...
//!   in order of appearance, each used once, so binding by position (in
//!   [`Query::binds`] order) and binding by name both work. Values are never
//!   pasted; the operator's filter is pasted in parentheses, as everywhere.
//! - **Key ranges**: Oracle has no row-value comparison (`(a, b) >= (x, y)`),
//!   so a composite bound is expanded: `(a > x) OR (a = x AND b >= y)`.
//! - **Freeze triggers** evaluate the operator's filter unchanged, against
//!   an inline view of the row's `:NEW`/`:OLD` values named like the
//!   table's columns (see [`freeze_trigger_sql`]).

use serde_json::Value;

use super::catalog::OracleTable;
use super::ident::{literal_oracle, quote_oracle, quote_oracle_table};
use super::types::{OracleColumn, ReadKind};
use crate::stream::{Slice, TableName};

/// The current SCN, as text (needs `SELECT` on `V$DATABASE`).
pub const CURRENT_SCN_SQL: &str = "SELECT TO_CHAR(CURRENT_SCN) FROM V$DATABASE";
/// The current SCN through `DBMS_FLASHBACK` (needs `EXECUTE` on it).
pub const FLASHBACK_SCN_SQL: &str =
    "SELECT TO_CHAR(DBMS_FLASHBACK.GET_SYSTEM_CHANGE_NUMBER) FROM DUAL";
/// The server version.
pub const VERSION_SQL: &str =
    "SELECT version_full FROM product_component_version WHERE product LIKE 'Oracle%'";

/// Session settings every molt connection makes first: numbers with a `.`,
/// LOCAL TIME ZONE values in UTC, binary (code point) comparison and sort
/// so that key ranges agree with molt-slice's boundaries and the target.
pub const SESSION_SETUP: &[&str] = &[
    "ALTER SESSION SET NLS_NUMERIC_CHARACTERS = '.,'",
    "ALTER SESSION SET TIME_ZONE = '+00:00'",
    "ALTER SESSION SET NLS_COMP = BINARY",
    "ALTER SESSION SET NLS_SORT = BINARY",
    "ALTER SESSION SET NLS_DATE_FORMAT = 'SYYYY-MM-DD HH24:MI:SS'",
    "ALTER SESSION SET NLS_TIMESTAMP_FORMAT = 'SYYYY-MM-DD HH24:MI:SS.FF9'",
];

/// A value to bind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindValue {
    /// The snapshot SCN (bind it as a number or its text).
    Scn,
    /// Text for the conversion around the placeholder ([`bind_expr`]).
    Text(String),
}

/// A statement and its bind values, in order of appearance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub sql: String,
    /// `(placeholder name without ':', value)`.
    pub binds: Vec<(String, BindValue)>,
}

/// Why SQL could not be generated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SqlError(pub String);

/// A key column: its source name and how it is read (which fixes the
/// conversion of a bound value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyColumn {
    pub name: String,
    pub read: ReadKind,
}

impl OracleTable {
    /// The key columns of a shard (names as the shard gives them: source or
    /// target spelling), or the primary key when the shard names none.
    pub fn key_columns(&self, names: &[String]) -> Result<Vec<KeyColumn>, SqlError> {
        let wanted: Vec<String> = if names.is_empty() {
            self.key_source_names()
                .into_iter()
                .map(str::to_string)
                .collect()
        } else {
            names.to_vec()
        };
        wanted
            .iter()
            .map(|n| {
                let i = self
                    .source_columns
                    .iter()
                    .position(|c| &c.name == n)
                    .or_else(|| self.header.columns.iter().position(|c| &c.name == n))
                    .ok_or_else(|| {
                        SqlError(format!(
                            "{}: shard key column {n} does not exist",
                            self.header.table
                        ))
                    })?;
                Ok(KeyColumn {
                    name: self.source_columns[i].name.clone(),
                    read: self.mapped[i].read,
                })
            })
            .collect()
    }
}

/// The placeholder `:n` wrapped in the conversion to the key column's type.
pub fn bind_expr(read: ReadKind, n: usize) -> Result<String, SqlError> {
    let p = format!(":{n}");
    Ok(match read {
        ReadKind::Number | ReadKind::NumberAsFloat8 => format!("TO_NUMBER({p})"),
        ReadKind::Text => p,
        ReadKind::Date => format!("TO_DATE({p}, 'SYYYY-MM-DD HH24:MI:SS')"),
        ReadKind::Timestamp => format!("TO_TIMESTAMP({p}, 'SYYYY-MM-DD HH24:MI:SS.FF')"),
        ReadKind::TimestampUtc => {
            format!("TO_TIMESTAMP_TZ({p}, 'SYYYY-MM-DD HH24:MI:SS.FF TZH:TZM')")
        }
        ReadKind::Bytes | ReadKind::RawUuid => format!("HEXTORAW({p})"),
        other => {
            return Err(SqlError(format!(
                "a {other:?} column cannot be a shard key"
            )))
        }
    })
}

/// A stream bound value as the text [`bind_expr`] converts.
pub fn bind_value(
    key: &KeyColumn,
    logical: crate::value::LogicalType,
    value: &Value,
) -> Result<String, SqlError> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => {
            return Err(SqlError(format!(
                "shard bound for {} is not a value: {other}",
                key.name
            )))
        }
    };
    let mut out = super::value::bind_text(logical, &text)
        .map_err(|e| SqlError(format!("shard bound for {}: {e}", key.name)))?;
    match key.read {
        // DATE has whole seconds; TO_TIMESTAMP wants the fraction present.
        ReadKind::Date => {
            if let Some(dot) = out.rfind('.') {
                out.truncate(dot);
            }
        }
        ReadKind::Timestamp | ReadKind::TimestampUtc => {
            let time_start = out.rfind(':').unwrap_or(0);
            if !out[time_start..].contains('.') {
                let zone = out[time_start..]
                    .find(' ')
                    .map(|i| time_start + i)
                    .unwrap_or(out.len());
                out.insert_str(zone, ".0");
            }
        }
        _ => {}
    }
    Ok(out)
}

/// `key >= bound` (or `key < bound`) over the columns, expanded for
/// Oracle: `(a > :1) OR (a = :2 AND b >= :3)`. Placeholders are numbered
/// from `next`, which is advanced.
fn bound_condition(
    key: &[KeyColumn],
    bound: &[String],
    lower: bool,
    alias: &str,
    next: &mut usize,
    binds: &mut Vec<(String, BindValue)>,
) -> Result<String, SqlError> {
    let mut terms = Vec::with_capacity(key.len());
    for i in 0..key.len() {
        let mut parts = Vec::with_capacity(i + 1);
        for j in 0..=i {
            let op = if j < i {
                "="
            } else if lower && i == key.len() - 1 {
                ">="
            } else if lower {
                ">"
            } else {
                "<"
            };
            parts.push(format!(
                "{alias}.{} {op} {}",
                quote_oracle(&key[j].name),
                bind_expr(key[j].read, *next)?
            ));
            binds.push((next.to_string(), BindValue::Text(bound[j].clone())));
            *next += 1;
        }
        terms.push(format!("({})", parts.join(" AND ")));
    }
    Ok(if terms.len() == 1 {
        terms.pop().expect("one term")
    } else {
        format!("({})", terms.join(" OR "))
    })
}

/// The WHERE clause of a slice's shard: the filter in parentheses and the
/// key bounds. Returns `""` for the whole table.
pub fn slice_where(
    table: &OracleTable,
    slice: &Slice,
    next: &mut usize,
    binds: &mut Vec<(String, BindValue)>,
) -> Result<String, SqlError> {
    let mut conds = Vec::new();
    if let Some(f) = slice.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        conds.push(format!("({f})"));
    }
    let shard = &slice.shard;
    if shard.lower.is_some() || shard.upper.is_some() {
        let key = table.key_columns(&shard.key)?;
        for (bound, lower) in [(&shard.lower, true), (&shard.upper, false)] {
            let Some(values) = bound else { continue };
            if values.len() != key.len() {
                return Err(SqlError(format!(
                    "{}: shard {} has {} bound values for {} key columns",
                    table.header.table,
                    shard,
                    values.len(),
                    key.len()
                )));
            }
            let texts = key
                .iter()
                .zip(values)
                .map(|(k, v)| {
                    let logical = table.mapped[table
                        .source_columns
                        .iter()
                        .position(|c| c.name == k.name)
                        .expect("key column")]
                    .logical;
                    bind_value(k, logical, v)
                })
                .collect::<Result<Vec<_>, _>>()?;
            conds.push(bound_condition(&key, &texts, lower, "t", next, binds)?);
        }
    }
    Ok(if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    })
}

/// molt-dump's read of one section: the slice's rows of one shard, as of
/// the snapshot SCN.
pub fn section_query(table: &OracleTable, slice: &Slice) -> Result<Query, SqlError> {
    let mut binds = vec![("scn".to_string(), BindValue::Scn)];
    let mut next = 1;
    let wh = slice_where(table, slice, &mut next, &mut binds)?;
    let sql = format!(
        "SELECT {} FROM {} AS OF SCN :scn t{wh}",
        table.select_list().join(", "),
        quote_oracle_table(&table.header.table)
    );
    Ok(Query { sql, binds })
}

fn from_clause(table: &TableName, as_of_scn: bool) -> String {
    if as_of_scn {
        format!("{} AS OF SCN :scn t", quote_oracle_table(table))
    } else {
        format!("{} t", quote_oracle_table(table))
    }
}

fn where_filter(filter: Option<&str>) -> String {
    filter
        .filter(|f| !f.trim().is_empty())
        .map(|f| format!(" WHERE ({f})"))
        .unwrap_or_default()
}

/// Rows of a slice (molt-slice, molt-verify): `SELECT TO_CHAR(COUNT(*))`.
pub fn count_sql(table: &TableName, filter: Option<&str>, as_of_scn: bool) -> String {
    format!(
        "SELECT TO_CHAR(COUNT(*)) FROM {}{}",
        from_clause(table, as_of_scn),
        where_filter(filter)
    )
}

/// A key column as its stream text, in SQL (shard boundaries, audit
/// samples). BC years become astronomical, fractions lose trailing zeros.
pub fn key_text_expr(
    column: &str,
    read: ReadKind,
    fraction_digits: u8,
) -> Result<String, SqlError> {
    let c = format!("t.{}", quote_oracle(column));
    let year = |v: &str| {
        format!(
            "CASE WHEN TO_CHAR({v}, 'SYYYY') LIKE '-%' THEN CASE WHEN TO_CHAR({v}, 'YYYY') = '0001' THEN '0000' \
             ELSE '-' || LPAD(TO_CHAR(TO_NUMBER(TO_CHAR({v}, 'YYYY')) - 1), 4, '0') END ELSE TO_CHAR({v}, 'YYYY') END"
        )
    };
    let ff = if fraction_digits > 6 { "FF9" } else { "FF6" };
    Ok(match read {
        ReadKind::Number | ReadKind::NumberAsFloat8 => decimal_text_expr(&c),
        ReadKind::Text => c,
        ReadKind::Date => format!("{} || TO_CHAR({c}, '-MM-DD HH24:MI:SS')", year(&c)),
        ReadKind::Timestamp => {
            format!("{} || RTRIM(RTRIM(TO_CHAR({c}, '-MM-DD HH24:MI:SS.{ff}'), '0'), '.')", year(&c))
        }
        ReadKind::TimestampUtc => {
            let u = format!("SYS_EXTRACT_UTC({c})");
            format!("{} || RTRIM(RTRIM(TO_CHAR({u}, '-MM-DD HH24:MI:SS.{ff}'), '0'), '.') || 'Z'", year(&u))
        }
        ReadKind::Bytes => format!(
            "REPLACE(REPLACE(UTL_RAW.CAST_TO_VARCHAR2(UTL_ENCODE.BASE64_ENCODE({c})), CHR(13)), CHR(10))"
        ),
        ReadKind::RawUuid => uuid_text_expr(&c),
        other => return Err(SqlError(format!("column {column}: a {other:?} column cannot be a key"))),
    })
}

/// A NUMBER as plain decimal text without trailing zeros: `TO_CHAR` writes
/// `.5` and `-.5`, the stream (and PostgreSQL) `0.5` and `-0.5`.
pub fn decimal_text_expr(c: &str) -> String {
    format!("REGEXP_REPLACE(TO_CHAR({c}, 'TM9'), '^(-?)[.]', '\\10.')")
}

/// RAW(16) as a lower-case hyphenated UUID.
pub fn uuid_text_expr(c: &str) -> String {
    format!("REGEXP_REPLACE(LOWER(RAWTOHEX({c})), '(.{{8}})(.{{4}})(.{{4}})(.{{4}})(.{{12}})', '\\1-\\2-\\3-\\4-\\5')")
}

fn key_texts(table: &OracleTable, key: &[KeyColumn]) -> Result<Vec<String>, SqlError> {
    key.iter()
        .map(|k| {
            let i = table
                .source_columns
                .iter()
                .position(|c| c.name == k.name)
                .expect("key column");
            key_text_expr(&k.name, k.read, table.mapped[i].source_fraction_digits)
        })
        .collect()
}

/// molt-slice's shard boundaries: the slice's rows numbered in key order,
/// every `step`-th key (after the first row) as stream text `k0, k1...`,
/// and its row number as `rn_text`.
pub fn shard_boundaries_sql(
    table: &OracleTable,
    key: &[KeyColumn],
    filter: Option<&str>,
    step: u64,
) -> Result<String, SqlError> {
    let texts = key_texts(table, key)?;
    let select: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{e} AS k{i}"))
        .collect();
    let aliases: Vec<String> = (0..key.len()).map(|i| format!("s.k{i}")).collect();
    let order: Vec<String> = key
        .iter()
        .map(|k| format!("t.{}", quote_oracle(&k.name)))
        .collect();
    Ok(format!(
        "SELECT {}, TO_CHAR(s.rn) AS rn_text FROM (SELECT {}, ROW_NUMBER() OVER (ORDER BY {}) AS rn FROM {}{}) s \
         WHERE MOD(s.rn, {step}) = 1 AND s.rn > 1 ORDER BY s.rn",
        aliases.join(", "),
        select.join(", "),
        order.join(", "),
        from_clause(&table.header.table, false),
        where_filter(filter)
    ))
}

/// molt-slice's audit of one table: rows, rows no phase's filter matches,
/// rows more than one matches, rows where some filter is NULL (as text).
pub fn audit_sql(table: &TableName, filters: &[&str]) -> String {
    format!(
        "SELECT TO_CHAR(COUNT(*)), TO_CHAR(SUM(CASE WHEN s.m = 0 THEN 1 ELSE 0 END)), \
         TO_CHAR(SUM(CASE WHEN s.m > 1 THEN 1 ELSE 0 END)), TO_CHAR(SUM(CASE WHEN s.nn > 0 THEN 1 ELSE 0 END)) \
         FROM ({}) s",
        audit_inner_sql(table, &[], filters)
    )
}

/// The per-row indicators of [`audit_sql`] (`m`: phases matching, `nn`:
/// filters that are NULL), with the key texts `k0, k1...` first, for
/// sampling offending keys with [`audit_samples_sql`].
pub fn audit_inner_sql(table: &TableName, key_texts: &[String], filters: &[&str]) -> String {
    let m: Vec<String> = filters
        .iter()
        .map(|f| format!("CASE WHEN ({f}) THEN 1 ELSE 0 END"))
        .collect();
    let nn: Vec<String> = filters
        .iter()
        .map(|f| format!("CASE WHEN ({f}) THEN 0 WHEN NOT ({f}) THEN 0 ELSE 1 END"))
        .collect();
    let keys: String = key_texts
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{e} AS k{i}, "))
        .collect();
    let sum = |v: Vec<String>| {
        if v.is_empty() {
            "0".to_string()
        } else {
            v.join(" + ")
        }
    };
    format!(
        "SELECT {keys}{} AS m, {} AS nn FROM {}",
        sum(m),
        sum(nn),
        from_clause(table, false)
    )
}

/// Up to `limit` keys of rows meeting `condition` (`s.m = 0`, `s.m > 1`,
/// `s.nn > 0`), in key order.
pub fn audit_samples_sql(
    table: &OracleTable,
    key: &[KeyColumn],
    filters: &[&str],
    condition: &str,
    limit: u64,
) -> Result<String, SqlError> {
    let texts = key_texts(table, key)?;
    let aliases: Vec<String> = (0..key.len()).map(|i| format!("s.k{i}")).collect();
    Ok(format!(
        "SELECT {} FROM ({}) s WHERE {condition} ORDER BY {} FETCH FIRST {limit} ROWS ONLY",
        aliases.join(", "),
        audit_inner_sql(&table.header.table, &texts, filters),
        aliases.join(", ")
    ))
}

/// The name of the trigger freezing `phase` of `table`: `MOLT_FREEZE_`
/// and 8 hex digits of a hash of owner, table and phase, so that it is
/// stable (unfreeze finds it), unique per table and phase, and short
/// enough for Oracle releases before 12.2 (30 bytes).
pub fn freeze_trigger_name(table: &TableName, phase: &str) -> String {
    let mut h = blake3::Hasher::new();
    for part in [table.schema.as_str(), table.name.as_str(), phase] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let hash = h.finalize();
    let hex: String = hash.as_bytes()[..4]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    format!("MOLT_FREEZE_{hex}")
}

/// A trigger that refuses every INSERT, UPDATE and DELETE touching a row of
/// the frozen phase: a row whose new values (insert, update) or old values
/// (update, delete) match `filter`, or every row without a filter.
///
/// The filter names columns unqualified, and a row trigger only sees
/// `:NEW` and `:OLD`. Rather than rewrite the operator's SQL, the trigger
/// evaluates it unchanged against a one-row inline view whose columns are
/// the row's values under the table's column names:
/// `SELECT COUNT(*) FROM (SELECT :NEW."REGION" AS "REGION", ... FROM DUAL)
/// WHERE (filter)`. So any filter molt-dump accepts works here, with the
/// same meaning (a NULL filter result freezes nothing, as it selects
/// nothing). LONG and LONG RAW columns cannot be referenced in a trigger
/// and are left out of the view (a filter cannot use them anyway).
pub fn freeze_trigger_sql(
    table: &TableName,
    columns: &[OracleColumn],
    phase: &str,
    filter: Option<&str>,
) -> String {
    let name = freeze_trigger_name(table, phase);
    let message = literal_oracle(&format!(
        "molt: phase {phase} is frozen for migration: writes to {table} are refused until it is unfrozen"
    ));
    let head = format!(
        "CREATE OR REPLACE TRIGGER {}.{}\nBEFORE INSERT OR UPDATE OR DELETE ON {}\nFOR EACH ROW\n",
        quote_oracle(&table.schema),
        quote_oracle(&name),
        quote_oracle_table(table)
    );
    let Some(filter) = filter.filter(|f| !f.trim().is_empty()) else {
        return format!("{head}BEGIN\n  RAISE_APPLICATION_ERROR(-20001, {message});\nEND;");
    };
    let view = |side: &str| -> String {
        let cols: Vec<String> = columns
            .iter()
            .filter(|c| !c.data_type.to_ascii_uppercase().starts_with("LONG"))
            .map(|c| format!(":{side}.{q} AS {q}", q = quote_oracle(&c.name)))
            .collect();
        format!(
            "SELECT COUNT(*) INTO hits FROM (SELECT {} FROM DUAL) WHERE ({filter});",
            cols.join(", ")
        )
    };
    format!(
        "{head}DECLARE\n  hits NUMBER := 0;\nBEGIN\n  IF INSERTING OR UPDATING THEN\n    {}\n  END IF;\n  \
         IF hits = 0 AND (UPDATING OR DELETING) THEN\n    {}\n  END IF;\n  IF hits > 0 THEN\n    \
         RAISE_APPLICATION_ERROR(-20001, {message});\n  END IF;\nEND;",
        view("NEW"),
        view("OLD")
    )
}

/// Removes the freeze of `phase` on `table`.
pub fn unfreeze_sql(table: &TableName, phase: &str) -> String {
    format!(
        "DROP TRIGGER {}.{}",
        quote_oracle(&table.schema),
        quote_oracle(&freeze_trigger_name(table, phase))
    )
}

/// Whether a freeze trigger exists (`:1` owner, `:2` trigger name):
/// cutover checks this before it reports a phase frozen.
pub const FREEZE_EXISTS_SQL: &str =
    "SELECT status FROM all_triggers WHERE owner = :1 AND trigger_name = :2";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_names_are_stable_and_short() {
        let t = TableName::new("HR", "EMPLOYEES");
        assert_eq!(freeze_trigger_name(&t, "A"), freeze_trigger_name(&t, "A"));
        assert_ne!(freeze_trigger_name(&t, "A"), freeze_trigger_name(&t, "B"));
        assert!(freeze_trigger_name(&t, "A").len() <= 30);
    }
}
