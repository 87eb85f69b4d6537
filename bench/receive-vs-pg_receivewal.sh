#!/usr/bin/env bash
# Side by side: pgwalrus receive vs PostgreSQL 15's pg_receivewal on the same primary.
#
#  1. Catch-up: GIB GiB (default 1) of WAL retained by two slots (one per tool), streamed
#     from the slot's restart point up to a fixed end position (-E / --endpos), each tool
#     RUNS times (default 3), alternating. Reports wall time, MiB/s, CPU seconds per GiB
#     (user+sys) and peak RSS, and the ratios pgwalrus/pg_receivewal.
#  2. Synchronous: pgbench -c 4 for SECS seconds (default 30) with the receiver named in
#     synchronous_standby_names, each tool with --synchronous and a new slot, RUNS times,
#     alternating. Reports the median TPS.
#
# Not a test: numbers depend on the machine. Run on a quiet machine; results go to stdout
# as a Markdown table (paste into docs/benchmarks.md together with the command line).
#
#   PGWALRUS_ARGS="--no-verify" adds flags to the pgwalrus runs.
#   bench/receive-vs-pg_receivewal.sh [--gib N] [--runs N] [--sync-seconds N] [--skip-sync]
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
# shellcheck source=bench/lib.sh
. bench/lib.sh

GIB=1; RUNS=3; SYNC_SECS=30; SKIP_SYNC=0
while [ $# -gt 0 ]; do
    case "$1" in
        --gib) GIB="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --sync-seconds) SYNC_SECS="$2"; shift 2 ;;
        --skip-sync) SKIP_SYNC=1; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

BIN=/usr/lib/postgresql/15/bin
need_tools time
build_pgwalrus

bench_primary "$BIN" pgwalrus-bench max_wal_size=4GB checkpoint_timeout=1h shared_buffers=256MB synchronous_commit=on

echo "generating ${GIB} GiB of WAL…" >&2
psql_ -c "SELECT pg_create_physical_replication_slot('bench_prw', true)" \
      -c "SELECT pg_create_physical_replication_slot('bench_walrus', true)" >/dev/null
start_lsn="$(psql_ -c "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'bench_prw'")"
target="$(awk -v g="$GIB" 'BEGIN{printf "%d", g*1073741824}')"
while :; do
    psql_ -c "CREATE TABLE IF NOT EXISTS filler (id bigint, pad text)" \
          -c "INSERT INTO filler SELECT g, repeat('x', 200) FROM generate_series(1, 400000) g" >/dev/null
    done_bytes="$(psql_ -c "SELECT pg_current_wal_lsn() - '$start_lsn'::pg_lsn")"
    [ "${done_bytes%.*}" -ge "$target" ] && break
done
end_lsn="$(psql_ -c "SELECT pg_switch_wal()" >/dev/null; psql_ -c "SELECT pg_current_wal_lsn()")"
# pg_receivewal stops only on WAL *beyond* --endpos, pgwalrus once it has everything up to
# it: write a little WAL past the end so neither waits for the server's next idle record.
psql_ -c "CREATE TABLE IF NOT EXISTS bench_after (i int)" -c "INSERT INTO bench_after VALUES (1)" >/dev/null
bytes="$(psql_ -c "SELECT pg_current_wal_lsn() - '$start_lsn'::pg_lsn")"; bytes="${bytes%.*}"
echo "WAL retained: $bytes bytes from $start_lsn to $end_lsn" >&2

# Each run streams the same WAL from the slot's (unchanged) restart point: the slots are
# re-created at the start position between runs by copying them (pg_copy_physical_replication_slot).
run_one() { # tool dir -> "wall user sys maxrss_kb"
    local tool="$1" dir="$2" slot="$3"
    rm -rf "$dir"; mkdir -p "$dir"
    psql_ -c "SELECT pg_drop_replication_slot('$slot')" >/dev/null 2>&1 || true
    psql_ -c "SELECT pg_copy_physical_replication_slot('bench_prw', '$slot')" >/dev/null
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    if [ "$tool" = pg_receivewal ]; then
        timed "$BIN/pg_receivewal" -D "$dir" -d "$CONN" -S "$slot" -E "$end_lsn" -n
    else
        timed "$PGWALRUS" receive -q -D "$dir" -d "$CONN" -S "$slot" -E "$end_lsn" -n ${PGWALRUS_ARGS:-}
    fi
}

declare -a PRW WAL
for i in $(seq 1 "$RUNS"); do
    echo "catch-up run $i/$RUNS…" >&2
    PRW+=("$(run_one pg_receivewal "$work/prw" bench_run_prw)")
    WAL+=("$(run_one pgwalrus "$work/walrus" bench_run_walrus)")
