#!/usr/bin/env bash
# The engine's attention alone at long context, batched kernel against the earlier
# per-(token, head) loop, alternating in one process (bench/bench_attention.c), for each KV
# cache type. Prints the load average beside the figures: the machine may be shared.
#   bench/attention.sh [REPS]   (default 5; the best of REPS runs of each side)
set -eu
cd "$(dirname "$0")/.."
bin=build/rel/bench/bench_attention
make -s "$bin"
for t in f32 f16 bf16; do
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    "$bin" "$t" "${1:-5}"
done
