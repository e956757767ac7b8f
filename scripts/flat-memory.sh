#!/usr/bin/env bash
#
# scripts/flat-memory.sh - one big table end to end, showing that each
# tool's memory stays flat however many rows go through it.
#
#   scripts/flat-memory.sh [--rows N] [--jobs J] [--interval SECONDS] [--keep-data] [pg] [mysql]
#
# Generates an `orders` table of N rows (default 20,000,000; the shape of
# scripts/bench.sh's) in the source (pg: PostgreSQL, the default; mysql:
# MariaDB), then runs
#
#   molt-dump --table orders --jobs J | molt-load --jobs J     (into a fresh target)
#   molt-verify --table orders
#
# sampling every process's VmRSS from /proc/PID/status every SECONDS
# (default 1). For each tool it prints the peak RSS (GNU time's maximum
# resident set size, and the kernel's VmHWM at the last sample), and the RSS
# at 10%, 50% and 90% of the tool's run: if memory is flat, these are close
# to each other and nowhere near the data's size. The samples are kept in
# target/flat-memory/ for plotting.
#
# Servers: throwaway ones (scripts/lib/servers.sh) unless MOLT_TEST_PG_SOURCE,
# MOLT_TEST_PG_TARGET and MOLT_TEST_MYSQL_SOURCE are set. The tools are built
# in release mode. 20M rows take about 5 GB per copy on disk.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=scripts/lib/servers.sh
source "$repo/scripts/lib/servers.sh"

rows=20000000
jobs=2
interval=1
keep=
parts=()
while [ $# -gt 0 ]; do
    case $1 in
        --rows) rows=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        --interval) interval=$2; shift 2 ;;
        --keep-data) keep=1; shift ;;
        pg|mysql) parts+=("$1"); shift ;;
        -h|--help) sed -n '3,24p' "$0"; exit 0 ;;
        *) echo "flat-memory.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ ${#parts[@]} -gt 0 ] || parts=(pg)
want() { local p; for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }
say() { printf '\n==> %s\n' "$*" >&2; }
fail() { echo "flat-memory.sh: $*" >&2; exit 1; }

unset MOLT_SERVERS_DIR
molt_install_server_trap

molt_build_release_bins "$repo"
molt_use_servers flat "$(want mysql && echo yes || echo no)"

out_dir=$repo/target/flat-memory
mkdir -p "$out_dir"
results=$out_dir/results.txt
: >"$results"
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
seconds_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# Generated in steps of a million rows: one huge statement would hold one
# huge transaction, and shows no progress.
step=1000000

make_pg_source() {
    local src lo hi
    src=$(pg_fresh "$pg_src_server" flat_src)
    pg "$src" >&2 "CREATE TABLE orders (id bigint PRIMARY KEY, tenant_id int, region char(1), customer_email varchar(120),
        amount numeric(12,2), status varchar(16), created_at timestamp, note text, payload jsonb)"
    for ((lo = 1; lo <= rows; lo += step)); do
        hi=$((lo + step - 1 < rows ? lo + step - 1 : rows))
        printf '\r  rows %d..%d of %d' "$lo" "$hi" "$rows" >&2
        pg "$src" >&2 "INSERT INTO orders SELECT i, i % 1000, chr(65 + i % 4), 'customer' || i || '@example.com',
            (i % 100000) / 100.0, (ARRAY['new','paid','shipped','returned'])[1 + i % 4],
            timestamp '2024-01-01' + i * interval '1 second', CASE WHEN i % 10 = 0 THEN NULL ELSE 'note ' || md5(i::text) END,
            jsonb_build_object('sku', 'SKU-' || (i % 5000), 'qty', 1 + i % 9, 'tags', jsonb_build_array('a', 'b'))
            FROM generate_series($lo, $hi) i"
    done
    printf '\n' >&2
    pg "$src" "ANALYZE orders" >&2
    printf '%s\n' "$src"
}

make_mysql_source() {
    local lo hi
    my "$my_server" -e "DROP DATABASE IF EXISTS flat_src; CREATE DATABASE flat_src" >&2
    my "$my_server" flat_src >&2 -e "CREATE TABLE orders (id bigint PRIMARY KEY, tenant_id int, region char(1), customer_email varchar(120),
        amount decimal(12,2), status varchar(16), created_at datetime, note text, payload json)"
    for ((lo = 1; lo <= rows; lo += step)); do
        hi=$((lo + step - 1 < rows ? lo + step - 1 : rows))
        printf '\r  rows %d..%d of %d' "$lo" "$hi" "$rows" >&2
        my "$my_server" flat_src >&2 -e "INSERT INTO orders SELECT seq, seq % 1000, CHAR(65 + seq % 4), CONCAT('customer', seq, '@example.com'), (seq % 100000) / 100.0,
            ELT(1 + seq % 4, 'new', 'paid', 'shipped', 'returned'), TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND,
            IF(seq % 10 = 0, NULL, CONCAT('note ', MD5(seq))), JSON_OBJECT('sku', CONCAT('SKU-', seq % 5000), 'qty', 1 + seq % 9, 'tags', JSON_ARRAY('a', 'b'))
            FROM seq_${lo}_to_${hi}"
    done
    printf '\n' >&2
    with_db "$my_server" flat_src
}

