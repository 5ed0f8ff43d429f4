"""llama.cpp (llama-cpp-python) on the same GGUF file as bench/quant.sh's engine run:
batch-1 decode and prefill tokens/s with the same thread count, printed in the same form.
    quant_peer.py MODEL.gguf THREADS"""
import sys
import time

try:
    import llama_cpp
except ImportError:
    print("  llama.cpp: not measured (peer Python lacks llama_cpp; scripts/install-deps.sh builds it)")
    sys.exit(0)

path, threads = sys.argv[1], int(sys.argv[2])
llm = llama_cpp.Llama(model_path=path, n_ctx=512, n_batch=256, n_threads=threads, n_threads_batch=threads,
                      verbose=False, seed=0)
vocab = llm.n_vocab()
ids = [3 + (i * 2654435761) % (vocab - 3) for i in range(256)]
llm.eval(ids[:8])  # warm-up: weights paged in
llm.reset()
t0 = time.perf_counter()
llm.eval(ids)
prefill = 256 / (time.perf_counter() - t0)
llm.reset()
llm.eval(ids[:16])
tok, n = ids[16], 32
t0 = time.perf_counter()
for _ in range(n):
    llm.eval([tok])
    tok = int(llm.scores[llm.n_tokens - 1].argmax())
decode = n / (time.perf_counter() - t0)
print(f"  llama.cpp {llama_cpp.__version__}: decode, batch 1 {decode:8.1f} tok/s   prefill, 256 tokens {prefill:8.1f} tok/s")
print(f"QUANT_PEER {decode:.3f} {prefill:.3f}")
