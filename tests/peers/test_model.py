"""Engine forward against HF transformers on random-weight tiny models of each variant.

Each model is built by transformers itself (random init, save_pretrained) and also converted
to GGUF with gguf's GGUFWriter the way llama.cpp's converter does (Q/K rows permuted to the
interleaved RoPE layout for the llama architecture; qwen2 keeps HF's layout; llama3 rope
scaling as a rope_freqs tensor), plus a Q8_0 GGUF and a BF16 checkpoint. For each form: logits at every position of prompt +
64 greedy tokens agree within 1e-4 of the largest logit, and the 64 greedy ids are identical.
"""
import os
import sys

import harness

try:
    import numpy as np
    import torch
    import transformers
    import gguf
except ImportError as ex:  # the peer environment is optional
    harness.skip("all", f"peer Python lacks {ex.name}")
    harness.finish()

torch.manual_seed(0)
GREEDY = 64
PROMPT = [1, 17, 200, 45, 99, 3, 250, 128]


def build(kind):
    common = dict(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, max_position_embeddings=256, rms_norm_eps=1e-5,
                  initializer_range=0.2, bos_token_id=1, eos_token_id=2)
    if kind == "llama_gqa":
        cfg = transformers.LlamaConfig(num_key_value_heads=2, tie_word_embeddings=False, rope_theta=10000.0, **common)
    elif kind == "llama3_rope_tied":
        cfg = transformers.LlamaConfig(num_key_value_heads=1, tie_word_embeddings=True, rope_theta=500000.0,
                                       rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                     "high_freq_factor": 4.0,
                                                     "original_max_position_embeddings": 32}, **common)
    elif kind == "llama_linear_rope":
        cfg = transformers.LlamaConfig(num_key_value_heads=4, tie_word_embeddings=False,
                                       rope_scaling={"rope_type": "linear", "factor": 2.0}, **common)
    elif kind == "qwen2_bias_tied":
        cfg = transformers.Qwen2Config(num_key_value_heads=2, tie_word_embeddings=True, rope_theta=1000000.0,
                                       use_sliding_window=False, **common)
    elif kind == "mistral_window":
        cfg = transformers.MistralConfig(num_key_value_heads=2, tie_word_embeddings=False, sliding_window=24,
                                         head_dim=16, **common)
    else:
        raise ValueError(kind)
    model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").float().eval()
    if kind == "qwen2_bias_tied":  # random biases, so that they matter
        with torch.no_grad():
            for layer in model.model.layers:
                for p in (layer.self_attn.q_proj.bias, layer.self_attn.k_proj.bias, layer.self_attn.v_proj.bias):
                    p.normal_(0, 0.5)
    return model


