//! molt-cutover against real servers: freeze (PostgreSQL and MariaDB),
//! in-flight writes, the switch gate, rollback before and after the
//! switch, proof and finalize.
//!
//! Every test makes its own databases. The ledger is seeded with
//! `molt_core::ledger` where molt-verify does not record results yet; rows
//! are loaded with the real molt-slice | molt-dump | molt-load pipeline.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

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

    fn phase_args(&self, cmd: &str, phase: &str) -> Vec<String> {
        vec![
            cmd.into(),
            "--plan".into(),
            self.plan(),
            "--phase".into(),
            phase.into(),
            "--source".into(),
            self.source.clone(),
            "--target".into(),
            self.target.clone(),
        ]
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

fn cutover(args: &[String]) -> Output {
    cutover_env(args, &[])
}

fn cutover_env(args: &[String], env: &[(&str, &str)]) -> Output {
    Command::new(bin("molt-cutover"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("running molt-cutover")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
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

/// Loads a phase: molt-dump's parallel readers write shards in whatever
/// order they finish (children before parents, too) and molt-load writes
/// them with parallel workers, into tables that may carry foreign keys
/// from an earlier phase's finalize.
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
                vec![
                    "--source".into(),
                    env.source.clone(),
                    "--quiet".into(),
                    "--jobs".into(),
                    "4".into(),
                ],
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
}

/// The error text of a failed PostgreSQL statement.
async fn pg_err(client: &tokio_postgres::Client, sql: &str) -> String {
    match client.batch_execute(sql).await {
        Ok(()) => panic!("expected {sql:?} to be rejected"),
        Err(e) => e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| e.to_string()),
    }
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// A content fingerprint of a table: row count and an order-independent hash.
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

async fn record_verify(target: &str, phase: &str, table: &str, differences: u64) {
    let client = pg_connect(target).await;
    ledger::record_verify_result(
        &client,
        ledger::DEFAULT_SCHEMA,
        &VerifyResult {
            phase: phase.into(),
            table: TableName::new("public", table),
            source_rows: 10,
            target_rows: 10 + differences,
            differences,
            ok: differences == 0,
            started_at: SystemTime::now(),
            finished_at: SystemTime::now(),
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn pg_freeze_rejects_writes_in_the_slice_only() {
    let env = pg_env("cut_freeze").await;
    let src = pg_connect(&env.source).await;
    ok(&cutover(&env.phase_args("freeze", "A")));
    // Running it again is safe.
    ok(&cutover(&env.phase_args("freeze", "A")));

    let msg = pg_err(&src, "INSERT INTO customers VALUES (1000, 'A', 'n', 'n@x')").await;
    assert!(
        msg.contains("phase A is frozen") && msg.contains("public.customers"),
        "{msg}"
    );
    let msg = pg_err(&src, "UPDATE customers SET name = 'z' WHERE id = 2").await;
    assert!(msg.contains("phase A is frozen"), "{msg}");
    // Moving a row of another phase into the slice is a write to the slice.
    let msg = pg_err(&src, "UPDATE customers SET region = 'A' WHERE id = 3").await;
    assert!(msg.contains("phase A is frozen"), "{msg}");
    let msg = pg_err(&src, "DELETE FROM orders WHERE id = 1").await; // customer 2: phase A
    assert!(msg.contains("public.orders"), "{msg}");
    let msg = pg_err(&src, "DELETE FROM products WHERE id = 1").await;
    assert!(msg.contains("public.products"), "{msg}");
    let msg = pg_err(&src, "TRUNCATE products").await;
    assert!(msg.contains("phase A is frozen"), "{msg}");

    // Outside the slice: phase B rows.
    src.batch_execute("INSERT INTO customers VALUES (1001, 'B', 'n', 'm@x')")
        .await
        .unwrap();
    src.batch_execute("UPDATE customers SET name = 'z' WHERE id = 3")
        .await
        .unwrap();
    src.batch_execute("DELETE FROM orders WHERE id = 2")
        .await
        .unwrap(); // customer 3: phase B
    assert_eq!(
        count(&src, "SELECT count(*) FROM customers WHERE name = 'z'").await,
        1
    );

    ok(&cutover(&env.phase_args("unfreeze", "A")));
    ok(&cutover(&env.phase_args("unfreeze", "A"))); // twice is fine
    src.batch_execute("INSERT INTO customers VALUES (1000, 'A', 'n', 'n@x')")
        .await
        .unwrap();
    src.batch_execute("UPDATE customers SET name = 'y' WHERE id = 2")
        .await
        .unwrap();
    src.batch_execute("DELETE FROM orders WHERE id = 1")
        .await
        .unwrap();
    src.batch_execute("DELETE FROM products WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(
        count(
            &src,
            "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'molt_frz_%'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &src,
            "SELECT count(*) FROM pg_proc WHERE proname LIKE 'molt_frz_%'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn mysql_freeze_rejects_writes_in_the_slice_only() {
    let source = fresh_mysql_database(&mysql_source_url(), "cut_my_src").await;
    let target = fresh_pg_database(&pg_target_url(), "cut_my_tgt").await;
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
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("phases.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let args = |cmd: &str| -> Vec<String> {
        vec![
            cmd.into(),
            "--plan".into(),
            plan.display().to_string(),
            "--phase".into(),
            "A".into(),
            "--source".into(),
            source.clone(),
            "--target".into(),
            target.clone(),
        ]
    };
    ok(&cutover(&args("freeze")));
    ok(&cutover(&args("freeze")));

    async fn my_err(conn: &mut mysql_async::Conn, sql: &str) -> String {
        match conn.query_drop(sql).await {
            Ok(()) => panic!("expected {sql:?} to be rejected"),
            Err(e) => e.to_string(),
        }
    }
    let e = my_err(&mut my, "INSERT INTO customers VALUES (10, 'A', 'x')").await;
    assert!(
        e.contains("phase A is frozen") && e.contains("customers"),
        "{e}"
    );
    let e = my_err(&mut my, "UPDATE customers SET name = 'z' WHERE id = 1").await;
    assert!(e.contains("phase A is frozen"), "{e}");
    let e = my_err(&mut my, "UPDATE customers SET region = 'A' WHERE id = 2").await;
    assert!(e.contains("phase A is frozen"), "{e}");
    let e = my_err(&mut my, "DELETE FROM orders WHERE id = 3").await;
    assert!(e.contains("orders"), "{e}");
    let e = my_err(&mut my, "UPDATE products SET name = 'q' WHERE id = 1").await;
    assert!(e.contains("products"), "{e}");

    my.query_drop("INSERT INTO customers VALUES (11, 'B', 'x')")
        .await
        .unwrap();
    my.query_drop("UPDATE customers SET name = 'z' WHERE id = 2")
        .await
        .unwrap();
    my.query_drop("DELETE FROM orders WHERE id = 4")
        .await
        .unwrap();

    ok(&cutover(&args("unfreeze")));
    ok(&cutover(&args("unfreeze")));
    my.query_drop("INSERT INTO customers VALUES (10, 'A', 'x')")
        .await
        .unwrap();
    my.query_drop("UPDATE customers SET name = 'z' WHERE id = 1")
        .await
        .unwrap();
    my.query_drop("DELETE FROM orders WHERE id = 3")
        .await
        .unwrap();
    my.query_drop("UPDATE products SET name = 'q' WHERE id = 1")
        .await
        .unwrap();
    let left: Option<i64> = my
        .query_first(
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()",
        )
        .await
        .unwrap();
    assert_eq!(left, Some(0));
    let _ = my.disconnect().await;
}

#[tokio::test]
async fn pg_freeze_waits_for_in_flight_writes_or_times_out() {
    let env = pg_env("cut_inflight").await;
    // A transaction that wrote the slice before the freeze, committing
    // while freeze waits: its row must be there, and the freeze in place.
    let writer = pg_connect(&env.source).await;
    writer
        .batch_execute("BEGIN; INSERT INTO customers VALUES (500, 'A', 'inflight', 'i@x')")
        .await
        .unwrap();
    let mut args = env.phase_args("freeze", "A");
    args.extend(["--wait-timeout".into(), "20".into()]);
    let child = Command::new(bin("molt-cutover"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until freeze's session is seen waiting for a table lock (held by
    // the writer's ROW EXCLUSIVE), not for a fixed time.
    let mut child = child;
    let watcher = pg_connect(&env.source).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let waiting = count(
            &watcher,
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE NOT l.granted AND a.application_name = 'molt-cutover' \
             AND a.datname = current_database()",
        )
        .await;
        if waiting > 0 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "freeze ended ({status}) before it waited for the in-flight transaction: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "freeze's session never waited for a lock within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "freeze did not wait for the in-flight transaction"
    );
    writer.batch_execute("COMMIT").await.unwrap();
    let out = child.wait_with_output().unwrap();
    ok(&out);
    let src = pg_connect(&env.source).await;
    assert_eq!(
        count(&src, "SELECT count(*) FROM customers WHERE id = 500").await,
        1
    );
    let msg = pg_err(
        &src,
        "INSERT INTO customers VALUES (501, 'A', 'late', 'l@x')",
    )
    .await;
    assert!(msg.contains("phase A is frozen"), "{msg}");
    ok(&cutover(&env.phase_args("unfreeze", "A")));

    // A transaction that does not finish in time: freeze fails naming the
    // table, nothing is frozen, and the in-flight row still commits.
    writer
        .batch_execute("BEGIN; UPDATE orders SET amount = 7 WHERE id = 5")
        .await
        .unwrap();
    let mut args = env.phase_args("freeze", "A");
    args.extend(["--wait-timeout".into(), "1".into()]);
    let out = cutover(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("public.orders") && err.contains("in-flight"),
        "{err}"
    );
    writer.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        count(
            &src,
            "SELECT count(*) FROM orders WHERE id = 5 AND amount = 7"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &src,
            "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'molt_frz_%'"
        )
        .await,
        0
    );
    src.batch_execute("INSERT INTO customers VALUES (502, 'A', 'free', 'f@x')")
        .await
        .unwrap();
}

#[tokio::test]
async fn mysql_freeze_waits_for_in_flight_writes_or_times_out() {
    let source = fresh_mysql_database(&mysql_source_url(), "cut_myinf_src").await;
    let target = fresh_pg_database(&pg_target_url(), "cut_myinf_tgt").await;
    let mut my = mysql_connect(&source).await;
    my.query_drop(
        "CREATE TABLE customers (id INT PRIMARY KEY, region VARCHAR(8) NOT NULL);
         CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, FOREIGN KEY (customer_id) REFERENCES customers(id));
         CREATE TABLE products (id INT PRIMARY KEY);
         INSERT INTO customers VALUES (1, 'A'), (2, 'B');",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("phases.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let args = |cmd: &str, wait: &str| -> Vec<String> {
        [
            cmd,
            "--plan",
            &plan.display().to_string(),
            "--phase",
            "A",
            "--source",
            &source,
            "--target",
            &target,
            "--wait-timeout",
            wait,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let mut writer = mysql_connect(&source).await;
    writer.query_drop("START TRANSACTION").await.unwrap();
    writer
        .query_drop("INSERT INTO customers VALUES (50, 'A')")
        .await
        .unwrap();
    let child = Command::new(bin("molt-cutover"))
        .args(args("freeze", "20"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until freeze's CREATE TRIGGER is seen waiting for the metadata
    // lock the writer's transaction holds, not for a fixed time.
    let mut child = child;
    let db = source.rsplit('/').next().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: Option<i64> = my
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ? \
                 AND STATE LIKE 'Waiting for table metadata lock%' AND INFO LIKE 'CREATE TRIGGER%'",
                (&db,),
            )
            .await
            .unwrap();
        if waiting.unwrap_or(0) > 0 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "freeze ended ({status}) before it waited for the in-flight transaction: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "freeze's CREATE TRIGGER never waited for the metadata lock within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "freeze did not wait for the in-flight transaction"
    );
    writer.query_drop("COMMIT").await.unwrap();
    ok(&child.wait_with_output().unwrap());
    let n: Option<i64> = my
        .query_first("SELECT COUNT(*) FROM customers WHERE id = 50")
        .await
        .unwrap();
    assert_eq!(n, Some(1));
    assert!(my
        .query_drop("INSERT INTO customers VALUES (51, 'A')")
        .await
        .is_err());
    ok(&cutover(&args("unfreeze", "5")));

    writer.query_drop("START TRANSACTION").await.unwrap();
    writer
        .query_drop("INSERT INTO orders VALUES (9, 2)")
        .await
        .unwrap();
    let out = cutover(&args("freeze", "1"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("in-flight") && err.contains(".orders"),
        "{err}"
    );
    writer.query_drop("COMMIT").await.unwrap();
    let n: Option<i64> = my
        .query_first("SELECT COUNT(*) FROM orders WHERE id = 9")
        .await
        .unwrap();
    assert_eq!(n, Some(1));
    let left: Option<i64> = my
        .query_first(
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()",
        )
        .await
        .unwrap();
    assert_eq!(left, Some(0), "the partial freeze was not undone");
    my.query_drop("INSERT INTO customers VALUES (52, 'A')")
        .await
        .unwrap();
    let _ = my.disconnect().await;
    let _ = writer.disconnect().await;
}

#[tokio::test]
async fn switch_gate_refuses_until_everything_is_in_order() {
    let env = pg_env("cut_gate").await;
    ok(&cutover(&env.phase_args("freeze", "A")));
    load_phase(&env, "A");
    let tgt = pg_connect(&env.target).await;

    // Not verified at all.
    let out = cutover(&env.phase_args("switch", "A"));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("public.orders: not verified since the freeze began"),
        "{}",
        stderr(&out)
    );

    // A verify that found a difference.
    for t in ["customers", "products"] {
        record_verify(&env.target, "A", t, 0).await;
    }
    record_verify(&env.target, "A", "orders", 2).await;
    let out = cutover(&env.phase_args("switch", "A"));
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    assert!(
        err.contains("public.orders: verify found 2 differences"),
        "{err}"
    );
    assert!(!err.contains("public.customers"), "{err}");

    // Verified, but a shard is missing.
    record_verify(&env.target, "A", "orders", 0).await;
    let shards = count(
        &tgt,
        "SELECT max(shard_count) FROM _molt.sections WHERE phase = 'A' AND target_table = 'orders'",
    )
    .await;
    assert!(shards > 1, "orders should be sharded");
    tgt.batch_execute("UPDATE _molt.sections SET status = 'failed' WHERE phase = 'A' AND target_table = 'orders' AND shard_index = 1")
        .await
        .unwrap();
    let out = cutover(&env.phase_args("switch", "A"));
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    assert!(
        err.contains("public.orders: not fully loaded")
            && err.contains(&format!("2/{shards} is failed")),
        "{err}"
    );
    tgt.batch_execute(
        "UPDATE _molt.sections SET status = 'loaded' WHERE phase = 'A' AND target_table = 'orders'",
    )
    .await
    .unwrap();

    // The gate passes now (check only).
    let mut check = env.phase_args("switch", "A");
    check.push("--check".into());
    ok(&cutover(&check));

    // The target table emptied behind the ledger's back: the ledger still
    // says loaded, the gate does not believe it, and neither does proof.
    let orders_a = count(&tgt, "SELECT count(*) FROM orders").await;
    assert!(orders_a > 0);
    tgt.batch_execute("CREATE TABLE orders_keep AS SELECT * FROM orders; DELETE FROM orders")
        .await
        .unwrap();
    let out = cutover(&check);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(
        err.matches("public.orders: shard ").count() as i64,
        shards,
        "every shard of orders is named: {err}"
    );
    assert!(
        err.contains("but the target holds 0 of them (load it again)"),
        "{err}"
    );
    assert!(!err.contains("public.customers"), "{err}");
    let proof = cutover(&env.phase_args("proof", "A"));
    assert_eq!(proof.status.code(), Some(3), "{}", stderr(&proof));
    assert!(
        stderr(&proof).contains("public.orders: the target no longer holds the load"),
        "{}",
        stderr(&proof)
    );
    tgt.batch_execute("INSERT INTO orders SELECT * FROM orders_keep; DROP TABLE orders_keep")
        .await
        .unwrap();
    ok(&cutover(&check));

    // The source is no longer frozen (a trigger dropped behind our back).
    let src = pg_connect(&env.source).await;
    let trig: String = src
        .query_one("SELECT tgname::text FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid WHERE c.relname = 'customers' AND tgname LIKE 'molt_frz_%' AND tgname NOT LIKE '%_t'", &[])
        .await
        .unwrap()
        .get(0);
    src.batch_execute(&format!("DROP TRIGGER \"{trig}\" ON customers"))
        .await
        .unwrap();
    let out = cutover(&env.phase_args("switch", "A"));
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    assert!(
        err.contains("public.customers: the freeze is no longer in place")
            && err.contains("missing"),
        "{err}"
    );

    // Unfrozen entirely: every table says so.
    ok(&cutover(&env.phase_args("unfreeze", "A")));
    let out = cutover(&env.phase_args("switch", "A"));
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(
        stderr(&out).matches("not frozen at the source").count(),
        3,
        "{}",
        stderr(&out)
    );

    // Frozen again: the earlier verify predates the new freeze.
    ok(&cutover(&env.phase_args("freeze", "A")));
    let out = cutover(&env.phase_args("switch", "A"));
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains("only earlier verify results"),
        "{}",
        stderr(&out)
    );

    // Everything in order: switch, route, hook (no password in its env).
    for t in ["customers", "orders", "products"] {
        record_verify(&env.target, "A", t, 0).await;
    }
    let hook_out = tempfile::NamedTempFile::new().unwrap();
    let mut args = env.phase_args("switch", "A");
    args.extend([
        "--hook".into(),
        format!("env > {}", hook_out.path().display()),
    ]);
    let out = cutover_env(&args, &[("MOLT_SOURCE", "postgres://u:sekret@h/db")]);
    ok(&out);
    let hook_env = std::fs::read_to_string(hook_out.path()).unwrap();
    assert!(
        hook_env.contains("MOLT_PHASE=A") && hook_env.contains("MOLT_LEDGER_SCHEMA=_molt"),
        "{hook_env}"
    );
    assert!(!hook_env.contains("sekret"), "the hook saw a password");
    let route: String = tgt
        .query_one("SELECT state FROM _molt.routing WHERE phase = 'A'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(route, "target");
    let state: String = tgt
        .query_one("SELECT state FROM _molt.phases WHERE phase = 'A'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(state, "cut_over");
    // The freeze proof holds, and status shows the phase.
    let proof = cutover(&env.phase_args("proof", "A"));
    ok(&proof);
    let records = ndjson(&proof.stdout);
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r["ok"] == true), "{records:?}");
    let status = cutover(&[
        "status".into(),
        "--target".into(),
        env.target.clone(),
        "--json".into(),
    ]);
    ok(&status);
    let recs = ndjson(&status.stdout);
    let a = recs
        .iter()
        .find(|r| r["kind"] == "phase_status" && r["phase"] == "A")
        .unwrap();
    assert_eq!(a["state"], "cut_over");
    assert_eq!(a["route"], "target");
    // --force was not used: no forced transition.
    assert!(recs
        .iter()
        .filter(|r| r["kind"] == "transition")
        .all(|r| r["forced"] == false));
}

#[tokio::test]
async fn forced_switch_is_recorded_and_proof_detects_changes() {
    let env = pg_env("cut_force").await;
    ok(&cutover(&env.phase_args("freeze", "A")));
    load_phase(&env, "A");
    ok(&cutover(&env.phase_args("proof", "A")));
    // A write that slipped past (unfreeze, write, freeze): proof must see it.
    ok(&cutover(&env.phase_args("unfreeze", "A")));
    let src = pg_connect(&env.source).await;
    src.batch_execute("UPDATE customers SET name = 'changed' WHERE id = 2")
        .await
        .unwrap();
    ok(&cutover(&env.phase_args("freeze", "A")));
    let out = cutover(&env.phase_args("proof", "A"));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let bad: Vec<_> = ndjson(&out.stdout)
        .into_iter()
        .filter(|r| r["ok"] == false)
        .collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["table"]["name"], "customers");

    let mut args = env.phase_args("switch", "A");
    args.push("--force".into());
    ok(&cutover(&args));
    let tgt = pg_connect(&env.target).await;
    let forced: bool = tgt
        .query_one(
            "SELECT forced FROM _molt.transitions WHERE phase = 'A' AND to_state = 'cut_over'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(forced);
}

#[tokio::test]
async fn rollback_with_purge_restores_the_target_and_keeps_other_phases() {
    let env = pg_env("cut_purge").await;
    load_phase(&env, "B");
    let tgt = pg_connect(&env.target).await;
    let before_c = fingerprint(&tgt, "customers").await;
    let before_o = fingerprint(&tgt, "orders").await;
    assert!(before_c.0 > 0 && before_o.0 > 0);

    ok(&cutover(&env.phase_args("freeze", "A")));
    load_phase(&env, "A");
    assert!(fingerprint(&tgt, "customers").await.0 > before_c.0);
    assert_eq!(fingerprint(&tgt, "products").await.0, 3);

    let out = cutover(&[
        "rollback".into(),
        "--phase".into(),
        "A".into(),
        "--source".into(),
        env.source.clone(),
        "--target".into(),
        env.target.clone(),
        "--purge-target".into(),
    ]);
    ok(&out);
    assert_eq!(fingerprint(&tgt, "customers").await, before_c);
    assert_eq!(fingerprint(&tgt, "orders").await, before_o);
    assert_eq!(fingerprint(&tgt, "products").await.0, 0);
    assert_eq!(
        count(
            &tgt,
            "SELECT count(*) FROM _molt.sections WHERE phase = 'A' AND status <> 'rolled_back'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &tgt,
            "SELECT count(*) FROM _molt.sections WHERE phase = 'B' AND status = 'loaded'"
        )
        .await,
        count(
            &tgt,
            "SELECT count(*) FROM _molt.sections WHERE phase = 'B'"
        )
        .await
    );
    // The source is writable again.
    let src = pg_connect(&env.source).await;
    src.batch_execute("INSERT INTO customers VALUES (900, 'A', 'back', 'b@x')")
        .await
        .unwrap();
    let state: String = tgt
        .query_one("SELECT state FROM _molt.phases WHERE phase = 'A'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(state, "rolled_back");
}

#[tokio::test]
async fn rollback_after_cutover_brings_target_writes_back_to_a_pg_source() {
    let env = pg_env("cut_back").await;
    ok(&cutover(&env.phase_args("freeze", "A")));
    load_phase(&env, "A");
    let mut args = env.phase_args("switch", "A");
    args.push("--force".into());
    ok(&cutover(&args));

    // Without --after-cutover: refused.
    let base = vec![
        "rollback".to_string(),
        "--plan".into(),
        env.plan(),
        "--phase".into(),
        "A".into(),
        "--source".into(),
        env.source.clone(),
        "--target".into(),
        env.target.clone(),
    ];
    let out = cutover(&base);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));

    // The application writes to the target after the cutover.
    let tgt = pg_connect(&env.target).await;
    tgt.batch_execute(
        "INSERT INTO customers VALUES (700, 'A', 'new on target', 'new@x');
         INSERT INTO orders VALUES (7000, 700, 70.00);
         UPDATE customers SET name = 'renamed' WHERE id = 2;
         UPDATE orders SET amount = 999.99 WHERE id = 1;
         DELETE FROM orders WHERE id = 3;
         UPDATE products SET name = 'P2!' WHERE id = 2;",
    )
    .await
    .unwrap();
    let mut args = base.clone();
    args.push("--after-cutover".into());
    let out = run_pipe(
        &[
            ("molt-cutover", args),
            (
                "molt-load",
                vec![
                    "--target".into(),
                    env.source.clone(),
                    "--quiet".into(),
                    "--ledger-schema".into(),
                    "_molt_rollback".into(),
                ],
            ),
        ],
        None,
        &[],
    );
    out.assert_success();

    let src = pg_connect(&env.source).await;
    let name: String = src
        .query_one("SELECT name FROM customers WHERE id = 700", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "new on target");
    let name: String = src
        .query_one("SELECT name FROM customers WHERE id = 2", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "renamed");
    let amount: String = src
        .query_one("SELECT amount::text FROM orders WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(amount, "999.99");
    assert_eq!(
        count(&src, "SELECT count(*) FROM orders WHERE id IN (3, 7000)").await,
        1
    );
    let p: String = src
        .query_one("SELECT name FROM products WHERE id = 2", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(p, "P2!");
    // Phase A's slice is now identical on both sides; phase B rows untouched.
    for (table, slice) in [
        ("customers", "region = 'A'"),
        (
            "orders",
            "customer_id IN (SELECT id FROM customers WHERE region = 'A')",
        ),
    ] {
        let sql = format!("SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {table} t WHERE {slice}");
        let a = src.query_one(&sql, &[]).await.unwrap();
        let b = tgt.query_one(&sql, &[]).await.unwrap();
        assert_eq!(
            (a.get::<_, i64>(0), a.get::<_, String>(1)),
            (b.get::<_, i64>(0), b.get::<_, String>(1)),
            "{table}"
        );
    }
    assert_eq!(
        count(&src, "SELECT count(*) FROM customers WHERE region = 'B'").await,
        20
    );
    // Unfrozen: the source takes writes again; routing points back.
    src.batch_execute("INSERT INTO customers VALUES (701, 'A', 'x', 'x@x')")
        .await
        .unwrap();
    let route: String = tgt
        .query_one("SELECT state FROM _molt.routing WHERE phase = 'A'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(route, "source");
}

async fn finalize_in_order(first: &str, second: &str) {
    let env = pg_env(&format!("cut_fin_{first}")).await;
    let fin = |phase: &str| -> Vec<String> {
        vec![
            "finalize".into(),
            "--plan".into(),
            env.plan(),
            "--phase".into(),
            phase.into(),
            "--target".into(),
            env.target.clone(),
        ]
    };
    load_phase(&env, first);
    ok(&cutover(&fin(first)));
    // The first phase's foreign keys now exist on the target.
    load_phase(&env, second);
    ok(&cutover(&fin(second)));
    ok(&cutover(&fin(second))); // re-run
                                // Both phases finalized; the second phase changes at the source and is
                                // loaded again: its changed sections replace their slices under the
                                // foreign keys (old orders deleted before old customers, new customers
                                // written before new orders).
    let src = pg_connect(&env.source).await;
    let region = if second == "A" { "A" } else { "B" };
    src.batch_execute(&format!(
        "UPDATE customers SET name = name || '!' WHERE region = '{region}';
         UPDATE orders SET amount = amount + 1 WHERE customer_id IN (SELECT id FROM customers WHERE region = '{region}');"
    ))
    .await
    .unwrap();
    load_phase(&env, second);
    let tgt = pg_connect(&env.target).await;
    for table in ["customers", "orders"] {
        assert_eq!(
            fingerprint(&tgt, table).await,
            fingerprint(&src, table).await,
            "{table}"
        );
    }
    for name in ["customers_email_uq", "orders_customer_idx"] {
        assert_eq!(
            count(&tgt, &format!("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND indexname = '{name}'")).await,
            1,
            "{name}"
        );
    }
    assert_eq!(
        count(&tgt, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = 'public.orders'::regclass AND convalidated").await,
        1
    );
    assert_eq!(
        count(&tgt, "SELECT count(*) FROM pg_constraint WHERE contype = 'c' AND conrelid = 'public.orders'::regclass").await,
        1
    );
    assert_eq!(count(&tgt, "SELECT count(*) FROM customers").await, 40);
    assert_eq!(count(&tgt, "SELECT count(*) FROM orders").await, 120);
    let state: String = tgt
        .query_one(
            "SELECT state FROM _molt.phases WHERE phase = $1",
            &[&second],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(state, "finalized");
}

#[tokio::test]
async fn finalize_shared_tables_a_then_b() {
    finalize_in_order("A", "B").await;
}

#[tokio::test]
async fn finalize_shared_tables_b_then_a() {
    finalize_in_order("B", "A").await;
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    for sub in [
        "freeze", "unfreeze", "finalize", "switch", "proof", "rollback", "status",
    ] {
        let out = Command::new(bin("molt-cutover"))
            .args([sub, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Example"),
            "{sub} --help has no example:\n{text}"
        );
    }
}
