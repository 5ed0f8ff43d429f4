#!/usr/bin/env bash
# Training throughput (forward + backward + AdamW, fp32) of scalequest against transformers'
# Llama in PyTorch on the same shape, thread count and batch, in the same run. Default shape:
# stories15M (dim 288, 6 layers, 6 heads, ffn 768, vocab 32000), sequence 256, batch 8.
#   bench/train.sh [STEPS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-5}
THREADS=${2:-2}
SHAPE=(288 6 6 6 768 32000 256 8)
# Both sides run their threads from an OpenMP pool (ours also threads OpenBLAS's GEMMs);
# threads that spin while waiting steal cores from whatever else runs on this shared
# machine. Passive waiting applies to both sides of the comparison. SQ_TRAIN_PROFILE=1 adds
# our per-phase times on stderr.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
peer_py="${SQ_PEER_PYTHON:-$HOME/.cache/scalequest/peers/bin/python}"
bin=build/rel/bench/bench_train
[ -x "$bin" ] || { echo "bench/train.sh: $bin missing (make)" >&2; exit 1; }

ours=$("$bin" "${SHAPE[@]}" "$STEPS" "$THREADS")
echo "$ours"
if [ ! -x "$peer_py" ]; then
    echo "bench/train.sh: peer Python missing; no PyTorch comparison"
    exit 0
fi
theirs=$("$peer_py" - "${SHAPE[@]}" "$STEPS" "$THREADS" <<'PY'
import json, resource, sys, time
import torch, transformers
dim, layers, heads, kv, ffn, vocab, seq, batch, steps, threads = map(int, sys.argv[1:])
torch.set_num_threads(threads)
torch.manual_seed(0)
cfg = transformers.LlamaConfig(vocab_size=vocab, hidden_size=dim, intermediate_size=ffn, num_hidden_layers=layers,
                               num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=seq,
                               tie_word_embeddings=True, rms_norm_eps=1e-5)
model = transformers.LlamaForCausalLM(cfg).float().train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
x = torch.randint(0, vocab, (batch, seq))
for s in range(steps + 1):
    if s == 1:
        t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = model(input_ids=x, labels=x).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
dt = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"impl": f"pytorch {torch.__version__} transformers {transformers.__version__}",
                  "tokens_per_s": round(batch * seq * steps / dt, 1), "peak_rss_mb": round(rss, 1),
                  "loss": round(float(loss.detach()), 4)}))
PY
)
echo "$theirs"
python3 - "$ours" "$theirs" "$THREADS" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"train tokens/s (stories15M shape, seq 256, batch 8, {sys.argv[3]} threads, fp32): "
      f"scalequest {a['tokens_per_s']:.0f} vs PyTorch {b['tokens_per_s']:.0f} = {a['tokens_per_s'] / b['tokens_per_s']:.2f}x; "
      f"peak RSS {a['peak_rss_mb']:.0f} MB vs {b['peak_rss_mb']:.0f} MB")
PY
