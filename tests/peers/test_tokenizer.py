"""Differential test of our tokenizer against HF `tokenizers` (the Rust library's Python
bindings); a GGUF file in its own format is compared with llama.cpp's ids (the format's
reference, see test_tokenizer_llamacpp.py), decoded by HF. Tokenizer.json files are built from the assets with the HF library itself, plus
one written by our own trainer; both sides then encode the same mixed text line by line
(ids must be identical on every line), the whole text at once (newlines included), and
decode (decode(encode(x)) must give x back wherever the tokenizer is lossless).

Fast subset by default (about 100 KB of text); SQ_LONG=1 runs 1.2 MB."""
import os
import sys
import time
import unicodedata

import harness
from harness import check, skip
import tok_textgen

LONG = os.environ.get("SQ_LONG") == "1"
SIZE = 1_200_000 if LONG else 100_000
WHOLE = 200_000 if LONG else 40_000

try:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import BPE
except ImportError as exc:  # peer missing: say so, never pass silently
    skip("all", f"HF tokenizers not importable: {exc}")
    sys.exit(0)

RE_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
RE_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
             r"\s*[\r\n]+|\s+(?!\S)|\s+")
RE_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
            r"\s*[\r\n]+|\s+(?!\S)|\s+")
RE_DEEPSEEK = [
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝ"
    "Ὗ-\u1f7dᾀ-ᾴᾶ-ᾼ\u1fbeῂ-ῄῆ-ῌῐ-\u1fd3ῖ-\u1fdbῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212a-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛ"
    "Ꜣ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ\U00010400-\U0001044f𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
]


def gguf_vocab(path):
    import gguf
    r = gguf.GGUFReader(path)

    def strs(key):
        f = r.fields.get(key)
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data] if f else None

    def nums(key):
        f = r.fields.get(key)
        return [f.parts[i][0].item() for i in f.data] if f else None

    return strs("tokenizer.ggml.tokens"), strs("tokenizer.ggml.merges"), nums("tokenizer.ggml.scores"), \
        nums("tokenizer.ggml.token_type")


def byte_level(model, splits, nfc=False):
    tok = Tokenizer(model)
    steps = [pre_tokenizers.Split(Regex(s), behavior="isolated") for s in splits]
    steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(steps)
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.decoder = decoders.ByteLevel()
    return tok


def add_typed_tokens(tok, tokens, types):
    """GGUF control tokens become special added tokens; user-defined ones plain added tokens."""
    if not types:
        return
    tok.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False)
                            for i, ty in enumerate(types) if ty == 3])
    tok.add_tokens([AddedToken(tokens[i], special=False, normalized=False) for i, ty in enumerate(types) if ty == 4])


def build_gguf_bpe(path, splits):
    tokens, merges, _, types = gguf_vocab(path)
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = byte_level(BPE(vocab, [tuple(m.split(" ", 1)) for m in merges]), splits)
    add_typed_tokens(tok, tokens, types)
    return tok


