#!/usr/bin/env bash
# Stage overhead of qgen and difficulty score: each stage's tokens/s as a share of the engine
# (batched generation) or the scorer (batched prefill) doing the same work without the stage,
# on the same random-weight model (dim 256, 4 layers), timed alternately in one process.
#   bench/pipeline.sh [N] [T]   (N questions, T new tokens each; default 64 x 64)
set -eu
cd "$(dirname "$0")/.."
bin=build/rel/bench/bench_pipeline
make -s "$bin"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sq-bench-pipeline.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" "$tmp" "${1:-64}" "${2:-64}" 3
