#!/usr/bin/env bash
# The embedded default job, from scratch, on this machine: the tiny world's word problems ->
# our own BPE tokenizer -> a small Llama-shaped solver trained SFT (question -> solution) ->
# its greedy accuracy on 500 held-out problems against the most-common-answer baseline -> a
# QFT copy that writes new questions from the bare chat-template user-turn prefix, as the
# paper samples its instruct models -> the share of them that are
# well-formed world problems. Sized for about 5 minutes on 2 otherwise idle cores; every size can be
# changed through the environment (DEMO_* below). Outputs land in build/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
SQ=${SQ:-build/rel/scalequest}
W=${DEMO_DIR:-build/demo}
THREADS=${DEMO_THREADS:-2}
N_TRAIN=${DEMO_N_TRAIN:-30000}
N_TEST=${DEMO_N_TEST:-500}
VOCAB=${DEMO_VOCAB:-512}
SHAPE=${DEMO_SHAPE:-dim=128,layers=4,heads=4,kv_heads=2,ffn=352,seq=256}
SFT_STEPS=${DEMO_SFT_STEPS:-1000}
QFT_STEPS=${DEMO_QFT_STEPS:-200}
Q_TEMP=${DEMO_Q_TEMPERATURE:-0.7}
N_QUESTIONS=${DEMO_N_QUESTIONS:-200}
KNOBS=(--min-steps 1 --max-steps 2 --max-number 20)
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

[ -x "$SQ" ] || { echo "demo: $SQ is missing; run make first" >&2; exit 1; }
rm -rf "$W"
mkdir -p "$W"
t0=$(date +%s)
stage() { echo; echo "== [$(( $(date +%s) - t0 ))s] $*"; }

stage "world: $N_TRAIN training problems, $N_TEST held out (ids from 1000000 on)"
"$SQ" world --n "$N_TRAIN" --seed 1 "${KNOBS[@]}" --out "$W/train.jsonl"
"$SQ" world --n "$N_TEST" --seed 1 --start 1000000 "${KNOBS[@]}" --format chat --out "$W/test.jsonl"
"$SQ" world --n "$N_TRAIN" --seed 1 "${KNOBS[@]}" --format text --out "$W/corpus.txt"
head -n 1 "$W/train.jsonl"

stage "tokenizer: byte-level BPE, $VOCAB tokens, trained on the world's text, with ChatML's special tokens"
"$SQ" tokenizer-train --in "$W/corpus.txt" --vocab-size "$VOCAB" --special "<|endoftext|>" --special "<|im_start|>" \
    --special "<|im_end|>" --out "$W/tokenizer.json"
# The chat format: ChatML without a default system turn. Training writes it into each model
# folder's tokenizer_config.json, so generation renders prompts the same way.
cat >"$W/chat_template.jinja" <<'JINJA'
{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
JINJA

stage "solver: SFT of a random-init Llama ($SHAPE), $SFT_STEPS steps of 16 x 256 packed tokens"
"$SQ" train --mode sft --init-config "$SHAPE" --tokenizer "$W/tokenizer.json" --data "$W/train.jsonl" \
    --chat-template "$W/chat_template.jinja" --out "$W/solver" --batch 16 --seq-len 256 --lr 2e-3 --warmup-ratio 0.03 --weight-decay 0.01 \
    --max-steps "$SFT_STEPS" --save-every 100 --threads "$THREADS" --seed 1
tail -n 1 "$W/solver/train_log.jsonl"

stage "solver: greedy answers to the $N_TEST held-out problems"
"$SQ" generate --model "$W/solver" --in "$W/test.jsonl" --out "$W/answers.jsonl" --temperature 0 \
    --max-tokens 160 --threads "$THREADS" --quiet
"$SQ" world-score --in "$W/answers.jsonl" --mode solve --train "$W/train.jsonl" --samples 2 | tee "$W/solve.txt"

stage "QFT: the solver's copy learns to write questions after its user-turn prefix (loss on the question and <|im_end|>), $QFT_STEPS steps"
"$SQ" train --mode qft --model "$W/solver" --data "$W/train.jsonl" --out "$W/qft" --batch 16 --seq-len 256 \
    --lr 2e-3 --warmup-ratio 0.05 --max-steps "$QFT_STEPS" --threads "$THREADS" --seed 2
tail -n 1 "$W/qft/train_log.jsonl"

prefix=$("$SQ" chat-template --template "$W/qft" --question-prefix)
stage "question generation: $N_QUESTIONS samples from the bare user-turn prefix $prefix (temperature $Q_TEMP)"
for i in $(seq 1 "$N_QUESTIONS"); do printf '{"id": "gen-%d", "prompt": %s}\n' "$i" "$prefix"; done >"$W/qprompts.jsonl"
"$SQ" generate --model "$W/qft" --in "$W/qprompts.jsonl" --out "$W/questions.jsonl" --temperature "$Q_TEMP" \
    --max-tokens 96 --seed 3 --threads "$THREADS" --quiet
"$SQ" world-score --in "$W/questions.jsonl" --mode questions --train "$W/train.jsonl" --samples 6 | tee "$W/questions.txt"

stage "summary"
grep -h -E "^(solver accuracy|most-common|well-formed)" "$W/solve.txt" "$W/questions.txt" | tee "$W/summary.txt"
echo "demo: done in $(( $(date +%s) - t0 ))s; outputs in $W"
