//! The phase plan: parsing the TOML file and resolving it against the
//! source's tables.
//!
//! Parsing is strict (`deny_unknown_fields`): a misspelt key in a migration
//! plan must stop the run, not silently move the wrong rows. Resolution turns
//! names and patterns into concrete tables and every table's rule into one
//! SQL predicate, so that `plan`, `audit` and `estimate` all slice with the
//! same SQL.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use molt_core::select::Exclusions;
use molt_core::stream::TableName;
use serde::Deserialize;

use crate::source::{ForeignKey, Source};

/// The plan file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    /// Default schema (PostgreSQL) or database (MySQL) of unqualified names.
    pub schema: Option<String>,
    /// Tables no phase takes, as globs (`audit_*`, `public.tmp_*`), applied
    /// after every phase's names are expanded (see `molt_core::select`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// The same, as regular expressions matched against `schema.table`.
    #[serde(default)]
    pub exclude_regex: Vec<String>,
    #[serde(default)]
    pub phase: Vec<PhaseSpec>,
}

/// One `[[phase]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    pub name: String,
    pub filter: Option<String>,
    pub target_filter: Option<String>,
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub filters: BTreeMap<String, String>,
    #[serde(default)]
    pub via: BTreeMap<String, String>,
    #[serde(default)]
    pub whole: Vec<String>,
}

impl PlanFile {
    pub fn read(path: &Path) -> anyhow::Result<PlanFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading plan {}", path.display()))?;
        PlanFile::parse(&text, &path.display().to_string())
    }

    /// Parses and checks the text of a plan; `origin` (the file's name) is
    /// what errors call it.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<PlanFile> {
        let plan: PlanFile = toml::from_str(text).with_context(|| format!("plan {origin}"))?;
        if plan.phase.is_empty() {
            bail!("plan {origin}: no [[phase]] entries");
        }
        let mut seen = std::collections::HashSet::new();
        for phase in &plan.phase {
            if phase.name.trim().is_empty() {
                bail!("plan {origin}: a phase has an empty name");
            }
            if !seen.insert(phase.name.as_str()) {
                bail!("plan {origin}: phase {:?} appears twice", phase.name);
            }
        }
        Ok(plan)
    }
}

/// How one table's rows are chosen in one phase.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// Rows matching an operator-written filter.
    Filter {
        source: String,
        target: Option<String>,
    },
    /// Every row.
    Whole,
    /// Rows whose parent row (through a foreign key) is in the phase.
    Via { parent: TableName, fk: ForeignKey },
}

/// One table of one phase, resolved.
#[derive(Clone, Debug)]
pub struct Entry {
    pub table: TableName,
    pub rule: Rule,
}

/// A phase, resolved.
#[derive(Clone, Debug)]
pub struct Phase {
    pub name: String,
    pub entries: Vec<Entry>,
}

impl Phase {
    pub fn entry(&self, table: &TableName) -> Option<&Entry> {
        self.entries.iter().find(|e| &e.table == table)
    }

    /// The source-dialect predicate of a table in this phase: `None` means
    /// every row. `via` rules become an IN-subquery over the parent's own
    /// predicate, recursively.
    pub fn predicate(&self, table: &TableName, source: &Source) -> anyhow::Result<Option<String>> {
        self.predicate_depth(table, source, 0)
    }

    fn predicate_depth(
        &self,
        table: &TableName,
        source: &Source,
        depth: usize,
    ) -> anyhow::Result<Option<String>> {
        if depth > 32 {
            bail!(
                "phase {}: `via` chain through {table} is circular",
                self.name
            );
        }
        let entry = self
            .entry(table)
            .with_context(|| format!("phase {} has no table {table}", self.name))?;
        Ok(match &entry.rule {
            Rule::Whole => None,
            Rule::Filter { source: filter, .. } => Some(filter.clone()),
            Rule::Via { parent, fk } => {
                let parent_predicate = self.predicate_depth(parent, source, depth + 1)?;
                let child_cols = source.column_tuple(&fk.columns);
                let parent_cols = source.column_list(&fk.referenced_columns);
                let mut sub = format!("SELECT {parent_cols} FROM {}", source.quote_table(parent));
                if let Some(p) = parent_predicate {
                    sub.push_str(&format!(" WHERE ({p})"));
                }
                Some(format!("{child_cols} IN ({sub})"))
            }
        })
    }

    /// The target-dialect predicate, when it differs from the source's: an
    /// explicit `target_filter`, or a `via` subquery, which names tables and
    /// columns and so must use the target's quoting and names.
    pub fn target_predicate(
        &self,
        table: &TableName,
        naming: &TargetNaming,
    ) -> anyhow::Result<Option<String>> {
        let entry = self
            .entry(table)
            .with_context(|| format!("phase {} has no table {table}", self.name))?;
        match &entry.rule {
            Rule::Filter { target, .. } => Ok(target.clone()),
            Rule::Whole => Ok(None),
            Rule::Via { .. } if naming.is_identity() => Ok(None),
            Rule::Via { .. } => self.target_side(table, naming, 0),
        }
    }

