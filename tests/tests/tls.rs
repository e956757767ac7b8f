//! TLS against throwaway PostgreSQL and MariaDB servers that only accept
//! TLS, with a self-signed CA this test creates: `require`, `verify-ca` and
//! `verify-full` connect when they should, a certificate for the wrong host
//! is refused under `verify-full`, a wrong CA is refused, plain TCP is
//! refused by the server, and a client certificate authenticates.

use std::path::Path;
use std::process::Command;

use molt_core::ConnUrl;
use molt_tests::*;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for `server_host`, and a client certificate
/// for the user `postgres`, all in `dir`.
fn make_certificates(dir: &Path, server_host: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=molt test CA",
        ],
    );
    for (name, cn, san) in [
        (
            "server",
            server_host,
            format!("subjectAltName=DNS:{server_host}"),
        ),
        (
            "client",
            "postgres",
            "subjectAltName=DNS:postgres".to_string(),
        ),
    ] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        std::fs::write(dir.join(format!("{name}.ext")), format!("{san}\n")).unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
}

/// A TLS-only server using the certificates in `certs`.
fn start_tls_server(certs: &Path) -> OwnPgServer {
    // The server runs as `postgres` when we are root: it must read the key.
    let _ = Command::new("chown")
        .arg("-R")
        .arg("postgres:")
        .arg(certs)
        .status();
    let _ = Command::new("chmod")
        .arg("600")
        .arg(certs.join("server.key"))
        .status();
    let conf = format!(
        "ssl = on\nssl_cert_file = '{0}/server.crt'\nssl_key_file = '{0}/server.key'\nssl_ca_file = '{0}/ca.crt'\n",
        certs.display()
    );
    // TLS only: plain TCP is rejected, so a passing connection proves TLS.
    let hba = "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n";
    OwnPgServer::start("tls", Some(&conf), Some(hba))
}

async fn connects(url: &str) -> Result<(), String> {
    let url = ConnUrl::parse(url).unwrap();
    let client = molt_core::connect::postgres(&url, "molt-tls-test")
        .await
        .map_err(|e| e.to_string())?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    assert!(row.get::<_, bool>(0), "connection must be encrypted");
    Ok(())
}

#[tokio::test]
async fn sslmodes_against_a_tls_only_server() {
    let certs = tempfile::Builder::new()
        .prefix("molt-certs")
        .tempdir()
        .unwrap();
    // The server's certificate names `localhost`, and we connect to 127.0.0.1
    // under one name or the other.
    make_certificates(certs.path(), "localhost");
    let server = start_tls_server(certs.path());
    let ca = certs.path().join("ca.crt").display().to_string();
    let by_name = server.url.replace("127.0.0.1", "localhost");

    connects(&format!("{}?sslmode=require", server.url))
        .await
        .unwrap();
    connects(&format!(
        "{}?sslmode=verify-ca&sslrootcert={ca}",
        server.url
    ))
    .await
    .unwrap();
    connects(&format!("{by_name}?sslmode=verify-full&sslrootcert={ca}"))
        .await
        .unwrap();

    // Wrong host name: the certificate says localhost, we asked for 127.0.0.1.
    let err = connects(&format!(
        "{}?sslmode=verify-full&sslrootcert={ca}",
        server.url
    ))
    .await
    .unwrap_err();
    assert!(
        err.contains("certificate") || err.contains("Certificate"),
        "{err}"
    );
    // The wrong CA is refused even without a host name check.
    let other = tempfile::Builder::new()
        .prefix("molt-other-ca")
        .tempdir()
        .unwrap();
    make_certificates(other.path(), "localhost");
    let other_ca = other.path().join("ca.crt").display().to_string();
    let err = connects(&format!(
        "{by_name}?sslmode=verify-ca&sslrootcert={other_ca}"
    ))
    .await
    .unwrap_err();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // Plain TCP is refused by this server: the passes above were TLS.
    let err = connects(&format!("{}?sslmode=disable", server.url))
        .await
        .unwrap_err();
    assert!(
        err.contains("no encryption") || err.contains("pg_hba"),
        "{err}"
    );

    // A client certificate, as CockroachDB secure clusters use.
    let client = format!(
        "{by_name}?sslmode=verify-full&sslrootcert={ca}&sslcert={}&sslkey={}",
        certs.path().join("client.crt").display(),
        certs.path().join("client.key").display()
    );
    connects(&client).await.unwrap();

    // And a tool, end to end: molt-slice plans a table over verify-full.
    let pg = molt_core::connect::postgres(
        &ConnUrl::parse(&format!("{by_name}?sslmode=require")).unwrap(),
        "molt-tls-test",
    )
    .await
    .unwrap();
    pg.batch_execute("CREATE TABLE IF NOT EXISTS tls_t (id int PRIMARY KEY); INSERT INTO tls_t VALUES (1) ON CONFLICT DO NOTHING").await.unwrap();
    let plan = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(
        plan.path(),
        "[[phase]]\nname = \"A\"\nwhole = [\"tls_t\"]\n",
    )
    .unwrap();
    let out = run_pipe(
        &[(
            "molt-slice",
            vec![
                "plan".into(),
                "--plan".into(),
                plan.path().display().to_string(),
                "--source".into(),
                format!("{by_name}?sslmode=verify-full&sslrootcert={ca}"),
            ],
        )],
        None,
        &[],
    );
    out.assert_success();
    assert_eq!(
        out.records()
            .iter()
            .filter(|r| r["type"] == "slice")
            .count(),
        1
    );
}

