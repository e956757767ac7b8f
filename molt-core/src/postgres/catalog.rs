//! A table's shape from `pg_catalog`: the stream table header, and how to
//! read each column with COPY.
//!
//! Everything is read with bound parameters inside the dump's snapshot
//! transaction. The catalogs, not `information_schema`, are used because
//! only they have what a faithful migration needs: array dimensions, enum
//! labels in order, domain base types and checks, owned sequences, index
//! definitions, partitioning.
//!
//! A partitioned table is one table to the stream: its rows are read from
//! the parent (which includes every partition) and its partitions are never
//! listed on their own.

use std::collections::HashMap;

use tokio_postgres::types::Oid;
use tokio_postgres::Client;

use super::copy_text::{ColumnDecoder, ValueKind};
use super::types::{self, Mapping};
use super::{DbContext, Result, SourceError};
use crate::digest::DigestColumn;
use crate::ident::quote_pg;
use crate::stream::{
    Check, Column, EnumType, ForeignKey, Generation, Index, Sequence, Shard, Slice, TableHeader,
    TableName,
};
use crate::value::LogicalType;

/// A table as the dump reads it.
#[derive(Clone, Debug)]
pub struct SourceTable {
    /// The header; its `slice` is replaced per section.
    pub header: TableHeader,
    pub oid: Oid,
    /// A partitioned parent (`relkind = 'p'`): read with its partitions.
    pub partitioned: bool,
    /// How to read each column, in column order.
    pub reads: Vec<ColumnRead>,
    /// Lossy mappings and other facts worth a line on stderr.
    pub notices: Vec<String>,
}

/// How one column is selected and decoded.
#[derive(Clone, Debug)]
pub struct ColumnRead {
    /// The SELECT-list expression: the quoted column, with a cast if needed.
    pub select: String,
    /// The type a literal must be cast to when compared with this column
    /// (shard bounds).
    pub literal_type: String,
    pub decoder: ColumnDecoder,
}

/// Every user table (plain or partitioned, never a partition) in schemas
/// other than the system ones, ordered by schema and name.
pub async fn list_tables(client: &Client) -> Result<Vec<TableName>> {
    let rows = client
        .query(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
             AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' \
             ORDER BY 1, 2",
            &[],
        )
        .await
        .ctx(|| "listing tables".into())?;
    Ok(rows
        .iter()
        .map(|r| TableName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect())
}

/// What `pg_type` says about a type.
#[derive(Clone, Debug)]
struct TypeRow {
    oid: Oid,
    name: String,
    schema: String,
    typtype: u8,
    category: u8,
    elem: Oid,
    base: Oid,
    base_typmod: i32,
    not_null: bool,
}

/// Introspection of one or more tables, caching type lookups.
pub struct Catalog<'a> {
    client: &'a Client,
    types: HashMap<Oid, TypeRow>,
}

impl<'a> Catalog<'a> {
    pub fn new(client: &'a Client) -> Self {
        Catalog {
            client,
            types: HashMap::new(),
        }
    }

    async fn type_row(&mut self, oid: Oid) -> Result<TypeRow> {
        if let Some(t) = self.types.get(&oid) {
            return Ok(t.clone());
        }
        let row = self
            .client
            .query_one(
                "SELECT t.typname::text, n.nspname::text, t.typtype, t.typcategory, t.typelem, t.typbasetype, \
                 t.typtypmod, t.typnotnull FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = $1",
                &[&oid],
            )
            .await
            .ctx(|| format!("reading type {oid}"))?;
        let t = TypeRow {
            oid,
            name: row.get(0),
            schema: row.get(1),
            typtype: row.get::<_, i8>(2) as u8,
            category: row.get::<_, i8>(3) as u8,
            elem: row.get(4),
            base: row.get(5),
            base_typmod: row.get(6),
            not_null: row.get(7),
        };
        self.types.insert(oid, t.clone());
        Ok(t)
    }

    async fn format_type(&self, oid: Oid, typmod: i32) -> Result<String> {
        let row = self
            .client
            .query_one("SELECT format_type($1, $2)", &[&oid, &typmod])
            .await
            .ctx(|| format!("formatting type {oid}"))?;
        Ok(row.get(0))
    }

