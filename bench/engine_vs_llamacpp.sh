#!/usr/bin/env bash
# The engine beside llama.cpp at the pipeline's shapes, on the same GGUF file, in the same
# run, each figure measured alternately (ours, then llama.cpp's, right after) so that both
# see about the same load; printed side by side with the ratio, and ours as a fraction of
# this machine's limits measured in the same run (bench_engine limits: read bandwidth, FMA
# or BF16 dot-product peak).
#   model: a random-weight BF16 model of SQ_BENCH_SHAPE (qwen05 = Qwen2-0.5B's shape, the
#          default; stories15m), written as an HF folder by bench_engine and then as one
#          GGUF by bench/hf_to_gguf.py; both engines read that GGUF.
#   figures: batch-1 decode; prefill (256 tokens); aggregate decode at batch 8/32/64 with
#          128-token prompts, B independent prompts on both sides; the respond shape
#          (SQ_BENCH_RESPOND_Q questions, default 64, of 100 tokens, n=5, T 0.7, 1,024 new
#          tokens, 2,048 under SQ_LONG=1; SQ_BENCH_RESPOND_TOKENS overrides); the qgen shape
#          (a 16-token bare prefix, 64 sequences, 512 tokens, SQ_BENCH_QGEN_TOKENS overrides);
#          the filter-solvable shape (SQ_BENCH_FILTER_Q records, default 64, of 250 tokens,
#          a 16-token greedy reply); n=5 with prefix sharing against five independent
#          requests of the same 128-token prompt. Peak RSS of each process; KV bytes/token.
#   llama.cpp: libllama from the llama.cpp source vendored in llama-cpp-python 0.3.36, driven
#          by bench/llamacpp_peer.py the way llama-batched-bench drives it (flash attention
#          on; SQ_BENCH_FLASH=0 turns it off). Skipped with a reason when absent.
#   llama-bench (tg, pp) runs too as a cross-check once bench/llama_cpp_build.sh has built it
#          (started here when missing; SQ_BENCH_LLAMA_BUILD=0 skips building).
#   SQ_BENCH_SHAPES_ONLY=fig,fig limits the figures (b1,prefill,b8,b32,b64,respond,qgen,filter,n5,smollm).
#   SQ_BENCH_KV=f32|f16|bf16: our KV cache's element type (default f32; llama.cpp's is F16).
#   Our processes wait passively at barriers unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set
#   (GOMP_SPINCOUNT=300000, libgomp's own default, gives the spinning behaviour of before).
set -eu
cd "$(dirname "$0")/.."
eng=build/rel/bench/bench_engine
shp=build/rel/bench/bench_shapes
[ -x "$eng" ] && [ -x "$shp" ] || make -s "$eng" "$shp"
py="${SQ_PEER_PYTHON:-$HOME/.cache/scalequest/peers/bin/python}"
shape="${SQ_BENCH_SHAPE:-qwen05}"
threads=$(nproc)
flash="${SQ_BENCH_FLASH:-1}"
gen="${SQ_BENCH_GEN:-32}"
resp_q="${SQ_BENCH_RESPOND_Q:-64}"
resp_t=1024
[ "${SQ_LONG:-0}" = 1 ] && resp_t=2048
resp_t="${SQ_BENCH_RESPOND_TOKENS:-$resp_t}"
qgen_t="${SQ_BENCH_QGEN_TOKENS:-512}"
filt_q="${SQ_BENCH_FILTER_Q:-64}"
only="${SQ_BENCH_SHAPES_ONLY:-}"
want() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sq-bench-vs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "  load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $threads cores"
echo "  KV cache: ${SQ_BENCH_KV:-f32}; OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset} GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-unset} (ours wait passively when both are unset)"
echo "  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "  cpu flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|f16c|avx512f|avx512bw|avx512_vnni|avx512_bf16|amx_bf16|amx_tile)$' | tr '\n' ' ')"
limits=$("$eng" limits)
echo "$limits" | grep -v '^limits ' | sed 's/^/  /'
read -r _ bw peak <<<"$(echo "$limits" | grep '^limits ')"
"$eng" make "$tmp/hf" "$shape" >/dev/null
gguf="$tmp/model.gguf"
have_peer=1
if ! [ -x "$py" ] || ! "$py" -c 'import gguf, llama_cpp' 2>/dev/null; then
    echo "  SKIP llama.cpp: $py lacks gguf or llama_cpp (scripts/install-deps.sh installs the peer environment)"
    have_peer=0
