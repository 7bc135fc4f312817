#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, and runs every test.
#
# A test that hangs must not hang CI for its 90 minutes without a word: past
# SYNCWRIGHT_TEST_LIMIT seconds (default 1500) the tests' processes and every thread's stack
# are printed, and the tests are killed, which fails this script.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests
limit=${SYNCWRIGHT_TEST_LIMIT:-1500}
swift test "$@" &
tests=$!
(
    for ((second = 0; second < limit; second++)); do
        sleep 1
        kill -0 "$tests" 2>/dev/null || exit 0
    done
    echo "scripts/test.sh: the tests are still running after ${limit} s; their processes, then each thread's stack:" >&2
    ps -eo pid,ppid,etimes,args --forest >&2 || true
    for pid in $(pgrep -f 'PackageTests\.xctest' || true); do
        echo "--- stacks of $pid" >&2
        timeout 120 gdb -p "$pid" -batch -ex 'thread apply all bt' >&2 2>&1 || true
    done
    pkill -KILL -f 'PackageTests\.xctest' || true
) &
watchdog=$!
status=0
wait "$tests" || status=$?
wait "$watchdog" || true
exit "$status"
