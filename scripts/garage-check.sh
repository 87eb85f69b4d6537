#!/usr/bin/env bash
# pgwalrus against a 3-node Garage cluster (issue 14, "A distributed store"): a real
# PostgreSQL 15 primary under pgbench, `receive --archive s3://…` into Garage with one of the
# three nodes killed in the middle of the run and started again later, then `verify` on the
# bucket and a byte comparison of every segment restored from the bucket with the spool's
# (and pg_wal's) copy. Garage ignores create-only writes (If-None-Match: *), so this is also
# where the probe (refused, exit 2) and `--s3-single-writer` are checked.
#
#   scripts/garage-check.sh
#
# GARAGE   the garage binary (default .cache/garage/bin/garage; install it with
#          `cargo install garage --locked --root .cache/garage`, 20–30 minutes)
# PGWALRUS the pgwalrus binary (default: build the release binary)
# GARAGE_CHECK_PGBENCH_SECONDS  length of the pgbench run (default 20)
# GARAGE_CHECK_KILL=0  leave node 2 running (the same run without the failure, to compare)
#
# Progress and logs on stderr, a Markdown summary on stdout. Exit 0 when every check passed,
# 1 when one failed, 2 when the check could not run. Everything it starts (three Garage
# nodes, PostgreSQL, the receiver) is stopped by pid on exit, its directories removed
# (kept when GARAGE_CHECK_KEEP=1).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

BIN=/usr/lib/postgresql/15/bin
GARAGE="${GARAGE:-$(pwd)/.cache/garage/bin/garage}"
PGBENCH_SECS="${GARAGE_CHECK_PGBENCH_SECONDS:-20}"
if [ ! -x "$GARAGE" ]; then
    echo "no garage binary at $GARAGE; install it once (about 20–30 minutes):" >&2
    echo "    cargo install garage --locked --root .cache/garage" >&2
    echo "or point GARAGE at one." >&2
    exit 2
fi
[ -x "$BIN/postgres" ] || { echo "PostgreSQL 15 is not installed in $BIN (scripts/test.sh installs it)" >&2; exit 2; }
build_pgwalrus

log() { printf '[%s] %s\n' "$(date -u +%T)" "$*" >&2; }
t_start="$(date +%s)"
declare -a RESULTS=()
failed=0
pass() { RESULTS+=("| $1 | passed | $2 |"); log "PASS $1: $2"; }
fail() { RESULTS+=("| $1 | **FAILED** | $2 |"); log "FAIL $1: $2"; failed=1; }

# ---------------------------------------------------------------- the primary, cleanup
bench_primary "$BIN" pgwalrus-garage max_wal_size=1GB checkpoint_timeout=1h
gdir="$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" pgwalrus-garage-nodes.XXXXXX)"
declare -a GPID=("" "" "")
recv_pid=""
cleanup() {
    local rc=$? p
    set +e
    [ -n "$recv_pid" ] && kill -9 "$recv_pid" 2>/dev/null
    for p in "${GPID[@]}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    stop_server "$BENCH_BIN" "$work/data" "$pid"
    if [ "${GARAGE_CHECK_KEEP:-0}" = 1 ]; then
        log "kept $work and $gdir"
    else
        rm -rf "$work" "$gdir"
    fi
    exit "$rc"
}
trap cleanup EXIT

# ---------------------------------------------------------------- the Garage cluster
secret="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
admin_token="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
region=garage
declare -a RPC=() S3P=() ADM=()
for i in 0 1 2; do
    RPC+=("$(free_port)"); S3P+=("$(free_port)"); ADM+=("$(free_port)")
    mkdir -p "$gdir/n$i/meta" "$gdir/n$i/data"
    cat > "$gdir/n$i.toml" <<EOF
metadata_dir = "$gdir/n$i/meta"
data_dir = "$gdir/n$i/data"
db_engine = "sqlite"
replication_factor = 3
consistency_mode = "consistent"
rpc_bind_addr = "127.0.0.1:${RPC[$i]}"
rpc_public_addr = "127.0.0.1:${RPC[$i]}"
rpc_secret = "$secret"

