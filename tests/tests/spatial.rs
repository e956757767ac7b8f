//! Spatial columns end to end: MySQL POINT, LINESTRING and POLYGON, and a
//! PostGIS source column, dumped, loaded into the CockroachDB stand-in (a
//! PostgreSQL with PostGIS: CockroachDB's GEOMETRY and GEOGRAPHY are
//! native), verified clean, with the shapes unchanged on the target.
//!
//! Needs PostGIS on the PostgreSQL servers (scripts/test.sh installs
//! Debian's postgresql-15-postgis-3).

use molt_tests::*;
use serde_json::Value;

/// A target database with spatial types. On CockroachDB they are built in
/// and `CREATE EXTENSION postgis` is accepted for compatibility; the
/// stand-in's PostgreSQL needs the extension.
async fn spatial_target(prefix: &str) -> String {
    let tgt = fresh_pg_database(&pg_target_url(), prefix).await;
    psql_exec(&tgt, "CREATE EXTENSION IF NOT EXISTS postgis");
    tgt
}

fn migrate(source: &str, table: &str, tgt: &str) {
    run_pipe(
        &[
            (
                "molt-dump",
                vec![
                    "--source".into(),
                    source.into(),
                    "--table".into(),
                    table.into(),
                ],
            ),
            ("molt-load", vec!["--target".into(), tgt.into()]),
        ],
        None,
        &[],
    )
    .assert_success();
}

fn verify_clean(source: &str, table: &str, tgt: &str, rows: u64) {
    let out = run_pipe(
        &[(
            "molt-verify",
            vec![
                "--source".into(),
                source.into(),
                "--target".into(),
                tgt.into(),
                "--table".into(),
                table.into(),
            ],
        )],
        None,
        &[],
    );
    out.assert_statuses(&[0]);
    let summary: Vec<Value> = out
        .records()
        .into_iter()
        .filter(|r| r["kind"] == "table_summary")
        .collect();
    assert_eq!(summary.len(), 1, "{summary:?}");
    let s = &summary[0];
    assert_eq!(s["matched"], rows, "{s}");
    assert_eq!(s["source_rows"], rows, "{s}");
    assert_eq!(s["mismatched"], 0, "{s}");
    assert_eq!(s["schema_issues"], serde_json::json!([]), "{s}");
}

async fn texts(url: &str, sql: &str) -> Vec<Option<String>> {
    pg_connect(url)
        .await
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {}", molt_core::target::describe(&e)))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn mysql_points_lines_and_polygons_arrive_unchanged() {
    let my = fresh_mysql_database(&mysql_source_url(), "spatial_my").await;
    mysql_exec(
        &my,
        "CREATE TABLE shapes (id INT PRIMARY KEY, p POINT, l LINESTRING, g POLYGON, any_shape GEOMETRY);
         INSERT INTO shapes VALUES
           (1, ST_GeomFromText('POINT(1 2)'), ST_GeomFromText('LINESTRING(0 0, 1 1, 2 0.5)'),
               ST_GeomFromText('POLYGON((0 0, 4 0, 4 4, 0 4, 0 0), (1 1, 2 1, 2 2, 1 1))'),
               ST_GeomFromText('MULTIPOINT(1 1, -2.5 3)')),
           (2, ST_GeomFromText('POINT(-71.0603 42.3583)', 4326), NULL, NULL,
               ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1), LINESTRING(0 0, 1 1))')),
           (3, NULL, NULL, NULL, NULL);",
    );
    let db = my.rsplit('/').next().unwrap().split('?').next().unwrap();
    let table = format!("{db}.shapes");
    let tgt = spatial_target("spatial_my_tgt").await;
    migrate(&my, &table, &tgt);
    // A MySQL database's tables land in the target's `public` schema.
    let got = texts(
        &tgt,
        "SELECT concat_ws(' | ', id::text, ST_AsText(p), ST_SRID(p)::text, ST_AsText(l), ST_AsText(g), ST_AsText(any_shape)) \
         FROM public.shapes ORDER BY id",
    )
    .await;
    assert_eq!(
        got,
        vec![
            Some("1 | POINT(1 2) | 0 | LINESTRING(0 0,1 1,2 0.5) | POLYGON((0 0,4 0,4 4,0 4,0 0),(1 1,2 1,2 2,1 1)) | MULTIPOINT((1 1),(-2.5 3))".into()),
            Some("2 | POINT(-71.0603 42.3583) | 4326 | GEOMETRYCOLLECTION(POINT(1 1),LINESTRING(0 0,1 1))".into()),
            Some("3".into()),
        ]
    );
    verify_clean(&my, "shapes", &tgt, 3);
}

#[tokio::test]
async fn a_postgis_source_column_keeps_its_type_and_shapes() {
    let src = fresh_pg_database(&pg_source_url(), "spatial_pg").await;
    psql_exec(
        &src,
        "CREATE EXTENSION IF NOT EXISTS postgis;
         CREATE TABLE places (id int PRIMARY KEY, pos geometry(Point, 4326), area geometry, route geography(LineString, 4326));
         INSERT INTO places VALUES
           (1, ST_SetSRID(ST_MakePoint(13.4, 52.52), 4326), ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))'),
               ST_GeogFromText('SRID=4326;LINESTRING(13.4 52.5, 2.35 48.86)')),
           (2, NULL, ST_GeomFromText('MULTILINESTRING((0 0,1 1),(2 2,3 3))'), NULL);",
    );
    let tgt = spatial_target("spatial_pg_tgt").await;
    migrate(&src, "public.places", &tgt);
    assert_eq!(
        texts(
            &tgt,
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = 'public.places'::regclass AND attnum > 0 ORDER BY attnum"
        )
        .await,
        vec![
            Some("integer".into()),
            Some("geometry(Point,4326)".into()),
            Some("geometry".into()),
            Some("geography(LineString,4326)".into()),
        ]
    );
    let sql = "SELECT concat_ws(' | ', id::text, ST_AsEWKT(pos), ST_AsEWKT(area), ST_AsEWKT(route)) FROM public.places ORDER BY id";
    assert_eq!(texts(&tgt, sql).await, texts(&src, sql).await);
    assert_eq!(
        texts(&tgt, sql).await[0].as_deref(),
        Some("1 | SRID=4326;POINT(13.4 52.52) | POLYGON((0 0,1 0,1 1,0 0)) | SRID=4326;LINESTRING(13.4 52.5,2.35 48.86)")
    );
    verify_clean(&src, "public.places", &tgt, 2);
}
