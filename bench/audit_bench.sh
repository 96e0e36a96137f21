#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# audit_bench.sh BUILD_DIR [ENTRIES]: the audit log's benchmark (issue 5).
# 1. BUILD_DIR/bench_audit fills a fresh region's log to ENTRIES entries
#    (default 1,000,000) and measures durable appends, one entry per durable
#    commit from 192 threads (three times the HTTP pool of the benchmarks' oikosd);
# 2. oikosd serves that region on 127.0.0.1, is unsealed with its share, and
#    wrk asks it for inclusion proofs of random leaves (bench/audit_proof.lua)
#    for 10 s with 64 connections.
# Talks to 127.0.0.1 only; bounded in time; removes its directory at the end.
set -euo pipefail

build=${1:?usage: bench/audit_bench.sh BUILD_DIR [ENTRIES]}
entries=${2:-1000000}
here=$(cd "$(dirname "$0")" && pwd)
for tool in wrk curl; do
    command -v "$tool" >/dev/null || { echo "audit_bench: '$tool' is missing" >&2; exit 1; }
done
dir=$(mktemp -d /tmp/oikos-audit-bench.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

echo "== appends (${entries} entries)"
"$build/bench_audit" --dir "$dir" --entries "$entries" --threads 192 --seconds 10

echo "== inclusion proofs over HTTP"
"$build/oikosd" --region bench --data "$dir" --listen 127.0.0.1:0 --log-file "$dir/oikosd.log" \
    --log-level warn &
pid=$!
port=
for _ in $(seq 1 300); do
    port=$(grep -o 'event=listening .*url=http://127.0.0.1:[0-9]*' "$dir/oikosd.log" 2>/dev/null |
           sed 's/.*://' | tail -1 || true)
    [ -n "$port" ] && break
    sleep 0.1
done
# --log-level warn hides the listening line: ask the kernel which port it took
if [ -z "$port" ]; then
    port=$(ss -ltnp 2>/dev/null | grep "pid=$pid," | grep -o '127.0.0.1:[0-9]*' | head -1 | sed 's/.*://')
fi
[ -n "$port" ] || { echo "audit_bench: oikosd did not start" >&2; cat "$dir/oikosd.log" >&2; exit 1; }
url="http://127.0.0.1:$port"
share=$(cat "$dir/share")
curl -sf -X POST -H 'Content-Type: application/json' -d "{\"share\":\"$share\"}" \
    "$url/v1/sys/unseal" >/dev/null
size=$(curl -sf "$url/v1/audit/head" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["tree_size"])')
echo "tree size $size"
BENCH_TREE_SIZE=$size wrk -t2 -c64 -d10s --latency -s "$here/audit_proof.lua" "$url" |
    tee "$dir/wrk.out" | grep -E 'Requests/sec|Latency|Non-2xx|BENCH_JSON' || true
rps=$(grep 'Requests/sec' "$dir/wrk.out" | awk '{print $2}')
echo "BENCH_AUDIT_PROOFS {\"tree_size\": $size, \"inclusion_proofs_per_s\": ${rps:-0}}"