[s3_api]
api_bind_addr = "127.0.0.1:${S3P[$i]}"
s3_region = "$region"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:${ADM[$i]}"
admin_token = "$admin_token"
EOF
    chmod 600 "$gdir/n$i.toml"
done
g() { local n="$1"; shift; "$GARAGE" -c "$gdir/n$n.toml" "$@"; }
start_node() {
    "$GARAGE" -c "$gdir/n$1.toml" server >>"$gdir/n$1.log" 2>&1 &
    GPID[$1]=$!
}
wait_node() { # n: until its RPC answers; prints its full id (id@addr)
    local k id
    for k in $(seq 1 100); do
        # `node id` reads the key from disk; `status` needs the node's RPC to answer.
        if g "$1" status >/dev/null 2>&1 && id="$(g "$1" node id -q 2>/dev/null)" && [ -n "$id" ]; then
            echo "$id"; return 0
        fi
        kill -0 "${GPID[$1]}" 2>/dev/null || { echo "garage node $1 died:" >&2; tail -20 "$gdir/n$1.log" >&2; return 1; }
        sleep 0.2
    done
    echo "garage node $1 did not answer; its log:" >&2; tail -20 "$gdir/n$1.log" >&2; return 1
}
log "starting 3 Garage nodes in $gdir ($("$GARAGE" --version 2>/dev/null | head -1 || echo garage))"
declare -a NODE_ID=()
for i in 0 1 2; do start_node "$i"; done
for i in 0 1 2; do NODE_ID+=("$(wait_node "$i")") || exit 2; done
g 0 node connect "${NODE_ID[1]}" >/dev/null
g 0 node connect "${NODE_ID[2]}" >/dev/null
for k in $(seq 1 100); do
    [ "$(g 0 status 2>/dev/null | grep -c 'NO ROLE ASSIGNED' || true)" = 3 ] && break
    sleep 0.2
done
for i in 0 1 2; do g 0 layout assign -z dc1 -c 1G "${NODE_ID[$i]%@*}" >/dev/null; done
g 0 layout apply --version 1 >/dev/null
key_out="$(g 0 key create pgwalrus-check)"
AK="$(awk -F': *' '/Key ID/ {print $2; exit}' <<<"$key_out" | tr -d ' ')"
SK="$(awk -F': *' '/Secret key/ {print $2; exit}' <<<"$key_out" | tr -d ' ')"
[ -n "$AK" ] && [ -n "$SK" ] || { echo "could not read the key from garage key create:" >&2; echo "$key_out" >&2; exit 2; }
BUCKET=pgwalrus-check
g 0 bucket create "$BUCKET" >/dev/null
g 0 bucket allow --read --write --owner "$BUCKET" --key "$AK" >/dev/null
export AWS_ACCESS_KEY_ID="$AK" AWS_SECRET_ACCESS_KEY="$SK" AWS_REGION="$region"
export AWS_ENDPOINT_URL="http://127.0.0.1:${S3P[0]}"
unset AWS_ENDPOINT_URL_S3 AWS_PROFILE AWS_DEFAULT_REGION AWS_SESSION_TOKEN
for k in $(seq 1 100); do
    code="$(curl -s -o /dev/null -w '%{http_code}' "$AWS_ENDPOINT_URL/$BUCKET" || true)"
    [ "$code" != 000 ] && break
    sleep 0.2
done
[ "$code" != 000 ] || { echo "Garage's S3 API does not answer at $AWS_ENDPOINT_URL" >&2; exit 2; }
# s3_list PREFIX: the keys under PREFIX in the bucket (a LIST signed by curl), one a line.
s3_list() {
    local out q
    q="$(sed 's#/#%2F#g' <<<"$1")"
    out="$(curl -sS --fail-with-body --aws-sigv4 "aws:amz:$region:s3" --user "$AK:$SK" \
        -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
        "$AWS_ENDPOINT_URL/$BUCKET?list-type=2&max-keys=1000&prefix=$q")" ||
        { echo "LIST of $1 failed: $out" >&2; return 1; }
    grep -o '<Key>[^<]*</Key>' <<<"$out" | sed -e 's/<Key>//' -e 's#</Key>##' || true
}
log "cluster up: nodes ${NODE_ID[*]}; S3 on ${S3P[*]}, bucket $BUCKET, key $AK"
g 0 status >&2

