#!/usr/bin/env bash
# Object storage side by side with a local directory, in one run (issue 14's targets).
#
#  catchup  GIB GiB (default 1) of bulk-insert WAL retained by a slot, streamed by
#           `pgwalrus receive -E END` into a local directory, and by
#           `pgwalrus receive -E END --archive s3://…` into a spool with every completed
#           segment shipped to an s3s-fs server on localhost (the run ends when the last
#           segment is in the bucket), RUNS times each (default 3), alternating. Reports
#           wall time, MiB/s and CPU per GiB, min–max and median, the ratio
#           bucket/local of throughput, and the requests per GiB the bucket run made.
#  restore  A base backup recovered to the end of that WAL with
#           `restore_command = 'cp DIR/%f %p'` and with
#           `pgwalrus restore %f %p -D CACHE --archive s3://… --prefetch 8`, RUNS times each:
#           recovery wall time (start to promotion).
#  idle     `receive --archive` on an idle server for IDLE_SECS (default 30): requests made
#           after the start (the probe, the listing and the identity object).
#
# Not a test: numbers depend on the machine; run it on a quiet one. Markdown on stdout.
# PERF_OUT=DIR records a profile of each bucket run (pgwalrus, and s3s-fs while it runs)
# into DIR with `perf record -g`; the timings of those runs include perf's cost.
#
#   bench/bucket-vs-local.sh [--runs N] [--gib N] [--idle-seconds N] [--parts catchup,restore,idle]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

GIB=1; RUNS=3; IDLE_SECS=30; PARTS=catchup,restore,idle
while [ $# -gt 0 ]; do
    case "$1" in
        --gib) GIB="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --idle-seconds) IDLE_SECS="$2"; shift 2 ;;
        --parts) PARTS="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
part() { [[ ",$PARTS," == *",$1,"* ]]; }

BIN=/usr/lib/postgresql/15/bin
S3S_FS="${PGWALRUS_S3S_FS:-$(pwd)/.cache/s3s-fs/bin/s3s-fs}"
[ -x "$S3S_FS" ] || { echo "no s3s-fs at $S3S_FS (scripts/test.sh installs it)" >&2; exit 2; }
need_tools time
build_pgwalrus

bench_primary "$BIN" pgwalrus-bucket-bench max_wal_size=4GB checkpoint_timeout=1h shared_buffers=256MB
s3_port="$(free_port)"
mkdir -p "$work/s3/bench"
"$S3S_FS" --host 127.0.0.1 --port "$s3_port" --access-key bench-ak --secret-key bench-sk "$work/s3" >/dev/null 2>&1 &
s3_pid=$!
trap 'kill "$s3_pid" 2>/dev/null; stop_server "$BENCH_BIN" "$work/data" "$pid"; rm -rf "$work"' EXIT
export AWS_ACCESS_KEY_ID=bench-ak AWS_SECRET_ACCESS_KEY=bench-sk AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port"

# A base backup first (a copy of the cleanly stopped primary), for the restore part.
as_pg "$BIN/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null
cp -a "$work/data" "$work/base"
pid="$(as_pg "$BIN/pg_ctl" -D "$work/data" -l "$work/server.log" -w start \
    -o "-p $port -k $work -c listen_addresses=127.0.0.1" >/dev/null; head -1 "$work/data/postmaster.pid")"

echo "generating ${GIB} GiB of WAL…" >&2
psql_ -c "SELECT pg_create_physical_replication_slot('bench_base', true)" >/dev/null
start_lsn="$(psql_ -c "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'bench_base'")"
target="$(awk -v g="$GIB" 'BEGIN{printf "%d", g*1073741824}')"
while :; do
    psql_ -c "CREATE TABLE IF NOT EXISTS filler (id bigint, pad text)" \
          -c "INSERT INTO filler SELECT g, repeat('x', 200) FROM generate_series(1, 400000) g" >/dev/null
    done_bytes="$(psql_ -c "SELECT pg_current_wal_lsn() - '$start_lsn'::pg_lsn")"
    [ "${done_bytes%.*}" -ge "$target" ] && break
