#!/usr/bin/env bash
#
# scripts/scale-tables.sh - molt against a schema of many tables (10,000 by
# default), where pgcopydb and myloader are known to break.
#
#   scripts/scale-tables.sh [--tables N] [--rows R] [--jobs J] [pg] [mysql]   (default: both)
#
# For each source engine it creates N tables (a primary key each, a foreign
# key to the previous table on every 5th, a secondary index on every 10th,
# R rows each, default 0), then times, with wall seconds and peak RSS:
#
#   molt-slice plan      one phase taking every table whole (`whole = ["t*"]`)
#   molt-dump            the slices above: introspects every table, reads it
#   molt-load --finalize creates every table on the target, loads, then adds
#                        the deferred indexes and foreign keys
#   molt-load (re-run)   the same stream again: every section skipped via the ledger
#
# and checks the counts: N slices, N section headers, N tables, N/5 foreign
# keys and N/10 secondary indexes on the target.
#
# It starts throwaway servers (scripts/lib/servers.sh) unless MOLT_TEST_PG_SOURCE,
# MOLT_TEST_PG_TARGET and MOLT_TEST_MYSQL_SOURCE are set (a shared server
# with 10,000 extra tables slows everyone's catalog queries: prefer the
# throwaway ones), and builds the tools in release mode. Peak RSS is GNU
# time's maximum resident set size.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=scripts/lib/servers.sh
source "$repo/scripts/lib/servers.sh"

tables=10000
rows=0
jobs=4
parts=()
while [ $# -gt 0 ]; do
    case $1 in
        --tables) tables=$2; shift 2 ;;
        --rows) rows=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        pg|mysql) parts+=("$1"); shift ;;
        -h|--help) sed -n '3,25p' "$0"; exit 0 ;;
        *) echo "scale-tables.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ ${#parts[@]} -gt 0 ] || parts=(pg mysql)
want() { local p; for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }
say() { printf '\n==> %s\n' "$*" >&2; }
fail() { echo "scale-tables.sh: $*" >&2; exit 1; }

unset MOLT_SERVERS_DIR
molt_install_server_trap

molt_build_release_bins "$repo"
molt_use_servers scale "$(want mysql && echo yes || echo no)"

work=$(mktemp -d "${TMPDIR:-/tmp}/molt-scale-work.XXXXXX")
results=$work/results
trap 'rm -rf "$work"; molt_stop_servers' EXIT
record() { printf '%s\n' "$*" | tee -a "$results" >&2; }

