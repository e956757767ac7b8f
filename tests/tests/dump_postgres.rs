//! molt-dump against a real PostgreSQL source: exact stream values of every
//! mapped type and their edge cases, filters, shards, partitioned tables,
//! Pagila, and the errors an operator sees.
//!
//! Build first: `cargo build -p molt-dump`; needs `MOLT_TEST_PG_SOURCE`.

use std::collections::{BTreeMap, BTreeSet};

use molt_core::stream::{Item, Record, StreamReader};
use molt_tests::*;
use serde_json::{json, Value};

/// One section of a dump: header, rows (as JSON) and end record.
struct Section {
    header: Value,
    rows: Vec<Value>,
    end: Value,
}

/// Runs molt-dump with `args` (and `stdin`), asserting success.
fn dump(args: &[&str], stdin: Option<&[u8]>) -> PipeOutcome {
    let out = run_pipe(
        &[("molt-dump", args.iter().map(|s| s.to_string()).collect())],
        stdin,
        &[],
    );
    out.assert_success();
    out
}

/// Checks the stream with the library reader (structure, counts, digests)
/// and splits it into sections.
fn sections(stdout: &[u8]) -> Vec<Section> {
    let mut reader = StreamReader::new(stdout);
    let mut checked_ends = 0;
    while let Some(item) = reader
        .next()
        .unwrap_or_else(|e| panic!("stream rejected by StreamReader: {e}"))
    {
        if let Item::Record(Record::End(_)) = item {
            checked_ends += 1;
        }
    }
    let records = ndjson(stdout);
    assert_eq!(
        records[0]["type"], "stream",
        "the stream header comes first"
    );
    assert_eq!(
        records.last().map(|r| r["type"].clone()),
        Some(Value::from("close")),
        "the close record comes last"
    );
    let mut out = Vec::new();
    let mut current: Option<Section> = None;
    for record in records[1..records.len() - 1].iter().cloned() {
        if record.is_array() {
            current
                .as_mut()
                .expect("row inside a section")
                .rows
                .push(record);
            continue;
        }
        match record["type"].as_str() {
            Some("table") => {
                current = Some(Section {
                    header: record,
                    rows: Vec::new(),
                    end: Value::Null,
                })
            }
            Some("end") => {
                let mut s = current.take().expect("end closes a section");
                s.end = record;
                out.push(s);
            }
            other => panic!("unexpected record {other:?}"),
        }
    }
    assert_eq!(checked_ends, out.len());
    out
}

