#!/usr/bin/env bash
# Side by side: pgwalrus receive vs PostgreSQL 15's pg_receivewal on the same primary.
#
# Parts (--parts, comma-separated; default all four, in this order):
#
#  catchup  GIB GiB (default 1) of bulk-insert WAL retained by a slot, streamed from the
#           slot's restart point up to a fixed end position (-E / --endpos), each tool RUNS
#           times (default 3), alternating. Reports wall time, MiB/s, CPU seconds per GiB
#           (user+sys) and peak RSS (medians), and the ratios pgwalrus/pg_receivewal.
#  sync     pgbench -c 4 -N for SYNC_SECS seconds (default 30) with the receiver named in
#           synchronous_standby_names, each tool with --synchronous and a new slot, RUNS
#           times, alternating. Reports the median TPS.
#  steady   The life an archiver mostly lives: a primary under pgbench -c 4 -j 2 -T
#           STEADY_SECS (default 30; pgbench -i -s 20 first) streamed by THREE receivers of
#           one tool at once, each on its own new slot (default status interval, no
#           --synchronous). One round per tool, RUNS rounds each, alternating which tool goes
#           first; then one more round of pgwalrus --no-verify. Each round starts after
#           pg_switch_wal() and CHECKPOINT, so every round has the same shape (full-page
#           images after the checkpoint, then fewer). A receiver's CPU is the difference of
#           /proc/PID/stat (user, sys; all threads) between "caught up, pgbench about to
#           start" and "the walsender sent everything pgbench wrote, plus 2 s"; its WAL is
#           the WAL written in between. Reports CPU per receiver and CPU s per GiB, min–max
#           over all receivers of all rounds, peak RSS (VmHWM), pgbench's TPS, and the ratio.
#  fpi      FPI-heavy catch-up: pgbench -i -s 42, then (CHECKPOINT; pgbench -c 4 -j 2 -T 5)
#           chunks until FPI_GIB GiB (default 1) of WAL is retained by a slot, streamed to a
#           fixed end position as in `catchup`, RUNS times per tool, alternating. Reports
#           MiB/s, CPU s per GiB, peak RSS, min–max, and the walsender's CPU per GiB (the
#           server side of the same stream) as a bound.
#
# Catch-up runs drop the page cache before each run (`echo 3 > /proc/sys/vm/drop_caches`,
# root only) unless --warm is given, so the walsender reads the WAL from disk.
#
# Not a test: numbers depend on the machine. Run on a quiet machine; results go to stdout
# as Markdown tables (paste into docs/benchmarks.md together with the command line).
#
#   PGWALRUS_ARGS="--no-verify" adds flags to the pgwalrus runs.
#   bench/receive-vs-pg_receivewal.sh [--parts catchup,sync,steady,fpi] [--runs N]
#       [--gib N] [--sync-seconds N] [--skip-sync] [--steady-seconds N] [--fpi-gib N]
#       [--warm]
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
# shellcheck source=bench/lib.sh
. bench/lib.sh

PARTS=catchup,sync,steady,fpi; GIB=1; RUNS=3; SYNC_SECS=30; STEADY_SECS=30; FPI_GIB=1
CACHES=drop
while [ $# -gt 0 ]; do
    case "$1" in
        --parts) PARTS="$2"; shift 2 ;;
        --gib) GIB="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --sync-seconds) SYNC_SECS="$2"; shift 2 ;;
        --skip-sync) PARTS="$(tr , '\n' <<<"$PARTS" | grep -vx sync | paste -sd, -)"; shift ;;
        --steady-seconds) STEADY_SECS="$2"; shift 2 ;;
        --fpi-gib) FPI_GIB="$2"; shift 2 ;;
        --warm) CACHES=warm; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
for p in ${PARTS//,/ }; do
    case "$p" in catchup | sync | steady | fpi) ;; *) echo "unknown part $p" >&2; exit 2 ;; esac
done
part() { [[ ",$PARTS," == *",$1,"* ]]; }

BIN=/usr/lib/postgresql/15/bin
need_tools time
build_pgwalrus

bench_primary "$BIN" pgwalrus-bench max_wal_size=4GB checkpoint_timeout=1h shared_buffers=256MB synchronous_commit=on


