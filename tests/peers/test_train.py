"""Training against PyTorch/transformers and TRL: gradients of every parameter for each model
variant, 10 AdamW steps (losses and final weights), DPO loss/rewards/gradients against TRL's
DPOTrainer loss, and the scalar (MSE) head against transformers' sequence-classification head.
The C side runs through `scalequest train` (the sanitized build); weights travel as safetensors."""
import copy
import json
import math
import os
import sys
from collections import defaultdict
from types import SimpleNamespace

import harness

try:
    import torch
    import torch.nn.functional as F
    import transformers
    from safetensors.torch import load_file
except ImportError as exc:  # the peer set-up is absent
    harness.skip("all", f"torch/transformers not importable: {exc}")
    harness.finish()

torch.set_num_threads(1)
torch.manual_seed(0)
LONG = os.environ.get("SQ_LONG") == "1"
V, C = 61, 32


def make_config(arch, kv, tied, cls="causal", extra=None):
    kw = dict(vocab_size=V, hidden_size=C, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=kv, max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=10000.0,
              tie_word_embeddings=tied, initializer_range=0.1, pad_token_id=V - 1)
    kw.update(extra or {})
    if arch == "qwen2":
        cfg = transformers.Qwen2Config(**kw)
    else:
        cfg = transformers.LlamaConfig(**kw)
    cfg._attn_implementation = "eager"
    if cls == "score":
        cfg.num_labels = 1
        return cfg, (transformers.Qwen2ForSequenceClassification if arch == "qwen2"
                     else transformers.LlamaForSequenceClassification)
    return cfg, (transformers.Qwen2ForCausalLM if arch == "qwen2" else transformers.LlamaForCausalLM)


def make_model(arch, kv, tied, d, cls="causal", extra=None):
    cfg, klass = make_config(arch, kv, tied, cls, extra)
    model = klass(cfg).float()
    with torch.no_grad():  # norms and biases away from their init so their gradients matter
        for n, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(d, safe_serialization=True)
    model.train()
    return model


def rand_examples(n, lo, hi, gen):
    out = []
    for _ in range(n):
        L = int(torch.randint(lo, hi + 1, (1,), generator=gen))
        ids = torch.randint(0, V - 1, (L,), generator=gen).tolist()
        p = int(torch.randint(2, L // 2, (1,), generator=gen))
        out.append((ids, [0] * p + [1] * (L - p)))
    return out


def write_jsonl(path, recs):
    with open(path, "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")


def read_log(d):
    with open(os.path.join(d, "train_log.jsonl")) as f:
        return [json.loads(l) for l in f if l.strip()]


def run_cli(args):
    harness.run([harness.CLI, "train", "--quiet", "--threads", "1", "--seed", "3"] + args)


def seq_logp(model, ids, mask):
    x = torch.tensor([ids])
    logits = model(input_ids=x).logits[0].float()
    lp = F.log_softmax(logits[:-1], dim=-1).gather(1, x[0, 1:, None])[:, 0]
    return (lp * torch.tensor(mask[1:], dtype=torch.float32)).sum()


def ce_loss(model, exs):
    tot = sum(seq_logp(model, ids, m) for ids, m in exs)
    cnt = sum(sum(m[1:]) for _, m in exs)
    return -tot / cnt


def compare_grads(name, model, path):
    ours = load_file(path)
    params = dict(model.named_parameters())
    worst, bad = 0.0, []
    for n, p in params.items():
        if n not in ours:
            bad.append(f"{n} missing")
            continue
        g = p.grad
        scale = float(g.abs().max())
        err = float((ours[n] - g).abs().max())
        rel = err / max(scale, 1e-30)
        worst = max(worst, rel)
        if err > 1e-4 * scale or scale == 0:
            bad.append(f"{n}: max err {err:.3g} vs largest grad {scale:.3g}")
    extra = set(ours) - set(params)
    if extra:
        bad.append(f"unexpected tensors {sorted(extra)}")
    harness.check(name, not bad, "; ".join(bad[:4]))
    return worst


def adamw_for(model, lr, wd):
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    rest = [p for n, p in model.named_parameters() if p.dim() != 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.999), eps=1e-8)


# ---- gradients and 10 AdamW steps for each variant -----------------------------------------------
LLAMA3_ROPE = {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 16}}
VARIANTS = [("llama_gqa_untied", "llama", 2, False, None), ("qwen2_bias_tied", "qwen2", 2, True, None),
            ("llama3_rope_scaled_tied", "llama", 2, True, LLAMA3_ROPE)]
