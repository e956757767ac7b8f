#!/usr/bin/env bash
#
# scripts/crdb-check.sh - qualify a CockroachDB cluster before the first phase.
#
#   scripts/crdb-check.sh TARGET_URL [--keep]
#
#   scripts/crdb-check.sh 'postgresql://root@crdb:26257/defaultdb?sslmode=verify-full&sslrootcert=ca.crt'
#
# The tests run against a stand-in (tests/crdb-standin), not CockroachDB. This
# script runs molt's target side against the real cluster, in a scratch
# database it creates there (molt_check_<pid>) and drops at the end:
#
#   1. types      a table of every type molt maps (edge values, NULLs, bytes,
#                 arrays, JSON, BC dates) from a throwaway PostgreSQL source:
#                 molt-dump | molt-load, then molt-verify: exact or it fails;
#   2. phase A    the demo shop's first region, one slice of shared tables,
#                 through scripts/phase.sh: freeze, load, verify, finalize, switch;
#   3. phase B    the second slice of the same tables: phase A's rows untouched;
#   4. re-run     phase A again: nothing to do, exit 0;
#   5. drop       the scratch database (kept with --keep).
#
# Needs the molt tools (built here unless MOLT_BIN_DIR holds them), psql, and
# a local PostgreSQL for the throwaway source (installed as demo.sh does).
# The user in TARGET_URL needs CREATEDB. Exit 0 only when every step passed.
# Passwords in TARGET_URL are never printed.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
source "$repo/scripts/lib/servers.sh"
source "$repo/scripts/lib/demo-data.sh"

target= keep=no
while [ $# -gt 0 ]; do
    case $1 in
        --keep) keep=yes; shift ;;
        -h | --help) sed -n '3,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        -*) printf 'crdb-check.sh: unknown option %s (see --help)\n' "$1" >&2; exit 2 ;;
        *) [ -z "$target" ] || { printf 'crdb-check.sh: one TARGET_URL only\n' >&2; exit 2; }
           target=$1; shift ;;
    esac
done
[ -n "$target" ] || { printf 'usage: scripts/crdb-check.sh TARGET_URL [--keep] (see --help)\n' >&2; exit 2; }
case $target in
    postgres://* | postgresql://* | cockroachdb://*) ;;
    *) printf 'crdb-check.sh: TARGET_URL must be postgresql://... (or cockroachdb://...)\n' >&2; exit 2 ;;
