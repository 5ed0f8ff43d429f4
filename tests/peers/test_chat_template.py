"""Chat templates: our C rendering against transformers' own Jinja rendering
(render_jinja_template, what apply_chat_template(tokenize=False) runs) for the public
templates of each family in tests/peers/chat_templates, over conversations that exercise
system prompts, multi-turn, whitespace trimming, Unicode and role errors. Templates of
unsupported variants must be refused by name."""
import json
import os
import subprocess

from harness import CLI, ROOT, asset, check, finish, skip, tmpdir

try:
    from transformers.utils.chat_template_utils import render_jinja_template
except ImportError:
    render_jinja_template = None

FIX = os.path.join(ROOT, "tests", "peers", "chat_templates")
DS_BOS, DS_EOS = "<\uff5cbegin\u2581of\u2581sentence\uff5c>", "<\uff5cend\u2581of\u2581sentence\uff5c>"
TEMPLATES = {  # file: (bos, eos) as the model's tokenizer defines them
    "qwen2.jinja": ("", "<|im_end|>"),
    "qwen25_math.jinja": ("", "<|im_end|>"),
    "deepseek.jinja": (DS_BOS, DS_EOS),
    "llama3.jinja": ("<|begin_of_text|>", "<|eot_id|>"),
    "llama2.jinja": ("<s>", "</s>"),
    "mistral.jinja": ("<s>", "</s>"),
}
U, A, S = "user", "assistant", "system"
CONVS = [
    [(U, "What is 2+3?")],
    [(S, "You are a math tutor."), (U, "Solve x^2 = 4.")],
    [(U, "Hi"), (A, "Hello! How can I help?"), (U, "Compute 7*6.")],
    [(S, "Be brief."), (U, "1+1?"), (A, "2")],
    [(U, "  padded\n\n question \t"), (A, "\u3000answer\u00a0 ")],
    [(U, "quotes ' \" and {{ braces }} {% raw %} \\boxed{x} \u00e9\u4e2d\U0001F600")],
    [(U, "")],
    [(U, "a"), (S, "late system"), (U, "b")],
    [(A, "assistant first")],
    [(U, "x"), (U, "two users in a row")],
]


def main():
    if render_jinja_template is None:
        skip("chat_templates", "transformers is not installed in the peer Python")
        return
    if not os.path.exists(CLI):
        skip("chat_templates", f"{CLI} not built")
        return
    d = tmpdir()
    cases = []  # (label, template file for the C side, its Jinja source, bos, eos)
    for fname, (bos, eos) in TEMPLATES.items():
        path = os.path.join(FIX, fname)
        src = open(path).read()
        cases.append((fname, path, src, bos, eos))
        # the same template with its newlines as characters, as JSON "\n" decodes to
        nl = os.path.join(d, "nl_" + fname)
        with open(nl, "w") as f:
            f.write(src.replace("\\n", "\n"))
        cases.append(("nl_" + fname, nl, open(nl).read(), bos, eos))
    real = asset("vocab/qwen2/tokenizer_config.json")
    if real:
        cfg = json.load(open(real))
        cases.append(("asset_qwen2_tokenizer_config", real, cfg["chat_template"], "", cfg["eos_token"]))
    else:
        skip("asset_qwen2_tokenizer_config", "../shared/assets/vocab/qwen2/tokenizer_config.json not found")
    for fname, path, src, bos, eos in cases:
        inp = os.path.join(d, "in.jsonl")
        want = {}
        with open(inp, "w") as f:
            for ci, conv in enumerate(CONVS):
                msgs = [{"role": r, "content": c} for r, c in conv]
                for gen in (False, True):
                    rid = f"c{ci}-{int(gen)}"
                    try:
                        out, _ = render_jinja_template(conversations=[msgs], chat_template=src,
                                                       add_generation_prompt=gen, bos_token=bos, eos_token=eos)
                        want[rid] = ("text", out[0])
                    except Exception as ex:  # the template raised: we must refuse too
                        want[rid] = ("error", str(ex))
                    f.write(json.dumps({"id": rid, "messages": msgs, "add_generation_prompt": gen}) + "\n")
        tpl_args = ["--template", path] if path.endswith(".json") else ["--template", path, "--bos", bos, "--eos", eos]
        p = subprocess.run([CLI, "chat-template", *tpl_args, "--in", inp], capture_output=True, text=True)
        if not check(f"{fname}:runs", p.returncode == 0, p.stderr[-500:]):
            continue
        got = {r["id"]: r for r in map(json.loads, p.stdout.splitlines())}
        bad = []
        for rid, (kind, val) in want.items():
            g = got.get(rid, {})
            if kind == "text" and g.get("text") != val:
                bad.append(f"{rid}: got {g.get('text', g.get('error'))!r} want {val!r}")
            if kind == "error" and "error" not in g:
                bad.append(f"{rid}: transformers raised ({val}) but we rendered {g.get('text')!r}")
        check(f"{fname}:matches_transformers", not bad, "; ".join(bad[:3]))
        info = json.loads(subprocess.run([CLI, "chat-template", *tpl_args], capture_output=True, text=True).stdout)
        # the user-turn prefix is what transformers writes right before a user's text
        text = want["c0-0"][1]
        check(f"{fname}:user_prefix", info["user_prefix"] + "What is 2+3?" in text, f"{info['user_prefix']!r} in {text!r}")
        # an assistant turn rendered by transformers is closed by one of our assistant stops
        t2 = want["c2-0"][1]
        rest = t2[t2.find("How can I help?") + len("How can I help?"):]
        check(f"{fname}:assistant_stop", any(rest.lstrip(" ").startswith(s) for s in info["assistant_stops"]),
              f"{info['assistant_stops']} vs {rest!r}")
    # the tokenizer_config.json route: bos/eos from its AddedToken objects
    p = subprocess.run([CLI, "chat-template", "--template", os.path.join(FIX, "deepseek_tokenizer_config.json")],
                       capture_output=True, text=True)
    info = json.loads(p.stdout) if p.returncode == 0 else {}
    check("tokenizer_config", info.get("family") == "deepseek" and info.get("bos") == DS_BOS, p.stdout + p.stderr)
    for fname, needle in [("unsupported_zephyr.jinja", "unrecognised chat template family"),
                          ("unsupported_llama31.jinja", "Llama-3.1"), ("unsupported_qwen3.jinja", "Qwen3")]:
        p = subprocess.run([CLI, "chat-template", "--template", os.path.join(FIX, fname)], capture_output=True, text=True)
        check(f"{fname}:refused", p.returncode == 1 and needle in p.stderr and fname in p.stderr, p.stderr)

    trained_folder_loads_in_transformers(d)


