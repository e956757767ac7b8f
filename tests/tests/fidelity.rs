//! Data fidelity: values that used to change on the way without a word.
//!
//! One table per case, on real servers (MariaDB and PostgreSQL sources, the
//! CockroachDB stand-in as the target). Each case ends in an exact copy
//! that molt-verify agrees with, or in a refusal that names table, column
//! and key before anything is written.
//!
//! Needs `MOLT_TEST_MYSQL_SOURCE`, `MOLT_TEST_PG_SOURCE` and
//! `MOLT_TEST_PG_TARGET`; build the tools first (`cargo build --release`).

use molt_tests::*;
use serde_json::Value;

/// `molt-dump --all` of `source` piped into `molt-load` on `target`.
fn dump_load(source: &str, target: &str, extra_dump: &[&str]) -> PipeOutcome {
    let mut dump = vec!["--source".to_string(), source.to_string(), "--all".into()];
    dump.extend(extra_dump.iter().map(|s| s.to_string()));
    run_pipe(
        &[
            ("molt-dump", dump),
            ("molt-load", vec!["--target".into(), target.to_string()]),
        ],
        None,
        &[],
    )
}

/// molt-verify of every table; the exit status and the table summaries
/// (stderr goes to the test's output).
fn verify_all(source: &str, target: &str, table: &str) -> (i32, Vec<Value>) {
    let out = run_pipe(
        &[(
            "molt-verify",
            vec![
                "--source".into(),
                source.to_string(),
                "--target".into(),
                target.to_string(),
                "--table".into(),
                table.to_string(),
            ],
        )],
        None,
        &[],
    );
    eprint!("{}", out.report());
    let summaries = out
        .records()
        .into_iter()
        .filter(|r| r["type"] == "report" && r["kind"] == "table_summary")
        .collect();
    (out.statuses[0], summaries)
}

fn assert_clean(source: &str, target: &str, table: &str) {
    let (status, summaries) = verify_all(source, target, table);
    assert_eq!(status, 0, "verify: {summaries:#?}");
    assert_eq!(summaries.len(), 1, "{summaries:#?}");
    for s in &summaries {
        for k in ["missing", "extraneous", "mismatched"] {
            assert_eq!(s[k], 0, "{k} in {s}");
        }
        assert_eq!(s["schema_issues"], serde_json::json!([]), "{s}");
    }
}

/// The dump failed (exit 1), nothing reached the target's table, and the
/// dump's stderr holds every one of `words`.
async fn assert_refused(out: &PipeOutcome, target: &str, table: &str, words: &[&str]) {
    assert_ne!(out.statuses[0], 0, "the dump must fail:\n{}", out.report());
    assert_ne!(out.statuses[1], 0, "the load must fail:\n{}", out.report());
    for w in words {
        assert!(
            out.stderrs[0].contains(w),
            "dump stderr lacks {w:?}:\n{}",
            out.report()
        );
    }
    let tables = pg_value(
        target,
        &format!("SELECT count(*) FROM information_schema.tables WHERE table_name = '{table}'"),
    )
    .await;
    if tables == "1" {
        assert_eq!(
            pg_value(target, &format!("SELECT count(*) FROM {table}")).await,
            "0",
            "no row of {table} may land"
        );
    }
}

#[tokio::test]
async fn mariadb_four_byte_defaults_and_enum_labels_arrive_exact() {
    let my = fresh_mysql_database(&mysql_source_url(), "fid_4b_my").await;
    let tgt = fresh_pg_database(&pg_target_url(), "fid_4b_tgt").await;
    mysql_exec(
        &my,
        "SET NAMES utf8mb4;
         CREATE TABLE d (id INT PRIMARY KEY, v VARCHAR(5) DEFAULT '😀', e ENUM('x','🙂','it''s?') DEFAULT 'x',
                         s SET('a','🦀') NULL) CHARSET utf8mb4;
         INSERT INTO d (id, e, s) VALUES (1, '🙂', 'a,🦀'), (2, 'it''s?', '🦀'), (3, 'x', NULL);",
    );
    dump_load(&my, &tgt, &[]).assert_success();
    // The default and the labels are the source's, not '?'.
    psql_exec(
        &tgt,
        "INSERT INTO d (id) VALUES (99); INSERT INTO d (id, e) VALUES (98, '🙂')",
    );
    assert_eq!(
        pg_value(&tgt, "SELECT v || '|' || e::text FROM d WHERE id = 99").await,
        "😀|x"
    );
    assert_eq!(
        pg_value(&tgt, "SELECT string_agg(id || ':' || e::text || ':' || coalesce(s::text, 'N'), ' ' ORDER BY id) FROM d WHERE id < 10").await,
        "1:🙂:{a,🦀} 2:it's?:{🦀} 3:x:N"
    );
    psql_exec(&tgt, "DELETE FROM d WHERE id > 10");
    assert_clean(&my, &tgt, "d");
}

