"""Our GGUF tokenizer against llama.cpp itself (llama-cpp-python, vocab_only), id for id.

Vocabularies: every ggml-vocab-*.gguf of llama.cpp's source (scripts/install-deps.sh extracts
it into the cache), one copy of the GPT-2 vocabulary per row of our pre-tokenizer table with
tokenizer.ggml.pre rewritten to that name (every name with SQ_LONG=1), and SmolLM2-135M-
Instruct when installed. Texts: llama.cpp's vocab test texts (.inp), lines and multi-line
chunks of tests/peers/tok_textgen.py's mixed text (math, LaTeX, code, CJK, emoji, digit and
whitespace runs, special-token spellings; invalid UTF-8 repaired first on both sides), and a
few hand-written ones. SmolLM2's chat template is rendered by llama-cpp-python's Jinja
formatter (what its server runs) and by us."""
import glob
import json
import os
import struct
import sys
import time

import harness
from harness import check, skip
import tok_textgen

LONG = os.environ.get("SQ_LONG") == "1"
SIZE = 400_000 if LONG else 40_000
SEP = "\n\x01__sq_sep__\x01\n"
VOCAB_SEP = "\n__ggml_vocab_test__\n"

try:
    import llama_cpp
except ImportError as exc:  # peer missing: say so, never pass silently
    skip("all", f"llama_cpp not importable (scripts/install-deps.sh installs llama-cpp-python): {exc}")
    sys.exit(0)

