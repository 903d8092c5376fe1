"""What the client tests share beyond conftest.py: the node drivers in tests/e2e/js (run with the npm
packages of tests/package.json) and a bounded wait for the upstream to see a cancel."""

import json
import os
import shutil
import subprocess
import time

import pytest

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JS_DIR = os.path.join(TESTS_DIR, "e2e", "js")
NODE_MODULES = os.path.join(TESTS_DIR, "node_modules")


def binary():
    path = os.environ.get("SLUICE_BINARY")
    if not path:
        path = os.path.join(os.environ.get("SLUICE_BUILD_DIR", os.path.join(TESTS_DIR, "..", "build")), "sluice")
    return path


def node_available():
    return shutil.which("node") is not None and os.path.isdir(NODE_MODULES)


needs_node = pytest.mark.skipif(not node_available(), reason="node or tests/node_modules missing: run `make deps`")


def run_node(script, config, timeout=120):
    """Runs tests/e2e/js/<script> with one JSON argument; returns the JSON line it prints."""
    done = subprocess.run(["node", os.path.join(JS_DIR, script), json.dumps(config)], capture_output=True,
                          text=True, timeout=timeout, cwd=TESTS_DIR)
    assert done.returncode == 0, f"{script} failed:\n{done.stderr}\n{done.stdout}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def wait_upstream_closed(upstream, timeout_s=10):
    """The last upstream request once the upstream saw its client (sluice) close it; the request as it
    stands when timeout_s passes otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        requests = upstream.log()
        if requests and requests[-1]["t_closed"] is not None:
            return requests[-1]
        if time.monotonic() > deadline:
            return requests[-1] if requests else None
        time.sleep(0.05)


def chat_turns(messages):
    """(role, content) of the messages sent upstream, without the system prompt."""
    return [(m["role"], m["content"]) for m in messages if m["role"] != "system"]
