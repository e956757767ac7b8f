//! The stand-in in front of a real PostgreSQL (MOLT_TEST_PG_TARGET_DIRECT),
//! one proxy process per test, proving that every rule fires.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

const BIN: &str = env!("CARGO_BIN_EXE_molt-crdb-standin");

fn upstream() -> String {
    std::env::var("MOLT_TEST_PG_TARGET_DIRECT").unwrap_or_else(|_| {
        panic!(
            "MOLT_TEST_PG_TARGET_DIRECT is not set: run scripts/test.sh, or point it at a PostgreSQL \
             started with -c default_transaction_isolation=serializable \
             (postgres://USER@HOST:PORT/DB)"
        )
    })
}

/// `url` with its host:port replaced.
fn with_port(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let userinfo = authority
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    format!("{scheme}://{userinfo}127.0.0.1:{port}{tail}")
}

fn unique(name: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("standin_{name}_{}_{n}", std::process::id())
}

struct Proxy {
    child: Child,
    port: u16,
    events: PathBuf,
}

impl Proxy {
    fn start(args: &[&str]) -> Proxy {
        let events = std::env::temp_dir().join(format!("{}.events.jsonl", unique("ev")));
        let _ = std::fs::remove_file(&events);
        let mut child = Command::new(BIN)
            .arg("--upstream")
            .arg(upstream())
            .args(["--listen", "127.0.0.1:0", "--events"])
            .arg(&events)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start molt-crdb-standin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read listening line");
        let port = line
            .trim()
            .strip_prefix("listening on 127.0.0.1:")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("port");
        Proxy {
            child,
            port,
            events,
        }
    }

    fn url(&self) -> String {
        with_port(&upstream(), self.port)
    }

    async fn connect(&self) -> Client {
        connect(&self.url()).await
    }

    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.events)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("an events line is JSON"))
            .collect()
    }

    fn has_event(&self, rule: &str) -> bool {
        self.events().iter().any(|e| e["rule"] == rule)
    }

    fn assert_event(&self, rule: &str) {
        assert!(
            self.has_event(rule),
            "no {rule:?} event in {:#?}",
            self.events()
        );
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.events);
    }
}

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

async fn direct() -> Client {
    connect(&upstream()).await
}

fn code(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_string())
        .unwrap_or_else(|| format!("(not a db error: {e})"))
}

fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

async fn count(c: &Client, table: &str) -> i64 {
    c.query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count")
        .get(0)
}

/// Runs psql against `url` with `-c` commands and optional stdin.
fn psql(url: &str, commands: &[&str], stdin: Option<&[u8]>) -> (bool, String, String) {
    let mut cmd = Command::new("psql");
    cmd.arg(url).args(["-X", "-v", "ON_ERROR_STOP=1"]);
    for c in commands {
        cmd.args(["-c", c]);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .expect("run psql (install the PostgreSQL client)");
    {
        let mut sin = child.stdin.take().expect("stdin");
        if let Some(data) = stdin {
            let _ = sin.write_all(data);
        }
    }
    let out = child.wait_with_output().expect("psql output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_file(name: &str, data: &[u8]) -> PathBuf {
    let p = std::env::temp_dir().join(format!("{}.{name}", unique("data")));
    std::fs::write(&p, data).expect("write data file");
    p
}

fn rows_file(n: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "{i}\tsome text for row {i} padding padding padding\n"
        ));
    }
    s.into_bytes()
}

