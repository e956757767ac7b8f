//! A target session that speaks only the simple query protocol, for COPY.
//!
//! CockroachDB refuses `COPY ... FROM STDIN` sent over the extended query
//! protocol (Parse/Bind/Execute): `handleParse` in cockroach's
//! `pkg/sql/pgwire/conn.go` answers "CopyFrom not supported in extended
//! protocol mode" (cockroachdb/cockroach#41120). tokio-postgres starts every
//! COPY that way, so molt-load could not write a row into a real cluster.
//! psycopg, pgx and npgsql all start COPY with a simple `Query` message;
//! this module does the same on top of `postgres-protocol`, the
//! rust-postgres project's own message and SCRAM crate.
//!
//! The session is opened from the same URL, with the same TLS configuration
//! ([`crate::connect::rustls_config`]), the same authentication methods
//! (cleartext, MD5, SCRAM-SHA-256 with channel binding when the server offers
//! it over TLS) and the same session settings as [`super::connect`]. It does
//! only what a COPY batch needs: statements whose results are not read
//! (`SELECT 1` to prove a commit, the retry path's TEMP table and
//! `INSERT ... SELECT`), one-row text queries, and COPY FROM STDIN.
//!
//! A COPY the server refuses leaves the session usable: the refusal arrives
//! as an ErrorResponse followed by ReadyForQuery, which are read before the
//! error is returned.

use std::io;
use std::sync::Arc;

use bytes::BytesMut;
use futures_util::FutureExt;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::{backend, frontend};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};

use super::{Flavour, Result, TargetError};
use crate::connect::{rustls_config, split_tls_params, SslMode};
use crate::url::ConnUrl;

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

type Reader = tokio::io::ReadHalf<Box<dyn Stream>>;
type Writer = BufWriter<tokio::io::WriteHalf<Box<dyn Stream>>>;

/// Bytes gathered before a write to the socket. Several times the size of
/// a COPY chunk (about 64 KiB), so that a chunk and its 5-byte message
/// header leave in one system call: with a buffer the size of a chunk, each
/// chunk took two (strace: the header alone, then the chunk).
const WRITE_BUFFER: usize = 256 * 1024;

/// One session on the target over the simple query protocol.
pub struct SimpleSession {
    reader: Reader,
    writer: Writer,
    inbuf: BytesMut,
    out: BytesMut,
    /// Set when the connection failed: it must be reopened.
    broken: bool,
    /// A COPY has been started and not finished.
    copying: bool,
    /// An error the server sent during COPY data, read early.
    copy_error: Option<ServerError>,
    pub flavour: Flavour,
    label: String,
}

/// The fields of an ErrorResponse that molt uses.
#[derive(Clone, Debug, Default)]
pub struct ServerError {
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    pub where_: Option<String>,
}

impl ServerError {
    fn parse(body: &backend::ErrorResponseBody) -> ServerError {
        let mut error = ServerError::default();
        let mut fields = body.fields();
        while let Ok(Some(field)) = fallible_iterator::FallibleIterator::next(&mut fields) {
            let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
            match field.type_() {
                b'C' => error.code = value,
                b'M' => error.message = value,
                b'D' => error.detail = Some(value),
                b'H' => error.hint = Some(value),
                b'W' => error.where_ = Some(value),
                _ => {}
            }
        }
        error
    }

    /// One line: message, SQLSTATE, detail, hint and context, redacted.
    pub fn describe(&self) -> String {
        let mut text = format!("{} (SQLSTATE {})", self.message, self.code);
        if let Some(detail) = &self.detail {
            text.push_str(&format!("; detail: {detail}"));
        }
        if let Some(hint) = &self.hint {
            text.push_str(&format!("; hint: {hint}"));
        }
        if let Some(whr) = &self.where_ {
            text.push_str(&format!("; where: {whr}"));
        }
        crate::url::redact_text(&text)
    }
}

fn server_error(context: impl Into<String>, error: ServerError) -> TargetError {
    TargetError::Server {
        context: context.into(),
        detail: error.describe(),
        error: Box::new(error),
    }
}