fi
model="$tmp/hf"
if [ "$have_peer" = 1 ]; then
    "$py" bench/hf_to_gguf.py "$tmp/hf" "$gguf"
    rm -rf "$tmp/hf"
    model="$gguf"
    echo "  model: random $shape, BF16 matrices, one GGUF file read by both engines ($(($(stat -c %s "$gguf") / 1000000)) MB)"
fi

# kv KEY LINE: the value of KEY= in a key=value line
kv() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
rss_of() { sed -n 's/^RSS //p' "$1"; }
ours() { /usr/bin/time -f 'RSS %M' -o "$tmp/rss" "$shp" run "$model" "$@"; }
theirs() {
    [ "$have_peer" = 1 ] || return 0
    /usr/bin/time -f 'RSS %M' -o "$tmp/rss" "$py" bench/llamacpp_peer.py "$gguf" "$threads" "$flash" "$@" || true
}
table="$tmp/table"
row() { printf '  %-44s %12s %12s %8s   %s\n' "$@" | tee -a "$table"; }
row "figure" "llama.cpp" "scalequest" "ratio" "ours vs the limit; peak RSS ours / llama.cpp"

# fig NAME UNIT HOW Q PROMPT N GEN TEMP SAME: runs both sides, prints a row. HOW picks the
# figure: decode (decode tokens / decode time), prefill (prompt tokens / prefill time),
# total (generated tokens / wall), records (Q / wall).
fig() {
    local name=$1 unit=$2 how=$3
    shift 3
    local o t ro rt
    o=$(ours "$@" 2>"$tmp/ours.err") || { o=""; echo "  $name: the engine could not run it: $(head -1 "$tmp/ours.err")"; }
    ro=$(rss_of "$tmp/rss")
    t=$(theirs "$@" 2>"$tmp/peer.err")
    rt=$(rss_of "$tmp/rss")
    [ -s "$tmp/peer.err" ] && grep -v '^llama\|^load\|^print_info\|^$' "$tmp/peer.err" | head -3 | sed 's/^/  llama.cpp: /'
    awk -v how="$how" -v o="$o" -v t="$t" -v bw="$bw" -v peak="$peak" -v ro="$ro" -v rt="$rt" \
        -v name="$name" -v unit="$unit" -v q="$1" '
    function get(line, k,   a, i, n) { n = split(line, a, " "); for (i = 1; i <= n; i++) if (index(a[i], k "=") == 1) return substr(a[i], length(k) + 2); return "" }
    function fig(line, side) {
        if (line == "") return 0
        if (how == "decode") return get(line, "decode_tokens") / get(line, "t_decode")
        if (how == "prefill") return get(line, "prompt_tokens") / (side ? get(line, "t_prefill") : get(line, "t_forward"))
        if (how == "total") return get(line, "generated") / get(line, "wall")
        return q / get(line, "wall")
    }
    BEGIN {
        a = fig(o, 0); b = fig(t, 1)
        if (o == "") { printf "  %-44s %12s %12s %8s   (ours not measured)\n", name " (" unit ")", (b > 0) ? sprintf("%.2f", b) : "-", "-", "-"; exit }
        lf = get(o, "layer_flops"); hf = get(o, "head_flops"); wb = get(o, "weight_bytes")
        if (how == "decode" && q == 1) lim = sprintf("%.0f%% of the read bound (%.1f tok/s)", 100 * a * wb / (bw * 1e9), bw * 1e9 / wb)
        else if (how == "prefill") lim = sprintf("%.0f%% of peak (LM head for the last token only)", 100 * (get(o, "prompt_tokens") * lf + hf) / get(o, "t_forward") / (peak * 1e9))
        else if (how == "decode") lim = sprintf("%.0f%% of peak", 100 * a * (lf + hf) / (peak * 1e9))
        else lim = sprintf("%.0f%% of peak (matmul FLOPs)", 100 * (get(o, "prompt_tokens") * lf + get(o, "generated") * (lf + hf)) / get(o, "wall") / (peak * 1e9))
        share = ""
        if (how == "total" || how == "records") {
            w = get(o, "wall"); f = get(o, "t_forward"); s = get(o, "t_sample")
            share = sprintf("; time: forward %.0f%%, sampling %.0f%%, rest %.0f%%", 100 * f / w, 100 * s / w, 100 * (w - f - s) / w)
        }
        ratio = (b > 0) ? sprintf("%.2fx", a / b) : "-"
        printf "  %-44s %12s %12s %8s   %s; RSS %d / %s MiB%s\n", name " (" unit ")", (b > 0) ? sprintf(b < 10 ? "%.2f" : "%.1f", b) : "-", sprintf(a < 10 ? "%.2f" : "%.1f", a), ratio, lim, ro / 1024, (rt != "" && b > 0) ? sprintf("%d", rt / 1024) : "-", share
    }' | tee -a "$table"
    [ -n "$o" ] && echo "$o" >"$tmp/last_ours"
    [ -n "$t" ] && echo "$t" >"$tmp/last_theirs"
    return 0
}