/// The password of the MariaDB test user: no message may show it.
const MYSQL_PASSWORD: &str = "Tls7Secret9Walrus";

/// A MariaDB server that accepts TCP only with TLS, using the certificates
/// in `certs`, with users `molt` (password [`MYSQL_PASSWORD`], `REQUIRE
/// SSL`) and `plain` (the same password, no `REQUIRE`), and a table
/// `test.items` of three rows.
fn start_tls_mariadb(certs: &Path) -> OwnMariaDbServer {
    // The server runs as `mysql` when we are root: it must read the key.
    let _ = Command::new("chown")
        .arg("-R")
        .arg("mysql:")
        .arg(certs)
        .status();
    let _ = Command::new("chmod")
        .arg("600")
        .arg(certs.join("server.key"))
        .status();
    let file = |name: &str| certs.join(name).display().to_string();
    let server = OwnMariaDbServer::start(
        "tls-mariadb",
        &[
            format!("--ssl-ca={}", file("ca.crt")),
            format!("--ssl-cert={}", file("server.crt")),
            format!("--ssl-key={}", file("server.key")),
            "--require-secure-transport=ON".into(),
        ],
    );
    server.exec(&format!(
        "CREATE USER 'molt'@'%' IDENTIFIED BY '{MYSQL_PASSWORD}' REQUIRE SSL;
         GRANT ALL ON *.* TO 'molt'@'%';
         CREATE USER 'plain'@'%' IDENTIFIED BY '{MYSQL_PASSWORD}';
         GRANT ALL ON *.* TO 'plain'@'%';
         CREATE TABLE test.items (id int PRIMARY KEY, name varchar(20));
         INSERT INTO test.items VALUES (1, 'one'), (2, 'two'), (3, NULL);"
    ));
    server
}

/// The TLS cipher of a session opened the way the tools open theirs.
async fn mysql_session_cipher(url: &str) -> Result<String, String> {
    use mysql_async::prelude::Queryable;
    let url = ConnUrl::parse(url).unwrap();
    let opts = molt_core::connect::mysql_opts(&url).map_err(|e| e.to_string())?;
    let mut conn = mysql_async::Conn::new(opts)
        .await
        .map_err(|e| e.to_string())?;
    let row: Option<(String, String)> = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await
        .map_err(|e| e.to_string())?;
    let _ = conn.disconnect().await;
    Ok(row.map(|(_, cipher)| cipher).unwrap_or_default())
}

/// molt-dump of `test.items` from `url`; the exit status, the rows and
/// stderr. Stderr never holds the password, whatever happened.
fn dump_items(url: &str) -> (i32, Vec<serde_json::Value>, String) {
    let out = run_pipe(
        &[(
            "molt-dump",
            vec![
                "--quiet".into(),
                "--source".into(),
                url.into(),
                "--table".into(),
                "test.items".into(),
            ],
        )],
        None,
        &[],
    );
    let err = out.stderrs[0].clone();
    assert!(
        !err.contains(MYSQL_PASSWORD) && !out.stdout_str().contains(MYSQL_PASSWORD),
        "the password leaked:\n{}",
        out.report()
    );
    let rows = if out.success() {
        out.records().into_iter().filter(|r| r.is_array()).collect()
    } else {
        Vec::new()
    };
    (out.statuses[0], rows, err)
}

