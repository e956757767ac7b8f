//! molt-slice against real PostgreSQL and MariaDB sources: the audit finds
//! exactly the gaps, overlaps, NULL filters and dangling references a plan
//! has, and shards cover each slice exactly, evenly, for every key type.

use molt_tests::*;
use serde_json::Value;

const PG_DATASET: &str = "
CREATE TABLE products (id uuid PRIMARY KEY, name text NOT NULL);
CREATE TABLE customers (id bigint PRIMARY KEY, region char(1), email text);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id), region char(1), amount numeric(12,2));
CREATE TABLE order_items (order_id bigint NOT NULL REFERENCES orders(id), line_no int NOT NULL,
    product_id uuid REFERENCES products(id), qty int, PRIMARY KEY (order_id, line_no));
INSERT INTO products SELECT md5(i::text)::uuid, 'p' || i FROM generate_series(1, 50) i;
INSERT INTO customers SELECT i, chr(65 + (i % 4)), 'c' || i || '@example.com' FROM generate_series(1, 400) i;
INSERT INTO orders SELECT i, 1 + (i % 400), chr(65 + ((1 + (i % 400)) % 4)), i * 1.5 FROM generate_series(1, 2000) i;
INSERT INTO order_items SELECT o.id, l, md5((1 + (o.id + l) % 50)::text)::uuid, l FROM orders o, generate_series(1, 3) l;
";

/// 1..10000, for MySQL versions without generate_series or deep recursion.
const MYSQL_NUMS: &str = "
CREATE TEMPORARY TABLE nums (i int PRIMARY KEY);
INSERT INTO nums SELECT 1 + a.d + 10 * b.d + 100 * c.d + 1000 * e.d FROM
    (SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) a,
    (SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) b,
    (SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) c,
    (SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) e;
";

const MYSQL_DATASET: &str = "
CREATE TABLE products (id char(36) PRIMARY KEY, name varchar(40) NOT NULL);
CREATE TABLE customers (id bigint PRIMARY KEY, region char(1), email varchar(80));
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, region char(1), amount decimal(12,2),
    FOREIGN KEY (customer_id) REFERENCES customers(id));
CREATE TABLE order_items (order_id bigint NOT NULL, line_no int NOT NULL, product_id char(36), qty int,
    PRIMARY KEY (order_id, line_no), FOREIGN KEY (order_id) REFERENCES orders(id), FOREIGN KEY (product_id) REFERENCES products(id));
INSERT INTO products SELECT CONCAT_WS('-', SUBSTR(MD5(i),1,8), SUBSTR(MD5(i),9,4), SUBSTR(MD5(i),13,4), SUBSTR(MD5(i),17,4), SUBSTR(MD5(i),21,12)), CONCAT('p', i) FROM nums WHERE i <= 50;
INSERT INTO customers SELECT i, CHAR(65 + (i % 4)), CONCAT('c', i, '@example.com') FROM nums WHERE i <= 400;
INSERT INTO orders SELECT i, 1 + (i % 400), CHAR(65 + ((1 + (i % 400)) % 4)), i * 1.5 FROM nums WHERE i <= 2000;
INSERT INTO order_items SELECT o.id, l.i, (SELECT id FROM products p ORDER BY p.name LIMIT 1), l.i FROM orders o, nums l WHERE l.i <= 3;
";

/// A four-region plan; `edit` may change phase B's filter or drop phase D.
fn plan(schema: Option<&str>, b_filter: &str, with_d: bool) -> String {
    let mut text = String::new();
    if let Some(s) = schema {
        text.push_str(&format!("schema = \"{s}\"\n"));
    }
    for name in ["A", "B", "C", "D"] {
        if name == "D" && !with_d {
            continue;
        }
        let filter = if name == "B" {
            b_filter.to_string()
        } else {
            format!("region = '{name}'")
        };
        text.push_str(&format!(
            "\n[[phase]]\nname = \"{name}\"\nfilter = \"{filter}\"\ntables = [\"customers\", \"orders\"]\nvia = {{ order_items = \"orders\" }}\n"
        ));
        if name == "A" {
            text.push_str("whole = [\"products\"]\n");
        }
    }
    text
}

fn write_plan(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

fn slice(args: &[&str], plan: &tempfile::NamedTempFile, url: &str) -> PipeOutcome {
    let mut argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    argv.extend([
        "--plan".into(),
        plan.path().display().to_string(),
        "--source".into(),
        url.into(),
    ]);
    run_pipe(&[("molt-slice", argv)], None, &[])
}

fn table_audit<'a>(records: &'a [Value], table: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["kind"] == "audit_table" && r["table"]["name"] == table)
        .unwrap_or_else(|| panic!("no audit record for {table}: {records:?}"))
}