done
# Same bytes?
for f in "$work"/prw/*; do
    n="$(basename "$f")"; case "$n" in *.partial) continue ;; esac
    cmp -s "$f" "$work/walrus/$n" || { echo "MISMATCH: $n differs between the two archives" >&2; exit 1; }
done

read -r prw_wall prw_cpu prw_rss <<<"$(summarize "${PRW[@]}")"
read -r wal_wall wal_cpu wal_rss <<<"$(summarize "${WAL[@]}")"
gib="$(awk -v b="$bytes" 'BEGIN{printf "%.3f", b/1073741824}')"

echo
echo "### Catch-up of ${gib} GiB of slot-retained WAL (median of $RUNS runs)"
echo
echo "| tool | wall s | MiB/s | CPU s per GiB | peak RSS MiB |"
echo "|---|---|---|---|---|"
awk -v t=pg_receivewal -v w="$prw_wall" -v c="$prw_cpu" -v r="$prw_rss" -v g="$gib" 'BEGIN{printf "| %s | %.2f | %.1f | %.2f | %.1f |\n", t, w, g*1024/w, c/g, r/1024}'
awk -v t=pgwalrus -v w="$wal_wall" -v c="$wal_cpu" -v r="$wal_rss" -v g="$gib" 'BEGIN{printf "| %s | %.2f | %.1f | %.2f | %.1f |\n", t, w, g*1024/w, c/g, r/1024}'
awk -v pw="$prw_wall" -v ww="$wal_wall" -v pc="$prw_cpu" -v wc="$wal_cpu" 'BEGIN{printf "\nthroughput ratio pgwalrus/pg_receivewal: %.2fx; CPU per GiB ratio: %.2fx\n", pw/ww, (pc>0? wc/pc : 0)}'

if [ "$SKIP_SYNC" = 0 ]; then
    tps_with() { # tool -> tps
        local tool="$1" dir="$work/sync-$1" rpid tps
        rm -rf "$dir"; mkdir -p "$dir"
        psql_ -c "SELECT pg_drop_replication_slot('sync_$tool')" >/dev/null 2>&1 || true
        # A new slot reserves WAL from the last checkpoint's redo point; without this one
        # that is the catch-up WAL above, and pgbench would first wait for the receiver to
        # stream a GiB instead of measuring synchronous commits.
        psql_ -c "CHECKPOINT" >/dev/null
        psql_ -c "SELECT pg_create_physical_replication_slot('sync_$tool', true)" >/dev/null
        psql_ -c "ALTER SYSTEM SET synchronous_standby_names = 'bench_$tool'" -c "SELECT pg_reload_conf()" >/dev/null
        if [ "$tool" = pg_receivewal ]; then
            "$BIN/pg_receivewal" -D "$dir" -d "$CONN application_name=bench_$tool" -S "sync_$tool" --synchronous >/dev/null 2>&1 &
        else
            "$PGWALRUS" receive -q -D "$dir" -d "$CONN application_name=bench_$tool" -S "sync_$tool" --synchronous >/dev/null 2>&1 &
        fi
        rpid=$!
        for _ in $(seq 1 50); do
            [ "$(psql_ -c "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'bench_$tool' AND sync_state = 'sync'")" = 1 ] && break
            sleep 0.2
        done
        tps="$("$BIN/pgbench" -h "$work" -p "$port" -U postgres -c 4 -j 2 -T "$SYNC_SECS" -N postgres 2>/dev/null | awk '/^tps/ {print $3; exit}')"
        kill -INT "$rpid"; wait "$rpid" 2>/dev/null || true
        psql_ -c "ALTER SYSTEM RESET synchronous_standby_names" -c "SELECT pg_reload_conf()" >/dev/null
        echo "$tps"
    }
    "$BIN/pgbench" -h "$work" -p "$port" -U postgres -i -s 10 -q postgres >/dev/null 2>&1
    PRW_TPS=(); WAL_TPS=()
    for i in $(seq 1 "$RUNS"); do
        echo "synchronous run $i/$RUNS…" >&2
        PRW_TPS+=("$(tps_with pg_receivewal)")
        WAL_TPS+=("$(tps_with pgwalrus)")
    done
    prw_tps="$(printf '%s\n' "${PRW_TPS[@]}" | median)"
    wal_tps="$(printf '%s\n' "${WAL_TPS[@]}" | median)"
    echo
    echo "### Synchronous mode, pgbench -c 4 -j 2 -N -T $SYNC_SECS (TPS, median of $RUNS runs)"
    echo
    echo "| tool | TPS (median) | runs |"
    echo "|---|---|---|"
    echo "| pg_receivewal --synchronous | $prw_tps | ${PRW_TPS[*]} |"
    echo "| pgwalrus receive --synchronous | $wal_tps | ${WAL_TPS[*]} |"
    awk -v p="$prw_tps" -v w="$wal_tps" 'BEGIN{printf "\nTPS ratio pgwalrus/pg_receivewal: %.2fx\n", w/p}'
fi
