//! The Oracle type mapping on real-world schemas: Oracle's HR and CO
//! sample schemas and Chinook's Oracle script, read with the module's DDL
//! reader. Every column must map, and a representative set must map to
//! the documented target types. Runs without the `oracle` feature.

use molt_core::oracle::catalog::{BuildOptions, OracleTable};
use molt_core::oracle::ddl::map_ddl;
use molt_core::value::LogicalType;
use molt_tests::{require_datasets, shared_dataset};

fn dataset(rel: &str) -> String {
    std::fs::read_to_string(shared_dataset(rel)).expect("the script is UTF-8")
}

fn map(rel: &str, owner: &str) -> Vec<OracleTable> {
    map_ddl(&dataset(rel), owner, &BuildOptions::default()).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// (target type, logical type) of `table.column` (target names).
fn col(tables: &[OracleTable], table: &str, column: &str) -> (String, LogicalType) {
    let t = tables
        .iter()
        .find(|t| t.header.target_name().name == table)
        .unwrap_or_else(|| panic!("no table {table}"));
    let c = t
        .header
        .columns
        .iter()
        .find(|c| c.name == column)
        .unwrap_or_else(|| panic!("no column {table}.{column}"));
    (c.target_type.clone(), c.logical)
}

fn count_columns(tables: &[OracleTable]) -> usize {
    tables.iter().map(|t| t.header.columns.len()).sum()
}

#[test]
fn hr_schema_maps_completely() {
    require_datasets!("oracle-sample-schemas/human_resources/hr_create.sql");
    let hr = map("oracle-sample-schemas/human_resources/hr_create.sql", "HR");
    let names: Vec<&str> = hr.iter().map(|t| t.header.table.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "REGIONS",
            "COUNTRIES",
            "LOCATIONS",
            "DEPARTMENTS",
            "JOBS",
            "EMPLOYEES",
            "JOB_HISTORY"
        ]
    );
    assert_eq!(count_columns(&hr), 2 + 3 + 6 + 4 + 4 + 11 + 5);
    assert_eq!(
        col(&hr, "employees", "salary"),
        ("DECIMAL(8,2)".into(), LogicalType::Decimal)
    );
    assert_eq!(
        col(&hr, "employees", "commission_pct"),
        ("DECIMAL(2,2)".into(), LogicalType::Decimal)
    );
    assert_eq!(
        col(&hr, "employees", "employee_id"),
        ("INT4".into(), LogicalType::Int)
    );
    assert_eq!(
        col(&hr, "employees", "hire_date"),
        ("TIMESTAMP(0)".into(), LogicalType::Timestamp)
    );
    assert_eq!(
        col(&hr, "employees", "email"),
        ("VARCHAR(25)".into(), LogicalType::Text)
    );
    assert_eq!(
        col(&hr, "locations", "location_id"),
        ("INT2".into(), LogicalType::Int)
    );
    assert_eq!(
        col(&hr, "regions", "region_id"),
        ("DECIMAL".into(), LogicalType::Decimal)
    );
    let countries = hr
        .iter()
        .find(|t| t.header.table.name == "COUNTRIES")
        .unwrap();
    let country_id = &countries.header.columns[0];
    assert_eq!(
        (
            country_id.target_type.as_str(),
            country_id.padded,
            country_id.pk
        ),
        ("CHAR(2)", true, Some(1))
    );

    let emp = &hr
        .iter()
        .find(|t| t.header.table.name == "EMPLOYEES")
        .unwrap()
        .header;
    assert_eq!(emp.target_name().to_string(), "hr.employees");
    let email = emp.columns.iter().find(|c| c.name == "email").unwrap();
    assert!(!email.nullable, "CONSTRAINT emp_email_nn NOT NULL");
    assert_eq!(emp.checks.len(), 1, "{:?}", emp.checks);
    assert_eq!(emp.checks[0].name, "emp_salary_min");
    let fk_names: Vec<&str> = emp.foreign_keys.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(fk_names, ["emp_dept_fk", "emp_job_fk", "emp_manager_fk"]);
    // `REFERENCES departments` with no column list: the referenced primary key.
    assert_eq!(emp.foreign_keys[0].referenced_columns, ["department_id"]);
    assert_eq!(emp.foreign_keys[0].references.to_string(), "hr.departments");
    let jh = &hr
        .iter()
        .find(|t| t.header.table.name == "JOB_HISTORY")
        .unwrap()
        .header;
    let key: Vec<&str> = jh.primary_key().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(key, ["employee_id", "start_date"]);
}

