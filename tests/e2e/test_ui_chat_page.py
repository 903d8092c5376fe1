"""The chat page at GET /, end to end in headless Chromium (Debian's chromium driven by
playwright-core): the answer streams in, the session carries over, Stop cancels the upstream, a bad
key shows its error. Screenshots are saved and their paths printed, for a person to look at."""

import os
import urllib.request

import pytest

from clients_support import chat_turns, needs_node, run_node, wait_upstream_closed

CHROMIUM = "/usr/bin/chromium"
pytestmark = [needs_node, pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium missing: make deps")]


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return str(tmp_path_factory.mktemp("screenshots"))


def page(sluice, steps, key=None, **config):
    return run_node("chat_page.mjs", {"url": sluice.base_url + "/", "key": sluice.key if key is None else key,
                                      "steps": steps, **config})


def assistant_turns(result):
    return [t for t in result["turns"] if t["kind"] == "assistant"]


def test_page_is_served_without_a_key(sluice, upstream):
    with urllib.request.urlopen(sluice.base_url + "/", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/html")
        assert "connect-src 'self'" in r.headers["Content-Security-Policy"]
        html = r.read().decode()
    assert "<title>sluice chat</title>" in html
    assert "http://" not in html.replace("http://127", "") and "https://" not in html  # no external assets


def test_answer_streams_in_and_the_session_carries_over(sluice, upstream, shots):
    upstream.script(chunks=["Hello", " there,", " how", " can", " I", " help?"], chunk_delay_ms=150)
    shot = os.path.join(shots, "chat_page_answer.png")
    result = page(sluice, [{"do": "send", "message": "Hi, I am Ada"},
                            {"do": "send", "message": "What is my name?"},
                            {"do": "screenshot", "path": shot}], model_type="cloud_large")
    print(f"screenshot: {shot}")
    first, second = assistant_turns(result)
    assert first["text"] == "Hello there, how can I help?"
    assert first["error"] == ""
    assert "answered by cloud_large (cloud)" in first["meta"]
    assert "why:" in first["meta"]
    # Several partial texts were on screen before the whole answer: it streamed in.
    assert first["updates"] >= 3, first
    assert result["stored_key"] == sluice.key
    assert result["session"].startswith("session ")

    # The second message went out in the same session: the upstream saw the first turn.
    sent = upstream.log()[-1]["body"]["messages"]
    turns = chat_turns(sent)
    assert turns[:2] == [("user", "Hi, I am Ada"), ("assistant", "Hello there, how can I help?")]
    assert turns[-1] == ("user", "What is my name?")
    assert os.path.getsize(shot) > 0


def test_stop_cancels_the_upstream(sluice, upstream, shots):
    upstream.script(chunks=["token "] * 300, chunk_delay_ms=100)
    shot = os.path.join(shots, "chat_page_stopped.png")
    result = page(sluice, [{"do": "send", "message": "Tell me a very long story", "wait": False},
                            {"do": "wait_text", "min_chars": 12},
                            {"do": "stop"},
                            {"do": "screenshot", "path": shot}])
    print(f"screenshot: {shot}")
    turn = assistant_turns(result)[-1]
    assert turn["text"].startswith("token token")
    assert "Stopped." in turn["meta"]
    assert len(turn["text"]) < len("token ") * 300
    closed = wait_upstream_closed(upstream)
    assert closed and closed["closed_by_client"], closed


def test_bad_key_shows_the_error(sluice, upstream, shots):
    shot = os.path.join(shots, "chat_page_bad_key.png")
    result = page(sluice, [{"do": "send", "message": "hello"}, {"do": "screenshot", "path": shot}],
                  key="sk-not-a-real-key")
    print(f"screenshot: {shot}")
    turn = assistant_turns(result)[-1]
    assert turn["text"] == ""
    assert "401" in turn["error"], turn

    empty = page(sluice, [{"do": "send", "message": "hello"}], key="")
    assert "No API key" in assistant_turns(empty)[-1]["error"]
