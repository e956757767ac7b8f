//! The Chinook cross-check: the same database, published as a MySQL script
//! and as a PostgreSQL script, must come out identical after molt moves the
//! MySQL one.
//!
//! Chinook's MySQL and PostgreSQL scripts hold the same 15,607 rows in 11
//! tables, written independently for each engine (`InvoiceLine.UnitPrice`
//! there, `invoice_line.unit_price` here). The MySQL script is loaded into
//! MariaDB and migrated with `molt-dump | molt-load`; the PostgreSQL script is
//! loaded into another database on the same target server. Both are then read
//! back through `molt-dump` and compared value by value in canonical form
//! (`molt_core::value::canonical`), rows matched by primary key. Nothing is
//! compared through a source-side cast, so a value molt changed in transit
//! (a timestamp shifted, a decimal rounded, text re-encoded) shows up as a
//! difference.
//!
//! Two things differ between the scripts as the engines read them, not in
//! molt: MySQL's backslash escapes (the MySQL script is loaded with
//! `NO_BACKSLASH_ESCAPES`, as its literals are standard SQL), and
//! PostgreSQL's `N'...'` literals, which are CHAR and lose trailing blanks
//! when stored into VARCHAR (the eight affected values are listed and checked
//! against both databases).

use std::collections::BTreeMap;

use molt_core::stream::{Field, Item, Record, StreamReader};
use molt_core::value::LogicalType;
use molt_core::value::{canonical, canonical_array};
use molt_tests::*;
use mysql_async::prelude::Queryable;

/// The dataset's tables and row counts (Chinook 1.4.5).
const TABLES: [(&str, usize); 11] = [
    ("album", 347),
    ("artist", 275),
    ("customer", 59),
    ("employee", 8),
    ("genre", 25),
    ("invoice", 412),
    ("invoiceline", 2240),
    ("mediatype", 5),
    ("playlist", 18),
    ("playlisttrack", 8715),
    ("track", 3503),
];

