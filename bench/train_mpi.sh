#!/usr/bin/env bash
# MPI data-parallel training (mpirun -np 2 scalequest train) against one process on the same
# global batch, in the same run: 1 rank x 1 thread, 1 rank x 2 threads and 2 ranks x 1 thread,
# each run ROUNDS times alternately, as wall tokens/s and as tokens per CPU-second (user + sys
# of every process of the run: on a shared machine the wall figure follows the other work, the
# CPU figure what our processes cost); the scaling efficiency per core (2 ranks / (2 x 1 rank
# 1 thread)); each rank's seconds in the gradient sums (SQ_DIST_PROFILE: wall, and CPU, which
# is spin); and the loss curves (they must agree to float rounding).
#   bench/train_mpi.sh [STEPS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-12}
ROUNDS=${2:-2}
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
    rm -rf "${tmp:?}/$out"
    SQ_DIST_PROFILE=1 /usr/bin/time -f "%U %S %e" -o "$tmp/$out.time" "$@" "${args[@]}" --threads "$threads" \
        --out "$tmp/$out" >/dev/null 2>"$tmp/$out.err" || { cat "$tmp/$out.err"; exit 1; }
    local user sys wall load
    read -r user sys wall <"$tmp/$out.time"
    load=$(cut -d' ' -f1 /proc/loadavg)
    echo "$label $tokens $user $sys $wall $load" >>"$tmp/rates"
    python3 -c "import sys; t,u,s,w=int(sys.argv[2]),*map(float,sys.argv[3:6]); print(f'{sys.argv[1]}: {t/w:,.0f} tokens/s wall, {t/(u+s):,.0f} tokens per CPU-second, load {sys.argv[6]}')" \
        "$label" "$tokens" "$user" "$sys" "$wall" "$load"
    grep '^dist:' "$tmp/$out.err" | sed 's/^/    /' || true
}
echo "machine load average at start: $(cut -d' ' -f1 /proc/loadavg) (2 cores shared); global batch $((B * A)) x $T tokens, $STEPS steps, $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
    run "1 rank x 1 thread " one1 1 "$bin"
    run "1 rank x 2 threads" one2 2 "$bin"
    run "2 ranks x 1 thread" two 1 mpirun --allow-run-as-root --oversubscribe -np 2 "$bin"
done
python3 - "$tmp/rates" "$tmp/one1/train_log.jsonl" "$tmp/two/train_log.jsonl" <<'PY'
import json, statistics, sys
rows = [l.rsplit(None, 5) for l in open(sys.argv[1])]
def med(label, f):
    return statistics.median(f(*map(float, r[1:5])) for r in rows if r[0].startswith(label))
keys = {"one1": "1 rank x 1", "one2": "1 rank x 2", "two": "2 ranks"}
wall = {k: med(v, lambda t, u, s, w: t / w) for k, v in keys.items()}
cpu = {k: med(v, lambda t, u, s, w: t / (u + s)) for k, v in keys.items()}
a = [json.loads(l)["loss"] for l in open(sys.argv[2])]
b = [json.loads(l)["loss"] for l in open(sys.argv[3])]
worst = max(abs(x - y) / abs(x) for x, y in zip(a, b))
print(f"medians: 1 rank x 1 thread {wall['one1']:,.0f} tokens/s ({cpu['one1']:,.0f} per CPU-second), 1 rank x 2 threads "
      f"{wall['one2']:,.0f} ({cpu['one2']:,.0f}), 2 ranks x 1 thread {wall['two']:,.0f} ({cpu['two']:,.0f})")
print(f"2 ranks vs 1 rank x 2 threads: {wall['two'] / wall['one2']:.2f}x wall, {cpu['two'] / cpu['one2']:.2f}x per "
      f"CPU-second; per-core scaling efficiency {wall['two'] / (2 * wall['one1']):.2f} (wall); "
      f"loss curves agree to {worst:.1e} (relative)")
PY
