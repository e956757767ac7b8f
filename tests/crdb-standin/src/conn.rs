//! One proxied connection: a single task that reads both sockets, frames the
//! messages by their length word, applies the rules and writes with
//! back-pressure (it stops reading a side whose output is backed up).
//!
//! Refusals are made by sending the server a statement that fails to parse
//! (`crdb_standin_refused`) in place of the refused one and replacing the
//! server's error with CockroachDB's. PostgreSQL thereby keeps the protocol
//! state (ReadyForQuery, aborted transaction blocks) exactly as it would be
//! after any error, and responses stay in order even when the client
//! pipelines.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::copy::ByteaRewriter;
use crate::crdb;
use crate::proto::{self, PgError};
use crate::shared::{ByteaMode, CutTrigger, CutUnit, Direction, RetryPoint, Shared};
use crate::sql::{self, CopyFormat, CopyInfo, Outcome, Rules, Session};

/// Output bytes queued for one side before we stop reading the other side.
const HIGH_WATER: usize = 4 << 20;

/// The statement sent in place of a refused one: it fails to parse, so the
/// server answers with exactly one ErrorResponse (which we replace).
const REFUSED_SQL: &str = "crdb_standin_refused";

#[derive(PartialEq)]
enum HookKind {
    ReplaceError,
    ReplaceComplete,
}

/// Replaces one server response belonging to the request whose ReadyForQuery
/// is the `at`-th one from the server.
struct Hook {
    at: u64,
    kind: HookKind,
    err: BytesMut,
}

enum InternalKind {
    Isolation {
        held_rfq: BytesMut,
    },
    ByteaColumns {
        held: BytesMut,
        info: CopyInfo,
        stmt: String,
    },
}

/// A query of our own on the client's connection; its responses are swallowed.
struct Internal {
    at: u64,
    kind: InternalKind,
    rows: Vec<Vec<Option<Vec<u8>>>>,
    error: Option<(String, String)>,
}

struct CopyCtx {
    stmt: String,
    rewriter: Option<ByteaRewriter>,
}

#[derive(Default)]
struct CutState {
    armed: bool,
    remaining: u64,
    done: bool,
}

struct Conn {
    sh: Arc<Shared>,
    id: u64,
    sout: BytesMut,
    cout: BytesMut,
    /// The first ReadyForQuery has been relayed.
    ready: bool,
    txn: u8,
    /// Queries/Syncs forwarded whose ReadyForQuery has not arrived yet.
    outstanding: u64,
    /// ReadyForQuery messages received from the server (ours included).
    rfq_seen: u64,
    hooks: VecDeque<Hook>,
    internal: Option<Internal>,
    session: Session,
    stmts: HashMap<Vec<u8>, String>,
    batch_bound: bool,
    discard: bool,
    copy: Option<CopyCtx>,
    cut: CutState,
    firing: bool,
    close_after_flush: bool,
    version_logged: bool,
}

pub async fn serve(sh: Arc<Shared>, client: TcpStream) {
    let id = sh
        .next_conn
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if let Err(e) = serve_inner(sh, client, id).await {
        let msg = format!("{e:#}");
        if !msg.contains("Connection reset") && !msg.contains("Broken pipe") {
            eprintln!("crdb-standin: conn {id}: {msg}");
        }
    }
}

