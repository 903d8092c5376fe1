#!/usr/bin/env python3
"""The soak (issue 13, `make soak`): an hour of mixed traffic against one `sluice serve`, its memory
and open files sampled; flat is the pass.

    /usr/bin/python3 bench/soak.py [--binary build/sluice] [--minutes 60] [--workers 16] [--out FILE]

Starts tests/tools/scripted_upstream.py (ten deltas 20 ms apart) and sluice on 127.0.0.1 with the
SQLite store, the scripted cloud model and the local tiny model. Each worker loops over a mix:
seed streams on 200 rotating sessions (50 %), /v1/chat/completions streams (15 %), streams the
client leaves after two events (10 %), bad requests (10 %: malformed JSON, a wrong key, a body past
server.max_body_bytes, an unknown route), resumable streams dropped and resumed (10 %) and the
local model (5 %). Every answer is checked (a status or an event that is not what that request
must get counts as an error). Every 10 s: sluice's RSS, open files and threads.

Pass: no error, and after a warm-up (the first 10 % of the run) RSS and open files are flat — the
median of the last quarter of samples within 10 % (RSS) and 16 descriptors (files) of the median
of the quarter after the warm-up. Prints one JSON object (and writes it to --out); exit code 1 when
the run does not pass.
"""

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time

import aiohttp

from serve_support import ROOT, post_json, start_sluice, start_upstream
SESSIONS = 200


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        text = f.read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", text).group(1))
    threads = int(re.search(r"Threads:\s+(\d+)", text).group(1))
    return rss, len(os.listdir(f"/proc/{pid}/fd")), threads


class Soak:
    def __init__(self, url, key, upstream_url):
        self.url, self.key, self.upstream_url = url, key, upstream_url
        self.counts = {}
        self.errors = []
        self.headers = {"Authorization": f"Bearer {key}"}

    def count(self, kind):
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def error(self, kind, what):
        self.count("errors")
        if len(self.errors) < 50:
            self.errors.append(f"{kind}: {what}")

    async def read_events(self, res, limit=None):
        """The data: payloads of an SSE body (all of them, or the first `limit`)."""
        events = []
        async for line in res.content:
            if line.startswith(b"data:"):
                events.append(line[5:].strip().decode())
                if limit and len(events) >= limit:
                    break
        return events

    async def seed(self, session, rng):
        body = {"message": "soak", "session_id": f"soak-{rng.randrange(SESSIONS)}", "preferred_model": "cloud"}
        async with session.post(self.url + "/api/v1/chat/stream", json=body, headers=self.headers) as res:
            events = await self.read_events(res)
        # A busy session (another worker on it) is a 409, as it must be.
        if res.status == 409:
            self.count("seed_busy")
            return
        if res.status != 200 or not events or events[-1] != "[DONE]" or '"done":true' not in events[-2]:
            self.error("seed", f"{res.status} {events[-2:]}")
        self.count("seed")

    async def openai(self, session, rng):
        body = {"model": "cloud", "stream": True, "messages": [{"role": "user", "content": "soak"}]}
        async with session.post(self.url + "/v1/chat/completions", json=body, headers=self.headers) as res:
            events = await self.read_events(res)
        if res.status != 200 or not events or events[-1] != "[DONE]":
            self.error("openai", f"{res.status} {events[-2:]}")
        self.count("openai")

    async def cancelled(self, session, rng):
        body = {"message": "soak", "preferred_model": "cloud"}
        res = await session.post(self.url + "/api/v1/chat/stream", json=body, headers=self.headers)
        events = await self.read_events(res, limit=2)
        res.close()  # the client leaves mid-stream
        if res.status != 200 or len(events) < 2:
            self.error("cancelled", f"{res.status} {events}")
        self.count("cancelled")

    async def bad(self, session, rng):
        kind = rng.randrange(4)
        if kind == 0:
            async with session.post(self.url + "/api/v1/chat/stream", data=b'{"message": ',
                                    headers={**self.headers, "Content-Type": "application/json"}) as res:
                await res.read()
            want = 400
        elif kind == 1:
            async with session.post(self.url + "/api/v1/chat/stream", json={"message": "x"},
                                    headers={"Authorization": "Bearer sk-wrong"}) as res:
                await res.read()
            want = 401
        elif kind == 2:
            async with session.post(self.url + "/api/v1/chat/stream", data=b"x" * (2 * 1024 * 1024),
                                    headers={**self.headers, "Content-Type": "application/json"}) as res:
                await res.read()
            want = 413
        else:
            async with session.get(self.url + "/api/v1/nothing-here", headers=self.headers) as res:
                await res.read()
            want = 404
        if res.status != want:
            self.error("bad", f"kind {kind}: {res.status}, wanted {want}")
        self.count("bad")

    async def resumable(self, session, rng):
        body = {"message": "soak", "preferred_model": "cloud", "resumable": True}
        res = await session.post(self.url + "/api/v1/chat/stream", json=body, headers=self.headers)
        stream_id = res.headers.get("X-Sluice-Stream-Id")
        last = None
        async for line in res.content:
            if line.startswith(b"id:"):
                last = line[3:].strip().decode()
                if int(last) >= 3:
                    break
        res.close()
        if res.status != 200 or not stream_id or last is None:
            self.error("resumable", f"{res.status} {stream_id} {last}")
            return
        async with session.get(self.url + f"/api/v1/streams/{stream_id}",
                               headers={**self.headers, "Last-Event-ID": last}) as again:
            events = await self.read_events(again)
        if again.status != 200 or not events or events[-1] != "[DONE]":
            self.error("resumed", f"{again.status} {events[-2:]}")
        self.count("resumable")

    async def local(self, session, rng):
        body = {"message": "soak", "preferred_model": "local", "max_tokens": 8}
        async with session.post(self.url + "/api/v1/chat/stream", json=body, headers=self.headers) as res:
            events = await self.read_events(res)
        if res.status != 200 or not events or events[-1] != "[DONE]":
            self.error("local", f"{res.status} {events[-2:]}")
        self.count("local")

    async def worker(self, seed, deadline):
        rng = random.Random(seed)
        mix = [(0.50, self.seed), (0.65, self.openai), (0.75, self.cancelled), (0.85, self.bad),
               (0.95, self.resumable), (1.00, self.local)]
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while time.monotonic() < deadline:
                pick = rng.random()
                action = next(fn for bound, fn in mix if pick < bound)
                try:
                    await action(session, rng)
                except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                    self.error(action.__name__, repr(e))


