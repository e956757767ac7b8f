#!/usr/bin/env bash
#
# scripts/phase.sh - run one phase of a migration end to end, for cron.
#
#   scripts/phase.sh PHASE [--env FILE] [--from STEP] [--until STEP] [--audit] [--dry-run]
#
# The phase is a readable pipeline of the molt tools (docs/runbook.md):
#
#   freeze    molt-cutover freeze              the source rejects writes to the phase's rows
#   load      molt-slice plan | molt-dump | molt-load
#                                              copy the slice; sections already loaded are skipped
#   verify    molt-slice plan | molt-verify    compare source and target, row by row; recorded in the ledger
#   finalize  molt-cutover finalize            indexes, constraints, foreign keys, sequences
#   switch    molt-cutover switch              gated: loaded + verified after the freeze + still frozen;
#                                              then runs MOLT_SWITCH_HOOK
#
# (`--audit` adds an `audit` step first: molt-slice audit, exit 3 when the plan is unsound.)
#
# Every step is idempotent, so re-running the script, or resuming it with
# `--from STEP`, is always safe. A phase the ledger shows as cut over is not
# frozen again: a plain re-run then does nothing and exits 0.
#
# Options:
#   --env FILE     configuration file (default: $MOLT_ENV_FILE, else ./molt.env if it exists)
#   --from STEP    start at STEP (audit, freeze, load, verify, finalize, switch)
#   --until STEP   stop after STEP (e.g. --until finalize: everything but the switch)
#   --audit        run molt-slice audit before freezing
#   --dry-run      print the commands, run nothing, take no lock
#   -h, --help     this text
#
# Configuration (the env file: KEY=VALUE lines, `#` comments, optional quotes,
# no shell expansion; a variable already set in the environment wins):
#   MOLT_SOURCE       source URL, or env:VAR / file:PATH (resolved by the tools)   required
#   MOLT_TARGET       target URL (CockroachDB), or env:VAR / file:PATH              required
#   MOLT_PLAN         the phase plan (TOML, docs/phase-plan.md)                     required
#   MOLT_JOBS         parallel sections for molt-dump and molt-load (default 4)
#   MOLT_SHARD_ROWS   rows per shard for molt-slice plan (default 500000)
#   MOLT_FREEZE_WAIT  seconds freeze waits for in-flight transactions (default 30)
#   MOLT_LOG_DIR      where run logs go (default $MOLT_STATE_DIR/logs)
#   MOLT_STATE_DIR    lock files (default ${XDG_STATE_HOME:-$HOME/.local/state}/molt)
#   MOLT_SWITCH_HOOK  shell command molt-cutover switch runs after the switch (optional)
#   MOLT_BIN_DIR      directory of the molt binaries (default: found on PATH)
#   MOLT_TEXTFILE_DIR node_exporter textfile directory: each run keeps molt_phase_PHASE.prom
#                     there up to date (every step's state and seconds, rows and bytes moved)
#   MOLT_DUMP_METRICS_ADDR, MOLT_LOAD_METRICS_ADDR, MOLT_VERIFY_METRICS_ADDR
#                     HOST:PORT for that tool's --metrics-addr (Prometheus /metrics while it runs)
# URLs are handed to the tools through MOLT_SOURCE/MOLT_TARGET in their
# environment, never on a command line, so they never reach the log or `ps`.
#
# Output: progress on stderr; one line on stdout when the phase is done. Each
# run writes $MOLT_LOG_DIR/phase-PHASE-<UTC timestamp>.ndjson: the tools'
# stdout records (molt-load results, molt-verify reports) and, after each step,
#   {"type":"phase_step","phase":"A","step":"load","command":"...","exit":0,"statuses":[0,0,0],"seconds":12.3,...}
# and finally {"type":"phase_summary","phase":"A","rows":...,"bytes":...,"verified":true,"exit":0,...}.
# With MOLT_TEXTFILE_DIR, the same in Prometheus's text format for node_exporter's textfile
# collector (docs/metrics.md), rewritten atomically as each step starts and ends.
#
# Exit codes:
#   0   the phase is done (cut over), or the steps asked for are
#   1   a step failed (the message names the step and the command to resume with)
#   2   usage error, or bad configuration
#   3   verify found differences (or --audit found the plan unsound)
#   4   molt-cutover switch refused: the gate is not met
#   75  another run of this phase holds the lock (EX_TEMPFAIL: cron retries later)
set -euo pipefail