async fn serve_inner(sh: Arc<Shared>, mut client: TcpStream, id: u64) -> Result<()> {
    client.set_nodelay(true)?;
    let mut cin = BytesMut::with_capacity(16 * 1024);
    let startup = loop {
        if let Some(m) = proto::next_startup(&mut cin)? {
            let code = u32::from_be_bytes([m[4], m[5], m[6], m[7]]);
            match code {
                proto::SSL_REQUEST | proto::GSSENC_REQUEST => {
                    client.write_all(b"N").await?;
                    continue;
                }
                proto::CANCEL_REQUEST => {
                    // A CancelRequest goes to the upstream as a raw new connection.
                    let mut up = TcpStream::connect(&sh.cfg.upstream)
                        .await
                        .context("cancel: connect upstream")?;
                    up.write_all(&m).await?;
                    let mut sink = [0u8; 64];
                    let _ = tokio::time::timeout(Duration::from_secs(5), up.read(&mut sink)).await;
                    return Ok(());
                }
                _ => break m,
            }
        }
        if client.read_buf(&mut cin).await? == 0 {
            return Ok(());
        }
    };
    let server = match TcpStream::connect(&sh.cfg.upstream).await {
        Ok(s) => s,
        Err(e) => {
            let err = PgError::error(
                "08006",
                format!(
                    "crdb-standin: cannot reach upstream {}: {e}",
                    sh.cfg.upstream
                ),
            )
            .fatal();
            client.write_all(&err.frame()).await?;
            return Ok(());
        }
    };
    server.set_nodelay(true)?;
    let mut conn = Conn::new(sh, id);
    if conn
        .cut_cfg()
        .is_some_and(|c| c.trigger == CutTrigger::Start)
    {
        conn.arm();
    }
    conn.up(startup)?;
    conn.process_client(&mut cin)?;
    conn.run(client, server, cin).await
}

impl Conn {
    fn new(sh: Arc<Shared>, id: u64) -> Self {
        Conn {
            sh,
            id,
            sout: BytesMut::with_capacity(64 * 1024),
            cout: BytesMut::with_capacity(64 * 1024),
            ready: false,
            txn: b'I',
            outstanding: 0,
            rfq_seen: 0,
            hooks: VecDeque::new(),
            internal: None,
            session: Session::default(),
            stmts: HashMap::new(),
            batch_bound: false,
            discard: false,
            copy: None,
            cut: CutState::default(),
            firing: false,
            close_after_flush: false,
            version_logged: false,
        }
    }

    fn cut_cfg(&self) -> Option<&crate::shared::CutCfg> {
        self.sh.cfg.cut.as_ref()
    }

    fn passthrough(&self) -> bool {
        self.sh.cfg.passthrough
    }

    async fn run(
        mut self,
        mut client: TcpStream,
        mut server: TcpStream,
        mut cin: BytesMut,
    ) -> Result<()> {
        let mut sin = BytesMut::with_capacity(64 * 1024);
        let mut client_eof = false;
        let mut server_eof = false;
        {
            let (mut cr, mut cw) = client.split();
            let (mut sr, mut sw) = server.split();
            loop {
                if self.firing {
                    break;
                }
                if self.close_after_flush && self.sout.is_empty() && self.cout.is_empty() {
                    break;
                }
                if client_eof && self.sout.is_empty() {
                    let _ = sw.shutdown().await;
                    break;
                }
                if server_eof && self.cout.is_empty() {
                    let _ = cw.shutdown().await;
                    break;
                }
                let read_c = !client_eof
                    && !self.close_after_flush
                    && self.internal.is_none()
                    && self.sout.len() < HIGH_WATER;
                let read_s = !server_eof && !self.close_after_flush && self.cout.len() < HIGH_WATER;
                let write_s = !self.sout.is_empty();
                let write_c = !self.cout.is_empty();
                tokio::select! {
                    r = cr.read_buf(&mut cin), if read_c => {
                        if r? == 0 {
                            client_eof = true;
                        } else {
                            self.process_client(&mut cin)?;
                        }
                    }
                    r = sr.read_buf(&mut sin), if read_s => {
                        if r? == 0 {
                            server_eof = true;
                        } else {
                            self.process_server(&mut sin)?;
                            if self.internal.is_none() && !cin.is_empty() {
                                self.process_client(&mut cin)?;
                            }
                        }
                    }
                    r = sw.write(&self.sout), if write_s => {
                        let n = r?;
                        self.sout.advance(n);
                    }
                    r = cw.write(&self.cout), if write_c => {
                        let n = r?;
                        self.cout.advance(n);
                    }
                    else => break,
                }
            }
        }
        if self.firing {
            self.do_cut(client, server).await;
        }
        Ok(())
    }

