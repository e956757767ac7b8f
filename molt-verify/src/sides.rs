//! The two connections: the source (PostgreSQL, MySQL, or Oracle with the
//! cargo feature `oracle`) and the target (CockroachDB or PostgreSQL).

use anyhow::Context;
use molt_core::mysql::catalog::ServerInfo;
use molt_core::url::{ConnUrl, Engine};
use molt_core::verify::pg::{self, PgConn};

/// The source connection, by engine.
pub enum Source {
    Pg(PgConn),
    Mysql {
        opts: mysql_async::Opts,
        /// For catalog reads and counts; each row read opens its own.
        conn: mysql_async::Conn,
        server: ServerInfo,
        /// The database named in the URL: the default for unqualified tables.
        db: String,
    },
    #[cfg(feature = "oracle")]
    Oracle {
        /// Each row read opens its own connection.
        url: ConnUrl,
        /// For catalog reads and counts (blocking: used from blocking threads).
        conn: std::sync::Arc<molt_core::oracle::driver::Connection>,
        /// The connecting user: the default owner of unqualified tables.
        owner: String,
    },
}

pub struct Sides {
    pub source: Source,
    pub target: PgConn,
}

impl Sides {
    /// Connects both sides at once.
    pub async fn connect(source: &ConnUrl, target: &ConnUrl) -> anyhow::Result<Sides> {
        let tgt = pg::connect(target, "target");
        let src = connect_source(source);
        let (src, tgt) = tokio::join!(src, tgt);
        Ok(Sides {
            source: src?,
            target: tgt?,
        })
    }

    /// The schema of a table named without one.
    pub fn default_schema(&self) -> &str {
        match &self.source {
            Source::Pg(_) => "public",
            Source::Mysql { db, .. } => db,
            #[cfg(feature = "oracle")]
            Source::Oracle { owner, .. } => owner,
        }
    }
}

async fn connect_source(url: &ConnUrl) -> anyhow::Result<Source> {
    match url.engine() {
        Engine::Postgres => Ok(Source::Pg(pg::connect(url, "source").await?)),
        Engine::Mysql => {
            let opts = molt_core::mysql::opts(url)?;
            let db = molt_core::mysql::database(&opts)?;
            let mut conn = molt_core::mysql::connect(&opts)
                .await
                .with_context(|| format!("source {url}"))?;
            let server = molt_core::mysql::catalog::server_info(&mut conn).await?;
            Ok(Source::Mysql {
                opts,
                conn,
                server,
                db,
            })
        }
        #[cfg(feature = "oracle")]
        Engine::Oracle => {
            let owner = molt_core::oracle::params::connect_params(url)
                .map_err(|e| anyhow::anyhow!(e))?
                .user
                .to_uppercase();
            Ok(Source::Oracle {
                url: url.clone(),
                conn: crate::oracle::connect(url).await?,
                owner,
            })
        }
        #[cfg(not(feature = "oracle"))]
        Engine::Oracle => anyhow::bail!(molt_core::oracle::built_without_oracle("molt-verify")),
    }
}
