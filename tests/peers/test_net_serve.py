"""scalequest serve with real clients: the official `openai` package and curl.

Part 1 serves a remote model (the test's fake OpenAI server) through `serve`, which runs
the same server code over the HTTP client backend: it checks completions, chat
completions, /v1/models, /health, OpenAI-style errors for bad requests, many concurrent
clients, and a clean exit on SIGTERM. Part 2 serves stories260K with the in-process engine
(when that layer is in the build): completions through the openai client and curl, greedy
reproducibility, and a load run with RSS measured before and after."""
import concurrent.futures as cf
import json
import os
import subprocess
import time

import fake_openai
from harness import CLI, ROOT, asset, check, finish, skip
from net_serve_util import Serve, local_engine_built

LONG = os.environ.get("SQ_LONG") == "1"
REL_CLI = os.path.join(ROOT, "build", "rel", "scalequest")

try:
    import openai
except ImportError:
    openai = None


def curl(url, body=None, method=None):
    args = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", url]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
    if method:
        args += ["-X", method]
    p = subprocess.run(args, input=body, capture_output=True, text=True, timeout=60)
    text, _, code = p.stdout.rpartition("\n")
    return int(code or 0), text


def proxy_part():
    up, up_port = fake_openai.start()
    s = Serve(CLI, f"http://127.0.0.1:{up_port}/v1#fake", "--max-body", "65536", "--max-tokens", "512")
    try:
        c = openai.OpenAI(base_url=s.url, api_key="unused", max_retries=0, timeout=30)
        r = c.completions.create(model="fake", prompt="hello world", max_tokens=5)
        check("openai_completion", r.choices[0].text == "echo:hello world" and r.usage.completion_tokens == 2
              and r.object == "text_completion", repr(r))
        r = c.chat.completions.create(model="fake", messages=[{"role": "system", "content": "s"},
                                                              {"role": "user", "content": "hi there"}], n=2)
        check("openai_chat", [ch.message.content for ch in r.choices] == ["echo:hi there"] * 2
              and r.choices[0].message.role == "assistant" and r.usage.completion_tokens == 4, repr(r))
        # stream=True: the answer arrives as server-sent events the client can iterate
        parts = [ch.choices[0].text for ch in c.completions.create(model="fake", prompt="streamed", max_tokens=5,
                                                                    stream=True) if ch.choices]
        check("openai_completion_stream", "".join(parts) == "echo:streamed", repr(parts))
        chunks = list(c.chat.completions.create(model="fake", messages=[{"role": "user", "content": "sse"}],
                                                stream=True, stream_options={"include_usage": True}))
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        usage = [ch.usage for ch in chunks if ch.usage]
        check("openai_chat_stream", text == "echo:sse" and usage and usage[0].completion_tokens == 2
              and chunks[-2].choices[0].finish_reason == "length", repr(chunks))
        models = [m.id for m in c.models.list()]
        check("openai_models", models == ["fake"], repr(models))
        try:
            c.completions.create(model="no-such-model", prompt="x", max_tokens=3)
            check("openai_unknown_model_404", False, "no error raised")
        except openai.NotFoundError as ex:
            check("openai_unknown_model_404", "no-such-model" in str(ex), str(ex))
        try:
            c.completions.create(model="fake", prompt="x", max_tokens=100000)
            check("openai_max_tokens_limit", False, "no error raised")
        except openai.BadRequestError as ex:
            check("openai_max_tokens_limit", "max_tokens" in str(ex), str(ex))

        code, body = curl(s.url.replace("/v1", "/health"))
        check("curl_health", code == 200 and json.loads(body)["status"] == "ok", body)
        code, body = curl(s.url + "/completions", '{"model":"fake","prompt":"via curl","max_tokens":4}')
        check("curl_completion", code == 200 and json.loads(body)["choices"][0]["text"] == "echo:via curl", body)
        bad = [("malformed_json", '{"prompt": "x",', 400), ("wrong_type", '{"prompt": "x", "n": "two"}', 400),
               ("unknown_model", '{"model": "gpt-x", "prompt": "x"}', 404),
               ("no_prompt", '{"model": "fake"}', 400),
               ("huge_body", '{"prompt": "' + "a" * 200000 + '"}', 413)]
        for name, body_in, want in bad:
            code, body = curl(s.url + "/completions", body_in)
            err = json.loads(body).get("error", {}) if body.startswith("{") else {}
            check(f"curl_bad_{name}", code == want and err.get("message") and err.get("type"), f"{code} {body[:300]}")
        code, body = curl(s.url + "/chat/completions", '{"model":"fake","messages":[{"role":"user","content":"ok"}]}')
        check("serves_after_bad_requests", code == 200 and "echo:ok" in body, f"{code} {body[:300]}")

        # many clients at once, each answer checked against its own prompt
        def one(i):
            r = c.completions.create(model="fake", prompt=f"p{i}", max_tokens=4)
            return r.choices[0].text == f"echo:p{i}"

        with cf.ThreadPoolExecutor(64) as ex:
            ok = sum(ex.map(one, range(256)))
        check("concurrent_clients", ok == 256, f"{ok}/256 correct")
        rc, dt, err = s.stop()
        check("sigterm_clean_exit", rc == 0 and dt < 10 and "requests" in err, f"rc={rc} after {dt:.1f}s: {err[-300:]}")
    finally:
        if s.alive():
            s.stop()
        up.shutdown()
    up, up_port = fake_openai.start()
    try:
        load_run("proxy", f"http://127.0.0.1:{up_port}/v1#fake", "fake", lambda i: f"p{i}",
                 lambda i, r: r.choices[0].text == f"echo:p{i}")
    finally:
        up.shutdown()


