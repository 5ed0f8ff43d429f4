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


main()
finish()
