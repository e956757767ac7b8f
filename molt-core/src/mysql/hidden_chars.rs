//! Defaults and ENUM/SET labels that information_schema cannot show.
//!
//! MySQL and MariaDB serve information_schema (and `SHOW CREATE TABLE`) in
//! `character_set_system`, which is utf8mb3: a column default or an ENUM
//! label holding a character outside the Basic Multilingual Plane (an emoji)
//! reads there as `?`, whatever the session's character set. Taken at face
//! value, the target would get `DEFAULT '?'` and an enum label `?`, and every
//! later insert on the target would store `?` where the source stores 😀,
//! without a word.
//!
//! The values themselves are intact in the table, and SQL can reach them in
//! the column's own character set, as bytes (`HEX`):
//!
//! - a default through `DEFAULT(col)`, evaluated against no row at all (an
//!   outer join on `FALSE`), so it costs nothing however big the table;
//! - an ENUM label through a row that holds it (`col = n` compares an ENUM's
//!   index), a SET member through a row with its bit set.
//!
//! Only a `?` in a column whose character set can hold such characters is
//! suspect. An ENUM label no row holds cannot be recovered, and the dump
//! refuses the column, naming it, rather than guessing (the target's enum
//! type would be wrong); the operator can map it to text with `--type-map`.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::charset::Charset;
use super::types::{parse_labels, RawColumn};
use super::{DbContext, MysqlError};
use crate::ident::quote_mysql;

/// Whether `?` in this column's metadata may stand for a character that
/// utf8mb3 cannot hold.
pub(super) fn may_hide(raw: &RawColumn) -> bool {
    raw.charset.as_deref().is_some_and(|c| {
        matches!(
            c.to_ascii_lowercase().as_str(),
            "utf8mb4" | "utf16" | "utf16le" | "utf32" | "gb18030"
        )
    })
}

fn charset(raw: &RawColumn) -> Charset {
    raw.charset
        .as_deref()
        .and_then(Charset::from_mysql)
        .unwrap_or(Charset::Utf8)
}

fn unhex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn decode_hex(
    raw: &RawColumn,
    hex: &str,
    what: impl FnOnce() -> String,
) -> Result<String, MysqlError> {
    unhex(hex)
        .and_then(|bytes| charset(raw).decode(&bytes).map(|s| s.into_owned()))
        .ok_or_else(|| {
            MysqlError::Data(format!(
                "{}: the bytes 0x{hex} are not valid in the column's character set",
                what()
            ))
        })
}

/// The exact text of a string column's literal default, read in the
/// column's character set; `None` when the column has no default.
pub(super) async fn exact_default(
    conn: &mut Conn,
    db: &str,
    table: &str,
    raw: &RawColumn,
) -> Result<Option<String>, MysqlError> {
    let column = quote_mysql(&raw.name);
    let sql = format!(
        "SELECT HEX(DEFAULT(t.{column})) FROM (SELECT 1) AS molt_one LEFT JOIN {}.{} AS t ON FALSE",
        quote_mysql(db),
        quote_mysql(table)
    );
    let hex: Option<Option<String>> = conn
        .query_first(sql)
        .await
        .ctx(|| format!("reading the default of {db}.{table}.{}", raw.name))?;
    match hex.flatten() {
        None => Ok(None),
        Some(hex) => decode_hex(raw, &hex, || {
            format!("table {db}.{table}, column {}: the default", raw.name)
        })
        .map(Some),
    }
}

/// `raw.column_type` with every ENUM or SET label that reads as `?`
/// recovered from a row that holds it. Errors name the column and the
/// label when no row holds it.
pub(super) async fn exact_column_type(
    conn: &mut Conn,
    db: &str,
    table: &str,
    raw: &RawColumn,
) -> Result<String, MysqlError> {
    let is_set = raw.data_type == "set";
    let mut labels = parse_labels(&raw.column_type);
    let column = quote_mysql(&raw.name);
    let from = format!("{}.{}", quote_mysql(db), quote_mysql(table));
    let mut unknown = Vec::new();
    for (i, label) in labels.iter_mut().enumerate() {
        if !label.contains('?') {
            continue;
        }
        let found: Option<(String, u64)> = if is_set {
            let bit = 1u64 << i;
            conn.exec_first(
                format!("SELECT HEX({column}), {column} + 0 FROM {from} WHERE ({column} & ?) <> 0 LIMIT 1"),
                (bit,),
            )
            .await
        } else {
            conn.exec_first(
                format!("SELECT HEX({column}), {column} + 0 FROM {from} WHERE {column} = ? LIMIT 1"),
                (i as u64 + 1,),
            )
            .await
        }
        .ctx(|| format!("looking for a row of {db}.{table} that holds label {} of column {}", i + 1, raw.name))?;
        let Some((hex, bits)) = found else {
            unknown.push(format!("{} ({label:?})", i + 1));
            continue;
        };
        let value = decode_hex(raw, &hex, || {
            format!("table {db}.{table}, column {}: label {}", raw.name, i + 1)
        })?;
        *label = if is_set {
            // Members print in declaration order: the label of bit i is the
            // one after as many members as lower bits are set.
            let before = (bits & ((1u64 << i) - 1)).count_ones() as usize;
            value.split(',').nth(before).unwrap_or_default().to_string()
        } else {
            value
        };
    }
    // A SET's labels shape no target type (a SET becomes TEXT[] of the
    // members each row holds), so only an ENUM's unknown label is refused.
    if !unknown.is_empty() && !is_set {
        return Err(MysqlError::Data(format!(
            "table {db}.{table}, column {}: {} label {} reads as '?' in information_schema, which cannot show characters outside utf8mb3 (emoji), and no row holds it to read it from; molt will not guess a label. Map the column to text with --type-map (target_type = \"TEXT\"), or store one row with each such label",
            raw.name,
            raw.data_type.to_ascii_uppercase(),
            unknown.join(", ")
        )));
    }
    let quoted: Vec<String> = labels
        .iter()
        .map(|l| format!("'{}'", l.replace('\\', "\\\\").replace('\'', "''")))
        .collect();
    Ok(format!("{}({})", raw.data_type, quoted.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhex_reads_pairs_and_refuses_odd_input() {
        assert_eq!(unhex("F09F9880").unwrap(), "😀".as_bytes());
        assert_eq!(unhex("").unwrap(), b"");
        assert!(unhex("F09").is_none());
        assert!(unhex("ZZ").is_none());
    }

    #[test]
    fn rebuilt_labels_parse_back() {
        let labels = ["x", "it's", "a\\b", "🙂"];
        let quoted: Vec<String> = labels
            .iter()
            .map(|l| format!("'{}'", l.replace('\\', "\\\\").replace('\'', "''")))
            .collect();
        let column_type = format!("enum({})", quoted.join(","));
        assert_eq!(parse_labels(&column_type), labels);
    }
}