async fn wait_for_count(c: &Client, table: &str, want: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n = count(c, table).await;
        if n == want || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---- rules ---------------------------------------------------------------------

#[tokio::test]
async fn copy_from_over_extended_protocol_is_refused_and_the_connection_survives() {
    let px = Proxy::start(&[]);
    let c = px.connect().await;
    let t = unique("copyext");
    c.batch_execute(&format!("CREATE TABLE {t} (a int)"))
        .await
        .unwrap();

    let err = c
        .copy_in::<_, Bytes>(&format!("COPY {t} FROM STDIN"))
        .await
        .err()
        .expect("CockroachDB refuses extended COPY FROM");
    assert_eq!(code(&err), "XXUUU");
    assert_eq!(
        message(&err),
        "CopyFrom not supported in extended protocol mode"
    );
    px.assert_event("copy-extended-refused");

    // The connection is still usable, over both protocols.
    let one: i32 = c.query_one("SELECT 1::int4", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    c.batch_execute(&format!("INSERT INTO {t} VALUES (1), (2)"))
        .await
        .unwrap();

    // Inside a transaction block the refusal aborts the transaction, as any error does.
    c.batch_execute("BEGIN").await.unwrap();
    assert!(c
        .copy_in::<_, Bytes>(&format!("COPY {t} FROM STDIN"))
        .await
        .is_err());
    let e = c.query_one("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(code(&e), "25P02");
    c.batch_execute("ROLLBACK").await.unwrap();

    // COPY TO over the extended protocol is accepted by CockroachDB (pkg/sql/opaque.go).
    let stream = c
        .copy_out(&format!("COPY {t} TO STDOUT"))
        .await
        .expect("COPY TO over extended protocol");
    let chunks: Vec<_> = stream.collect().await;
    let data: Vec<u8> = chunks
        .into_iter()
        .flat_map(|c| c.unwrap().to_vec())
        .collect();
    assert_eq!(data, b"1\n2\n");
    c.batch_execute(&format!("DROP TABLE {t}")).await.unwrap();
}

#[tokio::test]
async fn simple_protocol_copy_passes_including_psql_copy() {
    let px = Proxy::start(&[]);
    let d = direct().await;
    let t = unique("psqlcopy");
    d.batch_execute(&format!("CREATE TABLE {t} (id int, s text)"))
        .await
        .unwrap();
    let file = temp_file("tsv", &rows_file(500));
    let (ok, out, err) = psql(
        &px.url(),
        &[&format!("\\copy {t} FROM '{}'", file.display())],
        None,
    );
    assert!(ok, "psql \\copy failed: {err}");
    assert!(out.contains("COPY 500"), "{out}");
    let (ok, out, err) = psql(
        &px.url(),
        &[&format!("COPY {t} FROM STDIN")],
        Some(b"9000\tx\n9001\ty\n\\.\n"),
    );
    assert!(ok, "psql COPY FROM STDIN failed: {err}");
    assert!(out.contains("COPY 2"), "{out}");
    assert_eq!(count(&d, &t).await, 502);
    assert!(!px.has_event("copy-extended-refused"));
    d.batch_execute(&format!("DROP TABLE {t}")).await.unwrap();
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn version_and_server_version_look_like_cockroachdb() {
    let px = Proxy::start(&[]);
    let c = px.connect().await;
    let rows = c.simple_query("SELECT version()").await.unwrap();
    let v = rows
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap().to_string()),
            _ => None,
        })
        .unwrap();
    assert!(v.starts_with("CockroachDB CCL v25."), "{v}");
    let row = c
        .query_one("SELECT pg_catalog.version()", &[])
        .await
        .unwrap();
    assert_eq!(row.columns()[0].name(), "version");
    let v: String = row.get(0);
    assert!(v.contains("CockroachDB"), "{v}");
    px.assert_event("version-rewritten");

    // psql sets SERVER_VERSION_NAME from the server_version ParameterStatus.
    let (ok, out, err) = psql(&px.url(), &["\\echo :SERVER_VERSION_NAME"], None);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "13.0.0");
    px.assert_event("server-version-rewritten");
}

