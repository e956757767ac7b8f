//! The target-side statements that CockroachDB may answer with 40001
//! "restart transaction", through a stand-in that injects it: the chunked
//! slice DELETE (molt-load's replacement and rollback's purge) and DDL.

use molt_core::stream::TableName;
use molt_core::target::slice::SlicePredicate;
use molt_core::target::Flavour;
use molt_core::url::ConnUrl;
use molt_tests::*;

async fn standin_target(prefix: &str, args: &[&str]) -> (OwnStandin, String, String) {
    let direct = fresh_pg_database(&pg_plain_target_url(), prefix).await;
    let standin = OwnStandin::start(args);
    let via = standin.url_for(&direct);
    (standin, direct, via)
}

async fn count(url: &str, sql: &str) -> i64 {
    pg_connect(url)
        .await
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

#[tokio::test]
async fn chunked_delete_retries_injected_40001_and_deletes_exactly_the_slice() {
    let (_standin, direct, via) = standin_target(
        "retry_delete",
        &[
            "--retry-rate",
            "0.5",
            "--seed",
            "11",
            "--retry-at",
            "stmt",
            "--retry-match",
            "^DELETE",
        ],
    )
    .await;
    psql_exec(
        &direct,
        "CREATE TABLE t (id int8 PRIMARY KEY, region text NOT NULL);
         INSERT INTO t SELECT i, CASE WHEN i % 4 = 0 THEN 'B' ELSE 'A' END FROM generate_series(1, 32000) i;",
    );
    let target = molt_core::target::connect(&ConnUrl::parse(&via).unwrap())
        .await
        .expect("connect through the stand-in");
    assert_eq!(target.flavour, Flavour::Cockroach);
    let predicate = SlicePredicate {
        sql: Some("(region = 'A') AND \"id\" >= $1::TEXT::INT8".into()),
        params: vec!["101".into()],
    };
    let deleted = molt_core::target::delete_in_chunks(
        &target.client,
        target.flavour,
        &TableName::new("public", "t"),
        &predicate,
        20,
    )
    .await
    .expect("every injected 40001 is retried");
    // Ids 101..=32000 not divisible by 4: 31900 - 7975 = 23925, three chunks.
    assert_eq!(deleted, 23_925);
    assert_eq!(
        count(&direct, "SELECT count(*) FROM t WHERE region = 'A'").await,
        75
    );
    assert_eq!(
        count(&direct, "SELECT count(*) FROM t WHERE region = 'B'").await,
        8000,
        "rows outside the slice are untouched"
    );

    // Without retries the first injected 40001 is the error, with its SQLSTATE.
    psql_exec(
        &direct,
        "INSERT INTO t SELECT i, 'A' FROM generate_series(40001, 60000) i",
    );
    let mut failures = 0;
    for _ in 0..8 {
        if let Err(e) = molt_core::target::delete_in_chunks(
            &target.client,
            target.flavour,
            &TableName::new("public", "t"),
            &predicate,
            0,
        )
        .await
        {
            assert_eq!(e.sqlstate(), Some("40001"), "{e}");
            assert!(e.to_string().contains("public.t"), "{e}");
            failures += 1;
        }
    }
    assert!(failures > 0, "at rate 0.5 some DELETE must be refused");
}

#[tokio::test]
async fn ddl_is_retried_after_an_injected_40001() {
    let (_standin, direct, via) = standin_target(
        "retry_ddl",
        &[
            "--retry-rate",
            "1",
            "--retry-max",
            "3",
            "--retry-at",
            "stmt",
            "--retry-match",
            "^CREATE TABLE",
        ],
    )
    .await;
    let client = pg_connect(&via).await;
    molt_core::target::run_concurrent_ddl(&client, "CREATE TABLE made (id int8 PRIMARY KEY)")
        .await
        .expect("three 40001s, then the statement runs");
    assert_eq!(
        count(
            &direct,
            "SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = 'made'"
        )
        .await,
        1
    );
}
