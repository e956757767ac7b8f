//! Writing the files: one man page per command and subcommand (the way
//! `git-commit(1)` sits next to `git(1)`), one completion script per tool.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap_complete::Shell;

/// Every shipped tool's command-line definition.
pub fn tools() -> Vec<clap::Command> {
    vec![
        molt_slice::command(),
        molt_dump::command(),
        molt_load::command(),
        molt_verify::command(),
        molt_cutover::command(),
    ]
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Writes `NAME.1` for every tool and `NAME-SUB.1` for each subcommand;
/// returns the paths written.
pub fn man_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    create_dir(dir)?;
    let mut written = Vec::new();
    for cmd in tools() {
        write_man(dir, cmd, &mut written)?;
    }
    Ok(written)
}

fn write_man(dir: &Path, cmd: clap::Command, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let name = cmd.get_name().to_owned();
    let cmd = cmd.version(env!("CARGO_PKG_VERSION"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut buf)
        .with_context(|| format!("rendering the man page of {name}"))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        // `molt-cutover freeze` becomes molt-cutover-freeze(1).
        let sub = sub
            .clone()
            .name(format!("{name}-{}", sub.get_name()))
            .display_name(format!("{name}-{}", sub.get_name()))
            .bin_name(format!("{name} {}", sub.get_name()));
        write_man(dir, sub, written)?;
    }
    Ok(())
}

/// Writes a completion script for `shell` per tool; returns the paths written.
pub fn completions(shell: Shell, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    create_dir(dir)?;
    let mut written = Vec::new();
    for mut cmd in tools() {
        let name = cmd.get_name().to_owned();
        let path = clap_complete::generate_to(shell, &mut cmd, &name, dir)
            .with_context(|| format!("writing the {shell} completions of {name}"))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_man_page_per_tool_and_subcommand_with_the_real_flags() {
        let dir = tempfile::tempdir().unwrap();
        let files = man_pages(dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for want in [
            "molt-slice.1",
            "molt-slice-plan.1",
            "molt-slice-audit.1",
            "molt-dump.1",
            "molt-load.1",
            "molt-verify.1",
            "molt-cutover.1",
            "molt-cutover-freeze.1",
            "molt-cutover-switch.1",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
        }
        let load = std::fs::read_to_string(dir.path().join("molt-load.1")).unwrap();
        assert!(load.starts_with(".ie") || load.contains(".TH"), "{load}");
        assert!(
            load.contains("table\\-handling"),
            "molt-load.1 lacks --table-handling"
        );
        let switch = std::fs::read_to_string(dir.path().join("molt-cutover-switch.1")).unwrap();
        assert!(switch.contains("molt\\-cutover\\-switch"), "{switch}");
        assert!(switch.contains("hook"), "{switch}");
    }

    #[test]
    fn completions_per_tool_for_each_shell() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let dir = tempfile::tempdir().unwrap();
            let files = completions(shell, dir.path()).unwrap();
            assert_eq!(files.len(), 5, "{shell}: {files:?}");
            let all: String = files
                .iter()
                .map(|f| std::fs::read_to_string(f).unwrap())
                .collect();
            for flag in [
                "--shard-rows",
                "--zero-dates",
                "--force-reload",
                "--float-tolerance",
                "--wait-timeout",
            ] {
                assert!(
                    all.contains(flag.trim_start_matches('-')),
                    "{shell} completions lack {flag}"
                );
            }
        }
    }
}