#[tokio::test]
async fn mariadb_four_byte_enum_label_no_row_holds_is_refused() {
    let my = fresh_mysql_database(&mysql_source_url(), "fid_4bx_my").await;
    let tgt = fresh_pg_database(&pg_target_url(), "fid_4bx_tgt").await;
    mysql_exec(
        &my,
        "SET NAMES utf8mb4;
         CREATE TABLE d (id INT PRIMARY KEY, e ENUM('x','😀')) CHARSET utf8mb4;
         INSERT INTO d VALUES (1, 'x');",
    );
    let out = dump_load(&my, &tgt, &[]);
    assert_refused(
        &out,
        &tgt,
        "d",
        &["column e", "label 2", "reads as '?'", "--type-map"],
    )
    .await;
    // The way out the message gives works: the column as text.
    let map = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        map.path(),
        "[[column]]\ntable = \"d\"\ncolumn = \"e\"\ntarget_type = \"TEXT\"\n",
    )
    .unwrap();
    dump_load(&my, &tgt, &["--type-map", map.path().to_str().unwrap()]).assert_success();
    assert_eq!(pg_value(&tgt, "SELECT e FROM d").await, "x");
}

#[tokio::test]
async fn mariadb_json_duplicate_keys_keep_the_first_as_mariadb_reads_them() {
    let my = fresh_mysql_database(&mysql_source_url(), "fid_jdup_my").await;
    let tgt = fresh_pg_database(&pg_target_url(), "fid_jdup_tgt").await;
    mysql_exec(
        &my,
        r#"CREATE TABLE j (id INT PRIMARY KEY, doc JSON);
           INSERT INTO j VALUES (1, '{"k":1,"k":2}'), (2, '{"a":{"x":"first","x":"second"},"b":[1.50]}'), (3, '{"k":3}');"#,
    );
    // What MariaDB itself answers.
    assert_eq!(
        mysql_value(
            &my,
            "SELECT CAST(JSON_EXTRACT(doc, '$.k') AS CHAR) FROM j WHERE id = 1"
        )
        .await,
        "1"
    );
    let out = dump_load(&my, &tgt, &[]);
    out.assert_success();
    // The rewrite is counted, per column, in the load's result record.
    let results: Vec<Value> = out
        .records()
        .into_iter()
        .filter(|r| r["type"] == "result" && r["table"]["name"] == "j")
        .collect();
    assert_eq!(results.len(), 1, "{results:#?}");
    assert_eq!(
        results[0]["changes"],
        serde_json::json!([{"column": "doc", "policy": "json-first-of-duplicate-keys", "count": 2}]),
        "{results:#?}"
    );
    assert!(
        out.stderrs[0].contains("j.doc: 2 values changed (json-first-of-duplicate-keys)"),
        "the dump tells the operator:\n{}",
        out.report()
    );
    assert_eq!(
        pg_value(
            &tgt,
            "SELECT string_agg(doc::text, ' | ' ORDER BY id) FROM j"
        )
        .await,
        r#"{"k": 1} | {"a": {"x": "first"}, "b": [1.50]} | {"k": 3}"#
    );
    assert_clean(&my, &tgt, "j");
    // A target that kept the last key (as an older molt loaded it) differs.
    psql_exec(&tgt, r#"UPDATE j SET doc = '{"k":2}' WHERE id = 1"#);
    let (status, summaries) = verify_all(&my, &tgt, "j");
    assert_eq!(status, 3, "differences found: {summaries:#?}");
    assert_eq!(summaries[0]["mismatched"], 1, "{summaries:#?}");
    // So does a JSON number that lost its scale (MariaDB keeps `1.50`).
    psql_exec(
        &tgt,
        r#"UPDATE j SET doc = '{"a":{"x":"first"},"b":[1.5]}' WHERE id = 2"#,
    );
    let (status, summaries) = verify_all(&my, &tgt, "j");
    assert_eq!(status, 3, "differences found: {summaries:#?}");
    assert_eq!(summaries[0]["mismatched"], 2, "{summaries:#?}");
}

#[tokio::test]
async fn mariadb_enum_error_value_beside_a_declared_empty_label_is_refused() {
    let my = fresh_mysql_database(&mysql_source_url(), "fid_enum_my").await;
    let tgt = fresh_pg_database(&pg_target_url(), "fid_enum_tgt").await;
    mysql_exec(
        &my,
        "CREATE TABLE en (id INT PRIMARY KEY, e ENUM('','x'));
         INSERT INTO en VALUES (1, ''), (3, 'x'), (4, NULL);",
    );
    // Declared '' alone moves exactly, and verify agrees.
    dump_load(&my, &tgt, &[]).assert_success();
    assert_eq!(
        pg_value(
            &tgt,
            "SELECT string_agg(id || ':' || coalesce(e::text, 'N') || ';', '' ORDER BY id) FROM en"
        )
        .await,
        "1:;3:x;4:N;"
    );
    assert_clean(&my, &tgt, "en");
    // The error value (a non-strict insert of an unknown label) is refused.
    mysql_exec(
        &my,
        "SET sql_mode = ''; INSERT INTO en VALUES (2, 'bogus');",
    );
    assert_eq!(
        mysql_value(&my, "SELECT CAST(e + 0 AS CHAR) FROM en WHERE id = 2").await,
        "0"
    );
    let tgt2 = fresh_pg_database(&pg_target_url(), "fid_enum_tgt2").await;
    let out = dump_load(&my, &tgt2, &[]);
    assert_refused(&out, &tgt2, "en", &["column e", "(id)=(2)", "error value"]).await;
}

#[tokio::test]
async fn mariadb_gbk_codes_mariadb_cannot_convert_are_refused() {
    let my = fresh_mysql_database(&mysql_source_url(), "fid_gbk_my").await;
    let tgt = fresh_pg_database(&pg_target_url(), "fid_gbk_tgt").await;
    mysql_exec(
        &my,
        "CREATE TABLE g (id INT PRIMARY KEY, t VARCHAR(10) CHARACTER SET gbk);
         SET sql_mode = '';
         INSERT INTO g VALUES (1, X'C4E3BAC3'), (7, X'41AAA1');",
    );
    let out = dump_load(&my, &tgt, &[]);
    assert_refused(&out, &tgt, "g", &["column t", "(id)=(7)", "0x41AAA1"]).await;
    mysql_exec(&my, "DELETE FROM g WHERE id = 7");
    dump_load(&my, &tgt, &[]).assert_success();
    assert_eq!(pg_value(&tgt, "SELECT t FROM g").await, "你好");
}

#[tokio::test]
async fn mariadb_auto_increment_past_a_target_sequence_is_a_warning_before_loading() {
    let my = fresh_mysql_database(&mysql_source_url(), "fid_seq_my").await;
    let tgt = fresh_pg_database(&pg_target_url(), "fid_seq_tgt").await;
    mysql_exec(
        &my,
        "CREATE TABLE s (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, v INT);
         INSERT INTO s VALUES (1, 1), (18446744073709551615, 2);",
    );
    let out = dump_load(&my, &tgt, &[]);
    out.assert_success();
    assert!(
        out.stderrs[0].contains("column id: AUTO_INCREMENT is at 18446744073709551615"),
        "{}",
        out.report()
    );
    assert_eq!(
        pg_value(&tgt, "SELECT string_agg(id::text, ',' ORDER BY id) FROM s").await,
        "1,18446744073709551615"
    );
    assert_clean(&my, &tgt, "s");

    // A stream that still carries such a sequence is refused by molt-load
    // before it writes anything (not after committing every row).
    let mut dumped = run_pipe(
        &[(
            "molt-dump",
            vec!["--source".into(), my.clone(), "--all".into()],
        )],
        None,
        &[],
    );
    dumped.assert_success();
    // A re-written stream: the header (no longer announcing the transport
    // checksum, so the section is checked by its digest) gains a sequence.
    let mut patched = String::new();
    let mut headers = 0;
    for mut record in ndjson(&std::mem::take(&mut dumped.stdout)) {
        // Rows are arrays; records are objects.
        if let Some(object) = record.as_object_mut() {
            object.remove("checksum");
        }
        if let Some(object) = record.as_object_mut().filter(|o| o.contains_key("columns")) {
            headers += 1;
            object.insert(
                "sequences".into(),
                serde_json::json!([{"column": "id", "next_value": "18446744073709551616"}]),
            );
        }
        patched.push_str(&record.to_string());
        patched.push('\n');
    }
    assert_eq!(headers, 1, "{patched}");
    let tgt2 = fresh_pg_database(&pg_target_url(), "fid_seq_tgt2").await;
    let load = run_pipe(
        &[("molt-load", vec!["--target".into(), tgt2.clone()])],
        Some(patched.as_bytes()),
        &[],
    );
    assert_eq!(load.statuses, [1], "{}", load.report());
    assert!(
        load.stderrs[0].contains("18446744073709551616")
            && load.stderrs[0].contains("nothing was loaded"),
        "{}",
        load.report()
    );
    assert_eq!(
        pg_value(
            &tgt2,
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 's'"
        )
        .await,
        "0"
    );
}

#[tokio::test]
async fn json_nul_escapes_are_refused_by_the_dump_naming_the_key() {
    let pg = fresh_pg_database(&pg_source_url(), "fid_jnul_pg").await;
    let tgt = fresh_pg_database(&pg_target_url(), "fid_jnul_tgt").await;
    psql_exec(
        &pg,
        r#"CREATE TABLE jn (id int PRIMARY KEY, j json);
           INSERT INTO jn VALUES (6, '{"a":"x\\u0000"}'), (7, '{"a":"x\u0000"}');"#,
    );
    let out = dump_load(&pg, &tgt, &[]);
    assert_refused(&out, &tgt, "jn", &["column j", "(id)=(7)", "NUL"]).await;

    let my = fresh_mysql_database(&mysql_source_url(), "fid_jnul_my").await;
    let tgt2 = fresh_pg_database(&pg_target_url(), "fid_jnul_tgt2").await;
    mysql_exec(
        &my,
        r#"CREATE TABLE jn (id INT PRIMARY KEY, j JSON);
           INSERT INTO jn VALUES (6, '{"a":"x\\\\u0000"}'), (8, '{"a":"x\\u0000"}');"#,
    );
    let out = dump_load(&my, &tgt2, &[]);
    assert_refused(&out, &tgt2, "jn", &["column j", "(id)=(8)", "NUL"]).await;

    // Where the rows reached the target some other way, without the NUL,
    // verify reports the row as a difference instead of stopping.
    for (source, target) in [(&pg, &tgt), (&my, &tgt2)] {
        psql_exec(
            target,
            r#"DROP TABLE IF EXISTS jn;
               CREATE TABLE jn (id int PRIMARY KEY, j jsonb);
               INSERT INTO jn VALUES (6, '{"a":"x\\u0000"}'), (7, '{"a":"x"}'), (8, '{"a":"x"}');"#,
        );
        let (status, summaries) = verify_all(source, target, "jn");
        assert_eq!(status, 3, "a difference, not an error: {summaries:#?}");
        assert_eq!(summaries[0]["mismatched"], 1, "{summaries:#?}");
        assert_eq!(summaries[0]["extraneous"], 1, "{summaries:#?}");
        assert_eq!(summaries[0]["missing"], 0, "{summaries:#?}");
    }
}

#[tokio::test]
async fn postgres_array_with_a_lower_bound_is_refused_naming_the_key() {
    let pg = fresh_pg_database(&pg_source_url(), "fid_arr_pg").await;
    let tgt = fresh_pg_database(&pg_target_url(), "fid_arr_tgt").await;
    psql_exec(
        &pg,
        "CREATE TABLE a (id int PRIMARY KEY, v int[]);
         INSERT INTO a VALUES (1, '{1,2}'), (100, '[0:2]={1,2,3}');",
    );
    let out = dump_load(&pg, &tgt, &[]);
    assert_refused(
        &out,
        &tgt,
        "a",
        &["column v", "row with primary key (id)=(100)"],
    )
    .await;
}

#[tokio::test]
async fn verify_sees_a_lost_decimal_scale_and_json_number_scale() {
    let pg = fresh_pg_database(&pg_source_url(), "fid_scale_pg").await;
    psql_exec(
        &pg,
        r#"CREATE TABLE n (id int PRIMARY KEY, v numeric, j jsonb, a numeric[]);
           INSERT INTO n VALUES (1, 12.300, '{"a":1.0}', '{1.50}'), (2, 5, '[2.50]', NULL),
                                (3, 1.5e3, '{"b":1.5e1}', NULL);"#,
    );
    // Through the stand-in (CockroachDB's hash) and on plain PostgreSQL
    // (its record hash): both must see the scale.
    for (target_server, prefix) in [
        (pg_target_url(), "fid_scale_tgt"),
        (pg_plain_target_url(), "fid_scale_plain"),
    ] {
        let tgt = fresh_pg_database(&target_server, prefix).await;
        dump_load(&pg, &tgt, &[]).assert_success();
        assert_eq!(
            pg_value(
                &tgt,
                "SELECT string_agg(v::text || ' ' || j::text, ', ' ORDER BY id) FROM n"
            )
            .await,
            r#"12.300 {"a": 1.0}, 5 [2.50], 1500 {"b": 15}"#
        );
        assert_clean(&pg, &tgt, "n");
        psql_exec(
            &tgt,
            r#"UPDATE n SET v = 12.3 WHERE id = 1; UPDATE n SET j = '[2.5]' WHERE id = 2"#,
        );
        let (status, summaries) = verify_all(&pg, &tgt, "n");
        assert_eq!(status, 3, "{summaries:#?}");
        assert_eq!(summaries[0]["mismatched"], 2, "{prefix}: {summaries:#?}");
        assert_eq!(summaries[0]["matched"], 1, "{prefix}: {summaries:#?}");
    }
}

#[tokio::test]
async fn unbounded_bpchar_moves_as_its_text_and_verifies_clean() {
    let pg = fresh_pg_database(&pg_source_url(), "fid_bpc_pg").await;
    let tgt = fresh_pg_database(&pg_target_url(), "fid_bpc_tgt").await;
    psql_exec(
        &pg,
        "CREATE TABLE b (id int PRIMARY KEY, c bpchar, f char(3));
         INSERT INTO b VALUES (1, 'a  ', 'x'), (2, 'b', 'yy '), (3, NULL, NULL);",
    );
    // What the source's users see: trailing blanks do not count.
    assert_eq!(
        pg_value(&pg, "SELECT length(c) FROM b WHERE id = 1").await,
        "1"
    );
    dump_load(&pg, &tgt, &[]).assert_success();
    assert_eq!(
        pg_value(&tgt, "SELECT string_agg(id || ':' || coalesce('[' || c || '] ' || length(c), 'N'), ', ' ORDER BY id) FROM b").await,
        "1:[a] 1, 2:[b] 1, 3:N"
    );
    assert_eq!(
        pg_value(&tgt, "SELECT data_type FROM information_schema.columns WHERE table_name = 'b' AND column_name = 'c'").await,
        "text"
    );
    assert_clean(&pg, &tgt, "b");
}

#[tokio::test]
async fn verify_compares_type_mapped_uuids_from_the_ledger_or_the_map() {
    let my = fresh_mysql_database(&mysql_source_url(), "fid_uuid_my").await;
    let tgt = fresh_pg_database(&pg_target_url(), "fid_uuid_tgt").await;
    mysql_exec(
        &my,
        "CREATE TABLE u (id INT PRIMARY KEY, c CHAR(36), b BINARY(16), flag TINYINT NOT NULL);
         INSERT INTO u VALUES
           (1, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', UNHEX('A0EEBC999C0B4EF8BB6D6BB9BD380A11'), 1),
           (2, 'b1eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', UNHEX('00000000000000000000000000000000'), 0),
           (3, NULL, NULL, 1);",
    );
    let map = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        map.path(),
        "[[column]]\ntable = \"u\"\ncolumn = \"c\"\ntarget_type = \"UUID\"\n\n\
         [[column]]\ntable = \"u\"\ncolumn = \"b\"\ntarget_type = \"UUID\"\n\n\
         [[column]]\ntable = \"u\"\ncolumn = \"flag\"\ntarget_type = \"BOOL\"\nnullable = true\n",
    )
    .unwrap();
    let map_path = map.path().to_str().unwrap();
    dump_load(&my, &tgt, &["--type-map", map_path]).assert_success();
    assert_eq!(
        pg_value(&tgt, "SELECT string_agg(id || ' ' || coalesce(c::text, 'N') || ' ' || coalesce(b::text, 'N') || ' ' || flag::text, ', ' ORDER BY id) FROM u").await,
        "1 a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 true, \
         2 b1eebc99-9c0b-4ef8-bb6d-6bb9bd380a12 00000000-0000-0000-0000-000000000000 false, 3 N N true"
    );
    // The overrides come from the headers molt-load stored in the ledger...
    assert_clean(&my, &tgt, "u");
    // ... or from the same file.
    let out = run_pipe(
        &[(
            "molt-verify",
            vec![
                "--source".into(),
                my.clone(),
                "--target".into(),
                tgt.clone(),
                "--table".into(),
                "u".into(),
                "--type-map".into(),
                map_path.into(),
            ],
        )],
        None,
        &[],
    );
    assert_eq!(out.statuses, [0], "{}", out.report());
    // And a real difference is still one.
    psql_exec(
        &tgt,
        "UPDATE u SET b = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12' WHERE id = 1",
    );
    let (status, summaries) = verify_all(&my, &tgt, "u");
    assert_eq!(status, 3, "{summaries:#?}");
    assert_eq!(summaries[0]["mismatched"], 1, "{summaries:#?}");
}

#[tokio::test]
async fn postgres_edge_values_arrive_bit_identical() {
    let pg = fresh_pg_database(&pg_source_url(), "fid_edge_pg").await;
    let tgt = fresh_pg_database(&pg_target_url(), "fid_edge_tgt").await;
    psql_exec(
        &pg,
        r#"CREATE TABLE e (id int PRIMARY KEY, n numeric, n2 numeric(65,30), f8 float8, f4 float4,
                           d date, ts timestamp(6), tz timestamptz, i8 int8, by bytea, t text, c char(4), b bit(64));
           INSERT INTO e VALUES
             (1, repeat('9', 130000)::numeric, '-99999999999999999999999999999999999.999999999999999999999999999999',
              'NaN', 'Infinity', '4713-01-01 BC', 'infinity', '-infinity', 9223372036854775807,
              '\x00ff00', 'nul-free 😀 ümlaut', 'ab', B'1111111111111111111111111111111111111111111111111111111111111111'),
             (2, 'NaN', 0.000000000000000000000000000001, '-0', '-Infinity', '5874897-12-31', '294276-12-31 23:59:59.999999',
              '1970-01-01 00:00:00.000001+00', -9223372036854775808, '\x', '', '', B'0000000000000000000000000000000000000000000000000000000000000000'),
             (3, 12.300, 1, 4.9e-324, 1.4e-45, '2000-02-29', '2000-01-01 00:00:00', '2000-01-01 00:00:00+14', 0,
              NULL, E'tab\there\nnewline\\backslash', NULL, NULL);"#,
    );
    dump_load(&pg, &tgt, &[]).assert_success();
    // An independent comparison: every value's text, on both sides.
    let digest = "SELECT md5(string_agg(concat_ws('|', id, n, n2, f8, f4, d, ts, tz, i8, by, t, c || '#', b), E'\\n' ORDER BY id)) FROM e";
    assert_eq!(pg_value(&tgt, digest).await, pg_value(&pg, digest).await);
    assert_eq!(
        pg_value(&tgt, "SELECT length(n::text) FROM e WHERE id = 1").await,
        "130000"
    );
    assert_clean(&pg, &tgt, "e");
}

