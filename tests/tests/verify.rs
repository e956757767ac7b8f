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
            (1, '2020-01-02 03:04:05.123456', '2020-01-02 03:04:05.5Z', true, 1.5, '{"a":[1,2.5],"b":1}',
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
