//! A tolerant reader of Oracle DDL scripts: `CREATE TABLE` column lists and
//! their constraints (inline, and added by `ALTER TABLE ... ADD`), turned
//! into the same catalog rows the live catalog queries give.
//!
//! It exists so that a schema can be mapped without a server: to review
//! the target types of a script before a migration, and to test the type
//! mapping on real-world schemas (Oracle's HR and CO samples, Chinook). It
//! is not a SQL parser: statements it does not understand (views, PL/SQL,
//! SQL*Plus commands) are skipped, and within a table only what the
//! catalog would report is read (names, types, NOT NULL, defaults,
//! identity, PRIMARY KEY / UNIQUE / FOREIGN KEY / CHECK).

use super::catalog::{
    build_table, BuildOptions, ConstraintRow, IdentityRow, OracleTable, TableRow,
};
use super::ident::fold_written_name;
use super::types::{MapError, OracleColumn};

/// One table of a script, as catalog rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DdlTable {
    /// As the catalog stores it (unquoted names upper-cased).
    pub name: String,
    pub columns: Vec<OracleColumn>,
    pub constraints: Vec<ConstraintRow>,
    pub identities: Vec<IdentityRow>,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Str(String),
    Punct(char),
}

fn tokenize(sql: &str) -> Vec<Tok> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '\'' || c == '"' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == c {
                    if chars.get(i + 1) == Some(&c) {
                        s.push(c);
                        i += 2;
                        continue;
                    }
                    break;
                }
                s.push(chars[i]);
                i += 1;
            }
            i += 1;
            out.push(if c == '"' {
                Tok::Quoted(s)
            } else {
                Tok::Str(s)
            });
        } else if c.is_alphanumeric() || matches!(c, '_' | '$' | '#') {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '$' | '#' | '.'))
            {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    out
}

