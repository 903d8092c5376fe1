"""What the Python benchmarks (resume_cost.py, soak.py) share: the scripted upstream and one
`sluice serve` on 127.0.0.1, started and found as the tests do (its port from the log, the first key
it printed)."""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def post_json(url, body):
    urllib.request.urlopen(urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                                  headers={"Content-Type": "application/json"}), timeout=10)


def start_upstream():
    """(process, base URL) of tests/tools/scripted_upstream.py on a free port."""
    up = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "tools", "scripted_upstream.py"), "--port", "0"],
                          stdout=subprocess.PIPE, text=True)
    port = int(re.match(r"PORT (\d+)", up.stdout.readline()).group(1))
    return up, f"http://127.0.0.1:{port}"


def start_sluice(binary, work, config_text, env=None, timeout_s=60):
    """(process, base URL, first API key) of `sluice serve` with `config_text` in `work`."""
    config = os.path.join(work, "sluice.toml")
    with open(config, "w") as f:
        f.write(config_text)
    err_path, out_path = os.path.join(work, "sluice.err"), os.path.join(work, "sluice.out")
    with open(err_path, "w") as err, open(out_path, "w") as out:
        sluice = subprocess.Popen([binary, "serve", "--config", config], cwd=work, stdout=out, stderr=err,
                                  env=dict(os.environ, **(env or {})))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with open(err_path) as f:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", f.read())
        with open(out_path) as f:
            k = re.search(r"(sk-[A-Za-z0-9_-]+)", f.read())
        if m and k:
            return sluice, f"http://127.0.0.1:{m.group(1)}", k.group(1)
        if sluice.poll() is not None:
            break
        time.sleep(0.02)
    sluice.kill()
    raise SystemExit(f"sluice did not start: see {err_path}")
