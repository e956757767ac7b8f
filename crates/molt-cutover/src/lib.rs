//! molt-cutover: Run a phase's lifecycle: freeze, finalize, gate, switch, rollback, status
//!
//! The binary is a one-line `main` over [`run`]; the command-line
//! definition is [`command`], shared with the man page and completions.

use std::ffi::OsString;

use clap::Parser;

/// Command-line options of molt-cutover.
#[derive(Debug, Parser)]
#[command(
    name = "molt-cutover",
    version,
    about = "Run a phase's lifecycle: freeze, finalize, gate, switch, rollback, status",
    after_help = "Example:\n  molt-cutover status --target $TGT\n\nExit codes: 0 success, 1 failure, 2 usage error (see docs/exit-codes.md)."
)]
pub struct Args {}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// Runs molt-cutover with the given arguments (program name first).
pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<i32> {
    let _args = Args::parse_from(args);
    anyhow::bail!("not implemented yet")
}
