//! The MySQL type-map file (`--type-map`), as TOML and as JSON, and the
//! mapping code its entries reach: lookup, the default mapping of the
//! column an entry names, and the override applied to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use molt_core::mysql::typemap::{apply, TypeMap};
use molt_core::mysql::types::{map_column, parse_labels, RawColumn};

fn exercise(map: &TypeMap) {
    let mut columns = Vec::new();
    for o in &map.column {
        let (db, table) = o.table.split_once('.').unwrap_or(("db", o.table.as_str()));
        let found = map.find(db, table, &o.column);
        assert!(found.is_some(), "an entry finds itself: {o:?}");
        columns.push((db.to_string(), table.to_string(), o.column.clone()));
        let target = o.target_type.clone().unwrap_or_default();
        let data_type = target
            .split(['(', ' '])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let raw = RawColumn {
            name: o.column.clone(),
            data_type,
            column_type: target.clone(),
            char_max_length: Some(target.len() as u64),
            charset: o.nullable.map(|_| table.to_string()),
            ..RawColumn::default()
        };
        let _ = raw.unsigned();
        let _ = raw.declared_width();
        let _ = parse_labels(&target);
        if let Ok(mapped) = map_column(&raw) {
            let _ = apply(&raw, mapped, &target);
        }
    }
    assert!(map.unmatched(&columns).is_empty());
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for json in [false, true] {
        match TypeMap::parse(text, "fuzz", json) {
            Ok(map) => exercise(&map),
            Err(e) => assert!(e.to_string().starts_with("type map fuzz: ")),
        }
    }
});
