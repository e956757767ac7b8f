//! molt-verify against real servers: identical data passes with exact
//! counts, each deliberate change on the target is reported exactly once
//! (kind, key, column) and nothing else, MySQL and PostgreSQL holding the
//! same values compare equal despite their different spellings, shared
//! tables are verified per phase, and a lost connection fails the run.
//!
//! Build first: `cargo build -p molt-verify`; needs `MOLT_TEST_PG_SOURCE`,
//! `MOLT_TEST_PG_TARGET` and `MOLT_TEST_MYSQL_SOURCE`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use molt_tests::*;
use serde_json::{json, Value};

/// Runs molt-verify; returns the outcome (any exit status).
fn verify(args: &[&str], stdin: Option<&[u8]>) -> PipeOutcome {
    run_pipe(
        &[("molt-verify", args.iter().map(|s| s.to_string()).collect())],
        stdin,
        &[],
    )
}

fn reports<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["type"] == "report" && r["kind"] == kind)
        .collect()
}

/// The single table summary of `table` (by name).
fn table_summary<'a>(records: &'a [Value], table: &str) -> &'a Value {
    let found: Vec<&Value> = reports(records, "table_summary")
        .into_iter()
        .filter(|r| r["table"]["name"] == table)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one table_summary for {table}: {records:#?}"
    );
    found[0]
}

