#!/usr/bin/env bash
# make ablation: the paper's Figure 5 in miniature on the tiny world. Five datasets, each with
# the same number of final pairs, each used to fine-tune the same student base with the same
# recipe, over several seeds:
#   raw     questions from the solver itself, prompted with the bare user-turn prefix (Magpie-style)
#   qft     questions from the QFT model
#   qpo     questions from the QPO model
#   filter  QPO questions through the language and solvability filters, dedup, decontamination
#           against the test set, and difficulty sampling
#   reward  the filtered questions, 5 responses each, the reward model's best one kept
# Rows without reward selection take one response per question (the responder at T 0.7: what a
# random pick among 5 would be). For each dataset: solvability (the share of its questions the
# world can solve), difficulty (the world's mean step count of those) and the student's accuracy
# on the 500 held-out problems; and the share of its pairs whose answer is right (the world
# knows); then mean and spread over the seeds.
# The models (solver, QFT, QPO, difficulty scorer, reward model, student base) are the demo's:
# `scalequest run examples/demo.yaml` makes them first if they are missing (up-to-date stages are
# skipped). examples/ablation.yaml is the last row as one `scalequest run` config.
#   scripts/ablation.sh      (ABL_SEEDS="1 2 3" ABL_PAIRS=150 ABL_STEPS=40 ABL_EVAL_LIMIT=250)
set -euo pipefail
cd "$(dirname "$0")/.."
SQ=${SQ:-build/rel/scalequest}
SQ=$(realpath "$SQ")
DEMO=${ABL_DEMO:-build/demo}
W=${ABL_DIR:-build/ablation}
SEEDS=${ABL_SEEDS:-1 2 3}
K=${ABL_PAIRS:-150}          # final pairs per dataset
STEPS=${ABL_STEPS:-40}      # student SFT steps
ROWS=${ABL_ROWS:-raw qft qpo filter reward}
TH=${ABL_THREADS:-2}
LIMIT=${ABL_EVAL_LIMIT:-250} # held-out problems each student answers (0: all 500)
lim=(); [ "$LIMIT" -gt 0 ] && lim=(--limit "$LIMIT")
# no OMP_WAIT_POLICY here: scalequest waits passively at OpenMP joins unless OMP_WAIT_POLICY
# or GOMP_SPINCOUNT is set (docs/engine.md, "Threads on a shared machine")
[ -x "$SQ" ] || { echo "ablation: $SQ is missing; run make first" >&2; exit 1; }
if [ ! -d "$DEMO/models/rm" ] || [ ! -d "$DEMO/models/qpo" ]; then
    echo "ablation: making the demo's models first (scalequest run examples/demo.yaml)"
    "$SQ" run examples/demo.yaml
fi
M=$DEMO/models
TRAIN=$DEMO/data/train.jsonl TEST=$DEMO/data/test.jsonl
# The student: the demo's recipe (its base and options), with the ablation's step count.
STUDENT_BASE=${ABL_STUDENT_BASE:-$M/qft}
STUDENT_OPTS=(--batch 16 --seq-len 256 --lr 1.0e-3 --warmup-ratio 0.03 --schedule cosine --epochs 100
              --chat-template examples/chatml.jinja)
