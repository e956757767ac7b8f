#!/usr/bin/env bash
# scripts/install.sh PREFIX: builds the five molt tools (release) and installs
# them with their man pages and shell completions:
#
#   PREFIX/bin/molt-{slice,dump,load,verify,cutover}
#   PREFIX/share/man/man1/molt-*.1
#   PREFIX/share/bash-completion/completions/molt-*
#   PREFIX/share/zsh/site-functions/_molt-*
#   PREFIX/share/fish/vendor_completions.d/molt-*.fish
#
# Oracle support needs Oracle's client library at run time: MOLT_FEATURES=oracle
# builds it in. CARGO_TARGET_DIR is honoured. Exit status: 0 installed, 1 a step
# failed (named on stderr), 2 usage.
set -euo pipefail

usage() {
    echo "usage: scripts/install.sh PREFIX   (e.g. ~/.local or /usr/local)" >&2
    exit 2
}
[ $# -eq 1 ] || usage
case $1 in -h | --help) usage ;; esac
prefix=$1
[ -n "$prefix" ] || usage

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
features=${MOLT_FEATURES:-}
tools=(molt-slice molt-dump molt-load molt-verify molt-cutover)

say() { printf 'install.sh: %s\n' "$*" >&2; }
fail() {
    say "error: $*"
    exit 1
}

command -v cargo > /dev/null || fail "cargo is not on PATH (install Rust from https://rustup.rs)"

say "building ${tools[*]} and molt-docs (release${features:+, features $features})"
build=(cargo build --release --locked --manifest-path "$root/Cargo.toml")
for t in "${tools[@]}" molt-docs; do build+=(-p "$t"); done
[ -z "$features" ] || build+=(--features "$features")
"${build[@]}" || fail "the build failed"

bin=$target_dir/release
for t in "${tools[@]}" molt-docs; do
    [ -x "$bin/$t" ] || fail "the build left no $bin/$t"
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
"$bin/molt-docs" man "$stage/man" > /dev/null || fail "generating the man pages"
for shell in bash zsh fish; do
    "$bin/molt-docs" completions "$shell" "$stage/$shell" > /dev/null || fail "generating the $shell completions"
done

mkdir -p "$prefix/bin" "$prefix/share/man/man1" "$prefix/share/bash-completion/completions" \
    "$prefix/share/zsh/site-functions" "$prefix/share/fish/vendor_completions.d" ||
    fail "cannot create directories under $prefix"
for t in "${tools[@]}"; do
    install -m 0755 "$bin/$t" "$prefix/bin/$t" || fail "installing $t"
done
pages=0
for page in "$stage"/man/*.1; do
    install -m 0644 "$page" "$prefix/share/man/man1/" || fail "installing $page"
    pages=$((pages + 1))
done
[ "$pages" -gt 0 ] || fail "molt-docs wrote no man page"
# bash-completion loads a command's completion from a file named after it.
for f in "$stage"/bash/*.bash; do
    install -m 0644 "$f" "$prefix/share/bash-completion/completions/$(basename "$f" .bash)" ||
        fail "installing $f"
done
cp "$stage"/zsh/* "$prefix/share/zsh/site-functions/" || fail "installing the zsh completions"
cp "$stage"/fish/* "$prefix/share/fish/vendor_completions.d/" || fail "installing the fish completions"

for t in "${tools[@]}"; do
    "$prefix/bin/$t" --version > /dev/null || fail "the installed $t does not run"
done
say "installed ${#tools[@]} tools, $pages man pages and bash/zsh/fish completions under $prefix"
case ":$PATH:" in
    *":$prefix/bin:"*) ;;
    *) say "note: $prefix/bin is not on PATH" ;;
esac
