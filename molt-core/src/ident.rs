//! Identifier quoting: the one place SQL names are made safe.
//!
//! Names come from catalogs and plans and may hold quotes, spaces or any
//! Unicode; they are always quoted, never pasted. Values are never put into
//! SQL text at all: they are bound as parameters or sent through COPY.

/// Quotes an identifier for PostgreSQL and CockroachDB: `"a""b"`.
pub fn quote_pg(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for ch in name.chars() {
        if ch == '"' {
            out.push('"');
        }
        out.push(ch);
    }
    out.push('"');
    out
}

/// Quotes an identifier for MySQL and MariaDB: `` `a``b` ``.
pub fn quote_mysql(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('`');
    for ch in name.chars() {
        if ch == '`' {
            out.push('`');
        }
        out.push(ch);
    }
    out.push('`');
    out
}

/// Quotes a schema-qualified name for PostgreSQL.
pub fn quote_pg_table(table: &crate::stream::TableName) -> String {
    format!("{}.{}", quote_pg(&table.schema), quote_pg(&table.name))
}

/// Quotes a database-qualified name for MySQL.
pub fn quote_mysql_table(table: &crate::stream::TableName) -> String {
    format!(
        "{}.{}",
        quote_mysql(&table.schema),
        quote_mysql(&table.name)
    )
}

/// Quotes a string literal for PostgreSQL (standard_conforming_strings on).
/// Only for DDL, where parameters cannot be bound (enum labels, comments).
pub fn literal_pg(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_odd_names() {
        assert_eq!(quote_pg(r#"we"ird name"#), r#""we""ird name""#);
        assert_eq!(quote_mysql("a`b"), "`a``b`");
        assert_eq!(quote_pg("Ünïcødé"), "\"Ünïcødé\"");
        assert_eq!(literal_pg("it's"), "'it''s'");
    }
}
