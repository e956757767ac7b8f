//! Configuration and state shared by all connections: the events file, the
//! deterministic random source for retry injection and the fault budget.

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use regex::Regex;
use serde_json::{json, Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RetryPoint {
    /// A statement outside a transaction block (simple Query, or the first Bind of a batch).
    Stmt,
    /// COMMIT inside a transaction block.
    Commit,
    /// CopyDone of a simple-protocol COPY FROM.
    CopyDone,
}

impl RetryPoint {
    pub fn name(self) -> &'static str {
        match self {
            RetryPoint::Stmt => "stmt",
            RetryPoint::Commit => "commit",
            RetryPoint::CopyDone => "copy-done",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CutTrigger {
    /// The connection's start (the startup message is the first message counted).
    Start,
    /// The first client statement (Query or Parse text) matching --cut-match; the
    /// matching message is the first one counted.
    Match,
    /// Right after a CopyDone has been forwarded to the server.
    CopyDone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CutUnit {
    Msgs,
    Bytes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Direction {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ByteaMode {
    /// Rewrite bytea fields of text COPY so PostgreSQL stores what CockroachDB stores.
    Emulate,
    /// Refuse text COPY into tables with bytea columns.
    Refuse,
    /// Leave them alone (PostgreSQL semantics).
    Off,
}

pub struct RetryCfg {
    pub rate: f64,
    pub matcher: Option<Regex>,
    pub max: Option<u64>,
    pub at: Vec<RetryPoint>,
}

pub struct CutCfg {
    pub trigger: CutTrigger,
    pub matcher: Option<Regex>,
    pub after: u64,
    pub unit: CutUnit,
    pub direction: Direction,
    pub times: u64,
}

pub struct Config {
    pub upstream: String,
    pub passthrough: bool,
    pub version: String,
    pub server_version: String,
    pub isolation_check: bool,
    pub bytea: ByteaMode,
    pub retry: RetryCfg,
    pub cut: Option<CutCfg>,
}

pub struct Shared {
    pub cfg: Config,
    events: Option<Mutex<File>>,
    rng: Mutex<u64>,
    retries: AtomicU64,
    cuts: AtomicU64,
    pub next_conn: AtomicU64,
}

/// One step of splitmix64 (Steele, Lea and Flood 2014): spreads a seed's
/// bits over the whole state.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Shared {
    pub fn new(cfg: Config, events: Option<File>, seed: u64) -> Self {
        Shared {
            cfg,
            events: events.map(Mutex::new),
            // Through splitmix64: xorshift from a small seed starts with
            // draws near 0, which would make the first eligible point
            // always inject, whatever the rate.
            rng: Mutex::new(splitmix64(seed).max(1)),
            retries: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
            next_conn: AtomicU64::new(1),
        }
    }

    /// Appends one JSON line to the events file.
    pub fn event(&self, rule: &str, conn: u64, statement: Option<&str>, extra: &[(&str, String)]) {
        let Some(file) = &self.events else { return };
        let mut obj = Map::new();
        obj.insert("rule".into(), json!(rule));
        obj.insert("conn".into(), json!(conn));
        if let Some(s) = statement {
            let mut t: String = s.chars().take(500).collect();
            if t.len() < s.len() {
                t.push_str("...");
            }
            obj.insert("statement".into(), json!(t));
        }
        for (k, v) in extra {
            obj.insert((*k).into(), json!(v));
        }
        let mut line = Value::Object(obj).to_string();
        line.push('\n');
        if let Ok(mut f) = file.lock() {
            let _ = f.write_all(line.as_bytes());
            let _ = f.flush();
        }
    }

    fn draw(&self) -> f64 {
        let mut s = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        // xorshift64
        let mut x = *s;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *s = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Decides whether to inject a retry error at `point` for `statement`.
    pub fn should_retry(&self, point: RetryPoint, statement: &str) -> bool {
        let c = &self.cfg.retry;
        if c.rate <= 0.0 || !c.at.contains(&point) {
            return false;
        }
        if let Some(re) = &c.matcher {
            if !re.is_match(statement) {
                return false;
            }
        }
        if let Some(max) = c.max {
            if self.retries.load(Ordering::SeqCst) >= max {
                return false;
            }
        }
        if self.draw() >= c.rate {
            return false;
        }
        match c.max {
            Some(max) => self
                .retries
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < max).then_some(n + 1)
                })
                .is_ok(),
            None => {
                self.retries.fetch_add(1, Ordering::SeqCst);
                true
            }
        }
    }

    /// Takes one cut from the --cut-times budget.
    pub fn reserve_cut(&self) -> bool {
        let times = self.cfg.cut.as_ref().map_or(0, |c| c.times);
        self.cuts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < times).then_some(n + 1)
            })
            .is_ok()
    }

    pub fn cuts_left(&self) -> bool {
        let times = self.cfg.cut.as_ref().map_or(0, |c| c.times);
        self.cuts.load(Ordering::SeqCst) < times
    }
}
