"""POST /api/v1/chat/stream end to end: the real sluice binary in front of the scripted upstream."""

import asyncio
import json
import re
import socket
import time

import aiohttp

ROUTE = r'"route":\{"reason":"[a-z_:]+","score":[-0-9.eE+]+\}'


def raw_request(port, body, key, path="/api/v1/chat/stream", extra_headers=""):
    """One HTTP/1.1 request on a fresh socket (Connection: close); returns the raw response bytes."""
    payload = json.dumps(body).encode() if not isinstance(body, (bytes, bytearray)) else bytes(body)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n"
            f"{extra_headers}\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head + payload)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def split_response(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def dechunk(body):
    """The chunks of a chunked body, each as bytes (the terminating empty chunk excluded)."""
    chunks = []
    while True:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return chunks
        chunks.append(rest[:size])
        assert rest[size:size + 2] == b"\r\n"
        body = rest[size + 2:]


def test_event_format_byte_for_byte(upstream, sluice):
    upstream.script(chunks=["Hel", "lo"], usage={"prompt_tokens": 12, "completion_tokens": 40})
    raw = raw_request(sluice.port, {"message": "hi", "session_id": "s1"}, sluice.key)
    status, headers, body = split_response(raw)
    assert status == 200
    assert headers["content-type"] == "text/event-stream"
    assert headers["cache-control"] == "no-cache"
    assert headers["x-accel-buffering"] == "no"
    assert headers["transfer-encoding"] == "chunked"
    assert "cloud_large" in headers["x-sluice-route"] and "cloud" in headers["x-sluice-route"]
    chunks = dechunk(body)
    # One event per chunk, in SPEC §3's exact shape.
    assert chunks[0] == b'data: {"content":"Hel","session_id":"s1","model_used":"cloud_large","model":"cloud"}\n\n'
    assert chunks[1] == b'data: {"content":"lo","session_id":"s1","model_used":"cloud_large","model":"cloud"}\n\n'
    assert re.fullmatch(
        rb'data: \{"content":"","session_id":"s1","model_used":"cloud_large","model":"cloud","done":true,'
        rb'"finish_reason":"stop","usage":\{"prompt_tokens":12,"completion_tokens":40\},' + ROUTE.encode() +
        rb'\}\n\n', chunks[2]), chunks[2]
    assert chunks[3] == b"data: [DONE]\n\n"
    assert len(chunks) == 4


def test_new_session_id_when_none_given(upstream, sluice):
    raw = raw_request(sluice.port, {"message": "hi"}, sluice.key)
    status, _, body = split_response(raw)
    assert status == 200
    first = json.loads(dechunk(body)[0][len(b"data: "):])
    assert re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", first["session_id"])


async def _read_lines(response):
    lines = []
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        lines.append(line)
        if line == "data: [DONE]":
            break
    return lines


def test_heartbeats_while_waiting_for_the_first_token(upstream, start_sluice):
    s = start_sluice(upstream, server={"heartbeat_interval_s": 1})
    upstream.script(chunks=["late"], first_byte_delay_ms=3000)

    async def run():
        async with aiohttp.ClientSession() as http:
            async with http.post(s.base_url + "/api/v1/chat/stream", json={"message": "hi"},
                                 headers=s.headers()) as response:
                assert response.status == 200
                return await _read_lines(response)

    lines = asyncio.run(run())
    first_data = next(i for i, line in enumerate(lines) if line.startswith("data:"))
    assert lines[:first_data].count(": ping") >= 2, lines
    assert json.loads(lines[first_data][len("data: "):])["content"] == "late"
    assert lines[-1] == "data: [DONE]"


