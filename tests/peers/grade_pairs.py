"""Labelled answer pairs built from real gold answers (GSM8K, MATH500), for the differential
test against Math-Verify and for the grading benchmark.

Each gold answer gets variants whose label is known by construction: the same answer in
another form (fraction against decimal, \\dfrac, added units or text, "x =" prefixes,
thousands separators, reordered sets) is right; a near miss (off by one, wrong sign, swapped
interval brackets, reordered tuple, inverted fraction) is wrong."""
import json
import os
import re
from fractions import Fraction

FRAC = re.compile(r"^(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}$")
INT = re.compile(r"^-?\d+$")
DEC = re.compile(r"^-?\d*\.\d+$")


def load(path, limit=None):
    rows = []
    with open(path) as f:
        for line in f:
            rows.append(json.loads(line))
            if limit and len(rows) >= limit:
                break
    return rows


def gsm8k_gold(answer):
    return answer.split("####")[-1].strip().replace(",", "")


def as_fraction(s):
    """The exact value of an integer, decimal or simple \\frac answer, else None."""
    s = s.strip()
    if INT.match(s) or DEC.match(s):
        return Fraction(s)
    m = FRAC.match(s)
    if m and int(m.group(3)) != 0:
        v = Fraction(int(m.group(2)), int(m.group(3)))
        return -v if m.group(1) else v
    return None


def terminating(fr):
    d = fr.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


def dec_str(fr):
    """A terminating fraction as a plain decimal string."""
    sign = "-" if fr < 0 else ""
    fr = abs(fr)
    whole, rest = divmod(fr.numerator, fr.denominator)
    digits = ""
    while rest and len(digits) < 30:
        rest *= 10
        digits += str(rest // fr.denominator)
        rest %= fr.denominator
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def top_level_split(s):
    """Split on commas outside brackets; None when there is no top-level comma."""
    depth, parts, cur = 0, [], ""
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts] if len(parts) > 1 else None


def variants(gold):
    """(pred, label, kind) triples for one gold answer."""
    out = [(gold, True, "same")]
    g = gold.strip()
    fr = as_fraction(g)
    if fr is not None:
        if fr.denominator == 1:
            n = fr.numerator
            out.append((f"{n}.0", True, "int_as_decimal"))
            if abs(n) >= 1000:
                out.append((f"{n:,}", True, "thousands_commas"))
                out.append((f"{n:,}".replace(",", "{,}"), True, "thousands_braces"))
            out.append((f"{n} \\text{{ units}}", True, "units_text"))
            out.append((f"x = {n}", True, "x_equals"))
            out.append((f"\\${n}", True, "dollar_sign"))
            out.append((f"{n}^\\circ", True, "degree_mark"))
            out.append((str(n + 1), False, "off_by_one"))
            if n != 0:
                out.append((str(-n), False, "wrong_sign"))
        else:
            if terminating(fr):
                out.append((dec_str(fr), True, "fraction_as_decimal"))
            sign = "-" if fr < 0 else ""
            a, b = abs(fr.numerator), fr.denominator
            out.append((f"{sign}\\dfrac{{{a}}}{{{b}}}", True, "dfrac"))
            out.append((f"{sign}{a}/{b}", True, "slash"))
            if a != b:
                out.append((f"{sign}\\frac{{{b}}}{{{a}}}", False, "inverted_fraction"))
            out.append((f"{'' if sign else '-'}\\frac{{{a}}}{{{b}}}", False, "wrong_sign"))
            if DEC.match(g):
                out.append((dec_str(fr + Fraction(1, 10 ** max(1, len(g.split('.')[1])))), False, "last_digit"))
        return out
    if "\\frac" in g:
        out.append((g.replace("\\frac", "\\dfrac"), True, "dfrac"))
    m = re.search(r"\\sqrt\{(\d)\}", g)
    if m:
        out.append((g.replace(m.group(0), "\\sqrt" + m.group(1), 1), True, "sqrt_no_braces"))
        out.append((g.replace(m.group(0), "\\sqrt{" + str(int(m.group(1)) + 1) + "}", 1), False, "sqrt_off_by_one"))
    m = re.fullmatch(r"\\frac\{(\d*)\\pi\}\{(\d+)\}", g)
    if m:
        out.append((f"{m.group(1)}\\pi/{m.group(2)}", True, "pi_slash"))
    if " \\cup " in g or "\\cup" in g:
        parts = g.split("\\cup")
        out.append(("\\cup".join(reversed(parts)), True, "union_reordered"))
    if g.startswith("(") and g.endswith(")"):
        parts = top_level_split(g[1:-1])
        if parts and len(parts) == 2 and parts[0] != parts[1]:
            out.append((f"\\left({g[1:-1]}\\right)", True, "left_right"))
            out.append((f"({parts[1]}, {parts[0]})", False, "tuple_reordered"))
            out.append((f"[{g[1:-1]})", False, "bracket_swapped"))
    elif g.startswith("[") and (g.endswith("]") or g.endswith(")")) and top_level_split(g[1:-1]):
        out.append((f"({g[1:]}", False, "bracket_swapped"))
    else:
        parts = top_level_split(g)
        thousands = re.fullmatch(r"\\?\$?\d{1,3}(,(\\!)?\d{3})+", g)
        if parts and len(set(parts)) == len(parts) and "=" not in g and not thousands:
            out.append((", ".join(reversed(parts)), True, "set_reordered"))
            out.append((", ".join(parts[:-1]), False, "set_missing_one"))
    if g.startswith("\\text{") and g.endswith("}"):
        out.append((g[6:-1], True, "text_unwrapped"))
    if re.fullmatch(r"[a-zA-Z0-9\\{}^_+\-*/ ()]+", g) and "=" not in g and "," not in g and "\\pm" not in g:
        out.append((f"{g} + 1", False, "plus_one"))
    return out


def responses(pred, i):
    """A model-style response stating pred, in one of several common styles."""
    style = i % 4
    if style == 0:
        return f"Let's compute step by step. After simplifying, we get $\\boxed{{{pred}}}$."
    if style == 1:
        return f"We work it out carefully.\nFinal Answer: The final answer is ${pred}$. I hope it is correct."
    if style == 2:
        return f"Adding everything up gives the result.\nThe answer is {pred}"
    return f"First we set up the equation, then solve.\nTherefore, the answer is $\\boxed{{{pred}}}$"


def build(assets, n_math=None, n_gsm=None):
    """All labelled pairs from the first n_math MATH500 rows and n_gsm GSM8K test rows."""
    pairs = []
    for r in load(os.path.join(assets, "data", "math500_test.jsonl"), n_math):
        for pred, label, kind in variants(r["answer"]):
            pairs.append({"src": "math500:" + r["unique_id"], "gold": r["answer"], "pred": pred, "label": label,
                          "kind": kind})
    for k, r in enumerate(load(os.path.join(assets, "data", "gsm8k_test.jsonl"), n_gsm)):
        g = gsm8k_gold(r["answer"])
        for pred, label, kind in variants(g):
            pairs.append({"src": f"gsm8k:{k + 1}", "gold": g, "pred": pred, "label": label, "kind": kind})
    return pairs