    /// Closes both sides the way a network failure would: the client gets a
    /// reset at once; the server gets what was already sent to it and then
    /// end-of-file (so a forwarded CopyDone is still processed and committed,
    /// while a COPY cut mid-data is aborted), and its answer is discarded.
    async fn do_cut(&mut self, mut client: TcpStream, mut server: TcpStream) {
        let cout = std::mem::take(&mut self.cout);
        let _ = tokio::time::timeout(Duration::from_secs(5), client.write_all(&cout)).await;
        let _ = client.set_zero_linger();
        drop(client);
        let sout = std::mem::take(&mut self.sout);
        let _ = tokio::time::timeout(Duration::from_secs(5), server.write_all(&sout)).await;
        let _ = server.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match server.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }

    // ---- fault accounting -------------------------------------------------

    fn arm(&mut self) {
        if self.cut.armed || self.cut.done || !self.sh.cuts_left() {
            return;
        }
        let after = self.cut_cfg().map_or(0, |c| c.after);
        self.cut.armed = true;
        self.cut.remaining = after;
    }

    fn try_fire(&mut self) -> bool {
        if !self.sh.reserve_cut() {
            self.cut.armed = false;
            self.cut.done = true;
            return false;
        }
        self.cut.armed = false;
        self.cut.done = true;
        self.firing = true;
        if let Some(c) = self.cut_cfg() {
            let extra = [
                (
                    "trigger",
                    format!("{:?}", c.trigger)
                        .to_ascii_lowercase()
                        .replace("copydone", "copy-done"),
                ),
                (
                    "direction",
                    format!("{:?}", c.direction).to_ascii_lowercase(),
                ),
                ("unit", format!("{:?}", c.unit).to_ascii_lowercase()),
                ("after", c.after.to_string()),
            ];
            self.sh.event("cut", self.id, None, &extra);
        }
        eprintln!(
            "crdb-standin: conn {}: cutting the connection (fault injection)",
            self.id
        );
        true
    }

    /// Queues bytes for one side, counting them against an armed cut.
    fn push(&mut self, frame: &[u8], dir: Direction) {
        let counted = self.cut.armed && self.cut_cfg().is_some_and(|c| c.direction == dir);
        if counted {
            let unit = self.cut_cfg().map_or(CutUnit::Msgs, |c| c.unit);
            if self.cut.remaining == 0 && self.try_fire() {
                return;
            }
            if self.cut.armed {
                let n = match unit {
                    CutUnit::Msgs => {
                        self.cut.remaining = self.cut.remaining.saturating_sub(1);
                        frame.len()
                    }
                    CutUnit::Bytes => {
                        let k = (self.cut.remaining as usize).min(frame.len());
                        self.cut.remaining -= k as u64;
                        k
                    }
                };
                let out = if dir == Direction::Up {
                    &mut self.sout
                } else {
                    &mut self.cout
                };
                out.extend_from_slice(&frame[..n]);
                if self.cut.remaining == 0 {
                    self.try_fire();
                }
                return;
            }
        }
        let out = if dir == Direction::Up {
            &mut self.sout
        } else {
            &mut self.cout
        };
        out.extend_from_slice(frame);
    }

    fn up(&mut self, frame: BytesMut) -> Result<()> {
        self.push(&frame, Direction::Up);
        Ok(())
    }

    fn down(&mut self, frame: BytesMut) -> Result<()> {
        self.push(&frame, Direction::Down);
        Ok(())
    }

    fn check_match_trigger(&mut self, text: &str) {
        let hit = self.cut_cfg().is_some_and(|c| {
            c.trigger == CutTrigger::Match && c.matcher.as_ref().is_some_and(|re| re.is_match(text))
        });
        if hit {
            self.arm();
        }
    }

    // ---- client side ------------------------------------------------------

    fn process_client(&mut self, cin: &mut BytesMut) -> Result<()> {
        while !self.firing && self.internal.is_none() && !self.close_after_flush {
            let Some(frame) = proto::next_frame(cin)? else {
                break;
            };
            self.client_frame(frame)?;
        }
        Ok(())
    }

