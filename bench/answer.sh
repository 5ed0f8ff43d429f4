#!/usr/bin/env bash
# The answer side: respond's shared prefill against independent requests, reward scoring
# against the engine's prefill (bench/bench_answer.c), and the share of an eval run spent
# grading (stories260K on 40 questions of each of the five benchmarks, 64 new tokens each;
# results.json's grading_seconds / run_seconds). Prints the load average beside the figures.
set -eu
cd "$(dirname "$0")/.."
bin=build/rel/bench/bench_answer
make -s "$bin"
make -s build/rel/scalequest
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sq-bench-answer.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" "$tmp/models"
assets=${SQ_ASSETS:-../shared/assets}
if [ -f "$assets/models/stories260K.gguf" ]; then
    build/rel/scalequest eval --model "$assets/models/stories260K.gguf" --chat-template none --data-dir "$assets/data" \
        --limit 40 --max-tokens 64 --out "$tmp/eval" --quiet
    awk -F'"grading_seconds":' '{ split($2, a, ","); g = a[1]; split($0, b, "\"run_seconds\":"); r = b[2] + 0;
        printf "eval grading %.4f s of a %.2f s run: %.3f%% (goal < 1%%)\n", g, r, 100 * g / r }' "$tmp/eval/results.json"
else
    echo "eval grading: SKIP (no stories260K under $assets)"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
