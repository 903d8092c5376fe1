"""Per-key limits end to end (requests and tokens per minute, concurrent streams) and the usage
ledger behind GET /api/v1/usage, on the real binary with its SQLite store."""

import asyncio
import json

import aiohttp

from store_support import (create_key, data_events, fresh_rate_window, request, sluice_cli, stream,
                           usage_totals, wait_until)


def assert_rate_limited(status, headers, events, limit_name):
    assert status == 429, events
    retry_after = int(headers["retry-after"])
    assert 1 <= retry_after <= 60
    # The error is in the first data chunk, in the shape every seed event has.
    assert len(events) == 1
    assert events[0]["code"] == 429
    assert events[0]["content"] == ""
    assert limit_name in events[0]["error"]


def test_requests_per_minute(upstream, sluice):
    key, _ = create_key(sluice.config_path, rpm=3)
    fresh_rate_window()
    for i in range(3):
        status, _, events = stream(sluice.base_url, key, f"n{i}")
        assert status == 200, events
        assert events[-1]["done"] is True
    status, headers, events = stream(sluice.base_url, key, "one too many", session_id="s-rpm")
    assert_rate_limited(status, headers, events, "requests_per_minute")
    assert events[0]["session_id"] == "s-rpm"
    # The refused request never reached the model.
    assert len(upstream.log()) == 3
    # Another key is not affected by this key's limit.
    status, _, _ = stream(sluice.base_url, sluice.key)
    assert status == 200


def test_requests_per_minute_from_config_defaults(upstream, start_sluice):
    s = start_sluice(upstream, extra_toml="[limits]\nrequests_per_minute = 2\n")
    fresh_rate_window()
    assert stream(s.base_url, s.key)[0] == 200
    assert stream(s.base_url, s.key)[0] == 200
    status, headers, events = stream(s.base_url, s.key)
    assert_rate_limited(status, headers, events, "requests_per_minute")
    # POST /api/v1/chat answers the same limit as one JSON error.
    status, headers, text = request(s.base_url, "POST", "/api/v1/chat", s.key, {"message": "hi"})
    assert status == 429
    assert int(headers["retry-after"]) >= 1
    assert json.loads(text)["code"] == 429


def test_tokens_per_minute(upstream, sluice):
    key, _ = create_key(sluice.config_path, tpm=10)
    upstream.script(chunks=["a", "b"], usage={"prompt_tokens": 3, "completion_tokens": 6})
    fresh_rate_window()
    assert stream(sluice.base_url, key)[0] == 200  # 6 of 10
    assert stream(sluice.base_url, key)[0] == 200  # 12: the window is spent from here
    status, headers, events = stream(sluice.base_url, key)
    assert_rate_limited(status, headers, events, "tokens_per_minute")
    assert len(upstream.log()) == 2


async def _cancel_after_first_chunk(url, key):
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/api/v1/chat/stream", json={"message": "stop me"},
                                headers={"Authorization": f"Bearer {key}"}) as res:
            assert res.status == 200
            line = await res.content.readline()
            assert line.startswith(b"data:")
        # Leaving the block closes the connection in the middle of the stream.


def test_tokens_per_minute_counts_cancelled_partial_answers(upstream, sluice):
    key, _ = create_key(sluice.config_path, tpm=1)
    # The client leaves after the first delta while the answer is still streaming.
    upstream.script(queue=[{"chunks": ["one two three "] + ["x "] * 50, "chunk_delay_ms": 100}])
    fresh_rate_window()
    asyncio.run(_cancel_after_first_chunk(sluice.base_url, key))
    wait_until(lambda: usage_totals(sluice.base_url, key)["totals"]["cancelled"] == 1, 10,
               "the cancelled stream in the ledger")
    assert usage_totals(sluice.base_url, key)["totals"]["completion_tokens"] >= 1
    # What streamed before the cancel counts against tokens per minute.
    status, headers, events = stream(sluice.base_url, key)
    assert_rate_limited(status, headers, events, "tokens_per_minute")


