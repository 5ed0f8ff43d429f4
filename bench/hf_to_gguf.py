"""Writes the random-weight HF folder that bench_engine makes as one GGUF file, so that
llama.cpp and scalequest run the very same bytes (bench/engine_vs_llamacpp.sh).

The matrices are copied as they are (BF16) or quantized (below); 1-D tensors (norms, biases)
become F32, as llama.cpp's own converter stores them. The folder has no tokenizer, so a placeholder
SentencePiece-style vocabulary of vocab_size entries is written (<unk>, <s>, </s>, the 256
byte tokens, then filler pieces): enough for llama.cpp to load the file; the benchmarks
feed token ids, never text. Q and K rows are not permuted for the llama architecture: the
weights are random and both engines read this same file, so speed is what is compared.

    python hf_to_gguf.py HF_DIR OUT.gguf [bf16|q8_0|q4_1]
bf16 (the default) copies the matrices; q8_0 quantizes every matrix to Q8_0; q4_1 quantizes the
layers' matrices to Q4_1 and the (tied) embedding to Q8_0, as SmolLM2-135M-Instruct's Q4_1
file is laid out. Quantization is gguf.quants.quantize, llama.cpp's reference rounding.
Uses the gguf package (the peer environment has it; or the gguf-py of a llama.cpp source
tree put on PYTHONPATH)."""
import json
import os
import struct
import sys

import numpy as np
import gguf


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        if info["dtype"] != "BF16":
            sys.exit(f"{path}: tensor {name} is {info['dtype']}, expected BF16")
        out[name] = (mm[base + a:base + b].view(np.uint16).reshape(info["shape"]))
    return out


def gguf_name(hf):
    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    if hf in fixed:
        return fixed[hf]
    parts = hf.split(".")  # model.layers.N.<module>.<proj>.<weight|bias>
    layer, rest = parts[2], ".".join(parts[3:])
    table = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
             "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down"}
    mod, kind = rest.rsplit(".", 1)
    if mod not in table:
        sys.exit(f"unexpected tensor {hf}")
    return f"blk.{layer}.{table[mod]}.{kind}"


QTYPES = {"bf16": (gguf.LlamaFileType.MOSTLY_BF16, None, None),
          "q8_0": (gguf.LlamaFileType.MOSTLY_Q8_0, gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.Q8_0),
          "q4_1": (gguf.LlamaFileType.MOSTLY_Q4_1, gguf.GGMLQuantizationType.Q4_1, gguf.GGMLQuantizationType.Q8_0)}


def matrix(w, name, t, kind):
    """Adds one BF16 matrix as it is (kind None) or quantized to `kind`."""
    if kind is None:
        w.add_tensor(name, np.ascontiguousarray(t), raw_dtype=gguf.GGMLQuantizationType.BF16)
        return
    f32 = (t.astype(np.uint32) << 16).view(np.float32)
    q = gguf.quants.quantize(f32, kind)
    w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=kind)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    qtype = sys.argv[3] if len(sys.argv) > 3 else "bf16"
    if qtype not in QTYPES:
        sys.exit(f"type {qtype}: one of {', '.join(QTYPES)}")
    ftype, layer_kind, embd_kind = QTYPES[qtype]
    cfg = json.load(open(os.path.join(src, "config.json")))
    arch = cfg["model_type"]
    w = gguf.GGUFWriter(dst + ".tmp", arch)
    w.add_name(f"random {arch} ({cfg['num_hidden_layers']} layers, dim {cfg['hidden_size']})")
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_dimension_count(cfg["hidden_size"] // cfg["num_attention_heads"])
    w.add_file_type(ftype)
    vocab = cfg["vocab_size"]
    toks = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    toks += [f"t{i}" for i in range(vocab - len(toks))]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + \
        [gguf.TokenType.BYTE] * 256 + [gguf.TokenType.NORMAL] * (vocab - 259)
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores([0.0] * vocab)
    w.add_token_types(types)
    w.add_bos_token_id(cfg.get("bos_token_id", 1))
    w.add_eos_token_id(cfg.get("eos_token_id", 2))
    tensors = {}
    for fn in sorted(os.listdir(src)):
        if fn.endswith(".safetensors"):
            tensors.update(read_safetensors(os.path.join(src, fn)))
    for name in sorted(tensors, key=lambda n: (not n.startswith("model.embed"), n)):
        t = tensors[name]
        if t.ndim == 1:
            f32 = (t.astype(np.uint32) << 16).view(np.float32)
            w.add_tensor(gguf_name(name), f32)
        else:
            matrix(w, gguf_name(name), t, embd_kind if name.startswith("model.embed") else layer_kind)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(dst + ".tmp", dst)


if __name__ == "__main__":
    main()
