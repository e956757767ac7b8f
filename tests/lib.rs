//! The testkit shared by molt's end-to-end tests (`use molt_tests::*;`).
//!
//! The tests drive the built tool binaries against real database servers. They
//! find those servers through three environment variables, which
//! `scripts/test.sh` sets after starting throwaway servers:
//!
//! | variable | server |
//! |---|---|
//! | `MOLT_TEST_PG_SOURCE` | PostgreSQL, the source of a migration |
//! | `MOLT_TEST_PG_TARGET` | PostgreSQL standing in for the CockroachDB target |
//! | `MOLT_TEST_MYSQL_SOURCE` | MariaDB/MySQL, the source of a migration |
//!
//! A test that needs a server and finds no variable panics: it never passes
//! quietly. Tests run in parallel threads, so each test works in its own
//! database from [`fresh_pg_database`] or [`fresh_mysql_database`].
//!
//! ```no_run
//! use molt_tests::*;
//!
//! # async fn example() {
//! let src = fresh_pg_database(&pg_source_url(), "dump_roundtrip").await;
//! psql_exec(&src, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2);");
//! let out = run_pipe(
//!     &[("molt-dump", vec!["--source".into(), src.clone()])],
//!     None,
//!     &[],
//! );
//! out.assert_success();
//! let records = ndjson(&out.stdout);
//! # let _ = records;
//! # }
//! ```
#![warn(missing_docs)]

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Environment variable with the URL of the PostgreSQL source server.
pub const PG_SOURCE_ENV: &str = "MOLT_TEST_PG_SOURCE";
/// Environment variable with the URL of the PostgreSQL server that stands in
/// for the CockroachDB target.
pub const PG_TARGET_ENV: &str = "MOLT_TEST_PG_TARGET";
/// Environment variable with the URL of the MariaDB/MySQL source server.
pub const MYSQL_SOURCE_ENV: &str = "MOLT_TEST_MYSQL_SOURCE";

fn server_url(var: &str, what: &str) -> String {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => panic!(
            "{var} is not set: run the tests through scripts/test.sh, which starts throwaway \
             servers, or point {var} at a {what} server"
        ),
    }
}

/// URL of the PostgreSQL source server (`$MOLT_TEST_PG_SOURCE`).
///
/// # Panics
/// When the variable is not set, with a message that says how to set it.
pub fn pg_source_url() -> String {
    server_url(PG_SOURCE_ENV, "PostgreSQL")
}

/// URL of the PostgreSQL server that stands in for the CockroachDB target
/// (`$MOLT_TEST_PG_TARGET`).
///
/// # Panics
/// When the variable is not set, with a message that says how to set it.
pub fn pg_target_url() -> String {
    server_url(PG_TARGET_ENV, "PostgreSQL")
}

/// A target that is plain PostgreSQL, not the CockroachDB stand-in
/// (`$MOLT_TEST_PG_TARGET_DIRECT`, else [`pg_target_url`]): for the few
/// tests of what molt does only on a PostgreSQL target, such as verify's
/// SQL hash of a MySQL source's rows.
pub fn pg_plain_target_url() -> String {
    match std::env::var("MOLT_TEST_PG_TARGET_DIRECT") {
        Ok(url) if !url.is_empty() => url,
        _ => pg_target_url(),
    }
}

/// URL of the MariaDB/MySQL source server (`$MOLT_TEST_MYSQL_SOURCE`).
///
/// # Panics
/// When the variable is not set, with a message that says how to set it.
pub fn mysql_source_url() -> String {
    server_url(MYSQL_SOURCE_ENV, "MariaDB/MySQL")
}

/// The workspace root (the directory holding the root `Cargo.toml`).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

/// A database name no other test (in this or another process) will pick:
/// `prefix` (lower-cased, reduced to `[a-z0-9_]`), the process id, a counter and
/// the clock. At most 63 bytes, PostgreSQL's limit (MySQL allows 64).
pub fn unique_db_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let suffix = format!("_{}_{}_{:x}", std::process::id(), n, nanos & 0xff_ffff);
    let mut clean: String = prefix
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if clean.is_empty() || clean.starts_with(|c: char| c.is_ascii_digit()) {
        clean.insert_str(0, "t_");
    }
    clean.truncate(63 - suffix.len());
    clean + &suffix
}

/// `url` with its database replaced by `db`.
///
/// Works on URLs (`scheme://user@host:port/db?params`, keeping the parameters)
/// and on PostgreSQL `key=value` connection strings (adds `dbname=db`).
pub fn with_database(url: &str, db: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // A libpq key=value string: a later dbname wins.
        return format!("{url} dbname={db}");
    };
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let authority_start = scheme_end + 3;
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    format!("{}/{}{}", &base[..authority_end], db, query)
}

/// The database named in a URL's path, if any.
fn database_of(url: &str) -> Option<String> {
    let rest = &url[url.find("://")? + 3..];
    let rest = rest.split('?').next().unwrap_or("");
    let db = &rest[rest.find('/')? + 1..];
    (!db.is_empty()).then(|| percent_decode(db))
}

/// Whether the target answers as CockroachDB (the stand-in, or a real
/// cluster), so a test can assert the CockroachDB outcome there and the
/// PostgreSQL one on a plain PostgreSQL target.
pub async fn target_is_cockroach(client: &tokio_postgres::Client) -> bool {
    let row = client
        .query_one("SELECT version()", &[])
        .await
        .expect("SELECT version() on the target");
    row.get::<_, String>(0).contains("CockroachDB")
}

