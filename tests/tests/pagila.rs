//! Pagila from PostgreSQL to the target through `molt-dump | molt-load`,
//! checked independently of molt: per-table row counts, and per-table
//! content computed in SQL on both servers (every row cast to text, hashed
//! in key order), plus finalize creating the deferred constraints.

use molt_tests::*;

/// `schema.table` of every user table of the source, partitions excluded.
const TABLES_SQL: &str = "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1";

fn query_lines(url: &str, sql: &str) -> Vec<String> {
    psql_exec(
        url,
        format!("\\pset tuples_only on\n\\pset format unaligned\n{sql};"),
    )
    .lines()
    .map(str::trim)
    .filter(|l| !l.is_empty())
    .map(str::to_string)
    .collect()
}

/// Row count and a hash of the table's rows as text, sorted: computed by the
/// server, independently of molt's own digests.
fn content(url: &str, table: &str) -> String {
    let sql = format!("SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM {table} t");
    query_lines(url, &sql).pop().unwrap()
}

#[tokio::test]
async fn pagila_arrives_with_equal_counts_and_contents() {
    require_datasets!("pg-pagila/pagila-schema.sql", "pg-pagila/pagila-data.sql");
    let source = fresh_pg_database(&pg_source_url(), "pagila_src").await;
    let target = fresh_pg_database(&pg_target_url(), "pagila_tgt").await;
    psql_exec(&source, shared_dataset("pg-pagila/pagila-schema.sql"));
    psql_exec(&source, shared_dataset("pg-pagila/pagila-data.sql"));
    let out = run_pipe(
        &[
            (
                "molt-dump",
                vec![
                    "--quiet".into(),
                    "--source".into(),
                    source.clone(),
                    "--all".into(),
                    "--jobs".into(),
                    "3".into(),
                ],
            ),
            (
                "molt-load",
                vec![
                    "--quiet".into(),
                    "--target".into(),
                    target.clone(),
                    "--jobs".into(),
                    "2".into(),
                    "--finalize".into(),
                    // Every table whose types allow it goes through the
                    // binary COPY encoders (by default only large ones do).
                    "--copy-format".into(),
                    "binary".into(),
                ],
            ),
        ],
        None,
        &[],
    );
    out.assert_success();
    let formats: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["type"] == "result")
        .map(|r| {
            let table = r["table"]["name"].as_str().unwrap_or_default().to_string();
            (
                table,
                r["copy_format"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let format_of = |t: &str| {
        formats
            .iter()
            .find(|(n, _)| n == t)
            .map(|(_, f)| f.as_str())
    };
    // payment: int, numeric, timestamptz; film: an enum and a text[] column.
    assert_eq!(format_of("payment"), Some("binary"), "{formats:?}");
    assert_eq!(format_of("rental"), Some("binary"), "{formats:?}");
    assert_eq!(format_of("film"), Some("text"), "{formats:?}");
    let tables = query_lines(&source, TABLES_SQL);
    assert!(tables.len() >= 15, "{tables:?}");
    let expected_counts = [
        ("public.payment", 16049),
        ("public.rental", 16044),
        ("public.film", 1000),
        ("public.actor", 200),
    ];
    for table in &tables {
        let (src, tgt) = (content(&source, table), content(&target, table));
        assert_eq!(
            src, tgt,
            "{table}: source and target differ (count:md5 of rows as text)"
        );
        if let Some((_, n)) = expected_counts.iter().find(|(t, _)| t == table) {
            assert!(src.starts_with(&format!("{n}:")), "{table}: {src}");
        }
    }
    // Finalize created the deferred foreign keys and unique constraints, validated.
    let fks = query_lines(&target, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated AND connamespace = 'public'::regnamespace");
    // Pagila declares payment's foreign keys on each partition; molt moves
    // them up to the one partitioned table, so count them once per parent.
    let source_fks = query_lines(
        &source,
        "SELECT count(DISTINCT (coalesce(i.inhparent, c.conrelid), c.confrelid, c.conkey::text)) FROM pg_constraint c
         LEFT JOIN pg_inherits i ON i.inhrelid = c.conrelid WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace",
    );
    assert_eq!(
        fks, source_fks,
        "every foreign key of the source exists, validated, on the target"
    );
}