readonly STEPS=(audit freeze load verify finalize switch)
readonly EXIT_FAILED=1 EXIT_USAGE=2 EXIT_DIFFERENCES=3 EXIT_REFUSED=4 EXIT_LOCKED=75

prog=scripts/phase.sh
say() { printf 'phase.sh: %s\n' "$*" >&2; }
die() {
    local code=$1
    shift
    say "error: $*"
    exit "$code"
}
usage() { sed -n '3,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

# --- arguments --------------------------------------------------------------

phase= env_file= from= until_step= audit=0 dry_run=0
while [ $# -gt 0 ]; do
    case $1 in
        --env) env_file=${2:?--env needs a FILE}; shift 2 ;;
        --env=*) env_file=${1#*=}; shift ;;
        --from) from=${2:?--from needs a STEP}; shift 2 ;;
        --from=*) from=${1#*=}; shift ;;
        --until) until_step=${2:?--until needs a STEP}; shift 2 ;;
        --until=*) until_step=${1#*=}; shift ;;
        --audit) audit=1; shift ;;
        --dry-run) dry_run=1; shift ;;
        -h | --help) usage; exit 0 ;;
        -*) say "unknown option: $1 (see --help)"; exit "$EXIT_USAGE" ;;
        *)
            [ -z "$phase" ] || { say "one phase at a time (got $phase and $1)"; exit "$EXIT_USAGE"; }
            phase=$1
            shift
            ;;
    esac
done
[ -n "$phase" ] || { say "usage: $prog PHASE [--env FILE] [--from STEP] [--until STEP] [--audit] [--dry-run]"; exit "$EXIT_USAGE"; }
case $phase in
    *[!A-Za-z0-9_.-]*) die "$EXIT_USAGE" "phase name '$phase': use letters, digits, '_', '.', '-'" ;;
esac

step_index() {
    local i
    for i in "${!STEPS[@]}"; do
        if [ "${STEPS[$i]}" = "$1" ]; then
            printf '%s\n' "$i"
            return 0
        fi
    done
    return 1
}
if [ -n "$from" ]; then
    from_i=$(step_index "$from") || die "$EXIT_USAGE" "--from $from: steps are ${STEPS[*]}"
    # Resuming at the audit means running it.
    [ "$from" != audit ] || audit=1
else
    from_i=0
fi
if [ -n "$until_step" ]; then
    until_i=$(step_index "$until_step") || die "$EXIT_USAGE" "--until $until_step: steps are ${STEPS[*]}"
