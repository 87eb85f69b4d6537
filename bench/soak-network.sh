#!/usr/bin/env bash
# Soak test of the network faults: the integration test
# `receive_network::receive_rides_out_cuts_stalls_trickles_slow_readers_and_half_open_connections`
# run for longer. One `pgwalrus receive` streams from a real server through a fault-injecting
# TCP proxy (pgwalrus_testkit::TcpFaultProxy) under pgbench while the proxy cuts the
# connection at random bytes (mid-stream and inside the start-up exchange), stalls it,
# trickles it, reads it slowly and lets the server vanish without a FIN; after every fault
# the archive must catch up with the server, equal pg_wal byte for byte with no gap, and
# pass `pgwalrus verify` over the WAL around the fault. The suite runs 27 faults per
# PostgreSQL major; this runs until both --minutes and --faults are reached, samples the
# receiver's resident memory (VmRSS, VmHWM from /proc/PID/status) after every fault, and
# prints the table of faults by kind and the memory samples.
#
#   bench/soak-network.sh [--minutes N] [--faults N] [--seed N] [--debug]
#
# Defaults: 30 minutes and 1000 faults, the release build (`cargo test --release`, which
# builds the pgwalrus binary the test runs in release too); --debug uses the test profile
# (no release build to wait for). Environment: PGWALRUS_PG_BINDIR (server bindir; default
# Debian's PostgreSQL 15), CARGO_TARGET_DIR. The cluster and archive live in the testkit's
# directory (PGWALRUS_TESTKIT_DIR, default /dev/shm) and are removed at the end. Exit status
# 0 when every check passed; the full output is kept in the log file it names.
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=30; FAULTS=1000; SEED=""; PROFILE=(--release)
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) MINUTES="$2"; shift 2 ;;
        --faults) FAULTS="$2"; shift 2 ;;
        --seed) SEED="$2"; shift 2 ;;
        --debug) PROFILE=(); shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

log="$(mktemp -p "${TMPDIR:-/tmp}" soak-network.XXXXXX.log)"
echo "soak-network: at least $FAULTS faults and $MINUTES min against $("${PGWALRUS_PG_BINDIR:-/usr/lib/postgresql/15/bin}/postgres" --version); log $log" >&2
start=$SECONDS
status=0
PGWALRUS_SOAK_FAULTS="$FAULTS" PGWALRUS_SOAK_SECONDS=$((MINUTES * 60)) ${SEED:+PGWALRUS_TEST_SEED="$SEED"} \
    cargo test --locked "${PROFILE[@]}" -p pgwalrus --test cli \
    receive_network::receive_rides_out_cuts_stalls_trickles_slow_readers_and_half_open_connections \
    -- --exact --nocapture >"$log" 2>&1 || status=$?
if [ "$status" != 0 ]; then
    tail -40 "$log" >&2
    echo "soak-network: FAILED after $((SECONDS - start)) s (exit $status); full output in $log" >&2
    exit 1
fi
# The test's report: the seed, the summary line, the RSS samples and the table.
grep -E '^(seed |[0-9]+ network faults|receiver RSS|\|)' "$log"
echo "soak-network: ok in $((SECONDS - start)) s (build included); full output in $log"
