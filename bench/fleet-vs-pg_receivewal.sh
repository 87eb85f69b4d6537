#!/usr/bin/env bash
# Side by side: one `pgwalrus daemon` archiving N streams (default 50) of one primary
# against N `pg_receivewal` processes on the same WAL, in the same run (issue 13,
# "Performance").
#
# One PostgreSQL 15 primary (pgbench -i -s 20 once). Per run: CHECKPOINT, 2N new physical
# slots (N for the daemon, N for pg_receivewal, each reserving WAL), the daemon started
# with a configuration of N [[server]] tables pointing at the primary with distinct slots
# and archive directories (compression none, default flush_interval and status_interval,
# verification on), and N pg_receivewal processes (distinct slots and directories). Once
# all 2N streams have caught up, pgbench -n -c 4 -j 2 (its vacuum and truncation done by the
# script before the checkpoint) runs until the primary has written WAL_MIB MiB of WAL
# (default 128), and stops; every stream streams that same WAL.
#
# Measured per run:
#  - peak RSS: the daemon's VmHWM (one process, all its threads) and the sum of the N
#    pg_receivewal VmHWMs, read from /proc/PID/status before they exit;
#  - CPU: utime+stime of /proc/PID/stat (all threads; none of the processes has children)
#    between "all caught up, pgbench about to start" and "every walsender sent all WAL
#    pgbench wrote, plus 2 s", per side, over N × the WAL written (GiB streamed);
#  - flush lag after the load: from the moment pgbench has exited, pg_stat_replication is
#    sampled every SAMPLE_S s (default 0.15; each sample's time is taken after its query
#    returned, so it errs late) until each stream's flush_lsn >= pg_current_wal_lsn(); the
#    max over the N streams of each side is reported, or "> FLUSH_WAIT" when some stream
#    did not get there within FLUSH_WAIT s (default 30; pg_receivewal reports flush only at
#    segment ends).
#  - a check that the streams archived something real: every stream's archive holds every
#    segment the load completed, and in a sample of streams of each side every complete
#    segment is byte-identical (cmp) to the primary's pg_wal.
#
# Archives go under ARCHIVE_PARENT (--archive-parent, default: the work directory under
# BENCH_DIR, /var/tmp — the same disk as the primary), the same for both sides: 2N ×
# (WAL_MIB + ~32) MiB per run (about 16 GiB for the defaults), removed after each run.
#
# Not a test: numbers depend on the machine. Results go to stdout as a Markdown table.
#
#   bench/fleet-vs-pg_receivewal.sh [--runs N] [--streams N] [--wal-mib N]
#       [--archive-parent DIR] [--flush-wait S] [--sample S]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

RUNS=3; STREAMS=50; WAL_MIB=128; ARCHIVE_PARENT=""; FLUSH_WAIT=30; SAMPLE_S=0.15
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --streams) STREAMS="$2"; shift 2 ;;
        --wal-mib) WAL_MIB="$2"; shift 2 ;;
        --archive-parent) ARCHIVE_PARENT="$2"; shift 2 ;;
        --flush-wait) FLUSH_WAIT="$2"; shift 2 ;;
        --sample) SAMPLE_S="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

BIN=/usr/lib/postgresql/15/bin
need_tools time
build_pgwalrus

# Everything this script starts, by pid, stopped on exit and on Ctrl-C.
DAEMON_PID=""; LOAD_PID=""; PRW_PIDS=(); work=""; pid=""
cleanup() {
    local p
    [ -z "$LOAD_PID" ] || kill -TERM "$LOAD_PID" 2>/dev/null || true
    [ -z "$DAEMON_PID" ] || kill -TERM "$DAEMON_PID" 2>/dev/null || true
    for p in "${PRW_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "$LOAD_PID" "$DAEMON_PID" "${PRW_PIDS[@]}"; do
        [ -z "$p" ] || wait "$p" 2>/dev/null || true
    done
    [ -z "$work" ] || stop_server "$BIN" "$work/data" "$pid"
    [ -z "$work" ] || rm -rf "$work"
    [ -z "${ARCH:-}" ] || rm -rf "$ARCH"
}
bench_primary "$BIN" pgwalrus-fleet max_wal_senders=$((2 * STREAMS + 10)) \
    max_replication_slots=$((2 * STREAMS + 10)) max_connections=$((2 * STREAMS + 30)) \
    max_wal_size=4GB checkpoint_timeout=1h shared_buffers=256MB synchronous_commit=on \
    autovacuum=off
trap cleanup EXIT
trap 'exit 130' INT TERM
ARCH="$(mktemp -d -p "${ARCHIVE_PARENT:-$work}" fleet-archives.XXXXXX)"
echo "primary on port $port; archives under $ARCH ($(df --output=fstype "$ARCH" | tail -1))" >&2


