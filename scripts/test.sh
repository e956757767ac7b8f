#!/usr/bin/env bash
#
# scripts/test.sh - the one command that tests molt.
#
#   scripts/test.sh [CARGO TEST ARGS...]     e.g. scripts/test.sh smoke -- --nocapture
#
# 1. With MOLT_TEST_LINT=1 (as .ci/run sets): cargo fmt --check.
# 2. Builds every tool in release mode (data-heavy tests are slow in debug)
#    and exports MOLT_BIN_DIR for the testkit; also checks that the tools
#    compile with the `oracle` feature (cargo check: the binaries the tests
#    run stay the default build, which tests/tests/oracle_tools.rs expects
#    either way).
# 3. With MOLT_TEST_LINT=1: cargo clippy -D warnings, also with `oracle`.
# 4. Starts throwaway servers (scripts/lib/servers.sh) for each of
#    MOLT_TEST_PG_SOURCE, MOLT_TEST_MYSQL_SOURCE and MOLT_TEST_PG_TARGET_DIRECT
#    (a PostgreSQL defaulting to SERIALIZABLE) that is not already set, puts
#    the CockroachDB stand-in (tests/crdb-standin) in front of the last one as
#    MOLT_TEST_PG_TARGET, and stops them all on exit, Ctrl-C included. Set the
#    three to use your own servers; set MOLT_TEST_CRDB_URL to make a real
#    CockroachDB cluster the target instead of the stand-in.
# 5. cargo test --workspace --release "$@".
#
# Environment: MOLT_TEST_LINT, MOLT_REQUIRE_DATASETS, MOLT_TEST_PG_SOURCE, MOLT_TEST_PG_TARGET_DIRECT,
# MOLT_TEST_MYSQL_SOURCE, MOLT_TEST_CRDB_URL, CARGO_TARGET_DIR, MOLT_KEEP_SERVERS_DIR (keep the
# servers' data and logs after the run).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=scripts/lib/servers.sh
source "$repo/scripts/lib/servers.sh"

# Only servers this run starts are ours to stop.
unset MOLT_SERVERS_DIR
molt_install_server_trap

step() {
    printf '\n==> %s\n' "$*" >&2
}

if [ "${MOLT_TEST_LINT:-0}" = 1 ]; then
    step "cargo fmt --all -- --check"
    molt_run cargo fmt --all -- --check
fi

step "cargo build --workspace --bins --release"
molt_run cargo build --workspace --bins --release

oracle_tools=(-p molt-dump -p molt-verify -p molt-slice -p molt-cutover)
step "cargo check ${oracle_tools[*]} --features oracle --release"
molt_run cargo check "${oracle_tools[@]}" --features oracle --release
# Oracle value conversion from the driver's own types: needs the feature,
# not a server or client library.
step "cargo test -p molt-core --features oracle --release --test oracle_client"
molt_run cargo test -p molt-core --features oracle --release --test oracle_client

if [ "${MOLT_TEST_LINT:-0}" = 1 ]; then
    step "cargo clippy --workspace --all-targets --release -- -D warnings"
    molt_run cargo clippy --workspace --all-targets --release -- -D warnings
    step "cargo clippy ${oracle_tools[*]} --features oracle --all-targets --release -- -D warnings"
    molt_run cargo clippy "${oracle_tools[@]}" --features oracle --all-targets --release -- -D warnings
fi

