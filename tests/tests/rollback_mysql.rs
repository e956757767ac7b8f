//! Rolling a phase back to a MySQL/MariaDB source after the switch:
//! `molt-cutover rollback --after-cutover | molt-load --target mysql://...`.
//!
//! The phase is migrated for real (MariaDB source, PostgreSQL target),
//! frozen and switched; the application then writes to the target; the
//! rollback stream is applied to the source by molt-load's MySQL writer.
//! Rows are compared through molt-dump on both sides, which writes every
//! value in its canonical stream form, so "equal" means equal value by
//! value, for every column type the source uses.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use molt_core::value::{canonical, canonical_array};
use molt_tests::*;
use mysql_async::prelude::Queryable;

const PLAN: &str = r#"
[[phase]]
name = "A"
filter = "region = 'A'"
tables = ["customers"]
via = { orders = "customers" }
whole = ["products"]

[[phase]]
name = "B"
filter = "region = 'B'"
tables = ["customers"]
via = { orders = "customers" }
"#;

const SCHEMA: &str = "
CREATE TABLE customers (id INT PRIMARY KEY, region VARCHAR(8) NOT NULL, name VARCHAR(40),
    email VARCHAR(60), created TIMESTAMP(3) NULL, dur TIME, tags SET('x','y','z'),
    kind ENUM('a','b'), doc JSON, raw VARBINARY(16), score DECIMAL(8,2), ratio DOUBLE,
    flags BIT(5), seen DATETIME(6), born DATE, y YEAR, big BIGINT UNSIGNED, level TINYINT);
CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(10,2), note TEXT,
    FOREIGN KEY (customer_id) REFERENCES customers(id));
CREATE TABLE products (id INT PRIMARY KEY, name VARCHAR(20));
INSERT INTO products VALUES (1, 'p1'), (2, 'p2'), (3, 'p3');
";

/// The phase's slices, in both dialects (the names are the same).
const SLICE_A: [(&str, &str); 3] = [
    ("customers", "region = 'A'"),
    (
        "orders",
        "customer_id IN (SELECT id FROM customers WHERE region = 'A')",
    ),
    ("products", "1 = 1"),
];
const SLICE_B: [(&str, &str); 2] = [
    ("customers", "region = 'B'"),
    (
        "orders",
        "customer_id IN (SELECT id FROM customers WHERE region = 'B')",
    ),
];

struct Env {
    source: String,
    target: String,
    plan: PathBuf,
    _dir: tempfile::TempDir,
}

impl Env {
    fn phase_args(&self, cmd: &str) -> Vec<String> {
        vec![
            cmd.into(),
            "--plan".into(),
            self.plan.display().to_string(),
            "--phase".into(),
            "A".into(),
            "--source".into(),
            self.source.clone(),
            "--target".into(),
            self.target.clone(),
        ]
    }

    fn rollback_args(&self) -> Vec<String> {
        let mut args = self.phase_args("rollback");
        args.push("--after-cutover".into());
        args
    }

    fn load_args(&self) -> Vec<String> {
        vec!["--target".into(), self.source.clone()]
    }
}

/// 40 customers (even ids in region A), 120 orders, 3 products, with a
/// value of every type in every row.
fn seed_sql() -> String {
    let mut sql = String::from(SCHEMA);
    let customers: Vec<String> = (1..=40)
        .map(|g: u32| {
            let region = if g.is_multiple_of(2) { "A" } else { "B" };
            let sign = if g.is_multiple_of(2) { "" } else { "-" };
            let tags = match g % 3 {
                0 => "x,y",
                1 => "",
                _ => "z",
            };
            let kind = if g.is_multiple_of(2) { "a" } else { "b" };
            format!(
                "({g}, '{region}', 'c{g}', 'c{g}@x', '2024-01-01 00:00:{:02}.123', '{sign}{g}:30:00', '{tags}', \
                 '{kind}', '{{\"n\": {g}}}', X'{:04X}', {}.25, {}, b'{:05b}', '2024-02-29 12:00:00.{g:06}', \
                 '2000-01-{:02}', {}, {}, {})",
                g % 60,
                g * 257,
                g * 3,
                f64::from(g) / 8.0,
                g % 32,
                g % 28 + 1,
                1990 + g,
                u64::MAX - u64::from(g),
                g % 100
            )
        })
        .collect();
    sql.push_str(&format!(
        "INSERT INTO customers VALUES {};\n",
        customers.join(",\n")
    ));
    let orders: Vec<String> = (1..=120)
        .map(|g: u32| {
            let note = if g.is_multiple_of(5) {
                "NULL".to_string()
            } else {
                format!("'note {g}'")
            };
            format!("({g}, {}, {}.{:02}, {note})", g % 40 + 1, g, g % 100)
        })
        .collect();
    sql.push_str(&format!(
        "INSERT INTO orders VALUES {};\n",
        orders.join(",\n")
    ));
    sql
}

