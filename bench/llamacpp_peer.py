"""llama.cpp's side of bench/engine_vs_llamacpp.sh: the same work as `bench_shapes run`,
done with libllama's C API (through the llama_cpp bindings of the peer environment, which
builds libllama from the llama.cpp source vendored in llama-cpp-python 0.3.36), the way
llama-batched-bench drives it: every sequence has its own slot and its own KV cells (no
prefix sharing: n samples of one prompt are n independent sequences), the prompts are
prefilled in n_batch-token batches, then every step decodes one token of every sequence;
tokens are drawn by llama.cpp's own sampler chain (top-p 0.95, temperature, seeded draw).
More than 64 sequences run as successive waves of 64 (64 parallel slots).

    llamacpp_peer.py MODEL.gguf THREADS FLASH Q PROMPT N GEN TEMP SAME
Prints one line of key=value figures (wall, prompt_tokens, generated, t_prefill, t_decode,
kv_bytes_per_token) in the form bench_shapes prints its own."""
import ctypes
import sys
import time

try:
    import llama_cpp as L
except ImportError:
    print("SKIP llama.cpp: the peer Python lacks llama_cpp (scripts/install-deps.sh)", file=sys.stderr)
    sys.exit(3)

path, threads, flash = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
q, prompt, n, gen, temp, same = (int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]),
                                 float(sys.argv[8]), int(sys.argv[9]))
WAVE = 64


@L.llama_log_callback
def quiet(level, text, user):  # llama.cpp's load and graph chatter stays out of the table
    pass


L.llama_log_set(quiet, ctypes.c_void_p(0))
L.llama_backend_init()
mp = L.llama_model_default_params()
model = L.llama_model_load_from_file(path.encode(), mp)
if not model:
    sys.exit(f"{path}: llama.cpp could not load it")
vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))
n_seq = min(WAVE, q * n)
cp = L.llama_context_default_params()
cp.n_ctx = n_seq * (prompt + gen + 8)
cp.n_batch = 512
cp.n_ubatch = 512
cp.n_seq_max = n_seq
cp.n_threads = threads
cp.n_threads_batch = threads
cp.flash_attn_type = 1 if flash else 0
cp.no_perf = True
ctx = L.llama_init_from_model(model, cp)
if not ctx:
    sys.exit("llama.cpp: could not create the context")
mem = L.llama_get_memory(ctx)
batch = L.llama_batch_init(max(512, n_seq), 0, 1)


def prompt_ids(r):
    return [3 + (((i + 1) * 2654435761 ^ (0 if same else (r + 1) * 40503 * 2246822519)) & 0xffffffff) % (vocab - 3)
            for i in range(prompt)]


def put(j, tok, pos, seq, logits):
    batch.token[j] = tok
    batch.pos[j] = pos
    batch.n_seq_id[j] = 1
    batch.seq_id[j][0] = seq
    batch.logits[j] = logits


def decode(k):
    batch.n_tokens = k
    if L.llama_decode(ctx, batch) != 0:
        sys.exit("llama_decode failed")


def wave(seqs, samplers):
    """seqs: request index of each sequence; returns (prefill s, decode s)."""
    t0 = time.perf_counter()
    toks = [0] * len(seqs)
    k, pending = 0, []  # pending: (sequence, batch index) of last prompt tokens in this batch

    def flush():
        decode(k)
        for s, j in pending:  # sample right after the batch holding its logits
            toks[s] = L.llama_sampler_sample(samplers[s], ctx, j)
        pending.clear()

    for s, r in enumerate(seqs):
        ids = prompt_ids(r)
        for i, tok in enumerate(ids):
            if k == cp.n_batch:
                flush()
                k = 0
            put(k, tok, i, s, i == len(ids) - 1)
            if i == len(ids) - 1:
                pending.append((s, k))
            k += 1
    flush()
    t1 = time.perf_counter()
    for step in range(gen - 1):
        for s in range(len(seqs)):
            put(s, toks[s], prompt + step, s, True)
        decode(len(seqs))
        for s in range(len(seqs)):
            toks[s] = L.llama_sampler_sample(samplers[s], ctx, s)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def sampler(seed):
    c = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
    L.llama_sampler_chain_add(c, L.llama_sampler_init_top_p(0.95, 1))
    L.llama_sampler_chain_add(c, L.llama_sampler_init_temp(temp))
    L.llama_sampler_chain_add(c, L.llama_sampler_init_dist(seed))
    return c


# warm-up: weights paged in, threads started
put(0, 5, 0, 0, True)
decode(1)
L.llama_memory_clear(mem, True)
all_seqs = [r for r in range(q) for _ in range(n)]
samplers = [sampler(7 + i) for i in range(n_seq)]
t_pre = t_dec = 0.0
t0 = time.perf_counter()
for w in range(0, len(all_seqs), WAVE):
    a, b = wave(all_seqs[w:w + WAVE], samplers)
    t_pre += a
    t_dec += b
    L.llama_memory_clear(mem, True)
wall = time.perf_counter() - t0
# KV cache: K and V of every layer, F16 cells (llama.cpp's default cache type)
n_layer = L.llama_model_n_layer(model)
n_embd, n_head = L.llama_model_n_embd(model), L.llama_model_n_head(model)
n_head_kv = L.llama_model_n_head_kv(model)
kv = 2 * n_layer * n_head_kv * (n_embd // n_head) * 2
print(f"wall={wall:.4f} prompt_tokens={q * n * prompt} generated={q * n * gen} "
      f"decode_tokens={len(all_seqs) * (gen - 1)} t_decode={t_dec:.4f} t_prefill={t_pre:.4f} kv_bytes_per_token={kv}")