fn io_error(context: impl Into<String>, error: &io::Error) -> TargetError {
    TargetError::Lost {
        context: context.into(),
        detail: crate::url::redact_text(&error.to_string()),
    }
}

fn protocol(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

impl SimpleSession {
    /// Opens the session, detects the flavour and applies the same session
    /// settings as [`super::connect`].
    pub async fn connect(url: &ConnUrl, application_name: &str) -> Result<SimpleSession> {
        let label = url.redacted();
        let context = || format!("connecting to target {label} (COPY session)");
        let (driver_url, params) =
            split_tls_params(url).map_err(|e| TargetError::Invalid(e.to_string()))?;
        let config: tokio_postgres::Config = driver_url
            .parse()
            .map_err(|e| TargetError::Invalid(format!("{}: {e}", context())))?;
        let (stream, host) = open_socket(&config)
            .await
            .map_err(|e| io_error(context(), &e))?;
        let (stream, end_point) =
            negotiate_tls(stream, &host, &params, url)
                .await
                .map_err(|e| match e {
                    TlsOutcome::Io(e) => io_error(context(), &e),
                    TlsOutcome::Refused(m) => TargetError::Invalid(format!("{}: {m}", context())),
                })?;
        let (reader, writer) = tokio::io::split(stream);
        let mut session = SimpleSession {
            reader,
            writer: BufWriter::with_capacity(WRITE_BUFFER, writer),
            inbuf: BytesMut::with_capacity(8192),
            out: BytesMut::with_capacity(256),
            broken: false,
            copying: false,
            copy_error: None,
            flavour: Flavour::Postgres,
            label: label.clone(),
        };
        let app = config
            .get_application_name()
            .unwrap_or(application_name)
            .to_string();
        session
            .startup(&config, &app, end_point)
            .await
            .map_err(|e| match e {
                Failure::Io(e) => io_error(context(), &e),
                Failure::Server(e) => server_error(context(), e),
            })?;
        let version = session
            .query_one_text("SELECT version()")
            .await?
            .unwrap_or_default();
        session.flavour = Flavour::detect(&version);
        for (setting, required) in session.flavour.session_settings() {
            match session.execute(setting).await {
                Ok(()) => {}
                Err(e) if !required && !e.is_transient() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(session)
    }

    /// True when the connection failed and must be reopened.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    async fn startup(
        &mut self,
        config: &tokio_postgres::Config,
        application_name: &str,
        end_point: Option<Vec<u8>>,
    ) -> std::result::Result<(), Failure> {
        let user = config
            .get_user()
            .map(str::to_string)
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".to_string());
        let mut params: Vec<(&str, &str)> = vec![("user", &user), ("client_encoding", "UTF8")];
        if let Some(db) = config.get_dbname() {
            params.push(("database", db));
        }
        params.push(("application_name", application_name));
        if let Some(options) = config.get_options() {
            params.push(("options", options));
        }
        self.out.clear();
        frontend::startup_message(params.iter().copied(), &mut self.out)?;
        self.flush_out().await?;
        let password = config.get_password();
        let mut scram: Option<sasl::ScramSha256> = None;
        loop {
            match self.next_message().await? {
                backend::Message::AuthenticationOk => {}
                backend::Message::AuthenticationCleartextPassword => {
                    let password = password.ok_or_else(missing_password)?;
                    frontend::password_message(password, &mut self.out)?;
                    self.flush_out().await?;
                }
                backend::Message::AuthenticationMd5Password(body) => {
                    let password = password.ok_or_else(missing_password)?;
                    let hash = md5_hash(user.as_bytes(), password, body.salt());
                    frontend::password_message(hash.as_bytes(), &mut self.out)?;
                    self.flush_out().await?;
                }
                backend::Message::AuthenticationSasl(body) => {
                    let password = password.ok_or_else(missing_password)?;
                    let mut plain = false;
                    let mut plus = false;
                    let mut mechanisms = body.mechanisms();
                    while let Some(m) = fallible_iterator::FallibleIterator::next(&mut mechanisms)?
                    {
                        match m {
                            sasl::SCRAM_SHA_256 => plain = true,
                            sasl::SCRAM_SHA_256_PLUS => plus = true,
                            _ => {}
                        }
                    }
                    // As tokio-postgres chooses: bind the channel when both
                    // sides can; say "supported but not offered" when only
                    // we can, so a stripped PLUS is detected by the server.
                    let (binding, mechanism) = match (&end_point, plus, plain) {
                        (Some(e), true, _) => (
                            sasl::ChannelBinding::tls_server_end_point(e.clone()),
                            sasl::SCRAM_SHA_256_PLUS,
                        ),
                        (None, true, _) => {
                            (sasl::ChannelBinding::unsupported(), sasl::SCRAM_SHA_256)
                        }
                        (Some(_), false, true) => {
                            (sasl::ChannelBinding::unrequested(), sasl::SCRAM_SHA_256)
                        }
                        (None, false, true) => {
                            (sasl::ChannelBinding::unsupported(), sasl::SCRAM_SHA_256)
                        }
                        (_, false, false) => {
                            return Err(Failure::Io(protocol(
                                "the server offers no SASL mechanism molt supports",
                            )))
                        }
                    };
                    let state = sasl::ScramSha256::new(password, binding);
                    frontend::sasl_initial_response(mechanism, state.message(), &mut self.out)?;
                    self.flush_out().await?;
                    scram = Some(state);
                }
                backend::Message::AuthenticationSaslContinue(body) => {
                    let state = scram
                        .as_mut()
                        .ok_or_else(|| protocol("SASL continue before SASL start"))?;
                    state.update(body.data())?;
                    frontend::sasl_response(state.message(), &mut self.out)?;
                    self.flush_out().await?;
                }
                backend::Message::AuthenticationSaslFinal(body) => {
                    let state = scram
                        .as_mut()
                        .ok_or_else(|| protocol("SASL final before SASL start"))?;
                    state.finish(body.data())?;
                }
                backend::Message::ErrorResponse(body) => {
                    return Err(Failure::Server(ServerError::parse(&body)))
                }
                backend::Message::ReadyForQuery(_) => return Ok(()),
                backend::Message::ParameterStatus(_)
                | backend::Message::BackendKeyData(_)
                | backend::Message::NoticeResponse(_) => {}
                _ => {
                    return Err(Failure::Io(protocol(
                        "unexpected message while authenticating",
                    )))
                }
            }
        }
    }

    /// Runs statements (a simple `Query`, so several may be given) and
    /// discards their results. The first error is returned after the
    /// server is ready again.
    pub async fn execute(&mut self, sql: &str) -> Result<()> {
        self.query(sql).await.map(|_| ())
    }

    /// The first column of the first row a query returns, as text.
    pub async fn query_one_text(&mut self, sql: &str) -> Result<Option<String>> {
        self.query(sql).await
    }

    async fn query(&mut self, sql: &str) -> Result<Option<String>> {
        self.ensure_idle()?;
        let label = self.label.clone();
        let context = || format!("running {} on {label}", first_words(sql));
        let outcome = async {
            self.out.clear();
            frontend::query(sql, &mut self.out)?;
            self.flush_out().await?;
            let mut first: Option<String> = None;
            let mut error: Option<ServerError> = None;
            loop {
                match self.next_message().await? {
                    backend::Message::DataRow(row) if first.is_none() => {
                        let mut ranges = row.ranges();
                        if let Some(Some(range)) =
                            fallible_iterator::FallibleIterator::next(&mut ranges)?
                        {
                            first =
                                Some(String::from_utf8_lossy(&row.buffer()[range]).into_owned());
                        }
                    }
                    backend::Message::ErrorResponse(body) => {
                        error.get_or_insert(ServerError::parse(&body));
                    }
                    backend::Message::CopyInResponse(_) => {
                        // A statement that starts a COPY must go through
                        // copy_start; refuse it here.
                        self.out.clear();
                        frontend::copy_fail("COPY is not expected here", &mut self.out)?;
                        self.flush_out().await?;
                    }
                    backend::Message::ReadyForQuery(_) => {
                        return Ok(match error {
                            Some(e) => Err(e),
                            None => Ok(first),
                        })
                    }
                    _ => {}
                }
            }
        }
        .await;
        self.settle(outcome, context)
    }

    /// Starts `COPY ... FROM STDIN`. After an error the session is ready
    /// for the next statement.
    pub async fn copy_start(&mut self, sql: &str) -> Result<()> {
        self.ensure_idle()?;
        let label = self.label.clone();
        let context = || format!("starting {} on {label}", first_words(sql));
        let outcome = async {
            self.out.clear();
            frontend::query(sql, &mut self.out)?;
            self.flush_out().await?;
            let mut error: Option<ServerError> = None;
            loop {
                match self.next_message().await? {
                    backend::Message::CopyInResponse(_) => return Ok(Ok(())),
                    backend::Message::ErrorResponse(body) => {
                        error.get_or_insert(ServerError::parse(&body));
                    }
                    backend::Message::ReadyForQuery(_) => {
                        return Ok(Err(error.unwrap_or_else(|| ServerError {
                            code: "XX000".into(),
                            message: "the server did not start the COPY".into(),
                            ..ServerError::default()
                        })))
                    }
                    _ => {}
                }
            }
        }
        .await;
        self.settle(outcome, context)?;
        self.copying = true;
        self.copy_error = None;
        Ok(())
    }

    /// Sends COPY data. An error the server has already sent (a refused
    /// value) is noticed here without waiting for the end of the batch.
    pub async fn copy_send(&mut self, data: &[u8]) -> Result<()> {
        if !self.copying {
            return Err(TargetError::Invalid("COPY data sent outside a COPY".into()));
        }
        if self.copy_error.is_none() {
            self.poll_copy_error();
        }
        if let Some(error) = self.copy_error.clone() {
            return Err(server_error(
                format!("copying into the target ({})", self.label),
                error,
            ));
        }
        let len = i32::try_from(data.len() + 4).map_err(|_| {
            TargetError::Invalid(format!("a COPY chunk of {} bytes is too large", data.len()))
        })?;
        let mut header = [0u8; 5];
        header[0] = b'd';
        header[1..].copy_from_slice(&len.to_be_bytes());
        let written = async {
            self.writer.write_all(&header).await?;
            self.writer.write_all(data).await
        }
        .await;
        written.map_err(|e| {
            self.broken = true;
            io_error(format!("copying into the target ({})", self.label), &e)
        })
    }

    /// Reads, without waiting, an ErrorResponse the server sent during the
    /// COPY.
    fn poll_copy_error(&mut self) {
        loop {
            if let Ok(Some(backend::Message::ErrorResponse(body))) =
                backend::Message::parse(&mut self.inbuf)
            {
                self.copy_error = Some(ServerError::parse(&body));
                return;
            }
            let mut chunk = [0u8; 4096];
            match self.reader.read(&mut chunk).now_or_never() {
                Some(Ok(0)) | None => return,
                Some(Ok(n)) => self.inbuf.extend_from_slice(&chunk[..n]),
                Some(Err(_)) => return,
            }
        }
    }

    /// Ends the COPY: the server commits it (an implicit transaction) and
    /// reports the rows written.
    pub async fn copy_finish(&mut self) -> Result<u64> {
        self.end_copy(None).await
    }

    /// Abandons the COPY; nothing of it is kept.
    pub async fn copy_abort(&mut self, reason: &str) -> Result<()> {
        self.end_copy(Some(reason)).await.map(|_| ())
    }

    async fn end_copy(&mut self, fail: Option<&str>) -> Result<u64> {
        if !self.copying {
            return Err(TargetError::Invalid("no COPY to finish".into()));
        }
        self.copying = false;
        let label = self.label.clone();
        let context = || format!("committing COPY on {label}");
        let early = self.copy_error.take();
        let outcome = async {
            self.out.clear();
            match fail {
                Some(reason) => frontend::copy_fail(reason, &mut self.out)?,
                None => frontend::copy_done(&mut self.out),
            }
            self.flush_out().await?;
            let mut rows = 0u64;
            let mut error = early;
            loop {
                match self.next_message().await? {
                    backend::Message::CommandComplete(body) => {
                        let tag = body.tag()?;
                        rows = tag
                            .rsplit(' ')
                            .next()
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0);
                    }
                    backend::Message::ErrorResponse(body) => {
                        error.get_or_insert(ServerError::parse(&body));
                    }
                    backend::Message::ReadyForQuery(_) => {
                        return Ok(match error {
                            Some(e) if fail.is_none() => Err(e),
                            _ => Ok(rows),
                        })
                    }
                    _ => {}
                }
            }
        }
        .await;
        self.settle(outcome, context)
    }

    fn ensure_idle(&self) -> Result<()> {
        if self.broken {
            return Err(TargetError::Lost {
                context: format!("using the COPY session on {}", self.label),
                detail: "the connection was lost".into(),
            });
        }
        if self.copying {
            return Err(TargetError::Invalid(
                "a statement was sent during a COPY".into(),
            ));
        }
        Ok(())
    }

    /// Turns the outcome of an exchange into the module's error, marking
    /// the session broken after an I/O failure.
    fn settle<T>(
        &mut self,
        outcome: io::Result<std::result::Result<T, ServerError>>,
        context: impl FnOnce() -> String,
    ) -> Result<T> {
        match outcome {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(server_error(context(), e)),
            Err(e) => {
                self.broken = true;
                Err(io_error(context(), &e))
            }
        }
    }

    async fn flush_out(&mut self) -> io::Result<()> {
        let result = async {
            self.writer.write_all(&self.out).await?;
            self.writer.flush().await
        }
        .await;
        self.out.clear();
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    /// The next message from the server; notices are logged.
    async fn next_message(&mut self) -> io::Result<backend::Message> {
        // Whatever was buffered for the server must reach it first.
        self.writer.flush().await?;
        loop {
            if let Some(message) = backend::Message::parse(&mut self.inbuf)? {
                if let backend::Message::NoticeResponse(body) = &message {
                    let mut fields = body.fields();
                    while let Ok(Some(f)) = fallible_iterator::FallibleIterator::next(&mut fields) {
                        if f.type_() == b'M' {
                            crate::info!(
                                "target notice: {}",
                                String::from_utf8_lossy(f.value_bytes())
                            );
                        }
                    }
                    continue;
                }
                return Ok(message);
            }
            self.inbuf.reserve(8192);
            let n = self.reader.read_buf(&mut self.inbuf).await?;
            if n == 0 {
                self.broken = true;
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ));
            }
        }
    }
}

