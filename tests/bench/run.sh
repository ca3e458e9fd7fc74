#!/usr/bin/env bash
# make bench: print benchmark figures as "bench <name> <value> <unit>" lines.
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR}
cd "$(dirname "$0")"
/usr/bin/python3 bench_raft.py --build "$build"
"$build/bench_agenda"
/usr/bin/python3 bench_edge.py
