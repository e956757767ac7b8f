//! Exit codes, in one place, and the shared `main` of every tool.
//!
//! Scripts and cron jobs branch on these, so they are part of the public
//! contract (see `docs/exit-codes.md`) and never change meaning.

use std::io::Write;

/// The run did everything it was asked to do.
pub const SUCCESS: i32 = 0;
/// The run failed: bad input, a database error, a lost connection.
pub const FAILURE: i32 = 1;
/// The command line was wrong (clap's own code for usage errors).
pub const USAGE: i32 = 2;
/// molt-verify finished and found differences (or molt-slice audit found
/// rows that break the plan). Distinct from [`FAILURE`] so that a script can
/// tell "the data differs" from "the check could not run".
pub const DIFFERENCES: i32 = 3;
/// molt-cutover refused a transition because a precondition does not hold
/// (switch without a passing verify, for example).
pub const REFUSED: i32 = 4;

/// An error that carries its own exit code. Anything else that reaches
/// `main` exits with [`FAILURE`].
#[derive(Debug)]
pub struct ExitError {
    pub code: i32,
    pub message: String,
}

impl ExitError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        ExitError {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ExitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExitError {}

/// The payload of the `BrokenPipe` error a [`Stdout`] returns, so that the
/// exit code can tell the reader of stdout going away (`molt-dump | head`)
/// from a broken database socket, which is a failure.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout was closed by its reader")
    }
}

impl std::error::Error for StdoutClosed {}

/// A writer over stdout (or a file opened on fd 1) whose broken pipe is
/// marked [`StdoutClosed`]. Every tool writes its data through one.
pub struct Stdout<W>(pub W);

impl<W> Stdout<W> {
    fn mark(error: std::io::Error) -> std::io::Error {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, StdoutClosed)
        } else {
            error
        }
    }
}

impl<W: Write> Write for Stdout<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(Self::mark)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.write_all(buf).map_err(Self::mark)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(Self::mark)
    }
}

/// stdout, locked, behind [`Stdout`].
pub fn stdout() -> Stdout<std::io::StdoutLock<'static>> {
    Stdout(std::io::stdout().lock())
}

/// True when the error chain holds a broken pipe on stdout (marked by
/// [`Stdout`]): `molt-dump | head` must end quietly, as every Unix tool
/// does. A broken pipe anywhere else (a database socket) is a failure.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<StdoutClosed>().is_some()
            || cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
                io.kind() == std::io::ErrorKind::BrokenPipe
                    && io
                        .get_ref()
                        .is_some_and(|inner| inner.downcast_ref::<StdoutClosed>().is_some())
            })
    })
}

/// Runs a tool's entry point and turns its outcome into an exit code.
///
/// Errors print as `tool: error: outer context: inner cause` on one line,
/// so a log line names what failed and where.
///
/// With `--metrics-linger`, the final metrics stay served for that long
/// after the outcome is known (and said), whatever it is.
pub fn run_tool(tool: &str, entry: impl FnOnce() -> anyhow::Result<i32>) -> i32 {
    let code = outcome(tool, entry());
    crate::metrics::linger();
    code
}

fn outcome(tool: &str, result: anyhow::Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => SUCCESS,
        Err(err) => {
            let code = err.downcast_ref::<ExitError>().map_or(FAILURE, |e| e.code);
            let mut message = err.to_string();
            for cause in err.chain().skip(1) {
                message.push_str(": ");
                message.push_str(&cause.to_string());
            }
            match crate::diag::format() {
                crate::diag::LogFormat::Text => {
                    let line = crate::url::redact_text(&format!("{tool}: error: {message}"));
                    let _ = writeln!(std::io::stderr().lock(), "{line}");
                }
                crate::diag::LogFormat::Json => crate::diag::emit("error", &message),
            }
            code
        }
    }
}

/// The tools' global allocator (set by [`tool_main!`]).
pub use mimalloc::MiMalloc as Allocator;

/// Defines `fn main` for a tool crate whose library exposes
/// `pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<i32>`.
#[macro_export]
macro_rules! tool_main {
    ($tool:literal, $run:path) => {
        // Every row passes through a handful of short-lived allocations
        // (driver values, scratch buffers); mimalloc serves them at a
        // fraction of glibc malloc's cost.
        #[global_allocator]
        static GLOBAL: $crate::exit::Allocator = $crate::exit::Allocator;

        fn main() {
            let code = $crate::exit::run_tool($tool, || $run(std::env::args_os()));
            std::process::exit(code);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_broken_stdout_is_success() {
        let socket = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("writing to the database");
        assert!(!is_broken_pipe(&socket));
        assert_eq!(run_tool("t", || Err(socket)), FAILURE);

        let mut out = Stdout(BrokenWriter);
        let stdout = anyhow::Error::new(out.write_all(b"x").unwrap_err()).context("writing rows");
        assert!(is_broken_pipe(&stdout));
        assert_eq!(run_tool("t", || Err(stdout)), SUCCESS);
    }

    struct BrokenWriter;

    impl Write for BrokenWriter {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