/// Connects to PostgreSQL without TLS and drives the connection on a tokio
/// task. Call it from inside a tokio runtime (e.g. a `#[tokio::test]`).
///
/// # Panics
/// When the connection fails.
pub async fn pg_connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {}: {e}", redact(url)));
    tokio::spawn(async move {
        // The error (if any) surfaces on the client's next call.
        let _ = connection.await;
    });
    client
}

/// Connects to MySQL/MariaDB.
///
/// # Panics
/// When the URL is invalid or the connection fails.
pub async fn mysql_connect(url: &str) -> mysql_async::Conn {
    let opts = mysql_async::Opts::from_url(url)
        .unwrap_or_else(|e| panic!("bad MySQL URL {}: {e}", redact(url)));
    mysql_async::Conn::new(opts)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to MySQL at {}: {e}", redact(url)))
}

/// The one value a PostgreSQL query returns, as text (`N` for NULL).
pub async fn pg_value(url: &str, sql: &str) -> String {
    let client = pg_connect(url).await;
    let sql = format!("SELECT ({sql})::text");
    let row = client.query_one(sql.as_str(), &[]).await.expect(&sql);
    row.get::<_, Option<String>>(0)
        .unwrap_or_else(|| "N".into())
}

/// The one text value a MySQL query returns.
pub async fn mysql_value(url: &str, sql: &str) -> String {
    use mysql_async::prelude::Queryable;
    let mut conn = mysql_connect(url).await;
    let value: Option<String> = conn.query_first(sql).await.expect(sql);
    value.unwrap_or_else(|| panic!("no row: {sql}"))
}

/// Creates an empty database with a unique name (see [`unique_db_name`]) on
/// the PostgreSQL server at `server_url` and returns a URL to it.
///
/// # Panics
/// When the server cannot be reached or refuses to create the database.
pub async fn fresh_pg_database(server_url: &str, prefix: &str) -> String {
    let name = unique_db_name(prefix);
    let client = pg_connect(server_url).await;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {quoted}"))
        .await
        .unwrap_or_else(|e| panic!("DROP DATABASE {name} failed: {e}"));
    client
        .batch_execute(&format!(
            "CREATE DATABASE {quoted} ENCODING 'UTF8' TEMPLATE template0"
        ))
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name} failed: {e}"));
    with_database(server_url, &name)
}

/// Creates an empty `utf8mb4` database with a unique name (see
/// [`unique_db_name`]) on the MySQL/MariaDB server at `server_url` and returns a
/// URL to it.
///
/// # Panics
/// When the server cannot be reached or refuses to create the database.
pub async fn fresh_mysql_database(server_url: &str, prefix: &str) -> String {
    use mysql_async::prelude::Queryable;
    let name = unique_db_name(prefix);
    let mut conn = mysql_connect(server_url).await;
    let quoted = format!("`{}`", name.replace('`', "``"));
    conn.query_drop(format!("DROP DATABASE IF EXISTS {quoted}"))
        .await
        .unwrap_or_else(|e| panic!("DROP DATABASE {name} failed: {e}"));
    conn.query_drop(format!(
        "CREATE DATABASE {quoted} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
    ))
    .await
    .unwrap_or_else(|e| panic!("CREATE DATABASE {name} failed: {e}"));
    let _ = conn.disconnect().await;
    with_database(server_url, &name)
}

/// `url` with any password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| authority_start + i);
    let authority = &url[authority_start..authority_end];
    match authority.rfind('@') {
        Some(at) if authority[..at].contains(':') => {
            let user = &authority[..authority[..at].find(':').unwrap_or(at)];
            format!(
                "{}{}:***{}",
                &url[..authority_start],
                user,
                &url[authority_start + at..]
            )
        }
        _ => url.to_owned(),
    }
}

/// Path of a built tool binary such as `"molt-dump"`.
///
/// Looks in `$MOLT_BIN_DIR` when it is set (`scripts/test.sh` sets it to the
/// release directory), and otherwise takes the newer of
/// `<target>/release/NAME` and `<target>/debug/NAME`, where `<target>` is
/// `$CARGO_TARGET_DIR` or `<workspace>/target`.
///
/// # Panics
/// When the binary has not been built.
pub fn bin(name: &str) -> PathBuf {
    let exe = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    if let Some(dir) = std::env::var_os("MOLT_BIN_DIR").filter(|d| !d.is_empty()) {
        let path = PathBuf::from(dir).join(&exe);
        assert!(
            path.is_file(),
            "{} does not exist (MOLT_BIN_DIR is set): run scripts/test.sh or \
             cargo build --workspace --bins --release",
            path.display()
        );
        return path;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map(|d| workspace_dir().join(d))
        .unwrap_or_else(|| workspace_dir().join("target"));
    let candidates = [
        target.join("release").join(&exe),
        target.join("debug").join(&exe),
    ];
    candidates
        .iter()
        .filter_map(|p| {
            let modified = p.metadata().ok()?.modified().ok()?;
            Some((modified, p))
        })
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| {
            panic!(
                "binary {name} not found in {} or {}: run scripts/test.sh or \
                 cargo build --workspace --bins",
                candidates[0].display(),
                candidates[1].display()
            )
        })
}

