#!/usr/bin/env bash
# Soak test: kill -9 `pgwalrus receive` at random moments, many times, under pgbench load,
# and check after every CHECK_EVERY kills and at the end that the archive has no gap and
# every complete segment is byte-identical to the server's own pg_wal file; finally that a
# clean run resumes the last `.partial` and catches up. Not run in CI (the integration
# suite does 20 kills per PostgreSQL major); run it before a release or after touching the
# receiver or the archive.
#
#   bench/soak-kill9.sh [--iterations N] [--seed N] [--max-delay-ms N] [--check-every N]
#
# Environment: PGWALRUS_PG_BINDIR (server bindir; default Debian's PostgreSQL 15),
# PGWALRUS (a pgwalrus binary; default: build the release binary), SOAK_DIR (where the
# throwaway cluster and archive go; default /var/tmp). Everything it starts is stopped and
# removed on exit, by pid. Exit status 0 when every check passed; on failure the work
# directory is kept and named.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
# shellcheck source=bench/lib.sh
. bench/lib.sh

ITERATIONS=500; SEED=1; MAX_DELAY_MS=700; CHECK_EVERY=50
while [ $# -gt 0 ]; do
    case "$1" in
        --iterations) ITERATIONS="$2"; shift 2 ;;
        --seed) SEED="$2"; shift 2 ;;
        --max-delay-ms) MAX_DELAY_MS="$2"; shift 2 ;;
        --check-every) CHECK_EVERY="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

BIN="${PGWALRUS_PG_BINDIR:-/usr/lib/postgresql/15/bin}"
CLIENT=/usr/lib/postgresql/15/bin   # psql and pgbench 15 work against every major
build_pgwalrus

log() { printf 'soak-kill9: %s\n' "$*" >&2; }

