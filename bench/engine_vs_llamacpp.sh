#!/usr/bin/env bash
# The engine beside llama.cpp at the pipeline's shapes, on the same GGUF files, in the same
# run. Every figure runs ours, then llama.cpp's right after (so both see about the same
# load), each in its own process under /usr/bin/time for its peak RSS, and prints llama.cpp,
# ours, the ratio, and ours as a fraction of this machine's limits measured in the same run
# (bench_engine limits: read bandwidth, FP32 FMA peak; probed at the start and the end).
#
# Models (random weights, cached in $SQ_CACHE/bench-models, rebuilt when the generator
# changes): the Qwen2-0.5B shape written by `bench_engine make` and turned into GGUF by
# bench/hf_to_gguf.py in BF16, Q8_0 and Q4_1; plus the registry's SmolLM2-135M-Instruct Q4_1
# file where it is installed. Both engines read the very same file.
#
# llama.cpp: llama-bench (batch 1 `tg`, prefill `pp`) and llama-batched-bench (every batched
# figure), built once by bench/llama_cpp_build.sh from the llama.cpp source vendored in the
# llama-cpp-python sdist (SQ_BENCH_LLAMA_BUILD=0: never start that build, use it only if it is
# there). Flash attention on; respond (and qgen, except at the small size) run it off as well.
# llama-batched-bench decodes random tokens without sampling; ours samples (top-p 0.95 at the
# shape's temperature) and counts the sampling in its time.
#
# Table 1 (issue 15), Qwen2-0.5B shape, BF16:
#   b1       batch-1 decode: 16-token prompt, 64 new; llama-bench tg64. Against the read bound,
#            and again paired with reads taken beside it (bench_decode1; every b1 row).
#   prefill  256 tokens; llama-bench pp256. FLOPs count the LM head for the last token only.
#   b1load   batch 1 again while a busy process (`yes`) holds one core: both thread pools
#            with a neighbour (the spin policy's test); llama-bench tg64.
#   b8 b32 b64  B sequences on one shared 128-token prompt, GEN new each (decode rate only);
#            llama-batched-bench -pps -npp 128 -ntg GEN -npl B.
#   respond  RESPOND_Q questions of 100 tokens, n=5 samples each (the samples of a question
#            share its prefill), T 0.7, RESPOND_TOKENS new, at most 64 sequences in flight;
#            llama-batched-bench runs the same sequences as waves of 64 (-npl 64,64,..) with
#            the prompt shared across each wave (-pps: less prefill than ours, never more).
#            Tokens/s over the whole run, prefill included; the engine's time split (forward,
#            sampling, rest) and where its CPU time goes (attention, GEMM, sampling, OpenMP
#            waiting, rest; sampled by bench/cpu_share.h inside bench_shapes). Ours runs
#            with the engine's default KV cache (auto: F16 for this BF16 file, llama.cpp's
#            type), then again with the other of F32/F16 for comparison (F32: exact).
#   qgen     one 16-token bare prefix, 64 requests of one sequence (as the qgen stage sends
#            them: 64 prefills), QGEN_TOKENS new (T 1.0); no -pps, so 64 prefills there too.
#   filter   FILTER_Q records of 250 distinct tokens, 16 new, greedy; records/s; no -pps.
#   n5       n=5 samples of one prompt (128 and 512 tokens) in one request against five
#            independent requests of it (ours; the prefix-sharing ratio), and llama.cpp's
#            -pps -npl 5 on the same work.
# Table 2 (issue 14), quantized files: q4_1 and q8_0 (Qwen2-0.5B shape), smollm (SmolLM2 Q4_1):
#   batch-1 decode against the read bound, prefill 256, batch 32 aggregate; same as above.
#
# Sizes: SQ_BENCH_SIZE=small (the default: the same shapes with fewer questions and tokens,
# printed at the top), full (the issue's: 64 questions x 1,024 new tokens = 320 sequences,
# 64 in flight; qgen 512 tokens; 64 filter records), long (what SQ_LONG=1 and `make
# check-peers` select: 2,048 new tokens, for 12 questions = one wave of 60 sequences in flight,
# the steady state of the full run's five waves at a fifth of its work).
# Knobs: SQ_BENCH_RESPOND_Q, SQ_BENCH_RESPOND_TOKENS, SQ_BENCH_QGEN_TOKENS,
# SQ_BENCH_FILTER_Q, SQ_BENCH_GEN override the size's values; SQ_BENCH_SHAPES_ONLY=fig,fig
# picks figures (b1,prefill,b1load,b8,b32,b64,respond,qgen,filter,n5,q4_1,q8_0,smollm);
# SQ_BENCH_SHAPE=stories15m swaps table 1's model for the small one; SQ_BENCH_KV=f32|f16|bf16
# sets our KV cache type (default: the engine's default, auto, which gives F16 for 16-bit and
# quantized weights; llama.cpp's is F16);
# SQ_BENCH_THREADS (default: all cores); SQ_BENCH_DRIVER=1 adds, under the respond row,
# llama.cpp doing that work through libllama with its own sampler (bench/llamacpp_peer.py). Our processes wait passively at barriers unless
# OMP_WAIT_POLICY or GOMP_SPINCOUNT is set.
set -eu
cd "$(dirname "$0")/.."
t_begin=$(date +%s)
eng=build/rel/bench/bench_engine
shp=build/rel/bench/bench_shapes
dec1=build/rel/bench/bench_decode1
make -s "$eng" "$shp" "$dec1"
py="${SQ_PEER_PYTHON:-$HOME/.cache/scalequest/peers/bin/python}"
cache="${SQ_CACHE:-$HOME/.cache/scalequest}"
shape="${SQ_BENCH_SHAPE:-qwen05}"
threads="${SQ_BENCH_THREADS:-$(nproc)}"
export OMP_NUM_THREADS="$threads"
size="${SQ_BENCH_SIZE:-small}"
[ "${SQ_LONG:-0}" = 1 ] && size=long
case "$size" in
small) resp_q=12 resp_t=64 qgen_t=32 filt_q=16 gen=16 ;;
full) resp_q=64 resp_t=1024 qgen_t=512 filt_q=64 gen=32 ;;
long) resp_q=12 resp_t=2048 qgen_t=512 filt_q=64 gen=32 ;;
*) echo "SQ_BENCH_SIZE=$size: small, full or long" >&2; exit 2 ;;
esac
resp_q="${SQ_BENCH_RESPOND_Q:-$resp_q}"
resp_t="${SQ_BENCH_RESPOND_TOKENS:-$resp_t}"
qgen_t="${SQ_BENCH_QGEN_TOKENS:-$qgen_t}"
filt_q="${SQ_BENCH_FILTER_Q:-$filt_q}"
gen="${SQ_BENCH_GEN:-$gen}"
only="${SQ_BENCH_SHAPES_ONLY:-}"
want() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sq-bench-vs.XXXXXX")
nb="" # the busy neighbour of b1load, stopped on any exit
trap 'rm -rf "$tmp"; [ -z "$nb" ] || kill "$nb" 2>/dev/null' EXIT
echo "  size: $size: respond $resp_q questions x n=5, $resp_t new tokens; qgen 64 x $qgen_t;" \
    "filter $filt_q records; batched decode $gen new tokens"
