//! The records of the stream format, defined once for every tool.
//!
//! The contract these types implement is `docs/stream-format.md`. Every
//! record but the row is a JSON object with a `"type"` field; a row is a bare
//! JSON array, because rows are nearly all of a stream and a wrapper object
//! would cost bytes and parsing on every one. Unknown fields are ignored, so
//! a newer minor version can add fields without breaking older readers.

use serde::{Deserialize, Serialize};

use crate::value::LogicalType;

/// The stream format's version. A reader accepts any minor version of its
/// own major version and refuses a newer major one.
pub const FORMAT_VERSION: &str = "1.1";
/// From this minor version on, a writer ends the stream with a
/// [`Record::Close`], and a reader refuses such a stream without one.
pub const CLOSE_SINCE_MINOR: u32 = 1;
/// The major part of [`FORMAT_VERSION`].
pub const FORMAT_MAJOR: u32 = 1;

/// A table's qualified name, as it is on the source.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableName {
    /// Schema (PostgreSQL), database (MySQL) or owner (Oracle).
    pub schema: String,
    pub name: String,
}

impl TableName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        TableName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// Parses `schema.table` or `table` (with `default_schema`).
    pub fn parse(text: &str, default_schema: &str) -> TableName {
        match text.split_once('.') {
            Some((schema, name)) => TableName::new(schema, name),
            None => TableName::new(default_schema, text),
        }
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// One key-range shard of a slice: rows whose primary key `k` satisfies
/// `lower <= k < upper`, compared as a tuple. A missing bound is open, so the
/// first and last shards of a slice reach to the ends of the key space.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    /// 0-based position of this shard among the slice's shards.
    pub index: u32,
    /// How many shards the slice has.
    pub count: u32,
    /// Key columns the bounds refer to, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<String>,
    /// Inclusive lower bound, one stream-encoded value per key column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower: Option<Vec<serde_json::Value>>,
    /// Exclusive upper bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<Vec<serde_json::Value>>,
}

impl Shard {
    /// The single shard that is the whole slice.
    pub fn whole() -> Shard {
        Shard {
            index: 0,
            count: 1,
            ..Default::default()
        }
    }

    pub fn is_whole(&self) -> bool {
        self.lower.is_none() && self.upper.is_none()
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Widened: an index of u32::MAX read from a stream must print, not
        // overflow (found by fuzzing).
        write!(f, "{}/{}", u64::from(self.index) + 1, self.count)
    }
}

/// The first record of every stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamHeader {
    /// `major.minor`; see [`FORMAT_VERSION`].
    pub version: String,
    /// The tool that wrote the stream, e.g. `molt-dump 0.1.0`.
    pub producer: String,
    /// Where the rows were read, when the stream carries rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceInfo>,
}

/// The source of a dump and the snapshot every section was read from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub engine: crate::url::Engine,
    /// The source URL, redacted.
    pub url: String,
    /// Server version string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// The exported snapshot id (PostgreSQL) shared by all connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Replication position of the snapshot: a WAL LSN (PostgreSQL), a
    /// binlog file:position or GTID set (MySQL), an SCN (Oracle). Change data
    /// capture, if any, starts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
}

/// A slice: the rows of one table that belong to one phase, optionally one
/// key-range shard of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    /// Phase name from the plan (`A`, `eu-west`, ...); empty for an ad-hoc run.
    #[serde(default)]
    pub phase: String,
    pub table: TableName,
    /// SQL boolean expression in the source's dialect, written by the
    /// operator. Never built from data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The same predicate in the target's dialect, when it differs (used by
    /// molt-load's slice replacement and by molt-verify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_filter: Option<String>,
    #[serde(default = "Shard::whole")]
    pub shard: Shard,
}

impl Slice {
    /// The predicate to use on the target: `target_filter`, else `filter`.
    pub fn target_predicate(&self) -> Option<&str> {
        self.target_filter.as_deref().or(self.filter.as_deref())
    }
}

/// How a column's value is produced at the source, when it is not plain
/// storage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Generation {
    /// A stored or virtual generated column with this source expression. Its
    /// values are still dumped; the target column is created as a plain one.
    Generated { expression: String, stored: bool },
    /// IDENTITY / AUTO_INCREMENT / serial.
    Identity,
}

/// One column of a table header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// The type as the source declares it, e.g. `numeric(12,2)`, `tinyint(1) unsigned`.
    pub source_type: String,
    /// The type molt-load creates on the target, in SQL both CockroachDB and
    /// PostgreSQL accept, e.g. `DECIMAL(12,2)`.
    pub target_type: String,
    /// How values of this column are encoded in rows (see `docs/stream-format.md`).
    #[serde(rename = "type")]
    pub logical: LogicalType,
    /// Array dimensions; 0 for a scalar column.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub array_dims: u8,
    pub nullable: bool,
    /// Position in the primary key, 1-based; absent when not part of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pk: Option<u16>,
    /// Default expression in the source's dialect (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Default expression translated for the target, when it is portable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_default: Option<String>,
    /// For `type: "enum"`: the target enum type name and its labels in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enum_type: Option<EnumType>,
    /// The domain this column was declared with, resolved to its base type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Character set of a text column at the source (MySQL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charset: Option<String>,
    /// Collation at the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<Generation>,
    /// Fixed-width blank-padded text (SQL CHAR(n)): comparisons ignore
    /// trailing blanks, as the databases do.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub padded: bool,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// A named enum type on the target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnumType {
    pub schema: String,
    pub name: String,
    pub labels: Vec<String>,
}