    /// Loads a table; `Ok(None)` when there is no such table.
    pub async fn table(&mut self, name: &TableName) -> Result<Option<SourceTable>> {
        let context = || format!("reading the definition of {name}");
        let Some(rel) = self
            .client
            .query_opt(
                "SELECT c.oid, c.relkind = 'p', c.reltuples::float8, \
                 CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
                &[&name.schema, &name.name],
            )
            .await
            .ctx(context)?
        else {
            return Ok(None);
        };
        let oid: Oid = rel.get(0);
        let partitioned: bool = rel.get(1);
        let reltuples: f64 = rel.get(2);
        let partkey: Option<String> = rel.get(3);

        let mut table = SourceTable {
            header: TableHeader {
                table: name.clone(),
                target: None,
                columns: Vec::new(),
                slice: Slice {
                    phase: String::new(),
                    table: name.clone(),
                    filter: None,
                    target_filter: None,
                    shard: Shard::whole(),
                },
                indexes: Vec::new(),
                foreign_keys: Vec::new(),
                checks: Vec::new(),
                sequences: Vec::new(),
                estimated_rows: (reltuples >= 0.0).then_some(reltuples as u64),
                notes: Vec::new(),
                checksum: None,
            },
            oid,
            partitioned,
            reads: Vec::new(),
            notices: Vec::new(),
        };
        self.columns(&mut table)
            .await
            .map_err(|e| with_table(e, name))?;
        self.primary_key(&mut table)
            .await
            .map_err(|e| with_table(e, name))?;
        self.indexes(&mut table)
            .await
            .map_err(|e| with_table(e, name))?;
        self.foreign_keys(&mut table)
            .await
            .map_err(|e| with_table(e, name))?;
        self.checks(&mut table)
            .await
            .map_err(|e| with_table(e, name))?;
        self.sequences(&mut table)
            .await
            .map_err(|e| with_table(e, name))?;
        if partitioned {
            self.partitions(&mut table, partkey.unwrap_or_default())
                .await
                .map_err(|e| with_table(e, name))?;
        }
        Ok(Some(table))
    }

