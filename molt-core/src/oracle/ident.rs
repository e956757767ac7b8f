//! Oracle identifiers: quoting on the source, and the case rule that names
//! them on the target.
//!
//! Oracle folds unquoted names to upper case (`employees` is stored as
//! `EMPLOYEES`), PostgreSQL and CockroachDB fold them to lower case. A table
//! created in Oracle without quotes was meant to be case-insensitive, so its
//! natural target name is the lower-case one: an application that writes
//! `select * from employees` works on both. A name that holds lower-case
//! letters or characters an unquoted name cannot have was created quoted on
//! purpose; it keeps its exact spelling (and is quoted on the target, as
//! every name is).

use crate::stream::TableName;

/// Quotes an identifier for Oracle: `"a""b"` (the same rule as PostgreSQL).
/// Always quoted, so the catalog's exact spelling is what is referenced.
pub fn quote_oracle(name: &str) -> String {
    crate::ident::quote_pg(name)
}

/// Quotes an owner-qualified name: `"HR"."EMPLOYEES"`.
pub fn quote_oracle_table(table: &TableName) -> String {
    format!(
        "{}.{}",
        quote_oracle(&table.schema),
        quote_oracle(&table.name)
    )
}

/// Quotes a string literal for Oracle. Only for text that cannot be bound
/// (a message inside a trigger body), never for data values.
pub fn literal_oracle(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// True when `name` is what Oracle stores for an unquoted identifier:
/// an upper-case letter first, then upper-case letters, digits, `_`, `$`
/// and `#`.
pub fn is_unquoted_form(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
        && chars
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '_' | '$' | '#'))
}

/// The target name of an Oracle identifier: an unquoted-form (all upper
/// case) name becomes lower case, any other name keeps its case.
///
/// `EMPLOYEES` → `employees`, `EMP#` → `emp#`, `"OrderLines"` stays
/// `OrderLines`, `"my table"` stays `my table`.
pub fn target_name(name: &str) -> String {
    if is_unquoted_form(name) {
        name.to_ascii_lowercase()
    } else {
        name.to_string()
    }
}

/// [`target_name`] for an owner-qualified table. The owner becomes the
/// target schema unless `target_schema` names one (tables of several owners
/// can be merged into `public`, say).
pub fn target_table(table: &TableName, target_schema: Option<&str>) -> TableName {
    TableName::new(
        target_schema
            .map(str::to_string)
            .unwrap_or_else(|| target_name(&table.schema)),
        target_name(&table.name),
    )
}

/// Oracle's own folding of a name written in SQL text: unquoted names are
/// upper-cased, `"quoted"` names keep their spelling (without the quotes).
pub fn fold_written_name(written: &str) -> String {
    match written.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => written.to_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_rule() {
        assert_eq!(target_name("EMPLOYEES"), "employees");
        assert_eq!(target_name("EMP#NO$1"), "emp#no$1");
        assert_eq!(target_name("OrderLines"), "OrderLines");
        assert_eq!(target_name("my table"), "my table");
        assert_eq!(target_name("1ST"), "1ST");
        assert_eq!(target_name("ÄRGER"), "ÄRGER");
        assert_eq!(fold_written_name("employees"), "EMPLOYEES");
        assert_eq!(fold_written_name("\"Mixed\"\"Q\""), "Mixed\"Q");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_oracle("A\"B"), "\"A\"\"B\"");
        assert_eq!(
            quote_oracle_table(&TableName::new("HR", "EMPLOYEES")),
            "\"HR\".\"EMPLOYEES\""
        );
        assert_eq!(literal_oracle("it's"), "'it''s'");
    }
}
