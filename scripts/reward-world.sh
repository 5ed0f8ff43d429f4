#!/usr/bin/env bash
# The answer side of ScaleQuest in the tiny world, with an outcome reward model (ORM) of our own:
# the demo's solver (scripts/demo.sh) samples 5 responses per question; on questions it never
# saw in training, the responses are graded against the world's exact answers (1 right, 0
# wrong) and an ORM is trained on them (`train --mode regress`, starting from the solver's
# weights, on the very token ids that `reward` scores); then on the demo's 500 held-out
# questions it prints the accuracy of
#   - best-of-5 by the ORM's reward  (reward --select reward)
#   - a random pick of the 5          (reward --select random)
#   - nothing: the most common training answer, whatever the question (no model at all)
# and, for scale, majority vote and pass@5 (any of the 5 right). A question whose 5 responses
# all lack a final answer counts as wrong everywhere. Sizes through RW_* below.
set -euo pipefail
cd "$(dirname "$0")/.."
SQ=${SQ:-build/rel/scalequest}
W=${DEMO_DIR:-build/demo}
R=${RW_DIR:-$W/reward}
THREADS=${RW_THREADS:-2}
N_ORM=${RW_N_TRAIN:-800}
STEPS=${RW_STEPS:-300}
LR=${RW_LR:-1e-3}
MIXED=${RW_MIXED:-1}
KNOBS=(--min-steps 1 --max-steps 2 --max-number 20)
# no OMP_WAIT_POLICY here: scalequest waits passively at OpenMP joins unless OMP_WAIT_POLICY
# or GOMP_SPINCOUNT is set (docs/engine.md, "Threads on a shared machine")

for f in "$W/solver/config.json" "$W/test.jsonl" "$W/train.jsonl"; do
    [ -e "$f" ] || { echo "reward-world: $f is missing; run scripts/demo.sh first" >&2; exit 1; }
done
mkdir -p "$R"
t0=$(date +%s)
stage() { echo; echo "== [$(( $(date +%s) - t0 ))s] $*"; }
RESPOND=(--model "$W/solver" --n 5 --temperature 0.7 --top-p 0.95 --max-tokens 160 --instruction none
         --threads "$THREADS" --quiet)

stage "ORM data: $N_ORM new world questions (ids from 2000000 on), 5 responses each, graded 1/0"
"$SQ" world --n "$N_ORM" --seed 1 --start 2000000 "${KNOBS[@]}" --out "$R/orm_questions.jsonl"
"$SQ" respond "${RESPOND[@]}" --in "$R/orm_questions.jsonl" --out "$R/orm_responses.jsonl" --seed 11
"$SQ" reward --orm-data "$R/orm_all.jsonl" --tokenizer-from "$W/solver" --in "$R/orm_responses.jsonl" --gold-field answer
# Only questions whose 5 responses are neither all right nor all wrong: there a question's
# difficulty cannot explain the labels, so the model must learn which response is right (on
# all questions it learns mostly how hard a question is, which does not help pick among its
# own 5 responses).
if [ "$MIXED" = 1 ]; then
    awk -F'"id":"' '{ split($2, a, "#"); q = a[1]; v = ($0 ~ /"value":1}/); line[NR] = $0; qid[NR] = q;
                      if (v) pos[q] = 1; else neg[q] = 1 }
                    END { for (i = 1; i <= NR; i++) if (pos[qid[i]] && neg[qid[i]]) print line[i] }' \
        "$R/orm_all.jsonl" >"$R/orm.jsonl"
else
    cp "$R/orm_all.jsonl" "$R/orm.jsonl"
fi
echo "ORM data: $(wc -l <"$R/orm.jsonl") responses ($(grep -c '"value":1}' "$R/orm.jsonl") right)"

stage "ORM: train --mode regress from the solver, $STEPS steps"
rm -rf "$R/orm"
"$SQ" train --mode regress --model "$W/solver" --data "$R/orm.jsonl" --out "$R/orm" --batch 16 --seq-len 256 \
    --lr "$LR" --epochs 100 --warmup-ratio 0.05 --max-steps "$STEPS" --threads "$THREADS" --seed 4 --quiet
tail -n 1 "$R/orm/train_log.jsonl"

stage "held out: 5 responses to each of the demo's $(wc -l <"$W/test.jsonl") test questions"
"$SQ" respond "${RESPOND[@]}" --in "$W/test.jsonl" --out "$R/test_responses.jsonl" --seed 12
for sel in reward random majority gold; do
    model=(); [ "$sel" = reward ] && model=(--model "$R/orm" --chat-template "$W/solver")
    rm -f "$R/pick_$sel.jsonl" "$R/pick_$sel.dropped.jsonl"
    "$SQ" reward "${model[@]}" --select "$sel" --in "$R/test_responses.jsonl" --out "$R/pick_$sel.jsonl" \
        --gold-field answer --seed 5 --threads "$THREADS" --quiet
done

stage "accuracy on the held-out questions"
n=$(wc -l <"$W/test.jsonl")
acc() { # correct picks in a reward output, as a share of all n questions
    local c
    c=$("$SQ" grade --in "$1" --out - --gold-field answer --pred-field response --quiet | grep -c '"correct":true' || true)
    awk -v c="$c" -v n="$n" 'BEGIN { printf "%d/%d = %.1f%%", c, n, 100 * c / n }'
}
common=$(grep -o '"answer":"[^"]*"' "$W/train.jsonl" | sort | uniq -c | sort -rn | head -n 1 | awk '{print $2}')
hits=$(grep -c -F "$common" "$W/test.jsonl" || true)
{
    echo "best-of-5 by ORM reward: $(acc "$R/pick_reward.jsonl")"
    echo "random pick of the 5: $(acc "$R/pick_random.jsonl")"
    echo "nothing (always the most common training answer, $common): $(awk -v c="$hits" -v n="$n" 'BEGIN { printf "%d/%d = %.1f%%", c, n, 100 * c / n }')"
    echo "majority vote of the 5: $(acc "$R/pick_majority.jsonl")"
    echo "pass@5 (any of the 5 right): $(wc -l <"$R/pick_gold.jsonl")/$n"
} | tee "$R/summary.txt"
echo "reward-world: done in $(( $(date +%s) - t0 ))s; outputs in $R"
