#!/usr/bin/env python3
"""What a resumable stream costs against a plain one: memory per open stream and time per stream.

    /usr/bin/python3 bench/resume_cost.py [--binary build/sluice] [--streams 200] [--chunks 40] [--store redis]

Starts tests/tools/scripted_upstream.py and `sluice serve` (one cloud_large model pointing at it)
on 127.0.0.1. Memory: opens --streams concurrent seed streams whose upstream sends 2 x --chunks deltas
50 ms apart, waits until every client has read --chunks of them, reads sluice's RSS, closes them; once plain, once with "resumable": true (so the resumable figure holds
each stream's log of --chunks events too). Time: --streams streams one after another, each read to
its end, plain and resumable alternating. With --store redis, sluice runs on a redis-server the
script starts (the resumable log is then also published to Redis Streams), and the Redis commands
each stream cost are counted from INFO commandstats: EVAL calls (sluice's round trips: every
store call but a few reads is one script) and every command, those run inside scripts included.
Bounded in count; loopback only.
"""

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import tempfile
import socket
import time

import aiohttp

from serve_support import ROOT, post_json, start_sluice, start_upstream


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


async def hold_streams(url, key, n, chunks, resumable):
    """Opens n streams, waits for `chunks` content events on each; returns the open responses."""
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    body = {"message": "hold", "preferred_model": "cloud", "resumable": resumable}
    headers = {"Authorization": f"Bearer {key}"}

    async def one():
        res = await session.post(url + "/api/v1/chat/stream", json=body, headers=headers)
        seen = 0
        while seen < chunks:
            line = await res.content.readline()
            if line.startswith(b"data:"):
                seen += 1
        return res

    responses = await asyncio.gather(*[one() for _ in range(n)])
    return session, responses


async def memory(url, key, pid, n, chunks, resumable):
    before = rss_kib(pid)
    session, responses = await hold_streams(url, key, n, chunks, resumable)
    await asyncio.sleep(0.5)
    during = rss_kib(pid)
    for res in responses:
        res.close()
    await session.close()
    await asyncio.sleep(1.0)
    return (during - before) * 1024 / n


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_calls(port):
    """(EVAL calls, all commands) so far, from INFO commandstats."""
    out = subprocess.run(["redis-cli", "-p", str(port), "info", "commandstats"], capture_output=True, text=True,
                         check=True).stdout
    calls = {m.group(1): int(m.group(2)) for m in re.finditer(r"^cmdstat_(\S+):calls=(\d+)", out, re.M)}
    evals = calls.get("eval", 0) + calls.get("evalsha", 0)
    everything = sum(v for k, v in calls.items() if k not in ("info",))
    return evals, everything


async def timing(url, key, n, resumable):
    times = []
    body = {"message": "time", "preferred_model": "cloud", "resumable": resumable}
    async with aiohttp.ClientSession() as session:
        for _ in range(n):
            start = time.perf_counter()
            async with session.post(url + "/api/v1/chat/stream", json=body,
                                    headers={"Authorization": f"Bearer {key}"}) as res:
                await res.read()
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, "build", "sluice"))
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="sluice-resume-cost-")
    redis = None
    store_url = f"sqlite://{work}/db"
    if args.store == "redis":
        redis_port = free_port()
        redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--dir", work], stdout=subprocess.DEVNULL)
        for _ in range(200):
            if subprocess.run(["redis-cli", "-p", str(redis_port), "ping"], capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        store_url = f"redis://127.0.0.1:{redis_port}/0"
    up, upstream_url = start_upstream()
    sluice, url, key = start_sluice(
        args.binary, work,
        f'[server]\nlisten = "127.0.0.1:0"\nio_threads = 2\n[store]\nurl = "{store_url}"\n'
        f'[resume]\nkeep_s = 0\n[[models]]\nname = "cloud"\nrole = "cloud_large"\nprovider = "openai"\n'
        f'base_url = "{upstream_url}/v1"\napi_key_env = "BENCH_KEY"\n'
        "[limits]\nrequests_per_minute = 0\n", env={"BENCH_KEY": "x"})
    try:
        def script(fields):
            post_json(upstream_url + "/_script", fields)

        # Twice as many deltas as are waited for, 50 ms apart: the streams are open while measured.
        words = [f"word{i} " for i in range(2 * args.chunks)]
        script({"chunks": words, "chunk_delay_ms": 50})
        asyncio.run(memory(url, key, sluice.pid, args.streams, args.chunks, False))  # warm-up: arenas grow once
        rounds = {False: [], True: []}
        for _ in range(3):
            for resumable in (False, True):
                rounds[resumable].append(asyncio.run(memory(url, key, sluice.pid, args.streams, args.chunks, resumable)))
        plain_b, resumable_b = statistics.median(rounds[False]), statistics.median(rounds[True])
        script({"chunks": words[: args.chunks]})
        asyncio.run(timing(url, key, args.streams, False))  # warm-up
        times = {False: [], True: []}
        commands = {False: [0, 0], True: [0, 0]}
        for _ in range(3):
            for resumable in (False, True):
                before = redis_calls(redis_port) if redis else (0, 0)
                times[resumable].append(asyncio.run(timing(url, key, args.streams, resumable)))
                time.sleep(1.5)  # the publisher's last write and the usage ledger's flush land here
                after = redis_calls(redis_port) if redis else (0, 0)
                for i in (0, 1):
                    commands[resumable][i] += after[i] - before[i]
        plain_ms, resumable_ms = statistics.median(times[False]), statistics.median(times[True])
        result = {"store": args.store, "streams": args.streams, "chunks": args.chunks,
                  "rss_per_open_stream_bytes": {"plain": round(plain_b), "resumable": round(resumable_b)},
                  "median_ms_per_stream": {"plain": round(plain_ms, 2), "resumable": round(resumable_ms, 2)}}
        if redis:
            per = 3 * args.streams
            result["redis_eval_calls_per_stream"] = {m: round(commands[r][0] / per, 2)
                                                     for m, r in (("plain", False), ("resumable", True))}
            result["redis_commands_per_stream"] = {m: round(commands[r][1] / per, 2)
                                                   for m, r in (("plain", False), ("resumable", True))}
        print(json.dumps(result))
    finally:
        sluice.terminate()
        sluice.wait(15)
        up.terminate()
        up.wait(10)
        if redis:
            redis.terminate()
            redis.wait(10)


if __name__ == "__main__":
    main()
