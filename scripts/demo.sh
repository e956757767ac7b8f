#!/usr/bin/env bash
#
# scripts/demo.sh - migrate a sample shop database into a stand-in target,
# one region per phase, the way cron would on four evenings.
#
#   scripts/demo.sh [--rows N] [--source pg|mysql] [--jobs J] [--keep-servers]
#
# 1. Builds the molt tools in release mode (skipped when MOLT_BIN_DIR already
#    holds all five), and starts throwaway servers with scripts/lib/servers.sh:
#    the source (PostgreSQL, or MariaDB with --source mysql) and the target:
#    the CockroachDB stand-in (tests/crdb-standin, which refuses what
#    CockroachDB refuses and answers as CockroachDB) in front of a PostgreSQL
#    that defaults to SERIALIZABLE. They are stopped on exit, Ctrl-C included.
# 2. Seeds the source with four regions (A-D) of customers, orders and order
#    items, and a product catalogue (scripts/lib/demo-data.sh): N orders
#    (default 300000), about 2N order items, N/5 customers.
# 3. Audits the plan, examples/demo-plan.toml (molt-slice audit).
# 4. Runs phases A, B, C and D one after another with scripts/phase.sh:
#    freeze, dump | load, verify, finalize, switch.
# 5. Verifies the whole database once more, and prints a summary per phase
#    (rows, MB, seconds, verified) and where the logs are.
#
# Options:
#   --rows N          orders to generate (default 300000; the whole demo then
#                     takes about a minute on two cores, after the build)
#   --source pg|mysql the source engine (default pg)
#   --jobs J          parallel sections per phase (default 2)
#   --keep-servers    keep the servers' data directory after the run
#
# Exit codes: 0 every phase cut over and verified; 1 something failed (the
# message says what, and the phase logs stay in the work directory).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=scripts/lib/servers.sh
source "$repo/scripts/lib/servers.sh"
# shellcheck source=scripts/lib/demo-data.sh
source "$repo/scripts/lib/demo-data.sh"

rows=300000 engine=pg jobs=2
while [ $# -gt 0 ]; do
    case $1 in
        --rows) rows=${2:?--rows needs a number}; shift 2 ;;
        --rows=*) rows=${1#*=}; shift ;;
        --source) engine=${2:?--source needs pg or mysql}; shift 2 ;;
        --source=*) engine=${1#*=}; shift ;;
        --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
        --jobs=*) jobs=${1#*=}; shift ;;
        --keep-servers) export MOLT_KEEP_SERVERS_DIR=1; shift ;;
        -h | --help) sed -n '3,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) printf 'demo.sh: unknown argument %s (see --help)\n' "$1" >&2; exit 2 ;;
    esac
done
case $engine in
    pg | postgres | postgresql) engine=pg ;;
    mysql | mariadb) engine=mysql ;;
    *) printf 'demo.sh: --source must be pg or mysql, not %s\n' "$engine" >&2; exit 2 ;;
esac
case $rows in
    '' | *[!0-9]*) printf 'demo.sh: --rows must be a number\n' >&2; exit 2 ;;
esac
case $jobs in
    '' | *[!0-9]* | 0) printf 'demo.sh: --jobs must be a positive number\n' >&2; exit 2 ;;
esac

step() { printf '\n==> %s\n' "$*" >&2; }
now() { printf '%s\n' "${EPOCHREALTIME:-$(date +%s.%N)}"; }
secs_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
demo_start=$(now)

# Only servers this run starts are ours to stop.
unset MOLT_SERVERS_DIR
molt_install_server_trap

# --- 1. tools and servers ------------------------------------------------------

tools=(molt-slice molt-dump molt-load molt-verify molt-cutover molt-crdb-standin)
have_tools() {
    local t
    [ -n "${MOLT_BIN_DIR:-}" ] || return 1
    for t in "${tools[@]}"; do
        [ -x "$MOLT_BIN_DIR/$t" ] || return 1
    done
}
if have_tools; then
    step "using the molt tools in MOLT_BIN_DIR=$MOLT_BIN_DIR"