def build_spm(path):
    """HF's own recipe for Llama-2 (transformers' LlamaConverter): merges from the scores."""
    tokens, _, scores, types = gguf_vocab(path)
    vocab = {t: i for i, t in enumerate(tokens)}
    merges = []
    for piece, score in zip(tokens, scores):
        local = [(piece[:k], piece[k:], score) for k in range(1, len(piece))
                 if piece[:k] in vocab and piece[k:] in vocab]
        local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: m[2], reverse=True)
    tok = Tokenizer(BPE(vocab, [(a, b) for a, b, _ in merges], unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    add_typed_tokens(tok, tokens, types)
    return tok


def build_qwen2(folder):
    import json
    tok = byte_level(BPE.from_file(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt")),
                     [RE_QWEN2], nfc=True)
    with open(os.path.join(folder, "added_tokens.json")) as f:
        added = json.load(f)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, _ in sorted(added.items(), key=lambda x: x[1])])
    return tok


def build_llama3(folder):
    tok = byte_level(BPE.from_file(os.path.join(folder, "encoder.json"), os.path.join(folder, "vocab.bpe"),
                                   ignore_merges=True), [RE_LLAMA3])
    names = ["<|begin_of_text|>", "<|end_of_text|>", None, None, None, None, "<|start_header_id|>",
             "<|end_header_id|>", None, "<|eot_id|>"]
    specials, r = [], 0
    for i in range(256):
        n = names[i] if i < len(names) else None
        if n is None:
            n, r = f"<|reserved_special_token_{r}|>", r + 1
        specials.append(AddedToken(n, special=True, normalized=False))
    tok.add_special_tokens(specials)
    return tok


def cli(args, data):
    p = harness.run([harness.CLI] + args, input=data, check_rc=True)
    return p.stdout


def ours_encode(path, text_path):
    out = harness.run([harness.CLI, "tokenize", "--tokenizer", path, "--lines", "--parse-special", "--in", text_path]).stdout
    return [[int(x) for x in line.split()] for line in out.split("\n")[:-1]]


def llama_cpp_encoder(path):
    """A GGUF file is read the way llama.cpp reads it (docs/tokenizer.md): where llama.cpp and
    HF disagree (Unicode white space in DeepSeek's ranges, <unk> in text), llama.cpp is the
    reference. Returns an encode function, or None when llama-cpp-python is absent."""
    try:
        import llama_cpp
    except ImportError:
        return None
    llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    return lambda text: llm.tokenize(text.encode(), add_bos=False, special=True)


def compare(label, our_path, hf, lines, text_path, whole, lossless, ref=None):
    """ref: the reference encoder when it is not HF (a GGUF file: llama.cpp); HF still decodes."""
    t0 = time.time()
    ours = ours_encode(our_path, text_path)
    theirs = [ref(l) for l in lines] if ref else [e.ids for e in hf.encode_batch(lines, add_special_tokens=False)]
    bad = [i for i in range(min(len(ours), len(theirs))) if ours[i] != theirs[i]]
    why = ""
    if bad:
        i = bad[0]
        why = f"{len(bad)} of {len(lines)} lines differ; first line {i} {lines[i][:80]!r}: ours {ours[i][:20]} hf {theirs[i][:20]}"
    elif len(ours) != len(theirs):
        why = f"{len(ours)} lines from us, {len(theirs)} from HF"
    check(f"{label}:encode_lines", not why, why)

    # the whole text at once: newlines and runs across line ends (make test: HF's files only)
    if whole:
        p = harness.run([harness.CLI, "tokenize", "--tokenizer", our_path, "--parse-special"], input=whole.encode())
        ours_whole = [int(x) for x in p.stdout.split()]
        theirs_whole = ref(whole) if ref else hf.encode(whole, add_special_tokens=False).ids
        first = next((k for k in range(min(len(ours_whole), len(theirs_whole)))
                      if ours_whole[k] != theirs_whole[k]), None)
        check(f"{label}:encode_whole_text", ours_whole == theirs_whole,
              f"{len(ours_whole)} vs {len(theirs_whole)} ids, first difference at {first}")

    # decode: ours must give the text back wherever HF's own round trip does (HF defines
    # "lossless": byte-level vocabularies with raw non-ASCII pieces, legacy SentencePiece
    # spaces after special tokens and NFC are not), and must equal HF's decode everywhere.
    ids_text = "\n".join(" ".join(map(str, x)) for x in ours) + "\n"
    dec = harness.run([harness.CLI, "tokenize", "--tokenizer", our_path, "--lines", "--decode"],
                      input=ids_text.encode()).stdout
    dec_lines = dec.decode("utf-8", "replace").split("\n")[:-1]
    hf_dec = hf.decode_batch(theirs, skip_special_tokens=False)
    want = [lossless(lines[i]) if hf_dec[i] == lossless(lines[i]) else None for i in range(len(lines))]
    lossy = [i for i in range(len(lines)) if want[i] is not None and (i >= len(dec_lines) or dec_lines[i] != want[i])]
    n_lossless = sum(w is not None for w in want)
    check(f"{label}:decode_roundtrip", not lossy and len(dec_lines) == len(lines) and n_lossless > len(lines) // 2,
          f"{len(lossy)} of {n_lossless} lossless lines do not come back; first {lossy[0] if lossy else None}: "
          f"{(lines[lossy[0]][:60], dec_lines[lossy[0]][:60]) if lossy and lossy[0] < len(dec_lines) else ''}")
    diff = [i for i in range(min(len(hf_dec), len(dec_lines))) if hf_dec[i] != dec_lines[i]]
    check(f"{label}:decode_matches_hf", not diff,
          f"{len(diff)} lines differ; first {diff[0] if diff else None}: "
          f"{(hf_dec[diff[0]][:60], dec_lines[diff[0]][:60]) if diff else ''}")
    print(f"  also {label}: {len(lines)} lines ({n_lossless} lossless in HF), {sum(len(x) for x in theirs)} tokens, "
          f"{time.time() - t0:.1f}s",
          file=sys.stderr)


def feature_seeds(lines):
    """The small hand-written tokenizer.json files of fuzz/seeds exercise the pipeline parts
    the real vocabularies do not (Split behaviours and invert, Metaspace, Prepend/Replace,
    Lowercase, Digits, TemplateProcessing, lstrip/rstrip, no decoder)."""
    import glob
    seeds = sorted(glob.glob(os.path.join(harness.ROOT, "fuzz", "seeds", "tokenizer_json", "*.json")))
    if not seeds:
        skip("feature_seeds", "fuzz/seeds/tokenizer_json missing")
        return
    texts = ["a-b xy  hi Hello 123", " hi hi", "xxyy-x y -y", "AB 12345 ab<|end|> ab", "hi</s> hi <s>hi", "  ",
             "h\u00e4i A\u0301", "\u2581x x\u2581"] + lines[:200]
    for path in seeds:
        hf = Tokenizer.from_file(path)
        data = "\n".join(t.replace("\n", " ") for t in texts) + "\n"
        out = harness.run([harness.CLI, "tokenize", "--tokenizer", path, "--lines", "--parse-special"],
                          input=data.encode()).stdout.decode().split("\n")[:-1]
        ours = [[int(x) for x in l.split()] for l in out]
        theirs = [hf.encode(t.replace("\n", " "), add_special_tokens=False).ids for t in texts]
        bad = [i for i in range(len(texts)) if i >= len(ours) or ours[i] != theirs[i]]
        check(f"seed:{os.path.basename(path)}:encode", not bad,
              f"{len(bad)} texts differ; first {texts[bad[0]][:40]!r}: {ours[bad[0]] if bad[0] < len(ours) else None} "
              f"vs {theirs[bad[0]]}" if bad else "")
        ids_text = "\n".join(" ".join(map(str, x)) for x in theirs) + "\n"
        dec = harness.run([harness.CLI, "tokenize", "--tokenizer", path, "--lines", "--decode"],
                          input=ids_text.encode()).stdout.decode("utf-8", "replace").split("\n")[:-1]
        want = [hf.decode(x, skip_special_tokens=False) for x in theirs]
        badd = [i for i in range(len(texts)) if "\n" not in want[i] and (i >= len(dec) or dec[i] != want[i])]
        check(f"seed:{os.path.basename(path)}:decode", not badd,
              f"first {badd[0]}: {dec[badd[0]][:40]!r} vs {want[badd[0]][:40]!r}" if badd else "")


def main():
    vocab_dir = harness.asset("vocab")
    work = harness.tmpdir()
    data = tok_textgen.make(SIZE, seed=7, assets=harness.asset("."))
    text_path = os.path.join(work, "text.txt")
    with open(text_path, "wb") as f:
        f.write(data)
    lines = [b.decode("utf-8", "replace") for b in data.split(b"\n")[:-1]]
    whole = data[:WHOLE].decode("utf-8", "replace")
    check("text:is_mixed", len(data) >= SIZE and any("\ufffd" in l for l in lines) and any(ord(c) > 0x1F000 for l in lines for c in l),
          "generator lost a category")

    def same(x):
        return x

    def nfc(x):
        return unicodedata.normalize("NFC", x)

    feature_seeds(lines)

    # our trainer's output, trained on part of the same text
    corpus = os.path.join(work, "corpus.txt")
    with open(corpus, "wb") as f:
        f.write(tok_textgen.make(300_000, seed=99, assets=harness.asset(".")))
    trained = os.path.join(work, "trained.json")
    harness.run([harness.CLI, "tokenizer-train", "--quiet", "--in", corpus, "--vocab-size", "2000", "--out", trained,
                 "--special", "<|endoftext|>", "--special", "<|im_start|>", "--special", "<|im_end|>"])
    compare("trained", trained, Tokenizer.from_file(trained), lines, text_path, whole, same)

    if not vocab_dir:
        skip("asset_tokenizers", "../shared/assets/vocab not present")
        harness.finish()
    cases = [
        ("gpt2", os.path.join(vocab_dir, "ggml-vocab-gpt-2.gguf"),
         lambda: build_gguf_bpe(os.path.join(vocab_dir, "ggml-vocab-gpt-2.gguf"), [RE_GPT2]), same),
        ("deepseek_llm", os.path.join(vocab_dir, "ggml-vocab-deepseek-llm.gguf"),
         lambda: build_gguf_bpe(os.path.join(vocab_dir, "ggml-vocab-deepseek-llm.gguf"), RE_DEEPSEEK), same),
        ("qwen2", os.path.join(vocab_dir, "qwen2"), lambda: build_qwen2(os.path.join(vocab_dir, "qwen2")), nfc),
        ("llama3", os.path.join(vocab_dir, "llama3"), lambda: build_llama3(os.path.join(vocab_dir, "llama3")), same),
        ("llama_spm", os.path.join(vocab_dir, "ggml-vocab-llama-spm.gguf"),
         lambda: build_spm(os.path.join(vocab_dir, "ggml-vocab-llama-spm.gguf")), same),
    ]
    for label, native, build, lossless in cases:
        hf = build()
        js = os.path.join(work, f"{label}.json")
        hf.save(js)
        # the tokenizer.json HF wrote, and the asset in its own format
        compare(f"{label}:hf_json", js, Tokenizer.from_file(js), lines, text_path, whole, lossless)
        ref = None
        if native.endswith(".gguf"):
            ref = llama_cpp_encoder(native)
            if ref is None:
                skip(f"{label}:native", "a GGUF file follows llama.cpp, and llama-cpp-python is not installed")
                continue
        compare(f"{label}:native", native, hf, lines, text_path, whole if LONG else None, lossless, ref)
    harness.finish()


main()
