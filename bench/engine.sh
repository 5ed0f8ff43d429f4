#!/usr/bin/env bash
# Engine speed on random-weight BF16 models of two shapes (Qwen2-0.5B, stories15M), each
# figure beside this machine's limit measured in the same run: batch-1 decode against the
# memory-read bound (weight bytes per token / measured read bandwidth), batched generation
# and prefill against the measured FP32 FMA peak; plus peak RSS.
# The models are generated in a temporary folder and deleted afterwards.
#   bench/engine.sh [qwen05|stories15m ...]   (default: stories15m; the Qwen2-0.5B shape's
#   figures, beside llama.cpp and the same limits, are in bench/engine_vs_llamacpp.sh, so
#   `make bench` does not run that 1 GB model twice)
set -eu
cd "$(dirname "$0")/.."
bin=build/rel/bench/bench_engine
make -s "$bin"
shapes="${*:-stories15m}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sq-bench-engine.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
limits=$("$bin" limits)
echo "$limits" | grep -v '^limits '
read -r _ bw peak <<<"$(echo "$limits" | grep '^limits ')"
for s in $shapes; do
    "$bin" make "$tmp/$s" "$s"
    "$bin" run "$tmp/$s" "$bw" "$peak"
    rm -rf "${tmp:?}/$s"
done
