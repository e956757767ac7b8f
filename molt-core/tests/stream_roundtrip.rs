//! The stream format's promises, checked end to end through the real writer
//! and reader: every value case of docs/stream-format.md survives a round
//! trip, and every malformed input is refused with its line number.

use std::io::Cursor;

use molt_core::digest::{DigestColumn, RowHasher, SectionDigest};
use molt_core::stream::{
    Column, Field, Item, Record, SectionEnd, Shard, Slice, StreamReader, StreamWriter, TableHeader,
    TableName,
};
use molt_core::value::LogicalType;
use proptest::prelude::*;

fn column(name: &str, logical: LogicalType, array_dims: u8) -> Column {
    Column {
        name: name.into(),
        source_type: logical.as_str().into(),
        target_type: logical.as_str().into(),
        logical,
        array_dims,
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

fn header(columns: Vec<Column>) -> TableHeader {
    let table = TableName::new("public", "t");
    TableHeader {
        table: table.clone(),
        target: None,
        columns,
        slice: Slice {
            phase: "A".into(),
            table,
            filter: None,
            target_filter: None,
            shard: Shard::whole(),
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

/// A value as written: NULL, a scalar, or an array's JSON text.
#[derive(Clone, Debug, PartialEq)]
enum V {
    Null,
    S(String),
    A(String),
}

/// Writes one section holding `rows` and returns the stream bytes.
fn write_section(columns: &[Column], rows: &[Vec<V>]) -> Vec<u8> {
    let head = header(columns.to_vec());
    let mut writer = StreamWriter::new(Vec::new());
    writer
        .record(&molt_core::stream::header("test", None))
        .unwrap();
    writer
        .record(&Record::Table(Box::new(head.clone())))
        .unwrap();
    let digest_cols: Vec<DigestColumn> = columns.iter().map(DigestColumn::from).collect();
    let mut hasher = RowHasher::default();
    let mut digest = SectionDigest::default();
    for row in rows {
        let mut builder = writer.row();
        for (value, col) in row.iter().zip(&digest_cols) {
            match value {
                V::Null => {
                    builder.null();
                    hasher.value(*col, None);
                }
                V::S(s) => {
                    builder.str(s);
                    hasher.value(*col, Some(s));
                }
                V::A(json) => {
                    builder.raw_json(json);
                    hasher.value(*col, Some(json));
                }
            }
        }
        builder.finish();
        digest.add_row(hasher.finish_row());
    }
    writer
        .record(&Record::End(SectionEnd {
            table: head.table.clone(),
            shard: Shard::whole(),
            rows: digest.rows,
            digest: digest.hex(),
            changes: vec![],
            checksum: None,
        }))
        .unwrap();
    writer.record(&molt_core::stream::close()).unwrap();
    writer.into_inner().unwrap()
}

/// Reads a stream back: the rows of its one section.
fn read_rows(bytes: &[u8]) -> Result<Vec<Vec<V>>, String> {
    let mut reader = StreamReader::new(Cursor::new(bytes));
    let mut rows = Vec::new();
    while let Some(item) = reader.next().map_err(|e| e.to_string())? {
        if let Item::Row(row) = item {
            rows.push(
                row.iter()
                    .map(|f| match f {
                        Field::Null => V::Null,
                        Field::Str(s) => V::S(s.to_string()),
                        Field::Array(a) => V::A(a.to_string()),
                    })
                    .collect(),
            );
        }
    }
    Ok(rows)
}

fn round_trip(logical: LogicalType, values: &[&str]) {
    let cols = vec![column("v", logical, 0)];
    let rows: Vec<Vec<V>> = values.iter().map(|v| vec![V::S(v.to_string())]).collect();
    let bytes = write_section(&cols, &rows);
    assert_eq!(read_rows(&bytes).unwrap(), rows, "{logical}");
}

#[test]
fn null_is_distinct_from_empty_string() {
    let cols = vec![column("v", LogicalType::Text, 0)];
    let rows = vec![vec![V::Null], vec![V::S(String::new())]];
    assert_eq!(read_rows(&write_section(&cols, &rows)).unwrap(), rows);
}

#[test]
fn integers_beyond_2_pow_53_and_unsigned_64() {
    round_trip(
        LogicalType::Int,
        &[
            "9007199254740993",
            "-9223372036854775808",
            "18446744073709551615",
            "0",
        ],
    );
}

#[test]
fn exact_decimals() {
    round_trip(
        LogicalType::Decimal,
        &[
            "12.30",
            "-0.000000000000000000001",
            "123456789012345678901234567890.5",
            "NaN",
            "Infinity",
            "-Infinity",
        ],
    );
}

#[test]
fn floats_including_nan_and_infinities() {
    round_trip(
        LogicalType::Float8,
        &[
            "0.1",
            "1e+308",
            "-2.2250738585072014e-308",
            "NaN",
            "Infinity",
            "-Infinity",
            "-0",
        ],
    );
    round_trip(LogicalType::Float4, &["3.4028235e+38", "1.1754944e-38"]);
}

#[test]
fn bytes_as_base64() {
    round_trip(LogicalType::Bytes, &["", "AA==", "/+8A3q2+7w=="]);
}

#[test]
fn timestamps_with_and_without_zone_at_microseconds() {
    round_trip(
        LogicalType::Timestamp,
        &["2024-02-29 23:59:59.999999", "1970-01-01 00:00:00"],
    );
    round_trip(LogicalType::Timestamptz, &["2024-02-29 23:59:59.000001Z"]);
    round_trip(LogicalType::Time, &["24:00:00", "00:00:00.5"]);
    round_trip(LogicalType::Timetz, &["12:00:00+05:30"]);
}

#[test]
fn dates_outside_the_usual_range() {
    round_trip(
        LogicalType::Date,
        &[
            "0000-01-01",
            "-4712-01-01",
            "294276-12-31",
            "infinity",
            "-infinity",
        ],
    );
    round_trip(
        LogicalType::Timestamp,
        &["-0043-03-15 12:00:00", "infinity", "-infinity"],
    );
}

#[test]
fn intervals() {
    round_trip(
        LogicalType::Interval,
        &[
            "P1Y2M3DT4H5M6.000007S",
            "PT-838H-59M-59S",
            "PT0S",
            "P-1MT-0.5S",
        ],
    );
}

#[test]
fn json_kept_as_json_text() {
    round_trip(
        LogicalType::Json,
        &[
            r#"{"b": [1, 2.50, null], "a": "\u00e9\n"}"#,
            "null",
            "\"\"",
            "12345678901234567890.000",
        ],
    );
}

#[test]
fn arrays_enums_bits_uuids_spatial() {
    let cols = vec![
        column("a", LogicalType::Text, 1),
        column("m", LogicalType::Int, 2),
    ];
    let rows = vec![
        vec![
            V::A(r#"["x",null,"a,b","q\"uote",""]"#.into()),
            V::A(r#"[["1","2"],["3",null]]"#.into()),
        ],
        vec![V::A("[]".into()), V::Null],
    ];
    assert_eq!(read_rows(&write_section(&cols, &rows)).unwrap(), rows);
    round_trip(LogicalType::Enum, &["", "G", "NC-17"]);
    round_trip(
        LogicalType::Bit,
        &[
            "",
            "1",
            "0101010101010101010101010101010101010101010101010101010101010101",
        ],
    );
    round_trip(LogicalType::Uuid, &["123e4567-e89b-12d3-a456-426614174000"]);
    round_trip(
        LogicalType::Geometry,
        &["0101000020E6100000000000000000F03F0000000000000040"],
    );
}

#[test]
fn text_with_every_escape_and_non_bmp_unicode() {
    round_trip(
        LogicalType::Text,
        &["tab\tnl\ncr\rbs\\q\"", "\u{1}\u{1f}\u{7f}", "😀 𝄞 é", "\\N"],
    );
}

proptest! {
    #[test]
    fn any_text_round_trips(values in proptest::collection::vec(proptest::option::of(any::<String>()), 1..6)) {
        let cols: Vec<Column> = (0..values.len()).map(|i| column(&format!("c{i}"), LogicalType::Text, 0)).collect();
        let row: Vec<V> = values.iter().map(|v| v.clone().map_or(V::Null, V::S)).collect();
        let rows = vec![row];
        prop_assert_eq!(read_rows(&write_section(&cols, &rows)).unwrap(), rows);
    }

    #[test]
    fn any_int_round_trips(n in any::<i64>(), u in any::<u64>()) {
        round_trip(LogicalType::Int, &[&n.to_string(), &u.to_string()]);
    }

    #[test]
    fn any_float_round_trips_bit_exact(x in any::<f64>()) {
        let text = if x.is_nan() { "NaN".to_string() } else if x.is_infinite() { if x > 0.0 { "Infinity".into() } else { "-Infinity".into() } } else { format!("{x:e}") };
        let rows = read_rows(&write_section(&[column("f", LogicalType::Float8, 0)], &[vec![V::S(text.clone())]])).unwrap();
        let V::S(back) = &rows[0][0] else { panic!() };
        if !x.is_nan() && !x.is_infinite() {
            prop_assert_eq!(back.parse::<f64>().unwrap().to_bits(), x.to_bits());
        }
    }

    #[test]
    fn reader_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_rows(&bytes);
    }

    #[test]
    fn reader_never_panics_on_mutated_streams(pos in 0usize..400, byte in any::<u8>()) {
        let cols = vec![column("a", LogicalType::Text, 1), column("b", LogicalType::Text, 0)];
        let mut bytes = write_section(&cols, &[vec![V::A(r#"["x",null]"#.into()), V::S("é\"\\".into())]]);
        let at = pos % bytes.len();
        bytes[at] = byte;
        let _ = read_rows(&bytes);
    }
}

fn error_of(text: &str) -> String {
    read_rows(text.as_bytes()).expect_err("must be refused")
}

const HEAD: &str = r#"{"type":"stream","version":"1.0","producer":"test"}"#;
const TABLE: &str = r#"{"type":"table","table":{"schema":"public","name":"t"},"columns":[{"name":"v","source_type":"text","target_type":"TEXT","type":"text","nullable":true}],"slice":{"phase":"","table":{"schema":"public","name":"t"}}}"#;

#[test]
fn malformed_row_names_its_line() {
    let err = error_of(&format!("{HEAD}\n{TABLE}\n[\"a\"]\n[\"b\",]\n"));
    assert!(err.starts_with("line 4: malformed row"), "{err}");
}

#[test]
fn unknown_record_type_names_its_line() {
    let err = error_of(&format!("{HEAD}\n{{\"type\":\"mystery\"}}\n"));
    assert!(
        err.starts_with("line 2: unknown record type \"mystery\""),
        "{err}"
    );
}

#[test]
fn newer_major_version_is_refused() {
    let err = error_of("{\"type\":\"stream\",\"version\":\"2.0\",\"producer\":\"future\"}\n");
    assert!(
        err.starts_with("line 1: stream format version 2.0 is newer"),
        "{err}"
    );
}

#[test]
fn unknown_fields_are_ignored_and_minor_versions_accepted() {
    let text = format!(
        "{{\"type\":\"stream\",\"version\":\"1.7\",\"producer\":\"x\",\"shiny\":1}}\n{}\n[\"a\"]\n{{\"type\":\"end\",\"table\":{{\"schema\":\"public\",\"name\":\"t\"}},\"shard\":{{\"index\":0,\"count\":1}},\"rows\":1,\"digest\":\"{}\",\"extra\":[1]}}\n{{\"type\":\"close\"}}\n",
        TABLE.replace("\"nullable\":true", "\"nullable\":true,\"future_field\":\"x\""),
        {
            let mut h = RowHasher::default();
            h.value(DigestColumn { logical: LogicalType::Text, padded: false, is_array: false }, Some("a"));
            let mut d = SectionDigest::default();
            d.add_row(h.finish_row());
            d.hex()
        }
    );
    assert_eq!(
        read_rows(text.as_bytes()).unwrap(),
        vec![vec![V::S("a".into())]]
    );
}

#[test]
fn a_stream_cut_between_sections_is_refused_from_format_1_1() {
    let cols = vec![column("v", LogicalType::Text, 0)];
    let whole = String::from_utf8(write_section(&cols, &[vec![V::S("a".into())]])).unwrap();
    assert!(
        whole.starts_with("{\"type\":\"stream\",\"version\":\"1.1\""),
        "{whole}"
    );
    assert!(whole.ends_with("{\"type\":\"close\"}\n"), "{whole}");
    assert_eq!(read_rows(whole.as_bytes()).unwrap().len(), 1);

    // Every section is whole, and the close record is gone: cut there.
    let cut = whole.replace("{\"type\":\"close\"}\n", "");
    let err = error_of(&cut);
    assert!(
        err.contains("ended after 1 whole section(s) without its close record"),
        "{err}"
    );
    // Nothing may follow the close record.
    let err = error_of(&format!("{whole}{TABLE}\n"));
    assert!(
        err.contains("data after the stream's close record (line 5)"),
        "{err}"
    );
    // A close record inside a section.
    let err = error_of(&whole.replace("[\"a\"]\n", "[\"a\"]\n{\"type\":\"close\"}\n"));
    assert!(
        err.contains("close record while the section of public.t"),
        "{err}"
    );
    // Format 1.0 streams (molt before the close record) end where they end.
    let old = cut.replace("\"version\":\"1.1\"", "\"version\":\"1.0\"");
    assert_eq!(read_rows(old.as_bytes()).unwrap().len(), 1);
}

#[test]
fn wrong_column_count_truncation_and_digest_mismatch() {
    let err = error_of(&format!("{TABLE}\n[\"a\",\"b\"]\n"));
    assert!(
        err.starts_with("line 2: row has 2 values but table public.t has 1 columns"),
        "{err}"
    );

    let err = error_of(&format!("{TABLE}\n[\"a\"]\n"));
    assert!(err.contains("end record is missing"), "{err}");

    let cols = vec![column("v", LogicalType::Text, 0)];
    let good = String::from_utf8(write_section(&cols, &[vec![V::S("a".into())]])).unwrap();
    let tampered = good.replace("[\"a\"]", "[\"b\"]");
    let err = error_of(&tampered);
    assert!(err.contains("does not match its end record"), "{err}");
    let doubled = good.replace("[\"a\"]\n", "[\"a\"]\n[\"a\"]\n");
    assert!(error_of(&doubled).contains("received 2 rows"));
}

#[test]
fn invalid_utf8_and_rows_outside_sections() {
    let mut bytes = format!("{TABLE}\n[\"").into_bytes();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(b"\"]\n");
    let err = read_rows(&bytes).unwrap_err();
    assert!(err.starts_with("line 2: invalid UTF-8"), "{err}");

    let err = error_of("[\"a\"]\n");
    assert!(err.starts_with("line 1: row outside a section"), "{err}");
}

#[test]
fn overlong_line_is_refused_without_reading_it_whole() {
    let mut reader = StreamReader::with_options(
        std::io::BufReader::with_capacity(1024, std::io::repeat(b'x')),
        molt_core::stream::ReaderOptions {
            max_line_bytes: 1 << 20,
            ..Default::default()
        },
    );
    let err = reader.next().unwrap_err().to_string();
    assert!(
        err.contains("longer than the limit of 1048576 bytes"),
        "{err}"
    );
}