# sample FILE PIDFILE...: until every process named in the pid files has
# exited, appends "SECONDS TOOL VmRSS_KB VmHWM_KB" lines to FILE every
# $interval seconds. Pid files appear once their process has started.
sample() {
    local file=$1 start now alive pidfile pid tool rss hwm
    shift
    start=$(date +%s.%N)
    while :; do
        alive=0
        now=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
        for pidfile in "$@"; do
            tool=$(basename "$pidfile" .pid)
            if [ ! -s "$pidfile" ]; then
                alive=1
                continue
            fi
            pid=$(cat "$pidfile")
            # VmRSS and VmHWM in kB; nothing when the process is gone.
            read -r rss hwm < <(awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { if (r != "") print r, h }' "/proc/$pid/status" 2>/dev/null) || continue
            [ -n "${rss:-}" ] || continue
            alive=1
            printf '%s %s %s %s\n' "$now" "$tool" "$rss" "$hwm" >>"$file"
        done
        [ "$alive" = 1 ] || break
        sleep "$interval"
    done
}

# timed_tool NAME PIDFILE TIMEFILE CMD...: runs CMD under GNU time, writing
# its pid (CMD's own, after exec) to PIDFILE.
timed_tool() {
    local pidfile=$2 timefile=$3
    shift 3
    /usr/bin/time -f '%M %e' -o "$timefile" sh -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@"
}

# summary TOOL SAMPLES TIMEFILE: one line: seconds, peak RSS, RSS at 10/50/90%.
summary() {
    local tool=$1 samples=$2 timefile=$3 peak secs
    read -r peak secs <"$timefile"
    awk -v tool="$tool" -v peak="$peak" -v secs="$secs" '
        $2 == tool { n++; t[n] = $1; r[n] = $3; h = $4 }
        END {
            if (n == 0) { printf "%s: %ss, peak RSS %.1f MB (no samples: too short)\n", tool, secs, peak / 1024; exit }
            first = t[1]; last = t[n]
            for (q = 1; q <= 3; q++) {
                p = (q == 1 ? 0.1 : q == 2 ? 0.5 : 0.9); want = first + p * (last - first)
                best = 1
                for (i = 1; i <= n; i++) if ((t[i] - want) ^ 2 < (t[best] - want) ^ 2) best = i
                at[q] = r[best] / 1024
            }
            printf "%s: %ss, peak RSS %.1f MB (VmHWM %.1f MB); RSS at 10%% %.1f MB, 50%% %.1f MB, 90%% %.1f MB (%d samples)\n",
                tool, secs, peak / 1024, h / 1024, at[1], at[2], at[3], n
        }' "$samples"
}

run_engine() {
    local engine=$1 src table tgt samples n start
    case $engine in
        pg) table=public.orders ;;
        mysql) table=flat_src.orders ;;
    esac
    say "$engine: generating $rows orders rows"
    start=$(date +%s.%N)
    if [ "$engine" = pg ]; then src=$(make_pg_source); else src=$(make_mysql_source); fi
    record "$engine: generated $rows rows in $(seconds_since "$start")s"
    tgt=$(pg_fresh "$pg_tgt_server" "flat_tgt_$engine")
    samples=$out_dir/$engine-samples.txt
    : >"$samples"
    rm -f "$out_dir"/*.pid

    say "$engine: molt-dump | molt-load, $rows rows, --jobs $jobs"
    sample "$samples" "$out_dir/molt-dump.pid" "$out_dir/molt-load.pid" &
    local sampler=$!
    start=$(date +%s.%N)
    if ! timed_tool molt-dump "$out_dir/molt-dump.pid" "$out_dir/molt-dump.time" \
        "$bin/molt-dump" --quiet --source "$src" --table "$table" --jobs "$jobs" \
        | timed_tool molt-load "$out_dir/molt-load.pid" "$out_dir/molt-load.time" \
            "$bin/molt-load" --quiet --target "$tgt" --jobs "$jobs" >"$out_dir/$engine-load-results.ndjson"; then
        kill "$sampler" 2>/dev/null || true
        fail "$engine: molt-dump | molt-load failed"
    fi
    local pipe_s
    pipe_s=$(seconds_since "$start")
    wait "$sampler"
    n=$(pg_value "$tgt" "SELECT count(*) FROM public.orders")
    [ "$n" = "$rows" ] || fail "$engine: loaded $n rows, expected $rows"
    record "$engine: molt-dump | molt-load $rows rows in ${pipe_s}s ($(awk -v n="$rows" -v s="$pipe_s" 'BEGIN { printf "%.0f", n / s }') rows/s)"
    record "  $(summary molt-dump "$samples" "$out_dir/molt-dump.time")"
    record "  $(summary molt-load "$samples" "$out_dir/molt-load.time")"

    say "$engine: molt-verify"
    rm -f "$out_dir"/*.pid
    sample "$samples" "$out_dir/molt-verify.pid" &
    sampler=$!
    if ! timed_tool molt-verify "$out_dir/molt-verify.pid" "$out_dir/molt-verify.time" \
        "$bin/molt-verify" --source "$src" --target "$tgt" --table "$table" >"$out_dir/$engine-verify.ndjson"; then
        kill "$sampler" 2>/dev/null || true
        fail "$engine: molt-verify found differences or failed (see $out_dir/$engine-verify.ndjson)"
    fi
    wait "$sampler"
    n=$(jq -r 'select(.kind == "table_summary") | .target_rows' "$out_dir/$engine-verify.ndjson")
    [ "$n" = "$rows" ] || fail "$engine: molt-verify counted $n target rows, expected $rows"
    record "  $(summary molt-verify "$samples" "$out_dir/molt-verify.time")"

    if [ -z "$keep" ]; then
        pg "$pg_tgt_server" "DROP DATABASE flat_tgt_$engine" >/dev/null
        if [ "$engine" = pg ]; then pg "$pg_src_server" "DROP DATABASE flat_src" >/dev/null
        else my "$my_server" -e "DROP DATABASE flat_src"; fi
    fi
}

want pg && run_engine pg
want mysql && run_engine mysql

say "results (samples in $out_dir)"
cat "$results"