if LONG:
    VARIANTS += [("llama_mqa_tied", "llama", 1, True, None), ("qwen2_mha_untied", "qwen2", 4, False, None),
                 ("llama_mha_untied", "llama", 4, False, None)]

gen = torch.Generator().manual_seed(1)
for tag, arch, kv, tied, extra in VARIANTS:
    d = harness.tmpdir()
    model = make_model(arch, kv, tied, os.path.join(d, "init"), extra=extra)
    exs = rand_examples(4, 10, 24, gen)
    write_jsonl(os.path.join(d, "d.jsonl"), [{"input_ids": i, "loss_mask": m} for i, m in exs])
    steps, lr, wd = 10, 1e-2, 0.1
    run_cli(["--mode", "sft", "--model", os.path.join(d, "init"), "--data", os.path.join(d, "d.jsonl"),
             "--out", os.path.join(d, "out"), "--batch", "4", "--seq-len", "24", "--no-pack",
             "--max-steps", str(steps), "--lr", str(lr), "--weight-decay", str(wd), "--warmup-steps", "2",
             "--schedule", "cosine", "--clip", "1.0", "--grads-out", os.path.join(d, "grads.safetensors")])
    ours = [r["loss"] for r in read_log(os.path.join(d, "out"))]

    opt = adamw_for(model, lr, wd)
    sched = transformers.get_cosine_schedule_with_warmup(opt, 2, steps)
    theirs = []
    for s in range(steps):
        opt.zero_grad()
        loss = ce_loss(model, exs)
        loss.backward()
        if s == 0:
            compare_grads(f"grads_{tag}", model, os.path.join(d, "grads.safetensors"))
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        theirs.append(float(loss))
    diffs = [abs(a - b) / max(1.0, abs(b)) for a, b in zip(ours, theirs)]
    harness.check(f"adamw_10_steps_{tag}", len(ours) == steps and max(diffs) < 2e-4,
                  f"ours {ours[:3]}... theirs {theirs[:3]}...; worst rel diff {max(diffs) if diffs else None}")
    # transformers loads what we wrote, and the weights are where torch's 10 steps took them.
    back = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(d, "out"), attn_implementation="eager")
    sd_theirs = dict(model.named_parameters())
    worst = max(float((p - sd_theirs[n]).abs().max()) for n, p in back.named_parameters())
    harness.check(f"checkpoint_loads_in_transformers_{tag}", worst < 1e-3, f"max weight difference {worst:.3g}")

# ---- DPO against TRL ----------------------------------------------------------------------------------
try:
    from trl.trainer.dpo_trainer import DPOTrainer
    from trl.trainer.utils import add_fused_lm_head
    have_trl = True
except ImportError as exc:
    have_trl = False
    harness.skip("dpo_vs_trl", f"trl not importable: {exc}")