    async fn columns(&mut self, table: &mut SourceTable) -> Result<()> {
        let rows = self
            .client
            .query(
                "SELECT a.attname::text, a.attnotnull, a.atttypid, a.atttypmod, a.attndims, \
                 format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid), \
                 a.attidentity, a.attgenerated, \
                 CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN co.collname::text END \
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
                 LEFT JOIN pg_collation co ON co.oid = a.attcollation \
                 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&table.oid],
            )
            .await
            .ctx(|| "reading columns".into())?;
        for row in rows {
            let name: String = row.get(0);
            let not_null: bool = row.get(1);
            let typid: Oid = row.get(2);
            let typmod: i32 = row.get(3);
            let ndims: i32 = row.get(4);
            let declared: String = row.get(5);
            let default: Option<String> = row.get(6);
            let identity = row.get::<_, i8>(7) as u8;
            let generated = row.get::<_, i8>(8) as u8;
            let collation: Option<String> = row.get(9);

            let resolved = self.resolve(typid, typmod, &declared).await?;
            let mut mapping = resolved.mapping.clone();
            if let Some(notice) = mapping.notice.take() {
                table
                    .notices
                    .push(format!("{}.{name}: {notice}", table.header.table));
            }
            let array_dims = if resolved.array {
                ndims.clamp(1, 6) as u8
            } else {
                0
            };
            let target_type = if resolved.array {
                format!("{}[]", mapping.target_type)
            } else {
                mapping.target_type.clone()
            };
            let select = match mapping.read_cast {
                Some(cast) if resolved.array => format!("{}::{cast}[]", quote_pg(&name)),
                Some(cast) => format!("{}::{cast}", quote_pg(&name)),
                None => quote_pg(&name),
            };
            for (domain_name, expression) in &resolved.domain_checks {
                table.header.checks.push(Check {
                    name: format!("{name}_{domain_name}"),
                    expression: substitute_value(expression, &quote_pg(&name)),
                });
            }
            let generation = if generated == b's' {
                Some(Generation::Generated {
                    expression: default.clone().unwrap_or_default(),
                    stored: true,
                })
            } else if identity == b'a'
                || identity == b'd'
                || default
                    .as_deref()
                    .is_some_and(|d| d.starts_with("nextval("))
            {
                Some(Generation::Identity)
            } else {
                None
            };
            let default = if generated == b's' { None } else { default };
            let target_default = default.as_deref().and_then(portable_default);
            let kind = value_kind(mapping.logical);
            table.reads.push(ColumnRead {
                select,
                literal_type: resolved.source_type.clone(),
                decoder: ColumnDecoder {
                    name: name.clone(),
                    kind,
                    array: resolved.array,
                    digest: DigestColumn {
                        logical: mapping.logical,
                        padded: mapping.padded,
                        is_array: resolved.array,
                    },
                },
            });
            table.header.columns.push(Column {
                name,
                source_type: resolved.source_type,
                target_type,
                logical: mapping.logical,
                array_dims,
                nullable: !(not_null || resolved.not_null),
                pk: None,
                default,
                target_default,
                enum_type: resolved.enum_type,
                domain: resolved.domain,
                charset: None,
                collation,
                generation,
                padded: mapping.padded,
            });
        }
        if table.header.columns.is_empty() {
            return Err(SourceError::new(
                "reading columns",
                "the table has no columns",
            ));
        }
        Ok(())
    }

    /// Resolves domains (to their base type) and arrays (to their element
    /// type) and maps the result.
    async fn resolve(&mut self, typid: Oid, typmod: i32, declared: &str) -> Result<Resolved> {
        let mut t = self.type_row(typid).await?;
        let mut typmod = typmod;
        let mut domain = None;
        let mut domain_checks = Vec::new();
        let mut not_null = false;
        while t.typtype == b'd' {
            if domain.is_none() {
                domain = Some(if t.schema == "public" {
                    t.name.clone()
                } else {
                    format!("{}.{}", t.schema, t.name)
                });
            }
            not_null |= t.not_null;
            domain_checks.extend(self.domain_checks(t.oid).await?);
            if typmod < 0 {
                typmod = t.base_typmod;
            }
            t = self.type_row(t.base).await?;
        }
        let source_type = if domain.is_some() {
            self.format_type(t.oid, typmod).await?
        } else {
            declared.to_string()
        };
        let array = t.category == b'A' && t.elem != 0;
        let mut elem = if array {
            self.type_row(t.elem).await?
        } else {
            t.clone()
        };
        while elem.typtype == b'd' {
            elem = self.type_row(elem.base).await?;
        }
        let (mapping, enum_type) = if elem.typtype == b'e' {
            let labels = self.enum_labels(elem.oid).await?;
            let target = format!("{}.{}", quote_pg(&elem.schema), quote_pg(&elem.name));
            let enum_type = EnumType {
                schema: elem.schema.clone(),
                name: elem.name.clone(),
                labels,
            };
            (
                Mapping {
                    logical: LogicalType::Enum,
                    target_type: target,
                    read_cast: None,
                    padded: false,
                    notice: None,
                },
                Some(enum_type),
            )
        } else {
            let builtin = if elem.schema == "pg_catalog" {
                types::map_builtin(&elem.name, typmod)
            } else if elem.typtype == b'b' {
                types::map_extension(&elem.name, &source_type)
            } else {
                None
            };
            (
                builtin.unwrap_or_else(|| types::fallback(&source_type)),
                None,
            )
        };
        Ok(Resolved {
            mapping,
            source_type,
            array,
            domain,
            domain_checks,
            not_null,
            enum_type,
        })
    }

    async fn domain_checks(&self, oid: Oid) -> Result<Vec<(String, String)>> {
        let rows = self
            .client
            .query(
                "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
                 WHERE contypid = $1 AND contype = 'c' ORDER BY conname",
                &[&oid],
            )
            .await
            .ctx(|| "reading domain constraints".into())?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), strip_check(&r.get::<_, String>(1)).to_string()))
            .collect())
    }

    async fn enum_labels(&self, oid: Oid) -> Result<Vec<String>> {
        let rows = self
            .client
            .query(
                "SELECT enumlabel::text FROM pg_enum WHERE enumtypid = $1 ORDER BY enumsortorder",
                &[&oid],
            )
            .await
            .ctx(|| "reading enum labels".into())?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn primary_key(&self, table: &mut SourceTable) -> Result<()> {
        let rows = self
            .client
            .query(
                "SELECT a.attname::text, k.ord::int4 FROM pg_constraint c, unnest(c.conkey) WITH ORDINALITY k(attnum, ord), \
                 pg_attribute a WHERE c.conrelid = $1 AND c.contype = 'p' AND a.attrelid = c.conrelid AND a.attnum = k.attnum",
                &[&table.oid],
            )
            .await
            .ctx(|| "reading the primary key".into())?;
        for row in rows {
            let name: String = row.get(0);
            let position: i32 = row.get(1);
            if let Some(column) = table.header.columns.iter_mut().find(|c| c.name == name) {
                column.pk = Some(position as u16);
            }
        }
        Ok(())
    }

    async fn indexes(&self, table: &mut SourceTable) -> Result<()> {
        let rows = self
            .client
            .query(
                "SELECT ic.relname::text, i.indisunique, con.contype IS NOT NULL, pg_get_expr(i.indpred, i.indrelid), \
                 am.amname::text, pg_get_indexdef(i.indexrelid), \
                 ARRAY(SELECT CASE WHEN i.indkey[k - 1] <> 0 \
                   THEN (SELECT attname::text FROM pg_attribute WHERE attrelid = i.indrelid AND attnum = i.indkey[k - 1]) \
                   ELSE pg_get_indexdef(i.indexrelid, k, true) END \
                   FROM generate_series(1, i.indnkeyatts) k ORDER BY k) \
                 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam \
                 LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid \
                   AND con.contype IN ('u', 'x') \
                 WHERE i.indrelid = $1 AND NOT i.indisprimary ORDER BY ic.relname",
                &[&table.oid],
            )
            .await
            .ctx(|| "reading indexes".into())?;
        for row in rows {
            let method: String = row.get(4);
            table.header.indexes.push(Index {
                name: row.get(0),
                columns: row.get(6),
                unique: row.get(1),
                constraint: row.get(2),
                predicate: row.get(3),
                method: (method != "btree").then_some(method),
                definition: Some(row.get(5)),
            });
        }
        Ok(())
    }

    async fn foreign_keys(&self, table: &mut SourceTable) -> Result<()> {
        table.header.foreign_keys = self.foreign_keys_of(&[table.oid]).await?;
        Ok(())
    }

    /// Foreign keys declared on any of `relations` (not inherited from a
    /// parent), deduplicated by what they constrain.
    async fn foreign_keys_of(&self, relations: &[Oid]) -> Result<Vec<ForeignKey>> {
        let rows = self
            .client
            .query(
                "SELECT con.conname::text, rn.nspname::text, rc.relname::text, \
                 ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, o) \
                   JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o), \
                 ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, o) \
                   JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o), \
                 con.confdeltype, con.confupdtype \
                 FROM pg_constraint con JOIN pg_class rc ON rc.oid = con.confrelid \
                 JOIN pg_namespace rn ON rn.oid = rc.relnamespace \
                 WHERE con.conrelid = ANY($1) AND con.contype = 'f' AND con.conparentid = 0 \
                 ORDER BY con.conname",
                &[&relations],
            )
            .await
            .ctx(|| "reading foreign keys".into())?;
        let mut keys: Vec<ForeignKey> = Vec::new();
        for row in rows {
            let fk = ForeignKey {
                name: row.get(0),
                references: TableName::new(row.get::<_, String>(1), row.get::<_, String>(2)),
                columns: row.get(3),
                referenced_columns: row.get(4),
                on_delete: fk_action(row.get::<_, i8>(5) as u8),
                on_update: fk_action(row.get::<_, i8>(6) as u8),
            };
            let duplicate = keys.iter().any(|k| {
                k.columns == fk.columns
                    && k.references == fk.references
                    && k.referenced_columns == fk.referenced_columns
            });
            if !duplicate {
                keys.push(fk);
            }
        }
        Ok(keys)
    }

    async fn checks(&self, table: &mut SourceTable) -> Result<()> {
        let rows = self
            .client
            .query(
                "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
                 WHERE conrelid = $1 AND contype = 'c' ORDER BY conname",
                &[&table.oid],
            )
            .await
            .ctx(|| "reading check constraints".into())?;
        for row in rows {
            let definition: String = row.get(1);
            table.header.checks.push(Check {
                name: row.get(0),
                expression: strip_check(&definition).to_string(),
            });
        }
        Ok(())
    }

    /// Sequences owned by a column (serial, identity) or named in a
    /// `nextval` default, with the value they would hand out next.
    async fn sequences(&self, table: &mut SourceTable) -> Result<()> {
        let rows = self
            .client
            .query(
                "WITH owned AS ( \
                   SELECT d.objid AS seq, a.attname::text AS col FROM pg_depend d \
                   JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
                   JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid \
                   WHERE d.refobjid = $1 AND d.classid = 'pg_class'::regclass \
                   AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') \
                 UNION \
                   SELECT dep.refobjid, a.attname::text FROM pg_attrdef ad \
                   JOIN pg_depend dep ON dep.classid = 'pg_attrdef'::regclass AND dep.objid = ad.oid \
                     AND dep.refclassid = 'pg_class'::regclass \
                   JOIN pg_class s ON s.oid = dep.refobjid AND s.relkind = 'S' \
                   JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum \
                   WHERE ad.adrelid = $1) \
                 SELECT n.nspname::text, c.relname::text, o.col, \
                   (CASE WHEN ps.last_value IS NULL THEN ps.start_value ELSE ps.last_value::numeric + ps.increment_by END)::text \
                 FROM owned o JOIN pg_class c ON c.oid = o.seq JOIN pg_namespace n ON n.oid = c.relnamespace \
                 LEFT JOIN pg_sequences ps ON ps.schemaname = n.nspname AND ps.sequencename = c.relname \
                 ORDER BY 3, 1, 2",
                &[&table.oid],
            )
            .await
            .ctx(|| "reading sequences".into())?;
        for row in rows {
            table.header.sequences.push(Sequence {
                name: Some(TableName::new(
                    row.get::<_, String>(0),
                    row.get::<_, String>(1),
                )),
                column: row.get(2),
                next_value: row.get(3),
            });
        }
        Ok(())
    }

    /// Notes the partitioning, sums the partitions' row estimates, and
    /// carries foreign keys declared on partitions up to the parent.
    async fn partitions(&self, table: &mut SourceTable, partkey: String) -> Result<()> {
        let rows = self
            .client
            .query(
                "SELECT t.relid::oid, t.isleaf, c.reltuples::float8 FROM pg_partition_tree($1::oid::regclass) t \
                 JOIN pg_class c ON c.oid = t.relid WHERE t.level > 0",
                &[&table.oid],
            )
            .await
            .ctx(|| "reading partitions".into())?;
        let partitions: Vec<Oid> = rows.iter().map(|r| r.get(0)).collect();
        let leaves = rows.iter().filter(|r| r.get::<_, bool>(1)).count();
        let estimate: f64 = rows
            .iter()
            .filter(|r| r.get::<_, bool>(1))
            .map(|r| r.get::<_, f64>(2).max(0.0))
            .sum();
        table.header.estimated_rows = Some(estimate as u64);
        table.header.notes.push(format!(
            "partitioned by {partkey}; {leaves} partition(s) dumped as this one table"
        ));
        for fk in self.foreign_keys_of(&partitions).await? {
            let known = table.header.foreign_keys.iter().any(|k| {
                k.columns == fk.columns
                    && k.references == fk.references
                    && k.referenced_columns == fk.referenced_columns
            });
            if !known {
                table.header.notes.push(format!(
                    "foreign key {} was declared on a partition",
                    fk.name
                ));
                let name = format!("{}_{}_fkey", table.header.table.name, fk.columns.join("_"));
                table.header.foreign_keys.push(ForeignKey { name, ..fk });
            }
        }
        Ok(())
    }
}

