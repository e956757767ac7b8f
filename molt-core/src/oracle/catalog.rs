//! Reading an Oracle schema: the catalog queries, and the function that
//! turns their rows into a stream [`TableHeader`].
//!
//! The queries (`*_SQL`) use only the `ALL_*` views, so the migration user
//! needs no DBA role, only `SELECT` on the tables; owner and table name are
//! bound (`:1`, `:2`), never pasted. They need Oracle 12.2 or later
//! (`SEARCH_CONDITION_VC`, `ALL_TAB_IDENTITY_COLS`, `IDENTITY_COLUMN`).
//!
//! The rows are plain structs, so [`build_table`], where every decision is
//! made (names, types, keys, constraints), is tested without a server.
//! Names on the target follow [`super::ident::target_name`]; foreign keys,
//! indexes and sequences refer to target names.

use super::ident::{target_name, target_table};
use super::types::{map_column, MapError, MapOptions, Mapped, OracleColumn};
use crate::stream::{
    Check, Column, ForeignKey, Generation, Index, Sequence, Shard, Slice, TableHeader, TableName,
};

/// Tables of an owner: `:1` owner. Skips the recycle bin, nested tables,
/// secondary (domain index) tables and IOT overflow segments.
pub const TABLES_SQL: &str =
    "SELECT t.table_name, t.num_rows, t.partitioned, t.iot_type, t.temporary \
FROM all_tables t \
WHERE t.owner = :1 AND t.nested = 'NO' AND t.secondary = 'N' AND t.dropped = 'NO' \
AND (t.iot_type IS NULL OR t.iot_type = 'IOT') \
ORDER BY t.table_name";

/// One table: `:1` owner, `:2` table.
pub const TABLE_SQL: &str =
    "SELECT t.table_name, t.num_rows, t.partitioned, t.iot_type, t.temporary \
FROM all_tables t WHERE t.owner = :1 AND t.table_name = :2";

/// Columns, in order, with hidden and system-generated ones left out:
/// `:1` owner, `:2` table. Columns read in this order into
/// [`OracleColumn`] (`DATA_DEFAULT` is a LONG: fetch it as text).
pub const COLUMNS_SQL: &str =
    "SELECT c.column_name, c.data_type, c.data_type_owner, c.data_length, \
c.data_precision, c.data_scale, c.char_used, c.char_length, c.nullable, c.data_default, \
c.virtual_column, c.identity_column \
FROM all_tab_cols c \
WHERE c.owner = :1 AND c.table_name = :2 AND c.hidden_column = 'NO' AND c.user_generated = 'YES' \
ORDER BY c.column_id";

/// Primary key, unique, foreign key and check constraints with their
/// columns, and for a foreign key the referenced table and columns paired
/// by position: `:1` owner, `:2` table. Columns as [`ConstraintRow`].
pub const CONSTRAINTS_SQL: &str =
    "SELECT c.constraint_name, c.constraint_type, c.search_condition_vc, \
c.delete_rule, c.status, cc.column_name, cc.position, r.owner, r.table_name, rc.column_name \
FROM all_constraints c \
LEFT JOIN all_cons_columns cc ON cc.owner = c.owner AND cc.constraint_name = c.constraint_name \
AND cc.table_name = c.table_name \
LEFT JOIN all_constraints r ON r.owner = c.r_owner AND r.constraint_name = c.r_constraint_name \
LEFT JOIN all_cons_columns rc ON rc.owner = r.owner AND rc.constraint_name = r.constraint_name \
AND rc.position = cc.position \
WHERE c.owner = :1 AND c.table_name = :2 AND c.constraint_type IN ('P', 'U', 'R', 'C') \
ORDER BY c.constraint_name, cc.position";

/// Indexes with their columns (and the expression of a function-based
/// key column, a LONG: fetch it as text): `:1` owner, `:2` table. Columns
/// as [`IndexRow`].
pub const INDEXES_SQL: &str = "SELECT i.index_name, i.index_type, i.uniqueness, ic.column_name, \
ic.column_position, ic.descend, ie.column_expression \
FROM all_indexes i \
JOIN all_ind_columns ic ON ic.index_owner = i.owner AND ic.index_name = i.index_name \
LEFT JOIN all_ind_expressions ie ON ie.index_owner = ic.index_owner AND ie.index_name = ic.index_name \
AND ie.column_position = ic.column_position \
WHERE i.table_owner = :1 AND i.table_name = :2 AND i.index_type <> 'LOB' \
ORDER BY i.index_name, ic.column_position";

