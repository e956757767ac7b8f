//! MySQL/MariaDB as a molt-dump source, against a real server
//! (`MOLT_TEST_MYSQL_SOURCE`): Sakila end to end, a type matrix with edge
//! values, and bad input (zero dates, invalid charset bytes, no primary key).
//!
//! The core is driven directly (`molt_core::mysql::dump::dump_all` into a
//! buffer) and the stream is read back with `StreamReader`, which re-checks
//! every section's row count and digest.

use std::io::Write;
use std::sync::{Arc, Mutex};

use molt_core::mysql::{self, DumpOptions, ZeroDates};
use molt_core::stream::{
    Field, Item, Record, SectionEnd, Slice, StreamReader, TableHeader, TableName,
};
use molt_tests::*;
use mysql_async::prelude::Queryable;

/// A `Write` whose bytes the test can take back after the dump.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A dumped stream, read back and checked.
#[derive(Default)]
struct Dumped {
    headers: Vec<TableHeader>,
    ends: Vec<SectionEnd>,
    notices: Vec<String>,
    position: Option<String>,
    /// Rows by table name, values as text (`None` is NULL).
    rows: std::collections::BTreeMap<String, Vec<Vec<Option<String>>>>,
}

impl Dumped {
    fn header(&self, table: &str) -> &TableHeader {
        self.headers
            .iter()
            .find(|h| h.table.name == table)
            .unwrap_or_else(|| panic!("no section for {table}"))
    }
    fn end(&self, table: &str) -> &SectionEnd {
        self.ends
            .iter()
            .find(|e| e.table.name == table)
            .unwrap_or_else(|| panic!("no end for {table}"))
    }
    fn column(&self, table: &str, row_key: &str, column: &str) -> Option<String> {
        let h = self.header(table);
        let i = h
            .columns
            .iter()
            .position(|c| c.name == column)
            .unwrap_or_else(|| panic!("no column {column}"));
        let row = self.rows[table]
            .iter()
            .find(|r| r[0].as_deref() == Some(row_key))
            .unwrap_or_else(|| panic!("no row {row_key} in {table}"));
        row[i].clone()
    }
}