    fn client_frame(&mut self, frame: BytesMut) -> Result<()> {
        let typ = frame[0];
        // While a refused batch is skipped, only Sync (and Flush, on which a
        // client may be waiting for the error) still reach the server.
        if self.discard && typ != b'S' && typ != b'H' {
            return Ok(());
        }
        match typ {
            b'Q' => self.on_query(frame),
            b'P' => self.on_parse(frame),
            b'B' => self.on_bind(frame),
            b'S' => {
                self.discard = false;
                self.batch_bound = false;
                self.outstanding += 1;
                self.up(frame)
            }
            b'C' => {
                // Close of a prepared statement: forget its text.
                let p = proto::payload(&frame);
                if p.first() == Some(&b'S') {
                    if let Some((name, _)) = proto::cstr(p, 1) {
                        self.stmts.remove(name);
                    }
                }
                self.up(frame)
            }
            b'd' => {
                if let Some(rw) = self.copy.as_mut().and_then(|c| c.rewriter.as_mut()) {
                    let f = rw.data(proto::payload(&frame));
                    return self.up(f);
                }
                self.up(frame)
            }
            b'c' => self.on_copy_done(frame),
            b'f' => {
                self.copy = None;
                self.up(frame)
            }
            b'F' => {
                self.outstanding += 1;
                self.up(frame)
            }
            _ => self.up(frame),
        }
    }

