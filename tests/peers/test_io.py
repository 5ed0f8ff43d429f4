"""io peers: Python safetensors, gguf (GGUFWriter/GGUFReader) and transformers as oracles.

- random safetensors files written by Python read identically by us (dtype, shape, bytes),
  and rewritten by our writer they come out byte-identical and load back in Python;
- random GGUF files from GGUFWriter (every value type, nested arrays, custom alignment,
  F32/F16/BF16/Q8_0/I32 tensors) read identically by us (metadata values, tensor table, bytes);
- the real asset GGUFs agree with GGUFReader;
- config.json from LlamaConfig/Qwen2Config/MistralConfig parses to the right fields, and the
  config.json our writer emits loads in AutoConfig as the same model;
- an HF sharded checkpoint (index + shards) reads as one set; a folder written by us
  (our safetensors + our config.json) loads in from_pretrained with identical logits.
"""
import json
import os
import random
import subprocess
import sys

import harness
from harness import check, skip

ROOT = harness.ROOT
LONG = os.environ.get("SQ_LONG") == "1"


def fnv1a64(b):
    h = 0xCBF29CE484222325
    for x in b:
        h ^= x
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


import numpy as np

fnv = fnv1a64


def inspect(path):
    p = harness.run([harness.CLI, "inspect", "--json", "--model", path], check_rc=False)
    if p.returncode != 0:
        raise RuntimeError(p.stderr)
    return json.loads(p.stdout)


def build_helper(tmp):
    """Compile tests/peers/io_rewrite.c against the sanitized library."""
    out = os.path.join(tmp, "io_rewrite")
    lib = os.path.join(harness.BUILD, "libscalequest.a")
    libs = subprocess.run(["pkg-config", "--libs", "libcjson"], capture_output=True, text=True).stdout.split()
    cmd = ["cc", "-std=c17", "-D_GNU_SOURCE", "-fsanitize=address,undefined", "-fopenmp", "-I" + os.path.join(ROOT, "include"),
           os.path.join(ROOT, "tests", "peers", "io_rewrite.c"), lib] + (libs or ["-lcjson"]) + ["-lm", "-lpthread"]
    subprocess.run(cmd + ["-o", out], check=True, capture_output=True)
    return out


def rand_string(rng, n):
    alphabet = "abcXYZ019 _-.\"\\/\n\té漢字🙂\x01"
    return "".join(rng.choice(alphabet) for _ in range(n))


# ---- safetensors ----------------------------------------------------------------------------

def st_random(tmp, helper, torch, st_torch, seed):
    rng = random.Random(seed)
    g = torch.Generator().manual_seed(seed)
    dtypes = [torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64, torch.uint8]
    tensors = {}
    for i in range(rng.randint(1, 12)):
        dt = rng.choice(dtypes)
        shape = [rng.randint(0 if rng.random() < 0.1 else 1, 7) for _ in range(rng.randint(0, 4))]
        if dt.is_floating_point:
            t = torch.randn(shape, generator=g).to(dt)
        else:
            t = torch.randint(0, 250, shape, generator=g).to(dt)
        tensors[f"model.layers.{i}.{rand_string(rng, 3)}"] = t
    path = os.path.join(tmp, f"py{seed}.safetensors")
    st_torch.save_file(tensors, path, metadata={"format": "pt"})
    ours = inspect(path)
    got = {t["name"]: t for t in ours["tensors"]}
    names = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I32": torch.int32, "I64": torch.int64,
             "U8": torch.uint8}
    ok, why = set(got) == set(tensors), f"names {sorted(got)} vs {sorted(tensors)}"
    for name, t in tensors.items():
        if not ok:
            break
        o = got[name]
        raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        if names[o["dtype"]] != t.dtype or o["shape"] != list(t.shape) or o["nbytes"] != len(raw) or o["fnv1a64"] != fnv(raw):
            ok, why = False, f"{name}: ours {o}, python {t.dtype} {list(t.shape)} {len(raw)} bytes"
    check(f"st_python_written_reads_identically_{seed}", ok, why)
    out = os.path.join(tmp, f"ours{seed}.safetensors")
    subprocess.run([helper, path, out], check=True, capture_output=True)
    same = open(out, "rb").read() == open(path, "rb").read()
    back = st_torch.load_file(out)
    equal = set(back) == set(tensors) and all(torch.equal(back[k], tensors[k]) for k in tensors)
    check(f"st_our_writer_loads_in_python_{seed}", equal, "values differ after our writer")
    check(f"st_our_writer_is_byte_identical_{seed}", same, "our file differs from Python's byte for byte")


