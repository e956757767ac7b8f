# shellcheck shell=bash
#
# scripts/lib/servers.sh - throwaway PostgreSQL and MariaDB servers for tests and demos.
#
# Source this file; do not execute it. It changes no shell options, so it works
# under the caller's `set -euo pipefail`.
#
#   source scripts/lib/servers.sh
#   molt_ensure_server_binaries
#   MOLT_SERVERS_DIR=$(mktemp -d -t molt-servers.XXXXXX); export MOLT_SERVERS_DIR
#   molt_install_server_trap          # EXIT/INT/TERM -> molt_stop_servers
#   pg_url=$(molt_start_pg pg-source)
#   my_url=$(molt_start_mariadb mysql-source)
#   molt_run some-long-command        # interruptible; killed on Ctrl-C/TERM
#
# Every server lives in "$MOLT_SERVERS_DIR/NAME" (data directory, socket, log),
# listens on 127.0.0.1 only, on a free port, and is tuned for speed, not
# durability. The start functions print the server's URL on stdout and their
# progress on stderr. They keep their state on disk, not in shell variables, so
# `url=$(molt_start_pg NAME)` (a subshell) works and molt_stop_servers, called
# from the parent shell, still finds every server.
#
# Variables set by molt_ensure_server_binaries:
#   MOLT_PG_BINDIR        directory with initdb, pg_ctl, postgres, pg_isready
#   MOLT_MYSQLD           mariadbd (or mysqld)
#   MOLT_MYSQL_INSTALL_DB mariadb-install-db (or mysql_install_db); empty for
#                         MySQL 8, which initialises with `mysqld --initialize-insecure`
#   MOLT_MYSQL_ADMIN      mariadb-admin (or mysqladmin)
#   MOLT_MYSQL_CLIENT     mariadb (or mysql)

# Seconds to wait for a server to accept connections, and for it to stop.
: "${MOLT_SERVER_START_TIMEOUT:=90}"
: "${MOLT_SERVER_STOP_TIMEOUT:=30}"

_molt_log() {
    printf 'servers.sh: %s\n' "$*" >&2
}

_molt_is_root() {
    [ "$(id -u)" -eq 0 ]
}

# _molt_find NAME [DIR...]: print the path of the first executable NAME found on
# PATH or in one of the DIRs; return 1 if there is none.
_molt_find() {
    local name=$1 dir
    shift
    if command -v "$name" >/dev/null 2>&1; then
        command -v "$name"
        return 0
    fi
    for dir in "$@"; do
        if [ -x "$dir/$name" ]; then
            printf '%s\n' "$dir/$name"
            return 0
        fi
    done
    return 1
}

# _molt_find_pg_bindir: print the directory holding the PostgreSQL server binaries.
_molt_find_pg_bindir() {
    local dir candidate
    if command -v pg_config >/dev/null 2>&1; then
        dir=$(pg_config --bindir 2>/dev/null || true)
        if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
            printf '%s\n' "$dir"
            return 0
        fi
    fi
    # Debian/Ubuntu keep one directory per major version: take the newest.
    dir=
    while IFS= read -r candidate; do
        if [ -x "$candidate/initdb" ] && [ -x "$candidate/pg_ctl" ] && [ -x "$candidate/postgres" ]; then
            dir=$candidate
        fi
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
    if [ -z "$dir" ]; then
        # Fedora/RHEL and source installs put them on PATH or in /usr/local/pgsql.
        candidate=$(_molt_find initdb /usr/local/pgsql/bin) || return 1
        dir=$(dirname "$candidate")
        if [ ! -x "$dir/pg_ctl" ] || [ ! -x "$dir/postgres" ]; then
            return 1
        fi
    fi
    printf '%s\n' "$dir"
}

