#!/usr/bin/env bash
# Side by side: `pgwalrus verify` vs PostgreSQL 15's `pg_waldump --quiet` over the same
# archive of GIB GiB (default 1) of real WAL. Both decode every record and check every CRC.
# Reports wall time, CPU time and the ratio, median of RUNS (default 3), page cache warm.
#
#   bench/verify-vs-pg_waldump.sh [--gib N] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
GIB=1; RUNS=3
while [ $# -gt 0 ]; do
    case "$1" in
        --gib) GIB="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
BIN=/usr/lib/postgresql/15/bin
need_tools time
build_pgwalrus

bench_primary "$BIN" pgwalrus-vbench max_wal_size=4GB wal_keep_size=8GB checkpoint_timeout=1h

echo "generating ${GIB} GiB of WAL…" >&2
start_lsn="$(psql_ -c "SELECT pg_current_wal_lsn()")"
target="$(awk -v g="$GIB" 'BEGIN{printf "%d", g*1073741824}')"
"$BIN/pgbench" -h "$work" -p "$port" -U postgres -i -s 20 -q postgres >/dev/null 2>&1
while :; do
    "$BIN/pgbench" -h "$work" -p "$port" -U postgres -c 4 -j 2 -t 5000 -N postgres >/dev/null 2>&1
    done_bytes="$(psql_ -c "SELECT pg_current_wal_lsn() - '$start_lsn'::pg_lsn")"
    [ "${done_bytes%.*}" -ge "$target" ] && break
done
psql_ -c "SELECT pg_switch_wal()" >/dev/null
mkdir -p "$work/archive"
current="$(psql_ -c "SELECT pg_walfile_name(pg_current_wal_lsn())")"
for f in "$work"/data/pg_wal/[0-9A-F]*; do
    n="$(basename "$f")"
    [ "${#n}" = 24 ] && [[ "$n" < "$current" ]] && cp "$f" "$work/archive/$n"
done
first="$(ls "$work/archive" | head -1)"; last="$(ls "$work/archive" | tail -1)"
count="$(ls "$work/archive" | wc -l)"
echo "archive: $count segments, $first .. $last" >&2

declare -a W P
for i in $(seq 1 "$RUNS"); do
    P+=("$(timed "$BIN/pg_waldump" --quiet -p "$work/archive" "$first" "$last")")
    W+=("$(timed "$PGWALRUS" verify "$work/archive")")
done
"$PGWALRUS" verify "$work/archive" >&2 || { echo "verify found problems" >&2; exit 1; }
read -r pw pc _ <<<"$(summarize "${P[@]}")"
read -r ww wc _ <<<"$(summarize "${W[@]}")"
gib="$(awk -v n="$count" 'BEGIN{printf "%.2f", n*16/1024}')"
echo
echo "### Verify ${gib} GiB ($count segments), median of $RUNS runs, page cache warm"
echo
echo "| tool | wall s | CPU s | GiB/s |"
echo "|---|---|---|---|"
awk -v w="$pw" -v c="$pc" -v g="$gib" 'BEGIN{printf "| pg_waldump --quiet | %.2f | %.2f | %.2f |\n", w, c, g/w}'
awk -v w="$ww" -v c="$wc" -v g="$gib" 'BEGIN{printf "| pgwalrus verify | %.2f | %.2f | %.2f |\n", w, c, g/w}'
awk -v p="$pw" -v w="$ww" 'BEGIN{printf "\nspeed ratio pgwalrus/pg_waldump: %.2fx\n", p/w}'
