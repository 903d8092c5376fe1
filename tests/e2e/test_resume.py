"""Resumable streams (issue 16) against the real binary: a client reads half a stream, drops,
reconnects to GET /api/v1/streams/{id} with Last-Event-ID and gets the rest exactly once, in order,
and the whole text is the text of an uninterrupted run (the scripted upstream, and the local tiny
model at temperature 0). Another key's 404, the byte cap (resume.max_bytes), the keep window
(resume.keep_s) and the plain path without `resumable` unchanged. One sluice is shared by the
module."""

import json
import re
import time
import urllib.error
import urllib.request

import pytest

from clients_support import needs_node, run_node
from conftest import Sluice, Upstream
from resume_support import (Stream, check_sdk_cancel, check_sdk_resume, data_events, named_events, read_all,
                            read_then_drop, seed_text)

MAX_BYTES = 8192
KEEP_S = 2


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    up = Upstream(str(tmp_path_factory.mktemp("upstream")))
    yield up
    up.stop()


@pytest.fixture(scope="module")
def sluice(tmp_path_factory, upstream):
    """The scripted cloud model and the local tiny model, a small log bound and a short keep."""
    extra = ('[[models]]\nname = "local"\nrole = "local_small"\nprovider = "llama"\n\n'
             f"[resume]\nmax_bytes = {MAX_BYTES}\nkeep_s = {KEEP_S}\nretry_ms = 1500\n")
    s = Sluice(str(tmp_path_factory.mktemp("sluice")), upstream, server={"max_answer_bytes": 0},
               extra_toml=extra)
    yield s
    assert s.stop() == 0


@pytest.fixture(autouse=True)
def fresh_script(upstream):
    upstream.reset()


def chat(sluice, body, key=None, path="/api/v1/chat/stream", extra_headers=None):
    if path == "/api/v1/chat/stream":
        body = {"preferred_model": "cloud", **body}  # the scripted upstream, unless the test says otherwise
    return Stream(sluice, "POST", path, body, {**sluice.headers(key), **(extra_headers or {})})


def resume(sluice, stream_id, last_event_id=None, key=None):
    headers = sluice.headers(key)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    return Stream(sluice, "GET", f"/api/v1/streams/{stream_id}", headers=headers)


