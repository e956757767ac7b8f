//! molt-load against a real target (PostgreSQL standing in for CockroachDB).
//!
//! Streams are written by hand here (StreamWriter + the digest module), so
//! these tests depend only on the stream contract, not on molt-dump. Each
//! test works in its own database and asserts what the target holds.

use molt_core::digest::{DigestColumn, RowHasher, SectionDigest};
use molt_core::stream::{
    self, Column, Record, SectionEnd, Shard, Slice, StreamWriter, TableHeader, TableName,
};
use molt_core::value::LogicalType;
use molt_tests::*;

/// One value of a hand-written row.
#[derive(Clone, Debug)]
enum V {
    Null,
    S(String),
    /// An array, as JSON text.
    A(String),
}

fn s(text: impl Into<String>) -> V {
    V::S(text.into())
}

fn col(name: &str, target_type: &str, logical: LogicalType) -> Column {
    Column {
        name: name.into(),
        source_type: target_type.to_lowercase(),
        target_type: target_type.into(),
        logical,
        array_dims: 0,
        nullable: true,
        pk: None,
        default: None,
        target_default: None,
        enum_type: None,
        domain: None,
        charset: None,
        collation: None,
        generation: None,
        padded: false,
    }
}

fn pk(mut c: Column, pos: u16) -> Column {
    c.pk = Some(pos);
    c.nullable = false;
    c
}

fn header(
    schema: &str,
    name: &str,
    columns: Vec<Column>,
    filter: Option<&str>,
    shard: Shard,
) -> TableHeader {
    let table = TableName::new(schema, name);
    TableHeader {
        table: table.clone(),
        target: None,
        columns,
        slice: Slice {
            phase: filter.map(|_| "p".to_string()).unwrap_or_default(),
            table,
            filter: filter.map(Into::into),
            target_filter: None,
            shard,
        },
        indexes: vec![],
        foreign_keys: vec![],
        checks: vec![],
        sequences: vec![],
        estimated_rows: None,
        notes: vec![],
        checksum: None,
    }
}

/// How to damage a section when writing it.
#[derive(Clone, Copy, PartialEq)]
enum Damage {
    None,
    NoEnd,
    /// The writer itself puts a wrong digest in the end record (its
    /// transport checksum then covers the wrong digest).
    WrongDigest,
    /// The end record's digest is changed after the section was written.
    DigestAltered,
    /// A stream without transport checksums (hand-written), with a wrong
    /// digest.
    WrongDigestNoChecksum,
    /// A malformed line after this many rows.
    MalformedAfter(usize),
}

/// Removes every `"checksum":"..."` field from stream text.
fn strip_checksums(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(",\"checksum\":\"") {
        out.push_str(&rest[..at]);
        let value = &rest[at + ",\"checksum\":\"".len()..];
        rest = &value[value.find('"').unwrap() + 1..];
    }
    out.push_str(rest);
    out
}

/// Writes one section and returns its digest.
fn write_section(
    w: &mut StreamWriter<&mut Vec<u8>>,
    h: &TableHeader,
    rows: &[Vec<V>],
    damage: Damage,
) -> String {
    if matches!(
        damage,
        Damage::DigestAltered | Damage::WrongDigestNoChecksum
    ) {
        let mut written = Vec::new();
        let digest = {
            let mut own = StreamWriter::new(&mut written);
            let digest = write_section(&mut own, h, rows, Damage::None);
            own.flush().unwrap();
            digest
        };
        let wrong = format!(
            "{}{}",
            &digest[..31],
            if digest.ends_with('0') { '1' } else { '0' }
        );
        let mut text = String::from_utf8(written).unwrap().replace(
            &format!("\"digest\":\"{digest}\""),
            &format!("\"digest\":\"{wrong}\""),
        );
        if damage == Damage::WrongDigestNoChecksum {
            text = strip_checksums(&text);
            assert!(!text.contains("checksum"));
        }
        w.raw_lines(text.as_bytes()).unwrap();
        return digest;
    }
    w.record(&Record::Table(Box::new(h.clone()))).unwrap();
    let cols: Vec<DigestColumn> = h.columns.iter().map(DigestColumn::from).collect();
    let mut hasher = RowHasher::default();
    let mut digest = SectionDigest::default();
    for (i, row) in rows.iter().enumerate() {
        if damage == Damage::MalformedAfter(i) {
            w.flush().unwrap();
            w.raw_lines(b"[\"1\", \"oops\n").unwrap();
        }
        let mut b = w.row();
        for (c, v) in cols.iter().zip(row) {
            match v {
                V::Null => {
                    b.null();
                    hasher.value(*c, None);
                }
                V::S(t) => {
                    b.str(t);
                    hasher.value(*c, Some(t));
                }
                V::A(j) => {
                    b.raw_json(j);
                    hasher.value(*c, Some(j));
                }
            }
        }
        b.finish();
        digest.add_row(hasher.finish_row());
    }
    let hex = if damage == Damage::WrongDigest {
        SectionDigest {
            rows: 0,
            sum: digest.sum ^ 1,
        }
        .hex()
    } else {
        digest.hex()
    };
    if damage != Damage::NoEnd {
        let end = SectionEnd {
            table: h.table.clone(),
            shard: h.slice.shard.clone(),
            rows: digest.rows,
            digest: hex,
            changes: vec![],
            checksum: None,
        };
        w.record(&Record::End(end)).unwrap();
    }
    digest.hex()
}

fn stream_of(sections: &[(&TableHeader, &[Vec<V>], Damage)]) -> Vec<u8> {
    let mut buf = Vec::new();
    {
        let mut w = StreamWriter::new(&mut buf);
        w.record(&stream::header("test", None)).unwrap();
        for (h, rows, damage) in sections {
            write_section(&mut w, h, rows, *damage);
        }
        w.record(&stream::close()).unwrap();
        w.flush().unwrap();
    }
    buf
}