done
end_lsn="$(psql_ -c "SELECT pg_switch_wal()" >/dev/null; psql_ -c "SELECT pg_current_wal_lsn()")"
psql_ -c "CREATE TABLE IF NOT EXISTS bench_after (i int)" -c "INSERT INTO bench_after VALUES (1)" >/dev/null
bytes="$(psql_ -c "SELECT '$end_lsn'::pg_lsn - '$start_lsn'::pg_lsn")"; bytes="${bytes%.*}"
gib="$(awk -v b="$bytes" 'BEGIN{printf "%.3f", b/1073741824}')"
echo "WAL retained: $bytes bytes from $start_lsn to $end_lsn" >&2

# cpu_sum "user sys": their sum.
cpu_sum() { awk '{printf "%.2f\n", $1 + $2}' <<<"$1"; }

# run TOOL N: one catch-up; prints "wall user sys rss walsender_cpu s3s_fs_cpu" (the
# walsender's CPU from the postmaster's reaped children, s3s-fs's from its own counters)
# and leaves the log in $work/log.N.
run() { # kind n
    local kind="$1" n="$2" dir="$work/$1.$2"
    rm -rf "$dir"; mkdir -p "$dir"
    psql_ -c "SELECT pg_drop_replication_slot('bench_run')" >/dev/null 2>&1 || true
    psql_ -c "SELECT pg_copy_physical_replication_slot('bench_base', 'bench_run')" >/dev/null
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    local out; out="$(mktemp)"
    local ws0 s30; ws0="$(cpu_sum "$(proc_children_cpu "$pid")")"; s30="$(cpu_sum "$(proc_cpu "$s3_pid")")"
    if [ "$kind" = local ]; then
        /usr/bin/time -f '%e %U %S %M' -o "$out" "$PGWALRUS" receive -D "$dir" -d "$CONN" -S bench_run -E "$end_lsn" -n 2>"$work/log.$kind.$n" || true
    else
        local s3perf=""
        if [ -n "${PERF_OUT:-}" ]; then
            perf record -q -g -F 499 -o "$PERF_OUT/s3s-fs.$n.data" -p "$s3_pid" 2>/dev/null &
            s3perf=$!
        fi
        /usr/bin/time -f '%e %U %S %M' -o "$out" ${PERF_OUT:+perf record -q -g -F 499 -o "$PERF_OUT/bucket.$n.data" --} \
            "$PGWALRUS" receive -D "$dir" -d "$CONN" -S bench_run -E "$end_lsn" -n \
            --archive "s3://bench/run$n" --ship-partial-interval 0 2>"$work/log.$kind.$n" || true
        if [ -n "$s3perf" ]; then kill -INT "$s3perf"; wait "$s3perf" || true; fi
    fi
    # The walsender exits with the run and is reaped by the postmaster within moments.
    sleep 0.5
    local ws1 s31; ws1="$(cpu_sum "$(proc_children_cpu "$pid")")"; s31="$(cpu_sum "$(proc_cpu "$s3_pid")")"
    echo "$(tail -1 "$out") $(awk -v a="$ws0" -v b="$ws1" 'BEGIN{printf "%.2f", b-a}') $(awk -v a="$s30" -v b="$s31" 'BEGIN{printf "%.2f", b-a}')"
    rm -f "$out"
}

if part catchup || part restore; then
    declare -a LOCAL=() BUCKET=() REQS=()
    psql_ -c "ALTER SYSTEM SET autovacuum = off" -c "SELECT pg_reload_conf()" >/dev/null
    for i in $(seq 1 "$RUNS"); do
        echo "catch-up run $i/$RUNS…" >&2
        LOCAL+=("$(run local "$i")")
        BUCKET+=("$(run bucket "$i")")
        REQS+=("$(grep -o 'requests: .*' "$work/log.bucket.$i" | tail -1)")
        [ -n "${REQS[-1]}" ] || { echo "the bucket run $i did not finish:" >&2; cat "$work/log.bucket.$i" >&2; exit 1; }
    done
    psql_ -c "ALTER SYSTEM SET autovacuum = on" -c "SELECT pg_reload_conf()" >/dev/null
