"""The scalar head at inference (`scalequest score`) against transformers'
AutoModelForSequenceClassification on random-weight reward models of each family, built and
saved by transformers itself: Llama (no pad token: the last token is scored), Qwen2 with
random q/k/v biases and Mistral with a sliding window shorter than the texts (both with a pad
token, so texts that end in pad tokens are scored at their last other token), a BF16 Qwen2,
and the folder `scalequest train --mode regress` writes, from random weights or starting from
the BF16 reward model (read through the engine's loader). Values agree within 1e-4 of the
largest score; steps small enough to split texts across forwards give the same bits."""
import json
import os

import harness

try:
    import torch
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, processors, trainers
except ImportError as ex:  # the peer environment is optional
    harness.skip("all", f"peer Python lacks {ex.name}")
    harness.finish()

torch.manual_seed(0)
TEXTS = [
    "What is 2 + 3?",
    "A train leaves at 3 pm and travels 120 km at 60 km/h. When does it arrive?",
    "Find all real x with x^2 - 5x + 6 = 0.<|pad|><|pad|>",
    "Mia has 3 apples.<|pad|> She buys 4 more. How many now?",
    "<|pad|>",
    "Let n be the number of positive divisors of 360. Compute n, then the sum of the divisors, "
    "and explain each step of the factorisation 360 = 2^3 * 3^2 * 5 in words.",
    "x",
]


def make_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=320, special_tokens=["<s>", "</s>", "<|pad|>"],
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TEXTS * 4 + ["the quick brown fox jumps over the lazy dog 0123456789"] * 4, tr)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return tok


def build(kind, vocab, pad):
    common = dict(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, max_position_embeddings=256, rms_norm_eps=1e-5,
                  initializer_range=0.2, bos_token_id=0, eos_token_id=1, num_labels=1)
    if kind == "llama":
        cfg = transformers.LlamaConfig(num_key_value_heads=2, tie_word_embeddings=False, pad_token_id=None, **common)
        klass = transformers.LlamaForSequenceClassification
    elif kind == "qwen2_bias":
        cfg = transformers.Qwen2Config(num_key_value_heads=2, tie_word_embeddings=True, rope_theta=1000000.0,
                                       use_sliding_window=False, pad_token_id=pad, **common)
        klass = transformers.Qwen2ForSequenceClassification
    elif kind == "mistral_window":
        cfg = transformers.MistralConfig(num_key_value_heads=2, tie_word_embeddings=False, sliding_window=12,
                                         head_dim=16, pad_token_id=pad, **common)
        klass = transformers.MistralForSequenceClassification
    else:
        raise ValueError(kind)
    cfg._attn_implementation = "eager"
    model = klass(cfg).float().eval()
    with torch.no_grad():
        model.score.weight.normal_(0, 0.5)
        if kind == "qwen2_bias":  # random biases, so that they matter
            for layer in model.model.layers:
                for p in (layer.self_attn.q_proj.bias, layer.self_attn.k_proj.bias, layer.self_attn.v_proj.bias):
                    p.normal_(0, 0.5)
    return model


def theirs(model, tok):
    with torch.no_grad():
        return [float(model(input_ids=torch.tensor([tok.encode(t).ids])).logits[0, 0]) for t in TEXTS]


def ours(folder, tmp, extra=()):
    src, dst = os.path.join(tmp, "in.jsonl"), os.path.join(tmp, "out.jsonl")
    with open(src, "w") as f:
        for i, t in enumerate(TEXTS):
            f.write(json.dumps({"id": f"t{i}", "text": t}) + "\n")
    if os.path.exists(dst):
        os.remove(dst)
    harness.run([harness.CLI, "score", "--model", folder, "--in", src, "--out", dst, "--field", "text", "--quiet",
                 *extra])
    with open(dst) as f:
        recs = [json.loads(l) for l in f]
    assert [r["id"] for r in recs] == [f"t{i}" for i in range(len(TEXTS))], recs
    return [r["score"] for r in recs]