def trained_folder_loads_in_transformers(d):
    """A model folder written by `train --chat-template` carries its template: transformers'
    AutoTokenizer renders and tokenizes chats from it exactly as we do, and the question
    prefix is what it writes before a user's question."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        skip("trained_folder", "transformers is not installed in the peer Python")
        return
    corpus = os.path.join(d, "corpus.txt")
    with open(corpus, "w") as f:
        for i in range(300):
            f.write(f"Mia has {i} apples. She buys {i % 7} more apples. How many apples does Mia have now?\n"
                    f"Mia has {i} + {i % 7} = {i + i % 7} apples.\nThe answer is {i + i % 7}.\n\n")
    tok = os.path.join(d, "tok.json")
    p = subprocess.run([CLI, "tokenizer-train", "--in", corpus, "--vocab-size", "300", "--special", "<|endoftext|>",
                        "--special", "<|im_start|>", "--special", "<|im_end|>", "--out", tok, "--quiet"],
                       capture_output=True, text=True)
    if not check("trained_folder:tokenizer", p.returncode == 0, p.stderr[-500:]):
        return
    data = os.path.join(d, "sft.jsonl")
    with open(data, "w") as f:
        for i in range(8):
            f.write(json.dumps({"query": f"Mia has {i} apples. How many apples does Mia have now?",
                                "response": f"The answer is {i}."}) + "\n")
    out = os.path.join(d, "model")
    p = subprocess.run([CLI, "train", "--mode", "sft", "--init-config", "dim=16,layers=1,heads=2,kv_heads=1,ffn=32,seq=64",
                        "--tokenizer", tok, "--data", data, "--chat-template", "chatml", "--out", out,
                        "--batch", "2", "--seq-len", "64", "--max-steps", "1", "--threads", "1", "--quiet"],
                       capture_output=True, text=True)
    if not check("trained_folder:train", p.returncode == 0, p.stderr[-500:]):
        return
    ht = AutoTokenizer.from_pretrained(out)
    convs = [[{"role": "user", "content": "Mia has 3 apples. How many?"}],
             [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1?"},
              {"role": "assistant", "content": "2"}, {"role": "user", "content": "2+2?"}]]
    inp = os.path.join(d, "convs.jsonl")
    with open(inp, "w") as f:
        for i, c in enumerate(convs):
            f.write(json.dumps({"id": f"c{i}", "messages": c, "add_generation_prompt": True}) + "\n")
    p = subprocess.run([CLI, "chat-template", "--template", out, "--in", inp], capture_output=True, text=True)
    if not check("trained_folder:render", p.returncode == 0, p.stderr[-500:]):
        return
    ours = [json.loads(l)["text"] for l in p.stdout.splitlines()]
    for i, c in enumerate(convs):
        theirs = ht.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
        check(f"trained_folder:render_{i}", ours[i] == theirs, f"{ours[i]!r} vs {theirs!r}")
        ids_hf = ht.apply_chat_template(c, tokenize=True, add_generation_prompt=True)
        if hasattr(ids_hf, "keys"):
            ids_hf = ids_hf["input_ids"]
        q = subprocess.run([CLI, "tokenize", "--tokenizer", out, "--parse-special"], input=ours[i],
                           capture_output=True, text=True)
        ids_ours = [int(x) for x in q.stdout.split()]
        check(f"trained_folder:ids_{i}", ids_ours == list(ids_hf), f"{ids_ours} vs {list(ids_hf)}")
    p = subprocess.run([CLI, "chat-template", "--template", out, "--question-prefix"], capture_output=True, text=True)
    prefix = json.loads(p.stdout) if p.returncode == 0 else None
    text = ht.apply_chat_template(convs[0], tokenize=False)
    check("trained_folder:question_prefix", prefix is not None and text == prefix + convs[0][0]["content"] + "<|im_end|>\n",
          f"{prefix!r} vs {text!r}")


main()
finish()
