# Shared helpers for the bench/ scripts (sourced, not run). Each script keeps its own
# workload and report; the machinery to build, start a throwaway server and time commands
# lives here once.

# Runs a server binary as the `postgres` OS user when we are root (the server refuses root).
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# make_workdir PREFIX [PARENT]: a private directory the postgres user can use.
make_workdir() {
    local dir
    dir="$(mktemp -d -p "${2:-${BENCH_DIR:-/var/tmp}}" "$1.XXXXXX")"
    chmod 755 "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    echo "$dir"
}

# Installs the given Debian packages when their command is missing: need_tools time gzip …
need_tools() {
    local missing=() t
    for t in "$@"; do
        case "$t" in
            time) [ -x /usr/bin/time ] || missing+=(time) ;;
            perf) command -v perf >/dev/null || missing+=(linux-perf) ;;
            *) command -v "$t" >/dev/null || missing+=("$t") ;;
        esac
    done
    if [ "${#missing[@]}" -gt 0 ]; then apt-get update -qq && apt-get install -y -qq "${missing[@]}"; fi
}

# Builds the release binary and sets PGWALRUS (unless PGWALRUS is already set).
build_pgwalrus() {
    if [ -z "${PGWALRUS:-}" ]; then
        cargo build --release --locked -q -p pgwalrus
        PGWALRUS="${CARGO_TARGET_DIR:-$(pwd)/target}/release/pgwalrus"
    fi
}

# start_server BIN DATA PORT SOCKDIR LOG [SETTING=VALUE …]: initdb (trust, superuser
# postgres) and start on 127.0.0.1 and SOCKDIR; prints the postmaster pid.
start_server() {
    local bin="$1" data="$2" port="$3" sock="$4" log="$5" opts="" s
    shift 5
    for s in "$@"; do opts="$opts -c $s"; done
    as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust ${INITDB_ARGS:-} >/dev/null
    as_pg "$bin/pg_ctl" -D "$data" -l "$log" -w start \
        -o "-p $port -k $sock -c listen_addresses=127.0.0.1 -c wal_level=replica$opts" >/dev/null
    head -1 "$data/postmaster.pid"
}

# stop_server BIN DATA PID: immediate stop, by pid as a last resort.
stop_server() {
    [ -n "${3:-}" ] || return 0
    as_pg "$1/pg_ctl" -D "$2" -m immediate stop >/dev/null 2>&1 || kill -9 "$3" 2>/dev/null || true
}

# bench_primary BIN PREFIX [SETTING=VALUE …]: the throwaway primary a comparison runs
# against. Sets `work` (private directory, data in $work/data), `port`, `pid` and `CONN`;
# `psql_` then runs SQL on it. Server and directory are removed on exit.
bench_primary() {
    BENCH_BIN="$1"
    work="$(make_workdir "$2")"
    shift 2
    port="$(free_port)"
    pid=""
    trap 'stop_server "$BENCH_BIN" "$work/data" "$pid"; rm -rf "$work"' EXIT
    pid="$(start_server "$BENCH_BIN" "$work/data" "$port" "$work" "$work/server.log" "$@")"
    CONN="host=127.0.0.1 port=$port user=postgres"
}

psql_() { "$BENCH_BIN/psql" -X -q -At -h "$work" -p "$port" -U postgres -d postgres "$@"; }
pgbench_() { "$BENCH_BIN/pgbench" -h "$work" -p "$port" -U postgres "$@" postgres; }

# wait_for SECONDS SQL: polls the bench primary until SQL returns `t`; fails after SECONDS.
wait_for() {
    local deadline=$((SECONDS + $1))
    until [ "$(psql_ -c "$2")" = t ]; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "timed out waiting for: $2" >&2; return 1; }
        sleep 0.2
    done
}

# The median of numbers on stdin (mawk has no asort).
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# timed CMD…: runs CMD quietly under GNU time; prints "wall user sys maxrss_kb".
timed() {
    local out
    out="$(mktemp)"
    /usr/bin/time -f '%e %U %S %M' -o "$out" "$@" >/dev/null 2>&1 || true
    tail -1 "$out"
    rm -f "$out"
}

# summarize "wall user sys rss"…: prints "median_wall median_cpu max_rss_kb" (cpu = user+sys).
summarize() {
    local wall cpu rss
    wall="$(printf '%s\n' "$@" | awk '{print $1}' | median)"
    cpu="$(printf '%s\n' "$@" | awk '{print $2+$3}' | median)"
    rss="$(printf '%s\n' "$@" | awk '{print $4}' | sort -n | tail -1)"
    echo "$wall $cpu $rss"
}

# proc_cpu PID: "user_s sys_s" the live process PID has used so far, all its threads
# together (/proc/PID/stat fields 14 and 15, in clock ticks).
proc_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); printf "%.2f %.2f\n", $12/hz, $13/hz}' "/proc/$1/stat"
}

# proc_children_cpu PID: "user_s sys_s" of PID's children that ended and were reaped so far
# (fields 16 and 17): for the postmaster, the CPU of the backends and walsenders that exited.
proc_children_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); printf "%.2f %.2f\n", $14/hz, $15/hz}' "/proc/$1/stat"
}

# proc_peak_rss_kb PID: the peak resident set size of a live process (VmHWM), in KiB.
proc_peak_rss_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# minmax [FMT]: "min–max" of the numbers on stdin, each printed with FMT (default %.2f).
minmax() { sort -g | awk -v f="${1:-%.2f}" 'NR == 1 {lo = $1} {hi = $1} END {printf f "–" f "\n", lo, hi}'; }
