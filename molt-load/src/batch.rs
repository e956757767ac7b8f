//! COPY batches, and how a batch is retried without duplicating rows.
//!
//! Each batch is one COPY, which is one transaction. Its COPY text is kept
//! in memory until it commits, so it can be sent again. A transient error
//! (serialization failure, lost connection, server restart) is retried with
//! backoff, reconnecting when needed. A retry must be safe even when the
//! failed attempt did commit and only its acknowledgement was lost, so for
//! a table with a primary key the batch goes through a TEMP table and
//! `INSERT ... SELECT ... ON CONFLICT (pk) DO NOTHING`: rows that made it the
//! first time are not inserted twice. A table without a primary key cannot
//! tell, so an error whose commit state is unknown fails the section (which
//! is then removed and must be sent again); an error known to be before the
//! commit (while the COPY was still streaming) is retried with a plain COPY.

use bytes::Bytes;
use molt_core::ident::{quote_pg, quote_pg_table};
use molt_core::stream::{TableHeader, TableName};
use molt_core::target::copy_binary::{BinaryPlan, BinaryType};
use molt_core::target::ddl::column_type;
use molt_core::target::simple::SimpleSession;
use molt_core::target::{connect_retrying, retry, Target, TargetError};

/// Times a (re)connection is asked again when the server answers it with a
/// transient SQLSTATE.
pub const CONNECT_RETRIES: u32 = 8;
use molt_core::ConnUrl;

/// A worker's connections, each reopened when it is lost: one for
/// statements, and a simple-protocol session for COPY (CockroachDB refuses
/// COPY over the extended protocol that tokio-postgres uses; see
/// `molt_core::target::simple`).
pub struct Conn {
    url: ConnUrl,
    target: Option<Target>,
    copy: Option<SimpleSession>,
}

impl Conn {
    pub fn new(url: ConnUrl) -> Conn {
        Conn {
            url,
            target: None,
            copy: None,
        }
    }

    /// The COPY session last used, even if it failed since (a statement
    /// on a failed one fails with a transient error); never reconnects.
    fn last_copy(&mut self) -> Option<&mut SimpleSession> {
        self.copy.as_mut()
    }

    /// The COPY session, (re)connecting when there is none or it failed.
    pub async fn copy_session(&mut self) -> Result<&mut SimpleSession, TargetError> {
        if self.copy.as_ref().map_or(true, SimpleSession::is_broken) {
            self.copy = None;
            self.copy = Some(SimpleSession::connect(&self.url, "molt-load").await?);
        }
        Ok(self.copy.as_mut().expect("just connected"))
    }

    /// The connection, (re)connecting when there is none or it closed (a
    /// transient SQLSTATE while connecting is asked again, up to
    /// [`CONNECT_RETRIES`] times; the callers retry the rest).
    pub async fn get(&mut self) -> Result<&Target, TargetError> {
        if self.target.as_ref().map_or(true, Target::is_closed) {
            self.target = None;
            self.target = Some(connect_retrying(&self.url, CONNECT_RETRIES).await?);
        }
        Ok(self.target.as_ref().expect("just connected"))
    }
}

/// The SQL for copying one section's table.
pub struct TableCopy {
    pub table: TableName,
    pub copy_sql: String,
    columns: String,
    temp_columns: String,
    pk: Option<String>,
    /// `WITH BINARY` when the rows are COPY BINARY tuples.
    format: &'static str,
    /// Each column's binary type, when the rows are binary.
    pub binary: Option<Vec<BinaryType>>,
}

impl TableCopy {
    pub fn new(
        header: &TableHeader,
        table: &TableName,
        schema_override: Option<&str>,
        binary: Option<BinaryPlan>,
    ) -> TableCopy {
        let columns: Vec<String> = header.columns.iter().map(|c| quote_pg(&c.name)).collect();
        let columns = columns.join(", ");
        // Binary values must land in columns of the target's exact types.
        let temp_columns: Vec<String> = header
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let ty = match &binary {
                    Some(plan) => plan.sql_types[i].clone(),
                    None => column_type(c, schema_override),
                };
                format!("{} {ty}", quote_pg(&c.name))
            })
            .collect();
        let format = if binary.is_some() { " WITH BINARY" } else { "" };
        let pk: Vec<String> = header
            .primary_key()
            .iter()
            .map(|c| quote_pg(&c.name))
            .collect();
        TableCopy {
            table: table.clone(),
            copy_sql: format!(
                "COPY {} ({columns}) FROM STDIN{format}",
                quote_pg_table(table)
            ),
            columns,
            temp_columns: temp_columns.join(", "),
            pk: (!pk.is_empty()).then(|| pk.join(", ")),
            format,
            binary: binary.map(|plan| plan.types),
        }
    }
}