CACHE = os.environ.get("SQ_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "scalequest"))
SRC = os.environ.get("SQ_LLAMA_CPP_SRC",
                     os.path.join(CACHE, f"llama_cpp_python-{llama_cpp.__version__}", "vendor", "llama.cpp"))

# one tokenizer.ggml.pre name per row of src/text/tok_pretok_table.c (SQ_LONG: all of them)
ROWS = [
    ["default", ""],
    ["gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
     "modern-bert", "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais", "trillion",
     "granite-docling", "exaone4"],
    ["llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"],
    ["dbrx", "smaug-bpe"], ["chatglm-bpe"], ["glm4", "glm5"], ["jais-2"], ["minicpm5"], ["deepseek-llm"],
    ["deepseek-coder"], ["deepseek-v3", "hunyuan-dense", "hy_v4", "joyai-llm"], ["spark2_5"], ["youtu"], ["falcon"],
    ["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b", "mellum2"],
    ["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan", "solar-open", "grok-2"],
    ["qwen35"], ["poro-chat", "bloom", "gpt3-finnish"], ["viking"], ["tekken"], ["chameleon"],
    ["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"], ["granite-embed-multi-97m"], ["tiny_aya", "cohere2moe"],
    ["kimi-k2"], ["superbpe"], ["bailingmoe", "bailingmoe2", "llada-moe"], ["seed-coder"], ["ufakzeka"], ["afmoe"],
    ["laguna"], ["exaone-moe"],
]

HAND = [
    "Let $f(x) = \\frac{3x^2 - 12}{x - 2}$. Find $\\lim_{x \\to 2} f(x)$ and \\boxed{12}.",
    "\\begin{align*} a_{n+1} &= a_n + 2^{n} \\\\ \\sum_{k=1}^{100} k &= 5050 \\end{align*}",
    "def f(x):\n    return x**2 + 3*x - 1  # 12,345.678 and 1e-9\n\t\treturn None\n",
    "数学问题：小明有１２个苹果，吃了３个。日本語のテキスト、カタカナ。한국어 문장입니다.",
    "emoji 🦙🧮👩‍👩‍👧‍👦 ✔️ 🇫🇷 and flags",
    "digits 1 12 123 1234 12345 123456 1234567 12345678901234567890 ٣٤٥ ²³ ½ Ⅻ",
    "spaces:  two   three    four\t\ttabs \u00a0nbsp \u3000ideographic\u2009thin  \n\n\n  \r\n end   ",
    "I'M YOU'RE they'LL it'S we've HelloWorld ÉCOLE ÀBCdef ǅungla İstanbul",
    "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n",
    "   leading and trailing   ",
    "",
]


def splice_pre(src, dst, name):
    """Copy a tensor-less GGUF with tokenizer.ggml.pre set to name."""
    data = open(src, "rb").read()
    key = b"tokenizer.ggml.pre"
    at = data.find(struct.pack("<Q", len(key)) + key)
    assert at > 0, "no tokenizer.ggml.pre key"
    p = at + 8 + len(key)
    assert struct.unpack_from("<I", data, p)[0] == 8  # a string
    n = struct.unpack_from("<Q", data, p + 4)[0]
    new = name.encode()
    with open(dst, "wb") as f:
        f.write(data[:p + 4] + struct.pack("<Q", len(new)) + new + data[p + 12 + n:])


def ours(path, texts):
    data = (SEP.join(texts) + SEP).encode()
    p = harness.run([harness.CLI, "tokenize", "--tokenizer", path, "--parse-special", "--sep", SEP], input=data,
                    check_rc=False)
    if p.returncode:
        return None, p.stderr.decode(errors="replace")[-300:]
    out = p.stdout.decode().split("\n")[:-1]
    return [[int(x) for x in line.split()] for line in out], ""


def theirs(llm, texts):
    return [llm.tokenize(t.encode(), add_bos=False, special=True) for t in texts]


def load_llama(path):
    try:
        return llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    except Exception as exc:  # llama.cpp cannot read it either
        return exc


TOTAL = {"files": 0, "texts": 0, "tokens": 0, "mismatches": 0}


def compare(label, path, texts, llm=None):
    t0 = time.time()
    llm = llm or load_llama(path)
    if isinstance(llm, Exception):
        skip(label, f"llama.cpp cannot load it: {llm}")
        return
    got, err = ours(path, texts)
    if got is None:
        if "tokenizer.ggml.model" in err:
            skip(label, f"a tokenizer model we do not implement: {err.strip()}")
        else:
            check(label, False, err)
        return
    want = theirs(llm, texts)
    bad = [i for i in range(len(texts)) if i >= len(got) or got[i] != want[i]]
    TOTAL["files"] += 1
    TOTAL["texts"] += len(texts)
    TOTAL["tokens"] += sum(map(len, want))
    TOTAL["mismatches"] += len(bad)
    why = ""
    if bad:
        i = bad[0]
        why = (f"{len(bad)} of {len(texts)} texts differ; first {texts[i][:80]!r}: ours {got[i][:16] if i < len(got) else None}"
               f" llama.cpp {want[i][:16]}")
    check(label, not bad and len(got) == len(texts), why)
    print(f"  also {label}: {len(texts)} texts, {sum(map(len, want))} tokens, {len(bad)} mismatching, "
          f"{time.time() - t0:.1f}s", file=sys.stderr)


def main():
    models = os.path.join(SRC, "models")
    if not os.path.isdir(models):
        skip("all", f"llama.cpp's source is not at {SRC} (scripts/install-deps.sh extracts it)")
        harness.finish()
    vocabs = sorted(glob.glob(os.path.join(models, "ggml-vocab-*.gguf")))
    inp = []
    for v in vocabs:
        if os.path.exists(v + ".inp"):
            inp += open(v + ".inp", encoding="utf-8").read().split(VOCAB_SEP)[:-1]
    inp = sorted(set(inp))
    data = tok_textgen.make(SIZE, seed=11, assets=harness.asset("."))
    text = data.decode("utf-8", "replace")  # both sides see the same valid text
    lines = [l for l in text.split("\n") if SEP not in l]
    chunks = [text[i:i + 3000] for i in range(0, min(len(text), 60_000), 3000)]
    texts = inp + HAND + lines + chunks
    check("texts:mixed", len(inp) >= 40 and len(lines) > 100 and any(ord(c) > 0x1F000 for c in text),
          f"{len(inp)} vocab texts, {len(lines)} lines")

    # llama.cpp's own vocabularies
    for v in vocabs:
        compare(f"vocab:{os.path.basename(v)}", v, texts)

    # every pre-tokenizer on the GPT-2 vocabulary
    base = os.path.join(models, "ggml-vocab-gpt-2.gguf")
    d = harness.tmpdir()
    for row in ROWS:
        for name in (row if LONG else row[:1]):
            dst = os.path.join(d, f"pre-{name or 'missing'}.gguf")
            splice_pre(base, dst, name)
            compare(f"pre:{name or '(empty)'}", dst, texts)
    for name in ("gemma4", "sarvam-moe", "granite-embed-multi-311m"):
        skip(f"pre:{name}", "a raw-UTF-8 vocabulary pre-tokenizer: not comparable on the GPT-2 vocabulary "
                            "(ggml-vocab-gemma-4.gguf above covers it)")

    # SmolLM2-135M-Instruct, when its GGUF is installed
    smol = sorted(glob.glob(os.path.join(CACHE, "models", "**", "SmolLM2-135M-Instruct*.gguf"), recursive=True))
    if not smol:
        skip("smollm2", f"no SmolLM2-135M-Instruct GGUF under {CACHE}/models (scripts/install-deps.sh installs it)")
    else:
        llm = load_llama(smol[0])
        compare("smollm2:tokenize", smol[0], texts, llm)
        smollm2_template(smol[0], llm, d)
    print(f"  also total: {TOTAL['files']} vocabularies, {TOTAL['texts']} texts each run, {TOTAL['tokens']} tokens, "
          f"{TOTAL['mismatches']} mismatching texts", file=sys.stderr)
    harness.finish()


def smollm2_template(path, llm, d):
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    meta = llm.metadata
    tpl = meta.get("tokenizer.chat_template")
    if not check("smollm2:template_present", bool(tpl), "no tokenizer.chat_template in the GGUF"):
        return
    bos = llm.detokenize([llm.token_bos()]).decode() if llm.token_bos() >= 0 else ""
    eos = llm.detokenize([llm.token_eos()]).decode() if llm.token_eos() >= 0 else ""
    fmt = Jinja2ChatFormatter(template=tpl, eos_token=eos, bos_token=bos)
    convs = [
        [("user", "What is 2+3?")],
        [("system", "You are a math tutor."), ("user", "Solve x^2 = 4.")],
        [("user", "Hi"), ("assistant", "Hello! How can I help?"), ("user", "Compute 7*6.")],
        [("user", "  padded\n\n question \t")],
        [("user", "quotes ' \" and {{ braces }} \\boxed{x} \u00e9\u4e2d\U0001F600")],
    ]
    inp = os.path.join(d, "conv.jsonl")
    want = {}
    with open(inp, "w") as f:
        for i, conv in enumerate(convs):
            msgs = [{"role": r, "content": c} for r, c in conv]
            # the server's formatter always adds the generation prompt
            want[f"c{i}"] = fmt(messages=msgs).prompt
            f.write(json.dumps({"id": f"c{i}", "messages": msgs, "add_generation_prompt": True}) + "\n")
    p = harness.run([harness.CLI, "chat-template", "--template", path, "--in", inp], check_rc=False)
    if not check("smollm2:template_runs", p.returncode == 0, p.stderr[-300:]):
        return
    got = {r["id"]: r.get("text") for r in map(json.loads, p.stdout.splitlines())}
    bad = [k for k in want if got.get(k) != want[k]]
    check("smollm2:template_matches_llama_cpp_server", not bad,
          f"{bad[0]}: ours {got.get(bad[0])!r} llama-cpp-python {want[bad[0]]!r}" if bad else "")
    # and the rendered prompts tokenize identically (special tokens parsed)
    compare("smollm2:template_tokens", path, list(want.values()), llm)


main()