/// A secondary index or unique constraint, created at finalize time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub name: String,
    /// Key columns, or expressions, in order.
    pub columns: Vec<String>,
    #[serde(default)]
    pub unique: bool,
    /// True when it is a UNIQUE constraint rather than a unique index.
    #[serde(default)]
    pub constraint: bool,
    /// Partial index predicate, in the source dialect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<String>,
    /// Index method when not the default (`gin`, `gist`, `fulltext`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The source's own DDL, for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
}

/// A foreign key, created and validated at finalize time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub name: String,
    pub columns: Vec<String>,
    pub references: TableName,
    pub referenced_columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_delete: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_update: Option<String>,
}

/// A CHECK constraint, created at finalize time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    /// The boolean expression, in the source dialect.
    pub expression: String,
}

/// A sequence owned by a column (serial, identity, AUTO_INCREMENT).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sequence {
    /// Qualified sequence name on the source; AUTO_INCREMENT has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<TableName>,
    pub column: String,
    /// The source's next value at snapshot time, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_value: Option<String>,
}

/// The header of a section: everything molt-load needs to create the table
/// now and finalize it later. The rows of this table (and shard) follow it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableHeader {
    pub table: TableName,
    /// Where the table lands on the target (schema and name after the
    /// identifier rules). Defaults to `table`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TableName>,
    pub columns: Vec<Column>,
    /// The slice this section carries.
    pub slice: Slice,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<Index>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_keys: Vec<ForeignKey>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequences: Vec<Sequence>,
    /// The source's row estimate for the table, for progress bars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_rows: Option<u64>,
    /// Source-specific facts worth keeping (partitioning, engine, comment).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The transport checksum the section's end record carries
    /// ([`super::checksum::LINES_BLAKE3`]); set by [`super::StreamWriter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl TableHeader {
    /// The target table name.
    pub fn target_name(&self) -> &TableName {
        self.target.as_ref().unwrap_or(&self.table)
    }

    /// Primary-key columns in key order.
    pub fn primary_key(&self) -> Vec<&Column> {
        let mut key: Vec<&Column> = self.columns.iter().filter(|c| c.pk.is_some()).collect();
        key.sort_by_key(|c| c.pk);
        key
    }

    /// Positions (in `columns`) of the primary key's columns, in key order.
    pub fn primary_key_positions(&self) -> Vec<usize> {
        let mut key: Vec<(u16, usize)> = self
            .columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.pk.map(|p| (p, i)))
            .collect();
        key.sort();
        key.into_iter().map(|(_, i)| i).collect()
    }
}

/// Closes a section: how many rows it had and their digest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SectionEnd {
    pub table: TableName,
    pub shard: Shard,
    pub rows: u64,
    /// Order-independent digest of the rows; see [`crate::digest`].
    pub digest: String,
    /// Counted value changes the source reader made under an explicit
    /// policy (e.g. MySQL zero dates written as NULL), by column.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ValueChange>,
    /// The transport checksum announced by the table header: see
    /// [`super::checksum`]. Set by [`super::StreamWriter`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

/// A value change made under a documented, user-chosen policy. Nothing is
/// ever changed without being counted here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValueChange {
    pub column: String,
    /// What was done, e.g. `zero-date-to-null`.
    pub policy: String,
    pub count: u64,
}

/// The outcome of one unit of work of a tool (molt-load: one section).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultRecord {
    pub tool: String,
    #[serde(default)]
    pub phase: String,
    pub table: TableName,
    pub shard: Shard,
    pub rows: u64,
    pub bytes: u64,
    pub digest: String,
    pub seconds: f64,
    /// `ok`, or `skipped` when the same section was already loaded.
    pub status: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ValueChange>,
    /// How molt-load sent the rows: `text` or `binary` COPY.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_format: Option<String>,
    /// Why the section was written although the ledger had it loaded
    /// (the target no longer held it), or why it was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Everything that can appear in a stream, one variant per record type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Stream(StreamHeader),
    Slice(Slice),
    Table(Box<TableHeader>),
    End(SectionEnd),
    Result(Box<ResultRecord>),
    /// molt-verify's findings; the payload shape is set by `kind` (see
    /// `docs/stream-format.md`), kept as JSON so reports can grow fields.
    Report(serde_json::Map<String, serde_json::Value>),
    /// A warning worth keeping with the data (e.g. "view not migrated").
    Notice(Notice),
    /// The last record of a whole stream (format 1.1 on). Every section
    /// ends with its own `end` record, so a stream cut *between* two
    /// sections looked whole; the close record is what tells a finished
    /// producer from one that stopped there.
    Close,
}

/// A non-fatal finding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub level: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
}

/// The record type names a reader knows, for error messages.
pub const KNOWN_TYPES: &[&str] = &[
    "stream", "slice", "table", "end", "result", "report", "notice", "close",
];
