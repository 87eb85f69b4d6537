#!/usr/bin/env bash
# Where the receivers' CPU goes: the profiles and counts behind the docs/benchmarks.md
# section "receive vs pg_receivewal: steady streaming and FPI-heavy catch-up", for pgwalrus
# receive and PostgreSQL 15's pg_receivewal, in the two workloads of
# bench/receive-vs-pg_receivewal.sh (parts `steady` and `fpi`). Not the timing benchmark:
# perf and strace slow the process they watch, so every number here is either a count
# (system calls, context switches, write sizes), a share of samples, or a CPU figure from a
# run with nothing attached ("what-if" rounds).
#
#  steady  3 receivers under pgbench -c 4 -j 2 -T SECONDS (scale 20), as in the benchmark:
#          per tool one round with `perf stat` (software events and system-call tracepoints)
#          on all three receivers and the system-call tracepoints of receiver 1 recorded (write
#          and recv sizes), and one round with `perf record --call-graph dwarf` on receiver 1.
#  whatif  The same rounds with nothing attached, CPU from /proc/PID/stat (all threads, and
#          receiver 1 per thread): each tool as it is; pgwalrus --no-sync; the archive on
#          tmpfs (fsync free) for pgwalrus, pgwalrus --synchronous (the inline writer: no
#          writer thread, but a status update after every group flush) and pg_receivewal; and
#          both tools with their wake-ups batched from outside (SIGSTOP for 9 ms, SIGCONT for
#          1 ms, so each wake-up finds about 10 ms of WAL waiting in the socket).
#  batch   The batcher's own cost (the same signals sent to an idle receiver of each tool),
#          then batched rounds of each tool every BATCH_MS ms (--batch-ms, default 10; the
#          doc's numbers also use 100) and plain rounds to compare with, in the same minutes.
#  fpi     The FPI-heavy WAL of the benchmark (pgbench -i -s 42, CHECKPOINT + 5 s chunks to
#          FPI_GIB GiB), streamed to a fixed end position, page cache dropped before each run:
#          per tool `strace -c -f`, `perf stat`, the tracepoints, `perf record --call-graph
#          dwarf`; what-if runs (nothing attached, twice each): pgwalrus --no-verify,
#          --no-sync, both; pg_receivewal --no-sync; and pgwalrus --no-sync --no-verify into a
#          tmpfs directory, the cheapest receiver there is, whose throughput bounds what any
#          receiver can reach against this walsender on this machine.
#  bounds  The disk alone: 1 GiB of 16 MiB files written in 128 KiB pieces with an fdatasync
#          per file (buffered, then O_DIRECT), read back after dropping the page cache, and
#          both at once (the walsender reads while the archive writes).
#
# Results (perf.data files, perf stat and strace outputs, a summary.md) go to --out DIR.
#
#   bench/profile-receive.sh [--out DIR] [--parts steady,whatif,batch,fpi,bounds]
#       [--batch-ms N] [--seconds N] [--fpi-gib N]
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
# shellcheck source=bench/lib.sh
. bench/lib.sh

OUT=/var/tmp/pgwalrus-profile; PARTS=steady,whatif,batch,fpi,bounds; SECS=30; FPI_GIB=1; BATCH_MS=10
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT="$2"; shift 2 ;;
        --parts) PARTS="$2"; shift 2 ;;
        --seconds) SECS="$2"; shift 2 ;;
        --fpi-gib) FPI_GIB="$2"; shift 2 ;;
        --batch-ms) BATCH_MS="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
part() { [[ ",$PARTS," == *",$1,"* ]]; }

BIN=/usr/lib/postgresql/15/bin
need_tools time strace perf
build_pgwalrus
mkdir -p "$OUT"
SUMMARY="$OUT/summary.md"
: >"$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }

bench_primary "$BIN" pgwalrus-profile max_wal_size=4GB checkpoint_timeout=1h shared_buffers=256MB synchronous_commit=on