fn counts(record: &Value) -> (u64, u64, u64, u64) {
    (
        record["rows"].as_u64().unwrap(),
        record["unmatched"].as_u64().unwrap(),
        record["overlapping"].as_u64().unwrap(),
        record["null_filter"].as_u64().unwrap(),
    )
}

async fn audit_scenarios(url: &str, schema: Option<&str>, exec: impl Fn(&str)) {
    // A sound plan passes.
    let sound = write_plan(&plan(schema, "region = 'B'", true));
    let out = slice(&["audit"], &sound, url);
    out.assert_statuses(&[0]);
    let records = out.records();
    assert_eq!(counts(table_audit(&records, "customers")), (400, 0, 0, 0));
    assert_eq!(counts(table_audit(&records, "orders")), (2000, 0, 0, 0));
    assert_eq!(
        counts(table_audit(&records, "order_items")),
        (6000, 0, 0, 0)
    );
    assert_eq!(counts(table_audit(&records, "products")), (50, 0, 0, 0));
    assert!(records
        .iter()
        .filter(|r| r["kind"] == "audit_foreign_key")
        .all(|r| r["rows"] == 0));

    // An overlap: B also claims A's rows.
    let overlap = write_plan(&plan(schema, "region IN ('A', 'B')", true));
    let out = slice(&["audit"], &overlap, url);
    out.assert_statuses(&[3]);
    let records = out.records();
    assert_eq!(counts(table_audit(&records, "customers")), (400, 0, 100, 0));
    assert_eq!(counts(table_audit(&records, "orders")), (2000, 0, 500, 0));
    assert_eq!(
        counts(table_audit(&records, "order_items")),
        (6000, 0, 1500, 0)
    );
    assert_eq!(
        table_audit(&records, "customers")["samples"]["overlapping"]
            .as_array()
            .unwrap()
            .len(),
        5
    );

    // A gap: no phase D.
    let gap = write_plan(&plan(schema, "region = 'B'", false));
    let out = slice(&["audit"], &gap, url);
    out.assert_statuses(&[3]);
    let records = out.records();
    assert_eq!(counts(table_audit(&records, "customers")), (400, 100, 0, 0));
    assert_eq!(
        counts(table_audit(&records, "order_items")),
        (6000, 1500, 0, 0)
    );

    // NULL regions belong to no phase, and are named as such.
    exec("UPDATE customers SET region = NULL WHERE id IN (4, 8, 12)");
    let out = slice(&["audit"], &sound, url);
    out.assert_statuses(&[3]);
    let records = out.records();
    assert_eq!(counts(table_audit(&records, "customers")), (400, 3, 0, 3));
    let samples = &table_audit(&records, "customers")["samples"]["null_filter"];
    assert_eq!(
        samples,
        &serde_json::json!([{"id": "12"}, {"id": "4"}, {"id": "8"}])
    );
    exec("UPDATE customers SET region = 'A' WHERE id IN (4, 8, 12)");

    // A reference from phase A into phase C: order 3 (region A) now points
    // at customer 2, whose region C moves later.
    exec("UPDATE orders SET customer_id = 2 WHERE id = 3");
    let out = slice(&["audit"], &sound, url);
    out.assert_statuses(&[3]);
    let records = out.records();
    let dangling: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "audit_foreign_key" && r["rows"] != 0)
        .collect();
    assert_eq!(dangling.len(), 1, "{dangling:?}");
    assert_eq!(dangling[0]["table"]["name"], "orders");
    assert_eq!(dangling[0]["phase"], "A");
    assert_eq!(dangling[0]["referenced_phase"], "C");
    assert_eq!(dangling[0]["rows"], 1);
    assert_eq!(dangling[0]["samples"], serde_json::json!([{"id": "3"}]));
    exec("UPDATE orders SET customer_id = 4 WHERE id = 3");
}

#[tokio::test]
async fn audit_on_postgres_finds_exact_gaps_overlaps_nulls_and_dangling_references() {
    let url = fresh_pg_database(&pg_source_url(), "slice_audit").await;
    psql_exec(&url, PG_DATASET);
    let u = url.clone();
    audit_scenarios(&url, Some("public"), move |sql| {
        psql_exec(&u, sql);
    })
    .await;
}

