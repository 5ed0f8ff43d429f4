#!/usr/bin/env bash
# Tokenizer encode throughput, single thread, against HF `tokenizers` on the same text and
# the same tokenizer.json files, in the same run. Both sides encode one line per call with
# no special tokens added, best of three passes timed in process CPU time (the machine is
# shared; CPU time counts each side's own work), runs alternating between ours
# and HF's. Prints MB/s each, the ratio ours/HF, and peak RSS of each process.
# Texts: "natural" (English + LaTeX from the assets' math data) and "mixed" (the peer test's
# generator: code, CJK, emoji, digit and space runs, invalid UTF-8). SQ_BENCH_MB sets the size.
set -u
cd "$(dirname "$0")/.."
py="${SQ_PEER_PYTHON:-$HOME/.cache/scalequest/peers/bin/python}"
bin=build/rel/bench/bench_tokenizer
[ -x "$py" ] || { echo "tokenizer: SKIP (peer Python not installed)"; exit 0; }
[ -d ../shared/assets/vocab ] || { echo "tokenizer: SKIP (../shared/assets/vocab not present)"; exit 0; }
[ -x "$bin" ] || { echo "tokenizer: $bin missing (make all)"; exit 1; }
export TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1 OMP_NUM_THREADS=1
mb="${SQ_BENCH_MB:-1}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$py" bench/tokenizer_peer.py build "$work" || exit 1
for kind in natural mixed; do
    "$py" bench/tokenizer_peer.py text $kind $((mb * 1000000)) "$work/$kind.txt" || exit 1
done
printf "%-10s %-8s %9s %9s %7s %10s %10s\n" tokenizer text "ours MB/s" "HF MB/s" ratio "ours RSS" "HF RSS"
fail=0
for tok in llama3 qwen2 gpt2 llama-spm; do
    for kind in natural mixed; do
        ours=$("$bin" "$work/$tok.json" "$work/$kind.txt" 3) || { fail=1; continue; }
        hf=$("$py" bench/tokenizer_peer.py hf "$work/$tok.json" "$work/$kind.txt") || { fail=1; continue; }
        get() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
        o=$(get mb_s "$ours") h=$(get mb_s "$hf")
        if [ "$(get tokens "$ours")" != "$(get tokens "$hf")" ]; then
            echo "tokenizer: $tok/$kind: token counts differ ($(get tokens "$ours") vs $(get tokens "$hf"))"
            fail=1
        fi
        printf "%-10s %-8s %9s %9s %6.2fx %7s MB %7s MB\n" "$tok" "$kind" "$o" "$h" \
            "$(awk -v a="$o" -v b="$h" 'BEGIN{print (b > 0 ? a / b : 0)}')" \
            "$(get peak_rss_mb "$ours")" "$(get peak_rss_mb "$hf")"
    done
done
exit $fail
