"""`scalequest respond` against an OpenAI-compatible server that misbehaves (fake_openai.py):
each question is one chat request carrying "n" (the server sees one attempt per healthy
question), 500s are retried, a question that always fails lands in the failed file and the
rerun asks only those again, a reply with fewer choices than n (a server that ignores "n") is
topped up by asking again for the missing samples; no id is lost or doubled. And `eval`
through the same server."""
import json
import os

import fake_openai
import harness


def read(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def main():
    srv, port = fake_openai.start()
    d = harness.tmpdir()
    inp, out, failed = (os.path.join(d, x) for x in ("q.jsonl", "r.jsonl", "failed.jsonl"))
    qs = {"a": "\\boxed{5}", "b": "no answer here", "c": "\\boxed{7}|500,503", "d": "always500 \\boxed{1}",
          "e": "\\boxed{2}|fewer"}
    with open(inp, "w") as f:
        for k, q in qs.items():
            f.write(json.dumps({"id": k, "query": q}) + "\n")
    args = [harness.CLI, "respond", "--model", f"http://127.0.0.1:{port}/v1#fake", "--in", inp, "--out", out,
            "--failed", failed, "--n", "3", "--instruction", "none", "--max-retries", "2", "--timeout", "5", "--quiet"]
    p = harness.run(args, check_rc=False)
    harness.check("failures_reported", p.returncode == 1, f"rc={p.returncode} {p.stderr[-400:]}")
    got = {r["id"]: r for r in read(out)}
    bad = {r["id"]: r for r in read(failed)}
    dropped = {r["id"]: r for r in read(out.replace(".jsonl", ".dropped.jsonl"))}
    harness.check("one_request_with_n", srv.state.attempts.get("\\boxed{5}") == 1, str(srv.state.attempts))
    harness.check("kept", set(got) == {"a", "c", "e"} and got["a"]["answers"] == ["5"] * 3 and
                  got["a"]["responses"] == ["echo:\\boxed{5}"] * 3, str(got))
    harness.check("fewer_topped_up", "e" in got and got["e"]["answers"] == ["2"] * 3 and
                  srv.state.attempts.get("\\boxed{2}") == 2, f"{got.get('e')} {srv.state.attempts}")
    harness.check("answerless_dropped", "b" in dropped and dropped["b"]["n_no_answer"] == 3, str(dropped))
    harness.check("failed_named", set(bad) == {"d"} and "HTTP 500" in bad["d"]["error"], str(bad))
    p = harness.run(args, check_rc=False)  # "d" fails again; nothing else is asked
    got = [r["id"] for r in read(out)]
    harness.check("rerun_completes", sorted(got) == ["a", "c", "e"] and len(got) == len(set(got)), str(got))
    # eval against the same server: one chat request per question, verdicts and the table
    bench = os.path.join(d, "b.jsonl")
    with open(bench, "w") as f:
        for q, a in (("\\boxed{3}", "3"), ("\\boxed{4}", "$5$"), ("\\boxed{9}|500", "9")):
            f.write(json.dumps({"question": q, "answer": a}) + "\n")
    ev = os.path.join(d, "ev")
    p = harness.run([harness.CLI, "eval", "--model", f"http://127.0.0.1:{port}/v1#fake", "--benchmarks",
                     f"mini={bench}", "--instruction", "none", "--max-retries", "2", "--out", ev], check_rc=False)
    with open(os.path.join(ev, "results.json")) as f:
        res = json.load(f)
    harness.check("eval_over_http", p.returncode == 0 and res["benchmarks"]["mini"]["correct"] == 2 and
                  res["benchmarks"]["mini"]["n"] == 3 and "| mini | avg |" in p.stdout, p.stdout + p.stderr[-300:])
    srv.shutdown()
    harness.finish()


main()
