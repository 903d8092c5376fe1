"""Session memory end to end: history reaches the model (trimmed to its context), answers are stored
whatever ended them, one turn at a time per session, and sessions belong to their key."""

import asyncio
import json

import aiohttp

from orchestrator_support import call, final_of, model_toml, session, stream, text_of, wait_until


def roles_and_contents(request_body):
    return [(m["role"], m["content"]) for m in request_body["messages"]]


def test_second_turn_reaches_the_upstream_as_user_assistant_user(upstream, sluice):
    upstream.script(chunks=["Hel", "lo"])
    assert stream(sluice, {"message": "first question", "session_id": "t1"})[0] == 200
    assert stream(sluice, {"message": "second question", "session_id": "t1"})[0] == 200
    log = upstream.log()
    assert roles_and_contents(log[0]["body"]) == [("user", "first question")]
    assert roles_and_contents(log[1]["body"]) == [
        ("user", "first question"), ("assistant", "Hello"), ("user", "second question")]


def test_system_prompt_goes_first_and_is_not_stored(upstream, start_sluice):
    s = start_sluice(upstream, server={"system_prompt": "Be terse."})
    stream(s, {"message": "q1", "session_id": "sp"})
    stream(s, {"message": "q2", "session_id": "sp"})
    assert roles_and_contents(upstream.log()[1]["body"]) == [
        ("system", "Be terse."), ("user", "q1"), ("assistant", "Hello"), ("user", "q2")]
    status, body = session(s, "sp")
    assert status == 200 and [m["role"] for m in body["messages"]] == ["user", "assistant"] * 2


def test_trimming_keeps_the_newest_turns(upstream, start_sluice):
    # Context 60 tokens, max_tokens 10: a 50-token budget. Each 40-character message costs
    # 40/4 + 4 = 14 tokens, so the new turn and one earlier exchange fit (42), two do not (70).
    s = start_sluice(None, extra_toml=model_toml("cloud", upstream.base_url, max_tokens_limit=60))
    answer = "A" * 40
    upstream.script(chunks=[answer])
    questions = [f"question number {i} " + "q" * 22 for i in range(4)]
    assert all(len(q) == 40 for q in questions)
    for q in questions:
        code, _, events = stream(s, {"message": q, "session_id": "trim", "max_tokens": 10})
        assert code == 200 and text_of(events) == answer
    last = upstream.log()[-1]["body"]
    assert roles_and_contents(last) == [("user", questions[2]), ("assistant", answer), ("user", questions[3])]
    assert last["max_tokens"] == 10 or last.get("max_completion_tokens") == 10
    # The store keeps everything; only what is sent is trimmed.
    assert len(session(s, "trim")[1]["messages"]) == 8


def test_get_session_shows_the_stored_messages(upstream, sluice):
    upstream.script(chunks=["Hel", "lo"], usage={"prompt_tokens": 12, "completion_tokens": 40})
    stream(sluice, {"message": "hi", "session_id": "g1"})
    status, body = session(sluice, "g1")
    assert status == 200 and body["session_id"] == "g1"
    user, assistant = body["messages"]
    assert user["role"] == "user" and user["content"] == "hi"
    assert assistant["role"] == "assistant" and assistant["content"] == "Hello"
    assert assistant["model"] == "cloud" and assistant["finish_reason"] == "stop"
    assert assistant["prompt_tokens"] == 12 and assistant["completion_tokens"] == 40
    assert assistant["created_ms"] > 1_600_000_000_000
    assert session(sluice, "never-made")[0] == 404


def test_delete_forgets_the_session(upstream, sluice):
    stream(sluice, {"message": "remember me", "session_id": "d1"})
    status, _, raw = call(sluice, "DELETE", "/api/v1/sessions/d1")
    assert status == 200 and json.loads(raw)["deleted"] is True
    assert session(sluice, "d1")[0] == 404
    # Continuing it starts afresh.
    stream(sluice, {"message": "who am I", "session_id": "d1"})
    assert roles_and_contents(upstream.log()[-1]["body"]) == [("user", "who am I")]
    assert call(sluice, "DELETE", "/api/v1/sessions/nothing-here")[0] == 404


