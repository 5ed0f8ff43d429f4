"""Deterministic mixed text for tokenizer comparisons: English and LaTeX from the assets'
math data (when present), code, CJK, emoji, digit and whitespace runs, special-token
spellings, and invalid UTF-8. Returns bytes: lines joined by b"\\n"."""
import json
import os
import random

_CODE = [
    "def f(x):\n    return x**2 + 3*x - 1",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
    "    if self.cache is None:\t# lazily\r",
    "#include <stdio.h>\nint main(void){printf(\"%d\\n\", 42);}",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    "const xs = [1,2,3].map((v) => v * 2); // => [2,4,6]",
    "x_{i+1} = x_i - \\eta \\nabla f(x_i)",
    "    \t  \t\tindented(\"tabs and spaces\")  ",
]
_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<s>", "</s>", "<unk>", "<|begin_of_text|>",
            "<|eot_id|>", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"]


def _asset_lines(assets):
    out = []
    if not assets:
        return out
    for name, keys in (("gsm8k_train.jsonl", ("question", "answer")), ("math_test.jsonl", ("problem", "solution"))):
        p = os.path.join(assets, "data", name)
        if not os.path.exists(p):
            continue
        with open(p, encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i >= 3000:
                    break
                d = json.loads(line)
                for k in keys:
                    out.extend(s for s in d.get(k, "").split("\n") if s)
    return out


def _cjk(r):
    ranges = [(0x4E00, 0x9FA5), (0x3040, 0x309F), (0x30A0, 0x30FF), (0xAC00, 0xD7A3), (0x3000, 0x303F), (0xFF01, 0xFF5E)]
    return "".join(chr(r.randint(*ranges[r.randrange(len(ranges))])) for _ in range(r.randint(1, 40)))


def _emoji(r):
    base = [0x1F600, 0x1F64F, 0x1F300, 0x1F5FF, 0x1F900, 0x1F9FF, 0x2600, 0x26FF]
    s = []
    for _ in range(r.randint(1, 12)):
        k = r.randrange(4) * 2
        s.append(chr(r.randint(base[k], base[k + 1])))
        if r.random() < 0.2:
            s.append("\u200d" + chr(r.randint(0x1F466, 0x1F469)))
        if r.random() < 0.2:
            s.append(chr(r.randint(0x1F3FB, 0x1F3FF)))
        if r.random() < 0.1:
            s.append("\ufe0f")
    return "".join(s)


def _misc_unicode(r):
    pool = ("Ñandú café naïve Ærøskøbing ΑΒΓ αβγ ώ ΐ Ω K Å Привет мир עברית العربية हिन्दी ไทย "
            "ﬁ ﬂ ½ ² ³ ⅔ ℕ ℤ ℝ ∑ ∫ √ ∞ ≤ ≥ ≠ → ⇒ ∀ ∃ ∈ ∉ ⊂ ∪ ∩ ´ ` ¨ — – … « » ‘ ’ “ ” ¿ ¡ "
            "e\u0301 a\u0308 \u00a0 \u2009 \u3000 \u2028 \u0085 ▁ Ġ Ċ 'S 'LL 'Ve 's 're ſ").split(" ")
    return " ".join(r.choice(pool) for _ in range(r.randint(1, 15)))


def _invalid(r):
    pieces = [b"\xff", b"\xfe", b"\xc0\xaf", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82",
              b"\xf0\x9f\x98", b"\x80", b"\xbf\xbf", b"\xc3", b"\xf8\x88\x80\x80\x80"]
    out = b""
    for _ in range(r.randint(1, 6)):
        out += r.choice([b"abc ", b" ", "é".encode(), "中".encode(), b"1"]) + r.choice(pieces)
    return out


def make(size, seed=1, assets=None):
    r = random.Random(seed)
    english = _asset_lines(assets) or ["The quick brown fox jumps over the lazy dog.",
                                       "Natalia sold clips to 48 of her friends in April.",
                                       "What is $\\frac{1}{2} + \\sqrt{3^2}$? We're told it's 7."]
    gens = [
        (30, lambda: r.choice(english).encode()),
        (8, lambda: r.choice(_CODE).replace("\n", " ").encode()),
        (6, lambda: _cjk(r).encode()),
        (5, lambda: _emoji(r).encode()),
        (6, lambda: _misc_unicode(r).encode()),
        (4, lambda: "".join(r.choice("0123456789") for _ in range(r.randint(1, 200))).encode()),
        (4, lambda: "".join(r.choice([" ", "  ", "\t", "\r", " \t ", "\u00a0", "\u3000"])
                            for _ in range(r.randint(1, 60))).encode() + r.choice([b"", b"x", b"1"])),
        (3, lambda: (r.choice(english) + " " + r.choice(_SPECIAL) + r.choice(["", " ", "\t"]) +
                     r.choice(english)).encode()),
        (3, lambda: _invalid(r)),
        (2, lambda: (r.choice("aZ.9 ") * r.randint(100, 3000)).encode()),
        (1, lambda: b""),
    ]
    weights = [w for w, _ in gens]
    lines, total = [], 0
    while total < size:
        g = r.choices(gens, weights)[0][1]
        line = g().replace(b"\n", b" ")
        if r.random() < 0.3:
            line = line + b" " + r.choices(gens, weights)[0][1]().replace(b"\n", b" ")
        lines.append(line)
        total += len(line) + 1
    return b"\n".join(lines) + b"\n"
