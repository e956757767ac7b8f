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
///
/// The whole text is the URL, so this redacts whatever any of the drivers
/// would take for the password, which [`redact_text`] cannot know in a free
/// text: tokio-postgres's userinfo runs to the *first* `@` after `://`,
/// wherever it is (`postgres://u:pa/ss@h` has the password `pa/ss`), the
/// `url` crate's (mysql_async's) to the last `@` before the first `/`, `?`
/// or `#`, and neither stops at a blank. A query parameter's value runs to
/// the next `&`, and its key is percent-decoded (`pass%77ord=` is
/// `password=` to tokio-postgres).
pub fn redact_url(raw: &str) -> String {
    let Some(pos) = raw.find("://") else {
        return redact_text(raw);
    };
    let (head, rest) = raw.split_at(pos + 3);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let userinfo_end = rest.find('@').max(rest[..authority_end].rfind('@'));
    let mut out = String::with_capacity(raw.len());
    out.push_str(head);
    let after_userinfo = match userinfo_end {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            at
        }
        None => 0,
    };
    let rest = &rest[after_userinfo..];
    match rest.split_once('?') {
        Some((before, query)) => {
            out.push_str(before);
            out.push('?');
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    out.push('&');
                }
                let key = pair.split_once('=').map(|(key, _)| key);
                let decoded =
                    key.map(|k| percent_encoding::percent_decode_str(k).decode_utf8_lossy());
                match (key, decoded) {
                    (Some(key), Some(decoded))
                        if decoded.eq_ignore_ascii_case("password")
                            || decoded.eq_ignore_ascii_case("pwd") =>
                    {
                        out.push_str(key);
                        out.push_str("=***");
                    }
                    _ => out.push_str(pair),
                }
            }
        }
        None => out.push_str(rest),
    }
    // And any other URL or `password=` in it, as in a free text.
    redact_text(&out)
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
    fn redacts_what_the_drivers_take_for_the_password() {
        // Found by fuzzing: tokio-postgres's userinfo runs to the first '@'
        // even past a '/', '?' or blank, which the free-text rule stops at.
        for (raw, shown) in [
            ("postgres://u:pa/ss@h/db", "postgres://u:***@h/db"),
            ("postgres://u:my pass@h/db", "postgres://u:***@h/db"),
            ("postgres://u:a?b#c@h", "postgres://u:***@h"),
            (
                "postgres://u@h/db?pass%77ord=x y&a=1",
                "postgres://u@h/db?pass%77ord=***&a=1",
            ),
            (
                "postgres://h/db?password=a b",
                "postgres://h/db?password=***",
            ),
            ("mysql://u@h:p@x/db", "mysql://u@h:***@x/db"),
            ("postgres://h:5432/db", "postgres://h:5432/db"),
        ] {
            assert_eq!(redact_url(raw), shown, "{raw}");
            let url = ConnUrl::parse(raw).unwrap();
            assert_eq!(url.to_string(), shown);
        }
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