def test_client_disconnect_closes_the_upstream_at_once(upstream, sluice):
    upstream.script(chunks=["a", "b", "c", "d", "e", "f"], chunk_delay_ms=400)
    with socket.create_connection(("127.0.0.1", sluice.port), timeout=30) as s:
        payload = json.dumps({"message": "hi", "session_id": "cut1"}).encode()
        s.sendall((f"POST /api/v1/chat/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sluice.key}\r\n"
                   f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload)
        received = b""
        while b'"content":"a"' not in received:
            data = s.recv(4096)
            assert data, received
            received += data
        s.shutdown(socket.SHUT_RDWR)
        closed_at = time.monotonic()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        log = upstream.log()
        if log and log[-1]["t_closed"] is not None:
            break
        time.sleep(0.02)
    entry = upstream.log()[-1]
    assert entry["closed_by_client"], entry
    assert entry["t_closed"] - closed_at < 0.1, entry["t_closed"] - closed_at

    # What was generated so far stays in the session, so the conversation can go on from it.
    upstream.script(chunks=["ok"], chunk_delay_ms=0)
    raw = raw_request(sluice.port, {"message": "again", "session_id": "cut1"}, sluice.key)
    assert split_response(raw)[0] == 200
    messages = upstream.log()[-1]["body"]["messages"]
    assert [m["role"] for m in messages[-3:]] == ["user", "assistant", "user"]
    assert messages[-3]["content"] == "hi" and messages[-2]["content"].startswith("a")
    assert sluice.alive()


def test_upstream_500_before_the_first_token_is_a_502(upstream, sluice):
    upstream.script(status=500)
    raw = raw_request(sluice.port, {"message": "hi", "session_id": "e1"}, sluice.key)
    status, headers, body = split_response(raw)
    assert status == 502
    assert headers["content-type"] == "text/event-stream"
    if headers.get("transfer-encoding") == "chunked":
        body = b"".join(dechunk(body))
    events = body.decode().split("\n\n")
    assert events[1:] == ["data: [DONE]", ""], events
    error = json.loads(events[0][len("data: "):])
    assert error["code"] == 502 and error["error"] and error["content"] == "" and error["session_id"] == "e1"


def test_reset_mid_stream_is_an_error_event_then_done(upstream, sluice):
    upstream.script(chunks=["a", "b", "c"], reset_after=1)
    raw = raw_request(sluice.port, {"message": "hi", "session_id": "r1"}, sluice.key)
    status, _, body = split_response(raw)
    assert status == 200
    chunks = dechunk(body)
    assert json.loads(chunks[0][len(b"data: "):])["content"] == "a"
    error = json.loads(chunks[-2][len(b"data: "):])
    assert error["code"] >= 500 and error["error"] and error["content"] == ""
    assert chunks[-1] == b"data: [DONE]\n\n"


def test_reference_aiohttp_client_reads_the_whole_stream(upstream, sluice):
    upstream.script(chunks=["Hel", "lo", " world"])
    printed = []

    # The SPEC's reference client, as users write it.
    async def chat(message):
        async with aiohttp.ClientSession() as session:
            async with session.post(sluice.base_url + "/api/v1/chat/stream", json={"message": message, "stream": True},
                                    headers={"Authorization": f"Bearer {sluice.key}"}) as response:
                async for line in response.content:
                    line = line.decode("utf-8").strip()
                    if line.startswith("data:"):
                        data = line[5:].strip()
                        if data == "[DONE]":
                            break
                        chunk = json.loads(data)
                        printed.append(chunk["content"])

    asyncio.run(chat("hi"))
    assert "".join(printed) == "Hello world"


def test_keep_alive_carries_several_streams(upstream, sluice):
    async def run():
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as http:
            texts = []
            for i in range(3):
                async with http.post(sluice.base_url + "/api/v1/chat/stream", json={"message": f"m{i}"},
                                     headers=sluice.headers()) as response:
                    lines = await _read_lines(response)
                    texts.append("".join(json.loads(l[6:])["content"] for l in lines
                                         if l.startswith("data: {")))
            return texts

    assert asyncio.run(run()) == ["Hello"] * 3


def test_chat_json_and_stream_flag(upstream, sluice):
    async def run():
        async with aiohttp.ClientSession() as http:
            async with http.post(sluice.base_url + "/api/v1/chat", json={"message": "hi", "session_id": "j1"},
                                 headers=sluice.headers()) as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "application/json"
                body = await response.json()
            async with http.post(sluice.base_url + "/api/v1/chat", json={"message": "hi", "stream": True},
                                 headers=sluice.headers()) as response:
                assert response.headers["Content-Type"] == "text/event-stream"
                lines = await _read_lines(response)
            return body, lines

    body, lines = asyncio.run(run())
    assert body["content"] == "Hello" and body["session_id"] == "j1"
    assert body["model_used"] == "cloud_large" and body["model"] == "cloud" and body["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 5, "completion_tokens": 2} and "reason" in body["route"]
    assert lines[-1] == "data: [DONE]"


def test_session_memory_and_ownership(upstream, sluice):
    raw_request(sluice.port, {"message": "first", "session_id": "mem1"}, sluice.key)
    raw_request(sluice.port, {"message": "second", "session_id": "mem1"}, sluice.key)
    messages = upstream.log()[-1]["body"]["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "first"), ("assistant", "Hello"), ("user", "second")]

    other = sluice.create_key("other")
    raw = raw_request(sluice.port, {"message": "steal", "session_id": "mem1"}, other)
    status, _, body = split_response(raw)
    assert status == 404
    assert b'"code":404' in body


def test_sigterm_lets_a_running_stream_finish(upstream, sluice):
    upstream.script(chunks=["a", "b", "c"], chunk_delay_ms=300)

    async def run():
        async with aiohttp.ClientSession() as http:
            async with http.post(sluice.base_url + "/api/v1/chat/stream", json={"message": "hi"},
                                 headers=sluice.headers()) as response:
                lines = []
                async for raw in response.content:
                    line = raw.decode().rstrip("\n")
                    lines.append(line)
                    if line.startswith("data: {") and len(lines) == 1:
                        sluice.proc.send_signal(15)
                    if line == "data: [DONE]":
                        break
                return lines

    lines = asyncio.run(run())
    text = "".join(json.loads(l[6:])["content"] for l in lines if l.startswith("data: {"))
    assert text == "abc" and lines[-1] == "data: [DONE]"
    assert sluice.proc.wait(15) == 0
