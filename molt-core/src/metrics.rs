//! Prometheus metrics while a tool runs (`--metrics-addr HOST:PORT`).
//!
//! A phase has a window of a few hours, and the people watching it want to
//! see, from outside the pipeline, how fast each table moves, whether
//! sections fail, and whether the target is pushing back with retries. So
//! molt-dump, molt-load and molt-verify can serve `/metrics` over HTTP, in
//! the text format Prometheus scrapes (as CockroachDB's own MOLT does with
//! `--metrics-listen-addr`); `docs/metrics.md` lists every metric and
//! `docs/grafana-molt.json` is a dashboard over them.
//!
//! Why it is built this way:
//!
//! - **Nothing without the flag.** The metrics live in one process-wide
//!   [`OnceLock`] that only [`MetricsArgs::start`] fills. Every recording
//!   function first loads it and returns when it is empty: one atomic load,
//!   no allocation, no lock, no port. The tools call them per COPY batch,
//!   per section, per verify chunk and per retry, never per row or value;
//!   molt-dump's rows go through a [`Progress`], which publishes at most
//!   once per 256 KB of stream.
//! - **Well-kept crates, nothing hand-written.** The exposition format is
//!   `prometheus-client` (the Prometheus project's Rust client, OpenMetrics
//!   text), the HTTP/1.1 server is `hyper` with `hyper-util`'s tokio glue.
//!   They add about a dozen small crates; `metrics` with
//!   `metrics-exporter-prometheus` would have added more than twice that
//!   (h2, tracing, quanta, a sketch library) for histograms molt has no use
//!   for.
//! - **Its own thread.** The server runs on a thread with a single-threaded
//!   runtime of its own, so a scrape never waits behind a busy worker and
//!   the tools' runtimes stay as they are (molt-dump's workers are threads
//!   with runtimes of their own).
//! - **The port before the work.** The address is parsed by clap and bound
//!   before the tool connects anywhere, so a typo or a port in use is an
//!   error naming the address, before any row moves.
//! - **Labels.** Every series has `tool` (a registry-wide label); per-table
//!   series have `table`, the stream's `schema.table` (the source name, as
//!   in the result and report records, so one table has one name across the
//!   three tools). One series per table and status: with thousands of
//!   tables, expect that many series.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use clap::Parser;
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     metrics: molt_core::metrics::MetricsArgs,
//! }
//! let args = Args::parse();
//! if let Some(addr) = args.metrics.start("molt-load")? {
//!     eprintln!("metrics on http://{addr}/metrics");
//! }
//! let table = molt_core::stream::TableName::new("public", "orders");
//! molt_core::metrics::rows(&table, 1000, 64_000); // a batch committed
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::stream::TableName;

/// The content type of what `/metrics` answers (OpenMetrics text, which
/// Prometheus asks for first and reads natively).
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The flags every tool that serves metrics flattens into its arguments.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://HOST:PORT/metrics while the tool runs, e.g.
    /// `--metrics-addr 127.0.0.1:9464` (or `0.0.0.0:9464` for a scraper on another host; port 0
    /// picks a free port, printed on stderr). Rows and bytes per table, sections, retries by
    /// SQLSTATE; see docs/metrics.md. Without it no port is opened.
    #[arg(
        long,
        value_name = "HOST:PORT",
        value_parser = parse_addr,
        help_heading = "Metrics"
    )]
    pub metrics_addr: Option<SocketAddr>,
    /// With --metrics-addr: keep serving the final values this many seconds after the work is
    /// done (output flushed), so that a last scrape sees them; the exit code is unchanged.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 0,
        requires = "metrics_addr",
        help_heading = "Metrics"
    )]
    pub metrics_linger: u64,
}

impl MetricsArgs {
    /// Binds `--metrics-addr` (when given) and serves `/metrics` from a
    /// thread of its own for the rest of the process; returns the address
    /// bound (its port, for port 0). Call it before any work: a port in use
    /// is an error naming the address.
    pub fn start(&self, tool: &'static str) -> anyhow::Result<Option<SocketAddr>> {
        let Some(addr) = self.metrics_addr else {
            return Ok(None);
        };
        serve(addr, tool, Duration::from_secs(self.metrics_linger)).map(Some)
    }
}

