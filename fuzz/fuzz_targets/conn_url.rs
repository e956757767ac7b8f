//! Connection URLs: parsing, the TLS parameters, the PostgreSQL, MySQL and
//! Oracle option builders, and redaction. Nothing here reads the
//! environment or a file (`ConnUrl::resolve`'s `env:` and `file:` are left
//! out). Besides "no panic", it checks what redaction is for: the redacted
//! URL, parsed again by each driver's own parser, carries none of the
//! passwords they find in the URL itself (only `***`), and no error message
//! shows one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use molt_core::connect::{mysql_opts, postgres_config, split_tls_params};
use molt_core::url::{redact_text, redact_url};
use molt_core::ConnUrl;

/// What a driver would take as the password of `url`.
fn passwords(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(config) = url.parse::<tokio_postgres::Config>() {
        if let Some(p) = config.get_password() {
            out.push(String::from_utf8_lossy(p).into_owned());
        }
    }
    if let Ok(parsed) = url::Url::parse(url) {
        if let Some(p) = parsed.password() {
            out.push(p.to_string());
        }
    }
    if let Ok(opts) = mysql_async::Opts::from_url(url) {
        if let Some(p) = opts.pass() {
            out.push(p.to_string());
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = redact_text(text);
    let Ok(url) = ConnUrl::parse(text) else {
        return;
    };
    let shown = url.redacted();
    assert_eq!(shown, redact_url(url.expose()));
    assert_eq!(format!("{url}"), shown);
    // Redaction may change how a driver splits a mangled URL (a `pwd=...`
    // it blanks can swallow a `/`), so what the drivers find in the
    // redacted URL is either `***` or none of the original's passwords.
    let original = passwords(url.expose());
    for p in passwords(&shown) {
        assert!(
            p == "***" || p.is_empty() || !original.contains(&p),
            "the redacted URL {shown:?} still has the password {p:?}"
        );
    }
    // Long passwords (short ones may be part of the host name) that the
    // redacted URL does not show must not appear in any error either.
    let secrets: Vec<String> = original
        .into_iter()
        .filter(|p| p.len() >= 8 && !shown.contains(p.as_str()))
        .collect();
    let check = |message: String| {
        for secret in &secrets {
            assert!(
                !message.contains(secret.as_str()),
                "error {message:?} shows the password"
            );
        }
    };
    let _ = url.engine();
    if let Err(e) = url.parsed() {
        check(e);
    }
    if let Err(e) = split_tls_params(&url) {
        check(e.to_string());
    }
    if let Err(e) = postgres_config(&url, "molt-fuzz") {
        check(e.to_string());
    }
    if let Err(e) = mysql_opts(&url) {
        check(e.to_string());
    }
    if let Err(e) = molt_core::oracle::params::connect_params(&url) {
        check(e);
    }
});
