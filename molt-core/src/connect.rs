//! Opening connections, with TLS, the same way in every tool.
//!
//! URLs carry libpq's TLS parameters, for PostgreSQL-wire servers
//! (PostgreSQL sources, CockroachDB targets) and, with the same names, for
//! MySQL: `sslmode=disable|prefer|require|verify-ca|verify-full`,
//! `sslrootcert=FILE` (the CA that signed the server's certificate),
//! `sslcert=FILE` and `sslkey=FILE` (a client certificate, as CockroachDB
//! secure clusters use). The modes mean what they mean in libpq:
//!
//! | mode | encrypted | server certificate checked | host name checked |
//! |---|---|---|---|
//! | `disable` | no | – | – |
//! | `prefer` (default) | if the server offers it | no | no |
//! | `require` | yes | no (unless `sslrootcert` is given: then as `verify-ca`) | no |
//! | `verify-ca` | yes | against `sslrootcert` | no |
//! | `verify-full` | yes | against `sslrootcert` | yes |
//!
//! The drivers understand only part of this (tokio-postgres knows `disable`,
//! `prefer`, `require`, and verifies nothing by itself; mysql_async has its
//! own parameter names), so the parameters are taken out of the URL here and
//! turned into a rustls configuration.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::url::{redact_text, ConnUrl};

/// How much TLS a connection insists on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The TLS parameters taken out of a URL.
#[derive(Clone, Debug)]
pub struct TlsParams {
    pub mode: SslMode,
    pub root_cert: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// A connection that could not be opened. The message names the redacted
/// URL and never the password.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConnectError {
    message: String,
    /// The driver's error, when the server or the network refused: callers
    /// that retry transient failures inspect it.
    pub driver: Option<tokio_postgres::Error>,
}

impl ConnectError {
    fn new(url: &ConnUrl, what: impl std::fmt::Display) -> Self {
        ConnectError {
            message: redact_text(&format!("connecting to {url}: {what}")),
            driver: None,
        }
    }
}

/// Splits the TLS parameters off a URL: the URL the driver gets, and the
/// parameters.
pub fn split_tls_params(url: &ConnUrl) -> Result<(String, TlsParams), ConnectError> {
    let raw = url.expose();
    let mut params = TlsParams {
        mode: SslMode::Prefer,
        root_cert: None,
        client_cert: None,
        client_key: None,
    };
    // CockroachDB's own scheme names are not known to the drivers.
    let raw = match raw.split_once("://") {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("cockroachdb")
                || scheme.eq_ignore_ascii_case("cockroach") =>
        {
            format!("postgresql://{rest}")
        }
        _ => raw.to_string(),
    };
    let Some((base, query)) = raw.split_once('?') else {
        return Ok((raw, params));
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = percent_decode(key, value).map_err(|m| ConnectError::new(url, m))?;
        match key {
            "sslmode" | "ssl-mode" => {
                params.mode = match decoded.to_ascii_lowercase().replace('_', "-").as_str() {
                    "disable" | "disabled" => SslMode::Disable,
                    "allow" | "prefer" | "preferred" => SslMode::Prefer,
                    "require" | "required" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" | "verify-identity" => SslMode::VerifyFull,
                    other => {
                        return Err(ConnectError::new(
                            url,
                            format!("unknown sslmode {other:?} (use disable, prefer, require, verify-ca or verify-full)"),
                        ))
                    }
                }
            }
            "sslrootcert" | "ssl-ca" => params.root_cert = Some(PathBuf::from(decoded)),
            "sslcert" | "ssl-cert" => params.client_cert = Some(PathBuf::from(decoded)),
            "sslkey" | "ssl-key" => params.client_key = Some(PathBuf::from(decoded)),
            _ => kept.push(pair),
        }
    }
    if params.mode == SslMode::Require && params.root_cert.is_some() {
        // libpq: "require" with a root certificate behaves like verify-ca.
        params.mode = SslMode::VerifyCa;
    }
    let driver_url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((driver_url, params))
}

/// A URL parameter's value, percent-decoded; its key names it in the error.
fn percent_decode(key: &str, text: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|v| v.into_owned())
        .map_err(|_| format!("URL parameter {key}: its percent-escapes do not decode to UTF-8"))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls configuration for the parameters.
