"""Writes the quantized-GGUF fuzz seeds (fuzz/seeds/gguf_quant/*.gguf) with gguf-py: tiny
Llama models whose matrices use each quantized type the engine reads, so fuzz_gguf and
fuzz_model_gguf start from valid files of every block layout. Run with the peer Python:
    ~/.cache/scalequest/peers/bin/python fuzz/seeds/make_quant_gguf.py"""
import os

import numpy as np
import gguf
from gguf import quants

T = gguf.GGMLQuantizationType
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gguf_quant")
rng = np.random.default_rng(1)


def tensor(w, name, shape, qtype):
    a = (rng.standard_normal(shape) * 0.2).astype(np.float32)
    if qtype in (T.Q4_K, T.Q5_K, T.Q6_K):  # gguf-py cannot quantize these: random block bytes, finite scales
        bb = {T.Q4_K: 144, T.Q5_K: 176, T.Q6_K: 210}[qtype]
        raw = rng.integers(0, 256, size=(shape[0], shape[1] // 256, bb), dtype=np.uint8)
        for o in ([208] if qtype == T.Q6_K else [0, 2]):
            raw[:, :, o:o + 2] = (rng.standard_normal(raw.shape[:2]) * 0.01).astype(np.float16).view(np.uint8).reshape(
                raw.shape[0], raw.shape[1], 2)
        q = raw.reshape(shape[0], -1)
    elif qtype == T.F32:
        q = a
    else:
        q = quants.quantize(a, qtype)
    w.add_tensor(name, q, raw_shape=q.shape if qtype != T.F32 else None, raw_dtype=qtype if qtype != T.F32 else None)


def model(path, dim, ffn, vocab, mats):
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(1)
    w.add_context_length(64)
    w.add_embedding_length(dim)
    w.add_feed_forward_length(ffn)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    tensor(w, "token_embd.weight", (vocab, dim), T.Q8_0)
    tensor(w, "output_norm.weight", (dim,), T.F32)
    tensor(w, "output.weight", (vocab, dim), mats[0])
    tensor(w, "blk.0.attn_norm.weight", (dim,), T.F32)
    tensor(w, "blk.0.ffn_norm.weight", (dim,), T.F32)
    names = [("attn_q", (dim, dim)), ("attn_k", (dim // 2, dim)), ("attn_v", (dim // 2, dim)),
             ("attn_output", (dim, dim)), ("ffn_gate", (ffn, dim)), ("ffn_up", (ffn, dim)), ("ffn_down", (dim, ffn))]
    for i, (n, shape) in enumerate(names):
        tensor(w, f"blk.0.{n}.weight", shape, mats[(i + 1) % len(mats)])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


os.makedirs(OUT, exist_ok=True)
model(os.path.join(OUT, "tiny-q32.gguf"), 64, 64, 16, [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0])
model(os.path.join(OUT, "tiny-qk.gguf"), 256, 256, 4, [T.Q4_K, T.Q5_K, T.Q6_K])