# The WAL between two positions as pg_waldump --stats counts it: "records rec_bytes fpi_bytes".
wal_stats() {
    "$BIN/pg_waldump" --stats -p "$work/data/pg_wal" -s "$1" -e "$2" 2>/dev/null |
        awk '$1 == "Total" {gsub(/[\[\]%]/, ""); print $2, $3, $5}'
}

# One catch-up run: a fresh copy of slot FROM named SLOT, streamed by TOOL into DIR up to
# ENDPOS. Prints "wall user sys maxrss_kb walsender_cpu_s": the last is the CPU of the
# postmaster's children that ended during the run — the walsender (autovacuum is off during
# catch-up runs, and no other session ends meanwhile).
catchup_run() { # tool dir slot from endpos
    local tool="$1" dir="$2" slot="$3" from="$4" endpos="$5" before after t
    rm -rf "$dir"; mkdir -p "$dir"
    psql_ -c "SELECT pg_drop_replication_slot('$slot')" >/dev/null 2>&1 || true
    psql_ -c "SELECT pg_copy_physical_replication_slot('$from', '$slot')" >/dev/null
    sync
    if [ "$CACHES" = drop ]; then echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; fi
    sleep 0.3 # the postmaster reaps the backends of the psql calls above
    before="$(proc_children_cpu "$pid")"
    if [ "$tool" = pg_receivewal ]; then
        t="$(timed "$BIN/pg_receivewal" -D "$dir" -d "$CONN" -S "$slot" -E "$endpos" -n)"
    else
        t="$(timed "$PGWALRUS" receive -q -D "$dir" -d "$CONN" -S "$slot" -E "$endpos" -n ${PGWALRUS_ARGS:-})"
    fi
    sleep 0.5 # and the walsender's
    after="$(proc_children_cpu "$pid")"
    echo "$t $(awk -v b="$before" -v a="$after" 'BEGIN{split(b, x, " "); split(a, y, " "); printf "%.2f", (y[1]+y[2]) - (x[1]+x[2])}')"
}

