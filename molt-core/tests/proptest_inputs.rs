//! The parsers of outside input, property-tested in CI: the same entry points
//! that `fuzz/` fuzzes for longer (scripts/fuzz.sh), with a short run here.
//!
//! For each one, arbitrary input never panics (an `Err` is fine); and some
//! round trips that can fail: rows written by the stream writer come back
//! identical through the stream reader and through CSV, a URL's redaction
//! hides the password from every driver's parser, and canonical forms are
//! fixed points. The phase plan parser lives in molt-slice and is tested
//! there (molt-slice/tests/proptest_plan.rs).

use molt_core::connect::{mysql_opts, postgres_config, split_tls_params};
use molt_core::digest::{DigestColumn, RowHasher, SectionDigest};
use molt_core::mysql::typemap::TypeMap;
use molt_core::stream::csv::{CsvReader, CsvWriter};
use molt_core::stream::{
    Column, Item, ReaderOptions, Record, SectionEnd, Shard, Slice, StreamReader, StreamWriter,
    TableHeader, TableName,
};
use molt_core::url::redact_text;
use molt_core::value::{canonical, canonical_array, canonical_json, Interval, LogicalType};
use molt_core::ConnUrl;
use proptest::prelude::*;

/// Cases per property: the whole file runs in a few seconds in release.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 1024,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const TYPES: [LogicalType; 18] = [
    LogicalType::Bool,
    LogicalType::Int,
    LogicalType::Decimal,
    LogicalType::Float4,
    LogicalType::Float8,
    LogicalType::Text,
    LogicalType::Bytes,
    LogicalType::Date,
    LogicalType::Time,
    LogicalType::Timetz,
    LogicalType::Timestamp,
    LogicalType::Timestamptz,
    LogicalType::Interval,
    LogicalType::Json,
    LogicalType::Uuid,
    LogicalType::Bit,
    LogicalType::Enum,
    LogicalType::Geometry,
];