sysid="$(psql_ -c 'SELECT system_identifier FROM pg_control_system()')"
psql_ -c "SELECT pg_create_physical_replication_slot('garage', true)" >/dev/null
psql_ -c "SELECT pg_create_physical_replication_slot('refused', true)" >/dev/null
mkdir -p "$work/spool" "$work/spool-refused" "$work/cache" "$work/restored" "$work/verify-tmp"

# ---------------------------------------------------------------- a. the probe
log "a. receive --archive s3://$BUCKET/refused without --s3-single-writer"
rc=0
timeout 120 "$PGWALRUS" receive -D "$work/spool-refused" -d "$CONN" -S refused \
    --archive "s3://$BUCKET/refused" 2>"$work/refused.log" || rc=$?
cat "$work/refused.log" >&2
vrc=0
"$PGWALRUS" verify "s3://$BUCKET/refused" >"$work/verify-refused.log" 2>&1 || vrc=$?
cat "$work/verify-refused.log" >&2
msg="$(grep -iE 'create-only|if-none-match|single-writer' "$work/refused.log" | head -1 || true)"
refused_keys="$(s3_list refused/)" || exit 2
log "keys under refused/ after the refused run: ${refused_keys:-none}"
wal_keys="$(grep -cE '/(wal|partial|history)/' <<<"$refused_keys" || true)"
listed="LIST of refused/: $(grep -c . <<<"$refused_keys" || true) key(s), $wal_keys of WAL${refused_keys:+ (\`$(paste -sd' ' <<<"$refused_keys")\`)}"
if [ "$rc" = 2 ] && [ -n "$msg" ] && [ "$vrc" != 0 ] && [ "$wal_keys" = 0 ] && ! grep -qiE '[0-9A-F]{24}' "$work/verify-refused.log"; then
    pass "a. probe refuses Garage" "receive exit 2: \`${msg:0:200}\`; verify of the prefix exit $vrc: \`$(head -c 160 "$work/verify-refused.log" | tr '\n' ' ')\`; bucket info: $listed"
else
    fail "a. probe refuses Garage" "receive exit $rc (expected 2), message: \`$(tail -c 300 "$work/refused.log" | tr '\n' ' ')\`; verify exit $vrc: \`$(head -c 200 "$work/verify-refused.log" | tr '\n' ' ')\`"
fi

# ---------------------------------------------------------------- b. receive under load, a node killed
PREFIX=db1
ARCH="s3://$BUCKET/$PREFIX"
log "b. receive --archive $ARCH --s3-single-writer --ship-partial-interval 1, pgbench, node 2 killed mid-run"
"$PGWALRUS" receive -D "$work/spool" -d "$CONN" -S garage --archive "$ARCH" \
    --s3-single-writer --ship-partial-interval 1 2>"$work/receive.log" &