fn counts(summary: &Value) -> [u64; 6] {
    [
        "source_rows",
        "target_rows",
        "matched",
        "missing",
        "extraneous",
        "mismatched",
    ]
    .map(|k| {
        summary[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in {summary}"))
    })
}

/// A table with every kind of column the comparison must get right, and a
/// composite primary key with a text part.
const PG_SCHEMA: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE items (
    tenant int NOT NULL,
    code text NOT NULL,
    amount numeric(20,6),
    ratio float8,
    doc jsonb,
    happened timestamp,
    seen timestamptz,
    blob bytea,
    tag char(4),
    feeling mood,
    nums int[],
    label varchar(40),
    PRIMARY KEY (tenant, code)
);
INSERT INTO items
SELECT i % 5, 'code-' || i || CASE WHEN i % 3 = 0 THEN 'é' ELSE 'Z' END,
       i * 1.25, i / 7.0,
       jsonb_build_object('id', i, 'nested', jsonb_build_object('v', i, 'w', ARRAY[i, i])),
       timestamp '2021-03-04 05:06:07.123456' + i * interval '1 minute',
       timestamptz '2021-03-04 05:06:07Z' + i * interval '1 second',
       decode(md5(i::text), 'hex'),
       'T' || (i % 10),
       (ARRAY['sad', 'ok', 'happy'])[1 + i % 3]::mood,
       ARRAY[i, -i],
       CASE WHEN i % 4 = 0 THEN NULL ELSE 'label ' || i END
FROM generate_series(1, 3000) AS i;
INSERT INTO items (tenant, code) VALUES (9, 'all-null');
CREATE TABLE bag (x int, y text);
INSERT INTO bag VALUES (1, 'a'), (1, 'a'), (2, NULL);
"#;

async fn pg_pair(prefix: &str) -> (String, String) {
    let src = fresh_pg_database(&pg_source_url(), &format!("{prefix}_src")).await;
    let tgt = fresh_pg_database(&pg_target_url(), &format!("{prefix}_tgt")).await;
    psql_exec(&src, PG_SCHEMA);
    psql_exec(&tgt, PG_SCHEMA);
    (src, tgt)
}

#[tokio::test]
async fn identical_postgres_tables_have_no_differences() {
    let (src, tgt) = pg_pair("verify_same").await;
    // Small chunks (many hashed ranges) and one big chunk (COPY path).
    for chunk in ["250", "1000000"] {
        let out = verify(
            &[
                "--source",
                &src,
                "--target",
                &tgt,
                "--table",
                "items",
                "--table",
                "public.bag",
                "--chunk-rows",
                chunk,
            ],
            None,
        );
        out.assert_statuses(&[0]);
        let records = out.records();
        assert!(
            records.iter().all(|r| r["type"] == "report"),
            "stdout holds only report records"
        );
        let items = table_summary(&records, "items");
        assert_eq!(counts(items), [3001, 3001, 3001, 0, 0, 0], "{items}");
        assert_eq!(items["columns_compared"], 12);
        assert_eq!(items["schema_issues"], json!([]));
        assert_eq!(items["mode"], "chunked-hash");
        let bag = table_summary(&records, "bag");
        assert_eq!(counts(bag), [3, 3, 3, 0, 0, 0]);
        assert_eq!(bag["mode"], "multiset");
        assert!(
            out.stderrs[0].contains("no primary key"),
            "warning on stderr: {}",
            out.stderrs[0]
        );
        let summary = reports(&records, "summary");
        assert_eq!(summary.len(), 1);
        assert_eq!(summary[0]["ok"], true);
        assert_eq!(summary[0]["differences"], 0);
        assert_eq!(summary[0]["tables"], 2);
    }
}

#[tokio::test]
async fn each_change_on_the_target_is_reported_once() {
    let (src, tgt) = pg_pair("verify_changes").await;
    psql_exec(
        &tgt,
        r#"
        DELETE FROM items WHERE tenant = 1 AND code = 'code-1Z';
        INSERT INTO items (tenant, code, label) VALUES (7, 'new row', 'x');
        UPDATE items SET label = '' WHERE tenant = 4 AND code = 'code-4Z';                 -- was NULL
        UPDATE items SET amount = amount + 0.000001 WHERE tenant = 2 AND code = 'code-7Z';
        UPDATE items SET doc = jsonb_set(doc, '{nested,v}', '11') WHERE tenant = 0 AND code = 'code-10Z';
        UPDATE items SET happened = happened + interval '1 microsecond' WHERE tenant = 1 AND code = 'code-11Z';
        UPDATE items SET label = label || ' ' WHERE tenant = 3 AND code = 'code-13Z';
        UPDATE items SET blob = set_byte(blob, 3, get_byte(blob, 3) # 128) WHERE tenant = 4 AND code = 'code-14Z';
        UPDATE items SET tag = rtrim(tag) || '  ' WHERE tenant = 0 AND code = 'code-20Z'; -- CHAR padding: no change
        DELETE FROM bag WHERE ctid = (SELECT min(ctid) FROM bag WHERE x = 1);
        INSERT INTO bag VALUES (3, 'c');
        "#,
    );
    for chunk in ["100", "1000000", "no-hash"] {
        let mut args = vec![
            "--source", &src, "--target", &tgt, "--table", "items", "--table", "bag",
        ];
        match chunk {
            "no-hash" => args.push("--no-hash"),
            n => args.extend(["--chunk-rows", n]),
        }
        let out = verify(&args, None);
        out.assert_statuses(&[3]);
        let records = out.records();
        let items = table_summary(&records, "items");
        assert_eq!(counts(items), [3001, 3001, 2994, 1, 1, 6], "{items}");
        if chunk == "100" {
            // A key with a text column is split into at most 16 chunks.
            assert_eq!(items["chunks"], 16, "{items}");
        }

        let rows: Vec<&Value> = records
            .iter()
            .filter(|r| r["table"]["name"] == "items" && r["kind"] != "table_summary")
            .collect();
        assert_eq!(rows.len(), 8, "exactly the changed rows: {rows:#?}");
        let find = |tenant: &str, code: &str| -> &Value {
            let hits: Vec<&&Value> = rows
                .iter()
                .filter(|r| r["key"] == json!({"tenant": tenant, "code": code}))
                .collect();
            assert_eq!(
                hits.len(),
                1,
                "one report for ({tenant}, {code}): {rows:#?}"
            );
            hits[0]
        };
        assert_eq!(find("1", "code-1Z")["kind"], "missing");
        assert_eq!(find("7", "new row")["kind"], "extraneous");
        let mismatch = |tenant: &str, code: &str, column: &str, source: Value, target: Value| {
            let r = find(tenant, code);
            assert_eq!(r["kind"], "mismatch", "{r}");
            assert_eq!(
                r["columns"],
                json!([{"name": column, "source": source, "target": target}]),
                "{r}"
            );
        };
        mismatch("4", "code-4Z", "label", Value::Null, json!(""));
        mismatch(
            "2",
            "code-7Z",
            "amount",
            json!("8.750000"),
            json!("8.750001"),
        );
        let doc = find("0", "code-10Z");
        assert_eq!(doc["columns"][0]["name"], "doc");
        assert!(
            doc["columns"][0]["target"]
                .as_str()
                .unwrap()
                .contains("\"v\": 11"),
            "{doc}"
        );
        mismatch(
            "1",
            "code-11Z",
            "happened",
            json!("2021-03-04 05:17:07.123456"),
            json!("2021-03-04 05:17:07.123457"),
        );
        mismatch(
            "3",
            "code-13Z",
            "label",
            json!("label 13"),
            json!("label 13 "),
        );
        let blob = find("4", "code-14Z");
        assert_eq!(blob["columns"].as_array().unwrap().len(), 1);
        assert_eq!(blob["columns"][0]["name"], "blob");
        assert_ne!(blob["columns"][0]["source"], blob["columns"][0]["target"]);

        let bag = table_summary(&records, "bag");
        assert_eq!(counts(bag), [3, 3, 2, 1, 1, 0], "{bag}");
        let bag_rows: Vec<&Value> = records
            .iter()
            .filter(|r| r["table"]["name"] == "bag" && r["kind"] != "table_summary")
            .collect();
        assert_eq!(bag_rows.len(), 2);
        assert!(bag_rows
            .iter()
            .any(|r| r["kind"] == "missing" && r["key"] == json!({"x": "1", "y": "a"})));
        assert!(bag_rows
            .iter()
            .any(|r| r["kind"] == "extraneous" && r["key"] == json!({"x": "3", "y": "c"})));

        let summary = reports(&records, "summary")[0];
        assert_eq!(summary["ok"], false);
        assert_eq!(summary["differences"], 10);
    }

    // The row records are capped; the counts stay exact.
    let out = verify(
        &[
            "--source",
            &src,
            "--target",
            &tgt,
            "--table",
            "items",
            "--max-report-rows",
            "3",
        ],
        None,
    );
    out.assert_statuses(&[3]);
    let records = out.records();
    assert_eq!(
        records
            .iter()
            .filter(|r| r["kind"] != "table_summary" && r["kind"] != "summary")
            .count(),
        3
    );
    assert_eq!(
        counts(table_summary(&records, "items")),
        [3001, 3001, 2994, 1, 1, 6]
    );

    // --live re-checks, and a difference that stays is still reported.
    let out = verify(
        &[
            "--source",
            &src,
            "--target",
            &tgt,
            "--table",
            "items",
            "--live",
            "--live-retries",
            "1",
            "--live-backoff-ms",
            "10",
        ],
        None,
    );
    out.assert_statuses(&[3]);
    assert_eq!(
        counts(table_summary(&out.records(), "items")),
        [3001, 3001, 2994, 1, 1, 6]
    );
}

#[tokio::test]
async fn float_last_bit_is_a_difference_unless_tolerated() {
    let src = fresh_pg_database(&pg_source_url(), "verify_float_src").await;
    let tgt = fresh_pg_database(&pg_target_url(), "verify_float_tgt").await;
    psql_exec(
        &src,
        "CREATE TABLE f (id int PRIMARY KEY, x float8); INSERT INTO f VALUES (1, 0.1), (2, 1e300);",
    );
    psql_exec(&tgt, "CREATE TABLE f (id int PRIMARY KEY, x float8); INSERT INTO f VALUES (1, 0.10000000000000002), (2, 1e300);");
    let out = verify(&["--source", &src, "--target", &tgt, "--table", "f"], None);
    out.assert_statuses(&[3]);
    let records = out.records();
    let m = reports(&records, "mismatch");
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["key"], json!({"id": "1"}));
    assert_eq!(
        m[0]["columns"],
        json!([{"name": "x", "source": "0.1", "target": "0.10000000000000002"}])
    );
    let out = verify(
        &[
            "--source",
            &src,
            "--target",
            &tgt,
            "--table",
            "f",
            "--float-tolerance",
            "1e-12",
        ],
        None,
    );
    out.assert_statuses(&[0]);
}

#[tokio::test]
async fn mysql_and_postgres_with_equal_data_do_not_differ() {
    let my = fresh_mysql_database(&mysql_source_url(), "verify_my").await;
    let tgt = fresh_pg_database(&pg_target_url(), "verify_my_tgt").await;
    mysql_exec(
        &my,
        r#"
        CREATE TABLE m (
            id int PRIMARY KEY, dt datetime(6), ts timestamp(6) NULL, flag tinyint(1), d decimal(10,4),
            j json, f double, f4 float, c char(5), e enum('a','b','c'), s varchar(20), u bigint unsigned);
        INSERT INTO m VALUES
            (1, '2020-01-02 03:04:05.123456', '2020-01-02 03:04:05.5', 1, 1.5, '{"b": 1,   "a": [1, 2.50]}',
             0.1, 0.1, 'ab', 'b', 'x', 18446744073709551615),
            (2, '1999-12-31 23:59:59', NULL, 0, -2.25, '[]', 1e300, 3.4e38, '', 'a', '', 0),
            (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        CREATE TABLE Words (k varchar(10) PRIMARY KEY, v int);
        INSERT INTO Words VALUES ('B', 1), ('a', 2), ('é', 3), ('Z', 4), ('ab', 5);
        "#,
    );
    psql_exec(
        &tgt,
        r#"
        CREATE TABLE m (
            id int4 PRIMARY KEY, dt timestamp(6), ts timestamptz(6), flag bool, d decimal(10,4),
            j jsonb, f float8, f4 float4, c char(5), e text, s varchar(20), u decimal(20,0));
        INSERT INTO m VALUES
            (1, '2020-01-02 03:04:05.123456', '2020-01-02 03:04:05.5Z', true, 1.5, '{"a":[1,2.50],"b":1}',
             0.1, 0.1, 'ab', 'b', 'x', 18446744073709551615),
            (2, '1999-12-31 23:59:59', NULL, false, -2.25, '[]', 1e300, 3.4e38, '', 'a', '', 0),
            (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        CREATE TABLE words (k varchar(10) PRIMARY KEY, v int);
        INSERT INTO words VALUES ('B', 1), ('a', 2), ('é', 3), ('Z', 4), ('ab', 5);
        "#,
    );
    let out = verify(
        &[
            "--source", &my, "--target", &tgt, "--table", "m", "--table", "Words",
        ],
        None,
    );
    out.assert_statuses(&[0]);
    let records = out.records();
    assert_eq!(counts(table_summary(&records, "m")), [3, 3, 3, 0, 0, 0]);
    assert_eq!(table_summary(&records, "m")["schema_issues"], json!([]));
    assert_eq!(counts(table_summary(&records, "Words")), [5, 5, 5, 0, 0, 0]);
    assert_eq!(
        table_summary(&records, "Words")["target"],
        json!({"schema": "public", "name": "words"})
    );

    // The comparison is not vacuous: a real change in each tricky column is seen.
    psql_exec(&tgt, "UPDATE m SET flag = false, d = 1.5001, f4 = 0.100001 WHERE id = 1; UPDATE words SET v = 6 WHERE k = 'é';");
    let out = verify(
        &[
            "--source", &my, "--target", &tgt, "--table", "m", "--table", "Words",
        ],
        None,
    );
    out.assert_statuses(&[3]);
    let records = out.records();
    let m = reports(&records, "mismatch");
    assert_eq!(m.len(), 2, "{m:#?}");
    let names: Vec<&str> = m[0]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["flag", "d", "f4"]);
    assert_eq!(m[1]["key"], json!({"k": "é"}));
}

#[tokio::test]
async fn shared_table_is_verified_per_phase() {
    let src = fresh_pg_database(&pg_source_url(), "verify_shared_src").await;
    let tgt = fresh_pg_database(&pg_target_url(), "verify_shared_tgt").await;
    let schema = "CREATE TABLE orders (id bigint PRIMARY KEY, region char(1) NOT NULL, amount numeric(12,2));";
    psql_exec(
        &src,
        format!("{schema} INSERT INTO orders SELECT i, CASE WHEN i % 2 = 0 THEN 'A' ELSE 'B' END, i * 0.5 FROM generate_series(1, 1000) i;"),
    );
    psql_exec(&tgt, format!("{schema} INSERT INTO orders SELECT i, 'A', i * 0.5 FROM generate_series(2, 1000, 2) i;"));
    let slice_a = br#"{"type":"stream","version":"1.0","producer":"test"}
{"type":"slice","phase":"A","table":{"schema":"public","name":"orders"},"filter":"region = 'A'"}
"#;
    // Phase A is loaded, B is not yet: A is clean.
    let out = verify(
        &["--source", &src, "--target", &tgt, "--chunk-rows", "100"],
        Some(slice_a),
    );
    out.assert_statuses(&[0]);
    let records = out.records();
    let s = table_summary(&records, "orders");
    assert_eq!(counts(s), [500, 500, 500, 0, 0, 0]);
    assert_eq!(s["phase"], "A");
    // B's slice sees its rows missing (a sanity check of the filter).
    let out = verify(
        &[
            "--source",
            &src,
            "--target",
            &tgt,
            "--table",
            "orders",
            "--filter",
            "region = 'B'",
            "--phase",
            "B",
        ],
        None,
    );
    out.assert_statuses(&[3]);
    assert_eq!(
        counts(table_summary(&out.records(), "orders")),
        [500, 0, 0, 500, 0, 0]
    );
    // Once B is loaded, both are clean.
    psql_exec(
        &tgt,
        "INSERT INTO orders SELECT i, 'B', i * 0.5 FROM generate_series(1, 999, 2) i;",
    );
    for region in ["A", "B"] {
        let out = verify(
            &[
                "--source",
                &src,
                "--target",
                &tgt,
                "--table",
                "orders",
                "--filter",
                &format!("region = '{region}'"),
                "--chunk-rows",
                "64",
            ],
            None,
        );
        out.assert_statuses(&[0]);
        assert_eq!(
            counts(table_summary(&out.records(), "orders")),
            [500, 500, 500, 0, 0, 0]
        );
    }
    // Every row of A differs: all chunks are fetched, in numeric key order
    // (ids of several digits), and each row is reported once.
    psql_exec(
        &tgt,
        "UPDATE orders SET amount = amount + 1 WHERE region = 'A'",
    );
    let out = verify(
        &[
            "--source",
            &src,
            "--target",
            &tgt,
            "--table",
            "orders",
            "--filter",
            "region = 'A'",
            "--chunk-rows",
            "64",
        ],
        None,
    );
    out.assert_statuses(&[3]);
    let records = out.records();
    assert_eq!(
        counts(table_summary(&records, "orders")),
        [500, 500, 0, 0, 0, 500]
    );
    assert_eq!(reports(&records, "mismatch").len(), 500);
}

#[tokio::test]
async fn lost_connection_fails_the_run() {
    let src = fresh_pg_database(&pg_source_url(), "verify_lost_src").await;
    let tgt = fresh_pg_database(&pg_target_url(), "verify_lost_tgt").await;
    let schema = "CREATE TABLE big (id bigint PRIMARY KEY, note text); \
                  INSERT INTO big SELECT i, repeat('x', 50) || i FROM generate_series(1, 400000) i;";
    psql_exec(&src, schema);
    psql_exec(&tgt, schema);
    // Every row differs, so the whole table is read row by row, slowly
    // enough to be cut off.
    psql_exec(&tgt, "UPDATE big SET note = note || '!'");
    let tgt_db = tgt
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let mut child = Command::new(bin("molt-verify"))
        .args([
            "--source",
            &src,
            "--target",
            &tgt,
            "--table",
            "big",
            "--chunk-rows",
            "5000",
            "--max-report-rows",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start molt-verify");
    let killer = pg_connect(&pg_target_url()).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "molt-verify did not end");
        killer
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&tgt_db],
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "a lost connection is an error, never a pass or a difference: {stderr}"
    );
    assert!(
        stderr.contains("molt-verify: error:") && stderr.contains("target"),
        "{stderr}"
    );

    // A target that cannot be reached, with a password that must not leak.
    let bad = "postgres://someone:hunter2@127.0.0.1:1/nowhere";
    let out = verify(&["--source", &src, "--target", bad, "--table", "big"], None);
    out.assert_statuses(&[1]);
    assert!(
        out.stderrs[0].contains("target: connecting to postgres://someone:***@127.0.0.1:1/nowhere"),
        "{}",
        out.stderrs[0]
    );
    assert!(!out.stderrs[0].contains("hunter2"), "{}", out.stderrs[0]);
}

#[tokio::test]
async fn schema_differences_are_reported() {
    let src = fresh_pg_database(&pg_source_url(), "verify_schema_src").await;
    let tgt = fresh_pg_database(&pg_target_url(), "verify_schema_tgt").await;
    psql_exec(&src, "CREATE TABLE s (id int PRIMARY KEY, a text NOT NULL, b jsonb, c int); INSERT INTO s VALUES (1, 'x', '{}', 3);");
    psql_exec(&tgt, "CREATE TABLE s (id int PRIMARY KEY, a text, b text, d int); INSERT INTO s VALUES (1, 'x', '{}', 3);");
    let out = verify(
        &[
            "--source", &src, "--target", &tgt, "--table", "s", "--table", "absent",
        ],
        None,
    );
    out.assert_statuses(&[1]);
    assert!(out.stderrs[0].contains("absent"), "{}", out.stderrs[0]);
    let out = verify(&["--source", &src, "--target", &tgt, "--table", "s"], None);
    out.assert_statuses(&[3]);
    let issues = table_summary(&out.records(), "s")["schema_issues"].clone();
    let issues: Vec<String> = serde_json::from_value(issues).unwrap();
    assert_eq!(issues.len(), 4, "{issues:#?}");
    assert!(issues
        .iter()
        .any(|i| i.contains("column a") && i.contains("NOT NULL")));
    assert!(issues
        .iter()
        .any(|i| i.contains("column b") && i.contains("not compatible")));
    assert!(issues.iter().any(|i| i.contains("column c is missing")));
    assert!(issues
        .iter()
        .any(|i| i.contains("column d exists only on the target")));
}

#[tokio::test]
async fn pagila_dumped_and_loaded_verifies_clean() {
    require_datasets!("pg-pagila/pagila-schema.sql", "pg-pagila/pagila-data.sql");
    let src = fresh_pg_database(&pg_source_url(), "verify_pagila_src").await;
    let tgt = fresh_pg_database(&pg_target_url(), "verify_pagila_tgt").await;
    psql_exec(&src, shared_dataset("pg-pagila/pagila-schema.sql"));
    psql_exec(&src, shared_dataset("pg-pagila/pagila-data.sql"));
    run_pipe(
        &[
            (
                "molt-dump",
                vec!["--source".into(), src.clone(), "--all".into()],
            ),
            ("molt-load", vec!["--target".into(), tgt.clone()]),
        ],
        None,
        &[],
    )
    .assert_success();
    let tables = [
        ("actor", 200),
        ("address", 603),
        ("category", 16),
        ("city", 600),
        ("country", 109),
        ("customer", 599),
        ("film", 1000),
        ("film_actor", 5462),
        ("film_category", 1000),
        ("inventory", 4581),
        ("language", 6),
        ("payment", 16049),
        ("rental", 16044),
        ("staff", 2),
        ("store", 2),
    ];
    let mut args: Vec<&str> = vec!["--source", &src, "--target", &tgt];
    for (t, _) in &tables {
        args.extend(["--table", t]);
    }
    for extra in [None, Some("--no-hash")] {
        let mut a = args.clone();
        a.extend(extra);
        let out = verify(&a, None);
        out.assert_statuses(&[0]);
        let records = out.records();
        for (t, n) in tables {
            let s = table_summary(&records, t);
            assert_eq!(counts(s), [n, n, n, 0, 0, 0], "{s}");
            assert_eq!(s["schema_issues"], json!([]), "{s}");
        }
    }
    psql_exec(
        &tgt,
        "UPDATE film SET special_features = special_features || '{Bloopers}' WHERE film_id = 7",
    );
    let out = verify(&args, None);
    out.assert_statuses(&[3]);
    let records = out.records();
    let m = reports(&records, "mismatch");
    assert_eq!(m.len(), 1, "{m:#?}");
    assert_eq!(m[0]["key"], json!({"film_id": "7"}));
    assert_eq!(m[0]["columns"][0]["name"], "special_features");
}

#[tokio::test]
async fn slices_on_stdin_are_verified_once_per_slice() {
    let src = fresh_pg_database(&pg_source_url(), "verify_stdin_src").await;
    let tgt = fresh_pg_database(&pg_target_url(), "verify_stdin_tgt").await;
    let schema = "CREATE TABLE t (id int PRIMARY KEY, tenant text NOT NULL);";
    psql_exec(
        &src,
        format!("{schema} INSERT INTO t SELECT i, 'acme' FROM generate_series(1, 100) i;"),
    );
    psql_exec(
        &tgt,
        format!("{schema} INSERT INTO t SELECT i, 'acme' FROM generate_series(1, 99) i;"),
    );
    // Two shards of one slice, written by hand (no stream header).
    let input = br#"{"type":"slice","phase":"P1","table":{"schema":"public","name":"t"},"filter":"tenant = 'acme'","shard":{"index":0,"count":2,"key":["id"],"upper":["50"]}}
{"type":"slice","phase":"P1","table":{"schema":"public","name":"t"},"filter":"tenant = 'acme'","shard":{"index":1,"count":2,"key":["id"],"lower":["50"]}}
"#;
    let out = verify(&["--source", &src, "--target", &tgt], Some(input));
    out.assert_statuses(&[3]);
    let records = out.records();
    assert_eq!(counts(table_summary(&records, "t")), [100, 99, 99, 1, 0, 0]);
    assert_eq!(reports(&records, "missing")[0]["key"], json!({"id": "100"}));
    assert_eq!(reports(&records, "missing")[0]["phase"], "P1");
    // Not slice records: a clear error.
    let out = verify(&["--source", &src, "--target", &tgt], Some(b"{\"type\":\"result\",\"tool\":\"x\",\"table\":{\"schema\":\"a\",\"name\":\"b\"},\"shard\":{\"index\":0,\"count\":1},\"rows\":0,\"bytes\":0,\"digest\":\"\",\"seconds\":0,\"status\":\"ok\"}\n"));
    out.assert_statuses(&[1]);
    assert!(
        out.stderrs[0].contains("expected slice records"),
        "{}",
        out.stderrs[0]
    );
}

// ---------------------------------------------------------------------------
// A MySQL/MariaDB source: chunk hashes computed inside the source (or, for
// JSON, finished in the client) against the target's, then narrowed to rows.

/// 0..=9999, portable to MySQL 5.7 (no sequence engine, no recursive CTE).
const DIGITS_10K: &str = "(SELECT a.d * 1000 + b.d * 100 + c.d * 10 + e.d AS n FROM \
    (SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) a, \
    (SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) b, \
    (SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) c, \
    (SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) e) s";

/// The MySQL source of the hashing tests: `items` holds every column kind
/// the issue's changes touch (and JSON, hashed in the client), `plain` the
/// same without JSON (hashed entirely in SQL), `words` a composite key with
/// a text part (chunked with ROW_NUMBER, compared as bytes).
fn mysql_hash_schema() -> String {
    format!(
        r#"
        CREATE TABLE items (
            id int PRIMARY KEY, label varchar(40) NULL, amount decimal(20,6), doc json,
            happened datetime(6), raw varbinary(32), tag char(4), ratio double, f4 float,
            flag tinyint(1), seen timestamp(3) NULL, mood enum('sad','ok','happy'), born date,
            big bigint unsigned, latin varchar(20) CHARACTER SET latin1);
        INSERT INTO items
        SELECT n, IF(n % 4 = 0, NULL, CONCAT('label ', n)), n * 1.25,
               JSON_OBJECT('id', n, 'nested', JSON_OBJECT('v', n, 'w', JSON_ARRAY(n, n)), 'price', 2.50),
               TIMESTAMP '2021-03-04 05:06:07.123456' + INTERVAL n MINUTE, UNHEX(MD5(n)), CONCAT('T', n % 10),
               n / 7e0, n / 8e0, n % 2, TIMESTAMP '2021-03-04 05:06:07.5' + INTERVAL n SECOND,
               ELT(1 + n % 3, 'sad', 'ok', 'happy'), DATE '2000-01-01' + INTERVAL n DAY,
               18446744073709551615 - n, CONCAT('caf', CHAR(233 USING latin1), ' ', n)
        FROM {DIGITS_10K} WHERE n BETWEEN 1 AND 3000;
        CREATE TABLE plain (id bigint PRIMARY KEY, label varchar(40), amount decimal(12,2), happened datetime(6), raw varbinary(16));
        INSERT INTO plain SELECT n, IF(n % 4 = 0, NULL, CONCAT('label ', n)), n * 1.25,
               TIMESTAMP '2021-03-04 05:06:07.123456' + INTERVAL n MINUTE, UNHEX(MD5(n))
        FROM {DIGITS_10K} WHERE n BETWEEN 1 AND 3000;
        CREATE TABLE durations (id int PRIMARY KEY, d time(6));
        INSERT INTO durations VALUES (1, '-838:59:59'), (2, '01:02:03.5'), (3, NULL);
        CREATE TABLE words (tenant int NOT NULL, code varchar(20) NOT NULL, v int, PRIMARY KEY (tenant, code));
        INSERT INTO words SELECT n % 3, CONCAT(IF(n % 5 = 0, 'é', IF(n % 5 = 1, 'Z', 'a')), n), n
        FROM {DIGITS_10K} WHERE n BETWEEN 1 AND 600;
        "#
    )
}

/// A fresh MariaDB/MySQL source with [`mysql_hash_schema`], and a target
/// loaded from it by molt-dump | molt-load.
async fn mysql_hash_pair(prefix: &str) -> (String, String) {
    let my = fresh_mysql_database(&mysql_source_url(), &format!("{prefix}_my")).await;
    // Cross-engine SQL hashes exist on PostgreSQL targets only (on
    // CockroachDB verify compares rows; see the skew test).
    let tgt = fresh_pg_database(&pg_plain_target_url(), &format!("{prefix}_tgt")).await;
    mysql_exec(&my, mysql_hash_schema());
    run_pipe(
        &[
            (
                "molt-dump",
                vec!["--source".into(), my.clone(), "--all".into()],
            ),
            ("molt-load", vec!["--target".into(), tgt.clone()]),
        ],
        None,
        &[],
    )
    .assert_success();
    (my, tgt)
}

#[tokio::test]
async fn mysql_source_is_hashed_in_sql_and_clean_data_fetches_no_chunk() {
    let (my, tgt) = mysql_hash_pair("verify_myhash").await;
    for chunk in ["100", "1000000"] {
        let out = verify(
            &[
                "--source",
                &my,
                "--target",
                &tgt,
                "--table",
                "items",
                "--table",
                "plain",
                "--table",
                "words",
                "--table",
                "durations",
                "--chunk-rows",
                chunk,
            ],
            None,
        );
        out.assert_statuses(&[0]);
        let records = out.records();
        let items = table_summary(&records, "items");
        assert_eq!(counts(items), [3000, 3000, 3000, 0, 0, 0], "{items}");
        assert_eq!(items["schema_issues"], json!([]), "{items}");
        // JSON is stored as written on MariaDB: the client prints it as JSONB does.
        assert_eq!(items["strategy"], "client-hash", "{items}");
        assert_eq!(items["client_hashed_columns"], json!(["doc"]), "{items}");
        assert_eq!(items["mode"], "chunked-hash", "{items}");
        let plain = table_summary(&records, "plain");
        assert_eq!(counts(plain), [3000, 3000, 3000, 0, 0, 0], "{plain}");
        assert_eq!(plain["strategy"], "sql-hash", "{plain}");
        assert!(plain.get("client_hashed_columns").is_none(), "{plain}");
        // TIME has no SQL text both engines print alike: rows, and why.
        let durations = table_summary(&records, "durations");
        assert_eq!(counts(durations), [3, 3, 3, 0, 0, 0], "{durations}");
        assert_eq!(durations["strategy"], "rows", "{durations}");
        assert!(
            durations["strategy_reason"]
                .as_str()
                .unwrap()
                .starts_with("column d:"),
            "{durations}"
        );
        let words = table_summary(&records, "words");
        assert_eq!(counts(words), [600, 600, 600, 0, 0, 0], "{words}");
        assert_eq!(words["strategy"], "sql-hash", "{words}");
        for s in [items, plain, words] {
            // Every type prints alike on both sides: no chunk is read row by row.
            assert_eq!(s["chunks_fetched"], 0, "{s}");
        }
        if chunk == "100" {
            for s in [items, plain] {
                let n = s["chunks"].as_u64().unwrap();
                assert!(
                    (20..=40).contains(&n),
                    "about 30 chunks of an integer key: {s}"
                );
            }
            // A key with a text part: ROW_NUMBER boundaries, at most 16 chunks.
            let n = words["chunks"].as_u64().unwrap();
            assert!((2..=16).contains(&n), "{words}");
        }
    }
}

#[tokio::test]
async fn each_change_against_a_mysql_source_is_reported_once() {
    let (my, tgt) = mysql_hash_pair("verify_mychanges").await;
    psql_exec(
        &tgt,
        r#"
        DELETE FROM items WHERE id = 1;
        INSERT INTO items (id, label) VALUES (9001, 'x');
        UPDATE items SET label = '' WHERE id = 4;                                 -- was NULL
        UPDATE items SET amount = amount + 0.000001 WHERE id = 7;
        UPDATE items SET doc = jsonb_set(doc, '{nested,v}', '11') WHERE id = 10;
        UPDATE items SET happened = happened + interval '1 microsecond' WHERE id = 11;
        UPDATE items SET label = label || ' ' WHERE id = 13;
        UPDATE items SET raw = set_byte(raw, 3, get_byte(raw, 3) # 128) WHERE id = 14;
        UPDATE items SET tag = rtrim(tag) || '  ' WHERE id = 20;                   -- CHAR padding: no change
        UPDATE items SET doc = jsonb_set(doc, '{price}', '2.5') WHERE id = 21;      -- 2.50 -> 2.5: MariaDB keeps 2.50
        DELETE FROM plain WHERE id = 2;
        INSERT INTO plain (id, label) VALUES (9002, 'y');
        UPDATE plain SET label = '' WHERE id = 4;
        UPDATE plain SET amount = amount + 0.01 WHERE id = 7;
        UPDATE plain SET happened = happened + interval '1 microsecond' WHERE id = 11;
        UPDATE plain SET label = label || ' ' WHERE id = 13;
        UPDATE plain SET raw = set_byte(raw, 0, get_byte(raw, 0) # 1) WHERE id = 2999;
        UPDATE words SET v = v + 1 WHERE tenant = 2 AND code = 'é5';
        "#,
    );
    for mode in ["100", "1000000", "no-hash", "client"] {
        let mut args = vec![
            "--source", &my, "--target", &tgt, "--table", "items", "--table", "plain", "--table",
            "words",
        ];
        match mode {
            "no-hash" => args.push("--no-hash"),
            "client" => args.extend(["--hash-rows-in-client", "--chunk-rows", "100"]),
            n => args.extend(["--chunk-rows", n]),
        }
        let out = verify(&args, None);
        out.assert_statuses(&[3]);
        let records = out.records();
        let items = table_summary(&records, "items");
        assert_eq!(
            counts(items),
            [3000, 3000, 2992, 1, 1, 7],
            "{mode}: {items}"
        );
        let plain = table_summary(&records, "plain");
        assert_eq!(
            counts(plain),
            [3000, 3000, 2994, 1, 1, 5],
            "{mode}: {plain}"
        );
        let words = table_summary(&records, "words");
        assert_eq!(counts(words), [600, 600, 599, 0, 0, 1], "{mode}: {words}");
        match mode {
            "no-hash" => {
                assert_eq!(items["strategy"], "rows");
                assert_eq!(items["strategy_reason"], "--no-hash");
            }
            "client" => {
                // Every table's source rows hashed in the client.
                for s in [items, plain, words] {
                    assert_eq!(s["strategy"], "client-hash", "{s}");
                }
                assert_eq!(plain["strategy_reason"], "--hash-rows-in-client");
            }
            _ => {
                assert_eq!(items["strategy"], "client-hash", "{items}");
                assert_eq!(plain["strategy"], "sql-hash", "{plain}");
                assert_eq!(words["strategy"], "sql-hash", "{words}");
            }
        }
        if mode == "100" || mode == "client" {
            // Only the chunks holding a change are read row by row: ids
            // 1..=21 in the first chunk, 9001 and 9002 in the last one
            // (open-ended), 2999 next to it.
            assert_eq!(items["chunks_fetched"], 2, "{items}");
            let fetched = plain["chunks_fetched"].as_u64().unwrap();
            assert!((2..=3).contains(&fetched), "{plain}");
            assert_eq!(words["chunks_fetched"], 1, "{words}");
        }

        let rows_of = |table: &str| -> Vec<Value> {
            records
                .iter()
                .filter(|r| r["table"]["name"] == table && r["kind"] != "table_summary")
                .cloned()
                .collect()
        };
        let items_rows = rows_of("items");
        assert_eq!(
            items_rows.len(),
            9,
            "{mode}: exactly the changed rows: {items_rows:#?}"
        );
        let find = |rows: &[Value], id: &str| -> Value {
            let hits: Vec<&Value> = rows
                .iter()
                .filter(|r| r["key"] == json!({"id": id}))
                .collect();
            assert_eq!(hits.len(), 1, "{mode}: one report for id {id}: {rows:#?}");
            hits[0].clone()
        };
        let mismatch = |rows: &[Value], id: &str, column: &str, source: Value, target: Value| {
            let r = find(rows, id);
            assert_eq!(r["kind"], "mismatch", "{r}");
            assert_eq!(
                r["columns"],
                json!([{"name": column, "source": source, "target": target}]),
                "{mode}: {r}"
            );
        };
        assert_eq!(find(&items_rows, "1")["kind"], "missing");
        assert_eq!(find(&items_rows, "9001")["kind"], "extraneous");
        // A JSON number's scale, as MariaDB keeps and prints it.
        let price = find(&items_rows, "21");
        assert_eq!(price["kind"], "mismatch", "{price}");
        assert_eq!(price["columns"][0]["name"], "doc", "{price}");
        mismatch(&items_rows, "4", "label", Value::Null, json!(""));
        mismatch(
            &items_rows,
            "7",
            "amount",
            json!("8.750000"),
            json!("8.750001"),
        );
        let doc = find(&items_rows, "10");
        assert_eq!(doc["kind"], "mismatch");
        assert_eq!(doc["columns"].as_array().unwrap().len(), 1, "{doc}");
        assert_eq!(doc["columns"][0]["name"], "doc");
        assert!(
            doc["columns"][0]["target"]
                .as_str()
                .unwrap()
                .contains("\"v\": 11"),
            "{doc}"
        );
        mismatch(
            &items_rows,
            "11",
            "happened",
            json!("2021-03-04 05:17:07.123456"),
            json!("2021-03-04 05:17:07.123457"),
        );
        mismatch(
            &items_rows,
            "13",
            "label",
            json!("label 13"),
            json!("label 13 "),
        );
        let raw = find(&items_rows, "14");
        assert_eq!(raw["columns"].as_array().unwrap().len(), 1, "{raw}");
        assert_eq!(raw["columns"][0]["name"], "raw");
        assert_ne!(raw["columns"][0]["source"], raw["columns"][0]["target"]);

        let plain_rows = rows_of("plain");
        assert_eq!(plain_rows.len(), 7, "{mode}: {plain_rows:#?}");
        assert_eq!(find(&plain_rows, "2")["kind"], "missing");
        assert_eq!(find(&plain_rows, "9002")["kind"], "extraneous");
        mismatch(&plain_rows, "4", "label", Value::Null, json!(""));
        mismatch(&plain_rows, "7", "amount", json!("8.75"), json!("8.76"));
        mismatch(
            &plain_rows,
            "11",
            "happened",
            json!("2021-03-04 05:17:07.123456"),
            json!("2021-03-04 05:17:07.123457"),
        );
        mismatch(
            &plain_rows,
            "13",
            "label",
            json!("label 13"),
            json!("label 13 "),
        );
        assert_eq!(find(&plain_rows, "2999")["columns"][0]["name"], "raw");

        let words_rows = rows_of("words");
        assert_eq!(words_rows.len(), 1, "{mode}: {words_rows:#?}");
        assert_eq!(words_rows[0]["key"], json!({"tenant": "2", "code": "é5"}));
        assert_eq!(words_rows[0]["columns"][0]["name"], "v");

        let summary = reports(&records, "summary")[0];
        assert_eq!(summary["differences"], 9 + 7 + 1, "{summary}");
    }
}

/// Sakila's scripts without their `CREATE SCHEMA sakila; USE sakila;` (and
/// `sakila.` qualifiers), so they load into the test's own database. Bytes:
/// the data file is not all UTF-8.
fn sakila_without_schema_switch(name: &str) -> tempfile::NamedTempFile {
    use std::io::Write;
    let bytes = std::fs::read(shared_dataset(&format!("mysql-sakila-official/{name}"))).unwrap();
    let mut out = tempfile::NamedTempFile::new().unwrap();
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        let l = String::from_utf8_lossy(line).trim().to_ascii_uppercase();
        if l.starts_with("DROP SCHEMA")
            || l.starts_with("CREATE SCHEMA")
            || l.starts_with("USE SAKILA")
        {
            continue;
        }
        match std::str::from_utf8(line) {
            Ok(text) => out
                .write_all(text.replace("sakila.", "").as_bytes())
                .unwrap(),
            Err(_) => out.write_all(line).unwrap(),
        }
    }
    out.flush().unwrap();
    out
}

/// Dumps `tables` of a MySQL database into a fresh target, verifies them and
/// returns the report records (after asserting a clean exit).
async fn migrate_and_verify(my: &str, prefix: &str, tables: &[&str]) -> Vec<Value> {
    // SQL hashes of a MySQL source: a PostgreSQL-target feature.
    let tgt = fresh_pg_database(&pg_plain_target_url(), prefix).await;
    let db = my.rsplit('/').next().unwrap().split('?').next().unwrap();
    let mut dump = vec!["--source".to_string(), my.to_string()];
    for t in tables {
        dump.extend(["--table".to_string(), format!("{db}.{t}")]);
    }
    run_pipe(
        &[
            ("molt-dump", dump),
            ("molt-load", vec!["--target".into(), tgt.clone()]),
        ],
        None,
        &[],
    )
    .assert_success();
    let mut args: Vec<&str> = vec!["--source", my, "--target", &tgt, "--chunk-rows", "1000"];
    for t in tables {
        args.extend(["--table", t]);
    }
    let out = verify(&args, None);
    out.assert_statuses(&[0]);
    out.records()
}

#[tokio::test]
async fn sakila_and_chinook_from_mariadb_verify_clean_through_sql_hashes() {
    require_datasets!(
        "mysql-sakila-official/sakila-schema.sql",
        "mysql-sakila-official/sakila-data.sql",
        "chinook/Chinook_MySql.sql"
    );
    // Sakila, less `address` (its GEOMETRY needs PostGIS on the target).
    let sakila = fresh_mysql_database(&mysql_source_url(), "verify_sakila").await;
    mysql_exec(
        &sakila,
        sakila_without_schema_switch("sakila-schema.sql").path(),
    );
    mysql_exec(
        &sakila,
        sakila_without_schema_switch("sakila-data.sql").path(),
    );
    let tables = [
        ("actor", 200),
        ("category", 16),
        ("city", 600),
        ("country", 109),
        ("customer", 599),
        ("film", 1000),
        ("film_actor", 5462),
        ("film_category", 1000),
        ("film_text", 1000),
        ("inventory", 4581),
        ("language", 6),
        ("payment", 16049),
        ("rental", 16044),
        ("staff", 2),
        ("store", 2),
    ];
    let names: Vec<&str> = tables.iter().map(|(t, _)| *t).collect();
    let records = migrate_and_verify(&sakila, "verify_sakila_tgt", &names).await;
    for (t, n) in tables {
        let s = table_summary(&records, t);
        assert_eq!(counts(s), [n, n, n, 0, 0, 0], "{s}");
        assert_eq!(s["schema_issues"], json!([]), "{s}");
        // Hashed inside both databases (film's SET, YEAR and ENUM, staff's
        // BLOB included), every hash equal: no row was read.
        assert_eq!(s["strategy"], "sql-hash", "{s}");
        assert_eq!(s["chunks_fetched"], 0, "{s}");
    }
    for t in ["payment", "rental", "film_actor"] {
        let s = table_summary(&records, t);
        assert!(s["chunks"].as_u64().unwrap() > 1, "{s}");
    }

    // Chinook, loaded as chinook.rs loads it.
    let chinook = fresh_mysql_database(&mysql_source_url(), "verify_chinook").await;
    let script = std::fs::read_to_string(shared_dataset("chinook/Chinook_MySql.sql")).unwrap();
    let script: Vec<&str> = script
        .lines()
        .filter(|line| {
            let l = line.trim_start().to_ascii_uppercase();
            !(l.starts_with("DROP DATABASE")
                || l.starts_with("CREATE DATABASE")
                || l.starts_with("USE "))
        })
        .collect();
    mysql_exec(
        &chinook,
        format!(
            "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES');\n{}",
            script.join("\n")
        ),
    );
    let tables = [
        ("Album", 347),
        ("Artist", 275),
        ("Customer", 59),
        ("Employee", 8),
        ("Genre", 25),
        ("Invoice", 412),
        ("InvoiceLine", 2240),
        ("MediaType", 5),
        ("Playlist", 18),
        ("PlaylistTrack", 8715),
        ("Track", 3503),
    ];
    let names: Vec<&str> = tables.iter().map(|(t, _)| *t).collect();
    let records = migrate_and_verify(&chinook, "verify_chinook_tgt", &names).await;
    for (t, n) in tables {
        let s = table_summary(&records, t);
        assert_eq!(counts(s), [n, n, n, 0, 0, 0], "{s}");
        assert_eq!(s["schema_issues"], json!([]), "{s}");
        assert_eq!(s["strategy"], "sql-hash", "{s}");
        assert_eq!(s["chunks_fetched"], 0, "{s}");
    }
}

#[tokio::test]
async fn postgres_chunk_hashes_match_on_equal_data_and_see_swapped_values() {
    let (src, tgt) = pg_pair("verify_pghash").await;
    let args = [
        "--source",
        &src,
        "--target",
        &tgt,
        "--table",
        "items",
        "--chunk-rows",
        "250",
    ];
    let out = verify(&args, None);
    out.assert_statuses(&[0]);
    let records = out.records();
    let items = table_summary(&records, "items");
    assert_eq!(counts(items), [3001, 3001, 3001, 0, 0, 0], "{items}");
    assert_eq!(items["strategy"], "sql-hash", "{items}");
    // Every column type hashes alike on both sides: no chunk is read.
    assert!(items["chunks"].as_u64().unwrap() > 1, "{items}");
    assert_eq!(items["chunks_fetched"], 0, "{items}");

    // Two rows trade their amounts (and two others their labels): the sum
    // of the row hashes must still change.
    psql_exec(
        &tgt,
        r#"
        UPDATE items SET amount = CASE code WHEN 'code-5Z' THEN 12.5 ELSE 6.25 END
         WHERE tenant = 0 AND code IN ('code-5Z', 'code-10Z');
        UPDATE items SET label = CASE code WHEN 'code-1Z' THEN 'label 2' ELSE 'label 1' END
         WHERE (tenant, code) IN ((1, 'code-1Z'), (2, 'code-2Z'));
        "#,
    );
    let out = verify(&args, None);
    out.assert_statuses(&[3]);
    let records = out.records();
    assert_eq!(
        counts(table_summary(&records, "items")),
        [3001, 3001, 2997, 0, 0, 4]
    );
    let m = reports(&records, "mismatch");
    assert_eq!(m.len(), 4, "{m:#?}");
    for r in &m {
        let column = r["columns"][0]["name"].as_str().unwrap();
        assert!(column == "amount" || column == "label", "{r}");
    }
}

#[tokio::test]
async fn a_big_differing_chunk_of_clustered_keys_is_narrowed_before_rows_are_read() {
    // Keys 1..=3000 and one far away: split evenly by value, the first
    // chunk holds nearly every row.
    let src = fresh_pg_database(&pg_source_url(), "verify_skew_src").await;
    let tgt = fresh_pg_database(&pg_target_url(), "verify_skew_tgt").await;
    let schema = "CREATE TABLE skew (id bigint PRIMARY KEY, v text); \
                  INSERT INTO skew SELECT i, 'v' || i FROM generate_series(1, 3000) i; \
                  INSERT INTO skew VALUES (1000000000000000, 'far'); ANALYZE skew;";
    psql_exec(&src, schema);
    psql_exec(&tgt, schema);
    psql_exec(&tgt, "UPDATE skew SET v = 'changed' WHERE id = 1500");
    let my = fresh_mysql_database(&mysql_source_url(), "verify_skew_my").await;
    mysql_exec(
        &my,
        format!(
            "CREATE TABLE skew (id bigint PRIMARY KEY, v text); \
             INSERT INTO skew SELECT n, CONCAT('v', n) FROM {DIGITS_10K} WHERE n BETWEEN 1 AND 3000; \
             INSERT INTO skew VALUES (1000000000000000, 'far'); ANALYZE TABLE skew;"
        ),
    );
    let cockroach = target_is_cockroach(&pg_connect(&tgt).await).await;
    for source in [&src, &my] {
        let out = verify(
            &[
                "--source",
                source,
                "--target",
                &tgt,
                "--table",
                "skew",
                "--chunk-rows",
                "100",
            ],
            None,
        );
        out.assert_statuses(&[3]);
        let records = out.records();
        let s = table_summary(&records, "skew");
        assert_eq!(counts(s), [3001, 3001, 3000, 0, 0, 1], "{s}");
        if source == &my && cockroach {
            // No SQL hash of a MySQL row text on CockroachDB: rows are read,
            // and the summary says why.
            assert_eq!(s["strategy"], "rows", "{s}");
            assert_eq!(
                s["strategy_reason"],
                "a CockroachDB target: its hash of the shared row text is not in place yet",
                "{s}"
            );
        } else {
            // The big chunk was split (by value, as often as needed) until the
            // one holding the change was small; only that one was read.
            assert_eq!(s["chunks_fetched"], 1, "{s}");
            assert!(s["chunks"].as_u64().unwrap() > 31, "{s}");
        }
        let m = reports(&records, "mismatch");
        assert_eq!(m.len(), 1, "{m:#?}");
        assert_eq!(m[0]["key"], json!({"id": "1500"}));
    }
}

#[tokio::test]
async fn lost_mysql_connection_fails_the_run() {
    let my = fresh_mysql_database(&mysql_source_url(), "verify_mylost").await;
    let tgt = fresh_pg_database(&pg_target_url(), "verify_mylost_tgt").await;
    mysql_exec(
        &my,
        format!(
            "CREATE TABLE big (id int PRIMARY KEY, note varchar(100)); \
             INSERT INTO big SELECT s.n * 20 + t.n, REPEAT('x', 60) FROM {DIGITS_10K}, \
             (SELECT 0 n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL \
              SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9 UNION ALL \
              SELECT 10 UNION ALL SELECT 11 UNION ALL SELECT 12 UNION ALL SELECT 13 UNION ALL SELECT 14 UNION ALL \
              SELECT 15 UNION ALL SELECT 16 UNION ALL SELECT 17 UNION ALL SELECT 18 UNION ALL SELECT 19) t;"
        ),
    );
    psql_exec(
        &tgt,
        "CREATE TABLE big (id int PRIMARY KEY, note varchar(100)); \
         INSERT INTO big SELECT i, repeat('x', 60) FROM generate_series(0, 199999) i;",
    );
    let db = my.rsplit('/').next().unwrap().to_string();
    // The table is locked, so molt-verify's reads wait: its connections are
    // killed while it is surely mid-run.
    use mysql_async::prelude::Queryable;
    let mut killer = mysql_connect(&mysql_source_url()).await;
    killer
        .query_drop(format!("LOCK TABLES `{db}`.`big` WRITE"))
        .await
        .unwrap();
    let mut child = Command::new(bin("molt-verify"))
        .args([
            "--source",
            &my,
            "--target",
            &tgt,
            "--table",
            "big",
            "--chunk-rows",
            "500",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start molt-verify");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "molt-verify did not end");
        let waiting: Vec<u64> = killer
            .exec(
                "SELECT ID FROM information_schema.PROCESSLIST \
                 WHERE DB = ? AND ID <> CONNECTION_ID() AND COMMAND = 'Query'",
                (&db,),
            )
            .await
            .unwrap();
        if !waiting.is_empty() {
            let all: Vec<u64> = killer
                .exec(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
                    (&db,),
                )
                .await
                .unwrap();
            for id in all {
                let _ = killer.query_drop(format!("KILL {id}")).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    killer.query_drop("UNLOCK TABLES").await.unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "a lost source connection is an error, never a pass ({status}): {stderr}"
    );
    assert!(
        stderr.contains("molt-verify: error:") && stderr.contains("source"),
        "{stderr}"
    );
    assert!(!stdout.contains("\"ok\":true"), "{stdout}");
}

/// A table created without a primary key gets CockroachDB's hidden key,
/// `rowid INT8 NOT VISIBLE NOT NULL DEFAULT unique_rowid()`, which its
/// catalogs list. It is not a schema difference, and the rows still compare
/// as a multiset. The stand-in's PostgreSQL is given the same column (and a
/// `unique_rowid()` of its own) directly, as CockroachDB would have it.
#[tokio::test]
async fn cockroachdbs_hidden_rowid_is_not_a_schema_difference() {
    let src = fresh_pg_database(&pg_source_url(), "verify_rowid_src").await;
    psql_exec(
        &src,
        "CREATE TABLE bag (a int, b text); INSERT INTO bag VALUES (1, 'x'), (1, 'x'), (2, NULL);",
    );
    let tgt = fresh_pg_database(&pg_target_url(), "verify_rowid_tgt").await;
    let db = tgt.rsplit('/').next().unwrap();
    let direct = format!("{}/{db}", pg_plain_target_url().rsplit_once('/').unwrap().0);
    psql_exec(
        &direct,
        "CREATE SEQUENCE rowids; \
         CREATE FUNCTION unique_rowid() RETURNS int8 LANGUAGE sql AS 'SELECT nextval(''rowids'')'; \
         CREATE TABLE bag (a int, b text, rowid int8 NOT NULL DEFAULT unique_rowid() PRIMARY KEY); \
         INSERT INTO bag (a, b) VALUES (1, 'x'), (1, 'x'), (2, NULL);",
    );
    let cockroach = target_is_cockroach(&pg_connect(&tgt).await).await;
    let out = verify(
        &["--source", &src, "--target", &tgt, "--table", "public.bag"],
        None,
    );
    let records = out.records();
    let bag = table_summary(&records, "bag");
    if cockroach {
        out.assert_statuses(&[0]);
        assert_eq!(bag["schema_issues"], json!([]), "{bag}");
        assert_eq!(counts(bag), [3, 3, 3, 0, 0, 0], "{bag}");
        assert_eq!(bag["mode"], "multiset", "{bag}");
    } else {
        // On PostgreSQL `rowid` is an ordinary extra column.
        assert_ne!(bag["schema_issues"], json!([]), "{bag}");
    }
}
