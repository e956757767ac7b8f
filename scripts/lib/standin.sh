# shellcheck shell=bash
#
# scripts/lib/standin.sh - the CockroachDB stand-in (tests/crdb-standin) in
# front of a PostgreSQL test server.
#
# Source this file after scripts/lib/servers.sh; do not execute it. It changes
# no shell options, so it works under the caller's `set -euo pipefail`.
#
#   source scripts/lib/servers.sh
#   source scripts/lib/standin.sh
#   MOLT_BIN_DIR=target/release                        # holds molt-crdb-standin
#   pg_tgt=$(molt_start_pg pg-target)                  # see "Isolation" below
#   crdb_url=$(molt_start_standin crdb "$pg_tgt" --events "$MOLT_SERVERS_DIR/events.jsonl")
#
# molt_start_standin NAME UPSTREAM_URL [EXTRA ARGS...] starts the proxy on a free
# 127.0.0.1 port, keeps its pid, port and log in "$MOLT_SERVERS_DIR/NAME" (like
# the servers of servers.sh) and prints the proxy's URL: UPSTREAM_URL with its
# host:port replaced, so user, password, database and parameters stay. EXTRA
# ARGS go to molt-crdb-standin (--retry-rate, --cut-at, ... see its README).
#
# Stopping. molt_stop_servers (servers.sh) only knows the kinds "pg" and
# "mariadb" and skips other directories, then deletes "$MOLT_SERVERS_DIR". The
# proxy is therefore started with --exit-when-missing on its own pid file and
# exits within a quarter second of that deletion; it also exits when the shell
# that started it ($$, which is the top-level shell even inside `$(...)`) is
# gone, which covers MOLT_KEEP_SERVERS_DIR. molt_stop_standins stops them at
# once, if a script wants that before molt_stop_servers.
#
# Isolation. CockroachDB runs every transaction SERIALIZABLE by default; the
# proxy refuses sessions whose upstream default_transaction_isolation is
# anything else, and molt_start_standin fails up front with the fix. Start the
# target PostgreSQL with
#   printf "default_transaction_isolation = 'serializable'\n" >"$conf"
#   MOLT_PG_EXTRA_CONF=$conf molt_start_pg pg-target
# or run `ALTER SYSTEM SET default_transaction_isolation = 'serializable';
# SELECT pg_reload_conf();` as superuser.

: "${MOLT_STANDIN_START_TIMEOUT:=30}"

_molt_standin_log() {
    printf 'standin.sh: %s\n' "$*" >&2
}

# molt_start_standin NAME UPSTREAM_URL [EXTRA ARGS...]: start the stand-in and
# print its URL.
molt_start_standin() {
    local name=${1:?usage: molt_start_standin NAME UPSTREAM_URL [ARGS...]}
    local upstream=${2:?usage: molt_start_standin NAME UPSTREAM_URL [ARGS...]}
    shift 2
    local bin=${MOLT_BIN_DIR:-}/molt-crdb-standin dir pid port waited iso
    if [ -z "${MOLT_BIN_DIR:-}" ] || [ ! -x "$bin" ]; then
        _molt_standin_log "molt-crdb-standin not found in MOLT_BIN_DIR='${MOLT_BIN_DIR:-}' (cargo build -p molt-crdb-standin)"
        return 1
    fi
    if [[ ! $upstream =~ ^([A-Za-z][A-Za-z0-9+.-]*://)(([^@/?]*)@)?([^/?]*)(.*)$ ]]; then
        _molt_standin_log "not a postgres:// URL: $upstream"
        return 1
    fi
    local scheme=${BASH_REMATCH[1]} userinfo=${BASH_REMATCH[2]} rest=${BASH_REMATCH[5]}

    # Fail clearly here rather than on every connection.
    if command -v psql >/dev/null 2>&1; then
        if ! iso=$(psql "$upstream" -XAtqc 'SHOW default_transaction_isolation' 2>&1); then
            _molt_standin_log "cannot query the upstream $upstream: $iso"
            return 1
        fi
        if [ "$iso" != serializable ]; then
            _molt_standin_log "upstream default_transaction_isolation is '$iso', but CockroachDB defaults to SERIALIZABLE"
            _molt_standin_log "start it with MOLT_PG_EXTRA_CONF holding: default_transaction_isolation = 'serializable'"
            _molt_standin_log "or run as superuser: ALTER SYSTEM SET default_transaction_isolation = 'serializable'; SELECT pg_reload_conf();"
            return 1
        fi
    fi

    dir=$(_molt_prepare_dir "$name" "") || return 1
    printf 'standin\n' >"$dir/kind"
    printf '%s\n' "$upstream" >"$dir/upstream"
    : >"$dir/pid"
    "$bin" --upstream "$upstream" --listen 127.0.0.1:0 \
        --exit-when-missing "$dir/pid" --exit-with-pid "$$" "$@" \
        </dev/null >"$dir/stdout" 2>"$dir/server.log" &
    pid=$!
    printf '%s\n' "$pid" >"$dir/pid"

    waited=0
    port=
    while :; do
        port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$dir/stdout" 2>/dev/null | head -n 1)
        [ -z "$port" ] || break
        if ! kill -0 "$pid" 2>/dev/null; then
            _molt_standin_log "molt-crdb-standin $name exited; end of $dir/server.log:"
            tail -n 30 "$dir/server.log" >&2 || true
            return 1
        fi
        if [ "$waited" -ge $((MOLT_STANDIN_START_TIMEOUT * 10)) ]; then
            _molt_standin_log "molt-crdb-standin $name did not start in ${MOLT_STANDIN_START_TIMEOUT}s; see $dir/server.log"
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    printf '%s\n' "$port" >"$dir/port"
    # It accepts connections once it has printed its address; check anyway.
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        _molt_standin_log "molt-crdb-standin $name does not accept connections on 127.0.0.1:$port"
        return 1
    fi
    _molt_standin_log "started molt-crdb-standin $name on 127.0.0.1:$port in front of $upstream (log in $dir/server.log)"
    printf '%s%s127.0.0.1:%s%s\n' "$scheme" "$userinfo" "$port" "$rest"
}

# molt_stop_standins: stop every stand-in under $MOLT_SERVERS_DIR now.
molt_stop_standins() {
    local dir pid
    [ -n "${MOLT_SERVERS_DIR:-}" ] && [ -d "$MOLT_SERVERS_DIR" ] || return 0
    for dir in "$MOLT_SERVERS_DIR"/*/; do
        dir=${dir%/}
        [ "$(cat "$dir/kind" 2>/dev/null)" = standin ] || continue
        pid=$(cat "$dir/pid" 2>/dev/null || true)
        [ -n "$pid" ] || continue
        kill -TERM "$pid" 2>/dev/null || true
        _molt_wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true
    done
}
