#!/usr/bin/env bash
#
# scripts/fuzz.sh - fuzz molt's input parsers with cargo-fuzz (libFuzzer).
#
#   scripts/fuzz.sh [SECONDS]        each target for SECONDS (default 60)
#
# The targets (fuzz/fuzz_targets/, a cargo package of its own outside the
# main workspace):
#
#   stream_reader    the NDJSON stream reader (molt_core::stream::StreamReader)
#   csv_reader       the CSV reader (molt_core::stream::csv::CsvReader)
#   conn_url         connection URLs: parsing, TLS parameters, the PostgreSQL,
#                    MySQL and Oracle option builders, redaction
#   phase_plan       the phase plan TOML (molt_slice::PlanFile::parse)
#   type_map         the MySQL type-map file (molt_core::mysql::typemap)
#   canonical_value  canonical values, JSON, intervals, BC years, the digest
#
# It installs cargo-fuzz (cargo install) and a C++ compiler for libFuzzer
# (apt-get, as root) when they are missing. cargo-fuzz wants a nightly
# toolchain; on the stable one it runs with RUSTC_BOOTSTRAP=1, which lets
# stable rustc take the -Z flags it passes. Each target starts from the
# checked-in seeds (fuzz/seeds/TARGET) and keeps what it learns in
# fuzz/corpus/TARGET; a crash is saved under fuzz/artifacts/TARGET and named
# at the end (replay it with `cargo fuzz run TARGET FILE`). At the end it
# prints the executions of each target, from libFuzzer's final stats.
#
# Not part of CI: molt-core/tests/proptest_inputs.rs runs the same
# entry points briefly there.
#
# Environment: MOLT_FUZZ_TARGETS (space-separated subset of the targets),
# MOLT_FUZZ_SANITIZER (address, cargo-fuzz's default; `none` runs about twice
# as fast, and molt itself forbids unsafe code, but its dependencies have
# some), CARGO_TARGET_DIR (default fuzz/target).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo/fuzz"

secs=${1:-60}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
    echo "usage: scripts/fuzz.sh [SECONDS]" >&2
    exit 2
fi
all_targets="stream_reader csv_reader conn_url phase_plan type_map canonical_value"
targets=${MOLT_FUZZ_TARGETS:-$all_targets}
sanitizer=${MOLT_FUZZ_SANITIZER:-address}
target_dir=${CARGO_TARGET_DIR:-$repo/fuzz/target}

step() {
    printf '\n==> %s\n' "$*" >&2
}

if ! cargo fuzz --version >/dev/null 2>&1; then
    step "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
if ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        step "installing g++ (libfuzzer-sys compiles libFuzzer)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++
    else
        echo "fuzz.sh: a C++ compiler is needed to build libFuzzer: install g++" >&2
        exit 1
    fi
fi

# cargo-fuzz passes -Z flags; stable rustc takes them with RUSTC_BOOTSTRAP.
if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi

fuzz_flags=(--sanitizer "$sanitizer" --target-dir "$target_dir")

step "building the fuzz targets (sanitizer: $sanitizer)"
cargo fuzz build "${fuzz_flags[@]}"

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=()
for t in $targets; do
    step "fuzzing $t for ${secs}s"
    mkdir -p "corpus/$t" "artifacts/$t"
    # -print_final_stats gives the execution count; -timeout and -rss_limit_mb
    # make a hang or a memory blow-up a finding, not a stuck run.
    if cargo fuzz run "${fuzz_flags[@]}" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        >"$logs/$t.log" 2>&1; then
        :
    else
        failed+=("$t")
        tail -n 40 "$logs/$t.log" >&2
    fi
done

step "executions per target"
printf '%-16s %14s %10s  %s\n' target executions "exec/s" result
for t in $targets; do
    execs=$(grep -h '^stat::number_of_executed_units:' "$logs/$t.log" | awk '{s += $2} END {print s + 0}')
    rate=$(grep -h '^stat::average_exec_per_sec:' "$logs/$t.log" | awk '{s += $2} END {print s + 0}')
    result=ok
    for f in "${failed[@]}"; do
        [ "$f" = "$t" ] && result="FAILED (see fuzz/artifacts/$t)"
    done
    printf '%-16s %14s %10s  %s\n' "$t" "$execs" "$rate" "$result"
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz.sh: crashes in: ${failed[*]}" >&2
    exit 1
fi