def compare(name, folder, ref, tmp):
    try:
        got = ours(folder, tmp)
        split = ours(folder, tmp, ("--batch-tokens", "7"))
    except (RuntimeError, AssertionError) as ex:
        harness.check(name, False, str(ex)[-800:])
        return
    scale = max(abs(v) for v in ref)
    err = max(abs(a - b) for a, b in zip(got, ref)) / scale
    harness.check(name + "_vs_transformers", err <= 1e-4, f"max error {err:.3g} of the largest score; ours {got}, hf {ref}")
    harness.check(name + "_split_steps_same_bits", got == split, f"whole {got} vs 7-token steps {split}")


def main():
    tmp = harness.tmpdir()
    tok = make_tokenizer()
    vocab, pad = tok.get_vocab_size(), tok.token_to_id("<|pad|>")
    for kind in ["llama", "qwen2_bias", "mistral_window"]:
        model = build(kind, vocab, pad)
        d = os.path.join(tmp, kind)
        model.save_pretrained(d, safe_serialization=True)
        tok.save(os.path.join(d, "tokenizer.json"))
        compare(kind, d, theirs(model, tok), tmp)
    # BF16 (what reward models ship as): against float32 on the same rounded weights.
    model = build("qwen2_bias", vocab, pad)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))
    ref = theirs(model, tok)
    d = os.path.join(tmp, "qwen2_bf16")
    model.to(torch.bfloat16).save_pretrained(d, safe_serialization=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    compare("qwen2_bias_bf16", d, ref, tmp)
    bf16_dir, bf16_ref = d, ref
    # What `train --mode regress` writes, read back by transformers.
    d = os.path.join(tmp, "regress")
    data = os.path.join(tmp, "r.jsonl")
    tok.save(os.path.join(tmp, "tokenizer.json"))
    with open(data, "w") as f:
        for i, t in enumerate(TEXTS[:4]):
            f.write(json.dumps({"query": t, "value": 0.25 * i}) + "\n")
    try:
        harness.run([harness.CLI, "train", "--mode", "regress", "--init-config",
                     f"dim=32,layers=2,heads=4,kv_heads=2,ffn=48,vocab={vocab},seq=128,eos=1", "--tokenizer",
                     os.path.join(tmp, "tokenizer.json"), "--data", data, "--out", d, "--batch", "4", "--seq-len", "64",
                     "--max-steps", "3", "--lr", "1e-2", "--init-std", "0.2", "--quiet"])
        back = transformers.AutoModelForSequenceClassification.from_pretrained(d, attn_implementation="eager").eval()
        compare("train_regress_output", d, theirs(back, tok), tmp)
    except RuntimeError as ex:
        harness.check("train_regress_output", False, str(ex)[-800:])
    # Training starts from the BF16 reward model through the engine's loader; one step at lr
    # 1e-20 (far below half an ulp of any weight) leaves the weights as they were, so the folder
    # it writes (F32) scores as transformers does the reward model.
    d = os.path.join(tmp, "from_reward_model")
    try:
        harness.run([harness.CLI, "train", "--mode", "regress", "--model", bf16_dir, "--data", data, "--out", d,
                     "--batch", "4", "--seq-len", "64", "--max-steps", "1", "--lr", "1e-20", "--quiet"])
        compare("train_from_bf16_reward_model", d, bf16_ref, tmp)
    except RuntimeError as ex:
        harness.check("train_from_bf16_reward_model", False, str(ex)[-800:])
    # A causal LM folder is not a scorer, and a scorer is not a generator: both say so.
    p = harness.run([harness.CLI, "score", "--model", os.path.join(tmp, "nohead"), "--in", data, "--out",
                     os.path.join(tmp, "x.jsonl")], check_rc=False)
    harness.check("missing_folder_is_an_error", p.returncode != 0 and "nohead" in p.stderr, p.stderr[-400:])
    p = harness.run([harness.CLI, "generate", "--model", os.path.join(tmp, "llama"), "--in", data, "--out",
                     os.path.join(tmp, "g.jsonl"), "--quiet"], check_rc=False)
    harness.check("generate_refuses_a_scorer", p.returncode != 0 and "scalequest score" in p.stderr, p.stderr[-400:])
    harness.finish()


main()
