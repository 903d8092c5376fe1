"""The answer's caps end to end: an upstream that ignores max_tokens (or sends a huge answer) is cut at
the request's max_tokens (estimated at 4 bytes a token) and at server.max_answer_bytes: the upstream
is closed and the answer, streamed and stored, finishes with finish_reason "length". One server for
the module (max_answer_bytes = 64 KiB)."""

import json

import pytest

from conftest import Sluice, Upstream
from store_support import data_events, request, wait_until

MAX_ANSWER_BYTES = 65536


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("caps")
    up = Upstream(str(workdir))
    s = Sluice(str(workdir), up, server={"max_answer_bytes": MAX_ANSWER_BYTES})
    yield up, s
    code = s.stop()
    up.stop()
    assert code == 0, s.log_text()[-4000:]


def run(served, chunks, max_tokens, session_id, delay_ms=2, path="/api/v1/chat/stream"):
    up, s = served
    up.reset()
    up.script(chunks=chunks, chunk_delay_ms=delay_ms)
    status, _, text = request(s.base_url, "POST", path, s.key,
                              {"message": "go on", "max_tokens": max_tokens, "session_id": session_id},
                              timeout=60)
    assert status == 200, text
    if path.endswith("stream"):
        events = data_events(text)
        content = "".join(e["content"] for e in events)
        final = events[-1]
        assert final["done"] is True, final
    else:
        final = json.loads(text)
        content = final["content"]
    status, _, stored = request(s.base_url, "GET", f"/api/v1/sessions/{session_id}", s.key)
    assert status == 200, stored
    answer = json.loads(stored)["messages"][-1]
    assert answer["role"] == "assistant" and answer["content"] == content
    return content, final, up


def upstream_closed_early(up):
    entry = wait_until(lambda: [e for e in up.log() if e.get("t_end")], 10, "the upstream's end")[-1]
    return bool(entry.get("closed_by_client"))


def test_past_max_tokens_the_upstream_is_cut_and_the_answer_finishes_with_length(served):
    content, final, up = run(served, ["abcd"] * 400, 50, "tokens-over")
    assert final["finish_reason"] == "length", final
    # Each delta is about one token: the cap lets max_tokens through, and one more at most.
    assert 50 * 4 <= len(content) <= 51 * 4, len(content)
    assert upstream_closed_early(up)


def test_within_max_tokens_the_whole_answer_arrives(served):
    content, final, up = run(served, ["abcd"] * 400, 500, "tokens-within")
    assert final["finish_reason"] == "stop", final
    assert content == "abcd" * 400
    assert not upstream_closed_early(up)


def test_past_max_answer_bytes_the_answer_is_cut_at_the_limit(served):
    content, final, up = run(served, ["y" * 8192] * 32, 100000, "bytes-over", delay_ms=20)
    assert final["finish_reason"] == "length", final
    assert content == "y" * MAX_ANSWER_BYTES
    assert upstream_closed_early(up)


def test_within_max_answer_bytes_the_whole_answer_arrives(served):
    content, final, _ = run(served, ["y" * 8192] * 7, 100000, "bytes-within")
    assert final["finish_reason"] == "stop", final
    assert len(content) == 7 * 8192


def test_a_whole_answer_is_capped_too(served):
    content, final, _ = run(served, ["y" * 8192] * 32, 100000, "bytes-whole", path="/api/v1/chat")
    assert final["finish_reason"] == "length", final
    assert len(content) == MAX_ANSWER_BYTES
