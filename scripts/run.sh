#!/usr/bin/env bash
# The main job, end to end on a fresh Debian machine: build pgwalrus, start a throwaway
# PostgreSQL 15 on 127.0.0.1 (and a private socket directory), and run pgwalrus against it.
# Everything it starts is stopped and removed on exit, by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
if [ ! -x /usr/lib/postgresql/15/bin/postgres ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql-15 postgresql-client-15
fi
BIN=/usr/lib/postgresql/15/bin

cargo build --release --locked -q -p pgwalrus
PGWALRUS="$repo/target/release/pgwalrus"

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

work="$(mktemp -d -t pgwalrus-run.XXXXXX)"
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres: "$work"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        as_pg "$BIN/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

as_pg "$BIN/initdb" -D "$work/data" -U postgres --auth=trust >/dev/null
as_pg "$BIN/pg_ctl" -D "$work/data" -l "$work/server.log" -w start \
    -o "-p $port -k $work -c listen_addresses=127.0.0.1 -c wal_level=replica" >/dev/null
pid="$(head -1 "$work/data/postmaster.pid")"
as_pg "$BIN/psql" -X -q -h "$work" -p "$port" -U postgres -d postgres \
    -c "CREATE ROLE walrus LOGIN REPLICATION" \
    -c "SELECT pg_create_physical_replication_slot('walrus', true)" >/dev/null

echo "PostgreSQL 15 running on 127.0.0.1:$port (pid $pid)"
echo "+ pgwalrus check -d 'host=127.0.0.1 port=$port user=walrus' --slot walrus"
"$PGWALRUS" check -d "host=127.0.0.1 port=$port user=walrus" --slot walrus