# _molt_locate_server_binaries: set the MOLT_* binary variables; return 1 if
# something is missing (and list it on stderr).
_molt_locate_server_binaries() {
    local missing=() sbin=(/usr/sbin /usr/libexec /usr/local/sbin /usr/local/bin /usr/local/mysql/bin /usr/local/mysql/scripts)

    MOLT_PG_BINDIR=$(_molt_find_pg_bindir) || { MOLT_PG_BINDIR=; missing+=("PostgreSQL server (initdb, pg_ctl, postgres)"); }
    if ! command -v psql >/dev/null 2>&1; then
        missing+=("PostgreSQL client (psql)")
    fi

    MOLT_MYSQLD=$(_molt_find mariadbd "${sbin[@]}") \
        || MOLT_MYSQLD=$(_molt_find mysqld "${sbin[@]}") \
        || { MOLT_MYSQLD=; missing+=("MariaDB server (mariadbd)"); }
    MOLT_MYSQL_INSTALL_DB=$(_molt_find mariadb-install-db "${sbin[@]}") \
        || MOLT_MYSQL_INSTALL_DB=$(_molt_find mysql_install_db "${sbin[@]}") \
        || MOLT_MYSQL_INSTALL_DB=
    if [ -z "$MOLT_MYSQL_INSTALL_DB" ] && [ -n "$MOLT_MYSQLD" ] && [ "${MOLT_MYSQLD##*/}" = mariadbd ]; then
        missing+=("MariaDB installer (mariadb-install-db)")
    fi
    MOLT_MYSQL_ADMIN=$(_molt_find mariadb-admin "${sbin[@]}") \
        || MOLT_MYSQL_ADMIN=$(_molt_find mysqladmin "${sbin[@]}") \
        || { MOLT_MYSQL_ADMIN=; missing+=("MariaDB admin client (mariadb-admin)"); }
    MOLT_MYSQL_CLIENT=$(_molt_find mariadb "${sbin[@]}") \
        || MOLT_MYSQL_CLIENT=$(_molt_find mysql "${sbin[@]}") \
        || { MOLT_MYSQL_CLIENT=; missing+=("MariaDB client (mariadb)"); }
    export MOLT_PG_BINDIR MOLT_MYSQLD MOLT_MYSQL_INSTALL_DB MOLT_MYSQL_ADMIN MOLT_MYSQL_CLIENT

    if [ "${#missing[@]}" -gt 0 ]; then
        local m
        for m in "${missing[@]}"; do
            _molt_log "missing: $m"
        done
        return 1
    fi
}

# molt_ensure_server_binaries: find the PostgreSQL and MariaDB server and client
# binaries. When they are missing, install them with apt-get as root, or say
# which packages to install and return 1.
molt_ensure_server_binaries() {
    if _molt_locate_server_binaries 2>/dev/null; then
        return 0
    fi
    _molt_locate_server_binaries || true
    if _molt_is_root && command -v apt-get >/dev/null 2>&1; then
        _molt_log "installing postgresql and mariadb-server with apt-get"
        apt-get update >&2 || return 1
        DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql mariadb-server mariadb-client >&2 || return 1
        _molt_locate_server_binaries || return 1
        return 0
    fi
    _molt_log "install the database servers first, for example:"
    _molt_log "  Debian/Ubuntu: sudo apt-get install -y postgresql mariadb-server mariadb-client"
    _molt_log "  Fedora/RHEL:   sudo dnf install -y postgresql-server postgresql mariadb-server mariadb"
    _molt_log "or point MOLT_TEST_PG_SOURCE, MOLT_TEST_PG_TARGET and MOLT_TEST_MYSQL_SOURCE at running servers"
    return 1
}

# molt_ensure_postgis: make sure the PostgreSQL found by
# molt_ensure_server_binaries has the PostGIS extension (the CockroachDB
# stand-in needs it: GEOMETRY and GEOGRAPHY are native in CockroachDB). When it
# is missing, install Debian's postgresql-MAJOR-postgis-3 as root, or say what
# to install and return 1.
molt_ensure_postgis() {
    local major share
    major=$(basename "$(dirname "${MOLT_PG_BINDIR:?run molt_ensure_server_binaries first}")")
    share=$("$MOLT_PG_BINDIR/pg_config" --sharedir 2>/dev/null || echo "/usr/share/postgresql/$major")
    if [ -f "$share/extension/postgis.control" ]; then
        return 0
    fi
    if _molt_is_root && command -v apt-get >/dev/null 2>&1; then
        _molt_log "installing postgresql-$major-postgis-3 with apt-get"
        DEBIAN_FRONTEND=noninteractive apt-get install -y "postgresql-$major-postgis-3" >&2 \
            || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y "postgresql-$major-postgis-3" >&2; } \
            || return 1
        [ -f "$share/extension/postgis.control" ] && return 0
    fi
    _molt_log "PostGIS is missing for PostgreSQL $major ($share/extension/postgis.control)"
    _molt_log "  Debian/Ubuntu: sudo apt-get install -y postgresql-$major-postgis-3"
    return 1
}