fn column<'a>(header: &'a Value, name: &str) -> &'a Value {
    header["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("column {name}"))
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn drop_database(url: &str) {
    let name = url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let client = pg_connect(&pg_source_url()).await;
    let _ = client
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await;
}

const TYPES_SCHEMA: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
CREATE TABLE types (
  id int PRIMARY KEY,
  i2 int2, i4 int4, i8 int8, n numeric(12,2), nu numeric, f4 float4, f8 float8, b bool,
  t text, vc varchar(10), c char(4), by bytea,
  d date, tm time(3), ttz timetz, ts timestamp, tstz timestamptz,
  iv interval, j json, jb jsonb, u uuid, bi bit(4), vb varbit(8),
  ip inet, ci cidr, tsv tsvector, mo money, e mood, dm posint,
  ta text[], ia int[][], x xml
);
INSERT INTO types VALUES
 (1, 1, 2, 3, 12.3, 1.50, 1.5, 0.1, true,
  'hello', 'v', 'ab', '\x00ff10',
  '2020-02-29', '23:59:59.999', '10:11:12.5+05:30', '2020-02-29 23:59:59.123456', '2020-06-01 12:00:00+02',
  '1 year 2 mons 3 days 04:05:06.5', '{"a": [1, 2.50]}', '{"b": 1, "a": "x"}', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', B'1010', B'101',
  '192.168.1.5/24', '10.0.0.0/8', 'a fat cat', 12.34, 'happy', 7,
  ARRAY['a', NULL, 'say "hi"', 'back\slash', 'NULL', '', 'with,comma', '{brace}'], '{{1,2},{3,4}}', '<a>x</a>'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, -32768, -2147483648, -9223372036854775808, -0.01, 'NaN', '-Infinity', 'Infinity', false,
  '', '', '', '',
  '-infinity', '00:00:00', '00:00:00-08', 'infinity', '-infinity',
  '-1 year -2 mons +3 days -04:05:06.5', '[]', '{}', '00000000-0000-0000-0000-000000000000', B'0000', B'',
  '::1', '::/0', '', -1.5, 'sad', 1,
  '{}', '{}', ''),
 (4, 32767, 2147483647, 9223372036854775807, 9999999999.99, 'Infinity', 'NaN', 'NaN', NULL,
  E'😀 e\u0301 tab\there\nnewline "q" \\ end', 'ünï', 'çé', NULL,
  '0001-01-01 BC', '24:00:00', NULL, '0044-03-15 12:00:00 BC', '0001-01-01 00:00:00+00 BC',
  '-00:00:01', NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL,
  ARRAY[NULL, E'tab\tand\nnewline']::text[], '{{-1,NULL},{3,4}}', NULL);
"#;

#[tokio::test]
async fn types_dump_exact_values() {
    let url = fresh_pg_database(&pg_source_url(), "dump_pg_types").await;
    psql_exec(&url, TYPES_SCHEMA);
    // A several-MB bytea and deeply nested JSON.
    psql_exec(
        &url,
        "INSERT INTO types (id, by, j, jb) VALUES (5, decode(repeat('0123456789abcdef', 262144), 'hex'), \
         (repeat('[', 500) || repeat(']', 500))::json, (repeat('{\"a\": ', 500) || '1' || repeat('}', 500))::jsonb)",
    );
    let out = dump(&["--source", &url, "--table", "public.types"], None);
    let stderr = &out.stderrs[0];
    assert!(
        stderr.contains("type xml"),
        "unmapped xml must be reported: {stderr}"
    );
    let s = sections(&out.stdout);
    assert_eq!(s.len(), 1);
    let section = &s[0];
    assert_eq!(section.end["rows"], 5);
    let h = &section.header;

    // Header: types, enums, domains, padding, keys, checks.
    let expect_types = [
        ("i2", "INT2", "int"),
        ("i8", "INT8", "int"),
        ("n", "DECIMAL(12,2)", "decimal"),
        ("nu", "DECIMAL", "decimal"),
        ("f4", "FLOAT4", "float4"),
        ("f8", "FLOAT8", "float8"),
        ("vc", "VARCHAR(10)", "text"),
        ("c", "CHAR(4)", "text"),
        ("by", "BYTEA", "bytes"),
        ("tm", "TIME(3)", "time"),
        ("ttz", "TIMETZ", "timetz"),
        ("tstz", "TIMESTAMPTZ", "timestamptz"),
        ("iv", "INTERVAL", "interval"),
        ("j", "JSONB", "json"),
        ("jb", "JSONB", "json"),
        ("u", "UUID", "uuid"),
        ("bi", "BIT(4)", "bit"),
        ("vb", "VARBIT(8)", "bit"),
        ("ip", "INET", "text"),
        ("ci", "INET", "text"),
        ("tsv", "TSVECTOR", "text"),
        ("mo", "DECIMAL(19,2)", "decimal"),
        ("e", "\"public\".\"mood\"", "enum"),
        ("dm", "INT4", "int"),
        ("ta", "TEXT[]", "text"),
        ("ia", "INT4[]", "int"),
        ("x", "TEXT", "text"),
    ];
    for (name, target, logical) in expect_types {
        let c = column(h, name);
        assert_eq!(c["target_type"], target, "{name}: {c}");
        assert_eq!(c["type"], logical, "{name}: {c}");
    }
    assert_eq!(column(h, "id")["pk"], 1);
    assert_eq!(column(h, "id")["nullable"], false);
    assert_eq!(column(h, "c")["padded"], true);
    assert_eq!(
        column(h, "e")["enum_type"],
        json!({"schema": "public", "name": "mood", "labels": ["sad", "ok", "happy"]})
    );
    assert_eq!(column(h, "dm")["domain"], "posint");
    assert_eq!(column(h, "ta")["array_dims"], 1);
    assert_eq!(column(h, "ia")["array_dims"], 2);
    assert!(
        h["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["expression"] == "((\"dm\" > 0))"),
        "domain check on the column: {}",
        h["checks"]
    );

    let rows: BTreeMap<String, &Value> = section
        .rows
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r))
        .collect();
    assert_eq!(
        rows["1"],
        &json!([
            "1",
            "1",
            "2",
            "3",
            "12.30",
            "1.50",
            "1.5",
            "0.1",
            "true",
            "hello",
            "v",
            "ab  ",
            "AP8Q",
            "2020-02-29",
            "23:59:59.999",
            "10:11:12.5+05:30",
            "2020-02-29 23:59:59.123456",
            "2020-06-01 10:00:00Z",
            "P1Y2M3DT4H5M6.5S",
            "{\"a\": [1, 2.50]}",
            "{\"a\": \"x\", \"b\": 1}",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "1010",
            "101",
            "192.168.1.5/24",
            "10.0.0.0/8",
            "'a' 'cat' 'fat'",
            "12.34",
            "happy",
            "7",
            [
                "a",
                null,
                "say \"hi\"",
                "back\\slash",
                "NULL",
                "",
                "with,comma",
                "{brace}"
            ],
            [["1", "2"], ["3", "4"]],
            "<a>x</a>"
        ])
    );
    let mut nulls = vec![json!("2")];
    nulls.extend(std::iter::repeat_n(Value::Null, 32));
    assert_eq!(
        rows["2"],
        &Value::Array(nulls),
        "NULL stays null, distinct from ''"
    );
    assert_eq!(
        rows["3"],
        &json!([
            "3",
            "-32768",
            "-2147483648",
            "-9223372036854775808",
            "-0.01",
            "NaN",
            "-Infinity",
            "Infinity",
            "false",
            "",
            "",
            "    ",
            "",
            "-infinity",
            "00:00:00",
            "00:00:00-08",
            "infinity",
            "-infinity",
            "P-1Y-2M3DT-4H-5M-6.5S",
            "[]",
            "{}",
            "00000000-0000-0000-0000-000000000000",
            "0000",
            "",
            "::1",
            "::/0",
            "",
            "-1.50",
            "sad",
            "1",
            [],
            [],
            ""
        ])
    );
    assert_eq!(
        rows["4"],
        &json!([
            "4",
            "32767",
            "2147483647",
            "9223372036854775807",
            "9999999999.99",
            "Infinity",
            "NaN",
            "NaN",
            null,
            "😀 e\u{301} tab\there\nnewline \"q\" \\ end",
            "ünï",
            "çé  ",
            null,
            "0000-01-01",
            "24:00:00",
            null,
            "-0043-03-15 12:00:00",
            "0000-01-01 00:00:00Z",
            "PT-1S",
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            [null, "tab\tand\nnewline"],
            [["-1", null], ["3", "4"]],
            null
        ])
    );
    let big: Vec<u8> = [0x01u8, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef].repeat(262144);
    assert_eq!(
        rows["5"][12].as_str().unwrap().len(),
        big.len().div_ceil(3) * 4
    );
    assert_eq!(
        rows["5"][12],
        json!(base64(&big)),
        "several-MB bytea as base64"
    );
    assert_eq!(
        rows["5"][19],
        json!(format!("{}{}", "[".repeat(500), "]".repeat(500)))
    );
    assert_eq!(
        rows["5"][20],
        json!(format!("{}1{}", "{\"a\": ".repeat(500), "}".repeat(500)))
    );
    drop_database(&url).await;
}

async fn numbers_table(url: &str, rows: u32) {
    psql_exec(
        url,
        format!(
            "CREATE TABLE nums (id int PRIMARY KEY, grp text NOT NULL); \
             INSERT INTO nums SELECT g, CASE WHEN g % 3 = 0 THEN 'a' ELSE 'b' END FROM generate_series(1, {rows}) g;"
        ),
    );
}

fn ids(section: &Section) -> Vec<i64> {
    section
        .rows
        .iter()
        .map(|r| r[0].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn filter_and_shards_cover_exactly_their_rows() {
    let url = fresh_pg_database(&pg_source_url(), "dump_pg_shards").await;
    numbers_table(&url, 1000).await;

    let out = dump(
        &[
            "--source",
            &url,
            "--table",
            "nums",
            "--filter",
            "grp = 'a'",
            "--phase",
            "A",
        ],
        None,
    );
    let s = sections(&out.stdout);
    assert_eq!(s[0].end["rows"], 333);
    assert!(ids(&s[0]).iter().all(|id| id % 3 == 0));
    assert_eq!(s[0].header["slice"]["filter"], "grp = 'a'");
    assert_eq!(s[0].header["slice"]["phase"], "A");

    let slices = concat!(
        r#"{"type":"slice","phase":"A","table":{"schema":"public","name":"nums"},"shard":{"index":0,"count":2,"key":["id"],"upper":["500"]}}"#,
        "\n",
        r#"{"type":"slice","phase":"A","table":{"schema":"public","name":"nums"},"shard":{"index":1,"count":2,"key":["id"],"lower":["500"]}}"#,
        "\n"
    );
    let out = dump(&["--source", &url, "--jobs", "2"], Some(slices.as_bytes()));
    let s = sections(&out.stdout);
    assert_eq!(s.len(), 2);
    let mut all: Vec<i64> = Vec::new();
    for section in &s {
        let shard = section.header["slice"]["shard"]["index"].as_i64().unwrap();
        let these = ids(section);
        if shard == 0 {
            assert!(
                these.iter().all(|&id| id < 500),
                "shard 0 holds ids below 500"
            );
            assert_eq!(section.end["rows"], 499);
        } else {
            assert!(these.iter().all(|&id| id >= 500));
            assert_eq!(section.end["rows"], 501);
        }
        all.extend(these);
    }
    all.sort();
    assert_eq!(
        all,
        (1..=1000).collect::<Vec<_>>(),
        "the shards cover every row exactly once"
    );

    // A composite key, compared as a tuple.
    psql_exec(
        &url,
        "CREATE TABLE pairs (a int, b text, PRIMARY KEY (a, b)); \
         INSERT INTO pairs SELECT g / 10, 'k' || (g % 10) FROM generate_series(0, 99) g;",
    );
    let slices = r#"{"type":"slice","table":{"schema":"public","name":"pairs"},"shard":{"index":1,"count":2,"lower":["5","k5"]}}"#;
    let out = dump(&["--source", &url], Some(slices.as_bytes()));
    let s = sections(&out.stdout);
    assert_eq!(
        s[0].end["rows"], 45,
        "(a,b) >= (5,'k5'): 5 rows of a=5 and 40 of a>5"
    );
    drop_database(&url).await;
}

#[tokio::test]
async fn partitioned_table_dumps_as_one_table() {
    let url = fresh_pg_database(&pg_source_url(), "dump_pg_parts").await;
    psql_exec(
        &url,
        "CREATE TABLE events (id int, region text, at date, PRIMARY KEY (region, id)) PARTITION BY LIST (region); \
         CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu'); \
         CREATE TABLE events_us PARTITION OF events FOR VALUES IN ('us') PARTITION BY RANGE (id); \
         CREATE TABLE events_us_1 PARTITION OF events_us FOR VALUES FROM (0) TO (100); \
         CREATE TABLE events_us_2 PARTITION OF events_us FOR VALUES FROM (100) TO (1000); \
         CREATE TABLE plain (id int PRIMARY KEY); \
         INSERT INTO events SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, '2024-01-01' FROM generate_series(1, 300) g;",
    );
    let out = dump(&["--source", &url, "--all"], None);
    let s = sections(&out.stdout);
    // Parallel workers write sections in the order they finish, so sort.
    let mut names: Vec<&str> = s
        .iter()
        .map(|x| x.header["table"]["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["events", "plain"],
        "partitions are never listed as tables"
    );
    let events = s
        .iter()
        .find(|x| x.header["table"]["name"] == "events")
        .unwrap();
    assert_eq!(events.end["rows"], 300);
    assert_eq!(events.rows.len(), 300);
    let notes = events.header["notes"].to_string();
    assert!(notes.contains("partitioned by LIST (region)"), "{notes}");
    drop_database(&url).await;
}

#[tokio::test]
async fn csv_format_writes_one_table() {
    let url = fresh_pg_database(&pg_source_url(), "dump_pg_csv").await;
    psql_exec(&url, "CREATE TABLE t (id int PRIMARY KEY, s text); INSERT INTO t VALUES (1, 'a,b'), (2, NULL), (3, '');");
    let out = dump(&["--source", &url, "--table", "t", "--format", "csv"], None);
    assert_eq!(out.stdout_str(), "id,s\n1,\"a,b\"\n2,\\N\n3,\n");
    drop_database(&url).await;
}

#[tokio::test]
async fn pagila_dumps_with_correct_row_counts() {
    require_datasets!("pg-pagila/pagila-schema.sql", "pg-pagila/pagila-data.sql");
    let url = fresh_pg_database(&pg_source_url(), "dump_pg_pagila").await;
    psql_exec(&url, shared_dataset("pg-pagila/pagila-schema.sql"));
    psql_exec(&url, shared_dataset("pg-pagila/pagila-data.sql"));
    let out = dump(&["--source", &url, "--all", "--jobs", "4"], None);
    let s = sections(&out.stdout);
    let counts: BTreeMap<String, u64> = s
        .iter()
        .map(|x| {
            (
                x.header["table"]["name"].as_str().unwrap().to_string(),
                x.end["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts["payment"], 16049, "payment over all its partitions");
    assert!(
        !counts.keys().any(|k| k.starts_with("payment_p")),
        "partitions are not tables: {counts:?}"
    );
    let expected = [
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
        ("rental", 16044),
        ("staff", 2),
        ("store", 2),
    ];
    for (table, rows) in expected {
        assert_eq!(counts.get(table), Some(&rows), "{table}");
    }
    // Each count agrees with the source itself.
    let client = pg_connect(&url).await;
    for (table, rows) in &counts {
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM public.\"{table}\""), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n as u64, *rows, "{table}");
    }
    let payment = s
        .iter()
        .find(|x| x.header["table"]["name"] == "payment")
        .unwrap();
    let fks: BTreeSet<String> = payment.header["foreign_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["references"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        fks,
        ["customer", "rental", "staff"].map(String::from).into(),
        "partition FKs carried to the parent"
    );
    let actor = s
        .iter()
        .find(|x| x.header["table"]["name"] == "actor")
        .unwrap();
    assert_eq!(actor.header["sequences"][0]["column"], "actor_id");
    assert!(actor.header["sequences"][0]["next_value"]
        .as_str()
        .is_some());
    drop_database(&url).await;
}

/// The first line of the tool's stderr that says "error".
fn error_line(out: &PipeOutcome) -> String {
    out.stderrs[0]
        .lines()
        .find(|l| l.contains("error"))
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn errors_are_clear_and_never_show_the_password() {
    let bad = "postgres://postgres:SuperSecret42@127.0.0.1:1/nowhere";
    let out = run_pipe(
        &[(
            "molt-dump",
            vec!["--source".into(), bad.into(), "--table".into(), "t".into()],
        )],
        None,
        &[],
    );
    assert_eq!(out.statuses, [1]);
    let line = error_line(&out);
    assert!(
        !out.stderrs[0].contains("SuperSecret42"),
        "{}",
        out.stderrs[0]
    );
    assert!(
        line.contains("postgres://postgres:***@127.0.0.1:1/nowhere"),
        "{line}"
    );
    assert!(out.stdout.is_empty());

    let url = fresh_pg_database(&pg_source_url(), "dump_pg_errors").await;
    numbers_table(&url, 10).await;
    let out = run_pipe(
        &[(
            "molt-dump",
            vec![
                "--source".into(),
                url.clone(),
                "--table".into(),
                "public.nope".into(),
            ],
        )],
        None,
        &[],
    );
    assert_eq!(out.statuses, [1]);
    assert!(
        error_line(&out).contains("public.nope does not exist"),
        "{}",
        out.report()
    );
    assert!(
        out.stdout.is_empty(),
        "nothing is written before the failure"
    );

    let out = run_pipe(
        &[(
            "molt-dump",
            vec![
                "--source".into(),
                url.clone(),
                "--table".into(),
                "nums".into(),
                "--filter".into(),
                "no_such_col = 1".into(),
            ],
        )],
        None,
        &[],
    );
    assert_eq!(out.statuses, [1]);
    let line = error_line(&out);
    assert!(
        line.contains("public.nums")
            && line.contains("SQLSTATE 42703")
            && line.contains("no_such_col"),
        "{line}"
    );
    assert_eq!(
        out.stderrs[0].lines().count(),
        1,
        "one line: {}",
        out.stderrs[0]
    );

    let out = run_pipe(
        &[(
            "molt-dump",
            vec![
                "--source".into(),
                url.clone(),
                "--table".into(),
                "nums".into(),
            ],
        )],
        Some(b""),
        &[],
    );
    assert_eq!(out.statuses, [0]);
    let out = run_pipe(
        &[("molt-dump", vec!["--source".into(), url.clone()])],
        Some(b"{\"type\":\"end\"}\n"),
        &[],
    );
    assert_eq!(out.statuses, [1]);
    drop_database(&url).await;
}
