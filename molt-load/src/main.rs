molt_core::tool_main!("molt-load", molt_load::run);
