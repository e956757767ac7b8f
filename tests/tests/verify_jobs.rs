//! molt-verify `--jobs` and `--rows-per-second`: tables compared at once
//! report exactly what one job reports, in the same order, and the
//! throttle holds the source to its rate.
//!
//! Needs `MOLT_TEST_PG_SOURCE` and `MOLT_TEST_PG_TARGET`; build the tools
//! first (`cargo build --release`).

use molt_tests::*;
use serde_json::Value;

const TABLES: usize = 6;
const ROWS: usize = 3000;

/// Six loaded tables, with one planted difference in `t3` and one
/// missing row in `t5`.
async fn loaded() -> (String, String) {
    let pg = fresh_pg_database(&pg_source_url(), "vjobs_src").await;
    let ddl: String = (0..TABLES)
        .map(|i| {
            format!(
                "CREATE TABLE t{i} (id int PRIMARY KEY, v text NOT NULL);
                 INSERT INTO t{i} SELECT g, md5(g::text) FROM generate_series(1, {ROWS}) g;"
            )
        })
        .collect();
    psql_exec(&pg, ddl);
    let tgt = fresh_pg_database(&pg_target_url(), "vjobs_tgt").await;
    run_pipe(
        &[
            (
                "molt-dump",
                vec!["--source".into(), pg.clone(), "--all".into()],
            ),
            ("molt-load", vec!["--target".into(), tgt.clone()]),
        ],
        None,
        &[],
    )
    .assert_success();
    psql_exec(
        &tgt,
        "UPDATE t3 SET v = 'planted' WHERE id = 1234; DELETE FROM t5 WHERE id = 77;",
    );
    (pg, tgt)
}

fn verify(pg: &str, tgt: &str, extra: &[&str]) -> PipeOutcome {
    let mut args: Vec<String> = vec![
        "--source".into(),
        pg.into(),
        "--target".into(),
        tgt.into(),
        "--phase".into(),
        "p".into(),
    ];
    for i in (0..TABLES).rev() {
        args.push("--table".into());
        args.push(format!("t{i}"));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    run_pipe(&[("molt-verify", args)], None, &[])
}

/// The report records without their timings.
fn reports(out: &PipeOutcome) -> Vec<Value> {
    out.records()
        .into_iter()
        .map(|mut r| {
            if let Some(m) = r.as_object_mut() {
                m.remove("seconds");
            }
            r
        })
        .collect()
}

#[tokio::test]
async fn parallel_jobs_report_what_one_job_reports_in_the_same_order() {
    let (pg, tgt) = loaded().await;
    let one = verify(&pg, &tgt, &["--jobs", "1"]);
    let four = verify(&pg, &tgt, &["--jobs", "4"]);
    assert_eq!(one.statuses, vec![3], "{}", one.report());
    assert_eq!(four.statuses, vec![3], "{}", four.report());
    let (a, b) = (reports(&one), reports(&four));
    assert_eq!(a, b, "--jobs 4 reports differ from --jobs 1");
    let summaries: Vec<String> = b
        .iter()
        .filter(|r| r["kind"] == "table_summary")
        .map(|r| r["table"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        summaries,
        ["t5", "t4", "t3", "t2", "t1", "t0"],
        "in the order given"
    );
    let findings: Vec<(String, String)> = b
        .iter()
        .filter(|r| r["kind"] == "mismatch" || r["kind"] == "missing")
        .map(|r| {
            (
                r["kind"].as_str().unwrap().into(),
                r["table"]["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        findings,
        [
            ("missing".to_string(), "t5".to_string()),
            ("mismatch".into(), "t3".into())
        ]
    );
    // Every job recorded its table in the ledger.
    assert_eq!(
        pg_value(
            &tgt,
            "SELECT string_agg(DISTINCT table_name || ':' || ok::text, ',' ORDER BY table_name || ':' || ok::text) \
             FROM _molt.verify_results WHERE phase = 'p'"
        )
        .await,
        "t0:true,t1:true,t2:true,t3:false,t4:true,t5:false"
    );
}

#[tokio::test]
async fn rows_per_second_holds_the_source_to_the_rate() {
    let (pg, tgt) = loaded().await;
    // 18,000 source rows at 6,000 a second: no sooner than about 3 s,
    // whatever the machine. (A lower bound only: nothing here times speed.)
    let started = std::time::Instant::now();
    let out = verify(
        &pg,
        &tgt,
        &[
            "--jobs",
            "3",
            "--rows-per-second",
            "6000",
            "--chunk-rows",
            "1000",
        ],
    );
    let elapsed = started.elapsed();
    assert_eq!(out.statuses, vec![3], "{}", out.report());
    assert!(
        elapsed >= std::time::Duration::from_millis(2500),
        "finished in {elapsed:?}: the throttle did not hold"
    );
}
