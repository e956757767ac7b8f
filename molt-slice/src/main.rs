molt_core::tool_main!("molt-slice", molt_slice::run);