#[tokio::test]
async fn audit_on_mysql_finds_exact_gaps_overlaps_nulls_and_dangling_references() {
    let url = fresh_mysql_database(&mysql_source_url(), "slice_audit").await;
    mysql_exec(&url, format!("{MYSQL_NUMS}{MYSQL_DATASET}"));
    let u = url.clone();
    audit_scenarios(&url, None, move |sql| {
        mysql_exec(&u, sql);
    })
    .await;
}

/// The SQL condition selecting one shard's rows, bounds as quoted literals.
fn shard_condition(shard: &Value, quote: fn(&str) -> String) -> String {
    let key: Vec<String> = shard["key"]
        .as_array()
        .map(|k| k.iter().map(|c| quote(c.as_str().unwrap())).collect())
        .unwrap_or_default();
    let tuple = |values: &Value| -> String {
        let vals: Vec<String> = values
            .as_array()
            .unwrap()
            .iter()
            .map(|v| format!("'{}'", v.as_str().unwrap().replace('\'', "''")))
            .collect();
        format!("({})", vals.join(", "))
    };
    let cols = format!("({})", key.join(", "));
    let mut parts = vec!["1 = 1".to_string()];
    if !shard["lower"].is_null() {
        parts.push(format!("{cols} >= {}", tuple(&shard["lower"])));
    }
    if !shard["upper"].is_null() {
        parts.push(format!("{cols} < {}", tuple(&shard["upper"])));
    }
    parts.join(" AND ")
}

/// Plans `table` with `filter`, then proves on the source that the shards are
/// disjoint, cover the slice, and are no larger than 3× the request.
fn check_shards(
    url: &str,
    schema: Option<&str>,
    table: &str,
    filter: Option<&str>,
    shard_rows: u64,
    is_pg: bool,
) -> usize {
    let mut text = String::new();
    if let Some(s) = schema {
        text.push_str(&format!("schema = \"{s}\"\n"));
    }
    match filter {
        Some(f) => text.push_str(&format!(
            "[[phase]]\nname = \"P\"\nfilter = \"{f}\"\ntables = [\"{table}\"]\n"
        )),
        None => text.push_str(&format!("[[phase]]\nname = \"P\"\nwhole = [\"{table}\"]\n")),
    }
    let plan_file = write_plan(&text);
    let out = slice(
        &["plan", "--shard-rows", &shard_rows.to_string()],
        &plan_file,
        url,
    );
    out.assert_statuses(&[0]);
    let slices: Vec<Value> = out
        .records()
        .into_iter()
        .filter(|r| r["type"] == "slice")
        .collect();
    assert!(!slices.is_empty());
    let quote: fn(&str) -> String = if is_pg {
        molt_core::ident::quote_pg
    } else {
        molt_core::ident::quote_mysql
    };
    let conditions: Vec<String> = slices
        .iter()
        .map(|s| shard_condition(&s["shard"], quote))
        .collect();
    let where_filter = filter
        .map(|f| format!("({f})"))
        .unwrap_or_else(|| "1 = 1".into());
    let query = |sql: String| -> u64 {
        let out = if is_pg {
            psql_exec(
                url,
                format!("\\pset tuples_only on\n\\pset format unaligned\n{sql};"),
            )
        } else {
            mysql_exec(url, format!("{sql};"))
        };
        out.lines()
            .filter_map(|l| l.trim().parse().ok())
            .next_back()
            .unwrap_or_else(|| panic!("no count in {out:?}"))
    };
    let total = query(format!(
        "SELECT count(*) FROM {} WHERE {where_filter}",
        quote(table)
    ));
    let mut sum = 0;
    for (slice, condition) in slices.iter().zip(&conditions) {
        let n = query(format!(
            "SELECT count(*) FROM {} WHERE {where_filter} AND {condition}",
            quote(table)
        ));
        assert!(
            n <= 3 * shard_rows,
            "shard {} of {table} holds {n} rows, more than 3 x {shard_rows}",
            slice["shard"]
        );
        sum += n;
    }
    assert_eq!(sum, total, "shards of {table} must add up to the slice");
    let membership: Vec<String> = conditions
        .iter()
        .map(|c| format!("(CASE WHEN {c} THEN 1 ELSE 0 END)"))
        .collect();
    let misplaced = query(format!(
        "SELECT count(*) FROM {} WHERE {where_filter} AND {} <> 1",
        quote(table),
        membership.join(" + ")
    ));
    assert_eq!(misplaced, 0, "every row of {table} in exactly one shard");
    assert_eq!(slices.last().unwrap()["shard"]["upper"], Value::Null);
    assert!(slices[0]["shard"].get("lower").is_none() || slices[0]["shard"]["lower"].is_null());
    slices.len()
}