#[tokio::test]
async fn mariadb_edge_values_arrive_exact() {
    let my = fresh_mysql_database(&mysql_source_url(), "fid_edge_my").await;
    let tgt = fresh_pg_database(&pg_target_url(), "fid_edge_mtgt").await;
    mysql_exec(
        &my,
        r#"CREATE TABLE e (id INT PRIMARY KEY, bu BIGINT UNSIGNED, d DECIMAL(65,30), db DOUBLE,
                           t0 DATETIME, t3 DATETIME(3), t6 DATETIME(6), tm TIME(6), b BIT(64),
                           vb VARBINARY(8), c CHAR(5), v VARCHAR(20)) CHARSET utf8mb4;
           INSERT INTO e VALUES
             (1, 18446744073709551615, '-99999999999999999999999999999999999.999999999999999999999999999999',
              2.2250738585072014e-308, '9999-12-31 23:59:59', '1000-01-01 00:00:00.001', '2024-02-29 12:00:00.999999',
              '838:59:59.999999', b'1000000000000000000000000000000000000000000000000000000000000001',
              x'00410042', 'ab', '😀 x'),
             (2, 0, 0.000000000000000000000000000001, -0.0, '1000-01-01 00:00:00', NULL, NULL,
              '-838:59:59.999999', b'0', x'', '', ''),
             (3, NULL, NULL, 4.9e-324, NULL, NULL, NULL, '00:00:00.000001', NULL, NULL, NULL, NULL);"#,
    );
    dump_load(&my, &tgt, &[]).assert_success();
    assert_eq!(
        pg_value(
            &tgt,
            "SELECT string_agg(concat_ws('|', id, bu, d, db, t0, t3, t6, tm, b, encode(vb, 'hex'), c || '#', v), E'\\n' ORDER BY id) FROM e"
        )
        .await,
        // concat_ws skips NULLs; MariaDB stores the literal -0.0 (a
        // decimal) as 0.
        "1|18446744073709551615|-99999999999999999999999999999999999.999999999999999999999999999999|2.2250738585072014e-308|\
         9999-12-31 23:59:59|1000-01-01 00:00:00.001|2024-02-29 12:00:00.999999|838:59:59.999999|\
         1000000000000000000000000000000000000000000000000000000000000001|00410042|ab#|😀 x\n\
         2|0|0.000000000000000000000000000001|0|1000-01-01 00:00:00|-838:59:59.999999|\
         0000000000000000000000000000000000000000000000000000000000000000||#|\n\
         3|5e-324|00:00:00.000001"
    );
    assert_clean(&my, &tgt, "e");
}