else
    until_i=$((${#STEPS[@]} - 1))
fi
[ "$from_i" -le "$until_i" ] || die "$EXIT_USAGE" "--from $from comes after --until $until_step"

# --- configuration ----------------------------------------------------------

# load_env FILE: export KEY=VALUE lines that the environment does not set yet.
load_env() {
    local file=$1 line key value n=0
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        line=${line%$'\r'}
        # Trim leading blanks; skip blanks and comments.
        line=${line#"${line%%[![:space:]]*}"}
        case $line in '' | '#'*) continue ;; esac
        line=${line#export }
        case $line in
            *=*) ;;
            *) die "$EXIT_USAGE" "$file line $n: expected KEY=VALUE" ;;
        esac
        key=${line%%=*}
        value=${line#*=}
        case $key in
            '' | [0-9]* | *[!A-Za-z0-9_]*) die "$EXIT_USAGE" "$file line $n: bad variable name '$key'" ;;
        esac
        # One pair of surrounding quotes is removed; nothing is expanded.
        case $value in
            \"*\") value=${value#\"}; value=${value%\"} ;;
            \'*\') value=${value#\'}; value=${value%\'} ;;
        esac
        if [ -z "${!key+set}" ]; then
            export "$key=$value"
        fi
    done <"$file"
}

if [ -z "$env_file" ] && [ -n "${MOLT_ENV_FILE:-}" ]; then
    env_file=$MOLT_ENV_FILE
fi
if [ -n "$env_file" ]; then
    [ -r "$env_file" ] || die "$EXIT_USAGE" "env file $env_file cannot be read"
    load_env "$env_file"
elif [ -r ./molt.env ]; then
    env_file=./molt.env
    load_env "$env_file"
fi

for var in MOLT_SOURCE MOLT_TARGET MOLT_PLAN; do
    [ -n "${!var:-}" ] || die "$EXIT_USAGE" "$var is not set (in ${env_file:-the environment; no ./molt.env}); see docs/runbook.md"
done
[ -r "$MOLT_PLAN" ] || die "$EXIT_USAGE" "MOLT_PLAN=$MOLT_PLAN cannot be read"
export MOLT_SOURCE MOLT_TARGET
jobs=${MOLT_JOBS:-4}
shard_rows=${MOLT_SHARD_ROWS:-500000}
freeze_wait=${MOLT_FREEZE_WAIT:-30}
for var in jobs shard_rows freeze_wait; do
    case ${!var} in
        '' | *[!0-9]*) die "$EXIT_USAGE" "$var must be a whole number, not '${!var}'" ;;
    esac
done
state_dir=${MOLT_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/molt}
log_dir=${MOLT_LOG_DIR:-$state_dir/logs}
hook=${MOLT_SWITCH_HOOK:-}
textfile_dir=${MOLT_TEXTFILE_DIR:-}
if [ -n "$textfile_dir" ] && [ "$dry_run" = 0 ]; then
    [ -d "$textfile_dir" ] && [ -w "$textfile_dir" ] \
        || die "$EXIT_USAGE" "MOLT_TEXTFILE_DIR=$textfile_dir is not a writable directory"
fi

# tool NAME: the path of a molt binary.
tool() {
    if [ -n "${MOLT_BIN_DIR:-}" ]; then
        printf '%s/%s\n' "${MOLT_BIN_DIR%/}" "$1"
    else
        printf '%s\n' "$1"
    fi
}
slice=$(tool molt-slice) dump=$(tool molt-dump) load=$(tool molt-load)
verify=$(tool molt-verify) cutover=$(tool molt-cutover)
if [ "$dry_run" = 0 ]; then
    for t in "$slice" "$dump" "$load" "$verify" "$cutover"; do
        command -v "$t" >/dev/null 2>&1 || die "$EXIT_USAGE" "$t not found (set MOLT_BIN_DIR or PATH; cargo build --release)"
    done
fi

# --- the commands of each step ------------------------------------------------

q() { printf '%q' "$1"; }
plan_q=$(q "$MOLT_PLAN")
phase_q=$(q "$phase")
hook_arg=
[ -z "$hook" ] || hook_arg=" --hook $(q "$hook")"
# metrics_arg VAR: " --metrics-addr ADDR" when VAR is set.
metrics_arg() {
    [ -z "${!1:-}" ] || printf ' --metrics-addr %s' "$(q "${!1}")"
}
dump_metrics=$(metrics_arg MOLT_DUMP_METRICS_ADDR)
load_metrics=$(metrics_arg MOLT_LOAD_METRICS_ADDR)
verify_metrics=$(metrics_arg MOLT_VERIFY_METRICS_ADDR)
declare -A CMD=(
    [audit]="$(q "$slice") audit --plan $plan_q"
    [freeze]="$(q "$cutover") freeze --plan $plan_q --phase $phase_q --wait-timeout $freeze_wait"
    [load]="$(q "$slice") plan --plan $plan_q --phase $phase_q --shard-rows $shard_rows | $(q "$dump") --jobs $jobs --quiet$dump_metrics | $(q "$load") --jobs $jobs --quiet$load_metrics"
    [verify]="$(q "$slice") plan --plan $plan_q --phase $phase_q --shard-rows 0 | $(q "$verify") --phase $phase_q$verify_metrics"
    [finalize]="$(q "$cutover") finalize --plan $plan_q --phase $phase_q"
    [switch]="$(q "$cutover") switch --plan $plan_q --phase $phase_q$hook_arg"
)

# redact TEXT: passwords in any URL-looking text become ***.
redact() {
    sed -E 's#([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@[:space:]]*):[^@[:space:]]*@#\1:***@#g' <<<"$1"
}

if [ "$dry_run" = 1 ]; then
    printf '# phase %s: MOLT_SOURCE and MOLT_TARGET from %s\n' "$phase" "${env_file:-the environment}"
    for ((i = from_i; i <= until_i; i++)); do
        s=${STEPS[$i]}
        [ "$s" != audit ] || [ "$audit" = 1 ] || continue
        printf '%s\n' "$(redact "${CMD[$s]}")"
    done
    exit 0
fi

# --- lock and log ---------------------------------------------------------------

mkdir -p "$state_dir" "$log_dir"
lock_file=$state_dir/phase-$phase.lock
exec 9>>"$lock_file"
if ! flock -n 9; then
    say "phase $phase is already running (lock $lock_file is held); exiting with $EXIT_LOCKED"
    exit "$EXIT_LOCKED"
fi

stamp=$(date -u +%Y%m%dT%H%M%S.%3NZ)
log=$log_dir/phase-$phase-$stamp.ndjson
n=1
while [ -e "$log" ]; do
    log=$log_dir/phase-$phase-$stamp-$n.ndjson
    n=$((n + 1))
done
: >"$log"

now() { printf '%s\n' "${EPOCHREALTIME:-$(date +%s.%N)}"; }
json_str() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\t'/\\t}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    printf '"%s"' "$s"
}
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
run_start=$(now)
say "phase $phase: log $log"

