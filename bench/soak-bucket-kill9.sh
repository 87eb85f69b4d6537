#!/usr/bin/env bash
# Soak test of the object-storage archive: the integration test
# `bucket::kill_9_with_a_store_failing_one_request_in_five_loses_and_overwrites_nothing`
# with many more kills. `pgwalrus receive --archive s3://…` is killed with kill -9 at random
# moments under pgbench while a fault proxy in front of s3s-fs fails one request in five
# (503s, resets, answers lost after the write committed, slow answers); at the end the
# bucket must have no gap, every segment byte-identical to pg_wal and to the spool, and
# nothing in the conflicts prefix. The suite runs it with 10 kills per PostgreSQL major.
#
#   bench/soak-bucket-kill9.sh [KILLS]        # default 200
#
# Environment: PGWALRUS_PG_BINDIR (server bindir; default Debian's PostgreSQL 15),
# PGWALRUS_TEST_SEED (replays a run), PGWALRUS_S3S_FS (default .cache/s3s-fs/bin/s3s-fs).
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS="${1:-200}"
export PGWALRUS_S3S_FS="${PGWALRUS_S3S_FS:-$(pwd)/.cache/s3s-fs/bin/s3s-fs}"
start=$SECONDS
PGWALRUS_SOAK_KILLS="$KILLS" cargo test --locked -p pgwalrus --test cli \
    bucket::kill_9_with_a_store_failing_one_request_in_five_loses_and_overwrites_nothing -- --exact --nocapture
echo "soak: $KILLS kills of receive --archive with 1 request in 5 failing: no gap, no overwrite, no conflict ($((SECONDS - start)) s)"
