"""Helpers for bench/tokenizer.sh (run with the peer Python).

  tokenizer_peer.py build OUTDIR        write HF-built tokenizer.json files from the assets
  tokenizer_peer.py text KIND SIZE OUT  write the benchmark text (natural | mixed)
  tokenizer_peer.py hf TOKENIZER TEXT   HF encode throughput, one thread, one call per line

HF is timed fairly: TOKENIZERS_PARALLELISM=false and RAYON_NUM_THREADS=1, encode() called once
per line with add_special_tokens=False (no encode_batch), the text decoded to str beforehand
(outside the timing), best of three passes of process CPU time (the machine is shared, so
wall time would measure the neighbours) — the same protocol bench_tokenizer uses."""
import json
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "peers"))
ASSETS = os.environ.get("SQ_ASSETS", os.path.join(ROOT, "..", "shared", "assets"))


def build(out):
    sys.argv = [sys.argv[0]]
    import importlib.util
    spec = importlib.util.spec_from_file_location("peer_tok", os.path.join(ROOT, "tests", "peers", "test_tokenizer.py"))
    src = open(spec.origin, encoding="utf-8").read().replace("\nmain()\n", "\n")
    ns = {"__name__": "peer_tok"}
    exec(compile(src, spec.origin, "exec"), ns)
    v = os.path.join(ASSETS, "vocab")
    ns["build_llama3"](os.path.join(v, "llama3")).save(os.path.join(out, "llama3.json"))
    ns["build_qwen2"](os.path.join(v, "qwen2")).save(os.path.join(out, "qwen2.json"))
    ns["build_spm"](os.path.join(v, "ggml-vocab-llama-spm.gguf")).save(os.path.join(out, "llama-spm.json"))
    ns["build_gguf_bpe"](os.path.join(v, "ggml-vocab-gpt-2.gguf"), [ns["RE_GPT2"]]).save(os.path.join(out, "gpt2.json"))


def text(kind, size, out):
    if kind == "mixed":
        import tok_textgen
        data = tok_textgen.make(size, seed=3, assets=ASSETS)
    else:
        parts, n = [], 0
        for name in ("math_test.jsonl", "gsm8k_train.jsonl"):
            with open(os.path.join(ASSETS, "data", name), encoding="utf-8") as f:
                for line in f:
                    d = json.loads(line)
                    for k in ("problem", "solution", "question", "answer"):
                        if k in d and n < size:
                            s = d[k].replace("\n", " ")
                            parts.append(s)
                            n += len(s.encode()) + 1
        data = ("\n".join(parts) + "\n").encode()
    with open(out, "wb") as f:
        f.write(data)


def hf(tok_path, text_path):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tok_path)
    data = open(text_path, "rb").read()
    lines = [l.decode("utf-8", "replace") for l in data.split(b"\n")]
    best, n = 1e30, 0
    for _ in range(3):
        t = time.process_time()
        n = 0
        for l in lines:
            n += len(tok.encode(l, add_special_tokens=False).ids)
        best = min(best, time.process_time() - t)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"hf mb_s={len(data) / best / 1e6:.2f} tokens={n} peak_rss_mb={rss:.0f}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "build":
        build(sys.argv[2])
    elif cmd == "text":
        text(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        hf(sys.argv[2], sys.argv[3])
