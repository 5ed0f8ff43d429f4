"""Quantized GGUF blocks against gguf-py (gguf.quants, llama.cpp's own Python reference).

For each type the engine reads (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K) a GGUF file is
written with GGUFWriter: Q4_0..Q8_0 tensors quantized by gguf.quants.quantize from random
floats (some rows all zero, some with one huge value), K-type tensors as random block bytes
with finite f16 scales (gguf-py cannot quantize to K types; random bytes reach every bit
pattern of the packed values and sub-scales). Row lengths are odd block counts (1, 3, 7, 9
blocks) so the last block of a row and of the tensor are both covered. Our dequantized values
must equal gguf.quants.dequantize value for value (bit for bit), and our matmul outputs
(batched panel path, fused batch-1 GEMV, C fallback) must agree with float64 numpy on the
dequantized weights within 1e-5 of sum|x||w|, and with each other bit for bit (fp32
activations, --act-type f32).

On 8-bit activations (the default, llama.cpp's arithmetic): our rounding of each x row must
equal a numpy re-implementation of llama.cpp's x86 quantize_row_q8_0/q8_1 (d = amax/127 in
f16, q = rint(x * 127/amax), s = f16(d * sum q)) and of quantize_row_q8_K (first largest
|x| sets the sign, d = 1/(-127/max) in fp32) bit for bit; against gguf-py's
quants.quantize(Q8_0) (llama.cpp's scalar reference: 1/d and rounding half away from zero)
the scales are equal and a q may differ by one at a near-tie (counted, <= 0.1%). The matmul
outputs (batched, one row per call, C, AVX2, and VNNI where the CPU has it) are equal bit
for bit, and equal float64 on the rounded values within 1e-5 of sum|x||w| once llama.cpp's
f16 rounding of s in the Q*_1 min term is accounted for.
"""
import os
import subprocess

import harness

try:
    import numpy as np
    import gguf
    from gguf import quants
except ImportError as ex:
    harness.skip("all", f"peer Python lacks {ex.name}")
    harness.finish()

T = gguf.GGMLQuantizationType
SIMPLE = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]
KTYPES = ["Q4_K", "Q5_K", "Q6_K"]
# Where each K type keeps its f16 scales (byte offsets in the block), and the block size.
KSCALES = {"Q4_K": ([0, 2], 144), "Q5_K": ([0, 2], 176), "Q6_K": ([208], 210)}


def build_helper(tmp):
    out = os.path.join(tmp, "quant_dump")
    lib = os.path.join(harness.BUILD, "libscalequest.a")
    libs = subprocess.run(["pkg-config", "--libs", "libcjson"], capture_output=True, text=True).stdout.split()
    san = ["-fsanitize=address,undefined"] if "san" in os.path.basename(harness.BUILD) else []
    cmd = ["cc", "-std=c17", "-D_GNU_SOURCE", "-fopenmp", "-I" + os.path.join(harness.ROOT, "include"),
           os.path.join(harness.ROOT, "tests", "peers", "quant_dump.c"), lib] + san + (libs or ["-lcjson"]) + \
          ["-ldnnl", "-lm", "-lpthread"]
    subprocess.run(cmd + ["-o", out], check=True, capture_output=True)
    return out


def act_q8b(x):
    """llama.cpp's x86 quantize_row_q8_1 (Q8_0 is the same without s): q, d (f16), s (f16)."""
    b = x.reshape(x.shape[0], -1, 32)
    amax = np.abs(b).max(-1, keepdims=True)
    d = amax / np.float32(127)
    with np.errstate(divide="ignore"):
        inv = np.where(amax != 0, np.float32(127) / amax, np.float32(0)).astype(np.float32)
    q = np.rint(b * inv)
    d16 = d.astype(np.float16).astype(np.float32)
    s16 = (d[..., 0] * q.sum(-1).astype(np.float32)).astype(np.float16).astype(np.float32)
    return q, d16, s16