fn load(url: &str, input: &[u8], extra: &[&str]) -> PipeOutcome {
    let mut args = vec![
        "--target".to_string(),
        url.to_string(),
        "--quiet".to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    run_pipe(&[("molt-load", args)], Some(input), &[])
}

fn results(out: &PipeOutcome) -> Vec<serde_json::Value> {
    out.records()
        .into_iter()
        .filter(|r| r["type"] == "result")
        .collect()
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

async fn texts(client: &tokio_postgres::Client, sql: &str) -> Vec<Option<String>> {
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn target_db(prefix: &str) -> (String, tokio_postgres::Client) {
    let url = fresh_pg_database(&pg_target_url(), prefix).await;
    let client = pg_connect(&url).await;
    client
        .batch_execute(
            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601'",
        )
        .await
        .unwrap();
    (url, client)
}

fn people_rows(region: &str, ids: std::ops::Range<i64>, note: &str) -> Vec<Vec<V>> {
    ids.map(|i| vec![s(i.to_string()), s(region), s(format!("{note} {i}"))])
        .collect()
}

fn people(filter: Option<&str>) -> TableHeader {
    header(
        "public",
        "people",
        vec![
            pk(col("id", "INT8", LogicalType::Int), 1),
            col("region", "TEXT", LogicalType::Text),
            col("note", "TEXT", LogicalType::Text),
        ],
        filter,
        Shard::whole(),
    )
}

#[tokio::test]
async fn a_two_dimensional_array_is_refused_on_cockroachdb_naming_the_column() {
    let (url, client) = target_db("load_grid").await;
    let mut grid = col("grid", "INT8[][]", LogicalType::Int);
    grid.array_dims = 2;
    let columns = vec![pk(col("id", "INT8", LogicalType::Int), 1), grid];
    let h = header("public", "grid", columns, None, Shard::whole());
    let rows = vec![
        vec![s("1"), V::A("[[1,2],[3,null]]".into())],
        vec![s("2"), V::A("[[null]]".into())],
    ];
    let input = stream_of(&[(&h, &rows, Damage::None)]);
    let out = load(&url, &input, &[]);
    if molt_tests::target_is_cockroach(&client).await {
        out.assert_statuses(&[1]);
        let err = out.stderrs.join("\n");
        assert!(
            err.contains("column grid of public.grid") && err.contains("2-dimensional array"),
            "{err}"
        );
        assert_eq!(
            count(
                &client,
                "SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = 'grid'"
            )
            .await,
            0,
            "nothing is created"
        );
    } else {
        out.assert_success();
        assert_eq!(
            texts(&client, "SELECT grid::text FROM public.grid ORDER BY id").await,
            vec![Some("{{1,2},{3,NULL}}".into()), Some("{{NULL}}".into())]
        );
    }
}

#[tokio::test]
async fn every_type_round_trips_exactly() {
    let (url, client) = target_db("load_types").await;
    let mut enum_col = col("mood", "mood", LogicalType::Enum);
    enum_col.enum_type = Some(stream::EnumType {
        schema: "public".into(),
        name: "mood".into(),
        labels: vec!["ok".into(), "it's \"odd\"".into()],
    });
    let mut tags = col("tags", "TEXT[]", LogicalType::Text);
    tags.array_dims = 1;
    let mut dates = col("dates", "DATE[]", LogicalType::Date);
    dates.array_dims = 1;
    let mut blobs = col("blobs", "BYTEA[]", LogicalType::Bytes);
    blobs.array_dims = 1;
    let columns = vec![
        pk(col("id", "INT8", LogicalType::Int), 1),
        col("b", "BOOL", LogicalType::Bool),
        col("i", "INT8", LogicalType::Int),
        col("d", "DECIMAL", LogicalType::Decimal),
        col("f4", "FLOAT4", LogicalType::Float4),
        col("f8", "FLOAT8", LogicalType::Float8),
        col("t", "TEXT", LogicalType::Text),
        col("by", "BYTEA", LogicalType::Bytes),
        col("dt", "DATE", LogicalType::Date),
        col("tm", "TIME", LogicalType::Time),
        col("ttz", "TIMETZ", LogicalType::Timetz),
        col("ts", "TIMESTAMP", LogicalType::Timestamp),
        col("tstz", "TIMESTAMPTZ", LogicalType::Timestamptz),
        col("iv", "INTERVAL", LogicalType::Interval),
        col("js", "JSONB", LogicalType::Json),
        col("u", "UUID", LogicalType::Uuid),
        col("bits", "VARBIT", LogicalType::Bit),
        enum_col,
        tags,
        dates,
        blobs,
    ];
    let h = header("public", "types", columns, None, Shard::whole());
    let deep_json = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let big: Vec<u8> = (0..5 * 1024 * 1024)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    use base64::Engine as _;
    let big64 = base64::engine::general_purpose::STANDARD.encode(&big);
    // Row 1: edge values; row 2: the other edges; row 3: NULLs everywhere.
    let rows = vec![
        vec![
            s("1"),
            s("true"),
            s("-9223372036854775808"),
            s("NaN"),
            s("NaN"),
            s("-Infinity"),
            s("tab\there\nnew \\ back \"q\" 😀𝄞"),
            V::S(big64.clone()),
            s("0000-01-01"),
            s("24:00:00"),
            s("10:00:00+05:30"),
            s("-0043-03-15 12:00:00"),
            s("0000-06-01 00:00:00Z"),
            s("P1Y2M3DT4H5M6.000007S"),
            V::S(deep_json.clone()),
            s("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            s("0101"),
            s("it's \"odd\""),
            V::A(r#"["a",null,"b,c","q\"x","NULL","","back\\slash","{brace}"," sp "]"#.into()),
            V::A(r#"["0000-01-01","2020-02-29",null]"#.into()),
            V::A(r#"["AAH/",null]"#.into()),
        ],
        vec![
            s("2"),
            s("false"),
            s("9223372036854775807"),
            s("-Infinity"),
            s("Infinity"),
            s("1.7976931348623157e+308"),
            s(""),
            s(""),
            s("infinity"),
            s("13:45:00.5"),
            s("00:00:00-08"),
            s("infinity"),
            s("2024-01-31 10:00:00.123456Z"),
            s("PT-838H-59M-59S"),
            s(r#"{"a": [1, 2.5, {"b": null}], "ü": "\u0001"}"#),
            s("00000000-0000-0000-0000-000000000000"),
            s(""),
            s("ok"),
            V::A("[]".into()),
            V::A("[]".into()),
            V::A("[]".into()),
        ],
        vec![
            s("3"),
            V::Null,
            V::Null,
            s("12.30"),
            s("1.5"),
            s("-0"),
            V::Null,
            V::Null,
            s("-infinity"),
            V::Null,
            V::Null,
            s("-infinity"),
            s("-infinity"),
            s("P-1Y-2M3DT-0.5S"),
            V::Null,
            V::Null,
            V::Null,
            V::Null,
            V::Null,
            V::Null,
            V::Null,
        ],
    ];
    let input = stream_of(&[(&h, &rows, Damage::None)]);
    let out = load(&url, &input, &[]);
    out.assert_success();
    let res = results(&out);
    assert_eq!(res.len(), 1, "{:?}", res);
    assert_eq!(res[0]["rows"], 3);
    assert_eq!(res[0]["status"], "ok");

    let sql = "SELECT ARRAY[id::text, b::text, i::text, d::text, f4::text, f8::text, t, dt::text, tm::text, ttz::text, \
               ts::text, tstz::text, iv::text, js::text, u::text, bits::text, mood::text, tags::text, \
               dates::text, blobs::text] FROM public.types ORDER BY id";
    let got: Vec<Vec<Option<String>>> = client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let o = |x: &str| Some(x.to_string());
    let expected_json_1 = deep_json.clone();
    assert_eq!(
        got[0],
        vec![
            o("1"),
            o("true"),
            o("-9223372036854775808"),
            o("NaN"),
            o("NaN"),
            o("-Infinity"),
            o("tab\there\nnew \\ back \"q\" 😀𝄞"),
            o("0001-01-01 BC"),
            o("24:00:00"),
            o("10:00:00+05:30"),
            o("0044-03-15 12:00:00 BC"),
            o("0001-06-01 00:00:00+00 BC"),
            o("P1Y2M3DT4H5M6.000007S"),
            Some(expected_json_1),
            o("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            o("0101"),
            o("it's \"odd\""),
            o(r#"{a,NULL,"b,c","q\"x","NULL","","back\\slash","{brace}"," sp "}"#),
            o(r#"{"0001-01-01 BC",2020-02-29,NULL}"#),
            o(r#"{"\\x0001ff",NULL}"#),
        ]
    );
    assert_eq!(
        got[1],
        vec![
            o("2"),
            o("false"),
            o("9223372036854775807"),
            o("-Infinity"),
            o("Infinity"),
            o("1.7976931348623157e+308"),
            o(""),
            o("infinity"),
            o("13:45:00.5"),
            o("00:00:00-08"),
            o("infinity"),
            o("2024-01-31 10:00:00.123456+00"),
            o("PT-838H-59M-59S"),
            o(r#"{"a": [1, 2.5, {"b": null}], "ü": "\u0001"}"#),
            o("00000000-0000-0000-0000-000000000000"),
            o(""),
            o("ok"),
            o("{}"),
            o("{}"),
            o("{}"),
        ]
    );
    assert_eq!(
        got[2],
        vec![
            o("3"),
            None,
            None,
            o("12.30"),
            o("1.5"),
            o("-0"),
            None,
            o("-infinity"),
            None,
            None,
            o("-infinity"),
            o("-infinity"),
            o("P-1Y-2M3DT-0.5S"),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ]
    );
    // NULL and the empty string stay apart; bytes come back byte for byte.
    assert_eq!(
        texts(
            &client,
            "SELECT t FROM public.types WHERE id IN (2, 3) ORDER BY id"
        )
        .await,
        vec![o(""), None]
    );
    let by: Vec<Option<Vec<u8>>> = client
        .query("SELECT by FROM public.types ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(by[0].as_deref(), Some(&big[..]));
    assert_eq!(by[1].as_deref(), Some(&[][..]));
    assert_eq!(by[2], None);
    // The ledger recorded the section and the table's header.
    let status = texts(
        &client,
        "SELECT status || ' ' || \"rows\" || ' ' || digest FROM _molt.sections",
    )
    .await;
    assert_eq!(
        status,
        vec![Some(format!(
            "loaded 3 {}",
            res[0]["digest"].as_str().unwrap()
        ))]
    );
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM _molt.tables WHERE header->'table'->>'name' = 'types'"
        )
        .await,
        1
    );
}

/// Every type COPY BINARY is used for, with edge values, loaded once as
/// text and once as binary: the two tables must read back the same, and
/// each result record says which format was used.
#[tokio::test]
async fn binary_copy_loads_the_same_values_as_text() {
    let (url, client) = target_db("load_binary").await;
    let columns = || {
        vec![
            pk(col("id", "INT8", LogicalType::Int), 1),
            col("i2", "INT2", LogicalType::Int),
            col("i4", "INT4", LogicalType::Int),
            col("n", "DECIMAL", LogicalType::Decimal),
            col("n2", "DECIMAL(12,2)", LogicalType::Decimal),
            col("ni", "DECIMAL", LogicalType::Int),
            col("f4", "FLOAT4", LogicalType::Float4),
            col("f8", "FLOAT8", LogicalType::Float8),
            col("t", "TEXT", LogicalType::Text),
            col("vc", "VARCHAR(20)", LogicalType::Text),
            col("c", "CHAR(4)", LogicalType::Text),
            col("b", "BOOL", LogicalType::Bool),
            col("d", "DATE", LogicalType::Date),
            col("ts", "TIMESTAMP", LogicalType::Timestamp),
            col("tz", "TIMESTAMPTZ", LogicalType::Timestamptz),
            col("u", "UUID", LogicalType::Uuid),
            col("j", "JSONB", LogicalType::Json),
            col("by", "BYTEA", LogicalType::Bytes),
        ]
    };
    let deep_json = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let rows: Vec<Vec<V>> = vec![
        vec![
            s("1"),
            s("-32768"),
            s("-2147483648"),
            s("-0.0010"),
            s("-9999999999.99"),
            s("-9223372036854775808"),
            s("NaN"),
            s("-Infinity"),
            s("tab\there\nnew \\ back \"q\" 😀𝄞"),
            s("é"),
            s("ab"),
            s("true"),
            s("0000-01-01"),
            s("-0043-03-15 12:00:00"),
            s("0000-06-01 00:00:00Z"),
            s("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            V::S(deep_json.clone()),
            s("AAH/"),
        ],
        vec![
            s("2"),
            s("32767"),
            s("2147483647"),
            s("12345678901234567890.123456789"),
            s("0.01"),
            s("9223372036854775807"),
            s("3.4028235e38"),
            s("1.7976931348623157e+308"),
            s(""),
            s(""),
            s("abcd"),
            s("false"),
            s("infinity"),
            s("2024-01-01 24:00:00"),
            s("2024-01-31 10:00:00.123456Z"),
            s("00000000-0000-0000-0000-000000000000"),
            s(r#"{"a": [1, 2.50, {"b": null}], "ü": "\u0001"}"#),
            s(""),
        ],
        vec![
            s("3"),
            s("0"),
            s("0"),
            s("0"),
            s("0.00"),
            s("0"),
            s("-0"),
            s("5e-324"),
            V::Null,
            V::Null,
            V::Null,
            V::Null,
            s("-infinity"),
            s("infinity"),
            s("-infinity"),
            V::Null,
            V::Null,
            V::Null,
        ],
        vec![
            s("4"),
            V::Null,
            V::Null,
            s("NaN"),
            V::Null,
            V::Null,
            s("1.5"),
            s("0.1"),
            s("x"),
            V::Null,
            V::Null,
            V::Null,
            s("2020-02-29"),
            s("1999-12-31 23:59:59.999999"),
            s("1970-01-01 00:00:00Z"),
            V::Null,
            s("[]"),
            V::Null,
        ],
    ];
    let mut read_back = Vec::new();
    for format in ["text", "binary"] {
        let h = header(
            "public",
            &format!("{format}_t"),
            columns(),
            None,
            Shard::whole(),
        );
        let out = load(
            &url,
            &stream_of(&[(&h, &rows, Damage::None)]),
            &["--copy-format", format],
        );
        out.assert_success();
        let res = results(&out);
        assert_eq!(res[0]["rows"], 4);
        assert_eq!(res[0]["copy_format"], format, "{res:?}");
        read_back.push(
            texts(
                &client,
                &format!(
                    "SELECT concat_ws('|', id, i2, i4, n, n2, ni, f4, f8, t, vc, c || '.', b, d, ts, tz, u, j, \
                     encode(by, 'hex'), num_nulls(i2, i4, n, n2, ni, f4, f8, t, vc, c, b, d, ts, tz, u, j, by)) \
                     FROM public.{format}_t ORDER BY id"
                ),
            )
            .await,
        );
    }
    assert_eq!(read_back[0], read_back[1]);
    assert!(
        read_back[1][0].as_deref().unwrap().starts_with(
            "1|-32768|-2147483648|-0.0010|-9999999999.99|-9223372036854775808|NaN|-Infinity|tab"
        ),
        "{:?}",
        read_back[1]
    );

    // A value the target refuses is still named by row and key.
    let h = header(
        "public",
        "narrow",
        vec![
            pk(col("id", "INT8", LogicalType::Int), 1),
            col("code", "VARCHAR(3)", LogicalType::Text),
        ],
        None,
        Shard::whole(),
    );
    let narrow: Vec<Vec<V>> = (1..=10)
        .map(|i| {
            vec![
                s(i.to_string()),
                s(if i == 7 {
                    "toolong".into()
                } else {
                    format!("c{i}")
                }),
            ]
        })
        .collect();
    let out = load(
        &url,
        &stream_of(&[(&h, &narrow, Damage::None)]),
        &["--copy-format", "binary", "--batch-rows", "4"],
    );
    assert_eq!(out.statuses, vec![1], "{}", out.report());
    let err = &out.stderrs[0];
    assert!(
        err.contains("row 7 of the section, primary key (id) = (7)"),
        "{err}"
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM public.narrow").await,
        0
    );
}

#[tokio::test]
async fn two_slices_of_one_table_replace_only_their_rows() {
    let (url, client) = target_db("load_slices").await;
    let (a, b) = (people(Some("region = 'A'")), people(Some("region = 'B'")));
    let rows_a = people_rows("A", 0..50, "a");
    let rows_b = people_rows("B", 50..80, "b");
    load(
        &url,
        &stream_of(&[(&a, &rows_a, Damage::None)]),
        &["--batch-rows", "7"],
    )
    .assert_success();
    load(&url, &stream_of(&[(&b, &rows_b, Damage::None)]), &[]).assert_success();
    let summary = "SELECT region || ':' || count(*) || ':' || sum(id) FROM public.people GROUP BY region ORDER BY region";
    let both = vec![Some("A:50:1225".to_string()), Some("B:30:1935".to_string())];
    assert_eq!(texts(&client, summary).await, both);

    // The same slice again: skipped, nothing duplicated.
    let again = load(&url, &stream_of(&[(&a, &rows_a, Damage::None)]), &[]);
    again.assert_success();
    assert_eq!(results(&again)[0]["status"], "skipped");
    assert_eq!(texts(&client, summary).await, both);

    // Forced: reloaded, still no duplicates.
    let forced = load(
        &url,
        &stream_of(&[(&a, &rows_a, Damage::None)]),
        &["--force-reload"],
    );
    forced.assert_success();
    assert_eq!(results(&forced)[0]["status"], "ok");
    assert_eq!(texts(&client, summary).await, both);

    // Changed rows replace the slice: ids 0..10 gone, 100..105 new, notes changed.
    let changed = people_rows("A", 10..50, "a2")
        .into_iter()
        .chain(people_rows("A", 100..105, "a2"))
        .collect::<Vec<_>>();
    let out = load(&url, &stream_of(&[(&a, &changed, Damage::None)]), &[]);
    out.assert_success();
    assert_eq!(results(&out)[0]["status"], "ok");
    assert_eq!(results(&out)[0]["rows"], 45);
    assert_eq!(
        texts(&client, summary).await,
        vec![
            Some(format!(
                "A:45:{}",
                (10..50).sum::<i64>() + (100..105).sum::<i64>()
            )),
            Some("B:30:1935".to_string())
        ]
    );
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM public.people WHERE region = 'A' AND note NOT LIKE 'a2 %'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM public.people WHERE region = 'B' AND note NOT LIKE 'b %'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn shards_replace_only_their_key_range() {
    let (url, client) = target_db("load_shards").await;
    let shard = |i: u32, lower: Option<i64>, upper: Option<i64>| Shard {
        index: i,
        count: 2,
        key: vec!["id".into()],
        lower: lower.map(|l| vec![serde_json::json!(l.to_string())]),
        upper: upper.map(|u| vec![serde_json::json!(u.to_string())]),
    };
    let mut h0 = people(None);
    h0.slice.shard = shard(0, None, Some(100));
    let mut h1 = people(None);
    h1.slice.shard = shard(1, Some(100), None);
    let input = stream_of(&[
        (&h0, &people_rows("A", 0..100, "x"), Damage::None),
        (&h1, &people_rows("A", 100..150, "y"), Damage::None),
    ]);
    load(&url, &input, &[]).assert_success();
    // Shard 1 again with fewer rows: shard 0 untouched.
    load(
        &url,
        &stream_of(&[(&h1, &people_rows("A", 120..130, "z"), Damage::None)]),
        &[],
    )
    .assert_success();
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM public.people WHERE id < 100 AND note LIKE 'x %'"
        )
        .await,
        100
    );
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM public.people WHERE id >= 100"
        )
        .await,
        10
    );
}

async fn assert_torn(damage: Damage, expect_in_error: &str) {
    assert_torn_with(damage, expect_in_error, &[]).await;
}

async fn assert_torn_with(damage: Damage, expect_in_error: &str, args: &[&str]) {
    let (url, client) = target_db("load_torn").await;
    let good = header(
        "public",
        "good",
        vec![
            pk(col("id", "INT8", LogicalType::Int), 1),
            col("v", "TEXT", LogicalType::Text),
        ],
        None,
        Shard::whole(),
    );
    let bad = header(
        "public",
        "bad",
        vec![
            pk(col("id", "INT8", LogicalType::Int), 1),
            col("v", "TEXT", LogicalType::Text),
        ],
        None,
        Shard::whole(),
    );
    let rows: Vec<Vec<V>> = (0..40)
        .map(|i| vec![s(i.to_string()), s(format!("v{i}"))])
        .collect();
    let input = stream_of(&[(&good, &rows, Damage::None), (&bad, &rows, damage)]);
    // Small batches, so that several of the bad section's batches commit
    // before the damage is found.
    let out = load(&url, &input, &[&["--batch-rows", "5"], args].concat());
    assert_eq!(out.statuses, vec![1], "{}", out.report());
    let err = &out.stderrs[0];
    assert!(err.contains("public.bad"), "{err}");
    assert!(err.contains(expect_in_error), "{err}");
    assert!(err.contains("removed from the target"), "{err}");
    assert_eq!(
        count(&client, "SELECT count(*) FROM public.good").await,
        40,
        "the earlier section stays"
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM public.bad").await,
        0,
        "none of the torn section's rows"
    );
    assert_eq!(
        texts(
            &client,
            "SELECT target_table || ':' || status FROM _molt.sections ORDER BY target_table"
        )
        .await,
        vec![
            Some("bad:failed".to_string()),
            Some("good:loaded".to_string())
        ]
    );
    // Only the good section has a result record.
    assert_eq!(results(&out).len(), 1);
}

#[tokio::test]
async fn missing_end_record_leaves_nothing() {
    assert_torn(Damage::NoEnd, "end record is missing").await;
}

#[tokio::test]
async fn digest_changed_in_transit_leaves_nothing() {
    assert_torn(
        Damage::DigestAltered,
        "not byte for byte what the writer wrote",
    )
    .await;
}

#[tokio::test]
async fn wrong_digest_without_checksum_leaves_nothing() {
    assert_torn(
        Damage::WrongDigestNoChecksum,
        "received 40 rows with digest",
    )
    .await;
}

#[tokio::test]
async fn writer_digest_disagreeing_with_its_rows_is_caught_when_recomputing() {
    assert_torn_with(
        Damage::WrongDigest,
        "received 40 rows with digest",
        &["--recompute-digests"],
    )
    .await;
}

#[tokio::test]
async fn malformed_line_leaves_nothing() {
    // Line 1 stream header, 2 good table, 3..42 rows, 43 end, 44 bad table,
    // 45..74 rows, 75 the malformed line.
    assert_torn(Damage::MalformedAfter(30), "line 75").await;
}

#[tokio::test]
async fn table_handling_modes() {
    let (url, client) = target_db("load_handling").await;
    client
        .batch_execute(
            "CREATE TABLE public.people (id INT8 PRIMARY KEY, region TEXT, note TEXT, extra TEXT);
             INSERT INTO public.people VALUES (1000, 'B', 'keep', 'x');",
        )
        .await
        .unwrap();
    let a = people(Some("region = 'A'"));
    let rows = people_rows("A", 0..10, "a");
    // Default: the existing table and its other rows stay.
    load(&url, &stream_of(&[(&a, &rows, Damage::None)]), &[]).assert_success();
    assert_eq!(
        count(&client, "SELECT count(*) FROM public.people").await,
        11
    );
    assert_eq!(
        texts(&client, "SELECT extra FROM public.people WHERE id = 1000").await,
        vec![Some("x".into())]
    );
    // none: fine on an existing table, an error on a missing one.
    load(
        &url,
        &stream_of(&[(&a, &rows, Damage::None)]),
        &["--table-handling", "none", "--force-reload"],
    )
    .assert_success();
    let mut missing = people(None);
    missing.table.name = "nope".into();
    let out = load(
        &url,
        &stream_of(&[(&missing, &rows, Damage::None)]),
        &["--table-handling", "none"],
    );
    assert_eq!(out.statuses, vec![1]);
    assert!(
        out.stderrs[0].contains("public.nope does not exist"),
        "{}",
        out.stderrs[0]
    );
    // A table whose columns do not match: clear error, data untouched.
    client.batch_execute("CREATE TABLE public.other (id INT8 PRIMARY KEY, z TEXT); INSERT INTO public.other VALUES (1, 'z')").await.unwrap();
    let mut other = people(None);
    other.table.name = "other".into();
    let out = load(&url, &stream_of(&[(&other, &rows, Damage::None)]), &[]);
    assert_eq!(out.statuses, vec![1]);
    assert!(
        out.stderrs[0].contains("has no column region, note"),
        "{}",
        out.stderrs[0]
    );
    assert_eq!(count(&client, "SELECT count(*) FROM public.other").await, 1);
    // truncate-if-exists empties the table (other slices too).
    load(
        &url,
        &stream_of(&[(&a, &rows, Damage::None)]),
        &["--table-handling", "truncate-if-exists"],
    )
    .assert_success();
    assert_eq!(
        count(&client, "SELECT count(*) FROM public.people").await,
        10
    );
    // drop-and-recreate: the table is the header's (no `extra` column).
    client
        .batch_execute("INSERT INTO public.people VALUES (1000, 'B', 'keep', 'x')")
        .await
        .unwrap();
    load(
        &url,
        &stream_of(&[(&a, &rows, Damage::None)]),
        &["--table-handling", "drop-and-recreate"],
    )
    .assert_success();
    assert_eq!(
        count(&client, "SELECT count(*) FROM public.people").await,
        10
    );
    assert_eq!(count(&client, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'people' AND column_name = 'extra'").await, 0);
}

#[tokio::test]
async fn parallel_jobs_load_the_same_rows() {
    let mut sections = Vec::new();
    for t in 0..3 {
        for sh in 0..2u32 {
            let mut h = people(None);
            h.table.name = format!("t{t}");
            h.slice.shard = Shard {
                index: sh,
                count: 2,
                key: vec!["id".into()],
                lower: (sh == 1).then(|| vec![serde_json::json!("500")]),
                upper: (sh == 0).then(|| vec![serde_json::json!("500")]),
            };
            let range = if sh == 0 { 0..500 } else { 500..1000 + t * 100 };
            sections.push((h, people_rows(&format!("r{t}"), range, "n")));
        }
    }
    let refs: Vec<(&TableHeader, &[Vec<V>], Damage)> = sections
        .iter()
        .map(|(h, r)| (h, &r[..], Damage::None))
        .collect();
    let input = stream_of(&refs);
    let mut digests = Vec::new();
    let mut contents = Vec::new();
    for jobs in ["1", "4"] {
        let (url, client) = target_db("load_jobs").await;
        let out = load(&url, &input, &["--jobs", jobs, "--batch-rows", "64"]);
        out.assert_success();
        let mut d: Vec<String> = results(&out)
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} {}",
                    r["table"]["name"], r["shard"]["index"], r["rows"], r["digest"]
                )
            })
            .collect();
        d.sort();
        assert_eq!(d.len(), 6);
        digests.push(d);
        let mut c = Vec::new();
        for t in 0..3 {
            c.extend(texts(&client, &format!("SELECT count(*)::text || ' ' || md5(string_agg(p::text, ',' ORDER BY id)) FROM public.t{t} p")).await);
        }
        contents.push(c);
    }
    assert_eq!(digests[0], digests[1]);
    assert_eq!(contents[0], contents[1]);
    assert!(
        contents[0][2].as_deref().unwrap().starts_with("1200 "),
        "{:?}",
        contents[0]
    );
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let (url, client) = target_db("load_dry").await;
    let out = load(
        &url,
        &stream_of(&[(&people(None), &people_rows("A", 0..5, "a"), Damage::None)]),
        &["--dry-run"],
    );
    out.assert_success();
    assert!(
        out.stderrs[0].contains("CREATE TABLE \"public\".\"people\""),
        "{}",
        out.stderrs[0]
    );
    assert!(
        out.stderrs[0].contains("DELETE FROM \"public\".\"people\""),
        "{}",
        out.stderrs[0]
    );
    assert_eq!(results(&out)[0]["status"], "dry-run");
    assert_eq!(count(&client, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'people' OR table_schema = '_molt'").await, 0);
}

#[tokio::test]
async fn killed_connections_are_retried_without_duplicates() {
    let (url, client) = target_db("load_retry").await;
    let db: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    let n = 150_000i64;
    let rows = people_rows("A", 0..n, "r");
    let input = stream_of(&[(&people(None), &rows, Damage::None)]);
    let mut child = std::process::Command::new(bin("molt-load"))
        .args(["--target", &url, "--quiet", "--batch-rows", "1000"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        // Slowly, so that the load is still running when its sessions die.
        for chunk in input.chunks(64 * 1024) {
            if stdin.write_all(chunk).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    });
    // Wait for rows to arrive, then terminate molt-load's sessions three times.
    let mut killed = 0;
    for _ in 0..400 {
        let loaded = client
            .query_one("SELECT count(*) FROM public.people", &[])
            .await
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(0);
        if loaded > 0 && loaded < n {
            let k: i64 = client
                .query_one(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = $1 AND application_name = 'molt-load' AND query LIKE 'COPY%') x",
                    &[&db],
                )
                .await
                .unwrap()
                .get(0);
            killed += k;
            if killed >= 3 {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    feeder.join().unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        killed >= 1,
        "no COPY session was terminated; the test did not exercise retries"
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM public.people").await,
        n
    );
    assert_eq!(
        count(&client, "SELECT count(DISTINCT id) FROM public.people").await,
        n
    );
    assert_eq!(
        count(&client, "SELECT sum(id)::INT8 FROM public.people").await,
        n * (n - 1) / 2
    );
    assert_eq!(
        texts(&client, "SELECT status FROM _molt.sections").await,
        vec![Some("loaded".into())]
    );
}

#[tokio::test]
async fn finalize_creates_deferred_objects_idempotently() {
    let (url, client) = target_db("load_finalize").await;
    let mut parent = header(
        "public",
        "parent",
        vec![
            pk(col("id", "INT8", LogicalType::Int), 1),
            col("code", "TEXT", LogicalType::Text),
        ],
        None,
        Shard::whole(),
    );
    parent.indexes = vec![
        stream::Index {
            name: "parent_code_key".into(),
            columns: vec!["code".into()],
            unique: true,
            constraint: true,
            predicate: None,
            method: None,
            definition: None,
        },
        stream::Index {
            name: "parent_expr".into(),
            columns: vec!["lower(code)".into()],
            unique: false,
            constraint: false,
            predicate: None,
            method: None,
            definition: None,
        },
    ];
    parent.checks = vec![stream::Check {
        name: "code_not_empty".into(),
        expression: "code <> ''".into(),
    }];
    parent.sequences = vec![stream::Sequence {
        name: Some(TableName::new("public", "parent_id_seq")),
        column: "id".into(),
        next_value: Some("3".into()),
    }];
    let mut child = header(
        "public",
        "child",
        vec![
            pk(col("id", "INT8", LogicalType::Int), 1),
            col("parent_id", "INT8", LogicalType::Int),
        ],
        None,
        Shard::whole(),
    );
    child.indexes = vec![stream::Index {
        name: "child_parent_idx".into(),
        columns: vec!["parent_id".into()],
        unique: false,
        constraint: false,
        predicate: None,
        method: None,
        definition: None,
    }];
    child.foreign_keys = vec![stream::ForeignKey {
        name: "child_parent_fk".into(),
        columns: vec!["parent_id".into()],
        references: TableName::new("public", "parent"),
        referenced_columns: vec!["id".into()],
        on_delete: Some("cascade".into()),
        on_update: None,
    }];
    let parents: Vec<Vec<V>> = (1..=10)
        .map(|i| vec![s(i.to_string()), s(format!("c{i}"))])
        .collect();
    let children: Vec<Vec<V>> = (1..=20)
        .map(|i| vec![s(i.to_string()), s(((i % 10) + 1).to_string())])
        .collect();
    // Child first: foreign keys wait for finalize, so order does not matter.
    let input = stream_of(&[
        (&child, &children, Damage::None),
        (&parent, &parents, Damage::None),
    ]);
    let out = load(&url, &input, &["--finalize"]);
    out.assert_success();
    let constraints = "SELECT conname::text FROM pg_constraint WHERE conrelid IN ('public.parent'::regclass, 'public.child'::regclass) ORDER BY 1";
    let expected: Vec<Option<String>> = [
        "child_parent_fk",
        "child_pkey",
        "code_not_empty",
        "parent_code_key",
        "parent_pkey",
    ]
    .iter()
    .map(|s| Some(s.to_string()))
    .collect();
    assert_eq!(texts(&client, constraints).await, expected);
    assert_eq!(count(&client, "SELECT count(*) FROM pg_indexes WHERE indexname IN ('child_parent_idx', 'parent_code_key')").await, 2);
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'parent_expr'"
        )
        .await,
        0,
        "expressions are skipped"
    );
    // The sequence is past the loaded rows and is the column's default.
    assert_eq!(
        count(&client, "SELECT nextval('public.parent_id_seq')").await,
        11
    );
    client
        .batch_execute("INSERT INTO public.parent (code) VALUES ('new')")
        .await
        .unwrap();
    // Again: everything exists already, still success. The parent now holds
    // a row the ledger does not know, so its section is replaced (and says
    // why); the others are skipped.
    let again = load(&url, &input, &["--finalize"]);
    again.assert_success();
    for r in results(&again) {
        if r["table"]["name"] == "parent" {
            assert_eq!(r["status"], "ok", "{r}");
            assert_eq!(
                r["reason"],
                "the ledger has it loaded with 10 rows but the target holds 11 of them",
                "{r}"
            );
        } else {
            assert_eq!(r["status"], "skipped", "{r}");
        }
    }
    assert_eq!(
        count(&client, "SELECT count(*) FROM public.parent").await,
        10
    );
    assert_eq!(texts(&client, constraints).await, expected);
    // A foreign key the rows violate fails finalize, naming it.
    let mut orphan = child.clone();
    orphan.table.name = "orphan".into();
    orphan.foreign_keys[0].name = "orphan_fk".into();
    orphan.indexes.clear();
    let bad = load(
        &url,
        &stream_of(&[(&orphan, &[vec![s("1"), s("999")]], Damage::None)]),
        &["--finalize"],
    );
    assert_eq!(bad.statuses, vec![1]);
    assert!(bad.stderrs[0].contains("orphan_fk"), "{}", bad.stderrs[0]);
}

// ---------------------------------------------------------------------
// Loading a later phase into tables whose foreign keys already exist.
// ---------------------------------------------------------------------

/// The target after phase A was loaded and finalized: customers and orders
/// with a validated foreign key, phase A's rows in both.
async fn finalized_shop(prefix: &str) -> (String, tokio_postgres::Client) {
    let (url, client) = target_db(prefix).await;
    client
        .batch_execute(
            "CREATE TABLE public.customers (id INT8 PRIMARY KEY, region TEXT NOT NULL, name TEXT);
             CREATE TABLE public.orders (id INT8 PRIMARY KEY, customer_id INT8 NOT NULL, region TEXT NOT NULL, note TEXT);
             ALTER TABLE public.orders ADD CONSTRAINT orders_customer_fk
                 FOREIGN KEY (customer_id) REFERENCES public.customers (id);
             INSERT INTO public.customers SELECT g, 'A', 'a' || g FROM generate_series(1, 10) g;
             INSERT INTO public.orders SELECT g, (g % 10) + 1, 'A', 'a' FROM generate_series(1, 30) g;",
        )
        .await
        .unwrap();
    let validated = count(
        &client,
        "SELECT count(*) FROM pg_constraint WHERE conname = 'orders_customer_fk' AND convalidated",
    )
    .await;
    assert_eq!(validated, 1);
    (url, client)
}

fn shop_header(name: &str, columns: Vec<Column>) -> TableHeader {
    let mut h = header(
        "public",
        name,
        columns,
        Some("region = 'B'"),
        Shard::whole(),
    );
    h.slice.phase = "B".into();
    h
}

fn customers_b() -> (TableHeader, Vec<Vec<V>>) {
    let h = shop_header(
        "customers",
        vec![
            pk(col("id", "INT8", LogicalType::Int), 1),
            col("region", "TEXT", LogicalType::Text),
            col("name", "TEXT", LogicalType::Text),
        ],
    );
    let rows = (11..=20)
        .map(|i| vec![s(i.to_string()), s("B"), s(format!("b{i}"))])
        .collect();
    (h, rows)
}

/// Phase B's orders, all referencing phase B's customers.
fn orders_b(note: &str) -> (TableHeader, Vec<Vec<V>>) {
    let h = shop_header(
        "orders",
        vec![
            pk(col("id", "INT8", LogicalType::Int), 1),
            col("customer_id", "INT8", LogicalType::Int),
            col("region", "TEXT", LogicalType::Text),
            col("note", "TEXT", LogicalType::Text),
        ],
    );
    let rows = (100..400)
        .map(|i| {
            vec![
                s(i.to_string()),
                s((11 + i % 10).to_string()),
                s("B"),
                s(note),
            ]
        })
        .collect();
    (h, rows)
}

async fn shop_contents(client: &tokio_postgres::Client) -> Vec<Option<String>> {
    texts(
        client,
        "SELECT (SELECT count(*) FROM public.customers)::text || ' customers, '
             || (SELECT count(*) FROM public.orders)::text || ' orders, '
             || (SELECT string_agg(DISTINCT note, ',') FROM public.orders WHERE region = 'B')",
    )
    .await
}

#[tokio::test]
async fn children_before_parents_load_into_tables_with_foreign_keys() {
    let (url, client) = finalized_shop("load_fk_order").await;
    let (customers, customer_rows) = customers_b();
    let (orders, order_rows) = orders_b("first");
    // The child's section comes first, as a parallel molt-dump may write it.
    let child_first = stream_of(&[
        (&orders, &order_rows, Damage::None),
        (&customers, &customer_rows, Damage::None),
    ]);
    let args = ["--jobs", "4", "--batch-rows", "40"];
    let out = load(&url, &child_first, &args);
    out.assert_success();
    let statuses: Vec<String> = results(&out)
        .iter()
        .map(|r| format!("{} {} {}", r["table"]["name"], r["rows"], r["status"]))
        .collect();
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert!(
        statuses.contains(&"\"orders\" 300 \"ok\"".to_string()),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&"\"customers\" 10 \"ok\"".to_string()),
        "{statuses:?}"
    );
    assert_eq!(
        shop_contents(&client).await,
        vec![Some("20 customers, 330 orders, first".into())]
    );

    // Replacing the slice again: the old orders must go before the old
    // customers can, and the new customers before the new orders.
    let out = load(
        &url,
        &child_first,
        &[&args[..], &["--force-reload"]].concat(),
    );
    out.assert_success();
    assert_eq!(results(&out).len(), 2);
    assert_eq!(
        shop_contents(&client).await,
        vec![Some("20 customers, 330 orders, first".into())]
    );

    // Parents first, with changed rows (replaced through the skip check),
    // one worker: the customers' delete waits for the orders' delete.
    let (orders2, order_rows2) = orders_b("second");
    let parent_first = stream_of(&[
        (&customers, &customer_rows, Damage::None),
        (&orders2, &order_rows2, Damage::None),
    ]);
    for jobs in ["1", "4"] {
        let out = load(&url, &parent_first, &["--jobs", jobs, "--force-reload"]);
        out.assert_success();
        assert_eq!(results(&out).len(), 2);
        assert_eq!(
            shop_contents(&client).await,
            vec![Some("20 customers, 330 orders, second".into())]
        );
    }
    // Unchanged: both skipped.
    let out = load(&url, &parent_first, &args);
    out.assert_success();
    assert!(
        results(&out).iter().all(|r| r["status"] == "skipped"),
        "{:?}",
        results(&out)
    );
    // Phase A's rows were never touched.
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM public.orders WHERE region = 'A' AND note = 'a'"
        )
        .await,
        30
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM pg_constraint WHERE conname = 'orders_customer_fk' AND convalidated").await,
        1
    );
}

#[tokio::test]
async fn orphaned_children_still_fail_with_the_foreign_key_named() {
    let (url, client) = finalized_shop("load_fk_orphan").await;
    // Orders of phase B without their customers anywhere: held back to the
    // end of the stream, then refused by the target's foreign key.
    let (orders, order_rows) = orders_b("x");
    let out = load(
        &url,
        &stream_of(&[(&orders, &order_rows, Damage::None)]),
        &["--jobs", "2"],
    );
    assert!(!out.success(), "{}", out.report());
    let err = out.stderrs[0].clone();
    assert!(err.contains("orders_customer_fk"), "{err}");
    assert!(err.contains("table public.orders"), "{err}");
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM public.orders WHERE region = 'B'"
        )
        .await,
        0
    );
    assert_eq!(
        texts(&client, "SELECT status FROM _molt.sections").await,
        vec![Some("failed".into())]
    );
}

#[tokio::test]
async fn a_stream_torn_in_the_middle_of_a_copy_fails_without_hanging() {
    // One big batch: the first chunks are already streaming into an open
    // COPY when the malformed line arrives, so the COPY must be aborted
    // before the section's rows can be deleted on the same connection.
    let (url, client) = target_db("load_torn_copy").await;
    let h = people(None);
    let rows = people_rows("A", 0..20_000, &"x".repeat(100));
    let input = stream_of(&[(&h, &rows, Damage::MalformedAfter(15_000))]);
    let started = std::time::Instant::now();
    let out = load(&url, &input, &["--batch-rows", "1000000"]);
    assert_eq!(out.statuses, vec![1], "{}", out.report());
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert!(
        out.stderrs[0].contains("removed from the target"),
        "{}",
        out.stderrs[0]
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM public.people").await,
        0
    );
}
