//! TLS against a throwaway PostgreSQL server that only accepts TLS, with a
//! self-signed CA this test creates: `require`, `verify-ca` and
//! `verify-full` connect when they should, a certificate for the wrong host
//! is refused under `verify-full`, and a client certificate authenticates.

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
