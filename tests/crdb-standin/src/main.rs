//! molt-crdb-standin: a pgwire proxy in front of PostgreSQL that refuses and
//! changes what CockroachDB refuses and changes, and injects the faults
//! CockroachDB clients must survive (40001 retry errors, cut connections).
//! See README.md for the rules, their sources and the flags.

mod conn;
mod copy;
mod crdb;
mod proto;
mod shared;
mod sql;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use regex::Regex;
use tokio::net::TcpListener;

use shared::{
    ByteaMode, Config, CutCfg, CutTrigger, CutUnit, Direction, RetryCfg, RetryPoint, Shared,
};

/// A CockroachDB stand-in for tests: a pgwire proxy in front of PostgreSQL.
#[derive(Parser, Debug)]
#[command(name = "molt-crdb-standin", version)]
struct Cli {
    /// The PostgreSQL server: HOST:PORT or a postgres:// URL (only its host and port are used).
    #[arg(long)]
    upstream: String,
    /// Address to listen on; port 0 picks a free one. The chosen address is printed
    /// on stdout as `listening on HOST:PORT`.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Append one JSON line per rule that fired to FILE.
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// Apply no CockroachDB rule (no rewrites, refusals or isolation check); only
    /// inject faults. For proxying a source database.
    #[arg(long)]
    passthrough: bool,
    /// What `version()` returns.
    #[arg(long, default_value = crdb::DEFAULT_VERSION)]
    version_string: String,
    /// The `server_version` ParameterStatus sent at startup.
    #[arg(long, default_value = crdb::DEFAULT_SERVER_VERSION)]
    server_version: String,
    /// Do not check that each upstream session defaults to SERIALIZABLE.
    #[arg(long)]
    no_isolation_check: bool,
    /// Text-format COPY FROM STDIN into bytea columns: emulate CockroachDB's decoding,
    /// refuse it, or leave PostgreSQL's behaviour.
    #[arg(long, value_enum, default_value = "emulate")]
    copy_bytea: ByteaMode,

    /// Probability (0..1) of injecting a 40001 retry error at each eligible point.
    #[arg(long, default_value_t = 0.0)]
    retry_rate: f64,
    /// Seed of the injector's deterministic random sequence.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Only statements matching REGEX are eligible (for COMMIT: the COMMIT text; for
    /// copy-done: the COPY statement).
    #[arg(long, value_name = "REGEX")]
    retry_match: Option<String>,
    /// Stop after K injections.
    #[arg(long, value_name = "K")]
    retry_max: Option<u64>,
    /// Injection points (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "stmt,commit,copy-done"
    )]
    retry_at: Vec<RetryPoint>,

    /// Cut connections (close both sockets) counting from this trigger.
    #[arg(long, value_enum)]
    cut_at: Option<CutTrigger>,
    /// The statement regex for `--cut-at match` (implies it when --cut-at is absent).
    #[arg(long, value_name = "REGEX")]
    cut_match: Option<String>,
    /// How many units to let through after the trigger before cutting (0: cut at the trigger).
    #[arg(long, default_value_t = 0, value_name = "N")]
    cut_after: u64,
    /// What --cut-after counts: whole protocol messages or bytes.
    #[arg(long, value_enum, default_value = "msgs")]
    cut_unit: CutUnit,
    /// Which traffic --cut-after counts: client to server (up) or server to client (down).
    #[arg(long, value_enum, default_value = "up")]
    cut_direction: Direction,
    /// How many connections in total are cut over the proxy's life.
    #[arg(long, default_value_t = 1, value_name = "K")]
    cut_times: u64,

    /// Exit when process PID is gone (a script passes its own $$).
    #[arg(long, value_name = "PID")]
    exit_with_pid: Option<u32>,
    /// Exit when PATH no longer exists (e.g. the server directory was removed).
    #[arg(long, value_name = "PATH")]
    exit_when_missing: Option<PathBuf>,
}