# molt_free_port: print a TCP port that is free on 127.0.0.1 right now.
molt_free_port() {
    local port
    if command -v python3 >/dev/null 2>&1 \
        && port=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' 2>/dev/null) && [ -n "$port" ]; then
        printf '%s\n' "$port"
        return 0
    fi
    # No python3: probe random ports until nothing answers.
    for _ in $(seq 1 200); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    _molt_log "could not find a free TCP port"
    return 1
}

# _molt_prepare_dir NAME OWNER: create "$MOLT_SERVERS_DIR/NAME" for a server run
# by OWNER (empty: the current user) and print its path.
_molt_prepare_dir() {
    local name=$1 owner=$2 dir
    if [ -z "${MOLT_SERVERS_DIR:-}" ]; then
        _molt_log "MOLT_SERVERS_DIR is not set (use: MOLT_SERVERS_DIR=\$(mktemp -d); export MOLT_SERVERS_DIR)"
        return 1
    fi
    case $name in
        '' | */* | .*)
            _molt_log "bad server name: '$name'"
            return 1
            ;;
    esac
    mkdir -p "$MOLT_SERVERS_DIR"
    # Marks the directory as ours, so molt_stop_servers may delete it.
    : >"$MOLT_SERVERS_DIR/.molt-servers"
    # The server user must be able to reach its directory.
    chmod 0755 "$MOLT_SERVERS_DIR"
    dir=$MOLT_SERVERS_DIR/$name
    if [ -e "$dir" ]; then
        _molt_log "$dir already exists: server names must be unique"
        return 1
    fi
    mkdir -p "$dir"
    if [ -n "$owner" ]; then
        chown "$owner:" "$dir"
    fi
    printf '%s\n' "$dir"
}

# _molt_run_as USER CMD...: run CMD as USER (empty: as the current user).
_molt_run_as() {
    local user=$1
    shift
    # From /, which every user may enter (the caller's directory may be /root).
    if [ -n "$user" ]; then
        (cd / && runuser -u "$user" -- "$@")
    else
        (cd / && "$@")
    fi
}

# _molt_pg_user: the system user that owns our PostgreSQL servers.
_molt_pg_user() {
    if _molt_is_root; then
        if ! id postgres >/dev/null 2>&1; then
            useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres >&2 || return 1
        fi
        printf 'postgres\n'
    fi
}

# _molt_mysql_user: the system user that runs our MariaDB servers.
_molt_mysql_user() {
    if _molt_is_root; then
        if ! id mysql >/dev/null 2>&1; then
            useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin mysql >&2 || return 1
        fi
        printf 'mysql\n'
    fi
}

# molt_start_pg NAME: start a PostgreSQL server and print
# postgres://postgres@127.0.0.1:PORT/postgres (trust authentication).
molt_start_pg() {
    local name=${1:?usage: molt_start_pg NAME} user dir port attempt
    [ -n "${MOLT_PG_BINDIR:-}" ] || _molt_locate_server_binaries || return 1
    user=$(_molt_pg_user) || return 1
    dir=$(_molt_prepare_dir "$name" "$user") || return 1
    printf 'pg\n' >"$dir/kind"
    mkdir -p "$dir/run"
    [ -z "$user" ] || chown "$user:" "$dir/run"

    _molt_run_as "$user" "$MOLT_PG_BINDIR/initdb" -D "$dir/data" -U postgres --auth=trust \
        --no-sync --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 || {
        _molt_log "initdb failed for $name:"
        cat "$dir/initdb.log" >&2
        return 1
    }

    for attempt in 1 2 3; do
        port=$(molt_free_port) || return 1
        printf '%s\n' "$port" >"$dir/port"
        # Later settings in postgresql.conf win, so a retry simply appends again.
        cat >>"$dir/data/postgresql.conf" <<EOF

# --- molt throwaway test server ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/run'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 256MB
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
logging_collector = off
EOF
        # Extra settings (a TLS test's ssl = on, say) and an own pg_hba.conf.
        if [ -n "${MOLT_PG_EXTRA_CONF:-}" ]; then
            cat "$MOLT_PG_EXTRA_CONF" >>"$dir/data/postgresql.conf"
        fi
        if [ -n "${MOLT_PG_HBA:-}" ]; then
            cp "$MOLT_PG_HBA" "$dir/data/pg_hba.conf"
            [ -z "$user" ] || chown "$user:" "$dir/data/pg_hba.conf"
        fi
        if _molt_run_as "$user" "$MOLT_PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
            -w -t "$MOLT_SERVER_START_TIMEOUT" start >/dev/null 2>&1; then
            break
        fi
        if [ "$attempt" -eq 3 ]; then
            _molt_log "PostgreSQL $name did not start; end of $dir/server.log:"
            tail -n 30 "$dir/server.log" >&2 || true
            return 1
        fi
        _molt_log "PostgreSQL $name did not start on port $port, retrying"
        _molt_run_as "$user" "$MOLT_PG_BINDIR/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    done

    local waited=0
    until "$MOLT_PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; do
        if [ "$waited" -ge "$MOLT_SERVER_START_TIMEOUT" ]; then
            _molt_log "PostgreSQL $name is not ready after ${waited}s; see $dir/server.log"
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    _molt_log "started PostgreSQL $name on 127.0.0.1:$port (data in $dir)"
    printf 'postgres://postgres@127.0.0.1:%s/postgres\n' "$port"
}

# _molt_mysql_ping DIR: succeed when the server in DIR answers on its socket.
_molt_mysql_ping() {
    "$MOLT_MYSQL_ADMIN" --no-defaults --socket="$1/run/mysqld.sock" -uroot \
        --connect-timeout=2 ping >/dev/null 2>&1
}

# molt_start_mariadb NAME: start a MariaDB server, create the database `test`
# and print mysql://root@127.0.0.1:PORT/test (root has no password).
molt_start_mariadb() {
    local name=${1:?usage: molt_start_mariadb NAME} user dir port attempt pid waited
    [ -n "${MOLT_MYSQLD:-}" ] || _molt_locate_server_binaries || return 1
    user=$(_molt_mysql_user) || return 1
    dir=$(_molt_prepare_dir "$name" "$user") || return 1
    printf 'mariadb\n' >"$dir/kind"
    mkdir -p "$dir/run" "$dir/data" "$dir/tmp"
    [ -z "$user" ] || chown "$user:" "$dir/run" "$dir/data" "$dir/tmp"

    local user_opt=() setsid=()
    [ -z "$user" ] || user_opt=(--user="$user")
    if command -v setsid >/dev/null 2>&1; then
        setsid=(setsid --wait)
    fi

    if [ -n "$MOLT_MYSQL_INSTALL_DB" ]; then
        "$MOLT_MYSQL_INSTALL_DB" --no-defaults "${user_opt[@]}" --datadir="$dir/data" \
            --auth-root-authentication-method=normal --skip-test-db \
            --skip-name-resolve >"$dir/install.log" 2>&1
    else
        # MySQL 8 has no install script.
        "$MOLT_MYSQLD" --no-defaults "${user_opt[@]}" --datadir="$dir/data" \
            --initialize-insecure >"$dir/install.log" 2>&1
    fi || {
        _molt_log "initialising MariaDB $name failed:"
        cat "$dir/install.log" >&2
        return 1
    }

    for attempt in 1 2 3; do
        port=$(molt_free_port) || return 1
        printf '%s\n' "$port" >"$dir/port"
        rm -f "$dir/run/mysqld.pid"
        # setsid: a Ctrl-C on the terminal goes to the caller, whose trap stops
        # the server in order, rather than to the server directly. --wait keeps
        # $! alive as long as the server if setsid has to fork.
        "${setsid[@]}" "$MOLT_MYSQLD" --no-defaults "${user_opt[@]}" \
            --datadir="$dir/data" \
            --tmpdir="$dir/tmp" \
            --socket="$dir/run/mysqld.sock" \
            --pid-file="$dir/run/mysqld.pid" \
            --log-error="$dir/server.log" \
            --port="$port" \
            --bind-address=127.0.0.1 \
            --skip-name-resolve \
            --skip-networking=0 \
            --innodb-flush-log-at-trx-commit=0 \
            --innodb-buffer-pool-size=512M \
            --log-bin="$dir/data/binlog" \
            --binlog-format=ROW \
            --server-id=1 \
            --max-connections=300 \
            --character-set-server=utf8mb4 \
            --collation-server=utf8mb4_general_ci \
            </dev/null >>"$dir/server.log" 2>&1 &
        pid=$!
        printf '%s\n' "$pid" >"$dir/launcher.pid"

        waited=0
        while ! _molt_mysql_ping "$dir"; do
            if ! kill -0 "$pid" 2>/dev/null; then
                break
            fi
            if [ "$waited" -ge "$MOLT_SERVER_START_TIMEOUT" ]; then
                _molt_log "MariaDB $name is not ready after ${waited}s; see $dir/server.log"
                return 1
            fi
            sleep 1
            waited=$((waited + 1))
        done
        if _molt_mysql_ping "$dir"; then
            break
        fi
        if [ "$attempt" -eq 3 ]; then
            _molt_log "MariaDB $name did not start; end of $dir/server.log:"
            tail -n 30 "$dir/server.log" >&2 || true
            return 1
        fi
        _molt_log "MariaDB $name did not start on port $port, retrying"
    done

    "$MOLT_MYSQL_CLIENT" --no-defaults --socket="$dir/run/mysqld.sock" -uroot \
        -e 'CREATE DATABASE IF NOT EXISTS test CHARACTER SET utf8mb4' >&2 || {
        _molt_log "could not create database test on MariaDB $name"
        return 1
    }
    _molt_log "started MariaDB $name on 127.0.0.1:$port (data in $dir)"
    printf 'mysql://root@127.0.0.1:%s/test\n' "$port"
}

# _molt_wait_gone PID SECONDS: wait until PID has exited; return 1 on timeout.
_molt_wait_gone() {
    local pid=$1 limit=$2 waited=0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$waited" -ge $((limit * 10)) ]; then
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
}

_molt_stop_pg() {
    local dir=$1 user pid
    [ -f "$dir/data/postmaster.pid" ] || return 0
    pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
    user=$(_molt_pg_user 2>/dev/null || true)
    if ! _molt_run_as "$user" "$MOLT_PG_BINDIR/pg_ctl" -D "$dir/data" -m fast -w \
        -t "$MOLT_SERVER_STOP_TIMEOUT" stop >/dev/null 2>&1; then
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            _molt_log "PostgreSQL in $dir did not stop; killing $pid"
            kill -KILL "$pid" 2>/dev/null || true
            _molt_wait_gone "$pid" 5 || true
        fi
    fi
}

_molt_stop_mariadb() {
    local dir=$1 pid=
    if [ -s "$dir/run/mysqld.pid" ]; then
        pid=$(cat "$dir/run/mysqld.pid" 2>/dev/null || true)
    elif [ -s "$dir/launcher.pid" ]; then
        pid=$(cat "$dir/launcher.pid" 2>/dev/null || true)
    fi
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    # SIGTERM is a normal shutdown for mariadbd.
    kill -TERM "$pid" 2>/dev/null || true
    if ! _molt_wait_gone "$pid" "$MOLT_SERVER_STOP_TIMEOUT"; then
        _molt_log "MariaDB in $dir did not stop; killing $pid"
        kill -KILL "$pid" 2>/dev/null || true
        _molt_wait_gone "$pid" 5 || true
    fi
}

# molt_stop_servers: stop every server started under $MOLT_SERVERS_DIR and
# delete the directory. Safe to call more than once.
molt_stop_servers() {
    local dir kind
    [ -n "${MOLT_SERVERS_DIR:-}" ] || return 0
    [ -d "$MOLT_SERVERS_DIR" ] || return 0
    if [ ! -e "$MOLT_SERVERS_DIR/.molt-servers" ]; then
        # Not ours (or nothing was started): leave it alone.
        return 0
    fi
    [ -n "${MOLT_PG_BINDIR:-}" ] || _molt_locate_server_binaries >/dev/null 2>&1 || true
    for dir in "$MOLT_SERVERS_DIR"/*/; do
        dir=${dir%/}
        [ -f "$dir/kind" ] || continue
        kind=$(cat "$dir/kind")
        case $kind in
            pg) _molt_stop_pg "$dir" ;;
            mariadb) _molt_stop_mariadb "$dir" ;;
        esac
    done
    if [ -n "${MOLT_KEEP_SERVERS_DIR:-}" ]; then
        _molt_log "servers stopped; kept $MOLT_SERVERS_DIR (MOLT_KEEP_SERVERS_DIR is set)"
    else
        rm -rf "$MOLT_SERVERS_DIR"
        _molt_log "servers stopped"
    fi
}