# log_step STEP COMMAND EXIT STATUSES SECONDS
log_step() {
    printf '{"type":"phase_step","phase":%s,"step":%s,"command":%s,"exit":%s,"statuses":[%s],"seconds":%s,"at":%s,"host":%s}\n' \
        "$(json_str "$phase")" "$(json_str "$1")" "$(json_str "$(redact "$2")")" "$3" "$4" "$5" \
        "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")" "$(json_str "$(hostname 2>/dev/null || echo unknown)")" >>"$log"
}

rows=0 bytes=0 verified=false
# count_rows: rows and bytes of the molt-load result records in the log so far.
count_rows() {
    local sums
    # molt-load result records: top-level "rows" and "bytes" are adjacent.
    sums=$(grep '"type":"result"' "$log" | grep -o ',"rows":[0-9]*,"bytes":[0-9]*' \
        | awk -F'[:,]' '{ r += $3; b += $5 } END { printf "%d %d", r, b }') || sums="0 0"
    read -r rows bytes <<<"$sums"
}

# --- the node_exporter textfile (MOLT_TEXTFILE_DIR) ---------------------------

# The steps this run runs, each pending until it starts.
RUN_STEPS=()
declare -A STEP_STATE=() STEP_SECS=() STEP_EXIT=() STEP_START=()
for ((i = from_i; i <= until_i; i++)); do
    s=${STEPS[$i]}
    [ "$s" != audit ] || [ "$audit" = 1 ] || continue
    RUN_STEPS+=("$s")
    STEP_STATE[$s]=pending
done
phase_exit=
run_stamp=$(date +%s)

