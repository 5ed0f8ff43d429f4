#!/usr/bin/env bash
# io: opening model files, ours against Python's reference readers in the same run.
#   GGUF: parse + every token string of the 32000-token Llama vocabulary (gguf-py GGUFReader,
#   run once: it needs seconds per vocabulary);
#   safetensors: parse + touch every tensor of stories260K (safetensors safe_open, numpy).
# Prints seconds per open for both, the ratio, and each side's peak RSS.
set -u
cd "$(dirname "$0")/.."
py="${SQ_PEER_PYTHON:-$HOME/.cache/scalequest/peers/bin/python}"
bin=build/rel/bench/bench_io
assets=../shared/assets
[ -x "$bin" ] || { echo "io: $bin not built (make all)"; exit 1; }
[ -d "$assets" ] || { echo "io: SKIP (../shared/assets absent)"; exit 0; }
[ -x "$py" ] || { echo "io: SKIP (peer Python absent)"; exit 0; }
run() { # label file n_ours n_python
    read -r ours ours_kb _ < <("$bin" "$2" "$3")
    read -r peer peer_kb < <("$py" - "$2" "$4" <<'PY'
import resource, sys, time
path, n = sys.argv[1], int(sys.argv[2])
import gguf  # imports outside the timed loop
from safetensors import safe_open
t = time.perf_counter()
for _ in range(n):
    if path.endswith(".gguf"):
        r = gguf.GGUFReader(path)
        f = r.fields["tokenizer.ggml.tokens"]
        s = sum(len(bytes(f.parts[i])) for i in f.data)
    else:
        with safe_open(path, "np") as fh:
            s = sum(int(fh.get_tensor(k).reshape(-1)[:1].view("uint8")[0]) for k in fh.keys())
print((time.perf_counter() - t) / n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
PY
)
    awk -v l="$1" -v a="$ours" -v b="$peer" -v ka="$ours_kb" -v kb="$peer_kb" 'BEGIN {
        printf "io: %-34s ours %.3f ms, python %.3f ms: %.1fx faster; peak RSS ours %.1f MB, python %.1f MB\n",
               l, a * 1e3, b * 1e3, b / a, ka / 1024, kb / 1024 }'
}
run "gguf open + 32000 tokens" "$assets/vocab/ggml-vocab-llama-spm.gguf" 20 1
run "safetensors open stories260K" "$assets/models/stories260K-hf/model.safetensors" 200 50
