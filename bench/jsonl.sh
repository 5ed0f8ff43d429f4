#!/usr/bin/env bash
# JSONL benchmark: read throughput of the validating reader as a fraction of `wc -l` on the
# same file in the same run, dedup throughput, and peak memory. The file (~1 GB by default,
# SQ_BENCH_JSONL_MB to change) is generated in /tmp and deleted at the end.
# "read + validate" is the reader as every command uses it: the file mapped, the two-stage
# validator on every core; the same on one thread and the reference (byte-by-byte) validator
# are shown beside it. Each figure is the best of 3 runs (wall clock); CPU time (user+sys)
# is shown beside it, because on a shared machine wall time also measures the neighbours,
# and the load average before and after says how shared the machine was.
set -euo pipefail
cd "$(dirname "$0")/.."
mb=${SQ_BENCH_JSONL_MB:-1024}
bench=build/rel/bench/bench_jsonl
cli=build/rel/scalequest
[ -x "$bench" ] && [ -x "$cli" ] || { echo "jsonl bench: build first (make)"; exit 1; }
tmp=$(mktemp -d /tmp/sq-bench-jsonl.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
f=$tmp/data.jsonl

# run_timed CMD...: prints "wall cpu rss_kb" of one run (stdout of CMD to $tmp/out).
run_timed() {
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$@" >"$tmp/out"
        awk '{printf "%.3f %.3f %d\n", $1, $2 + $3, $4}' "$tmp/time"
    else
        local s e
        s=$(date +%s.%N); "$@" >"$tmp/out"; e=$(date +%s.%N)
        awk -v s="$s" -v e="$e" 'BEGIN{printf "%.3f 0 0\n", e - s}'
    fi
}

# best CMD...: best of 3 runs, as "wall cpu rss_kb" (rss is the largest seen).
best() {
    local w c r bw=999999 bc=999999 br=0
    for _ in 1 2 3; do
        read -r w c r < <(run_timed "$@")
        bw=$(awk -v a="$w" -v b="$bw" 'BEGIN{print (a < b) ? a : b}')
        bc=$(awk -v a="$c" -v b="$bc" 'BEGIN{print (a < b) ? a : b}')
        [ "$r" -gt "$br" ] && br=$r
    done
    echo "$bw $bc $br"
}

echo "generating ${mb} MB of JSONL in $tmp ..."
"$bench" gen "$f" "$mb"
bytes=$(stat -c %s "$f")
cat "$f" >/dev/null # into the page cache, as for every run below
records=$(wc -l <"$f")
mib=$(awk -v b="$bytes" 'BEGIN{printf "%.1f", b / 1048576}')
echo "file: $mib MiB, $records records"

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), CPUs: $(nproc)"
read -r wc_w wc_c wc_r < <(best wc -l "$f")
read -r rd_w rd_c rd_r < <(best "$bench" read "$f")
grep -q "records=$records " "$tmp/out" || { echo "reader saw a different record count: $(cat "$tmp/out")"; exit 1; }
read -r r1_w r1_c r1_r < <(best "$bench" read "$f" 1)
grep -q "records=$records " "$tmp/out" || { echo "reader (1 thread) saw a different record count: $(cat "$tmp/out")"; exit 1; }
read -r rr_w rr_c rr_r < <(best "$bench" read-ref "$f" 1)
read -r ps_w ps_c ps_r < <(best "$bench" parse "$f")
read -r dd_w dd_c dd_r < <(best "$cli" jsonl dedup --field query --in "$f" --quiet --log-level warn)
kept=$(wc -l <"$tmp/out")
read -r dn_w dn_c dn_r < <(best "$cli" jsonl dedup --field query --normalize --in "$f" --quiet --log-level warn)
kept_n=$(wc -l <"$tmp/out")

awk -v b="$bytes" -v n="$records" \
    -v wcw="$wc_w" -v wcc="$wc_c" -v wcr="$wc_r" -v rdw="$rd_w" -v rdc="$rd_c" -v rdr="$rd_r" \
    -v r1w="$r1_w" -v r1c="$r1_c" -v r1r="$r1_r" -v rrw="$rr_w" -v rrc="$rr_c" -v rrr="$rr_r" -v psw="$ps_w" -v psc="$ps_c" -v psr="$ps_r" -v ddw="$dd_w" -v ddc="$dd_c" -v ddr="$dd_r" \
    -v dnw="$dn_w" -v dnc="$dn_c" -v dnr="$dn_r" -v kept="$kept" -v keptn="$kept_n" 'BEGIN {
    mbs = b / 1e6
    printf "%-34s %9s %9s %9s %10s\n", "", "wall MB/s", "cpu MB/s", "peak RSS", "vs wc -l"
    printf "%-34s %9.0f %9.0f %7.1fMB %10s\n", "wc -l", mbs / wcw, mbs / (wcc > 0 ? wcc : 1e-9), wcr / 1024, "1.00"
    printf "%-34s %9.0f %9.0f %7.1fMB %6.2f wall\n", "read + validate every line", mbs / rdw, mbs / rdc, rdr / 1024, wcw / rdw
    printf "%-34s %9s %9s %9s %6.2f cpu\n", "", "", "", "", (wcc > 0 ? wcc / rdc : 0)
    printf "%-34s %9.0f %9.0f %7.1fMB %6.2f wall\n", "  (the same on 1 thread)", mbs / r1w, mbs / r1c, r1r / 1024, wcw / r1w
    printf "%-34s %9s %9s %9s %6.2f cpu\n", "", "", "", "", (wcc > 0 ? wcc / r1c : 0)
    printf "%-34s %9.0f %9.0f %7.1fMB %6.2f wall\n", "  (reference validator, 1 thread)", mbs / rrw, mbs / rrc, rrr / 1024, wcw / rrw
    printf "%-34s %9s %9s %9s %6.2f cpu\n", "", "", "", "", (wcc > 0 ? wcc / rrc : 0)
    printf "%-34s %9.0f %9.0f %7.1fMB %6.2f wall\n", "read + cJSON parse every record", mbs / psw, mbs / psc, psr / 1024, wcw / psw
    printf "dedup --field query (exact):        %.0f records/s, %.0f MB/s wall (%.0f MB/s cpu), peak RSS %.1f MB, kept %d of %d\n", n / ddw, mbs / ddw, mbs / ddc, ddr / 1024, kept, n
    printf "dedup --field query --normalize:    %.0f records/s, %.0f MB/s wall (%.0f MB/s cpu), peak RSS %.1f MB, kept %d of %d\n", n / dnw, mbs / dnw, mbs / dnc, dnr / 1024, keptn, n
    printf "goal: read >= 0.50 of wc -l; measured %.2f (wall), %.2f (cpu)\n", wcw / rdw, (wcc > 0 ? wcc / rdc : 0)
}'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