# write_textfile: molt_phase_PHASE.prom, written to a temporary file in the
# same directory and renamed over the old one, so node_exporter never reads
# half a file (it reads only names ending in .prom).
write_textfile() {
    [ -n "$textfile_dir" ] || return 0
    local file=$textfile_dir/molt_phase_$phase.prom tmp s st v labels
    tmp=$(mktemp "$textfile_dir/.molt_phase_$phase.prom.XXXXXX" 2>/dev/null) || {
        say "warning: cannot write in MOLT_TEXTFILE_DIR=$textfile_dir"
        return 0
    }
    {
        printf '# HELP molt_phase_step_state State of each step of the last scripts/phase.sh run of the phase: 1 for its state, 0 for the others.\n'
        printf '# TYPE molt_phase_step_state gauge\n'
        for s in "${RUN_STEPS[@]}"; do
            for st in pending running ok failed; do
                v=0
                [ "${STEP_STATE[$s]}" != "$st" ] || v=1
                printf 'molt_phase_step_state{phase="%s",step="%s",state="%s"} %s\n' "$phase" "$s" "$st" "$v"
            done
        done
        printf '# HELP molt_phase_step_duration_seconds How long each step ran (so far, while it runs).\n'
        printf '# TYPE molt_phase_step_duration_seconds gauge\n'
        for s in "${RUN_STEPS[@]}"; do
            labels="phase=\"$phase\",step=\"$s\""
            if [ -n "${STEP_SECS[$s]:-}" ]; then
                printf 'molt_phase_step_duration_seconds{%s} %s\n' "$labels" "${STEP_SECS[$s]}"
            elif [ -n "${STEP_START[$s]:-}" ]; then
                printf 'molt_phase_step_duration_seconds{%s} %s\n' "$labels" "$(elapsed "${STEP_START[$s]}" "$(now)")"
            fi
        done
        printf '# HELP molt_phase_step_exit_code Exit code of each finished step (3: differences, 4: the switch gate refused).\n'
        printf '# TYPE molt_phase_step_exit_code gauge\n'
        for s in "${RUN_STEPS[@]}"; do
            [ -z "${STEP_EXIT[$s]:-}" ] \
                || printf 'molt_phase_step_exit_code{phase="%s",step="%s"} %s\n' "$phase" "$s" "${STEP_EXIT[$s]}"
        done
        printf '# HELP molt_phase_rows Rows molt-load wrote in this run of the phase (its result records).\n'
        printf '# TYPE molt_phase_rows gauge\n'
        printf 'molt_phase_rows{phase="%s"} %s\n' "$phase" "$rows"
        printf '# HELP molt_phase_bytes Bytes of COPY data molt-load wrote in this run of the phase.\n'
        printf '# TYPE molt_phase_bytes gauge\n'
        printf 'molt_phase_bytes{phase="%s"} %s\n' "$phase" "$bytes"
        printf '# HELP molt_phase_running 1 while scripts/phase.sh runs the phase.\n'
        printf '# TYPE molt_phase_running gauge\n'
        printf 'molt_phase_running{phase="%s"} %s\n' "$phase" "$([ -n "$phase_exit" ] && echo 0 || echo 1)"
        if [ -n "$phase_exit" ]; then
            printf '# HELP molt_phase_exit_code Exit code of the last finished run of scripts/phase.sh for the phase.\n'
            printf '# TYPE molt_phase_exit_code gauge\n'
            printf 'molt_phase_exit_code{phase="%s"} %s\n' "$phase" "$phase_exit"
        fi
        printf '# HELP molt_phase_start_time_seconds When the run started (Unix time).\n'
        printf '# TYPE molt_phase_start_time_seconds gauge\n'
        printf 'molt_phase_start_time_seconds{phase="%s"} %s\n' "$phase" "$run_stamp"
        printf '# HELP molt_phase_last_update_time_seconds When this file was written (Unix time).\n'
        printf '# TYPE molt_phase_last_update_time_seconds gauge\n'
        printf 'molt_phase_last_update_time_seconds{phase="%s"} %s\n' "$phase" "$(date +%s)"
    } >"$tmp" && chmod 644 "$tmp" && mv -f "$tmp" "$file" || {
        rm -f "$tmp"
        say "warning: cannot write $file"
    }
}

# A run that dies inside a step (a signal, an unexpected error) leaves no
# step "running" behind.
on_exit() {
    local code=$?
    [ -n "$textfile_dir" ] || return 0
    [ -z "$phase_exit" ] || return 0
    for s in "${RUN_STEPS[@]}"; do
        [ "${STEP_STATE[$s]}" != running ] || STEP_STATE[$s]=failed
    done
    phase_exit=$code
    write_textfile
}
trap on_exit EXIT

# summarize EXIT: the last record of the log, and one line on stdout.
summarize() {
    local code=$1 secs
    secs=$(elapsed "$run_start" "$(now)")
    count_rows
    phase_exit=$code
    write_textfile
    printf '{"type":"phase_summary","phase":%s,"rows":%s,"bytes":%s,"seconds":%s,"verified":%s,"exit":%s,"log":%s}\n' \
        "$(json_str "$phase")" "$rows" "$bytes" "$secs" "$verified" "$code" "$(json_str "$log")" >>"$log"
}

# --- running the steps ----------------------------------------------------------

resume_hint() {
    local s=$1 extra=
    [ -z "${env_file:-}" ] || extra=" --env $(q "$env_file")"
    printf '%s %s%s --from %s' "$prog" "$phase_q" "$extra" "$s"
}

# fail STEP CODE MESSAGE: log the summary, say what failed and how to resume, exit CODE.
fail() {
    local s=$1 code=$2
    shift 2
    summarize "$code"
    say "phase $phase: step $s failed: $*"
    say "phase $phase: fix the cause, then resume with: $(resume_hint "$s")"
    say "phase $phase: log $log"
    exit "$code"
}

