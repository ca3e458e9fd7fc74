#!/usr/bin/env bash
# make bench: print benchmark figures as "bench <name> <value> <unit>" lines.
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR}
cd "$(dirname "$0")"
/usr/bin/python3 bench_raft.py --build "$build"
/usr/bin/python3 bench_edge.py
# last: it writes ~1.2 GB, whose writeback would still be competing with
# the edge benchmark for the disk and the two cores
"$build/bench_agenda"
