"""Shared helpers for the peer comparisons: real Python libraries as test oracles.

Each test script calls check()/skip() per case and finish() at the end; lines are printed in
the same PASS/FAIL/SKIP form as the C harness so tests/run.sh counts them together."""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSETS = os.environ.get("SQ_ASSETS", os.path.join(ROOT, "..", "shared", "assets"))
CLI = os.environ.get("SQ_CLI", os.path.join(ROOT, "build", "san", "scalequest"))
BUILD = os.environ.get("SQ_TEST_BUILD", os.path.join(ROOT, "build", "san"))
_script = os.path.basename(sys.argv[0])
_failed = 0


def asset(rel):
    """Path of a file under ../shared/assets, or None when the assets are absent."""
    p = os.path.join(ASSETS, rel)
    return p if os.path.exists(p) else None


def check(name, ok, why=""):
    global _failed
    if ok:
        print(f"PASS {_script}:{name}", flush=True)
    else:
        _failed += 1
        print(f"FAIL {_script}:{name}: {why}", flush=True)
    return ok


def skip(name, why):
    print(f"SKIP {_script}:{name}: {why}", flush=True)


def run(args, input=None, check_rc=True, **kw):
    """Run a command (list), return CompletedProcess with text output."""
    p = subprocess.run(args, input=input, capture_output=True, text=isinstance(input, str) or input is None, **kw)
    if check_rc and p.returncode != 0:
        raise RuntimeError(f"{args[0]} exited {p.returncode}: {p.stderr[-2000:]}")
    return p


def tmpdir():
    return tempfile.mkdtemp(prefix="sqpeer.")


def finish():
    sys.exit(1 if _failed else 0)
