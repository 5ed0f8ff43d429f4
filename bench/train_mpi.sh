#!/usr/bin/env bash
# MPI data-parallel training (mpirun -np 2 scalequest train) against one process on the same
# global batch, in the same run: tokens/s of 1 rank x 1 thread, 1 rank x 2 threads and
# 2 ranks x 1 thread, and the scaling efficiency per core (2 ranks / (2 x 1 rank 1 thread)).
# The loss curves are compared too (they must agree to float rounding).
#   bench/train_mpi.sh [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-12}
bin=build/rel/scalequest
[ -x "$bin" ] || { echo "bench/train_mpi.sh: $bin missing (make)" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "bench/train_mpi.sh: mpirun missing (openmpi-bin); skipped"; exit 0; }
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp/d.jsonl" <<'PY'
import json, random, sys
r = random.Random(3)
with open(sys.argv[1], "w") as f:
    for i in range(2000):
        n = 128
        f.write(json.dumps({"input_ids": [r.randrange(512) for _ in range(n)]}) + "\n")
PY
B=8 T=128 A=2
args=(train --mode sft --init-config dim=256,layers=4,heads=8,kv_heads=4,ffn=704,vocab=512,seq=128 --data "$tmp/d.jsonl"
      --batch $B --seq-len $T --accum $A --lr 1e-3 --max-steps "$STEPS" --seed 1 --quiet)
tokens=$((B * T * A * STEPS))
run() { # label out threads launcher...
    local label=$1 out=$2 threads=$3
    shift 3
    local t0 t1
    t0=$(date +%s.%N)
    "$@" "${args[@]}" --threads "$threads" --out "$tmp/$out" >/dev/null 2>"$tmp/$out.err" || { cat "$tmp/$out.err"; exit 1; }
    t1=$(date +%s.%N)
    python3 -c "import sys; print(f'{sys.argv[1]}: {int(sys.argv[2]) / (float(sys.argv[4]) - float(sys.argv[3])):,.0f} tokens/s')" \
        "$label" "$tokens" "$t0" "$t1" | tee -a "$tmp/rates"
}
echo "machine load average at start: $(cut -d' ' -f1 /proc/loadavg) (2 cores shared); global batch $((B * A)) x $T tokens, $STEPS steps"
run "1 rank x 1 thread " one1 1 "$bin"
run "1 rank x 2 threads" one2 2 "$bin"
run "2 ranks x 1 thread" two 1 mpirun --allow-run-as-root --oversubscribe -np 2 "$bin"
python3 - "$tmp/rates" "$tmp/one1/train_log.jsonl" "$tmp/two/train_log.jsonl" <<'PY'
import json, re, sys
r = [float(re.search(r": ([\d,]+) tokens", l).group(1).replace(",", "")) for l in open(sys.argv[1])]
a = [json.loads(l)["loss"] for l in open(sys.argv[2])]
b = [json.loads(l)["loss"] for l in open(sys.argv[3])]
worst = max(abs(x - y) / abs(x) for x, y in zip(a, b))
print(f"2 ranks vs 1 rank x 2 threads: {r[2] / r[1]:.2f}x; per-core scaling efficiency {r[2] / (2 * r[0]):.2f}; "
      f"loss curves agree to {worst:.1e} (relative)")
PY