# run_step STEP: run the step's command; its stdout records go to the log.
run_step() {
    local s=$1 cmd=${CMD[$1]} start secs rc statuses
    say "phase $phase: $s: $(redact "$cmd")"
    start=$(now)
    STEP_STATE[$s]=running
    STEP_START[$s]=$start
    write_textfile
    set +e
    # The command is built above from quoted words only; eval runs it as a pipeline.
    local st=()
    # The switch hook may start processes that outlive it: they must not
    # inherit (and hold) the phase lock on fd 9. Every other step keeps it,
    # so that a tool orphaned by a killed run still blocks the next run.
    local close_lock=
    [ "$s" != switch ] || close_lock=' 9>&-'
    eval "$cmd$close_lock"'; st=("${PIPESTATUS[@]}")' >>"$log"
    set -e
    secs=$(elapsed "$start" "$(now)")
    rc=0
    for x in "${st[@]}"; do
        if [ "$x" != 0 ]; then
            rc=$x
        fi
    done
    statuses=$(IFS=,; printf '%s' "${st[*]}")
    log_step "$s" "$cmd" "$rc" "$statuses" "$secs"
    STEP_RC=$rc
    STEP_STATUSES=$statuses
    STEP_SECS[$s]=$secs
    STEP_EXIT[$s]=$rc
    if [ "$rc" = 0 ]; then
        STEP_STATE[$s]=ok
    else
        STEP_STATE[$s]=failed
    fi
    [ "$s" != load ] || count_rows
    # summarize (on failure) writes the file itself.
    [ "$rc" != 0 ] || write_textfile
    if [ "$rc" = 0 ]; then
        say "phase $phase: $s: done in ${secs}s"
    fi
}

# The names of the commands in a step's pipeline, for messages.
pipeline_names() {
    case $1 in
        load) echo "molt-slice molt-dump molt-load" ;;
        verify) echo "molt-slice molt-verify" ;;
        audit) echo "molt-slice" ;;
        *) echo "molt-cutover" ;;
    esac
}
# which_failed STEP: "molt-dump exited 1" for the first failing command.
which_failed() {
    local names i=0 x out=
    read -r -a names <<<"$(pipeline_names "$1")"
    IFS=, read -r -a codes <<<"$STEP_STATUSES"
    for x in "${codes[@]}"; do
        if [ "$x" != 0 ]; then
            out="${out:+$out, }${names[$i]:-command $i} exited $x"
        fi
        i=$((i + 1))
    done
    printf '%s\n' "${out:-exit $STEP_RC}"
}

# phase_state: the phase's state in the ledger (empty if unknown).
phase_state() {
    "$cutover" status --json --phase "$phase" 2>/dev/null \
        | grep '"kind":"phase_status"' | grep -o '"state":"[a-z_]*"' | head -n 1 | cut -d'"' -f4
}

for ((i = from_i; i <= until_i; i++)); do
    s=${STEPS[$i]}
    if [ "$s" = audit ] && [ "$audit" = 0 ]; then
        continue
    fi
    if [ "$s" = freeze ]; then
        # Freezing a phase that is cut over would mark it frozen again.
        state=$(phase_state) || true
        if [ "$state" = cut_over ]; then
            say "phase $phase: already cut over (ledger); nothing to do. To run the hook again: $(resume_hint switch)"
            log_step preflight "$cutover status --json --phase $phase_q" 0 0 0
            RUN_STEPS=()
            verified=true
            summarize 0
            printf 'phase %s: already cut over; log %s\n' "$phase" "$log"
            exit 0
        fi
    fi
    run_step "$s"
    case $s:$STEP_RC in
        verify:0 | switch:0) verified=true ;; # the switch gate requires a passing verify
        *:0) ;;
        audit:3) fail audit "$EXIT_DIFFERENCES" "molt-slice audit found rows in no phase or in several (records in the log); fix the plan" ;;
        verify:3)
            fail verify "$EXIT_DIFFERENCES" "molt-verify found differences (report records in the log). Re-check with --from verify, or reload with --from load after fixing the cause"
            ;;
        switch:4) fail switch "$EXIT_REFUSED" "molt-cutover switch refused: the gate is not met (its message above lists every unmet condition)" ;;
        *) fail "$s" "$EXIT_FAILED" "$(which_failed "$s")" ;;
    esac
done

summarize 0
done_what="cut over"
[ "$until_i" = $((${#STEPS[@]} - 1)) ] || done_what="done through ${STEPS[$until_i]}"
printf 'phase %s: %s: %s rows, %s bytes, verified %s, %ss; log %s\n' \
    "$phase" "$done_what" "$rows" "$bytes" "$verified" "$(elapsed "$run_start" "$(now)")" "$log"