# molt_pg_ctl NAME stop|start: stop or start again one PostgreSQL server of
# this run, keeping its data and port (fault-injection tests).
molt_pg_ctl() {
    local name=${1:?usage: molt_pg_ctl NAME stop|start} action=${2:?usage: molt_pg_ctl NAME stop|start} dir user
    dir=$MOLT_SERVERS_DIR/$name
    [ -f "$dir/kind" ] || { _molt_log "no server $name in $MOLT_SERVERS_DIR"; return 1; }
    [ -n "${MOLT_PG_BINDIR:-}" ] || _molt_locate_server_binaries || return 1
    user=$(_molt_pg_user) || return 1
    case $action in
        stop) _molt_run_as "$user" "$MOLT_PG_BINDIR/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null ;;
        start) _molt_run_as "$user" "$MOLT_PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null ;;
        *) _molt_log "molt_pg_ctl: unknown action $action"; return 2 ;;
    esac
}

# molt_run CMD...: run CMD in its own process group and wait for it. Unlike a
# plain foreground command, this lets the traps of molt_install_server_trap run
# at once when the script gets SIGINT/SIGTERM (a plain `kill -INT $script`
# would otherwise wait for CMD to finish), and they stop CMD's whole process
# tree (e.g. cargo and the test binaries it runs). Returns CMD's status.
molt_run() {
    local rc=0
    # With job control on, the background job gets its own process group and
    # keeps the default SIGINT disposition.
    set -m
    "$@" &
    _MOLT_RUN_PGID=$!
    set +m
    wait "$_MOLT_RUN_PGID" || rc=$?
    _MOLT_RUN_PGID=
    return "$rc"
}

