//! Every tool given an `oracle://` source, on a machine without an Oracle
//! server (and usually without Oracle Instant Client): one clear line on
//! stderr, exit status 1, and never the password.
//!
//! Which line depends on how the binary was built, and the test accepts
//! exactly these outcomes:
//!
//! - built without the cargo feature `oracle` (the default build):
//!   `<tool>: error: this <tool> was built without Oracle support: rebuild
//!   with `cargo build --features oracle``;
//! - built with it, without Instant Client: the line names Oracle Instant
//!   Client and LD_LIBRARY_PATH, with the URL redacted;
//! - built with it, with Instant Client installed: the connection to port 1
//!   fails, with the URL redacted.
//!
//! The URL reaches the tools through the environment, so the warning about
//! passwords on the command line does not add a line.

use std::path::Path;
use std::process::{Command, Stdio};

use molt_tests::bin;

const PASSWORD: &str = "tiger";
const URL: &str = "oracle://scott:tiger@127.0.0.1:1/ORCL";
const REDACTED: &str = "oracle://scott:***@127.0.0.1:1/ORCL";

/// Runs `tool` with the Oracle URL in `MOLT_SOURCE` and stdin closed, and
/// checks the one-line failure; returns which outcome it was.
fn check_tool(tool: &str, args: &[&str]) -> &'static str {
    let out = Command::new(bin(tool))
        .args(args)
        .env("MOLT_SOURCE", URL)
        .env("MOLT_TEST_ORACLE_URL", URL)
        .env_remove("MOLT_TARGET")
        // The one-line text form of errors is what is checked here.
        .env_remove("MOLT_LOG_FORMAT")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {tool}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!(
        "{tool} {args:?}: status {:?}, stderr:\n{stderr}",
        out.status
    );
    assert_eq!(out.status.code(), Some(1), "{context}");
    assert!(stdout.is_empty(), "{context}\nstdout: {stdout}");
    assert!(!stderr.contains(PASSWORD), "{context}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line expected: {context}");
    let line = lines[0];
    let without = format!(
        "{tool}: error: this {tool} was built without Oracle support: rebuild with `cargo build --features oracle`"
    );
    if line.contains("built without Oracle support") {
        assert_eq!(line, without, "{context}");
        "without-feature"
    } else if line.contains("Oracle Instant Client") {
        assert!(line.starts_with(&format!("{tool}: error: ")), "{context}");
        assert!(line.contains("LD_LIBRARY_PATH"), "{context}");
        assert!(line.contains(REDACTED), "{context}");
        "no-client"
    } else {
        // Instant Client is installed here: the connection itself fails.
        assert!(line.starts_with(&format!("{tool}: error: ")), "{context}");
        assert!(line.contains(REDACTED), "{context}");
        "no-server"
    }
}

fn plan_file(dir: &Path) -> String {
    let plan = dir.join("plan.toml");
    std::fs::write(
        &plan,
        "schema = \"SCOTT\"\n[[phase]]\nname = \"A\"\nfilter = \"region = 'A'\"\ntables = [\"ORDERS\"]\n",
    )
    .unwrap();
    plan.display().to_string()
}

#[test]
fn molt_dump_with_an_oracle_source_fails_in_one_line() {
    check_tool("molt-dump", &["--table", "SCOTT.ORDERS"]);
    // The same through env:VAR indirection.
    check_tool(
        "molt-dump",
        &[
            "--source",
            "env:MOLT_TEST_ORACLE_URL",
            "--table",
            "ORDERS",
            "--allow-rounding",
        ],
    );
}

#[test]
fn molt_verify_with_an_oracle_source_fails_in_one_line() {
    check_tool(
        "molt-verify",
        &[
            "--target",
            "postgres://nobody@127.0.0.1:1/none",
            "--table",
            "SCOTT.ORDERS",
        ],
    );
}

#[test]
fn molt_slice_with_an_oracle_source_fails_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_file(dir.path());
    check_tool("molt-slice", &["plan", "--plan", &plan, "--phase", "A"]);
    check_tool("molt-slice", &["audit", "--plan", &plan]);
}

#[test]
fn molt_cutover_freeze_with_an_oracle_source_fails_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_file(dir.path());
    for command in ["freeze", "unfreeze"] {
        check_tool(
            "molt-cutover",
            &[
                command,
                "--plan",
                &plan,
                "--phase",
                "A",
                "--target",
                "postgres://nobody@127.0.0.1:1/none",
            ],
        );
    }
}

/// `--allow-rounding` is for Oracle sources only: with another engine it is
/// a usage error naming the flag, whatever the build.
#[test]
fn oracle_flags_are_refused_for_other_sources() {
    let out = Command::new(bin("molt-dump"))
        .args([
            "--source",
            "postgres://nobody@127.0.0.1:1/none",
            "--table",
            "t",
            "--allow-rounding",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "molt-dump: error: --allow-rounding: for Oracle sources only, but --source is a postgres URL"
    );
}
