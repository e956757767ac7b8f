#!/usr/bin/env bash
#
# scripts/bench.sh - speed and memory of molt against the baseline tools, in
# the same run, on the same data, reported as ratios.
#
#   scripts/bench.sh [--rows N] [--jobs J] [--runs R] [pg] [mysql] [verify]   (default: all three)
#
#   pg      molt-dump | molt-load  vs  psql \copy | psql \copy        (PostgreSQL -> target),
#           text, and again with (format binary) on both psql sides
#   mysql   molt-dump | molt-load  vs  pgloader                        (MariaDB -> target)
#   verify  molt-verify            vs  data-diff 0.11.2                (both pairs, 0 and 1 differences)
#
# It starts throwaway servers (scripts/lib/servers.sh) unless MOLT_TEST_PG_SOURCE,
# MOLT_TEST_PG_TARGET and MOLT_TEST_MYSQL_SOURCE are set, builds the tools in
# release mode, and installs pgloader (apt) and data-diff (a virtualenv under
# target/bench-venv) when it runs as root and they are missing. Peak memory is
# the maximum resident set size from GNU time. Timings are wall-clock seconds.
# The pg and mysql comparisons run each side --runs times (default 3),
# alternating which goes first, after a CHECKPOINT on both servers and with
# the source table already vacuumed (so that no background work lands in one
# side's run), and report the median of each side and their ratio.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=scripts/lib/servers.sh
source "$repo/scripts/lib/servers.sh"