with_db() { printf '%s\n' "${1%/*}/$2"; }
pg() { psql -X -q -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
pg_value() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
pg_fresh() { PGOPTIONS="-c client_min_messages=warning" pg "$1" "DROP DATABASE IF EXISTS $2" >/dev/null && pg "$1" "CREATE DATABASE $2" >/dev/null; with_db "$1" "$2"; }
my() {
    local hostport=${1#*@}
    hostport=${hostport%%/*}
    "${MOLT_MYSQL_CLIENT:-mariadb}" --no-defaults --protocol=TCP -uroot -h "${hostport%%:*}" -P "${hostport##*:}" "${@:2}"
}

# measure NAME CMD: runs CMD (a shell command line) under GNU time; sets
# $secs and $rss_mb; fails with CMD's stderr when it fails.
measure() {
    local name=$1 cmd=$2
    say "$name"
    if ! /usr/bin/time -f '%e %M' -o "$work/time" sh -c "$cmd" 2>"$work/stderr"; then
        tail -n 20 "$work/stderr" >&2
        fail "$name failed: $cmd"
    fi
    read -r secs rss_kb <"$work/time"
    rss_mb=$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }')
}
seconds_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# The DDL for N tables, one statement per line, in $1's dialect.
table_ddl() {
    awk -v n="$tables" -v rows="$rows" -v dialect="$1" 'BEGIN {
        for (i = 1; i <= n; i++) {
            t = sprintf("t%05d", i); prev = sprintf("t%05d", i - 1)
            if (dialect == "pg") {
                fk = (i % 5 == 0 && i > 1) ? " REFERENCES " prev " (id)" : ""
                printf "CREATE TABLE %s (id bigint PRIMARY KEY, parent_id bigint%s, name text NOT NULL, created_at timestamp, amount numeric(12,2));\n", t, fk
                if (i % 10 == 0) printf "CREATE INDEX %s_name ON %s (name);\n", t, t
                if (rows > 0) printf "INSERT INTO %s SELECT g, NULL, %sname %s || g, timestamp %s2024-01-01%s + g * interval %s1 minute%s, g / 100.0 FROM generate_series(1, %d) g;\n", t, "\047", "\047", "\047", "\047", "\047", "\047", rows
            } else {
                fk = (i % 5 == 0 && i > 1) ? ", FOREIGN KEY (parent_id) REFERENCES " prev " (id)" : ""
                idx = (i % 10 == 0) ? ", KEY " t "_name (name)" : ""
                printf "CREATE TABLE %s (id bigint PRIMARY KEY, parent_id bigint, name varchar(100) NOT NULL, created_at datetime, amount decimal(12,2)%s%s);\n", t, idx, fk
                if (rows > 0) printf "INSERT INTO %s SELECT seq, NULL, CONCAT(%sname %s, seq), TIMESTAMP %s2024-01-01 00:00:00%s + INTERVAL seq MINUTE, seq / 100.0 FROM seq_1_to_%d;\n", t, "\047", "\047", "\047", "\047", rows
            }
        }
    }'
}

# run_tools ENGINE SOURCE_URL PLAN_SCHEMA: the timed molt steps and checks.
run_tools() {
    local engine=$1 src=$2 schema=$3 tgt n fks idx
    cat >"$work/plan.toml" <<EOF
schema = "$schema"
[[phase]]
name = "all"
whole = ["t*"]
EOF
    measure "$engine: molt-slice plan ($tables tables)" \
        "'$bin/molt-slice' plan --plan '$work/plan.toml' --source '$src' > '$work/slices.ndjson'"
    local slice_s=$secs slice_rss=$rss_mb
    n=$(grep -c '"type":"slice"' "$work/slices.ndjson" || true)
    [ "$n" = "$tables" ] || fail "$engine: molt-slice printed $n slices, expected $tables"

    measure "$engine: molt-dump --jobs $jobs" \
        "'$bin/molt-dump' --quiet --jobs $jobs --source '$src' < '$work/slices.ndjson' > '$work/stream.ndjson'"
    local dump_s=$secs dump_rss=$rss_mb
    n=$(grep -c '^{"type":"table"' "$work/stream.ndjson" || true)
    [ "$n" = "$tables" ] || fail "$engine: molt-dump wrote $n sections, expected $tables"

    tgt=$(pg_fresh "$pg_tgt_server" "scale_tgt_$engine")
    measure "$engine: molt-load --finalize --jobs $jobs" \
        "'$bin/molt-load' --quiet --jobs $jobs --finalize --target '$tgt' < '$work/stream.ndjson' > '$work/results.ndjson'"
    local load_s=$secs load_rss=$rss_mb
    n=$(pg_value "$tgt" "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name LIKE 't%'")
    [ "$n" = "$tables" ] || fail "$engine: the target has $n tables, expected $tables"
    fks=$(pg_value "$tgt" "SELECT count(*) FROM pg_constraint c JOIN pg_namespace s ON s.oid = c.connamespace WHERE s.nspname = 'public' AND c.contype = 'f'")
    idx=$(pg_value "$tgt" "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND indexname NOT LIKE '%pkey'")
    [ "$fks" = "$((tables / 5))" ] || fail "$engine: the target has $fks foreign keys, expected $((tables / 5))"
    [ "$idx" -ge "$((tables / 10))" ] || fail "$engine: the target has $idx secondary indexes, expected at least $((tables / 10))"
    if [ "$rows" -gt 0 ]; then
        n=$(pg_value "$tgt" "SELECT sum(\"rows\") FROM _molt.sections WHERE status = 'loaded'")
        [ "$n" = "$((tables * rows))" ] || fail "$engine: the ledger has $n rows loaded, expected $((tables * rows))"
    fi

    measure "$engine: molt-load re-run (every section skipped)" \
        "'$bin/molt-load' --quiet --jobs $jobs --target '$tgt' < '$work/stream.ndjson' > '$work/results2.ndjson'"
    local rerun_s=$secs rerun_rss=$rss_mb
    n=$(grep -c '"status":"skipped"' "$work/results2.ndjson" || true)
    [ "$n" = "$tables" ] || fail "$engine: the re-run skipped $n sections, expected $tables"

    record "$engine $tables tables x $rows rows ($fks foreign keys, $idx secondary indexes on the target):" \
        "molt-slice plan ${slice_s}s ${slice_rss} MB;" \
        "molt-dump ${dump_s}s ${dump_rss} MB (stream $(du -m "$work/stream.ndjson" | cut -f1) MB);" \
        "molt-load --finalize ${load_s}s ${load_rss} MB;" \
        "molt-load re-run ${rerun_s}s ${rerun_rss} MB"
    pg "$pg_tgt_server" "DROP DATABASE scale_tgt_$engine" >/dev/null
}

if want pg; then
    src=$(pg_fresh "$pg_src_server" scale_src)
    say "pg: creating $tables tables"
    table_ddl pg >"$work/pg.sql"
    start=$(date +%s.%N)
    psql -X -q -v ON_ERROR_STOP=1 -d "$src" -f "$work/pg.sql" >/dev/null
    record "pg: created $tables tables with psql in $(seconds_since "$start")s"
    run_tools pg "$src" public
    pg "$pg_src_server" "DROP DATABASE scale_src" >/dev/null
fi

if want mysql; then
    say "mysql: creating $tables tables"
    my "$my_server" -e "DROP DATABASE IF EXISTS scale_src; CREATE DATABASE scale_src"
    table_ddl mysql >"$work/my.sql"
    start=$(date +%s.%N)
    my "$my_server" scale_src <"$work/my.sql"
    record "mysql: created $tables tables with the mariadb client in $(seconds_since "$start")s"
    run_tools mysql "$(with_db "$my_server" scale_src)" scale_src
    my "$my_server" -e "DROP DATABASE scale_src"
fi

say "results"
cat "$results"
