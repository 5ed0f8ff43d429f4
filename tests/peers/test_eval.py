"""`scalequest eval`'s verdicts against Math-Verify's on the same responses, per benchmark.

The responses are real text from the benchmark files themselves: each item's own solution
(MATH, MATH500, OlympiadBench; GSM8K's worked answer with its "#### N" line as "\\boxed{N}";
College Math, which has no solutions, a sentence ending in its boxed answer), and the same
response with the boxed answer replaced by the next item's answer (a wrong one, as a model's
wrong answers are other plausible answers; a whole number gets 7 added instead). `eval --regrade` grades them as eval
grades a model's answers (gold from the data file, the grader's extraction); Math-Verify
grades verify(parse(gold), parse(response)) with the raw gold of the file. The verdicts must
agree on >= 99% of the items of each benchmark (SQ_LONG=1: every item of every benchmark);
make test runs the first 60 items of each as a smoke check (>= 95%: a handful of known
Math-Verify misreadings, docs/eval.md, weigh heavily in 60). Every disagreement is printed.""" 
import json
import os
import re

import harness

try:
    from math_verify import parse, verify
except ImportError as ex:
    harness.skip("all", f"peer Python lacks {ex.name}")
    harness.finish()

LONG = os.environ.get("SQ_LONG") == "1"
LIMIT = 0 if LONG else 60
NEED = 0.99 if LONG else 0.95
BENCH = {
    "gsm8k": "gsm8k_test.jsonl",
    "math500": "math500_test.jsonl",
    "math": "math_test.jsonl",
    "college_math": "college_math_test.jsonl",
    "olympiadbench": "olympiadbench_OE_TO_maths_en_COMP.jsonl",
}


def strip_dollars(s):
    s = s.strip()
    return s[1:-1].strip() if len(s) >= 2 and s[0] == "$" and s[-1] == "$" else s


def gold_and_response(name, rec):
    """(raw gold for Math-Verify, a correct response, the answer inside its box)."""
    if name == "gsm8k":
        ans = rec["answer"].split("####")[-1].strip()
        body = re.sub(r"<<[^>]*>>", "", rec["answer"].split("####")[0]).strip()
        return ans, f"{body}\nThe answer is $\\boxed{{{ans}}}$.", ans
    if name == "math500":
        return "$" + rec["answer"] + "$", rec["solution"], rec["answer"]
    if name == "math":
        return rec["solution"], rec["solution"], None
    if name == "college_math":
        ans = rec["answer"].strip()
        if "$" in ans and not re.fullmatch(r"\$[^$]*\$", ans):
            return None  # prose around formulas ("$241,920,000$ cans", "$\\$ 3000 @ 11 \\%$; ..."): no one box
        a = strip_dollars(rec["answer"])
        return "$" + a + "$", f"Working through the problem step by step, we get $\\boxed{{{a}}}$.", a
    a = ", ".join(strip_dollars(x) for x in rec["final_answer"])
    sol = rec["solution"][-1] if isinstance(rec["solution"], list) else rec["solution"]
    return "$" + a + "$", f"{sol}\n\nSo the final answer is $\\boxed{{{a}}}$.", a


def perturb(resp, other):
    """The last \\boxed{...} with a different answer inside: `other` (another item's answer)."""
    i = resp.rfind("\\boxed{")
    if i < 0:
        return None
    j, depth = i + 7, 1
    while j < len(resp) and depth:
        depth += {"{": 1, "}": -1}.get(resp[j], 0)
        j += 1
    inner = resp[i + 7:j - 1]
    m = re.fullmatch(r"\s*(-?\d+)\s*", inner)
    if m:
        wrong = str(int(m.group(1)) + 7)
    elif other is not None and other.strip() != inner.strip():
        wrong = other
    else:
        wrong = inner + "+1"
    return resp[:i] + "\\boxed{" + wrong + "}" + resp[j:]


def main():
    data = harness.asset("data")
    if not data:
        harness.skip("all", "../shared/assets/data not present")
        harness.finish()
    out = harness.tmpdir()
    only = [b for b in os.environ.get("SQ_EVAL_ONLY", "").split(",") if b]  # e.g. SQ_EVAL_ONLY=math500,gsm8k
    for name, fname in BENCH.items():
        if only and name not in only:
            continue
        rows = []
        with open(os.path.join(data, fname)) as f:
            for i, line in enumerate(f):
                if LIMIT and i >= LIMIT:
                    break
                rows.append(json.loads(line))
        items = []  # (id, raw gold, response, the next item's boxed answer)
        skipped = 0
        for i, rec in enumerate(rows):
            made = gold_and_response(name, rec)
            if made is None:
                skipped += 1
                continue
            g, resp, _ = made
            items.append([f"{name}-{i:05d}", g, resp, None])
        if skipped:
            print(f"  {name}: {skipped} items whose gold is prose around formulas left out (no single boxed answer)")
        for i in range(len(items)):
            nxt = items[(i + 1) % len(items)][2]
            k = nxt.rfind("\\boxed{")
            if k >= 0:
                j, depth = k + 7, 1
                while j < len(nxt) and depth:
                    depth += {"{": 1, "}": -1}.get(nxt[j], 0)
                    j += 1
                items[i][3] = nxt[k + 7:j - 1]
        # two passes over the same ids: the true responses, then the perturbed ones
        for tag, make in (("gold", lambda r, o: r), ("perturbed", perturb)):
            with open(os.path.join(out, name + ".jsonl"), "w") as f:
                kept = []
                for id_, g, resp, other in items:
                    r = make(resp, other)
                    if r is None:
                        continue
                    kept.append((id_, g, r))
                    f.write(json.dumps({"id": id_, "response": r}) + "\n")
            try:
                harness.run([harness.CLI, "eval", "--regrade", "--benchmarks", name, "--limit", str(len(rows)),
                             "--data-dir", data, "--out", out, "--quiet"])
            except RuntimeError as ex:
                harness.check(f"{name}_{tag}", False, str(ex)[-600:])
                continue
            with open(os.path.join(out, name + ".jsonl")) as f:
                verdict = {r["id"]: (r["correct"], r.get("extracted"), r["gold"]) for r in map(json.loads, f)}
            agree, dis = 0, []
            for id_, g, r in kept:
                try:
                    mv = bool(verify(parse(g), parse(r)))
                except Exception:
                    mv = False
                o = verdict[id_][0]
                if o == mv:
                    agree += 1
                else:
                    dis.append((id_, o, mv, verdict[id_][1], verdict[id_][2], g[-120:], r[-160:]))
            n = len(kept)
            for d in dis:
                print(f"  DISAGREE {name}/{tag} {d[0]}: ours={d[1]} math-verify={d[2]} ours-extracted={d[3]!r} "
                      f"ours-gold={d[4]!r} raw-gold={d[5]!r} response-tail={d[6]!r}")
            harness.check(f"{name}_{tag}_agreement", n > 0 and agree >= NEED * n,
                          f"{agree}/{n} agree ({100.0 * agree / max(n, 1):.1f}%)")
            print(f"  {name}/{tag}: {agree}/{n} verdicts agree with Math-Verify ({100.0 * agree / max(n, 1):.2f}%)")
    harness.finish()


main()