/// The root of the shared sample datasets: `$MOLT_DATASETS_DIR`, or
/// `<workspace>/../shared/datasets`.
pub fn shared_datasets_root() -> PathBuf {
    std::env::var_os("MOLT_DATASETS_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("..").join("shared").join("datasets"))
}

/// Path of a file or folder under the shared sample datasets
/// ([`shared_datasets_root`]), e.g.
/// `shared_dataset("pg-pagila/pagila-schema.sql")`. Tests call
/// [`require_datasets!`] first, so that a clone without the datasets skips
/// them visibly instead of failing.
///
/// # Panics
/// When the path does not exist.
pub fn shared_dataset(rel: &str) -> PathBuf {
    let root = shared_datasets_root();
    let path = root.join(rel);
    assert!(
        path.exists(),
        "shared dataset {} does not exist (datasets root: {}; set MOLT_DATASETS_DIR to move it)",
        path.display(),
        root.display()
    );
    path
}

/// Whether every one of `rels` exists under the shared datasets. When one
/// does not, records the skip (see [`require_datasets!`]) and returns false.
///
/// # Panics
/// When one is missing and `MOLT_REQUIRE_DATASETS=1` (as `.ci/run` sets:
/// CI has the datasets, so a missing one there is a broken checkout, not a
/// reason to skip).
pub fn datasets_present(rels: &[&str]) -> bool {
    let root = shared_datasets_root();
    let Some(missing) = rels.iter().find(|rel| !root.join(rel).exists()) else {
        return true;
    };
    let test = std::thread::current()
        .name()
        .unwrap_or("an unnamed test")
        .to_owned();
    let why = format!(
        "needs the shared dataset {missing} under {} (set MOLT_DATASETS_DIR to point elsewhere)",
        root.display()
    );
    assert!(
        std::env::var("MOLT_REQUIRE_DATASETS").as_deref() != Ok("1"),
        "{test} {why}, and MOLT_REQUIRE_DATASETS=1 forbids skipping it"
    );
    eprintln!("SKIPPED {test}: {why}");
    if let Some(log) = std::env::var_os("MOLT_TEST_SKIP_LOG").filter(|l| !l.is_empty()) {
        use std::io::Write as _;
        let line = format!("{test}: {why}\n");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| {
                panic!(
                    "cannot append to MOLT_TEST_SKIP_LOG {}: {e}",
                    log.to_string_lossy()
                )
            });
        file.write_all(line.as_bytes())
            .expect("MOLT_TEST_SKIP_LOG is writable");
    }
    false
}

/// Returns from the calling test, after saying so on stderr and in
/// `$MOLT_TEST_SKIP_LOG` (which scripts/test.sh counts in its summary),
/// when a shared dataset it needs is missing, as on a clone with nothing
/// beside it:
///
/// ```ignore
/// require_datasets!("pg-pagila/pagila-schema.sql", "pg-pagila/pagila-data.sql");
/// ```
#[macro_export]
macro_rules! require_datasets {
    ($($rel:expr),+ $(,)?) => {
        if !$crate::datasets_present(&[$($rel),+]) {
            return;
        }
    };
}

/// Path of a fixture under `tests/fixtures/`.
///
/// # Panics
/// When the path does not exist.
pub fn fixture(rel: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel);
    assert!(path.exists(), "fixture {} does not exist", path.display());
    path
}

/// SQL for [`psql_exec`] and [`mysql_exec`]: a script file or the SQL text.
///
/// `&str` and `String` convert to [`Sql::Text`]; `&Path`, `PathBuf` and
/// `&PathBuf` convert to [`Sql::File`].
#[derive(Debug, Clone)]
pub enum Sql {
    /// Run the script in this file.
    File(PathBuf),
    /// Run this SQL text.
    Text(String),
}

impl From<&str> for Sql {
    fn from(s: &str) -> Self {
        Sql::Text(s.to_owned())
    }
}
impl From<String> for Sql {
    fn from(s: String) -> Self {
        Sql::Text(s)
    }
}
impl From<&String> for Sql {
    fn from(s: &String) -> Self {
        Sql::Text(s.clone())
    }
}
impl From<&Path> for Sql {
    fn from(p: &Path) -> Self {
        Sql::File(p.to_path_buf())
    }
}
impl From<PathBuf> for Sql {
    fn from(p: PathBuf) -> Self {
        Sql::File(p)
    }
}
impl From<&PathBuf> for Sql {
    fn from(p: &PathBuf) -> Self {
        Sql::File(p.clone())
    }
}

