//! Every statement molt sends to Oracle, compared with golden files in
//! `tests/fixtures/oracle/`. Runs without the `oracle` feature (and without
//! a server: the SQL is generated from catalog rows). After a deliberate
//! change, regenerate with `MOLT_BLESS=1 cargo test -p molt-core --test
//! oracle_sql` and review the diff.

use std::path::PathBuf;

use molt_core::oracle::catalog::{BuildOptions, OracleTable};
use molt_core::oracle::ddl::map_ddl;
use molt_core::oracle::hash;
use molt_core::oracle::sql::{self, BindValue, Query};
use molt_core::stream::{Shard, Slice, TableName};
use serde_json::json;

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/oracle")
        .join(name);
    let actual = format!("{}\n", actual.trim_end());
    if std::env::var_os("MOLT_BLESS").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "golden file {} is missing ({e}); run with MOLT_BLESS=1 to create it",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "SQL differs from {}; if intended, rerun with MOLT_BLESS=1",
        path.display()
    );
}

/// A query as it is reviewed: its SQL, then its binds in order.
fn show(q: &Query) -> String {
    let mut out = q.sql.clone();
    out.push('\n');
    for (name, value) in &q.binds {
        match value {
            BindValue::Scn => out.push_str(&format!("-- :{name} = <snapshot SCN>\n")),
            BindValue::Text(t) => out.push_str(&format!("-- :{name} = '{t}'\n")),
        }
    }
    out
}

const ORDERS_DDL: &str = r#"
CREATE TABLE orders (
  region     VARCHAR2(10) NOT NULL,
  order_id   NUMBER(12) NOT NULL,
  placed     DATE NOT NULL,
  amount     NUMBER(10,2),
  note       CLOB,
  shape      MDSYS.SDO_GEOMETRY,
  shipped    TIMESTAMP(9) WITH TIME ZONE,
  CONSTRAINT orders_pk PRIMARY KEY (region, order_id)
);
CREATE TABLE "Events" (
  "Id"     RAW(16) NOT NULL PRIMARY KEY,
  at       TIMESTAMP(3),
  kind     CHAR(4),
  score    BINARY_DOUBLE,
  ok       NUMBER(1),
  total    NUMBER
);
"#;

fn tables() -> Vec<OracleTable> {
    let opts = BuildOptions {
        map: molt_core::oracle::MapOptions {
            raw16_as_uuid: true,
        },
        target_schema: None,
    };
    map_ddl(ORDERS_DDL, "SHOP", &opts).unwrap()
}

fn slice(table: &OracleTable, filter: Option<&str>, shard: Shard) -> Slice {
    Slice {
        phase: "A".into(),
        table: table.header.table.clone(),
        filter: filter.map(str::to_string),
        target_filter: None,
        shard,
    }
}

#[test]
fn section_queries() {
    let t = &tables()[0];
    let whole = sql::section_query(t, &slice(t, None, Shard::whole())).unwrap();
    golden("section_whole.sql", &show(&whole));
    let shard = Shard {
        index: 1,
        count: 3,
        key: vec!["region".into(), "order_id".into()],
        lower: Some(vec![json!("EU"), json!("1000")]),
        upper: Some(vec![json!("US"), json!("5")]),
    };
    let q = sql::section_query(t, &slice(t, Some("region IN ('EU', 'US')"), shard)).unwrap();
    golden("section_composite_shard.sql", &show(&q));
    // Placeholders are unique and numbered in order of appearance.
    let names: Vec<&str> = q.binds.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["scn", "1", "2", "3", "4", "5", "6"]);

    let e = &tables()[1];
    let shard = Shard {
        index: 0,
        count: 2,
        key: vec![],
        lower: None,
        upper: Some(vec![json!("123e4567-e89b-12d3-a456-426614174000")]),
    };
    golden(
        "section_uuid_upper.sql",
        &show(&sql::section_query(e, &slice(e, Some("kind = 'LIVE'"), shard)).unwrap()),
    );
}

#[test]
fn bound_count_must_match_key() {
    let t = &tables()[0];
    let shard = Shard {
        index: 0,
        count: 2,
        key: vec![],
        lower: None,
        upper: Some(vec![json!("EU")]),
    };
    let err = sql::section_query(t, &slice(t, None, shard)).unwrap_err();
    assert!(
        err.to_string().contains("1 bound values for 2 key columns"),
        "{err}"
    );
}

#[test]
fn counts_boundaries_and_audit() {
    let t = &tables()[0];
    let name = &t.header.table;
    golden(
        "count.sql",
        &sql::count_sql(name, Some("region = 'EU'"), true),
    );
    let key = t.key_columns(&[]).unwrap();
    golden(
        "shard_boundaries.sql",
        &sql::shard_boundaries_sql(t, &key, Some("region = 'EU'"), 50_000).unwrap(),
    );
    let filters = ["region = 'EU'", "region = 'US'"];
    golden("audit.sql", &sql::audit_sql(name, &filters));
    golden(
        "audit_samples.sql",
        &sql::audit_samples_sql(t, &key, &filters, "s.m = 0", 10).unwrap(),
    );
    let e = &tables()[1];
    let ekey = e.key_columns(&[]).unwrap();
    golden(
        "shard_boundaries_uuid.sql",
        &sql::shard_boundaries_sql(e, &ekey, None, 1000).unwrap(),
    );
}

#[test]
fn freeze_and_unfreeze() {
    let t = &tables()[0];
    let name = &t.header.table;
    golden(
        "freeze.sql",
        &sql::freeze_trigger_sql(name, &t.source_columns, "A", Some("region = 'EU'")),
    );
    golden(
        "freeze_whole_table.sql",
        &sql::freeze_trigger_sql(name, &t.source_columns, "it's all", None),
    );
    golden("unfreeze.sql", &sql::unfreeze_sql(name, "A"));
    assert_eq!(
        sql::unfreeze_sql(&TableName::new("SHOP", "ORDERS"), "A"),
        sql::unfreeze_sql(name, "A")
    );
}

#[test]
fn chunk_hash() {
    let e = &tables()[1];
    let shard = Shard {
        index: 0,
        count: 2,
        key: vec!["Id".into()],
        lower: Some(vec![json!("00000000-0000-0000-0000-000000000000")]),
        upper: Some(vec![json!("80000000-0000-0000-0000-000000000000")]),
    };
    golden(
        "chunk_hash.sql",
        &show(&hash::chunk_hash_query(e, &slice(e, Some("kind = 'LIVE'"), shard), true).unwrap()),
    );
    // A table with a CLOB and a geometry is compared row by row instead.
    let t = &tables()[0];
    let err = hash::chunk_hash_query(t, &slice(t, None, Shard::whole()), true).unwrap_err();
    assert!(
        err.to_string().contains("cannot be hashed inside Oracle"),
        "{err}"
    );
}

#[test]
fn catalog_queries() {
    use molt_core::oracle::catalog::*;
    let all = [
        TABLES_SQL,
        TABLE_SQL,
        COLUMNS_SQL,
        CONSTRAINTS_SQL,
        INDEXES_SQL,
        IDENTITY_SQL,
    ]
    .join(";\n\n");
    golden("catalog.sql", &format!("{all};"));
}
