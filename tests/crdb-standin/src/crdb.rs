//! What CockroachDB says, with where each message comes from. Every error the
//! stand-in sends on CockroachDB's behalf is built here.

use crate::proto::PgError;

/// The release series the messages are modelled on (also used in issue links,
/// which CockroachDB builds as `https://go.crdb.dev/issue-v/<issue>/<series>`).
pub const SERIES: &str = "v25.2";

/// `SELECT version()` on CockroachDB. Format from cockroachdb/cockroach
/// pkg/build/info.go, `Info.Short()`:
/// `"CockroachDB %s %s (%s, built %s, %s)"` with Distribution ("CCL"), Tag,
/// platform (the cgo target triple), build time (`2006/01/02 15:04:05`) and Go
/// version. The tag, date and Go version below are illustrative; molt only
/// looks for "CockroachDB".
pub const DEFAULT_VERSION: &str =
    "CockroachDB CCL v25.2.4 (x86_64-pc-linux-gnu, built 2025/08/05 12:00:00, go1.23.7)";

/// The `server_version` ParameterStatus CockroachDB sends at startup:
/// cockroachdb/cockroach pkg/sql/vars.go, `PgServerVersion = "13.0.0"`
/// ("the latest version of postgres that we claim to support").
pub const DEFAULT_SERVER_VERSION: &str = "13.0.0";

/// COPY FROM over the extended protocol. cockroachdb/cockroach
/// pkg/sql/pgwire/conn.go, `handleParse`:
/// `if _, ok := stmt.AST.(*tree.CopyFrom); ok { ... fmt.Errorf("CopyFrom not supported in extended protocol mode") }`.
/// A plain `fmt.Errorf` carries no pgcode, so pkg/sql/pgwire/pgerror/pgcode.go
/// `GetPGCodeInternal` reports `pgcode.Uncategorized` = "XXUUU"
/// (pkg/sql/pgwire/pgcode/codes.go). Seen by users in
/// cockroachdb/cockroach#41120 (rust-postgres, JDBC).
pub fn copy_from_extended() -> PgError {
    PgError::error("XXUUU", "CopyFrom not supported in extended protocol mode")
}

/// CREATE TEMP TABLE/VIEW/SEQUENCE with `experimental_enable_temp_tables` off.
/// cockroachdb/cockroach pkg/sql/create_table.go `getSchemaForCreateTable` (and
/// pkg/sql/schemachanger/scbuild/internal/scbuildstmt/create_sequence.go):
/// `errors.Newf("temporary tables are only supported experimentally")` with
/// issue link 46260, hint ``You can enable temporary tables by running `SET
/// experimental_enable_temp_tables = 'on'`.``, candidate code
/// `pgcode.ExperimentalFeature` = "XCEXF" (pkg/sql/pgwire/pgcode/codes.go; older
/// releases used FeatureNotSupported 0A000). Docs: temporary-tables.md.
pub fn temp_tables_disabled() -> PgError {
    PgError::error(
        "XCEXF",
        "temporary tables are only supported experimentally",
    )
    .with_hint(format!(
        "You can enable temporary tables by running `SET experimental_enable_temp_tables = 'on'`.\n\
         See: https://go.crdb.dev/issue-v/46260/{SERIES}"
    ))
}

/// A transaction retry error. Docs: cockroachdb/docs
/// src/current/v25.2/transaction-retry-error-reference.md — "All transaction
/// retry errors use the SQLSTATE error code 40001, and emit error messages with
/// the string `restart transaction`"; the RETRY_SERIALIZABLE example reads
/// `restart transaction: TransactionRetryWithProtoRefreshError: TransactionRetryError: retry txn (RETRY_SERIALIZABLE - ...)`
/// with `HINT: See: https://www.cockroachlabs.com/docs/<version>/transaction-retry-error-reference.html#retry_serializable`.
pub fn retry_error(point: &str) -> PgError {
    PgError::error(
        "40001",
        format!(
            "restart transaction: TransactionRetryWithProtoRefreshError: TransactionRetryError: \
             retry txn (RETRY_SERIALIZABLE - injected by crdb-standin at {point}): \"sql txn\" \
             meta={{id=00000000 iso=Serializable pri=0.01 epo=0}} lock=true stat=PENDING"
        ),
    )
    .with_hint(format!(
        "See: https://www.cockroachlabs.com/docs/{SERIES}/transaction-retry-error-reference.html#retry_serializable"
    ))
}