#[tokio::test]
async fn shards_cover_skewed_slices_exactly_on_postgres() {
    let url = fresh_pg_database(&pg_source_url(), "slice_shards").await;
    psql_exec(
        &url,
        "CREATE TABLE skew_int (id bigint PRIMARY KEY, region char(1));
         INSERT INTO skew_int SELECT i, chr(65 + (i % 4)) FROM generate_series(1, 3000) i;
         INSERT INTO skew_int SELECT 1000000000::bigint * i, 'A' FROM generate_series(1, 1000) i;
         CREATE TABLE by_uuid (id uuid PRIMARY KEY, region char(1));
         INSERT INTO by_uuid SELECT md5(i::text)::uuid, CASE WHEN i % 10 = 0 THEN 'B' ELSE 'A' END FROM generate_series(1, 4000) i;
         CREATE TABLE by_text (code text PRIMARY KEY, region char(1));
         INSERT INTO by_text SELECT 'aaa' || lpad(i::text, 6, '0'), 'A' FROM generate_series(1, 3000) i;
         INSERT INTO by_text SELECT md5(i::text), 'B' FROM generate_series(1, 1000) i;
         CREATE TABLE by_pair (tenant int, name text, region char(1), PRIMARY KEY (tenant, name));
         INSERT INTO by_pair SELECT CASE WHEN i <= 3000 THEN 1 ELSE i END, 'n' || i, chr(65 + (i % 2)) FROM generate_series(1, 4000) i;",
    );
    for (table, filter) in [
        ("skew_int", None),
        ("skew_int", Some("region = 'A'")),
        ("by_uuid", None),
        ("by_uuid", Some("region = 'B'")),
        ("by_text", None),
        ("by_text", Some("region = 'B'")),
        ("by_pair", None),
        ("by_pair", Some("region = 'A'")),
    ] {
        let shards = check_shards(&url, Some("public"), table, filter, 300, true);
        assert!(shards >= 2, "{table} {filter:?} should split");
    }
    // A slice smaller than a shard is one open-ended shard.
    assert_eq!(
        check_shards(
            &url,
            Some("public"),
            "by_uuid",
            Some("region = 'B'"),
            100_000,
            true
        ),
        1
    );
}

#[tokio::test]
async fn shards_cover_skewed_slices_exactly_on_mysql() {
    let url = fresh_mysql_database(&mysql_source_url(), "slice_shards").await;
    mysql_exec(
        &url,
        MYSQL_NUMS.to_string()
            + "CREATE TABLE skew_int (id bigint PRIMARY KEY, region char(1));
         INSERT INTO skew_int SELECT i, CHAR(65 + (i % 4)) FROM nums WHERE i <= 3000;
         INSERT INTO skew_int SELECT 1000000000 * i, 'A' FROM nums WHERE i <= 1000;
         CREATE TABLE by_text (code varchar(40) PRIMARY KEY, region char(1));
         INSERT INTO by_text SELECT CONCAT('aaa', LPAD(i, 6, '0')), 'A' FROM nums WHERE i <= 3000;
         INSERT INTO by_text SELECT MD5(i), 'B' FROM nums WHERE i <= 1000;
         CREATE TABLE by_pair (tenant int, name varchar(20), region char(1), PRIMARY KEY (tenant, name));
         INSERT INTO by_pair SELECT CASE WHEN i <= 3000 THEN 1 ELSE i END, CONCAT('n', i), CHAR(65 + (i % 2)) FROM nums WHERE i <= 4000;",
    );
    for (table, filter) in [
        ("skew_int", None),
        ("skew_int", Some("region = 'A'")),
        ("by_text", Some("region = 'B'")),
        ("by_text", None),
        ("by_pair", Some("region = 'A'")),
    ] {
        let shards = check_shards(&url, None, table, filter, 300, false);
        assert!(shards >= 2, "{table} {filter:?} should split");
    }
}