recv_pid=$!
sleep 2
kill -0 "$recv_pid" 2>/dev/null || { cat "$work/receive.log" >&2; fail "b. receive" "the receiver exited at start"; exit 1; }
"$BIN/pgbench" -i -s 5 -q -h "$work" -p "$port" -U postgres postgres >"$work/pgbench-init.log" 2>&1
t_load="$(date +%s)"
"$BIN/pgbench" -c 2 -T "$PGBENCH_SECS" -h "$work" -p "$port" -U postgres postgres >"$work/pgbench.log" 2>&1 &
bench_pid=$!
kill_at=$((PGBENCH_SECS / 3)); restart_at=$((PGBENCH_SECS * 3 / 4))
sleep "$kill_at"
kill_lsn="$(psql_ -c 'SELECT pg_current_wal_lsn()')"
kill_seg="$(psql_ -c 'SELECT pg_walfile_name(pg_current_wal_lsn())')"
kill_ts="$(date -u +%T)"
KILL="${GARAGE_CHECK_KILL:-1}"
if [ "$KILL" = 1 ]; then
kill -9 "${GPID[2]}"; wait "${GPID[2]}" 2>/dev/null || true; GPID[2]=""
fi
log "killed (GARAGE_CHECK_KILL=$KILL) Garage node 2 (${NODE_ID[2]%%@*}) at ${kill_at}s into pgbench, WAL at $kill_lsn ($kill_seg)"
# WAL that completes segments while the node is down: a bulk insert on top of pgbench, then
# wait (node still down) until the segment before the current one is in the bucket.
psql_ -c "CREATE TABLE IF NOT EXISTS filler (id bigint, pad text)" \
      -c "INSERT INTO filler SELECT g, repeat('x', 200) FROM generate_series(1, 150000) g" >/dev/null
down_seg="$(psql_ -c "SELECT pg_walfile_name(pg_current_wal_lsn() - 16777216)")"
down_ok=0
while [ $(( $(date +%s) - t_load )) -lt $((restart_at + 30)) ]; do
    if "$PGWALRUS" restore "$down_seg" "$work/probe-down" -D "$work/cache" --archive "$ARCH" \
        --system-identifier "$sysid" >/dev/null 2>&1; then down_ok=1; break; fi
    sleep 0.5
done
rm -f "$work/probe-down"
log "with node 2 down: segment $down_seg in the bucket: $down_ok (at $(( $(date +%s) - t_load ))s)"
now=$(( $(date +%s) - t_load )); [ "$now" -ge "$restart_at" ] || sleep $((restart_at - now))
restart_at=$(( $(date +%s) - t_load ))
restart_lsn="$(psql_ -c 'SELECT pg_current_wal_lsn()')"
restart_ts="$(date -u +%T)"; restart_epoch="$(date +%s)"
if [ "$KILL" = 1 ]; then
start_node 2
wait_node 2 >/dev/null || exit 2
fi
log "started Garage node 2 again at ${restart_at}s, WAL at $restart_lsn"
# Observed, not judged: one restore through node 2's own S3 API right after its restart.
early=0
AWS_ENDPOINT_URL="http://127.0.0.1:${S3P[2]}" "$PGWALRUS" restore "$down_seg" "$work/probe-early" -D "$work/cache" \
    --archive "$ARCH" --system-identifier "$sysid" 2>"$work/restore-early.log" || early=$?
rm -f "$work/probe-early"
early_msg="$(grep -oE 'Could not reach quorum[^<]*|Not connected[^,&]*' "$work/restore-early.log" | head -1 || true)"
log "restore of $down_seg through node 2 right after its restart: exit $early ${early_msg:+($early_msg)}"
wait "$bench_pid" || { cat "$work/pgbench.log" >&2; fail "b. pgbench" "pgbench failed"; }
tps="$(grep -oE 'tps = [0-9.]+' "$work/pgbench.log" | head -1 || true)"
kill -0 "$recv_pid" 2>/dev/null || { cat "$work/receive.log" >&2; fail "b. receive" "the receiver exited during the run"; exit 1; }
last_seg="$(psql_ -c 'SELECT pg_walfile_name(pg_current_wal_lsn())')"
psql_ -c 'SELECT pg_switch_wal()' >/dev/null
end_lsn="$(psql_ -c 'SELECT pg_current_wal_lsn()')"
log "switched WAL: last complete segment $last_seg; waiting until it is in the bucket"
t0="$(date +%s)"; in_bucket=0
while [ $(( $(date +%s) - t0 )) -lt 120 ]; do
    if "$PGWALRUS" restore "$last_seg" "$work/probe-$last_seg" -D "$work/cache" --archive "$ARCH" \
        --system-identifier "$sysid" >/dev/null 2>&1; then in_bucket=1; break; fi
    kill -0 "$recv_pid" 2>/dev/null || break
    sleep 1
