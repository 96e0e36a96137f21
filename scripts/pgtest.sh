#!/usr/bin/env bash
# A private PostgreSQL cluster for tests and benchmarks, never a system one:
# initdb in DIR, listening on 127.0.0.1:PORT only, run as the postgres user
# when started by root (PostgreSQL refuses to run as root).
#
#   scripts/pgtest.sh start DIR PORT   prints the admin URL once it accepts connections
#                                      (PORT 0: a free port); also written to DIR/url
#   scripts/pgtest.sh run DIR CMD...   runs CMD with a fresh database of the cluster,
#                                      dropped afterwards: OIKOS_TEST_STORE_URL names it,
#                                      OIKOS_TEST_PG_ADMIN and OIKOS_TEST_PG_DIR the cluster
#   scripts/pgtest.sh stop DIR
set -euo pipefail

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "pgtest: PostgreSQL server not installed (scripts/deps.sh)" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: pgtest.sh start DIR PORT | run DIR CMD... | stop DIR" >&2; exit 2; }

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
    # Port 0: a port free when asked; another process may take it first, so retry.
    tries=1
    [ "$port" = 0 ] && tries=5
    for try in $(seq "$tries"); do
        p=$port
        [ "$p" = 0 ] && p=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-p $p -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on -c synchronous_commit=on" \
            start >/dev/null; then
            echo "postgresql://oikos@127.0.0.1:$p/postgres" >"$dir/url"
            cat "$dir/url"
            exit 0
        fi
    done
    cat "$dir/server.log" >&2
    exit 1
    ;;
run)
    shift 2
    [ $# -gt 0 ] || { echo "usage: pgtest.sh run DIR CMD..." >&2; exit 2; }
    admin=$(cat "$dir/url")
    db="t_$$_$(date +%s%N)"
    psql -X -q -v ON_ERROR_STOP=1 "$admin" -c "CREATE DATABASE $db" >/dev/null
    trap 'psql -X -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
    OIKOS_TEST_STORE_URL="${admin%/postgres}/$db" OIKOS_TEST_PG_ADMIN="$admin" OIKOS_TEST_PG_DIR="$dir" "$@"
    ;;
stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    fi
    ;;
*)
    echo "usage: pgtest.sh start DIR PORT | run DIR CMD... | stop DIR" >&2
    exit 2
    ;;
esac