    fn rules(&self) -> Rules<'_> {
        Rules {
            version: &self.sh.cfg.version,
        }
    }

    fn emit(&self, fired: &[sql::Fired], stmt: &str) {
        for f in fired {
            self.sh.event(f.rule, self.id, Some(stmt), &f.extra);
        }
    }

    /// Refuses a simple-protocol Query with `err` (see the module comment).
    fn refuse_simple(&mut self, err: PgError) -> Result<()> {
        self.hooks.push_back(Hook {
            at: self.rfq_seen + self.outstanding,
            kind: HookKind::ReplaceError,
            err: err.frame(),
        });
        self.outstanding += 1;
        self.up(proto::query(REFUSED_SQL))
    }

    /// Refuses the current extended-protocol batch with `err`; the client's
    /// messages up to Sync are dropped and the Sync is forwarded.
    fn refuse_extended(&mut self, err: PgError) -> Result<()> {
        self.hooks.push_back(Hook {
            at: self.rfq_seen + self.outstanding,
            kind: HookKind::ReplaceError,
            err: err.frame(),
        });
        self.discard = true;
        self.up(proto::parse_plain(REFUSED_SQL))
    }

    fn on_query(&mut self, frame: BytesMut) -> Result<()> {
        self.copy = None;
        let body = proto::payload(&frame);
        let body = body.strip_suffix(&[0]).unwrap_or(body);
        let Ok(text) = std::str::from_utf8(body) else {
            self.outstanding += 1;
            return self.up(frame);
        };
        let text = text.to_string();
        self.check_match_trigger(&text);
        let copy = if sql::split_statements(&text).len() == 1 {
            sql::copy_info(&text).filter(|c| c.from)
        } else {
            None
        };

        if self.passthrough() {
            if copy.is_some() {
                self.copy = Some(CopyCtx {
                    stmt: text,
                    rewriter: None,
                });
            }
            self.outstanding += 1;
            return self.up(frame);
        }

        let analysis = sql::analyze(&text, &self.session, &self.rules(), false);
        self.emit(&analysis.fired, &text);
        let new_text = match analysis.outcome {
            Outcome::Refuse(err) => {
                eprintln!("crdb-standin: conn {}: refused: {}", self.id, err.message);
                return self.refuse_simple(err);
            }
            Outcome::Rewrite(t) => Some(t),
            Outcome::Pass => None,
        };
        self.session = analysis.session;

        // Injected retry errors (a): a statement outside a transaction block.
        if self.txn == b'I'
            && !sql::is_control(&text)
            && self.sh.should_retry(RetryPoint::Stmt, &text)
        {
            self.sh.event(
                "retry-injected",
                self.id,
                Some(&text),
                &[("point", RetryPoint::Stmt.name().into())],
            );
            return self.refuse_simple(crdb::retry_error("statement"));
        }
        // (b): COMMIT of a transaction block becomes ROLLBACK, answered with 40001.
        if self.txn == b'T'
            && sql::is_commit(&text)
            && self.sh.should_retry(RetryPoint::Commit, &text)
        {
            self.sh.event(
                "retry-injected",
                self.id,
                Some(&text),
                &[("point", RetryPoint::Commit.name().into())],
            );
            self.hooks.push_back(Hook {
                at: self.rfq_seen + self.outstanding,
                kind: HookKind::ReplaceComplete,
                err: crdb::retry_error("commit").frame(),
            });
            self.outstanding += 1;
            return self.up(proto::query("ROLLBACK"));
        }

        let out = match &new_text {
            Some(t) => proto::query(t),
            None => frame,
        };
        if let Some(info) = copy {
            let wants_types = info.stdin
                && info.format == CopyFormat::Text
                && self.sh.cfg.bytea != ByteaMode::Off
                && info.table.is_some()
                && self.txn != b'E';
            if wants_types {
                let table = info.table.clone().unwrap_or_default();
                let q = format!(
                    "SELECT a.attname, (a.atttypid = 'bytea'::regtype OR t.typbasetype = 'bytea'::regtype)::text \
                     FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
                     WHERE a.attrelid = to_regclass({}) AND a.attnum > 0 AND NOT a.attisdropped \
                     AND a.attgenerated = '' ORDER BY a.attnum",
                    sql::literal(&table)
                );
                self.start_internal(
                    InternalKind::ByteaColumns {
                        held: out,
                        info,
                        stmt: text,
                    },
                    &q,
                );
                return Ok(());
            }
            self.copy = Some(CopyCtx {
                stmt: text,
                rewriter: None,
            });
        }
        self.outstanding += 1;
        self.up(out)
    }

    fn on_parse(&mut self, frame: BytesMut) -> Result<()> {
        let p = proto::payload(&frame);
        let Some((name, pos)) = proto::cstr(p, 0) else {
            return self.up(frame);
        };
        let Some((query, pos2)) = proto::cstr(p, pos) else {
            return self.up(frame);
        };
        let Ok(text) = std::str::from_utf8(query) else {
            return self.up(frame);
        };
        let text = text.to_string();
        let name = name.to_vec();
        let tail = p[pos2..].to_vec();
        self.stmts.insert(name.clone(), text.clone());
        self.check_match_trigger(&text);
        if self.passthrough() {
            return self.up(frame);
        }
        let analysis = sql::analyze(&text, &self.session, &self.rules(), true);
        self.emit(&analysis.fired, &text);
        match analysis.outcome {
            Outcome::Refuse(err) => {
                eprintln!("crdb-standin: conn {}: refused: {}", self.id, err.message);
                self.refuse_extended(err)
            }
            Outcome::Rewrite(t) => {
                self.session = analysis.session;
                self.up(proto::parse(&name, &t, &tail))
            }
            Outcome::Pass => {
                self.session = analysis.session;
                self.up(frame)
            }
        }
    }

    fn on_bind(&mut self, frame: BytesMut) -> Result<()> {
        let first = !self.batch_bound;
        self.batch_bound = true;
        if first && self.txn == b'I' && self.sh.cfg.retry.rate > 0.0 {
            let p = proto::payload(&frame);
            let stmt_name = proto::cstr(p, 0)
                .and_then(|(_, pos)| proto::cstr(p, pos))
                .map(|(n, _)| n.to_vec());
            let text = stmt_name
                .and_then(|n| self.stmts.get(&n).cloned())
                .unwrap_or_default();
            if !text.is_empty()
                && !sql::is_control(&text)
                && self.sh.should_retry(RetryPoint::Stmt, &text)
            {
                self.sh.event(
                    "retry-injected",
                    self.id,
                    Some(&text),
                    &[("point", RetryPoint::Stmt.name().into())],
                );
                return self.refuse_extended(crdb::retry_error("statement"));
            }
        }
        self.up(frame)
    }

    fn on_copy_done(&mut self, frame: BytesMut) -> Result<()> {
        if let Some(mut ctx) = self.copy.take() {
            if let Some(f) = ctx.rewriter.as_mut().and_then(|rw| rw.finish()) {
                self.up(f)?;
            }
            // Injected retry errors (c): fail the COPY and answer 40001.
            if self.sh.should_retry(RetryPoint::CopyDone, &ctx.stmt) {
                self.sh.event(
                    "retry-injected",
                    self.id,
                    Some(&ctx.stmt),
                    &[("point", RetryPoint::CopyDone.name().into())],
                );
                self.hooks.push_back(Hook {
                    at: self.rfq_seen + self.outstanding.saturating_sub(1),
                    kind: HookKind::ReplaceError,
                    err: crdb::retry_error("copy-done").frame(),
                });
                return self.up(proto::copy_fail(
                    "crdb-standin: injected transaction retry error",
                ));
            }
        }
        self.up(frame)?;
        if self
            .cut_cfg()
            .is_some_and(|c| c.trigger == CutTrigger::CopyDone)
        {
            self.arm();
            let up = self.cut_cfg().is_some_and(|c| c.direction == Direction::Up);
            if self.cut.armed && self.cut.remaining == 0 && up {
                self.try_fire();
            }
        }
        Ok(())
    }

    fn start_internal(&mut self, kind: InternalKind, sql: &str) {
        self.internal = Some(Internal {
            at: self.rfq_seen + self.outstanding,
            kind,
            rows: Vec::new(),
            error: None,
        });
        // Our own traffic: not counted against a cut.
        self.sout.extend_from_slice(&proto::query(sql));
    }

    fn finish_internal(&mut self, int: Internal) -> Result<()> {
        match int.kind {
            InternalKind::Isolation { held_rfq } => {
                let found = int
                    .rows
                    .first()
                    .and_then(|r| r.first().cloned().flatten())
                    .map(|v| String::from_utf8_lossy(&v).into_owned())
                    .unwrap_or_else(|| int.error.map(|(_, m)| m).unwrap_or_default());
                if found.eq_ignore_ascii_case("serializable") {
                    self.ready = true;
                    return self.down(held_rfq);
                }
                self.sh.event(
                    "isolation-refused",
                    self.id,
                    None,
                    &[("found", found.clone())],
                );
                eprintln!(
                    "crdb-standin: conn {}: upstream isolation is {found:?}, refusing",
                    self.id
                );
                self.cout
                    .extend_from_slice(&crdb::not_serializable(&found).frame());
                self.sout.extend_from_slice(&proto::terminate());
                self.close_after_flush = true;
                Ok(())
            }
            InternalKind::ByteaColumns { held, info, stmt } => {
                let table: Vec<(String, bool)> = int
                    .rows
                    .iter()
                    .filter_map(|r| {
                        let name = r.first()?.as_ref()?;
                        let b = r.get(1)?.as_ref()?;
                        Some((
                            String::from_utf8_lossy(name).into_owned(),
                            b.as_slice() == b"true",
                        ))
                    })
                    .collect();
                let flags: Vec<bool> = match &info.columns {
                    Some(cols) => cols
                        .iter()
                        .map(|c| table.iter().any(|(n, b)| *b && n == c))
                        .collect(),
                    None => table.iter().map(|(_, b)| *b).collect(),
                };
                let bytea_cols: Vec<String> = match &info.columns {
                    Some(cols) => cols
                        .iter()
                        .zip(&flags)
                        .filter(|(_, b)| **b)
                        .map(|(c, _)| c.clone())
                        .collect(),
                    None => table
                        .iter()
                        .filter(|(_, b)| *b)
                        .map(|(n, _)| n.clone())
                        .collect(),
                };
                let tname = info.table.clone().unwrap_or_default();
                if bytea_cols.is_empty() {
                    self.copy = Some(CopyCtx {
                        stmt,
                        rewriter: None,
                    });
                } else if self.sh.cfg.bytea == ByteaMode::Refuse {
                    self.sh.event(
                        "copy-bytea-refused",
                        self.id,
                        Some(&stmt),
                        &[("columns", bytea_cols.join(","))],
                    );
                    return self.refuse_simple(crdb::copy_bytea_refused(&tname, &bytea_cols));
                } else {
                    self.sh.event(
                        "copy-bytea-rewritten",
                        self.id,
                        Some(&stmt),
                        &[("columns", bytea_cols.join(","))],
                    );
                    self.copy = Some(CopyCtx {
                        stmt,
                        rewriter: Some(ByteaRewriter::new(
                            info.delimiter,
                            info.null.clone(),
                            flags,
                        )),
                    });
                }
                self.outstanding += 1;
                self.up(held)
            }
        }
    }

    // ---- server side ------------------------------------------------------

    fn process_server(&mut self, sin: &mut BytesMut) -> Result<()> {
        while !self.firing && !self.close_after_flush {
            let Some(frame) = proto::next_frame(sin)? else {
                break;
            };
            self.server_frame(frame)?;
        }
        Ok(())
    }

    fn server_frame(&mut self, frame: BytesMut) -> Result<()> {
        let typ = frame[0];
        if let Some(int) = self.internal.as_mut() {
            if int.at == self.rfq_seen {
                match typ {
                    b'D' => int.rows.push(proto::data_row(&frame)),
                    b'E' => int.error = Some(proto::error_fields(&frame)),
                    b'Z' => {
                        self.rfq_seen += 1;
                        self.txn = frame.get(5).copied().unwrap_or(self.txn);
                        if let Some(int) = self.internal.take() {
                            self.finish_internal(int)?;
                        }
                    }
                    b'N' | b'A' => return self.down(frame),
                    b'S' => return self.parameter_status(frame),
                    _ => {}
                }
                return Ok(());
            }
        }
        if matches!(typ, b'E' | b'C') {
            let kind = if typ == b'E' {
                HookKind::ReplaceError
            } else {
                HookKind::ReplaceComplete
            };
            if let Some(pos) = self
                .hooks
                .iter()
                .position(|h| h.at == self.rfq_seen && h.kind == kind)
            {
                if let Some(h) = self.hooks.remove(pos) {
                    return self.down(h.err);
                }
            }
        }
        match typ {
            b'S' => return self.parameter_status(frame),
            b'Z' => {
                self.txn = frame.get(5).copied().unwrap_or(self.txn);
                self.rfq_seen += 1;
                let seen = self.rfq_seen;
                self.hooks.retain(|h| h.at >= seen);
                if !self.ready {
                    if self.sh.cfg.isolation_check && !self.passthrough() {
                        self.start_internal(
                            InternalKind::Isolation { held_rfq: frame },
                            "SHOW default_transaction_isolation",
                        );
                        return Ok(());
                    }
                    self.ready = true;
                } else {
                    self.outstanding = self.outstanding.saturating_sub(1);
                }
            }
            _ => {}
        }
        self.down(frame)
    }

    /// ParameterStatus `server_version` as CockroachDB reports it.
    fn parameter_status(&mut self, frame: BytesMut) -> Result<()> {
        if !self.passthrough() {
            if let Some((name, _)) = proto::cstr(proto::payload(&frame), 0) {
                if name == b"server_version" {
                    if !self.version_logged {
                        self.version_logged = true;
                        self.sh.event(
                            "server-version-rewritten",
                            self.id,
                            None,
                            &[("value", self.sh.cfg.server_version.clone())],
                        );
                    }
                    let f = proto::parameter_status("server_version", &self.sh.cfg.server_version);
                    return self.down(f);
                }
            }
        }
        self.down(frame)
    }
}