def st_sharded(tmp, torch, transformers):
    cfg = transformers.LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
                                   num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg)
    d = os.path.join(tmp, "sharded")
    model.save_pretrained(d, max_shard_size="40KB")
    idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
    ours = inspect(d)
    got = {t["name"]: t for t in ours["tensors"]}
    sd = model.state_dict()
    ok = set(got) == set(idx["weight_map"]) and ours["files"] == len(set(idx["weight_map"].values())) > 1
    why = f"{len(got)} tensors in {ours['files']} files; index has {len(idx['weight_map'])}"
    for name, o in got.items():
        raw = sd[name].contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        if o["fnv1a64"] != fnv(raw) or o["shape"] != list(sd[name].shape):
            ok, why = False, f"{name} differs"
            break
    check("st_hf_sharded_checkpoint_reads_as_one_set", ok, why)
    c = ours["config"] or {}
    check("st_hf_folder_config", c.get("num_key_value_heads") == 2 and c.get("tie_word_embeddings") is True
          and c.get("vocab_size") == 300, str(c))


def hf_folder_round_trip(tmp, helper, torch, transformers):
    src = harness.asset("models/stories260K-hf")
    if not src:
        skip("hf_folder_written_by_us_loads_in_transformers", "../shared/assets absent")
        return
    d = os.path.join(tmp, "ours-hf")
    os.makedirs(d)
    subprocess.run([helper, os.path.join(src, "model.safetensors"), os.path.join(d, "model.safetensors")], check=True,
                   capture_output=True)
    cfg = inspect(os.path.join(src, "config.json"))["config"]
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
    a = transformers.LlamaForCausalLM.from_pretrained(src).eval()
    b = transformers.AutoModelForCausalLM.from_pretrained(d).eval()
    ids = torch.tensor([[1, 400, 30, 7, 99, 2]])
    with torch.no_grad():
        la, lb = a(ids).logits, b(ids).logits
    check("hf_folder_written_by_us_loads_in_transformers", torch.equal(la, lb), f"max diff {(la - lb).abs().max()}")


# ---- GGUF -----------------------------------------------------------------------------------

