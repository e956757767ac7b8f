//! Reading a MySQL database's schema from information_schema.
//!
//! Only information_schema, with names bound as parameters, and only the
//! columns MySQL 5.7, 8.x and MariaDB 10.x all have. Where they differ
//! (CHECK_CONSTRAINTS is missing on 5.7 and has no TABLE_NAME on MySQL 8;
//! MariaDB's JSON is a LONGTEXT with a JSON_VALID check) the server is
//! probed first.
//!
//! Names on the target: tables and columns are lower-cased unless the
//! operator keeps case (MySQL column names are case-insensitive, so the
//! folded names still work on the source), and every table lands in the one
//! target schema the operator chose. Foreign keys reference tables by their
//! target names. Index names are per table in MySQL but per schema in
//! PostgreSQL, so a name several tables share gets its table's name in front.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use super::decode::Decoder;
use super::hidden_chars;
use super::types::{map_column, RawColumn};
use super::{typemap, DbContext, DumpOptions, MysqlError};
use crate::digest::DigestColumn;
use crate::ident::{literal_pg, quote_mysql, quote_pg};
use crate::stream::{
    Check, Column, EnumType, ForeignKey, Generation, Index, Notice, Sequence, Shard, Slice,
    TableHeader, TableName,
};

/// How one column is read and written.
#[derive(Clone, Debug)]
pub struct ColumnPlan {
    /// The column's name on the source.
    pub source_name: String,
    /// What the dump SELECTs for it.
    pub select_expr: String,
    pub decoder: Decoder,
    pub digest: DigestColumn,
    /// Nullable on the target (zero dates may become NULL).
    pub nullable: bool,
}

/// Everything needed to dump one table: the header to write and how to
/// read each column.
#[derive(Clone, Debug)]
pub struct TablePlan {
    /// The section header, with a whole-table slice; [`super::dump_section`]
    /// replaces the slice with the one being dumped.
    pub header: TableHeader,
    pub columns: Vec<ColumnPlan>,
    /// Positions (in `columns`) of the primary key, in key order.
    pub key: Vec<usize>,
    /// Things the operator should know (no primary key, prefix indexes...),
    /// also kept in the header's notes.
    pub warnings: Vec<String>,
}