#[tokio::test]
async fn postgres_only_functions_are_unknown_as_on_cockroachdb() {
    let px = Proxy::start(&[]);
    let c = px.connect().await;
    for (sql, name) in [
        ("SELECT trim_scale(1.500::numeric)", "trim_scale"),
        ("SELECT hashtextextended('x', 0)", "hashtextextended"),
    ] {
        // Both protocols: molt's catalog and hash queries use the extended one.
        let simple = c.simple_query(sql).await.unwrap_err();
        let extended = c.query(sql, &[]).await.unwrap_err();
        for e in [simple, extended] {
            let db = e.as_db_error().expect("a server error");
            assert_eq!(db.code().code(), "42883", "{sql}");
            assert_eq!(db.message(), format!("unknown function: {name}()"));
        }
    }
    // The connection stays usable, and PostgreSQL's own answer is unchanged
    // where no such function is called.
    let row = c
        .query_one("SELECT 1.500::numeric::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "1.500");
    px.assert_event("pg-only-function-refused");
}

#[tokio::test]
async fn delete_limit_is_translated_and_deletes_exactly_n_rows() {
    let px = Proxy::start(&[]);
    let c = px.connect().await;
    let t = unique("dellimit");
    c.batch_execute(&format!(
        "CREATE TABLE {t} (a int); INSERT INTO {t} SELECT generate_series(1, 20)"
    ))
    .await
    .unwrap();
    let msgs = c
        .simple_query(&format!("DELETE FROM {t} WHERE a > 5 LIMIT 3"))
        .await
        .unwrap();
    let affected = msgs.iter().find_map(|m| match m {
        SimpleQueryMessage::CommandComplete(n) => Some(*n),
        _ => None,
    });
    assert_eq!(affected, Some(3));
    assert_eq!(count(&c, &t).await, 17);
    let n = c
        .execute(
            &format!("DELETE FROM {t} WHERE a > $1 ORDER BY a LIMIT $2"),
            &[&5i32, &4i64],
        )
        .await
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(count(&c, &t).await, 13);
    px.assert_event("delete-limit-translated");
    c.batch_execute(&format!("DROP TABLE {t}")).await.unwrap();
}

#[tokio::test]
async fn temporary_tables_need_the_experimental_setting() {
    let px = Proxy::start(&[]);
    let c = px.connect().await;
    let e = c
        .batch_execute("CREATE TEMP TABLE standin_tmp (a int)")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "XCEXF");
    assert_eq!(
        message(&e),
        "temporary tables are only supported experimentally"
    );
    px.assert_event("temp-table-refused");

    c.batch_execute("SET experimental_enable_temp_tables = 'on'")
        .await
        .unwrap();
    px.assert_event("session-var-translated");
    c.batch_execute("CREATE TEMP TABLE standin_tmp (a int)")
        .await
        .unwrap();
    let shown = c
        .simple_query("SHOW experimental_enable_temp_tables")
        .await
        .unwrap();
    assert!(shown
        .iter()
        .any(|m| matches!(m, SimpleQueryMessage::Row(r) if r.get(0) == Some("on"))));
    c.batch_execute("SET copy_from_atomic_enabled = false")
        .await
        .unwrap();

    c.batch_execute("RESET experimental_enable_temp_tables")
        .await
        .unwrap();
    let e = c
        .batch_execute("CREATE TEMPORARY TABLE standin_tmp2 (a int)")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "XCEXF");
    c.batch_execute("SET experimental_enable_temp_tables = on")
        .await
        .unwrap();
    c.batch_execute("CREATE TEMPORARY TABLE standin_tmp2 (a int)")
        .await
        .unwrap();
}

