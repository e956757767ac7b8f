//! `--dry-run`: the SQL a command would run, changing nothing.
//!
//! Like `molt-load --dry-run`, the SQL goes to stderr (stdout is for data:
//! `rollback --after-cutover` writes its stream there) without the
//! `molt-cutover: info:` prefix, so that a successful dry run's stderr is a
//! script: statements end with `;` (or, where the engine's client needs it,
//! `DELIMITER //` blocks for MySQL and a `/` line for Oracle PL/SQL), and
//! everything else is a `--` comment. A command touches two databases, so
//! comments say where each part runs. The statements are the ones the real
//! command builds, not a description of them; only the ledger's own
//! bookkeeping (recorded by `molt_core::ledger` with bound parameters) is
//! described in comments.
//!
//! Comments may carry URLs and operator text, so they go through
//! `redact_text`; a password never reaches the output.

use std::io::Write;

/// Writes text to stderr as it is.
fn write(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = err.write_all(b"\n");
    }
    let _ = err.flush();
}

/// A `--` comment (each line of `text`), with passwords redacted.
pub fn comment(text: impl AsRef<str>) {
    let text = molt_core::url::redact_text(text.as_ref());
    let mut out = String::new();
    for line in text.lines() {
        out.push_str("-- ");
        out.push_str(line);
        out.push('\n');
    }
    write(&out);
}

/// Rendered SQL, already terminated.
pub fn script(text: &str) {
    if !text.is_empty() {
        write(text);
    }
}

/// One statement, terminated with `;`.
pub fn statement(sql: &str) {
    write(&format!("{sql};"));
}

/// A single-quoted shell word (for showing the hook command).
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_survive_quotes() {
        assert_eq!(shell_quote("echo 'hi' $X"), "'echo '\\''hi'\\'' $X'");
    }
}