    /// The predicate as it must read on the target, recursively.
    fn target_side(
        &self,
        table: &TableName,
        naming: &TargetNaming,
        depth: usize,
    ) -> anyhow::Result<Option<String>> {
        if depth > 32 {
            bail!(
                "phase {}: `via` chain through {table} is circular",
                self.name
            );
        }
        let entry = self
            .entry(table)
            .with_context(|| format!("phase {} has no table {table}", self.name))?;
        Ok(match &entry.rule {
            Rule::Whole => None,
            Rule::Filter { source, target } => {
                Some(target.clone().unwrap_or_else(|| source.clone()))
            }
            Rule::Via { parent, fk } => {
                let parent_predicate = self.target_side(parent, naming, depth + 1)?;
                let quoted = |cols: &[String]| -> Vec<String> {
                    cols.iter()
                        .map(|c| molt_core::ident::quote_pg(&naming.column(c)))
                        .collect()
                };
                let child_cols = quoted(&fk.columns);
                let child = if child_cols.len() == 1 {
                    child_cols[0].clone()
                } else {
                    format!("({})", child_cols.join(", "))
                };
                let mut sub = format!(
                    "SELECT {} FROM {}",
                    quoted(&fk.referenced_columns).join(", "),
                    molt_core::ident::quote_pg_table(&naming.table(parent))
                );
                if let Some(p) = parent_predicate {
                    sub.push_str(&format!(" WHERE ({p})"));
                }
                Some(format!("{child} IN ({sub})"))
            }
        })
    }
}

/// How source names become target names: unchanged for PostgreSQL sources;
/// for MySQL, lower-cased (unless `--keep-case`) in the schema chosen with
/// `--target-schema`; for Oracle, unquoted (upper-case) names lower-cased
/// and others kept (`molt_core::oracle::target_name`), the owner as the
/// schema unless `--target-schema` names one. The same rules molt-dump
/// applies.
#[derive(Clone, Debug)]
pub struct TargetNaming {
    /// `None`: tables keep their source schema (Oracle: its target name).
    pub schema: Option<String>,
    pub keep_case: bool,
    /// Oracle's rule instead of `keep_case`.
    pub oracle: bool,
}

impl TargetNaming {
    pub fn identity() -> TargetNaming {
        TargetNaming {
            schema: None,
            keep_case: true,
            oracle: false,
        }
    }

    /// Oracle's naming, into `schema` or each owner's target name.
    pub fn oracle(schema: Option<String>) -> TargetNaming {
        TargetNaming {
            schema,
            keep_case: false,
            oracle: true,
        }
    }

    pub fn is_identity(&self) -> bool {
        self.schema.is_none() && self.keep_case && !self.oracle
    }

    pub fn table(&self, table: &TableName) -> TableName {
        TableName::new(
            self.schema.clone().unwrap_or_else(|| {
                if self.oracle {
                    molt_core::oracle::target_name(&table.schema)
                } else {
                    table.schema.clone()
                }
            }),
            self.column(&table.name),
        )
    }

    pub fn column(&self, name: &str) -> String {
        if self.oracle {
            molt_core::oracle::target_name(name)
        } else if self.keep_case {
            name.to_string()
        } else {
            name.to_lowercase()
        }
    }
}

/// The plan, resolved against the source.
#[derive(Clone, Debug)]
pub struct Plan {
    pub schema: String,
    pub phases: Vec<Phase>,
    /// The plan's `exclude` and the command line's `--exclude`, together.
    pub exclusions: Exclusions,
}