def load_run(label, model, model_name, prompt, good, max_tokens=4, extra=()):
    """N requests at concurrency 64; all must be answered correctly, and the server's RSS
    after the run must be what it was after a warm-up. Uses the release build when there is
    one: the sanitizer build's allocator keeps freed memory in quarantine, which would hide
    a flat profile behind its own growth."""
    cli = REL_CLI if os.path.exists(REL_CLI) else CLI
    n = 2000 if LONG else 300
    s = Serve(cli, model, *extra)
    try:
        c = openai.OpenAI(base_url=s.url, api_key="unused", max_retries=0, timeout=300)
        name = model_name or s.model

        def one(i):
            r = c.completions.create(model=name, prompt=prompt(i), max_tokens=max_tokens, seed=i)
            return (r.usage.completion_tokens if good(i, r) else -1)

        with cf.ThreadPoolExecutor(64) as ex:
            list(ex.map(one, range(64)))  # warm-up: buffers, caches and threads reach working size
            rss0 = s.rss_kib()
            t0 = time.time()
            toks = list(ex.map(one, range(n)))
            dt = time.time() - t0
        rss1 = s.rss_kib()
        answered = sum(t >= 0 for t in toks)
        print(f"  {label} load ({os.path.relpath(cli, ROOT)}): {n} requests at concurrency 64: {n / dt:.1f} "
              f"requests/s, {sum(max(t, 0) for t in toks) / dt:.1f} tokens/s; RSS {rss0 / 1024:.1f} -> "
              f"{rss1 / 1024:.1f} MiB", flush=True)
        check(f"{label}_load_all_answered", answered == n, f"{answered}/{n}")
        allowance = 16 * 1024 if cli == REL_CLI else 128 * 1024
        check(f"{label}_load_rss_flat", rss1 - rss0 < allowance, f"RSS grew {rss0} -> {rss1} KiB")
        rc, _, err = s.stop()
        check(f"{label}_load_sigterm_clean_exit", rc == 0, f"rc={rc}: {err[-300:]}")
    finally:
        if s.alive():
            s.stop()


def pytest_close(top, chosen):
    """The best of a top_logprobs dict when it is the chosen token's logprob (to 1e-4)."""
    best = max(top.values())
    return best if abs(best - chosen) < 1e-4 else None


