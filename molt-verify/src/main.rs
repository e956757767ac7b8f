molt_core::tool_main!("molt-verify", molt_verify::run);
