#!/usr/bin/env bash
# Runs the sync, plan and reconcile benchmarks with two binaries alternately (OLD, NEW, OLD,
# NEW), in one session, so that a refactor is compared side by side on a noisy machine.
# Usage: bench/compare.sh OLD_BINARY NEW_BINARY [PAIRS]   (prints each script's Markdown table)
set -euo pipefail
old=$1 new=$2 pairs=${3:-2}
here=$(cd "$(dirname "$0")" && pwd)
for pair in $(seq 1 "$pairs"); do
    for side in old new; do
        binary=$old; [ "$side" = new ] && binary=$new
        echo "## pair $pair, $side ($binary)"
        python3 "$here/sync_bench.py" --binary "$binary" --runs 3
        python3 "$here/plan_bench.py" --binary "$binary" --runs 3 --work /tmp/pb
        python3 "$here/reconcile_bench.py" --binary "$binary" --rounds 3 --work /tmp/rb
    done
done
