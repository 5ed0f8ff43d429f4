"""A small OpenAI-compatible server for the net tests, fully under the test's control.

It answers /v1/completions and /v1/chat/completions with a deterministic echo
("echo:" + prompt or last message), and can misbehave on purpose: a prompt may carry a
fault plan "<name>|<fault>,<fault>,..." where the n-th attempt for that name suffers the
n-th fault: drop (close the socket without a reply), 429 (with Retry-After: 1), 500, 503,
slow (sleep 3 s before answering), trunc (a 200 whose body is cut short), fewer (two choices
fewer than the request's n) or ok. Attempts
past the list succeed; "always500" fails every attempt. The server counts attempts and
successful answers per name so a test can check that nothing was lost or repeated.
A plan may also be written "<<fault:...>>" anywhere in the text (see _plan)."""
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.attempts = {}
        self.answered = {}
        self.requests = 0
        self.auth = set()  # Authorization headers seen


def _plan(text):
    # A plan may also sit anywhere in a longer prompt as "<<fault:F,F,...>>" (the judge
    # prompts put the question in the middle of their text); the name is the text without it.
    m = re.search(r"<<fault:([^>]*)>>", text)
    if m:
        return text[: m.start()] + text[m.end():], [f for f in m.group(1).split(",") if f]
    name, _, faults = text.partition("|")
    return name, [f for f in faults.split(",") if f]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _send(self, status, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
        else:
            self._send(404, {"error": {"message": "no such endpoint"}})

    def do_POST(self):
        st = self.server.state
        n = int(self.headers.get("Content-Length", "0"))
        req = json.loads(self.rfile.read(n) or b"{}")
        chat = self.path.endswith("/chat/completions")
        text = req["messages"][-1]["content"] if chat else req["prompt"]
        name, faults = _plan(text)
        with st.lock:
            st.auth.add(self.headers.get("Authorization", ""))
            st.requests += 1
            k = st.attempts.get(name, 0)
            st.attempts[name] = k + 1
        fault = faults[k] if k < len(faults) else "ok"
        if name.startswith("always500") or "always500" in faults:
            fault = "500"
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if fault == "429":
            self._send(429, {"error": {"message": "slow down"}}, [("Retry-After", "1")])
            return
        if fault in ("500", "503"):
            self._send(int(fault), {"error": {"message": f"injected {fault}"}})
            return
        if fault == "slow":
            time.sleep(3)
        out = "echo:" + name
        n_choices = int(req.get("n", 1))
        if fault == "fewer":  # a server that answers n with fewer choices
            n_choices = max(0, n_choices - 2)
        choices = []
        for i in range(n_choices):
            c = {"index": i, "finish_reason": "length", "logprobs": None}
            if chat:
                c["message"] = {"role": "assistant", "content": out}
            else:
                c["text"] = out
            choices.append(c)
        resp = {"id": "x", "object": "chat.completion" if chat else "text_completion", "model": req.get("model"),
                "choices": choices,
                "usage": {"prompt_tokens": len(name.split()), "completion_tokens": 2 * n_choices,
                          "total_tokens": len(name.split()) + 2 * n_choices}}
        if fault == "trunc":
            body = json.dumps(resp).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) // 2))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        with st.lock:
            st.answered[name] = st.answered.get(name, 0) + 1
        self._send(200, resp)


class Server(ThreadingHTTPServer):
    request_queue_size = 256  # 64 clients connect at once; the default backlog of 5 drops SYNs
    daemon_threads = True


def start():
    """Start on a free loopback port in a daemon thread; returns (server, port)."""
    srv = Server(("127.0.0.1", 0), Handler)
    srv.state = State()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1]
