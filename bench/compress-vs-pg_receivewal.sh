#!/usr/bin/env bash
# Side by side: pgwalrus receive -Z vs PostgreSQL 15's pg_receivewal -Z on the same primary.
#
# Catch-up of GIB GiB (default 1) of WAL retained by a slot, streamed from the slot's
# restart point up to a fixed end position (-E / --endpos), once per configuration and RUNS
# times (default 1), each run through a fresh copy of the slot:
#
#   pgwalrus zstd (default level 1)   pgwalrus lz4   pgwalrus gzip (level 6)
#   pg_receivewal gzip (level 6)      pg_receivewal lz4
#
# Reports wall time, MiB/s of WAL, CPU seconds (user+sys) per GiB of WAL, peak RSS, the
# archive's size and its size relative to the WAL, and the ratios pgwalrus/pg_receivewal for
# the two methods both tools have. Every complete segment of every archive is decompressed
# with the standard tool (gzip/lz4/zstd -d) and compared with the server's pg_wal file.
#
# Not a test: numbers depend on the machine. Run on a quiet machine; results go to stdout
# as a Markdown table (paste into docs/benchmarks.md together with the command line).
#
#   bench/compress-vs-pg_receivewal.sh [--gib N] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
# shellcheck source=bench/lib.sh
. bench/lib.sh

GIB=1; RUNS=1
while [ $# -gt 0 ]; do
    case "$1" in
        --gib) GIB="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

BIN=/usr/lib/postgresql/15/bin
need_tools time gzip lz4 zstd
build_pgwalrus

bench_primary "$BIN" pgwalrus-bench-z max_wal_size=4GB checkpoint_timeout=1h shared_buffers=256MB

# WAL with the mix of a real workload: heap inserts of text that compresses about 3:1, index
# entries, full-page images after the checkpoint.
echo "generating ${GIB} GiB of WAL…" >&2
psql_ -c "SELECT pg_create_physical_replication_slot('bench_base', true)" >/dev/null
start_lsn="$(psql_ -c "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'bench_base'")"
target="$(awk -v g="$GIB" 'BEGIN{printf "%d", g*1073741824}')"
psql_ -c "CREATE TABLE filler (id bigint PRIMARY KEY, pad text)" >/dev/null
next=1
while :; do
    psql_ -c "INSERT INTO filler SELECT g, md5(g::text) || repeat(' walrus ', 12) || md5((g * 7)::text)
              FROM generate_series($next, $((next + 199999))) g" >/dev/null
    next=$((next + 200000))
    done_bytes="$(psql_ -c "SELECT pg_current_wal_lsn() - '$start_lsn'::pg_lsn")"
    [ "${done_bytes%.*}" -ge "$target" ] && break
done
psql_ -c "SELECT pg_switch_wal()" >/dev/null
end_lsn="$(psql_ -c "SELECT pg_current_wal_lsn()")"
# pg_receivewal stops only on WAL *beyond* --endpos, pgwalrus once it has everything up to
# it: write a little WAL past the end so neither waits for the server's next idle record.
psql_ -c "CREATE TABLE IF NOT EXISTS bench_after (i int)" -c "INSERT INTO bench_after VALUES (1)" >/dev/null
bytes="$(psql_ -c "SELECT '$end_lsn'::pg_lsn - '$start_lsn'::pg_lsn")"; bytes="${bytes%.*}"
echo "WAL retained: $bytes bytes from $start_lsn to $end_lsn" >&2

CONFIGS=("pgwalrus zstd" "pgwalrus lz4" "pgwalrus gzip" "pg_receivewal gzip" "pg_receivewal lz4")

run_one() { # tool method dir -> "wall user sys maxrss_kb"
    local tool="$1" method="$2" dir="$3" slot="bench_run"
    rm -rf "$dir"; mkdir -p "$dir"
    psql_ -c "SELECT pg_drop_replication_slot('$slot')" >/dev/null 2>&1 || true
    psql_ -c "SELECT pg_copy_physical_replication_slot('bench_base', '$slot')" >/dev/null
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    if [ "$tool" = pg_receivewal ]; then
        timed "$BIN/pg_receivewal" -D "$dir" -d "$CONN" -S "$slot" -E "$end_lsn" -n -Z "$method"
    else
        timed "$PGWALRUS" receive -q -D "$dir" -d "$CONN" -S "$slot" -E "$end_lsn" -n -Z "$method"
    fi
}