fn text(row: &Row, i: usize) -> Option<String> {
    match row.as_ref(i)? {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(n) => Some(n.to_string()),
        Value::UInt(n) => Some(n.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn number(row: &Row, i: usize) -> Option<u64> {
    text(row, i).and_then(|s| s.trim().parse().ok())
}

/// Facts about the server that change which queries work.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    pub version: String,
    pub mariadb: bool,
    /// CHECK_CONSTRAINTS exists (MySQL 8.0.16+, MariaDB 10.2+).
    pub has_checks: bool,
    /// CHECK_CONSTRAINTS has TABLE_NAME (MariaDB).
    pub checks_have_table: bool,
    /// Per database, the (lower-cased) index names more than one table
    /// uses, read once: per table it would read every table's indexes,
    /// quadratic in the number of tables.
    shared_index_names: SharedIndexNames,
}

type SharedIndexNames = std::sync::Arc<
    std::sync::Mutex<
        std::collections::HashMap<String, std::sync::Arc<std::collections::HashSet<String>>>,
    >,
>;

pub async fn server_info(conn: &mut Conn) -> Result<ServerInfo, MysqlError> {
    let version: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .ctx(|| "reading the server version".into())?;
    let version = version.unwrap_or_default();
    let cols: Vec<String> = conn
        .query(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = 'information_schema' AND TABLE_NAME = 'CHECK_CONSTRAINTS'",
        )
        .await
        .ctx(|| "probing information_schema.CHECK_CONSTRAINTS".into())?;
    Ok(ServerInfo {
        mariadb: version.to_ascii_lowercase().contains("mariadb"),
        version,
        has_checks: !cols.is_empty(),
        checks_have_table: cols.iter().any(|c| c.eq_ignore_ascii_case("TABLE_NAME")),
        shared_index_names: SharedIndexNames::default(),
    })
}

/// The (lower-cased) index names more than one table of `db` uses.
async fn shared_index_names(
    conn: &mut Conn,
    server: &ServerInfo,
    db: &str,
) -> Result<std::sync::Arc<std::collections::HashSet<String>>, MysqlError> {
    let cached = server
        .shared_index_names
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(db)
        .cloned();
    if let Some(names) = cached {
        return Ok(names);
    }
    let rows: Vec<(String, String)> = conn
        .exec(
            "SELECT DISTINCT CAST(TABLE_NAME AS CHAR), CAST(INDEX_NAME AS CHAR) FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND INDEX_NAME <> 'PRIMARY'",
            (db,),
        )
        .await
        .ctx(|| format!("reading the index names of database {db}"))?;
    let mut tables_by_name: std::collections::HashMap<String, std::collections::HashSet<String>> =
        std::collections::HashMap::new();
    for (table, index) in rows {
        tables_by_name
            .entry(index.to_ascii_lowercase())
            .or_default()
            .insert(table);
    }
    let shared: std::sync::Arc<std::collections::HashSet<String>> = std::sync::Arc::new(
        tables_by_name
            .into_iter()
            .filter(|(_, tables)| tables.len() > 1)
            .map(|(name, _)| name)
            .collect(),
    );
    server
        .shared_index_names
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(db.to_string(), shared.clone());
    Ok(shared)
}

/// One base table of the database, as listed.
#[derive(Clone, Debug)]
pub struct TableInfo {
    pub name: String,
    pub estimated_rows: Option<u64>,
    pub auto_increment: Option<u64>,
    pub engine: Option<String>,
    pub comment: Option<String>,
}

/// The base tables of `db`, in name order.
pub async fn list_tables(conn: &mut Conn, db: &str) -> Result<Vec<TableInfo>, MysqlError> {
    let rows: Vec<Row> = conn
        .exec(
            "SELECT TABLE_NAME, TABLE_ROWS, AUTO_INCREMENT, ENGINE, TABLE_COMMENT FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
            (db,),
        )
        .await
        .ctx(|| format!("listing the tables of database {db}"))?;
    Ok(rows
        .iter()
        .map(|r| TableInfo {
            name: text(r, 0).unwrap_or_default(),
            estimated_rows: number(r, 1),
            auto_increment: number(r, 2),
            engine: text(r, 3),
            comment: text(r, 4).filter(|c| !c.is_empty()),
        })
        .collect())
}

/// Every `(db, table, column)` of `db`'s tables, for checking the type
/// map's overrides against the source.
pub async fn list_columns(
    conn: &mut Conn,
    db: &str,
) -> Result<Vec<(String, String, String)>, MysqlError> {
    let rows: Vec<(String, String)> = conn
        .exec(
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?",
            (db,),
        )
        .await
        .ctx(|| format!("listing the columns of database {db}"))?;
    Ok(rows
        .into_iter()
        .map(|(t, c)| (db.to_string(), t, c))
        .collect())
}

/// Views, triggers, routines and events of `db`: molt migrates tables and
/// their data only, so each is reported, never silently dropped.
pub async fn not_migrated(conn: &mut Conn, db: &str) -> Result<Vec<Notice>, MysqlError> {
    let queries = [
        ("view", "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY 1"),
        // molt-cutover's own freeze triggers (molt_frz_*) are molt's, not the application's.
        ("trigger", "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME NOT LIKE 'molt\\_frz\\_%' ORDER BY 1"),
        ("routine", "SELECT CONCAT(LOWER(ROUTINE_TYPE), ' ', ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY 1"),
        ("event", "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY 1"),
    ];
    let mut notices = Vec::new();
    for (kind, sql) in queries {
        let rows: Vec<Row> = conn
            .exec(sql, (db,))
            .await
            .ctx(|| format!("listing the {kind}s of database {db}"))?;
        for r in rows {
            let name = text(&r, 0).unwrap_or_default();
            let (kind, name) = match kind {
                "routine" => match name.split_once(' ') {
                    Some((k, n)) => (k.to_string(), n.to_string()),
                    None => (kind.to_string(), name),
                },
                _ => (kind.to_string(), name),
            };
            notices.push(Notice {
                level: "warning".into(),
                message: format!("{kind} {db}.{name} not migrated: molt moves tables and data only; recreate it on the target by hand"),
                object: Some(format!("{db}.{name}")),
            });
        }
    }
    Ok(notices)
}

/// Reads one table's schema and plans its dump.
pub async fn load_table(
    conn: &mut Conn,
    server: &ServerInfo,
    db: &str,
    table: &TableInfo,
    options: &DumpOptions,
) -> Result<TablePlan, MysqlError> {
    let name = &table.name;
    let qualified = format!("{db}.{name}");
    let rows: Vec<Row> = conn
        .exec(
            "SELECT COLUMN_NAME, COLUMN_DEFAULT, IS_NULLABLE, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, \
             COLLATION_NAME, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, CHARACTER_MAXIMUM_LENGTH, \
             EXTRA, GENERATION_EXPRESSION \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (db, name),
        )
        .await
        .ctx(|| format!("reading the columns of {qualified}"))?;
    if rows.is_empty() {
        return Err(MysqlError::Data(format!(
            "table {qualified} not found (or no privilege to see its columns)"
        )));
    }

    let raw_checks = read_checks(conn, server, db, name).await?;
    let key_names = read_primary_key(conn, db, name).await?;
    let mut warnings = Vec::new();
    let mut notes = Vec::new();
    let target_schema = options.target_schema.clone();
    let target_table = options.fold(name);

    let mut columns = Vec::new();
    let mut plans = Vec::new();
    let mut sequences = Vec::new();
    for r in &rows {
        let col_name = text(r, 0).unwrap_or_default();
        let mut default = text(r, 1);
        let extra = text(r, 11).unwrap_or_default().to_ascii_lowercase();
        let raw = RawColumn {
            name: col_name.clone(),
            data_type: text(r, 3).unwrap_or_default().to_ascii_lowercase(),
            column_type: text(r, 4).unwrap_or_default(),
            charset: text(r, 5),
            collation: text(r, 6),
            numeric_precision: number(r, 7),
            numeric_scale: number(r, 8),
            datetime_precision: number(r, 9),
            char_max_length: number(r, 10),
            nullable: text(r, 2).is_some_and(|s| s.eq_ignore_ascii_case("YES")),
            is_json: false,
        };
        let mut raw = RawColumn {
            is_json: is_mariadb_json(&raw, &raw_checks),
            ..raw
        };
        if hidden_chars::may_hide(&raw) {
            let retyped = options
                .type_map
                .find(db, name, &col_name)
                .is_some_and(|o| o.target_type.is_some());
            if matches!(raw.data_type.as_str(), "enum" | "set")
                && raw.column_type.contains('?')
                && !retyped
            {
                raw.column_type = hidden_chars::exact_column_type(conn, db, name, &raw).await?;
            }
            let literal = default
                .as_deref()
                .is_some_and(|d| d.contains('?') && (!server.mariadb || d.starts_with('\'')));
            if literal {
                default = hidden_chars::exact_default(conn, db, name, &raw)
                    .await?
                    .map(|exact| {
                        if server.mariadb {
                            format!("'{}'", exact.replace('\\', "\\\\").replace('\'', "''"))
                        } else {
                            exact
                        }
                    });
            }
        }
        let mut mapped = map_column(&raw)
            .map_err(|e| MysqlError::Data(format!("table {qualified}, column {col_name}: {e}")))?;
        let overrides = options.type_map.find(db, name, &col_name);
        if let Some(target_type) = overrides.and_then(|o| o.target_type.as_deref()) {
            mapped = typemap::apply(&raw, mapped, target_type)
                .map_err(|e| MysqlError::Data(format!("table {qualified}: {e}")))?;
        }
        let nullable = raw.nullable || overrides.and_then(|o| o.nullable).unwrap_or(false);
        let target_col = options.fold(&col_name);
        let enum_type = mapped.enum_labels.take().map(|labels| EnumType {
            schema: target_schema.clone(),
            name: format!("{target_table}_{target_col}"),
            labels,
        });
        if let Some(e) = &enum_type {
            mapped.target_type = format!("{}.{}", quote_pg(&e.schema), quote_pg(&e.name));
        }
        let generation = if extra.contains("auto_increment") {
            match table.auto_increment {
                // A target sequence is a signed 64-bit integer: one whose
                // next value would pass 2^63 - 1 cannot be made, so none is
                // planned (the rows still move exactly), and the operator
                // hears it now rather than from a failure after the load.
                Some(next) if next > i64::MAX as u64 => {
                    let w = format!(
                        "table {qualified}, column {col_name}: AUTO_INCREMENT is at {next}, past the largest value a target sequence holds (2^63 - 1 = {}); no sequence is created, so inserts on the target must give {col_name} explicitly",
                        i64::MAX
                    );
                    warnings.push(w.clone());
                    notes.push(w);
                }
                next => sequences.push(Sequence {
                    name: None,
                    column: target_col.clone(),
                    next_value: next.map(|n| n.to_string()),
                }),
            }
            Some(Generation::Identity)
        } else {
            match text(r, 12).filter(|e| !e.is_empty()) {
                Some(expression) if extra.contains("generated") => Some(Generation::Generated {
                    expression,
                    stored: extra.contains("stored"),
                }),
                _ => None,
            }
        };
        let is_text = matches!(
            mapped.decoder,
            Decoder::Text(_) | Decoder::Enum(_) | Decoder::EnumDeclaringEmpty(_) | Decoder::Set(_)
        );
        let target_default =
            translate_default(default.as_deref(), &raw, &mapped.decoder, server.mariadb);
        let pk = key_names
            .iter()
            .position(|k| k == &col_name)
            .map(|p| p as u16 + 1);
        let column = Column {
            name: target_col,
            source_type: raw.column_type.clone(),
            target_type: mapped.target_type.clone(),
            logical: mapped.logical,
            array_dims: mapped.array_dims,
            nullable,
            pk,
            default,
            target_default,
            enum_type,
            domain: None,
            charset: if is_text { raw.charset.clone() } else { None },
            collation: if is_text { raw.collation.clone() } else { None },
            generation,
            padded: mapped.padded,
        };
        let select_expr = match mapped.decoder {
            // The exact double of the stored single; see Decoder::Float4.
            Decoder::Float4 => format!("({} * 1e0)", quote_mysql(&col_name)),
            Decoder::EnumDeclaringEmpty(_) => {
                let q = quote_mysql(&col_name);
                format!("CONCAT(IF({q} + 0 = 0, '0', '1'), {q})")
            }
            _ => quote_mysql(&col_name),
        };
        plans.push(ColumnPlan {
            source_name: col_name,
            select_expr,
            decoder: mapped.decoder,
            digest: DigestColumn::from(&column),
            nullable,
        });
        columns.push(column);
    }
    let key: Vec<usize> = key_names
        .iter()
        .filter_map(|k| plans.iter().position(|p: &ColumnPlan| &p.source_name == k))
        .collect();
    if key.is_empty() {
        let w = format!(
            "table {qualified} has no primary key: it is dumped whole (no sharding), and molt-verify can only compare it as a multiset of rows"
        );
        warnings.push(w.clone());
        notes.push(w);
    }

    let indexes = read_indexes(conn, server, db, name, options, &mut warnings).await?;
    let foreign_keys = read_foreign_keys(conn, db, name, options).await?;
    let checks = raw_checks
        .into_iter()
        .filter(|c| !is_json_valid_check(&c.expression))
        .collect::<Vec<_>>();
    if let Some(engine) = &table.engine {
        notes.push(format!("engine: {engine}"));
    }
    if let Some(comment) = &table.comment {
        notes.push(format!("comment: {comment}"));
    }
    notes.extend(
        warnings
            .iter()
            .filter(|w| !notes.contains(w))
            .cloned()
            .collect::<Vec<_>>(),
    );

    let source = TableName::new(db, name.clone());
    let header = TableHeader {
        table: source.clone(),
        target: Some(TableName::new(target_schema, target_table)),
        columns,
        slice: Slice {
            phase: String::new(),
            table: source,
            filter: None,
            target_filter: None,
            shard: Shard::whole(),
        },
        indexes,
        foreign_keys,
        checks,
        sequences,
        estimated_rows: table.estimated_rows,
        notes,
        checksum: None,
    };
    Ok(TablePlan {
        header,
        columns: plans,
        key,
        warnings,
    })
}

async fn read_primary_key(
    conn: &mut Conn,
    db: &str,
    table: &str,
) -> Result<Vec<String>, MysqlError> {
    let rows: Vec<Row> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
            (db, table),
        )
        .await
        .ctx(|| format!("reading the primary key of {db}.{table}"))?;
    Ok(rows.iter().filter_map(|r| text(r, 0)).collect())
}

async fn read_checks(
    conn: &mut Conn,
    server: &ServerInfo,
    db: &str,
    table: &str,
) -> Result<Vec<Check>, MysqlError> {
    if !server.has_checks {
        return Ok(Vec::new());
    }
    let sql = if server.checks_have_table {
        "SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
         WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ? ORDER BY CONSTRAINT_NAME"
    } else {
        "SELECT cc.CONSTRAINT_NAME, cc.CHECK_CLAUSE FROM information_schema.TABLE_CONSTRAINTS tc \
         JOIN information_schema.CHECK_CONSTRAINTS cc \
           ON cc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA AND cc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME \
         WHERE tc.TABLE_SCHEMA = ? AND tc.TABLE_NAME = ? AND tc.CONSTRAINT_TYPE = 'CHECK' ORDER BY cc.CONSTRAINT_NAME"
    };
    let rows: Vec<Row> = conn
        .exec(sql, (db, table))
        .await
        .ctx(|| format!("reading the checks of {db}.{table}"))?;
    Ok(rows
        .iter()
        .map(|r| Check {
            name: text(r, 0).unwrap_or_default(),
            expression: text(r, 1).unwrap_or_default(),
        })
        .collect())
}

/// `json_valid(`col`)`, MariaDB's marker of a JSON column.
fn is_json_valid_check(expression: &str) -> bool {
    let e = expression.trim().to_ascii_lowercase();
    e.starts_with("json_valid(") && e.ends_with(')') && !e.contains(" and ") && !e.contains(" or ")
}

fn is_mariadb_json(raw: &RawColumn, checks: &[Check]) -> bool {
    if raw.data_type != "longtext" {
        return false;
    }
    let want = format!("json_valid({})", quote_mysql(&raw.name)).to_ascii_lowercase();
    checks
        .iter()
        .any(|c| c.expression.trim().to_ascii_lowercase() == want)
}

async fn read_indexes(
    conn: &mut Conn,
    server: &ServerInfo,
    db: &str,
    table: &str,
    options: &DumpOptions,
    warnings: &mut Vec<String>,
) -> Result<Vec<Index>, MysqlError> {
    let rows: Vec<Row> = conn
        .exec(
            "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, INDEX_TYPE FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME <> 'PRIMARY' ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            (db, table),
        )
        .await
        .ctx(|| format!("reading the indexes of {db}.{table}"))?;
    // MySQL names indexes per table, PostgreSQL per schema: a name another
    // table of the database also uses (Sakila's `idx_fk_film_id` on
    // film_actor and inventory) is prefixed with this table's target name,
    // the same way in every dump whichever tables it holds.
    let shared = if rows.is_empty() {
        Default::default()
    } else {
        shared_index_names(conn, server, db).await?
    };
    let mut indexes: Vec<Index> = Vec::new();
    for r in &rows {
        let source_index = text(r, 0).unwrap_or_default();
        let index_name = if shared.contains(&source_index.to_ascii_lowercase()) {
            format!("{}_{source_index}", options.fold(table))
        } else {
            source_index.clone()
        };
        let unique = number(r, 1) == Some(0);
        let index_type = text(r, 4).unwrap_or_default().to_ascii_lowercase();
        let column = match text(r, 2) {
            Some(c) => options.fold(&c),
            None => {
                warnings.push(format!(
                    "index {source_index} on {db}.{table} is a functional index: not migrated"
                ));
                continue;
            }
        };
        if let Some(prefix) = number(r, 3) {
            warnings.push(format!(
                "index {source_index} on {db}.{table} indexes a {prefix}-character prefix of {column}: the target index covers the whole column"
            ));
        }
        match indexes.last_mut() {
            Some(last) if last.name == index_name => last.columns.push(column),
            _ => indexes.push(Index {
                name: index_name,
                columns: vec![column],
                unique,
                constraint: unique,
                predicate: None,
                method: match index_type.as_str() {
                    "btree" | "hash" | "" => None,
                    other => Some(other.to_string()),
                },
                definition: None,
            }),
        }
    }
    Ok(indexes)
}

async fn read_foreign_keys(
    conn: &mut Conn,
    db: &str,
    table: &str,
    options: &DumpOptions,
) -> Result<Vec<ForeignKey>, MysqlError> {
    let rows: Vec<Row> = conn
        .exec(
            "SELECT k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME, \
             k.REFERENCED_COLUMN_NAME, r.UPDATE_RULE, r.DELETE_RULE \
             FROM information_schema.KEY_COLUMN_USAGE k \
             JOIN (SELECT CONSTRAINT_NAME, UPDATE_RULE, DELETE_RULE FROM information_schema.REFERENTIAL_CONSTRAINTS \
                   WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?) r ON r.CONSTRAINT_NAME = k.CONSTRAINT_NAME \
             WHERE k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL \
             ORDER BY k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
            // REFERENTIAL_CONSTRAINTS in a derived table with its own
            // constants: as the inner side of a join MariaDB opens every
            // table of every database for it (1.5 s per call at 10,000 tables).
            (db, table, db, table),
        )
        .await
        .ctx(|| format!("reading the foreign keys of {db}.{table}"))?;
    let mut fks: Vec<ForeignKey> = Vec::new();
    for r in &rows {
        let name = text(r, 0).unwrap_or_default();
        let column = options.fold(&text(r, 1).unwrap_or_default());
        let ref_db = text(r, 2).unwrap_or_default();
        let ref_table = text(r, 3).unwrap_or_default();
        let ref_col = options.fold(&text(r, 4).unwrap_or_default());
        match fks.last_mut() {
            Some(last) if last.name == name => {
                last.columns.push(column);
                last.referenced_columns.push(ref_col);
            }
            _ => {
                // A reference into another database keeps that database's
                // name as its schema; within the database it is the target's.
                let schema = if ref_db == db {
                    options.target_schema.clone()
                } else {
                    options.fold(&ref_db)
                };
                fks.push(ForeignKey {
                    name,
                    columns: vec![column],
                    references: TableName::new(schema, options.fold(&ref_table)),
                    referenced_columns: vec![ref_col],
                    on_update: text(r, 5),
                    on_delete: text(r, 6),
                })
            }
        }
    }
    Ok(fks)
}

/// The target form of a column default, when it is a plain literal or
/// CURRENT_TIMESTAMP; anything else stays informational only.
fn translate_default(
    default: Option<&str>,
    raw: &RawColumn,
    decoder: &Decoder,
    mariadb: bool,
) -> Option<String> {
    let d = default?.trim();
    if d.eq_ignore_ascii_case("null") {
        return None;
    }
    let lower = d.to_ascii_lowercase();
    if lower.starts_with("current_timestamp") {
        return Some("CURRENT_TIMESTAMP".into());
    }
    // MariaDB quotes literal defaults ('G'), MySQL does not (G).
    let literal = if mariadb {
        if d.len() >= 2 && d.starts_with('\'') && d.ends_with('\'') {
            Some(d[1..d.len() - 1].replace("''", "'").replace("\\\\", "\\"))
        } else {
            None
        }
    } else {
        Some(d.to_string())
    };
    match decoder {
        Decoder::Int | Decoder::Decimal | Decoder::Float8 => {
            let number = literal.as_deref().unwrap_or(d);
            let ok = !number.is_empty()
                && number
                    .trim_start_matches('-')
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'.')
                && number.parse::<f64>().is_ok();
            ok.then(|| number.to_string())
        }
        Decoder::Bool => match literal.as_deref().unwrap_or(d) {
            "0" => Some("false".into()),
            "1" => Some("true".into()),
            _ => None,
        },
        Decoder::Text(_)
        | Decoder::Enum(_)
        | Decoder::EnumDeclaringEmpty(_)
        | Decoder::Date
        | Decoder::Datetime => {
            let l = literal?;
            if matches!(decoder, Decoder::Date | Decoder::Datetime) && l.starts_with("0000") {
                return None;
            }
            let _ = raw;
            Some(literal_pg(&l))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_valid_marks_mariadb_json() {
        let raw = RawColumn {
            name: "doc".into(),
            data_type: "longtext".into(),
            ..Default::default()
        };
        let checks = vec![Check {
            name: "doc".into(),
            expression: "json_valid(`doc`)".into(),
        }];
        assert!(is_mariadb_json(&raw, &checks));
        assert!(is_json_valid_check("json_valid(`doc`)"));
        assert!(!is_json_valid_check("json_valid(`doc`) and x > 1"));
    }

    #[test]
    fn defaults_translate_only_literals() {
        let raw = RawColumn::default();
        let text = Decoder::Text(super::super::charset::Charset::Utf8);
        assert_eq!(
            translate_default(Some("'it''s'"), &raw, &text, true).as_deref(),
            Some("'it''s'")
        );
        assert_eq!(
            translate_default(Some("4.99"), &raw, &Decoder::Decimal, true).as_deref(),
            Some("4.99")
        );
        assert_eq!(
            translate_default(Some("current_timestamp()"), &raw, &Decoder::Timestamp, true)
                .as_deref(),
            Some("CURRENT_TIMESTAMP")
        );
        assert_eq!(translate_default(Some("NULL"), &raw, &text, true), None);
        assert_eq!(translate_default(Some("uuid()"), &raw, &text, true), None);
    }
}