esac
target=${target/#cockroachdb:\/\//postgresql://}

redact() { sed 's#://\([^:@/]*\):[^@/]*@#://\1:***@#g'; }
step() { printf '\n==> %s\n' "$*" >&2; }
passed=() failed=()
record() { # record NAME STATUS
    if [ "$2" = 0 ]; then passed+=("$1"); else failed+=("$1"); fi
}

# The scratch database's URL: TARGET_URL with its database replaced.
scratch=molt_check_$$
with_db() { # with_db URL DB
    local url=$1 db=$2 base query=
    case $url in *\?*) query="?${url#*\?}"; url=${url%%\?*} ;; esac
    base=${url#*://}
    case $base in
        */*) url=${url%/*} ;;
    esac
    printf '%s/%s%s\n' "$url" "$db" "$query"
}
scratch_url=$(with_db "$target" "$scratch")

unset MOLT_SERVERS_DIR
molt_install_server_trap
cleanup() {
    if [ "$keep" = no ]; then
        psql -X -q -d "$target" -c "DROP DATABASE IF EXISTS $scratch CASCADE" >/dev/null 2>&1 \
            || psql -X -q -d "$target" -c "DROP DATABASE IF EXISTS $scratch" >/dev/null 2>&1 || true
    fi
    molt_stop_servers
}
trap cleanup EXIT

tools=(molt-slice molt-dump molt-load molt-verify molt-cutover)
have_tools() {
    local t
    [ -n "${MOLT_BIN_DIR:-}" ] || return 1
    for t in "${tools[@]}"; do [ -x "$MOLT_BIN_DIR/$t" ] || return 1; done
}
if ! have_tools; then
    molt_build_release_bins "$repo"
    MOLT_BIN_DIR=$bin
fi
export MOLT_BIN_DIR

step "connecting to $(redact <<<"$target")"
version=$(psql -X -A -t -q -d "$target" -c 'SELECT version()') || {
    printf 'crdb-check.sh: cannot connect to the target\n' >&2
    exit 1
}
printf '    %s\n' "$version" >&2
case $version in
    *CockroachDB*) ;;
    *) printf 'crdb-check.sh: warning: the target is not CockroachDB (%s)\n' "${version%% on *}" >&2 ;;
esac
psql -X -q -v ON_ERROR_STOP=1 -d "$target" -c "CREATE DATABASE $scratch" >/dev/null
printf '    scratch database %s\n' "$scratch" >&2

step "starting a throwaway PostgreSQL source"
molt_ensure_server_binaries
MOLT_SERVERS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/molt-check.XXXXXX")
export MOLT_SERVERS_DIR
source_server=$(molt_start_pg check-source)
psql -X -q -v ON_ERROR_STOP=1 -d "$source_server" -c 'CREATE DATABASE shop' >/dev/null
source_url=${source_server%/*}/shop
molt_demo_seed pg "$source_url" 20000
psql -X -q -v ON_ERROR_STOP=1 -d "$source_url" >/dev/null <<'SQL'
CREATE TYPE mood AS ENUM ('ok', 'it''s "odd"');
CREATE TABLE types (
    id int8 PRIMARY KEY, b bool, i2 int2, i8 int8, d numeric, d2 numeric(12,2), f4 float4, f8 float8,
    t text, vc varchar(10), c char(3), by bytea, dt date, tm time, ts timestamp(6), tstz timestamptz,
    iv interval, js jsonb, u uuid, bits varbit, m mood, net inet, tags text[], dates date[]);
INSERT INTO types VALUES
    (1, true, -32768, -9223372036854775808, 'NaN', 12.30, 'Infinity', -0.0,
     E'tab\there\nnew \\ "q" 😀', 'ten chars!', 'ab', '\x00ff5c7800'::bytea, '0001-01-01 BC', '24:00:00',
     '2024-02-29 23:59:59.999999', '2024-01-31 10:00:00.123456Z', 'P1Y2M3DT4H5M6.000007S',
     '{"a": [1, 2.5, {"b": null}], "ü": "\u0001"}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', B'0101',
     'it''s "odd"', '10.0.0.0/8', ARRAY['a', NULL, 'b,c', 'NULL', ''], ARRAY['2020-02-29'::date, NULL]),
    (2, false, 32767, 9223372036854775807, '-12345678901234567890.123456789', -0.01, 1.5, 1.7976931348623157e308,
     '', '', '', '', 'infinity', '00:00:00', '-infinity', 'infinity', 'P-1D', '[]', '00000000-0000-0000-0000-000000000000',
     B'', 'ok', '::1', '{}', '{}'),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL);
SQL

step "1. types: molt-dump | molt-load | molt-verify"
status=0
{
    MOLT_SOURCE=$source_url "$MOLT_BIN_DIR/molt-dump" --quiet --table public.types \
        | MOLT_TARGET=$scratch_url "$MOLT_BIN_DIR/molt-load" --quiet >/dev/null \
        && MOLT_SOURCE=$source_url MOLT_TARGET=$scratch_url "$MOLT_BIN_DIR/molt-verify" --table public.types >/dev/null
} || status=$?
record types "$status"

work=$(mktemp -d "${TMPDIR:-/tmp}/molt-check-work.XXXXXX")
cat >"$work/molt.env" <<EOF
MOLT_SOURCE=$source_url
MOLT_TARGET=$scratch_url
MOLT_PLAN=$repo/examples/demo-plan.toml
MOLT_JOBS=2
MOLT_SHARD_ROWS=5000
MOLT_STATE_DIR=$work/state
MOLT_LOG_DIR=$work/logs
MOLT_BIN_DIR=$MOLT_BIN_DIR
EOF
for phase in A B; do
    step "$([ "$phase" = A ] && echo 2 || echo 3). phase $phase: scripts/phase.sh $phase (freeze, load, verify, finalize, switch)"
    status=0
    scripts/phase.sh "$phase" --env "$work/molt.env" || status=$?
    record "phase $phase" "$status"
done
step "4. phase A again: nothing to do"
status=0
out=$(scripts/phase.sh A --env "$work/molt.env" 2>&1) || status=$?
record "phase A re-run" "$status"
printf '%s\n' "$out" | tail -n 3 | redact >&2

step "5. dropping the scratch database"
if [ "$keep" = no ]; then
    # CockroachDB drops a database with its tables only with CASCADE, which
    # PostgreSQL (the stand-in) does not parse.
    status=0
    psql -X -q -d "$target" -c "DROP DATABASE $scratch CASCADE" >/dev/null 2>&1 \
        || psql -X -q -d "$target" -c "DROP DATABASE $scratch" >/dev/null || status=$?
    record "drop" "$status"
else
    printf '    kept: %s\n' "$(redact <<<"$scratch_url")" >&2
fi

printf '\ncrdb-check: %s\n' "$(redact <<<"$target")"
for p in "${passed[@]}"; do printf '  pass  %s\n' "$p"; done
for f in "${failed[@]+"${failed[@]}"}"; do printf '  FAIL  %s\n' "$f"; done
if [ "${#failed[@]}" -gt 0 ]; then
    printf 'the cluster is not ready for molt: see the failing steps above (logs in %s)\n' "$work"
    exit 1
fi
printf 'the cluster passed every check\n'
