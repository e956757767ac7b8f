//! `--metrics-addr`: the Prometheus endpoint of molt-load, molt-verify and
//! molt-dump, scraped over HTTP while the tools run against real servers,
//! and compared with what the tools print (docs/metrics.md).

use std::collections::BTreeMap;
use std::time::Duration;

use molt_tests::*;

const WAIT: Duration = Duration::from_secs(120);

/// `schema.name` of a record's `table`.
fn table_of(record: &serde_json::Value) -> String {
    format!(
        "{}.{}",
        record["table"]["schema"].as_str().expect("a schema"),
        record["table"]["name"].as_str().expect("a name")
    )
}

fn results(records: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    records.iter().filter(|r| r["type"] == "result").collect()
}

/// A source with `wide` (6000 rows of about 900 bytes, so that a COPY chunk
/// of 256 KB holds under 300 of them) and `small` (500 rows), and its
/// stream from molt-dump, one line per element.
async fn source_stream(prefix: &str) -> (String, Vec<String>) {
    let src = fresh_pg_database(&pg_source_url(), &format!("{prefix}_src")).await;
    psql_exec(
        &src,
        "CREATE TABLE wide (id int8 PRIMARY KEY, pad text NOT NULL);
         INSERT INTO wide SELECT i, repeat(md5(i::text), 28) FROM generate_series(1, 6000) i;
         CREATE TABLE small (id int4 PRIMARY KEY, v text);
         INSERT INTO small SELECT i, 'v' || i FROM generate_series(1, 500) i;",
    );
    let dump = run_pipe(
        &[(
            "molt-dump",
            vec![
                "--source".into(),
                src.clone(),
                "--table".into(),
                "public.wide".into(),
                "--table".into(),
                "public.small".into(),
                // One job: sections in the order given (wide first), which
                // the mid-run checks count on.
                "--jobs".into(),
                "1".into(),
                "--quiet".into(),
            ],
        )],
        None,
        &[],
    );
    dump.assert_success();
    let lines = dump.stdout_str().lines().map(str::to_owned).collect();
    (src, lines)
}

fn load_args(target: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "--target".to_owned(),
        target.to_owned(),
        "--metrics-addr".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args
}

