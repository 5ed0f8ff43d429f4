#!/usr/bin/env bash
# Judge-side parsing throughput, one thread pinned to CPU 0, records per CPU-second of that
# thread (the machine is shared; the load average is printed before and after):
#   lang    : filter lang's character check over every question of the real benchmark files
#             in ../shared/assets/data (GSM8K, MATH, College Math, OlympiadBench, Minerva),
#             against (a) the same bytes through the cheapest pass there is (OR of all bytes,
#             the official rule's "all ASCII" test in C) and (b) the official filter in Python
#   replies : the reply parsers (verdict, rewrite, rating) over the 37-reply table and the
#             world oracle's replies to 2,000 prompts, against the official-style handling in
#             Python (substring "yes", split on the marker, json.loads)
# The issue's goal is >= 1,000,000 records/s per core for both.
set -u
cd "$(dirname "$0")/.."
assets=../shared/assets
bin=build/rel/bench/bench_judge
make -s "$bin" || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
field() { grep -oE "(^| )$1 [0-9.]+" <<<"$2" | head -1 | awk '{print $2}'; }
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
if [ -d "$assets/data" ]; then
    python3 - "$assets/data" "$tmp/q.jsonl" <<'PY'
import json, os, sys
files = {"gsm8k_train.jsonl": "question", "gsm8k_test.jsonl": "question", "math_test.jsonl": "problem",
         "college_math_test.jsonl": "question", "olympiadbench_OE_TO_maths_en_COMP.jsonl": "question",
         "minerva_math_test.jsonl": "problem"}
with open(sys.argv[2], "w") as out:
    for f, k in files.items():
        p = os.path.join(sys.argv[1], f)
        if os.path.exists(p):
            for line in open(p):
                out.write(json.dumps({"query": json.loads(line)[k]}) + "\n")
PY
    ours=$(OMP_NUM_THREADS=1 taskset -c 0 "$bin" lang "$tmp/q.jsonl" 2 2>&1)
    peer=$(taskset -c 0 python3 bench/judge_peer.py lang "$tmp/q.jsonl" 2 2>&1)
    r=$(field records_per_s "$ours") b=$(field byte_pass_records_per_s "$ours") p=$(field records_per_s "$peer")
    printf 'lang    %s questions (%s MB/s): %s records/CPU-s; byte pass %s/s (ours = %s of it); Python official filter %s/s (ours %sx); goal 1e6/s: %sx; kept %s (ASCII rule %s)\n' \
        "$(field records "$ours")" "$(field mb_per_s "$ours")" "$r" "$b" "$(awk -v a="$r" -v b="$b" 'BEGIN{printf "%.2f", a/b}')" \
        "$p" "$(awk -v a="$r" -v b="$p" 'BEGIN{printf "%.0f", a/b}')" "$(awk -v a="$r" 'BEGIN{printf "%.2f", a/1e6}')" \
        "$(field kept_share "$ours")" "$(field ascii_share "$ours")"
else
    echo "lang    skipped (../shared/assets absent)"
fi
ours=$(OMP_NUM_THREADS=1 taskset -c 0 "$bin" replies "$tmp/replies.jsonl" 2 2>&1)
peer=$(taskset -c 0 python3 bench/judge_peer.py replies "$tmp/replies.jsonl" 2 2>&1)
r=$(field records_per_s "$ours") p=$(field records_per_s "$peer")
printf 'replies %s replies (%s MB/s): %s records/CPU-s; Python official-style %s/s (ours %sx); goal 1e6/s: %sx; parsed %s\n' \
    "$(field records "$ours")" "$(field mb_per_s "$ours")" "$r" "$p" "$(awk -v a="$r" -v b="$p" 'BEGIN{printf "%.1f", a/b}')" \
    "$(awk -v a="$r" 'BEGIN{printf "%.2f", a/1e6}')" "$(field parsed_share "$ours")"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
