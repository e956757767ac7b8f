//! scripts/phase.sh and scripts/demo.sh against real servers.
//!
//! The phase script is what cron runs, so it is tested the way cron runs
//! it: a process with an env file, no terminal, checked by its exit code,
//! its messages and its NDJSON log, and by what landed on the target. The
//! dataset is the demo's (`scripts/lib/demo-data.sh`), seeded into fresh
//! databases; the plan is `examples/demo-plan.toml`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use molt_tests::*;

/// A password no output may ever contain (trust authentication ignores it).
const SECRET: &str = "phase-s3cret";
const PHASES: [&str; 4] = ["A", "B", "C", "D"];
const TABLES: [&str; 4] = ["customers", "orders", "order_items", "products"];

/// The directory of the molt binaries, as phase.sh's MOLT_BIN_DIR.
fn bin_dir() -> PathBuf {
    bin("molt-slice")
        .parent()
        .expect("a binary has a directory")
        .to_path_buf()
}

/// `url` with a password added when it has none.
fn with_password(url: &str) -> String {
    let Some(i) = url.find("://") else {
        return url.to_owned();
    };
    let (scheme, rest) = url.split_at(i + 3);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    match authority.find('@') {
        Some(at) if !authority[..at].contains(':') => {
            format!("{scheme}{}:{SECRET}{}", &rest[..at], &rest[at..])
        }
        _ => url.to_owned(),
    }
}