#[tokio::test]
async fn unsupported_column_types_are_refused() {
    let px = Proxy::start(&[]);
    let c = px.connect().await;
    let t = unique("types");
    let cases = [
        ("xml", "0A000"),
        ("money", "0A000"),
        ("int4range", "42704"),
        ("int8range", "42704"),
        ("numrange", "42704"),
        ("tsrange", "42704"),
        ("tstzrange", "42704"),
        ("daterange", "42704"),
        ("int4multirange", "42704"),
        ("datemultirange", "42704"),
        ("int[][]", "XXUUU"),
        ("text ARRAY[2][2]", "XXUUU"),
    ];
    for (typ, want) in cases {
        let e = c
            .batch_execute(&format!("CREATE TABLE {t} (id int, v {typ})"))
            .await
            .unwrap_err();
        assert_eq!(code(&e), want, "CREATE TABLE with {typ}: {}", message(&e));
    }
    c.batch_execute(&format!(
        "CREATE TABLE {t} (id int, money numeric(10,2), xml text[])"
    ))
    .await
    .unwrap();
    for (typ, want) in cases {
        let e = c
            .batch_execute(&format!("ALTER TABLE {t} ADD COLUMN v {typ}"))
            .await
            .unwrap_err();
        assert_eq!(code(&e), want, "ADD COLUMN {typ}");
        let e = c
            .batch_execute(&format!("ALTER TABLE {t} ALTER COLUMN money TYPE {typ}"))
            .await
            .unwrap_err();
        assert_eq!(code(&e), want, "ALTER COLUMN TYPE {typ}");
    }
    let e = c
        .execute(&format!("ALTER TABLE {t} ADD v xml"), &[])
        .await
        .unwrap_err();
    assert_eq!(
        message(&e),
        "at or near \"xml\": syntax error: unimplemented: this syntax"
    );
    let e = c
        .batch_execute(&format!("ALTER TABLE {t} ADD v tsrange"))
        .await
        .unwrap_err();
    assert_eq!(message(&e), "type \"tsrange\" does not exist");
    px.assert_event("unsupported-type-refused");
    c.batch_execute(&format!("DROP TABLE {t}")).await.unwrap();
}