# System calls counted by `perf stat` (both tools' whole vocabulary while streaming).
CALLS="recvfrom read write pwrite64 pwritev futex epoll_wait pselect6 sendto fsync fdatasync fallocate openat rename close lseek mmap munmap madvise brk"
STAT_EVENTS="task-clock,context-switches,cpu-migrations,page-faults,raw_syscalls:sys_enter"
for c in $CALLS; do STAT_EVENTS="$STAT_EVENTS,syscalls:sys_enter_$c"; done
SIZE_EVENTS="syscalls:sys_enter_pwrite64,syscalls:sys_enter_write,syscalls:sys_exit_recvfrom"

# Sets CMD to the command line of a receiver: TOOL is pg_receivewal or pgwalrus, ARGS extra flags.
set_cmd() { # tool dir conninfo slot [args…]
    local tool="$1" dir="$2" conn="$3" slot="$4"; shift 4
    if [ "$tool" = pg_receivewal ]; then
        CMD=("$BIN/pg_receivewal" -D "$dir" -d "$conn" -S "$slot" -n "$@")
    else
        CMD=("$PGWALRUS" receive -q -D "$dir" -d "$conn" -S "$slot" -n "$@")
    fi
}

# Per MiB of WAL, from a `perf stat -x,` file: context switches and each system call.
stat_per_mib() { # file mib receivers
    awk -F, -v mib="$2" -v n="$3" '
        $3 ~ /context-switches|raw_syscalls|sys_enter_/ && $1 + 0 > 0 {
            name = $3; sub(/^syscalls:sys_enter_/, "", name); sub(/^raw_syscalls:sys_enter$/, "all_syscalls", name)
            printf "%s %.1f\n", name, $1 / (mib * n)
        }' "$1" | sort -k2 -g -r | awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2} END {print ""}'
}

# Write and recv sizes per MiB of WAL from a tracepoint recording (bench/syscall-sizes.py).
sizes_summary() { perf script -i "$1" -F event,trace 2>/dev/null | bench/syscall-sizes.py "$2"; }

# batcher SECONDS PIDS: for SECONDS, stops the processes PIDS (comma-separated) for BATCH_MS
# minus 1 ms, then lets them run for 1 ms: each wake-up finds about BATCH_MS of WAL waiting.
batcher() {
    python3 -c '
import os, signal, sys, time
pids = [int(p) for p in sys.argv[2].split(",")]
stop = float(sys.argv[3]) / 1000 - 0.001
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    for p in pids: os.kill(p, signal.SIGSTOP)
    time.sleep(stop)
    for p in pids: os.kill(p, signal.SIGCONT)
    time.sleep(0.001)
' "$1" "$2" "$BATCH_MS"
}