fn seed(url: &str, orders: u32) {
    let script = workspace_dir().join("scripts/lib/demo-data.sh");
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"set -euo pipefail; source "$1"; molt_demo_seed pg "$2" "$3""#)
        .arg("seed")
        .arg(&script)
        .arg(url)
        .arg(orders.to_string())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "seeding failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fresh source (seeded) and target databases, and an env file for phase.sh.
struct Setup {
    source: String,
    target: String,
    dir: tempfile::TempDir,
    env_file: PathBuf,
}

impl Setup {
    async fn new(name: &str, orders: u32, extra: &[(&str, &str)]) -> Setup {
        let source = fresh_pg_database(&pg_source_url(), &format!("{name}_src")).await;
        let target = fresh_pg_database(&pg_target_url(), &format!("{name}_tgt")).await;
        seed(&source, orders);
        let dir = tempfile::tempdir().expect("temp dir");
        // The source URL through file: (as from a mounted secret), the
        // target's with a password, to prove neither reaches any output.
        let source_file = dir.path().join("source-url");
        std::fs::write(&source_file, with_password(&source)).unwrap();
        let env_file = dir.path().join("molt.env");
        let setup = Setup {
            source,
            target,
            env_file,
            dir,
        };
        let mut vars = vec![
            (
                "MOLT_SOURCE".to_owned(),
                format!("file:{}", source_file.display()),
            ),
            ("MOLT_TARGET".to_owned(), with_password(&setup.target)),
            (
                "MOLT_PLAN".to_owned(),
                workspace_dir()
                    .join("examples/demo-plan.toml")
                    .display()
                    .to_string(),
            ),
            ("MOLT_JOBS".to_owned(), "2".to_owned()),
            ("MOLT_SHARD_ROWS".to_owned(), "700".to_owned()),
            (
                "MOLT_STATE_DIR".to_owned(),
                setup.state_dir().display().to_string(),
            ),
            (
                "MOLT_LOG_DIR".to_owned(),
                setup.log_dir().display().to_string(),
            ),
            ("MOLT_BIN_DIR".to_owned(), bin_dir().display().to_string()),
        ];
        for (k, v) in extra {
            vars.push(((*k).to_owned(), (*v).to_owned()));
        }
        setup.write_env(&vars);
        setup
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn log_dir(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    fn write_env(&self, vars: &[(String, String)]) {
        let mut text = String::from("# written by tests/tests/phase_script.rs\n");
        for (k, v) in vars {
            text.push_str(&format!("{k}='{v}'\n"));
        }
        std::fs::write(&self.env_file, text).unwrap();
    }

    /// Replaces one variable of the env file.
    fn set_env(&self, key: &str, value: &str) {
        let text = std::fs::read_to_string(&self.env_file).unwrap();
        let mut found = false;
        let lines: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with(&format!("{key}=")) {
                    found = true;
                    format!("{key}='{value}'")
                } else {
                    l.to_owned()
                }
            })
            .collect();
        assert!(found, "{key} is not in the env file");
        std::fs::write(&self.env_file, lines.join("\n") + "\n").unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(workspace_dir().join("scripts/phase.sh"))
            .args(args)
            .arg("--env")
            .arg(&self.env_file)
            .current_dir(self.dir.path())
            // Nothing from the test's environment may stand in for the file.
            .env_remove("MOLT_SOURCE")
            .env_remove("MOLT_TARGET")
            .env_remove("MOLT_ENV_FILE")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs phase.sh and returns what it did.
    fn phase(&self, args: &[&str]) -> Run {
        let out = self
            .command(args)
            .output()
            .expect("bash runs scripts/phase.sh");
        Run::from(out, args)
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash runs scripts/phase.sh")
    }

    /// Every log file, oldest first, with its records.
    fn logs(&self) -> Vec<(PathBuf, Vec<serde_json::Value>)> {
        let Ok(dir) = std::fs::read_dir(self.log_dir()) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = dir.map(|e| e.unwrap().path()).collect();
        files.sort();
        files
            .into_iter()
            .map(|f| {
                let records = ndjson(&std::fs::read(&f).unwrap());
                (f, records)
            })
            .collect()
    }

    /// Nothing anywhere under the test directory (logs, state) holds the password.
    fn assert_no_secret_on_disk(&self) {
        for (file, _) in self.logs() {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(
                !text.contains(SECRET),
                "{} holds the password",
                file.display()
            );
        }
    }

    fn verify_whole(&self) -> Output {
        let mut cmd = Command::new(bin("molt-verify"));
        for t in TABLES {
            cmd.arg("--table").arg(t);
        }
        cmd.env("MOLT_SOURCE", &self.source)
            .env("MOLT_TARGET", &self.target)
            .stdin(Stdio::null())
            .output()
            .expect("molt-verify runs")
    }

    /// Rows per table on one side, for counts that must agree.
    fn counts(url: &str) -> Vec<(String, i64)> {
        TABLES
            .iter()
            .map(|t| {
                let out = psql_exec(
                    url,
                    format!("\\pset tuples_only on\nSELECT count(*) FROM {t}"),
                );
                (
                    (*t).to_owned(),
                    out.trim()
                        .parse()
                        .unwrap_or_else(|_| panic!("count of {t}: {out}")),
                )
            })
            .collect()
    }
}

struct Run {
    args: String,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(out: Output, args: &[&str]) -> Run {
        Run {
            args: args.join(" "),
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn expect(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "phase.sh {}: exit {} (expected {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.args, self.code, self.stdout, self.stderr
        );
        assert!(
            !self.stdout.contains(SECRET) && !self.stderr.contains(SECRET),
            "phase.sh {} printed the password:\n{}\n{}",
            self.args,
            self.stdout,
            self.stderr
        );
        self
    }
}

fn steps_of(records: &[serde_json::Value]) -> Vec<(String, i64)> {
    records
        .iter()
        .filter(|r| r["type"] == "phase_step")
        .map(|r| {
            (
                r["step"].as_str().unwrap_or("").to_owned(),
                r["exit"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

fn summary_of(records: &[serde_json::Value]) -> &serde_json::Value {
    records
        .iter()
        .rev()
        .find(|r| r["type"] == "phase_summary")
        .expect("the log ends with a phase_summary record")
}

#[tokio::test]
async fn four_phases_run_by_phase_sh_migrate_the_whole_database() {
    let s = Setup::new("phase_all", 2000, &[]).await;

    // A dry run prints the pipeline and touches nothing.
    let dry = s.phase(&["A", "--dry-run"]);
    dry.expect(0);
    assert!(
        dry.stdout.contains("molt-cutover freeze")
            && dry.stdout.contains("molt-dump --jobs ")
            && dry.stdout.contains("molt-verify --phase A")
            && dry.stdout.contains("molt-cutover switch"),
        "{}",
        dry.stdout
    );
    assert!(s.logs().is_empty(), "a dry run wrote a log");

    for phase in PHASES {
        let run = s.phase(&[phase]);
        run.expect(0);
        assert!(
            run.stdout.contains(&format!("phase {phase}: cut over")),
            "{}",
            run.stdout
        );
    }

    // One log per run, each with the five steps passed and a summary.
    let logs = s.logs();
    assert_eq!(logs.len(), 4, "{logs:?}");
    let mut loaded_rows = 0;
    for (phase, (file, records)) in PHASES.iter().zip(&logs) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(&format!("phase-{phase}-")) && name.ends_with(".ndjson"),
            "{name}"
        );
        let steps = steps_of(records);
        let want: Vec<(String, i64)> = ["freeze", "load", "verify", "finalize", "switch"]
            .iter()
            .map(|s| ((*s).to_owned(), 0))
            .collect();
        assert_eq!(steps, want, "{name}");
        for r in records.iter().filter(|r| r["type"] == "phase_step") {
            assert!(r["seconds"].as_f64().is_some(), "{r}");
            assert!(r["command"].as_str().unwrap().contains("molt-"), "{r}");
        }
        assert!(
            records
                .iter()
                .any(|r| r["type"] == "result" && r["tool"] == "molt-load"),
            "{name}: no molt-load results"
        );
        assert!(
            records
                .iter()
                .any(|r| r["type"] == "report" && r["kind"] == "summary" && r["ok"] == true),
            "{name}: no passing molt-verify summary"
        );
        let summary = summary_of(records);
        assert_eq!(summary["verified"], true, "{summary}");
        assert_eq!(summary["exit"], 0, "{summary}");
        loaded_rows += summary["rows"].as_i64().unwrap();
    }
    s.assert_no_secret_on_disk();

    // Everything arrived, once: the same counts, and a clean verify of the
    // whole database (every table, no filter).
    let source_counts = Setup::counts(&s.source);
    assert_eq!(source_counts, Setup::counts(&s.target));
    let total: i64 = source_counts.iter().map(|(_, n)| n).sum();
    assert_eq!(loaded_rows, total, "rows loaded over the four phases");
    let whole = s.verify_whole();
    assert_eq!(
        whole.status.code(),
        Some(0),
        "whole-database verify: {}\n{}",
        String::from_utf8_lossy(&whole.stdout),
        String::from_utf8_lossy(&whole.stderr)
    );

    // The ledger agrees: every phase cut over and routed to the target.
    let status = Command::new(bin("molt-cutover"))
        .args(["status", "--json"])
        .env("MOLT_TARGET", &s.target)
        .output()
        .unwrap();
    let phases: Vec<serde_json::Value> = ndjson(&status.stdout)
        .into_iter()
        .filter(|r| r["kind"] == "phase_status")
        .collect();
    assert_eq!(phases.len(), 4, "{phases:?}");
    for p in &phases {
        assert_eq!(p["state"], "cut_over", "{p}");
        assert_eq!(p["route"], "target", "{p}");
    }

    // A plain re-run of a finished phase changes nothing and says so.
    let again = s.phase(&["B"]);
    again.expect(0);
    assert!(
        again.stderr.contains("already cut over"),
        "{}",
        again.stderr
    );
    assert_eq!(Setup::counts(&s.target), source_counts);
}

#[tokio::test]
async fn a_second_run_of_the_same_phase_is_refused_by_the_lock() {
    // The switch hook keeps the first run busy for a few seconds.
    let s = Setup::new("phase_lock", 200, &[("MOLT_SWITCH_HOOK", "sleep 4")]).await;
    let mut first = s.spawn(&["A"]);

    // The log file exists once the first run holds the lock.
    let deadline = Instant::now() + Duration::from_secs(120);
    while s.logs().is_empty() {
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run ended early"
        );
        assert!(Instant::now() < deadline, "the first run never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = s.phase(&["A"]);
    second.expect(75);
    assert!(
        second.stderr.contains("phase A is already running"),
        "{}",
        second.stderr
    );
    // The refused run wrote no log of its own.
    assert_eq!(s.logs().len(), 1);

    // Another phase is not blocked by A's lock (it is only frozen, loaded
    // and verified here: its switch would wait for the hook too).
    let other = s.phase(&["B", "--until", "verify"]);
    other.expect(0);

    let first = first.wait_with_output().unwrap();
    Run::from(first, &["A (first)"]).expect(0);
    // With the lock free again, a new run goes through (and finds A done).
    s.phase(&["A"]).expect(0);
}

#[tokio::test]
async fn a_failed_step_names_itself_and_the_resumed_phase_completes_exactly() {
    let s = Setup::new("phase_fail", 2000, &[]).await;
    s.phase(&["A"]).expect(0);

    // 1. The target becomes unreachable between steps: B is frozen, then
    //    its load finds a closed port.
    s.phase(&["B", "--until", "freeze"]).expect(0);
    s.set_env(
        "MOLT_TARGET",
        &with_password("postgres://postgres@127.0.0.1:1/nowhere"),
    );
    let failed = s.phase(&["B", "--from", "load"]);
    failed.expect(1);
    assert!(
        failed.stderr.contains("step load failed") && failed.stderr.contains("molt-load exited"),
        "{}",
        failed.stderr
    );
    let resume = failed
        .stderr
        .lines()
        .find_map(|l| l.split("resume with: ").nth(1))
        .unwrap_or_else(|| panic!("no resume command in:\n{}", failed.stderr))
        .trim()
        .to_owned();
    assert!(resume.ends_with("--from load"), "{resume}");
    let (_, records) = s.logs().pop().unwrap();
    assert_eq!(steps_of(&records), vec![("load".to_owned(), 1)]);
    assert_eq!(summary_of(&records)["exit"], 1);

    // Restored, the exact command it printed completes the phase.
    s.set_env("MOLT_TARGET", &with_password(&s.target));
    let args: Vec<&str> = resume
        .strip_prefix("scripts/phase.sh ")
        .expect("the command is scripts/phase.sh")
        .split_whitespace()
        .filter(|a| !a.starts_with("--env") && !a.ends_with("molt.env"))
        .collect();
    s.phase(&args).expect(0);

    // 2. A failure in the middle of a load: the target rejects one order
    //    item of phase C, after other sections of C have been loaded.
    // The last order of phase C: its items are in the last shard of C's
    // order_items, loaded after the phase's other sections have started.
    let victim = psql_exec(
        &s.source,
        "\\pset tuples_only on\nSELECT max(id) FROM orders WHERE region = 'C'",
    );
    let victim: i64 = victim.trim().parse().expect("an order id");
    psql_exec(
        &s.target,
        format!(
            "CREATE FUNCTION reject_item() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'injected failure for order %', NEW.order_id; END $$;
             CREATE TRIGGER reject_item BEFORE INSERT ON order_items FOR EACH ROW
             WHEN (NEW.order_id = {victim} AND NEW.line_no = 1) EXECUTE FUNCTION reject_item();"
        ),
    );
    let failed = s.phase(&["C"]);
    failed.expect(1);
    assert!(
        failed.stderr.contains("step load failed")
            && failed.stderr.contains("injected failure")
            && failed.stderr.contains("--from load"),
        "{}",
        failed.stderr
    );
    psql_exec(
        &s.target,
        "DROP TRIGGER reject_item ON order_items; DROP FUNCTION reject_item();",
    );
    // A plain re-run: freeze again (a no-op), load what is missing, and on.
    s.phase(&["C"]).expect(0);
    s.phase(&["D"]).expect(0);

    assert_eq!(Setup::counts(&s.source), Setup::counts(&s.target));
    let dupes = psql_exec(
        &s.target,
        "\\pset tuples_only on\nSELECT count(*) FROM (SELECT order_id, line_no FROM order_items \
         GROUP BY 1, 2 HAVING count(*) > 1) d",
    );
    assert_eq!(dupes.trim(), "0");
    let whole = s.verify_whole();
    assert_eq!(
        whole.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&whole.stdout)
    );
    s.assert_no_secret_on_disk();
}

#[test]
fn phase_sh_refuses_bad_usage_with_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let script = workspace_dir().join("scripts/phase.sh");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = Command::new("bash")
            .arg(&script)
            .args(args)
            .current_dir(dir.path())
            .env_remove("MOLT_SOURCE")
            .env_remove("MOLT_TARGET")
            .env_remove("MOLT_PLAN")
            .env_remove("MOLT_ENV_FILE")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        Run::from(out, args)
    };
    let r = run(&[], &[]);
    r.expect(2);
    assert!(r.stderr.contains("usage"), "{}", r.stderr);
    let r = run(&["A", "--from", "nope"], &[]);
    r.expect(2);
    assert!(r.stderr.contains("--from nope"), "{}", r.stderr);
    let r = run(&["A"], &[]);
    r.expect(2);
    assert!(r.stderr.contains("MOLT_SOURCE is not set"), "{}", r.stderr);
    let r = run(&["A", "--env", "/nonexistent/molt.env"], &[]);
    r.expect(2);
    assert!(r.stderr.contains("/nonexistent/molt.env"), "{}", r.stderr);
    let env: &Path = &dir.path().join("bad.env");
    std::fs::write(env, "MOLT_SOURCE=x\nthis is not an assignment\n").unwrap();
    let r = run(&["A", "--env", env.to_str().unwrap()], &[]);
    r.expect(2);
    assert!(r.stderr.contains("line 2"), "{}", r.stderr);
}

#[test]
fn the_demo_migrates_four_phases_and_says_so() {
    let out = Command::new("bash")
        .arg(workspace_dir().join("scripts/demo.sh"))
        .args(["--rows", "2000"])
        .env("MOLT_BIN_DIR", bin_dir())
        .stdin(Stdio::null())
        .output()
        .expect("bash runs scripts/demo.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo.sh failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("all four phases cut over and verified"),
        "{stdout}"
    );
    assert!(stdout.contains("whole database verified: yes"), "{stdout}");
    for phase in PHASES {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{phase} ")))
            .unwrap_or_else(|| panic!("no summary line for phase {phase}:\n{stdout}"));
        assert!(line.trim_end().ends_with("yes"), "{line}");
        let rows: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(rows > 1000, "{line}");
    }
    assert!(
        stderr.contains("servers stopped"),
        "the demo must stop its servers:\n{stderr}"
    );
}

/// scripts/crdb-check.sh qualifies a target in a scratch database it drops
/// again; through the stand-in every step must pass, and a target that
/// cannot be reached fails at once.
#[tokio::test]
async fn crdb_check_passes_against_the_standin_and_leaves_no_scratch_database() {
    let script = workspace_dir().join("scripts/crdb-check.sh");
    let run = |url: &str| {
        Command::new("bash")
            .arg(&script)
            .arg(url)
            .env("MOLT_BIN_DIR", bin("molt-dump").parent().unwrap())
            .output()
            .expect("bash runs scripts/crdb-check.sh")
    };
    let target = pg_target_url();
    let out = run(&target);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in ["types", "phase A", "phase B", "phase A re-run", "drop"] {
        assert!(
            stdout.contains(&format!("  pass  {step}\n")),
            "{step}: {stdout}"
        );
    }
    assert!(
        stdout.contains("the cluster passed every check"),
        "{stdout}"
    );
    let left: i64 = pg_connect(&target)
        .await
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'molt_check_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the scratch database is dropped");

    let unreachable = run("postgresql://root:s3cret@127.0.0.1:1/defaultdb");
    assert_eq!(unreachable.status.code(), Some(1));
    let err = String::from_utf8_lossy(&unreachable.stderr);
    assert!(err.contains("cannot connect to the target"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

/// The node_exporter textfile of a phase (`MOLT_TEXTFILE_DIR`).
fn textfile(dir: &Path, phase: &str) -> Scrape {
    let file = dir.join(format!("molt_phase_{phase}.prom"));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let scrape = Scrape::parse(&text);
    // The Prometheus text format: every sample's metric has a TYPE line.
    for (name, _, _) in &scrape.samples {
        assert!(
            text.contains(&format!("# TYPE {name} gauge\n")),
            "{name} has no TYPE line in\n{text}"
        );
    }
    scrape
}

/// The state of `step` in a textfile: the one state whose gauge is 1.
fn step_state(t: &Scrape, step: &str) -> String {
    let states: Vec<String> = t
        .samples
        .iter()
        .filter(|(n, l, v)| {
            n == "molt_phase_step_state"
                && *v == 1.0
                && l.iter().any(|(k, s)| k == "step" && s == step)
        })
        .filter_map(|(_, l, _)| l.iter().find(|(k, _)| k == "state").map(|(_, s)| s.clone()))
        .collect();
    assert_eq!(states.len(), 1, "{step}: {states:?} in\n{}", t.text);
    states[0].clone()
}

#[tokio::test]
async fn phase_sh_keeps_a_node_exporter_textfile_of_its_steps() {
    let prom = tempfile::tempdir().unwrap();
    let dir = prom.path().display().to_string();
    let s = Setup::new(
        "phase_textfile",
        500,
        &[
            ("MOLT_TEXTFILE_DIR", dir.as_str()),
            ("MOLT_LOAD_METRICS_ADDR", "127.0.0.1:0"),
        ],
    )
    .await;

    // The tools get --metrics-addr from the env file.
    let dry = s.phase(&["A", "--dry-run"]);
    dry.expect(0);
    assert!(
        dry.stdout
            .contains("molt-load --jobs 2 --quiet --metrics-addr 127.0.0.1:0"),
        "{}",
        dry.stdout
    );
    assert!(
        std::fs::read_dir(prom.path()).unwrap().next().is_none(),
        "a dry run writes no textfile"
    );

    s.phase(&["A", "--until", "verify"]).expect(0);
    let t = textfile(prom.path(), "A");
    for step in ["freeze", "load", "verify"] {
        assert_eq!(step_state(&t, step), "ok", "{}", t.text);
        let l = [("phase", "A"), ("step", step)];
        assert!(t.get("molt_phase_step_duration_seconds", &l).unwrap() >= 0.0);
        assert_eq!(t.get("molt_phase_step_exit_code", &l), Some(0.0));
        // All four states are there, for alerts on any of them.
        assert_eq!(
            t.samples
                .iter()
                .filter(|(n, l, _)| n == "molt_phase_step_state"
                    && l.iter().any(|(k, v)| k == "step" && v == step))
                .count(),
            4
        );
    }
    assert!(t
        .get("molt_phase_step_exit_code", &[("step", "finalize")])
        .is_none());
    let (_, records) = s.logs().pop().unwrap();
    let summary = summary_of(&records);
    assert!(summary["rows"].as_i64().unwrap() > 0, "{summary}");
    assert_eq!(
        t.get("molt_phase_rows", &[("phase", "A")]),
        summary["rows"].as_f64(),
        "{}",
        t.text
    );
    assert_eq!(
        t.get("molt_phase_bytes", &[("phase", "A")]),
        summary["bytes"].as_f64()
    );
    assert_eq!(t.get("molt_phase_running", &[("phase", "A")]), Some(0.0));
    assert_eq!(t.get("molt_phase_exit_code", &[("phase", "A")]), Some(0.0));
    // Written through a temporary file renamed into place: nothing else left.
    let names: Vec<String> = std::fs::read_dir(prom.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["molt_phase_A.prom".to_owned()]);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(prom.path().join("molt_phase_A.prom"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o644, 0o644, "node_exporter may run as another user");

    // A failing step: B frozen, then its load finds no target.
    s.phase(&["B", "--until", "freeze"]).expect(0);
    s.set_env(
        "MOLT_TARGET",
        &with_password("postgres://postgres@127.0.0.1:1/nowhere"),
    );
    s.phase(&["B", "--from", "load", "--until", "verify"])
        .expect(1);
    let t = textfile(prom.path(), "B");
    assert_eq!(step_state(&t, "load"), "failed", "{}", t.text);
    assert_eq!(step_state(&t, "verify"), "pending", "{}", t.text);
    assert!(
        t.get("molt_phase_step_state", &[("step", "freeze")])
            .is_none(),
        "only this run's steps: {}",
        t.text
    );
    assert_eq!(
        t.get("molt_phase_step_exit_code", &[("step", "load")]),
        Some(1.0)
    );
    assert_eq!(t.get("molt_phase_exit_code", &[("phase", "B")]), Some(1.0));
    assert_eq!(t.get("molt_phase_rows", &[("phase", "B")]), Some(0.0));

    // A directory that is not there is a configuration error.
    s.set_env("MOLT_TARGET", &with_password(&s.target));
    let missing = prom.path().join("missing").display().to_string();
    s.set_env("MOLT_TEXTFILE_DIR", &missing);
    let bad = s.phase(&["C"]);
    bad.expect(2);
    assert!(bad.stderr.contains("MOLT_TEXTFILE_DIR"), "{}", bad.stderr);
}
