#!/usr/bin/env bash
# Installs the Debian packages oikos needs to build, test and benchmark.
# Idempotent and quiet: does nothing when everything is already installed.
set -euo pipefail

pkgs=(
    build-essential cmake pkg-config
    libmicrohttpd-dev libsodium-dev libsqlite3-dev libjansson-dev libinih-dev
    libcurl4-openssl-dev libssl-dev libcmocka-dev
    python3-pytest wrk sqlite3 procps curl
    libexpat1-dev vdirsyncer radicale xandikos
    postgresql libpq-dev # the tests start private clusters (scripts/pgtest.sh), never the system one
)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages: ${missing[*]}; run as root or install them with apt-get" >&2
    exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
