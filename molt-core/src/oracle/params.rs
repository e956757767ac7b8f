//! `oracle://user:password@host:port/service` as the Oracle client wants
//! it: a user, a password and an Easy Connect string (`//host:port/service`).
//! `oracle://user:password@alias` (no port, no service) names a TNS alias.
//! User and password are percent-decoded. Pure, so it is tested without the
//! client library.

use crate::url::ConnUrl;

/// What the Oracle client needs to connect. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectParams {
    pub user: String,
    pub password: String,
    /// Easy Connect string or TNS alias.
    pub connect_string: String,
}

impl std::fmt::Debug for ConnectParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ConnectParams({}@{}, password ***)",
            self.user, self.connect_string
        )
    }
}

/// Splits an Oracle URL. Errors show the URL redacted.
pub fn connect_params(url: &ConnUrl) -> Result<ConnectParams, String> {
    let parsed = url.parsed()?;
    if parsed.scheme() != "oracle" {
        return Err(format!("{url}: not an oracle:// URL"));
    }
    let decode = |s: &str| {
        percent_decode(s)
            .ok_or_else(|| format!("{url}: user or password is not valid percent-encoded UTF-8"))
    };
    let user = decode(parsed.username())?;
    let password = decode(parsed.password().unwrap_or(""))?;
    if user.is_empty() {
        return Err(format!(
            "{url}: the URL names no user (oracle://USER:PASSWORD@host:port/service)"
        ));
    }
    let host = parsed.host_str().unwrap_or("");
    if host.is_empty() {
        return Err(format!(
            "{url}: the URL names no host (oracle://user:password@HOST:port/service)"
        ));
    }
    let service = parsed.path().trim_start_matches('/');
    let connect_string = match (parsed.port(), service.is_empty()) {
        (None, true) => host.to_string(),
        (Some(port), _) => format!("//{host}:{port}/{service}"),
        (None, false) => format!("//{host}/{service}"),
    };
    Ok(ConnectParams {
        user,
        password,
        connect_string,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_easy_connect_and_alias() {
        let p = connect_params(
            &ConnUrl::parse("oracle://scott:ti%40ger@db.example:1521/ORCLPDB1").unwrap(),
        )
        .unwrap();
        assert_eq!((p.user.as_str(), p.password.as_str()), ("scott", "ti@ger"));
        assert_eq!(p.connect_string, "//db.example:1521/ORCLPDB1");
        assert!(!format!("{p:?}").contains("ti@ger"));
        let alias = connect_params(&ConnUrl::parse("oracle://app:pw@PRODDB").unwrap()).unwrap();
        assert_eq!(alias.connect_string, "PRODDB");
        let err = connect_params(&ConnUrl::parse("oracle://:secret@h:1/S").unwrap()).unwrap_err();
        assert!(
            !err.contains("secret") && err.contains("names no user"),
            "{err}"
        );
    }
}