fn read_stream(bytes: &[u8]) -> Dumped {
    let mut reader = StreamReader::new(bytes);
    let mut d = Dumped::default();
    let mut current = String::new();
    while let Some(item) = reader
        .next()
        .unwrap_or_else(|e| panic!("stream does not check: {e}"))
    {
        match item {
            Item::Record(Record::Stream(h)) => d.position = h.source.and_then(|s| s.position),
            Item::Record(Record::Table(h)) => {
                current = h.table.name.clone();
                d.rows.entry(current.clone()).or_default();
                d.headers.push(*h);
            }
            Item::Record(Record::End(e)) => d.ends.push(e),
            Item::Record(Record::Notice(n)) => d.notices.push(n.message),
            Item::Record(_) => {}
            Item::Row(row) => {
                let values = row
                    .iter()
                    .map(|f: Field<'_>| f.as_text().map(str::to_string))
                    .collect();
                d.rows.get_mut(&current).unwrap().push(values);
            }
        }
    }
    d
}

async fn dump(
    url: &str,
    options: &DumpOptions,
    slices: Vec<Slice>,
    jobs: usize,
) -> Result<Dumped, mysql::MysqlError> {
    let opts = mysql::opts(&molt_core::ConnUrl::parse(url).unwrap())?;
    let buf = SharedBuf::default();
    mysql::dump::dump_all(
        &opts,
        &redact(url),
        options,
        slices,
        jobs,
        4 << 20,
        buf.clone(),
    )
    .await?;
    let bytes = buf.0.lock().unwrap().clone();
    Ok(read_stream(&bytes))
}

fn whole(db_url: &str, table: &str) -> Slice {
    let db = db_url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    Slice {
        phase: String::new(),
        table: TableName::new(db, table),
        filter: None,
        target_filter: None,
        shard: molt_core::stream::Shard::whole(),
    }
}

/// Sakila's scripts with their `CREATE SCHEMA sakila; USE sakila;` taken
/// out, so they load into the test's own database. Bytes, not text: the
/// data file is not UTF-8.
fn sakila_script(name: &str) -> tempfile::NamedTempFile {
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
        // actor_info names its tables `sakila.actor`...
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sakila_dumps_every_table_with_matching_counts() {
    require_datasets!(
        "mysql-sakila-official/sakila-schema.sql",
        "mysql-sakila-official/sakila-data.sql"
    );
    let url = fresh_mysql_database(&mysql_source_url(), "dump_sakila").await;
    mysql_exec(&url, sakila_script("sakila-schema.sql").path());
    mysql_exec(&url, sakila_script("sakila-data.sql").path());

    let d = dump(&url, &DumpOptions::default(), Vec::new(), 4)
        .await
        .expect("sakila dumps");
    let mut conn = mysql_connect(&url).await;
    assert_eq!(
        d.headers.len(),
        16,
        "16 base tables: {:?}",
        d.headers.iter().map(|h| &h.table.name).collect::<Vec<_>>()
    );
    for h in &d.headers {
        let count: u64 = conn
            .query_first(format!("SELECT COUNT(*) FROM `{}`", h.table.name))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.end(&h.table.name).rows, count, "{}", h.table.name);
        assert_eq!(d.rows[&h.table.name].len() as u64, count);
    }
    assert_eq!(d.end("payment").rows, 16049);
    assert_eq!(d.end("rental").rows, 16044);
    assert_eq!(d.end("film").rows, 1000);

    // Views, triggers and routines are reported, not fatal.
    for object in ["view", "trigger", "procedure", "function"] {
        assert!(
            d.notices
                .iter()
                .any(|n| n.starts_with(object) && n.contains("not migrated")),
            "{object}: {:?}",
            d.notices
        );
    }
    assert!(d
        .notices
        .iter()
        .any(|n| n.contains(".actor_info not migrated")));

    // ENUM, SET, YEAR, unsigned, TIMESTAMP ON UPDATE, the BLOB picture.
    let film = d.header("film");
    let rating = film.columns.iter().find(|c| c.name == "rating").unwrap();
    assert_eq!(
        rating.enum_type.as_ref().unwrap().labels,
        vec!["", "G", "PG", "PG-13", "R", "NC-17"]
    );
    assert_eq!(rating.enum_type.as_ref().unwrap().name, "film_rating");
    let features = film
        .columns
        .iter()
        .find(|c| c.name == "special_features")
        .unwrap();
    assert_eq!(
        (features.target_type.as_str(), features.array_dims),
        ("TEXT[]", 1)
    );
    assert_eq!(
        d.column("film", "1", "special_features").as_deref(),
        Some(r#"["Deleted Scenes","Behind the Scenes"]"#)
    );
    assert_eq!(
        d.column("film", "1", "release_year").as_deref(),
        Some("2006")
    );
    assert_eq!(d.column("film", "1", "rating").as_deref(), Some("PG"));
    let film_id = film.columns.iter().find(|c| c.name == "film_id").unwrap();
    assert_eq!(
        (film_id.target_type.as_str(), film_id.pk),
        ("INT4", Some(1))
    );
    assert_eq!(film.sequences[0].next_value.as_deref(), Some("1001"));
    let last_update = film
        .columns
        .iter()
        .find(|c| c.name == "last_update")
        .unwrap();
    assert_eq!(last_update.target_type, "TIMESTAMPTZ(0)");
    assert_eq!(
        d.column("film", "1", "last_update").as_deref(),
        Some("2006-02-15 05:03:42Z")
    );
    let staff = d.header("staff");
    assert_eq!(
        staff
            .columns
            .iter()
            .find(|c| c.name == "picture")
            .unwrap()
            .target_type,
        "BYTEA"
    );
    let pic = d
        .column("staff", "1", "picture")
        .expect("Mike has a picture");
    let bytes: u64 = conn
        .query_first("SELECT LENGTH(picture) FROM staff WHERE staff_id = 1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(base64_len(&pic), bytes);
    assert_eq!(d.header("payment").foreign_keys.len(), 3);
    assert!(d
        .header("film_text")
        .indexes
        .iter()
        .any(|i| i.method.as_deref() == Some("fulltext")));

    // The binaries end to end: molt-dump | molt-load into a fresh target.
    let target = fresh_pg_database(&pg_target_url(), "load_sakila_mysql").await;
    let out = run_pipe(
        &[
            (
                "molt-dump",
                vec![
                    "--source".into(),
                    url.clone(),
                    "--all".into(),
                    "--jobs".into(),
                    "3".into(),
                    "-q".into(),
                ],
            ),
            (
                "molt-load",
                vec![
                    "--target".into(),
                    target.clone(),
                    "--table-handling".into(),
                    "create-if-missing".into(),
                    "--finalize".into(),
                ],
            ),
        ],
        None,
        &[],
    );
    out.assert_success();
    let pg = pg_connect(&target).await;
    // MySQL index names are per table, PostgreSQL's per schema: the names
    // Sakila gives several tables get the table's name in front.
    let indexes: Vec<String> = pg
        .query(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' \
             AND indexname LIKE '%idx_fk_film_id' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        indexes,
        ["film_actor_idx_fk_film_id", "inventory_idx_fk_film_id"]
    );
    let fks: i64 = pg
        .query_one(
            "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
             WHERE n.nspname = 'public' AND c.contype = 'f' AND c.convalidated",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(fks, 22, "Sakila's foreign keys, created and validated");
    for (table, expected) in [
        ("payment", 16049i64),
        ("rental", 16044),
        ("film", 1000),
        ("film_actor", 5462),
    ] {
        let n: i64 = pg
            .query_one(&format!("SELECT count(*) FROM public.{table}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, expected, "{table} on the target");
    }
}

fn base64_len(b64: &str) -> u64 {
    let pad = b64.bytes().rev().take_while(|b| *b == b'=').count() as u64;
    b64.len() as u64 / 4 * 3 - pad
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_matrix_edge_values_are_exact() {
    let url = fresh_mysql_database(&mysql_source_url(), "dump_types").await;
    {
        let mut root = mysql_connect(&mysql_source_url()).await;
        let packet: u64 = root
            .query_first("SELECT @@GLOBAL.max_allowed_packet")
            .await
            .unwrap()
            .unwrap();
        if packet < 64 << 20 {
            root.query_drop("SET GLOBAL max_allowed_packet = 67108864")
                .await
                .expect("raising max_allowed_packet");
        }
    }
    mysql_exec(
        &url,
        r#"
        CREATE TABLE matrix (
          id INT PRIMARY KEY,
          ti TINYINT, tb TINYINT(1), si SMALLINT UNSIGNED, mi MEDIUMINT, i INT, iu INT UNSIGNED,
          bi BIGINT, bu BIGINT UNSIGNED, b1 BIT(1), b64 BIT(64),
          d DECIMAL(30,10), f FLOAT, db DOUBLE,
          c CHAR(5), vc VARCHAR(20), t TEXT, l1 VARCHAR(10) CHARACTER SET latin1,
          bin BINARY(4), vb VARBINARY(10), lb LONGBLOB,
          dt DATE, dtm DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME(6), yr YEAR,
          e ENUM('small','big'), s SET('a','b','c'), j JSON, g POINT,
          gen INT AS (i * 2) STORED
        );
        SET SESSION sql_mode = '';
        INSERT INTO matrix (id, ti, tb, si, mi, i, iu, bi, bu, b1, b64, d, f, db, c, vc, t, l1, bin, vb, lb,
                            dt, dtm, ts, tm, yr, e, s, j, g) VALUES
          (1, -128, 1, 65535, -8388608, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
           b'1', b'1111111111111111111111111111111111111111111111111111111111111111',
           '-12345678901234567890.0123456789', 1.2345678, 0.1, 'ab', 'x😀y', 'line\nbreak "q"', 'café',
           x'00010203', x'ff', REPEAT('z', 16777216),
           '1000-01-01', '2024-02-29 23:59:59.123456', '2038-01-19 03:14:07.999', '-838:59:59.000000', 2155,
           'big', 'a,c', '{"k": [1, 2.5, "s"]}', ST_GeomFromText('POINT(1 2)')),
          (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, '838:59:59.000000', NULL, 'nope', '', NULL, NULL);
        "#,
    );
    let d = dump(
        &url,
        &DumpOptions::default(),
        vec![whole(&url, "matrix")],
        1,
    )
    .await
    .expect("matrix dumps");
    let v = |row: &str, col: &str| d.column("matrix", row, col);
    let h = d.header("matrix");
    let ty = |col: &str| {
        h.columns
            .iter()
            .find(|c| c.name == col)
            .unwrap()
            .target_type
            .clone()
    };
    assert_eq!(ty("tb"), "INT2");
    assert_eq!(ty("iu"), "INT8");
    assert_eq!(ty("bu"), "DECIMAL(20,0)");
    assert_eq!(ty("b64"), "BIT(64)");
    assert_eq!(ty("tm"), "INTERVAL");
    assert_eq!(ty("dtm"), "TIMESTAMP(6)");
    assert_eq!(ty("ts"), "TIMESTAMPTZ(3)");
    assert_eq!(ty("j"), "JSONB");
    assert_eq!(ty("g"), "GEOMETRY");
    assert_eq!(ty("c"), "CHAR(5)");
    assert!(matches!(
        h.columns
            .iter()
            .find(|c| c.name == "gen")
            .unwrap()
            .generation,
        Some(molt_core::stream::Generation::Generated { stored: true, .. })
    ));
    assert_eq!(v("1", "ti").as_deref(), Some("-128"));
    assert_eq!(v("1", "tb").as_deref(), Some("1"));
    assert_eq!(v("1", "si").as_deref(), Some("65535"));
    assert_eq!(v("1", "iu").as_deref(), Some("4294967295"));
    assert_eq!(v("1", "bi").as_deref(), Some("-9223372036854775808"));
    assert_eq!(v("1", "bu").as_deref(), Some("18446744073709551615"));
    assert_eq!(v("1", "b1").as_deref(), Some("1"));
    assert_eq!(v("1", "b64"), Some("1".repeat(64)));
    assert_eq!(
        v("1", "d").as_deref(),
        Some("-12345678901234567890.0123456789")
    );
    assert_eq!(v("1", "f").as_deref(), Some("1.2345678"));
    assert_eq!(v("1", "db").as_deref(), Some("0.1"));
    assert_eq!(v("1", "c").as_deref(), Some("ab"));
    assert_eq!(v("1", "vc").as_deref(), Some("x😀y"));
    assert_eq!(v("1", "t").as_deref(), Some("line\nbreak \"q\""));
    assert_eq!(v("1", "l1").as_deref(), Some("café"));
    assert_eq!(v("1", "bin").as_deref(), Some("AAECAw=="));
    assert_eq!(v("1", "vb").as_deref(), Some("/w=="));
    assert_eq!(base64_len(&v("1", "lb").unwrap()), 16 * 1024 * 1024);
    assert_eq!(v("1", "dt").as_deref(), Some("1000-01-01"));
    assert_eq!(v("1", "dtm").as_deref(), Some("2024-02-29 23:59:59.123456"));
    assert_eq!(v("1", "ts").as_deref(), Some("2038-01-19 03:14:07.999Z"));
    assert_eq!(v("1", "tm").as_deref(), Some("PT-838H-59M-59S"));
    assert_eq!(v("2", "tm").as_deref(), Some("PT838H59M59S"));
    assert_eq!(v("1", "yr").as_deref(), Some("2155"));
    assert_eq!(v("1", "e").as_deref(), Some("big"));
    assert_eq!(v("2", "e").as_deref(), Some(""), "MySQL's error value");
    assert_eq!(v("1", "s").as_deref(), Some(r#"["a","c"]"#));
    assert_eq!(v("2", "s").as_deref(), Some("[]"));
    let json: serde_json::Value = serde_json::from_str(&v("1", "j").unwrap()).unwrap();
    assert_eq!(json, serde_json::json!({"k": [1, 2.5, "s"]}));
    assert_eq!(
        v("1", "g").as_deref(),
        Some("0101000000000000000000F03F0000000000000040")
    );
    assert_eq!(
        v("1", "gen").as_deref(),
        Some("-2147483648"),
        "saturated by the server (sql_mode = '')"
    );
    assert_eq!(v("2", "ti"), None);
    assert_eq!(d.end("matrix").rows, 2);
    assert!(d.end("matrix").changes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_dates_follow_the_policy_and_are_counted() {
    let url = fresh_mysql_database(&mysql_source_url(), "dump_zero").await;
    mysql_exec(
        &url,
        "SET SESSION sql_mode = 'ALLOW_INVALID_DATES';
         CREATE TABLE z (id INT PRIMARY KEY, d DATE NULL, dt DATETIME NULL);
         INSERT INTO z VALUES (1, '0000-00-00', '0000-00-00 00:00:00'), (2, '2020-00-10', '2021-01-01 10:00:00'),
                              (3, '2021-05-06', NULL);
         CREATE TABLE zn (id INT PRIMARY KEY, d DATE NOT NULL);
         INSERT INTO zn VALUES (1, '2021-01-01'), (7, '0000-00-00');",
    );
    let d = dump(&url, &DumpOptions::default(), vec![whole(&url, "z")], 1)
        .await
        .expect("null policy");
    assert_eq!(d.column("z", "1", "d"), None);
    assert_eq!(d.column("z", "2", "d"), None);
    assert_eq!(d.column("z", "1", "dt"), None);
    assert_eq!(
        d.column("z", "2", "dt").as_deref(),
        Some("2021-01-01 10:00:00")
    );
    assert_eq!(d.column("z", "3", "d").as_deref(), Some("2021-05-06"));
    let changes = &d.end("z").changes;
    let count = |c: &str| {
        changes
            .iter()
            .find(|x| x.column == c)
            .map(|x| (x.policy.as_str(), x.count))
    };
    assert_eq!(count("d"), Some(("zero-date-to-null", 2)));
    assert_eq!(count("dt"), Some(("zero-date-to-null", 1)));

    let error_policy = DumpOptions {
        zero_dates: ZeroDates::Error,
        ..Default::default()
    };
    let err = dump(&url, &error_policy, vec![whole(&url, "z")], 1)
        .await
        .err()
        .expect("error policy fails")
        .to_string();
    assert!(
        err.contains("column d") && err.contains("(id)=(1)") && err.contains(".z"),
        "{err}"
    );

    let err = dump(&url, &DumpOptions::default(), vec![whole(&url, "zn")], 1)
        .await
        .err()
        .expect("NOT NULL fails")
        .to_string();
    assert!(
        err.contains("NOT NULL")
            && err.contains("column d")
            && err.contains("(id)=(7)")
            && err.contains(".zn"),
        "{err}"
    );

    // The documented way out: make the target column nullable.
    let map: mysql::typemap::TypeMap =
        toml_map("[[column]]\ntable = \"zn\"\ncolumn = \"d\"\nnullable = true\n");
    let relaxed = DumpOptions {
        type_map: map,
        ..Default::default()
    };
    let d = dump(&url, &relaxed, vec![whole(&url, "zn")], 1)
        .await
        .expect("nullable override");
    assert_eq!(d.end("zn").changes[0].count, 1);
    assert!(d.header("zn").columns[1].nullable);
}

fn toml_map(text: &str) -> mysql::typemap::TypeMap {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    mysql::typemap::TypeMap::load(f.path()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_charset_bytes_are_an_error_naming_the_row() {
    let url = fresh_mysql_database(&mysql_source_url(), "dump_charset").await;
    // MySQL's `greek` is ISO-8859-7, where byte 0xD2 is unassigned; the
    // server stores single-byte charsets unchecked (and shows 0xD2 as '?').
    mysql_exec(
        &url,
        "CREATE TABLE u (id INT PRIMARY KEY, name VARCHAR(20) CHARACTER SET greek);
         INSERT INTO u VALUES (1, 'fine'), (42, CONCAT('bad', x'D2'));",
    );
    let mut conn = mysql_connect(&url).await;
    let hex: String = conn
        .query_first("SELECT HEX(name) FROM u WHERE id = 42")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hex, "626164D2", "the invalid byte is stored");
    let err = dump(&url, &DumpOptions::default(), vec![whole(&url, "u")], 1)
        .await
        .err()
        .expect("fails")
        .to_string();
    assert!(
        err.contains("column name") && err.contains("(id)=(42)") && err.contains("character set"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_no_key_tables_and_shards() {
    let url = fresh_mysql_database(&mysql_source_url(), "dump_misc").await;
    mysql_exec(
        &url,
        "CREATE TABLE flags (id BINARY(16) PRIMARY KEY, on_off TINYINT(1), bad TINYINT(1));
         INSERT INTO flags VALUES (x'000102030405060708090a0b0c0d0e0f', 1, 0), (x'ff0102030405060708090a0b0c0d0e0f', 0, 2);
         CREATE TABLE loose (a INT, b VARCHAR(5));
         INSERT INTO loose VALUES (1, 'x'), (1, 'x'), (2, NULL);
         CREATE TABLE Big (ID INT PRIMARY KEY, Val VARCHAR(10));
         INSERT INTO Big VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d'),(5,'e');",
    );
    let map = toml_map(
        "[[column]]\ntable = \"flags\"\ncolumn = \"id\"\ntarget_type = \"UUID\"\n\
         [[column]]\ntable = \"flags\"\ncolumn = \"on_off\"\ntarget_type = \"BOOL\"\n",
    );
    let options = DumpOptions {
        type_map: map,
        ..Default::default()
    };
    let d = dump(
        &url,
        &options,
        vec![whole(&url, "flags"), whole(&url, "loose")],
        2,
    )
    .await
    .expect("dumps");
    assert_eq!(
        d.column("flags", "00010203-0405-0607-0809-0a0b0c0d0e0f", "on_off")
            .as_deref(),
        Some("true")
    );
    assert_eq!(
        d.column("flags", "ff010203-0405-0607-0809-0a0b0c0d0e0f", "on_off")
            .as_deref(),
        Some("false")
    );
    assert_eq!(d.header("flags").columns[1].target_type, "BOOL");
    // No primary key: dumped with a warning, duplicates kept.
    assert_eq!(d.end("loose").rows, 3);
    assert!(
        d.notices
            .iter()
            .any(|n| n.contains("loose has no primary key")),
        "{:?}",
        d.notices
    );

    // BOOL on a column holding 2 is an error naming the row.
    let map = toml_map("[[column]]\ntable = \"flags\"\ncolumn = \"bad\"\ntarget_type = \"BOOL\"\n");
    let err = dump(
        &url,
        &DumpOptions {
            type_map: map,
            ..Default::default()
        },
        vec![whole(&url, "flags")],
        1,
    )
    .await
    .err()
    .expect("2 is not a bool")
    .to_string();
    assert!(
        err.contains("column bad") && err.contains("not 0 or 1"),
        "{err}"
    );

    // Names are lower-cased on the target; shards and filters select rows.
    let mut lower = whole(&url, "Big");
    lower.shard = molt_core::stream::Shard {
        index: 0,
        count: 2,
        key: vec!["id".into()],
        lower: None,
        upper: Some(vec![serde_json::json!("3")]),
    };
    let mut upper = whole(&url, "Big");
    upper.filter = Some("Val <> 'e'".into());
    upper.shard = molt_core::stream::Shard {
        index: 1,
        count: 2,
        key: vec!["id".into()],
        lower: Some(vec![serde_json::json!("3")]),
        upper: None,
    };
    let d = dump(&url, &DumpOptions::default(), vec![lower, upper], 2)
        .await
        .expect("shards dump");
    assert_eq!(
        d.headers[0].target.as_ref().unwrap(),
        &TableName::new("public", "big")
    );
    assert_eq!(d.headers[0].columns[0].name, "id");
    let rows: Vec<u64> = d.ends.iter().map(|e| e.rows).collect();
    assert_eq!(rows, vec![2, 2], "ids 1-2, then 3-4 (5 filtered out)");
}

/// Runs the molt-dump binary alone with `args`.
fn dump_bin(args: &[impl AsRef<str>]) -> PipeOutcome {
    run_pipe(
        &[(
            "molt-dump",
            args.iter().map(|a| a.as_ref().to_string()).collect(),
        )],
        None,
        &[],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_flags_drive_the_binary() {
    let url = fresh_mysql_database(&mysql_source_url(), "dump_flags").await;
    mysql_exec(
        &url,
        "SET SESSION sql_mode = 'ALLOW_INVALID_DATES';
         CREATE TABLE CamelCase (Id INT PRIMARY KEY, IsOn TINYINT(1) NOT NULL, Born DATE NULL);
         INSERT INTO CamelCase VALUES (1, 1, '2001-02-03'), (2, 0, '0000-00-00'), (3, 1, NULL);",
    );
    let base = ["--source", url.as_str(), "--table", "CamelCase", "-q"];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|a| a.to_string()).collect()
    };

    // Defaults: lower-cased names in `public`, TINYINT(1) an integer, the
    // zero date written as NULL and counted.
    let out = dump_bin(&base);
    out.assert_success();
    let d = read_stream(&out.stdout);
    let h = d.header("CamelCase");
    assert_eq!(
        h.target.as_ref().unwrap(),
        &TableName::new("public", "camelcase")
    );
    let names: Vec<&str> = h.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "ison", "born"]);
    assert_eq!(h.columns[1].target_type, "INT2");
    assert_eq!(d.column("CamelCase", "1", "ison").as_deref(), Some("1"));
    assert_eq!(d.column("CamelCase", "2", "born"), None);
    assert_eq!(
        d.column("CamelCase", "1", "born").as_deref(),
        Some("2001-02-03")
    );
    let change = &d.end("CamelCase").changes;
    assert_eq!(
        (
            change.len(),
            change[0].column.as_str(),
            change[0].policy.as_str(),
            change[0].count
        ),
        (1, "born", "zero-date-to-null", 1)
    );

    // --zero-dates error: exit 1, naming table, column and key; no stream
    // that could pass for complete.
    let out = dump_bin(&with(&["--zero-dates", "error"]));
    out.assert_statuses(&[1]);
    let err = &out.stderrs[0];
    assert!(
        err.contains("CamelCase")
            && err.contains("column Born")
            && err.contains("(Id)=(2)")
            && err.contains("0000-00-00"),
        "{err}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(r#""type":"end""#),
        "a failed section must not end"
    );
    // --zero-dates null is the default, spelled out.
    dump_bin(&with(&["--zero-dates", "null"])).assert_success();
    // An unknown policy is a usage error.
    dump_bin(&with(&["--zero-dates", "zero"])).assert_statuses(&[2]);

    // --type-map: TINYINT(1) → BOOL gives true/false; an entry naming no
    // column is reported, not silently ignored.
    let mut map = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    map.write_all(
        b"[[column]]\ntable = \"CamelCase\"\ncolumn = \"IsOn\"\ntarget_type = \"BOOL\"\n\
          [[column]]\ntable = \"CamelCase\"\ncolumn = \"IsOff\"\ntarget_type = \"BOOL\"\n",
    )
    .unwrap();
    let map_path = map.path().to_str().unwrap().to_string();
    let out = dump_bin(&with(&["--type-map", &map_path]));
    out.assert_success();
    let d = read_stream(&out.stdout);
    let ison = &d.header("CamelCase").columns[1];
    assert_eq!(
        (ison.target_type.as_str(), ison.logical),
        ("BOOL", molt_core::value::LogicalType::Bool)
    );
    assert_eq!(d.column("CamelCase", "1", "ison").as_deref(), Some("true"));
    assert_eq!(d.column("CamelCase", "2", "ison").as_deref(), Some("false"));
    assert_eq!(d.column("CamelCase", "3", "ison").as_deref(), Some("true"));
    assert!(
        d.notices
            .iter()
            .any(|n| n.contains("\"IsOff\"") && n.contains("names no column")),
        "{:?}",
        d.notices
    );
    assert!(out.stderrs[0].contains("IsOff"), "{}", out.stderrs[0]);
    // A type map that does not parse fails before anything is dumped.
    let mut bad = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    bad.write_all(b"[[column]]\ntable = \"CamelCase\"\ncolum = \"IsOn\"\n")
        .unwrap();
    let out = dump_bin(&with(&["--type-map", bad.path().to_str().unwrap()]));
    out.assert_statuses(&[1]);
    assert!(
        out.stderrs[0].contains("--type-map") && out.stderrs[0].contains("colum"),
        "{}",
        out.stderrs[0]
    );
    assert!(out.stdout.is_empty());

    // --target-schema and --keep-case shape the target names.
    let out = dump_bin(&with(&["--target-schema", "app", "--keep-case"]));
    out.assert_success();
    let d = read_stream(&out.stdout);
    let h = d.header("CamelCase");
    assert_eq!(
        h.target.as_ref().unwrap(),
        &TableName::new("app", "CamelCase")
    );
    let names: Vec<&str> = h.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Id", "IsOn", "Born"]);
    let out = dump_bin(&with(&["--target-schema", "app"]));
    out.assert_success();
    assert_eq!(
        read_stream(&out.stdout).header("CamelCase").target,
        Some(TableName::new("app", "camelcase"))
    );

    // On a case-sensitive server `CamelCase` and `camelcase` are two tables;
    // lower-casing would pour both into one, so the dump refuses.
    mysql_exec(
        &url,
        "CREATE TABLE camelcase (id INT PRIMARY KEY); INSERT INTO camelcase VALUES (1);",
    );
    let out = dump_bin(&["--source", url.as_str(), "--all", "-q"]);
    out.assert_statuses(&[1]);
    assert!(
        out.stderrs[0].contains(".CamelCase")
            && out.stderrs[0].contains(".camelcase")
            && out.stderrs[0].contains("public.camelcase")
            && out.stderrs[0].contains("--keep-case"),
        "{}",
        out.stderrs[0]
    );
    let out = dump_bin(&["--source", url.as_str(), "--all", "-q", "--keep-case"]);
    out.assert_success();
    assert_eq!(read_stream(&out.stdout).headers.len(), 2);

    // MySQL-only flags with another engine are a usage error, not ignored.
    let out = dump_bin(&[
        "--source",
        "postgres://nobody@127.0.0.1:1/none",
        "--all",
        "--keep-case",
        "--target-schema",
        "app",
    ]);
    out.assert_statuses(&[2]);
    assert!(
        out.stderrs[0].contains("--keep-case: for MySQL sources only")
            && out.stderrs[0].contains("--target-schema: for MySQL and Oracle sources only"),
        "{}",
        out.stderrs[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_native_uuid_and_inet_types_map() {
    let url = fresh_mysql_database(&mysql_source_url(), "dump_mariadb_types").await;
    let mut conn = mysql_connect(&url).await;
    let version: String = conn.query_first("SELECT VERSION()").await.unwrap().unwrap();
    let _ = conn.disconnect().await;
    assert!(
        version.contains("MariaDB"),
        "this test needs MariaDB 10.10+ (UUID, INET4, INET6 types); the server is {version}"
    );
    mysql_exec(
        &url,
        "CREATE TABLE net (id UUID PRIMARY KEY, v6 INET6, v4 INET4);
         INSERT INTO net VALUES ('123E4567-E89B-12D3-A456-426655440000', '2001:db8::ff00:42:8329', '192.0.2.1'),
                                ('00000000-0000-0000-0000-000000000001', '::ffff:192.0.2.1', NULL);",
    );
    let d = dump(&url, &DumpOptions::default(), vec![whole(&url, "net")], 1)
        .await
        .expect("native types dump");
    let h = d.header("net");
    let types: Vec<&str> = h.columns.iter().map(|c| c.target_type.as_str()).collect();
    assert_eq!(types, ["UUID", "INET", "INET"]);
    let id = "123e4567-e89b-12d3-a456-426655440000";
    assert_eq!(
        d.column("net", id, "v6").as_deref(),
        Some("2001:db8::ff00:42:8329")
    );
    assert_eq!(d.column("net", id, "v4").as_deref(), Some("192.0.2.1"));
    assert_eq!(
        d.column("net", "00000000-0000-0000-0000-000000000001", "v6")
            .as_deref(),
        Some("::ffff:192.0.2.1")
    );

    // And they load: UUID and INET on the target take these texts.
    let target = fresh_pg_database(&pg_target_url(), "load_mariadb_types").await;
    run_pipe(
        &[
            (
                "molt-dump",
                vec!["--source".into(), url.clone(), "--all".into(), "-q".into()],
            ),
            (
                "molt-load",
                vec!["--target".into(), target.clone(), "-q".into()],
            ),
        ],
        None,
        &[],
    )
    .assert_success();
    let pg = pg_connect(&target).await;
    let row = pg
        .query_one(
            "SELECT id::text, v6::text, v4::text FROM public.net WHERE v4 IS NOT NULL",
            &[],
        )
        .await
        .unwrap();
    let got: (String, String, String) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        got,
        (
            id.to_string(),
            "2001:db8::ff00:42:8329/128".to_string(),
            "192.0.2.1/32".to_string()
        )
    );
}