impl Drop for SimpleSession {
    fn drop(&mut self) {
        // Best effort: tell the server we are leaving.
        let mut buf = BytesMut::new();
        frontend::terminate(&mut buf);
        if let Some(Err(_)) | None = self.writer.write_all(&buf).now_or_never() {}
        let _ = self.writer.flush().now_or_never();
    }
}

enum Failure {
    Io(io::Error),
    Server(ServerError),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::Io(e)
    }
}

fn missing_password() -> Failure {
    Failure::Io(io::Error::new(
        io::ErrorKind::InvalidInput,
        "the server asks for a password and the URL has none",
    ))
}

fn first_words(sql: &str) -> String {
    let words: Vec<&str> = sql.split_whitespace().take(3).collect();
    words.join(" ")
}

/// The first host of the URL that accepts a connection.
async fn open_socket(config: &tokio_postgres::Config) -> io::Result<(Box<dyn Stream>, String)> {
    use tokio_postgres::config::Host;
    let hosts = config.get_hosts();
    let ports = config.get_ports();
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "the URL names no host");
    let defaults = [Host::Tcp("localhost".to_string())];
    let hosts: &[Host] = if hosts.is_empty() { &defaults } else { hosts };
    for (i, host) in hosts.iter().enumerate() {
        let port = ports
            .get(i)
            .or_else(|| ports.first())
            .copied()
            .unwrap_or(5432);
        let attempt = async {
            match host {
                Host::Tcp(name) => {
                    let stream = tokio::net::TcpStream::connect((name.as_str(), port)).await?;
                    stream.set_nodelay(true)?;
                    Ok::<(Box<dyn Stream>, String), io::Error>((Box::new(stream), name.clone()))
                }
                #[cfg(unix)]
                Host::Unix(dir) => {
                    let path = dir.join(format!(".s.PGSQL.{port}"));
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok((Box::new(stream) as Box<dyn Stream>, String::new()))
                }
                #[allow(unreachable_patterns)]
                _ => Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "unsupported host kind",
                )),
            }
        };
        let attempt = match config.get_connect_timeout() {
            Some(limit) => match tokio::time::timeout(*limit, attempt).await {
                Ok(r) => r,
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
            },
            None => attempt.await,
        };
        match attempt {
            Ok(ok) => return Ok(ok),
            Err(e) => last = e,
        }
    }
    Err(last)
}

