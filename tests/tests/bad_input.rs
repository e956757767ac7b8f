//! Awkward names and bad values end to end: identifiers with quotes, spaces
//! and Unicode survive dump, load and verify; a NUL byte in text, which
//! PostgreSQL and CockroachDB cannot store, fails naming the table and row;
//! and ten pipelines into one target run side by side without deadlocks.

use molt_tests::*;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[tokio::test]
async fn identifiers_with_quotes_spaces_and_unicode_round_trip() {
    let source = fresh_pg_database(&pg_source_url(), "names_src").await;
    let target = fresh_pg_database(&pg_target_url(), "names_tgt").await;
    psql_exec(
        &source,
        r#"CREATE SCHEMA "Shop ""Main""";
           CREATE TABLE "Shop ""Main"""."Order Lines ü" ("Id" int PRIMARY KEY, "naïve col" text, "we""ird" int, "select" text);
           INSERT INTO "Shop ""Main"""."Order Lines ü" VALUES (1, 'a', 1, 'x'), (2, NULL, 2, 'y'), (3, 'ünï', 3, 'z');"#,
    );
    let table = r#"Shop "Main".Order Lines ü"#;
    let out = run_pipe(
        &[
            (
                "molt-dump",
                s(&["--quiet", "--source", &source, "--table", table]),
            ),
            ("molt-load", s(&["--quiet", "--target", &target])),
        ],
        None,
        &[],
    );
    out.assert_success();
    let rows = psql_exec(
        &target,
        "\\pset tuples_only on\n\\pset format unaligned\nSELECT \"Id\", coalesce(\"naïve col\", '<null>'), \"we\"\"ird\", \"select\" FROM \"Shop \"\"Main\"\"\".\"Order Lines ü\" ORDER BY 1;",
    );
    let rows: Vec<&str> = rows.lines().filter(|l| l.contains('|')).collect();
    assert_eq!(rows, vec!["1|a|1|x", "2|<null>|2|y", "3|ünï|3|z"]);
    let out = run_pipe(
        &[(
            "molt-verify",
            s(&["--source", &source, "--target", &target, "--table", table]),
        )],
        None,
        &[],
    );
    out.assert_statuses(&[0]);
}

#[tokio::test]
async fn a_nul_byte_in_text_is_refused_naming_table_and_row() {
    let target = fresh_pg_database(&pg_target_url(), "nul_tgt").await;
    let mut hasher = molt_core::digest::RowHasher::default();
    let int = molt_core::digest::DigestColumn {
        logical: molt_core::value::LogicalType::Int,
        padded: false,
        is_array: false,
    };
    let text = molt_core::digest::DigestColumn {
        logical: molt_core::value::LogicalType::Text,
        padded: false,
        is_array: false,
    };
    let mut digest = molt_core::digest::SectionDigest::default();
    for (id, body) in [("1", "fine"), ("2", "nul\u{0}inside")] {
        hasher.value(int, Some(id));
        hasher.value(text, Some(body));
        digest.add_row(hasher.finish_row());
    }
    let stream = format!(
        concat!(
            "{{\"type\":\"stream\",\"version\":\"1.0\",\"producer\":\"test\"}}\n",
            "{{\"type\":\"table\",\"table\":{{\"schema\":\"public\",\"name\":\"notes\"}},\"columns\":[",
            "{{\"name\":\"id\",\"source_type\":\"int\",\"target_type\":\"INT4\",\"type\":\"int\",\"nullable\":false,\"pk\":1}},",
            "{{\"name\":\"body\",\"source_type\":\"text\",\"target_type\":\"TEXT\",\"type\":\"text\",\"nullable\":true}}],",
            "\"slice\":{{\"phase\":\"\",\"table\":{{\"schema\":\"public\",\"name\":\"notes\"}}}}}}\n",
            "[\"1\",\"fine\"]\n",
            "[\"2\",\"nul\\u0000inside\"]\n",
            "{{\"type\":\"end\",\"table\":{{\"schema\":\"public\",\"name\":\"notes\"}},\"shard\":{{\"index\":0,\"count\":1}},\"rows\":2,\"digest\":\"{}\"}}\n"
        ),
        digest.hex()
    );
    let out = run_pipe(
        &[("molt-load", s(&["--quiet", "--target", &target]))],
        Some(stream.as_bytes()),
        &[],
    );
    out.assert_statuses(&[1]);
    let err = &out.stderrs[0];
    assert!(err.contains("public.notes") && err.contains("NUL"), "{err}");
    assert!(
        err.contains("line 4") || err.contains("id"),
        "the error names the row: {err}"
    );
    let count = psql_exec(
        &target,
        "\\pset tuples_only on\nSELECT count(*) FROM public.notes;",
    );
    assert_eq!(count.trim(), "0", "nothing of the refused section stays");
}

