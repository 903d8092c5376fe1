"""GET /metrics on the real binary: Prometheus text 0.0.4, every sluice family named and typed, and
the values move with real requests (a cloud model played by tests/tools/scripted_upstream.py)."""

import asyncio
import json
import os
import re
import subprocess
import tempfile
import threading

import aiohttp
import pytest

BINARY = os.environ.get("SLUICE_BINARY", "build/sluice")
TOOLS = os.environ.get("SLUICE_TEST_TOOLS_DIR", "tests/tools")

FAMILIES = {
    "sluice_http_requests_total": "counter",
    "sluice_active_streams": "gauge",
    "sluice_ttft_seconds": "histogram",
    "sluice_inter_chunk_gap_seconds": "histogram",
    "sluice_stream_duration_seconds": "histogram",
    "sluice_gateway_overhead_seconds": "histogram",
    "sluice_tokens_total": "counter",
    "sluice_upstream_errors_total": "counter",
    "sluice_route_decisions_total": "counter",
    "sluice_tool_calls_total": "counter",
    "sluice_resumable_streams_total": "counter",
    "sluice_resumed_streams_total": "counter",
    "sluice_replayed_events_total": "counter",
    "sluice_turn_batches_total": "counter",
    "sluice_turns_stored_total": "counter",
    "sluice_circuit_state": "gauge",
    "sluice_local_queue_depth": "gauge",
    "sluice_log_lines_dropped_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_cpu_seconds_total": "counter",
}

# name{labels} value  (0.0.4: label values are quoted with \\ \" \n escapes)
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """-> (types {family: type}, samples [(name, {label: value}, float)]); asserts the syntax."""
    types, samples = {}, []
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert name not in types, f"TYPE twice for {name}"
            types[name] = kind
        elif line.startswith("# HELP ") or not line:
            continue
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            labels = dict(LABEL.findall(m.group(2) or ""))
            samples.append((m.group(1), labels, float(m.group(3))))
    return types, samples


def value(samples, name, **labels):
    total = None
    for n, l, v in samples:
        if n == name and all(l.get(k) == want for k, want in labels.items()):
            total = (total or 0) + v
    return total


