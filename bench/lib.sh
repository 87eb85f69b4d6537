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
            *) command -v "$t" >/dev/null || missing+=("$t") ;;
        esac
    done
    if [ "${#missing[@]}" -gt 0 ]; then apt-get update -qq && apt-get install -y -qq "${missing[@]}"; fi
}

# Builds the release binary and sets PGWALRUS (unless PGWALRUS is already set).
build_pgwalrus() {
    if [ -z "${PGWALRUS:-}" ]; then
        cargo build --release --locked -q -p pgwalrus
        PGWALRUS="$(pwd)/target/release/pgwalrus"
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

# The median of numbers on stdin (mawk has no asort).
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# timed_to FILE CMD…: runs CMD quietly under GNU time; FILE gets "wall user sys maxrss_kb".
timed_to() {
    local out="$1"
    shift
    /usr/bin/time -f '%e %U %S %M' -o "$out" "$@" >/dev/null 2>&1 || true
}