fn text_column(name: String) -> Column {
    Column {
        name,
        source_type: "text".into(),
        target_type: "STRING".into(),
        logical: LogicalType::Text,
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

type Row = Vec<Option<String>>;

/// One section of text columns, written with [`StreamWriter`] and its
/// [`molt_core::stream::RowBuilder`], with the digest computed alongside.
fn write_stream(columns: usize, rows: &[Row]) -> Vec<u8> {
    let head = header((0..columns).map(|i| text_column(format!("c{i}"))).collect());
    let digest_cols: Vec<DigestColumn> = head.columns.iter().map(DigestColumn::from).collect();
    let mut writer = StreamWriter::new(Vec::new());
    writer
        .record(&molt_core::stream::header("proptest", None))
        .unwrap();
    writer
        .record(&Record::Table(Box::new(head.clone())))
        .unwrap();
    let mut hasher = RowHasher::default();
    let mut digest = SectionDigest::default();
    for row in rows {
        let mut builder = writer.row();
        for (value, column) in row.iter().zip(&digest_cols) {
            match value {
                None => builder.null(),
                Some(text) => builder.str(text),
            };
            hasher.value(*column, value.as_deref());
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

/// Reads the rows of a stream back, digests recomputed, writing them as
/// CSV with [`CsvWriter`] on the way: the rows, and the CSV.
fn read_stream(bytes: &[u8], columns: usize) -> Result<(Vec<Row>, Vec<u8>), String> {
    let options = ReaderOptions {
        recompute_digests: true,
        ..ReaderOptions::default()
    };
    let mut reader = StreamReader::with_options(bytes, options);
    let names: Vec<String> = (0..columns).map(|i| format!("c{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut rows = Vec::new();
    let mut out = Vec::new();
    {
        let mut csv = CsvWriter::new(&mut out, &names).map_err(|e| e.to_string())?;
        while let Some(item) = reader.next().map_err(|e| e.to_string())? {
            if let Item::Row(row) = item {
                rows.push(
                    row.iter()
                        .map(|f| f.as_text().map(str::to_string))
                        .collect(),
                );
                csv.write_row(row).map_err(|e| e.to_string())?;
            }
        }
        csv.flush().map_err(|e| e.to_string())?;
    }
    Ok((rows, out))
}

fn read_csv(bytes: &[u8]) -> Result<(Vec<String>, Vec<Row>), String> {
    let mut reader = CsvReader::new(bytes).map_err(|e| e.to_string())?;
    let headers = reader.headers().to_vec();
    let mut rows = Vec::new();
    while let Some(row) = reader.next_row().map_err(|e| e.to_string())? {
        rows.push(
            row.iter()
                .map(|f| f.as_text().map(str::to_string))
                .collect(),
        );
    }
    Ok((headers, rows))
}

/// Rows of 1 to 4 columns, values from any Unicode text or NULL, with the
/// characters that need escaping in JSON and quoting in CSV made likely.
fn rows() -> impl Strategy<Value = (usize, Vec<Row>)> {
    let value = proptest::option::weighted(
        0.8,
        prop_oneof![
            any::<String>(),
            "[\"\\\\,\n\r\t\u{1}N a\u{e9}\u{1F600}]{0,12}",
        ],
    );
    (1usize..5).prop_flat_map(move |n| {
        let row = proptest::collection::vec(value.clone(), n);
        (Just(n), proptest::collection::vec(row, 0..6))
    })
}

/// A password of any printable ASCII, percent-encoded as RFC 3986 wants
/// in the userinfo.
fn encode_userinfo(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a driver would take as the password of `url`: tokio-postgres's
/// own URL parser, and the `url` crate's (which mysql_async uses).
fn driver_passwords(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(config) = url.parse::<tokio_postgres::Config>() {
        if let Some(p) = config.get_password() {
            out.push(String::from_utf8_lossy(p).into_owned());
        }
    }
    if let Ok(parsed) = url::Url::parse(url) {
        if let Some(p) = parsed.password() {
            out.push(p.to_string());
        }
    }
    out
}

proptest! {
    #![proptest_config(config())]

    // ---- arbitrary input never panics --------------------------------

    #[test]
    fn stream_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for options in [
            ReaderOptions::default(),
            ReaderOptions { max_line_bytes: 16, check_digests: false, recompute_digests: false },
        ] {
            let mut reader = StreamReader::with_options(bytes.as_slice(), options);
            while let Ok(Some(_)) = reader.next() {}
        }
    }

    #[test]
    fn stream_reader_never_panics_on_stream_like_lines(
        lines in proptest::collection::vec(
            prop_oneof![
                Just(r#"{"type":"stream","version":"1.0","producer":"p"}"#.to_string()),
                "\\[(\"[a-z\\\\\"]{0,4}\"|null|-?[0-9]{1,3}(\\.[0-9])?|true|\\[\"x\"\\]|,| ){0,6}\\]?",
                "\\{\"type\":\"(table|end|stream|slice|x)\"[ -~]{0,40}\\}?",
            ],
            0..8,
        )
    ) {
        let text = lines.join("\n");
        let mut reader = StreamReader::new(text.as_bytes());
        while let Ok(Some(_)) = reader.next() {}
    }

    #[test]
    fn csv_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(mut reader) = CsvReader::new(bytes.as_slice()) {
            while let Ok(Some(_)) = reader.next_row() {}
        }
    }

    #[test]
    fn url_parsing_never_panics(
        scheme in "(postgres|postgresql|cockroachdb|mysql|mariadb|oracle|ftp)://",
        rest in "[a-z0-9:@/?&=%#. \\[\\]_-]{0,60}",
    ) {
        let text = format!("{scheme}{rest}");
        let _ = redact_text(&text);
        if let Ok(url) = ConnUrl::parse(&text) {
            let _ = url.parsed();
            let _ = split_tls_params(&url);
            let _ = postgres_config(&url, "proptest");
            let _ = mysql_opts(&url);
            let _ = molt_core::oracle::params::connect_params(&url);
        }
    }

    #[test]
    fn redaction_never_panics(text in any::<String>()) {
        let _ = redact_text(&text);
    }

    #[test]
    fn type_map_parser_never_panics(text in any::<String>(), entry in "\\[\\[column\\]\\]\n(table|column|target_type|nullable|x) = (\"[a-z.*]{0,5}\"|true|1)\n") {
        for json in [false, true] {
            let _ = TypeMap::parse(&text, "t", json);
            let _ = TypeMap::parse(&format!("{entry}{text}"), "t", json);
            if let Ok(map) = TypeMap::parse(&entry, "t", json) {
                let _ = map.find("db", "t", "c");
            }
        }
    }

    #[test]
    fn canonical_decoders_never_panic(ty in 0usize..TYPES.len(), padded in any::<bool>(), text in any::<String>()) {
        let ty = TYPES[ty];
        let _ = canonical(ty, padded, &text);
        let _ = canonical_array(ty, padded, &text);
        let _ = canonical_json(&text);
        let _ = Interval::parse_iso(&text);
        let _ = molt_core::value::era::from_pg_era(&text);
        let _ = molt_core::value::era::to_pg_era(&text);
    }

    #[test]
    fn numeric_and_interval_edge_values_never_panic(
        mantissa in "-?[0-9]{0,3}(\\.[0-9]{0,3})?",
        exp in any::<i64>(),
        n in any::<i64>(),
        designator in "[YMWDHS]",
    ) {
        for ty in [LogicalType::Decimal, LogicalType::Int, LogicalType::Float8] {
            let _ = canonical(ty, false, &format!("{mantissa}e{exp}"));
        }
        let _ = Interval::parse_iso(&format!("-P{n}{designator}"));
        let _ = Interval::parse_iso(&format!("-PT{n}{designator}"));
        let _ = molt_core::value::era::from_pg_era(&format!("{n}-01-01 BC"));
        let _ = molt_core::value::era::to_pg_era(&format!("{n}-01-01"));
    }

    // ---- round trips ---------------------------------------------------

    /// Rows written with StreamWriter and RowBuilder are read back
    /// identically by StreamReader (digest recomputed), and again through
    /// CsvWriter and CsvReader.
    #[test]
    fn rows_round_trip_through_the_stream_and_csv((columns, rows) in rows()) {
        let stream = write_stream(columns, &rows);
        let (back, csv) = read_stream(&stream, columns).map_err(TestCaseError::fail)?;
        prop_assert_eq!(&back, &rows);
        let (headers, from_csv) = read_csv(&csv).map_err(TestCaseError::fail)?;
        prop_assert_eq!(headers.len(), columns);
        prop_assert_eq!(&from_csv, &rows);
    }

    /// A URL's redaction never contains the password, and no driver
    /// parsing the redacted URL finds one but `***`.
    #[test]
    fn redaction_hides_the_password(
        scheme in "(postgres|postgresql|mysql|oracle)",
        user in "[a-z][a-z0-9_]{0,8}",
        password in "[ -~]{1,24}",
        host in "[a-z]{1,8}(:[0-9]{1,5})?",
        query in "(\\?sslmode=require|\\?application_name=a:b@c|)",
    ) {
        let encoded = encode_userinfo(&password);
        let raw = format!("{scheme}://{user}:{encoded}@{host}/db{query}");
        let url = ConnUrl::parse(&raw).unwrap();
        let shown = url.redacted();
        prop_assert_eq!(&shown, &format!("{scheme}://{user}:***@{host}/db{query}"));
        prop_assert_eq!(url.to_string(), shown.clone());
        prop_assert_eq!(format!("{:?}", url), format!("ConnUrl({})", shown));
        for p in driver_passwords(&shown) {
            prop_assert_eq!(p, "***");
        }
        // The same in a free text, as driver errors echo their input.
        let message = format!("error connecting to {raw}: refused");
        let red = redact_text(&message);
        prop_assert_eq!(red, format!("error connecting to {shown}: refused"));
    }

    /// The password as a user may type it, not percent-encoded: whatever
    /// the drivers make of the URL, the redacted URL gives them no password
    /// but `***`.
    #[test]
    fn redaction_hides_an_unencoded_password(
        user in "[a-z]{1,6}",
        password in "[a-zA-Z0-9/?#: %]{1,16}",
        host in "[a-z]{1,8}",
        tail in "(/db|/db\\?sslmode=disable|)",
    ) {
        let raw = format!("postgres://{user}:{password}@{host}{tail}");
        let Ok(url) = ConnUrl::parse(&raw) else { return Ok(()) };
        let shown = url.redacted();
        for p in driver_passwords(&shown) {
            prop_assert_eq!(&p, "***", "{} redacted to {}", raw, shown);
        }
    }

    /// Canonical forms are fixed points, and ISO intervals read back.
    #[test]
    fn canonical_forms_are_fixed_points(
        ty in prop_oneof![
            Just(LogicalType::Bool), Just(LogicalType::Int), Just(LogicalType::Decimal),
            Just(LogicalType::Float4), Just(LogicalType::Float8), Just(LogicalType::Json),
            Just(LogicalType::Interval), Just(LogicalType::Uuid), Just(LogicalType::Text),
        ],
        padded in any::<bool>(),
        text in prop_oneof![
            any::<String>(),
            "[-+]?[0-9]{0,4}(\\.[0-9]{0,4})?([eE][-+]?[0-9]{1,3})?",
            "-?P([0-9]{1,3}[YMWD]){0,3}(T([-0-9]{1,4}[HM]){0,2}([-0-9.]{1,6}S)?)?",
            "\\{(\"[ab]\":(1|1\\.0|\"x\"|\\[\\]|null),?){0,3}\\}",
        ],
    ) {
        let once = canonical(ty, padded, &text).into_owned();
        let twice = canonical(ty, padded, &once).into_owned();
        prop_assert_eq!(&once, &twice, "{} of {:?}", ty, text);
        if let Some(iv) = Interval::parse_iso(&text) {
            prop_assert_eq!(Interval::parse_iso(&iv.to_iso()), Some(iv));
        }
    }

    #[test]
    fn intervals_round_trip(months in any::<i64>(), days in any::<i64>(), micros in any::<i64>()) {
        let iv = Interval { months, days, micros };
        prop_assert_eq!(Interval::parse_iso(&iv.to_iso()), Some(iv));
    }
}

/// Found by fuzzing: a shard index of u32::MAX read from a stream
/// overflowed when an error message printed it.
#[test]
fn the_largest_shard_index_prints() {
    let shard = Shard {
        index: u32::MAX,
        ..Shard::whole()
    };
    assert_eq!(shard.to_string(), "4294967296/1");
}
