//! `molt-cutover ... --dry-run` against real servers: every writing
//! subcommand prints its SQL and changes nothing, neither on the source nor
//! on the target (triggers, ledger rows, indexes, rows, routing, hook).
//!
//! The printed SQL is proved to be the real SQL by running it: the freeze
//! script pasted into psql or the mariadb client freezes exactly like
//! `freeze` does (same trigger and function definitions), the finalize
//! script creates the objects `finalize` then finds in place, and the
//! purge script deletes exactly the phase's rows.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::SystemTime;

use molt_core::ledger::{self, VerifyResult};
use molt_core::stream::TableName;
use molt_tests::*;
use mysql_async::prelude::Queryable;

const SCHEMA_SQL: &str = "
CREATE TABLE customers (id INT PRIMARY KEY, region TEXT NOT NULL, name TEXT, email TEXT);
CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL REFERENCES customers(id),
    amount NUMERIC(10,2) CHECK (amount >= 0));
CREATE UNIQUE INDEX customers_email_uq ON customers (email);
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE TABLE products (id INT PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO customers SELECT g, CASE WHEN g % 2 = 0 THEN 'A' ELSE 'B' END, 'c' || g, 'c' || g || '@x' FROM generate_series(1, 40) g;
INSERT INTO orders SELECT g, (g % 40) + 1, g * 1.25 FROM generate_series(1, 120) g;
INSERT INTO products VALUES (1, 'p1'), (2, 'p2'), (3, 'p3');
";

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

/// Trust authentication ignores it; it must never be printed.
const PASSWORD: &str = "DryRunPw7c1e5Secret";

fn with_password(url: &str) -> String {
    url.replacen("postgres@", &format!("postgres:{PASSWORD}@"), 1)
}

struct Env {
    source: String,
    target: String,
    plan: PathBuf,
    _dir: tempfile::TempDir,
}

impl Env {
    fn plan(&self) -> String {
        self.plan.display().to_string()
    }

    /// `cmd --plan .. --phase ..`; the URLs (with a password) go through
    /// MOLT_SOURCE and MOLT_TARGET (see [`Env::run`]).
    fn args(&self, cmd: &str, phase: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            cmd.into(),
            "--plan".into(),
            self.plan(),
            "--phase".into(),
            phase.into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    fn run(&self, args: &[String]) -> Output {
        Command::new(bin("molt-cutover"))
            .args(args)
            .env("MOLT_SOURCE", with_password(&self.source))
            .env("MOLT_TARGET", with_password(&self.target))
            .stdin(Stdio::null())
            .output()
            .expect("running molt-cutover")
    }
}

fn new_env(source: String, target: String) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("phases.toml");
    std::fs::write(&plan, PLAN).unwrap();
    Env {
        source,
        target,
        plan,
        _dir: dir,
    }
}

async fn pg_env(prefix: &str) -> Env {
    let source = fresh_pg_database(&pg_source_url(), &format!("{prefix}_src")).await;
    let target = fresh_pg_database(&pg_target_url(), &format!("{prefix}_tgt")).await;
    pg_connect(&source)
        .await
        .batch_execute(SCHEMA_SQL)
        .await
        .unwrap();
    new_env(source, target)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success, an empty stdout and no password; returns stderr.
#[track_caller]
fn dry_ok(o: &Output) -> String {
    let err = stderr(o);
    assert!(
        o.status.success(),
        "molt-cutover failed ({}): {err}",
        o.status
    );
    assert!(
        o.stdout.is_empty(),
        "a dry run wrote to stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(!err.contains(PASSWORD), "the password leaked:\n{err}");
    err
}

#[track_caller]
fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "molt-cutover failed ({}): {}",
        o.status,
        stderr(o)
    );
}

/// Loads a phase with the real molt-slice | molt-dump | molt-load pipeline.
fn load_phase(env: &Env, phase: &str) {
    run_pipe(
        &[
            (
                "molt-slice",
                vec![
                    "plan".into(),
                    "--plan".into(),
                    env.plan(),
                    "--source".into(),
                    env.source.clone(),
                    "--phase".into(),
                    phase.into(),
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
                vec!["--target".into(), env.target.clone(), "--quiet".into()],
            ),
        ],
        None,
        &[],
    )
    .assert_success();
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// Row count and an order-independent hash of a table.
async fn fingerprint(client: &tokio_postgres::Client, table: &str) -> (i64, String) {
    let row = client
        .query_one(
            &format!("SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {table} t"),
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Every row of the ledger's lifecycle tables, as text (empty when the
/// ledger does not exist).
async fn ledger_rows(client: &tokio_postgres::Client) -> Vec<String> {
    let mut out = Vec::new();
    for table in ["phases", "transitions", "freezes", "routing"] {
        let exists = count(
            client,
            &format!("SELECT count(*) FROM information_schema.tables WHERE table_schema = '_molt' AND table_name = '{table}'"),
        )
        .await;
        if exists == 0 {
            continue;
        }
        for row in client
            .query(&format!("SELECT t::text FROM _molt.{table} t"), &[])
            .await
            .unwrap()
        {
            out.push(format!("{table}: {}", row.get::<_, String>(0)));
        }
    }
    out
}

/// Every freeze trigger and function on a PostgreSQL source, with its full
/// definition.
async fn pg_freeze_objects(client: &tokio_postgres::Client) -> Vec<String> {
    let rows = client
        .query(
            "SELECT tgname::text || ': ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname LIKE 'molt_frz_%'
             UNION ALL
             SELECT proname::text || ': ' || pg_get_functiondef(oid) FROM pg_proc WHERE proname LIKE 'molt_frz_%'
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

async fn pg_write_error(client: &tokio_postgres::Client, sql: &str) -> Option<String> {
    client.batch_execute(sql).await.err().map(|e| {
        e.as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| e.to_string())
    })
}

async fn record_verify(target: &str, phase: &str, table: &str) {
    let client = pg_connect(target).await;
    ledger::record_verify_result(
        &client,
        ledger::DEFAULT_SCHEMA,
        &VerifyResult {
            phase: phase.into(),
            table: TableName::new("public", table),
            source_rows: 10,
            target_rows: 10,
            differences: 0,
            ok: true,
            started_at: SystemTime::now(),
            finished_at: SystemTime::now(),
        },
    )
    .await
    .unwrap();
}

/// The lines of `text` from the first one containing `from` up to, not
/// including, the next one containing `until`: one database's part of a
/// dry run.
fn between(text: &str, from: &str, until: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains(from))
        .unwrap_or_else(|| panic!("no line with {from:?} in:\n{text}"));
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.contains(until))
        .map_or(lines.len(), |n| start + 1 + n);
    lines[start..end].join("\n") + "\n"
}

#[tokio::test]
async fn pg_freeze_dry_run_prints_the_sql_freeze_runs_and_changes_nothing() {
    let env = pg_env("dry_pg_freeze").await;
    let src = pg_connect(&env.source).await;
    let tgt = pg_connect(&env.target).await;
    // The ledger exists (as after any earlier step), so the whole dry run
    // is the source's script plus comments.
    ok(&env.run(&["status".into()]));

    let script = dry_ok(&env.run(&env.args("freeze", "A", &["--dry-run"])));
    for expected in [
        "BEGIN;\nSET LOCAL lock_timeout = '30s';\n",
        "CREATE OR REPLACE FUNCTION \"public\".\"molt_frz_",
        "CREATE TRIGGER \"molt_frz_",
        "BEFORE INSERT OR UPDATE OR DELETE ON \"public\".\"customers\" FOR EACH ROW",
        "BEFORE TRUNCATE ON \"public\".\"products\"",
        "\nCOMMIT;\n",
        "-- ledger: \"_molt\".\"freezes\" records public.orders",
        "-> frozen",
    ] {
        assert!(
            script.contains(expected),
            "missing {expected:?} in:\n{script}"
        );
    }
    assert!(
        script
            .lines()
            .all(|l| l.starts_with("-- ") || !l.starts_with("molt-cutover:")),
        "{script}"
    );
    // Nothing happened: no trigger, no function, no ledger row; the slice
    // still takes writes.
    assert!(pg_freeze_objects(&src).await.is_empty());
    assert_eq!(ledger_rows(&tgt).await, Vec::<String>::new());
    assert_eq!(
        pg_write_error(&src, "UPDATE customers SET name = 'w' WHERE id = 2").await,
        None
    );

    // The printed script is the real one: run through psql it freezes
    // phase A, exactly as freeze does.
    psql_exec(&env.source, &script);
    let msg = pg_write_error(&src, "UPDATE customers SET name = 'x' WHERE id = 2")
        .await
        .expect("the pasted freeze rejects writes to the slice");
    assert!(msg.contains("phase A is frozen"), "{msg}");
    let msg = pg_write_error(&src, "DELETE FROM products WHERE id = 1")
        .await
        .expect("whole table frozen");
    assert!(msg.contains("public.products"), "{msg}");
    assert_eq!(
        pg_write_error(&src, "UPDATE customers SET name = 'x' WHERE id = 3").await,
        None,
        "phase B's rows stay writable"
    );
    let pasted = pg_freeze_objects(&src).await;
    assert_eq!(pasted.len(), 9, "{pasted:#?}"); // 3 tables: 2 triggers + 1 function

    // The unfreeze script drops them again (nothing recorded: the plan's names).
    let unfreeze = dry_ok(&env.run(&env.args("unfreeze", "A", &["--dry-run"])));
    assert!(
        unfreeze.contains("DROP TRIGGER IF EXISTS \"molt_frz_"),
        "{unfreeze}"
    );
    assert_eq!(
        pg_freeze_objects(&src).await,
        pasted,
        "a dry run drops nothing"
    );
    psql_exec(&env.source, &unfreeze);
    assert!(pg_freeze_objects(&src).await.is_empty());
    assert_eq!(ledger_rows(&tgt).await, Vec::<String>::new());

    // The real freeze makes the very same objects.
    ok(&env.run(&env.args("freeze", "A", &[])));
    assert_eq!(pg_freeze_objects(&src).await, pasted);
    // Once frozen, a dry run keeps the triggers (only the functions would be
    // replaced), and still changes nothing.
    let before = ledger_rows(&tgt).await;
    let again = dry_ok(&env.run(&env.args("freeze", "A", &["--dry-run"])));
    assert!(!again.contains("CREATE TRIGGER"), "{again}");
    assert_eq!(again.matches("exists: kept").count(), 6, "{again}");
    assert_eq!(ledger_rows(&tgt).await, before);
    // unfreeze --dry-run leaves the freeze in place.
    dry_ok(&env.run(&env.args("unfreeze", "A", &["--dry-run"])));
    assert_eq!(pg_freeze_objects(&src).await, pasted);
    assert_eq!(ledger_rows(&tgt).await, before);
}

#[tokio::test]
async fn mysql_freeze_dry_run_prints_the_sql_freeze_runs_and_changes_nothing() {
    let source = fresh_mysql_database(&mysql_source_url(), "dry_my_src").await;
    let target = fresh_pg_database(&pg_target_url(), "dry_my_tgt").await;
    let mut my = mysql_connect(&source).await;
    my.query_drop(
        "CREATE TABLE customers (id INT PRIMARY KEY, region VARCHAR(8) NOT NULL, name VARCHAR(20));
         CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(10,2),
             FOREIGN KEY (customer_id) REFERENCES customers(id));
         CREATE TABLE products (id INT PRIMARY KEY, name VARCHAR(20));
         INSERT INTO customers VALUES (1, 'A', 'a'), (2, 'B', 'b'), (3, 'A', 'c'), (4, 'B', 'd');
         INSERT INTO orders VALUES (1, 1, 1.5), (2, 2, 2.5), (3, 3, 3.5), (4, 4, 4.5);
         INSERT INTO products VALUES (1, 'p1'), (2, 'p2');",
    )
    .await
    .unwrap();
    let env = new_env(source.clone(), target.clone());
    let tgt = pg_connect(&target).await;

    let script = dry_ok(&env.run(&env.args("freeze", "A", &["--dry-run"])));
    for expected in [
        "SET SESSION lock_wait_timeout = 30;",
        "DELIMITER //\nCREATE TRIGGER `",
        "BEFORE INSERT ON `",
        "SIGNAL SQLSTATE '45000'",
        "END //\n",
        "DELIMITER ;\n",
        // A fresh target: the ledger would be created first.
        "CREATE SCHEMA IF NOT EXISTS \"_molt\";",
    ] {
        assert!(
            script.contains(expected),
            "missing {expected:?} in:\n{script}"
        );
    }
    async fn triggers(my: &mut mysql_async::Conn) -> Vec<(String, String)> {
        my.query(
            "SELECT CAST(TRIGGER_NAME AS CHAR), CAST(ACTION_STATEMENT AS CHAR) FROM information_schema.TRIGGERS \
             WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY TRIGGER_NAME",
        )
        .await
        .unwrap()
    }
    assert!(
        triggers(&mut my).await.is_empty(),
        "a dry run created triggers"
    );
    assert_eq!(
        count(
            &tgt,
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = '_molt'"
        )
        .await,
        0,
        "a dry run created the ledger"
    );
    my.query_drop("UPDATE customers SET name = 'w' WHERE id = 1")
        .await
        .unwrap();

    // Run through the mariadb client, the source part of the script
    // freezes phase A.
    let source_part = between(&script, "-- on the source", "-- then on the target");
    assert!(source_part.ends_with("DELIMITER ;\n"), "{source_part}");
    mysql_exec(&source, &source_part);
    let e = my
        .query_drop("UPDATE customers SET name = 'x' WHERE id = 1")
        .await
        .expect_err("the pasted freeze rejects writes to the slice")
        .to_string();
    assert!(e.contains("phase A is frozen"), "{e}");
    my.query_drop("UPDATE customers SET name = 'x' WHERE id = 2")
        .await
        .unwrap();
    let pasted = triggers(&mut my).await;
    assert_eq!(pasted.len(), 9);

    let unfreeze = dry_ok(&env.run(&env.args("unfreeze", "A", &["--dry-run"])));
    assert_eq!(triggers(&mut my).await, pasted, "a dry run drops nothing");
    mysql_exec(
        &source,
        between(&unfreeze, "-- on the source", "-- then on the target"),
    );
    assert!(triggers(&mut my).await.is_empty());

    // The real freeze makes the very same triggers; the ledger was never
    // touched by the dry runs.
    assert_eq!(
        count(
            &tgt,
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = '_molt'"
        )
        .await,
        0
    );
    ok(&env.run(&env.args("freeze", "A", &[])));
    assert_eq!(triggers(&mut my).await, pasted);
    let _ = my.disconnect().await;
}

#[tokio::test]
async fn finalize_dry_run_prints_the_ddl_and_creates_nothing() {
    let env = pg_env("dry_fin").await;
    load_phase(&env, "A");
    let tgt = pg_connect(&env.target).await;
    let indexes = "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' \
                   AND indexname IN ('customers_email_uq', 'orders_customer_idx')";
    let constraints = "SELECT count(*) FROM pg_constraint WHERE contype IN ('f', 'c') \
                       AND conrelid = 'public.orders'::regclass";
    let fin = |extra: &[&str]| {
        let mut args = vec![
            "finalize".to_string(),
            "--plan".into(),
            env.plan(),
            "--phase".into(),
            "A".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        env.run(&args)
    };

    let script = dry_ok(&fin(&["--dry-run"]));
    for expected in [
        "CREATE UNIQUE INDEX IF NOT EXISTS \"customers_email_uq\" ON \"public\".\"customers\" (\"email\");",
        "CREATE INDEX IF NOT EXISTS \"orders_customer_idx\" ON \"public\".\"orders\" (\"customer_id\");",
        "ALTER TABLE \"public\".\"orders\" ADD CONSTRAINT \"orders_customer_id_fkey\" FOREIGN KEY (\"customer_id\") \
         REFERENCES \"public\".\"customers\" (\"id\");",
        "ALTER TABLE \"public\".\"orders\" ADD CONSTRAINT \"orders_amount_check\" CHECK (",
        "-> finalized",
    ] {
        assert!(script.contains(expected), "missing {expected:?} in:\n{script}");
    }
    // Dependency order: indexes, checks, foreign keys.
    let at = |s: &str| script.find(s).unwrap();
    assert!(at("CREATE UNIQUE INDEX") < at("CHECK (") && at("CHECK (") < at("FOREIGN KEY"));
    assert_eq!(count(&tgt, indexes).await, 0);
    assert_eq!(count(&tgt, constraints).await, 0);
    assert_eq!(
        count(&tgt, "SELECT count(*) FROM information_schema.tables WHERE table_schema = '_molt' AND table_name = 'transitions'").await,
        0,
        "the loader's ledger has no lifecycle tables, and a dry run creates none"
    );

    // Run through psql on the target, the script creates what finalize
    // would; then finalize finds every object in place.
    psql_exec(&env.target, &script);
    assert_eq!(count(&tgt, indexes).await, 2);
    assert_eq!(count(&tgt, constraints).await, 2);
    let again = dry_ok(&fin(&["--dry-run"]));
    assert!(
        !again.contains("CREATE UNIQUE INDEX") && !again.contains("ADD CONSTRAINT"),
        "{again}"
    );
    assert_eq!(again.matches("-- exists, skipped: ").count(), 4, "{again}");
    assert!(
        again.contains("0 objects to create, 4 already there"),
        "{again}"
    );
    ok(&fin(&[]));
    let state: String = tgt
        .query_one("SELECT state FROM _molt.phases WHERE phase = 'A'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(state, "finalized");
}

#[tokio::test]
async fn rollback_purge_dry_run_deletes_nothing() {
    let env = pg_env("dry_purge").await;
    load_phase(&env, "B");
    let tgt = pg_connect(&env.target).await;
    let phase_b = (
        fingerprint(&tgt, "customers").await,
        fingerprint(&tgt, "orders").await,
    );
    ok(&env.run(&env.args("freeze", "A", &[])));
    load_phase(&env, "A");
    let tables = ["customers", "orders", "products"];
    let mut loaded = Vec::new();
    for t in tables {
        loaded.push(fingerprint(&tgt, t).await);
    }
    let ledger_before = ledger_rows(&tgt).await;
    let sections = "SELECT count(*) FROM _molt.sections WHERE phase = 'A' AND status = 'loaded'";
    let loaded_sections = count(&tgt, sections).await;
    assert!(loaded_sections > 3);

    let rollback = vec![
        "rollback".to_string(),
        "--phase".into(),
        "A".into(),
        "--purge-target".into(),
        "--dry-run".into(),
    ];
    let out = dry_ok(&env.run(&rollback));
    // The unfreeze of the source, then the DELETEs children first.
    assert!(out.contains("DROP TRIGGER IF EXISTS \"molt_frz_"), "{out}");
    let first = |s: &str| out.find(s).unwrap_or_else(|| panic!("no {s:?} in:\n{out}"));
    assert!(
        first("DELETE FROM \"public\".\"orders\"") < first("DELETE FROM \"public\".\"customers\"")
    );
    assert!(
        out.contains("DELETE FROM \"public\".\"products\";"),
        "{out}"
    );
    // Shard bounds are written in, no `$n` parameter is left.
    assert!(!out.contains("$1"), "{out}");

    // Nothing changed: rows, sections, ledger, and the source stays frozen.
    for (t, before) in tables.iter().zip(&loaded) {
        assert_eq!(&fingerprint(&tgt, t).await, before, "{t}");
    }
    assert_eq!(count(&tgt, sections).await, loaded_sections);
    assert_eq!(ledger_rows(&tgt).await, ledger_before);
    let src = pg_connect(&env.source).await;
    let msg = pg_write_error(&src, "UPDATE customers SET name = 'x' WHERE id = 2")
        .await
        .expect("still frozen");
    assert!(msg.contains("phase A is frozen"), "{msg}");

    // The printed DELETEs, run through psql on the target, remove exactly
    // phase A's rows (counted in the comments) and leave phase B's.
    let purge = between(&out, "delete the phase's rows", "rows in all");
    let counted: i64 = purge
        .lines()
        .filter_map(|l| l.strip_suffix(" rows now"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(
        counted,
        loaded.iter().map(|(n, _)| n).sum::<i64>() - phase_b.0 .0 - phase_b.1 .0
    );
    psql_exec(&env.target, &purge);
    assert_eq!(fingerprint(&tgt, "customers").await, phase_b.0);
    assert_eq!(fingerprint(&tgt, "orders").await, phase_b.1);
    assert_eq!(fingerprint(&tgt, "products").await.0, 0);
}

#[tokio::test]
async fn switch_dry_run_checks_the_gate_and_records_nothing() {
    let env = pg_env("dry_switch").await;
    ok(&env.run(&env.args("freeze", "A", &[])));
    load_phase(&env, "A");
    let tgt = pg_connect(&env.target).await;
    let marker = env._dir.path().join("hook-ran");
    let hook = format!("touch '{}'", marker.display());

    // The gate is checked as --check does: not verified, refused.
    let out = env.run(&env.args("switch", "A", &["--dry-run", "--hook", &hook]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("public.orders: not verified since the freeze began"),
        "{}",
        stderr(&out)
    );

    for t in ["customers", "orders", "products"] {
        record_verify(&env.target, "A", t).await;
    }
    let before = ledger_rows(&tgt).await;
    let out = dry_ok(&env.run(&env.args("switch", "A", &["--dry-run", "--hook", &hook])));
    for expected in [
        "-- the gate passes",
        "frozen -> cut_over",
        "\"_molt\".\"routing\" gets phase A: state 'target'",
        "then the hook runs: MOLT_PHASE='A' MOLT_LEDGER_SCHEMA='_molt' sh -c 'touch ",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(!marker.exists(), "a dry run ran the hook");
    assert_eq!(
        ledger_rows(&tgt).await,
        before,
        "a dry run recorded something"
    );
    assert_eq!(count(&tgt, "SELECT count(*) FROM _molt.routing").await, 0);

    // The real switch does what the dry run said.
    ok(&env.run(&env.args("switch", "A", &["--hook", &hook])));
    assert!(marker.exists());
    let route: String = tgt
        .query_one("SELECT state FROM _molt.routing WHERE phase = 'A'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(route, "target");
}

#[tokio::test]
async fn rollback_after_cutover_dry_run_writes_no_stream() {
    let env = pg_env("dry_back").await;
    ok(&env.run(&env.args("freeze", "A", &[])));
    load_phase(&env, "A");
    ok(&env.run(&env.args("switch", "A", &["--force"])));
    let tgt = pg_connect(&env.target).await;
    let src = pg_connect(&env.source).await;
    let before = ledger_rows(&tgt).await;

    // The refusals hold in a dry run too.
    let out = env.run(&env.args("unfreeze", "A", &["--dry-run"]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let out = env.run(&env.args("rollback", "A", &["--dry-run"]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));

    let out = dry_ok(&env.run(&env.args("rollback", "A", &["--after-cutover", "--dry-run"])));
    for expected in [
        "DROP TRIGGER IF EXISTS \"molt_frz_",
        "state 'source'",
        "a dry run writes none",
        "public.orders -> public.orders on the source: SELECT (\"id\")::TEXT",
        "-> rolled_back",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    // Parents first: customers' rows before orders'.
    assert!(out.find("public.customers -> ").unwrap() < out.find("public.orders -> ").unwrap());
    assert_eq!(ledger_rows(&tgt).await, before);
    let msg = pg_write_error(&src, "UPDATE customers SET name = 'x' WHERE id = 2")
        .await
        .expect("still frozen");
    assert!(msg.contains("phase A is frozen"), "{msg}");
}

#[tokio::test]
async fn status_reads_the_ledger_and_creates_nothing() {
    let env = pg_env("status_ro").await;
    let target = pg_connect(&env.target).await;
    let schemas = "SELECT count(*) FROM information_schema.schemata WHERE schema_name = '_molt'";
    // No ledger yet: a note, no records, and still no ledger afterwards.
    for args in [
        vec!["status".to_string()],
        vec!["status".into(), "--json".into()],
    ] {
        let out = env.run(&args);
        ok(&out);
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            stderr(&out).contains("no molt ledger in schema _molt"),
            "{}",
            stderr(&out)
        );
        assert_eq!(
            count(&target, schemas).await,
            0,
            "status created the ledger"
        );
    }
    // With a phase loaded, status reports it.
    load_phase(&env, "A");
    let out = env.run(&["status".into(), "--json".into()]);
    ok(&out);
    let records = ndjson(&out.stdout);
    assert!(
        records
            .iter()
            .any(|r| r["kind"] == "phase_status" && r["phase"] == "A"),
        "{records:#?}"
    );
}