/// Identity columns and their sequences' next value: `:1` owner, `:2`
/// table. `LAST_NUMBER` is the next value not yet cached, so it is at or
/// above every value handed out: a safe start for the target sequence.
pub const IDENTITY_SQL: &str = "SELECT i.column_name, i.generation_type, i.sequence_name, \
TO_CHAR(s.last_number) \
FROM all_tab_identity_cols i \
LEFT JOIN all_sequences s ON s.sequence_owner = i.owner AND s.sequence_name = i.sequence_name \
WHERE i.owner = :1 AND i.table_name = :2";

/// A row of [`TABLES_SQL`] / [`TABLE_SQL`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableRow {
    pub owner: String,
    pub name: String,
    pub num_rows: Option<u64>,
    pub partitioned: bool,
    /// `IOT_TYPE = 'IOT'` (index-organized).
    pub iot: bool,
    /// A global temporary table.
    pub temporary: bool,
}

/// A row of [`CONSTRAINTS_SQL`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConstraintRow {
    pub name: String,
    /// `P`, `U`, `R` or `C`.
    pub constraint_type: String,
    pub search_condition: Option<String>,
    /// `CASCADE`, `SET NULL`, `NO ACTION` (foreign keys).
    pub delete_rule: Option<String>,
    /// `ENABLED` or `DISABLED`.
    pub status: Option<String>,
    pub column: Option<String>,
    pub position: Option<u32>,
    pub ref_owner: Option<String>,
    pub ref_table: Option<String>,
    pub ref_column: Option<String>,
}

/// A row of [`INDEXES_SQL`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IndexRow {
    pub name: String,
    /// `NORMAL`, `BITMAP`, `FUNCTION-BASED NORMAL`, `IOT - TOP`...
    pub index_type: String,
    /// `UNIQUE` or `NONUNIQUE`.
    pub uniqueness: String,
    pub column: String,
    pub position: u32,
    /// `ASC` or `DESC`.
    pub descend: String,
    /// The key expression of a function-based (or DESC) key column.
    pub expression: Option<String>,
}

/// A row of [`IDENTITY_SQL`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IdentityRow {
    pub column: String,
    /// `ALWAYS` or `BY DEFAULT`.
    pub generation_type: String,
    pub sequence_name: Option<String>,
    pub next_value: Option<String>,
}

/// How a schema lands on the target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildOptions {
    pub map: MapOptions,
    /// Put every table in this target schema instead of one per owner.
    pub target_schema: Option<String>,
}

/// A table ready to dump: its stream header, and per column the source
/// column and its mapping (in header order).
#[derive(Clone, Debug, PartialEq)]
pub struct OracleTable {
    pub header: TableHeader,
    pub source_columns: Vec<OracleColumn>,
    pub mapped: Vec<Mapped>,
}

impl OracleTable {
    /// Source names of the primary-key columns, in key order.
    pub fn key_source_names(&self) -> Vec<&str> {
        let mut key: Vec<(u16, &str)> = self
            .header
            .columns
            .iter()
            .zip(&self.source_columns)
            .filter_map(|(c, s)| c.pk.map(|p| (p, s.name.as_str())))
            .collect();
        key.sort();
        key.into_iter().map(|(_, n)| n).collect()
    }

    /// The select list molt-dump reads, through alias `t`: one or two
    /// expressions per column (see [`super::ReadKind::select_exprs`]).
    pub fn select_list(&self) -> Vec<String> {
        self.source_columns
            .iter()
            .zip(&self.mapped)
            .flat_map(|(c, m)| m.read.select_exprs(c, "t"))
            .collect()
    }

    /// The source column whose target name is `target`.
    pub fn source_column(&self, target: &str) -> Option<&OracleColumn> {
        let i = self.header.columns.iter().position(|c| c.name == target)?;
        self.source_columns.get(i)
    }
}

