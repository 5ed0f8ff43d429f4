"""Starting and stopping `scalequest serve` for the net tests, and reading its memory."""
import os
import signal
import subprocess
import time


class Serve:
    """scalequest serve on a free loopback port; .port, .url, .pid; stop() sends SIGTERM."""

    def __init__(self, cli, model, *extra, timeout=60):
        self.p = subprocess.Popen([cli, "serve", "--model", model, "--port", "0", *extra], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()  # "listening on http://127.0.0.1:PORT/v1 model NAME"
        if not line.startswith("listening on "):
            self.p.kill()
            raise RuntimeError(f"serve did not start: {line!r} {self.p.stderr.read()[-2000:]}")
        self.url = line.split()[2]
        self.model = line.split()[4]
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])
        self.pid = self.p.pid

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def alive(self):
        return self.p.poll() is None

    def stop(self, timeout=20):
        """SIGTERM; returns (exit status, seconds to exit, stderr)."""
        t0 = time.time()
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        err = self.p.stderr.read()
        return rc, time.time() - t0, err


def local_engine_built(root):
    """The in-process engine is part of the build when its source is in the tree."""
    return os.path.exists(os.path.join(root, "src", "infer", "local_backend.c"))