if have_trl:
    d = harness.tmpdir()
    model = make_model("qwen2", 2, True, os.path.join(d, "init"))
    ref = copy.deepcopy(model).eval()
    pairs = []
    for _ in range(3):
        prompt = torch.randint(0, V - 1, (int(torch.randint(4, 9, (1,), generator=gen)),), generator=gen).tolist()
        seqs = []
        for _ in range(2):
            resp = torch.randint(0, V - 1, (int(torch.randint(3, 10, (1,), generator=gen)),), generator=gen).tolist()
            seqs.append((prompt + resp, [0] * len(prompt) + [1] * len(resp)))
        pairs.append(seqs)
    write_jsonl(os.path.join(d, "p.jsonl"), [{"chosen_ids": c[0], "chosen_mask": c[1], "rejected_ids": r[0],
                                              "rejected_mask": r[1]} for c, r in pairs])
    beta, lr, steps = 0.1, 2e-2, 4
    run_cli(["--mode", "dpo", "--model", os.path.join(d, "init"), "--data", os.path.join(d, "p.jsonl"),
             "--out", os.path.join(d, "out"), "--batch", "6", "--seq-len", "24", "--max-steps", str(steps),
             "--lr", str(lr), "--beta", str(beta), "--schedule", "constant", "--clip", "0",
             "--grads-out", os.path.join(d, "grads.safetensors")])
    log = read_log(os.path.join(d, "out"))

    add_fused_lm_head(model, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
    seqs = [c for c, _ in pairs] + [r for _, r in pairs]  # TRL's batch: chosen rows, then rejected rows
    L = max(len(s[0]) for s in seqs)
    ids = torch.full((len(seqs), L), V - 1, dtype=torch.long)
    att = torch.zeros((len(seqs), L), dtype=torch.long)
    comp = torch.zeros((len(seqs), L), dtype=torch.long)
    for i, (s, m) in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        att[i, :len(s)] = 1
        comp[i, :len(s)] = torch.tensor(m)
    with torch.no_grad():
        ref_lp = torch.stack([seq_logp(ref, s, m) for s, m in seqs])
    P = len(pairs)
    inputs = {"input_ids": ids, "attention_mask": att, "completion_mask": comp,
              "ref_chosen_logps": ref_lp[:P], "ref_rejected_logps": ref_lp[P:]}
    acc = SimpleNamespace(device=torch.device("cpu"), gather=lambda x: x, gather_for_metrics=lambda x: x)
    fake = SimpleNamespace(model=model, accelerator=acc, aux_loss_enabled=False, ld_alpha=None,
                           precompute_ref_logps=True, f_divergence_type="reverse_kl", loss_types=["sigmoid"],
                           loss_weights=[1.0], beta=beta, use_weighting=False, label_smoothing=0.0,
                           _metrics={"train": defaultdict(list), "eval": defaultdict(list)}, _total_train_tokens=0,
                           _tp_size=1, args=SimpleNamespace())
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    trl_losses = []
    for s in range(steps):
        opt.zero_grad()
        loss = DPOTrainer._compute_loss(fake, model, inputs, False)
        loss.backward()
        if s == 0:
            compare_grads("dpo_grads_vs_trl", model, os.path.join(d, "grads.safetensors"))
        opt.step()
        trl_losses.append(float(loss))
    rc = fake._metrics["train"]["rewards/chosen"]
    rr = fake._metrics["train"]["rewards/rejected"]
    ok = len(log) == steps
    why = ""
    for s in range(min(steps, len(log))):
        for ours_v, theirs_v, what in ((log[s]["loss"], trl_losses[s], "loss"),
                                       (log[s]["rewards_chosen"], rc[s], "chosen reward"),
                                       (log[s]["rewards_rejected"], rr[s], "rejected reward")):
            if abs(ours_v - theirs_v) > 1e-4 * max(1.0, abs(theirs_v)):
                ok, why = False, f"step {s + 1} {what}: ours {ours_v}, TRL {theirs_v}"
    harness.check("dpo_loss_and_rewards_vs_trl", ok and abs(trl_losses[0] - math.log(2)) < 1e-6 and abs(rc[-1]) > 1e-3,
                  why or f"losses {trl_losses}, rewards {rc}")

# ---- scalar head (MSE) against transformers' sequence-classification head ------------------------------
d = harness.tmpdir()
model = make_model("llama", 2, False, os.path.join(d, "init"), cls="score")
exs = rand_examples(4, 6, 20, gen)
targets = [0.25, 0.5, 0.75, 1.0]
write_jsonl(os.path.join(d, "r.jsonl"), [{"input_ids": i, "value": t} for (i, _), t in zip(exs, targets)])
steps, lr = 5, 1e-2
run_cli(["--mode", "regress", "--model", os.path.join(d, "init"), "--data", os.path.join(d, "r.jsonl"),
         "--out", os.path.join(d, "out"), "--batch", "4", "--seq-len", "24", "--no-pack", "--max-steps", str(steps),
         "--lr", str(lr), "--schedule", "constant", "--clip", "0", "--grads-out", os.path.join(d, "grads.safetensors")])
ours = [r["loss"] for r in read_log(os.path.join(d, "out"))]
opt = adamw_for(model, lr, 0.0)
theirs = []
for s in range(steps):
    opt.zero_grad()
    vals = torch.stack([model(input_ids=torch.tensor([ids])).logits[0, 0] for ids, _ in exs])
    loss = F.mse_loss(vals, torch.tensor(targets))
    loss.backward()
    if s == 0:
        compare_grads("mse_head_grads", model, os.path.join(d, "grads.safetensors"))
    opt.step()
    theirs.append(float(loss))
diffs = [abs(a - b) / max(1.0, abs(b)) for a, b in zip(ours, theirs)]
harness.check("mse_head_losses", len(ours) == steps and max(diffs) < 2e-4, f"ours {ours}, theirs {theirs}")
back = transformers.AutoModelForSequenceClassification.from_pretrained(os.path.join(d, "out"), attn_implementation="eager")
with torch.no_grad():
    v_back = back(input_ids=torch.tensor([exs[0][0]])).logits[0, 0]
    v_torch = model(input_ids=torch.tensor([exs[0][0]])).logits[0, 0]
harness.check("score_head_checkpoint_loads_in_transformers", abs(float(v_back - v_torch)) < 1e-3,
              f"value {float(v_back)} vs {float(v_torch)}")
harness.finish()
