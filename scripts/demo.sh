#!/usr/bin/env bash
# make demo: one local region on loopback, initialised and unsealed, for
# trying oikos out. The key shares are kept in the demo directory: that is
# for a trial only; a real region hands each share to a different custodian.
set -euo pipefail

build=${1:-build}
dir=${OIKOS_DEMO_DIR:-$PWD/.demo}
port=${OIKOS_DEMO_PORT:-7700}
url="http://127.0.0.1:$port"
oikos="$build/oikos"
py=/usr/bin/python3

mkdir -p "$dir"
chmod 700 "$dir"
"$build/oikosd" --region local --listen "127.0.0.1:$port" --data "$dir/data" \
    --log-file "$dir/oikosd.log" &
pid=$!
stop() {
    trap - INT TERM EXIT
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        wait "$pid" || true
    fi
    echo "demo: stopped"
}
trap stop INT TERM EXIT

for _ in $(seq 100); do
    "$oikos" operator status --url "$url" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { echo "demo: oikosd did not start; see $dir/oikosd.log" >&2; exit 1; }
    sleep 0.1
done

shares="$dir/dev-shares.json"
if [ ! -s "$shares" ]; then
    (umask 077 && "$oikos" operator init --url "$url" --shares 5 --threshold 3 --json >"$shares")
else
    for s in $("$py" -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["shares"][:3]))' "$shares"); do
        "$oikos" operator unseal --url "$url" "$s" >/dev/null
    done
fi

cat <<EOF2

  oikos demo: one region, initialised and unsealed, at $url

  WARNING: the key shares and the operator token are kept in
  $shares
  so that this demo can unseal itself. That is for trying out only: a real
  region hands each share to a different custodian and keeps none.

  Try:
    $oikos signup --country IN --url $url
    $oikos backup contacts README.md
    $oikos ls contacts
    $oikos restore contacts --dir /tmp/oikos-restored
    curl -s $url/metrics | grep oikos_objects

  Log: $dir/oikosd.log      Ctrl-C stops the region.
EOF2
wait "$pid"
