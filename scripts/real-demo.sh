#!/usr/bin/env bash
# make real-demo: the method's first claim on a real instruct model. QFT (questions only)
# turns SmolLM2-135M-Instruct into a question generator? Fine-tune it on math questions (GSM8K
# train + MATH test minus MATH500), sample questions from the raw and the QFT model with the
# bare ChatML user prefix (T 1.0, top-p 0.99, max 512 new tokens), and compare: the share that
# is a math question at all, filter lang's pass rate, length, distinct 4-grams, exact and near
# duplicates of the training questions (dedup's MinHash), and random samples of each.
#
# Sizes (environment; the defaults are the full sizes, about 20 minutes on 2 quiet cores, see
# docs/real-model.md; smaller values make a quicker run):
#   REAL_DEMO_N_TRAIN      training questions sampled from the pool (default 2000)
#   REAL_DEMO_N_QUESTIONS  questions sampled from each model (default 500)
#   REAL_DEMO_MAX_TOKENS   new tokens per question at most (default 512, the paper's)
#   REAL_DEMO_LR           QFT peak learning rate (default 1e-4), 1 epoch, packed rows
#   REAL_DEMO_DIR          work folder (default build/real-demo); a rerun resumes each stage
set -euo pipefail
cd "$(dirname "$0")/.."
S=build/rel/scalequest
A="${SQ_ASSETS:-../shared/assets}/data"
W="${REAL_DEMO_DIR:-build/real-demo}"
N_TRAIN="${REAL_DEMO_N_TRAIN:-2000}"
N_Q="${REAL_DEMO_N_QUESTIONS:-500}"
MAX_TOK="${REAL_DEMO_MAX_TOKENS:-512}"
LR="${REAL_DEMO_LR:-1e-4}"
SEED="${REAL_DEMO_SEED:-1}"
# scalequest waits passively at OpenMP joins unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set
# (docs/engine.md, "Threads on a shared machine"): nothing to set here.

[ -x "$S" ] || make -s "$S"
if ! "$S" models | grep -q '^  installed: '; then
    echo "real-demo: smollm2-135m-instruct is not installed (scripts/install-deps.sh installs it)" >&2
    exit 1
fi
for f in gsm8k_train.jsonl math_test.jsonl math500_test.jsonl; do
    [ -f "$A/$f" ] || { echo "real-demo: $A/$f is missing (set SQ_ASSETS)" >&2; exit 1; }
done
mkdir -p "$W"
t0=$(date +%s)
# Each line: seconds since the start, the 1-minute load average then (the cores are shared),
# and what starts or ended.
stamp() { echo "[$(( $(date +%s) - t0 ))s, load $(cut -d' ' -f1 /proc/loadavg)] $*"; }
stamp "load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; train $N_TRAIN questions, sample $N_Q per model"

# 1. The question pool: GSM8K train + MATH test, minus MATH500 (decontaminate drops MATH500's
#    problems and near copies of them from MATH test), ids train-gsm8k-N / train-math-N.
if [ ! -s "$W/pool.jsonl" ]; then
    python3 - "$A" "$W" <<'EOF'
import json, sys
a, w = sys.argv[1], sys.argv[2]
with open(f"{w}/gsm8k.jsonl", "w") as out:
    for i, line in enumerate(open(f"{a}/gsm8k_train.jsonl")):
        out.write(json.dumps({"id": f"train-gsm8k-{i:05d}", "query": json.loads(line)["question"]}) + "\n")
with open(f"{w}/math.jsonl", "w") as out:
    for i, line in enumerate(open(f"{a}/math_test.jsonl")):
        out.write(json.dumps({"id": f"train-math-{i:05d}", "query": json.loads(line)["problem"]}) + "\n")
EOF
    rm -f "$W"/math_clean*.jsonl
    "$S" decontaminate --quiet --in "$W/math.jsonl" --out "$W/math_clean.jsonl" --bench-dir "$A" --benchmarks math500
    "$S" jsonl merge --in "$W/gsm8k.jsonl" --in "$W/math_clean.jsonl" --out "$W/pool.jsonl"
fi
stamp "pool: $("$S" jsonl count --in "$W/pool.jsonl") questions (GSM8K train $("$S" jsonl count --in "$W/gsm8k.jsonl"), MATH test minus MATH500 $("$S" jsonl count --in "$W/math_clean.jsonl"))"
[ -s "$W/train.jsonl" ] || "$S" jsonl sample --n "$N_TRAIN" --seed "$SEED" --in "$W/pool.jsonl" --out "$W/train.jsonl"