#[tokio::test]
async fn citext_is_native_where_the_target_has_it_and_text_with_a_warning_elsewhere() {
    let pg = fresh_pg_database(&pg_source_url(), "fid_citext_pg").await;
    psql_exec(
        &pg,
        "CREATE EXTENSION IF NOT EXISTS citext;
         CREATE TABLE ci (name citext PRIMARY KEY, email citext NOT NULL, aliases citext[]);
         INSERT INTO ci VALUES ('Roach', 'Roach@Example.com', '{Crdb,\"Cock Roach\"}'),
                               ('b', 'b@example.com', NULL), ('A', 'ÉCOLE@example.com', '{}');",
    );
    let column_types =
        "SELECT string_agg(column_name || ' ' || udt_name, ', ' ORDER BY ordinal_position) \
                        FROM information_schema.columns WHERE table_name = 'ci'";
    let rows = "SELECT string_agg(name || '|' || email || '|' || coalesce(aliases::text, 'N'), ' ; ' ORDER BY name::text COLLATE \"C\") FROM ci";
    let source_rows = pg_value(&pg, rows).await;

    // The stand-in answers as CockroachDB v25.2, which has no CITEXT.
    let tgt = fresh_pg_database(&pg_target_url(), "fid_citext_tgt").await;
    let out = dump_load(&pg, &tgt, &[]);
    out.assert_success();
    assert!(
        out.stderrs[1].contains("ci.email: the target has no CITEXT type")
            && out.stderrs[1].contains("comparisons on it become case-sensitive"),
        "the load warns, naming the column:\n{}",
        out.report()
    );
    assert_eq!(
        pg_value(&tgt, column_types).await,
        "name text, email text, aliases _text"
    );
    assert_eq!(pg_value(&tgt, rows).await, source_rows);
    assert_clean(&pg, &tgt, "ci");

    // A PostgreSQL target with the extension gets the type itself.
    let plain = fresh_pg_database(&pg_plain_target_url(), "fid_citext_plain").await;
    psql_exec(&plain, "CREATE EXTENSION IF NOT EXISTS citext");
    let cockroach = pg_value(&plain, "SELECT version()")
        .await
        .contains("CockroachDB");
    let out = dump_load(&pg, &plain, &[]);
    out.assert_success();
    if cockroach {
        assert_eq!(
            pg_value(&plain, column_types).await,
            "name text, email text, aliases _text"
        );
    } else {
        assert!(!out.stderrs[1].contains("CITEXT"), "{}", out.report());
        assert_eq!(
            pg_value(&plain, column_types).await,
            "name citext, email citext, aliases _citext"
        );
        assert_eq!(
            pg_value(
                &plain,
                "SELECT count(*) FROM ci WHERE email = 'roach@EXAMPLE.com'"
            )
            .await,
            "1",
            "compared without case, as on the source"
        );
    }
    assert_eq!(pg_value(&plain, rows).await, source_rows);
    assert_clean(&pg, &plain, "ci");
}