fi

if part catchup; then
    mibs() { awk -v b="$bytes" '{printf "%.1f\n", b/1048576/$1}'; }
    cpu() { awk -v g="$gib" '{printf "%.2f\n", ($2+$3)/g}'; }
    lw="$(printf '%s\n' "${LOCAL[@]}" | mibs | minmax %.1f)"
    bw="$(printf '%s\n' "${BUCKET[@]}" | mibs | minmax %.1f)"
    lm="$(printf '%s\n' "${LOCAL[@]}" | mibs | median)"
    bm="$(printf '%s\n' "${BUCKET[@]}" | mibs | median)"
    lc="$(printf '%s\n' "${LOCAL[@]}" | cpu | minmax)"
    bc="$(printf '%s\n' "${BUCKET[@]}" | cpu | minmax)"
    # CPU seconds per GiB of the receiver, the walsender and s3s-fs (medians), and the
    # throughput the machine's cores would allow if nothing but these three ran.
    per_gib() { awk -v g="$gib" -v f="$1" '{printf "%.2f\n", $f/g}'; }
    recv() { awk -v g="$gib" '{printf "%.2f\n", ($2+$3)/g}'; }
    l_r="$(printf '%s\n' "${LOCAL[@]}" | recv | median)"; b_r="$(printf '%s\n' "${BUCKET[@]}" | recv | median)"
    l_w="$(printf '%s\n' "${LOCAL[@]}" | per_gib 5 | median)"; b_w="$(printf '%s\n' "${BUCKET[@]}" | per_gib 5 | median)"
    b_s="$(printf '%s\n' "${BUCKET[@]}" | per_gib 6 | median)"
    cores="$(nproc)"
    l_bound="$(awk -v c="$cores" -v r="$l_r" -v w="$l_w" 'BEGIN{printf "%.0f", c*1024/(r+w)}')"
    b_bound="$(awk -v c="$cores" -v r="$b_r" -v w="$b_w" -v s="$b_s" 'BEGIN{printf "%.0f", c*1024/(r+w+s)}')"
    puts="$(printf '%s\n' "${REQS[@]}" | sed -E 's/requests: ([0-9]+) PUT.*/\1/' | median)"
    total="$(printf '%s\n' "${REQS[@]}" | awk '{n=0; for (i=2;i<=NF;i+=2) n+=$i; print n}' | median)"
    echo
    echo "### Catch-up of $gib GiB into a local directory and into s3s-fs on localhost ($RUNS runs each, alternating)"
    echo
    echo "| | MiB/s min–max | median | CPU s/GiB min–max |"
    echo "|---|---|---|---|"
    echo "| local directory | $lw | $lm | $lc |"
    echo "| --archive s3:// (run ends when the last segment is in the bucket) | $bw | $bm | $bc |"
    echo
    echo "bucket/local throughput (medians): $(awk -v b="$bm" -v l="$lm" 'BEGIN{printf "%.2f", b/l}')×;" \
        "requests per GiB: $(awk -v n="$total" -v g="$gib" 'BEGIN{printf "%.0f", n/g}') in all, of which PUT $(awk -v n="$puts" -v g="$gib" 'BEGIN{printf "%.0f", n/g}') (last run: ${REQS[-1]})"
    echo
    echo "| CPU s per GiB (medians) | receiver | walsender | s3s-fs | all | bound on $cores cores |"
    echo "|---|---|---|---|---|---|"
    echo "| local directory | $l_r | $l_w | — | $(awk -v r="$l_r" -v w="$l_w" 'BEGIN{printf "%.2f", r+w}') | $l_bound MiB/s |"
    echo "| --archive s3:// | $b_r | $b_w | $b_s | $(awk -v r="$b_r" -v w="$b_w" -v s="$b_s" 'BEGIN{printf "%.2f", r+w+s}') | $b_bound MiB/s |"
    echo
    echo "CPU bound of bucket/local on this machine: $(awk -v b="$b_bound" -v l="$l_bound" 'BEGIN{printf "%.2f", b/l}')× (what the cores allow when the three processes are all that runs)"