# 2. QFT: questions only, after the template's bare user-turn prefix; 1 epoch, packed rows.
if [ ! -f "$W/qft/config.json" ]; then
    stamp "QFT on $N_TRAIN questions (lr $LR, 1 epoch, batch 2 x 256 tokens, packed)"
    "$S" train --mode qft --model smollm2-135m-instruct --data "$W/train.jsonl" --out "$W/qft" \
        --epochs 1 --batch 2 --seq-len 256 --lr "$LR" --warmup-ratio 0.1 --seed "$SEED"
fi
stamp "QFT done: final loss $(tail -1 "$W/qft/train_log.jsonl" | sed -n 's/.*"loss": *\([0-9.]*\).*/\1/p')"

# 3. Questions from nothing, from each model; then the stages that judge them.
for m in raw qft; do
    spec=smollm2-135m-instruct
    [ "$m" = qft ] && spec="$W/qft"
    stamp "qgen from the $m model: $N_Q questions"
    "$S" qgen --model "$spec" --n-questions "$N_Q" --max-tokens "$MAX_TOK" --seed "$SEED" --out "$W/$m.jsonl"
    rm -f "$W/$m".lang*.jsonl "$W/$m".near*.jsonl "$W/$m".exact*.jsonl "$W/$m.cat.jsonl"
    "$S" filter lang --quiet --in "$W/$m.jsonl" --out "$W/$m.lang.jsonl"
    # Copies of training questions: the pool first, so dedup keeps the training question and
    # drops the generated one with duplicate_of naming it.
    "$S" jsonl merge --in "$W/pool.jsonl" --in "$W/$m.jsonl" --out "$W/$m.cat.jsonl"
    "$S" dedup --quiet --in "$W/$m.cat.jsonl" --out "$W/$m.near.jsonl"
    "$S" dedup --quiet --exact-only --in "$W/$m.cat.jsonl" --out "$W/$m.exact.jsonl"
    stamp "qgen from the $m model done: $("$S" jsonl count --in "$W/$m.jsonl") kept"
    python3 scripts/real_demo_stats.py "$m" "$W/$m.jsonl" "$W/$m.dropped.jsonl" "$W/$m.lang.jsonl" \
        "$W/$m.near.dropped.jsonl" "$W/$m.exact.dropped.jsonl" 10 "$SEED" >"$W/$m.stats.json"
done

# 4. The comparison.
python3 - "$W" <<'EOF'
import json, sys
w = sys.argv[1]
r = {m: json.load(open(f"{w}/{m}.stats.json")) for m in ("raw", "qft")}
rows = [("sampled", "sampled", "%d"), ("kept by qgen", "kept_by_qgen", "%d"),
        ("math question (rule)", "math_question_share", "%.1f%%"), ("filter lang pass", "lang_pass_share", "%.1f%%"),
        ("mean words", "mean_words", "%.1f"), ("mean chars", "mean_chars", "%.0f"),
        ("distinct 4-grams", "distinct_4grams", "%.3f"), ("exact dup of training", "exact_dup_of_training", "%d"),
        ("near dup of training", "near_dup_of_training", "%d")]
print("%-24s %10s %10s" % ("", "raw", "QFT"))
for label, key, fmt in rows:
    v = [r[m][key] * (100 if fmt.endswith("%%") else 1) for m in ("raw", "qft")]
    print("%-24s %10s %10s" % (label, fmt % v[0], fmt % v[1]))
print("%-24s %10s %10s" % ("qgen drops", json.dumps(r["raw"]["dropped_by_qgen"]), json.dumps(r["qft"]["dropped_by_qgen"])))
for m in ("raw", "qft"):
    print(f"\n{m}: {len(r[m]['samples'])} random samples")
    for s in r[m]["samples"]:
        q = s["query"].replace("\n", " ")
        print(f"  {s['id']} [{'math' if s['math'] else 'not math'}] {q[:300]}{'...' if len(q) > 300 else ''}")
json.dump(r, open(f"{w}/results.json", "w"), ensure_ascii=False, indent=1)
EOF
stamp "real-demo: done; results in $W/results.json"