/// Polls the endpoint until `done` holds for a scrape (or panics after
/// `WAIT`, with the last scrape).
fn scrape_until(addr: &str, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let s = scrape(addr);
        if done(&s) {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never saw {what}; last scrape:\n{}",
            s.text
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn load_metrics_rise_during_the_run_and_end_equal_the_result_records() {
    let (_src, lines) = source_stream("metrics_load").await;
    let target = fresh_pg_database(&pg_target_url(), "metrics_load_tgt").await;
    let header = lines
        .iter()
        .position(|l| l.contains(r#""type":"table""#) && l.contains(r#""name":"wide""#))
        .expect("the stream has a section of wide");

    let mut load = RunningTool::start("molt-load", &load_args(&target, &["--batch-rows", "2000"]));
    let addr = load.metrics_addr();
    // Before any input: the endpoint answers, with every metric declared
    // and the tool named, and no series of a table yet.
    let empty = scrape(&addr);
    for name in [
        "molt_rows",
        "molt_bytes",
        "molt_sections",
        "molt_retries",
        "molt_copy_batches_in_flight",
    ] {
        assert!(
            empty.text.contains(&format!("# TYPE {name} ")),
            "{name} in\n{}",
            empty.text
        );
    }
    assert_eq!(
        empty.get("molt_copy_batches_in_flight", &[("tool", "molt-load")]),
        Some(0.0),
        "{}",
        empty.text
    );
    assert_eq!(empty.sum("molt_rows_total", &[]), 0.0);

    // Up to row 2500 of wide: one batch of 2000 rows committed, the next
    // one open (its first chunk sent, the rest waiting for more input).
    let first: String = lines[..header + 1 + 2500]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    load.feed(first.as_bytes());
    let mid = scrape_until(&addr, "2000 rows of wide and a batch in flight", |s| {
        s.get("molt_rows_total", &[("table", "public.wide")]) == Some(2000.0)
            && s.get("molt_copy_batches_in_flight", &[]) == Some(1.0)
    });
    assert!(
        mid.get("molt_bytes_total", &[("table", "public.wide")])
            .unwrap_or(0.0)
            > 2000.0 * 800.0,
        "{}",
        mid.text
    );
    assert_eq!(mid.sum("molt_sections_total", &[]), 0.0, "{}", mid.text);

    let rest: String = lines[header + 1 + 2500..]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    load.feed(rest.as_bytes());
    // Every section's result record is out; stdin is still open, so the
    // process (and its endpoint) is still there.
    let records = load.wait_for_records(WAIT, |r| results(r).len() == 2);
    let end = scrape(&addr);
    let mut expected: BTreeMap<String, (f64, f64, f64)> = BTreeMap::new();
    for r in results(&records) {
        assert_eq!(r["status"], "ok", "{r}");
        let e = expected.entry(table_of(r)).or_default();
        e.0 += r["rows"].as_f64().unwrap();
        e.1 += r["bytes"].as_f64().unwrap();
        e.2 += 1.0;
    }
    assert_eq!(expected["public.wide"].0, 6000.0);
    assert_eq!(expected["public.small"].0, 500.0);
    for (table, (rows, bytes, sections)) in &expected {
        let t = [("table", table.as_str()), ("tool", "molt-load")];
        assert_eq!(end.get("molt_rows_total", &t), Some(*rows), "{}", end.text);
        assert_eq!(
            end.get("molt_bytes_total", &t),
            Some(*bytes),
            "{}",
            end.text
        );
        assert_eq!(
            end.get(
                "molt_sections_total",
                &[("table", table.as_str()), ("status", "done")]
            ),
            Some(*sections),
            "{}",
            end.text
        );
    }
    assert_eq!(end.sum("molt_sections_total", &[]), 2.0, "{}", end.text);
    assert_eq!(end.get("molt_copy_batches_in_flight", &[]), Some(0.0));
    assert_eq!(end.sum("molt_retries_total", &[]), 0.0, "{}", end.text);
    let (code, stderr) = load.finish(WAIT);
    assert_eq!(code, 0, "{stderr}");

    // Run again: both sections are skipped, and counted so; nothing moves.
    let mut again = RunningTool::start("molt-load", &load_args(&target, &[]));
    let addr = again.metrics_addr();
    let all: String = lines.iter().map(|l| format!("{l}\n")).collect();
    again.feed(all.as_bytes());
    let records = again.wait_for_records(WAIT, |r| results(r).len() == 2);
    assert!(results(&records).iter().all(|r| r["status"] == "skipped"));
    let skipped = scrape(&addr);
    assert_eq!(
        skipped.sum("molt_sections_total", &[("status", "skipped")]),
        2.0,
        "{}",
        skipped.text
    );
    assert_eq!(skipped.sum("molt_sections_total", &[]), 2.0);
    assert_eq!(skipped.sum("molt_rows_total", &[]), 0.0, "{}", skipped.text);
    let (code, stderr) = again.finish(WAIT);
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test]
async fn load_retries_are_counted_by_sqlstate() {
    let (_src, lines) = source_stream("metrics_retry").await;
    let direct = fresh_pg_database(&pg_plain_target_url(), "metrics_retry_tgt").await;
    // The first two COPYs to end are refused with 40001 (the batch, then
    // its retry through the TEMP table); the third goes through.
    let standin = OwnStandin::start(&[
        "--retry-rate",
        "1",
        "--retry-max",
        "2",
        "--retry-at",
        "copy-done",
    ]);
    let mut load = RunningTool::start("molt-load", &load_args(&standin.url_for(&direct), &[]));
    let addr = load.metrics_addr();
    let all: String = lines.iter().map(|l| format!("{l}\n")).collect();
    load.feed(all.as_bytes());
    let records = load.wait_for_records(WAIT, |r| results(r).len() == 2);
    let s = scrape(&addr);
    assert_eq!(
        s.get(
            "molt_retries_total",
            &[("sqlstate", "40001"), ("tool", "molt-load")]
        ),
        Some(2.0),
        "{}",
        s.text
    );
    assert_eq!(s.sum("molt_retries_total", &[]), 2.0, "{}", s.text);
    for r in results(&records) {
        assert_eq!(
            s.get("molt_rows_total", &[("table", &table_of(r))]),
            r["rows"].as_f64(),
            "{}",
            s.text
        );
    }
    let (code, stderr) = load.finish(WAIT);
    assert_eq!(code, 0, "{stderr}");
    let rows = pg_connect(&direct)
        .await
        .query_one("SELECT count(*) FROM wide", &[])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(rows, 6000, "every row exactly once despite the retries");
}

#[tokio::test]
async fn a_failed_section_is_counted_and_linger_keeps_the_final_values() {
    let (_src, mut lines) = source_stream("metrics_failed").await;
    let target = fresh_pg_database(&pg_target_url(), "metrics_failed_tgt").await;
    // One value of small changed: the section's checksum no longer holds.
    let row = lines
        .iter()
        .position(|l| l.contains("\"v10\""))
        .expect("row 10 of small");
    lines[row] = lines[row].replace("\"v10\"", "\"v1O\"");
    let mut load = RunningTool::start(
        "molt-load",
        &load_args(&target, &["--metrics-linger", "30"]),
    );
    let addr = load.metrics_addr();
    let all: String = lines.iter().map(|l| format!("{l}\n")).collect();
    // The load stops reading at the damaged section, so the rest of the
    // stream may meet a closed pipe.
    let _ = load.try_feed(all.as_bytes());
    load.close_stdin();
    // The run is over (its error said) and the endpoint still answers.
    load.wait_for_stderr("error:", WAIT);
    load.wait_for_stderr("--metrics-linger", WAIT);
    let s = scrape(&addr);
    assert_eq!(
        s.get(
            "molt_sections_total",
            &[("table", "public.small"), ("status", "failed")]
        ),
        Some(1.0),
        "{}",
        s.text
    );
    assert_eq!(s.get("molt_copy_batches_in_flight", &[]), Some(0.0));
    let (code, stderr) = load.finish(WAIT);
    assert_eq!(code, 1, "{stderr}");
}

#[tokio::test]
async fn verify_counts_chunks_and_each_kind_of_difference() {
    let (src, lines) = source_stream("metrics_verify").await;
    let target = fresh_pg_database(&pg_target_url(), "metrics_verify_tgt").await;
    let all: String = lines.iter().map(|l| format!("{l}\n")).collect();
    run_pipe(
        &[(
            "molt-load",
            vec!["--target".into(), target.clone(), "--quiet".into()],
        )],
        Some(all.as_bytes()),
        &[],
    )
    .assert_success();
    // One difference of each kind in wide; small is left alone.
    psql_exec(
        &target,
        "DELETE FROM wide WHERE id = 10;
         INSERT INTO wide VALUES (100000, 'extra');
         UPDATE wide SET pad = 'changed' WHERE id = 2500;",
    );
    let mut verify = RunningTool::start(
        "molt-verify",
        &[
            "--source".into(),
            src.clone(),
            "--target".into(),
            target.clone(),
            "--table".into(),
            "public.wide".into(),
            "--table".into(),
            "public.small".into(),
            "--chunk-rows".into(),
            "1000".into(),
            "--metrics-addr".into(),
            "127.0.0.1:0".into(),
            "--metrics-linger".into(),
            "30".into(),
        ],
    );
    let addr = verify.metrics_addr();
    let records = verify.wait_for_records(WAIT, |r| r.iter().any(|r| r["kind"] == "summary"));
    let s = scrape(&addr);
    let summaries: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["kind"] == "table_summary")
        .collect();
    assert_eq!(summaries.len(), 2);
    for summary in summaries {
        let table = table_of(summary);
        let t = [("table", table.as_str()), ("tool", "molt-verify")];
        assert_eq!(
            s.get("molt_verify_chunks_total", &t),
            summary["chunks"].as_f64(),
            "{table}: {summary}\n{}",
            s.text
        );
        let compared: f64 = ["matched", "missing", "extraneous", "mismatched"]
            .iter()
            .map(|k| summary[k].as_f64().unwrap())
            .sum();
        assert_eq!(s.get("molt_rows_total", &t), Some(compared), "{}", s.text);
        for kind in ["missing", "extraneous", "mismatched"] {
            let n = summary[kind].as_f64().unwrap();
            assert_eq!(
                s.sum(
                    "molt_verify_differences_total",
                    &[("table", table.as_str()), ("kind", kind)]
                ),
                n,
                "{table} {kind}\n{}",
                s.text
            );
            assert_eq!(n, if table == "public.wide" { 1.0 } else { 0.0 });
        }
    }
    assert!(
        s.get("molt_verify_chunks_total", &[("table", "public.wide")])
            .unwrap()
            >= 6.0,
        "6000 rows in chunks of 1000: {}",
        s.text
    );
    let (code, stderr) = verify.finish(WAIT);
    assert_eq!(code, 3, "differences found: {stderr}");
}

#[test]
fn a_metrics_port_in_use_or_a_bad_address_fails_before_any_work() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = taken.local_addr().unwrap().to_string();
    // Nothing listens on port 1: reaching the database would fail, later.
    let nowhere = "postgres://postgres@127.0.0.1:1/nowhere";
    let runs: [(&str, Vec<&str>); 3] = [
        (
            "molt-dump",
            vec!["--source", nowhere, "--table", "public.t"],
        ),
        ("molt-load", vec!["--target", nowhere]),
        (
            "molt-verify",
            vec!["--source", nowhere, "--target", nowhere, "--table", "t"],
        ),
    ];
    for (tool, args) in &runs {
        let with = |extra: &[&str]| {
            let mut a: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
            a.extend(extra.iter().map(|s| (*s).to_owned()));
            run_pipe(&[(*tool, a)], None, &[])
        };
        let out = with(&["--metrics-addr", &addr]);
        let err = &out.stderrs[0];
        assert_eq!(out.statuses, vec![1], "{tool}: {err}");
        assert!(
            err.contains(&format!("--metrics-addr {addr}")) && err.contains("in use"),
            "{tool} names the address and the reason: {err}"
        );
        assert!(
            !err.contains("127.0.0.1:1"),
            "{tool} failed before connecting anywhere: {err}"
        );
        assert!(out.stdout.is_empty(), "{tool} wrote no data");

        for bad in ["not-an-address", "127.0.0.1", "127.0.0.1:99999"] {
            let out = with(&["--metrics-addr", bad]);
            let err = &out.stderrs[0];
            assert_eq!(out.statuses, vec![2], "{tool} {bad}: {err}");
            assert!(
                err.contains(&format!("'{bad}'")) && err.contains("HOST:PORT"),
                "{tool} {bad}: {err}"
            );
            assert!(out.stdout.is_empty());
        }
    }
    drop(taken);
}

/// Inodes of the TCP sockets in LISTEN state on this machine.
fn listening_inodes() -> Vec<String> {
    let mut inodes = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local remote st ... uid timeout inode
            if fields.get(3) == Some(&"0A") {
                if let Some(inode) = fields.get(9) {
                    inodes.push((*inode).to_owned());
                }
            }
        }
    }
    inodes
}

