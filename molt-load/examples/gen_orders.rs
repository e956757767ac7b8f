//! Generates the throughput benchmark of `docs/loading.md`: an `orders`
//! stream of N rows (`orders.ndjson`) and the same rows as COPY text
//! (`orders.copy`) for `psql -c "\copy orders from stdin"`.
//!
//! `cargo run --release -p molt-load --example gen_orders -- DIR [ROWS]`

use std::io::{BufWriter, Write};

use molt_core::digest::{DigestColumn, RowHasher, SectionDigest};
use molt_core::stream::{
    self, Column, Field, Record, SectionEnd, Shard, Slice, StreamWriter, TableHeader, TableName,
};
use molt_core::target::copy_in::RowEncoder;
use molt_core::value::LogicalType;

fn col(name: &str, target_type: &str, logical: LogicalType, pk: Option<u16>) -> Column {
    Column {
        name: name.into(),
        source_type: target_type.to_lowercase(),
        target_type: target_type.into(),
        logical,
        array_dims: 0,
        nullable: pk.is_none(),
        pk,
        default: None,
        target_default: None,
        enum_type: None,
        domain: None,
        charset: None,
        collation: None,
        generation: None,
        padded: target_type.starts_with("CHAR"),
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: gen_orders DIR [ROWS]"));
    let rows: u64 = args
        .next()
        .map_or(2_000_000, |n| n.parse().expect("ROWS is a number"));
    let table = TableName::new("public", "orders");
    let header = TableHeader {
        table: table.clone(),
        target: None,
        columns: vec![
            col("id", "INT8", LogicalType::Int, Some(1)),
            col("tenant_id", "INT4", LogicalType::Int, None),
            col("region", "CHAR(1)", LogicalType::Text, None),
            col("customer_email", "VARCHAR(120)", LogicalType::Text, None),
            col("amount", "DECIMAL(12,2)", LogicalType::Decimal, None),
            col("status", "VARCHAR(16)", LogicalType::Text, None),
            col("created_at", "TIMESTAMP", LogicalType::Timestamp, None),
            col("note", "TEXT", LogicalType::Text, None),
            col("payload", "JSONB", LogicalType::Json, None),
        ],
        slice: Slice {
            phase: String::new(),
            table: table.clone(),
            filter: None,
            target_filter: None,
            shard: Shard::whole(),
        },
        indexes: vec![],
        foreign_keys: vec![],
        checks: vec![],
        sequences: vec![],
        estimated_rows: Some(rows),
        notes: vec![],
        checksum: None,
    };
    let mut out = StreamWriter::new(BufWriter::new(std::fs::File::create(
        dir.join("orders.ndjson"),
    )?));
    let mut copy = BufWriter::new(std::fs::File::create(dir.join("orders.copy"))?);
    out.record(&stream::header("gen_orders", None))?;
    out.record(&Record::Table(Box::new(header.clone())))?;
    let digest_cols: Vec<DigestColumn> = header.columns.iter().map(DigestColumn::from).collect();
    let mut encoder = RowEncoder::new(&header);
    let mut hasher = RowHasher::default();
    let mut digest = SectionDigest::default();
    let statuses = ["new", "paid", "shipped", "cancelled"];
    let mut copy_buf = Vec::new();
    for i in 1..=rows {
        let values = [
            Some(i.to_string()),
            Some((i % 1000).to_string()),
            Some(["A", "B", "C", "D"][(i % 4) as usize].to_string()),
            Some(format!("customer{}@example.com", i % 50_000)),
            Some(format!("{}.{:02}", i % 100_000, i % 100)),
            Some(statuses[(i % 4) as usize].to_string()),
            Some(format!(
                "2024-{:02}-{:02} {:02}:{:02}:{:02}",
                1 + (i / 86_400 / 28) % 12,
                1 + (i / 86_400) % 28,
                (i / 3600) % 24,
                (i / 60) % 60,
                i % 60
            )),
            if i % 10 == 0 {
                None
            } else {
                Some(format!(
                    "order {i}: handle with care\tfragile \\ \"quoted\""
                ))
            },
            Some(format!(
                r#"{{"items": [{{"sku": "S{}", "qty": {}}}], "gift": {}}}"#,
                i % 977,
                i % 5 + 1,
                i % 2 == 0
            )),
        ];
        let mut row = out.row();
        for (c, v) in digest_cols.iter().zip(&values) {
            match v {
                Some(t) => {
                    row.str(t);
                }
                None => {
                    row.null();
                }
            }
            hasher.value(*c, v.as_deref());
        }
        row.finish();
        out.maybe_flush()?;
        digest.add_row(hasher.finish_row());
        copy_buf.clear();
        encoder
            .encode_row(
                values
                    .iter()
                    .map(|v| v.as_deref().map_or(Field::Null, Field::Str)),
                &mut copy_buf,
            )
            .expect("encodable");
        copy.write_all(&copy_buf)?;
    }
    let end = SectionEnd {
        table: table.clone(),
        shard: Shard::whole(),
        rows: digest.rows,
        digest: digest.hex(),
        changes: vec![],
        checksum: None,
    };
    out.record(&Record::End(end))?;
    out.flush()?;
    copy.flush()?;
    eprintln!("wrote {rows} rows, digest {}", digest.hex());
    Ok(())
}
