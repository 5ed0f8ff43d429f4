"""Python peers for bench/judge.sh, one thread, records per CPU-second:
  lang FILE      the official language filter (keep a question when every character is
                 ASCII and it is not empty) over each record's "query"
  replies FILE   the official-style reply handling: '"yes" in reply.lower()' for verdicts,
                 split on the marker and strip for rewrites (the official code tries a list of
                 marker spellings), json.loads of the braces for ratings
Prints "records N records_per_s R"."""
import json
import sys
import time

MARKERS = {
    "solvability_optimize": ["FINAL QUESTION:", "**FINAL QUESTION:**", "**FINAL QUESTION**:", "Final Question:"],
    "difficulty_optimize": ["#Finally Rewritten Problem#:", "**Finally Rewritten Problem**:",
                            "**Finally Rewritten Problem:**", "Finally Rewritten Problem:"],
}


def official_lang(q):
    codes = list(map(ord, q))
    return bool(codes) and max(codes) <= 127 and q != ""


def reply_once(kind, r):
    if kind == "solvability_check":
        return "yes" in r.lower()
    if kind == "difficulty_rate":
        try:
            a, b = r.index("{"), r.rindex("}")
            return json.loads(r[a:b + 1].replace("\u201c", '"').replace("\u201d", '"')).get("difficulty")
        except ValueError:
            return None
    for m in MARKERS[kind]:
        if m in r:
            return r.split(m)[-1].strip()
    return ""


def main():
    mode, path = sys.argv[1], sys.argv[2]
    min_s = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0
    recs = [json.loads(line) for line in open(path, encoding="utf-8")]
    if mode == "lang":
        work = [r["query"] for r in recs if isinstance(r.get("query"), str)]
        fn = official_lang
        args = [(q,) for q in work]
    else:
        args = [(r["kind"], r["reply"]) for r in recs]
        fn = reply_once
    n = 0
    t0 = time.thread_time()
    while True:
        for a in args:
            fn(*a)
        n += len(args)
        dt = time.thread_time() - t0
        if dt >= min_s:
            break
    print(f"records {len(args)} records_per_s {n / dt:.0f}")


if __name__ == "__main__":
    main()
