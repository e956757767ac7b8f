//! molt-verify: Compare a slice on the source with the target, row by row
//!
//! The binary is a one-line `main` over [`run`]; the command-line
//! definition is [`command`], shared with the man page and completions.

use std::ffi::OsString;

use clap::Parser;

/// Command-line options of molt-verify.
#[derive(Debug, Parser)]
#[command(
    name = "molt-verify",
    version,
    about = "Compare a slice on the source with the target, row by row",
    after_help = "Example:\n  molt-verify --source $SRC --target $TGT --table public.orders --filter \"region = 'A'\"\n\nExit codes: 0 success, 1 failure, 2 usage error (see docs/exit-codes.md)."
)]
pub struct Args {}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// Runs molt-verify with the given arguments (program name first).
pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<i32> {
    let _args = Args::parse_from(args);
    anyhow::bail!("not implemented yet")
}
