//! molt-load: Write a molt stream into CockroachDB, idempotently per slice, resumably
//!
//! The binary is a one-line `main` over [`run`]; the command-line
//! definition is [`command`], shared with the man page and completions.

use std::ffi::OsString;

use clap::Parser;

/// Command-line options of molt-load.
#[derive(Debug, Parser)]
#[command(
    name = "molt-load",
    version,
    about = "Write a molt stream into CockroachDB, idempotently per slice, resumably",
    after_help = "Example:\n  molt-dump --source $SRC --table public.orders | molt-load --target postgres://root@crdb:26257/shop\n\nExit codes: 0 success, 1 failure, 2 usage error (see docs/exit-codes.md)."
)]
pub struct Args {}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// Runs molt-load with the given arguments (program name first).
pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<i32> {
    let _args = Args::parse_from(args);
    anyhow::bail!("not implemented yet")
}
