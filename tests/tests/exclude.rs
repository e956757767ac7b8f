//! Choosing tables: `--exclude` globs and `--exclude-regex` expressions in
//! molt-dump, molt-slice (and the plan's `exclude`) and molt-verify, which
//! must agree on what a phase holds.
//!
//! Needs `MOLT_TEST_PG_SOURCE`, `MOLT_TEST_MYSQL_SOURCE` and
//! `MOLT_TEST_PG_TARGET`; build the tools first (`cargo build --release`).

use molt_tests::*;
use serde_json::Value;

const TABLES: &[&str] = &[
    "orders",
    "order_items",
    "audit_log",
    "audit_2024",
    "tmp_old",
    "catalog_12",
];

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

async fn target_tables(target: &str) -> String {
    pg_value(
        target,
        "SELECT coalesce(string_agg(table_name, ',' ORDER BY table_name), '') \
         FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .await
}

async fn source_with_tables() -> String {
    let pg = fresh_pg_database(&pg_source_url(), "excl_src").await;
    let ddl: String = TABLES
        .iter()
        .map(|t| {
            format!(
                "CREATE TABLE {t} (id int PRIMARY KEY, v text); INSERT INTO {t} VALUES (1, '{t}');"
            )
        })
        .collect();
    psql_exec(&pg, ddl);
    pg
}

#[tokio::test]
async fn dump_leaves_out_excluded_tables_and_refuses_to_exclude_everything() {
    let pg = source_with_tables().await;
    let tgt = fresh_pg_database(&pg_target_url(), "excl_tgt").await;
    let out = run_pipe(
        &[
            (
                "molt-dump",
                args(&[
                    "--source",
                    &pg,
                    "--all",
                    "--exclude",
                    "audit_*",
                    "--exclude-regex",
                    r"public\.tmp_.*",
                ]),
            ),
            ("molt-load", args(&["--target", &tgt])),
        ],
        None,
        &[],
    );
    out.assert_success();
    assert_eq!(
        target_tables(&tgt).await,
        "catalog_12,order_items,orders",
        "{}",
        out.report()
    );
    for t in ["public.audit_log", "public.audit_2024", "public.tmp_old"] {
        assert!(
            out.stderrs[0].contains(&format!("{t}: excluded by")),
            "the dump names {t}:\n{}",
            out.report()
        );
    }

    // Everything excluded: a usage error, not an empty success.
    let out = run_pipe(
        &[(
            "molt-dump",
            args(&[
                "--source",
                &pg,
                "--table",
                "audit_log",
                "--exclude",
                "audit_*",
            ]),
        )],
        None,
        &[],
    );
    assert_eq!(out.statuses, vec![2], "{}", out.report());
    assert!(
        out.stderrs[0].contains("nothing to dump"),
        "{}",
        out.report()
    );
    assert!(out.stdout.is_empty(), "no stream at all");

    // A broken expression is named before anything is read.
    let out = run_pipe(
        &[(
            "molt-dump",
            args(&["--source", &pg, "--all", "--exclude-regex", "audit_(log"]),
        )],
        None,
        &[],
    );
    assert_eq!(out.statuses, vec![2], "{}", out.report());
    assert!(
        out.stderrs[0].contains("\"audit_(log\" is not a regular expression"),
        "{}",
        out.report()
    );
}

#[tokio::test]
async fn mysql_dump_excludes_by_database_and_table() {
    let my = fresh_mysql_database(&mysql_source_url(), "excl_my").await;
    mysql_exec(
        &my,
        "CREATE TABLE keep_me (id INT PRIMARY KEY); INSERT INTO keep_me VALUES (1);
         CREATE TABLE audit_x (id INT PRIMARY KEY); INSERT INTO audit_x VALUES (1);",
    );
    let tgt = fresh_pg_database(&pg_target_url(), "excl_my_tgt").await;
    let out = run_pipe(
        &[
            (
                "molt-dump",
                args(&["--source", &my, "--all", "--exclude-regex", ".*\\.audit_.*"]),
            ),
            ("molt-load", args(&["--target", &tgt])),
        ],
        None,
        &[],
    );
    out.assert_success();
    assert_eq!(target_tables(&tgt).await, "keep_me", "{}", out.report());
}

#[tokio::test]
async fn slice_plan_audit_and_verify_agree_on_exclusions() {
    let pg = source_with_tables().await;
    let tgt = fresh_pg_database(&pg_target_url(), "excl_plan_tgt").await;
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("phases.toml");
    std::fs::write(
        &plan,
        "schema = \"public\"\nexclude = [\"audit_*\"]\n\n[[phase]]\nname = \"all\"\nwhole = [\"*\"]\n",
    )
    .unwrap();
    let plan = plan.to_str().unwrap().to_string();

    // The plan's exclude and the command line's, together.
    let sliced = run_pipe(
        &[(
            "molt-slice",
            args(&[
                "plan",
                "--plan",
                &plan,
                "--source",
                &pg,
                "--exclude-regex",
                r".*\.tmp_.*",
            ]),
        )],
        None,
        &[],
    );
    sliced.assert_success();
    let mut tables: Vec<String> = sliced
        .records()
        .iter()
        .filter(|r| r["type"] == "slice")
        .map(|r| r["table"]["name"].as_str().unwrap().to_string())
        .collect();
    tables.sort();
    assert_eq!(
        tables,
        ["catalog_12", "order_items", "orders"],
        "{}",
        sliced.report()
    );

    // The audit counts excluded tables as excluded, not unplanned.
    let kinds = |records: &[Value], kind: &str| -> Vec<String> {
        let mut names: Vec<String> = records
            .iter()
            .filter(|r| r["kind"] == kind)
            .map(|r| r["table"]["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    let audit_of = |plan: &str, extra: &[&str]| {
        let mut a = args(&["audit", "--plan", plan, "--source", &pg]);
        a.extend(args(extra));
        run_pipe(&[("molt-slice", a)], None, &[])
    };
    let audit = audit_of(&plan, &[]);
    assert_eq!(audit.statuses, vec![0], "{}", audit.report());
    assert_eq!(
        kinds(&audit.records(), "audit_excluded_table"),
        ["audit_2024", "audit_log"]
    );
    assert!(kinds(&audit.records(), "audit_unplanned_table").is_empty());
    // A table neither planned nor excluded still fails the audit...
    let narrow = dir.path().join("narrow.toml");
    std::fs::write(
        &narrow,
        "exclude = [\"audit_*\"]\n\n[[phase]]\nname = \"some\"\nwhole = [\"order*\", \"catalog_12\"]\n",
    )
    .unwrap();
    let narrow = narrow.to_str().unwrap();
    let audit = audit_of(narrow, &[]);
    assert_eq!(audit.statuses, vec![3], "{}", audit.report());
    assert_eq!(
        kinds(&audit.records(), "audit_unplanned_table"),
        ["tmp_old"]
    );
    // ...until it is excluded too.
    let audit = audit_of(narrow, &["--exclude", "tmp_*"]);
    assert_eq!(audit.statuses, vec![0], "{}", audit.report());
    assert_eq!(
        kinds(&audit.records(), "audit_excluded_table"),
        ["audit_2024", "audit_log", "tmp_old"]
    );

    // Load the plan's slices, then verify them, leaving one more table out.
    let out = run_pipe(
        &[
            (
                "molt-slice",
                args(&["plan", "--plan", &plan, "--source", &pg]),
            ),
            ("molt-dump", args(&["--source", &pg])),
            ("molt-load", args(&["--target", &tgt])),
        ],
        None,
        &[],
    );
    out.assert_success();
    assert_eq!(
        target_tables(&tgt).await,
        "catalog_12,order_items,orders,tmp_old"
    );
    let verified = run_pipe(
        &[
            (
                "molt-slice",
                args(&["plan", "--plan", &plan, "--source", &pg]),
            ),
            (
                "molt-verify",
                args(&["--source", &pg, "--target", &tgt, "--exclude", "order*"]),
            ),
        ],
        None,
        &[],
    );
    assert_eq!(verified.statuses, vec![0, 0], "{}", verified.report());
    assert_eq!(
        kinds(&verified.records(), "table_summary"),
        ["catalog_12", "tmp_old"]
    );

    // A plan whose only phase is wholly excluded is refused.
    let out = run_pipe(
        &[(
            "molt-slice",
            args(&["plan", "--plan", &plan, "--source", &pg, "--exclude", "*"]),
        )],
        None,
        &[],
    );
    assert_ne!(out.statuses[0], 0, "{}", out.report());
    assert!(
        out.stderrs[0].contains("every table it names is excluded"),
        "{}",
        out.report()
    );
}