pub fn rustls_config(
    params: &TlsParams,
    url: &ConnUrl,
) -> Result<rustls::ClientConfig, ConnectError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::new(url, e))?;
    let builder = match params.mode {
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let path = params
                .root_cert
                .clone()
                .or_else(default_root_cert)
                .ok_or_else(|| {
                    ConnectError::new(
                        url,
                        "sslmode verify-ca/verify-full needs sslrootcert=FILE (the CA certificate)",
                    )
                })?;
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(&path).map_err(|e| {
                ConnectError::new(url, format!("reading sslrootcert {}: {e}", path.display()))
            })?;
            for cert in certs {
                let cert = cert.map_err(|e| {
                    ConnectError::new(url, format!("sslrootcert {}: {e}", path.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    ConnectError::new(url, format!("sslrootcert {}: {e}", path.display()))
                })?;
            }
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .map_err(|e| ConnectError::new(url, e))?;
            if params.mode == SslMode::VerifyFull {
                builder.with_webpki_verifier(verifier)
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
            }
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider()))),
    };
    match (&params.client_cert, &params.client_key) {
        (Some(cert_path), Some(key_path)) => {
            let certs: Result<Vec<CertificateDer<'static>>, _> =
                CertificateDer::pem_file_iter(cert_path)
                    .map_err(|e| {
                        ConnectError::new(
                            url,
                            format!("reading sslcert {}: {e}", cert_path.display()),
                        )
                    })?
                    .collect();
            let certs = certs.map_err(|e| {
                ConnectError::new(url, format!("sslcert {}: {e}", cert_path.display()))
            })?;
            let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
                ConnectError::new(url, format!("reading sslkey {}: {e}", key_path.display()))
            })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| ConnectError::new(url, e))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(ConnectError::new(
            url,
            "sslcert and sslkey must be given together",
        )),
    }
}

fn default_root_cert() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let path = PathBuf::from(home).join(".postgresql/root.crt");
    path.exists().then_some(path)
}

/// Checks the certificate chain against the CA but not the host name
/// (`verify-ca`).
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Ok(ok) => Ok(ok),
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Encryption without authentication of the server (`prefer`, `require`),
/// as libpq does. Handshake signatures are still checked.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The tokio-postgres configuration of a PostgreSQL-wire URL, and its TLS
/// parameters: everything [`postgres`] decides before it touches the
/// network. Pure, so it is fuzzed and property-tested on its own.
pub fn postgres_config(
    url: &ConnUrl,
    application_name: &str,
) -> Result<(tokio_postgres::Config, TlsParams), ConnectError> {
    let (driver_url, params) = split_tls_params(url)?;
    let mut config: tokio_postgres::Config =
        driver_url.parse().map_err(|e| ConnectError::new(url, e))?;
    if config.get_application_name().is_none() {
        config.application_name(application_name);
    }
    Ok((config, params))
}

/// Opens a connection to a PostgreSQL-wire server (PostgreSQL or
/// CockroachDB) and drives it on the current tokio runtime. Errors on the
/// connection after it is open are reported on stderr, redacted.
pub async fn postgres(
    url: &ConnUrl,
    application_name: &str,
) -> Result<tokio_postgres::Client, ConnectError> {
    postgres_with_task(url, application_name)
        .await
        .map(|(client, _task)| client)
}

/// As [`postgres`], also returning the task that drives the connection, for
/// callers that close it by aborting the task (a connection that must not
/// outlive its owner).
pub async fn postgres_with_task(
    url: &ConnUrl,
    application_name: &str,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), ConnectError> {
    let (mut config, params) = postgres_config(url, application_name)?;
    let describe = |e: tokio_postgres::Error| -> ConnectError {
        let mut error = match e.as_db_error() {
            Some(db) => ConnectError::new(
                url,
                format!("{} (SQLSTATE {})", db.message(), db.code().code()),
            ),
            None => {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    text.push_str(": ");
                    text.push_str(&cause.to_string());
                    source = cause.source();
                }
                ConnectError::new(url, text)
            }
        };
        error.driver = Some(e);
        error
    };
    let label = url.redacted();
    if params.mode == SslMode::Disable {
        config.ssl_mode(tokio_postgres::config::SslMode::Disable);
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(describe)?;
        return Ok((client, spawn_connection(connection, label)));
    }
    config.ssl_mode(match params.mode {
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(rustls_config(&params, url)?);
    let (client, connection) = config.connect(tls).await.map_err(describe)?;
    Ok((client, spawn_connection(connection, label)))
}

fn spawn_connection<F>(connection: F, label: String) -> tokio::task::JoinHandle<()>
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        // The error also surfaces on the client's next call, where the
        // caller reports it with context; this line says which server.
        if let Err(e) = connection.await {
            if !e.is_closed() {
                crate::info!(
                    "connection to {label} ended: {}",
                    redact_text(&e.to_string())
                );
            }
        }
    })
}