# Every complete segment of archive A equals the one of archive B.
same_segments() {
    local f n
    for f in "$1"/*; do
        n="$(basename "$f")"; case "$n" in *.partial) continue ;; esac
        cmp -s "$f" "$2/$n" || { echo "MISMATCH: $n differs between the two archives" >&2; exit 1; }
    done
}

autovacuum() { psql_ -c "ALTER SYSTEM SET autovacuum = $1" -c "SELECT pg_reload_conf()" >/dev/null; }

# ---------------------------------------------------------------------------------------
part_catchup() {
    echo "generating ${GIB} GiB of WAL…" >&2
    psql_ -c "SELECT pg_create_physical_replication_slot('bench_prw', true)" >/dev/null
    local start_lsn end_lsn target done_bytes bytes gib i
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
    # re-created at the start position between runs by copying them.
    local -a PRW=() WAL=()
    autovacuum off
    for i in $(seq 1 "$RUNS"); do
        echo "catch-up run $i/$RUNS…" >&2
        PRW+=("$(catchup_run pg_receivewal "$work/prw" bench_run_prw bench_prw "$end_lsn")")
        WAL+=("$(catchup_run pgwalrus "$work/walrus" bench_run_walrus bench_prw "$end_lsn")")
    done
    autovacuum on
    same_segments "$work/prw" "$work/walrus"
    for s in bench_prw bench_run_prw bench_run_walrus; do psql_ -c "SELECT pg_drop_replication_slot('$s')" >/dev/null; done
    rm -rf "$work/prw" "$work/walrus"

    local prw_wall prw_cpu prw_rss wal_wall wal_cpu wal_rss
    read -r prw_wall prw_cpu prw_rss <<<"$(summarize "${PRW[@]}")"
    read -r wal_wall wal_cpu wal_rss <<<"$(summarize "${WAL[@]}")"
    gib="$(awk -v b="$bytes" 'BEGIN{printf "%.3f", b/1073741824}')"

    echo
    echo "### Catch-up of ${gib} GiB of slot-retained WAL (median of $RUNS runs; page cache: $CACHES)"
    echo
    echo "| tool | wall s | MiB/s | CPU s per GiB | peak RSS MiB |"
    echo "|---|---|---|---|---|"
    awk -v t=pg_receivewal -v w="$prw_wall" -v c="$prw_cpu" -v r="$prw_rss" -v g="$gib" 'BEGIN{printf "| %s | %.2f | %.1f | %.2f | %.1f |\n", t, w, g*1024/w, c/g, r/1024}'
    awk -v t=pgwalrus -v w="$wal_wall" -v c="$wal_cpu" -v r="$wal_rss" -v g="$gib" 'BEGIN{printf "| %s | %.2f | %.1f | %.2f | %.1f |\n", t, w, g*1024/w, c/g, r/1024}'
    awk -v pw="$prw_wall" -v ww="$wal_wall" -v pc="$prw_cpu" -v wc="$wal_cpu" 'BEGIN{printf "\nthroughput ratio pgwalrus/pg_receivewal: %.2fx; CPU per GiB ratio: %.2fx\n", pw/ww, (pc>0? wc/pc : 0)}'
}

# ---------------------------------------------------------------------------------------
part_sync() {
    tps_with() { # tool -> tps
        local tool="$1" dir="$work/sync-$1" rpid tps
        rm -rf "$dir"; mkdir -p "$dir"
        psql_ -c "SELECT pg_drop_replication_slot('sync_$tool')" >/dev/null 2>&1 || true
        # A new slot reserves WAL from the last checkpoint's redo point; without this one
        # that may be much older WAL, and pgbench would first wait for the receiver to
        # stream it instead of measuring synchronous commits.
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
        tps="$(pgbench_ -c 4 -j 2 -T "$SYNC_SECS" -N 2>/dev/null | awk '/^tps/ {print $3; exit}')"
        kill -INT "$rpid"; wait "$rpid" 2>/dev/null || true
        psql_ -c "ALTER SYSTEM RESET synchronous_standby_names" -c "SELECT pg_reload_conf()" >/dev/null
        psql_ -c "SELECT pg_drop_replication_slot('sync_$tool')" >/dev/null
        rm -rf "$dir"
        echo "$tps"
    }
    pgbench_ -i -s 10 -q >/dev/null 2>&1
    local -a PRW_TPS=() WAL_TPS=()
    local i prw_tps wal_tps
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
}

# ---------------------------------------------------------------------------------------
# Steady streaming. Rows of $work/steady.rows: tool round receiver user_s sys_s wal_bytes tps rss_kb
STEADY_N=3

start_receiver() { # tool dir appname slot; sets RPID
    local tool="$1" dir="$2" app="$3" slot="$4"
    case "$tool" in
        pg_receivewal)
            "$BIN/pg_receivewal" -D "$dir" -d "$CONN application_name=$app" -S "$slot" -n >"$dir.log" 2>&1 & ;;
        pgwalrus)
            "$PGWALRUS" receive -q -D "$dir" -d "$CONN application_name=$app" -S "$slot" -n ${PGWALRUS_ARGS:-} >"$dir.log" 2>&1 & ;;
        pgwalrus-no-verify)
            "$PGWALRUS" receive -q -D "$dir" -d "$CONN application_name=$app" -S "$slot" -n --no-verify >"$dir.log" 2>&1 & ;;
    esac
    RPID=$!
}

steady_round() { # tool round
    local tool="$1" round="$2" k app dir start_lsn end_lsn bytes tps stats
    local -a pids=() cpu0=()
    # New slots reserve WAL from the redo point of the last checkpoint: make that now, at
    # the start of a fresh segment, so the receivers have next to nothing to catch up on.
    psql_ -c "SELECT pg_switch_wal()" -c "CHECKPOINT" >/dev/null
    for k in $(seq 1 "$STEADY_N"); do
        app="steady_$k"; dir="$work/steady/$k"
        rm -rf "$dir" "$dir.log"; mkdir -p "$dir"
        psql_ -c "SELECT pg_create_physical_replication_slot('$app', true)" >/dev/null
        start_receiver "$tool" "$dir" "$app" "$app"
        pids+=("$RPID")
    done
    wait_for 60 "SELECT count(*) = $STEADY_N FROM pg_stat_replication
                 WHERE application_name LIKE 'steady\_%' AND state = 'streaming'
                   AND sent_lsn >= pg_current_wal_flush_lsn()"
    sleep 1
    for k in "${!pids[@]}"; do cpu0[k]="$(proc_cpu "${pids[k]}")"; done
    start_lsn="$(psql_ -c "SELECT pg_current_wal_flush_lsn()")"
    tps="$(pgbench_ -c 4 -j 2 -T "$STEADY_SECS" 2>/dev/null | awk '/^tps/ {print $3; exit}')"
    end_lsn="$(psql_ -c "SELECT pg_current_wal_flush_lsn()")"
    wait_for 120 "SELECT count(*) = $STEADY_N FROM pg_stat_replication
                  WHERE application_name LIKE 'steady\_%' AND sent_lsn >= '$end_lsn'"
    sleep 2 # what is in the receivers' sockets
    bytes="$(psql_ -c "SELECT '$end_lsn'::pg_lsn - '$start_lsn'::pg_lsn")"; bytes="${bytes%.*}"
    for k in "${!pids[@]}"; do
        echo "$tool $round $((k + 1)) $(awk -v a="${cpu0[k]}" -v b="$(proc_cpu "${pids[k]}")" \
            'BEGIN{split(a, x, " "); split(b, y, " "); printf "%.2f %.2f", y[1]-x[1], y[2]-x[2]}') $bytes $tps $(proc_peak_rss_kb "${pids[k]}")" >>"$work/steady.rows"
    done
    if [ "$round" = 1 ] && [ ! -s "$work/steady.stats" ]; then
        stats="$(wal_stats "$start_lsn" "$end_lsn")"
        echo "$stats" >"$work/steady.stats"
    fi
    for k in "${!pids[@]}"; do kill -INT "${pids[k]}"; done
    for k in "${!pids[@]}"; do wait "${pids[k]}" 2>/dev/null || true; done
    for k in $(seq 1 "$STEADY_N"); do psql_ -c "SELECT pg_drop_replication_slot('steady_$k')" >/dev/null; done
    echo "  $tool round $round: $(awk -v b="$bytes" 'BEGIN{printf "%.0f MiB", b/1048576}'), $tps TPS" >&2
}

# Prints one table row for TOOL from $work/steady.rows.
steady_row() {
    local tool="$1" label="$2" rows
    rows="$(awk -v t="$tool" '$1 == t' "$work/steady.rows")"
    [ -n "$rows" ] || return 0
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" \
        "$(awk '{print $2}' <<<"$rows" | sort -u | wc -l)" \
        "$(awk '{print $6/1048576}' <<<"$rows" | minmax %.0f)" \
        "$(awk '{print $7}' <<<"$rows" | minmax %.0f)" \
        "$(awk '{print $4}' <<<"$rows" | minmax)" \
        "$(awk '{print $5}' <<<"$rows" | minmax)" \
        "$(awk '{print ($4+$5)/($6/1073741824)}' <<<"$rows" | minmax)" \
        "$(awk '{print ($4+$5)/($6/1073741824)}' <<<"$rows" | median | xargs printf %.2f)" \
        "$(awk '{print $8/1024}' <<<"$rows" | minmax %.1f)"
}

steady_cpu_per_gib() { awk -v t="$1" '$1 == t {print ($4+$5)/($6/1073741824)}' "$work/steady.rows"; }

part_steady() {
    echo "steady streaming: pgbench -i -s 20…" >&2
    pgbench_ -i -s 20 -q >/dev/null 2>&1
    psql_ -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
    rm -f "$work/steady.rows" "$work/steady.stats"
    local i
    for i in $(seq 1 "$RUNS"); do
        echo "steady round $i/$RUNS…" >&2
        if [ $((i % 2)) = 1 ]; then
            steady_round pg_receivewal "$i"; steady_round pgwalrus "$i"
        else
            steady_round pgwalrus "$i"; steady_round pg_receivewal "$i"
        fi
    done
    echo "steady round: pgwalrus --no-verify…" >&2
    steady_round pgwalrus-no-verify 1
    rm -rf "$work/steady"

    local recs rec_b fpi_b
    read -r recs rec_b fpi_b <"$work/steady.stats"
    echo
    echo "### Steady streaming: $STEADY_N receivers at once under pgbench -c 4 -j 2 -T $STEADY_SECS (scale 20)"
    echo
    echo "Per receiver, min–max over all receivers of all rounds. The WAL of the first round:"
    awk -v n="$recs" -v r="$rec_b" -v f="$fpi_b" 'BEGIN{printf "%d records, %.0f MiB, %.0f%% of it full-page images, %.0f bytes per record.\n", n, (r+f)/1048576, 100*f/(r+f), (r+f)/n}'
    echo
    echo "| tool | rounds | WAL per round MiB | pgbench TPS | user s | sys s | CPU s per GiB | median | peak RSS MiB |"
    echo "|---|---|---|---|---|---|---|---|---|"
    steady_row pg_receivewal pg_receivewal
    steady_row pgwalrus "pgwalrus (verification on)"
    steady_row pgwalrus-no-verify "pgwalrus --no-verify"
    echo
    awk '
        FNR == 1 {f++}
        f == 1 {p[++np] = $1} f == 2 {w[++nw] = $1}
        END {
            asort_(p, np); asort_(w, nw)
            printf "CPU per GiB ratio pgwalrus/pg_receivewal: %.2fx (medians; %.2f–%.2fx pairing the extremes)\n",
                w[int((nw+1)/2)]/p[int((np+1)/2)], w[1]/p[np], w[nw]/p[1]
        }
        function asort_(a, n,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t } }
    ' <(steady_cpu_per_gib pg_receivewal) <(steady_cpu_per_gib pgwalrus)
}

# ---------------------------------------------------------------------------------------
part_fpi() {
    echo "FPI-heavy WAL: pgbench -i -s 42, then CHECKPOINT + 5 s pgbench chunks to ${FPI_GIB} GiB…" >&2
    local start_lsn init_lsn end_lsn target done_bytes bytes chunks=0 recs rec_b fpi_b gib i
    psql_ -c "SELECT pg_switch_wal()" -c "CHECKPOINT" >/dev/null
    psql_ -c "SELECT pg_create_physical_replication_slot('fpi_base', true)" >/dev/null
    start_lsn="$(psql_ -c "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'fpi_base'")"
    target="$(awk -v g="$FPI_GIB" 'BEGIN{printf "%d", g*1073741824}')"
    pgbench_ -i -s 42 -q >/dev/null 2>&1
    init_lsn="$(psql_ -c "SELECT pg_current_wal_lsn()")"
    while :; do
        done_bytes="$(psql_ -c "SELECT pg_current_wal_lsn() - '$start_lsn'::pg_lsn")"
        [ "${done_bytes%.*}" -ge "$target" ] && break
        psql_ -c "CHECKPOINT" >/dev/null
        pgbench_ -c 4 -j 2 -T 5 >/dev/null 2>&1
        chunks=$((chunks + 1))
    done
    end_lsn="$(psql_ -c "SELECT pg_switch_wal()" >/dev/null; psql_ -c "SELECT pg_current_wal_lsn()")"
    psql_ -c "CREATE TABLE IF NOT EXISTS bench_after (i int)" -c "INSERT INTO bench_after VALUES (1)" >/dev/null
    bytes="$(psql_ -c "SELECT '$end_lsn'::pg_lsn - '$start_lsn'::pg_lsn")"; bytes="${bytes%.*}"
    read -r recs rec_b fpi_b <<<"$(wal_stats "$start_lsn" "$end_lsn")"
    echo "WAL retained: $bytes bytes from $start_lsn to $end_lsn ($chunks chunks after -i)" >&2

    local -a PRW=() WAL=()
    autovacuum off
    for i in $(seq 1 "$RUNS"); do
        echo "FPI catch-up run $i/$RUNS…" >&2
        PRW+=("$(catchup_run pg_receivewal "$work/prw" fpi_run_prw fpi_base "$end_lsn")")
        WAL+=("$(catchup_run pgwalrus "$work/walrus" fpi_run_walrus fpi_base "$end_lsn")")
    done
    autovacuum on
    same_segments "$work/prw" "$work/walrus"
    for s in fpi_base fpi_run_prw fpi_run_walrus; do psql_ -c "SELECT pg_drop_replication_slot('$s')" >/dev/null; done
    rm -rf "$work/prw" "$work/walrus"

    gib="$(awk -v b="$bytes" 'BEGIN{printf "%.3f", b/1073741824}')"
    fpi_row() { # label runs…
        local label="$1"; shift
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" \
            "$(printf '%s\n' "$@" | awk -v g="$gib" '{print g*1024/$1}' | minmax %.0f)" \
            "$(printf '%s\n' "$@" | awk -v g="$gib" '{print g*1024/$1}' | median | xargs printf %.0f)" \
            "$(printf '%s\n' "$@" | awk -v g="$gib" '{print ($2+$3)/g}' | minmax)" \
            "$(printf '%s\n' "$@" | awk -v g="$gib" '{print ($2+$3)/g}' | median | xargs printf %.2f)" \
            "$(printf '%s\n' "$@" | awk -v g="$gib" '{print $2/g}' | minmax)" \
            "$(printf '%s\n' "$@" | awk -v g="$gib" '{print $3/g}' | minmax)" \
            "$(printf '%s\n' "$@" | awk '{print $4/1024}' | minmax %.1f)" \
            "$(printf '%s\n' "$@" | awk -v g="$gib" '{print $5/g}' | minmax)"
    }
    echo
    echo "### FPI-heavy catch-up of ${gib} GiB of slot-retained WAL ($RUNS runs per tool; page cache: $CACHES)"
    echo
    awk -v n="$recs" -v r="$rec_b" -v f="$fpi_b" -v c="$chunks" -v s="$start_lsn" -v i="$init_lsn" -v e="$end_lsn" \
        'BEGIN{printf "WAL %s to %s: pgbench -i -s 42 up to %s, then %d chunks; %d records, %.0f%% of the bytes full-page images, %.0f bytes per record.\n", s, e, i, c, n, 100*f/(r+f), (r+f)/n}'
    echo
    echo "| tool | MiB/s | median | CPU s per GiB | median | user s per GiB | sys s per GiB | peak RSS MiB | walsender CPU s per GiB |"
    echo "|---|---|---|---|---|---|---|---|---|"
    fpi_row pg_receivewal "${PRW[@]}"
    fpi_row pgwalrus "${WAL[@]}"
    local prw_wall prw_cpu wal_wall wal_cpu
    read -r prw_wall prw_cpu _ <<<"$(summarize "${PRW[@]}")"
    read -r wal_wall wal_cpu _ <<<"$(summarize "${WAL[@]}")"
    local pw_lo pw_hi ww_lo ww_hi pc_lo pc_hi wc_lo wc_hi
    read -r pw_lo pw_hi <<<"$(printf '%s\n' "${PRW[@]}" | awk '{print $1}' | minmax '%s' | tr '–' ' ')"
    read -r ww_lo ww_hi <<<"$(printf '%s\n' "${WAL[@]}" | awk '{print $1}' | minmax '%s' | tr '–' ' ')"
    read -r pc_lo pc_hi <<<"$(printf '%s\n' "${PRW[@]}" | awk '{print $2+$3}' | minmax '%s' | tr '–' ' ')"
    read -r wc_lo wc_hi <<<"$(printf '%s\n' "${WAL[@]}" | awk '{print $2+$3}' | minmax '%s' | tr '–' ' ')"
    awk -v pw="$prw_wall" -v ww="$wal_wall" -v pc="$prw_cpu" -v wc="$wal_cpu" \
        -v a="$pw_lo" -v b="$pw_hi" -v c="$ww_lo" -v d="$ww_hi" -v e="$pc_lo" -v f="$pc_hi" -v g="$wc_lo" -v h="$wc_hi" \
        'BEGIN{printf "\nratios pgwalrus/pg_receivewal: throughput %.2fx (medians; %.2f–%.2fx pairing the extremes), CPU per GiB %.2fx (%.2f–%.2fx)\n", pw/ww, a/d, b/c, wc/pc, g/f, h/e}'
}

for p in ${PARTS//,/ }; do "part_$p"; done
