//! What molt-load says: `result` records on stdout, progress on stderr.
//!
//! Stdout carries only data, one `result` record per section, so a script
//! can collect them. The progress bar is drawn only when stderr is a
//! terminal (never in pipes or logs) and not `--quiet`.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use molt_core::stream::{Record, ResultRecord};

pub struct Output {
    stdout: Mutex<()>,
    bar: Option<ProgressBar>,
    bytes: AtomicU64,
    quiet: bool,
}

impl Output {
    pub fn new(quiet: bool) -> Output {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(
                ProgressStyle::with_template("{spinner} {human_pos} rows  {msg}  {per_sec}  {elapsed_precise} {wide_bar} {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Output {
            stdout: Mutex::new(()),
            bar,
            bytes: AtomicU64::new(0),
            quiet,
        }
    }

    /// Writes one result record to stdout (and counts the section).
    pub fn result(&self, record: ResultRecord) -> std::io::Result<()> {
        molt_core::metrics::section(
            &record.table,
            molt_core::metrics::SectionStatus::of_result(&record.status),
        );
        let _guard = self.stdout.lock().unwrap_or_else(|p| p.into_inner());
        let mut line =
            serde_json::to_vec(&Record::Result(Box::new(record))).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut out = molt_core::exit::stdout();
        out.write_all(&line)?;
        out.flush()
    }

    /// A diagnostic line on stderr (above the bar).
    pub fn note(&self, message: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(format!("molt-load: {message}")),
            None => molt_core::info!("{message}"),
        }
    }

    /// A line always shown (dry-run SQL), above the bar.
    pub fn always(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(message),
            None => eprintln!("{message}"),
        }
    }

    /// A section of `estimated` rows started (when the source knew).
    pub fn expect_rows(&self, estimated: Option<u64>) {
        if let (Some(bar), Some(n)) = (&self.bar, estimated) {
            bar.inc_length(n);
        }
    }

    /// Rows and COPY bytes sent by a worker.
    pub fn rows(&self, rows: u64, bytes: u64) {
        let total_bytes = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if let Some(bar) = &self.bar {
            bar.inc(rows);
            bar.set_message(format!("{:.1} MB", total_bytes as f64 / 1e6));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