/// How CockroachDB refuses a column type. `Unimplemented(issue)` is the parser's
/// `unimplementedWithIssueDetail` for names listed in cockroachdb/cockroach
/// pkg/sql/types/types.go `postgresPredefinedTypeIssues` (message form seen in
/// cockroachdb/cockroach#75264: `at or near "...": syntax error: unimplemented:
/// this syntax`, SQLSTATE 0A000, hint "You have attempted to use a feature that
/// is not yet implemented.\nSee: https://go.crdb.dev/issue-v/<n>/<series>").
/// `Undefined` is a name CockroachDB does not know at all, resolved as a
/// user-defined type and reported by pkg/sql/sqlerrors/errors.go
/// `NewUndefinedTypeError`: `type %q does not exist`, pgcode.UndefinedObject 42704.
#[derive(Clone, Copy, Debug)]
pub enum TypeRefusal {
    Unimplemented(u32),
    UnimplementedNoIssue,
    Undefined(u32),
    /// A type a later CockroachDB version has (the version that adds it).
    UndefinedBefore(&'static str),
}

/// Column types CockroachDB lacks, with the tracking issue.
/// - xml 43355, money 41578, box/circle/line/lseg/path 21286, cidr 18846,
///   macaddr/macaddr8 45813, pg_lsn and txid_snapshot (-1, no issue): pkg/sql/types/types.go
///   `postgresPredefinedTypeIssues`; docs data-types.md lists none of them.
/// - range and multirange types: not in that map, so `type "..." does not exist`;
///   tracked by cockroachdb/cockroach#27791 ("sql: support RANGE types").
/// - point, polygon: not in the current map (only the old one), PostGIS-style
///   geometry is separate; `type "..." does not exist`.
/// - citext: built in from v25.3 (docs src/current/v25.3/citext.md, a page
///   v25.2 does not have); the v25.2 this stand-in answers as resolves it as
///   a user-defined type, `type "citext" does not exist`.
pub const UNSUPPORTED_TYPES: &[(&str, TypeRefusal)] = &[
    ("xml", TypeRefusal::Unimplemented(43355)),
    ("money", TypeRefusal::Unimplemented(41578)),
    ("box", TypeRefusal::Unimplemented(21286)),
    ("circle", TypeRefusal::Unimplemented(21286)),
    ("line", TypeRefusal::Unimplemented(21286)),
    ("lseg", TypeRefusal::Unimplemented(21286)),
    ("path", TypeRefusal::Unimplemented(21286)),
    ("cidr", TypeRefusal::Unimplemented(18846)),
    ("macaddr", TypeRefusal::Unimplemented(45813)),
    ("macaddr8", TypeRefusal::Unimplemented(45813)),
    ("pg_lsn", TypeRefusal::UnimplementedNoIssue),
    ("txid_snapshot", TypeRefusal::UnimplementedNoIssue),
    ("point", TypeRefusal::Undefined(21286)),
    ("polygon", TypeRefusal::Undefined(21286)),
    ("citext", TypeRefusal::UndefinedBefore("v25.3")),
    ("int4range", TypeRefusal::Undefined(27791)),
    ("int8range", TypeRefusal::Undefined(27791)),
    ("numrange", TypeRefusal::Undefined(27791)),
    ("tsrange", TypeRefusal::Undefined(27791)),
    ("tstzrange", TypeRefusal::Undefined(27791)),
    ("daterange", TypeRefusal::Undefined(27791)),
    ("int4multirange", TypeRefusal::Undefined(27791)),
    ("int8multirange", TypeRefusal::Undefined(27791)),
    ("nummultirange", TypeRefusal::Undefined(27791)),
    ("tsmultirange", TypeRefusal::Undefined(27791)),
    ("tstzmultirange", TypeRefusal::Undefined(27791)),
    ("datemultirange", TypeRefusal::Undefined(27791)),
];

impl TypeRefusal {
    /// The CockroachDB issue that tracks the type, if any.
    pub fn issue(self) -> Option<u32> {
        match self {
            TypeRefusal::Unimplemented(n) | TypeRefusal::Undefined(n) => Some(n),
            TypeRefusal::UnimplementedNoIssue | TypeRefusal::UndefinedBefore(_) => None,
        }
    }
}

pub fn lookup_type(name: &str) -> Option<TypeRefusal> {
    UNSUPPORTED_TYPES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, r)| *r)
}