/// Runs `cmd` with `input` (if any) on stdin; returns stdout, or panics with
/// `what` and the command's stderr.
fn run_client(mut cmd: Command, input: Option<Vec<u8>>, what: &str) -> String {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start {:?}: {e}", cmd.get_program()));
    let feeder = input.map(|bytes| {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        })
    });
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{what}: waiting for the client failed: {e}"));
    if let Some(f) = feeder {
        let _ = f.join();
    }
    if !output.status.success() {
        panic!(
            "{what} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs SQL through the `psql` client against the PostgreSQL database at
/// `url`, stopping at the first error (`psql -X -v ON_ERROR_STOP=1 -q`).
/// Meant for loading dataset scripts, which may use psql meta-commands.
/// Returns psql's stdout.
///
/// ```no_run
/// # use molt_tests::*;
/// # let url = String::new();
/// psql_exec(&url, shared_dataset("pg-pagila/pagila-schema.sql"));
/// psql_exec(&url, "ANALYZE");
/// ```
///
/// # Panics
/// When psql cannot run or reports an error (the message holds its stderr).
pub fn psql_exec(url: &str, sql: impl Into<Sql>) -> String {
    let sql = sql.into();
    let mut cmd = Command::new(client_binary(&["psql"]));
    cmd.args(["-X", "-v", "ON_ERROR_STOP=1", "-q", "-d", url]);
    let input = match &sql {
        Sql::File(path) => {
            assert!(path.is_file(), "SQL file {} does not exist", path.display());
            cmd.arg("-f").arg(path);
            None
        }
        Sql::Text(text) => {
            cmd.args(["-f", "-"]);
            Some(text.clone().into_bytes())
        }
    };
    let what = match &sql {
        Sql::File(p) => format!("psql -f {} on {}", p.display(), redact(url)),
        Sql::Text(_) => format!("psql on {}", redact(url)),
    };
    run_client(cmd, input, &what)
}

/// Runs SQL through the `mariadb` (or `mysql`) client against the database
/// named in `url` (`mysql://user[:password]@host[:port]/db`). Uses TCP,
/// `--binary-mode` (Sakila's data holds raw BLOB bytes) and
/// `--default-character-set=utf8mb4`, and ignores option files. Returns the
/// client's stdout.
///
/// # Panics
/// When the URL cannot be parsed, or the client cannot run or reports an
/// error (the message holds its stderr).
pub fn mysql_exec(url: &str, sql: impl Into<Sql>) -> String {
    let sql = sql.into();
    let parts = MysqlUrl::parse(url);
    let mut cmd = Command::new(client_binary(&["mariadb", "mysql"]));
    // --no-defaults must come first.
    cmd.arg("--no-defaults")
        .arg("--protocol=TCP")
        .arg("--binary-mode")
        .arg("--default-character-set=utf8mb4")
        .arg(format!("--host={}", parts.host))
        .arg(format!("--port={}", parts.port))
        .arg(format!("--user={}", parts.user));
    if let Some(password) = &parts.password {
        // Not on the command line, where `ps` would show it.
        cmd.env("MYSQL_PWD", password);
    }
    if let Some(db) = &parts.database {
        cmd.arg(db);
    }
    let input = match &sql {
        Sql::File(path) => std::fs::read(path)
            .unwrap_or_else(|e| panic!("cannot read SQL file {}: {e}", path.display())),
        Sql::Text(text) => text.clone().into_bytes(),
    };
    let what = match &sql {
        Sql::File(p) => format!("mysql client < {} on {}", p.display(), redact(url)),
        Sql::Text(_) => format!("mysql client on {}", redact(url)),
    };
    run_client(cmd, Some(input), &what)
}

/// The parts of a `mysql://` URL the command-line client needs.
struct MysqlUrl {
    user: String,
    password: Option<String>,
    host: String,
    port: u16,
    database: Option<String>,
}

impl MysqlUrl {
    fn parse(url: &str) -> Self {
        let rest = url
            .strip_prefix("mysql://")
            .or_else(|| url.strip_prefix("mariadb://"))
            .unwrap_or_else(|| panic!("not a mysql:// URL: {}", redact(url)));
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (&authority[..at], &authority[at + 1..]),
            None => ("", authority),
        };
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (percent_decode(u), Some(percent_decode(p))),
            None => (percent_decode(userinfo), None),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').unwrap_or((v6, ""));
            (h.to_owned(), after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (hostport.to_owned(), None),
            }
        };
        let port = port.map_or(3306, |p| {
            p.parse()
                .unwrap_or_else(|_| panic!("bad port in {}", redact(url)))
        });
        MysqlUrl {
            user: if user.is_empty() { "root".into() } else { user },
            password,
            host: if host.is_empty() {
                "127.0.0.1".into()
            } else {
                host
            },
            port,
            database: database_of(url),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16)),
                bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first of `names` found on `PATH` (or the first name, so that the
/// spawn error names it).
fn client_binary(names: &[&str]) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from(names[0])
}

/// What [`run_pipe`] observed.
#[derive(Debug, Clone)]
pub struct PipeOutcome {
    /// The commands as given (program and arguments), for messages.
    pub commands: Vec<String>,
    /// Each command's exit code, in pipeline order; `128 + N` when signal `N`
    /// killed it (as a shell reports it).
    pub statuses: Vec<i32>,
    /// Everything the last command wrote to stdout.
    pub stdout: Vec<u8>,
    /// Each command's stderr (lossily decoded), in pipeline order.
    pub stderrs: Vec<String>,
}

impl PipeOutcome {
    /// True when every command exited with status 0.
    pub fn success(&self) -> bool {
        self.statuses.iter().all(|s| *s == 0)
    }

    /// Panics, showing every command's status and stderr, unless every command
    /// exited with status 0.
    pub fn assert_success(&self) -> &Self {
        if !self.success() {
            panic!("pipeline failed:\n{}", self.report());
        }
        self
    }

    /// Panics unless the statuses are exactly `expected`.
    pub fn assert_statuses(&self, expected: &[i32]) -> &Self {
        if self.statuses != expected {
            panic!(
                "pipeline exit statuses {:?}, expected {:?}:\n{}",
                self.statuses,
                expected,
                self.report()
            );
        }
        self
    }

    /// The last command's stdout as UTF-8 text.
    ///
    /// # Panics
    /// When it is not valid UTF-8.
    pub fn stdout_str(&self) -> &str {
        std::str::from_utf8(&self.stdout).expect("pipeline stdout is not UTF-8")
    }

    /// The last command's stdout parsed as NDJSON (see [`ndjson`]).
    pub fn records(&self) -> Vec<serde_json::Value> {
        ndjson(&self.stdout)
    }

    /// Every command with its exit status and stderr, for failure messages.
    pub fn report(&self) -> String {
        let mut s = String::new();
        for (i, cmd) in self.commands.iter().enumerate() {
            s.push_str(&format!(
                "--- [{i}] {cmd}\n    exit status: {}\n",
                self.statuses.get(i).copied().unwrap_or(-1)
            ));
            let err = self.stderrs.get(i).map(String::as_str).unwrap_or("");
            if err.trim().is_empty() {
                s.push_str("    (no stderr)\n");
            } else {
                for line in err.lines() {
                    s.push_str("    | ");
                    s.push_str(line);
                    s.push('\n');
                }
            }
        }
        s
    }
}

/// How long [`run_pipe`] lets a pipeline run before killing it:
/// `$MOLT_TEST_PIPE_TIMEOUT` seconds, default 600.
fn pipe_timeout() -> Duration {
    let secs = std::env::var("MOLT_TEST_PIPE_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    Duration::from_secs(secs)
}

fn status_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

fn drain<R: Read + Send + 'static>(mut r: R) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Runs commands connected stdout → stdin like a shell pipeline
/// (`a | b | c`), waits for all of them, and returns their exit statuses, the
/// last command's stdout and every command's stderr.
///
/// A program without a `/` is a molt tool found with [`bin`]; give a path for
/// anything else (e.g. `"/usr/bin/head"`). `stdin` feeds the first command
/// (`None`: empty stdin). `env` is added to every command's environment.
///
/// The pipeline is killed, and the call panics, after
/// `$MOLT_TEST_PIPE_TIMEOUT` seconds (default 600). It blocks the calling
/// thread, which is fine in a `#[tokio::test]`.
///
/// ```no_run
/// # use molt_tests::*;
/// let out = run_pipe(
///     &[
///         ("molt-dump", vec!["--source".into(), "postgres://...".into()]),
///         ("molt-load", vec!["--target".into(), "postgres://...".into()]),
///     ],
///     None,
///     &[("RUST_LOG", "debug")],
/// );
/// out.assert_success();
/// ```
///
/// # Panics
/// When `cmds` is empty, a program cannot be started, or the timeout passes.
pub fn run_pipe(
    cmds: &[(&str, Vec<String>)],
    stdin: Option<&[u8]>,
    env: &[(&str, &str)],
) -> PipeOutcome {
    assert!(!cmds.is_empty(), "run_pipe needs at least one command");
    let mut children: Vec<Child> = Vec::with_capacity(cmds.len());
    let mut stderr_readers = Vec::with_capacity(cmds.len());
    let mut described = Vec::with_capacity(cmds.len());
    let mut prev_stdout: Option<std::process::ChildStdout> = None;
    let mut feeder = None;

    for (i, (program, args)) in cmds.iter().enumerate() {
        let path = if program.contains('/') {
            PathBuf::from(program)
        } else {
            bin(program)
        };
        described.push(
            std::iter::once(path.display().to_string())
                .chain(args.iter().map(|a| redact(a)))
                .collect::<Vec<_>>()
                .join(" "),
        );
        let mut cmd = Command::new(&path);
        cmd.args(args.iter().map(OsStr::new))
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match prev_stdout.take() {
            Some(out) => {
                cmd.stdin(Stdio::from(out));
            }
            None if i == 0 && stdin.is_some() => {
                cmd.stdin(Stdio::piped());
            }
            None => {
                cmd.stdin(Stdio::null());
            }
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                for c in &mut children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                panic!("cannot start {}: {e}", path.display());
            }
        };
        if i == 0 {
            if let Some(bytes) = stdin {
                let mut w = child.stdin.take().expect("stdin is piped");
                let bytes = bytes.to_vec();
                feeder = Some(std::thread::spawn(move || {
                    // A command may exit without reading everything.
                    let _ = w.write_all(&bytes);
                }));
            }
        }
        stderr_readers.push(drain(child.stderr.take().expect("stderr is piped")));
        prev_stdout = child.stdout.take();
        children.push(child);
    }
    let stdout_reader = drain(prev_stdout.take().expect("last stdout is piped"));

    let deadline = Instant::now() + pipe_timeout();
    let mut statuses: Vec<Option<i32>> = vec![None; children.len()];
    let mut timed_out = false;
    while statuses.iter().any(Option::is_none) {
        for (child, status) in children.iter_mut().zip(statuses.iter_mut()) {
            if status.is_none() {
                if let Some(s) = child.try_wait().expect("waiting for a child failed") {
                    *status = Some(status_code(s));
                }
            }
        }
        if statuses.iter().all(Option::is_some) {
            break;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            for child in &mut children {
                let _ = child.kill();
            }
            for (child, status) in children.iter_mut().zip(statuses.iter_mut()) {
                if status.is_none() {
                    *status = Some(child.wait().map(status_code).unwrap_or(-1));
                }
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }

    if let Some(f) = feeder {
        let _ = f.join();
    }
    let outcome = PipeOutcome {
        commands: described,
        statuses: statuses.into_iter().map(|s| s.unwrap_or(-1)).collect(),
        stdout: stdout_reader.join().unwrap_or_default(),
        stderrs: stderr_readers
            .into_iter()
            .map(|r| String::from_utf8_lossy(&r.join().unwrap_or_default()).into_owned())
            .collect(),
    };
    if timed_out {
        panic!(
            "pipeline killed after {:?} (MOLT_TEST_PIPE_TIMEOUT):\n{}",
            pipe_timeout(),
            outcome.report()
        );
    }
    outcome
}

/// Parses newline-delimited JSON: one value per non-empty line.
///
/// # Panics
/// On a line that is not valid JSON, naming the line.
pub fn ndjson(bytes: &[u8]) -> Vec<serde_json::Value> {
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(i, line)| {
            serde_json::from_slice(line).unwrap_or_else(|e| {
                panic!(
                    "NDJSON line {} is not valid JSON ({e}): {}",
                    i + 1,
                    String::from_utf8_lossy(line)
                )
            })
        })
        .collect()
}

/// One sample of a scrape: the metric's name, its labels (in order) and
/// its value.
pub type Sample = (String, Vec<(String, String)>, f64);

/// One scrape of a tool's `/metrics` (`--metrics-addr`): every sample with
/// its labels, parsed from the text exposition format.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// `(name, labels, value)` per sample line, in order.
    pub samples: Vec<Sample>,
    /// The body as served.
    pub text: String,
}

impl Scrape {
    /// Parses a text exposition (Prometheus or OpenMetrics): `#` lines are
    /// skipped, each other line is `name{k="v",...} value`.
    ///
    /// # Panics
    /// On a line that is not a sample.
    pub fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            samples.push(
                parse_sample(line).unwrap_or_else(|| panic!("not a metric sample: {line:?}")),
            );
        }
        Scrape {
            samples,
            text: text.to_owned(),
        }
    }

    /// The sum of the samples named `name` whose labels include every one
    /// of `labels` (0 when there is none).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|(_, v)| v).sum()
    }

    /// The value of the one sample named `name` with (at least) `labels`,
    /// if there is one.
    ///
    /// # Panics
    /// When several samples match.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<f64> = self.matching(name, labels).map(|(_, v)| v).collect();
        assert!(
            found.len() <= 1,
            "{name} {labels:?} matches {} samples in\n{}",
            found.len(),
            self.text
        );
        found.first().copied()
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = (&'a [(String, String)], f64)> + 'a {
        self.samples
            .iter()
            .filter(move |(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, l, v)| (l.as_slice(), *v))
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let mut key = String::new();
        loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => {
                    rest = &inner[i + 1..];
                    break;
                }
                ',' | ' ' => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            other => value.push(other),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                other => key.push(other),
            }
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some((name, labels, value))
}

