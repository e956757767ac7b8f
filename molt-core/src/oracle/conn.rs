//! Connecting to Oracle and reading its catalog (cargo feature `oracle`).
//!
//! The `oracle` crate drives ODPI-C, which loads Oracle Instant Client when
//! the first connection is made. Without it the crate answers DPI-1047 with
//! a paragraph of advice; molt turns that into one line saying what to
//! install, with the URL redacted. Everything here is blocking (so is the
//! crate): async tools call it from `tokio::task::spawn_blocking`.

use oracle::{Connection, Connector};

use super::catalog::{
    build_table, BuildOptions, ConstraintRow, IdentityRow, IndexRow, OracleTable, TableRow,
    COLUMNS_SQL, CONSTRAINTS_SQL, IDENTITY_SQL, INDEXES_SQL, TABLES_SQL, TABLE_SQL,
};
use super::params::connect_params;
use super::sql::{CURRENT_SCN_SQL, FLASHBACK_SCN_SQL, SESSION_SETUP, VERSION_SQL};
use super::types::{MapError, OracleColumn};
use crate::url::{redact_text, ConnUrl};

/// The message for a missing client library (ODPI-C error DPI-1047).
pub const NO_CLIENT_MESSAGE: &str =
    "Oracle Instant Client is not installed or not found: install Oracle Instant \
Client (basic or basic-lite) and add its directory to LD_LIBRARY_PATH";

