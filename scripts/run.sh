#!/usr/bin/env bash
# The main job, end to end on a fresh Debian machine: what pgwalrus is for. It builds
# pgwalrus, starts a throwaway fleet — a coordinator and two workers, three PostgreSQL 15
# primaries on 127.0.0.1 — puts pgbench load on all three, runs `pgwalrus daemon` archiving
# the three of them from one process, shows `pgwalrus status` while they work, then stops
# the load and checks every archive with `pgwalrus verify`. Everything it starts is stopped
# and removed on exit, by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
if [ ! -x /usr/lib/postgresql/15/bin/postgres ] || [ ! -x /usr/lib/postgresql/15/bin/pgbench ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql-15 postgresql-client-15
fi
BIN=/usr/lib/postgresql/15/bin

cargo build --release --locked -q -p pgwalrus
PGWALRUS="$repo/target/release/pgwalrus"

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

work="$(mktemp -d -t pgwalrus-run.XXXXXX)"
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres: "$work"
names=(coordinator worker1 worker2)
declare -A port pid
daemon_pid=""
bench_pids=()
cleanup() {
    for p in "${bench_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid" 2>/dev/null || true
        for _ in $(seq 1 30); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 1; done
        kill -9 "$daemon_pid" 2>/dev/null || true
    fi
    for n in "${names[@]}"; do
        local p="${pid[$n]:-}"
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
            as_pg "$BIN/pg_ctl" -D "$work/$n" -m fast stop >/dev/null 2>&1 || kill -9 "$p" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

for n in "${names[@]}"; do
    port[$n]="$(free_port)"
    as_pg "$BIN/initdb" -D "$work/$n" -U postgres --auth=trust >/dev/null
    as_pg "$BIN/pg_ctl" -D "$work/$n" -l "$work/$n.log" -w start \
        -o "-p ${port[$n]} -k $work -c listen_addresses=127.0.0.1 -c wal_level=replica" >/dev/null
    pid[$n]="$(head -1 "$work/$n/postmaster.pid")"
    as_pg "$BIN/psql" -X -q -h "$work" -p "${port[$n]}" -U postgres -d postgres \
        -c "CREATE ROLE walrus LOGIN REPLICATION" >/dev/null
    as_pg "$BIN/pgbench" -q -i -s 2 -h "$work" -p "${port[$n]}" -U postgres postgres >/dev/null 2>&1
    echo "PostgreSQL 15 '$n' on 127.0.0.1:${port[$n]} (pid ${pid[$n]})"
done

archive="$work/archive"
mkdir -p "$archive"
[ "$(id -u)" = 0 ] && chown postgres: "$archive"
http="127.0.0.1:$(free_port)"
config="$work/pgwalrus.toml"
{
    echo "listen = \"$http\""
    echo
    echo "[defaults]"
    echo "archive = \"$archive\""
    echo "slot = \"pgwalrus\""
    echo "create_slot = true"
    echo "compression = \"zstd\""
    echo "status_interval = 1"
    for n in "${names[@]}"; do
        echo
        echo "[[server]]"
        echo "name = \"$n\""
        echo "conninfo = \"host=127.0.0.1 port=${port[$n]} user=walrus\""
    done
} > "$config"

echo "+ pgwalrus daemon --check -c $config"
"$PGWALRUS" daemon --check -c "$config"
echo "+ pgwalrus daemon -c $config &"
"$PGWALRUS" daemon -c "$config" 2> "$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 1 30); do
    "$PGWALRUS" status --json --address "$http" 2>/dev/null | grep -q '"status":"streaming"' && break
    sleep 1
done

echo "+ pgbench -c 2 -T 12 on every server"
for n in "${names[@]}"; do
    as_pg "$BIN/pgbench" -c 2 -j 1 -T 12 -N -h "$work" -p "${port[$n]}" -U postgres postgres >/dev/null 2>&1 &
    bench_pids+=($!)
done
for _ in 1 2; do
    sleep 5
    echo "+ pgwalrus status --address $http"
    "$PGWALRUS" status --address "$http" | grep -E '^-\[|^status |^flushed_lsn|^latest_end_lsn|^bytes_behind|^segments_completed' || true
done
for p in "${bench_pids[@]}"; do wait "$p" || true; done
bench_pids=()
echo "+ load stopped; a segment switch on each server, then the daemon catches up"
for n in "${names[@]}"; do
    as_pg "$BIN/psql" -X -q -h "$work" -p "${port[$n]}" -U postgres -d postgres -c "SELECT pg_switch_wal()" >/dev/null
done
sleep 3
"$PGWALRUS" status --address "$http" | grep -E '^-\[|^status |^flushed_lsn|^latest_end_lsn|^bytes_behind' || true
kill -TERM "$daemon_pid"
wait "$daemon_pid" || true
daemon_pid=""

for n in "${names[@]}"; do
    echo "+ pgwalrus verify $archive/$n"
    "$PGWALRUS" verify "$archive/$n"
done
echo "done: three servers archived by one daemon, every archive verified"
