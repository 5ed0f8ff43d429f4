"""Differential test of the grader against Math-Verify (math_verify.parse / verify) on GSM8K
and MATH500 gold answers with varied predictions whose labels are known by construction
(grade_pairs.py). Every disagreement between the two is listed with who the label says is
right, and the share of disagreements where Math-Verify is the wrong one is reported.

make test runs a fast subset (60 MATH500 rows, 60 GSM8K rows); SQ_LONG=1 runs all of MATH500
and the GSM8K test set. The project's own cases (tests/grade_cases.jsonl: escaped dollar signs,
U+2212 minus signs, number words, remarks after a box) are run through both as well: ours
must agree with every label, and Math-Verify's verdicts are reported beside them."""
import json
import os
import sys
import time

import harness
from grade_pairs import build, responses

NAME = "math_verify_differential"
LONG = os.environ.get("SQ_LONG") == "1"


def ours(pairs, answer_only):
    """Verdicts of `scalequest grade` over the pairs, in order."""
    d = harness.tmpdir()
    src, out = os.path.join(d, "in.jsonl"), os.path.join(d, "out.jsonl")
    with open(src, "w") as f:
        for i, p in enumerate(pairs):
            pred = p["pred"] if answer_only else responses(p["pred"], i)
            f.write(json.dumps({"id": str(i), "gold": p["gold"], "pred": pred}) + "\n")
    args = [harness.CLI, "grade", "--quiet", "--in", src, "--out", out, "--gold-field", "gold", "--pred-field", "pred",
            "--gold-format", "plain"]
    if answer_only:
        args.append("--pred-is-answer")
    harness.run(args)
    with open(out) as f:
        return [json.loads(line)["correct"] for line in f]


def theirs(pairs, answer_only):
    from math_verify import parse, verify
    res = []
    for i, p in enumerate(pairs):
        try:
            g = parse("$" + p["gold"] + "$")
            pred = "$" + p["pred"] + "$" if answer_only else responses(p["pred"], i)
            res.append(bool(verify(g, parse(pred))))
        except Exception:
            res.append(False)
    return res


def compare(tag, pairs, answer_only):
    t0 = time.time()
    a = ours(pairs, answer_only)
    t1 = time.time()
    b = theirs(pairs, answer_only)
    t2 = time.time()
    n = len(pairs)
    ok_ours = sum(x == p["label"] for x, p in zip(a, pairs))
    ok_mv = sum(y == p["label"] for y, p in zip(b, pairs))
    dis = [(i, p) for i, (p, x, y) in enumerate(zip(pairs, a, b)) if x != y]
    mv_wrong = sum(1 for i, p in dis if b[i] != p["label"])
    print(f"  also {tag}: {n} pairs; agree with labels: ours {ok_ours}/{n} ({100 * ok_ours / n:.1f}%), "
          f"Math-Verify {ok_mv}/{n} ({100 * ok_mv / n:.1f}%); ours {t1 - t0:.1f}s (sanitized CLI), "
          f"Math-Verify {t2 - t1:.1f}s")
    share = (100 * mv_wrong / len(dis)) if dis else 0.0
    print(f"  also {tag}: {len(dis)} disagreements with Math-Verify; Math-Verify is the wrong one in "
          f"{mv_wrong} ({share:.0f}%)")
    for i, p in dis:
        who = "Math-Verify wrong" if b[i] != p["label"] else "ours wrong"
        print(f"  also   {who}: {p['src']} {p['kind']}: gold [{p['gold']}] pred [{p['pred']}] "
              f"label {p['label']} ours {a[i]} mv {b[i]}")
    wrong_ours = [(i, p) for i, p in enumerate(pairs) if a[i] != p["label"]]
    for i, p in wrong_ours:
        if b[i] == a[i]:
            print(f"  also   both wrong: {p['src']} {p['kind']}: gold [{p['gold']}] pred [{p['pred']}] label {p['label']}")
    return ok_ours / n, wrong_ours


def project_cases():
    """tests/grade_cases.jsonl through our CLI and through Math-Verify."""
    from math_verify import parse, verify
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "grade_cases.jsonl")
    with open(path) as f:
        cases = [json.loads(line) for line in f]
    d = harness.tmpdir()
    src, out = os.path.join(d, "cases.jsonl"), os.path.join(d, "cases.out.jsonl")
    with open(src, "w") as f:
        for i, c in enumerate(cases):
            f.write(json.dumps({"id": str(i), "gold": c["gold"], "pred": c["pred"]}) + "\n")
    harness.run([harness.CLI, "grade", "--quiet", "--in", src, "--out", out, "--gold-field", "gold",
                 "--pred-field", "pred", "--gold-format", "plain"])
    with open(out) as f:
        ours_v = [json.loads(line)["correct"] for line in f]
    mv = []
    for c in cases:
        try:
            mv.append(bool(verify(parse("$" + c["gold"] + "$"), parse(c["pred"]))))
        except Exception:
            mv.append(False)
    n = len(cases)
    ok_ours = sum(a == c["label"] for a, c in zip(ours_v, cases))
    ok_mv = sum(b == c["label"] for b, c in zip(mv, cases))
    print(f"  also project cases: {n}; agree with labels: ours {ok_ours}/{n}, Math-Verify {ok_mv}/{n}")
    for a, b, c in zip(ours_v, mv, cases):
        if b != c["label"]:
            print(f"  also   Math-Verify wrong: {c['why']}: gold [{c['gold']}] pred [{c['pred'][-60:]!s}]")
    wrong = [c for a, c in zip(ours_v, cases) if a != c["label"]]
    harness.check(NAME + "_project_cases", not wrong,
                  "; ".join(f"{c['why']}: gold [{c['gold']}] pred [{c['pred'][-60:]}]" for c in wrong[:5]))


def main():
    if not harness.asset("data/math500_test.jsonl") or not harness.asset("data/gsm8k_test.jsonl"):
        harness.skip(NAME, "../shared/assets/data absent")
        return harness.finish()
    try:
        import math_verify  # noqa: F401
    except ImportError:
        harness.skip(NAME, "math-verify not installed in the peer environment")
        return harness.finish()
    if not os.path.exists(harness.CLI):
        harness.skip(NAME, f"{harness.CLI} not built")
        return harness.finish()
    project_cases()
    pairs = build(os.path.join(harness.ASSETS), None if LONG else 60, None if LONG else 60)
    share, wrong = compare("answers", pairs, True)
    harness.check(NAME + "_answers", share >= 0.97,
                  f"ours agree with construction labels on {100 * share:.1f}% (< 97%); first: "
                  + "; ".join(f"{p['kind']} [{p['gold']}] [{p['pred']}]" for _, p in wrong[:5]))
    sub = pairs if LONG else pairs[::3]
    share, wrong = compare("responses", sub, False)
    harness.check(NAME + "_responses", share >= 0.97,
                  f"ours agree with construction labels on {100 * share:.1f}% (< 97%); first: "
                  + "; ".join(f"{p['kind']} [{p['gold']}] [{p['pred']}]" for _, p in wrong[:5]))
    return harness.finish()


if __name__ == "__main__":
    sys.exit(main())
