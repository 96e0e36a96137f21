#!/usr/bin/env bash
# A private PostgreSQL cluster for tests and benchmarks, never a system one:
# initdb in DIR, listening on 127.0.0.1:PORT only, run as the postgres user
# when started by root (PostgreSQL refuses to run as root).
#
#   scripts/pgtest.sh start DIR PORT   prints the admin URL once it accepts connections
#   scripts/pgtest.sh stop DIR
set -euo pipefail

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "pgtest: PostgreSQL server not installed (scripts/deps.sh)" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: pgtest.sh start DIR PORT | stop DIR" >&2; exit 2; }

case "$cmd" in
start)
    port=${3:?port}
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    chmod 700 "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_owner "$bin/initdb" -D "$dir/data" -A trust -U oikos -E UTF8 >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on -c synchronous_commit=on" \
        start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgresql://oikos@127.0.0.1:$port/postgres"
    ;;
stop)
    [ -f "$dir/data/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
*)
    echo "usage: pgtest.sh start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