# Stream names: fleet_w01… (the daemon), fleet_p01… (pg_receivewal); slot = application_name.
names() { local k; for k in $(seq -w 1 "$STREAMS"); do echo "fleet_$1$k"; done; }

# cpu_of PID…: user+sys seconds of the live processes PID…, summed.
cpu_of() { local p; for p in "$@"; do proc_cpu "$p"; done | awk '{s += $1 + $2} END {printf "%.2f\n", s}'; }

start_daemon() { # config file, log
    local conf="$1" n http
    http="$(free_port)"
    {
        echo "listen = \"127.0.0.1:$http\""
        echo "[defaults]"
        echo "create_slot = false"
        echo "compression = \"none\""
        for n in $(names w); do
            echo
            echo "[[server]]"
            echo "name = \"$n\""
            echo "conninfo = \"$CONN application_name=$n\""
            echo "slot = \"$n\""
            echo "archive = \"$ARCH/$n\""
        done
    } >"$conf"
    "$PGWALRUS" daemon --check -c "$conf" >/dev/null 2>&1
    "$PGWALRUS" daemon -c "$conf" >"$2" 2>&1 &
    DAEMON_PID=$!
}

# segno NAME: a 16 MiB segment's number from its file name.
segno() { echo $(( 16#${1:8:8} * 256 + 16#${1:16:8} )); }

# Every complete segment in archive DIR is byte-identical to the primary's pg_wal.
same_as_pg_wal() {
    local f n c=0
    for f in "$1"/*; do
        n="$(basename "$f")"
        [[ "$n" =~ ^[0-9A-F]{24}$ ]] || continue
        cmp -s "$f" "$work/data/pg_wal/$n" || { echo "MISMATCH: $1/$n differs from pg_wal" >&2; exit 1; }
        c=$((c + 1))
    done
    echo "$c"
}

# Rows of $work/fleet.rows: run wal_bytes daemon_cpu prw_cpu daemon_rss_kb prw_rss_kb
#                           daemon_flush_s prw_flush_s tps
one_run() {
    local run="$1" n k start_lsn end_lsn bytes tps tx0 l0 t0 now elapsed cpu_w cpu_p rss_w rss_p
    local -A reached=()
    local -a pids_p=()
    echo "run $run/$RUNS: slots and $((2 * STREAMS)) streams…" >&2
    # What pgbench does before it starts unless -n (it runs with -n below, so its vacuum and
    # truncation are not in the measured WAL, and the rows of pgbench_history count its
    # transactions); then a checkpoint, so every run's WAL has the same shape.
    psql_ -c "VACUUM pgbench_branches" -c "VACUUM pgbench_tellers" -c "TRUNCATE pgbench_history" >/dev/null
    psql_ -c "SELECT pg_switch_wal()" -c "CHECKPOINT" >/dev/null
    for n in $(names w) $(names p); do
        psql_ -c "SELECT pg_create_physical_replication_slot('$n', true)" >/dev/null
        mkdir -p "$ARCH/$n"
    done
    start_daemon "$ARCH/daemon.toml" "$ARCH/daemon.log"
    for n in $(names p); do
        "$BIN/pg_receivewal" -D "$ARCH/$n" -d "$CONN application_name=$n" -S "$n" -n >"$ARCH/$n.log" 2>&1 &
        PRW_PIDS+=("$!"); pids_p+=("$!")
    done
    wait_for 120 "SELECT count(*) = $((2 * STREAMS)) FROM pg_stat_replication
                  WHERE application_name LIKE 'fleet\_%' AND state = 'streaming'
                    AND sent_lsn >= pg_current_wal_flush_lsn()"
    sleep 1
    cpu_w="$(cpu_of "$DAEMON_PID")"; cpu_p="$(cpu_of "${pids_p[@]}")"
    start_lsn="$(psql_ -c "SELECT pg_current_wal_lsn()")"
    tx0="$(psql_ -c "SELECT count(*) FROM pgbench_history")"; l0="$EPOCHREALTIME"

    echo "run $run/$RUNS: pgbench until ${WAL_MIB} MiB of WAL…" >&2
    # The binary itself in the background (not a function: that would be a subshell), stopped
    # with SIGTERM (a script's background jobs ignore SIGINT).
    "$BIN/pgbench" -h "$work" -p "$port" -U postgres -n -c 4 -j 2 -T 3600 postgres >"$ARCH/pgbench.out" 2>&1 &
    LOAD_PID=$!
    until [ "$(psql_ -c "SELECT pg_current_wal_lsn() - '$start_lsn'::pg_lsn >= $WAL_MIB * 1048576")" = t ]; do
        kill -0 "$LOAD_PID" 2>/dev/null || { echo "pgbench ended early: $(cat "$ARCH/pgbench.out")" >&2; exit 1; }
        sleep 0.2
    done
    kill -TERM "$LOAD_PID"; wait "$LOAD_PID" 2>/dev/null || true; LOAD_PID=""
    t0="$EPOCHREALTIME"
    end_lsn="$(psql_ -c "SELECT pg_current_wal_lsn()")"
    bytes="$(psql_ -c "SELECT '$end_lsn'::pg_lsn - '$start_lsn'::pg_lsn")"; bytes="${bytes%.*}"
    # pgbench prints nothing when interrupted: its transactions are pgbench_history's rows.
    tps="$(awk -v a="$(psql_ -c "SELECT count(*) FROM pgbench_history")" -v b="$tx0" -v t="$l0" -v u="$t0" \
        'BEGIN{printf "%.0f", (a - b) / (u - t)}')"

    # Flush lag: the first sample at which each stream's flush_lsn reached the end of WAL.
    local cpu_done="" sent_all_at="" rows app sent_n
    while :; do
        rows="$(psql_ -F ' ' -c "SELECT coalesce(string_agg(application_name, ' ')
                                     FILTER (WHERE flush_lsn >= pg_current_wal_lsn()), '-'),
                                   count(*) FILTER (WHERE sent_lsn >= '$end_lsn')
                              FROM pg_stat_replication WHERE application_name LIKE 'fleet\_%'")"
        now="$EPOCHREALTIME"
        elapsed="$(awk -v a="$t0" -v b="$now" 'BEGIN{printf "%.2f", b - a}')"
        sent_n="${rows##* }"
        for app in ${rows% *}; do
            [ "$app" = - ] || [ -n "${reached[$app]:-}" ] || reached[$app]="$elapsed"
        done
        # CPU: once every walsender sent all the load's WAL, plus 2 s (what is in sockets).
        if [ -z "$sent_all_at" ] && [ "$sent_n" = $((2 * STREAMS)) ]; then sent_all_at="$elapsed"; fi
        if [ -z "$cpu_done" ] && [ -n "$sent_all_at" ] &&
            awk -v e="$elapsed" -v s="$sent_all_at" 'BEGIN{exit !(e >= s + 2)}'; then
            cpu_w="$(awk -v a="$cpu_w" -v b="$(cpu_of "$DAEMON_PID")" 'BEGIN{printf "%.2f", b - a}')"
            cpu_p="$(awk -v a="$cpu_p" -v b="$(cpu_of "${pids_p[@]}")" 'BEGIN{printf "%.2f", b - a}')"
            cpu_done=1
        fi
        if [ -n "$cpu_done" ] && [ "${#reached[@]}" = $((2 * STREAMS)) ]; then break; fi
        awk -v e="$elapsed" -v w="$FLUSH_WAIT" 'BEGIN{exit !(e >= w)}' && [ -n "$cpu_done" ] && break
        sleep "$SAMPLE_S"
    done
    flush_max() { # prefix
        local n worst=0 short=0
        for n in $(names "$1"); do
            if [ -n "${reached[$n]:-}" ]; then
                worst="$(awk -v a="$worst" -v b="${reached[$n]}" 'BEGIN{print (b > a ? b : a)}')"
            else
                short=$((short + 1))
            fi
        done
        if [ "$short" -gt 0 ]; then echo ">$FLUSH_WAIT"; else echo "$worst"; fi
        [ "$short" = 0 ] || echo "  $1: $short of $STREAMS streams not flushed to the end of WAL within ${FLUSH_WAIT} s" >&2
    }
    local fl_w fl_p
    fl_w="$(flush_max w)"; fl_p="$(flush_max p)"

    rss_w="$(proc_peak_rss_kb "$DAEMON_PID")"
    rss_p="$(for k in "${pids_p[@]}"; do proc_peak_rss_kb "$k"; done | awk '{s += $1} END {print s}')"
    echo "$run $bytes $cpu_w $cpu_p $rss_w $rss_p $fl_w $fl_p $tps" >>"$work/fleet.rows"
    echo "  run $run: daemon peak RSS $rss_w KiB, CPU $cpu_w s, flush $fl_w s; pg_receivewal peak RSS $rss_p KiB (sum), CPU $cpu_p s, flush $fl_p s" >&2

    # Stop both sides (SIGTERM: the daemon stops cleanly; pg_receivewal keeps its .partial).
    kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=""
    for k in "${pids_p[@]}"; do kill -TERM "$k" 2>/dev/null || true; done
    for k in "${pids_p[@]}"; do wait "$k" 2>/dev/null || true; done
    PRW_PIDS=()

    # Archived, not just counted: every stream holds every segment the load completed (the
    # segment of start_lsn through the one before end_lsn's), and a sample of streams of
    # each side is compared byte for byte with pg_wal (kept meanwhile by the slots).
    local first last seg segs=() checked=0
    first="$(psql_ -c "SELECT pg_walfile_name('$start_lsn')")"
    last="$(psql_ -c "SELECT pg_walfile_name('$end_lsn')")"
    for ((seg = $(segno "$first"); seg < $(segno "$last"); seg++)); do
        segs+=("$(printf '%s%08X%08X' "${first:0:8}" $((seg / 256)) $((seg % 256)))")
    done
    for n in $(names w) $(names p); do
        for k in "${segs[@]}"; do
            [ -f "$ARCH/$n/$k" ] || { echo "$n: segment $k short from its archive" >&2; exit 1; }
        done
    done
    for k in 1 $(( (STREAMS + 1) / 2 )) "$STREAMS"; do
        for n in "fleet_w$(printf %0${#STREAMS}d "$k")" "fleet_p$(printf %0${#STREAMS}d "$k")"; do
            checked=$((checked + $(same_as_pg_wal "$ARCH/$n")))
        done
    done
    echo "  run $run: $(awk -v b="$bytes" -v t="$l0" -v u="$t0" 'BEGIN{printf "%.0f MiB in %.0f s", b/1048576, u - t}') at $tps TPS, load average $(cut -d' ' -f1-3 /proc/loadavg); every stream archived the ${#segs[@]} segments the load completed; $checked segments of 6 streams identical to pg_wal" >&2
    for n in $(names w) $(names p); do psql_ -c "SELECT pg_drop_replication_slot('$n')" >/dev/null; done
    rm -rf "${ARCH:?}"/*
}

echo "pgbench -i -s 20…" >&2
pgbench_ -i -s 20 -q >/dev/null 2>&1
psql_ -c "VACUUM ANALYZE" >/dev/null
rm -f "$work/fleet.rows"
for i in $(seq 1 "$RUNS"); do one_run "$i"; done

# ---------------------------------------------------------------------------------------
R="$work/fleet.rows"
col() { awk -v c="$1" '{print $c}' "$R"; }
gib_streamed() { awk -v n="$STREAMS" '{print n * $2 / 1073741824}' "$R"; }
flush_col() { # column: seconds, or ">W" in runs where some stream did not get there
    local missed
    missed="$(col "$1" | grep -c '>' || true)"
    if [ "$missed" = 0 ]; then
        col "$1" | minmax
    elif [ "$missed" = "$RUNS" ]; then
        echo "> $FLUSH_WAIT in every run"
    else
        echo "$(col "$1" | grep -v '>' | minmax) (> $FLUSH_WAIT in $missed of $RUNS runs)"
    fi
}
echo
echo "### $STREAMS streams of one primary: one pgwalrus daemon vs $STREAMS pg_receivewal ($RUNS runs, min–max)"
echo
echo "WAL per run: $(col 2 | awk '{print $1/1048576}' | minmax %.0f) MiB (pgbench -n -c 4 -j 2, scale 20, $(col 9 | minmax %.0f) TPS), streamed by each of the $((2 * STREAMS)) streams: $(gib_streamed | minmax) GiB per side. Archives on $(df --output=fstype "$ARCH" | tail -1) ($ARCH)."
echo
echo "| | peak RSS MiB (total) | CPU s (total) | CPU s per GiB streamed | flush reaches end of WAL after load stops, s (max over streams) |"
echo "|---|---|---|---|---|"
printf '| pgwalrus daemon, %s servers | %s | %s | %s | %s |\n' "$STREAMS" \
    "$(col 5 | awk '{print $1/1024}' | minmax %.1f)" "$(col 3 | minmax)" \
    "$(awk -v n="$STREAMS" '{print $3 / (n * $2 / 1073741824)}' "$R" | minmax)" "$(flush_col 7)"
printf '| %s × pg_receivewal | %s | %s | %s | %s |\n' "$STREAMS" \
    "$(col 6 | awk '{print $1/1024}' | minmax %.1f)" "$(col 4 | minmax)" \
    "$(awk -v n="$STREAMS" '{print $4 / (n * $2 / 1073741824)}' "$R" | minmax)" "$(flush_col 8)"
echo
echo "ratios daemon / pg_receivewal, per run: peak RSS $(awk '{print $5/$6}' "$R" | minmax)×, CPU per GiB $(awk '{print $3/$4}' "$R" | minmax)×"
