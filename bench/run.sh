#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run.sh BUILD_DIR: runs the oikos benchmarks against the programs of
# BUILD_DIR (make bench builds build/bench in Release and calls this).
# Each figure is measured beside its baseline in the same run; the table
# is printed at the end and written to BUILD_DIR/results.json.
# See docs/bench.md. Bounded in time; talks to 127.0.0.1 only.
set -euo pipefail

build=${1:?usage: bench/run.sh BUILD_DIR [bench.py options]}
shift
here=$(cd "$(dirname "$0")" && pwd)
for arg in "$@"; do # --help: the options, and nothing run
    case "$arg" in -h | --help) exec /usr/bin/python3 "$here/bench.py" "$build" --help ;; esac
done

for tool in wrk curl dd df; do
    command -v "$tool" >/dev/null || { echo "bench: '$tool' is missing (make deps)" >&2; exit 1; }
done
# The Debian python (standard library only): the first python3 on PATH may differ.
/usr/bin/python3 "$here/bench.py" "$build" "$@"
# The other areas' benchmarks, each against its own baselines (docs/bench.md).
echo "bench: CardDAV against Radicale and Xandikos" >&2
/usr/bin/python3 "$here/carddav_bench.py" "$build"
echo "bench: the audit log at 1,000,000 entries" >&2
"$here/audit_bench.sh" "$build"
echo "bench: moving accounts between regions" >&2
/usr/bin/python3 "$here/migrate_bench.py" "$build" --accounts 10000