# Where cargo put the binaries: CARGO_TARGET_DIR, build.target-dir in a
# .cargo/config.toml, or ./target - cargo metadata knows.
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p' || true)
if [ -z "$target_dir" ]; then
    target_dir=${CARGO_TARGET_DIR:-$repo/target}
    case $target_dir in
        /*) ;;
        *) target_dir=$repo/$target_dir ;;
    esac
fi
MOLT_BIN_DIR=$target_dir/release
export MOLT_BIN_DIR

# The target. CockroachDB cannot be installed here, and PostgreSQL accepts
# more than CockroachDB does, so every test that writes to or reads from the
# target goes through the CockroachDB stand-in (tests/crdb-standin), which
# refuses what CockroachDB refuses, in front of a PostgreSQL that defaults to
# SERIALIZABLE as CockroachDB does. MOLT_TEST_PG_TARGET is the stand-in's URL;
# MOLT_TEST_PG_TARGET_DIRECT is the PostgreSQL behind it (for the stand-in's
# own tests and the few tests of PostgreSQL-target features); it is started
# with a real cluster too.
#
# MOLT_TEST_CRDB_URL=postgresql://root@host:26257/defaultdb?sslmode=...
# runs the target side against a real CockroachDB cluster instead.
need_servers=0
for v in MOLT_TEST_PG_SOURCE MOLT_TEST_MYSQL_SOURCE; do
    [ -n "${!v:-}" ] || need_servers=1
done
[ -n "${MOLT_TEST_PG_TARGET_DIRECT:-}" ] || need_servers=1
if [ "$need_servers" = 1 ]; then
    step "starting throwaway database servers"
    molt_ensure_server_binaries
    molt_ensure_postgis
    MOLT_SERVERS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/molt-servers.XXXXXX")
    export MOLT_SERVERS_DIR
    if [ -z "${MOLT_TEST_PG_SOURCE:-}" ]; then
        MOLT_TEST_PG_SOURCE=$(molt_start_pg pg-source)
    fi
    if [ -z "${MOLT_TEST_MYSQL_SOURCE:-}" ]; then
        MOLT_TEST_MYSQL_SOURCE=$(molt_start_mariadb mysql-source)
    fi
    if [ -z "${MOLT_TEST_PG_TARGET_DIRECT:-}" ]; then
        serializable_conf=$MOLT_SERVERS_DIR/serializable.conf
        printf "default_transaction_isolation = 'serializable'\n" >"$serializable_conf"
        MOLT_TEST_PG_TARGET_DIRECT=$(MOLT_PG_EXTRA_CONF=$serializable_conf molt_start_pg pg-target)
    fi
else
    step "using the servers in MOLT_TEST_PG_SOURCE, MOLT_TEST_MYSQL_SOURCE and MOLT_TEST_PG_TARGET_DIRECT"
fi
if [ -n "${MOLT_TEST_CRDB_URL:-}" ]; then
    step "the target is the CockroachDB cluster in MOLT_TEST_CRDB_URL"
    MOLT_TEST_PG_TARGET=$MOLT_TEST_CRDB_URL
else
    step "starting the CockroachDB stand-in in front of the target PostgreSQL"
    # shellcheck source=scripts/lib/standin.sh
    source "$repo/scripts/lib/standin.sh"
    if [ -z "${MOLT_SERVERS_DIR:-}" ]; then
        MOLT_SERVERS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/molt-servers.XXXXXX")
        export MOLT_SERVERS_DIR
    fi
    MOLT_TEST_PG_TARGET=$(molt_start_standin crdb "$MOLT_TEST_PG_TARGET_DIRECT" \
        --events "$MOLT_SERVERS_DIR/standin-events.jsonl")
    trap 'molt_stop_standins; molt_stop_servers' EXIT
fi
export MOLT_TEST_PG_SOURCE MOLT_TEST_PG_TARGET MOLT_TEST_PG_TARGET_DIRECT MOLT_TEST_MYSQL_SOURCE
{
    printf '    MOLT_TEST_PG_SOURCE=%s\n' "$MOLT_TEST_PG_SOURCE"
    printf '    MOLT_TEST_PG_TARGET=%s  (%s)\n' "$MOLT_TEST_PG_TARGET" "${MOLT_TEST_CRDB_URL:+a real CockroachDB}${MOLT_TEST_CRDB_URL:-the CockroachDB stand-in}"
    printf '    MOLT_TEST_PG_TARGET_DIRECT=%s  (the PostgreSQL behind the stand-in)\n' "$MOLT_TEST_PG_TARGET_DIRECT"
    printf '    MOLT_TEST_MYSQL_SOURCE=%s\n' "$MOLT_TEST_MYSQL_SOURCE"
    printf '    MOLT_BIN_DIR=%s\n' "$MOLT_BIN_DIR"
} | sed 's/:[^:@/]*@/:***@/' >&2

# Tests that need the shared sample datasets (../shared/datasets, absent
# from a clone with nothing beside it) skip themselves and say why in this
# file; the summary below counts them. .ci/run sets MOLT_REQUIRE_DATASETS=1
# so that CI, which has the datasets, never skips.
MOLT_TEST_SKIP_LOG=$(mktemp "${TMPDIR:-/tmp}/molt-skipped.XXXXXX")
export MOLT_TEST_SKIP_LOG
step "cargo test --workspace --release $*"
# Not exec: the EXIT trap must still stop the servers afterwards.
status=0
molt_run cargo test --workspace --release "$@" || status=$?
skipped=$(grep -c . "$MOLT_TEST_SKIP_LOG" || true)
if [ "$skipped" -gt 0 ]; then
    step "$skipped test(s) skipped (they pass in cargo's count but did not run):"
    sed 's/^/    /' "$MOLT_TEST_SKIP_LOG" >&2
else
    step "no test skipped"
fi
rm -f "$MOLT_TEST_SKIP_LOG"
exit "$status"
