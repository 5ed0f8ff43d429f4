#!/usr/bin/env bash
# Quantized GGUF weights: the engine on SmolLM2-135M-Instruct (Q4_1 layers, Q8_0 embeddings;
# the registry's real model) — batch-1 decode against the memory-read bound (weight bytes per
# token / read bandwidth measured in the same run), prefill, batch-32 aggregate, peak RSS —
# and llama.cpp (llama-cpp-python) on the same file in the same run, as ratios.
# Skips with a reason when the model is not installed.
set -eu
cd "$(dirname "$0")/.."
bin=build/rel/bench/bench_engine
make -s "$bin"
model=$(./build/rel/scalequest models 2>/dev/null | sed -n 's/^  installed: //p' | head -1)
if [ -z "$model" ]; then
    echo "  skipped: smollm2-135m-instruct not installed (scripts/install-deps.sh installs it)"
    exit 0
fi
threads=$(nproc)
echo "  load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $threads cores"
limits=$("$bin" limits)
read -r _ bw peak <<<"$(echo "$limits" | grep '^limits ')"
# line-buffered through a file, so a run cut short still shows the figures it reached
out=$(mktemp "${TMPDIR:-/tmp}/sq-bench-quant.XXXXXX")
trap 'rm -f "$out"' EXIT
SQ_BENCH_FIGURES="${SQ_BENCH_FIGURES:-b1,prefill,32}" stdbuf -oL "$bin" run "$model" "$bw" "$peak" | tee "$out"
ours=$(cat "$out")
py="${SQ_PEER_PYTHON:-$HOME/.cache/scalequest/peers/bin/python}"
if [ -x "$py" ]; then
    peer=$("$py" bench/quant_peer.py "$model" "$threads" 2>&1 || true)
    echo "$peer" | grep -v '^QUANT_PEER'
    read -r _ pdec ppre <<<"$(echo "$peer" | grep '^QUANT_PEER' || echo "QUANT_PEER 0 0")"
    odec=$(echo "$ours" | sed -n 's/.*decode, batch 1 *\([0-9.]*\) tok\/s.*/\1/p')
    opre=$(echo "$ours" | sed -n 's/.*prefill, 256 tokens *\([0-9.]*\) tok\/s.*/\1/p')
    awk -v a="$odec" -v b="$pdec" -v c="$opre" -v d="$ppre" 'BEGIN {
        if (b > 0 && a > 0) printf "  ratio to llama.cpp: decode batch 1 %.2fx", a / b;
        if (d > 0 && c > 0) printf ", prefill %.2fx", c / d;
        if (b > 0) printf "\n" }'
fi
# 8-bit activations (the default) against fp32 activations and llama.cpp's own benchmarks on
# the same file, alternately: batch-1 decode with 1 and 2 threads (llama-bench tg64) and
# batch-32 decode (llama-batched-bench, 32 sequences of 16 prompt + 32 new tokens). Each of
# ours also prints tokens per CPU-second, which a busy machine distorts less than wall time.
qb=build/rel/bench/bench_quant
make -s "$qb"
lb="${SQ_CACHE:-$HOME/.cache/scalequest}/llama.cpp-build/bin"
for t in 1 2; do
    "$qb" "$model" q8 "$t" 1 64
    [ -x "$lb/llama-bench" ] && "$lb/llama-bench" -m "$model" -t "$t" -p 0 -n 64 -r 3 2>/dev/null |
        awk -v t="$t" '/tg64/ { print "  llama-bench threads " t " batch 1: " $(NF-2) " tok/s" }'
    "$qb" "$model" f32 "$t" 1 64
done
"$qb" "$model" q8 "$threads" 32 32
[ -x "$lb/llama-batched-bench" ] &&
    "$lb/llama-batched-bench" -m "$model" -c 2048 -b 2048 -ub 512 -npp 16 -ntg 32 -npl 32 -t "$threads" 2>/dev/null |
    awk -F'|' '$2 ~ /^ *16 *$/ { gsub(/ /, "", $9); print "  llama-batched-bench batch 32: " $9 " tok/s (decode)" }'
"$qb" "$model" f32 "$threads" 32 32
echo "  load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