/// HOST:PORT of `HOST:PORT` or `postgres://user:pw@HOST:PORT/db?...`.
fn upstream_addr(s: &str) -> Result<String> {
    let Some((_, rest)) = s.split_once("://") else {
        return Ok(s.to_string());
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let hostport = hostport.split(',').next().unwrap_or("");
    if hostport.is_empty() {
        bail!("no host in upstream URL {s}");
    }
    let has_port = if let Some(rest) = hostport.strip_prefix('[') {
        rest.contains("]:")
    } else {
        hostport.contains(':')
    };
    Ok(if has_port {
        hostport.to_string()
    } else {
        format!("{hostport}:5432")
    })
}

fn config(cli: &Cli) -> Result<Config> {
    if !(0.0..=1.0).contains(&cli.retry_rate) {
        bail!("--retry-rate must be between 0 and 1");
    }
    let retry_matcher = cli
        .retry_match
        .as_deref()
        .map(Regex::new)
        .transpose()
        .context("--retry-match")?;
    let cut_matcher = cli
        .cut_match
        .as_deref()
        .map(Regex::new)
        .transpose()
        .context("--cut-match")?;
    let trigger = cli
        .cut_at
        .or(cut_matcher.as_ref().map(|_| CutTrigger::Match));
    let cut = match trigger {
        None => None,
        Some(trigger) => {
            if trigger == CutTrigger::Match && cut_matcher.is_none() {
                bail!("--cut-at match needs --cut-match REGEX");
            }
            Some(CutCfg {
                trigger,
                matcher: cut_matcher,
                after: cli.cut_after,
                unit: cli.cut_unit,
                direction: cli.cut_direction,
                times: cli.cut_times,
            })
        }
    };
    Ok(Config {
        upstream: upstream_addr(&cli.upstream)?,
        passthrough: cli.passthrough,
        version: cli.version_string.clone(),
        server_version: cli.server_version.clone(),
        isolation_check: !cli.no_isolation_check,
        bytea: cli.copy_bytea,
        retry: RetryCfg {
            rate: cli.retry_rate,
            matcher: retry_matcher,
            max: cli.retry_max,
            at: cli.retry_at.clone(),
        },
        cut,
    })
}

fn spawn_watchers(pid: Option<u32>, path: Option<PathBuf>) {
    if pid.is_none() && path.is_none() {
        return;
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if let Some(pid) = pid {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    eprintln!("crdb-standin: process {pid} is gone, exiting");
                    std::process::exit(0);
                }
            }
            if let Some(p) = &path {
                if !p.exists() {
                    eprintln!("crdb-standin: {} is gone, exiting", p.display());
                    std::process::exit(0);
                }
            }
        }
    });
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let cfg = config(&cli)?;
    let events = match &cli.events {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("open events file {}", p.display()))?,
        ),
        None => None,
    };
    let listener = TcpListener::bind(&cli.listen)
        .await
        .with_context(|| format!("listen on {}", cli.listen))?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::new(cfg, events, cli.seed));
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
    }
    eprintln!(
        "crdb-standin: listening on {addr}, upstream {}",
        shared.cfg.upstream
    );
    spawn_watchers(cli.exit_with_pid, cli.exit_when_missing.clone());
    loop {
        let (sock, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("crdb-standin: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::spawn(conn::serve(shared.clone(), sock));
    }
}

#[cfg(test)]
mod tests {
    use super::upstream_addr;

    #[test]
    fn upstream_forms() {
        assert_eq!(upstream_addr("127.0.0.1:5433").unwrap(), "127.0.0.1:5433");
        assert_eq!(
            upstream_addr("postgres://u:p@127.0.0.1:5433/db?x=1").unwrap(),
            "127.0.0.1:5433"
        );
        assert_eq!(
            upstream_addr("postgresql://localhost/db").unwrap(),
            "localhost:5432"
        );
    }
}