want b1 && fig "decode, batch 1" "tok/s" decode 1 16 1 $((gen * 2)) 0.7 0
want prefill && fig "prefill, 256 tokens" "tok/s" prefill 1 256 1 1 0.7 0
for b in 8 32 64; do
    want "b$b" && fig "decode, batch $b, 128-token prompts" "tok/s" decode "$b" 128 1 "$gen" 0.7 0
done
want respond && fig "respond: $resp_q q x 100 tok, n=5, $resp_t new" "tok/s" total "$resp_q" 100 5 "$resp_t" 0.7 0
want qgen && fig "qgen: 16-token prefix, 64 seqs, $qgen_t new" "tok/s" total 64 16 1 "$qgen_t" 0.7 1
want filter && fig "filter solvable: $filt_q x 250 tok, 16 new" "rec/s" records "$filt_q" 250 1 16 0 0
if want n5; then
    fig "n=5, 128-token prompt, $((gen * 2)) new (shared)" "tok/s" total 1 128 5 $((gen * 2)) 0.7 0
    a=$(cat "$tmp/last_ours")
    b=$(ours 5 128 1 $((gen * 2)) 0.7 1)
    awk -v a="$(kv wall "$a")" -v b="$(kv wall "$b")" 'BEGIN {
        printf "  prefix sharing: n=5 in one request %.3f s, five independent requests of the same prompt %.3f s: %.2fx\n", a, b, b / a }' |
        tee -a "$table"
fi
[ -s "$tmp/last_ours" ] && echo "  KV cache bytes per token: scalequest $(kv kv_bytes_per_token "$(cat "$tmp/last_ours" 2>/dev/null)") ($(kv kv_type "$(cat "$tmp/last_ours" 2>/dev/null)") K and V)," \
    "llama.cpp $(kv kv_bytes_per_token "$(cat "$tmp/last_theirs" 2>/dev/null)") (F16 K and V, its default)" | tee -a "$table"
# The SmolLM2-135M-Instruct Q4_1 file (the model registry's), where installed: batch 1 and
# prefill on both sides (the engine reads Q4_1 only where the quantized-weights code is in).
smol="${SQ_BENCH_SMOLLM:-$(find "${SQ_MODELS:-$HOME/.cache/scalequest/models}" -name 'SmolLM2-135M-Instruct.Q4_1.gguf' 2>/dev/null | head -1)}"
if [ -n "$smol" ] && [ -f "$smol" ] && [ "$have_peer" = 1 ] && want smollm; then
    model="$smol" gguf="$smol"
    echo "  SmolLM2-135M-Instruct, Q4_1 (the same file on both sides):"
    fig "smollm2 q4_1: decode, batch 1" "tok/s" decode 1 16 1 $((gen * 2)) 0.7 0
    fig "smollm2 q4_1: prefill, 256 tokens" "tok/s" prefill 1 256 1 1 0.7 0
fi
# llama.cpp's own tools, when bench/llama_cpp_build.sh has built them (a long build, once,
# cached): llama-bench's tg and pp on the same file, as a cross-check of the figures above.
# SQ_BENCH_LLAMA_BUILD=0 uses a finished build only and never starts one.
if [ "${SQ_BENCH_LLAMA_BUILD:-1}" = 1 ]; then
    llbin=$(bash bench/llama_cpp_build.sh || true)
else
    llbin=$(bash bench/llama_cpp_build.sh --cached-only 2>/dev/null || true)
fi
if [ -n "$llbin" ] && [ -f "$gguf" ] && { want b1 || want prefill; }; then
    "$llbin/llama-bench" -m "$gguf" -t "$threads" -fa "$flash" -p 256 -n $((gen * 2)) -r 1 -o csv 2>/dev/null |
        tr -d '"' | awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
            { printf "  llama-bench: pp %s tg %s: %.1f tok/s\n", $col["n_prompt"], $col["n_gen"], $col["avg_ts"] }' || true
fi
# The limits again at the end; the best of both probes is the least biased on a busy machine.
read -r _ bw2 peak2 <<<"$("$eng" limits | grep '^limits ')"
echo "  limits again at the end: read $bw2 GB/s, peak $peak2 GFLOP/s (fractions above use the start's $bw / $peak;" \
    "scale them by the ratio where the end's are higher)"
echo "  load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
