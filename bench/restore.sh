#!/usr/bin/env bash
# Recovery side by side: how long PostgreSQL 15 takes to recover GIB GiB of WAL (default 1)
# from an archive filled by `pgwalrus receive`, with each restore_command:
#
#   cp                      cp ARCHIVE/%f %p                         uncompressed archive
#   pgwalrus                pgwalrus restore %f %p -D ARCHIVE
#   pgwalrus --prefetch N   the same, N segments decompressed and checked ahead (default 8)
#   gunzip                  gunzip < ARCHIVE.gz/%f.gz > %p           every segment gzip -1'd
#   pgwalrus (gzip)         pgwalrus restore … -D ARCHIVE.gz [--prefetch N]
#   lz4 -d                  lz4 -d -q -c ARCHIVE.lz4/%f.lz4 > %p     every segment lz4 -1'd
#   pgwalrus (lz4)          pgwalrus restore … -D ARCHIVE.lz4 [--prefetch N]
#
# The compressed archives are made with the gzip and lz4 tools from the one pgwalrus
# received, so every command restores the same WAL (receive -Z writes the same formats).
#
# What is measured: wall time from `pg_ctl start` of a copy of the base backup (a clean copy
# of the stopped primary, taken before the WAL was written) with recovery.signal, to the
# moment pg_is_in_recovery() is false (all WAL replayed, promoted). Each command RUNS times
# (default 1), alternating; the best run is reported with its ratio to cp. Not a test: run
# it on a quiet machine. pgwalrus fsyncs every restored file (cp and the shell redirections
# do not); on the default tmpfs work directory that costs nothing, on a disk it does.
#
#   bench/restore.sh [--gib N] [--runs N] [--prefetch N] [--seg-mb 16] [--skip-compressed]
#
# Work directory: $BENCH_DIR (default /dev/shm), about 5 × GIB GiB.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
# shellcheck source=bench/lib.sh
. bench/lib.sh

GIB=1; RUNS=1; PREFETCH=8; SEG_MB=16; SKIP_COMPRESSED=0
while [ $# -gt 0 ]; do
    case "$1" in
        --gib) GIB="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --prefetch) PREFETCH="$2"; shift 2 ;;
        --seg-mb) SEG_MB="$2"; shift 2 ;;
        --skip-compressed) SKIP_COMPRESSED=1; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

BIN=${PGBIN:-/usr/lib/postgresql/15/bin}
build_pgwalrus

