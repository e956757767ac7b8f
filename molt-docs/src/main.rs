//! molt-docs: man pages and shell completions for the five molt tools.
//!
//! Each tool crate exposes its command-line definition as
//! `pub fn command() -> clap::Command`, the same value its binary parses
//! with, so the generated pages and completions can never drift from the
//! real flags. This binary is a packaging helper (run by a release script
//! or a distribution package), not a migration tool, and is not shipped.
//!
//! ```sh
//! molt-docs man target/man                    # molt-slice.1, molt-slice-plan.1, ...
//! molt-docs completions bash target/completions
//! ```

mod generate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use clap_complete::Shell;

/// Command-line options of molt-docs.
#[derive(Debug, Parser)]
#[command(
    name = "molt-docs",
    version,
    about = "Generate man pages and shell completions for the molt tools",
    after_help = "Examples:\n  molt-docs man target/man\n  molt-docs completions bash /usr/share/bash-completion/completions"
)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Write a man page (section 1) per tool and per subcommand into DIR.
    Man {
        /// Output directory (created if missing).
        dir: PathBuf,
    },
    /// Write a completion script per tool for SHELL into DIR.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: Shell,
        /// Output directory (created if missing).
        dir: PathBuf,
    },
}

fn main() {
    let args = Args::parse();
    let result = match &args.command {
        Cmd::Man { dir } => generate::man_pages(dir),
        Cmd::Completions { shell, dir } => generate::completions(*shell, dir),
    };
    match result {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
        }
        Err(e) => {
            eprintln!("molt-docs: error: {e:#}");
            std::process::exit(1);
        }
    }
}