done
rm -f "$work/probe-$last_seg"
kill -TERM "$recv_pid"
rrc=0; wait "$recv_pid" || rrc=$?; recv_pid=""
cat "$work/receive.log" >&2
retries="$(grep -ciE 'retry|retrying|error|fail' "$work/receive.log" || true)"
reqs="$(grep -o 'requests: .*' "$work/receive.log" | tail -1 || true)"
shipped_down="$(awk -v a="$kill_ts" -v b="$restart_ts" '/completed segment/ { t = substr($1, 12, 8); if (t >= a && t < b) printf "%s ", $NF }' "$work/receive.log")"
if [ "$in_bucket" = 1 ] && [ "$rrc" = 0 ] && [ "$down_ok" = 1 ]; then
    pass "b. receive under pgbench, node 2 killed ($KILL) and restarted" "$tps; segments completed while node 2 was down: ${shipped_down:-none}; $down_seg read back from the bucket with node 2 still down; $last_seg in the bucket $(( $(date +%s) - t0 ))s after pg_switch_wal; SIGTERM exit 0; $retries log lines mentioning retry/error; $reqs"
else
    fail "b. receive under pgbench, node 2 killed ($KILL) and restarted" "segment completed with node 2 down ($down_seg) in the bucket: $down_ok; last segment $last_seg in the bucket: $in_bucket; receiver exit $rrc; last log lines: \`$(tail -5 "$work/receive.log" | tr '\n' ' ' | head -c 600)\`"
fi
conflict_keys="$(s3_list "$PREFIX/$sysid/conflicts/")"
if [ -z "$conflict_keys" ]; then
    pass "b. nothing in conflicts/" "LIST of $PREFIX/$sysid/conflicts/: empty"
else
    fail "b. nothing in conflicts/" "$conflict_keys"
fi

# ---------------------------------------------------------------- c. verify the bucket
log "c. verify $ARCH"
vrc=0
TMPDIR="$work/verify-tmp" "$PGWALRUS" verify "$ARCH" >"$work/verify.log" 2>&1 || vrc=$?
cat "$work/verify.log" >&2
if [ "$vrc" = 0 ]; then
    pass "c. verify s3://…" "exit 0: \`$(tail -3 "$work/verify.log" | tr '\n' ' ' | head -c 300)\`"
else
    fail "c. verify s3://…" "exit $vrc: \`$(tail -10 "$work/verify.log" | tr '\n' ' ' | head -c 800)\`"
fi

# ---------------------------------------------------------------- d. byte equality
# Until the restarted node is connected to both others again (Garage's peering retries with a
# backoff; the time it took is reported), then through its S3 API: it missed the writes
# made while it was stopped.
t_heal0="$(date +%s)"; healed=0
while [ $(( $(date +%s) - t_heal0 )) -lt 180 ]; do
    st="$(g 2 status 2>/dev/null || true)"
    if [ -n "$st" ] && ! grep -qiE 'failed nodes|unavailable' <<<"$st" &&
        [ "$(grep -c 'cargo:' <<<"$st" || true)" = 3 ]; then healed=1; break; fi
    sleep 1
done
heal_secs=$(( $(date +%s) - restart_epoch ))
log "node 2 connected to both others: $healed, $heal_secs s after its restart"
g 2 status >&2 || true
export AWS_ENDPOINT_URL="http://127.0.0.1:${S3P[2]}"
log "d. every complete segment of the spool restored from the bucket (through node 2, $AWS_ENDPOINT_URL) and compared"
n=0; n_pgwal=0; bad=()
first=""; last=""
for f in $(ls "$work/spool" | grep -E '^[0-9A-F]{24}$' | sort); do
    [ -n "$first" ] || first="$f"; last="$f"
    out="$work/restored/$f"
    r=0
    "$PGWALRUS" restore "$f" "$out" -D "$work/cache" --archive "$ARCH" \
        --system-identifier "$sysid" 2>>"$work/restore.log" || r=$?
    if [ "$r" != 0 ]; then bad+=("$f: restore exit $r"); continue; fi
    cmp -s "$out" "$work/spool/$f" || bad+=("$f: differs from the spool")
    if [ -f "$work/data/pg_wal/$f" ]; then
        cmp -s "$out" "$work/data/pg_wal/$f" || bad+=("$f: differs from pg_wal")
        n_pgwal=$((n_pgwal + 1))
    fi
    n=$((n + 1))
    rm -f "$out"
