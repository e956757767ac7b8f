//! Crashes and faults never lose or duplicate a row: molt-load or molt-dump
//! killed with SIGKILL mid-stream, the target stopped mid-load, connections
//! cut or stalled by a proxy. In every case the same command, run again,
//! completes the slice exactly. Permanent errors fail fast and say why.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use molt_tests::*;

const ROWS: i64 = 300_000;

/// A source table of `ROWS` rows with ~100-byte bodies.
async fn seed_source() -> String {
    seed_rows("resil_src", ROWS).await
}

/// A source table `items` of `rows` rows with ~100-byte bodies.
async fn seed_rows(prefix: &str, rows: i64) -> String {
    let url = fresh_pg_database(&pg_source_url(), prefix).await;
    psql_exec(
        &url,
        format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, region char(1), body text);
             INSERT INTO items SELECT i, chr(65 + i % 4), repeat(md5(i::text), 3) FROM generate_series(1, {rows}) i;"
        ),
    );
    url
}

/// Row count and an order-independent content hash, computed in SQL.
async fn fingerprint(url: &str) -> (i64, String) {
    let client = pg_connect(url).await;
    let row = client
        .query_one("SELECT count(*), coalesce(md5(string_agg(id::text || ':' || region || ':' || body, ',' ORDER BY id)), '') FROM items", &[])
        .await
        .expect("fingerprint query");
    (row.get(0), row.get(1))
}

async fn count(url: &str) -> i64 {
    let client = pg_connect(url).await;
    match client.query_one("SELECT count(*) FROM items", &[]).await {
        Ok(row) => row.get(0),
        Err(_) => 0,
    }
}

