"""Plain SSE clients on both streaming endpoints: curl --no-buffer, the seed's Python aiohttp
reference client (SPEC §3), and the `eventsource-parser` npm package; plus the exact bytes of the
OpenAI-compatible stream and its JSON errors."""

import asyncio
import json
import subprocess

import aiohttp

from clients_support import needs_node, run_node


def curl(sluice, path, body, key=None, extra=()):
    key = sluice.key if key is None else key
    done = subprocess.run(["curl", "--no-buffer", "-sS", "-i", "-X", "POST", sluice.base_url + path,
                           "-H", f"Authorization: Bearer {key}", "-H", "Content-Type: application/json",
                           "-d", json.dumps(body), *extra], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    head, _, payload = done.stdout.replace("\r\n", "\n").partition("\n\n")
    status = int(head.split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head.splitlines()[1:])}
    return status, headers, payload


def data_lines(payload):
    return [line[len("data: "):] for line in payload.split("\n") if line.startswith("data: ")]


def test_curl_reads_the_openai_stream(sluice, upstream):
    upstream.script(chunks=["Hel", "lo"], usage={"prompt_tokens": 3, "completion_tokens": 2})
    status, headers, payload = curl(sluice, "/v1/chat/completions",
                                    {"model": "auto", "stream": True,
                                     "messages": [{"role": "user", "content": "hi"}]})
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["cache-control"] == "no-cache"
    lines = data_lines(payload)
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    # role first, then content, then the finish chunk; no usage chunk unless asked for.
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]] == ["Hel", "lo"]
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert all("usage" not in c for c in chunks)
    for c in chunks:
        assert set(c) >= {"id", "object", "created", "model", "choices"}
        assert c["object"] == "chat.completion.chunk"
    # Every event is one data line followed by a blank line.
    assert all(block.startswith(("data: ", ": ")) for block in payload.strip().split("\n\n"))


def test_curl_openai_errors_are_json(sluice, upstream):
    status, headers, payload = curl(sluice, "/v1/chat/completions",
                                    {"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
                                    key="sk-wrong")
    assert status == 401
    assert headers["content-type"].startswith("application/json")
    error = json.loads(payload)["error"]
    assert set(error) >= {"message", "type", "code"}
    assert error["code"] == "invalid_api_key"

    status, _, payload = curl(sluice, "/v1/chat/completions", {"model": "auto", "messages": []})
    assert status == 400
    assert "messages" in json.loads(payload)["error"]["message"]

    status, _, payload = curl(sluice, "/v1/chat/completions", {"model": "auto", "stream": True,
                                                                "messages": [{"role": "user", "content": "x"}],
                                                                "n": 3})
    assert status == 400
    assert json.loads(payload)["error"]["type"] == "invalid_request_error"


def test_curl_reads_the_seed_stream(sluice, upstream):
    upstream.script(chunks=["one ", "two"])
    status, headers, payload = curl(sluice, "/api/v1/chat/stream", {"message": "count"})
    assert status == 200
    assert headers["x-accel-buffering"] == "no"
    lines = data_lines(payload)
    assert lines[-1] == "[DONE]"
    events = [json.loads(line) for line in lines[:-1]]
    assert "".join(e["content"] for e in events) == "one two"
    assert events[-1]["done"] is True
    assert events[-1]["model_used"] == "cloud_large"


async def reference_client(url, key, message):
    """The seed's reference client, as the design document has it."""
    text = ""
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/api/v1/chat/stream", json={"message": message, "stream": True},
                                headers={"Authorization": f"Bearer {key}"}) as response:
            async for line in response.content:
                line = line.decode().strip()
                if line.startswith("data:"):
                    data = line[len("data:"):].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    text += chunk["content"]
    return text


def test_aiohttp_reference_client(sluice, upstream):
    upstream.script(chunks=["Hel", "lo ", "world"])
    assert asyncio.run(reference_client(sluice.base_url, sluice.key, "hi")) == "Hello world"
    # An error is a data line too, with content, so the same loop survives it.
    assert asyncio.run(reference_client(sluice.base_url, "sk-wrong", "hi")) == ""


@needs_node
def test_eventsource_parser_reads_the_seed_stream(upstream, start_sluice):
    sluice = start_sluice(upstream, server={"heartbeat_interval_s": 1})
    upstream.script(chunks=["a", "b", "c"], chunk_delay_ms=1200)
    out = run_node("sse_reader.mjs", {"url": sluice.base_url, "key": sluice.key, "body": {"message": "abc"}})
    assert out["status"] == 200
    assert out["content_type"].startswith("text/event-stream")
    data = [e["data"] for e in out["events"]]
    assert data[-1] == "[DONE]"
    events = [json.loads(d) for d in data[:-1]]
    assert "".join(e["content"] for e in events) == "abc"
    assert events[-1]["done"] and events[-1]["finish_reason"] == "stop"
    # The gaps upstream (1.2 s, heartbeat every 1 s) show as ": ping" comments, ignored by the parser.
    assert out["comments"] >= 1

    bad = run_node("sse_reader.mjs", {"url": sluice.base_url, "key": "sk-wrong", "body": {"message": "abc"}})
    assert bad["status"] == 401
    first = json.loads(bad["events"][0]["data"])
    assert first["code"] == 401 and first["content"] == "" and first["error"]