# _molt_on_signal STATUS: stop the process group molt_run is waiting for, then
# exit with STATUS (the EXIT trap then stops the servers).
_molt_on_signal() {
    local status=$1 pgid=${_MOLT_RUN_PGID:-} waited=0
    trap '' INT TERM
    if [ -n "$pgid" ] && kill -0 -- "-$pgid" 2>/dev/null; then
        kill -TERM -- "-$pgid" 2>/dev/null || true
        while kill -0 -- "-$pgid" 2>/dev/null && [ "$waited" -lt 100 ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
    exit "$status"
}

# molt_install_server_trap: stop the servers when the shell exits, including
# on Ctrl-C (exit status 130) and SIGTERM (143); on a signal, first stop the
# command molt_run is running.
molt_install_server_trap() {
    trap 'molt_stop_servers' EXIT
    trap '_molt_on_signal 130' INT
    trap '_molt_on_signal 143' TERM
}

# molt_build_release_bins REPO: builds the tools in release mode and sets
# `bin` to the directory that holds them (CARGO_TARGET_DIR is honoured).
molt_build_release_bins() {
    printf '\n==> %s\n' "cargo build --release --bins" >&2
    molt_run cargo build --workspace --bins --release
    bin=${CARGO_TARGET_DIR:-$1/target}/release
}

# molt_use_servers LABEL WITH_MYSQL: the MOLT_TEST_* servers when all three
# URLs are set, else throwaway servers under a fresh MOLT_SERVERS_DIR named
# after LABEL (MariaDB only when WITH_MYSQL is "yes"). Sets pg_src_server,
# pg_tgt_server and my_server. Call molt_install_server_trap first.
molt_use_servers() {
    if [ -n "${MOLT_TEST_PG_SOURCE:-}" ] && [ -n "${MOLT_TEST_PG_TARGET:-}" ] && [ -n "${MOLT_TEST_MYSQL_SOURCE:-}" ]; then
        pg_src_server=$MOLT_TEST_PG_SOURCE pg_tgt_server=$MOLT_TEST_PG_TARGET my_server=$MOLT_TEST_MYSQL_SOURCE
        return
    fi
    printf '\n==> %s\n' "starting throwaway servers" >&2
    molt_ensure_server_binaries
    MOLT_SERVERS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/molt-$1.XXXXXX")
    export MOLT_SERVERS_DIR
    pg_src_server=$(molt_start_pg pg-source)
    pg_tgt_server=$(molt_start_pg pg-target)
    if [ "$2" = yes ]; then
        my_server=$(molt_start_mariadb mysql-source)
    fi
}