/// The column a check `col IS JSON [...]` constrains, as stored in the
/// catalog (unquoted names upper-cased), or `None` for any other check.
pub fn is_json_check(condition: &str) -> Option<String> {
    let mut s = condition.trim();
    while let Some(inner) = s.strip_prefix('(') {
        s = inner.trim_start();
    }
    let (name, rest) = if let Some(quoted) = s.strip_prefix('"') {
        let end = quoted.find('"')?;
        (quoted[..end].to_string(), &quoted[end + 1..])
    } else {
        let end = s
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '$' | '#')))
            .unwrap_or(s.len());
        if end == 0 {
            return None;
        }
        (s[..end].to_uppercase(), &s[end..])
    };
    let words: Vec<String> = rest
        .split_whitespace()
        .take(2)
        .map(|w| w.to_ascii_uppercase())
        .collect();
    let json_word = words.get(1).map(|w| w.trim_end_matches([')', '(']));
    (words.first().map(String::as_str) == Some("IS") && json_word == Some("JSON")).then_some(name)
}

/// A NOT NULL check as Oracle records it (`"COL" IS NOT NULL`): carried by
/// the column's `nullable`, so not as a check.
fn is_not_null_check(condition: &str) -> bool {
    let s = condition.trim();
    let Some(quoted) = s.strip_prefix('"') else {
        return false;
    };
    let Some(end) = quoted.find('"') else {
        return false;
    };
    quoted[end + 1..]
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect::<Vec<_>>()
        == ["IS", "NOT", "NULL"]
}

/// A column default that means the same on the target, when there is one:
/// numbers, string literals, and the current date and time.
pub fn portable_default(default: &str) -> Option<String> {
    let d = default.trim();
    let upper = d.to_ascii_uppercase();
    match upper.as_str() {
        "SYSDATE" | "CURRENT_DATE" => return Some("localtimestamp(0)".into()),
        "SYSTIMESTAMP" | "CURRENT_TIMESTAMP" => return Some("current_timestamp".into()),
        "LOCALTIMESTAMP" => return Some("localtimestamp".into()),
        "NULL" => return None,
        _ => {}
    }
    let numeric = {
        let body = d.strip_prefix('-').unwrap_or(d);
        !body.is_empty()
            && body.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && body.bytes().filter(|&b| b == b'.').count() <= 1
    };
    let literal = d.len() >= 2
        && d.starts_with('\'')
        && d.ends_with('\'')
        && !d[1..d.len() - 1].replace("''", "").contains('\'');
    // '' is NULL in Oracle: a '' default is no default.
    (numeric || (literal && d != "''")).then(|| d.to_string())
}