def read_port(proc, pattern):
    """The port from the first output line matching `pattern`; the rest keeps draining in a thread."""
    for raw in proc.stdout:
        line = raw.decode(errors="replace")
        m = re.search(pattern, line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return int(m.group(1))
    raise RuntimeError(f"{proc.args[0]} exited before printing its port")


@pytest.fixture(scope="module")
def gateway():
    with tempfile.TemporaryDirectory() as tmp:
        upstream = subprocess.Popen(["/usr/bin/python3", os.path.join(TOOLS, "scripted_upstream.py"), "--port", "0"],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            up_port = read_port(upstream, r"PORT (\d+)")
            config = os.path.join(tmp, "sluice.toml")
            with open(config, "w") as f:
                f.write(f"""
[server]
listen = "127.0.0.1:0"
heartbeat_interval_s = 1

[store]
url = "sqlite://{tmp}/sluice.db"

[[models]]
name = "cloud"
role = "cloud_large"
provider = "openai"
base_url = "http://127.0.0.1:{up_port}/v1"
model = "scripted"
api_key_env = "METRICS_TEST_UPSTREAM_KEY"

[routing]
default_model_type = "cloud_large"
""")
            env = dict(os.environ, METRICS_TEST_UPSTREAM_KEY="upstream-key")
            created = subprocess.run([BINARY, "keys", "create", "--name", "metrics", "--config", config],
                                     env=env, capture_output=True, text=True, check=True, cwd=tmp)
            key = re.search(r"sk-[A-Za-z0-9_-]{32,}", created.stdout).group(0)
            server = subprocess.Popen([BINARY, "serve", "--config", config], env=env, cwd=tmp,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                port = read_port(server, r"listening on .*:(\d+)")
                yield {"url": f"http://127.0.0.1:{port}", "key": key, "upstream": f"http://127.0.0.1:{up_port}"}
            finally:
                server.terminate()
                server.wait(timeout=30)
        finally:
            upstream.terminate()
            upstream.wait(timeout=10)


async def scrape(session, gw, key=True):
    headers = {"Authorization": f"Bearer {gw['key']}"} if key else {}
    async with session.get(gw["url"] + "/metrics", headers=headers) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.text()


async def stream_chat(session, gw, message, session_id=None):
    """The reference client of SPEC §3: every data line is JSON until [DONE]."""
    text = ""
    body = {"message": message, "stream": True}
    if session_id:
        body["session_id"] = session_id
    async with session.post(gw["url"] + "/api/v1/chat/stream", json=body,
                            headers={"Authorization": f"Bearer {gw['key']}"}) as r:
        assert r.status == 200
        async for raw in r.content:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            data = line[len("data:"):].strip()
            if data == "[DONE]":
                break
            text += json.loads(data)["content"]
    return text


def run(coro):
    return asyncio.run(coro)


def test_metrics_needs_the_key_and_speaks_prometheus_text(gateway):
    async def main():
        async with aiohttp.ClientSession() as s:
            status, _, _ = await scrape(s, gateway, key=False)
            assert status == 401
            status, content_type, text = await scrape(s, gateway)
            assert status == 200
            assert content_type.startswith("text/plain")
            assert "version=0.0.4" in content_type
            types, _ = parse_exposition(text)
            for name, kind in FAMILIES.items():
                assert types.get(name) == kind, name

    run(main())


def test_values_move_with_requests(gateway):
    async def main():
        async with aiohttp.ClientSession() as s:
            _, _, before_text = await scrape(s, gateway)
            _, before = parse_exposition(before_text)

            async with s.post(gateway["upstream"] + "/_script",
                              json={"chunks": ["one ", "two ", "three"], "chunk_delay_ms": 5}) as r:
                assert r.status == 200
            assert await stream_chat(s, gateway, "hello metrics") == "one two three"
            assert await stream_chat(s, gateway, "again") == "one two three"
            async with s.post(gateway["url"] + "/api/v1/chat/stream", json={"message": "no key"}) as r:
                assert r.status == 401
                await r.read()

            _, _, after_text = await scrape(s, gateway)
            _, after = parse_exposition(after_text)

            def moved(name, by=1, **labels):
                b = value(before, name, **labels) or 0
                a = value(after, name, **labels)
                assert a is not None, f"{name} {labels} missing"
                assert a - b >= by, f"{name} {labels}: {b} -> {a}"

            moved("sluice_http_requests_total", 2, status="200")
            moved("sluice_http_requests_total", 1, status="401")
            moved("sluice_ttft_seconds_count", 2)
            moved("sluice_inter_chunk_gap_seconds_count", 4)  # 3 chunks each: 2 gaps each
            moved("sluice_stream_duration_seconds_count", 2)
            moved("sluice_gateway_overhead_seconds_count", 2)
            moved("sluice_tokens_total", 4, model="cloud", role="cloud_large", kind="completion")
            moved("sluice_route_decisions_total", 2, role="cloud_large")
            assert value(after, "sluice_active_streams") == 0
            assert value(after, "sluice_circuit_state", model="cloud") == 0
            # The histograms are consistent: +Inf bucket == _count, buckets never decrease.
            for family in ("sluice_ttft_seconds", "sluice_gateway_overhead_seconds"):
                buckets = [v for n, l, v in after if n == family + "_bucket"]
                assert buckets == sorted(buckets)
                assert buckets[-1] == value(after, family + "_count")
            # Waiting on the model is not the gateway's time: overhead stays below the duration.
            assert value(after, "sluice_gateway_overhead_seconds_sum") <= \
                value(after, "sluice_stream_duration_seconds_sum")

    run(main())


def test_stored_turns_are_counted_with_their_batches(gateway):
    async def main():
        async with aiohttp.ClientSession() as s:
            _, _, before_text = await scrape(s, gateway)
            _, before = parse_exposition(before_text)
            async with s.post(gateway["upstream"] + "/_script", json={"chunks": ["stored"]}) as r:
                assert r.status == 200
            assert await stream_chat(s, gateway, "remember this", session_id="metrics-turns") == "stored"
            assert await stream_chat(s, gateway, "and this", session_id="metrics-turns") == "stored"
            assert await stream_chat(s, gateway, "a new session") == "stored"  # SPEC §3: a new id
            _, _, after_text = await scrape(s, gateway)
            _, after = parse_exposition(after_text)

            def delta(name):
                return (value(after, name) or 0) - (value(before, name) or 0)

            assert delta("sluice_turns_stored_total") == 3
            # One after the other: each turn found the writer idle and was written by itself.
            assert delta("sluice_turn_batches_total") == 3

    run(main())


def test_upstream_errors_are_counted_by_kind(gateway):
    async def main():
        async with aiohttp.ClientSession() as s:
            _, _, before_text = await scrape(s, gateway)
            _, before = parse_exposition(before_text)
            async with s.post(gateway["upstream"] + "/_script", json={"queue": [{"status": 500}]}) as r:
                assert r.status == 200
            async with s.post(gateway["url"] + "/api/v1/chat/stream", json={"message": "fail please"},
                              headers={"Authorization": f"Bearer {gateway['key']}"}) as r:
                await r.read()
            _, _, after_text = await scrape(s, gateway)
            _, after = parse_exposition(after_text)
            b = value(before, "sluice_upstream_errors_total", model="cloud") or 0
            a = value(after, "sluice_upstream_errors_total", model="cloud") or 0
            assert a - b >= 1

    run(main())