/// Parses `HOST:PORT` (`127.0.0.1:9464`, `[::1]:9464`, `localhost:9464`).
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let hint = "expected HOST:PORT, e.g. 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464";
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("'{text}' has no port ({hint})"))?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!("'{text}' is not a host and a port ({hint})"));
    }
    match text.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("'{text}': host {host} has no address")),
        Err(e) => Err(format!("'{text}': cannot resolve host {host}: {e}")),
    }
}

/// Labels of a per-table series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    table: String,
}

/// Labels of a section count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SectionLabels {
    table: String,
    status: &'static str,
}

/// Labels of a retry count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RetryLabels {
    sqlstate: String,
}

/// Labels of a verify difference count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DifferenceLabels {
    table: String,
    kind: &'static str,
}

/// How a section ended, for `molt_sections_total{status}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionStatus {
    /// Written (molt-dump) or loaded (molt-load).
    Done,
    /// molt-load: the ledger had it loaded with the same rows and digest.
    Skipped,
    /// molt-load: failed, its rows removed again.
    Failed,
    /// molt-load `--dry-run`: read, nothing written.
    DryRun,
}

impl SectionStatus {
    fn label(self) -> &'static str {
        match self {
            SectionStatus::Done => "done",
            SectionStatus::Skipped => "skipped",
            SectionStatus::Failed => "failed",
            SectionStatus::DryRun => "dry_run",
        }
    }

    /// The status of a molt-load `result` record (`ok`, `skipped`, `dry-run`).
    pub fn of_result(status: &str) -> SectionStatus {
        match status {
            "skipped" => SectionStatus::Skipped,
            "dry-run" => SectionStatus::DryRun,
            _ => SectionStatus::Done,
        }
    }
}

/// Every metric, registered once.
struct Metrics {
    registry: Registry,
    rows: Family<TableLabels, Counter>,
    bytes: Family<TableLabels, Counter>,
    sections: Family<SectionLabels, Counter>,
    retries: Family<RetryLabels, Counter>,
    batches_in_flight: Gauge,
    verify_chunks: Family<TableLabels, Counter>,
    verify_differences: Family<DifferenceLabels, Counter>,
    linger: Duration,
}

impl Metrics {
    fn new(tool: &'static str, linger: Duration) -> Metrics {
        let mut registry = Registry::with_prefix_and_labels(
            "molt",
            [(Cow::Borrowed("tool"), Cow::Borrowed(tool))].into_iter(),
        );
        let rows = Family::<TableLabels, Counter>::default();
        let bytes = Family::<TableLabels, Counter>::default();
        let sections = Family::<SectionLabels, Counter>::default();
        let retries = Family::<RetryLabels, Counter>::default();
        let batches_in_flight = Gauge::default();
        let verify_chunks = Family::<TableLabels, Counter>::default();
        let verify_differences = Family::<DifferenceLabels, Counter>::default();
        registry.register(
            "rows",
            "Rows per table: written to the stream (molt-dump), committed to the target \
             (molt-load), compared (molt-verify)",
            rows.clone(),
        );
        registry.register(
            "bytes",
            "Bytes per table: of stream written (molt-dump), of COPY data committed (molt-load)",
            bytes.clone(),
        );
        registry.register(
            "sections",
            "Sections (one shard of one slice of a table) by status: done, skipped, failed, \
             dry_run",
            sections.clone(),
        );
        registry.register(
            "retries",
            "Transient target errors retried, by SQLSTATE (lost: a connection lost without one)",
            retries.clone(),
        );
        registry.register(
            "copy_batches_in_flight",
            "COPY batches streaming or committing on the target now (molt-load)",
            batches_in_flight.clone(),
        );
        registry.register(
            "verify_chunks",
            "Key-range chunks compared per table (molt-verify)",
            verify_chunks.clone(),
        );
        registry.register(
            "verify_differences",
            "Differing rows found per table, by kind: missing, extraneous, mismatched \
             (molt-verify)",
            verify_differences.clone(),
        );
        Metrics {
            registry,
            rows,
            bytes,
            sections,
            retries,
            batches_in_flight,
            verify_chunks,
            verify_differences,
            linger,
        }
    }

    fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The metrics, when this process serves them.
#[inline]
fn get() -> Option<&'static Metrics> {
    METRICS.get()
}

/// True when this process serves metrics (`--metrics-addr` was given).
#[inline]
pub fn enabled() -> bool {
    get().is_some()
}

