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
#    MOLT_TEST_PG_SOURCE, MOLT_TEST_PG_TARGET (PostgreSQL standing in for
#    CockroachDB) and MOLT_TEST_MYSQL_SOURCE that is not already set, and
#    stops them on exit, Ctrl-C included. Set all three to use your own servers.
# 5. cargo test --workspace --release "$@".
#
# Environment: MOLT_TEST_LINT, MOLT_TEST_PG_SOURCE, MOLT_TEST_PG_TARGET,
# MOLT_TEST_MYSQL_SOURCE, CARGO_TARGET_DIR, MOLT_KEEP_SERVERS_DIR (keep the
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

if [ -n "${MOLT_TEST_PG_SOURCE:-}" ] && [ -n "${MOLT_TEST_PG_TARGET:-}" ] \
    && [ -n "${MOLT_TEST_MYSQL_SOURCE:-}" ]; then
    step "using the servers in MOLT_TEST_PG_SOURCE, MOLT_TEST_PG_TARGET, MOLT_TEST_MYSQL_SOURCE"
else
    step "starting throwaway database servers"
    molt_ensure_server_binaries
    MOLT_SERVERS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/molt-servers.XXXXXX")
    export MOLT_SERVERS_DIR
    if [ -z "${MOLT_TEST_PG_SOURCE:-}" ]; then
        MOLT_TEST_PG_SOURCE=$(molt_start_pg pg-source)
    fi
    if [ -z "${MOLT_TEST_PG_TARGET:-}" ]; then
        MOLT_TEST_PG_TARGET=$(molt_start_pg pg-target)
    fi
    if [ -z "${MOLT_TEST_MYSQL_SOURCE:-}" ]; then
        MOLT_TEST_MYSQL_SOURCE=$(molt_start_mariadb mysql-source)
    fi
fi
export MOLT_TEST_PG_SOURCE MOLT_TEST_PG_TARGET MOLT_TEST_MYSQL_SOURCE

# The CockroachDB stand-in's own tests (tests/crdb-standin) need a PostgreSQL
# that defaults to SERIALIZABLE, as CockroachDB does. It is a server of its
# own so that the rest of the suite's target is unchanged until the suite
# runs through the stand-in.
if [ -z "${MOLT_TEST_PG_TARGET_DIRECT:-}" ]; then
    step "starting the stand-in's serializable PostgreSQL"
    molt_ensure_server_binaries
    if [ -z "${MOLT_SERVERS_DIR:-}" ]; then
        MOLT_SERVERS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/molt-servers.XXXXXX")
        export MOLT_SERVERS_DIR
    fi
    serializable_conf=$MOLT_SERVERS_DIR/serializable.conf
    printf "default_transaction_isolation = 'serializable'\n" >"$serializable_conf"
    MOLT_TEST_PG_TARGET_DIRECT=$(MOLT_PG_EXTRA_CONF=$serializable_conf molt_start_pg standin-upstream)
fi
export MOLT_TEST_PG_TARGET_DIRECT
{
    printf '    MOLT_TEST_PG_SOURCE=%s\n' "$MOLT_TEST_PG_SOURCE"
    printf '    MOLT_TEST_PG_TARGET=%s  (stands in for CockroachDB)\n' "$MOLT_TEST_PG_TARGET"
    printf '    MOLT_TEST_MYSQL_SOURCE=%s\n' "$MOLT_TEST_MYSQL_SOURCE"
    printf '    MOLT_BIN_DIR=%s\n' "$MOLT_BIN_DIR"
} | sed 's/:[^:@/]*@/:***@/' >&2

step "cargo test --workspace --release $*"
# Not exec: the EXIT trap must still stop the servers afterwards.
molt_run cargo test --workspace --release "$@"