/// mysql_async options for a MySQL URL, with TLS from the same parameters.
pub fn mysql_opts(url: &ConnUrl) -> Result<mysql_async::Opts, ConnectError> {
    let (driver_url, params) = split_tls_params(url)?;
    let driver_url = driver_url.replacen("mariadb://", "mysql://", 1);
    let opts = mysql_async::Opts::from_url(&driver_url).map_err(|e| ConnectError::new(url, e))?;
    let ssl = match params.mode {
        SslMode::Disable | SslMode::Prefer => None,
        mode => {
            let mut ssl = mysql_async::SslOpts::default();
            if let Some(ca) = &params.root_cert {
                // As libpq: a CA file given is the only trust anchor, never
                // the public web roots as well.
                ssl = ssl
                    .with_root_certs(vec![ca.clone().into()])
                    .with_disable_built_in_roots(true);
            }
            match mode {
                SslMode::Require => ssl = ssl.with_danger_accept_invalid_certs(true),
                SslMode::VerifyCa => ssl = ssl.with_danger_skip_domain_validation(true),
                _ => {}
            }
            if let (Some(cert), Some(key)) = (&params.client_cert, &params.client_key) {
                ssl = ssl.with_client_identity(Some(mysql_async::ClientIdentity::new(
                    cert.clone().into(),
                    key.clone().into(),
                )));
            }
            Some(ssl)
        }
    };
    Ok(mysql_async::OptsBuilder::from_opts(opts)
        .ssl_opts(ssl)
        .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_escapes_are_an_error_naming_the_parameter_not_a_panic() {
        for raw in [
            "postgresql://u:secret@h/db?application_name=%a\u{e9}",
            "postgresql://u:secret@h/db?sslmode=%",
            "postgresql://u:secret@h/db?sslrootcert=%ff%fe",
            "mysql://u:secret@h/db?ssl-mode=%e9",
        ] {
            let Ok(url) = ConnUrl::parse(raw) else {
                continue;
            };
            if let Err(e) = split_tls_params(&url) {
                let text = e.to_string();
                assert!(!text.contains("secret"), "{text}");
                assert!(
                    text.contains("URL parameter") || text.contains("sslmode"),
                    "{text}"
                );
            }
        }
        let url = ConnUrl::parse("postgresql://u:secret@h/db?sslrootcert=%ff%fe").unwrap();
        let text = split_tls_params(&url).unwrap_err().to_string();
        assert!(text.contains("URL parameter sslrootcert"), "{text}");
    }

    #[test]
    fn tls_parameters_are_taken_out_of_the_url() {
        let url = ConnUrl::parse(
            "postgresql://root:pw@crdb:26257/shop?sslmode=verify-full&sslrootcert=%2Fcerts%2Fca.crt&application_name=x&sslcert=/c&sslkey=/k",
        )
        .unwrap();
        let (driver, params) = split_tls_params(&url).unwrap();
        assert_eq!(
            driver,
            "postgresql://root:pw@crdb:26257/shop?application_name=x"
        );
        assert_eq!(params.mode, SslMode::VerifyFull);
        assert_eq!(params.root_cert.unwrap(), PathBuf::from("/certs/ca.crt"));
        assert_eq!(params.client_key.unwrap(), PathBuf::from("/k"));
    }

    #[test]
    fn require_with_a_root_cert_verifies_the_chain() {
        let url = ConnUrl::parse("postgres://h/db?sslmode=require&sslrootcert=/ca").unwrap();
        assert_eq!(split_tls_params(&url).unwrap().1.mode, SslMode::VerifyCa);
    }

    #[test]
    fn unknown_mode_is_an_error_without_the_password() {
        let url = ConnUrl::parse("postgres://u:secret@h/db?sslmode=sometimes").unwrap();
        let err = split_tls_params(&url).unwrap_err().to_string();
        assert!(err.contains("unknown sslmode \"sometimes\""), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn verify_full_without_a_ca_file_says_what_is_missing() {
        let url = ConnUrl::parse("postgres://h/db?sslmode=verify-full").unwrap();
        let (_, params) = split_tls_params(&url).unwrap();
        if default_root_cert().is_none() {
            let err = rustls_config(&params, &url).unwrap_err().to_string();
            assert!(err.contains("needs sslrootcert"), "{err}");
        }
    }
}