def local_part():
    model = asset("models/stories260K.gguf")
    if not model:
        skip("stories260K", "../shared/assets/models/stories260K.gguf not found")
        return
    if not local_engine_built(ROOT):
        skip("stories260K", "the in-process engine (src/infer/local_backend.c) is not in this build")
        return
    s = Serve(CLI, model, "--threads", "2", "--chat-template", "chatml")  # the GGUF has no template
    try:
        c = openai.OpenAI(base_url=s.url, api_key="unused", max_retries=0, timeout=120)
        r1 = c.completions.create(model=s.model, prompt="Once upon a time", max_tokens=20, temperature=0)
        r2 = c.completions.create(model=s.model, prompt="Once upon a time", max_tokens=20, temperature=0)
        check("stories_completion", len(r1.choices[0].text) > 0 and 0 < r1.usage.completion_tokens <= 20
              and r1.usage.prompt_tokens > 0 and r1.choices[0].finish_reason in ("stop", "length"), repr(r1))
        check("stories_greedy_reproducible", r1.choices[0].text == r2.choices[0].text,
              f"{r1.choices[0].text!r} != {r2.choices[0].text!r}")
        code, body = curl(s.url + "/completions", json.dumps({"model": s.model, "prompt": "Once upon a time",
                                                              "max_tokens": 20, "temperature": 0}))
        check("stories_curl", code == 200 and json.loads(body)["choices"][0]["text"] == r1.choices[0].text,
              f"{code} {body[:300]}")
        code, body = curl(s.url + "/completions", '{"prompt": 12}')
        check("stories_bad_request", code == 400, f"{code} {body[:200]}")
        # #18: a prompt longer than the context is the client's error, with both counts (as vLLM)
        try:
            c.completions.create(model=s.model, prompt="Once upon a time " * 1200, max_tokens=4)
            check("stories_prompt_too_long_400", False, "no error raised")
        except openai.BadRequestError as ex:
            check("stories_prompt_too_long_400", "maximum context length is 2048 tokens" in str(ex), str(ex))
        # logprobs=N: tokens whose texts make up the completion, N alternatives per step, best
        # first, the chosen one among them under greedy decoding
        r = c.completions.create(model=s.model, prompt="Once upon a time", max_tokens=8, temperature=0, logprobs=3)
        lp = r.choices[0].logprobs
        check("stories_completion_logprobs", lp and "".join(lp.tokens) == r.choices[0].text
              and len(lp.token_logprobs) == len(lp.tokens) == 8 and len(lp.top_logprobs) == 8
              and all(len(t) == 3 and max(t.values()) == pytest_close(t, lp.token_logprobs[i])
                      for i, t in enumerate(lp.top_logprobs)), repr(lp))
        r = c.chat.completions.create(model=s.model, messages=[{"role": "user", "content": "Once upon a time"}],
                                      max_tokens=6, temperature=0, logprobs=True, top_logprobs=2)
        content = r.choices[0].logprobs.content
        check("stories_chat_logprobs_token_text", "".join(t.token for t in content) == r.choices[0].message.content
              and all(t.token and t.bytes == list(t.token.encode()) and len(t.top_logprobs) == 2 for t in content),
              repr(r.choices[0]))
        # a list of prompts: one choice per prompt, in order, each as the prompt alone gives it
        r = c.completions.create(model=s.model, prompt=["Once upon a time", "Lily saw a"], max_tokens=6,
                                 temperature=0)
        r2 = c.completions.create(model=s.model, prompt="Lily saw a", max_tokens=6, temperature=0)
        check("stories_prompt_list", [ch.index for ch in r.choices] == [0, 1]
              and r.choices[1].text == r2.choices[0].text, repr(r))
        # a client that hangs up: its long request is cancelled, the next is not held up
        short = openai.OpenAI(base_url=s.url, api_key="unused", max_retries=0, timeout=0.2)
        try:
            short.completions.create(model=s.model, prompt="Once", max_tokens=480, n=16, temperature=1)
        except openai.APITimeoutError:
            pass
        t0 = time.time()
        c.completions.create(model=s.model, prompt="Tom", max_tokens=4)
        dt = time.time() - t0
        check("stories_hangup_cancels", dt < 2.0, f"the next request took {dt:.2f} s")

        rc, dt, err = s.stop()
        check("stories_sigterm_clean_exit", rc == 0, f"rc={rc}: {err[-300:]}")
        check("stories_summary_counts_cancelled", "1 cancelled by their client" in err, err[-300:])
    finally:
        if s.alive():
            s.stop()
    load_run("stories", model, None, lambda i: f"Tom had {i} apples.",
             lambda i, r: r.choices[0].finish_reason in ("stop", "length"), max_tokens=16, extra=("--threads", "2"))


def main():
    if openai is None:
        skip("serve", "the openai package is not installed in the peer Python")
        return
    if not os.path.exists(CLI):
        skip("serve", f"{CLI} not built")
        return
    proxy_part()
    local_part()


main()
finish()
