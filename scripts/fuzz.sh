#!/usr/bin/env bash
# The fuzz targets of fuzz/ on the pinned stable toolchain (see fuzz/README.md).
#
#   scripts/fuzz.sh check        # every target has a saved corpus that a unit test replays
#   scripts/fuzz.sh run [SECS]   # fuzz every target for SECS seconds (default 30), from a
#                                # copy of its corpus; fails on the first crash
#   scripts/fuzz.sh cmin         # minimise every saved corpus in place (after a long run)
#
# The regression run over the saved corpora needs none of this: the unit tests of
# pgwalrus-wal, -proto, -client and -archive replay fuzz/corpus/<target>/ through the same
# functions the targets call (`cargo test --workspace`). `run` and `cmin` need cargo-fuzz
# (installed into .cache/cargo-fuzz when missing) and use `-s none`: without a sanitizer
# cargo-fuzz passes rustc only stable flags (coverage instrumentation via `-Cpasses` and
# `-Cllvm-args`), while its default AddressSanitizer needs nightly's `-Zsanitizer`. The
# workspace forbids unsafe code outside one audited CRC call, so ASan would add little.
set -euo pipefail
cd "$(dirname "$0")/.."

targets() { ls fuzz/fuzz_targets | sed -n 's/\.rs$//p'; }

check() {
    local missing=0
    for t in $(targets); do
        if [ -z "$(ls -A "fuzz/corpus/$t" 2>/dev/null)" ]; then
            echo "fuzz target $t has no saved corpus in fuzz/corpus/$t" >&2
            missing=1
        fi
        if ! grep -q "replay(\"$t\"" crates/*/src/fuzz.rs; then
            echo "fuzz target $t: no unit test replays its corpus (crates/*/src/fuzz.rs)" >&2
            missing=1
        fi
    done
    for dir in fuzz/corpus/*/; do
        t=$(basename "$dir")
        [ -f "fuzz/fuzz_targets/$t.rs" ] || { echo "fuzz/corpus/$t has no target" >&2; missing=1; }
    done
    [ "$missing" = 0 ] && echo "$(targets | wc -l) fuzz targets, each with a saved corpus replayed by a unit test"
    return "$missing"
}

cargo_fuzz() {
    local root=.cache/cargo-fuzz
    if ! command -v cargo-fuzz >/dev/null && [ ! -x "$root/bin/cargo-fuzz" ]; then
        echo "installing cargo-fuzz into $root" >&2
        cargo install cargo-fuzz --locked --root "$root" -q
    fi
    PATH="$PWD/$root/bin:$PATH" cargo fuzz "$@"
}

run() {
    local secs="${1:-30}" work status=0
    work=$(mktemp -d)
    trap 'rm -rf "$work"' RETURN
    cargo_fuzz build -s none
    for t in $(targets); do
        # A copy: what the run finds is not written into the repository's corpus.
        cp -r "fuzz/corpus/$t" "$work/$t"
        echo "== fuzzing $t for ${secs}s"
        if ! cargo_fuzz run -s none "$t" "$work/$t" -- \
            -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 \
            2>"$work/$t.log"; then
            tail -n 40 "$work/$t.log" >&2
            echo "fuzz target $t crashed; the input is in fuzz/artifacts/$t/" >&2
            status=1
        fi
        grep -h "stat::number_of_executed_units" "$work/$t.log" || true
    done
    return "$status"
}

cmin() {
    cargo_fuzz build -s none
    for t in $(targets); do
        # Edge coverage only (no hit-count buckets), and the decoder's inputs cut to about a
        # page: a few hundred KiB for all targets, not megabytes.
        local extra=()
        [ "$t" = wal_decoder ] && extra=(-max_len=9000)
        cargo_fuzz cmin -s none "$t" "fuzz/corpus/$t" -- -use_counters=0 "${extra[@]}"
    done
    du -sh fuzz/corpus
}

case "${1:-}" in
    check) check ;;
    run) run "${2:-30}" ;;
    cmin) cmin ;;
    *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
