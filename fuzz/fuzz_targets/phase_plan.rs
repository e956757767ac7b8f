//! The phase plan (TOML) parser of molt-slice, and the name patterns a
//! plan's tables are written in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use molt_core::stream::TableName;
use molt_slice::{glob_match, PlanFile};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match PlanFile::parse(text, "fuzz.toml") {
        Ok(plan) => {
            let schema = plan.schema.as_deref().unwrap_or("public");
            for phase in &plan.phase {
                assert!(!phase.name.trim().is_empty());
                let names: Vec<&String> = phase
                    .tables
                    .iter()
                    .chain(&phase.whole)
                    .chain(phase.filters.keys())
                    .chain(phase.via.keys())
                    .chain(phase.via.values())
                    .collect();
                for name in &names {
                    let table = TableName::parse(name, schema);
                    let _ = table.to_string();
                    for other in &names {
                        let _ = glob_match(name, other);
                    }
                    // A pattern without wildcards matches itself.
                    if !name.contains(['*', '?']) {
                        assert!(glob_match(name, name));
                    }
                }
            }
        }
        Err(e) => {
            let message = format!("{e:#}");
            assert!(message.contains("fuzz.toml"), "{message}");
        }
    }
    // Arbitrary patterns: the input split in two.
    let mid = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    let (pattern, subject) = text.split_at(mid);
    let _ = glob_match(pattern, subject);
    assert!(glob_match("*", subject));
});
