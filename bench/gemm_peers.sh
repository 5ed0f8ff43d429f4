#!/usr/bin/env bash
# How close can a GEMM on this machine come to the FP32 FMA peak at the model's shapes: our
# BF16 GEMM beside OpenBLAS sgemm and oneDNN's F32 and BF16 matmuls (weights pre-packed in
# their own layout), and the outer-product prototype in bench/matmul_packed.inc, alternating
# in one process, as fractions of the peak probed in the same run (bench/bench_gemm_peers.c).
# Then the rate each side sustains over a whole decode step's GEMMs with its weights streamed
# from DRAM (SQ_BENCH_GEMM_STREAM=1), ours beside oneDNN F32, at 64 rows (batch 64) and 256
# (a prefill's layers), two threads: the figures the model's batched fractions are made of.
#   bench/gemm_peers.sh [REPS] [ROWS,...] [THREADS,...] [STREAM_PASSES]
set -eu
cd "$(dirname "$0")/.."
bin=build/rel/bench/bench_gemm_peers
make -s "$bin"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" "${1:-7}" "${2:-64,256}" "${3:-1,2}"
for rows in 64 256; do
    SQ_BENCH_GEMM_STREAM=1 "$bin" "${4:-4}" "$rows" 2
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