async def sample_loop(pid, deadline, samples, period):
    start = time.monotonic()
    while time.monotonic() < deadline:
        rss, fds, threads = proc_status(pid)
        samples.append({"t_s": round(time.monotonic() - start, 1), "rss_kib": rss, "fds": fds, "threads": threads})
        await asyncio.sleep(period)


async def upstream_hygiene(upstream_url, script, deadline):
    """The scripted upstream logs every request: clear it every minute (and set the script again)."""
    while time.monotonic() < deadline:
        await asyncio.sleep(60)
        post_json(upstream_url + "/_reset", {})
        post_json(upstream_url + "/_script", script)


async def run(args, url, key, upstream_url, pid, script):
    soak = Soak(url, key, upstream_url)
    deadline = time.monotonic() + args.minutes * 60
    samples = []
    tasks = [soak.worker(i, deadline) for i in range(args.workers)]
    await asyncio.gather(sample_loop(pid, deadline, samples, args.sample_s),
                         upstream_hygiene(upstream_url, script, deadline), *tasks)
    return soak, samples


def verdict(samples, counts):
    n = len(samples)
    warm = max(1, n // 10)
    rest = samples[warm:]
    q = max(1, len(rest) // 4)
    early, late = rest[:q], rest[-q:]
    early_rss = statistics.median(s["rss_kib"] for s in early)
    late_rss = statistics.median(s["rss_kib"] for s in late)
    early_fds = statistics.median(s["fds"] for s in early)
    late_fds = statistics.median(s["fds"] for s in late)
    flat = late_rss <= early_rss * 1.10 and late_fds <= early_fds + 16
    return {"rss_kib_after_warmup": early_rss, "rss_kib_last_quarter": late_rss,
            "fds_after_warmup": early_fds, "fds_last_quarter": late_fds,
            "rss_kib_max": max(s["rss_kib"] for s in samples), "fds_max": max(s["fds"] for s in samples),
            "threads_max": max(s["threads"] for s in samples),
            "flat": flat, "passed": flat and counts.get("errors", 0) == 0}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, "build", "sluice"))
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--sample-s", type=float, default=10)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="sluice-soak-")
    up, upstream_url = start_upstream()
    script = {"chunks": [f"w{i} " for i in range(10)], "chunk_delay_ms": 20}
    post_json(upstream_url + "/_script", script)
    sluice, url, key = start_sluice(
        args.binary, work,
        f'[server]\nlisten = "127.0.0.1:0"\nio_threads = 2\nmax_body_bytes = 1048576\n'
        f'[store]\nurl = "sqlite://{work}/db"\n[resume]\nkeep_s = 5\n'
        f'[[models]]\nname = "cloud"\nrole = "cloud_large"\nprovider = "openai"\n'
        f'base_url = "{upstream_url}/v1"\napi_key_env = "SOAK_KEY"\n'
        f'[[models]]\nname = "local"\nrole = "local_small"\nprovider = "llama"\n', env={"SOAK_KEY": "x"})
    try:
        started = time.time()
        soak, samples = asyncio.run(run(args, url, key, upstream_url, sluice.pid, script))
        result = {"minutes": args.minutes, "workers": args.workers, "requests": soak.counts,
                  "errors_first": soak.errors[:10], "started": time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)),
                  **verdict(samples, soak.counts), "samples": samples}
        text = json.dumps(result)
        if args.out:
            with open(args.out, "w") as f:
                f.write(text + "\n")
        summary = {k: v for k, v in result.items() if k != "samples"}
        print(json.dumps(summary))
        return 0 if result["passed"] else 1
    finally:
        sluice.terminate()
        sluice.wait(30)
        up.terminate()
        up.wait(10)


if __name__ == "__main__":
    sys.exit(main())
