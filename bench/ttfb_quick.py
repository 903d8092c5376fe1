#!/usr/bin/env python3
"""Quick check: time to first content byte, straight to the scripted upstream vs through sluice.

    /usr/bin/python3 bench/ttfb_quick.py [--binary build/sluice] [--requests 100]

Starts tests/tools/scripted_upstream.py and `sluice serve` (a cloud_large model pointing at it) on
127.0.0.1, then sends the requests one after another, alternating direct and through sluice, on a
fresh connection each, and prints the medians and the difference. Bounded in count; loopback only.
"""

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def first_content_ms(port, path, body, headers):
    """Milliseconds from sending the request to the first `data:` line carrying content."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    start = time.perf_counter()
    conn.request("POST", path, body=json.dumps(body), headers=headers)
    res = conn.getresponse()
    if res.status != 200:
        raise RuntimeError(f"{path}: HTTP {res.status} {res.read()[:200]!r}")
    first = None
    while True:
        line = res.fp.readline()
        if not line:
            break
        if first is None and line.startswith(b"data:") and b"[DONE]" not in line and b"content" in line:
            first = (time.perf_counter() - start) * 1000
        if b"[DONE]" in line:
            break
    conn.close()
    return first


def wait_for_line(path, pattern, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, errors="replace") as f:
            m = re.search(pattern, f.read())
        if m:
            return m
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"no {pattern!r} in {path}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, "build", "sluice"))
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="sluice-ttfb-")
    procs = []
    try:
        up_out = os.path.join(work, "upstream.out")
        with open(up_out, "w") as out:
            procs.append(subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "tools", "scripted_upstream.py"),
                                           "--port", "0"], stdout=out, stderr=subprocess.DEVNULL))
        up_port = int(wait_for_line(up_out, r"PORT (\d+)", procs[-1]).group(1))

        config = os.path.join(work, "sluice.toml")
        with open(config, "w") as f:
            f.write(f"""[server]
listen = "127.0.0.1:0"
[store]
url = "sqlite://{work}/sluice.db"
[[models]]
name = "cloud"
role = "cloud_large"
provider = "openai"
base_url = "http://127.0.0.1:{up_port}/v1"
api_key_env = ""
""")
        log = os.path.join(work, "sluice.log")
        with open(log, "w") as out:
            procs.append(subprocess.Popen([args.binary, "serve", "--config", config], stdout=out, stderr=out, cwd=work))
        port = int(wait_for_line(log, r"listening on 127\.0\.0\.1:(\d+)", procs[-1]).group(1))
        key = wait_for_line(log, r"created API key (sk-[A-Za-z0-9_-]+)", procs[-1]).group(1)

        direct_body = {"model": "cloud", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        seed_body = {"message": "hi", "model_type": "cloud_large"}
        json_headers = {"Content-Type": "application/json"}
        seed_headers = dict(json_headers, Authorization=f"Bearer {key}")
        direct, through = [], []
        for i in range(args.requests + 5):
            d = first_content_ms(up_port, "/v1/chat/completions", direct_body, json_headers)
            t = first_content_ms(port, "/api/v1/chat/stream", seed_body, seed_headers)
            if i >= 5:  # the first few warm up both sides
                direct.append(d)
                through.append(t)
        md, mt = statistics.median(direct), statistics.median(through)
        print(f"time to first content byte, median of {args.requests} requests (fresh connection each):")
        print(f"  direct to the scripted upstream: {md:.3f} ms")
        print(f"  through sluice:                  {mt:.3f} ms")
        print(f"  added by sluice:                 {mt - md:.3f} ms")
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