echo "  load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; $threads threads each side"
echo "  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//');" \
    "flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|f16c|avx512f|avx512bw|avx512_vnni|avx512_bf16|amx_bf16)$' | tr '\n' ' ')"
echo "  OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset} GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-unset}"
limits=$("$eng" limits)
echo "$limits" | grep -v '^limits ' | sed 's/^/  /'
read -r _ bw peak <<<"$(echo "$limits" | grep '^limits ')"
# A second probe right away; the fractions use the better of the two (a probe that met a
# neighbour's burst reads low and would flatter every fraction).
read -r _ b p <<<"$("$eng" limits | grep '^limits ')"
bw=$(awk -v a="$bw" -v b="$b" 'BEGIN { print (b > a) ? b : a }')
peak=$(awk -v a="$peak" -v b="$p" 'BEGIN { print (b > a) ? b : a }')
echo "  limits used below (the better of two probes): read $bw GB/s, FMA peak $peak GFLOP/s"
# The int8 dot instruction's rate (0 without AVX512-VNNI): the limit of the 8-bit-activation
# kernels that quantized weights run on, printed beside their FMA-peak fraction in Table 2.
i8peak=$(echo "$limits" | sed -n 's/^AVX512-VNNI int8 dot (vpdpbusd) \([0-9.]*\) G multiply-adds.*/\1/p')
i8peak=${i8peak:-0}
row_i8=0 # set to $i8peak around the quantized blocks

