#!/usr/bin/env bash
# Side by side: `pgwalrus verify` vs PostgreSQL 15's `pg_waldump --quiet` over the same
# archive of GIB GiB (default 1) of real WAL. Both decode every record and check every CRC.
# Reports wall time, CPU time and the ratio, median of RUNS (default 3), page cache warm.
#
#   bench/verify-vs-pg_waldump.sh [--gib N] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
GIB=1; RUNS=3
while [ $# -gt 0 ]; do
    case "$1" in
        --gib) GIB="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
BIN=/usr/lib/postgresql/15/bin
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
cargo build --release --locked -q -p pgwalrus
PGWALRUS="$repo/target/release/pgwalrus"

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
work="$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" pgwalrus-vbench.XXXXXX)"
chmod 755 "$work"; [ "$(id -u)" = 0 ] && chown postgres: "$work"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
pid=""
cleanup() {
    [ -n "$pid" ] && { as_pg "$BIN/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || kill -9 "$pid" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT
as_pg "$BIN/initdb" -D "$work/data" -U postgres --auth=trust >/dev/null
as_pg "$BIN/pg_ctl" -D "$work/data" -l "$work/server.log" -w start -o "-p $port -k $work \
    -c listen_addresses=127.0.0.1 -c wal_level=replica -c max_wal_size=4GB -c wal_keep_size=8GB \
    -c checkpoint_timeout=1h" >/dev/null
pid="$(head -1 "$work/data/postmaster.pid")"
psql_() { "$BIN/psql" -X -q -At -h "$work" -p "$port" -U postgres -d postgres "$@"; }

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

timed() { /usr/bin/time -f '%e %U %S' -o "$work/time.out" "$@" >/dev/null 2>&1 || true; tail -1 "$work/time.out"; }
declare -a W P
for i in $(seq 1 "$RUNS"); do
    P+=("$(timed "$BIN/pg_waldump" --quiet -p "$work/archive" "$first" "$last")")
    W+=("$(timed "$PGWALRUS" verify "$work/archive")")
done
"$PGWALRUS" verify "$work/archive" >&2 || { echo "verify found problems" >&2; exit 1; }
# median wall and median CPU (user+sys) of "wall user sys" lines (mawk has no asort)
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
med() {
    local wall cpu
    wall="$(printf '%s\n' "$@" | awk '{print $1}' | median)"
    cpu="$(printf '%s\n' "$@" | awk '{print $2+$3}' | median)"
    echo "$wall $cpu"
}
read -r pw pc <<<"$(med "${P[@]}")"
read -r ww wc <<<"$(med "${W[@]}")"
gib="$(awk -v n="$count" 'BEGIN{printf "%.2f", n*16/1024}')"
echo
echo "### Verify ${gib} GiB ($count segments), median of $RUNS runs, page cache warm"
echo
echo "| tool | wall s | CPU s | GiB/s |"
echo "|---|---|---|---|"
awk -v w="$pw" -v c="$pc" -v g="$gib" 'BEGIN{printf "| pg_waldump --quiet | %.2f | %.2f | %.2f |\n", w, c, g/w}'
awk -v w="$ww" -v c="$wc" -v g="$gib" 'BEGIN{printf "| pgwalrus verify | %.2f | %.2f | %.2f |\n", w, c, g/w}'
awk -v p="$pw" -v w="$ww" 'BEGIN{printf "\nspeed ratio pgwalrus/pg_waldump: %.2fx\n", p/w}'
