#!/usr/bin/python3
"""Two builds of sluice side by side, for a change's before/after on a noisy machine: figures that
do not depend on how busy the cores are.

  bench/compare_builds.py BUILD_A BUILD_B [--requests 200] [--streams 1000]

Each build dir holds sluice, bench/loadgen and bench/fast_upstream (BUILD_A's upstream and load
generator drive both). For each build, in turn:
  - instructions per request (valgrind --tool=callgrind, whole process): sluice serving N sequential
    streamed requests minus sluice serving none, divided by N; for the seed endpoint
    (/api/v1/chat/stream) and /v1/chat/completions (stream), 20 tokens from an instant upstream;
  - memory per waiting stream: sluice's VmRSS with `--streams` streams open at 2 tokens/s, minus its
    VmRSS idle, divided by the number of streams.
Prints one JSON object per build and the ratios B/A.
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {seconds} s")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Upstream:
    def __init__(self, build):
        self.proc = subprocess.Popen([os.path.join(build, "bench", "fast_upstream"), "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        self.url = "http://127.0.0.1:" + line.split()[1]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def write_config(workdir, upstream_url, port):
    path = os.path.join(workdir, "sluice.toml")
    models = ""
    for name, spec in (("bench", "bench"), ("bench-slow", "bench-i500-n60")):
        models += (f'[[models]]\nname = "{name}"\nrole = "cloud_large"\nprovider = "openai"\n'
                   f'base_url = "{upstream_url}/v1"\nmodel = "{spec}"\napi_key_env = "BENCH_UPSTREAM_KEY"\n'
                   'max_connections = 20000\nidle_timeout_ms = 120000\n\n')
    with open(path, "w") as f:
        f.write(f'[server]\nlisten = "127.0.0.1:{port}"\nmax_connections = 9000\n\n'
                f'[store]\nurl = "sqlite://{workdir}/sluice.db"\n\n{models}'
                '[routing]\ndefault_model_type = "cloud_large"\n')
    return path


def start_sluice(build, workdir, upstream_url, wrapper=()):
    port = free_port()
    config = write_config(workdir, upstream_url, port)
    env = dict(os.environ, BENCH_UPSTREAM_KEY="bench-not-a-secret")
    sluice = os.path.join(build, "sluice")
    out = subprocess.run([sluice, "keys", "create", "--name", "bench", "--config", config], env=env,
                         capture_output=True, text=True, check=True)
    key = re.search(r"sk-[A-Za-z0-9_-]+", out.stdout).group(0)
    log = open(os.path.join(workdir, "sluice.log"), "w")
    proc = subprocess.Popen([*wrapper, sluice, "serve", "--config", config, "--log-level", "warn"], env=env,
                            stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz", 120)
    return proc, base, key


def loadgen(build, url, key, body, extra):
    cmd = [os.path.join(build, "bench", "loadgen"), "--url", url, "--body", body,
           "--header", f"Authorization: Bearer {key}", "--stream", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


# max_tokens well above what fast_upstream sends (20 tokens of about 18 bytes: 100 by sluice's
# estimate of bytes / 4), so that the answer cap (issue 13) never cuts these streams short: a cut
# cancels the upstream mid-body, and the figures then depend on how much of it had arrived.
def bodies():
    seed = json.dumps({"message": "Say hello", "preferred_model": "bench", "max_tokens": 1000})
    openai = json.dumps({"model": "bench", "stream": True, "max_tokens": 1000,
                         "messages": [{"role": "user", "content": "Say hello"}]})
    return {"seed": ("/api/v1/chat/stream", seed), "openai": ("/v1/chat/completions", openai)}


def callgrind_total(path):
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError("no totals in " + path)


def instructions(build, tools, upstream, requests, endpoint, body):
    totals = {}
    for n in (0, requests):
        with tempfile.TemporaryDirectory() as workdir:
            out = os.path.join(workdir, "callgrind.out")
            proc, base, key = start_sluice(build, workdir, upstream.url,
                                           ("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"))
            if n:
                done = loadgen(tools, base + endpoint, key, body, ["--connections", "1", "--requests", str(n)])
                if done.returncode != 0:
                    raise RuntimeError(done.stderr)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
            totals[n] = callgrind_total(out)
    return (totals[requests] - totals[0]) / requests


def memory_per_stream(build, tools, upstream, streams):
    with tempfile.TemporaryDirectory() as workdir:
        proc, base, key = start_sluice(build, workdir, upstream.url)
        seed = json.dumps({"message": "Say hello", "preferred_model": "bench-slow", "max_tokens": 1000})
        # A few requests first, so that what one request leaves cached is in the idle figure.
        loadgen(tools, base + "/api/v1/chat/stream", key, json.dumps(
            {"message": "Say hello", "preferred_model": "bench"}), ["--connections", "4", "--requests", "40"])
        idle = rss_kb(proc.pid)
        gen = subprocess.Popen([os.path.join(tools, "bench", "loadgen"), "--url", base + "/api/v1/chat/stream",
                                "--body", seed, "--header", f"Authorization: Bearer {key}", "--stream",
                                "--connections", str(streams), "--duration", "25", "--ramp-s", "3"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak = 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if time.monotonic() > deadline - 14:  # after the ramp
                peak = max(peak, rss_kb(proc.pid))
        gen.wait(timeout=120)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        return {"idle_kb": idle, "peak_kb": peak, "bytes_per_stream": (peak - idle) * 1024 / streams}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("builds", nargs=2)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--skip-instructions", action="store_true")
    args = parser.parse_args()
    builds = [os.path.abspath(b) for b in args.builds]
    tools = builds[0]
    upstream = Upstream(tools)
    results = {}
    try:
        for build in builds:
            figures = {}
            if not args.skip_instructions:
                for name, (endpoint, body) in bodies().items():
                    figures[f"instructions_per_request_{name}"] = instructions(build, tools, upstream, args.requests,
                                                                               endpoint, body)
            figures["memory"] = memory_per_stream(build, tools, upstream, args.streams)
            results[build] = figures
            print(json.dumps({build: figures}), flush=True)
    finally:
        upstream.stop()
    a, b = (results[x] for x in builds)
    ratios = {k: b[k] / a[k] for k in a if k.startswith("instructions")}
    ratios["bytes_per_stream"] = b["memory"]["bytes_per_stream"] / a["memory"]["bytes_per_stream"]
    print(json.dumps({"ratio_b_over_a": ratios}))


if __name__ == "__main__":
    sys.exit(main())