def act_q8k(x):
    """llama.cpp's quantize_row_q8_K: q and the fp32 d per 256 values."""
    b = x.reshape(x.shape[0], -1, 256)
    mx = np.take_along_axis(b, np.abs(b).argmax(-1)[..., None], -1)
    iscale = np.float32(-127) / mx
    q = np.minimum(np.rint(iscale * b), 127)
    return q, (np.float32(1) / iscale).astype(np.float32)


def check_q8(tname, name, q, x, shape, tmp, ref):
    """The 8-bit activation path of one tensor (see the module text)."""
    rows, n = shape
    ours = np.fromfile(os.path.join(tmp, tname + ".q8"), dtype=np.float32).reshape(x.shape)
    if name in KTYPES:
        qq, d = act_q8k(x)
        want = (qq * d).astype(np.float32).reshape(x.shape)
        corr = 0.0
    else:
        qq, d, s = act_q8b(x)
        want = (qq * d).astype(np.float32).reshape(x.shape)
        ds = np.fromfile(os.path.join(tmp, tname + ".q8s"), dtype=np.float32).reshape(x.shape[0], -1, 2)
        harness.check(f"q8_scales_{tname}", np.array_equal(ds[..., 0], d[..., 0]) and np.array_equal(ds[..., 1], s),
                      f"d/s differ: {np.argwhere(ds[..., 1] != s)[:3].tolist()}")
        # gguf-py's Q8_0 (llama.cpp's scalar reference) on the same rows
        g = quants.quantize(x, T.Q8_0).reshape(x.shape[0], -1, 34)
        gd = g[..., :2].copy().view(np.float16)[..., 0].astype(np.float32)
        gq = g[..., 2:].view(np.int8).astype(np.float32)
        off = np.abs(gq - qq)
        harness.check(f"q8_0_vs_gguf_{tname}", np.array_equal(gd, d[..., 0]) and off.max() <= 1 and off.mean() <= 1e-3,
                      f"scales equal {np.array_equal(gd, d[..., 0])}, q off by one at {int((off > 0).sum())}")
        Q8STATS["gguf_q_off"] += int((off > 0).sum())
        Q8STATS["values"] += off.size
        corr = 0.0
        if name in ("Q4_1", "Q5_1"):   # llama.cpp's min term m * s: s rounded to f16
            bb = 20 if name == "Q4_1" else 24
            m = q.reshape(rows, -1, bb)[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float64)  # (rows, nb)
            delta = s.astype(np.float64) - d[..., 0].astype(np.float64) * qq.sum(-1)                  # (R, nb)
            corr = delta @ m.T
    # value equality: an integer q of 0 has no sign, numpy's rint(-0.3) * d is -0.0
    harness.check(f"q8_rounding_{tname}", np.array_equal(ours, want),
                  f"{int((ours != want).sum())} values differ")
    y = np.fromfile(os.path.join(tmp, tname + ".mmq"), dtype=np.float32).reshape(len(x), rows)
    exact = want.astype(np.float64) @ ref.astype(np.float64).T + corr
    scale = np.abs(want).astype(np.float64) @ np.abs(ref).astype(np.float64).T + 1e-30
    err = float(np.max(np.abs(y - exact) / scale))
    Q8STATS["worst"] = max(Q8STATS["worst"], err)
    harness.check(f"q8_matmul_{tname}", err < 1e-5, f"max error {err:.3g} of sum|x||w|")
    for ext in ("mmq1", "mmqc", "mmqa"):
        o = np.fromfile(os.path.join(tmp, tname + "." + ext), dtype=np.float32).reshape(y.shape)
        harness.check(f"q8_{ext}_equals_batched_{tname}", np.array_equal(o.view(np.uint32), y.view(np.uint32)),
                      f"max diff {np.max(np.abs(o - y)):.3g}")


Q8STATS = {"gguf_q_off": 0, "values": 0, "worst": 0.0}