fn serve(addr: SocketAddr, tool: &'static str, linger: Duration) -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("--metrics-addr {addr}: cannot listen there"))?;
    let bound = listener
        .local_addr()
        .with_context(|| format!("--metrics-addr {addr}"))?;
    listener
        .set_nonblocking(true)
        .with_context(|| format!("--metrics-addr {addr}"))?;
    if METRICS.set(Metrics::new(tool, linger)).is_err() {
        anyhow::bail!("--metrics-addr {addr}: metrics are already served by this process");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("starting the metrics server's runtime")?;
    std::thread::Builder::new()
        .name("molt-metrics".into())
        .spawn(move || runtime.block_on(accept(listener)))
        .context("starting the metrics server's thread")?;
    Ok(bound)
}

async fn accept(listener: std::net::TcpListener) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            crate::warn!("metrics server stopped: {e}");
            return;
        }
    };
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors, most likely: wait, do not spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = hyper::service::service_fn(|request| async { respond(request) });
            // A scraper that hangs up mid-answer is its own business.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

fn respond(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let answer = |status: StatusCode, text: String| {
        let mut response = Response::new(Full::new(Bytes::from(text)));
        *response.status_mut() = status;
        response
    };
    if request.uri().path() != "/metrics" {
        return Ok(answer(
            StatusCode::NOT_FOUND,
            "molt serves its metrics at /metrics\n".into(),
        ));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = answer(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n".into());
        response
            .headers_mut()
            .insert(ALLOW, hyper::header::HeaderValue::from_static("GET, HEAD"));
        return Ok(response);
    }
    let Some(metrics) = get() else {
        return Ok(answer(StatusCode::SERVICE_UNAVAILABLE, String::new()));
    };
    Ok(match metrics.encode() {
        Ok(text) => {
            let mut response = answer(StatusCode::OK, text);
            response.headers_mut().insert(
                CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(CONTENT_TYPE_OPENMETRICS),
            );
            response
        }
        Err(e) => answer(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    })
}

/// After the work (called by the shared `main`): keeps serving for
/// `--metrics-linger` seconds, so that a last scrape sees the final values.
pub fn linger() {
    if let Some(m) = get().filter(|m| !m.linger.is_zero()) {
        crate::info!(
            "serving the final metrics for {}s more (--metrics-linger)",
            m.linger.as_secs()
        );
        std::thread::sleep(m.linger);
    }
}

fn table_labels(table: &TableName) -> TableLabels {
    TableLabels {
        table: table.to_string(),
    }
}

/// Rows and bytes of one table moved: a batch committed (molt-load), a
/// part of a section written (molt-dump).
#[inline]
pub fn rows(table: &TableName, rows: u64, bytes: u64) {
    let Some(m) = get() else { return };
    let labels = table_labels(table);
    m.rows.get_or_create(&labels).inc_by(rows);
    if bytes > 0 {
        m.bytes.get_or_create(&labels).inc_by(bytes);
    }
}

/// One section ended with `status`.
#[inline]
pub fn section(table: &TableName, status: SectionStatus) {
    let Some(m) = get() else { return };
    m.sections
        .get_or_create(&SectionLabels {
            table: table.to_string(),
            status: status.label(),
        })
        .inc();
}

/// One retry of a transient error with this SQLSTATE (`None`: the
/// connection was lost without one).
#[inline]
pub fn retry(sqlstate: Option<&str>) {
    let Some(m) = get() else { return };
    m.retries
        .get_or_create(&RetryLabels {
            sqlstate: sqlstate.unwrap_or("lost").to_string(),
        })
        .inc();
}

/// A COPY batch in flight until this is dropped (`None` without metrics).
#[derive(Debug)]
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A COPY batch started: counted in `molt_copy_batches_in_flight` until
/// the returned guard is dropped (when the batch committed or failed).
#[inline]
pub fn batch_in_flight() -> Option<InFlight> {
    let m = get()?;
    m.batches_in_flight.inc();
    Some(InFlight(m.batches_in_flight.clone()))
}

/// One verify chunk (or a whole table compared at once) and what it found.
pub fn verify_chunk(table: &TableName, tally: &crate::verify::Tally, chunks: u64) {
    let Some(m) = get() else { return };
    let labels = table_labels(table);
    if chunks > 0 {
        m.verify_chunks.get_or_create(&labels).inc_by(chunks);
    }
    let compared = tally.matched + tally.mismatched + tally.missing + tally.extraneous;
    m.rows.get_or_create(&labels).inc_by(compared);
    for (kind, n) in [
        ("missing", tally.missing),
        ("extraneous", tally.extraneous),
        ("mismatched", tally.mismatched),
    ] {
        if n > 0 {
            m.verify_differences
                .get_or_create(&DifferenceLabels {
                    table: labels.table.clone(),
                    kind,
                })
                .inc_by(n);
        }
    }
}

/// A section's rows and bytes as they are written (molt-dump): fed the
/// running totals after each piece of input, it publishes the increase
/// once per [`Progress::STEP`] bytes and at [`Progress::finish`]. Without
/// metrics it holds nothing and every call is one branch.
#[derive(Debug)]
pub struct Progress {
    table: Option<TableLabels>,
    rows: u64,
    bytes: u64,
}

impl Progress {
    /// Bytes of stream between two updates of the counters.
    pub const STEP: u64 = 256 * 1024;

    pub fn new(table: &TableName) -> Progress {
        Progress {
            table: get().map(|_| table_labels(table)),
            rows: 0,
            bytes: 0,
        }
    }

    /// True when the totals are wanted (metrics are served).
    #[inline]
    pub fn wanted(&self) -> bool {
        self.table.is_some()
    }

    /// The section's totals so far.
    #[inline]
    pub fn update(&mut self, rows: u64, bytes: u64) {
        if self.table.is_some() && bytes >= self.bytes + Self::STEP {
            self.publish(rows, bytes);
        }
    }

    /// The section's final totals.
    pub fn finish(&mut self, rows: u64, bytes: u64) {
        if self.table.is_some() {
            self.publish(rows, bytes);
        }
    }

    fn publish(&mut self, rows: u64, bytes: u64) {
        let (Some(m), Some(labels)) = (get(), &self.table) else {
            return;
        };
        m.rows
            .get_or_create(labels)
            .inc_by(rows.saturating_sub(self.rows));
        m.bytes
            .get_or_create(labels)
            .inc_by(bytes.saturating_sub(self.bytes));
        self.rows = self.rows.max(rows);
        self.bytes = self.bytes.max(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_or_say_what_is_expected() {
        assert_eq!(
            parse_addr("127.0.0.1:9464").unwrap(),
            "127.0.0.1:9464".parse().unwrap()
        );
        assert_eq!(parse_addr("[::1]:0").unwrap(), "[::1]:0".parse().unwrap());
        assert_eq!(parse_addr("localhost:9464").unwrap().port(), 9464);
        for bad in [
            "9464",
            "127.0.0.1",
            "127.0.0.1:http",
            ":9464",
            "host:99999",
            "",
        ] {
            let e = parse_addr(bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
            assert!(e.contains("HOST:PORT"), "{e}");
        }
    }

    #[test]
    fn the_registry_encodes_every_metric_with_the_tool_label() {
        let m = Metrics::new("molt-test", Duration::ZERO);
        m.rows
            .get_or_create(&TableLabels {
                table: "public.orders".into(),
            })
            .inc_by(7);
        m.retries
            .get_or_create(&RetryLabels {
                sqlstate: "40001".into(),
            })
            .inc();
        let text = m.encode().unwrap();
        for line in [
            "# TYPE molt_rows counter",
            "# TYPE molt_copy_batches_in_flight gauge",
            "# TYPE molt_verify_differences counter",
            "# TYPE molt_sections counter",
            "# TYPE molt_bytes counter",
            "# TYPE molt_verify_chunks counter",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(
            text.contains(r#"molt_rows_total{tool="molt-test",table="public.orders"} 7"#),
            "{text}"
        );
        assert!(
            text.contains(r#"molt_retries_total{tool="molt-test",sqlstate="40001"} 1"#),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn without_metrics_recording_does_nothing() {
        // No test in this crate starts the server.
        assert!(!enabled());
        let t = TableName::new("public", "t");
        rows(&t, 1, 2);
        section(&t, SectionStatus::Done);
        retry(Some("40001"));
        assert!(batch_in_flight().is_none());
        let mut p = Progress::new(&t);
        assert!(!p.wanted());
        p.update(10, 1 << 30);
        p.finish(10, 1 << 30);
    }
}
