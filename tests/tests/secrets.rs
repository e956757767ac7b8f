//! A known password goes through every tool, in succeeding and failing runs,
//! by flag, environment variable and file, and must appear in no output, no
//! error, and no row of the ledger.

use molt_tests::*;

const PASSWORD: &str = "Pw9f8e7dSecretHorse";

fn with_password(url: &str) -> String {
    url.replacen("postgres@", &format!("postgres:{PASSWORD}@"), 1)
}

#[tokio::test]
async fn a_known_password_appears_in_no_output_error_or_ledger_row() {
    let source = fresh_pg_database(&pg_source_url(), "secrets_src").await;
    let target = fresh_pg_database(&pg_target_url(), "secrets_tgt").await;
    psql_exec(&source, "CREATE TABLE items (id int PRIMARY KEY, region char(1)); INSERT INTO items SELECT i, chr(65 + i % 2) FROM generate_series(1, 100) i;");
    let (src, tgt) = (with_password(&source), with_password(&target));
    let dir = tempfile::tempdir().unwrap();
    let target_file = dir.path().join("target-url");
    std::fs::write(&target_file, format!("{tgt}\n")).unwrap();
    let target_arg = format!("file:{}", target_file.display());
    let plan = dir.path().join("plan.toml");
    std::fs::write(&plan, "[[phase]]\nname = \"A\"\nfilter = \"region = 'A'\"\ntables = [\"items\"]\n[[phase]]\nname = \"B\"\nfilter = \"region = 'B'\"\ntables = [\"items\"]\n").unwrap();
    let plan = plan.display().to_string();
    let env = [("MOLT_SOURCE", src.as_str()), ("MOLT_TARGET", tgt.as_str())];
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();

    let mut outputs: Vec<PipeOutcome> = Vec::new();
    // Succeeding runs: the URL by flag (warned about), by environment, by file.
    outputs.push(run_pipe(
        &[
            (
                "molt-slice",
                s(&["plan", "--plan", &plan, "--phase", "A", "--source", &src]),
            ),
            ("molt-dump", s(&[])),
            ("molt-load", s(&["--target", &target_arg])),
        ],
        None,
        &env,
    ));
    outputs.last().unwrap().assert_success();
    assert!(
        outputs[0].stderrs[0].contains("password on the command line"),
        "{}",
        outputs[0].stderrs[0]
    );
    outputs.push(run_pipe(
        &[
            ("molt-slice", s(&["plan", "--plan", &plan, "--phase", "A"])),
            ("molt-verify", s(&["--phase", "A"])),
        ],
        None,
        &env,
    ));
    outputs.push(run_pipe(
        &[("molt-cutover", s(&["status", "--json"]))],
        None,
        &env,
    ));
    outputs.push(run_pipe(
        &[(
            "molt-cutover",
            s(&["freeze", "--plan", &plan, "--phase", "A"]),
        )],
        None,
        &env,
    ));
    outputs.push(run_pipe(
        &[(
            "molt-cutover",
            s(&["switch", "--plan", &plan, "--phase", "A"]),
        )],
        None,
        &env,
    ));
    outputs.push(run_pipe(
        &[(
            "molt-cutover",
            s(&["unfreeze", "--plan", &plan, "--phase", "A"]),
        )],
        None,
        &env,
    ));
    // Failing runs: a missing table, a bad filter, an unreachable server, a
    // missing target table, a bad URL scheme.
    outputs.push(run_pipe(
        &[("molt-dump", s(&["--table", "public.nope"]))],
        None,
        &env,
    ));
    outputs.push(run_pipe(
        &[(
            "molt-dump",
            s(&["--table", "public.items", "--filter", "nosuch = 1"]),
        )],
        None,
        &env,
    ));
    let unreachable = format!("postgres://postgres:{PASSWORD}@127.0.0.1:1/postgres");
    outputs.push(run_pipe(
        &[(
            "molt-dump",
            s(&["--table", "public.items", "--source", &unreachable]),
        )],
        None,
        &[],
    ));
    outputs.push(run_pipe(
        &[
            ("molt-dump", s(&["--table", "public.items"])),
            (
                "molt-load",
                s(&["--table-handling", "none", "--schema", "nosuch"]),
            ),
        ],
        None,
        &env,
    ));
    outputs.push(run_pipe(
        &[(
            "molt-verify",
            s(&["--table", "public.items", "--target-schema", "nosuch"]),
        )],
        None,
        &env,
    ));
    outputs.push(run_pipe(
        &[(
            "molt-dump",
            s(&[
                "--table",
                "public.items",
                "--source",
                &src.replace("postgres://", "ftp://"),
            ]),
        )],
        None,
        &[],
    ));
    for out in &outputs {
        let everything = format!("{}\n{}", out.stdout_str(), out.stderrs.join("\n"));
        assert!(
            !everything.contains(PASSWORD),
            "the password leaked:\n{}",
            out.report()
        );
    }
    for out in &outputs[6..] {
        assert!(!out.success(), "this run must fail:\n{}", out.report());
    }

    // Nothing in the ledger holds it either.
    let client = pg_connect(&target).await;
    let tables = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = '_molt'",
            &[],
        )
        .await
        .unwrap();
    assert!(!tables.is_empty(), "the ledger exists");
    for row in tables {
        let table: String = row.get(0);
        let rows = client
            .query(&format!("SELECT t::text FROM _molt.\"{table}\" t"), &[])
            .await
            .unwrap();
        for r in rows {
            let text: String = r.get(0);
            assert!(
                !text.contains(PASSWORD),
                "ledger table {table} holds the password: {text}"
            );
        }
    }
}