#[tokio::test]
async fn mysql_ssl_modes_against_a_tls_only_mariadb() {
    let certs = tempfile::Builder::new()
        .prefix("molt-mariadb-certs")
        .tempdir()
        .unwrap();
    make_certificates(certs.path(), "localhost");
    let server = start_tls_mariadb(certs.path());
    let by_ip = server
        .url
        .replace("root@", &format!("molt:{MYSQL_PASSWORD}@"));
    let by_name = by_ip.replace("127.0.0.1", "localhost");
    let ca = certs.path().join("ca.crt").display().to_string();
    let expected = vec![
        serde_json::json!(["1", "one"]),
        serde_json::json!(["2", "two"]),
        serde_json::json!(["3", null]),
    ];

    // The session really is encrypted (kept on TCP: over the Unix socket
    // mysql_async would otherwise switch to, there is nothing to encrypt).
    let cipher = mysql_session_cipher(&format!("{by_ip}?ssl-mode=REQUIRED&prefer_socket=false"))
        .await
        .unwrap();
    assert!(!cipher.is_empty(), "the session has no TLS cipher");

    // MySQL's parameter names and libpq's, both accepted.
    for url in [
        format!("{by_ip}?ssl-mode=REQUIRED"),
        format!("{by_ip}?sslmode=require"),
        // Under verify-ca by the name in the certificate: mysql_async 0.37.1
        // checks the name even when told not to (see the ignored test below).
        format!("{by_name}?ssl-mode=VERIFY_CA&ssl-ca={ca}"),
        format!("{by_name}?sslmode=verify-ca&sslrootcert={ca}"),
        format!("{by_name}?ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
        format!("{by_name}?sslmode=verify-full&sslrootcert={ca}"),
    ] {
        let (status, rows, err) = dump_items(&url);
        assert_eq!(status, 0, "{}: {err}", redact(&url));
        assert_eq!(rows, expected, "{}", redact(&url));
    }

    // Wrong host name: the certificate says localhost, we asked for 127.0.0.1.
    let (status, _, err) = dump_items(&format!("{by_ip}?sslmode=verify-full&sslrootcert={ca}"));
    assert_eq!(status, 1, "{err}");
    assert!(
        err.contains("certificate not valid for name \"127.0.0.1\""),
        "{err}"
    );
    assert!(
        err.contains("molt:***@127.0.0.1"),
        "names the server: {err}"
    );

    // A CA that did not sign the server's certificate.
    let other = tempfile::Builder::new()
        .prefix("molt-other-ca")
        .tempdir()
        .unwrap();
    make_certificates(other.path(), "localhost");
    let other_ca = other.path().join("ca.crt").display().to_string();
    let (status, _, err) = dump_items(&format!(
        "{by_name}?sslmode=verify-ca&sslrootcert={other_ca}"
    ));
    assert_eq!(status, 1, "{err}");
    // Same subject as the real CA, another key: the signature does not check.
    assert!(err.contains("invalid peer certificate"), "{err}");

    // Without TLS (and without sslmode, which means no TLS for MySQL) the
    // server refuses. MariaDB 10.11 says only "Access denied", as for a wrong
    // password; the same user and password pass over TLS, so it is the
    // transport it refuses.
    let plain = by_ip.replace("molt:", "plain:");
    let (status, rows, err) = dump_items(&format!("{plain}?ssl-mode=REQUIRED"));
    assert_eq!((status, rows.len()), (0, 3), "{err}");
    for url in [
        format!("{plain}?sslmode=disable"),
        plain.clone(),
        format!("{by_ip}?ssl-mode=DISABLED"),
    ] {
        let (status, _, err) = dump_items(&url);
        assert_eq!(status, 1, "{err}");
        assert!(err.contains("Access denied for user"), "{err}");
        assert!(err.contains(":***@127.0.0.1"), "names the server: {err}");
    }
}

/// `verify-ca` checks the chain but not the host name, so connecting by IP
/// to a server whose certificate names `localhost` must work. It does not
/// yet: mysql_async 0.37.1 recognises a name mismatch by looking for
/// `NotValidForName` in rustls's error text, which rustls 0.23 no longer
/// writes (blackbeam/mysql_async#404, fixed upstream by #408, not yet in a
/// release), so `with_danger_skip_domain_validation` has no effect.
#[tokio::test]
#[ignore = "mysql_async 0.37.1 ignores skip_domain_validation under rustls 0.23 (mysql_async#404)"]
async fn mysql_verify_ca_does_not_check_the_host_name() {
    let certs = tempfile::Builder::new()
        .prefix("molt-mariadb-certs")
        .tempdir()
        .unwrap();
    make_certificates(certs.path(), "localhost");
    let server = start_tls_mariadb(certs.path());
    let by_ip = server
        .url
        .replace("root@", &format!("molt:{MYSQL_PASSWORD}@"));
    let ca = certs.path().join("ca.crt").display().to_string();
    let (status, rows, err) = dump_items(&format!("{by_ip}?sslmode=verify-ca&sslrootcert={ca}"));
    assert_eq!(status, 0, "{err}");
    assert_eq!(rows.len(), 3);
}