/// Errors of the Oracle source. Every message is one line, redacted.
#[derive(Debug, thiserror::Error)]
pub enum OracleError {
    /// The client library could not be loaded.
    #[error("{NO_CLIENT_MESSAGE} (connecting to {url})")]
    NoClient { url: String },
    #[error("{0}")]
    Url(String),
    /// A database or driver error, with what was being done.
    #[error("{context}: {message}")]
    Db { context: String, message: String },
    #[error(transparent)]
    Map(#[from] MapError),
}

impl OracleError {
    /// Wraps a driver error: one line, passwords redacted.
    pub fn db(context: impl Into<String>, err: &oracle::Error) -> OracleError {
        let message = err
            .to_string()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        OracleError::Db {
            context: redact_text(&context.into()),
            message: redact_text(&message),
        }
    }
}

/// True for the driver's "client library not found" error.
pub fn is_missing_client(err: &oracle::Error) -> bool {
    err.to_string().contains("DPI-1047")
}

/// Connects and prepares the session (see [`SESSION_SETUP`]).
pub fn connect(url: &ConnUrl) -> Result<Connection, OracleError> {
    let params = connect_params(url).map_err(OracleError::Url)?;
    let conn = Connector::new(params.user, params.password, params.connect_string)
        .connect()
        .map_err(|e| {
            if is_missing_client(&e) {
                OracleError::NoClient {
                    url: url.redacted(),
                }
            } else {
                OracleError::db(format!("connecting to {url}"), &e)
            }
        })?;
    for stmt in SESSION_SETUP {
        conn.execute(stmt, &[])
            .map_err(|e| OracleError::db(format!("setting up the session ({stmt})"), &e))?;
    }
    Ok(conn)
}

/// The SCN every section is read at: `V$DATABASE`, else `DBMS_FLASHBACK`.
pub fn current_scn(conn: &Connection) -> Result<String, OracleError> {
    conn.query_row_as::<String>(CURRENT_SCN_SQL, &[])
        .or_else(|_| conn.query_row_as::<String>(FLASHBACK_SCN_SQL, &[]))
        .map_err(|e| {
            OracleError::db(
                "reading the current SCN (grant SELECT on V$DATABASE or EXECUTE on DBMS_FLASHBACK)",
                &e,
            )
        })
}

/// The server version, e.g. `19.22.0.0.0`.
pub fn server_version(conn: &Connection) -> Result<String, OracleError> {
    conn.query_row_as::<String>(VERSION_SQL, &[])
        .map_err(|e| OracleError::db("reading the server version", &e))
}

fn table_row(owner: &str, row: &oracle::Row) -> Result<TableRow, oracle::Error> {
    Ok(TableRow {
        owner: owner.to_string(),
        name: row.get(0)?,
        num_rows: row.get::<_, Option<u64>>(1)?,
        partitioned: row.get::<_, Option<String>>(2)?.as_deref() == Some("YES"),
        iot: row.get::<_, Option<String>>(3)?.as_deref() == Some("IOT"),
        temporary: row.get::<_, Option<String>>(4)?.as_deref() == Some("Y"),
    })
}

/// The tables of an owner.
pub fn list_tables(conn: &Connection, owner: &str) -> Result<Vec<TableRow>, OracleError> {
    let ctx = || format!("listing the tables of {owner}");
    let rows = conn
        .query(TABLES_SQL, &[&owner])
        .map_err(|e| OracleError::db(ctx(), &e))?;
    let mut out = Vec::new();
    for row in rows {
        let row = row.map_err(|e| OracleError::db(ctx(), &e))?;
        out.push(table_row(owner, &row).map_err(|e| OracleError::db(ctx(), &e))?);
    }
    Ok(out)
}

/// Reads one table's catalog rows and builds its header. `None` when the
/// table does not exist (or is not visible to the user).
pub fn load_table(
    conn: &Connection,
    owner: &str,
    table: &str,
    opts: &BuildOptions,
) -> Result<Option<OracleTable>, OracleError> {
    let ctx = |what: &str| format!("reading the {what} of {owner}.{table}");
    let db = |what: &'static str| move |e: oracle::Error| OracleError::db(ctx(what), &e);
    let t = match conn.query_row(TABLE_SQL, &[&owner, &table]) {
        Ok(row) => table_row(owner, &row).map_err(db("table"))?,
        Err(e) if e.kind() == oracle::ErrorKind::NoDataFound => return Ok(None),
        Err(e) => return Err(OracleError::db(ctx("table"), &e)),
    };
    let mut columns = Vec::new();
    for row in conn
        .query(COLUMNS_SQL, &[&owner, &table])
        .map_err(db("columns"))?
    {
        let r = row.map_err(db("columns"))?;
        columns.push(OracleColumn {
            name: r.get(0).map_err(db("columns"))?,
            data_type: r.get(1).map_err(db("columns"))?,
            data_type_owner: r.get(2).map_err(db("columns"))?,
            data_length: r.get(3).map_err(db("columns"))?,
            data_precision: r.get(4).map_err(db("columns"))?,
            data_scale: r.get(5).map_err(db("columns"))?,
            char_used: r.get(6).map_err(db("columns"))?,
            char_length: r.get(7).map_err(db("columns"))?,
            nullable: r
                .get::<_, Option<String>>(8)
                .map_err(db("columns"))?
                .as_deref()
                == Some("Y"),
            data_default: r.get(9).map_err(db("columns"))?,
            virtual_column: r
                .get::<_, Option<String>>(10)
                .map_err(db("columns"))?
                .as_deref()
                == Some("YES"),
            identity: r
                .get::<_, Option<String>>(11)
                .map_err(db("columns"))?
                .as_deref()
                == Some("YES"),
            is_json: false,
        });
    }
    let mut constraints = Vec::new();
    for row in conn
        .query(CONSTRAINTS_SQL, &[&owner, &table])
        .map_err(db("constraints"))?
    {
        let r = row.map_err(db("constraints"))?;
        constraints.push(ConstraintRow {
            name: r.get(0).map_err(db("constraints"))?,
            constraint_type: r.get(1).map_err(db("constraints"))?,
            search_condition: r.get(2).map_err(db("constraints"))?,
            delete_rule: r.get(3).map_err(db("constraints"))?,
            status: r.get(4).map_err(db("constraints"))?,
            column: r.get(5).map_err(db("constraints"))?,
            position: r.get(6).map_err(db("constraints"))?,
            ref_owner: r.get(7).map_err(db("constraints"))?,
            ref_table: r.get(8).map_err(db("constraints"))?,
            ref_column: r.get(9).map_err(db("constraints"))?,
        });
    }
    let mut indexes = Vec::new();
    for row in conn
        .query(INDEXES_SQL, &[&owner, &table])
        .map_err(db("indexes"))?
    {
        let r = row.map_err(db("indexes"))?;
        indexes.push(IndexRow {
            name: r.get(0).map_err(db("indexes"))?,
            index_type: r.get(1).map_err(db("indexes"))?,
            uniqueness: r.get(2).map_err(db("indexes"))?,
            column: r.get(3).map_err(db("indexes"))?,
            position: r.get(4).map_err(db("indexes"))?,
            descend: r.get(5).map_err(db("indexes"))?,
            expression: r.get(6).map_err(db("indexes"))?,
        });
    }
    let mut identities = Vec::new();
    for row in conn
        .query(IDENTITY_SQL, &[&owner, &table])
        .map_err(db("identity columns"))?
    {
        let r = row.map_err(db("identity columns"))?;
        identities.push(IdentityRow {
            column: r.get(0).map_err(db("identity columns"))?,
            generation_type: r.get(1).map_err(db("identity columns"))?,
            sequence_name: r.get(2).map_err(db("identity columns"))?,
            next_value: r.get(3).map_err(db("identity columns"))?,
        });
    }
    if columns.is_empty() {
        return Ok(None);
    }
    Ok(Some(build_table(
        &t,
        columns,
        &constraints,
        &indexes,
        &identities,
        opts,
    )?))
}

/// The spellings to try for a name an operator wrote: as written, then as
/// Oracle folds an unquoted name (upper case), so that `hr.employees`
/// finds `HR.EMPLOYEES` while a quoted-case `"Orders"` is still found
/// as written.
pub fn name_candidates(name: &str) -> Vec<String> {
    let mut out = vec![name.to_string()];
    let upper = name.to_uppercase();
    if upper != name {
        out.push(upper);
    }
    out
}

/// [`load_table`] for a table named as an operator wrote it (see
/// [`name_candidates`]); the header names the table as Oracle spells it.
pub fn find_table(
    conn: &Connection,
    table: &crate::stream::TableName,
    opts: &BuildOptions,
) -> Result<Option<OracleTable>, OracleError> {
    for owner in name_candidates(&table.schema) {
        for name in name_candidates(&table.name) {
            if let Some(t) = load_table(conn, &owner, &name, opts)? {
                return Ok(Some(t));
            }
        }
    }
    Ok(None)
}

/// The bind values of a generated statement, in placeholder order (the
/// SCN as a number when it is one).
pub fn bind_params(
    query: &super::sql::Query,
    scn: Option<&str>,
) -> Result<Vec<Box<dyn oracle::sql_type::ToSql>>, OracleError> {
    use super::sql::BindValue;
    query
        .binds
        .iter()
        .map(
            |(name, value)| -> Result<Box<dyn oracle::sql_type::ToSql>, OracleError> {
                Ok(match value {
                    BindValue::Scn => {
                        let scn = scn.ok_or_else(|| OracleError::Db {
                            context: "binding the statement's values".into(),
                            message: format!("no SCN given for :{name}"),
                        })?;
                        match scn.parse::<u64>() {
                            Ok(n) => Box::new(n),
                            Err(_) => Box::new(scn.to_string()),
                        }
                    }
                    BindValue::Text(t) => Box::new(t.clone()),
                })
            },
        )
        .collect()
}