done
if [ "$n" -gt 0 ] && [ "${#bad[@]}" = 0 ]; then
    pass "d. byte equality" "$n segments ($first … $last) restored from the bucket through node 2's S3 API identical to the spool, $n_pgwal of them also to pg_wal"
else
    fail "d. byte equality" "$n segments, problems: ${bad[*]:-none compared}; $(tail -3 "$work/restore.log" 2>/dev/null | tr '\n' ' ')"
fi
all_keys="$(s3_list "")"
summary_keys="$(sed -E 's#/[^/]*$#/#' <<<"$all_keys" | sort | uniq -c | awk '{printf "%s%s ×%s", sep, $2, $1; sep="; "}')"

# ---------------------------------------------------------------- chunks left behind
# docs/object-storage.md: "once the complete segment is in the bucket its chunks are deleted".
# A chunk that the LIST still shows is read back: Garage keeps listing objects deleted while
# a node was down once that node is back (a GET answers 404 NoSuchKey); such a "ghost" is
# reported, not counted as left behind.
s3_status() { # KEY: the HTTP status of a GET of KEY
    curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:$region:s3" --user "$AK:$SK" \
        -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
        "$AWS_ENDPOINT_URL/$BUCKET/$1" || true
}
left=""; ghosts=""
for k in $(grep -E '/partial/' <<<"$all_keys" || true); do
    seg="$(cut -d/ -f4 <<<"$k")"
    grep -qx "$PREFIX/$sysid/wal/$seg" <<<"$all_keys" || continue
    code="$(s3_status "$k")"
    if [ "$code" = 404 ]; then ghosts="$ghosts $k"; else left="$left $k($code)"; fi
done
n_ghosts="$(wc -w <<<"$ghosts")"
if [ -z "$left" ]; then
    pass "e. chunks of complete segments removed" "no chunk of a complete segment can be read; $n_ghosts key(s) still listed by Garage's LIST but 404 on GET (deleted while node 2 was down)${ghosts:+: \`${ghosts# }\`}"
else
    fail "e. chunks of complete segments removed" "$(wc -w <<<"$left") chunk(s) left although their segment is complete in the bucket: \`${left# }\`"
fi

# ---------------------------------------------------------------- summary
t_end="$(date +%s)"
echo "### pgwalrus against a 3-node Garage cluster ($(date -u +%F))"
echo
echo "$("$GARAGE" --version 2>/dev/null | head -1), replication factor 3, consistency \`consistent\`, 3 nodes on 127.0.0.1;" \
    "PostgreSQL $(psql_ -c 'SHOW server_version' | awk '{print $1}'); $("$PGWALRUS" --version)."
if [ "$KILL" = 1 ]; then
echo "Garage node 2 (not the one serving S3) killed with SIGKILL ${kill_at}s into \`pgbench -c 2 -T $PGBENCH_SECS\` (WAL at $kill_lsn, segment $kill_seg)" \
    "and started again at ${restart_at}s (WAL at $restart_lsn); segment $down_seg completed and was read back from the bucket while it was down."
else
echo "GARAGE_CHECK_KILL=0: no node stopped (same load; $down_seg read back at the point where node 2 would be down)."
fi
echo "A restore through node 2 right after its restart: exit $early${early_msg:+ (\`$early_msg\`)}; node 2 was connected to both others again ${heal_secs} s after its restart (healed: $healed). Wall time $((t_end - t_start)) s."
echo
echo "| check | result | evidence |"
echo "|---|---|---|"
printf '%s\n' "${RESULTS[@]}"
echo
echo "Bucket after the run (LIST): $summary_keys${ghosts:+ (of which $n_ghosts listed but deleted: GET 404)}"
exit "$failed"
