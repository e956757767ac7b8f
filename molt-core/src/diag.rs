//! Diagnostics on stderr, as text for people or as JSON lines for log
//! collectors (`--log-format json`, or `MOLT_LOG_FORMAT=json`).
//!
//! stdout carries only data; everything a tool has to say goes through
//! here, so one flag switches all of it. Text is never coloured: molt
//! writes no colour codes, so `NO_COLOR` and pipes need no special case.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

/// How diagnostics are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `tool: level: message`, one line each.
    #[default]
    Text,
    /// `{"tool":..,"level":..,"message":..,"time":..}`, one JSON object per line.
    Json,
}

/// The flag every tool flattens into its arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct DiagArgs {
    /// Diagnostics on stderr as text or as JSON lines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "MOLT_LOG_FORMAT")]
    pub log_format: LogFormat,
}

static FORMAT: AtomicU8 = AtomicU8::new(0);

/// Sets the format for the rest of the process.
pub fn set_format(format: LogFormat) {
    FORMAT.store(format as u8, Ordering::Relaxed);
}

/// The format in force: the one set, else `MOLT_LOG_FORMAT`.
pub fn format() -> LogFormat {
    if FORMAT.load(Ordering::Relaxed) == LogFormat::Json as u8
        || std::env::var("MOLT_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"))
    {
        LogFormat::Json
    } else {
        LogFormat::Text
    }
}

/// The program's name, for the `tool` field.
fn tool() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "molt".into())
}

/// Writes one diagnostic line. The message is redacted of passwords.
pub fn emit(level: &str, message: &str) {
    let message = crate::url::redact_text(message);
    let line = match format() {
        LogFormat::Text => format!("{}: {level}: {message}", tool()),
        LogFormat::Json => {
            let time = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            serde_json::json!({"tool": tool(), "level": level, "message": message, "time": time})
                .to_string()
        }
    };
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// A warning: `warn!("table {t} has no primary key")`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::diag::emit("warning", &format!($($arg)*)) };
}

/// Progress and facts worth a line: `info!("dumped {n} rows")`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::diag::emit("info", &format!($($arg)*)) };
}