/// Why a batch attempt failed, and whether it may have committed.
struct Broken {
    error: TargetError,
    maybe_committed: bool,
}

/// One batch being copied: streamed into COPY as chunks arrive, and kept
/// until it commits.
#[derive(Default)]
pub struct Batch {
    chunks: Vec<Bytes>,
    rows: u64,
    bytes: u64,
    /// A COPY is open on the worker's COPY session.
    copying: bool,
    broken: Option<Broken>,
    /// Counted in `molt_copy_batches_in_flight` from its first chunk until
    /// it is committed or dropped (nothing without `--metrics-addr`).
    in_flight: Option<molt_core::metrics::InFlight>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Adds a chunk of whole rows, streaming it to the server.
    pub async fn push(&mut self, conn: &mut Conn, copy: &TableCopy, chunk: Bytes, rows: u64) {
        if self.chunks.is_empty() {
            self.in_flight = molt_core::metrics::batch_in_flight();
        }
        self.chunks.push(chunk.clone());
        self.rows += rows;
        self.bytes += chunk.len() as u64;
        if self.broken.is_some() {
            return;
        }
        if !self.copying {
            let started = match conn.copy_session().await {
                Ok(session) => session
                    .copy_start(&copy.copy_sql)
                    .await
                    .map_err(|e| e.with_context(format!("starting COPY into {}", copy.table))),
                Err(e) => Err(e),
            };
            match started {
                Ok(()) => self.copying = true,
                Err(error) => {
                    self.broken = Some(Broken {
                        error,
                        maybe_committed: false,
                    });
                    return;
                }
            }
        }
        let sent = match conn.last_copy() {
            Some(session) => session.copy_send(&chunk).await,
            None => Err(TargetError::Invalid("the COPY session is gone".into())),
        };
        if let Err(e) = sent {
            // The session stays in COPY state only on the server's side; a
            // refused value has already ended the COPY there, a lost
            // connection ended everything. Either way, end it here.
            if let Some(session) = conn.last_copy() {
                let _ = session.copy_abort("molt-load: the batch failed").await;
            }
            self.copying = false;
            self.broken = Some(Broken {
                error: e.with_context(format!("copying into {}", copy.table)),
                maybe_committed: false,
            });
        }
    }

    /// Commits the batch, retrying transient failures. Returns the rows
    /// and bytes written and leaves the batch empty for the next one.
    pub async fn commit(
        &mut self,
        conn: &mut Conn,
        copy: &TableCopy,
        max_retries: u32,
    ) -> Result<(u64, u64), TargetError> {
        let (rows, bytes) = (self.rows, self.bytes);
        if self.copying {
            self.copying = false;
            let finished = match conn.last_copy() {
                Some(session) => session.copy_finish().await,
                None => Err(TargetError::Invalid("the COPY session is gone".into())),
            };
            match finished {
                Ok(n) if n == rows => {
                    // The server reports COPY's row count before it commits
                    // the implicit transaction (at the end of the Query), so
                    // a session killed in between would lose the batch
                    // silently. Only an answer to the next statement on the
                    // same connection proves the commit.
                    let confirmed = match conn.last_copy() {
                        Some(session) => session.execute("SELECT 1").await.map_err(|e| {
                            e.with_context(format!(
                                "confirming the commit of a batch of {rows} rows into {}",
                                copy.table
                            ))
                        }),
                        None => Err(TargetError::Invalid(format!(
                            "no connection after committing a batch of {rows} rows into {}",
                            copy.table
                        ))),
                    };
                    match confirmed {
                        Ok(()) => {
                            self.clear();
                            return Ok((rows, bytes));
                        }
                        Err(error) => {
                            self.broken = Some(Broken {
                                error,
                                maybe_committed: true,
                            })
                        }
                    }
                }
                Ok(n) => {
                    return Err(TargetError::Invalid(format!(
                        "COPY into {} wrote {n} rows, the batch had {rows}",
                        copy.table
                    )))
                }
                Err(e) => {
                    // A refusal from the server (a value, a retry error)
                    // means nothing committed; a lost connection leaves it
                    // unknown.
                    let maybe_committed = matches!(e, TargetError::Lost { .. });
                    self.broken = Some(Broken {
                        error: e.with_context(format!(
                            "committing a batch of {rows} rows into {}",
                            copy.table
                        )),
                        maybe_committed,
                    })
                }
            }
        }
        let Some(mut broken) = self.broken.take() else {
            self.clear();
            return Ok((0, 0));
        };
        let mut attempt = 0;
        loop {
            if !broken.error.is_transient() {
                return Err(broken.error);
            }
            if attempt >= max_retries {
                return Err(TargetError::Invalid(format!(
                    "{} (gave up after {attempt} retries)",
                    broken.error
                )));
            }
            if copy.pk.is_none() && broken.maybe_committed {
                return Err(TargetError::Invalid(format!(
                    "{}; the batch may or may not have committed and {} has no primary key to tell, so the section was removed and must be sent again",
                    broken.error, copy.table
                )));
            }
            attempt += 1;
            molt_core::metrics::retry(broken.error.sqlstate());
            tokio::time::sleep(retry::backoff(attempt)).await;
            let result = if copy.pk.is_some() {
                self.retry_via_temp(conn, copy).await
            } else {
                self.retry_plain(conn, copy).await
            };
            match result {
                Ok(()) => {
                    self.clear();
                    return Ok((rows, bytes));
                }
                Err(b) => broken = b,
            }
        }
    }

