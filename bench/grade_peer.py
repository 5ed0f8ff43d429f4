"""Math-Verify's throughput on the same pairs as bench_grade: parse both sides, verify.
   python grade_peer.py FILE [MAX_CASES]
Prints cases per CPU-second (like bench_grade) and the share judged equal."""
import json
import resource
import sys
import time

from math_verify import parse, verify


def main():
    path = sys.argv[1]
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else None
    rows = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            rows.append(r)
            if limit and len(rows) >= limit:
                break
    parse("$1$")  # warm the imports and caches outside the timed loop
    t0, w0 = time.thread_time(), time.perf_counter()
    eq = 0
    for r in rows:
        gold, pred = r["gold"], r["pred"]
        if r.get("kind") == "answer_pair":
            gold, pred = "$" + gold + "$", "$" + pred + "$"
        try:
            eq += bool(verify(parse(gold), parse(pred)))
        except Exception:
            pass
    dt, wall = time.thread_time() - t0, time.perf_counter() - w0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"cases_per_s {len(rows) / dt:.0f} wall_cases_per_s {len(rows) / wall:.0f} cases {len(rows)} passes 1 equal_share {eq / len(rows):.4f} "
          f"peak_rss_kib {rss}")


if __name__ == "__main__":
    main()