/// Turns one table's catalog rows into its stream header and column
/// mappings. `columns` come from [`COLUMNS_SQL`]; `identity` and `is_json`
/// are filled in here from the other rows.
pub fn build_table(
    table: &TableRow,
    mut columns: Vec<OracleColumn>,
    constraints: &[ConstraintRow],
    indexes: &[IndexRow],
    identities: &[IdentityRow],
    opts: &BuildOptions,
) -> Result<OracleTable, MapError> {
    let source = TableName::new(&table.owner, &table.name);
    let target = target_table(&source, opts.target_schema.as_deref());
    let enabled = |c: &&ConstraintRow| c.status.as_deref() != Some("DISABLED");

    // IS JSON checks mark their column; they are not carried as checks
    // (JSONB enforces them).
    let mut json_checks = Vec::new();
    for c in constraints
        .iter()
        .filter(|c| c.constraint_type == "C")
        .filter(enabled)
    {
        if let Some(col) = c.search_condition.as_deref().and_then(is_json_check) {
            json_checks.push(c.name.clone());
            if let Some(column) = columns.iter_mut().find(|x| x.name == col) {
                column.is_json = true;
            }
        }
    }
    for column in &mut columns {
        if identities.iter().any(|i| i.column == column.name) {
            column.identity = true;
        }
    }

    let pk_rows: Vec<&ConstraintRow> = constraints
        .iter()
        .filter(|c| c.constraint_type == "P")
        .collect();
    let pk_name = pk_rows.first().map(|c| c.name.clone());
    let mut pk_cols: Vec<(u32, String)> = pk_rows
        .iter()
        .filter_map(|c| Some((c.position.unwrap_or(0), c.column.clone()?)))
        .collect();
    pk_cols.sort();
    let pk_cols: Vec<String> = pk_cols.into_iter().map(|(_, c)| c).collect();

    let mut header_columns = Vec::with_capacity(columns.len());
    let mut mapped_all = Vec::with_capacity(columns.len());
    let mut sequences = Vec::new();
    let mut notes = Vec::new();
    for col in &columns {
        let mapped = map_column(&source, col, &opts.map)?;
        let name = target_name(&col.name);
        let generation = if col.identity {
            let id = identities.iter().find(|i| i.column == col.name);
            sequences.push(Sequence {
                name: id
                    .and_then(|i| i.sequence_name.clone())
                    .map(|s| TableName::new(&table.owner, s)),
                column: name.clone(),
                next_value: id.and_then(|i| i.next_value.clone()),
            });
            Some(Generation::Identity)
        } else if col.virtual_column {
            Some(Generation::Generated {
                expression: col
                    .data_default
                    .clone()
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
                stored: false,
            })
        } else {
            None
        };
        let default = if col.identity || col.virtual_column {
            None
        } else {
            col.data_default
                .as_deref()
                .map(str::trim)
                .filter(|d| !d.is_empty() && !d.eq_ignore_ascii_case("NULL"))
                .map(str::to_string)
        };
        header_columns.push(Column {
            name,
            source_type: col.declared_type(),
            target_type: mapped.target_type.clone(),
            logical: mapped.logical,
            array_dims: 0,
            nullable: col.nullable,
            pk: pk_cols
                .iter()
                .position(|k| k == &col.name)
                .map(|p| p as u16 + 1),
            target_default: default.as_deref().and_then(portable_default),
            default,
            enum_type: None,
            domain: None,
            charset: None,
            collation: None,
            generation,
            padded: mapped.padded,
        });
        mapped_all.push(mapped);
    }

    // Unique constraints and foreign keys, grouped by name (rows come
    // ordered by name and position).
    let mut unique: Vec<Index> = Vec::new();
    let mut foreign_keys: Vec<ForeignKey> = Vec::new();
    let mut checks: Vec<Check> = Vec::new();
    for c in constraints.iter().filter(enabled) {
        let name = target_name(&c.name);
        match c.constraint_type.as_str() {
            "U" => {
                let col = c.column.as_deref().map(target_name).unwrap_or_default();
                match unique.iter_mut().find(|u| u.name == name) {
                    Some(u) => u.columns.push(col),
                    None => unique.push(Index {
                        name,
                        columns: vec![col],
                        unique: true,
                        constraint: true,
                        ..empty_index()
                    }),
                }
            }
            "R" => {
                let col = c.column.as_deref().map(target_name).unwrap_or_default();
                let ref_col = c.ref_column.as_deref().map(target_name).unwrap_or_default();
                match foreign_keys.iter_mut().find(|f| f.name == name) {
                    Some(f) => {
                        f.columns.push(col);
                        f.referenced_columns.push(ref_col);
                    }
                    None => {
                        let referenced = TableName::new(
                            c.ref_owner.clone().unwrap_or_else(|| table.owner.clone()),
                            c.ref_table.clone().unwrap_or_default(),
                        );
                        foreign_keys.push(ForeignKey {
                            name,
                            columns: vec![col],
                            references: target_table(&referenced, opts.target_schema.as_deref()),
                            referenced_columns: vec![ref_col],
                            on_delete: c.delete_rule.clone().filter(|r| r != "NO ACTION"),
                            on_update: None,
                        })
                    }
                }
            }
            "C" => {
                let Some(cond) = c.search_condition.as_deref() else {
                    continue;
                };
                if is_not_null_check(cond)
                    || json_checks.contains(&c.name)
                    || checks.iter().any(|k| k.name == name)
                {
                    continue;
                }
                checks.push(Check {
                    name,
                    expression: cond.trim().to_string(),
                });
            }
            _ => {}
        }
    }
    for c in constraints
        .iter()
        .filter(|c| c.status.as_deref() == Some("DISABLED"))
    {
        if !notes.iter().any(|n: &String| n.contains(&c.name)) {
            notes.push(format!(
                "constraint {} is disabled on the source and is not carried",
                c.name
            ));
        }
    }

    // Secondary indexes: not the ones that back the primary key or a
    // unique constraint (they are created with those).
    let mut secondary: Vec<Index> = Vec::new();
    for row in indexes {
        let name = target_name(&row.name);
        let backs_constraint = Some(&row.name) == pk_name.as_ref()
            || constraints
                .iter()
                .any(|c| c.constraint_type == "U" && c.name == row.name);
        if backs_constraint || row.index_type.starts_with("IOT") {
            continue;
        }
        let key = match row.expression.as_deref().map(str::trim) {
            // A DESC key column is stored as the expression "COL".
            Some(e) if e.starts_with('"') && e.ends_with('"') && e.len() > 2 => {
                target_name(&e[1..e.len() - 1])
            }
            Some(e) => e.to_string(),
            None => target_name(&row.column),
        };
        let key = if row.descend == "DESC" {
            format!("{key} DESC")
        } else {
            key
        };
        match secondary.iter_mut().find(|i| i.name == name) {
            Some(i) => i.columns.push(key),
            None => secondary.push(Index {
                name,
                columns: vec![key],
                unique: row.uniqueness == "UNIQUE",
                method: row
                    .index_type
                    .contains("BITMAP")
                    .then(|| "bitmap".to_string()),
                ..empty_index()
            }),
        }
    }
    // An index on exactly the primary key columns is the key itself.
    let pk_target: Vec<String> = pk_cols.iter().map(|c| target_name(c)).collect();
    secondary.retain(|i| i.columns != pk_target);
    for i in secondary.iter().filter(|i| i.method.is_some()) {
        notes.push(format!(
            "index {} is a bitmap index on the source; created as a plain index",
            i.name
        ));
    }
    for i in &mut secondary {
        i.method = None;
    }

    if table.partitioned {
        notes.push("partitioned on the source".into());
    }
    if table.iot {
        notes.push("index-organized table on the source".into());
    }
    if table.temporary {
        notes.push(
            "global temporary table on the source (its rows are per session: nothing to migrate)"
                .into(),
        );
    }
    let mut indexes_out = unique;
    indexes_out.extend(secondary);
    Ok(OracleTable {
        header: TableHeader {
            table: source.clone(),
            target: Some(target),
            columns: header_columns,
            slice: Slice {
                phase: String::new(),
                table: source,
                filter: None,
                target_filter: None,
                shard: Shard::whole(),
            },
            indexes: indexes_out,
            foreign_keys,
            checks,
            sequences,
            estimated_rows: table.num_rows,
            notes,
            checksum: None,
        },
        source_columns: columns,
        mapped: mapped_all,
    })
}