/// GETs `http://{addr}/metrics` (plain HTTP/1.1 over a `TcpStream`) and
/// parses it.
///
/// # Panics
/// When the server cannot be reached or does not answer 200 with an
/// exposition.
pub fn scrape(addr: &str) -> Scrape {
    let (status, body) = http_get(addr, "/metrics");
    assert_eq!(status, 200, "GET http://{addr}/metrics: {body}");
    Scrape::parse(&body)
}

/// A GET of `path` from `addr`: the status code and the body.
///
/// # Panics
/// When the server cannot be reached or the answer is not HTTP.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr)
        .unwrap_or_else(|e| panic!("connecting to the metrics server at {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("sending the request");
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .unwrap_or_else(|e| panic!("reading the answer from {addr}: {e}"));
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP answer from {addr}: {answer:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_owned())
}

/// A tool running in the background with piped stdin, stdout and stderr,
/// for tests that talk to it while it works (feed its stdin bit by bit,
/// scrape its `/metrics`, read its records as they come). Killed when
/// dropped.
pub struct RunningTool {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: std::sync::mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    stderr_reader: Option<JoinHandle<()>>,
    /// The stdout lines read so far.
    pub lines: Vec<String>,
}

impl RunningTool {
    /// Starts the molt tool `name` (found with [`bin`]) with `args`.
    ///
    /// # Panics
    /// When it cannot be started.
    pub fn start(name: &str, args: &[String]) -> RunningTool {
        use std::io::BufRead as _;
        let mut child = Command::new(bin(name))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("stdout is piped");
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let err = child.stderr.take().expect("stderr is piped");
        let sink = stderr.clone();
        let stderr_reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut text = sink.lock().unwrap_or_else(|p| p.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
        });
        RunningTool {
            stdin: child.stdin.take(),
            child,
            stdout: rx,
            stderr,
            stderr_reader: Some(stderr_reader),
            lines: Vec::new(),
        }
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits (up to `timeout`) for a line of stderr containing `needle`
    /// and returns it.
    ///
    /// # Panics
    /// On the timeout, showing stderr.
    pub fn wait_for_stderr(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.stderr().lines().find(|l| l.contains(needle)) {
                return line.to_owned();
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "no line with {needle:?} on stderr within {timeout:?}:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address of its metrics server, from the line it prints on
    /// stderr (`... metrics on http://ADDR/metrics`).
    pub fn metrics_addr(&mut self) -> String {
        let line = self.wait_for_stderr("metrics on http://", Duration::from_secs(60));
        let rest = &line[line.find("http://").expect("a URL") + "http://".len()..];
        rest.trim_end()
            .strip_suffix("/metrics")
            .unwrap_or_else(|| panic!("unexpected metrics line {line:?}"))
            .to_owned()
    }

    /// Writes to its stdin.
    ///
    /// # Panics
    /// When stdin was closed or the write fails.
    pub fn feed(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is still open");
        stdin.write_all(bytes).expect("writing to the tool's stdin");
        stdin.flush().expect("flushing the tool's stdin");
    }

    /// Writes to its stdin, returning the error instead of panicking: for a
    /// tool that is meant to stop reading early (it refuses the input).
    pub fn try_feed(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let stdin = self.stdin.as_mut().expect("stdin is still open");
        stdin.write_all(bytes)?;
        stdin.flush()
    }

    /// Closes its stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Reads stdout until `done` holds for the NDJSON records read so far
    /// (up to `timeout`), and returns them.
    ///
    /// # Panics
    /// On the timeout or when stdout ends first, showing stderr.
    pub fn wait_for_records(
        &mut self,
        timeout: Duration,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let records = ndjson(self.lines.join("\n").as_bytes());
            if done(&records) {
                return records;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .stdout
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(line) => self.lines.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => {}
                Err(e) => {
                    let _ = self.child.kill();
                    panic!(
                        "waiting for records ({e:?}); stdout so far:\n{}\nstderr:\n{}",
                        self.lines.join("\n"),
                        self.stderr()
                    );
                }
            }
        }
    }

    /// Closes stdin and waits (up to `timeout`) for the exit code; returns
    /// it with the whole stderr.
    ///
    /// # Panics
    /// On the timeout (the tool is killed).
    pub fn finish(mut self, timeout: Duration) -> (i32, String) {
        self.close_stdin();
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the tool") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "the tool did not exit within {timeout:?}:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        // The reader thread ends at the end of stdout, now that it exited.
        while let Ok(line) = self.stdout.recv_timeout(Duration::from_secs(10)) {
            self.lines.push(line);
        }
        (status_code(status), self.stderr())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RunningTool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL server of a test's own, started with scripts/lib/servers.sh
/// (for tests that stop it, restart it, or need TLS or password
/// authentication), and stopped when dropped.
pub struct OwnPgServer {
    servers_dir: PathBuf,
    name: String,
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub url: String,
}

impl OwnPgServer {
    /// Starts a server; `extra_conf` is appended to postgresql.conf and
    /// `hba`, when given, replaces pg_hba.conf.
    pub fn start(name: &str, extra_conf: Option<&str>, hba: Option<&str>) -> OwnPgServer {
        let servers_dir = tempfile::Builder::new()
            .prefix("molt-own-pg")
            .tempdir()
            .expect("temp dir")
            .keep();
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(format!(
            "source '{}' && molt_start_pg {name}",
            Self::script().display()
        ));
        cmd.env("MOLT_SERVERS_DIR", &servers_dir);
        if let Some(conf) = extra_conf {
            let path = servers_dir.join("extra.conf");
            std::fs::write(&path, conf).expect("write extra.conf");
            cmd.env("MOLT_PG_EXTRA_CONF", path);
        }
        if let Some(hba) = hba {
            let path = servers_dir.join("pg_hba.conf");
            std::fs::write(&path, hba).expect("write pg_hba.conf");
            cmd.env("MOLT_PG_HBA", path);
        }
        let out = cmd.output().expect("run bash");
        assert!(
            out.status.success(),
            "starting PostgreSQL {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout)
            .expect("utf-8 URL")
            .trim()
            .to_string();
        OwnPgServer {
            servers_dir,
            name: name.to_string(),
            url,
        }
    }

    fn script() -> PathBuf {
        workspace_dir().join("scripts/lib/servers.sh")
    }

    fn ctl(&self, action: &str) {
        let status = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source '{}' && molt_pg_ctl {} {action}",
                Self::script().display(),
                self.name
            ))
            .env("MOLT_SERVERS_DIR", &self.servers_dir)
            .status()
            .expect("run bash");
        assert!(status.success(), "pg_ctl {action} for {}", self.name);
    }

    /// Stops the server (fast shutdown), keeping its data and port.
    pub fn stop(&self) {
        self.ctl("stop");
    }

    /// Starts it again after [`OwnPgServer::stop`].
    pub fn restart(&self) {
        self.ctl("start");
    }
}

impl Drop for OwnPgServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source '{}' && molt_stop_servers",
                Self::script().display()
            ))
            .env("MOLT_SERVERS_DIR", &self.servers_dir)
            .stderr(Stdio::null())
            .status();
    }
}