def gguf_random(tmp, gguf, seed):
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    path = os.path.join(tmp, f"py{seed}.gguf")
    w = gguf.GGUFWriter(path, "llama")
    T = gguf.GGUFValueType
    align = rng.choice([None, 8, 64, 256])
    if align:
        w.add_custom_alignment(align)
    expect = {"general.architecture": "llama"}
    if align:
        expect["general.alignment"] = align
    ints = {T.UINT8: (0, 255), T.INT8: (-128, 127), T.UINT16: (0, 65535), T.INT16: (-32768, 32767),
            T.UINT32: (0, 2**32 - 1), T.INT32: (-2**31, 2**31 - 1), T.UINT64: (0, 2**64 - 1), T.INT64: (-2**63, 2**63 - 1)}
    for i in range(rng.randint(5, 25)):
        key = f"t{seed}.k{i}.{rand_string(rng, 4)}"
        kind = rng.choice(list(ints) + [T.FLOAT32, T.FLOAT64, T.BOOL, T.STRING, "arr", "strs", "nested"])
        if kind in ints:
            v = rng.randint(*ints[kind])
            w.add_key_value(key, v, kind)
        elif kind == T.FLOAT32:
            v = float(np.float32(rng.uniform(-1e6, 1e6)))
            w.add_key_value(key, v, kind)
        elif kind == T.FLOAT64:
            v = rng.uniform(-1e300, 1e300)
            w.add_key_value(key, v, kind)
        elif kind == T.BOOL:
            v = rng.random() < 0.5
            w.add_key_value(key, v, kind)
        elif kind == T.STRING:
            v = rand_string(rng, rng.randint(0, 30))
            w.add_key_value(key, v, kind)
        elif kind == "arr":
            sub = rng.choice(list(ints))
            v = [rng.randint(*ints[sub]) for _ in range(rng.randint(1, 50))]  # GGUFWriter refuses empty arrays
            w.add_key_value(key, v, T.ARRAY, sub_type=sub)
        elif kind == "strs":
            v = [rand_string(rng, rng.randint(0, 8)) for _ in range(rng.randint(1, 300))]
            w.add_key_value(key, v, T.ARRAY, sub_type=T.STRING)
        else:
            v = [[rng.randint(-5, 5) for _ in range(rng.randint(1, 4))] for _ in range(rng.randint(1, 4))]
            w.add_array(key, v)
        expect[key] = v
    Q = gguf.GGMLQuantizationType
    tensors = {}
    for i in range(rng.randint(1, 8)):
        kind = rng.choice(["f32", "f16", "bf16", "q8", "i32"])
        rows, cols = rng.randint(1, 6), 32 * rng.randint(1, 3)
        name = f"blk.{i}.{kind}.weight"
        x = nprng.standard_normal((rows, cols)).astype(np.float32)
        if kind == "f32":
            w.add_tensor(name, x)
        elif kind == "f16":
            w.add_tensor(name, x.astype(np.float16))
        elif kind == "i32":
            w.add_tensor(name, nprng.integers(-1000, 1000, (rows, cols)).astype(np.int32))
        else:
            qt = Q.BF16 if kind == "bf16" else Q.Q8_0
            w.add_tensor(name, gguf.quants.quantize(x, qt), raw_dtype=qt)
        tensors[name] = kind
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    ours = inspect(path)
    md = ours["metadata"]
    ok, why = set(md) == set(expect), f"keys {sorted(set(md) ^ set(expect))}"
    for k, v in expect.items():
        if not ok:
            break
        o = md[k]
        same = (float(np.float32(o)) == v) if isinstance(v, float) and abs(v) < 1e7 else o == v
        if isinstance(v, float) and abs(v) >= 1e7:
            same = o == v
        if not same:
            ok, why = False, f"{k!r}: ours {o!r}, wrote {v!r}"
    check(f"gguf_python_metadata_reads_identically_{seed}", ok, why)

    r = gguf.GGUFReader(path)
    got = {t["name"]: t for t in ours["tensors"]}
    ok, why = set(got) == {t.name for t in r.tensors}, "tensor names differ"
    for t in r.tensors:
        if not ok:
            break
        o = got[t.name]
        raw = np.ascontiguousarray(t.data).tobytes()
        exp = (t.tensor_type.name, [int(s) for s in t.shape], int(t.data_offset), int(t.n_bytes), fnv(raw))
        mine = (o["type"], o["ne"], o["offset"], o["nbytes"], o["fnv1a64"])
        if exp != mine:
            ok, why = False, f"{t.name}: ours {mine}, gguf {exp}"
    check(f"gguf_python_tensors_read_identically_{seed}", ok, why)
    check(f"gguf_alignment_{seed}", ours["alignment"] == (align or 32), str(ours["alignment"]))