fn empty_index() -> Index {
    Index {
        name: String::new(),
        columns: Vec::new(),
        unique: false,
        constraint: false,
        predicate: None,
        method: None,
        definition: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_not_null_checks() {
        assert_eq!(
            is_json_check(" product_details is json "),
            Some("PRODUCT_DETAILS".into())
        );
        assert_eq!(
            is_json_check("(\"Doc\" IS JSON (STRICT))"),
            Some("Doc".into())
        );
        assert_eq!(is_json_check("doc IS JSON FORMAT JSON"), Some("DOC".into()));
        assert_eq!(is_json_check("salary > 0"), None);
        assert_eq!(is_json_check("x is not json"), None);
        assert!(is_not_null_check("\"EMAIL\" IS NOT NULL"));
        assert!(!is_not_null_check("\"A\" IS NOT NULL OR \"B\" IS NOT NULL"));
    }

    #[test]
    fn defaults() {
        assert_eq!(
            portable_default("SYSDATE ").as_deref(),
            Some("localtimestamp(0)")
        );
        assert_eq!(portable_default("'OPEN'").as_deref(), Some("'OPEN'"));
        assert_eq!(portable_default("-1.5").as_deref(), Some("-1.5"));
        assert_eq!(portable_default("''"), None);
        assert_eq!(portable_default("SYS_GUID()"), None);
    }
}