/// A type after domains and arrays are resolved.
struct Resolved {
    mapping: Mapping,
    source_type: String,
    array: bool,
    domain: Option<String>,
    domain_checks: Vec<(String, String)>,
    not_null: bool,
    enum_type: Option<EnumType>,
}

fn with_table(err: SourceError, table: &TableName) -> SourceError {
    SourceError::new(format!("table {table}: {}", err.context), err.message)
}

/// The decoding a logical type needs beyond unescaping.
pub fn value_kind(logical: LogicalType) -> ValueKind {
    match logical {
        LogicalType::Bool => ValueKind::Bool,
        LogicalType::Date | LogicalType::Timestamp => ValueKind::Era,
        LogicalType::Timestamptz => ValueKind::Timestamptz,
        LogicalType::Bytes => ValueKind::Bytea,
        LogicalType::Json => ValueKind::Json,
        LogicalType::Decimal => ValueKind::Decimal,
        _ => ValueKind::Plain,
    }
}

fn fk_action(code: u8) -> Option<String> {
    match code {
        b'r' => Some("RESTRICT".into()),
        b'c' => Some("CASCADE".into()),
        b'n' => Some("SET NULL".into()),
        b'd' => Some("SET DEFAULT".into()),
        _ => None, // 'a': NO ACTION, the default
    }
}

