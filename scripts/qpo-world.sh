#!/usr/bin/env bash
# QPO on the tiny world, end to end with no network: from the QFT model of `make demo`,
#   qgen (N questions) -> optimize with the world's oracle (Figures 9/10) -> train --mode dpo
#   -> qgen again from the QPO model,
# then measures both question sets the same way: the share the world can solve (its own
# parser, sq_world_parse; and the oracle's Figure-11 verdict through `filter solvable`), and
# how hard they are (mean reasoning steps of the solvable ones; the oracle's Figure-12 rating
# through `difficulty judge`). Run `make demo` (or scripts/demo.sh) first; sizes and the DPO
# settings come from the environment (QPO_* below). Outputs land in build/qpo-world/.
set -euo pipefail
cd "$(dirname "$0")/.."
SQ=${SQ:-build/rel/scalequest}
D=${QPO_DEMO_DIR:-build/demo}
W=${QPO_DIR:-build/qpo-world}
N=${QPO_N_QUESTIONS:-2000}
THREADS=${QPO_THREADS:-2}
MAX_TOKENS=${QPO_MAX_TOKENS:-160}   # world questions are 20-80 tokens; the paper's cap is 512
TEMP=${QPO_TEMPERATURE:-1.0}        # the paper's qgen sampling: temperature 1.0, top-p 0.99
TOP_P=${QPO_TOP_P:-0.99}
DIRS=${QPO_DIRECTIONS:-mix}
# DPO: beta 0.1 and one epoch as the paper; its lr 5e-7 / 128 pairs is for a 7B model (QPO_LR,
# QPO_PAIRS_PER_STEP to use them: at 5e-7 a model this small does not move in ~15 steps).
BETA=${QPO_BETA:-0.1}
LR=${QPO_LR:-2e-4}
PAIRS=${QPO_PAIRS_PER_STEP:-16}
EPOCHS=${QPO_EPOCHS:-1}
SEED=${QPO_SEED:-7}
SEQ_LEN=${QPO_SEQ_LEN:-192}         # one pair side per row: the prefix and a question
# no OMP_WAIT_POLICY here: scalequest waits passively at OpenMP joins unless OMP_WAIT_POLICY
# or GOMP_SPINCOUNT is set (docs/engine.md, "Threads on a shared machine")

[ -x "$SQ" ] || { echo "qpo-world: $SQ is missing; run make first" >&2; exit 1; }
[ -d "$D/qft" ] && [ -f "$D/train.jsonl" ] || { echo "qpo-world: $D/qft is missing; run make demo first" >&2; exit 1; }
rm -rf "$W"
mkdir -p "$W"
t0=$(date +%s)
stage() { echo; echo "== [$(( $(date +%s) - t0 ))s] $*"; }

stage "qgen: $N questions from the QFT model (temperature $TEMP, top-p $TOP_P, at most $MAX_TOKENS tokens)"
"$SQ" qgen --model "$D/qft" --n-questions "$N" --out "$W/qft.jsonl" --temperature "$TEMP" --top-p "$TOP_P" \
    --max-tokens "$MAX_TOKENS" --seed "$SEED" --threads "$THREADS" 2>&1 | grep '^qgen:' 

stage "optimize: Figure 9/10 rewrites by the world's oracle ($DIRS), QPO pairs"
"$SQ" optimize --model "world:$D/train.jsonl" --in "$W/qft.jsonl" --out "$W/pairs.jsonl" --generator "$D/qft" \
    --directions "$DIRS" --seed "$SEED" 2>&1 | grep -v '^\s*$'
head -n 1 "$W/pairs.jsonl" | cut -c 1-400

rows=$((PAIRS * 2))
stage "QPO: train --mode dpo from the QFT model, beta $BETA, lr $LR, $PAIRS pairs a step, $EPOCHS epoch(s)"
"$SQ" train --mode dpo --model "$D/qft" --data "$W/pairs.jsonl" --out "$W/qpo" --beta "$BETA" --lr "$LR" \
    --batch "$rows" --seq-len "$SEQ_LEN" --epochs "$EPOCHS" --warmup-ratio 0.1 --threads "$THREADS" --seed "$SEED" --quiet
tail -n 1 "$W/qpo/train_log.jsonl"

stage "qgen: $N questions from the QPO model (same seed and sampling)"
"$SQ" qgen --model "$W/qpo" --n-questions "$N" --out "$W/qpo.jsonl" --temperature "$TEMP" --top-p "$TOP_P" \
    --max-tokens "$MAX_TOKENS" --seed "$SEED" --threads "$THREADS" 2>&1 | grep '^qgen:' 

stage "measure: the same checks on both question sets"
measure() { # name file
    local name=$1 f=$2 kept dropped ws steps solv rating
    kept=$(wc -l <"$f")
    dropped=$(wc -l <"${f%.jsonl}.dropped.jsonl")
    ws=$("$SQ" world-score --in "$f" --mode questions --samples 0 | head -n 1 | sed 's/^well-formed questions: \([0-9]*\)\/.*/\1/')
    steps=$("$SQ" world-score --in "$f" --mode questions --samples 0 | sed -n 's/^mean steps of the well-formed: //p')
    "$SQ" filter solvable --model world: --in "$f" --out "$W/$name.solvable.jsonl" --keep-unknown --quiet
    solv=$(grep -c '"verdict":"yes"' "$W/$name.solvable.jsonl" || true)
    "$SQ" difficulty judge --model world: --in "$f" --out "$W/$name.rated.jsonl" --quiet
    rating=$(awk -F'"difficulty_rating":' 'NF>1{split($2,a,/[,}]/); s+=a[1]; n++} END{printf "%.3f", n?s/n:0}' "$W/$name.rated.jsonl")
    printf '%-4s sampled %d, kept %d (dropped %d: %s); solvable by the world %d = %.1f%% of sampled, %.1f%% of kept (oracle Fig-11 yes: %d); mean steps of the solvable %s; mean Fig-12 rating %s\n' \
        "$name" "$N" "$kept" "$dropped" "$(grep -o '"drop_reason":"[a-z]*"' "${f%.jsonl}.dropped.jsonl" | sort | uniq -c | awk '{printf "%s%s %d", (NR>1?", ":""), substr($2,15), $1}' | tr -d '"')" \
        "$ws" "$(awk -v a="$ws" -v b="$N" 'BEGIN{print b?100*a/b:0}')" "$(awk -v a="$ws" -v b="$kept" 'BEGIN{print b?100*a/b:0}')" \
        "$solv" "$steps" "$rating"
    echo "$name $ws $steps $rating" >>"$W/numbers.txt"
}
: >"$W/numbers.txt"
measure qft "$W/qft.jsonl" | tee "$W/summary.txt"
measure qpo "$W/qpo.jsonl" | tee -a "$W/summary.txt"
read -r _ ws0 st0 r0 < <(sed -n 1p "$W/numbers.txt")
read -r _ ws1 st1 r1 < <(sed -n 2p "$W/numbers.txt")
awk -v a="$ws0" -v b="$ws1" -v s0="$st0" -v s1="$st1" -v n="$N" 'BEGIN {
    printf "QPO vs QFT: solvable %.1f%% -> %.1f%% (%s), mean steps %.3f -> %.3f (%s)\n", 100*a/n, 100*b/n,
        (b > a ? "more often solvable" : (b == a ? "no change" : "LESS often solvable")), s0, s1,
        (s1 > s0 ? "harder" : (s1 == s0 ? "no change" : "EASIER")) }' | tee -a "$W/summary.txt"
echo "qpo-world: done in $(( $(date +%s) - t0 ))s; outputs in $W"
