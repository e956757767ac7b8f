//! Connecting to the target, and the session every connection gets.
//!
//! Values travel as text (COPY and text parameters), so the session's date,
//! interval and time-zone settings decide how the server reads them. Every
//! connection therefore starts with the same settings, chosen so that the
//! stream's text forms (ISO dates, ISO 8601 intervals, UTC timestamps) are
//! read exactly, and read-back text has the same form.

use tokio_postgres::Client;

use super::{DbContext, Flavour, Result, TargetError};
use crate::url::ConnUrl;

/// A connection to the target, with the engine it turned out to be.
pub struct Target {
    pub client: Client,
    pub flavour: Flavour,
    /// `SELECT version()`.
    pub version: String,
    /// The driver's connection task; finished means the connection is gone.
    task: tokio::task::JoinHandle<()>,
}

impl Target {
    /// True when the connection can no longer be used (reconnect).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed() || self.task.is_finished()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// [`connect`], asked again up to `retries` times (with backoff) when the
/// server answered with a transient SQLSTATE: a 40001 on the first
/// statement, 57P03 while a node starts. A server that cannot be reached
/// fails at once, as a wrong URL should; callers that survive restarts
/// retry that themselves.
pub async fn connect_retrying(url: &ConnUrl, retries: u32) -> Result<Target> {
    let mut attempt = 0;
    loop {
        match connect(url).await {
            Err(e)
                if attempt < retries
                    && e.sqlstate()
                        .is_some_and(super::retry::is_transient_sqlstate) =>
            {
                attempt += 1;
                crate::metrics::retry(e.sqlstate());
                tokio::time::sleep(super::retry::backoff(attempt)).await;
            }
            other => return other,
        }
    }
}

/// Connects, detects the flavour and applies the session settings. Must be
/// called inside a tokio runtime (the connection runs on a spawned task).
pub async fn connect(url: &ConnUrl) -> Result<Target> {
    if url.engine() != crate::url::Engine::Postgres {
        return Err(TargetError::Invalid(format!(
            "target {url} is not a CockroachDB/PostgreSQL URL (use postgresql:// or cockroachdb://)"
        )));
    }
    let (client, task) = crate::connect::postgres_with_task(url, "molt-load")
        .await
        .map_err(|e| {
            let message = e.to_string();
            match e.driver {
                // Keep the driver's error: retries decide on it (a refused
                // connection while the target restarts is transient).
                Some(error) => TargetError::Db {
                    context: format!("connecting to target {url}"),
                    detail: message,
                    error,
                },
                None => TargetError::Invalid(message),
            }
        })?;
    let row = client
        .query_one("SELECT version()", &[])
        .await
        .ctx(|| "reading the target version".into())?;
    let version: String = row.get(0);
    let flavour = Flavour::detect(&version);
    let target = Target {
        client,
        flavour,
        version,
        task,
    };
    let mut settings = flavour.session_settings();
    // Lets operators (and tests) find molt's sessions.
    settings.push(("SET application_name = 'molt-load'", false));
    for (setting, required) in settings {
        match target.client.batch_execute(setting).await {
            Ok(()) => {}
            Err(e) if !required => {
                // CockroachDB versions differ in which settings they know;
                // these only affect how values are printed, not read.
                let _ = e;
            }
            Err(e) => {
                return Err(TargetError::db(
                    format!("applying session setting {setting}"),
                    e,
                ))
            }
        }
    }
    Ok(target)
}