# ---- the models -------------------------------------------------------------------------------
have_gguf=1
if ! [ -x "$py" ] || ! "$py" -c 'import gguf' 2>/dev/null; then
    echo "  SKIP llama.cpp and the quantized files: $py lacks the gguf package (scripts/install-deps.sh installs the peer environment)"
    have_gguf=0
fi
# One key per generator version: a change to the random model or the converter rebuilds.
key=$(cat bench/bench_engine.c bench/hf_to_gguf.py | sha256sum | cut -c1-12)
mdir="$cache/bench-models"
# model_file SHAPE TYPE: the cached GGUF path (written now when missing).
model_file() {
    local f="$mdir/$1-$2-$key.gguf"
    if [ ! -s "$f" ]; then
        mkdir -p "$mdir"
        rm -f "$mdir/$1-$2-"*.gguf # older generator versions
        [ -d "$tmp/hf-$1" ] || "$eng" make "$tmp/hf-$1" "$1" >/dev/null
        "$py" bench/hf_to_gguf.py "$tmp/hf-$1" "$f.tmp" "$2" >&2 && mv "$f.tmp" "$f"
    fi
    echo "$f"
}
if [ "$have_gguf" = 1 ]; then
    main_model=$(model_file "$shape" bf16)
    want q4_1 && model_file qwen05 q4_1 >/dev/null
    want q8_0 && model_file qwen05 q8_0 >/dev/null
    rm -rf "$tmp"/hf-* # the HF folders were only the converter's input
else
    "$eng" make "$tmp/hf-$shape" "$shape" >/dev/null
    main_model="$tmp/hf-$shape"
fi
if [ -n "${SQ_BENCH_KV:-}" ]; then
    echo "  our KV cache: $SQ_BENCH_KV (SQ_BENCH_KV)"
else
    read -r kv_def kv_w <<<"$("$shp" kvtype "$main_model")"
    echo "  our KV cache: ${kv_def^^}, the engine default (auto: F16 for 16-bit or quantized weights as" \
        "llama.cpp's default, F32 for F32 ones; table 1's $shape file has $kv_w weights)"
fi

# ---- llama.cpp's tools ---------------------------------------------------------------------------
llbin=""
if [ "$have_gguf" = 1 ]; then
    if [ "${SQ_BENCH_LLAMA_BUILD:-1}" = 1 ]; then
        llbin=$(bash bench/llama_cpp_build.sh || true)
    else
        llbin=$(bash bench/llama_cpp_build.sh --cached-only 2>/dev/null || true)
    fi
fi
if [ -n "$llbin" ]; then
    echo "  llama.cpp: ${llbin/#$HOME/\~} (llama-bench, llama-batched-bench; build $("$llbin/llama-bench" --version 2>&1 | sed -n 's/^version: //p' | head -1))"
else
    echo "  SKIP llama.cpp columns: llama-bench / llama-batched-bench not built (bench/llama_cpp_build.sh)"
fi

