molt_core::tool_main!("molt-cutover", molt_cutover::run);
