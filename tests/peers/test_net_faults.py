"""scalequest generate against a server that drops connections, answers 429 with
Retry-After, 500/503, slowly, or with a truncated body: every request must end either in the
output or in the failed list, exactly once, and an interrupted run must resume without
duplicates."""
import json
import os
import signal
import subprocess
import time

import fake_openai
from harness import CLI, check, finish, skip, tmpdir

FAULTS = ["", "drop", "429", "500,503", "slow", "trunc", "drop,500,429", "always500"]


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    if not os.path.exists(CLI):
        skip("faults", f"{CLI} not built")
        return
    srv, port = fake_openai.start()
    d = tmpdir()
    inp, out, failed = (os.path.join(d, x) for x in ("in.jsonl", "out.jsonl", "failed.jsonl"))
    recs = []
    for i in range(64):
        kind = FAULTS[i % len(FAULTS)]
        name = f"always500-{i}" if kind == "always500" else f"q{i}"
        prompt = name if kind in ("", "always500") else f"{name}|{kind}"
        if i % 3 == 0:
            recs.append({"id": f"r{i}", "messages": [{"role": "user", "content": prompt}], "keep": i})
        else:
            recs.append({"id": f"r{i}", "prompt": prompt, "keep": i})
    with open(inp, "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    t0 = time.time()
    p = subprocess.run([CLI, "generate", "--quiet", "--model", f"http://127.0.0.1:{port}/v1#fake", "--in", inp,
                        "--out", out, "--failed", failed, "--concurrency", "16", "--max-retries", "3",
                        "--timeout", "1.5", "--max-tokens", "8", "--api-key-env", "SQ_TEST_KEY"],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "SQ_TEST_KEY": "sk-test-123"})
    dt = time.time() - t0
    got, bad = read_jsonl(out), read_jsonl(failed)
    ids_out = [r["id"] for r in got]
    ids_bad = [r["id"] for r in bad]
    n_always = sum(1 for i in range(64) if FAULTS[i % len(FAULTS)] == "always500")
    check("exit_status_reports_failures", p.returncode == 1, f"rc={p.returncode} {p.stderr[-500:]}")
    check("no_duplicates", len(ids_out) == len(set(ids_out)) and len(ids_bad) == len(set(ids_bad)),
          f"{len(ids_out)} lines, {len(set(ids_out))} ids")
    check("none_lost", sorted(set(ids_out) | set(ids_bad)) == sorted(r["id"] for r in recs) and
          not set(ids_out) & set(ids_bad), f"out {len(ids_out)} failed {len(ids_bad)}")
    check("only_hopeless_failed", len(ids_bad) == n_always and all("HTTP 500" in b["error"] for b in bad),
          f"failed: {bad[:3]}")
    want = {r["id"]: "echo:" + (r.get("prompt") or r["messages"][-1]["content"]).split("|")[0] for r in recs}
    wrong = [g for g in got if g["completions"] != [want[g["id"]]] or g["keep"] != int(g["id"][1:])]
    check("answers_match_requests", not wrong, f"{wrong[:2]}")
    st = srv.state
    # each always-500 request: 1 attempt + 3 retries; each other one answered exactly once
    check("retry_budget_respected", all(st.attempts[f"always500-{i}"] == 4 for i in range(64)
                                         if FAULTS[i % len(FAULTS)] == "always500"), f"{st.attempts}")
    # a "slow" attempt is abandoned by the client but may still be answered into a closed
    # socket, so those names are answered once or twice; every other name exactly once
    slow = {f"q{i}" for i in range(64) if FAULTS[i % len(FAULTS)] == "slow"}
    check("each_answered_once_by_server", all(v == 1 or (k in slow and v == 2) for k, v in st.answered.items())
          and len(st.answered) == 64 - n_always, f"{st.answered}")
    check("api_key_sent", st.auth == {"Bearer sk-test-123"}, f"{st.auth}")
    check("faults_were_hit", st.requests > 64 + 40, f"server saw {st.requests} requests")
    # 429s ask for a 1 s wait: the run cannot finish faster than that
    check("retry_after_honoured", dt >= 1.0, f"run took {dt:.2f}s")

    # Resume: a run killed part way through leaves a prefix; the rerun completes the rest.
    srv2, port2 = fake_openai.start()
    inp2, out2 = os.path.join(d, "in2.jsonl"), os.path.join(d, "out2.jsonl")
    with open(inp2, "w") as f:
        for i in range(40):
            f.write(json.dumps({"id": f"s{i}", "prompt": f"s{i}|slow" if i >= 8 else f"s{i}"}) + "\n")
    args = [CLI, "generate", "--quiet", "--model", f"http://127.0.0.1:{port2}/v1#fake", "--in", inp2, "--out", out2,
            "--concurrency", "8", "--timeout", "10"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline and len(read_jsonl(out2)) < 8:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = [r["id"] for r in read_jsonl(out2)]
    with open(out2, "a") as f:
        f.write('{"id": "torn')  # what a kill in the middle of a write would leave
    p2 = subprocess.run(args, capture_output=True, text=True, timeout=120)
    final = [r["id"] for r in read_jsonl(out2)]
    check("resume_after_kill", p2.returncode == 0 and 8 <= len(first) < 40 and len(final) == 40
          and len(set(final)) == 40 and final[:len(first)] == first,
          f"rc={p2.returncode} first={len(first)} final={len(final)} {p2.stderr[-300:]}")
    srv.shutdown()
    srv2.shutdown()


main()
finish()