# ---------------------------------------------------------------------------------------
# One steady round: 3 receivers of TOOL (extra ARGS), pgbench for SECS seconds; MODE says
# what watches them: stat, record, plain, or batch (SIGSTOP/SIGCONT every 10 ms).
steady_round() { # label mode tool [args…]
    local label="$1" mode="$2" tool="$3"; shift 3
    local k app dir start_lsn end_lsn bytes mib tps watch="" pids_csv
    local -a pids=() cpu0=()
    psql_ -c "SELECT pg_switch_wal()" -c "CHECKPOINT" >/dev/null
    for k in 1 2 3; do
        app="steady_$k"; dir="${STEADY_BASE:-$work/steady}/$k"
        rm -rf "$dir"; mkdir -p "$dir"
        psql_ -c "SELECT pg_create_physical_replication_slot('$app', true)" >/dev/null
        set_cmd "$tool" "$dir" "$CONN application_name=$app" "$app" "$@"
        "${CMD[@]}" >"$dir.log" 2>&1 &
        pids+=("$!")
    done
    wait_for 60 "SELECT count(*) = 3 FROM pg_stat_replication WHERE application_name LIKE 'steady\_%'
                 AND state = 'streaming' AND sent_lsn >= pg_current_wal_flush_lsn()"
    sleep 1
    for k in 0 1 2; do cpu0[k]="$(proc_cpu "${pids[k]}")"; done
    local -A tcpu0=()
    local t
    for t in /proc/"${pids[0]}"/task/*; do tcpu0[$(cat "$t/comm")]="$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "$t/stat")"; done
    start_lsn="$(psql_ -c "SELECT pg_current_wal_flush_lsn()")"
    pids_csv="$(IFS=,; echo "${pids[*]}")"
    local f="$OUT/steady-$label"
    case "$mode" in
        stat)
            perf stat -x, -e "$STAT_EVENTS" -p "$pids_csv" -o "$f.stat" -- sleep "$SECS" &
            watch="$!"
            perf record -q -e "$SIZE_EVENTS" -p "${pids[0]}" -o "$f.sizes.data" -- sleep "$SECS" >/dev/null 2>&1 &
            watch="$watch $!" ;;
        record)
            perf record -q -e cpu-clock -F 2000 --call-graph dwarf,16384 -p "${pids[0]}" -o "$f.perf.data" -- sleep "$SECS" >/dev/null 2>&1 &
            watch="$!" ;;
        batch)
            batcher "$SECS" "$pids_csv" &
            watch="$!" ;;
    esac
    tps="$(pgbench_ -c 4 -j 2 -T "$SECS" 2>/dev/null | awk '/^tps/ {printf "%.0f", $3; exit}')"
    # shellcheck disable=SC2086
    [ -z "$watch" ] || wait $watch || true
    end_lsn="$(psql_ -c "SELECT pg_current_wal_flush_lsn()")"
    wait_for 120 "SELECT count(*) = 3 FROM pg_stat_replication WHERE application_name LIKE 'steady\_%' AND sent_lsn >= '$end_lsn'"
    sleep 2
    bytes="$(psql_ -c "SELECT '$end_lsn'::pg_lsn - '$start_lsn'::pg_lsn")"; bytes="${bytes%.*}"
    mib="$(awk -v b="$bytes" 'BEGIN{printf "%.1f", b/1048576}')"
    local per_gib threads=""
    per_gib="$(for k in 0 1 2; do awk -v a="${cpu0[k]}" -v b="$(proc_cpu "${pids[k]}")" -v g="$bytes" \
        'BEGIN{split(a, x, " "); split(b, y, " "); printf "%.2f\n", ((y[1]-x[1]) + (y[2]-x[2])) / (g/1073741824)}'; done | minmax)"
    for t in /proc/"${pids[0]}"/task/*; do
        threads="$threads $(cat "$t/comm")=$(awk -v a="${tcpu0[$(cat "$t/comm")]:-0}" '{sub(/^.*\) /, ""); printf "%.2f", ($12 + $13 - a) / 100}' "$t/stat")s"
    done
    for k in 0 1 2; do kill -INT "${pids[k]}"; done
    for k in 0 1 2; do wait "${pids[k]}" 2>/dev/null || true; done
    for k in 1 2 3; do psql_ -c "SELECT pg_drop_replication_slot('steady_$k')" >/dev/null; done
    say ""
    case "$mode" in stat | record) per_gib="$per_gib (perf attached)" ;; esac
    say "#### steady, $label ($mode): $mib MiB per receiver, $tps TPS; CPU s per GiB $per_gib; receiver 1 by thread:$threads"
    case "$mode" in
        stat)
            say "per MiB per receiver: $(stat_per_mib "$f.stat" "$mib" 3)"
            sizes_summary "$f.sizes.data" "$mib" | while read -r line; do say "receiver 1: $line"; done ;;
        record)
            perf script -i "$f.perf.data" --no-inline -F comm,tid,ip,sym,dso 2>/dev/null >"$f.script"
            bench/perf-categories.py "$f.script" | while read -r line; do say "    $line"; done ;;
    esac
}

part_steady() {
    say "### steady streaming: 3 receivers, pgbench -c 4 -j 2 -T $SECS, scale 20"
    local tool
    for tool in pg_receivewal pgwalrus; do
        steady_round "$tool" stat "$tool"
        steady_round "$tool" record "$tool"
    done
    rm -rf "$work/steady"
}

# What-if rounds, nothing attached: fsync off; the archive on tmpfs (fsync free), where
# --synchronous shows the inline writer (no writer thread; it also sends a status update
# after every group flush); wake-ups batched from outside.
part_whatif() {
    say ""
    say "### steady streaming, what-if rounds (nothing attached)"
    local shm; shm="$(mktemp -d -p /dev/shm pgwalrus-profile.XXXXXX)"
    steady_round pgwalrus-plain plain pgwalrus
    steady_round pg_receivewal-plain plain pg_receivewal
    steady_round pgwalrus--no-sync plain pgwalrus --no-sync
    STEADY_BASE="$shm" steady_round pgwalrus-tmpfs plain pgwalrus
    STEADY_BASE="$shm" steady_round pgwalrus--synchronous-tmpfs plain pgwalrus --synchronous
    STEADY_BASE="$shm" steady_round pg_receivewal-tmpfs plain pg_receivewal
    steady_round pgwalrus-batched batch pgwalrus
    steady_round pg_receivewal-batched batch pg_receivewal
    STEADY_BASE="$shm" steady_round pgwalrus--synchronous-tmpfs-batched batch pgwalrus --synchronous
    rm -rf "$shm" "$work/steady"
}

# The batcher's own cost: the same stop/continue cycle on idle receivers (no WAL flowing),
# to subtract from the batched rounds; then batched rounds of each tool.
part_batch() {
    say ""
    say "### wake-ups batched every $BATCH_MS ms (SIGSTOP/SIGCONT)"
    local tool p dir
    local -a pids=() cpu0=()
    for tool in pg_receivewal pgwalrus; do
        dir="$work/idle-$tool"; mkdir -p "$dir"
        psql_ -c "SELECT pg_create_physical_replication_slot('idle_$tool', true)" >/dev/null
        set_cmd "$tool" "$dir" "$CONN application_name=idle_$tool" "idle_$tool"
        "${CMD[@]}" >"$dir.log" 2>&1 &
        pids+=("$!")
    done
    wait_for 60 "SELECT count(*) = 2 FROM pg_stat_replication WHERE application_name LIKE 'idle\_%' AND state = 'streaming'"
    sleep 1
    for p in 0 1; do cpu0[p]="$(proc_cpu "${pids[p]}")"; done
    batcher "$SECS" "$(IFS=,; echo "${pids[*]}")"
    for p in 0 1; do
        say "idle $( [ "$p" = 0 ] && echo pg_receivewal || echo pgwalrus ), batched for $SECS s: $(awk -v a="${cpu0[p]}" -v b="$(proc_cpu "${pids[p]}")" 'BEGIN{split(a, x, " "); split(b, y, " "); printf "%.2f CPU s", (y[1]-x[1]) + (y[2]-x[2])}')"
        kill -INT "${pids[p]}"; wait "${pids[p]}" 2>/dev/null || true
    done
    for tool in pg_receivewal pgwalrus; do psql_ -c "SELECT pg_drop_replication_slot('idle_$tool')" >/dev/null; rm -rf "$work/idle-$tool"; done
    steady_round "pgwalrus-batched-${BATCH_MS}ms" batch pgwalrus
    steady_round "pg_receivewal-batched-${BATCH_MS}ms" batch pg_receivewal
    steady_round pgwalrus-plain plain pgwalrus
    steady_round pg_receivewal-plain plain pg_receivewal
    rm -rf "$work/steady"
}

# ---------------------------------------------------------------------------------------
fpi_run() { # label mode dir tool [args…]  (mode: plain, stat, sizes, record, strace)
    local label="$1" mode="$2" dir="$3" tool="$4"; shift 4
    local f="$OUT/fpi-$label" t
    rm -rf "$dir"; mkdir -p "$dir"
    psql_ -c "SELECT pg_drop_replication_slot('fpi_run')" >/dev/null 2>&1 || true
    psql_ -c "SELECT pg_copy_physical_replication_slot('fpi_base', 'fpi_run')" >/dev/null
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    sleep 0.3
    local before after
    before="$(proc_children_cpu "$pid")"
    set_cmd "$tool" "$dir" "$CONN" fpi_run -E "$FPI_END" "$@"
    case "$mode" in
        plain) t="$(timed "${CMD[@]}")" ;;
        stat) t="$(timed perf stat -x, -e "$STAT_EVENTS" -o "$f.stat" -- "${CMD[@]}")" ;;
        sizes) t="$(timed perf record -q -e "$SIZE_EVENTS" -o "$f.sizes.data" -- "${CMD[@]}")" ;;
        record) t="$(timed perf record -q -e cpu-clock -F 2000 --call-graph dwarf,16384 -o "$f.perf.data" -- "${CMD[@]}")" ;;
        strace) t="$(timed strace -c -f -o "$f.strace" -- "${CMD[@]}")" ;;
    esac
    sleep 0.5
    after="$(proc_children_cpu "$pid")"
    local line
    line="$(awk -v t="$t" -v g="$FPI_GIB_REAL" -v b="$before" -v a="$after" 'BEGIN{
        split(t, x, " "); split(b, p, " "); split(a, q, " ")
        printf "%.0f MiB/s, CPU s per GiB %.2f (user %.2f, sys %.2f), walsender CPU s per GiB %.2f",
            g * 1024 / x[1], (x[2] + x[3]) / g, x[2] / g, x[3] / g, ((q[1] + q[2]) - (p[1] + p[2])) / g}')"
    [ "$mode" = plain ] || line="(timings not comparable: $mode attached)"
    say ""
    say "#### fpi, $label ($mode): $line"
    local mib; mib="$(awk -v g="$FPI_GIB_REAL" 'BEGIN{print g*1024}')"
    case "$mode" in
        stat) say "per MiB: $(stat_per_mib "$f.stat" "$mib" 1)" ;;
        sizes) sizes_summary "$f.sizes.data" "$mib" | while read -r l; do say "$l"; done ;;
        record)
            perf script -i "$f.perf.data" --no-inline -F comm,tid,ip,sym,dso 2>/dev/null >"$f.script"
            bench/perf-categories.py "$f.script" | while read -r l; do say "    $l"; done ;;
        strace) head -20 "$f.strace" | while read -r l; do say "    $l"; done ;;
    esac
}

part_fpi() {
    psql_ -c "SELECT pg_switch_wal()" -c "CHECKPOINT" >/dev/null
    psql_ -c "SELECT pg_create_physical_replication_slot('fpi_base', true)" >/dev/null
    local start target
    start="$(psql_ -c "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'fpi_base'")"
    target="$(awk -v g="$FPI_GIB" 'BEGIN{printf "%d", g*1073741824}')"
    pgbench_ -i -s 42 -q >/dev/null 2>&1
    while [ "$(psql_ -c "SELECT (pg_current_wal_lsn() - '$start'::pg_lsn) >= $target")" = f ]; do
        psql_ -c "CHECKPOINT" >/dev/null
        pgbench_ -c 4 -j 2 -T 5 >/dev/null 2>&1
    done
    psql_ -c "SELECT pg_switch_wal()" >/dev/null
    FPI_END="$(psql_ -c "SELECT pg_current_wal_lsn()")"
    psql_ -c "CREATE TABLE IF NOT EXISTS bench_after (i int)" -c "INSERT INTO bench_after VALUES (1)" >/dev/null
    FPI_GIB_REAL="$(psql_ -c "SELECT round(('$FPI_END'::pg_lsn - '$start'::pg_lsn) / 1073741824.0, 4)")"
    psql_ -c "ALTER SYSTEM SET autovacuum = off" -c "SELECT pg_reload_conf()" >/dev/null
    say ""
    say "### FPI-heavy catch-up: $FPI_GIB_REAL GiB from $start to $FPI_END, page cache dropped before each run"
    local tool mode i
    for tool in pg_receivewal pgwalrus; do
        for mode in strace stat sizes record; do fpi_run "$tool" "$mode" "$work/fpi" "$tool"; done
    done
    for i in 1 2; do
        fpi_run pgwalrus plain "$work/fpi" pgwalrus
        fpi_run pg_receivewal plain "$work/fpi" pg_receivewal
        fpi_run pgwalrus--no-verify plain "$work/fpi" pgwalrus --no-verify
        fpi_run pgwalrus--no-sync plain "$work/fpi" pgwalrus --no-sync
        fpi_run pgwalrus--no-sync--no-verify plain "$work/fpi" pgwalrus --no-sync --no-verify
        fpi_run pg_receivewal--no-sync plain "$work/fpi" pg_receivewal --no-sync
    done
    # The cheapest receiver there is: no fsync, no verification, into memory.
    local shm; shm="$(mktemp -d -p /dev/shm pgwalrus-profile.XXXXXX)"
    for i in 1 2; do fpi_run pgwalrus--no-sync--no-verify-tmpfs plain "$shm/a" pgwalrus --no-sync --no-verify; done
    rm -rf "$shm" "$work/fpi"
}

# ---------------------------------------------------------------------------------------
# The disk under the catch-up: the archive's writes (64 files of 16 MiB, fallocated, written
# in 128 KiB pieces and fdatasync'ed each, as pgwalrus writes segments; then the same with
# O_DIRECT) and the walsender's reads (1 GiB of 16 MiB files read in 128 KiB pieces after the
# page cache was dropped), alone and both at once. CPU from GNU time, wall from the clock.
bounds_write() { # dir direct(0|1) -> "wall user sys"
    local dir="$1" direct="$2" i flag=""
    [ "$direct" = 1 ] && flag=oflag=direct
    rm -rf "$dir"; mkdir -p "$dir"
    /usr/bin/time -f '%e %U %S' -o "$dir.time" bash -c '
        for i in $(seq 1 64); do
            fallocate -l 16M "$1/$i"
            dd if="$2" of="$1/$i" bs=128K count=128 conv=notrunc,fdatasync '"$flag"' status=none
        done' _ "$dir" "$BOUNDS_SRC"
    cat "$dir.time"
}
bounds_read() { # dir -> "wall user sys"
    /usr/bin/time -f '%e %U %S' -o "$1.rtime" bash -c 'for f in "$1"/*; do dd if="$f" of=/dev/null bs=128K status=none; done' _ "$1"
    cat "$1.rtime"
}
part_bounds() {
    local d="$work/bounds" line
    mkdir -p "$d"
    BOUNDS_SRC="$d/src"; head -c 16M /dev/urandom >"$BOUNDS_SRC"
    # 1 GiB to read: 64 copies of random data, on disk.
    mkdir -p "$d/wal"; for i in $(seq 1 64); do head -c 16M /dev/urandom >"$d/wal/$i"; done; sync
    say ""
    say "### the disk: 1 GiB of 16 MiB files, 128 KiB pieces"
    local rep
    for rep in 1 2; do
        cat "$BOUNDS_SRC" >/dev/null
        sync; echo 3 > /proc/sys/vm/drop_caches; cat "$BOUNDS_SRC" >/dev/null
        say "write, buffered + fdatasync per file: $(bounds_write "$d/out" 0 | awk '{printf "%.0f MiB/s, CPU s per GiB %.2f", 1024/$1, $2+$3}')"
        sync; echo 3 > /proc/sys/vm/drop_caches; cat "$BOUNDS_SRC" >/dev/null
        say "write, O_DIRECT + fdatasync per file: $(bounds_write "$d/out" 1 | awk '{printf "%.0f MiB/s, CPU s per GiB %.2f", 1024/$1, $2+$3}')"
        sync; echo 3 > /proc/sys/vm/drop_caches
        say "read, page cache dropped: $(bounds_read "$d/wal" | awk '{printf "%.0f MiB/s", 1024/$1}')"
        sync; echo 3 > /proc/sys/vm/drop_caches; cat "$BOUNDS_SRC" >/dev/null
        local t0 t1
        t0=$(date +%s.%N)
        bounds_read "$d/wal" >/dev/null & local r=$!
        bounds_write "$d/out" 0 >/dev/null
        wait "$r"
        t1=$(date +%s.%N)
        say "read and buffered write at once (1 GiB each): $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f MiB/s of each", 1024/(b-a)}')"
    done
    rm -rf "$d"
}

if part steady || part whatif || part batch; then
    pgbench_ -i -s 20 -q >/dev/null 2>&1
    psql_ -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
fi
for p in ${PARTS//,/ }; do "part_$p"; done
echo "summary: $SUMMARY" >&2