/// A script with the lines that create, drop or switch databases left out,
/// so it loads into the test's own database.
fn script_without_database_switches(rel: &str) -> String {
    let text = std::fs::read_to_string(shared_dataset(rel)).expect("the script is UTF-8");
    text.lines()
        .filter(|line| {
            let l = line.trim_start().to_ascii_uppercase();
            !(l.starts_with("DROP DATABASE")
                || l.starts_with("CREATE DATABASE")
                || l.starts_with("USE ")
                || l.starts_with("\\C "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One table as read back through molt-dump.
struct Table {
    /// The name as it appears on the target.
    name: String,
    /// Column names, logical types and padding, in table order.
    columns: Vec<(String, LogicalType, bool)>,
    /// Positions of the primary-key columns.
    key: Vec<usize>,
    /// Canonical values (`None` is NULL) by canonical primary key.
    rows: BTreeMap<Vec<String>, Vec<Option<String>>>,
}

/// Reads every table of `public` in the PostgreSQL database at `url` through
/// the molt-dump binary, keyed by the identifier-mapping key of its name.
fn read_back(url: &str) -> BTreeMap<String, Table> {
    let out = run_pipe(
        &[(
            "molt-dump",
            vec![
                "--source".into(),
                url.to_string(),
                "--all".into(),
                "--schema".into(),
                "public".into(),
                "-q".into(),
            ],
        )],
        None,
        &[],
    );
    out.assert_success();
    let mut reader = StreamReader::new(out.stdout.as_slice());
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    let mut current: Option<String> = None;
    while let Some(item) = reader
        .next()
        .unwrap_or_else(|e| panic!("the stream from {} does not check: {e}", redact(url)))
    {
        match item {
            Item::Record(Record::Table(h)) => {
                let key = mapping_key(&h.table.name);
                let columns: Vec<(String, LogicalType, bool)> = h
                    .columns
                    .iter()
                    .map(|c| {
                        assert_eq!(
                            c.array_dims, 0,
                            "{}.{}: no arrays in Chinook",
                            h.table, c.name
                        );
                        (c.name.clone(), c.logical, c.padded)
                    })
                    .collect();
                let mut pk: Vec<(u16, usize)> = h
                    .columns
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| c.pk.map(|p| (p, i)))
                    .collect();
                pk.sort();
                assert!(!pk.is_empty(), "{}: no primary key", h.table);
                let previous = tables.insert(
                    key.clone(),
                    Table {
                        name: h.table.name.clone(),
                        columns,
                        key: pk.into_iter().map(|(_, i)| i).collect(),
                        rows: BTreeMap::new(),
                    },
                );
                assert!(previous.is_none(), "two tables map to {key}");
                current = Some(key);
            }
            Item::Record(_) => {}
            Item::Row(row) => {
                let table = tables
                    .get_mut(current.as_ref().expect("rows follow a table header"))
                    .unwrap();
                let values: Vec<Option<String>> = table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, logical, padded))| {
                        match row.get(i).expect("a value per column") {
                            Field::Null => None,
                            Field::Str(text) => {
                                Some(canonical(*logical, *padded, text).into_owned())
                            }
                            Field::Array(json) => Some(canonical_array(*logical, *padded, json)),
                        }
                    })
                    .collect();
                let key: Vec<String> = table
                    .key
                    .iter()
                    .map(|&i| values[i].clone().expect("primary-key values are not NULL"))
                    .collect();
                let duplicate = table.rows.insert(key.clone(), values);
                assert!(duplicate.is_none(), "{}: key {key:?} twice", table.name);
            }
        }
    }
    tables
}

/// The identifier-mapping key: MySQL's `InvoiceLine`/`AlbumId` (lower-cased
/// by molt to `invoiceline`/`albumid`) and the PostgreSQL script's
/// `invoice_line`/`album_id` all become `invoiceline`/`albumid`.
fn mapping_key(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chinook_mysql_migrates_to_what_the_postgresql_script_holds() {
    require_datasets!(
        "chinook/Chinook_MySql.sql",
        "chinook/Chinook_PostgreSql.sql"
    );
    // The MySQL script into MariaDB. Its literals are written for standard
    // SQL strings, as in the PostgreSQL script (`'Cavalleria Rusticana \ Act
    // \ Intermezzo Sinfonico'`, a backslash in Chinook's data); MySQL's
    // default backslash escapes would drop those backslashes on load.
    let source = fresh_mysql_database(&mysql_source_url(), "chinook_src").await;
    mysql_exec(
        &source,
        format!(
            "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES');\n{}",
            script_without_database_switches("chinook/Chinook_MySql.sql")
        ),
    );

    // molt-dump | molt-load into a fresh target database, with the deferred
    // keys and indexes created at the end (so the foreign keys are checked).
    let migrated = fresh_pg_database(&pg_target_url(), "chinook_molt").await;
    let out = run_pipe(
        &[
            (
                "molt-dump",
                vec![
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
                    "--target".into(),
                    migrated.clone(),
                    "--finalize".into(),
                    "-q".into(),
                    // MySQL's values through the binary COPY encoders.
                    "--copy-format".into(),
                    "binary".into(),
                ],
            ),
        ],
        None,
        &[],
    );
    out.assert_success();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches(r#""copy_format":"binary""#).count(),
        11,
        "every Chinook table has binary forms for its types: {stdout}"
    );
    assert!(
        out.stderrs[0].contains("11 sections, 15607 rows"),
        "molt-dump's summary: {}",
        out.stderrs[0]
    );

    // The PostgreSQL script into another database on the target server.
    let reference = fresh_pg_database(&pg_target_url(), "chinook_ref").await;
    psql_exec(
        &reference,
        script_without_database_switches("chinook/Chinook_PostgreSql.sql"),
    );

    let got = read_back(&migrated);
    let want = read_back(&reference);

    // Every table and every column maps, both ways.
    let got_names: Vec<&str> = got.keys().map(String::as_str).collect();
    let want_names: Vec<&str> = want.keys().map(String::as_str).collect();
    let expected_names: Vec<&str> = TABLES.iter().map(|(t, _)| *t).collect();
    assert_eq!(got_names, expected_names, "tables molt created");
    assert_eq!(
        want_names, expected_names,
        "tables of the PostgreSQL script"
    );

    let mut total_rows = 0;
    let mut compared_values = 0u64;
    let mut differences = Vec::new();
    let mut lost_blanks = Vec::new();
    for (key, expected_rows) in TABLES {
        let (g, w) = (&got[key], &want[key]);
        assert_eq!(
            g.name, key,
            "molt lower-cases MySQL table names ({} on the source)",
            g.name
        );
        // Column i of the migrated table ↔ column map[i] of the reference.
        let map: Vec<usize> = g
            .columns
            .iter()
            .map(|(name, logical, _)| {
                let j = w
                    .columns
                    .iter()
                    .position(|(n, _, _)| mapping_key(n) == mapping_key(name))
                    .unwrap_or_else(|| panic!("{key}.{name}: no column of {} maps to it", w.name));
                assert_eq!(
                    *logical, w.columns[j].1,
                    "{key}.{name}: logical type on the target vs {}.{}",
                    w.name, w.columns[j].0
                );
                j
            })
            .collect();
        assert_eq!(
            g.columns.len(),
            w.columns.len(),
            "{key}: every column of {} is mapped",
            w.name
        );
        let mut sorted = map.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), map.len(), "{key}: two columns map to one");
        let key_cols: Vec<usize> = g.key.iter().map(|&i| map[i]).collect();
        assert_eq!(
            key_cols, w.key,
            "{key}: the primary keys are the same columns"
        );

        assert_eq!(g.rows.len(), expected_rows, "{key}: rows migrated");
        assert_eq!(w.rows.len(), expected_rows, "{key}: rows of the script");
        total_rows += g.rows.len();
        for (pk, g_row) in &g.rows {
            let Some(w_row) = w.rows.get(pk) else {
                differences.push(format!("{key} {pk:?}: only in the migrated table"));
                continue;
            };
            for (i, value) in g_row.iter().enumerate() {
                compared_values += 1;
                let script = &w_row[map[i]];
                if value == script {
                    continue;
                }
                let column = &g.columns[i].0;
                match (value, script) {
                    (Some(v), Some(s)) if v.len() > s.len() && v.trim_end_matches(' ') == s => {
                        lost_blanks.push(format!("{key}.{column} {}", pk.join(",")));
                    }
                    _ => differences.push(format!(
                        "{key} {pk:?} column {column}: migrated {value:?}, script {script:?}"
                    )),
                }
            }
        }
        for pk in w.rows.keys().filter(|pk| !g.rows.contains_key(*pk)) {
            differences.push(format!("{key} {pk:?}: missing from the migrated table"));
        }
    }
    assert_eq!(total_rows, 15_607);
    assert!(
        differences.is_empty(),
        "{} of {compared_values} values differ:\n{}",
        differences.len(),
        differences
            .iter()
            .take(50)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // 15,607 rows × their columns: the comparison really looked at values.
    assert_eq!(compared_values, 66_439);

    // The one kind of difference, and it is the PostgreSQL script's: both
    // scripts write `N'Edinburgh '`, and in PostgreSQL an N'' literal is a
    // CHAR (bpchar), whose trailing blanks go when it is stored into a
    // VARCHAR. MySQL keeps them, and so does molt.
    lost_blanks.sort();
    assert_eq!(
        lost_blanks,
        [
            "customer.city 54",
            "invoice.billingcity 141",
            "invoice.billingcity 152",
            "invoice.billingcity 20",
            "invoice.billingcity 207",
            "invoice.billingcity 336",
            "invoice.billingcity 359",
            "invoice.billingcity 381",
        ],
        "values whose trailing blanks only the PostgreSQL script dropped"
    );
    let mut my = mysql_connect(&source).await;
    let city: Option<String> = my
        .query_first("SELECT City FROM Customer WHERE CustomerId = 54")
        .await
        .unwrap();
    assert_eq!(city.as_deref(), Some("Edinburgh "), "the source's value");
    let pg_ref = pg_connect(&reference).await;
    let city: String = pg_ref
        .query_one("SELECT city FROM customer WHERE customer_id = 54", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(city, "Edinburgh", "the PostgreSQL script's value");
    let _ = my.disconnect().await;

    // The foreign keys were created from the MySQL catalog, under the
    // target's (lower-cased) names, and hold.
    let pg = pg_connect(&migrated).await;
    let fks: i64 = pg
        .query_one(
            "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
             WHERE n.nspname = 'public' AND c.contype = 'f' AND c.convalidated",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(fks, 11, "Chinook's 11 foreign keys, validated");

    // Passed: drop this test's own databases (a failure leaves them for
    // inspection).
    drop((pg, pg_ref));
    let admin = pg_connect(&pg_target_url()).await;
    for url in [&migrated, &reference] {
        let name = url.rsplit('/').next().unwrap().split('?').next().unwrap();
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
            .unwrap();
    }
    let mut admin = mysql_connect(&mysql_source_url()).await;
    let name = source
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    admin
        .query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
        .await
        .unwrap();
    let _ = admin.disconnect().await;
}