mkdir -p "$W"
res=$W/results.tsv
# The share of a dataset's pairs whose final answer is the world's answer to the question (the
# world's judge works it out; an unsolvable question counts as wrong), into DIR/correct.txt.
correctness() {
    local d=$1
    [ -f "$d/correct.txt" ] && return 0
    rm -f "$d/judged.jsonl" "$d/judged.dropped.jsonl"
    "$SQ" filter solvable --model "world:$TRAIN" --in "$d/final.jsonl" --out "$d/judged.jsonl" --keep-unknown \
        --threads "$TH" --quiet
    python3 - "$d/final.jsonl" "$d/judged.jsonl" >"$d/correct.txt" <<'PY'
import json, re, sys
final = [json.loads(l) for l in open(sys.argv[1])]
gold = {}
for l in open(sys.argv[2]):
    r = json.loads(l)
    m = re.findall(r"The answer is (-?\d+)\.", r.get("judge_reply", ""))
    if m:
        gold[r["id"]] = m[-1]
ok = 0
for r in final:
    m = re.findall(r"\\boxed\{(-?\d+)\}", r["response"])
    ok += bool(m) and gold.get(r["id"]) == m[-1]
print("%.1f" % (100.0 * ok / max(len(final), 1)))
PY
}
[ -f "$res" ] || printf 'row\tseed\tpairs\tsolvable\tsteps\taccuracy\n' >"$res"
t0=$(date +%s)
q() { "$SQ" "$@" --threads "$TH" --quiet; }
for seed in $SEEDS; do
    for row in $ROWS; do
        if grep -q "^$row	$seed	" "$res"; then continue; fi # done in an earlier, interrupted run
        d=$W/$row-$seed
        rm -rf "$d" && mkdir -p "$d"
        case $row in
            raw) gen=$M/solver ;;
            qft) gen=$M/qft ;;
            *) gen=$M/qpo ;;
        esac
        # enough questions that K survive: the filters keep about a third; qgen itself drops
        # what has no end (most of the raw solver's: it never learnt to write a question)
        # and the decontamination drops the world's template sentences (docs/ablation.md)
        case $row in raw) n=$((K * 20)) ;; filter | reward) n=$((K * 8)) ;; *) n=$((K * 2)) ;; esac
        q qgen --model "$gen" --out "$d/qgen.jsonl" --n-questions "$n" --temperature 1.0 --top-p 0.99 --max-tokens 128 --seed "$seed"
        qs=$d/qgen.jsonl
        if [ "$row" = filter ] || [ "$row" = reward ]; then
            q filter lang --in "$qs" --out "$d/lang.jsonl" --lang en --seed "$seed"
            q filter solvable --model "world:$TRAIN" --in "$d/lang.jsonl" --out "$d/solvable.jsonl" --seed "$seed"
            q dedup --in "$d/solvable.jsonl" --out "$d/dedup.jsonl" --seed "$seed"
            q decontaminate --in "$d/dedup.jsonl" --out "$d/decontam.jsonl" --benchmarks "world=$TEST" --seed "$seed"
            q difficulty score --model "$M/scorer" --in "$d/decontam.jsonl" --out "$d/score.jsonl" --seed "$seed"
            q difficulty sample --in "$d/score.jsonl" --out "$d/sample.jsonl" --min-score 0.05 --seed "$seed"
            qs=$d/sample.jsonl
        fi
        # up to 2K of them answered (5K for raw: respond drops a question none of whose answers
        # has a final answer, and the raw solver's are mostly such), the first K pairs kept
        have=$("$SQ" jsonl count "$qs")
        cap=$((2 * K)); [ "$row" = raw ] && cap=$((5 * K))
        want=$((have < cap ? have : cap))
        "$SQ" jsonl sample --n "$want" --seed "$seed" "$qs" --out "$d/questions.jsonl" --quiet
        if [ "$row" = reward ]; then
            q respond --model "$M/solver" --in "$d/questions.jsonl" --out "$d/respond.jsonl" --n 5 --temperature 0.7 \
                --top-p 0.95 --max-tokens 160 --instruction none --seed "$seed"
            q reward --model "$M/rm" --in "$d/respond.jsonl" --out "$d/reward.jsonl" --keep best \
                --chat-template examples/chatml.jinja --seed "$seed"
        else
            q respond --model "$M/solver" --in "$d/questions.jsonl" --out "$d/respond.jsonl" --n 1 --temperature 0.7 \
                --top-p 0.95 --max-tokens 160 --instruction none --seed "$seed"
            q reward --in "$d/respond.jsonl" --out "$d/reward.jsonl" --select random --seed "$seed"
        fi
        q export --in "$d/reward.jsonl" --out "$d/export.jsonl"
        "$SQ" jsonl head --n "$K" "$d/export.jsonl" --out "$d/final.jsonl" --quiet
        pairs=$("$SQ" jsonl count "$d/final.jsonl")
        [ "$pairs" -eq "$K" ] || { echo "ablation: $row seed $seed: $pairs pairs from $n questions, not $K" >&2; exit 1; }
        correctness "$d"
        # solvability and difficulty of the final questions, by the world
        ws=$("$SQ" world-score --in "$d/final.jsonl" --mode questions --train "$TRAIN" --samples 0 --quiet 2>&1)
        solv=$(sed -n 's/^[Ww]ell-formed questions: .* = \([0-9.]*\)%.*/\1/p' <<<"$ws")
        steps=$(sed -n 's/^mean steps of the well-formed: \([0-9.]*\).*/\1/p' <<<"$ws")
        q train --mode sft --model "$STUDENT_BASE" --data "$d/final.jsonl" --out "$d/student" --max-steps "$STEPS" \
            --save-every "$STEPS" "${STUDENT_OPTS[@]}" --seed "$seed"
        q eval --model "$d/student" --benchmarks "world=$TEST" --max-tokens 160 --instruction none "${lim[@]}" --out "$d/eval" >/dev/null
        acc=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["average"])' "$d/eval/results.json")
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$row" "$seed" "$pairs" "${solv:-?}" "${steps:-?}" "$acc" >>"$res"
        echo "ablation: $row seed $seed: solvable ${solv:-?}%, mean steps ${steps:-?}, student $acc% ($(( $(date +%s) - t0 ))s so far)"
    done
