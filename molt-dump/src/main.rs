molt_core::tool_main!("molt-dump", molt_dump::run);
