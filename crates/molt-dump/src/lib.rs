//! molt-dump: Read slices from the source in one consistent snapshot and stream their schema and rows
//!
//! The binary is a one-line `main` over [`run`]; the command-line
//! definition is [`command`], shared with the man page and completions.

use std::ffi::OsString;

use clap::Parser;

/// Command-line options of molt-dump.
#[derive(Debug, Parser)]
#[command(
    name = "molt-dump",
    version,
    about = "Read slices from the source in one consistent snapshot and stream their schema and rows",
    after_help = "Example:\n  molt-dump --source postgres://app@db/shop --table public.orders --filter \"region = 'A'\" > orders.ndjson\n\nExit codes: 0 success, 1 failure, 2 usage error (see docs/exit-codes.md)."
)]
pub struct Args {}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// Runs molt-dump with the given arguments (program name first).
pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<i32> {
    let _args = Args::parse_from(args);
    anyhow::bail!("not implemented yet")
}
