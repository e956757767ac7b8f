//! MySQL and MariaDB as the source of molt-dump.
//!
//! The work is in `molt_core::mysql` (catalog, type mapping, snapshot,
//! section dumps); this module turns the command line into its options,
//! expands table globs against the source database, and points the stream at
//! stdout.

use anyhow::Context;
use molt_core::exit::{ExitError, USAGE};
use molt_core::mysql::typemap::TypeMap;
use molt_core::mysql::{self, DumpOptions};
use molt_core::stream::{Slice, TableName};
use molt_core::ConnUrl;

use crate::slices::{glob_match, has_glob};

/// Dumps `slices` from a MySQL source to stdout as a stream.
pub async fn dump(args: &crate::Args, source: &ConnUrl, slices: Vec<Slice>) -> anyhow::Result<i32> {
    if !matches!(args.format, crate::Format::Ndjson) {
        anyhow::bail!(
            "CSV output is not supported for MySQL sources yet: use the default NDJSON stream"
        );
    }
    let opts = mysql::opts(source)?;
    let db = mysql::database(&opts)?;
    let options = options(args)?;
    let default_schema = args.schema.clone().unwrap_or_else(|| db.clone());
    let slices = crate::slices::without_excluded(
        &args.exclusions()?,
        expand(&opts, &default_schema, slices).await?,
    )?;
    let summary = mysql::dump::dump_all(
        &opts,
        &source.redacted(),
        &options,
        slices,
        usize::from(args.jobs),
        args.spill_memory(),
        crate::stdout_file()?,
    )
    .await
    .with_context(|| format!("dumping from {source}"))?;
    if !args.quiet {
        let rows: u64 = summary.sections.iter().map(|s| s.rows).sum();
        molt_core::info!(
            "{} sections, {rows} rows{}",
            summary.sections.len(),
            summary
                .position
                .as_deref()
                .map(|p| format!(", position {p}"))
                .unwrap_or_default()
        );
        for s in &summary.sections {
            for c in &s.changes {
                if let Some(t) = &s.table {
                    molt_core::info!(
                        "{t}.{}: {} values changed ({})",
                        c.column,
                        c.count,
                        c.policy
                    );
                }
            }
        }
    }
    Ok(molt_core::exit::SUCCESS)
}

/// The dump's shape from the MySQL flags; unset flags keep the documented
/// defaults of [`DumpOptions`].
fn options(args: &crate::Args) -> anyhow::Result<DumpOptions> {
    let defaults = DumpOptions::default();
    let type_map = match &args.type_map {
        Some(path) => TypeMap::load(path).context("--type-map")?,
        None => defaults.type_map,
    };
    let target_schema = match args.target_schema.as_deref().map(str::trim) {
        Some("") => {
            return Err(ExitError::new(USAGE, "--target-schema: the schema name is empty").into())
        }
        Some(name) => name.to_string(),
        None => defaults.target_schema,
    };
    Ok(DumpOptions {
        zero_dates: args.zero_dates.unwrap_or(defaults.zero_dates),
        keep_case: args.keep_case,
        target_schema,
        type_map,
    })
}

/// Fills in the default database and expands globs (`shop.*`, `ord*`)
/// against the source's base tables.
async fn expand(
    opts: &mysql::Opts,
    default_schema: &str,
    slices: Vec<Slice>,
) -> anyhow::Result<Vec<Slice>> {
    let mut out = Vec::new();
    let mut conn = None;
    for slice in slices {
        let schema = if slice.table.schema.is_empty() {
            default_schema.to_string()
        } else {
            slice.table.schema.clone()
        };
        if !has_glob(&slice.table.name) {
            out.push(Slice {
                table: TableName::new(schema, slice.table.name.clone()),
                ..slice
            });
            continue;
        }
        if conn.is_none() {
            conn = Some(mysql::connect(opts).await?);
        }
        let tables =
            mysql::catalog::list_tables(conn.as_mut().expect("connected"), &schema).await?;
        let matched: Vec<_> = tables
            .into_iter()
            .filter(|t| glob_match(&slice.table.name, &t.name))
            .collect();
        if matched.is_empty() {
            anyhow::bail!("no table of database {schema} matches {}", slice.table.name);
        }
        for t in matched {
            out.push(Slice {
                table: TableName::new(schema.clone(), t.name),
                ..slice.clone()
            });
        }
    }
    if let Some(c) = conn {
        let _ = c.disconnect().await;
    }
    Ok(out)
}
