//! The phase plan parser, property-tested in CI (the same entry point as
//! fuzz/fuzz_targets/phase_plan.rs, fuzzed for longer by scripts/fuzz.sh):
//! arbitrary text never panics, and a plan written out reads back the same.

use molt_slice::{glob_match, PlanFile};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A TOML string literal holding exactly `text`.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn plan_parser_never_panics(text in any::<String>()) {
        if let Err(e) = PlanFile::parse(&text, "p.toml") {
            let message = format!("{e:#}");
            prop_assert!(message.contains("p.toml"), "{}", message);
        }
    }

    #[test]
    fn plan_parser_never_panics_on_plan_like_text(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("[[phase]]".to_string()),
                Just("[phase.filters]".to_string()),
                "(name|filter|target_filter|schema|tables|whole|via|filtr) = (\"[a-z*?. ']{0,6}\"|\\[\"[a-z*]{0,4}\"(, \"x\")?\\]|\\{ [a-z]{1,3} = \"[a-z]{1,3}\" \\}|1|true)",
            ],
            0..10,
        )
    ) {
        let _ = PlanFile::parse(&lines.join("\n"), "p.toml");
    }

    /// Phases written as TOML, with any text in names, filters and table
    /// names, read back with the same values.
    #[test]
    fn written_plans_read_back(
        schema in proptest::option::of(any::<String>()),
        phases in proptest::collection::vec(
            (
                "[a-zA-Z0-9_-]{1,8}",
                proptest::option::of(any::<String>()),
                proptest::collection::vec(any::<String>(), 0..3),
                proptest::collection::btree_map("[a-z_]{1,6}", any::<String>(), 0..3),
            ),
            1..4,
        ),
    ) {
        let mut text = String::new();
        if let Some(schema) = &schema {
            text.push_str(&format!("schema = {}\n", toml_string(schema)));
        }
        let mut seen = std::collections::HashSet::new();
        let phases: Vec<_> = phases.into_iter().filter(|p| seen.insert(p.0.clone())).collect();
        for (name, filter, tables, via) in &phases {
            text.push_str(&format!("[[phase]]\nname = {}\n", toml_string(name)));
            if let Some(filter) = filter {
                text.push_str(&format!("filter = {}\n", toml_string(filter)));
            }
            let tables: Vec<String> = tables.iter().map(|t| toml_string(t)).collect();
            text.push_str(&format!("tables = [{}]\n", tables.join(", ")));
            text.push_str("[phase.via]\n");
            for (child, parent) in via {
                text.push_str(&format!("{child} = {}\n", toml_string(parent)));
            }
        }
        let plan = PlanFile::parse(&text, "p.toml").map_err(|e| TestCaseError::fail(format!("{e:#}\n{text}")))?;
        prop_assert_eq!(&plan.schema, &schema);
        prop_assert_eq!(plan.phase.len(), phases.len());
        for (spec, (name, filter, tables, via)) in plan.phase.iter().zip(&phases) {
            prop_assert_eq!(&spec.name, name);
            prop_assert_eq!(&spec.filter, filter);
            prop_assert_eq!(&spec.tables, tables);
            prop_assert_eq!(&spec.via, via);
        }
    }

    #[test]
    fn globs_match_themselves_and_any_spelling(text in any::<String>()) {
        prop_assert!(glob_match("*", &text));
        let question_marks: String = text.chars().map(|_| '?').collect();
        prop_assert!(glob_match(&question_marks, &text));
        if !text.contains(['*', '?']) {
            prop_assert!(glob_match(&text, &text));
            let longer = format!("{text}x");
            prop_assert!(!glob_match(&text, &longer));
        }
    }
}