fi

if part restore; then
    # recover KIND N: recovery of the base backup to the end of the WAL; prints seconds.
    recover() {
        local kind="$1" n="$2" data="$work/rec" rport cmd t0 t1
        rm -rf "$data"; cp -a "$work/base" "$data"; touch "$data/recovery.signal"
        [ "$(id -u)" = 0 ] && chown -R postgres: "$data"
        if [ "$kind" = cp ]; then
            # The receiver ran as root: its files are 0600.
            [ "$(id -u)" = 0 ] && chown -R postgres: "$work/local.1"
            cmd="cp $work/local.1/%f %p"
        else
            mkdir -p "$work/cache.$n"; [ "$(id -u)" = 0 ] && chown postgres: "$work/cache.$n"
            cmd="AWS_ACCESS_KEY_ID=bench-ak AWS_SECRET_ACCESS_KEY=bench-sk AWS_REGION=us-east-1 AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL $PGWALRUS restore %f %p -D $work/cache.$n --archive s3://bench/run1 --prefetch 8"
        fi
        echo "restore_command = '$cmd'" >> "$data/postgresql.conf"
        rport="$(free_port)"
        sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
        t0="$(date +%s.%N)"
        as_pg "$BIN/pg_ctl" -D "$data" -l "$work/rec.log" -w -t 600 start \
            -o "-p $rport -k $work -c listen_addresses=127.0.0.1" >/dev/null
        until [ "$("$BIN/psql" -X -At -h "$work" -p "$rport" -U postgres -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do
            sleep 0.05
        done
        t1="$(date +%s.%N)"
        # A recovery that ended early (a restore_command that failed) is not a result.
        if [ "$("$BIN/psql" -X -At -h "$work" -p "$rport" -U postgres -d postgres -c "SELECT pg_current_wal_lsn() >= '$end_lsn'")" != t ]; then
            echo "recovery with $kind ended before $end_lsn:" >&2; tail -20 "$work/rec.log" >&2; exit 1
        fi
        as_pg "$BIN/pg_ctl" -D "$data" -m immediate -w stop >/dev/null
        awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f\n", b-a}'
    }
    declare -a CP=() S3=()
    for i in $(seq 1 "$RUNS"); do
        echo "recovery run $i/$RUNS…" >&2
        CP+=("$(recover cp "$i")")
        S3+=("$(recover s3 "$i")")
    done
    echo
    echo "### Recovery of a base backup through $gib GiB of WAL ($RUNS runs each, alternating)"
    echo
    echo "| restore_command | seconds min–max | median |"
    echo "|---|---|---|"
    echo "| \`cp DIR/%f %p\` | $(printf '%s\n' "${CP[@]}" | minmax) | $(printf '%s\n' "${CP[@]}" | median) |"
    echo "| \`pgwalrus restore … --archive s3:// --prefetch 8\` | $(printf '%s\n' "${S3[@]}" | minmax) | $(printf '%s\n' "${S3[@]}" | median) |"
fi

if part idle; then
    psql_ -c "SELECT pg_create_physical_replication_slot('bench_idle', true)" >/dev/null
    mkdir -p "$work/idle"
    "$PGWALRUS" receive -D "$work/idle" -d "$CONN" -S bench_idle --archive s3://bench/idle 2>"$work/log.idle" &
    rpid=$!
    sleep "$IDLE_SECS"
    kill -TERM "$rpid"; wait "$rpid" || true
    echo
    echo "### An idle server for $IDLE_SECS s"
    echo
    echo "$(grep -o 'requests: .*' "$work/log.idle" | tail -1) (the start: probe ×2 + its DELETE, one LIST, the identity GET and PUT; then none)"
fi