work="$(mktemp -d -p "${SOAK_DIR:-/var/tmp}" pgwalrus-soak.XXXXXX)"
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres: "$work"
archive="$work/archive"
mkdir "$archive"
port="$(free_port)"
server_pid=""; load_pid=""; receiver_pid=""; failed=0
cleanup() {
    set +e
    for p in "$receiver_pid" "$load_pid"; do
        if [ -n "$p" ]; then kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; fi
    done
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        as_pg "$BIN/pg_ctl" -D "$work/data" -m immediate -w stop >/dev/null 2>&1 || kill -9 "$server_pid"
    fi
    if [ "$failed" = 1 ]; then
        log "FAILED; kept $work (archive, data, server.log, receive.log)"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'failed=1' ERR

fail() { log "FAIL: $*"; failed=1; exit 1; }

as_pg "$BIN/initdb" -D "$work/data" -U postgres --auth=trust --wal-segsize=1 --no-sync >/dev/null
as_pg "$BIN/pg_ctl" -D "$work/data" -l "$work/server.log" -w start -o "-p $port -k $work \
    -c listen_addresses=127.0.0.1 -c wal_level=replica -c max_wal_senders=10 \
    -c wal_keep_size=64MB -c max_wal_size=64MB" >/dev/null
server_pid="$(head -1 "$work/data/postmaster.pid")"
sql() { "$CLIENT/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "$1"; }
sql "CREATE ROLE walrus LOGIN REPLICATION" >/dev/null
# The slot keeps every segment the archive might still need (and all of pg_wal for the
# byte comparison: nothing else advances it but the receiver's flush reports).
sql "SELECT pg_create_physical_replication_slot('soak', true)" >/dev/null
"$CLIENT/pgbench" -h 127.0.0.1 -p "$port" -U postgres -i -s 1 -q postgres >/dev/null 2>&1
"$CLIENT/pgbench" -h 127.0.0.1 -p "$port" -U postgres -c 2 -R 1000 -T 100000 postgres >/dev/null 2>&1 &
load_pid=$!
conninfo="host=127.0.0.1 port=$port user=walrus"
log "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on port $port, work dir $work"

seg_size=$((1024 * 1024)); per_id=$((0x100000000 / seg_size))

# No gap from the first segment to the last, only the newest may be .partial, and every
# complete segment still in pg_wal is byte-identical to it.
check_archive() {
    local names=() n prev="" segno base compared=0
    mapfile -t names < <(ls "$archive" | grep -E '^[0-9A-F]{24}(\.partial)?$' | sort)
    [ "${#names[@]}" -gt 0 ] || fail "empty archive"
    for n in "${names[@]}"; do
        base="${n%.partial}"
        segno=$(( 16#${base:8:8} * per_id + 16#${base:16:8} ))
        if [ -n "$prev" ]; then
            [ "$segno" -eq $((prev + 1)) ] || fail "gap or duplicate before $n (previous segno $prev)"
        fi
        prev=$segno
        if [ "$n" != "$base" ]; then
            [ "$n" = "${names[-1]}" ] || fail "$n is .partial but not the newest segment"
            continue
        fi
        [ "$(stat -c %s "$archive/$n")" -eq "$seg_size" ] || fail "$n is not one segment long"
        if [ -f "$work/data/pg_wal/$n" ]; then
            cmp -s "$archive/$n" "$work/data/pg_wal/$n" || fail "$n differs from pg_wal"
            compared=$((compared + 1))
        fi
    done
    log "  archive ok: ${#names[@]} segments (${names[0]} .. ${names[-1]}), $compared compared with pg_wal"
}

RANDOM=$SEED
modes=("" "-S soak -s 1" "-S soak --synchronous")
start=$(date +%s)
for ((i = 1; i <= ITERATIONS; i++)); do
    mode="${modes[RANDOM % 3]}"
    # shellcheck disable=SC2086  # mode is a list of flags
    "$PGWALRUS" receive -D "$archive" -d "$conninfo" $mode 2>>"$work/receive.log" &
    receiver_pid=$!
    delay_ms=$(( (RANDOM * 32768 + RANDOM) % (MAX_DELAY_MS + 1) ))
    sleep "$(printf '0.%03d' "$delay_ms")"
    kill -0 "$receiver_pid" 2>/dev/null || { wait "$receiver_pid" || true; fail "run $i exited by itself (see receive.log)"; }
    kill -9 "$receiver_pid"
    wait "$receiver_pid" 2>/dev/null || true
    receiver_pid=""
    if ((i % CHECK_EVERY == 0)); then
        log "$i kills in $(( $(date +%s) - start ))s"
        check_archive
    fi
done

kill -9 "$load_pid"; wait "$load_pid" 2>/dev/null || true; load_pid=""
end_lsn="$(sql "SELECT pg_current_wal_lsn()")"
log "final run: catching up to $end_lsn"
"$PGWALRUS" receive -D "$archive" -d "$conninfo" -S soak -E "$end_lsn" 2>>"$work/receive.log" &
receiver_pid=$!
wait "$receiver_pid" || fail "the final run (--endpos $end_lsn) exited with $?"
receiver_pid=""
ls "$archive" | grep -q '\.tmp$' && fail "temporary files left: $(ls "$archive" | grep '\.tmp$')"
check_archive
# The archive holds the server's bytes up to end_lsn (the segment holding its last byte,
# complete or .partial, compared from its start).
hi=$((16#${end_lsn%/*})); lo=$((16#${end_lsn#*/})); end=$(( (hi << 32) + lo ))
segno=$(( (end - 1) / seg_size )); upto=$(( end - segno * seg_size ))
name="$(printf '%08X%08X%08X' 1 $((segno / per_id)) $((segno % per_id)))"
file="$archive/$name"
# A segment ended by pg_switch_wal() is zeros after the switch record, which a .partial
# matches before it was received: at a segment end only the completed file counts.
[ -f "$file" ] || [ "$upto" -eq "$seg_size" ] || file="$file.partial"
[ -f "$file" ] || fail "the archive has no file for $name (end position $end_lsn)"
cmp -s -n "$upto" "$file" "$work/data/pg_wal/$name" || fail "$file differs from pg_wal before $end_lsn"
log "ok: $ITERATIONS kills (seed $SEED), no gap, identical bytes, resumed to $end_lsn"