def metric(sluice, name):
    req = urllib.request.Request(sluice.base_url + "/metrics", headers=sluice.headers())
    text = urllib.request.urlopen(req, timeout=10).read().decode()
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def wait_until(predicate, timeout=15, what="a condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


WORDS = [f"w{i} " for i in range(30)]


def test_a_dropped_client_resumes_with_last_event_id_and_reads_the_rest_exactly_once(upstream, sluice):
    upstream.script(chunks=WORDS, chunk_delay_ms=40)
    plain = chat(sluice, {"message": "count", "session_id": "plain-1"})
    plain_events = read_all(plain)
    assert plain.status == 200 and "X-Sluice-Stream-Id" not in plain.headers
    # Without resumable nothing changes: no ids, no retry hint.
    assert not any("id" in e or "retry" in e for e in plain_events)
    assert seed_text(data_events(plain_events)) == "".join(WORDS)

    resumed_before = metric(sluice, "sluice_resumed_streams_total")
    replayed_before = metric(sluice, "sluice_replayed_events_total")
    first = chat(sluice, {"message": "count", "session_id": "resume-1", "resumable": True})
    assert first.status == 200
    stream_id = first.headers["X-Sluice-Stream-Id"]
    assert stream_id.startswith("st_")
    assert first.headers["Content-Type"] == "text/event-stream"
    head = read_then_drop(first, 10)
    assert head[0] == {"retry": "1500"}
    first_part = data_events(head)
    ids = [int(e["id"]) for e in first_part]
    assert ids == list(range(1, 11))
    time.sleep(0.5)  # the answer goes on meanwhile: part of the rest is replayed, part live

    second = resume(sluice, stream_id, last_event_id=ids[-1])
    assert second.status == 200 and second.headers["X-Sluice-Stream-Id"] == stream_id
    rest = read_all(second)
    assert rest[0] == {"retry": "1500"}
    rest_data = data_events(rest)
    assert [int(e["id"]) for e in rest_data] == list(range(11, 11 + len(rest_data)))
    assert rest_data[-1]["data"] == "[DONE]"
    final = json.loads(rest_data[-2]["data"])
    assert final["done"] is True and final["finish_reason"] == "stop"
    assert seed_text(first_part) + seed_text(rest_data) == "".join(WORDS)
    assert metric(sluice, "sluice_resumed_streams_total") == resumed_before + 1
    assert metric(sluice, "sluice_replayed_events_total") > replayed_before
    # The one upstream request served both connections.
    assert len(upstream.log()) == 2


@needs_node
@pytest.mark.parametrize("client", ["eventsource", "fetch-event-source"])
def test_eventsource_clients_resume_with_the_last_event_id_and_read_every_event_once(upstream, sluice, client):
    upstream.script(chunks=WORDS, chunk_delay_ms=40)
    first = chat(sluice, {"message": "count", "resumable": True})
    stream_id = first.headers["X-Sluice-Stream-Id"]
    first_part = data_events(read_then_drop(first, 7))
    last_id = int(first_part[-1]["id"])
    out = run_node("eventsource_resume.mjs", {"url": sluice.base_url, "key": sluice.key, "stream_id": stream_id,
                                              "last_event_id": last_id, "client": client})
    assert out["opens"] == 1 and out["sent_last_event_id"] == [str(last_id)], out
    rest = out["events"]
    # Every event after the one it had, exactly once and in order, each with its id; then [DONE].
    assert [int(e["id"]) for e in rest] == list(range(last_id + 1, last_id + 1 + len(rest)))
    assert rest[-1]["data"] == "[DONE]"
    assert json.loads(rest[-2]["data"])["done"] is True
    assert seed_text(first_part) + seed_text(rest) == "".join(WORDS)


def test_the_local_model_at_temperature_0_resumes_to_the_same_text(sluice):
    body = {"message": "tell me a story", "preferred_model": "local", "temperature": 0, "max_tokens": 48}
    plain = read_all(chat(sluice, body))
    expected = seed_text(data_events(plain))
    assert expected
    first = chat(sluice, {**body, "resumable": True})
    stream_id = first.headers["X-Sluice-Stream-Id"]
    head = data_events(read_then_drop(first, 3))
    rest = data_events(read_all(resume(sluice, stream_id, last_event_id=head[-1]["id"])))
    assert [int(e["id"]) for e in head + rest] == list(range(1, len(head) + len(rest) + 1))
    assert seed_text(head) + seed_text(rest) == expected
    # From the start (no Last-Event-ID): the whole stream again, while the log lives.
    again = data_events(read_all(resume(sluice, stream_id)))
    assert seed_text(again) == expected and again[-1]["data"] == "[DONE]"


def test_openai_chat_completions_resumes_with_the_header_and_keeps_the_member_from_the_upstream(upstream, sluice):
    upstream.script(chunks=WORDS[:12], chunk_delay_ms=30)
    body = {"model": "cloud", "stream": True, "messages": [{"role": "user", "content": "count"}]}
    first = chat(sluice, body, path="/v1/chat/completions", extra_headers={"X-Sluice-Resumable": "1"})
    assert first.status == 200
    stream_id = first.headers["X-Sluice-Stream-Id"]
    head = data_events(read_then_drop(first, 4))
    rest = data_events(read_all(resume(sluice, stream_id, last_event_id=head[-1]["id"])))
    chunks = [json.loads(e["data"]) for e in head + rest if e["data"] != "[DONE]"]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "".join(WORDS[:12])
    assert rest[-1]["data"] == "[DONE]"
    # The body member works too, and sluice's own member never reaches the upstream.
    read_all(chat(sluice, {**body, "resumable": True}, path="/v1/chat/completions"))
    assert all("resumable" not in entry["body"] for entry in upstream.log())
    bad = chat(sluice, {**body, "resumable": "yes"}, path="/v1/chat/completions")
    assert bad.status == 400 and "resumable" in json.loads(bad.res.read())["error"]["message"]
    bad.close()


def test_only_the_key_that_made_a_stream_may_resume_it(upstream, sluice):
    other = sluice.create_key("other")
    upstream.script(chunks=WORDS[:5])
    first = chat(sluice, {"message": "mine", "resumable": True})
    stream_id = first.headers["X-Sluice-Stream-Id"]
    read_all(first)
    theirs = resume(sluice, stream_id, last_event_id=1, key=other)
    assert theirs.status == 404
    assert json.loads(data_events(read_all(theirs))[0]["data"])["code"] == 404
    nowhere = resume(sluice, "st_nothing_here", last_event_id=1)
    assert nowhere.status == 404
    nowhere.close()
    bad = resume(sluice, stream_id, last_event_id="seven")
    assert bad.status == 400
    assert "Last-Event-ID" in json.loads(data_events(read_all(bad))[0]["data"])["error"]
    beyond = resume(sluice, stream_id, last_event_id=999)
    assert beyond.status == 410
    beyond.close()
    mine = resume(sluice, stream_id, last_event_id=1)
    assert mine.status == 200 and data_events(read_all(mine))[-1]["data"] == "[DONE]"


def test_past_the_byte_cap_the_stream_says_it_is_no_longer_resumable(upstream, sluice):
    words = [f"{i:04d}" + "x" * 36 for i in range(300)]  # ~30 KB of events, past MAX_BYTES
    upstream.script(chunks=words)
    first = chat(sluice, {"message": "a long one", "resumable": True})
    stream_id = first.headers["X-Sluice-Stream-Id"]
    events = read_all(first)
    # The live reader still gets every event, once, and is told the stream cannot be resumed.
    assert seed_text(data_events(events)) == "".join(words)
    notices = [e for e in events if "no longer resumable" in e.get("comment", "")]
    assert len(notices) == 1
    late = resume(sluice, stream_id, last_event_id=5)
    assert late.status == 410
    assert "resume.max_bytes" in json.loads(data_events(read_all(late))[0]["data"])["error"]
    # Below the cap a stream stays resumable.
    upstream.script(chunks=words[:20])
    small = chat(sluice, {"message": "a short one", "resumable": True})
    small_id = small.headers["X-Sluice-Stream-Id"]
    read_all(small)
    again = resume(sluice, small_id, last_event_id=5)
    assert again.status == 200 and data_events(read_all(again))[-1]["data"] == "[DONE]"


def test_a_client_that_never_comes_back_cancels_the_answer_after_keep_s(upstream, sluice):
    upstream.script(chunks=WORDS, chunk_delay_ms=500)  # 15 s: far longer than the keep window
    first = chat(sluice, {"message": "slow", "session_id": "keep-1", "resumable": True})
    read_then_drop(first, 2)
    left = time.monotonic()

    def closed():
        log = upstream.log()
        return log and log[-1]["t_closed"] is not None

    wait_until(closed, timeout=KEEP_S + 8, what="the upstream to be closed")
    waited = time.monotonic() - left
    assert KEEP_S - 0.5 <= waited <= KEEP_S + 5

    def stored():
        req = urllib.request.Request(sluice.base_url + "/api/v1/sessions/keep-1", headers=sluice.headers())
        try:
            body = json.loads(urllib.request.urlopen(req, timeout=10).read())
        except urllib.error.HTTPError:
            return None
        return body if len(body["messages"]) == 2 else None

    assistant = wait_until(stored, what="the cancelled turn to be stored")["messages"][1]
    assert assistant["finish_reason"] == "cancelled"
    assert assistant["content"].startswith("w0 w1 ") and len(assistant["content"]) < len("".join(WORDS))


# --- the Responses API: background, retrieve, starting_after, cancel ---------------------------------

def call(sluice, method, path, body=None, key=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(sluice.base_url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", **sluice.headers(key)})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_a_background_response_runs_on_and_replays_after_a_sequence_number(upstream, sluice):
    upstream.script(chunks=WORDS[:16], chunk_delay_ms=60)
    status, created = call(sluice, "POST", "/v1/responses", {"model": "cloud", "input": "count", "background": True})
    assert status == 200 and created["status"] == "queued" and created["background"] is True
    rid = created["id"]
    status, running = call(sluice, "GET", f"/v1/responses/{rid}")
    assert status == 200 and running["status"] == "in_progress"
    assert call(sluice, "GET", f"/v1/responses/{rid}", key=sluice.create_key("nosy"))[0] == 404
    # A reader from the start: every event, sequence numbers 0, 1, 2... and the end.
    whole = named_events(read_all(Stream(sluice, "GET", f"/v1/responses/{rid}?stream=true",
                                         headers=sluice.headers())))
    assert [e["sequence_number"] for e in whole] == list(range(len(whole)))
    assert whole[-1]["type"] == "response.completed"
    text = "".join(e["delta"] for e in whole if e["type"] == "response.output_text.delta")
    assert text == "".join(WORDS[:16])
    # After sequence number 5: the rest exactly once.
    rest = named_events(read_all(Stream(sluice, "GET", f"/v1/responses/{rid}?stream=true&starting_after=5",
                                        headers=sluice.headers())))
    assert [e["sequence_number"] for e in rest] == list(range(6, len(whole)))
    status, done = call(sluice, "GET", f"/v1/responses/{rid}")
    assert status == 200 and done["status"] == "completed"
    assert done["output"][0]["content"][0]["text"] == "".join(WORDS[:16])
    # One upstream request, whoever read it.
    assert len(upstream.log()) == 1


def test_cancel_stops_a_background_response_and_keeps_its_partial_output(upstream, sluice):
    upstream.script(chunks=WORDS, chunk_delay_ms=200)  # 6 s
    status, created = call(sluice, "POST", "/v1/responses", {"model": "cloud", "input": "count", "background": True})
    rid = created["id"]
    time.sleep(1.0)
    status, cancelled = call(sluice, "POST", f"/v1/responses/{rid}/cancel")
    assert status == 200 and cancelled["status"] == "cancelled"
    partial = cancelled["output"][0]["content"][0]["text"]
    assert partial.startswith("w0 ") and len(partial) < len("".join(WORDS))
    entry = upstream.log()[-1]
    assert wait_until(lambda: upstream.log()[-1]["t_closed"] is not None, what="the upstream to be closed")
    assert entry["path"].endswith("/chat/completions")
    assert call(sluice, "GET", f"/v1/responses/{rid}")[1]["status"] == "cancelled"
    # A finished response is answered as it is.
    assert call(sluice, "POST", f"/v1/responses/{rid}/cancel")[1]["status"] == "cancelled"
    assert call(sluice, "POST", "/v1/responses/resp_nothing/cancel")[0] == 404
    bad = call(sluice, "POST", "/v1/responses", {"model": "cloud", "input": "x", "background": True, "store": False})
    assert bad[0] == 400 and "store" in bad[1]["error"]["message"]


@needs_node
def test_the_openai_sdk_resumes_retrieves_and_cancels_background_responses(upstream, sluice):
    upstream.script(chunks=WORDS[:20], chunk_delay_ms=50)
    got = run_node("responses_background.mjs", {"base_url": sluice.base_url + "/v1", "key": sluice.key,
                                                "model": "cloud", "steps": ["resume_stream"]})
    check_sdk_resume(got["resume_stream"], WORDS[:20])
    upstream.script(chunks=["Hel", "lo"])
    got = run_node("responses_background.mjs", {"base_url": sluice.base_url + "/v1", "key": sluice.key,
                                                "model": "cloud", "steps": ["retrieve_until_done"]})
    done = got["retrieve_until_done"]
    assert done["created_status"] == "queued" and done["status"] == "completed" and done["output_text"] == "Hello"
    upstream.script(chunks=WORDS, chunk_delay_ms=200)
    got = run_node("responses_background.mjs", {"base_url": sluice.base_url + "/v1", "key": sluice.key,
                                                "model": "cloud", "steps": ["cancel"]})
    check_sdk_cancel(got["cancel"], WORDS)


def test_shutdown_cuts_a_resumable_stream_that_has_no_client_and_stores_it(upstream, start_sluice):
    """SIGTERM while a resumable answer runs on with no client: it gets the grace like any stream,
    then is cut, its partial answer stored, and the process exits 0."""
    s = start_sluice(upstream, server={"shutdown_grace_s": 1})
    upstream.script(chunks=WORDS, chunk_delay_ms=300)  # 9 s: longer than the grace
    read_then_drop(chat(s, {"message": "slow", "session_id": "cut-1", "resumable": True}), 2)
    started = time.monotonic()
    assert s.stop(timeout=15) == 0
    assert time.monotonic() - started < 8
    assert re.search(r"chat key=\S+ session=cut-1 model=cloud finish=cancelled .* resumable error: server shutting down",
                     s.log_text()), s.log_text()[-2000:]