/// A MariaDB server of a test's own, started with scripts/lib/servers.sh
/// with extra server options (TLS certificates, `require_secure_transport`),
/// and stopped when dropped.
pub struct OwnMariaDbServer {
    servers_dir: PathBuf,
    /// `mysql://root@127.0.0.1:PORT/test` (root has no password; over TCP
    /// it may also need the options the server was started with).
    pub url: String,
    /// The server's Unix socket, which needs no TLS even when TCP does.
    pub socket: PathBuf,
}

impl OwnMariaDbServer {
    /// Starts a server with `extra_args` (e.g. `--ssl-ca=/path/ca.crt`)
    /// added to the options molt_start_mariadb gives mariadbd. The server
    /// runs as the `mysql` user when we are root: files it must read (keys,
    /// certificates) must be readable by it.
    pub fn start(name: &str, extra_args: &[String]) -> OwnMariaDbServer {
        let servers_dir = tempfile::Builder::new()
            .prefix("molt-own-mariadb")
            .tempdir()
            .expect("temp dir")
            .keep();
        // molt_start_mariadb runs "$MOLT_MYSQLD" with its fixed options; a
        // wrapper in its place appends ours, so the start-up, the readiness
        // check and the stop stay the ones every other test uses.
        let script = format!(
            r#"source '{}' && _molt_locate_server_binaries >&2 || exit 1
wrapper=$MOLT_SERVERS_DIR/mariadbd-with-options
mapfile -t extra < <(printf '%s' "$MOLT_MARIADB_EXTRA_ARGS")
{{ printf '#!/bin/bash\nexec %q "$@"' "$MOLT_MYSQLD"; for a in "${{extra[@]}}"; do printf ' %q' "$a"; done; printf '\n'; }} >"$wrapper"
chmod 755 "$wrapper"
MOLT_MYSQLD=$wrapper molt_start_mariadb {name}"#,
            OwnPgServer::script().display()
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("MOLT_SERVERS_DIR", &servers_dir)
            .env("MOLT_MARIADB_EXTRA_ARGS", extra_args.join("\n"))
            .output()
            .expect("run bash");
        let server = OwnMariaDbServer {
            socket: servers_dir.join(name).join("run/mysqld.sock"),
            servers_dir,
            url: String::from_utf8(out.stdout)
                .expect("utf-8 URL")
                .trim()
                .to_string(),
        };
        assert!(
            out.status.success() && !server.url.is_empty(),
            "starting MariaDB {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server
    }

    /// Runs SQL as root over the server's Unix socket (no TLS needed).
    ///
    /// # Panics
    /// When the client fails.
    pub fn exec(&self, sql: &str) -> String {
        let mut cmd = Command::new(client_binary(&["mariadb", "mysql"]));
        cmd.arg("--no-defaults")
            .arg(format!("--socket={}", self.socket.display()))
            .arg("--user=root")
            .arg("--batch")
            .arg("--skip-column-names");
        run_client(
            cmd,
            Some(sql.as_bytes().to_vec()),
            &format!("mysql client on {}", self.socket.display()),
        )
    }
}

impl Drop for OwnMariaDbServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source '{}' && molt_stop_servers",
                OwnPgServer::script().display()
            ))
            .env("MOLT_SERVERS_DIR", &self.servers_dir)
            .stderr(Stdio::null())
            .status();
    }
}