# ---- one measurement per process ----------------------------------------------------------------
rss() { sed -n 's/^RSS //p' "$tmp/rss"; }
# ours MODEL Q PROMPT N GEN TEMP SAME: bench_shapes's key=value line, with rss_peak (KiB) added
ours() {
    local line
    line=$(/usr/bin/time -f 'RSS %M' -o "$tmp/rss" "$shp" run "$@" 2>"$tmp/ours.err") || {
        # The CPU-time sampler (bench/cpu_share.h) unwinds stacks from a signal handler, which
        # can fault in rare frames; the engine is not at fault then, so measure again without it.
        if [ "${SQ_BENCH_PROFILE:-0}" = 1 ] && grep -q 'terminated by signal' "$tmp/rss"; then
            echo "  the CPU-time sampler crashed the run ($(grep -o 'signal [0-9]*' "$tmp/rss")); measured again without it" >&2
            SQ_BENCH_PROFILE=0 ours "$@"
            return 0
        fi
        echo "  the engine could not run $*: $(grep -v '^RSS' "$tmp/ours.err" | head -1)" >&2
        return 0
    }
    echo "$line rss_peak=$(rss)"
}
# bb MODEL FA ARGS...: llama-batched-bench, its waves summed into one key=value line
bb() {
    [ -n "$llbin" ] || return 0
    local m=$1 fa=$2
    shift 2
    /usr/bin/time -f 'RSS %M' -o "$tmp/rss" "$llbin/llama-batched-bench" -m "$m" -t "$threads" -tb "$threads" \
        -fa "$fa" --output-format jsonl "$@" >"$tmp/bb.out" 2>"$tmp/bb.err" || {
        echo "  llama-batched-bench failed ($*): $(grep -i 'error' "$tmp/bb.err" | head -1)" >&2
        return 0
    }
    grep '^{' "$tmp/bb.out" | "$py" -c '
import json, sys
w = [json.loads(l) for l in sys.stdin]
if w:
    print("t=%.4f t_pp=%.4f t_tg=%.4f tokens_out=%d decode_tokens=%d records=%d waves=%d" % (
        sum(x["t"] for x in w), sum(x["t_pp"] for x in w), sum(x["t_tg"] for x in w),
        sum(x["pl"] * x["tg"] for x in w), sum(x["pl"] * x["tg"] for x in w), sum(x["pl"] for x in w), len(w)))' |
        sed "s/\$/ rss_peak=$(rss)/"
}
# lb MODEL: llama-bench pp256 and tg64, flash attention on, 3 repetitions each (SQ_BENCH_LB_REPS)
lb() {
    [ -n "$llbin" ] || return 0
    /usr/bin/time -f 'RSS %M' -o "$tmp/rss" "$llbin/llama-bench" -m "$1" -t "$threads" -fa on -p 256 -n 64 -r "${SQ_BENCH_LB_REPS:-3}" \
        -o jsonl >"$tmp/lb.out" 2>"$tmp/lb.err" || {
        echo "  llama-bench failed: $(grep -i error "$tmp/lb.err" | head -1)" >&2
        return 0
    }
    "$py" -c '
import json, sys
r = {}
for l in open(sys.argv[1]):
    if l.startswith("{"):
        j = json.loads(l)
        r["pp" if j["n_prompt"] else "tg"] = j["avg_ts"]
print("pp=%.3f tg=%.3f" % (r.get("pp", 0), r.get("tg", 0)))' "$tmp/lb.out" | sed "s/\$/ rss_peak=$(rss)/"
}
# ctx WAVE PROMPT GEN: llama.cpp context cells for one wave (every sequence its own cells)
ctx() { echo $(($1 * ($2 + $3) + 256)); }
# waves SEQS: the -npl list that runs SEQS sequences 64 at a time
waves() {
    local s=$1 l=""
    while [ "$s" -gt 64 ]; do l="$l,64" s=$((s - 64)); done
    echo "${l#,},$s" | sed 's/^,//'
}

table="$tmp/table"
hdr() { printf '  %-50s %10s %10s %10s %7s %7s   %s\n' "figure" "llama.cpp" "llama.cpp" "scalequest" "ratio" "ratio" \
    "ours vs the limit; peak RSS ours / llama.cpp" "" "fa on" "fa off" "" "fa on" "fa off" ""; }