#[tokio::test]
async fn plan_errors_name_the_problem() {
    let url = fresh_pg_database(&pg_source_url(), "slice_errors").await;
    psql_exec(&url, "CREATE TABLE t (id int PRIMARY KEY, region char(1))");
    let typo = write_plan("[[phase]]\nname = \"A\"\nfiltr = \"region = 'A'\"\ntables = [\"t\"]\n");
    let out = slice(&["plan"], &typo, &url);
    out.assert_statuses(&[1]);
    assert!(out.stderrs[0].contains("filtr"), "{}", out.stderrs[0]);
    let missing =
        write_plan("[[phase]]\nname = \"A\"\nfilter = \"region = 'A'\"\ntables = [\"nope\"]\n");
    let out = slice(&["plan"], &missing, &url);
    out.assert_statuses(&[1]);
    assert!(
        out.stderrs[0].contains("\"nope\" matches no table"),
        "{}",
        out.stderrs[0]
    );
    let bad_sql =
        write_plan("[[phase]]\nname = \"A\"\nfilter = \"regionn = 'A'\"\ntables = [\"t\"]\n");
    let out = slice(&["plan"], &bad_sql, &url);
    out.assert_statuses(&[1]);
    assert!(
        out.stderrs[0].contains("regionn") && out.stderrs[0].contains("public.t"),
        "{}",
        out.stderrs[0]
    );
}

#[tokio::test]
async fn estimate_projects_the_window_from_load_results() {
    let url = fresh_pg_database(&pg_source_url(), "slice_estimate").await;
    psql_exec(&url, PG_DATASET);
    psql_exec(&url, "ANALYZE");
    let sound = write_plan(&plan(Some("public"), "region = 'B'", true));
    let results = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        results.path(),
        "{\"type\":\"result\",\"status\":\"ok\",\"rows\":1000,\"seconds\":2.0}\n",
    )
    .unwrap();
    let out = slice(
        &[
            "estimate",
            "--phase",
            "A",
            "--throughput",
            &results.path().display().to_string(),
        ],
        &sound,
        &url,
    );
    out.assert_statuses(&[0]);
    let phase = out
        .records()
        .into_iter()
        .find(|r| r["kind"] == "estimate_phase")
        .unwrap();
    // Phase A: 100 customers, 500 orders, 1500 items, 50 products.
    assert_eq!(phase["rows"], 2150);
    assert_eq!(phase["rows_per_second"], 500.0);
    assert_eq!(phase["projected_seconds"], 4.3);
}

/// `via` slices from a MySQL source must also replace correctly on the
/// target, where names are lower-cased into another schema and quoted the
/// PostgreSQL way: load A, then B, then A again.
#[tokio::test]
async fn via_slices_from_mysql_load_and_reload_on_the_target() {
    let url = fresh_mysql_database(&mysql_source_url(), "slice_via").await;
    mysql_exec(&url, format!("{MYSQL_NUMS}{MYSQL_DATASET}"));
    let target = fresh_pg_database(&pg_target_url(), "slice_via").await;
    let plan_file = write_plan(&plan(None, "region = 'B'", true));
    let run_phase = |phase: &str| {
        let out = run_pipe(
            &[
                (
                    "molt-slice",
                    vec![
                        "plan".into(),
                        "--phase".into(),
                        phase.into(),
                        "--plan".into(),
                        plan_file.path().display().to_string(),
                        "--source".into(),
                        url.clone(),
                        "--shard-rows".into(),
                        "700".into(),
                    ],
                ),
                (
                    "molt-dump",
                    vec!["--quiet".into(), "--source".into(), url.clone()],
                ),
                (
                    "molt-load",
                    vec![
                        "--quiet".into(),
                        "--target".into(),
                        target.clone(),
                        "--force-reload".into(),
                    ],
                ),
            ],
            None,
            &[],
        );
        out.assert_success();
        out
    };
    let slices = run_pipe(
        &[(
            "molt-slice",
            vec![
                "plan".into(),
                "--phase".into(),
                "A".into(),
                "--plan".into(),
                plan_file.path().display().to_string(),
                "--source".into(),
                url.clone(),
            ],
        )],
        None,
        &[],
    );
    let items = slices
        .records()
        .into_iter()
        .find(|r| r["type"] == "slice" && r["table"]["name"] == "order_items")
        .unwrap();
    assert_eq!(
        items["target_filter"],
        "\"order_id\" IN (SELECT \"id\" FROM \"public\".\"orders\" WHERE (region = 'A'))",
        "{items}"
    );
    run_phase("A");
    run_phase("B");
    run_phase("A");
    let count = |table: &str| -> u64 {
        let out = psql_exec(&target, format!("\\pset tuples_only on\n\\pset format unaligned\nSELECT count(*) FROM public.{table};"));
        out.lines()
            .filter_map(|l| l.trim().parse().ok())
            .next_back()
            .unwrap()
    };
    assert_eq!(count("order_items"), 3000);
    assert_eq!(count("orders"), 1000);
    assert_eq!(count("customers"), 200);
    assert_eq!(count("products"), 50);
}