work="$(mktemp -d -p "${BENCH_DIR:-/dev/shm}" pgwalrus-restore-bench.XXXXXX)"
chmod 755 "$work"; [ "$(id -u)" = 0 ] && chown postgres: "$work"
port="$(free_port)"
receiver=""
cleanup() {
    [ -n "$receiver" ] && kill "$receiver" 2>/dev/null || true
    for d in "$work"/data "$work"/run; do
        [ -f "$d/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

psql_() { "$BIN/psql" -X -q -At -h "$work" -p "$1" -U postgres -d postgres "${@:2}"; }

echo "primary: PostgreSQL $("$BIN/postgres" --version | awk '{print $3}'), ${SEG_MB} MiB segments" >&2
as_pg "$BIN/initdb" -D "$work/data" -U postgres --auth=trust --wal-segsize="$SEG_MB" >/dev/null
cat >> "$work/data/postgresql.conf" <<EOF
port = $port
unix_socket_directories = '$work'
listen_addresses = '127.0.0.1'
wal_level = replica
max_wal_size = 8GB
checkpoint_timeout = 1h
shared_buffers = 256MB
EOF
as_pg "$BIN/pg_ctl" -D "$work/data" -l "$work/primary.log" -w start >/dev/null
psql_ "$port" -c "SELECT pg_create_physical_replication_slot('bench', true)" \
      -c "CREATE TABLE filler (id bigint, pad text)" >/dev/null

# The base backup: a clean copy of the stopped primary.
as_pg "$BIN/pg_ctl" -D "$work/data" -w -m fast stop >/dev/null
cp -a "$work/data" "$work/base"
as_pg "$BIN/pg_ctl" -D "$work/data" -l "$work/primary.log" -w start >/dev/null

mkdir -p "$work/archive"
"$PGWALRUS" receive -q -D "$work/archive" -d "host=127.0.0.1 port=$port user=postgres" -S bench \
    2>"$work/receive.log" &
receiver=$!

echo "writing ${GIB} GiB of WAL…" >&2
start_lsn="$(psql_ "$port" -c "SELECT pg_current_wal_lsn()")"
target="$(awk -v g="$GIB" 'BEGIN{printf "%d", g*1073741824}')"
while :; do
    psql_ "$port" -c "INSERT INTO filler SELECT g, md5(g::text) || md5(random()::text) || md5(random()::text)
                      FROM generate_series(1, 200000) g" >/dev/null
    done_bytes="$(psql_ "$port" -c "SELECT pg_current_wal_lsn() - '$start_lsn'::pg_lsn")"
    [ "${done_bytes%.*}" -ge "$target" ] && break
done
end_lsn="$(psql_ "$port" -c "SELECT pg_current_wal_lsn()")"
psql_ "$port" -c "SELECT pg_switch_wal()" >/dev/null
last="$(psql_ "$port" -c "SELECT pg_walfile_name('$end_lsn')")"
for _ in $(seq 600); do [ -f "$work/archive/$last" ] && break; sleep 0.1; done
[ -f "$work/archive/$last" ] || { echo "the archive never got $last" >&2; cat "$work/receive.log" >&2; exit 1; }
kill "$receiver"; wait "$receiver" || true; receiver=""
as_pg "$BIN/pg_ctl" -D "$work/data" -w -m immediate stop >/dev/null
segments="$(ls "$work/archive" | grep -c '^[0-9A-F]\{24\}$')"
echo "archive: $segments segments, $start_lsn to $end_lsn" >&2

if [ "$SKIP_COMPRESSED" = 0 ]; then
    mkdir -p "$work/archive.gz" "$work/archive.lz4"
    for f in "$work"/archive/*; do
        n="$(basename "$f")"
        gzip -1 -c "$f" > "$work/archive.gz/$n.gz"
        lz4 -1 -q -c "$f" > "$work/archive.lz4/$n.lz4"
    done
    echo "compressed: gzip $(du -sh "$work/archive.gz" | cut -f1), lz4 $(du -sh "$work/archive.lz4" | cut -f1), plain $(du -sh "$work/archive" | cut -f1)" >&2
fi
[ "$(id -u)" = 0 ] && chown -R postgres: "$work"

# recover NAME RESTORE_COMMAND -> seconds
recover() {
    local cmd="$2" rport t0 t1
    rm -rf "$work/run"; cp -a "$work/base" "$work/run"
    rport="$(free_port)"
    cat >> "$work/run/postgresql.conf" <<EOF
port = $rport
restore_command = '$cmd'
EOF
    as_pg touch "$work/run/recovery.signal"
    sync
    t0="$(date +%s.%N)"
    as_pg "$BIN/pg_ctl" -D "$work/run" -l "$work/recovery-$1.log" start >/dev/null
    while [ "$(psql_ "$rport" -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" != f ]; do
        if ! grep -q . "$work/run/postmaster.pid" 2>/dev/null && grep -q FATAL "$work/recovery-$1.log"; then
            echo "recovery with $1 failed:" >&2; tail -5 "$work/recovery-$1.log" >&2; exit 1
        fi
        sleep 0.05
    done
    t1="$(date +%s.%N)"
    as_pg "$BIN/pg_ctl" -D "$work/run" -w -m immediate stop >/dev/null
    awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}'
}

names=(cp pgwalrus "pgwalrus --prefetch $PREFETCH")
commands=("cp $work/archive/%f %p"
          "$PGWALRUS restore -q %f %p -D $work/archive"
          "$PGWALRUS restore -q %f %p -D $work/archive --prefetch $PREFETCH")
if [ "$SKIP_COMPRESSED" = 0 ]; then
    names+=(gunzip "pgwalrus (gzip)" "pgwalrus (gzip) --prefetch $PREFETCH"
            "lz4 -d" "pgwalrus (lz4)" "pgwalrus (lz4) --prefetch $PREFETCH")
    commands+=("gunzip < $work/archive.gz/%f.gz > %p"
               "$PGWALRUS restore -q %f %p -D $work/archive.gz"
               "$PGWALRUS restore -q %f %p -D $work/archive.gz --prefetch $PREFETCH"
               "lz4 -d -q -c $work/archive.lz4/%f.lz4 > %p"
               "$PGWALRUS restore -q %f %p -D $work/archive.lz4"
               "$PGWALRUS restore -q %f %p -D $work/archive.lz4 --prefetch $PREFETCH")
fi

# One unmeasured recovery first: the first one after the archive was written pays for
# cold caches and would make whichever command goes first look slow.
recover warmup "${commands[0]}" >/dev/null
declare -A best
for run in $(seq "$RUNS"); do
    for i in "${!names[@]}"; do
        s="$(recover "$i" "${commands[$i]}")"
        echo "run $run: ${names[$i]}: ${s}s" >&2
        if [ -z "${best[$i]:-}" ] || awk -v a="$s" -v b="${best[$i]}" 'BEGIN{exit !(a<b)}'; then
            best[$i]="$s"
        fi
    done
done

mib="$(awk -v s="$segments" -v m="$SEG_MB" 'BEGIN{printf "%d", s*m}')"
echo
echo "Recovery of $mib MiB of WAL ($segments segments of $SEG_MB MiB), PostgreSQL $("$BIN/postgres" --version | awk '{print $3}'), best of $RUNS"
echo
echo "| restore_command | recovery wall time | MiB/s | vs cp |"
echo "|---|---|---|---|"
for i in "${!names[@]}"; do
    awk -v n="${names[$i]}" -v s="${best[$i]}" -v c="${best[0]}" -v m="$mib" \
        'BEGIN{printf "| %s | %.2f s | %.0f | %.2f |\n", n, s, m/s, s/c}'
done
