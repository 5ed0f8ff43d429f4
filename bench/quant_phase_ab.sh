#!/usr/bin/env bash
# Two engine builds side by side on quantized GGUF files: batch-1 decode, a 256-token prefill
# and batch-32 decode (one 128-token prompt), the same bench_shapes shapes as
# engine_vs_llamacpp.sh, runs alternating A, B, A, B... so that the machine's load falls on
# both alike. Prints the load, then per shape and thread count the best and median rate of
# each build, B / A, and the median tokens per CPU-second (less swayed by the load, though a
# spinning wait counts as CPU).
#   bench/quant_phase_ab.sh A_BENCH_SHAPES B_BENCH_SHAPES MODEL.gguf... 
#   env: SQ_AB_REPS (3), SQ_AB_THREADS ("2 1"), SQ_AB_GEN (32: batch-32 tokens per sequence)
set -euo pipefail
a=$1 b=$2
shift 2
reps=${SQ_AB_REPS:-3} gen=${SQ_AB_GEN:-32}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
rate() { # how line: tokens/s, then tokens per CPU-second
    awk -v how="$1" '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}}
        END {n = (how == "prefill") ? v["prompt_tokens"] : v["decode_tokens"]
             print n / ((how == "prefill") ? v["t_forward"] : v["t_decode"]), n / v["cpu_s"]}' <<<"$2"
}
stats() { sort -g | awk '{x[NR] = $1} END {printf "%.1f %.1f", x[NR], x[int((NR + 1) / 2)]}'; }
for m in "$@"; do
    for th in ${SQ_AB_THREADS:-2 1}; do
        for shape in b1 prefill b32; do
            case $shape in
            b1) args=(1 16 1 64 0.7 0) ;;
            prefill) args=(1 256 1 1 0.7 0) ;;
            b32) args=(1 128 32 "$gen" 0.7 0) ;;
            esac
            ra="" rb=""
            for ((i = 0; i < reps; i++)); do
                ra+="$(rate "$shape" "$(OMP_NUM_THREADS=$th "$a" run "$m" "${args[@]}" 2>/dev/null)")"$'\n'
                rb+="$(rate "$shape" "$(OMP_NUM_THREADS=$th "$b" run "$m" "${args[@]}" 2>/dev/null)")"$'\n'
            done
            read -r ab am <<<"$(printf '%s' "$ra" | cut -d' ' -f1 | stats)"
            read -r bb bm <<<"$(printf '%s' "$rb" | cut -d' ' -f1 | stats)"
            read -r _ ac <<<"$(printf '%s' "$ra" | cut -d' ' -f2 | stats)"
            read -r _ bc <<<"$(printf '%s' "$rb" | cut -d' ' -f2 | stats)"
            printf '%-20s %dt %-8s A best %7.1f med %7.1f  B best %7.1f med %7.1f  B/A %.2f  tok/CPU-s A %7.1f B %7.1f (%.2f)\n' \
                "$(basename "$m" | cut -c1-20)" "$th" "$shape" "$ab" "$am" "$bb" "$bm" "$(awk -v x="$bm" -v y="$am" 'BEGIN {print x / y}')" \
                "$ac" "$bc" "$(awk -v x="$bc" -v y="$ac" 'BEGIN {print x / y}')"
        done
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