def test_another_key_gets_404(upstream, sluice):
    stream(sluice, {"message": "mine", "session_id": "owned"})
    other = sluice.create_key("other")
    assert session(sluice, "owned", key=other)[0] == 404
    assert call(sluice, "DELETE", "/api/v1/sessions/owned", key=other)[0] == 404
    code, _, events = stream(sluice, {"message": "let me in", "session_id": "owned"}, key=other)
    assert code == 404 and events[0]["code"] == 404 and events[0]["session_id"] == "owned"
    assert len(upstream.log()) == 1
    # Untouched for its owner.
    status, body = session(sluice, "owned")
    assert status == 200 and [m["content"] for m in body["messages"]] == ["mine", "Hello"]


def test_cancelled_answer_is_stored_as_cancelled(upstream, sluice):
    upstream.script(chunks=["Hel"] + ["lo"] * 50, chunk_delay_ms=100)

    async def read_one_then_leave():
        async with aiohttp.ClientSession() as http:
            async with http.post(sluice.base_url + "/api/v1/chat/stream", headers=sluice.headers(),
                                 json={"message": "long one", "session_id": "c1"}) as res:
                async for line in res.content:
                    if line.startswith(b"data:"):
                        return json.loads(line[5:])

    first = asyncio.run(read_one_then_leave())
    assert first["content"] == "Hel"

    def stored():
        status, body = session(sluice, "c1")
        return body if status == 200 and len(body["messages"]) == 2 else None

    body = wait_until(stored, what="the cancelled turn to be stored")
    assistant = body["messages"][1]
    assert assistant["finish_reason"] == "cancelled"
    assert assistant["content"].startswith("Hel") and len(assistant["content"]) < len("Hel") + 2 * 50


def test_concurrent_requests_on_one_session_are_serialised(upstream, sluice):
    upstream.script(queue=[{"chunks": ["first ", "answer"], "chunk_delay_ms": 300},
                           {"chunks": ["second ", "answer"]}])

    async def run():
        async with aiohttp.ClientSession() as http:
            first_started = asyncio.Event()

            async def turn(message, signal=None):
                async with http.post(sluice.base_url + "/api/v1/chat/stream", headers=sluice.headers(),
                                     json={"message": message, "session_id": "busy"}) as res:
                    assert res.status == 200
                    events = []
                    async for line in res.content:
                        if not line.startswith(b"data:"):
                            continue
                        data = line[5:].strip()
                        if data == b"[DONE]":
                            break
                        events.append(json.loads(data))
                        if signal:
                            signal.set()
                    return events

            one = asyncio.create_task(turn("one", first_started))
            await first_started.wait()  # the first turn holds the session now
            two = asyncio.create_task(turn("two"))
            return await one, await two

    first, second = asyncio.run(run())
    assert text_of(first) == "first answer" and text_of(second) == "second answer"
    status, body = session(sluice, "busy")
    assert status == 200
    assert [(m["role"], m["content"]) for m in body["messages"]] == [
        ("user", "one"), ("assistant", "first answer"), ("user", "two"), ("assistant", "second answer")]
    # The second turn saw the whole first one.
    assert roles_and_contents(upstream.log()[1]["body"]) == [
        ("user", "one"), ("assistant", "first answer"), ("user", "two")]


def test_busy_session_gives_409_after_the_bounded_wait(upstream, start_sluice):
    s = start_sluice(upstream, extra_toml="[routing]\nsession_wait_ms = 200\n")
    upstream.script(queue=[{"hang": True}])

    async def run():
        async with aiohttp.ClientSession() as http:
            async with http.post(s.base_url + "/api/v1/chat/stream", headers=s.headers(),
                                 json={"message": "slow", "session_id": "held"}) as res:
                assert res.status == 200
                # The upstream got the first request: the session is held until it ends.
                await asyncio.get_running_loop().run_in_executor(
                    None, lambda: wait_until(lambda: len(upstream.log()) == 1, what="the first request upstream"))
                async with http.post(s.base_url + "/api/v1/chat/stream", headers=s.headers(),
                                     json={"message": "impatient", "session_id": "held"}) as busy:
                    text = await busy.text()
                    return busy.status, text

    status, text = asyncio.run(run())
    assert status == 409
    assert "session busy" in text
    # Another session is not held up.
    code, _, events = stream(s, {"message": "free", "session_id": "other"})
    assert code == 200 and final_of(events)["finish_reason"] == "stop"