done
for d in "$W"/*-*/; do [ -f "$d/final.jsonl" ] && correctness "${d%/}"; done
# the student base itself, untrained on any of the datasets (once)
if [ ! -f "$W/base-eval/results.json" ]; then
    rm -rf "$W/base-eval"
    q eval --model "$STUDENT_BASE" --benchmarks "world=$TEST" --max-tokens 160 --instruction none "${lim[@]}" --out "$W/base-eval" >/dev/null
fi
python3 - "$res" "$W/base-eval/results.json" "$K" "$STEPS" "$W" <<'PY'
import json, os, statistics, sys
rows = {}
for line in open(sys.argv[1]).read().splitlines()[1:]:
    r, seed, pairs, solv, steps, acc = line.split("\t")
    c = os.path.join(sys.argv[5], "%s-%s" % (r, seed), "correct.txt")
    corr = float(open(c).read()) if os.path.exists(c) else float("nan")
    rows.setdefault(r, []).append((float(solv), float(steps), float(acc), corr))
def ms(v):
    return "%5.1f ± %4.1f" % (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0)
base = json.load(open(sys.argv[2]))["average"]
print("Figure 5 in miniature: %s pairs per dataset, student SFT %s steps; mean ± sd over seeds" % (sys.argv[3], sys.argv[4]))
print("%-8s %5s  %-14s %-14s %-14s %-14s" % ("dataset", "seeds", "solvable %", "mean steps", "answers right %",
                                             "student acc %"))
order = ["raw", "qft", "qpo", "filter", "reward"]
for r in [x for x in order if x in rows] + [x for x in rows if x not in order]:
    v = rows[r]
    print("%-8s %5d  %-14s %-14s %-14s %-14s" % (r, len(v), ms([x[0] for x in v]),
          "%5.2f ± %4.2f" % (statistics.mean([x[1] for x in v]), statistics.stdev([x[1] for x in v]) if len(v) > 1 else 0),
          ms([x[3] for x in v]), ms([x[2] for x in v])))
print("student base before any of them: %.1f%%" % base)
PY
echo "ablation: done in $(( $(date +%s) - t0 ))s; per-run rows in $res"
