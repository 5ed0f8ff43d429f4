#!/usr/bin/env bash
# The BF16/F16 GEMM alone at the Qwen2-0.5B shapes (rows 8/32/64/256, 1 and 2 threads): the
# current kernel against the previous one, alternating in one process, as fractions of the
# FP32 FMA peak probed in the same run (bench/bench_matmul.c). Prints the load average.
#   bench/matmul.sh [REPS] [ROWS,...] [THREADS,...]
set -eu
cd "$(dirname "$0")/.."
bin=build/rel/bench/bench_matmul
make -s "$bin"
"$bin" "${1:-5}" "${2:-8,32,64,256}" "${3:-1,2}"
