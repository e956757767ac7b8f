//! Connection URLs that cannot leak their password.
//!
//! A [`ConnUrl`] prints redacted through both `Display` and `Debug`; the only
//! way to get the secret back is [`ConnUrl::expose`], which is called at the
//! one place that hands it to a driver. [`redact_text`] is the last line of
//! defence: every error message passes through it before it is printed.

use std::fmt;

/// The database engine a URL points at, from its scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// PostgreSQL, and CockroachDB, which speaks its protocol.
    Postgres,
    /// MySQL and MariaDB.
    Mysql,
    /// Oracle Database (cargo feature `oracle`).
    Oracle,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
            Engine::Oracle => "oracle",
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A database connection URL whose password never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnUrl {
    raw: String,
    engine: Engine,
}

/// Why a URL was refused. The message shows the URL redacted.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("{0}: unknown URL scheme (expected postgres://, postgresql://, cockroachdb://, mysql://, mariadb:// or oracle://)")]
    UnknownScheme(String),
    #[error("{what}: {source}")]
    Resolve {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("environment variable {0} (named by env:{0}) is not set")]
    MissingEnv(String),
    #[error("no {0} URL given")]
    Missing(String),
}

impl ConnUrl {
    /// Parses a URL, detecting the engine from its scheme.
    pub fn parse(raw: &str) -> Result<ConnUrl, UrlError> {
        let raw = raw.trim().to_string();
        let scheme = raw.split("://").next().unwrap_or("").to_ascii_lowercase();
        let engine = match scheme.as_str() {
            "postgres" | "postgresql" | "cockroachdb" | "cockroach" => Engine::Postgres,
            "mysql" | "mariadb" => Engine::Mysql,
            "oracle" => Engine::Oracle,
            _ if raw.contains("://") => return Err(UrlError::UnknownScheme(redact_url(&raw))),
            _ => return Err(UrlError::UnknownScheme("(not a URL)".into())),
        };
        Ok(ConnUrl { raw, engine })
    }

    /// Resolves a URL argument that may be indirect: `env:VAR` reads the
    /// variable, `file:PATH` reads the first line of a file (a mounted
    /// Kubernetes Secret, say). Anything else is the URL itself.
    pub fn resolve(arg: &str) -> Result<ConnUrl, UrlError> {
        if let Some(var) = arg.strip_prefix("env:") {
            let value = std::env::var(var).map_err(|_| UrlError::MissingEnv(var.to_string()))?;
            return ConnUrl::parse(&value);
        }
        if let Some(path) = arg.strip_prefix("file:") {
            let text = std::fs::read_to_string(path).map_err(|source| UrlError::Resolve {
                what: format!("reading URL file {path}"),
                source,
            })?;
            return ConnUrl::parse(text.lines().next().unwrap_or(""));
        }
        let url = ConnUrl::parse(arg)?;
        url.warn_if_on_command_line(arg);
        Ok(url)
    }

    /// A password typed on the command line is visible to every local user
    /// in `ps` and in shell history; say so once, without showing it.
    fn warn_if_on_command_line(&self, arg: &str) {
        static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let has_password = url::Url::parse(&self.raw).is_ok_and(|u| u.password().is_some());
        if has_password
            && std::env::args().skip(1).any(|a| a.contains(arg))
            && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            crate::warn!(
                "{} has a password on the command line, where `ps` shows it to every local user: \
                 pass it in MOLT_SOURCE/MOLT_TARGET or as file:PATH instead",
                self.redacted()
            );
        }
    }

    /// The engine this URL points at.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The URL with its secret: hand it to a driver, never to a log.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// The URL with the password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url(&self.raw)
    }

    /// Parsed form (password included), for drivers that want components.
    pub fn parsed(&self) -> Result<url::Url, String> {
        url::Url::parse(&self.raw).map_err(|e| format!("{}: {e}", self.redacted()))
    }
}

impl fmt::Display for ConnUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for ConnUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnUrl({})", self.redacted())
    }
}

/// Replaces the password of one URL, and any `password=` query parameter,
/// with `***`.
pub fn redact_url(raw: &str) -> String {
    redact_text(raw)
}

/// Redacts every `scheme://user:password@` and `password=value` found in a
/// free text. Error messages from drivers sometimes echo their input, so
/// everything printed goes through here.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace; the
        // userinfo is what precedes its last '@'.
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    redact_password_params(&out)
}

fn redact_password_params(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    if !lower.contains("password=") && !lower.contains("pwd=") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < text.len() {
        let rest = &lower[i..];
        let key_len = if rest.starts_with("password=") {
            9
        } else if rest.starts_with("pwd=") && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            4
        } else {
            0
        };
        if key_len > 0 {
            out.push_str(&text[i..i + key_len]);
            out.push_str("***");
            i += key_len;
            while i < text.len()
                && !matches!(bytes[i], b'&' | b' ' | b'\t' | b'\n' | b';' | b'"' | b'\'')
            {
                i += 1;
            }
        } else {
            let ch = text[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password_in_url() {
        assert_eq!(
            redact_url("postgres://alice:s3cr%40t@db:5432/app?sslmode=require"),
            "postgres://alice:***@db:5432/app?sslmode=require"
        );
        assert_eq!(
            redact_url("mysql://root@127.0.0.1:3306/test"),
            "mysql://root@127.0.0.1:3306/test"
        );
    }

    #[test]
    fn redacts_password_with_at_sign_and_params() {
        let text = "failed to connect to postgres://bob:p@ss@h/db?password=hunter2&x=1 now";
        let red = redact_text(text);
        assert!(!red.contains("p@ss"), "{red}");
        assert!(!red.contains("hunter2"), "{red}");
        assert!(red.contains("bob:***@h/db"), "{red}");
    }

    #[test]
    fn display_and_debug_never_show_password() {
        let url = ConnUrl::parse("postgresql://u:topsecret@localhost/db").unwrap();
        assert!(!format!("{url}").contains("topsecret"));
        assert!(!format!("{url:?}").contains("topsecret"));
        assert_eq!(url.engine(), Engine::Postgres);
        assert!(url.expose().contains("topsecret"));
    }

    #[test]
    fn unknown_scheme_is_redacted_in_error() {
        let err = ConnUrl::parse("ftp://u:topsecret@h/")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("topsecret"), "{err}");
    }
}