# row NAME HOW Q OURS_LINE LLAMA_ON_LINE LLAMA_OFF_LINE: one table line. HOW: b1 (decode rate,
# read bound), prefill (prompt rate, FMA peak), decode (decode rate, FMA peak), total (tokens
# out / wall), records (Q / wall).
row() {
    awk -v name="$1" -v how="$2" -v q="$3" -v o="$4" -v on="$5" -v off="$6" -v bw="$bw" -v peak="$peak" -v i8="$row_i8" '
    function get(line, k,   a, i, n) { n = split(line, a, " "); for (i = 1; i <= n; i++) if (index(a[i], k "=") == 1) return substr(a[i], length(k) + 2); return "" }
    function ours(l) {
        if (l == "") return 0
        if (how == "b1" || how == "decode") return get(l, "decode_tokens") / get(l, "t_decode")
        if (how == "prefill") return get(l, "prompt_tokens") / get(l, "t_forward")
        if (how == "total") return get(l, "tokens_out") / get(l, "wall")
        return q / get(l, "wall")
    }
    function theirs(l) {
        if (l == "") return 0
        if (how == "b1") return get(l, "tg")
        if (how == "prefill") return get(l, "pp")
        if (how == "decode") return get(l, "decode_tokens") / get(l, "t_tg")
        if (how == "total") return get(l, "tokens_out") / get(l, "t")
        return get(l, "records") / get(l, "t")
    }
    function num(x) { return x <= 0 ? "-" : sprintf(x < 10 ? "%.2f" : "%.1f", x) }
    function ratio(a, b) { return (a > 0 && b > 0) ? sprintf("%.2fx", a / b) : "-" }
    BEGIN {
        a = ours(o); b = theirs(on); c = theirs(off)
        lim = "ours not measured"
        if (a > 0) {
            lf = get(o, "layer_flops"); hf = get(o, "head_flops"); wb = get(o, "weight_bytes")
            pt = get(o, "prompt_tokens"); dr = get(o, "decode_rows")
            if (how == "b1") lim = sprintf("%.0f%% of the read bound (%.1f tok/s)", 100 * a * wb / (bw * 1e9), bw * 1e9 / wb)
            else {
                if (how == "prefill") fr = (pt * lf + hf) / get(o, "t_forward")
                else if (how == "decode") fr = a * (lf + hf)
                else fr = (lf * (pt + dr) + hf * (dr + q)) / get(o, "wall")
                lim = sprintf("%.0f%% of FMA peak", 100 * fr / (peak * 1e9))
                # i8: multiply-adds per second, two FLOP each
                if (i8 > 0) lim = lim sprintf(" (%.0f%% of the int8 dot peak)", 100 * fr / (2 * i8 * 1e9))
            }
            r2 = get(on, "rss_peak"); if (r2 == "") r2 = get(off, "rss_peak")
            lim = lim sprintf("; RSS %d / %s MiB", get(o, "rss_peak") / 1024, r2 == "" ? "-" : sprintf("%d", r2 / 1024))
        }
        printf "  %-50s %10s %10s %10s %7s %7s   %s\n", name, num(b), num(c), num(a), ratio(a, b), ratio(a, c), lim
    }' | tee -a "$table"
}
# split OURS_LINE: where our time went (wall: forward / sampling / rest; CPU: by kernel family)
split() {
    awk -v o="$1" -v thr="$threads" '
    function get(line, k,   a, i, n) { n = split(line, a, " "); for (i = 1; i <= n; i++) if (index(a[i], k "=") == 1) return substr(a[i], length(k) + 2); return "" }
    BEGIN {
        if (o == "") exit
        w = get(o, "wall"); f = get(o, "t_forward"); s = get(o, "t_sample"); r = w - f - s
        if (r < 0) r = 0
        printf "      ours, wall: forward %.0f%%, sampling %.0f%%, rest %.0f%%; CPU %.2f of %d cores busy", 100 * f / w, 100 * s / w, 100 * r / w, get(o, "cpu_s") / w, thr
        if (get(o, "cpu_samples") > 0)
            printf "; CPU time: attention %.0f%%, GEMM %.0f%%, sampling %.0f%%, OpenMP wait %.0f%%, rest %.0f%% (%d samples)",
                100 * get(o, "cpu_attention"), 100 * get(o, "cpu_gemm"), 100 * get(o, "cpu_sampling"), 100 * get(o, "cpu_wait"), 100 * get(o, "cpu_rest"), get(o, "cpu_samples")
        printf "\n"
    }' | tee -a "$table"
}