# Every complete segment decompresses to the server's own file.
check_archive() { # dir -> number of segments checked
    local dir="$1" n=0 f name tool
    for f in "$dir"/*; do
        name="$(basename "$f")"
        case "$name" in
            *.partial|*.tmp|*.history*) continue ;;
            *.gz) tool=gzip ;; *.lz4) tool=lz4 ;; *.zst) tool=zstd ;; *) tool="" ;;
        esac
        if [ -n "$tool" ]; then
            "$tool" -d -c "$f" | cmp -s - "$work/data/pg_wal/${name%.*}" \
                || { echo "MISMATCH: $f does not decompress to pg_wal/${name%.*}" >&2; exit 1; }
        else
            cmp -s "$f" "$work/data/pg_wal/$name" || { echo "MISMATCH: $f" >&2; exit 1; }
        fi
        n=$((n + 1))
    done
    echo "$n"
}

declare -A WALL CPU RSS SIZE
for i in $(seq 1 "$RUNS"); do
    for config in "${CONFIGS[@]}"; do
        read -r tool method <<<"$config"
        echo "run $i/$RUNS: $tool $method…" >&2
        dir="$work/out-$tool-$method"
        read -r wall user sys rss <<<"$(run_one "$tool" "$method" "$dir")"
        checked="$(check_archive "$dir")"
        [ "$checked" -gt 0 ] || { echo "no complete segment from $tool $method" >&2; exit 1; }
        WALL[$config]+="$wall "
        CPU[$config]+="$(awk -v u="$user" -v s="$sys" 'BEGIN{print u+s}') "
        RSS[$config]="$rss"
        SIZE[$config]="$(find "$dir" -maxdepth 1 -type f ! -name '*.partial' ! -name '*.tmp' -printf '%s\n' | awk '{s+=$1} END {print s+0}')"
    done
done

gib="$(awk -v b="$bytes" 'BEGIN{printf "%.3f", b/1073741824}')"
echo
echo "### Compressed catch-up of ${gib} GiB of slot-retained WAL (median of $RUNS run(s), PostgreSQL 15)"
echo
echo "| tool | method | wall s | MiB/s | CPU s per GiB | peak RSS MiB | complete files MiB | size / WAL |"
echo "|---|---|---|---|---|---|---|---|"
declare -A MW MC
for config in "${CONFIGS[@]}"; do
    read -r tool method <<<"$config"
    w="$(printf '%s\n' ${WALL[$config]} | median)"
    c="$(printf '%s\n' ${CPU[$config]} | median)"
    MW[$config]="$w"; MC[$config]="$c"
    awk -v t="$tool" -v m="$method" -v w="$w" -v c="$c" -v r="${RSS[$config]}" -v s="${SIZE[$config]}" -v g="$gib" -v b="$bytes" \
        'BEGIN{printf "| %s | %s | %.2f | %.1f | %.2f | %.1f | %.1f | %.3f |\n", t, m, w, g*1024/w, c/g, r/1024, s/1048576, s/b}'
done
echo
for method in gzip lz4; do
    awk -v m="$method" -v pw="${MW[pg_receivewal $method]}" -v ww="${MW[pgwalrus $method]}" \
        -v pc="${MC[pg_receivewal $method]}" -v wc="${MC[pgwalrus $method]}" \
        -v ps="${SIZE[pg_receivewal $method]}" -v ws="${SIZE[pgwalrus $method]}" \
        'BEGIN{printf "%s: throughput pgwalrus/pg_receivewal %.2fx; CPU per GiB %.2fx; archive size %.3fx\n", m, pw/ww, (pc>0? wc/pc : 0), ws/ps}'
done