/// Statements of a script: split at `;` outside quotes, SQL*Plus lines
/// (`REM`, `PROMPT`, `SET`, `/`) dropped first.
fn statements(script: &str) -> Vec<Vec<Tok>> {
    let cleaned: String = script
        .lines()
        .filter(|l| {
            let w = l
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            !matches!(
                w.as_str(),
                "REM" | "PROMPT" | "SET" | "/" | "CONNECT" | "SPOOL" | "@" | "EXIT"
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for t in tokenize(&cleaned) {
        if t == Tok::Punct(';') {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(t);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn word(t: Option<&Tok>) -> Option<String> {
    match t {
        Some(Tok::Word(w)) => Some(w.to_ascii_uppercase()),
        _ => None,
    }
}

fn name_of(t: &Tok) -> Option<String> {
    match t {
        Tok::Word(w) => Some(fold_written_name(w.rsplit('.').next().unwrap_or(w))),
        Tok::Quoted(q) => Some(q.clone()),
        _ => None,
    }
}

/// Splits the tokens inside the parentheses opening at `open` at top-level
/// commas. Returns the parts and the index after the closing parenthesis.
fn paren_items(toks: &[Tok], open: usize) -> (Vec<Vec<Tok>>, usize) {
    let mut depth = 0;
    let mut items = vec![Vec::new()];
    let mut i = open;
    while i < toks.len() {
        match &toks[i] {
            Tok::Punct('(') => {
                depth += 1;
                if depth > 1 {
                    items.last_mut().expect("item").push(toks[i].clone());
                }
            }
            Tok::Punct(')') => {
                depth -= 1;
                if depth == 0 {
                    return (items, i + 1);
                }
                items.last_mut().expect("item").push(toks[i].clone());
            }
            Tok::Punct(',') if depth == 1 => items.push(Vec::new()),
            t => items.last_mut().expect("item").push(t.clone()),
        }
        i += 1;
    }
    (items, i)
}

fn names_in_parens(toks: &[Tok], open: usize) -> (Vec<String>, usize) {
    let (items, next) = paren_items(toks, open);
    (
        items
            .iter()
            .filter_map(|it| it.first().and_then(name_of))
            .collect(),
        next,
    )
}

fn text_of(toks: &[Tok]) -> String {
    let mut out = String::new();
    for t in toks {
        let piece = match t {
            Tok::Word(w) => w.clone(),
            Tok::Quoted(q) => format!("\"{}\"", q.replace('"', "\"\"")),
            Tok::Str(s) => format!("'{}'", s.replace('\'', "''")),
            Tok::Punct(c) => c.to_string(),
        };
        let glue = !out.is_empty()
            && !out.ends_with('(')
            && !matches!(t, Tok::Punct(')') | Tok::Punct(','))
            && !matches!(t, Tok::Punct('(') if out.ends_with(|c: char| c.is_alphanumeric()));
        if glue {
            out.push(' ');
        }
        out.push_str(&piece);
    }
    out
}

/// A declared type (`NUMBER(8,2)`, `VARCHAR2(255 CHAR)`, `TIMESTAMP WITH
/// TIME ZONE`, `INTEGER`) as the catalog describes it. Returns the column
/// fields and how many tokens the type used.
fn parse_type(toks: &[Tok]) -> (OracleColumn, usize) {
    let mut col = OracleColumn {
        nullable: true,
        ..Default::default()
    };
    let Some(first) = word(toks.first()) else {
        return (col, 0);
    };
    let (owner, base) = match first.rsplit_once('.') {
        Some((o, b)) => (Some(o.to_string()), b.to_string()),
        None => (None, first.clone()),
    };
    let mut i = 1;
    let args = |i: &mut usize| -> Vec<String> {
        if toks.get(*i) != Some(&Tok::Punct('(')) {
            return Vec::new();
        }
        let (items, next) = paren_items(toks, *i);
        *i = next;
        items
            .iter()
            .map(|it| text_of(it).to_ascii_uppercase())
            .collect()
    };
    let num = |s: Option<&String>| {
        s.and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse::<i64>().ok())
    };
    match base.as_str() {
        "NUMBER" | "DECIMAL" | "NUMERIC" | "DEC" => {
            let a = args(&mut i);
            col.data_type = "NUMBER".into();
            let p = num(a.first()).map(|p| p as u32);
            let s = num(a.get(1)).map(|s| s as i32);
            (col.data_precision, col.data_scale) = match (a.first(), base.as_str()) {
                (None, "NUMBER") => (None, None),
                (None, _) => (Some(38), Some(0)),
                (Some(_), _) => (p, Some(s.unwrap_or(0))),
            };
        }
        "INTEGER" | "INT" | "SMALLINT" => {
            col.data_type = "NUMBER".into();
            col.data_scale = Some(0);
        }
        "FLOAT" => {
            let a = args(&mut i);
            col.data_type = "FLOAT".into();
            col.data_precision = Some(num(a.first()).unwrap_or(126) as u32);
        }
        "REAL" => {
            col.data_type = "FLOAT".into();
            col.data_precision = Some(63);
        }
        "DOUBLE" => {
            if word(toks.get(1)).as_deref() == Some("PRECISION") {
                i += 1;
            }
            col.data_type = "FLOAT".into();
            col.data_precision = Some(126);
        }
        "VARCHAR2" | "VARCHAR" | "CHAR" | "CHARACTER" | "NVARCHAR2" | "NCHAR" | "RAW" => {
            let a = args(&mut i);
            let n = num(a.first()).unwrap_or(1) as u32;
            let national = base.starts_with('N');
            let chars = national || a.first().is_some_and(|s| s.ends_with("CHAR"));
            col.data_type = match base.as_str() {
                "VARCHAR" => "VARCHAR2".into(),
                "CHARACTER" => "CHAR".into(),
                b => b.to_string(),
            };
            col.data_length = Some(n);
            if base != "RAW" {
                col.char_length = Some(n);
                col.char_used = Some(if chars { "C" } else { "B" }.into());
            }
        }
        "LONG" => {
            col.data_type = if word(toks.get(1)).as_deref() == Some("RAW") {
                i += 1;
                "LONG RAW".into()
            } else {
                "LONG".into()
            };
        }
        "TIMESTAMP" => {
            let a = args(&mut i);
            let p = num(a.first()).unwrap_or(6);
            let mut zone = String::new();
            if word(toks.get(i)).as_deref() == Some("WITH") {
                let local = word(toks.get(i + 1)).as_deref() == Some("LOCAL");
                zone = if local {
                    " WITH LOCAL TIME ZONE".into()
                } else {
                    " WITH TIME ZONE".into()
                };
                i += if local { 4 } else { 3 };
            }
            col.data_type = format!("TIMESTAMP({p}){zone}");
            col.data_scale = Some(p as i32);
        }
        "INTERVAL" => {
            let unit = word(toks.get(1)).unwrap_or_default();
            i = 2;
            let lead = num(args(&mut i).first()).unwrap_or(2);
            i += 2; // TO MONTH / TO SECOND
            if unit == "DAY" {
                let frac = num(args(&mut i).first()).unwrap_or(6);
                col.data_type = format!("INTERVAL DAY({lead}) TO SECOND({frac})");
            } else {
                col.data_type = format!("INTERVAL YEAR({lead}) TO MONTH");
            }
        }
        _ => {
            col.data_type = base.clone();
            col.data_type_owner = match (owner, base.as_str()) {
                (Some(o), _) => Some(o),
                (None, "SDO_GEOMETRY") => Some("MDSYS".into()),
                (None, "XMLTYPE") => Some("SYS".into()),
                _ => None,
            };
            let _ = args(&mut i);
        }
    }
    (col, i)
}

const COLUMN_KEYWORDS: &[&str] = &[
    "CONSTRAINT",
    "NOT",
    "NULL",
    "DEFAULT",
    "GENERATED",
    "PRIMARY",
    "UNIQUE",
    "REFERENCES",
    "CHECK",
    "ENABLE",
    "DISABLE",
    "COLLATE",
    "VISIBLE",
    "INVISIBLE",
    "AS",
    "ENCRYPT",
    "SORT",
];

/// A table-level constraint (`CONSTRAINT n PRIMARY KEY (...)`, `UNIQUE
/// (...)`, `FOREIGN KEY ... REFERENCES`, `CHECK (...)`) as catalog rows.
/// `column` is the column of an inline (column-level) constraint.
fn parse_constraint(
    toks: &[Tok],
    table: &str,
    column: Option<&str>,
    seq: &mut usize,
) -> Vec<ConstraintRow> {
    let mut i = 0;
    let mut name = None;
    if word(toks.first()).as_deref() == Some("CONSTRAINT") {
        name = toks.get(1).and_then(name_of);
        i = 2;
    }
    let mut auto_name = |kind: &str| {
        *seq += 1;
        format!("SYS_C_{table}_{kind}{seq}")
    };
    let kind = word(toks.get(i)).unwrap_or_default();
    let row = |name: &str, ty: &str, col: Option<String>, pos: u32| ConstraintRow {
        name: name.to_string(),
        constraint_type: ty.into(),
        status: Some("ENABLED".into()),
        column: col,
        position: Some(pos),
        ..Default::default()
    };
    let cols_at = |j: usize| -> (Vec<String>, usize) {
        if toks.get(j) == Some(&Tok::Punct('(')) {
            names_in_parens(toks, j)
        } else {
            (column.map(|c| vec![c.to_string()]).unwrap_or_default(), j)
        }
    };
    match kind.as_str() {
        "PRIMARY" | "UNIQUE" => {
            let ty = if kind == "PRIMARY" { "P" } else { "U" };
            let j = if kind == "PRIMARY" { i + 2 } else { i + 1 };
            let (cols, _) = cols_at(j);
            let name = name.unwrap_or_else(|| auto_name(ty));
            cols.into_iter()
                .enumerate()
                .map(|(p, c)| row(&name, ty, Some(c), p as u32 + 1))
                .collect()
        }
        "FOREIGN" | "REFERENCES" => {
            let (cols, mut j) = if kind == "FOREIGN" {
                cols_at(i + 2)
            } else {
                cols_at(usize::MAX)
            };
            if kind == "REFERENCES" {
                j = i;
            }
            let ref_table = toks.get(j + 1).and_then(|t| match t {
                Tok::Word(w) => Some(fold_written_name(w.rsplit('.').next().unwrap_or(w))),
                other => name_of(other),
            });
            let (ref_cols, next) = if toks.get(j + 2) == Some(&Tok::Punct('(')) {
                names_in_parens(toks, j + 2)
            } else {
                (Vec::new(), j + 2)
            };
            let delete_rule = match (
                word(toks.get(next)).as_deref(),
                word(toks.get(next + 2)).as_deref(),
            ) {
                (Some("ON"), Some("CASCADE")) => "CASCADE",
                (Some("ON"), Some("SET")) => "SET NULL",
                _ => "NO ACTION",
            };
            let name = name.unwrap_or_else(|| auto_name("R"));
            cols.into_iter()
                .enumerate()
                .map(|(p, c)| ConstraintRow {
                    ref_table: ref_table.clone(),
                    ref_column: ref_cols.get(p).cloned(),
                    delete_rule: Some(delete_rule.into()),
                    ..row(&name, "R", Some(c), p as u32 + 1)
                })
                .collect()
        }
        "CHECK" => {
            let (items, _) = paren_items(toks, i + 1);
            let cond = items
                .iter()
                .map(|it| text_of(it))
                .collect::<Vec<_>>()
                .join(", ");
            let name = name.unwrap_or_else(|| auto_name("C"));
            vec![ConstraintRow {
                search_condition: Some(cond),
                ..row(&name, "C", column.map(str::to_string), 1)
            }]
        }
        "NOT" if column.is_some() => {
            let name = name.unwrap_or_else(|| auto_name("C"));
            let cond = format!("\"{}\" IS NOT NULL", column.unwrap_or_default());
            vec![ConstraintRow {
                search_condition: Some(cond),
                ..row(&name, "C", column.map(str::to_string), 1)
            }]
        }
        _ => Vec::new(),
    }
}

/// Reads every `CREATE TABLE` of a script, with the constraints of later
/// `ALTER TABLE ... ADD` statements. Foreign keys that name no referenced
/// columns get the referenced table's primary key.
pub fn parse_ddl(script: &str) -> Vec<DdlTable> {
    let mut tables: Vec<DdlTable> = Vec::new();
    let mut seq = 0;
    for st in statements(script) {
        let w0 = word(st.first()).unwrap_or_default();
        let w1 = word(st.get(1)).unwrap_or_default();
        if w0 == "CREATE" {
            // CREATE [GLOBAL TEMPORARY] TABLE name ( ... )
            let Some(pos) = st
                .iter()
                .position(|t| word(Some(t)).as_deref() == Some("TABLE"))
            else {
                continue;
            };
            if pos > 4
                || st
                    .iter()
                    .take(pos)
                    .any(|t| matches!(word(Some(t)).as_deref(), Some("VIEW" | "INDEX")))
            {
                continue;
            }
            let Some(name) = st.get(pos + 1).and_then(name_of) else {
                continue;
            };
            let Some(open) = st
                .iter()
                .skip(pos + 2)
                .position(|t| *t == Tok::Punct('('))
                .map(|p| p + pos + 2)
            else {
                continue;
            };
            let (items, _) = paren_items(&st, open);
            let mut table = DdlTable {
                name: name.clone(),
                ..Default::default()
            };
            for item in items.iter().filter(|it| !it.is_empty()) {
                let head = word(item.first()).unwrap_or_default();
                if matches!(
                    head.as_str(),
                    "CONSTRAINT" | "PRIMARY" | "UNIQUE" | "FOREIGN" | "CHECK"
                ) {
                    table
                        .constraints
                        .extend(parse_constraint(item, &name, None, &mut seq));
                    continue;
                }
                let Some(col_name) = item.first().and_then(name_of) else {
                    continue;
                };
                let (mut col, used) = parse_type(&item[1..]);
                col.name = col_name.clone();
                // Column-level clauses, split at CONSTRAINT / NOT / DEFAULT...
                let rest = &item[1 + used..];
                let mut j = 0;
                while j < rest.len() {
                    let w = word(rest.get(j)).unwrap_or_default();
                    match w.as_str() {
                        "NOT" if word(rest.get(j + 1)).as_deref() == Some("NULL") => {
                            col.nullable = false;
                            j += 2;
                        }
                        "DEFAULT" => {
                            let end = (j + 1..rest.len())
                                .find(|&k| {
                                    word(rest.get(k)).is_some_and(|w| {
                                        COLUMN_KEYWORDS.contains(&w.as_str()) && w != "NULL"
                                    })
                                })
                                .unwrap_or(rest.len());
                            let mut text_toks = &rest[j + 1..end];
                            if word(text_toks.first()).as_deref() == Some("ON") {
                                text_toks = &text_toks[text_toks.len().min(2)..];
                            }
                            col.data_default = Some(text_of(text_toks));
                            j = end;
                        }
                        "GENERATED" => {
                            let end = (j..rest.len())
                                .find(|&k| word(rest.get(k)).as_deref() == Some("IDENTITY"));
                            if let Some(end) = end {
                                let always = word(rest.get(j + 1)).as_deref() == Some("ALWAYS");
                                table.identities.push(IdentityRow {
                                    column: col_name.clone(),
                                    generation_type: if always { "ALWAYS" } else { "BY DEFAULT" }
                                        .into(),
                                    sequence_name: None,
                                    next_value: None,
                                });
                                col.identity = true;
                                col.nullable = false;
                                j = end + 1;
                            } else {
                                // GENERATED ALWAYS AS (expr) VIRTUAL
                                col.virtual_column = true;
                                let open = (j..rest.len()).find(|&k| rest[k] == Tok::Punct('('));
                                if let Some(open) = open {
                                    let (items, next) = paren_items(rest, open);
                                    col.data_default = Some(
                                        items
                                            .iter()
                                            .map(|it| text_of(it))
                                            .collect::<Vec<_>>()
                                            .join(", "),
                                    );
                                    j = next;
                                } else {
                                    j += 1;
                                }
                            }
                        }
                        "AS" if rest.get(j + 1) == Some(&Tok::Punct('(')) => {
                            col.virtual_column = true;
                            let (items, next) = paren_items(rest, j + 1);
                            col.data_default = Some(
                                items
                                    .iter()
                                    .map(|it| text_of(it))
                                    .collect::<Vec<_>>()
                                    .join(", "),
                            );
                            j = next;
                        }
                        "CONSTRAINT" | "PRIMARY" | "UNIQUE" | "REFERENCES" | "CHECK" => {
                            // The clause runs to the next CONSTRAINT (or the end).
                            let end = (j + 1..rest.len())
                                .find(|&k| word(rest.get(k)).as_deref() == Some("CONSTRAINT"))
                                .unwrap_or(rest.len());
                            let rows =
                                parse_constraint(&rest[j..end], &name, Some(&col_name), &mut seq);
                            let not_null = |r: &ConstraintRow| {
                                r.constraint_type == "P"
                                    || r.search_condition
                                        .as_deref()
                                        .is_some_and(|c| c.ends_with("IS NOT NULL"))
                            };
                            if rows.iter().any(not_null) {
                                col.nullable = false;
                            }
                            table.constraints.extend(rows);
                            j = end;
                        }
                        _ => j += 1,
                    }
                }
                table.columns.push(col);
            }
            tables.push(table);
        } else if w0 == "ALTER" && w1 == "TABLE" {
            let Some(name) = st.get(2).and_then(name_of) else {
                continue;
            };
            if word(st.get(3)).as_deref() != Some("ADD") {
                continue;
            }
            let parts: Vec<Vec<Tok>> = if st.get(4) == Some(&Tok::Punct('(')) {
                paren_items(&st, 4).0
            } else {
                vec![st[4..].to_vec()]
            };
            let mut rows = Vec::new();
            for part in parts {
                rows.extend(parse_constraint(&part, &name, None, &mut seq));
            }
            if let Some(t) = tables.iter_mut().find(|t| t.name == name) {
                for r in &rows {
                    if r.constraint_type == "P" {
                        if let Some(c) = t
                            .columns
                            .iter_mut()
                            .find(|c| Some(&c.name) == r.column.as_ref())
                        {
                            c.nullable = false;
                        }
                    }
                }
                t.constraints.extend(rows);
            }
        }
    }
    // Referenced columns default to the referenced table's primary key.
    let pks: Vec<(String, Vec<String>)> = tables
        .iter()
        .map(|t| {
            let cols = t
                .constraints
                .iter()
                .filter(|c| c.constraint_type == "P")
                .filter_map(|c| c.column.clone())
                .collect();
            (t.name.clone(), cols)
        })
        .collect();
    for t in &mut tables {
        for c in t
            .constraints
            .iter_mut()
            .filter(|c| c.constraint_type == "R" && c.ref_column.is_none())
        {
            let pk = pks
                .iter()
                .find(|(n, _)| Some(n) == c.ref_table.as_ref())
                .map(|(_, k)| k.clone())
                .unwrap_or_default();
            c.ref_column = pk.get(c.position.unwrap_or(1) as usize - 1).cloned();
        }
    }
    tables
}

/// Maps every table of a script as if it belonged to `owner`: the headers
/// molt-dump would write. The first column that cannot be mapped is an
/// error naming table and column.
pub fn map_ddl(
    script: &str,
    owner: &str,
    opts: &BuildOptions,
) -> Result<Vec<OracleTable>, MapError> {
    parse_ddl(script)
        .into_iter()
        .map(|t| {
            let row = TableRow {
                owner: owner.to_string(),
                name: t.name.clone(),
                ..Default::default()
            };
            build_table(&row, t.columns, &t.constraints, &[], &t.identities, opts)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_columns_and_constraints() {
        let script = r#"
            REM a comment line
            CREATE TABLE "Orders" ( id NUMBER(10) CONSTRAINT o_pk PRIMARY KEY,
              note VARCHAR2(20 CHAR) DEFAULT 'x' NOT NULL,
              ts TIMESTAMP(3) WITH LOCAL TIME ZONE,
              iv INTERVAL DAY(3) TO SECOND(2),
              doc CLOB, CONSTRAINT doc_json CHECK (doc IS JSON) );
            ALTER TABLE "Orders" ADD CONSTRAINT note_u UNIQUE (note);
        "#;
        let t = &parse_ddl(script)[0];
        assert_eq!(t.name, "Orders");
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["ID", "NOTE", "TS", "IV", "DOC"]);
        assert_eq!(t.columns[1].char_used.as_deref(), Some("C"));
        assert_eq!(t.columns[1].data_default.as_deref(), Some("'x'"));
        assert!(!t.columns[1].nullable);
        assert_eq!(t.columns[2].data_type, "TIMESTAMP(3) WITH LOCAL TIME ZONE");
        assert_eq!(t.columns[3].data_type, "INTERVAL DAY(3) TO SECOND(2)");
        let mapped = map_ddl(script, "APP", &BuildOptions::default()).unwrap();
        let h = &mapped[0].header;
        assert_eq!(h.columns[0].pk, Some(1));
        assert_eq!(h.columns[4].target_type, "JSONB");
        assert!(h.checks.is_empty(), "{:?}", h.checks);
        assert_eq!(h.indexes[0].name, "note_u");
    }
}
