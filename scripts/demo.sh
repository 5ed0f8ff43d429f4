#!/usr/bin/env bash
# make demo: the whole ScaleQuest method on the tiny world, from scratch, through one config:
#   scalequest run examples/demo.yaml
# tiny-world problems -> our own BPE tokenizer -> a small Llama solver (SFT) -> QFT -> raw
# questions -> rewrites by the world's oracle (Figures 9/10) -> QPO -> the question pool ->
# language and solvability filters (the oracle judges, Figure 11) -> dedup, decontamination
# against the held-out set -> difficulty scorer (trained on the solver's fail rates) and
# sampling -> 5 responses per question -> an outcome reward model (trained on the solver's graded
# responses) keeps the best -> the dataset -> SFT of the student base (the QFT model) -> its
# accuracy on 500 held-out problems beside the base's. Then the funnel, the eval table and
# report.html. Sized for about 15 minutes on 2 otherwise idle cores. A second `make demo`
# starts from scratch again; `scalequest run examples/demo.yaml` alone picks up where a run
# stopped and skips what is up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
SQ=${SQ:-build/rel/scalequest}
CONFIG=${DEMO_CONFIG:-examples/demo.yaml}
# no OMP_WAIT_POLICY here: scalequest waits passively at OpenMP joins unless OMP_WAIT_POLICY
# or GOMP_SPINCOUNT is set (docs/engine.md, "Threads on a shared machine")

[ -x "$SQ" ] || { echo "demo: $SQ is missing; run make first" >&2; exit 1; }
W=$(sed -n 's/^run_dir: *\([^ #]*\).*/\1/p' "$CONFIG")
[ -n "$W" ] || { echo "demo: $CONFIG has no run_dir" >&2; exit 1; }
[ "${DEMO_KEEP:-0}" = 1 ] || rm -rf "$W"
t0=$(date +%s)
"$SQ" run "$CONFIG"
"$SQ" report "$W" --quiet
# The layout of the earlier demo, for the scripts that build on it (qpo-world.sh, reward-world.sh).
for m in solver qft; do [ -d "$W/models/$m" ] && ln -sfn "models/$m" "$W/$m"; done
for f in train test; do [ -f "$W/data/$f.jsonl" ] && ln -sfn "data/$f.jsonl" "$W/$f.jsonl"; done

echo
echo "== funnel (questions in and out of each stage)"
for s in qgen filter_lang filter_solvable dedup decontaminate difficulty_score difficulty_sample respond reward export; do
    f="$W/$s.jsonl"
    [ -f "$f" ] || continue
    n=$(wc -l <"$f")
    if [ -n "${prev:-}" ]; then
        awk -v s="$s" -v a="$prev" -v b="$n" 'BEGIN { printf "  %-18s %6d -> %6d  (%.1f%% dropped)\n", s, a, b, a ? 100 * (a - b) / a : 0 }'
    else
        printf '  %-18s %16d  (generated)\n' "$s" "$n"
    fi
    prev=$n
done
echo
echo "== eval: the student base before and after SFT on the synthetic dataset"
if [ -f "$W/eval/results.json" ]; then
    python3 -c '
import json, os, sys
r = json.load(open(sys.argv[1]))
b = json.load(open(sys.argv[2]))["benchmarks"] if os.path.exists(sys.argv[2]) else {}
for name, s in r["benchmarks"].items():  # results.json holds percent
    base = b.get(name)
    was = "%4d/%-4d = %5.1f%%" % (base["correct"], base["n"], base["accuracy"]) if base else "(not measured)"
    print("  %-8s base %s  ->  student %4d/%-4d = %5.1f%%" % (name, was, s["correct"], s["n"], s["accuracy"]))
' "$W/eval/results.json" "$W/eval_base/results.json"
else
    echo "  (no eval results)"
fi
echo
echo "demo: done in $(( $(date +%s) - t0 ))s; report: $W/report.html; manifest: $W/manifest.json"