impl Plan {
    /// Resolves names and patterns against the source's tables and finds the
    /// foreign keys of `via` rules. Tables the plan's `exclude` or
    /// `also_excluded` (the command line's) match are taken out of every
    /// phase once names are expanded.
    pub async fn resolve(
        file: PlanFile,
        source: &mut Source,
        also_excluded: Exclusions,
    ) -> anyhow::Result<Plan> {
        let exclusions = Exclusions::new(&file.exclude, &file.exclude_regex, "the plan's exclude")?
            .and(also_excluded);
        let schema = file
            .schema
            .clone()
            .unwrap_or_else(|| source.default_schema());
        let mut schemas: Vec<String> = vec![schema.clone()];
        for phase in &file.phase {
            for name in phase
                .tables
                .iter()
                .chain(&phase.whole)
                .chain(phase.filters.keys())
                .chain(phase.via.keys())
            {
                if let Some((s, _)) = name.split_once('.') {
                    if !schemas.iter().any(|x| x == s) {
                        schemas.push(s.to_string());
                    }
                }
            }
        }
        let mut all_tables = Vec::new();
        for s in &schemas {
            all_tables.extend(source.tables(s).await?);
        }
        let mut phases = Vec::new();
        for spec in file.phase {
            let mut entries: Vec<Entry> = Vec::new();
            let add =
                |entries: &mut Vec<Entry>, table: TableName, rule: Rule| -> anyhow::Result<()> {
                    if entries.iter().any(|e| e.table == table) {
                        bail!(
                            "phase {}: table {table} is listed more than once",
                            spec.name
                        );
                    }
                    entries.push(Entry { table, rule });
                    Ok(())
                };
            for pattern in &spec.tables {
                for table in expand(pattern, &schema, &all_tables, &spec.name)? {
                    if spec
                        .filters
                        .keys()
                        .any(|k| TableName::parse(k, &schema) == table)
                    {
                        continue; // its own filter below
                    }
                    let filter = spec.filter.clone().with_context(|| {
                        format!("phase {}: table {table} is in `tables` but the phase has no `filter` (use `whole` for entire tables)", spec.name)
                    })?;
                    add(
                        &mut entries,
                        table,
                        Rule::Filter {
                            source: filter,
                            target: spec.target_filter.clone(),
                        },
                    )?;
                }
            }
            for (name, filter) in &spec.filters {
                for table in expand(name, &schema, &all_tables, &spec.name)? {
                    add(
                        &mut entries,
                        table,
                        Rule::Filter {
                            source: filter.clone(),
                            target: None,
                        },
                    )?;
                }
            }
            for pattern in &spec.whole {
                for table in expand(pattern, &schema, &all_tables, &spec.name)? {
                    add(&mut entries, table, Rule::Whole)?;
                }
            }
            for (child, parent) in &spec.via {
                let child = TableName::parse(child, &schema);
                let parent = TableName::parse(parent, &schema);
                if !all_tables.contains(&child) {
                    bail!(
                        "phase {}: `via` table {child} does not exist on the source",
                        spec.name
                    );
                }
                let fks = source.foreign_keys(&child).await?;
                let fk = fks
                    .into_iter()
                    .find(|fk| fk.parent == parent)
                    .with_context(|| {
                        format!(
                            "phase {}: `via`: {child} has no foreign key to {parent}",
                            spec.name
                        )
                    })?;
                add(&mut entries, child, Rule::Via { parent, fk })?;
            }
            for table in exclusions.retain(&mut entries, |e| &e.table) {
                let pattern = exclusions.excluding(&table).unwrap_or_default();
                molt_core::info!("phase {}: {table} excluded by {pattern:?}", spec.name);
            }
            if entries.is_empty() {
                bail!(
                    "phase {}: every table it names is excluded, so the phase would move nothing",
                    spec.name
                );
            }
            for entry in &entries {
                if let Rule::Via { parent, .. } = &entry.rule {
                    if !entries.iter().any(|e| &e.table == parent) {
                        bail!(
                            "phase {}: {} is sliced via {parent}, which is not in the phase",
                            spec.name,
                            entry.table
                        );
                    }
                }
            }
            phases.push(Phase {
                name: spec.name,
                entries,
            });
        }
        Ok(Plan {
            schema,
            phases,
            exclusions,
        })
    }

    /// Every table the plan mentions, in first-mention order.
    pub fn tables(&self) -> Vec<TableName> {
        let mut out: Vec<TableName> = Vec::new();
        for phase in &self.phases {
            for entry in &phase.entries {
                if !out.contains(&entry.table) {
                    out.push(entry.table.clone());
                }
            }
        }
        out
    }

    /// The phases named, or all; unknown names are an error.
    pub fn select(&self, names: &[String]) -> anyhow::Result<Vec<&Phase>> {
        if names.is_empty() {
            return Ok(self.phases.iter().collect());
        }
        names
            .iter()
            .map(|n| {
                self.phases.iter().find(|p| &p.name == n).with_context(|| {
                    let known: Vec<&str> = self.phases.iter().map(|p| p.name.as_str()).collect();
                    format!("no phase {n:?} in the plan (phases: {})", known.join(", "))
                })
            })
            .collect()
    }
}

/// Expands a name or glob pattern into existing tables. A plain name that
/// matches nothing is an error: a typo must not shrink a phase silently.
fn expand(
    pattern: &str,
    schema: &str,
    all: &[TableName],
    phase: &str,
) -> anyhow::Result<Vec<TableName>> {
    let wanted = TableName::parse(pattern, schema);
    let found: Vec<TableName> = all
        .iter()
        .filter(|t| glob_match(&wanted.schema, &t.schema) && glob_match(&wanted.name, &t.name))
        .cloned()
        .collect();
    if found.is_empty() {
        bail!(
            "phase {phase}: {pattern:?} matches no table on the source (schema {})",
            wanted.schema
        );
    }
    Ok(found)
}

pub use molt_core::select::glob_match;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parsing() {
        let err =
            toml::from_str::<PlanFile>("[[phase]]\nname = \"A\"\nfiltr = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("filtr"), "{err}");
        let ok: PlanFile = toml::from_str(
            "schema = \"public\"\n[[phase]]\nname = \"A\"\nfilter = \"region = 'A'\"\ntables = [\"orders\"]\nvia = { order_items = \"orders\" }\nwhole = [\"products\"]\n",
        )
        .unwrap();
        assert_eq!(ok.phase[0].via["order_items"], "orders");
    }
}