/// The NUL-separated command line of a running process, as `ps` shows it to
/// every local user.
fn command_line(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw).replace('\0', " ")
}

/// Starts molt-load with `args` and `env`, waits until it holds a
/// connection to `target` (so it has read its URL, wherever from), and
/// returns its command line and process name; then ends it by closing its
/// stdin (an empty stream).
async fn title_while_connected(target: &str, args: &[String], env: &[(&str, &str)]) -> String {
    use std::process::{Command, Stdio};
    let mut child = Command::new(bin("molt-load"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let database = target.rsplit('/').next().unwrap().to_string();
    let observer = pg_connect(target).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let connected: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'molt-load'",
                &[&database],
            )
            .await
            .unwrap()
            .get(0);
        if connected > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "molt-load never connected"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let pid = child.id();
    // The environment (MOLT_TARGET) is private to the user, unlike the
    // command line.
    use std::os::unix::fs::PermissionsExt;
    let environ = std::fs::metadata(format!("/proc/{pid}/environ")).unwrap();
    assert_eq!(environ.permissions().mode() & 0o777, 0o400);
    let mut title = command_line(pid);
    title.push('\n');
    title.push_str(&std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default());
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let comm = task.unwrap().path().join("comm");
        title.push_str(&std::fs::read_to_string(comm).unwrap_or_default());
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains(PASSWORD), "stderr: {stderr}");
    title
}

#[tokio::test]
async fn a_url_from_the_environment_or_a_file_keeps_the_password_out_of_the_process_title() {
    let target = fresh_pg_database(&pg_target_url(), "secrets_title").await;
    let tgt = with_password(&target);
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("target-url");
    std::fs::write(&url_file, format!("{tgt}\n")).unwrap();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();

    // MOLT_TARGET, env:VAR and file:PATH: the command line never holds it.
    let by_env = title_while_connected(&target, &s(&["--quiet"]), &[("MOLT_TARGET", &tgt)]).await;
    let by_named_env = title_while_connected(
        &target,
        &s(&["--quiet", "--target", "env:SHOP_TARGET_URL"]),
        &[("SHOP_TARGET_URL", &tgt)],
    )
    .await;
    let by_file = title_while_connected(
        &target,
        &s(&[
            "--quiet",
            "--target",
            &format!("file:{}", url_file.display()),
        ]),
        &[],
    )
    .await;
    for title in [&by_env, &by_named_env, &by_file] {
        assert!(title.contains("molt-load"), "{title}");
        assert!(
            !title.contains(PASSWORD),
            "the password is in the title: {title}"
        );
    }
    // The check can see a password: typed on the command line it is there
    // for every local user (which is why the tools warn about it).
    let by_flag = title_while_connected(&target, &s(&["--quiet", "--target", &tgt]), &[]).await;
    assert!(
        by_flag.contains(PASSWORD),
        "{}",
        by_flag.replace(PASSWORD, "***")
    );
}