/// Tables in the target's `public` schema.
async fn count_tables(url: &str) -> i64 {
    pg_connect(url)
        .await
        .query_one(
            "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .expect("pg_tables")
        .get(0)
}

/// Rows in `items`, which must exist.
async fn strict_count(url: &str) -> i64 {
    pg_connect(url)
        .await
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .expect("count(*) FROM items")
        .get(0)
}

/// `items`' rows inserted and deleted so far, from the statistics, which
/// arrive asynchronously (at the latest when a session ends): polled until
/// `done` holds or 30 s have passed, then returned as they are.
async fn inserted_and_deleted(url: &str, done: impl Fn((i64, i64)) -> bool) -> (i64, i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = pg_connect(url)
            .await
            .query_one(
                "SELECT n_tup_ins, n_tup_del FROM pg_stat_user_tables WHERE relid = 'public.items'::regclass",
                &[],
            )
            .await
            .expect("pg_stat_user_tables");
        let written: (i64, i64) = (row.get(0), row.get(1));
        if done(written) || Instant::now() > deadline {
            return written;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Dumps the source's `items` table into a file.
fn dump_to_file(source: &str, dir: &Path) -> PathBuf {
    let out = run_pipe(
        &[(
            "molt-dump",
            vec![
                "--quiet".into(),
                "--source".into(),
                source.into(),
                "--table".into(),
                "public.items".into(),
            ],
        )],
        None,
        &[],
    );
    out.assert_success();
    let path = dir.join("items.ndjson");
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

fn load_from_file(stream: &Path, target: &str, extra: &[&str]) -> Child {
    let mut args = vec![
        "--quiet".to_string(),
        "--target".into(),
        target.into(),
        "--batch-rows".into(),
        "5000".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Command::new(bin("molt-load"))
        .args(&args)
        .stdin(std::fs::File::open(stream).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start molt-load")
}

fn finish(child: Child) -> (i32, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Waits until the target holds some but not all rows, so a kill lands mid-section.
async fn wait_for_partial(target: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = count(target).await;
        if n > 0 && n < ROWS {
            return n;
        }
        assert!(
            n < ROWS,
            "the load finished before it could be interrupted; make the table larger"
        );
        assert!(Instant::now() < deadline, "no rows arrived within 120 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn kill_9_of_molt_load_mid_section_then_rerun_completes_exactly() {
    let source = seed_source().await;
    let target = fresh_pg_database(&pg_target_url(), "resil_kill_load").await;
    let dir = tempfile::tempdir().unwrap();
    let stream = dump_to_file(&source, dir.path());

    let mut child = load_from_file(&stream, &target, &[]);
    let partial = wait_for_partial(&target).await;
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    let after_kill = count(&target).await;
    assert!(
        after_kill >= partial && after_kill < ROWS,
        "killed mid-section: {after_kill} rows"
    );

    let (code, stdout, stderr) = finish(load_from_file(&stream, &target, &[]));
    assert_eq!(code, 0, "re-run failed: {stderr}");
    assert_eq!(
        fingerprint(&target).await,
        fingerprint(&source).await,
        "exact rows after the re-run"
    );
    let results = ndjson(stdout.as_bytes());
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["rows"], ROWS);
    assert_eq!(results[0]["status"], "ok");
}

#[tokio::test]
async fn kill_9_of_molt_dump_mid_stream_leaves_nothing_then_rerun_completes_exactly() {
    let source = seed_source().await;
    let target = fresh_pg_database(&pg_target_url(), "resil_kill_dump").await;
    let mut dump = Command::new(bin("molt-dump"))
        .args(["--quiet", "--source", &source, "--table", "public.items"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let load = Command::new(bin("molt-load"))
        .args(["--quiet", "--target", &target, "--batch-rows", "5000"])
        .stdin(dump.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_partial(&target).await;
    dump.kill().unwrap();
    let _ = dump.wait();
    let (code, _, stderr) = finish(load);
    assert_eq!(code, 1, "a torn stream must fail the load: {stderr}");
    assert!(stderr.contains("public.items"), "{stderr}");
    assert_eq!(
        count(&target).await,
        0,
        "a torn section leaves none of its rows"
    );

    let out = run_pipe(
        &[
            (
                "molt-dump",
                vec![
                    "--quiet".into(),
                    "--source".into(),
                    source.clone(),
                    "--table".into(),
                    "public.items".into(),
                ],
            ),
            (
                "molt-load",
                vec!["--quiet".into(), "--target".into(), target.clone()],
            ),
        ],
        None,
        &[],
    );
    out.assert_success();
    assert_eq!(fingerprint(&target).await, fingerprint(&source).await);
}

#[tokio::test]
async fn target_stopped_during_a_load_then_restarted() {
    // The stop lands at a known point: molt-load's stdin is held back in
    // the middle of the third batch (rows 10,001 to 13,500 are in, more
    // than one 256 kB COPY chunk), so exactly two batches are committed
    // and the third one's COPY is open when the server goes down.
    let source = seed_rows("resil_restart_src", SMALL).await;
    let dir = tempfile::tempdir().unwrap();
    let stream = std::fs::read(dump_to_file(&source, dir.path())).unwrap();
    let split = after_row(&stream, 13_500);
    let server = OwnPgServer::start(
        "resil-target",
        Some("default_transaction_isolation = 'serializable'\n"),
        None,
    );
    let direct = fresh_pg_database(&server.url, "resil_restart").await;
    let standin = OwnStandin::start_in_front_of(&server.url, &[]);
    let target = standin.url_for(&direct);

    let mut child = Command::new(bin("molt-load"))
        .args(["--quiet", "--target", &target, "--batch-rows", "5000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start molt-load");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&stream[..split]).unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (rows, copying) = rows_and_open_copies(&direct).await;
        assert!(
            rows <= 10_000,
            "{rows} rows: more than the two whole batches"
        );
        if rows == 10_000 && copying == 1 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("molt-load ended ({status}) with its stdin still open");
        }
        assert!(
            Instant::now() < deadline,
            "two batches and an open COPY not seen within 60 s ({rows} rows, {copying} COPY)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop();
    server.restart();
    assert_eq!(
        count(&direct).await,
        10_000,
        "the open batch died with the server"
    );
    stdin.write_all(&stream[split..]).unwrap();
    drop(stdin);
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, 0, "the load must survive the restart: {stderr}");
    let results = ndjson(stdout.as_bytes());
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["rows"], SMALL);
    assert_eq!(results[0]["status"], "ok");
    let expected = fingerprint(&source).await;
    assert_eq!(expected.0, SMALL);
    assert_eq!(
        fingerprint(&direct).await,
        expected,
        "exact rows after the load"
    );
    assert_eq!(
        ledger(&direct).await,
        vec![(
            "public.items".to_string(),
            "loaded".to_string(),
            Some(SMALL)
        )]
    );

    // The same command again: the ledger and the target agree, nothing is
    // written twice.
    let (code, stdout, stderr) = finish(load_from_file(
        &dir.path().join("items.ndjson"),
        &target,
        &[],
    ));
    assert_eq!(code, 0, "re-run after the restart: {stderr}");
    assert_eq!(ndjson(stdout.as_bytes())[0]["status"], "skipped");
    assert_eq!(
        fingerprint(&direct).await,
        expected,
        "exact rows after the re-run"
    );
}

/// Rows in the target's `items` (0 while it does not exist) and molt-load
/// sessions in the middle of a COPY into it.
async fn rows_and_open_copies(direct: &str) -> (i64, i64) {
    let client = pg_connect(direct).await;
    let copying: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND application_name = 'molt-load' AND state = 'active' AND query LIKE 'COPY %items%'",
            &[],
        )
        .await
        .expect("pg_stat_activity")
        .get(0);
    (count(direct).await, copying)
}

/// The byte offset just after the `n`th row line of a dumped stream.
fn after_row(stream: &[u8], n: usize) -> usize {
    let mut rows = 0;
    let mut offset = 0;
    for line in stream.split_inclusive(|b| *b == b'\n') {
        offset += line.len();
        if line.first() == Some(&b'[') {
            rows += 1;
            if rows == n {
                return offset;
            }
        }
    }
    panic!("the stream has only {rows} rows, not {n}");
}

/// Rows of the fault tests: a few batches of 5000.
const SMALL: i64 = 20_000;

/// The ledger's sections: table, status, rows.
async fn ledger(direct: &str) -> Vec<(String, String, Option<i64>)> {
    pg_connect(direct)
        .await
        .query(
            "SELECT target_schema || '.' || target_table, status, \"rows\" FROM _molt.sections ORDER BY 1",
            &[],
        )
        .await
        .expect("reading _molt.sections")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// A stand-in with fault flags in front of a fresh database on the plain
/// target server, and the stand-in's events file.
struct Faulty {
    _standin: OwnStandin,
    /// The database, straight (for checks).
    direct: String,
    /// The database through the stand-in (for molt-load).
    url: String,
    events: PathBuf,
    _dir: tempfile::TempDir,
}

async fn faulty_target(prefix: &str, flags: &[&str]) -> Faulty {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let mut args = vec!["--events", events.to_str().unwrap()];
    args.extend_from_slice(flags);
    let standin = OwnStandin::start(&args);
    let direct = fresh_pg_database(&pg_plain_target_url(), prefix).await;
    Faulty {
        url: standin.url_for(&direct),
        _standin: standin,
        direct,
        events,
        _dir: dir,
    }
}

/// The events of `rule` in a stand-in's events file.
fn events(path: &Path, rule: &str) -> Vec<serde_json::Value> {
    let bytes = std::fs::read(path).unwrap_or_default();
    ndjson(&bytes)
        .into_iter()
        .filter(|e| e["rule"] == rule)
        .collect()
}

/// Loads a `SMALL`-row dump through a stand-in with `flags`, which must cut
/// exactly one connection: molt-load retries, exits 0 and the target is
/// exact; the same command again skips the section and changes nothing.
async fn one_cut_is_retried_exactly(prefix: &str, flags: &[&str]) -> Vec<serde_json::Value> {
    let source = seed_rows(&format!("{prefix}_src"), SMALL).await;
    let dir = tempfile::tempdir().unwrap();
    let stream = dump_to_file(&source, dir.path());
    let t = faulty_target(prefix, flags).await;
    let (code, stdout, stderr) = finish(load_from_file(&stream, &t.url, &[]));
    let cuts = events(&t.events, "cut");
    assert_eq!(cuts.len(), 1, "exactly one connection was cut: {cuts:?}");
    assert_eq!(code, 0, "molt-load retries the cut batch: {stderr}");
    let results = ndjson(stdout.as_bytes());
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["rows"], SMALL);
    assert_eq!(results[0]["status"], "ok");
    let expected = fingerprint(&source).await;
    assert_eq!(expected.0, SMALL);
    assert_eq!(
        fingerprint(&t.direct).await,
        expected,
        "exact rows after the load"
    );
    assert_eq!(
        ledger(&t.direct).await,
        vec![(
            "public.items".to_string(),
            "loaded".to_string(),
            Some(SMALL)
        )]
    );

    let (code, stdout, stderr) = finish(load_from_file(&stream, &t.url, &[]));
    assert_eq!(code, 0, "re-run: {stderr}");
    assert_eq!(ndjson(stdout.as_bytes())[0]["status"], "skipped");
    assert_eq!(
        fingerprint(&t.direct).await,
        expected,
        "exact rows after the re-run"
    );
    assert_eq!(events(&t.events, "cut").len(), 1, "no second cut");
    cuts
}

#[tokio::test]
async fn a_target_cut_during_copy_data_is_retried_exactly() {
    // 100 kB into the first batch's COPY data (a batch is ~550 kB).
    let cuts = one_cut_is_retried_exactly(
        "resil_cut_data",
        &[
            "--cut-match",
            "^COPY ",
            "--cut-unit",
            "bytes",
            "--cut-after",
            "100000",
        ],
    )
    .await;
    assert_eq!(cuts[0]["trigger"], "match");
}

#[tokio::test]
async fn a_target_cut_during_the_commit_is_retried_exactly() {
    // The first CopyDone reaches the server, which commits the batch; its
    // answer never reaches molt-load.
    let cuts = one_cut_is_retried_exactly("resil_cut_commit", &["--cut-at", "copy-done"]).await;
    assert_eq!(cuts[0]["trigger"], "copy-done");
}

#[tokio::test]
async fn a_target_cut_at_the_query_confirming_a_copy_is_retried_exactly() {
    // After each COPY molt-load sends `SELECT 1` on the same connection to
    // prove the commit; the first one is never forwarded.
    let cuts =
        one_cut_is_retried_exactly("resil_cut_confirm", &["--cut-match", "^SELECT 1$"]).await;
    assert_eq!(cuts[0]["trigger"], "match");
}

#[tokio::test]
async fn injected_retry_errors_are_retried_exactly() {
    let source = seed_rows("resil_40001_src", SMALL).await;
    let dir = tempfile::tempdir().unwrap();
    let stream = dump_to_file(&source, dir.path());
    // At rate 0.12 every statement molt-load sends is eligible: the
    // start-up's, the table's preparation, the ledger's, the slice's
    // DELETE, the COPYs, the `SELECT 1` that confirms a COPY's commit and
    // the retry's TEMP table statements. molt-load sends no simple-protocol
    // COMMIT, so `commit` never comes.
    let seed = std::env::var("MOLT_TEST_RETRY_SEED").unwrap_or_else(|_| "2".into());
    let t = faulty_target(
        "resil_40001",
        &[
            "--retry-rate",
            "0.12",
            "--seed",
            &seed,
            "--retry-at",
            "stmt,commit,copy-done",
        ],
    )
    .await;
    let (code, stdout, stderr) = finish(load_from_file(&stream, &t.url, &[]));
    let injected = events(&t.events, "retry-injected");
    assert_eq!(code, 0, "40001 is retried: {stderr}\n{injected:?}");
    for point in ["stmt", "copy-done"] {
        assert!(
            injected.iter().filter(|e| e["point"] == point).count() >= 1,
            "too few 40001 injected at {point}: {injected:?}"
        );
    }
    let results = ndjson(stdout.as_bytes());
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["rows"], SMALL);
    assert_eq!(results[0]["status"], "ok");
    let expected = fingerprint(&source).await;
    assert_eq!(expected.0, SMALL);
    assert_eq!(fingerprint(&t.direct).await, expected);
    assert_eq!(
        ledger(&t.direct).await,
        vec![(
            "public.items".to_string(),
            "loaded".to_string(),
            Some(SMALL)
        )]
    );
}

/// A 40001 on molt-load's first statement (`SELECT version()` when it
/// connects) is retried like any other.
#[tokio::test]
async fn a_40001_at_start_up_is_retried() {
    let source = seed_rows("resil_40001_start_src", SMALL).await;
    let dir = tempfile::tempdir().unwrap();
    let stream = dump_to_file(&source, dir.path());
    let t = faulty_target(
        "resil_40001_start",
        &[
            "--retry-rate",
            "1",
            "--retry-max",
            "1",
            "--retry-at",
            "stmt",
            "--retry-match",
            r"^SELECT version\(\)$",
        ],
    )
    .await;
    let (code, _, stderr) = finish(load_from_file(&stream, &t.url, &[]));
    assert_eq!(events(&t.events, "retry-injected").len(), 1);
    assert_eq!(code, 0, "a 40001 at start-up is retried: {stderr}");
    assert_eq!(fingerprint(&t.direct).await, fingerprint(&source).await);
}

#[tokio::test]
async fn a_source_cut_mid_dump_fails_both_and_leaves_nothing_then_rerun_is_exact() {
    let source = seed_rows("resil_srccut_src", SMALL).await;
    let dir = tempfile::tempdir().unwrap();
    let events_file = dir.path().join("events.jsonl");
    // 1 MB into the ~2.2 MB of `COPY (...) TO STDOUT` output the source
    // connection is reset.
    let proxy = OwnStandin::start_in_front_of(
        &pg_source_url(),
        &[
            "--passthrough",
            "--events",
            events_file.to_str().unwrap(),
            "--cut-match",
            "TO STDOUT",
            "--cut-direction",
            "down",
            "--cut-unit",
            "bytes",
            "--cut-after",
            "1000000",
        ],
    );
    let target = fresh_pg_database(&pg_target_url(), "resil_srccut").await;
    let dump_args = |source: &str| -> Vec<String> {
        vec![
            "--quiet".into(),
            "--source".into(),
            source.into(),
            "--table".into(),
            "public.items".into(),
        ]
    };
    let load_args = vec![
        "--quiet".to_string(),
        "--target".into(),
        target.clone(),
        "--batch-rows".into(),
        "1000".into(),
    ];
    let out = run_pipe(
        &[
            ("molt-dump", dump_args(&proxy.url_for(&source))),
            ("molt-load", load_args.clone()),
        ],
        None,
        &[],
    );
    assert_eq!(events(&events_file, "cut").len(), 1, "{}", out.report());
    assert_ne!(out.statuses[0], 0, "molt-dump must fail: {}", out.report());
    assert!(
        out.stderrs[0].contains("table public.items: reading rows"),
        "{}",
        out.stderrs[0]
    );
    assert_eq!(out.statuses[1], 1, "molt-load must fail: {}", out.report());
    assert!(
        out.records().iter().all(|r| r["type"] != "result"),
        "no result for a torn section: {}",
        out.report()
    );
    let load_err = &out.stderrs[1];
    if load_err.contains("holds no table sections")
        || load_err.contains("ended after 0 whole section(s) without its close record")
    {
        // The reset can take with it what the source had sent but
        // molt-dump had not read, and molt-dump writes its stream in
        // 256 kB blocks: if none was complete, molt-load saw only the
        // stream header (rare with 1 MB through the connection), and says
        // the stream holds no section, or lacks its close record.
        assert!(ledger(&target).await.is_empty());
        assert_eq!(
            count_tables(&target).await,
            0,
            "no table created: {load_err}"
        );
    } else {
        // The usual case: the section started, batches of it were
        // committed, then the stream ended without its `end`.
        assert!(
            load_err.contains("table public.items shard 1/1")
                && load_err.contains("marked failed in _molt.sections"),
            "{load_err}"
        );
        assert_eq!(
            ledger(&target).await,
            vec![("public.items".to_string(), "failed".to_string(), None)]
        );
        assert_eq!(strict_count(&target).await, 0, "nothing half-written");
        let (ins, del) =
            inserted_and_deleted(&target, |(ins, del)| ins >= 2000 && del == ins).await;
        assert!(
            ins >= 2000 && del == ins,
            "whole batches were committed ({ins}) and all removed again ({del})"
        );
    }

    let out = run_pipe(
        &[("molt-dump", dump_args(&source)), ("molt-load", load_args)],
        None,
        &[],
    );
    out.assert_success();
    let results: Vec<_> = out
        .records()
        .into_iter()
        .filter(|r| r["type"] == "result")
        .collect();
    assert_eq!(results.len(), 1, "{}", out.report());
    assert_eq!(results[0]["rows"], SMALL);
    assert_eq!(results[0]["status"], "ok");
    let expected = fingerprint(&source).await;
    assert_eq!(expected.0, SMALL);
    assert_eq!(fingerprint(&target).await, expected);
    assert_eq!(
        ledger(&target).await,
        vec![(
            "public.items".to_string(),
            "loaded".to_string(),
            Some(SMALL)
        )]
    );
}

#[tokio::test]
async fn the_retry_budget_running_out_fails_the_section_and_leaves_none_of_its_rows() {
    let source = seed_rows("resil_budget_src", SMALL).await;
    let dir = tempfile::tempdir().unwrap();
    let stream = dump_to_file(&source, dir.path());
    // Every connection is cut right after its CopyDone is forwarded: the
    // server commits the first batch but molt-load never hears of it, and
    // the one retry (through a TEMP table) is cut the same way.
    let t = faulty_target(
        "resil_budget",
        &["--cut-at", "copy-done", "--cut-times", "1000"],
    )
    .await;
    let (code, stdout, stderr) = finish(load_from_file(&stream, &t.url, &["--max-retries", "1"]));
    assert_eq!(code, 1, "out of retries: {stderr}");
    assert!(
        stderr.contains("table public.items shard 1/1")
            && stderr.contains("gave up after 1 retries"),
        "the error names the table and shard: {stderr}"
    );
    assert!(
        ndjson(stdout.as_bytes()).is_empty(),
        "no result for a failed section: {stdout}"
    );
    assert_eq!(
        events(&t.events, "cut").len(),
        2,
        "the batch and its one retry were cut"
    );
    let sections = ledger(&t.direct).await;
    assert_eq!(
        sections,
        vec![("public.items".to_string(), "failed".to_string(), None)]
    );
    assert_eq!(
        strict_count(&t.direct).await,
        0,
        "none of its rows are left"
    );
    // ... although the server did commit the first batch: the compensating
    // DELETE removed it.
    assert_eq!(
        inserted_and_deleted(&t.direct, |(ins, del)| ins == 5000 && del == 5000).await,
        (5000, 5000),
        "the first batch was committed by the server and deleted by molt-load"
    );

    // The same command without the fault completes it exactly.
    let clean = OwnStandin::start(&[]);
    let (code, stdout, stderr) = finish(load_from_file(&stream, &clean.url_for(&t.direct), &[]));
    assert_eq!(code, 0, "re-run: {stderr}");
    let results = ndjson(stdout.as_bytes());
    assert_eq!(results[0]["rows"], SMALL);
    assert_eq!(results[0]["status"], "ok");
    let expected = fingerprint(&source).await;
    assert_eq!(expected.0, SMALL);
    assert_eq!(fingerprint(&t.direct).await, expected);
    assert_eq!(
        ledger(&t.direct).await,
        vec![(
            "public.items".to_string(),
            "loaded".to_string(),
            Some(SMALL)
        )]
    );
}

/// A TCP proxy in front of the target that can cut every connection or
/// stall all traffic.
struct Proxy {
    port: u16,
    forwarded: Arc<AtomicU64>,
    stalled: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let forwarded = Arc::new(AtomicU64::new(0));
        let stalled = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (f, s, c) = (forwarded.clone(), stalled.clone(), connections.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                c.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let (f, s) = (f.clone(), s.clone());
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            while s.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(10));
                            }
                            match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    f.fetch_add(n as u64, Ordering::SeqCst);
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy {
            port,
            forwarded,
            stalled,
            connections,
        }
    }

    fn cut_all(&self) {
        for conn in self.connections.lock().unwrap().drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

#[tokio::test]
async fn connections_cut_and_stalled_by_a_proxy_are_retried() {
    let source = seed_source().await;
    let target = fresh_pg_database(&pg_target_url(), "resil_proxy").await;
    let upstream = target
        .split('@')
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let proxy = Proxy::start(upstream.clone());
    let via_proxy = target.replace(&upstream, &format!("127.0.0.1:{}", proxy.port));
    let dir = tempfile::tempdir().unwrap();
    let stream = dump_to_file(&source, dir.path());

    let child = load_from_file(&stream, &via_proxy, &["--max-retries", "10"]);
    wait_for_partial(&target).await;
    let before = proxy.forwarded.load(Ordering::SeqCst);
    proxy.cut_all();
    // Let the load reconnect and move on, then stall everything for a while.
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.forwarded.load(Ordering::SeqCst) < before + 1_000_000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.stalled.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.stalled.store(false, Ordering::SeqCst);
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, 0, "the load must retry and finish: {stderr}");
    assert_eq!(ndjson(stdout.as_bytes())[0]["rows"], ROWS);
    assert_eq!(
        fingerprint(&target).await,
        fingerprint(&source).await,
        "nothing duplicated or missing"
    );
}

#[tokio::test]
async fn permanent_errors_fail_fast_with_sqlstate_table_and_shard() {
    // A wrong password: no retries, SQLSTATE 28P01, the password never shown.
    let hba = "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n";
    let server = OwnPgServer::start("resil-auth", None, Some(hba));
    pg_connect(&server.url)
        .await
        .batch_execute("CREATE ROLE molt_pw LOGIN PASSWORD 'right-horse-battery'")
        .await
        .unwrap();
    let wrong = server.url.replace("postgres@", "molt_pw:Wr0ng-Pa55word@");
    let stream = "{\"type\":\"stream\",\"version\":\"1.0\",\"producer\":\"test\"}\n";
    let started = Instant::now();
    let out = run_pipe(
        &[("molt-load", vec!["--target".into(), wrong])],
        Some(stream.as_bytes()),
        &[],
    );
    out.assert_statuses(&[1]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a wrong password must not be retried for long"
    );
    assert!(out.stderrs[0].contains("28P01"), "{}", out.stderrs[0]);
    assert!(
        !out.stderrs[0].contains("Wr0ng-Pa55word"),
        "{}",
        out.stderrs[0]
    );

    // A missing table with --table-handling none, and a constraint violation.
    let source = fresh_pg_database(&pg_source_url(), "resil_perm").await;
    psql_exec(&source, "CREATE TABLE items (id bigint PRIMARY KEY, region char(1), body text); INSERT INTO items VALUES (1, 'A', 'x'), (2, 'B', 'forbidden')");
    let target = fresh_pg_database(&pg_target_url(), "resil_perm").await;
    let dump = |filter: Option<&str>| {
        let mut args = vec![
            "--quiet".to_string(),
            "--source".into(),
            source.clone(),
            "--table".into(),
            "public.items".into(),
        ];
        if let Some(f) = filter {
            args.extend(["--filter".into(), f.into()]);
        }
        args
    };
    let out = run_pipe(
        &[
            ("molt-dump", dump(None)),
            (
                "molt-load",
                vec![
                    "--target".into(),
                    target.clone(),
                    "--table-handling".into(),
                    "none".into(),
                ],
            ),
        ],
        None,
        &[],
    );
    out.assert_statuses(&[0, 1]);
    assert!(out.stderrs[1].contains("items"), "{}", out.stderrs[1]);

    psql_exec(&target, "CREATE TABLE items (id bigint PRIMARY KEY, region char(1), body text CHECK (body <> 'forbidden'))");
    let started = Instant::now();
    let out = run_pipe(
        &[
            ("molt-dump", dump(Some("region = 'B'"))),
            ("molt-load", vec!["--target".into(), target.clone()]),
        ],
        None,
        &[],
    );
    out.assert_statuses(&[0, 1]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a constraint violation must not be retried"
    );
    let err = &out.stderrs[1];
    assert!(
        err.contains("23514") && err.contains("public.items") && err.contains("1/1"),
        "{err}"
    );
    assert_eq!(count(&target).await, 0);
}