else
    command -v cargo >/dev/null 2>&1 || {
        printf 'demo.sh: cargo is needed to build the tools: https://rustup.rs\n' >&2
        exit 1
    }
    step "cargo build --release (the five tools)"
    molt_run cargo build --release --bins -p molt-slice -p molt-dump -p molt-load -p molt-verify -p molt-cutover \
        -p molt-crdb-standin
    target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
        | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p' || true)
    [ -n "$target_dir" ] || target_dir=${CARGO_TARGET_DIR:-$repo/target}
    case $target_dir in /*) ;; *) target_dir=$repo/$target_dir ;; esac
    MOLT_BIN_DIR=$target_dir/release
    export MOLT_BIN_DIR
fi

step "starting throwaway servers"
molt_ensure_server_binaries
MOLT_SERVERS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/molt-servers.XXXXXX")
export MOLT_SERVERS_DIR
if [ "$engine" = pg ]; then
    source_server=$(molt_start_pg demo-source)
else
    source_server=$(molt_start_mariadb demo-source)
fi
printf "default_transaction_isolation = 'serializable'\n" >"$MOLT_SERVERS_DIR/serializable.conf"
target_pg=$(MOLT_PG_EXTRA_CONF=$MOLT_SERVERS_DIR/serializable.conf molt_start_pg demo-target)
# shellcheck source=scripts/lib/standin.sh
source "$repo/scripts/lib/standin.sh"
target_server=$(molt_start_standin demo-crdb "$target_pg")
trap 'molt_stop_standins; molt_stop_servers' EXIT

# --- 2. the source database --------------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/molt-demo.XXXXXX")
step "seeding the source: $rows orders in four regions ($engine)"
seed_start=$(now)
if [ "$engine" = pg ]; then
    psql -X -q -v ON_ERROR_STOP=1 -d "$source_server" -c 'CREATE DATABASE shop' >/dev/null
    source_url=${source_server%/*}/shop
else
    MYSQL_PWD= "$MOLT_MYSQL_CLIENT" --no-defaults --socket="$MOLT_SERVERS_DIR/demo-source/run/mysqld.sock" -uroot \
        -e 'CREATE DATABASE shop CHARACTER SET utf8mb4' >&2
    source_url=${source_server%/*}/shop
fi
psql -X -q -v ON_ERROR_STOP=1 -d "$target_server" -c 'CREATE DATABASE shop' >/dev/null
target_url=${target_server%/*}/shop
molt_demo_seed "$engine" "$source_url" "$rows"
printf 'demo.sh: seeded in %ss\n' "$(secs_since "$seed_start")" >&2

# The configuration a cron job would have (docs/runbook.md).
cat >"$work/molt.env" <<EOF
# Written by scripts/demo.sh. The URLs have no passwords (trust authentication).
MOLT_SOURCE=$source_url
MOLT_TARGET=$target_url
MOLT_PLAN=$repo/examples/demo-plan.toml
MOLT_JOBS=$jobs
MOLT_SHARD_ROWS=50000
MOLT_STATE_DIR=$work/state
MOLT_LOG_DIR=$work/logs
MOLT_BIN_DIR=$MOLT_BIN_DIR
MOLT_SWITCH_HOOK=echo "route: phase \$MOLT_PHASE now served by the target" >&2
EOF

# --- 3. the audit --------------------------------------------------------------------

step "molt-slice audit --plan examples/demo-plan.toml"
MOLT_SOURCE=$source_url "$MOLT_BIN_DIR/molt-slice" audit --plan "$repo/examples/demo-plan.toml" >"$work/audit.ndjson"
grep '"kind":"audit_table"' "$work/audit.ndjson" \
    | sed -E 's/.*"rows":([0-9]+).*"name":"([^"]*)".*/    \2: \1 rows, each in exactly one phase/' >&2

# --- 4. the phases ----------------------------------------------------------------------

for phase in A B C D; do
    step "scripts/phase.sh $phase --env $work/molt.env"
    scripts/phase.sh "$phase" --env "$work/molt.env" || {
        code=$?
        printf 'demo.sh: phase %s failed (exit %s); logs in %s/logs\n' "$phase" "$code" "$work" >&2
        exit 1
    }
done

# --- 5. the whole database, and the summary ------------------------------------------------

step "molt-verify: the whole database, every table, no filter"
whole=no
if MOLT_SOURCE=$source_url MOLT_TARGET=$target_url "$MOLT_BIN_DIR/molt-verify" \
    --table customers --table orders --table order_items --table products >"$work/verify-all.ndjson"; then
    whole=yes
fi

field() { grep -o "\"$1\":[^,}]*" <<<"$2" | head -n 1 | cut -d: -f2- | tr -d '"'; }
{
    printf '\nmolt demo: %s source, %s orders, %s jobs\n\n' "$engine" "$rows" "$jobs"
    printf '%-6s %10s %9s %9s  %s\n' phase rows MB seconds verified
    total_rows=0 total_bytes=0 all=yes
    for phase in A B C D; do
        log=$(ls -t "$work/logs/phase-$phase-"*.ndjson | head -n 1)
        line=$(grep '"type":"phase_summary"' "$log" | tail -n 1)
        r=$(field rows "$line") b=$(field bytes "$line") s=$(field seconds "$line") v=$(field verified "$line")
        [ "$v" = true ] && v=yes || { v=no; all=no; }
        total_rows=$((total_rows + r)) total_bytes=$((total_bytes + b))
        printf '%-6s %10s %9s %9s  %s\n' "$phase" "$r" "$(awk -v b="$b" 'BEGIN { printf "%.1f", b / 1048576 }')" \
            "$(awk -v s="$s" 'BEGIN { printf "%.1f", s }')" "$v"
    done
    printf '%-6s %10s %9s\n' total "$total_rows" "$(awk -v b="$total_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')"
    printf '\nwhole database verified: %s\n' "$whole"
    if [ "$all" = yes ] && [ "$whole" = yes ]; then
        printf 'all four phases cut over and verified\n'
    fi
    printf 'logs: %s/logs (one NDJSON file per phase run); audit and final verify: %s\n' "$work" "$work"
    printf 'demo took %ss\n' "$(secs_since "$demo_start")"
} >"$work/summary.txt"
cat "$work/summary.txt"

grep -q '^all four phases cut over and verified$' "$work/summary.txt" || exit 1
# --- 6. the EXIT trap stops the servers.
