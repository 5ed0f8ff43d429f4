#!/usr/bin/env bash
# Runs every test binary (build/san/tests/test_*) and every peer comparison
# (tests/peers/test_*.py, with the peer Python from scripts/install-deps.sh), then prints
# one closing line: "N passed, N failed, N skipped".
#   tests/run.sh [FILTER]   — only test files whose name contains FILTER
set -u
cd "$(dirname "$0")/.."
filter="${1:-}"
log=build/test-log.txt
mkdir -p build
: >"$log"
pass=0 fail=0 skip=0
peer_py="${SQ_PEER_PYTHON:-$HOME/.cache/scalequest/peers/bin/python}"
export SQ_CLI="${SQ_CLI:-$PWD/build/san/scalequest}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export SQ_TEST_BUILD="$PWD/build/san"

count() { # reads a test's output; updates the counters; echoes the lines that matter
    local name=$1 status=$2 out=$3 p f s
    p=$(grep -c '^PASS ' <<<"$out")
    f=$(grep -c '^FAIL ' <<<"$out")
    s=$(grep -c '^SKIP ' <<<"$out")
    pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
    grep -E '^(FAIL|SKIP|  also) ' <<<"$out"
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        # A crash or sanitizer report outside any case still counts as a failure.
        echo "FAIL $name: exited with status $status"
        tail -n 30 <<<"$out" | sed 's/^/    /'
        fail=$((fail + 1))
    fi
}

for t in build/san/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    [ -n "$filter" ] && [[ "$name" != *"$filter"* ]] && continue
    start=$(date +%s)
    out=$(timeout "${SQ_TEST_TIMEOUT:-900}" "$t" 2>&1)
    status=$?
    echo "== $name ($(( $(date +%s) - start ))s)" | tee -a "$log"
    printf '%s\n' "$out" >>"$log"
    count "$name" "$status" "$out"
done

for t in tests/peers/test_*.py; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .py)
    [ -n "$filter" ] && [[ "$name" != *"$filter"* ]] && continue
    if [ ! -x "$peer_py" ]; then
        echo "SKIP $name: peer Python not installed (scripts/install-deps.sh installs it)"
        skip=$((skip + 1))
        continue
    fi
    start=$(date +%s)
    out=$(PYTHONPATH=tests/peers timeout "${SQ_TEST_TIMEOUT:-900}" "$peer_py" "$t" 2>&1)
    status=$?
    echo "== $name ($(( $(date +%s) - start ))s)" | tee -a "$log"
    printf '%s\n' "$out" >>"$log"
    count "$name" "$status" "$out"
done

echo "full log: $log"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