enum TlsOutcome {
    Io(io::Error),
    Refused(String),
}

/// SSLRequest and the TLS handshake, as `sslmode` asks. Returns the stream
/// and, over TLS, the `tls-server-end-point` channel binding data.
async fn negotiate_tls(
    mut stream: Box<dyn Stream>,
    host: &str,
    params: &crate::connect::TlsParams,
    url: &ConnUrl,
) -> std::result::Result<(Box<dyn Stream>, Option<Vec<u8>>), TlsOutcome> {
    if params.mode == SslMode::Disable || host.is_empty() {
        return Ok((stream, None));
    }
    let mut request = BytesMut::new();
    frontend::ssl_request(&mut request);
    stream.write_all(&request).await.map_err(TlsOutcome::Io)?;
    stream.flush().await.map_err(TlsOutcome::Io)?;
    let mut answer = [0u8; 1];
    stream
        .read_exact(&mut answer)
        .await
        .map_err(TlsOutcome::Io)?;
    if answer[0] != b'S' {
        if params.mode == SslMode::Prefer {
            return Ok((stream, None));
        }
        return Err(TlsOutcome::Refused(
            "the server does not support TLS".into(),
        ));
    }
    let config = rustls_config(params, url).map_err(|e| TlsOutcome::Refused(e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| TlsOutcome::Refused(format!("invalid host name {host:?}: {e}")))?;
    let tls = connector
        .connect(name, stream)
        .await
        .map_err(TlsOutcome::Io)?;
    let end_point = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|cert| tls_server_end_point(cert.as_ref()));
    Ok((Box::new(tls), end_point))
}

/// RFC 5929's `tls-server-end-point`: the server certificate hashed with
/// its signature's hash (SHA-1 and MD5 become SHA-256). None for signature
/// algorithms without one (Ed25519), as in tokio-postgres-rustls.
fn tls_server_end_point(der: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest;
    use x509_cert::der::oid::db::rfc5912::{
        ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_SHA_1, ID_SHA_256, ID_SHA_384, ID_SHA_512,
        SHA_1_WITH_RSA_ENCRYPTION, SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION,
        SHA_512_WITH_RSA_ENCRYPTION,
    };
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    match cert.signature_algorithm.oid {
        ID_SHA_1
        | ID_SHA_256
        | SHA_1_WITH_RSA_ENCRYPTION
        | SHA_256_WITH_RSA_ENCRYPTION
        | ECDSA_WITH_SHA_256 => Some(sha2::Sha256::digest(der).to_vec()),
        ID_SHA_384 | SHA_384_WITH_RSA_ENCRYPTION | ECDSA_WITH_SHA_384 => {
            Some(sha2::Sha384::digest(der).to_vec())
        }
        ID_SHA_512 | SHA_512_WITH_RSA_ENCRYPTION => Some(sha2::Sha512::digest(der).to_vec()),
        _ => None,
    }
}