/// `CHECK ((x > 0)) NOT VALID` to `(x > 0)`.
fn strip_check(definition: &str) -> &str {
    let d = definition.trim();
    let d = d.strip_suffix(" NOT VALID").unwrap_or(d);
    let d = d.strip_suffix(" NO INHERIT").unwrap_or(d);
    match d.strip_prefix("CHECK ") {
        Some(rest) => rest.trim(),
        None => d,
    }
}

/// Replaces the keyword `VALUE` of a domain check with the column, outside
/// string literals and quoted identifiers.
fn substitute_value(expression: &str, column: &str) -> String {
    let mut out = String::with_capacity(expression.len() + column.len());
    let bytes = expression.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\'' || b == b'"' {
            let quote = b;
            let start = i;
            i += 1;
            while i < bytes.len() {
                if bytes[i] == quote {
                    if bytes.get(i + 1) == Some(&quote) {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i = (i + 1).min(bytes.len());
            out.push_str(&expression[start..i]);
            continue;
        }
        let is_word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        if bytes[i..].starts_with(b"VALUE")
            && (i == 0 || !is_word(bytes[i - 1]))
            && bytes.get(i + 5).map_or(true, |&c| !is_word(c))
        {
            out.push_str(column);
            i += 5;
            continue;
        }
        let ch = expression[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// A default expression both CockroachDB and PostgreSQL evaluate the same
/// way: constants and a few well-known functions. The cast PostgreSQL adds to
/// a string constant is dropped (the column type coerces it).
pub fn portable_default(expression: &str) -> Option<String> {
    let e = expression.trim();
    let lower = e.to_ascii_lowercase();
    match lower.as_str() {
        "now()" | "current_timestamp" | "transaction_timestamp()" => return Some("now()".into()),
        "current_date" => return Some("current_date".into()),
        "gen_random_uuid()" => return Some("gen_random_uuid()".into()),
        "true" | "false" | "null" => return Some(lower),
        _ => {}
    }
    // `'text'` or `'text'::type`.
    if let Some(rest) = e.strip_prefix('\'') {
        let bytes = rest.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'\'' {
                if bytes.get(i + 1) == Some(&b'\'') {
                    i += 2;
                    continue;
                }
                let after = &rest[i + 1..];
                let cast_ok = after.is_empty()
                    || after.strip_prefix("::").is_some_and(|t| {
                        !t.is_empty()
                            && t.bytes()
                                .all(|c| c.is_ascii_alphanumeric() || b" _[]().,\"".contains(&c))
                            && !t.contains("::")
                    });
                return cast_ok.then(|| format!("'{}'", &rest[..i]));
            }
            i += 1;
        }
        return None;
    }
    // A number, possibly parenthesized and cast: `0`, `(-1)`, `1.5`, `'...'`.
    let number = e.split("::").next().unwrap_or(e);
    let number = number
        .strip_prefix('(')
        .and_then(|n| n.strip_suffix(')'))
        .unwrap_or(number);
    let digits = number.strip_prefix('-').unwrap_or(number);
    let is_number = !digits.is_empty()
        && digits.bytes().all(|c| c.is_ascii_digit() || c == b'.')
        && digits.bytes().filter(|&c| c == b'.').count() <= 1
        && digits.bytes().next().is_some_and(|c| c.is_ascii_digit());
    let cast_ok = match e.split_once("::") {
        Some((_, t)) => t
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b" _(),".contains(&c)),
        None => true,
    };
    (is_number && cast_ok).then(|| number.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_that_travel() {
        assert_eq!(portable_default("now()").as_deref(), Some("now()"));
        assert_eq!(
            portable_default("CURRENT_TIMESTAMP").as_deref(),
            Some("now()")
        );
        assert_eq!(
            portable_default("'abc'::character varying").as_deref(),
            Some("'abc'")
        );
        assert_eq!(
            portable_default("'it''s'::text").as_deref(),
            Some("'it''s'")
        );
        assert_eq!(portable_default("0").as_deref(), Some("0"));
        assert_eq!(portable_default("'-1'::integer").as_deref(), Some("'-1'"));
        assert_eq!(portable_default("(-1)").as_deref(), Some("-1"));
        assert_eq!(
            portable_default("1.5::numeric(3,1)").as_deref(),
            Some("1.5")
        );
        assert_eq!(portable_default("nextval('s'::regclass)"), None);
        assert_eq!(portable_default("lower('x'::text)"), None);
        assert_eq!(portable_default("'a'::text || 'b'::text"), None);
    }

    #[test]
    fn domain_checks_name_the_column() {
        assert_eq!(substitute_value("(VALUE > 0)", "\"qty\""), "(\"qty\" > 0)");
        assert_eq!(
            substitute_value("(VALUE <> 'VALUE'::text AND \"VALUE\" IS NULL)", "\"c\""),
            "(\"c\" <> 'VALUE'::text AND \"VALUE\" IS NULL)"
        );
        assert_eq!(strip_check("CHECK ((x > 0)) NOT VALID"), "((x > 0))");
    }
}