async def _concurrent_streams(base_url, key, upstream):
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as session:

        async def hold_stream():
            async with session.post(base_url + "/api/v1/chat/stream", json={"message": "slow"},
                                    headers=headers) as res:
                await res.read()

        first = asyncio.ensure_future(hold_stream())
        # The first stream holds its slot once it has reached the (hanging) upstream.
        while not upstream.log():
            await asyncio.sleep(0.02)
        async with session.post(base_url + "/api/v1/chat/stream", json={"message": "second"},
                                headers=headers) as second:
            assert second.status == 429
            assert int(second.headers["Retry-After"]) >= 1
            events = data_events(await second.text())
            assert events[0]["code"] == 429 and "max_concurrent_streams" in events[0]["error"]
        assert len(upstream.log()) == 1
        # The first stream ends (its client leaves).
        first.cancel()
        try:
            await first
        except asyncio.CancelledError:
            pass


def test_max_concurrent_streams(upstream, sluice):
    key, _ = create_key(sluice.config_path, max_streams=1)
    upstream.script(queue=[{"hang": True}])
    asyncio.run(_concurrent_streams(sluice.base_url, key, upstream))
    # The slot is freed before the outcome is recorded, so once the ledger has the cancel the
    # next stream must pass.
    wait_until(lambda: usage_totals(sluice.base_url, key)["totals"]["cancelled"] == 1, 10,
               "the cancelled stream in the ledger")
    status, _, events = stream(sluice.base_url, key)
    assert status == 200, events
    # A stream that ends normally frees its slot before [DONE]: back-to-back streams all pass.
    for _ in range(3):
        status, _, events = stream(sluice.base_url, key)
        assert status == 200, events


def test_usage_reflects_requests_tokens_cancels_and_errors(upstream, sluice):
    key, key_id = create_key(sluice.config_path)
    upstream.script(queue=[{"usage": {"prompt_tokens": 7, "completion_tokens": 4}},
                           {"usage": {"prompt_tokens": 9, "completion_tokens": 5}},
                           {"status": 500}])
    assert stream(sluice.base_url, key)[0] == 200
    assert request(sluice.base_url, "POST", "/api/v1/chat", key, {"message": "whole"})[0] == 200
    status, _, events = stream(sluice.base_url, key)
    assert events[0].get("error"), events
    body = usage_totals(sluice.base_url, key)
    assert body["key_id"] == key_id
    assert [row["model"] for row in body["usage"]] == ["cloud"]
    row = body["usage"][0]
    assert row["requests"] == 3
    assert row["prompt_tokens"] >= 16
    assert row["completion_tokens"] >= 9
    assert row["errors"] == 1
    assert row["cancelled"] == 0
    # Another key sees only its own (empty) ledger.
    other = usage_totals(sluice.base_url, sluice.key)
    assert other["usage"] == [] and other["totals"]["requests"] == 0
    # And the CLI reads the same ledger.
    out = sluice_cli(sluice.config_path, "usage", "--key", key_id, "--json")
    assert out.returncode == 0, out.stderr
    assert key_id in out.stdout


def test_usage_needs_a_key(sluice):
    status, _, _ = request(sluice.base_url, "GET", "/api/v1/usage")
    assert status == 401


def test_openai_endpoint_is_limited_the_same_way(upstream, sluice):
    key, _ = create_key(sluice.config_path, rpm=2)
    fresh_rate_window()
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    status, _, text = request(sluice.base_url, "POST", "/v1/chat/completions", key, body)
    if status == 404 and "no such endpoint" in text:
        return  # this build has no OpenAI surface yet
    assert status == 200, text
    # The seed and OpenAI endpoints share one budget per key.
    assert stream(sluice.base_url, key)[0] == 200
    for streaming in (False, True):
        status, headers, text = request(sluice.base_url, "POST", "/v1/chat/completions", key,
                                        {**body, "stream": streaming})
        assert status == 429, text
        assert 1 <= int(headers["retry-after"]) <= 60
        if headers.get("content-type", "").startswith("text/event-stream"):
            text = next(line[len("data:"):].strip() for line in text.splitlines() if line.startswith("data:"))
        error = json.loads(text)["error"]
        assert "requests_per_minute" in error["message"]
        assert error["type"] and error["code"]
