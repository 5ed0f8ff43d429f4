"""The reward stage against transformers: random-weight reward models of each family (Llama,
Qwen2 with q/k/v biases, Mistral with a sliding window), saved by transformers with a ChatML
chat template in tokenizer_config.json. `scalequest reward --keep all` renders each
(question, response) pair in that template and scores it; transformers scores
tokenizer.apply_chat_template([user, assistant], tokenize=True) with
AutoModelForSequenceClassification. The rewards agree within 1e-4 of the largest, and the best
response is the same one. A folder without the head and a head of the wrong shape are clear
errors naming the file."""
import json
import os

import harness

try:
    import torch
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
except ImportError as ex:
    harness.skip("all", f"peer Python lacks {ex.name}")
    harness.finish()

torch.manual_seed(0)
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
RECORDS = [
    {"id": "q0", "query": "What is 2 + 3?",
     "responses": ["2 + 3 = 5. The answer is 5.", "Adding gives 6.\n\\boxed{6}", "It is \\boxed{5}."]},
    {"id": "q1", "query": "Mia has 3 apples and buys 4 more. How many now?",
     "responses": ["She has 3 + 4 = 7 apples. The answer is 7.", "3 * 4 = 12, so \\boxed{12}",
                   "Mia now has seven apples: \\boxed{7}", "x"]},
    {"id": "q2", "query": "Find all real x with x^2 - 5x + 6 = 0.",
     "responses": ["Factor: (x-2)(x-3) = 0, so x = 2 or x = 3. The answer is 2, 3."]},
]


def make_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=360, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    texts = [r["query"] for r in RECORDS] + [x for r in RECORDS for x in r["responses"]]
    tok.train_from_iterator(texts * 4 + ["user assistant the quick brown fox 0123456789"] * 4, tr)
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                                pad_token="<|endoftext|>", chat_template=CHATML)


def build(kind, vocab, pad, labels=1):
    common = dict(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, max_position_embeddings=512, rms_norm_eps=1e-5,
                  initializer_range=0.2, bos_token_id=None, eos_token_id=2, num_labels=labels)
    if kind == "llama":
        cfg = transformers.LlamaConfig(num_key_value_heads=2, tie_word_embeddings=False, pad_token_id=None, **common)
        klass = transformers.LlamaForSequenceClassification
    elif kind == "qwen2_bias":
        cfg = transformers.Qwen2Config(num_key_value_heads=2, tie_word_embeddings=True, use_sliding_window=False,
                                       pad_token_id=pad, **common)
        klass = transformers.Qwen2ForSequenceClassification
    else:
        cfg = transformers.MistralConfig(num_key_value_heads=2, tie_word_embeddings=False, sliding_window=16,
                                         head_dim=16, pad_token_id=pad, **common)
        klass = transformers.MistralForSequenceClassification
    cfg._attn_implementation = "eager"
    model = klass(cfg).float().eval()
    with torch.no_grad():
        model.score.weight.normal_(0, 0.5)
        if kind == "qwen2_bias":
            for layer in model.model.layers:
                for p in (layer.self_attn.q_proj.bias, layer.self_attn.k_proj.bias, layer.self_attn.v_proj.bias):
                    p.normal_(0, 0.5)
    return model


def chat_ids(tok, q, r):
    out = tok.apply_chat_template([{"role": "user", "content": q}, {"role": "assistant", "content": r}],
                                  tokenize=True)
    if hasattr(out, "keys") and "input_ids" in out:
        out = out["input_ids"]
    return list(out)


def theirs(model, tok):
    with torch.no_grad():
        return [[float(model(input_ids=torch.tensor([chat_ids(tok, rec["query"], r)])).logits[0, 0])
                 for r in rec["responses"]] for rec in RECORDS]


def ours(folder, tmp, extra=()):
    src, dst = os.path.join(tmp, "in.jsonl"), os.path.join(tmp, "out.jsonl")
    with open(src, "w") as f:
        for r in RECORDS:
            f.write(json.dumps(r) + "\n")
    for p in (dst, dst.replace(".jsonl", ".dropped.jsonl")):
        if os.path.exists(p):
            os.remove(p)
    harness.run([harness.CLI, "reward", "--model", folder, "--in", src, "--out", dst, "--keep", "all", "--quiet",
                 *extra])
    with open(dst) as f:
        return [json.loads(l) for l in f]


def main():
    tmp = harness.tmpdir()
    tok = make_tokenizer()
    vocab, pad = len(tok), tok.convert_tokens_to_ids("<|endoftext|>")
    for kind in ["llama", "qwen2_bias", "mistral_window"]:
        model = build(kind, vocab, pad)
        d = os.path.join(tmp, kind)
        model.save_pretrained(d, safe_serialization=True)
        tok.save_pretrained(d)
        ref = theirs(model, tok)
        try:
            got = ours(d, tmp, ("--batch-tokens", "37"))
        except RuntimeError as ex:
            harness.check(kind, False, str(ex)[-800:])
            continue
        scale = max(abs(v) for row in ref for v in row)
        err = max(abs(a - b) for rec, row in zip(got, ref) for a, b in zip(rec["rewards"], row)) / scale
        harness.check(kind + "_rewards_vs_transformers", err <= 1e-4,
                      f"max error {err:.3g}; ours {[r['rewards'] for r in got]}, hf {ref}")
        best_ok = all(rec["kept"][0]["index"] == max(range(len(row)), key=lambda i: (row[i], -len(
            RECORDS[k]["responses"][i]), -i)) for k, (rec, row) in enumerate(zip(got, ref)))
        harness.check(kind + "_best_is_theirs", best_ok, str([r["kept"][0]["index"] for r in got]))
    # Bad reward models: a causal LM (no head), and a head of 2 labels (score.weight [2, dim]).
    lm = transformers.LlamaForCausalLM(transformers.LlamaConfig(vocab_size=vocab, hidden_size=64,
                                                                intermediate_size=96, num_hidden_layers=1,
                                                                num_attention_heads=4, num_key_value_heads=2))
    d = os.path.join(tmp, "causal_lm")
    lm.save_pretrained(d, safe_serialization=True)
    tok.save_pretrained(d)
    d2 = os.path.join(tmp, "two_labels")
    build("llama", vocab, pad, labels=2).save_pretrained(d2, safe_serialization=True)
    tok.save_pretrained(d2)
    for name, folder in (("no_head_is_an_error", d), ("wrong_head_shape_is_an_error", d2)):
        try:
            ours(folder, tmp)
            harness.check(name, False, "accepted")
        except RuntimeError as ex:
            msg = str(ex)
            harness.check(name, os.path.basename(folder) in msg and ("score" in msg or "head" in msg), msg[-400:])
    harness.finish()


main()