def simple_tensor(rng, name, rows, blocks):
    a = rng.standard_normal((rows, 32 * blocks)).astype(np.float32) * rng.uniform(0.01, 3.0)
    a[0, :32] = 0.0                      # an all-zero block (scale 0)
    if rows > 2:
        a[2, -1] = 1000.0                # one outlier in the tensor's last block
    return quants.quantize(a, getattr(T, name))


def k_tensor(rng, name, rows, blocks):
    offs, bb = KSCALES[name]
    raw = rng.integers(0, 256, size=(rows, blocks, bb), dtype=np.uint8)
    for o in offs:
        sc = (rng.standard_normal((rows, blocks)) * 0.05).astype(np.float16)
        sc[0, 0] = np.float16(6e-8)      # a subnormal scale
        raw[:, :, o:o + 2] = sc.view(np.uint8).reshape(rows, blocks, 2)
    return raw.reshape(rows, blocks * bb)


def tiny_model(path, q_type, q_raw=None):
    """A 1-layer llama GGUF (dim 256) whose attn_q has the given type (raw blocks if given)."""
    rng = np.random.default_rng(3)
    w = gguf.GGUFWriter(path, "llama")
    for f, v in ((w.add_block_count, 1), (w.add_context_length, 64), (w.add_embedding_length, 256),
                 (w.add_feed_forward_length, 256), (w.add_head_count, 2), (w.add_head_count_kv, 1),
                 (w.add_layer_norm_rms_eps, 1e-5), (w.add_vocab_size, 8)):
        f(v)

    def q8(name, shape):
        q = quants.quantize((rng.standard_normal(shape) * 0.1).astype(np.float32), T.Q8_0)
        w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=T.Q8_0)
    q8("token_embd.weight", (8, 256))
    w.add_tensor("output_norm.weight", np.ones(256, dtype=np.float32))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(256, dtype=np.float32))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(256, dtype=np.float32))
    if q_raw is not None:
        w.add_tensor("blk.0.attn_q.weight", q_raw, raw_shape=q_raw.shape, raw_dtype=q_type)
    else:
        q8("blk.0.attn_q.weight", (256, 256))
    for n, shape in (("attn_k", (128, 256)), ("attn_v", (128, 256)), ("attn_output", (256, 256)),
                     ("ffn_gate", (256, 256)), ("ffn_up", (256, 256)), ("ffn_down", (256, 256))):
        q8(f"blk.0.{n}.weight", shape)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def unsupported_and_corrupt(tmp):
    """A ggml type the engine does not read is refused by its name; a NaN block scale is a
    load error naming tensor, block and offset (through the CLI)."""
    rng = np.random.default_rng(4)
    p = os.path.join(tmp, "q2k.gguf")
    tiny_model(p, T.Q2_K, rng.integers(0, 256, size=(256, 84), dtype=np.uint8))
    r = subprocess.run([harness.CLI, "logits", "--model", p, "--ids", "1,2"], capture_output=True, text=True)
    harness.check("unsupported_type_named", r.returncode != 0 and "Q2_K" in r.stderr and "blk.0.attn_q.weight" in r.stderr,
                  r.stderr[-400:])
    p = os.path.join(tmp, "nan.gguf")
    raw = k_tensor(rng, "Q4_K", 256, 1)
    raw[5, 0:2] = np.array([0x00, 0x7e], dtype=np.uint8)  # row 5's block: d = NaN
    tiny_model(p, T.Q4_K, raw)
    r = subprocess.run([harness.CLI, "logits", "--model", p, "--ids", "1,2"], capture_output=True, text=True)
    harness.check("nan_scale_refused", r.returncode != 0 and "Q4_K block 5 has a NaN" in r.stderr and "offset" in r.stderr,
                  r.stderr[-400:])
    tiny_model(os.path.join(tmp, "ok.gguf"), T.Q4_K, k_tensor(rng, "Q4_K", 256, 1))
    r = subprocess.run([harness.CLI, "logits", "--model", os.path.join(tmp, "ok.gguf"), "--ids", "1,2", "--greedy", "2"],
                       capture_output=True, text=True)
    harness.check("tiny_k_model_runs", r.returncode == 0, r.stderr[-400:])


