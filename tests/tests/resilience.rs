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

/// A source table of `ROWS` rows with ~100-byte bodies, and its fingerprint.
async fn seed_source() -> String {
    let url = fresh_pg_database(&pg_source_url(), "resil_src").await;
    psql_exec(
        &url,
        format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, region char(1), body text);
             INSERT INTO items SELECT i, chr(65 + i % 4), repeat(md5(i::text), 3) FROM generate_series(1, {ROWS}) i;"
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
    let source = seed_source().await;
    let server = OwnPgServer::start("resil-target", None, None);
    let target = server.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let stream = dump_to_file(&source, dir.path());

    let child = load_from_file(&stream, &target, &["--max-retries", "10"]);
    wait_for_partial(&target).await;
    server.stop();
    std::thread::sleep(Duration::from_secs(2));
    server.restart();
    let (code, _, stderr) = finish(child);
    if code != 0 {
        // Out of retries is allowed; losing or duplicating rows is not.
        assert!(stderr.contains("public.items"), "{stderr}");
        let (code, _, stderr) = finish(load_from_file(&stream, &target, &[]));
        assert_eq!(code, 0, "re-run after the restart: {stderr}");
    }
    assert_eq!(fingerprint(&target).await, fingerprint(&source).await);
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