#[tokio::test]
async fn ten_pipelines_into_one_target_side_by_side() {
    let source = fresh_pg_database(&pg_source_url(), "ten_src").await;
    let target = fresh_pg_database(&pg_target_url(), "ten_tgt").await;
    psql_exec(
        &source,
        "CREATE TABLE shared (id int PRIMARY KEY, tenant int, body text);
         INSERT INTO shared SELECT i, i % 10, md5(i::text) FROM generate_series(1, 50000) i;",
    );
    let handles: Vec<_> = (0..10)
        .map(|tenant| {
            let (source, target) = (source.clone(), target.clone());
            std::thread::spawn(move || {
                run_pipe(
                    &[
                        (
                            "molt-dump",
                            s(&[
                                "--quiet",
                                "--source",
                                &source,
                                "--table",
                                "public.shared",
                                "--filter",
                                &format!("tenant = {tenant}"),
                                "--phase",
                                &format!("t{tenant}"),
                            ]),
                        ),
                        (
                            "molt-load",
                            s(&["--quiet", "--target", &target, "--batch-rows", "1000"]),
                        ),
                    ],
                    None,
                    &[],
                )
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap().assert_success();
    }
    let out = run_pipe(
        &[(
            "molt-verify",
            s(&[
                "--source",
                &source,
                "--target",
                &target,
                "--table",
                "public.shared",
            ]),
        )],
        None,
        &[],
    );
    out.assert_statuses(&[0]);
    let summary = out
        .records()
        .into_iter()
        .find(|r| r["kind"] == "table_summary")
        .unwrap();
    assert_eq!(summary["target_rows"], 50000);
}

/// One column of a hand-written stream: name, target type, logical type.
struct StreamColumn {
    name: &'static str,
    target_type: &'static str,
    logical: molt_core::value::LogicalType,
}

/// A one-section stream of `public.<table>` with a correct count and digest,
/// so that only the values themselves are wrong.
fn one_section_stream(table: &str, columns: &[StreamColumn], rows: &[Vec<&str>]) -> String {
    let mut hasher = molt_core::digest::RowHasher::default();
    let mut digest = molt_core::digest::SectionDigest::default();
    for row in rows {
        for (column, value) in columns.iter().zip(row) {
            let digest_column = molt_core::digest::DigestColumn {
                logical: column.logical,
                padded: false,
                is_array: false,
            };
            hasher.value(digest_column, Some(value));
        }
        digest.add_row(hasher.finish_row());
    }
    let name = serde_json::json!({"schema": "public", "name": table});
    let columns_json: Vec<serde_json::Value> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut column = serde_json::json!({
                "name": c.name,
                "source_type": c.target_type.to_lowercase(),
                "target_type": c.target_type,
                "type": serde_json::to_value(c.logical).unwrap(),
                "nullable": i != 0,
            });
            if i == 0 {
                column["pk"] = serde_json::json!(1);
            }
            column
        })
        .collect();
    let mut stream = String::new();
    stream.push_str("{\"type\":\"stream\",\"version\":\"1.0\",\"producer\":\"test\"}\n");
    stream.push_str(
        &serde_json::json!({
            "type": "table",
            "table": name,
            "columns": columns_json,
            "slice": {"phase": "", "table": name},
        })
        .to_string(),
    );
    stream.push('\n');
    for row in rows {
        stream.push_str(&serde_json::to_string(row).unwrap());
        stream.push('\n');
    }
    stream.push_str(
        &serde_json::json!({
            "type": "end",
            "table": name,
            "shard": {"index": 0, "count": 1},
            "rows": rows.len(),
            "digest": digest.hex(),
        })
        .to_string(),
    );
    stream.push('\n');
    stream
}

/// Loads a stream whose row `bad_row` (0-based) holds a value its column
/// cannot take, and checks the refusal: exit 1, the table, the column and the
/// stream line named, and not one row of the section left on the target.
/// `batch_rows` small enough puts the bad row in a later batch than the
/// first, so earlier batches have committed before it fails.
async fn refused_value(
    table: &str,
    bad_column: &str,
    columns: &[StreamColumn],
    rows: &[Vec<&str>],
    bad_row: usize,
    batch_rows: &str,
) {
    let target = fresh_pg_database(&pg_target_url(), &format!("badval_{table}")).await;
    let stream = one_section_stream(table, columns, rows);
    let out = run_pipe(
        &[(
            "molt-load",
            s(&["--quiet", "--target", &target, "--batch-rows", batch_rows]),
        )],
        Some(stream.as_bytes()),
        &[],
    );
    out.assert_statuses(&[1]);
    let err = &out.stderrs[0];
    assert!(
        err.contains(&format!("public.{table}")),
        "names the table: {err}"
    );
    assert!(
        err.contains(&format!("column {bad_column}")),
        "names the column: {err}"
    );
    // The server counts lines from the start of the batch; the error says
    // which row of the section that is, and its key.
    assert!(
        err.contains(&format!(
            "row {} of the section, primary key (id) = ({})",
            bad_row + 1,
            rows[bad_row][0]
        )),
        "names the row: {err}"
    );
    let count = psql_exec(
        &target,
        format!("\\pset tuples_only on\nSELECT count(*) FROM public.{table};"),
    );
    assert_eq!(
        count.trim(),
        "0",
        "nothing of the refused section stays: {err}"
    );
}

fn col(
    name: &'static str,
    target_type: &'static str,
    logical: molt_core::value::LogicalType,
) -> StreamColumn {
    StreamColumn {
        name,
        target_type,
        logical,
    }
}

#[tokio::test]
async fn an_integer_out_of_range_is_refused_naming_table_column_and_row() {
    use molt_core::value::LogicalType::*;
    let columns = [col("id", "INT4", Int), col("qty", "INT4", Int)];
    let ids: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
    let mut rows: Vec<Vec<&str>> = ids.iter().map(|id| vec![id.as_str(), "7"]).collect();
    rows[6][1] = "99999999999";
    refused_value("qtys", "qty", &columns, &rows, 6, "3").await;
}

#[tokio::test]
async fn a_too_long_varchar_is_refused_naming_table_column_and_row() {
    use molt_core::value::LogicalType::*;
    let columns = [col("id", "INT8", Int), col("code", "VARCHAR(3)", Text)];
    let rows = vec![vec!["1", "abc"], vec!["2", "abcd"], vec!["3", "xyz"]];
    refused_value("codes", "code", &columns, &rows, 1, "1000").await;
}

#[tokio::test]
async fn a_malformed_date_is_refused_naming_table_column_and_row() {
    use molt_core::value::LogicalType::*;
    let columns = [
        col("id", "INT8", Int),
        col("note", "TEXT", Text),
        col("due", "DATE", Date),
    ];
    let rows = vec![
        vec!["1", "a", "2024-01-31"],
        vec!["2", "b", "2024-02-29"],
        vec!["3", "c", "not-a-date"],
    ];
    refused_value("dues", "due", &columns, &rows, 2, "2").await;
}

#[tokio::test]
async fn a_stream_cut_between_two_sections_fails_the_load() {
    let source = fresh_pg_database(&pg_source_url(), "cut_src").await;
    let target = fresh_pg_database(&pg_target_url(), "cut_tgt").await;
    psql_exec(
        &source,
        "CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 10);
         CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b SELECT generate_series(1, 20);",
    );
    let dumped = run_pipe(
        &[(
            "molt-dump",
            s(&["--quiet", "--source", &source, "--all", "--jobs", "1"]),
        )],
        None,
        &[],
    );
    dumped.assert_success();
    let text = dumped.stdout_str().to_string();
    assert!(text.ends_with("{\"type\":\"close\"}\n"), "{text}");
    // Up to and including the first section's end record: every section
    // in it is whole, and the second one and the close record are gone.
    let first_end = text.find("{\"type\":\"end\"").unwrap();
    let cut = &text[..first_end + text[first_end..].find('\n').unwrap() + 1];
    let out = run_pipe(
        &[("molt-load", s(&["--target", &target]))],
        Some(cut.as_bytes()),
        &[],
    );
    assert_ne!(
        out.statuses[0],
        0,
        "a cut stream must fail:\n{}",
        out.report()
    );
    assert!(
        out.stderrs[0].contains("without its close record"),
        "{}",
        out.report()
    );
    // The whole stream loads.
    let out = run_pipe(
        &[("molt-load", s(&["--target", &target]))],
        Some(text.as_bytes()),
        &[],
    );
    out.assert_success();
    assert_eq!(pg_value(&target, "SELECT count(*) FROM b").await, "20");
}
