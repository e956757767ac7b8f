//! Exit 0 means the work was done. A target reset behind the ledger's back
//! is loaded again; an empty pipe is an error; a target connection cut for
//! good mid-load ends the run with 1 and leaves no half section.

use molt_tests::*;

const ROWS: i64 = 2_000;

async fn source() -> String {
    let url = fresh_pg_database(&pg_source_url(), "silent_src").await;
    psql_exec(
        &url,
        format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, region text NOT NULL, body text);
             INSERT INTO items SELECT i, chr(65 + i % 2), md5(i::text) FROM generate_series(1, {ROWS}) i;"
        ),
    );
    url
}

fn dump_load(src: &str, tgt: &str, load_extra: &[&str]) -> PipeOutcome {
    let mut load = vec!["--target".to_string(), tgt.to_string()];
    load.extend(load_extra.iter().map(|s| s.to_string()));
    run_pipe(
        &[
            (
                "molt-dump",
                vec![
                    "--source".into(),
                    src.into(),
                    "--table".into(),
                    "public.items".into(),
                    "--filter".into(),
                    "region = 'A'".into(),
                ],
            ),
            ("molt-load", load),
        ],
        None,
        &[],
    )
}

async fn count(url: &str, sql: &str) -> i64 {
    pg_connect(url)
        .await
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

fn only_result(out: &PipeOutcome) -> serde_json::Value {
    let results: Vec<_> = out
        .records()
        .into_iter()
        .filter(|r| r["type"] == "result")
        .collect();
    assert_eq!(results.len(), 1, "{results:?}\n{}", out.report());
    results.into_iter().next().unwrap()
}

#[tokio::test]
async fn a_target_reset_behind_the_ledger_is_loaded_again() {
    let src = source().await;
    let tgt = fresh_pg_database(&pg_target_url(), "silent_reset").await;
    let half = ROWS / 2;
    let first = dump_load(&src, &tgt, &[]);
    first.assert_success();
    assert_eq!(only_result(&first)["status"], "ok");

    // Unchanged: skipped, and the record says what was checked.
    let again = dump_load(&src, &tgt, &[]);
    again.assert_success();
    let r = only_result(&again);
    assert_eq!(r["status"], "skipped", "{r}");
    assert_eq!(
        r["reason"],
        "the ledger has it loaded with the same rows and digest, and the target holds that many rows"
    );

    // Each way of resetting the target, then the same command again.
    let resets = [
        (
            "TRUNCATE items",
            format!("the ledger has it loaded with {half} rows but the target holds 0 of them"),
        ),
        (
            "DELETE FROM items WHERE id < 100",
            format!(
                "the ledger has it loaded with {half} rows but the target holds {} of them",
                half - 49
            ),
        ),
        (
            "DROP TABLE items; CREATE TABLE items (id bigint PRIMARY KEY, region text NOT NULL, body text)",
            "the ledger has it loaded into an earlier table public.items (dropped and created again since)".to_string(),
        ),
    ];
    for (reset, reason) in resets {
        psql_exec(&tgt, reset);
        let out = dump_load(&src, &tgt, &[]);
        out.assert_success();
        let r = only_result(&out);
        assert_eq!(r["status"], "ok", "after {reset}: {r}");
        assert_eq!(r["rows"], half, "after {reset}: {r}");
        assert_eq!(r["reason"], reason.as_str(), "after {reset}: {r}");
        assert_eq!(
            count(&tgt, "SELECT count(*) FROM items").await,
            half,
            "after {reset}"
        );
    }

    // A table dropped and not created again: molt-load creates it (a new
    // table, so the ledger's entry is of an earlier one) and loads it.
    psql_exec(&tgt, "DROP TABLE items");
    let out = dump_load(&src, &tgt, &[]);
    out.assert_success();
    let r = only_result(&out);
    assert_eq!(
        r["reason"],
        "the ledger has it loaded into an earlier table public.items (dropped and created again since)"
    );
    assert_eq!(count(&tgt, "SELECT count(*) FROM items").await, half);

    // --trust-ledger keeps the old, faster rule, and its risk: the empty
    // table stays empty, and the record says the target was not checked.
    psql_exec(&tgt, "TRUNCATE items");
    let out = dump_load(&src, &tgt, &["--trust-ledger"]);
    out.assert_success();
    let r = only_result(&out);
    assert_eq!(r["status"], "skipped", "{r}");
    assert!(
        r["reason"].as_str().unwrap().contains("--trust-ledger"),
        "{r}"
    );
    assert_eq!(count(&tgt, "SELECT count(*) FROM items").await, 0);
}

#[tokio::test]
async fn an_empty_pipe_is_an_error_unless_allowed() {
    let tgt = fresh_pg_database(&pg_target_url(), "silent_empty").await;
    let load = |stdin: &[u8], extra: &[&str]| {
        let mut args = vec!["--target".to_string(), tgt.clone()];
        args.extend(extra.iter().map(|s| s.to_string()));
        run_pipe(&[("molt-load", args)], Some(stdin), &[])
    };
    let out = load(b"", &[]);
    out.assert_statuses(&[1]);
    assert!(
        out.stderrs[0].contains("no molt stream on stdin"),
        "{}",
        out.report()
    );
    // A header and nothing else: molt-dump selected nothing.
    let header_only = b"{\"type\":\"stream\",\"version\":\"1.0\",\"producer\":\"test\"}\n";
    let out = load(header_only, &[]);
    out.assert_statuses(&[1]);
    assert!(
        out.stderrs[0].contains("holds no table sections"),
        "{}",
        out.report()
    );
    load(b"", &["--allow-empty"]).assert_statuses(&[0]);
    load(header_only, &["--allow-empty"]).assert_statuses(&[0]);
    assert_eq!(
        count(
            &tgt,
            "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = 'public'"
        )
        .await,
        0
    );

    // The other readers of slice records on stdin.
    let src = fresh_pg_database(&pg_source_url(), "silent_empty_src").await;
    let verify = run_pipe(
        &[(
            "molt-verify",
            vec![
                "--source".into(),
                src.clone(),
                "--target".into(),
                tgt.clone(),
            ],
        )],
        Some(b""),
        &[],
    );
    verify.assert_statuses(&[1]);
    assert!(
        verify.stderrs[0].contains("no slice records on stdin"),
        "{}",
        verify.report()
    );
    let dump = run_pipe(
        &[("molt-dump", vec!["--source".into(), src])],
        Some(b""),
        &[],
    );
    dump.assert_statuses(&[2]);
    assert!(
        dump.stderrs[0].contains("no slice records on stdin"),
        "{}",
        dump.report()
    );
}

#[tokio::test]
async fn a_target_cut_for_good_mid_copy_fails_the_run_and_leaves_nothing() {
    let src = source().await;
    let direct = fresh_pg_database(&pg_plain_target_url(), "silent_cut").await;
    // Every COPY connection is cut after 20 kB of its data (the section's
    // one batch is about 45 kB), every time.
    let standin = OwnStandin::start(&[
        "--cut-match",
        "^COPY ",
        "--cut-unit",
        "bytes",
        "--cut-after",
        "20000",
        "--cut-times",
        "1000",
    ]);
    let tgt = standin.url_for(&direct);
    let out = dump_load(
        &src,
        &tgt,
        &["--max-retries", "2", "--batch-rows", "100000"],
    );
    assert_eq!(out.statuses[1], 1, "{}", out.report());
    let err = &out.stderrs[1];
    assert!(
        err.contains("public.items") && err.contains("shard 1/1"),
        "the error names the section: {err}"
    );
    assert!(
        out.records().iter().all(|r| r["type"] != "result"),
        "no result record for a failed section: {:?}",
        out.records()
    );
    assert_eq!(
        count(&direct, "SELECT count(*) FROM items").await,
        0,
        "no half section is left behind"
    );
    assert_eq!(
        count(
            &direct,
            "SELECT count(*) FROM _molt.sections WHERE status = 'loaded'"
        )
        .await,
        0
    );
}