fn cutover(args: &[String]) -> Output {
    Command::new(bin("molt-cutover"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running molt-cutover")
}

#[track_caller]
fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "molt-cutover failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A MariaDB source with phase A frozen, loaded into a PostgreSQL target
/// and switched, as in the PostgreSQL test of `cutover.rs`.
async fn switched_env(prefix: &str) -> Env {
    let source = fresh_mysql_database(&mysql_source_url(), &format!("{prefix}_src")).await;
    let target = fresh_pg_database(&pg_target_url(), &format!("{prefix}_tgt")).await;
    let mut my = mysql_connect(&source).await;
    my.query_drop(seed_sql()).await.unwrap();
    let _ = my.disconnect().await;
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("phases.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let env = Env {
        source,
        target,
        plan,
        _dir: dir,
    };
    ok(&cutover(&env.phase_args("freeze")));
    run_pipe(
        &[
            (
                "molt-slice",
                vec![
                    "plan".into(),
                    "--plan".into(),
                    env.plan.display().to_string(),
                    "--source".into(),
                    env.source.clone(),
                    "--phase".into(),
                    "A".into(),
                    "--shard-rows".into(),
                    "7".into(),
                ],
            ),
            (
                "molt-dump",
                vec!["--source".into(), env.source.clone(), "--quiet".into()],
            ),
            (
                "molt-load",
                vec![
                    "--target".into(),
                    env.target.clone(),
                    "--quiet".into(),
                    "--jobs".into(),
                    "4".into(),
                ],
            ),
        ],
        None,
        &[],
    )
    .assert_success();
    let mut args = env.phase_args("switch");
    args.push("--force".into());
    ok(&cutover(&args));
    env
}

/// One table's slice as molt-dump streams it: the rows, each value in its
/// canonical form (`molt_core::value::canonical`: `.5` and `.500` are the
/// same fractional second), sorted, and the digest of the end record.
fn dump_slice(url: &str, table: &str, filter: &str) -> (Vec<String>, String) {
    let table = if url.starts_with("postgres") {
        format!("public.{table}")
    } else {
        table.to_string()
    };
    let out = run_pipe(
        &[(
            "molt-dump",
            vec![
                "--source".into(),
                url.into(),
                "--table".into(),
                table,
                "--filter".into(),
                filter.into(),
                "--quiet".into(),
            ],
        )],
        None,
        &[],
    );
    out.assert_success();
    let mut rows = Vec::new();
    let mut columns: Vec<molt_core::stream::Column> = Vec::new();
    let mut digest = String::new();
    for record in out.records() {
        if let Some(values) = record.as_array() {
            let canonical: Vec<serde_json::Value> = values
                .iter()
                .zip(&columns)
                .map(|(v, c)| match v {
                    serde_json::Value::Null => serde_json::Value::Null,
                    serde_json::Value::String(s) => {
                        canonical(c.logical, c.padded, s).into_owned().into()
                    }
                    array => canonical_array(c.logical, c.padded, &array.to_string()).into(),
                })
                .collect();
            rows.push(serde_json::Value::from(canonical).to_string());
        } else if record["type"] == "table" {
            columns = serde_json::from_value(record["columns"].clone()).unwrap();
        } else if record["type"] == "end" {
            assert_eq!(record["rows"].as_u64(), Some(rows.len() as u64));
            digest = record["digest"].as_str().unwrap().to_string();
        }
    }
    rows.sort();
    (rows, digest)
}

/// Per table: the canonical rows and the section digest.
fn dump_slices(url: &str, slices: &[(&str, &str)]) -> BTreeMap<String, (Vec<String>, String)> {
    slices
        .iter()
        .map(|(table, filter)| (table.to_string(), dump_slice(url, table, filter)))
        .collect()
}

async fn my_string(url: &str, sql: &str) -> Option<String> {
    let mut my = mysql_connect(url).await;
    my.query_drop("SET time_zone = '+00:00'").await.unwrap();
    let v: Option<Option<String>> = my.query_first(sql).await.unwrap();
    let _ = my.disconnect().await;
    v.flatten()
}

async fn my_count(url: &str, sql: &str) -> i64 {
    my_string(url, sql).await.unwrap().parse().unwrap()
}

#[tokio::test]
async fn rollback_after_cutover_brings_target_writes_back_to_a_mysql_source() {
    let env = switched_env("rbmy").await;
    let untouched_b = dump_slices(&env.source, &SLICE_B);
    assert_eq!(untouched_b["customers"].0.len(), 20);

    // The application writes to the target after the cutover: inserts,
    // updates and deletes, in parent and child tables, with edge values.
    let tgt = pg_connect(&env.target).await;
    tgt.batch_execute(
        r#"INSERT INTO customers (id, region, name, email, created, dur, tags, kind, doc, raw, score, ratio,
                                  flags, seen, born, y, big, level)
           VALUES (700, 'A', 'new on target ü€😀', 'new@x', '2030-05-06 07:08:09.5+00', '-800:00:01',
                   '{y,z}', 'b', '{"new": [true, null]}', '\x00ff', 999999.99, 0.1, B'11111',
                   '9999-12-31 23:59:59.999999', '1000-01-01', 2155, 18446744073709551615, -128);
           INSERT INTO orders VALUES (7000, 700, 70.00, E'tab\there, newline\n, quote '' and \\');
           UPDATE customers SET name = 'renamed', tags = '{}', dur = '838:59:59', doc = '[]', raw = NULL,
                                kind = 'b', flags = B'00000', level = 127 WHERE id = 2;
           UPDATE orders SET amount = 999.99 WHERE id = 1;
           DELETE FROM orders WHERE id = 3;
           DELETE FROM orders WHERE customer_id = 6;
           DELETE FROM customers WHERE id = 6;
           UPDATE products SET name = 'P2!' WHERE id = 2;"#,
    )
    .await
    .unwrap();
    let target_a = dump_slices(&env.target, &SLICE_A);
    assert_eq!(target_a["customers"].0.len(), 20); // +700, -6
    assert_ne!(target_a, dump_slices(&env.source, &SLICE_A));

    // Without --after-cutover the rollback is refused.
    let refused = cutover(&env.phase_args("rollback"));
    assert_eq!(refused.status.code(), Some(4));

    let out = run_pipe(
        &[
            ("molt-cutover", env.rollback_args()),
            ("molt-load", env.load_args()),
        ],
        None,
        &[],
    );
    out.assert_success();
    let results = out.records();
    assert_eq!(results.len(), 6, "{}", out.report());
    assert!(results.iter().all(|r| r["status"] == "ok"));
    let loaded: u64 = results.iter().map(|r| r["rows"].as_u64().unwrap()).sum();
    assert_eq!(loaded, 20 + 3 + (60 - 1 - 3 + 1));

    // The source's slice of phase A is now the target's, row for row and
    // value for value; phase B's rows are untouched.
    let source_a = dump_slices(&env.source, &SLICE_A);
    for (table, rows) in &target_a {
        assert_eq!(&source_a[table], rows, "{table}");
    }
    assert_eq!(dump_slices(&env.source, &SLICE_B), untouched_b);

    // The same, checked directly on MariaDB.
    let src = &env.source;
    assert_eq!(
        my_string(src, "SELECT name FROM customers WHERE id = 700")
            .await
            .as_deref(),
        Some("new on target ü€😀")
    );
    assert_eq!(
        my_string(src, "SELECT CONCAT_WS('|', name, tags, dur, doc, kind, BIN(flags), level, IFNULL(raw, 'null')) FROM customers WHERE id = 2")
            .await
            .as_deref(),
        Some("renamed||838:59:59|[]|b|0|127|null")
    );
    assert_eq!(
        my_string(src, "SELECT CONCAT_WS('|', created, dur, tags, HEX(raw), score, ratio, BIN(flags), seen, born, y, big, level) FROM customers WHERE id = 700")
            .await
            .as_deref(),
        Some("2030-05-06 07:08:09.500|-800:00:01|y,z|00FF|999999.99|0.1|11111|9999-12-31 23:59:59.999999|1000-01-01|2155|18446744073709551615|-128")
    );
    assert_eq!(
        my_string(src, "SELECT amount FROM orders WHERE id = 1")
            .await
            .as_deref(),
        Some("999.99")
    );
    assert_eq!(
        my_string(src, "SELECT note FROM orders WHERE id = 7000")
            .await
            .as_deref(),
        Some("tab\there, newline\n, quote ' and \\")
    );
    assert_eq!(
        my_count(
            src,
            "SELECT COUNT(*) FROM orders WHERE id = 3 OR customer_id = 6"
        )
        .await,
        0
    );
    assert_eq!(
        my_count(src, "SELECT COUNT(*) FROM customers WHERE id = 6").await,
        0
    );
    assert_eq!(
        my_string(src, "SELECT name FROM products WHERE id = 2")
            .await
            .as_deref(),
        Some("P2!")
    );
    assert_eq!(
        my_count(src, "SELECT COUNT(*) FROM customers WHERE region = 'B'").await,
        20
    );
    // Unfrozen: no freeze trigger is left and the source takes writes to
    // the slice again; the routing points back to the source.
    assert_eq!(
        my_count(
            src,
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()"
        )
        .await,
        0
    );
    let mut my = mysql_connect(src).await;
    my.query_drop("INSERT INTO customers (id, region, name) VALUES (701, 'A', 'x')")
        .await
        .unwrap();
    let _ = my.disconnect().await;
    let route: String = tgt
        .query_one("SELECT state FROM _molt.routing WHERE phase = 'A'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(route, "source");
}

#[tokio::test]
async fn a_value_the_source_column_cannot_hold_fails_the_section_whole() {
    let env = switched_env("rbmy_fit").await;
    let untouched_b = dump_slices(&env.source, &SLICE_B);
    // TINYINT became INT2 on the target, which takes 300.
    let tgt = pg_connect(&env.target).await;
    tgt.batch_execute(
        "UPDATE customers SET level = 300 WHERE id = 2;
         INSERT INTO customers (id, region, name, level) VALUES (800, 'A', 'eight hundred', 1);",
    )
    .await
    .unwrap();
    // The stream is kept, as docs/cutover.md advises, to apply it again.
    let exported = run_pipe(&[("molt-cutover", env.rollback_args())], None, &[]);
    exported.assert_success();
    let stream = exported.stdout.clone();

    let out = run_pipe(&[("molt-load", env.load_args())], Some(&stream), &[]);
    out.assert_statuses(&[1]);
    let err = &out.stderrs[0];
    for needle in [
        ".customers shard",
        "column level",
        "key (id)=(2)",
        "out of range",
        "rolled back",
    ] {
        assert!(err.contains(needle), "{needle:?} missing from: {err}");
    }
    // Nothing of the failed section was committed: the stream emptied the
    // slice first (committed sections), and none of the target's
    // customers came back, neither the new one nor any other.
    let src = &env.source;
    assert_eq!(
        my_count(src, "SELECT COUNT(*) FROM customers WHERE region = 'A'").await,
        0
    );
    assert_eq!(
        my_count(src, "SELECT COUNT(*) FROM customers WHERE id = 800").await,
        0
    );
    assert_eq!(dump_slices(src, &SLICE_B), untouched_b);

    // Widening the source column and applying the kept stream again
    // completes the rollback.
    let mut my = mysql_connect(src).await;
    my.query_drop("ALTER TABLE customers MODIFY level SMALLINT")
        .await
        .unwrap();
    let _ = my.disconnect().await;
    run_pipe(&[("molt-load", env.load_args())], Some(&stream), &[]).assert_success();
    let target_a = dump_slices(&env.target, &SLICE_A);
    let source_a = dump_slices(src, &SLICE_A);
    for (table, rows) in &target_a {
        assert_eq!(&source_a[table], rows, "{table}");
    }
    assert_eq!(
        my_string(src, "SELECT level FROM customers WHERE id = 2")
            .await
            .as_deref(),
        Some("300")
    );
    assert_eq!(dump_slices(src, &SLICE_B), untouched_b);
}

#[tokio::test]
async fn a_section_the_server_refuses_leaves_the_table_as_it_was() {
    // A PostgreSQL stream (schema "public", no such MySQL database: the
    // URL's database is used) into an existing MySQL table.
    let pg = fresh_pg_database(&pg_source_url(), "rbmy_pg").await;
    let my_url = fresh_mysql_database(&mysql_source_url(), "rbmy_items").await;
    pg_connect(&pg)
        .await
        .batch_execute(
            "CREATE TABLE items (id INT PRIMARY KEY, name TEXT, label TEXT);
             INSERT INTO items VALUES (1, 'ok', 'plain'), (2, 'fine', 'plain'), (3, 'much too long', 'plain');",
        )
        .await
        .unwrap();
    let mut my = mysql_connect(&my_url).await;
    my.query_drop(
        "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(5), label VARCHAR(10) CHARACTER SET latin1);
         INSERT INTO items VALUES (10, 'old', 'x'), (11, 'old2', 'y');",
    )
    .await
    .unwrap();
    let _ = my.disconnect().await;
    let load = |extra: &[&str]| -> PipeOutcome {
        let mut args = vec!["--target".to_string(), my_url.clone()];
        args.extend(extra.iter().map(|s| s.to_string()));
        run_pipe(
            &[
                (
                    "molt-dump",
                    vec![
                        "--source".into(),
                        pg.clone(),
                        "--table".into(),
                        "public.items".into(),
                        "--quiet".into(),
                    ],
                ),
                ("molt-load", args),
            ],
            None,
            &[],
        )
    };
    let before = dump_slice(&my_url, "items", "1 = 1").0;
    assert_eq!(before.len(), 2);

    // Too long for VARCHAR(5): refused before it reaches the server.
    let out = load(&[]);
    out.assert_statuses(&[0, 1]);
    let err = &out.stderrs[1];
    for needle in [
        "items shard",
        "column name",
        "key (id)=(3)",
        "longer than varchar(5)",
        "rolled back",
        "is not a database on the MySQL target",
    ] {
        assert!(err.contains(needle), "{needle:?} missing from: {err}");
    }
    assert_eq!(dump_slice(&my_url, "items", "1 = 1").0, before);

    // A character the latin1 column cannot store: the server refuses it
    // (strict mode) and the message names the row of the statement.
    pg_connect(&pg)
        .await
        .batch_execute("UPDATE items SET name = 'short' WHERE id = 3; UPDATE items SET label = '😀' WHERE id = 2")
        .await
        .unwrap();
    let out = load(&[]);
    out.assert_statuses(&[0, 1]);
    let err = &out.stderrs[1];
    assert!(
        err.contains("key (id)=(2)") && err.contains("label") && err.contains("rolled back"),
        "{err}"
    );
    assert_eq!(dump_slice(&my_url, "items", "1 = 1").0, before);

    // Options that would create or destroy MySQL tables are refused.
    let out = load(&["--table-handling", "drop-and-recreate"]);
    assert_eq!(out.statuses[1], 2, "{}", out.report());
    assert!(out.stderrs[1].contains("refused for a MySQL target"));
    assert_eq!(dump_slice(&my_url, "items", "1 = 1").0, before);

    // A table the MySQL database does not have is named.
    let out = load(&["--schema", "information_schema"]);
    assert_eq!(out.statuses[1], 1, "{}", out.report());
    assert!(
        out.stderrs[1].contains("information_schema.items does not exist on the MySQL target"),
        "{}",
        out.report()
    );

    // Fixed at the origin, the stream replaces the whole table.
    pg_connect(&pg)
        .await
        .batch_execute("UPDATE items SET label = 'é' WHERE id = 2")
        .await
        .unwrap();
    let out = load(&[]);
    out.assert_success();
    let after = dump_slice(&my_url, "items", "1 = 1").0;
    assert_eq!(
        after,
        vec![
            r#"["1","ok","plain"]"#.to_string(),
            r#"["2","fine","é"]"#.to_string(),
            r#"["3","short","plain"]"#.to_string(),
        ]
    );
}

#[tokio::test]
async fn a_killed_connection_runs_the_section_again_without_duplicates() {
    const ROWS: i64 = 100_000;
    let pg = fresh_pg_database(&pg_source_url(), "rbmy_kill_pg").await;
    let my_url = fresh_mysql_database(&mysql_source_url(), "rbmy_kill").await;
    pg_connect(&pg)
        .await
        .batch_execute(&format!(
            "CREATE TABLE big (id INT PRIMARY KEY, name TEXT);
             INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, {ROWS}) g;"
        ))
        .await
        .unwrap();
    let mut my = mysql_connect(&my_url).await;
    my.query_drop(
        "CREATE TABLE big (id INT PRIMARY KEY, name VARCHAR(40));
         INSERT INTO big VALUES (-1, 'replaced by the section')",
    )
    .await
    .unwrap();
    let dumped = run_pipe(
        &[(
            "molt-dump",
            vec![
                "--source".into(),
                pg.clone(),
                "--table".into(),
                "public.big".into(),
                "--quiet".into(),
            ],
        )],
        None,
        &[],
    );
    dumped.assert_success();

    // A second session holds the gap above id -1 (REPEATABLE READ, FOR
    // UPDATE), so every attempt of molt-load waits in its first INSERT: its
    // connection is killed there twice, whatever the machine's speed, and
    // the third attempt runs once the gap is released.
    let mut blocker = mysql_connect(&my_url).await;
    blocker
        .query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await
        .unwrap();
    blocker.query_drop("START TRANSACTION").await.unwrap();
    let _: Vec<i64> = blocker
        .query("SELECT id FROM big WHERE id > 0 FOR UPDATE")
        .await
        .unwrap();

    let mut load = Command::new(bin("molt-load"))
        .args(["--target", &my_url, "--batch-rows", "500"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = load.stdin.take().unwrap();
    let stream = dumped.stdout.clone();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&stream);
    });
    // Kill molt-load's connection twice while it is inserting: each time a
    // new connection (a new attempt) waits in an INSERT.
    let db = my_url.rsplit('/').next().unwrap().to_string();
    let mut killed = 0;
    let mut last_killed = None;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while killed < 2 && std::time::Instant::now() < deadline {
        let id: Option<u64> = my
            .exec_first(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND INFO LIKE 'INSERT INTO%'",
                (&db,),
            )
            .await
            .unwrap();
        match id {
            Some(id) if Some(id) != last_killed => {
                my.query_drop(format!("KILL CONNECTION {id}"))
                    .await
                    .unwrap();
                last_killed = Some(id);
                killed += 1;
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    blocker.query_drop("COMMIT").await.unwrap();
    feeder.join().unwrap();
    let out = load.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        killed, 2,
        "molt-load finished before its connection was killed twice"
    );
    assert!(
        stderr.contains("running the section again (retry 2)"),
        "{stderr}"
    );
    let (count, distinct, min): (i64, i64, i64) = my
        .query_first("SELECT COUNT(*), COUNT(DISTINCT id), MIN(id) FROM big")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((count, distinct, min), (ROWS, ROWS, 1));
    let sum: String = my
        .query_first("SELECT CAST(SUM(id) AS CHAR) FROM big WHERE name = MD5(id)")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sum, (ROWS * (ROWS + 1) / 2).to_string());
    let _ = my.disconnect().await;
}