    fn clear(&mut self) {
        self.chunks.clear();
        self.rows = 0;
        self.bytes = 0;
        self.copying = false;
        self.broken = None;
        self.in_flight = None;
    }

    /// COPY into a fresh TEMP table, then insert what is not there yet.
    async fn retry_via_temp(&self, conn: &mut Conn, copy: &TableCopy) -> Result<(), Broken> {
        let before = |error| Broken {
            error,
            maybe_committed: false,
        };
        let session = conn.copy_session().await.map_err(before)?;
        let temp = quote_pg("molt_retry_batch");
        let ctx = |what: &str| format!("retrying a batch into {} ({what})", copy.table);
        session
            .execute(&format!(
                "DROP TABLE IF EXISTS pg_temp.{temp}; CREATE TEMP TABLE {temp} ({})",
                copy.temp_columns
            ))
            .await
            .map_err(|e| before(e.with_context(ctx("creating the temp table"))))?;
        session
            .copy_start(&format!(
                "COPY {temp} ({}) FROM STDIN{}",
                copy.columns, copy.format
            ))
            .await
            .map_err(|e| before(e.with_context(ctx("copying into the temp table"))))?;
        for chunk in &self.chunks {
            if let Err(e) = session.copy_send(chunk).await {
                let _ = session.copy_abort("molt-load: the retry failed").await;
                return Err(before(e.with_context(ctx("copying into the temp table"))));
            }
        }
        let copied = session
            .copy_finish()
            .await
            .map_err(|e| before(e.with_context(ctx("copying into the temp table"))))?;
        if copied != self.rows {
            return Err(before(TargetError::Invalid(format!(
                "{}: copied {copied} of {} rows",
                ctx("temp table"),
                self.rows
            ))));
        }
        let pk = copy.pk.as_deref().expect("temp path needs a key");
        // A single statement is atomic, so whatever happens to it, the
        // insert either happened whole or not at all; re-running it is safe.
        session
            .execute(&format!(
                "INSERT INTO {} ({cols}) SELECT {cols} FROM {temp} ON CONFLICT ({pk}) DO NOTHING",
                quote_pg_table(&copy.table),
                cols = copy.columns
            ))
            .await
            .map_err(|e| before(e.with_context(ctx("inserting from the temp table"))))?;
        let _ = session
            .execute(&format!("DROP TABLE IF EXISTS pg_temp.{temp}"))
            .await;
        Ok(())
    }

    /// Sends the batch again with a plain COPY (table without a key, when
    /// the failed attempt is known not to have committed).
    async fn retry_plain(&self, conn: &mut Conn, copy: &TableCopy) -> Result<(), Broken> {
        let before = |error| Broken {
            error,
            maybe_committed: false,
        };
        let ctx = || format!("retrying COPY into {}", copy.table);
        let session = conn.copy_session().await.map_err(before)?;
        session
            .copy_start(&copy.copy_sql)
            .await
            .map_err(|e| before(e.with_context(ctx())))?;
        for chunk in &self.chunks {
            if let Err(e) = session.copy_send(chunk).await {
                let _ = session.copy_abort("molt-load: the retry failed").await;
                return Err(before(e.with_context(ctx())));
            }
        }
        match session.copy_finish().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let maybe_committed = matches!(e, TargetError::Lost { .. });
                Err(Broken {
                    error: e
                        .with_context(format!("committing a retried batch into {}", copy.table)),
                    maybe_committed,
                })
            }
        }
    }
}
