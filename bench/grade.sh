#!/usr/bin/env bash
# Grading throughput, one thread: our grader against Math-Verify on the same cases, measured
# in this run, plus the issue's goal of 40,000 cases/s (100x the ~400 cases/s of
# math-evaluation-harness's Python grader). Two workloads:
#   cases : ../shared/assets/grader/cases.jsonl (323 labelled cases, raw responses and pairs)
#   pairs : 10,000 response/gold pairs built from MATH500 and GSM8K gold answers
#           (tests/peers/grade_pairs.py: right answers in other forms and near misses,
#           written as model responses in four common styles)
# Math-Verify runs over the first MV_CASES (default 1000) pairs to keep the run short; its rate
# is cases/s either way. Rates are per CPU-second of the grading thread on both sides (the
# machine is shared; wall time would count the neighbours). Peak RSS is each process's
# getrusage maximum.
set -u
cd "$(dirname "$0")/.."
assets=../shared/assets
py="${SQ_PEER_PYTHON:-$HOME/.cache/scalequest/peers/bin/python}"
bin=build/rel/bench/bench_grade
mv_cases="${MV_CASES:-1000}"
make -s "$bin" || exit 1
if [ ! -f "$assets/grader/cases.jsonl" ]; then echo "grade: skipped (../shared/assets absent)"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$assets" "$tmp/pairs.jsonl" <<'EOF'
import json, sys
sys.path.insert(0, "tests/peers")
from grade_pairs import build, responses
pairs = build(sys.argv[1])[:10000]
with open(sys.argv[2], "w") as f:
    for i, p in enumerate(pairs):
        f.write(json.dumps({"gold": p["gold"], "pred": responses(p["pred"], i), "kind": "response"}) + "\n")
EOF

field() { grep -oE "(^| )$1 [0-9.]+" <<<"$2" | head -1 | awk '{print $2}'; }
report() { # name ours_line peer_line
    local o=$2 p=$3
    local oc=$(field cases_per_s "$o") pc=$(field cases_per_s "$p")
    local orss=$(field peak_rss_kib "$o") prss=$(field peak_rss_kib "$p")
    printf '%-6s ours %9s cases/CPU-s (%s/s wall; peak RSS %s KiB; equal %s) | Math-Verify %s cases/CPU-s (%s/s wall; peak RSS %s KiB; equal %s; %s cases)\n' \
        "$1" "$oc" "$(field wall_cases_per_s "$o")" "$orss" "$(field equal_share "$o")" "${pc:-n/a}" \
        "$(field wall_cases_per_s "$p")" "${prss:-n/a}" "$(field equal_share "$p")" "$(field cases "$p")"
    if [ -n "$pc" ]; then
        awk -v o="$oc" -v p="$pc" -v n="$1" 'BEGIN { printf "%-6s ratio ours/Math-Verify: %.0fx; against the 40,000 cases/s goal: %.2fx\n", n, o / p, o / 40000 }'
    else
        awk -v o="$oc" -v n="$1" 'BEGIN { printf "%-6s (Math-Verify not installed); against the 40,000 cases/s goal: %.2fx\n", n, o / 40000 }'
    fi
}

for w in cases pairs; do
    f="$assets/grader/cases.jsonl"
    [ "$w" = pairs ] && f="$tmp/pairs.jsonl"
    ours=$(OMP_NUM_THREADS=1 taskset -c 0 "$bin" "$f" 2 2>&1)
    peer=""
    if [ -x "$py" ]; then
        limit=""
        [ "$w" = pairs ] && limit="$mv_cases"
        peer=$(OMP_NUM_THREADS=1 taskset -c 0 "$py" bench/grade_peer.py "$f" $limit 2>/dev/null | tail -1)
    fi
    report "$w" "$ours" "$peer"
done