def main():
    tmp = harness.tmpdir()
    try:
        helper = build_helper(tmp)
    except subprocess.CalledProcessError as ex:
        harness.check("build_helper", False, ex.stderr.decode()[-800:])
        harness.finish()
    rng = np.random.default_rng(14)
    path = os.path.join(tmp, "q.gguf")
    w = gguf.GGUFWriter(path, "llama")
    cases = {}
    for name in SIMPLE + KTYPES:
        per = 256 if name in KTYPES else 32
        for rows, blocks in ((1, 1), (5, 3), (9, 7), (3, 9)):
            tname = f"{name}_{rows}x{blocks}"
            q = k_tensor(rng, name, rows, blocks) if name in KTYPES else simple_tensor(rng, name, rows, blocks)
            w.add_tensor(tname, q, raw_shape=q.shape, raw_dtype=getattr(T, name))
            x = rng.standard_normal((6 if rows > 1 else 4, per * blocks)).astype(np.float32)
            cases[tname] = (name, q, x, (rows, per * blocks))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    for tname, (_, _, x, _) in cases.items():
        x.tofile(os.path.join(tmp, tname + ".x"))
    p = subprocess.run([helper, path, tmp], capture_output=True, text=True)
    if not harness.check("helper_runs", p.returncode == 0, p.stderr[-1500:]):
        harness.finish()
    worst = {}
    for tname, (name, q, x, shape) in cases.items():
        ref = quants.dequantize(q, getattr(T, name)).astype(np.float32).reshape(shape)
        ours = np.fromfile(os.path.join(tmp, tname + ".deq"), dtype=np.float32).reshape(shape)
        same = np.array_equal(ref.view(np.uint32), ours.view(np.uint32))
        bad = np.argwhere(ref.view(np.uint32) != ours.view(np.uint32))
        harness.check(f"dequant_{tname}", same,
                      f"{len(bad)} values differ, first at {bad[0].tolist() if len(bad) else None}: "
                      f"ours {ours[tuple(bad[0])] if len(bad) else ''} gguf {ref[tuple(bad[0])] if len(bad) else ''}")
        y = np.fromfile(os.path.join(tmp, tname + ".mm"), dtype=np.float32).reshape(len(x), shape[0])
        y1 = np.fromfile(os.path.join(tmp, tname + ".mm1"), dtype=np.float32).reshape(y.shape)
        yc = np.fromfile(os.path.join(tmp, tname + ".mmc"), dtype=np.float32).reshape(y.shape)
        exact = x.astype(np.float64) @ ref.astype(np.float64).T
        scale = np.abs(x).astype(np.float64) @ np.abs(ref).astype(np.float64).T + 1e-30
        err = float(np.max(np.abs(y - exact) / scale))
        worst[name] = max(worst.get(name, 0.0), err)
        harness.check(f"matmul_{tname}", err < 1e-5, f"max error {err:.3g} of sum|x||w|")
        harness.check(f"batch1_equals_batched_{tname}", np.array_equal(y.view(np.uint32), y1.view(np.uint32)),
                      f"max diff {np.max(np.abs(y - y1)):.3g}")
        harness.check(f"c_equals_simd_{tname}", np.array_equal(y.view(np.uint32), yc.view(np.uint32)),
                      f"max diff {np.max(np.abs(y - yc)):.3g}")
        check_q8(tname, name, q, x, shape, tmp, ref)
    unsupported_and_corrupt(tmp)
    print("  also matmul max error / sum|x||w| per type: " +
          ", ".join(f"{k} {v:.2g}" for k, v in worst.items()), flush=True)
    print(f"  also 8-bit activations: matmul max error {Q8STATS['worst']:.2g} of sum|x||w|; gguf-py's Q8_0 q "
          f"differs by one at {Q8STATS['gguf_q_off']} of {Q8STATS['values']} values", flush=True)
    harness.finish()


main()
