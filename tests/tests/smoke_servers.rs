//! Smoke tests for the test servers themselves: each one is reachable, gives
//! us a fresh database, and stores and returns rows (with a NULL and non-ASCII
//! text) unchanged. When one of these fails, suspect the environment
//! (scripts/test.sh, scripts/lib/servers.sh) before the tools.

use molt_tests::*;

/// The rows every smoke test writes and expects back: id, name, note, amount.
fn expected_rows() -> Vec<(i32, String, Option<String>, i64)> {
    vec![
        (1, "plain ascii".into(), Some("first".into()), 10),
        (2, "Ünïcödé ✓ 日本語 🐘".into(), None, -20),
        (
            3,
            "quote ' and \"double\"".into(),
            Some(String::new()),
            i64::MAX,
        ),
    ]
}

async fn pg_roundtrip(server_url: &str, prefix: &str) {
    let url = fresh_pg_database(server_url, prefix).await;
    let client = pg_connect(&url).await;

    let db: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        url.ends_with(&format!("/{db}")),
        "{url} is not database {db}"
    );

    client
        .batch_execute(
            "CREATE TABLE smoke (
                 id     integer PRIMARY KEY,
                 name   text    NOT NULL,
                 note   text,
                 amount bigint  NOT NULL
             )",
        )
        .await
        .unwrap();
    for (id, name, note, amount) in expected_rows() {
        client
            .execute(
                "INSERT INTO smoke (id, name, note, amount) VALUES ($1, $2, $3, $4)",
                &[&id, &name, &note, &amount],
            )
            .await
            .unwrap();
    }

    let rows = client
        .query("SELECT id, name, note, amount FROM smoke ORDER BY id", &[])
        .await
        .unwrap();
    let got: Vec<(i32, String, Option<String>, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(got.len(), 3);
    assert_eq!(got, expected_rows());

    let count: i64 = client
        .query_one("SELECT count(*) FROM smoke WHERE note IS NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
}

#[tokio::test]
async fn pg_source_server_stores_and_returns_rows() {
    pg_roundtrip(&pg_source_url(), "smoke_pg_source").await;
}

#[tokio::test]
async fn pg_target_server_stores_and_returns_rows() {
    pg_roundtrip(&pg_target_url(), "smoke_pg_target").await;
}

#[tokio::test]
async fn mysql_source_server_stores_and_returns_rows() {
    use mysql_async::prelude::*;

    let url = fresh_mysql_database(&mysql_source_url(), "smoke_mysql_source").await;
    let mut conn = mysql_connect(&url).await;

    let db: Option<String> = conn.query_first("SELECT DATABASE()").await.unwrap();
    let db = db.expect("a database is selected");
    assert!(
        url.ends_with(&format!("/{db}")),
        "{url} is not database {db}"
    );

    conn.query_drop(
        "CREATE TABLE smoke (
             id     INT PRIMARY KEY,
             name   VARCHAR(100) NOT NULL,
             note   TEXT,
             amount BIGINT NOT NULL
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    )
    .await
    .unwrap();
    conn.exec_batch(
        "INSERT INTO smoke (id, name, note, amount) VALUES (?, ?, ?, ?)",
        expected_rows(),
    )
    .await
    .unwrap();

    let got: Vec<(i32, String, Option<String>, i64)> = conn
        .query("SELECT id, name, note, amount FROM smoke ORDER BY id")
        .await
        .unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got, expected_rows());

    let count: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM smoke WHERE note IS NULL")
        .await
        .unwrap();
    assert_eq!(count, Some(1));

    // The emoji needs 4-byte UTF-8: the column must really be utf8mb4.
    let bytes: Option<i64> = conn
        .query_first("SELECT LENGTH(name) FROM smoke WHERE id = 2")
        .await
        .unwrap();
    assert_eq!(bytes, Some(expected_rows()[1].1.len() as i64));

    conn.disconnect().await.unwrap();
}