def permute(w, n_head):
    """llama.cpp's converter: HF rotate-half rows -> interleaved pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def q8_roundtrip(model):
    """Replace every matrix by its Q8_0 round trip, so HF runs the weights the GGUF holds."""
    from gguf import quants
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                q = quants.quantize(p.detach().numpy(), gguf.GGMLQuantizationType.Q8_0)
                p.copy_(torch.from_numpy(quants.dequantize(q, gguf.GGMLQuantizationType.Q8_0)))


def write_gguf(model, path, q8=False):
    cfg = model.config
    arch = "qwen2" if cfg.model_type == "qwen2" else "llama"
    w = gguf.GGUFWriter(path, arch)
    nh, nkv = cfg.num_attention_heads, cfg.num_key_value_heads
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // nh
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_rope_dimension_count(hd)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(float(getattr(cfg, "rope_theta", None) or cfg.rope_parameters["rope_theta"]))
    w.add_vocab_size(cfg.vocab_size)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    if cfg.model_type == "mistral" and cfg.sliding_window:
        w.add_sliding_window(cfg.sliding_window)
    rs = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
    rtype = rs.get("rope_type", "default")
    if rtype == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(rs["factor"])
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    if rtype == "llama3":  # llama.cpp stores the per-frequency divisors
        inv_scaled = model.model.rotary_emb.inv_freq.float().numpy()
        base = float(rs["rope_theta"]) if "rope_theta" in rs else float(cfg.rope_theta)
        inv = 1.0 / (base ** (np.arange(0, hd, 2, dtype=np.int64).astype(np.float32) / hd))
        w.add_tensor("rope_freqs.weight", (inv / inv_scaled).astype(np.float32))
    interleave = arch == "llama"
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    if not cfg.tie_word_embeddings:
        w.add_tensor("output.weight", sd["lm_head.weight"])
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        q, k = sd[p + "self_attn.q_proj.weight"], sd[p + "self_attn.k_proj.weight"]
        if interleave:
            q, k = permute(q, nh), permute(k, nkv)
        t = {"attn_norm.weight": sd[p + "input_layernorm.weight"], "ffn_norm.weight": sd[p + "post_attention_layernorm.weight"],
             "attn_q.weight": q, "attn_k.weight": k, "attn_v.weight": sd[p + "self_attn.v_proj.weight"],
             "attn_output.weight": sd[p + "self_attn.o_proj.weight"], "ffn_gate.weight": sd[p + "mlp.gate_proj.weight"],
             "ffn_up.weight": sd[p + "mlp.up_proj.weight"], "ffn_down.weight": sd[p + "mlp.down_proj.weight"]}
        for b in ("q", "k", "v"):
            if p + f"self_attn.{b}_proj.bias" in sd:
                t[f"attn_{b}.bias"] = sd[p + f"self_attn.{b}_proj.bias"]
        for name, arr in t.items():
            arr = np.ascontiguousarray(arr)
            if q8 and arr.ndim == 2:
                from gguf import quants
                q = quants.quantize(arr, gguf.GGMLQuantizationType.Q8_0)
                w.add_tensor(f"blk.{i}.{name}", q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            else:
                w.add_tensor(f"blk.{i}.{name}", arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def hf_reference(model):
    ids = list(PROMPT)
    with torch.no_grad():
        for _ in range(GREEDY):
            logits = model(torch.tensor([ids])).logits[0]
            ids.append(int(logits[-1].argmax()))
        logits = model(torch.tensor([ids])).logits[0].numpy()
    return ids[len(PROMPT):], logits


def ours(path, ids, vocab, tmp):
    out = os.path.join(tmp, "logits.f32")
    # --act-type f32: the Q8_0 GGUF against HF on the same dequantized weights (fp32 activations);
    # --kv-type f32: exactness is the point, and the default (auto) gives the Q8_0, BF16 and F16
    # files an F16 cache (tests/peers/test_kv_cache.py checks that one)
    p = harness.run([harness.CLI, "logits", "--model", path, "--ids", ",".join(map(str, ids)), "--out", out,
                     "--greedy", str(GREEDY), "--act-type", "f32", "--kv-type", "f32"])
    logits = np.fromfile(out, dtype=np.float32).reshape(len(ids), vocab)
    return [int(x) for x in p.stdout.strip()[1:-1].split(",")], logits


def compare(name, path, model, ref_ids, ref_logits, tmp):
    full = PROMPT + ref_ids
    try:
        gen, logits = ours(path, full[:len(PROMPT)], model.config.vocab_size, tmp)
        _, all_logits = ours(path, full, model.config.vocab_size, tmp)
    except RuntimeError as ex:
        harness.check(name, False, str(ex))
        return
    scale = np.abs(ref_logits).max(axis=1)
    err = (np.abs(all_logits - ref_logits).max(axis=1) / scale).max()
    harness.check(name + "_logits", err <= 1e-4, f"max error {err:.3g} of the largest logit")
    harness.check(name + "_greedy64", gen == ref_ids, f"greedy differs: ours {gen[:12]}... hf {ref_ids[:12]}...")


def main():
    tmp = harness.tmpdir()
    kinds = ["llama_gqa", "qwen2_bias_tied", "mistral_window", "llama3_rope_tied", "llama_linear_rope"]
    for kind in kinds:
        model = build(kind)
        d = os.path.join(tmp, kind)
        model.save_pretrained(d, safe_serialization=True)
        ref_ids, ref_logits = hf_reference(model)
        compare(kind + "_hf", d, model, ref_ids, ref_logits, tmp)
        g = os.path.join(tmp, kind + ".gguf")
        write_gguf(model, g)
        compare(kind + "_gguf", g, model, ref_ids, ref_logits, tmp)
    # Q8_0 layer matrices (the stretch format): against HF running the same rounded weights.
    model = build("llama_gqa")
    q8_roundtrip(model)
    ref_ids, ref_logits = hf_reference(model)
    g = os.path.join(tmp, "llama_gqa_q8.gguf")
    write_gguf(model, g, q8=True)
    compare("llama_gqa_q8_0_gguf", g, model, ref_ids, ref_logits, tmp)
    # BF16 checkpoints (what most models ship as): our BF16 kernels (the GEMM for the prompt's
    # rows, the GEMV for one decode row) against HF in float32 on the same rounded weights.
    model = build("qwen2_bias_tied")
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))
    ref_ids, ref_logits = hf_reference(model)
    d = os.path.join(tmp, "qwen2_bf16")
    model.to(torch.bfloat16).save_pretrained(d, safe_serialization=True)
    compare("qwen2_bias_tied_bf16_hf", d, model, ref_ids, ref_logits, tmp)
    # F16 checkpoints: kept as F16 in memory, widened exactly by the same kernels.
    model = build("qwen2_bias_tied")
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.float16).to(torch.float32))
    ref_ids, ref_logits = hf_reference(model)
    d = os.path.join(tmp, "qwen2_f16")
    model.to(torch.float16).save_pretrained(d, safe_serialization=True)
    compare("qwen2_bias_tied_f16_hf", d, model, ref_ids, ref_logits, tmp)
    harness.finish()


main()