/// The socket inodes a process holds open.
fn socket_inodes(pid: u32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn without_the_flag_no_port_is_opened() {
    let target = fresh_pg_database(&pg_target_url(), "metrics_noport").await;
    for with_flag in [false, true] {
        let mut args = vec!["--target".to_owned(), target.clone()];
        if with_flag {
            args.extend(["--metrics-addr".to_owned(), "127.0.0.1:0".to_owned()]);
        }
        let load = RunningTool::start("molt-load", &args);
        // Connected to the target (a socket of its own), waiting for stdin.
        let deadline = std::time::Instant::now() + WAIT;
        while socket_inodes(load.pid()).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "molt-load never connected"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        let listening = listening_inodes();
        let own: Vec<String> = socket_inodes(load.pid())
            .into_iter()
            .filter(|i| listening.contains(i))
            .collect();
        assert_eq!(
            own.len(),
            usize::from(with_flag),
            "listening sockets of molt-load (--metrics-addr given: {with_flag}): {own:?}"
        );
        let (code, stderr) = load.finish(WAIT);
        assert_eq!(code, 1, "an empty stdin is an error: {stderr}");
        assert_eq!(stderr.contains("metrics on http://"), with_flag, "{stderr}");
    }
}

/// `molt_...` names in `text`.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("molt_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].trim_end_matches('_').to_owned());
        rest = &tail[end..];
    }
    names
}