pub fn unsupported_type(name: &str, refusal: TypeRefusal, stmt: &str) -> PgError {
    let detail = format!("source SQL:\n{stmt}");
    match refusal {
        TypeRefusal::Unimplemented(issue) => PgError::error(
            "0A000",
            format!("at or near \"{}\": syntax error: unimplemented: this syntax", name.to_ascii_lowercase()),
        )
        .with_detail(detail)
        .with_hint(format!(
            "You have attempted to use a feature that is not yet implemented.\nSee: https://go.crdb.dev/issue-v/{issue}/{SERIES}"
        )),
        TypeRefusal::UnimplementedNoIssue => PgError::error(
            "0A000",
            format!("at or near \"{}\": syntax error: unimplemented: this syntax", name.to_ascii_lowercase()),
        )
        .with_detail(detail)
        .with_hint("You have attempted to use a feature that is not yet implemented."),
        TypeRefusal::Undefined(_) | TypeRefusal::UndefinedBefore(_) => {
            PgError::error("42704", format!("type \"{}\" does not exist", name.to_ascii_lowercase()))
        }
    }
}

/// Multi-dimensional array columns. Docs data-types.md: ARRAY is "a
/// 1-dimensional, 1-indexed, homogeneous array of any non-array data type";
/// tracked by cockroachdb/cockroach#32552. Message from
/// pkg/sql/catalog/colinfo/col_type_info.go `ValidateColumnDefType`:
/// `errors.Errorf("nested array unsupported as column type: %s", t.String())`;
/// that error has no pgcode, so it reaches clients as XXUUU (see
/// `copy_from_extended`). The parser may refuse some spellings earlier with
/// 0A000; the stand-in always answers with this one.
pub fn nested_array(type_text: &str) -> PgError {
    PgError::error(
        "XXUUU",
        format!(
            "nested array unsupported as column type: {}",
            type_text.to_ascii_uppercase()
        ),
    )
}

/// The stand-in's own refusal of a CockroachDB-only form it does not translate.
/// Not a CockroachDB message: it exists so nobody mistakes PostgreSQL's reaction
/// for CockroachDB's.
pub fn not_translated(form: &str, stmt: &str) -> PgError {
    let mut s: String = stmt.chars().take(200).collect();
    if s.len() < stmt.len() {
        s.push_str("...");
    }
    PgError::error("XX000", format!("crdb-standin: CockroachDB-only form not translated: {form}"))
        .with_detail(format!("statement: {s}"))
        .with_hint("molt-crdb-standin cannot emulate this statement on PostgreSQL; see tests/crdb-standin/README.md")
}

/// A function CockroachDB does not have. cockroachdb/cockroach
/// pkg/sql/sem/tree/function_name.go: `pgerror.Newf(pgcode.UndefinedFunction,
/// "unknown function: %s()", ...)`, pgcode.UndefinedFunction = "42883".
pub fn unknown_function(name: &str) -> PgError {
    PgError::error("42883", format!("unknown function: {name}()"))
}

/// Refusal of text COPY into a bytea column (`--copy-bytea refuse`); see
/// cockroachdb/cockroach#167309 (and pkg/sql/copy_from.go `readTextTupleDatum`).
pub fn copy_bytea_refused(table: &str, columns: &[String]) -> PgError {
    PgError::error(
        "0A000",
        format!(
            "crdb-standin: text-format COPY into bytea column(s) {} of {table} is refused: CockroachDB stores \
             the COPY-unescaped field bytes verbatim instead of decoding bytea text (cockroachdb/cockroach#167309)",
            columns.join(", ")
        ),
    )
}

/// What the stand-in says when the upstream PostgreSQL session does not default
/// to SERIALIZABLE, CockroachDB's default isolation (docs transactions.md,
/// "Isolation levels"; demo-serializable.md).
pub fn not_serializable(found: &str) -> PgError {
    PgError::error(
        "XX000",
        format!(
            "crdb-standin: upstream PostgreSQL session has default_transaction_isolation = '{found}'; \
             CockroachDB defaults to SERIALIZABLE, so the stand-in refuses to serve"
        ),
    )
    .with_hint("start the upstream with -c default_transaction_isolation=serializable (or ALTER SYSTEM SET default_transaction_isolation = 'serializable')")
    .fatal()
}