rows=2000000
jobs=2
runs=3
parts=()
while [ $# -gt 0 ]; do
    case $1 in
        --rows) rows=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        pg|mysql|verify) parts+=("$1"); shift ;;
        -h|--help) sed -n '3,18p' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ ${#parts[@]} -gt 0 ] || parts=(pg mysql verify)
want() { local p; for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }

say() { printf '\n==> %s\n' "$*" >&2; }

unset MOLT_SERVERS_DIR
molt_install_server_trap

molt_build_release_bins "$repo"
molt_use_servers bench "yes"

# with_db URL DB: the same server, another database.
with_db() { printf '%s\n' "${1%/*}/$2"; }

pg() { psql -X -q -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
pg_value() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
pg_fresh() { pg "$1" "DROP DATABASE IF EXISTS $2" && pg "$1" "CREATE DATABASE $2"; with_db "$1" "$2"; }

my() {
    local url=$1 sql=$2 hostport=${1#*@}
    hostport=${hostport%%/*}
    "${MOLT_MYSQL_CLIENT:-mariadb}" --no-defaults --protocol=TCP -uroot -h "${hostport%%:*}" -P "${hostport##*:}" -e "$sql"
}

results=$(mktemp)
record() { printf '%s\n' "$*" | tee -a "$results" >&2; }

# timed NAME CMD...: runs CMD under sh -c, prints its wall seconds.
timed() {
    local start end
    start=$(date +%s.%N)
    sh -c "$1" >/dev/null || { echo "bench.sh: failed: $1" >&2; return 1; }
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f\n", b - a }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# settle: no dirty buffers or WAL left over from the previous run.
settle() { pg "$pg_src_server" "CHECKPOINT"; pg "$pg_tgt_server" "CHECKPOINT"; sync; }
# compare A_FN B_FN: runs both --runs times, alternating the order; sets
# a_times, b_times (all runs) and a, b (medians).
compare() {
    local i first second t
    a_times=() b_times=()
    for ((i = 1; i <= runs; i++)); do
        if ((i % 2)); then first=$1 second=$2; else first=$2 second=$1; fi
        for fn in "$first" "$second"; do
            settle
            t=$("$fn")
            if [ "$fn" = "$1" ]; then a_times+=("$t"); else b_times+=("$t"); fi
        done
    done
    a=$(median "${a_times[@]}") b=$(median "${b_times[@]}")
}
per_second() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
rss_mb() { awk '{printf "%.1f", $1 / 1024}' "$1"; }
T="/usr/bin/time -f %M -o"

orders_pg="CREATE TABLE orders (id bigint PRIMARY KEY, tenant_id int, region char(1), customer_email varchar(120),
    amount numeric(12,2), status varchar(16), created_at timestamp, note text, payload jsonb)"

src_db=$(pg_fresh "$pg_src_server" bench_src)
if want pg || want verify; then
    say "generating $rows orders rows in PostgreSQL"
    pg "$src_db" "$orders_pg"
    pg "$src_db" "INSERT INTO orders SELECT i, i % 1000, chr(65 + i % 4), 'customer' || i || '@example.com',
        (i % 100000) / 100.0, (ARRAY['new','paid','shipped','returned'])[1 + i % 4],
        timestamp '2024-01-01' + i * interval '1 second', CASE WHEN i % 10 = 0 THEN NULL ELSE 'note ' || md5(i::text) END,
        jsonb_build_object('sku', 'SKU-' || (i % 5000), 'qty', 1 + i % 9, 'tags', jsonb_build_array('a', 'b'))
        FROM generate_series(1, $rows) i"
    pg "$src_db" "VACUUM (ANALYZE) orders"
fi

if want pg; then
    # Each run loads into a fresh database (molt-load would skip a section
    # its ledger already holds).
    pg_a() {
        say "pg: (a) psql \\copy | psql \\copy"
        local db
        db=$(pg_fresh "$pg_tgt_server" bench_psql)
        pg "$db" "$orders_pg"
        timed "psql -X -q -d '$src_db' -c '\\copy orders to stdout' | psql -X -q -d '$db' -c '\\copy orders from stdin'"
    }
    pg_b() {
        say "pg: (b) molt-dump | molt-load --jobs $jobs"
        local db
        db=$(pg_fresh "$pg_tgt_server" bench_molt)
        timed "$T /tmp/molt-bench-dump.rss $bin/molt-dump --quiet --source '$src_db' --table public.orders --jobs $jobs | $T /tmp/molt-bench-load.rss $bin/molt-load --quiet --target '$db' --jobs $jobs"
    }
    pg_c() {
        say "pg: (c) psql \\copy (format binary) | psql \\copy (format binary)"
        local db
        db=$(pg_fresh "$pg_tgt_server" bench_psql_bin)
        pg "$db" "$orders_pg"
        timed "psql -X -q -d '$src_db' -c '\\copy orders to stdout (format binary)' | psql -X -q -d '$db' -c '\\copy orders from stdin (format binary)'"
    }
    compare pg_a pg_b
    n=$(pg_value "$(with_db "$pg_tgt_server" bench_molt)" "SELECT count(*) FROM orders")
    [ "$n" = "$rows" ] || { echo "bench.sh: molt loaded $n rows, expected $rows" >&2; exit 1; }
    record "pg->target $rows rows, median of $runs: psql|psql ${a}s ($(per_second "$rows" "$a") rows/s); molt-dump|molt-load ${b}s ($(per_second "$rows" "$b") rows/s); ratio molt/psql $(ratio "$b" "$a"); runs psql ${a_times[*]}, molt ${b_times[*]}; peak RSS molt-dump $(rss_mb /tmp/molt-bench-dump.rss) MB, molt-load $(rss_mb /tmp/molt-bench-load.rss) MB"
    compare pg_c pg_b
    record "pg->target $rows rows, median of $runs: psql binary|psql binary ${a}s ($(per_second "$rows" "$a") rows/s); molt-dump|molt-load ${b}s ($(per_second "$rows" "$b") rows/s); ratio molt/psql-binary $(ratio "$b" "$a"); runs psql-binary ${a_times[*]}, molt ${b_times[*]}; peak RSS molt-dump $(rss_mb /tmp/molt-bench-dump.rss) MB, molt-load $(rss_mb /tmp/molt-bench-load.rss) MB"
fi

if want mysql || want verify; then
    say "generating $rows orders rows in MariaDB"
    my "$my_server" "DROP DATABASE IF EXISTS bench_src; CREATE DATABASE bench_src"
    my_db=$(with_db "$my_server" bench_src)
    my "$my_db" "USE bench_src; CREATE TABLE orders (id bigint PRIMARY KEY, tenant_id int, region char(1), customer_email varchar(120),
        amount decimal(12,2), status varchar(16), created_at datetime, note text, payload json);
        INSERT INTO orders SELECT seq, seq % 1000, CHAR(65 + seq % 4), CONCAT('customer', seq, '@example.com'), (seq % 100000) / 100.0,
        ELT(1 + seq % 4, 'new', 'paid', 'shipped', 'returned'), TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND,
        IF(seq % 10 = 0, NULL, CONCAT('note ', MD5(seq))), JSON_OBJECT('sku', CONCAT('SKU-', seq % 5000), 'qty', 1 + seq % 9, 'tags', JSON_ARRAY('a', 'b'))
        FROM seq_1_to_$rows; ANALYZE TABLE orders" >/dev/null
fi

if want mysql; then
    if ! command -v pgloader >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        say "installing pgloader"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgloader >/dev/null || apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgloader >/dev/null
    fi
    my_b() {
        say "mysql: (b) molt-dump | molt-load --jobs $jobs"
        local db
        db=$(pg_fresh "$pg_tgt_server" bench_molt_my)
        timed "$T /tmp/molt-bench-dump.rss $bin/molt-dump --quiet --source '$my_db' --table bench_src.orders --jobs $jobs | $T /tmp/molt-bench-load.rss $bin/molt-load --quiet --target '$db' --jobs $jobs"
    }
    my_a() {
        say "mysql: (a) pgloader"
        local db cmd
        db=$(pg_fresh "$pg_tgt_server" bench_pgloader)
        cmd=$(mktemp --suffix .load)
        # pgloader's defaults exhaust its heap on 2M rows: a larger heap and a smaller prefetch.
        cat >"$cmd" <<LOAD
LOAD DATABASE FROM $my_db INTO $db
WITH include drop, create tables, create indexes, reset sequences, workers = 4, concurrency = 1, prefetch rows = 10000
SET work_mem to '64MB', maintenance_work_mem to '256MB';
LOAD
        timed "pgloader --dynamic-space-size 4096 --no-ssl-cert-verification $cmd"
    }
    if command -v pgloader >/dev/null 2>&1; then
        compare my_a my_b
        line="mysql->target $rows rows, median of $runs: molt-dump|molt-load ${b}s ($(per_second "$rows" "$b") rows/s), peak RSS molt-dump $(rss_mb /tmp/molt-bench-dump.rss) MB, molt-load $(rss_mb /tmp/molt-bench-load.rss) MB; pgloader ${a}s; ratio molt/pgloader $(ratio "$b" "$a"); runs pgloader ${a_times[*]}, molt ${b_times[*]}"
    else
        b=$(my_b)
        line="mysql->target $rows rows: molt-dump|molt-load ${b}s ($(per_second "$rows" "$b") rows/s); pgloader not installed (not root?): no baseline"
    fi
    n=$(pg_value "$(with_db "$pg_tgt_server" bench_molt_my)" "SELECT count(*) FROM public.orders")
    [ "$n" = "$rows" ] || { echo "bench.sh: molt loaded $n rows from MariaDB, expected $rows" >&2; exit 1; }
    record "$line"
fi

if want verify; then
    # The target copies to verify against: from the pg and mysql parts, or made now.
    v_pg=$(with_db "$pg_tgt_server" bench_molt)
    if [ "$(pg_value "$pg_tgt_server" "SELECT count(*) FROM pg_database WHERE datname = 'bench_molt'")" = 0 ]; then
        v_pg=$(pg_fresh "$pg_tgt_server" bench_molt)
        "$bin/molt-dump" --quiet --source "$src_db" --table public.orders | "$bin/molt-load" --quiet --target "$v_pg" >/dev/null
    fi
    v_my=$(with_db "$pg_tgt_server" bench_molt_my)
    if [ "$(pg_value "$pg_tgt_server" "SELECT count(*) FROM pg_database WHERE datname = 'bench_molt_my'")" = 0 ]; then
        v_my=$(pg_fresh "$pg_tgt_server" bench_molt_my)
        "$bin/molt-dump" --quiet --source "$my_db" --table bench_src.orders | "$bin/molt-load" --quiet --target "$v_my" >/dev/null
    fi
    venv=$repo/target/bench-venv
    if [ ! -x "$venv/bin/data-diff" ]; then
        say "installing data-diff into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q 'data-diff==0.11.2' 'dbt-core==1.7.14' 'pydantic<2' psycopg2-binary 'mysql-connector-python<9' >&2
    fi
    cols="tenant_id,region,customer_email,amount,status,created_at,note,payload"
    # data-diff insists on a password in PostgreSQL URLs; trust auth ignores it.
    dd_url() { local u=${1/postgres:\/\//postgresql://}; case $u in postgresql://*:*@*) ;; postgresql://*) u=${u/@/:unused@} ;; esac; printf '%s' "$u"; }
    # data-diff against MariaDB reports every row as different (its checksum and
    # its row text differ between the engines) and can then run for many
    # minutes: it is stopped after $dd_timeout seconds and reported as such.
    dd_timeout=${MOLT_BENCH_DATA_DIFF_TIMEOUT:-300}
    dd_cmd() { printf "timeout %s '%s' --no-tracking '%s' orders '%s' orders -k id -c %s >/tmp/molt-bench-data-diff.out 2>>/tmp/molt-bench-data-diff.log; test \$? != 124 || echo timeout >/tmp/molt-bench-data-diff.timeout" "$dd_timeout" "$venv/bin/data-diff" "$1" "$2" "${cols//,/ -c }"; }
    # strategy FILE: how molt-verify compared the table, from its summary.
    strategy() { grep -o '"strategy":"[a-z-]*"' "$1" | head -1 | cut -d'"' -f4; }
    for pair in pg my; do
        if [ $pair = pg ]; then src=$src_db tgt=$v_pg srcname=PostgreSQL; ddsrc=${src_db/postgres:/postgresql:}; table=public.orders
        else src=$my_db tgt=$v_my srcname=MariaDB; ddsrc=${my_db/mysql:\/\/root@/mysql://root@}; table=bench_src.orders; fi
        say "verify: $srcname vs target"
        m0=$(timed "$T /tmp/molt-bench-verify.rss $bin/molt-verify --source '$src' --target '$tgt' --table $table >/tmp/molt-bench-verify.out")
        how=$(strategy /tmp/molt-bench-verify.out)
        rm -f /tmp/molt-bench-data-diff.timeout
        d0=$(timed "$(dd_cmd "$(dd_url "$ddsrc")" "$(dd_url "$tgt")")")
        dd_note="data-diff ${d0}s ($(grep -c '^[-+]' /tmp/molt-bench-data-diff.out || true) rows reported different)"
        [ -e /tmp/molt-bench-data-diff.timeout ] && dd_note="data-diff stopped after ${dd_timeout}s (timeout; $(grep -c '^[-+]' /tmp/molt-bench-data-diff.out || true) rows reported different so far)"
        changed=$((rows / 2 + 1))
        pg "$tgt" "UPDATE orders SET note = 'changed' WHERE id = $changed"
        m1=$(timed "$bin/molt-verify --source '$src' --target '$tgt' --table $table >/tmp/molt-bench-verify1.out || test \$? = 3")
        grep -q '"mismatched":1,' /tmp/molt-bench-verify1.out || { echo "bench.sh: molt-verify did not report the one changed row" >&2; exit 1; }
        # Put the row back as both generators wrote it.
        pg "$tgt" "UPDATE orders SET note = CASE WHEN id % 10 = 0 THEN NULL ELSE 'note ' || md5(id::text) END WHERE id = $changed"
        record "verify $srcname vs target, $rows rows: molt-verify ${m0}s, strategy $how (1 difference: ${m1}s, $(ratio "$m1" "$m0")x), peak RSS $(rss_mb /tmp/molt-bench-verify.rss) MB; $dd_note; ratio molt/data-diff $(ratio "$m0" "$d0")"
    done
fi

say "results"
cat "$results"