def gguf_q4_1_named(tmp, gguf):
    """#18: a Q4_1 model (written by gguf's own quantizer) is called Q4_1 by inspect, not
    the config's float32."""
    path = os.path.join(tmp, "q4_1.gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_context_length(64)
    w.add_embedding_length(32)
    w.add_block_count(1)
    w.add_feed_forward_length(64)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_layer_norm_rms_eps(1e-5)
    Q = gguf.GGMLQuantizationType
    rng = np.random.default_rng(0)
    shapes = {"token_embd": (32, 32), "blk.0.attn_q": (32, 32), "blk.0.attn_k": (32, 32), "blk.0.attn_v": (32, 32),
              "blk.0.attn_output": (32, 32), "blk.0.ffn_gate": (64, 32), "blk.0.ffn_up": (64, 32),
              "blk.0.ffn_down": (32, 64)}
    for name, shape in shapes.items():
        x = rng.standard_normal(shape).astype(np.float32)
        w.add_tensor(name + ".weight", gguf.quants.quantize(x, Q.Q4_1), raw_dtype=Q.Q4_1)
    for name in ("output_norm", "blk.0.attn_norm", "blk.0.ffn_norm"):
        w.add_tensor(name + ".weight", np.ones(32, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    p = harness.run([harness.CLI, "inspect", "--model", path], check_rc=False)
    line = next((l for l in p.stdout.splitlines() if l.startswith("config:")), "")
    check("gguf_inspect_names_q4_1", line.endswith(", Q4_1") and "float32" not in line, line or p.stderr)


def gguf_assets(gguf):
    # GGUFReader takes seconds per 32k-token vocabulary: the big files only with SQ_LONG=1.
    files = ["models/stories260K.gguf"]
    if LONG:
        files += ["models/llama-2-tiny-random.gguf", "vocab/ggml-vocab-llama-spm.gguf", "vocab/ggml-vocab-gpt-2.gguf"]
    for rel in files:
        path = harness.asset(rel)
        if not path:
            skip(f"gguf_asset_{os.path.basename(rel)}", "../shared/assets absent")
            continue
        ours = inspect(path)
        r = gguf.GGUFReader(path)
        ok, why = True, ""
        for k, f in r.fields.items():
            if k.startswith("GGUF."):
                continue
            v = f.contents()
            o = ours["metadata"].get(k)
            if isinstance(v, float):
                same = float(np.float32(o)) == float(np.float32(v))
            elif isinstance(v, list) and v and isinstance(v[0], float):
                same = np.array_equal(np.array(o, dtype=np.float32), np.array(v, dtype=np.float32))
            else:
                same = o == v
            if not same:
                ok, why = False, f"{k}: ours {str(o)[:80]}, gguf {str(v)[:80]}"
                break
        got = {t["name"]: t for t in ours["tensors"]}
        for t in r.tensors:
            o = got.get(t.name)
            raw = np.ascontiguousarray(t.data).tobytes()
            if ok and (o is None or o["offset"] != int(t.data_offset) or o["fnv1a64"] != fnv(raw)):
                ok, why = False, f"tensor {t.name} differs"
        check(f"gguf_asset_{os.path.basename(rel)}", ok and len(got) == len(r.tensors), why)


# ---- config.json ----------------------------------------------------------------------------

def configs(tmp, transformers):
    T = transformers
    cases = {
        "llama3": T.LlamaConfig(vocab_size=1000, hidden_size=256, intermediate_size=512, num_hidden_layers=3,
                                num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=131072,
                                rms_norm_eps=1e-5, bos_token_id=128000, eos_token_id=[128001, 128009],
                                tie_word_embeddings=True, dtype="bfloat16",
                                rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                                 "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                 "original_max_position_embeddings": 8192}),
        "llama_bias_linear": T.LlamaConfig(vocab_size=500, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                           num_attention_heads=4, attention_bias=True, head_dim=32,
                                           rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}),
        "qwen2": T.Qwen2Config(vocab_size=1500, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6, eos_token_id=151643,
                               rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, dtype="bfloat16"),
        "mistral": T.MistralConfig(vocab_size=800, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=1, sliding_window=2048),
        "mistral_nowindow": T.MistralConfig(vocab_size=800, hidden_size=128, intermediate_size=256,
                                            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                                            sliding_window=None),
    }
    for name, cfg in cases.items():
        d = os.path.join(tmp, "cfg-" + name)
        cfg.save_pretrained(d)
        ours = inspect(os.path.join(d, "config.json"))["config"]
        want = {
            "model_type": cfg.model_type, "hidden_size": cfg.hidden_size, "num_hidden_layers": cfg.num_hidden_layers,
            "num_attention_heads": cfg.num_attention_heads, "num_key_value_heads": cfg.num_key_value_heads,
            "head_dim": getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads,
            "intermediate_size": cfg.intermediate_size, "max_position_embeddings": cfg.max_position_embeddings,
            "vocab_size": cfg.vocab_size, "tie_word_embeddings": cfg.tie_word_embeddings,
        }
        # head_dim may be left out when it is the default (Qwen2's class has no such field).
        ours.setdefault("head_dim", ours["hidden_size"] // ours["num_attention_heads"])
        bad = {k: (ours.get(k), v) for k, v in want.items() if ours.get(k) != v}
        ours = inspect(os.path.join(d, "config.json"))["config"]
        rp = cfg.rope_parameters
        if abs(ours["rope_theta"] - rp["rope_theta"]) > 1e-3 * rp["rope_theta"]:
            bad["rope_theta"] = (ours["rope_theta"], rp["rope_theta"])
        if float(np.float32(ours["rms_norm_eps"])) != float(np.float32(cfg.rms_norm_eps)):
            bad["rms_norm_eps"] = (ours["rms_norm_eps"], cfg.rms_norm_eps)
        eos = cfg.eos_token_id
        if ours["eos_token_id"] != eos:
            bad["eos"] = (ours["eos_token_id"], eos)
        if cfg.model_type == "mistral" and ours.get("sliding_window") != cfg.sliding_window:
            bad["sliding_window"] = (ours.get("sliding_window"), cfg.sliding_window)
        if cfg.model_type == "llama" and ours["attention_bias"] != cfg.attention_bias:
            bad["attention_bias"] = (ours["attention_bias"], cfg.attention_bias)
        if rp.get("rope_type", "default") != "default":
            rs = ours.get("rope_scaling") or {}
            for k in ("rope_type", "factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"):
                if k in rp and rs.get(k) != rp[k]:
                    bad["rope." + k] = (rs.get(k), rp[k])
        check(f"config_{name}_parses_to_the_right_fields", not bad, str(bad))

        # Ours, loaded by AutoConfig, is the same model.
        d2 = os.path.join(tmp, "ours-" + name)
        os.makedirs(d2)
        json.dump(ours, open(os.path.join(d2, "config.json"), "w"))
        back = T.AutoConfig.from_pretrained(d2)
        keys = ["model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                "intermediate_size", "max_position_embeddings", "vocab_size", "tie_word_embeddings", "bos_token_id",
                "eos_token_id", "sliding_window", "attention_bias", "head_dim", "dtype"]
        diff = {k: (getattr(back, k, None), getattr(cfg, k, None)) for k in keys
                if str(getattr(back, k, None)) != str(getattr(cfg, k, None))}
        if float(np.float32(back.rms_norm_eps)) != float(np.float32(cfg.rms_norm_eps)):
            diff["rms_norm_eps"] = (back.rms_norm_eps, cfg.rms_norm_eps)
        bp = {k: v for k, v in back.rope_parameters.items() if k != "type"}
        if bp != dict(rp):
            diff["rope_parameters"] = (bp, dict(rp))
        check(f"config_{name}_ours_loads_in_autoconfig", not diff, str(diff))


def main():
    try:
        import gguf
        import safetensors.torch as st_torch
        import torch
        import transformers
    except ImportError as e:
        skip("io_peers", f"peer Python lacks {e.name}")
        harness.finish()
    transformers.logging.set_verbosity_error()
    tmp = harness.tmpdir()
    if not os.path.exists(os.path.join(harness.BUILD, "libscalequest.a")):
        skip("io_peers", "build/san/libscalequest.a not built")
        harness.finish()
    helper = build_helper(tmp)
    n = 40 if LONG else 6
    for seed in range(n):
        st_random(tmp, helper, torch, st_torch, seed)
    for seed in range(n):
        gguf_random(tmp, gguf, seed)
    gguf_assets(gguf)
    gguf_q4_1_named(tmp, gguf)
    configs(tmp, transformers)
    st_sharded(tmp, torch, transformers)
    hf_folder_round_trip(tmp, helper, torch, transformers)
    harness.finish()


if __name__ == "__main__":
    sys.exit(main())
