#!/usr/bin/env bash
# Runs every test of pgwalrus on a fresh Debian machine: installs what the tests need
# (PostgreSQL 15 from Debian, majors 14/16/17/18 from npm), checks formatting, lints and docs,
# runs unit tests once and the integration suites once per PostgreSQL major.
#
#   scripts/test.sh                 # everything
#   PGWALRUS_MAJORS="15 18" scripts/test.sh   # integration suites against a subset
#   PGWALRUS_FUZZ_SECONDS=30 scripts/test.sh  # and fuzz every target for 30 s (scripts/fuzz.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_apt+=(postgresql-15)
[ -x /usr/lib/postgresql/15/bin/pg_receivewal ] || need_apt+=(postgresql-client-15)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
# The compression tests decompress pgwalrus's files with the standard tools.
command -v gzip >/dev/null || need_apt+=(gzip)
command -v lz4 >/dev/null || need_apt+=(lz4)
command -v zstd >/dev/null || need_apt+=(zstd)
# The daemon's /metrics and the documented alert rules are checked with promtool.
command -v promtool >/dev/null || need_apt+=(prometheus)
if [ "${#need_apt[@]}" -gt 0 ]; then
    log "installing Debian packages: ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi
# Debian's package starts a cluster on 5432; the tests never use it, and it would only cost memory.
if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
    $SUDO pg_ctlcluster 15 main stop 2>/dev/null || true
fi

# Every major is installed (the WAL decoder's tests read WAL of all of them);
# PGWALRUS_MAJORS only narrows the per-major integration runs.
MAJORS="${PGWALRUS_MAJORS:-14 15 16 17 18}"
log "installing PostgreSQL majors: 14 15 16 17 18"
declare -A BINDIR
while read -r major dir; do
    BINDIR[$major]="$dir"
done < <(scripts/install-pg-majors.sh 14 15 16 17 18 | grep -E '^[0-9]+ /')

# The object-storage tests run against s3s-fs, a real S3 server in Rust that enforces
# create-only writes (0.15+ needs a newer Rust); built once into .cache (about 2.5 minutes).
S3S_FS=.cache/s3s-fs/bin/s3s-fs
if [ ! -x "$S3S_FS" ]; then
    log "installing s3s-fs 0.14.1 into .cache/s3s-fs"
    cargo install s3s-fs --version 0.14.1 --features binary --locked --root .cache/s3s-fs
fi
export PGWALRUS_S3S_FS="$PWD/$S3S_FS"

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
log "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked -q

log "fuzz targets: every one has a saved corpus, replayed by the unit tests below"
scripts/fuzz.sh check

log "unit tests and PostgreSQL 15 integration tests"
PGWALRUS_PG_BINDIR="${BINDIR[15]:-/usr/lib/postgresql/15/bin}" cargo test --workspace --locked

for major in $MAJORS; do
    [ "$major" = 15 ] && continue
    log "integration tests against PostgreSQL $major (${BINDIR[$major]})"
    PGWALRUS_PG_BINDIR="${BINDIR[$major]}" cargo test --workspace --locked --test integration --test cli --test harness --test engine
done
# A short coverage-guided run of every fuzz target (stable toolchain, `cargo fuzz -s none`),
# opt-in: installing cargo-fuzz and building the instrumented targets take minutes.
if [ "${PGWALRUS_FUZZ_SECONDS:-0}" -gt 0 ]; then
    log "fuzzing every target for ${PGWALRUS_FUZZ_SECONDS}s"
    scripts/fuzz.sh run "$PGWALRUS_FUZZ_SECONDS"
fi
log "all tests passed"
