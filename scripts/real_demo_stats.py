"""Question-quality statistics for `make real-demo` (scripts/real-demo.sh), one model's sample:
    real_demo_stats.py NAME QUESTIONS.jsonl QGEN_DROPPED.jsonl LANG_KEPT.jsonl \
        NEAR_DROPPED.jsonl EXACT_DROPPED.jsonl N_SAMPLES SEED
prints one JSON object. The files are what the project's own stages wrote: qgen's kept and
dropped questions, filter lang's kept questions, and the records that dedup (MinHash near
duplicates, and --exact-only) dropped as copies of a training question.

"A math question at all" is decided by a fixed, documented rule (no model judges it):
  - it contains a digit, a number word or LaTeX/math notation;
  - it ends in a question (its last sentence, drawings and display math aside, ends in '?')
    or an imperative (that sentence has a clause opening with Find, Calculate, Compute,
    Determine, Solve, Evaluate, Simplify, Express, Enter, Prove, Show, ...);
  - it does not open like an assistant's reply ("Sure", "Certainly", "Here is", ...)."""
import json
import random
import re
import sys

IMPERATIVES = ("find", "calculate", "compute", "determine", "solve", "evaluate", "simplify", "express", "prove",
               "show", "write", "give", "estimate", "convert", "factor", "expand", "list", "round", "enter", "rationalize")
PREAMBLES = ("sure", "certainly", "of course", "here is", "here's", "here are", "i'd be happy", "i would be happy",
             "as an ai", "great question", "absolutely", "i'm happy to", "i can help")
NUMBER_WORDS = r"\b(zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|thousand|million|half|twice|double|triple|dozen)\b"
MATH_NOTATION = r"(\$|\\frac|\\sqrt|\\cdot|\\times|\^|[=+×÷√π%])"


def read(path):
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
    except FileNotFoundError:
        pass
    return out


def last_sentence(t):
    """The last sentence of the prose: drawings ([asy]) and display math at the end left out."""
    t = re.sub(r"\[asy\].*?\[/asy\]", " ", t, flags=re.S)
    t = re.sub(r"(\\\[.*?\\\]|\$\$.*?\$\$)\s*[.?]?\s*$", " ", t.strip(), flags=re.S).strip()
    parts = [p for p in re.split(r"(?<=[.!?])\s+|\n+", t) if p.strip()]
    return parts[-1].strip().strip("\"'*") if parts else ""


def is_math_question(q):
    t = q.strip()
    low = t.lower()
    if any(low.startswith(p) for p in PREAMBLES):
        return False
    if not (re.search(r"\d", t) or re.search(NUMBER_WORDS, low) or re.search(MATH_NOTATION, t)):
        return False
    last = last_sentence(t)
    if last.rstrip("$.]) ").endswith("?") or t.rstrip("$.]) ").endswith("?"):
        return True
    return re.search(r"(^|[\s,;:(\]])(" + "|".join(IMPERATIVES) + r")\b", last.lower()) is not None


def main():
    name, kept_path, qdrop_path, lang_path, near_path, exact_path = sys.argv[1:7]
    n_samples, seed = int(sys.argv[7]), int(sys.argv[8])
    kept = read(kept_path)
    qdrop = read(qdrop_path)
    lang = {r["id"] for r in read(lang_path)}
    ours = {r["id"] for r in kept}

    def copies(path):  # generated questions dropped as a copy of a training question
        return {r["id"] for r in read(path) if r["id"] in ours and str(r.get("duplicate_of", "")).startswith("train")}

    near, exact = copies(near_path), copies(exact_path)
    qs = [r["query"] for r in kept]
    words = [re.findall(r"\w+|[^\w\s]", q.lower()) for q in qs]
    grams = [tuple(w[i:i + 4]) for w in words for i in range(len(w) - 3)]
    reasons = {}
    for r in qdrop:
        reasons[r.get("drop_reason", "?")] = reasons.get(r.get("drop_reason", "?"), 0) + 1
    n = len(kept)
    rng = random.Random(seed)
    sample = rng.sample(kept, min(n_samples, n))
    sample.sort(key=lambda r: r["id"])
    res = {
        "model": name,
        "sampled": n + len(qdrop),
        "kept_by_qgen": n,
        "dropped_by_qgen": reasons,
        "math_question_share": sum(map(is_math_question, qs)) / n if n else 0.0,
        "lang_pass_share": sum(r["id"] in lang for r in kept) / n if n else 0.0,
        "mean_words": sum(len(q.split()) for q in qs) / n if n else 0.0,
        "mean_chars": sum(len(q) for q in qs) / n if n else 0.0,
        "distinct_4grams": len(set(grams)) / len(grams) if grams else 0.0,
        "exact_dup_of_training": len(exact),
        "near_dup_of_training": len(near),
        "samples": [{"id": r["id"], "query": r["query"], "math": is_math_question(r["query"])} for r in sample],
    }
    print(json.dumps(res, ensure_ascii=False))


if __name__ == "__main__":
    main()