#[tokio::test]
async fn cockroachdb_only_forms_fail_loudly() {
    let px = Proxy::start(&[]);
    let c = px.connect().await;
    for sql in [
        "UPSERT INTO standin_nothing VALUES (1)",
        "SELECT 1 FROM standin_nothing AS OF SYSTEM TIME '-1s'",
        "SHOW RANGES FROM TABLE standin_nothing",
        "SELECT * FROM crdb_internal.node_build_info",
        "ALTER TABLE standin_nothing SPLIT AT VALUES (1)",
        "SET CLUSTER SETTING kv.rangefeed.enabled = true",
        "SET experimental_enable_hash_sharded_indexes = on",
        "SELECT unique_rowid()",
    ] {
        let e = c.batch_execute(sql).await.unwrap_err();
        assert_eq!(code(&e), "XX000", "{sql}");
        assert!(
            message(&e).starts_with("crdb-standin: CockroachDB-only form not translated: "),
            "{sql}: {}",
            message(&e)
        );
        let e = c.execute(sql, &[]).await.unwrap_err();
        assert_eq!(code(&e), "XX000", "extended: {sql}");
    }
    px.assert_event("crdb-only-refused");
    // The error aborts a transaction block like any other.
    c.batch_execute("BEGIN").await.unwrap();
    assert!(c
        .batch_execute("UPSERT INTO standin_nothing VALUES (1)")
        .await
        .is_err());
    assert_eq!(
        code(&c.batch_execute("SELECT 1").await.unwrap_err()),
        "25P02"
    );
    c.batch_execute("ROLLBACK").await.unwrap();
    let one: i32 = c.query_one("SELECT 1::int4", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}

#[tokio::test]
async fn upstream_must_default_to_serializable() {
    let px = Proxy::start(&[]);
    let mut cfg: tokio_postgres::Config = px.url().parse().unwrap();
    cfg.options("-c default_transaction_isolation=read\\ committed");
    let err = cfg
        .connect(NoTls)
        .await
        .err()
        .expect("a read committed session is refused");
    assert!(
        format!("{err}").contains("SERIALIZABLE") || message(&err).contains("SERIALIZABLE"),
        "{err}"
    );
    px.assert_event("isolation-refused");
    // A serializable session is served.
    let c = px.connect().await;
    c.batch_execute("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn text_copy_into_bytea_decodes_like_cockroachdb() {
    let px = Proxy::start(&[]);
    let d = direct().await;
    let t = unique("bytea");
    d.batch_execute(&format!("CREATE TABLE {t} (id int, b bytea, n text)"))
        .await
        .unwrap();
    // Row 1 is what PostgreSQL's COPY TO writes for '\x0102'::bytea; row 2 the
    // per-byte escapes CockroachDB decodes to 0x01 0x02.
    let input = b"1\t\\\\x0102\tp\n2\t\\x01\\x02\tq\n3\t\\N\tr\n4\tab\\\\c\ts\n\\.\n";
    let (ok, _, err) = psql(&px.url(), &[&format!("COPY {t} FROM STDIN")], Some(input));
    assert!(ok, "{err}");
    let (ok, _, err) = psql(
        &px.url(),
        &[&format!("COPY {t} (n, b, id) FROM STDIN")],
        Some(b"z\t\\x41\t5\n"),
    );
    assert!(ok, "{err}");
    let rows = d
        .query(
            &format!("SELECT id, encode(b, 'hex') FROM {t} ORDER BY id"),
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(i32, Option<String>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        vec![
            (1, Some("5c7830313032".to_string())),
            (2, Some("0102".to_string())),
            (3, None),
            (4, Some("61625c63".to_string())),
            (5, Some("41".to_string())),
        ]
    );
    px.assert_event("copy-bytea-rewritten");

    let refusing = Proxy::start(&["--copy-bytea", "refuse"]);
    let (ok, _, err) = psql(
        &refusing.url(),
        &[&format!("COPY {t} FROM STDIN")],
        Some(b"9\t\\x41\tx\n"),
    );
    assert!(!ok);
    assert!(err.contains("167309"), "{err}");
    refusing.assert_event("copy-bytea-refused");
    // CSV is decoded by CockroachDB (cockroachdb/cockroach#69640), so it passes untouched.
    let (ok, _, err) = psql(
        &refusing.url(),
        &[&format!("COPY {t} FROM STDIN CSV")],
        Some(b"10,\\x41,y\n"),
    );
    assert!(ok, "{err}");
    d.batch_execute(&format!("DROP TABLE {t}")).await.unwrap();
}

#[tokio::test]
async fn cancel_requests_reach_the_upstream() {
    let px = Proxy::start(&[]);
    let c = px.connect().await;
    let token = c.cancel_token();
    let started = Instant::now();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        token.cancel_query(NoTls).await
    });
    let e = c.batch_execute("SELECT pg_sleep(30)").await.unwrap_err();
    assert_eq!(code(&e), "57014");
    assert!(started.elapsed() < Duration::from_secs(20));
    canceller.await.unwrap().unwrap();
}

#[tokio::test]
async fn many_connections_and_a_large_copy() {
    let px = Proxy::start(&[]);
    let url = px.url();
    let mut tasks = Vec::new();
    for i in 0..16i64 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let c = connect(&url).await;
            for j in 0..25i64 {
                let v: i64 = c
                    .query_one("SELECT $1::int8 * 2", &[&(i * 100 + j)])
                    .await
                    .unwrap()
                    .get(0);
                assert_eq!(v, (i * 100 + j) * 2);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let d = direct().await;
    let t = unique("bigcopy");
    d.batch_execute(&format!("CREATE TABLE {t} (id int, s text)"))
        .await
        .unwrap();
    let file = temp_file("tsv", &rows_file(200_000));
    let (ok, _, err) = psql(
        &url,
        &[&format!("\\copy {t} FROM '{}'", file.display())],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(count(&d, &t).await, 200_000);
    let c = connect(&url).await;
    let stream = c.copy_out(&format!("COPY {t} TO STDOUT")).await.unwrap();
    let total: usize = stream
        .map(|c| c.unwrap().len())
        .fold(0, |a, n| async move { a + n })
        .await;
    assert_eq!(total, std::fs::metadata(&file).unwrap().len() as usize);
    d.batch_execute(&format!("DROP TABLE {t}")).await.unwrap();
    let _ = std::fs::remove_file(file);
}

// ---- injected retry errors -----------------------------------------------------

#[tokio::test]
async fn retry_errors_for_statements_outside_transactions() {
    let px = Proxy::start(&[
        "--retry-rate",
        "1",
        "--retry-match",
        "retry_me",
        "--retry-at",
        "stmt",
    ]);
    let c = px.connect().await;
    let t = unique("retry_me");
    let d = direct().await;
    d.batch_execute(&format!("CREATE TABLE {t} (a int)"))
        .await
        .unwrap();
    let e = c
        .batch_execute(&format!("INSERT INTO {t} VALUES (1)"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "40001");
    assert!(
        message(&e).starts_with("restart transaction: TransactionRetryWithProtoRefreshError"),
        "{}",
        message(&e)
    );
    let e = c
        .execute(&format!("INSERT INTO {t} VALUES ($1)"), &[&2i32])
        .await
        .unwrap_err();
    assert_eq!(code(&e), "40001");
    assert_eq!(count(&d, &t).await, 0, "the statements were not executed");
    // Statements that do not match, and statements inside a transaction block, pass.
    c.batch_execute("SELECT 1").await.unwrap();
    c.batch_execute(&format!("BEGIN; INSERT INTO {t} VALUES (3); COMMIT"))
        .await
        .unwrap();
    assert_eq!(count(&d, &t).await, 1);
    assert!(
        px.events()
            .iter()
            .filter(|e| e["rule"] == "retry-injected" && e["point"] == "stmt")
            .count()
            >= 2
    );

    // --retry-max: only the first attempt fails.
    let px = Proxy::start(&[
        "--retry-rate",
        "1",
        "--retry-match",
        "retry_me",
        "--retry-max",
        "1",
        "--seed",
        "7",
    ]);
    let c = px.connect().await;
    assert_eq!(
        code(
            &c.batch_execute(&format!("INSERT INTO {t} VALUES (4)"))
                .await
                .unwrap_err()
        ),
        "40001"
    );
    c.batch_execute(&format!("INSERT INTO {t} VALUES (4)"))
        .await
        .unwrap();
    assert_eq!(count(&d, &t).await, 2);
    d.batch_execute(&format!("DROP TABLE {t}")).await.unwrap();
}

#[tokio::test]
async fn retry_error_at_commit_rolls_back() {
    let px = Proxy::start(&["--retry-rate", "1", "--retry-at", "commit"]);
    let mut c = px.connect().await;
    let d = direct().await;
    let t = unique("retrycommit");
    d.batch_execute(&format!("CREATE TABLE {t} (a int)"))
        .await
        .unwrap();
    let tx = c.transaction().await.unwrap();
    tx.execute(&format!("INSERT INTO {t} VALUES ($1)"), &[&1i32])
        .await
        .unwrap();
    let e = tx.commit().await.unwrap_err();
    assert_eq!(code(&e), "40001");
    assert_eq!(count(&d, &t).await, 0, "COMMIT was turned into ROLLBACK");
    // The session is idle again and usable.
    c.batch_execute("SELECT 1").await.unwrap();
    assert!(px
        .events()
        .iter()
        .any(|e| e["rule"] == "retry-injected" && e["point"] == "commit"));
    d.batch_execute(&format!("DROP TABLE {t}")).await.unwrap();
}

#[tokio::test]
async fn retry_error_at_copy_done() {
    let px = Proxy::start(&["--retry-rate", "1", "--retry-at", "copy-done"]);
    let d = direct().await;
    let t = unique("retrycopy");
    d.batch_execute(&format!("CREATE TABLE {t} (id int, s text)"))
        .await
        .unwrap();
    let file = temp_file("tsv", &rows_file(1000));
    let (ok, _, err) = psql(
        &px.url(),
        &[&format!("\\copy {t} FROM '{}'", file.display())],
        None,
    );
    assert!(!ok);
    assert!(err.contains("restart transaction"), "{err}");
    assert_eq!(count(&d, &t).await, 0);
    assert!(px
        .events()
        .iter()
        .any(|e| e["rule"] == "retry-injected" && e["point"] == "copy-done"));
    d.batch_execute(&format!("DROP TABLE {t}")).await.unwrap();
    let _ = std::fs::remove_file(file);
}

// ---- cut connections -----------------------------------------------------------

#[tokio::test]
async fn cut_during_copy_data_commits_nothing() {
    let px = Proxy::start(&[
        "--cut-match",
        "^COPY ",
        "--cut-unit",
        "bytes",
        "--cut-after",
        "100000",
    ]);
    let d = direct().await;
    let t = unique("cutdata");
    d.batch_execute(&format!("CREATE TABLE {t} (id int, s text)"))
        .await
        .unwrap();
    let file = temp_file("tsv", &rows_file(50_000));
    let (ok, _, err) = psql(
        &px.url(),
        &[&format!("\\copy {t} FROM '{}'", file.display())],
        None,
    );
    assert!(!ok, "psql should see the cut");
    assert!(!err.is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&d, &t).await, 0);
    let ev = px.events();
    assert!(
        ev.iter()
            .any(|e| e["rule"] == "cut" && e["trigger"] == "match" && e["unit"] == "bytes"),
        "{ev:#?}"
    );
    d.batch_execute(&format!("DROP TABLE {t}")).await.unwrap();
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn cut_after_copy_done_commits_but_the_client_sees_an_error() {
    let px = Proxy::start(&["--cut-at", "copy-done"]);
    let d = direct().await;
    let t = unique("cutdone");
    d.batch_execute(&format!("CREATE TABLE {t} (id int, s text)"))
        .await
        .unwrap();
    let file = temp_file("tsv", &rows_file(2000));
    let (ok, out, err) = psql(
        &px.url(),
        &[&format!("\\copy {t} FROM '{}'", file.display())],
        None,
    );
    assert!(!ok, "the client must not see COPY's answer: {out}");
    assert!(!out.contains("COPY 2000"));
    assert!(!err.is_empty());
    assert_eq!(
        wait_for_count(&d, &t, 2000).await,
        2000,
        "the server committed the COPY"
    );
    px.assert_event("cut");
    d.batch_execute(&format!("DROP TABLE {t}")).await.unwrap();
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn cut_when_the_next_statement_after_a_copy_arrives() {
    let px = Proxy::start(&["--cut-match", "^SELECT 1$"]);
    let d = direct().await;
    let t = unique("cutnext");
    d.batch_execute(&format!("CREATE TABLE {t} (id int, s text)"))
        .await
        .unwrap();
    let file = temp_file("tsv", &rows_file(300));
    let (ok, out, err) = psql(
        &px.url(),
        &[&format!("\\copy {t} FROM '{}'", file.display()), "SELECT 1"],
        None,
    );
    assert!(!ok);
    assert!(out.contains("COPY 300"), "{out} {err}");
    assert!(
        !out.contains("?column?"),
        "SELECT 1 must not be answered: {out}"
    );
    assert_eq!(count(&d, &t).await, 300);
    px.assert_event("cut");
    d.batch_execute(&format!("DROP TABLE {t}")).await.unwrap();
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn cut_a_source_side_copy_to_stdout_after_n_server_bytes() {
    let px = Proxy::start(&[
        "--passthrough",
        "--cut-match",
        "TO STDOUT",
        "--cut-direction",
        "down",
        "--cut-unit",
        "bytes",
        "--cut-after",
        "50000",
    ]);
    let c = px.connect().await;
    let stream = c
        .copy_out("COPY (SELECT g, repeat('x', 40) FROM generate_series(1, 100000) g) TO STDOUT")
        .await
        .expect("COPY TO starts");
    let mut got = 0usize;
    let mut failed = false;
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(b) => got += b.len(),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the stream must end in an error");
    assert!(got < 50_000, "received {got} bytes");
    // Passthrough: no CockroachDB rules.
    let c2 = px.connect().await;
    let v: String = c2.query_one("SELECT version()", &[]).await.unwrap().get(0);
    assert!(v.starts_with("PostgreSQL"), "{v}");
    px.assert_event("cut");
}

#[tokio::test]
async fn cut_times_limits_how_many_connections_are_cut() {
    let px = Proxy::start(&[
        "--cut-at",
        "start",
        "--cut-unit",
        "msgs",
        "--cut-after",
        "3",
        "--cut-times",
        "1",
    ]);
    // Messages: startup, then two queries pass; the third query is the cut.
    let c = px.connect().await;
    c.simple_query("SELECT 1").await.unwrap();
    let second = c.simple_query("SELECT 2").await;
    let third = c.simple_query("SELECT 3").await;
    assert!(
        second.is_err() || third.is_err(),
        "the connection is cut after 3 client messages"
    );
    // The budget is spent: the next connection is not cut.
    let c = px.connect().await;
    for i in 0..5 {
        c.simple_query(&format!("SELECT {i}")).await.unwrap();
    }
    assert_eq!(px.events().iter().filter(|e| e["rule"] == "cut").count(), 1);
}

// ---- scripts/lib/standin.sh ----------------------------------------------------

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

#[tokio::test]
async fn standin_sh_starts_the_proxy_and_molt_stop_servers_stops_it() {
    let dir = std::env::temp_dir().join(unique("servers"));
    let bin_dir = Path::new(BIN).parent().unwrap().to_path_buf();
    let script = format!(
        "set -euo pipefail\n\
         source '{root}/scripts/lib/servers.sh'\n\
         source '{root}/scripts/lib/standin.sh'\n\
         export MOLT_SERVERS_DIR='{dir}' MOLT_BIN_DIR='{bin}'\n\
         url=$(molt_start_standin crdb '{up}' --retry-rate 0)\n\
         echo \"URL=$url\"\n\
         psql \"$url\" -XAtc 'SELECT version()'\n\
         pid=$(cat \"$MOLT_SERVERS_DIR/crdb/pid\")\n\
         molt_stop_servers\n\
         for _ in $(seq 1 50); do kill -0 \"$pid\" 2>/dev/null || break; sleep 0.1; done\n\
         if kill -0 \"$pid\" 2>/dev/null; then echo STILL_RUNNING; else echo STOPPED; fi\n",
        root = repo_root().display(),
        dir = dir.display(),
        bin = bin_dir.display(),
        up = upstream(),
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "script failed: {stdout}\n{stderr}");
    assert!(stdout.contains("URL=postgres"), "{stdout}");
    assert!(stdout.contains("CockroachDB CCL"), "{stdout}");
    assert!(stdout.contains("STOPPED"), "{stdout}\n{stderr}");
}

#[tokio::test]
async fn standin_sh_refuses_a_non_serializable_upstream() {
    let dir = std::env::temp_dir().join(unique("servers"));
    let bin_dir = Path::new(BIN).parent().unwrap().to_path_buf();
    let sep = if upstream().contains('?') { '&' } else { '?' };
    let up = format!(
        "{}{sep}options=-c%20default_transaction_isolation%3Dread%5C%20committed",
        upstream()
    );
    let script = format!(
        "source '{root}/scripts/lib/servers.sh'\n\
         source '{root}/scripts/lib/standin.sh'\n\
         export MOLT_SERVERS_DIR='{dir}' MOLT_BIN_DIR='{bin}'\n\
         if url=$(molt_start_standin crdb '{up}'); then echo STARTED; else echo REFUSED; fi\n\
         molt_stop_servers\n",
        root = repo_root().display(),
        dir = dir.display(),
        bin = bin_dir.display(),
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("REFUSED"), "{stdout}\n{stderr}");
    assert!(stderr.contains("SERIALIZABLE"), "{stderr}");
}