#[test]
fn customer_orders_schema_maps_completely() {
    require_datasets!("oracle-sample-schemas/customer_orders/co_create.sql");
    let co = map("oracle-sample-schemas/customer_orders/co_create.sql", "CO");
    assert_eq!(co.len(), 7);
    assert_eq!(count_columns(&co), 3 + 11 + 9 + 5 + 5 + 6 + 4);
    assert_eq!(
        col(&co, "products", "product_details"),
        ("JSONB".into(), LogicalType::Json)
    );
    assert_eq!(
        col(&co, "products", "product_image"),
        ("BYTEA".into(), LogicalType::Bytes)
    );
    assert_eq!(
        col(&co, "customers", "email_address"),
        ("VARCHAR(255)".into(), LogicalType::Text)
    );
    assert_eq!(
        col(&co, "customers", "customer_id"),
        ("DECIMAL(38,0)".into(), LogicalType::Decimal)
    );
    assert_eq!(
        col(&co, "orders", "order_tms"),
        ("TIMESTAMP(6)".into(), LogicalType::Timestamp)
    );
    assert_eq!(
        col(&co, "stores", "latitude"),
        ("DECIMAL(9,6)".into(), LogicalType::Decimal)
    );
    let products = &co
        .iter()
        .find(|t| t.header.table.name == "PRODUCTS")
        .unwrap()
        .header;
    // The IS JSON check became the JSONB type; it is not carried as a check.
    assert!(products.checks.is_empty(), "{:?}", products.checks);
    let customers = &co
        .iter()
        .find(|t| t.header.table.name == "CUSTOMERS")
        .unwrap()
        .header;
    assert!(matches!(
        customers.columns[0].generation,
        Some(molt_core::stream::Generation::Identity)
    ));
    assert_eq!(customers.sequences.len(), 1);
    assert_eq!(customers.indexes[0].name, "customers_email_u");
    let orders = &co
        .iter()
        .find(|t| t.header.table.name == "ORDERS")
        .unwrap()
        .header;
    assert_eq!(orders.checks[0].name, "orders_status_c");
    let items = &co
        .iter()
        .find(|t| t.header.table.name == "ORDER_ITEMS")
        .unwrap()
        .header;
    let key: Vec<&str> = items
        .primary_key()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(key, ["order_id", "line_item_id"]);
}

#[test]
fn chinook_maps_completely() {
    require_datasets!("chinook/Chinook_Oracle.sql");
    let ch = map("chinook/Chinook_Oracle.sql", "CHINOOK");
    assert_eq!(ch.len(), 11);
    for t in &ch {
        assert!(
            !t.header.primary_key().is_empty(),
            "{} has a primary key",
            t.header.table
        );
    }
    // Unquoted mixed-case names are upper case in Oracle, lower case on the target.
    assert_eq!(ch[0].header.table.name, "ALBUM");
    assert_eq!(
        col(&ch, "album", "albumid"),
        ("DECIMAL".into(), LogicalType::Decimal)
    );
    assert_eq!(
        col(&ch, "album", "title"),
        ("VARCHAR(160)".into(), LogicalType::Text)
    );
    assert_eq!(
        col(&ch, "invoice", "invoicedate"),
        ("TIMESTAMP(0)".into(), LogicalType::Timestamp)
    );
    assert_eq!(
        col(&ch, "invoiceline", "unitprice"),
        ("DECIMAL(10,2)".into(), LogicalType::Decimal)
    );
    let track = &ch
        .iter()
        .find(|t| t.header.table.name == "TRACK")
        .unwrap()
        .header;
    assert_eq!(track.foreign_keys.len(), 3, "{:?}", track.foreign_keys);
}

#[test]
fn unmappable_column_names_table_and_column() {
    let err = map_ddl(
        "CREATE TABLE docs (id NUMBER(9) PRIMARY KEY, f BFILE);",
        "APP",
        &BuildOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.table, "APP.DOCS");
    assert_eq!(err.column, "F");
    assert!(
        err.to_string()
            .starts_with("APP.DOCS column F: unsupported Oracle type BFILE"),
        "{err}"
    );
}