#[tokio::test]
async fn the_dashboard_and_the_docs_name_only_metrics_that_exist() {
    let target = fresh_pg_database(&pg_target_url(), "metrics_names").await;
    let mut load = RunningTool::start("molt-load", &load_args(&target, &[]));
    let served = scrape(&load.metrics_addr()).text;
    drop(load);
    // What the tools serve (a counter's samples end in _total), and what
    // phase.sh writes.
    let mut exist = std::collections::BTreeSet::new();
    for line in served.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            exist.insert(if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_owned()
            });
        }
    }
    let phase_sh = std::fs::read_to_string(workspace_dir().join("scripts/phase.sh")).unwrap();
    let textfile: Vec<String> = metric_names(&phase_sh)
        .into_iter()
        .filter(|n| n.starts_with("molt_phase_") && n != "molt_phase_")
        .collect();
    assert!(textfile.len() >= 8, "{textfile:?}");
    exist.extend(textfile);

    let dashboard =
        std::fs::read_to_string(workspace_dir().join("docs/grafana-molt.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let mut exprs = String::new();
    for panel in json["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            exprs.push_str(t["expr"].as_str().unwrap());
            exprs.push('\n');
        }
    }
    let used = metric_names(&exprs);
    for name in &used {
        assert!(
            exist.contains(name),
            "the dashboard queries {name}, which nothing serves"
        );
    }
    for needed in [
        "molt_rows_total",
        "molt_bytes_total",
        "molt_sections_total",
        "molt_retries_total",
        "molt_copy_batches_in_flight",
        "molt_verify_differences_total",
        "molt_phase_step_state",
    ] {
        assert!(used.contains(needed), "no panel shows {needed}");
    }
    let docs = std::fs::read_to_string(workspace_dir().join("docs/metrics.md")).unwrap();
    for name in &exist {
        assert!(
            docs.contains(name.as_str()),
            "docs/metrics.md does not explain {name}"
        );
    }
}
