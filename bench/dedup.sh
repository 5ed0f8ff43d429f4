#!/usr/bin/env bash
# dedup and decontaminate throughput and memory on synthetic questions: the tiny world's
# problems (scalequest world) with paraphrase noise (a filler word inserted, a word dropped, case
# changed). Reported per CPU-second (user + sys, so other work on a busy machine does not
# count against us) as a fraction of the 200,000 questions/s per core target, peak RSS as a
# fraction of 1 GiB, and against datasketch (MinHash + MinHashLSH on the same shingles,
# first occurrence kept) on a slice, measured in the same run.
#   bench/dedup.sh [N_QUESTIONS] [PEER_SLICE]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
SLICE=${2:-20000}
bin=build/rel/scalequest
[ -x "$bin" ] || { echo "bench/dedup.sh: $bin missing (make)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" world --n "$N" --seed 7 --out "$tmp/world.jsonl" --quiet
python3 - "$tmp/world.jsonl" "$tmp/q.jsonl" <<'PY'
import json, random, sys
r = random.Random(1)
fill = ["really", "then", "also", "just", "now", "still"]
with open(sys.argv[2], "w") as f:
    for line in open(sys.argv[1]):
        d = json.loads(line)
        w = d["query"].split()
        x = r.random()
        if x < 0.3:
            w.insert(r.randrange(len(w)), r.choice(fill))
        elif x < 0.5 and len(w) > 4:
            del w[r.randrange(len(w))]
        elif x < 0.6:
            w = [t.lower() for t in w]
        f.write(json.dumps({"id": d["id"], "query": " ".join(w)}) + "\n")
PY
load=$(cut -d' ' -f1 /proc/loadavg)
measure() { # name, command...: prints q/s per CPU second, wall q/s and peak RSS
    local name=$1
    shift
    /usr/bin/time -f "%U %S %e %M" -o "$tmp/time" "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
    read -r user sys wall rss <"$tmp/time"
    python3 - "$name" "$N" "$user" "$sys" "$wall" "$rss" <<'PY'
import sys
name, n, user, sys_, wall, rss = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:])
cpu = user + sys_
print(f"{name}: {n} questions, {n / cpu:,.0f} q/s per CPU-second ({n / cpu / 200000:.2f} of the 200,000 target), "
      f"{n / wall:,.0f} q/s wall, peak RSS {rss / 1024:.0f} MiB ({rss / 1048576:.2f} of 1 GiB)")
PY
}
echo "machine load average at start: $load (2 cores shared)"
measure "dedup (word 2-grams, 128 perms, 18x7 bands, 1 thread)" "$bin" dedup --in "$tmp/q.jsonl" --out "$tmp/d.jsonl" --threads 1 --quiet
kept=$(wc -l <"$tmp/d.jsonl")
echo "  kept $kept of $N (the tiny world's questions share templates: most are near duplicates)"
bench_dir=${SQ_ASSETS:-../shared/assets}/data
if [ -d "$bench_dir" ]; then
    measure "decontaminate (13-gram + near duplicate, 5 benchmarks)" "$bin" decontaminate --in "$tmp/q.jsonl" --out "$tmp/c.jsonl" \
        --bench-dir "$bench_dir" --threads 1 --quiet
fi
peer_py="${SQ_PEER_PYTHON:-$HOME/.cache/scalequest/peers/bin/python}"
if ! "$peer_py" -c "import datasketch" 2>/dev/null; then
    echo "bench/dedup.sh: datasketch missing in the peer Python; no peer comparison"
    exit 0
fi
head -n "$SLICE" "$tmp/q.jsonl" >"$tmp/slice.jsonl"
"$bin" dedup --print-params >"$tmp/params.json"
/usr/bin/time -f "%U %S" -o "$tmp/ours" "$bin" dedup --in "$tmp/slice.jsonl" --out "$tmp/ds.jsonl" --threads 1 --quiet
"$bin" dedup --in "$tmp/slice.jsonl" --signatures "$tmp/sig.jsonl"
"$peer_py" - "$tmp/slice.jsonl" "$tmp/params.json" "$tmp/sig.jsonl" "$tmp/ours" "$tmp/ds.dropped.jsonl" <<'PY'
import json, resource, sys, time
import numpy as np
from datasketch import MinHash, MinHashLSH
recs = [json.loads(l) for l in open(sys.argv[1])]
p = json.load(open(sys.argv[2]))
sigs = [json.loads(l) for l in open(sys.argv[3])]
a, b = np.array(p["a"], dtype=np.uint32), np.array(p["b"], dtype=np.uint32)
# shingles and their hashes are given (ours); datasketch does the permutations, minima and LSH
work = [([s.encode() for s in g["shingles"]], dict(zip((s.encode() for s in g["shingles"]), g["hashes"]))) for g in sigs]
t0 = time.process_time()
lsh = MinHashLSH(num_perm=p["num_perm"], params=(p["bands"], p["rows"]))
dropped = {}
for r, (sh, table) in zip(recs, work):
    m = MinHash(num_perm=p["num_perm"], permutations=(a, b), scheme="affine32", hashfunc=table.__getitem__)
    m.update_batch(sh)
    hit = lsh.query(m) if sh else []
    if hit:
        dropped[r["id"]] = hit
    elif sh:
        lsh.insert(r["id"], m)
theirs = time.process_time() - t0
user, sys_ = map(float, open(sys.argv[4]).read().split())
ours = user + sys_
n = len(recs)
same = {json.loads(l)["id"] for l in open(sys.argv[5])} == set(dropped)
print(f"vs datasketch 2.0.0 on {n} questions: ours {n / ours:,.0f} q/s per CPU-second (JSONL in and out included), "
      f"datasketch {n / theirs:,.0f} q/s (permutations + LSH only, shingles given): {theirs / ours:.1f}x; "
      f"same questions dropped: {same}")
PY