/// A CockroachDB stand-in of a test's own, with fault flags (`--cut-…`,
/// `--retry-…`; see tests/crdb-standin/README.md), in front of
/// [`pg_plain_target_url`]'s server. Stopped when dropped.
pub struct OwnStandin {
    child: std::process::Child,
    port: u16,
}

impl OwnStandin {
    /// Starts `molt-crdb-standin` (from `MOLT_BIN_DIR`) with `args`.
    ///
    /// # Panics
    /// When it does not start or does not say where it listens.
    pub fn start(args: &[&str]) -> OwnStandin {
        OwnStandin::start_in_front_of(&pg_plain_target_url(), args)
    }

    /// `url` (a database on [`pg_plain_target_url`]'s server) through this
    /// stand-in.
    pub fn url_for(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let user = authority
            .rsplit_once('@')
            .map(|(u, _)| format!("{u}@"))
            .unwrap_or_default();
        format!("{scheme}://{user}127.0.0.1:{}{tail}", self.port)
    }
}

impl Drop for OwnStandin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OwnStandin {
    /// Starts `molt-crdb-standin` (from `MOLT_BIN_DIR`) with `args` in front
    /// of `upstream`, any PostgreSQL server (a test's own target, or a source
    /// with `--passthrough`), instead of [`pg_plain_target_url`]'s.
    ///
    /// # Panics
    /// When it does not start or does not say where it listens.
    pub fn start_in_front_of(upstream: &str, args: &[&str]) -> OwnStandin {
        use std::io::BufRead as _;
        let mut child = Command::new(bin("molt-crdb-standin"))
            .arg("--upstream")
            .arg(upstream)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start molt-crdb-standin");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the stand-in's listening line");
        let port = line
            .trim()
            .strip_prefix("listening on 127.0.0.1:")
            .unwrap_or_else(|| panic!("unexpected first line from the stand-in: {line:?}"))
            .parse()
            .expect("a port");
        OwnStandin { child, port }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_the_path() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("mysql://root@127.0.0.1:3306", "x"),
            "mysql://root@127.0.0.1:3306/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("host=/tmp user=postgres", "x"),
            "host=/tmp user=postgres dbname=x"
        );
    }

    #[test]
    fn unique_db_names_are_unique_and_valid() {
        let a = unique_db_name("Some-Test");
        let b = unique_db_name("Some-Test");
        assert_ne!(a, b);
        assert!(a.starts_with("some_test_"), "{a}");
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        let long = unique_db_name(&"x".repeat(200));
        assert!(long.len() <= 63, "{long}");
        assert!(unique_db_name("1abc").starts_with("t_1abc"));
    }

    #[test]
    fn redact_hides_passwords() {
        assert_eq!(
            redact("mysql://root:secret@h:1/db"),
            "mysql://root:***@h:1/db"
        );
        assert_eq!(redact("mysql://root@h:1/db"), "mysql://root@h:1/db");
        assert_eq!(redact("--flag"), "--flag");
    }

    #[test]
    fn mysql_url_parts() {
        let p = MysqlUrl::parse("mysql://us%40er:p%3Ass@127.0.0.1:3307/shop?x=1");
        assert_eq!(p.user, "us@er");
        assert_eq!(p.password.as_deref(), Some("p:ss"));
        assert_eq!(p.host, "127.0.0.1");
        assert_eq!(p.port, 3307);
        assert_eq!(p.database.as_deref(), Some("shop"));
        let q = MysqlUrl::parse("mysql://root@localhost");
        assert_eq!((q.port, q.database), (3306, None));
    }

    #[test]
    fn ndjson_skips_blank_lines() {
        let v = ndjson(b"{\"a\":1}\n\n[2]\n");
        assert_eq!(v, vec![serde_json::json!({"a": 1}), serde_json::json!([2])]);
    }

    #[test]
    fn run_pipe_connects_commands_and_reports_statuses() {
        let out = run_pipe(
            &[
                ("/bin/cat", vec![]),
                (
                    "/bin/sh",
                    vec!["-c".into(), "tr a-z A-Z; echo oops >&2".into()],
                ),
            ],
            Some(b"hello\n"),
            &[],
        );
        out.assert_success();
        assert_eq!(out.stdout, b"HELLO\n");
        assert_eq!(out.stderrs, vec![String::new(), "oops\n".to_owned()]);

        let failed = run_pipe(
            &[("/bin/sh", vec!["-c".into(), "exit 3".into()])],
            None,
            &[("X", "1")],
        );
        assert_eq!(failed.statuses, vec![3]);
        assert!(!failed.success());
    }
}