# paired_b1 MODEL: batch 1 against reads taken beside it. The read bound above comes from probes
# at the start of the run, minutes before the step runs; this machine's read rate moves by 10-20%
# from one second to the next, so that fraction carries the drift between the two moments.
# bench_decode1 alternates short runs of one-token steps with reads of the model's own weight
# pages and of the 1 GiB probe, and keeps the median of the per-round ratios.
paired_b1() {
    local r
    r=$("$dec1" "$1" "${SQ_BENCH_PAIRED_ROUNDS:-7}" 8 2>/dev/null | sed -n 's/^median of \([0-9]*\) rounds: step \([0-9.]*\) GB\/s; the step at \([0-9.]*\)% of the read of its own weights, \([0-9.]*\)% of the anonymous probe.*/\1 \2 \3 \4/p')
    [ -n "$r" ] || { echo "      paired batch 1: bench_decode1 did not run" | tee -a "$table"; return 0; }
    read -r n g own anon <<<"$r"
    echo "      paired with reads beside it (median of $n rounds): step $g GB/s, ${own}% of the read of its own weights, ${anon}% of the 1 GiB probe" | tee -a "$table"
}

# model_block TITLE MODEL FIGS: batch 1, prefill and the batched-decode figures on one file.
model_block() {
    local title=$1 m=$2 figs=$3 o1="" o2="" l="" o b
    echo "  $title ($(($(stat -c %s "$m") / 1000000)) MB)" | tee -a "$table"
    if [[ " $figs " == *" b1 "* ]] || [[ " $figs " == *" prefill "* ]]; then
        [[ " $figs " == *" b1 "* ]] && o1=$(ours "$m" 1 16 1 64 0.7 0)
        [[ " $figs " == *" prefill "* ]] && o2=$(ours "$m" 1 256 1 1 0.7 0)
        l=$(lb "$m")
        [[ " $figs " == *" b1 "* ]] && row "decode, batch 1 (tok/s)" b1 1 "$o1" "$l" "" && paired_b1 "$m"
        [[ " $figs " == *" prefill "* ]] && row "prefill, 256 tokens (tok/s)" prefill 1 "$o2" "$l" ""
    fi
    if [[ " $figs " == *" b1load "* ]]; then
        # The same batch-1 decode while one busy process (a neighbour's compile, say) holds a
        # core: how each side's thread pool copes with losing one of its cores.
        yes >/dev/null &
        nb=$!
        o=$(ours "$m" 1 16 1 64 0.7 0)
        l=""
        [ -n "$llbin" ] && l=$(/usr/bin/time -f 'RSS %M' -o "$tmp/rss" "$llbin/llama-bench" -m "$m" -t "$threads" -fa on \
            -p 0 -n 64 -r 1 -o jsonl 2>/dev/null | "$py" -c '
import json, sys
print(" ".join("tg=%.3f" % json.loads(l)["avg_ts"] for l in sys.stdin if l.startswith("{")))' || true)
        [ -n "$l" ] && l="$l rss_peak=$(rss)"
        kill "$nb"
        wait "$nb" 2>/dev/null || true
        nb=""
        row "decode, batch 1, one core busy elsewhere (tok/s)" b1 1 "$o" "$l" ""
    fi
    for b in 8 32 64; do
        [[ " $figs " == *" b$b "* ]] || continue
        o=$(ours "$m" 1 128 "$b" "$gen" 0.7 0)
        l=$(bb "$m" on -c "$(ctx "$b" 128 "$gen")" -npp 128 -ntg "$gen" -npl "$b" -pps)
        row "decode, batch $b, one 128-token prompt (tok/s)" decode 1 "$o" "$l" ""
    done
    [ -n "$o1$o2" ] && last_ours="${o1:-$o2}"
    return 0
}

last_ours=""
echo | tee -a "$table"
echo "  Table 1: the pipeline's shapes, random $shape weights" | tee -a "$table"
hdr | tee -a "$table"
figs=""
for f in b1 prefill b1load b8 b32 b64; do want "$f" && figs="$figs $f"; done
[ -n "$figs" ] && model_block "$shape, BF16 matrices, one GGUF file on both sides" "$main_model" "$figs "
m="$main_model"
if want respond; then
    s=$((resp_q * 5))
    o=$(SQ_BENCH_PROFILE=1 ours "$m" "$resp_q" 100 5 "$resp_t" 0.7 0)
    c=$(ctx $((s < 64 ? s : 64)) 100 "$resp_t")
    on=$(bb "$m" on -c "$c" -npp 100 -ntg "$resp_t" -npl "$(waves "$s")" -pps)
    off=$(bb "$m" off -c "$c" -npp 100 -ntg "$resp_t" -npl "$(waves "$s")" -pps)
    row "respond: $resp_q q x 100 tok, n=5, $resp_t new (tok/s)" total "$resp_q" "$o" "$on" "$off"
    # The prefills differ (ours: one per question; llama.cpp: one per wave), the decode steps
    # do not: their rate alone is the like-for-like figure.
    row "  its decode steps alone (tok/s)" decode "$resp_q" "$o" "$on" "$off"
    split "$o"
    # Ours again with the other KV cache: F32 (exact, twice the bytes) when the default gave
    # F16 as llama.cpp's, else F16.
    if [ -n "$o" ] && [ -z "${SQ_BENCH_KV:-}" ]; then
        kv2=f32
        [[ "$o" == *"kv_type=f16"* ]] || kv2=f16
        o2=$(SQ_BENCH_KV=$kv2 SQ_BENCH_PROFILE=1 ours "$m" "$resp_q" 100 5 "$resp_t" 0.7 0)
        row "  the same, our KV cache in ${kv2^^} (tok/s)" total "$resp_q" "$o2" "$on" "$off"
        split "$o2"
    fi
    if [ "${SQ_BENCH_DRIVER:-0}" = 1 ] && "$py" -c 'import llama_cpp' 2>/dev/null; then
        # The same work through libllama with llama.cpp's sampler chain, one prompt per
        # question shared by nothing (bench/llamacpp_peer.py): the sampling-included check.
        on=$(/usr/bin/time -f 'RSS %M' -o "$tmp/rss" "$py" bench/llamacpp_peer.py "$m" "$threads" 1 "$resp_q" 100 5 \
            "$resp_t" 0.7 0 2>/dev/null | sed 's/wall=/t=/; s/generated=/tokens_out=/' || true)
        [ -n "$on" ] && on="$on rss_peak=$(rss)"
        row "  the same, llama.cpp through libllama, sampling" total "$resp_q" "$o" "$on" ""
    fi
    [ -n "$o" ] && last_ours="$o"
fi
if want qgen; then
    o=$(SQ_BENCH_PROFILE=1 ours "$m" 64 16 1 "$qgen_t" 1.0 1)
    c=$(ctx 64 16 "$qgen_t")
    # The qgen stage sends one request per record, so both sides prefill the prefix 64 times.
    on=$(bb "$m" on -c "$c" -npp 16 -ntg "$qgen_t" -npl 64)
    off=""
    [ "$size" != small ] && off=$(bb "$m" off -c "$c" -npp 16 -ntg "$qgen_t" -npl 64)
    row "qgen: 16-token prefix, 64 seqs, $qgen_t new (tok/s)" total 64 "$o" "$on" "$off"
    row "  its decode steps alone (tok/s)" decode 64 "$o" "$on" "$off"
    split "$o"
fi
if want filter; then
    o=$(SQ_BENCH_PROFILE=1 ours "$m" "$filt_q" 250 1 16 0 0)
    on=$(bb "$m" on -c "$(ctx "$filt_q" 250 16)" -npp 250 -ntg 16 -npl "$filt_q")
    row "filter solvable: $filt_q x 250 tok, 16 new (records/s)" records "$filt_q" "$o" "$on" ""
    split "$o"
fi
if want n5; then
    for p in 128 512; do
        a=$(ours "$m" 1 "$p" 5 "$gen" 0.7 0)
        b=$(ours "$m" 5 "$p" 1 "$gen" 0.7 1)
        on=$(bb "$m" on -c "$(ctx 5 "$p" "$gen")" -npp "$p" -ntg "$gen" -npl 5 -pps)
        row "n=5 on one $p-token prompt, $gen new (tok/s)" total 1 "$a" "$on" ""
        awk -v a="$a" -v b="$b" -v p="$p" '
        function get(line, k,   x, i, n) { n = split(line, x, " "); for (i = 1; i <= n; i++) if (index(x[i], k "=") == 1) return substr(x[i], length(k) + 2); return "" }
        BEGIN { if (a != "" && b != "") printf "      prefix sharing (ours): n=5 in one request %.3f s, five requests of the same %d-token prompt %.3f s: %.2fx\n",
            get(a, "wall"), p, get(b, "wall"), get(b, "wall") / get(a, "wall") }' | tee -a "$table"
    done
fi
if [ -n "$last_ours" ]; then
    echo "$last_ours" | awk '
    function get(line, k,   x, i, n) { n = split(line, x, " "); for (i = 1; i <= n; i++) if (index(x[i], k "=") == 1) return substr(x[i], length(k) + 2); return "" }
    { printf "  KV cache bytes per token: scalequest %d (%s K and V, as the rows above ran), llama.cpp %d (F16 K and V, its default): %d layers x %d K/V width\n",
        get($0, "kv_bytes_per_token"), toupper(get($0, "kv_type")), 2 * get($0, "n_layers") * get($0, "kv_dim") * 2, get($0, "n_layers"), get($0, "kv_dim") }' |
        tee -a "$table"
fi

# ---- table 2: quantized files ----------------------------------------------------------------------
q_figs="b1 prefill b32"
if [ "$have_gguf" = 1 ] && { want q4_1 || want q8_0 || want smollm; }; then
    echo | tee -a "$table"
    echo "  Table 2: quantized GGUF weights (issue 14)" | tee -a "$table"
    hdr | tee -a "$table"
    row_i8=$i8peak
    want q4_1 && model_block "qwen05 shape, Q4_1 layers, Q8_0 embedding" "$(model_file qwen05 q4_1)" "$q_figs"
    want q8_0 && model_block "qwen05 shape, Q8_0" "$(model_file qwen05 q8_0)" "$q_figs"
    if want smollm; then
        smol="${SQ_BENCH_SMOLLM:-$(./build/rel/scalequest models 2>/dev/null | sed -n 's/^  installed: //p' | head -1)}"
        if [ -n "$smol" ] && [ -f "$smol" ]; then
            model_block "SmolLM2-135M-Instruct Q4_1 (the registry's file)" "$smol" "$q_figs"
        else
            echo "  SKIP smollm2-135m-instruct: not installed (scripts/install-deps.sh installs it)" | tee -a "$table"
        fi
    fi
fi

# The limits again at the end; fractions above use the start's.
read -r _ bw2 peak2 <<<"$("$eng" limits | grep '^limits ')"
echo
echo "  limits: read $bw GB/s, FMA peak $peak GFLOP/s at the start; $bw2 GB/s, $peak2 GFLOP/s at the end" \
    "(fractions above use the start's; with the end's they would be x$(awk -v a="$bw" -v b="$bw2" 'BEGIN { printf "%.2f", a / b }')" \
    "of the read bound, x$(awk -v a="$peak" -v b="$peak2" 'BEGIN { printf "%.2f", a / b }') of the FMA peak)"
echo "  load average at end: $(cut -d' ' -f1-3 /proc/loadavg); this script took $(($(date +%s) - t_begin)) s"
