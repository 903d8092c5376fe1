"""The scripted upstream alone (no sluice), driven by the official `openai` and `@anthropic-ai/sdk` npm
SDKs: its tool calls, reasoning and count_tokens are shaped exactly as the SDKs expect, so tests of
sluice's tool calling can trust it. One upstream for the module; each test resets it."""

import http.client
import json
import urllib.error
import urllib.request

import pytest

from clients_support import needs_node, run_node
from conftest import Upstream

pytestmark = needs_node

WEATHER_PARIS = {"id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'}
WEATHER_BERLIN = {"id": "call_2", "name": "get_weather", "arguments": '{"city":"Berlin","unit":"celsius"}'}
THINKING = {"text": "The user wants the weather, so I call the tool.", "signature": "sig-EqQBCgIYAhIM"}


@pytest.fixture(scope="module")
def module_upstream(tmp_path_factory):
    up = Upstream(str(tmp_path_factory.mktemp("upstream")))
    yield up
    up.stop()


@pytest.fixture
def up(module_upstream):
    module_upstream.reset()
    return module_upstream


def sdk(up, steps, **config):
    return run_node("sdk_tools.mjs", {"base_url": up.base_url, "key": "sk-test", "steps": steps, **config})


def ok(result):
    assert "error" not in result, result
    return result


def post(up, path, body):
    req = urllib.request.Request(up.base_url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def tool_deltas(chunks):
    return [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks
            if c["choices"] and c["choices"][0]["delta"].get("tool_calls")]


def test_openai_stream_parallel_tool_calls(up):
    up.script(chunks=[], tool_calls=[WEATHER_PARIS, WEATHER_BERLIN], usage={"prompt_tokens": 30, "completion_tokens": 12})
    out = sdk(up, ["openai_stream_helper", "openai_chunks"])

    helper = ok(out["openai_stream_helper"])
    choice = helper["final"]["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_2", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city":"Berlin","unit":"celsius"}'}},
    ]
    assert helper["final"]["usage"] == {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}
    assert helper["arguments_done"] == [
        {"index": 0, "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"index": 1, "name": "get_weather", "arguments": '{"city":"Berlin","unit":"celsius"}'},
    ]
    # The arguments arrived in several pieces of at most 8 characters (arguments_split's default).
    pieces = [d["delta"] for d in helper["argument_deltas"] if d["delta"]]
    assert len(pieces) == 2 + 5 and max(len(p) for p in pieces) == 8

    chunks = ok(out["openai_chunks"])["chunks"]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    deltas = tool_deltas(chunks)
    assert deltas[0] == {"index": 0, "id": "call_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": ""}}
    starts = [d for d in deltas if "id" in d]
    assert [d["index"] for d in starts] == [0, 1]
    for d in deltas:
        if "id" not in d:
            assert set(d) == {"index", "function"} and set(d["function"]) == {"arguments"}
    for index, call in enumerate([WEATHER_PARIS, WEATHER_BERLIN]):
        assert "".join(d["function"]["arguments"] for d in deltas if d["index"] == index) == call["arguments"]
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finish) == 1 and finish[0]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "tool_calls"}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 42
    assert chunks.index(finish[0]) == len(chunks) - 2


def test_openai_text_reasoning_then_call_and_whole(up):
    script = {"chunks": ["Let me ", "check."], "thinking": THINKING, "tool_calls": [WEATHER_PARIS],
              "arguments_split": 0}
    up.script(queue=[script, script, script])
    out = sdk(up, ["openai_chunks", "openai_stream_helper", "openai_completion"])

    chunks = ok(out["openai_chunks"])["chunks"]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    reasoning = [d["reasoning_content"] for d in deltas if "reasoning_content" in d]
    assert len(reasoning) > 1 and "".join(reasoning) == THINKING["text"]
    order = [next(k for k in ("reasoning_content", "content", "tool_calls") if k in d) for d in deltas[1:-1]]
    assert order == ["reasoning_content"] * len(reasoning) + ["content"] * 2 + ["tool_calls"] * 2
    # arguments_split 0: the first delta names the call, one more carries the whole arguments.
    assert [d["function"]["arguments"] for d in tool_deltas(chunks)] == ["", '{"city":"Paris"}']

    message = ok(out["openai_stream_helper"])["final"]["choices"][0]["message"]
    assert message["content"] == "Let me check."
    assert message["tool_calls"][0]["function"]["arguments"] == '{"city":"Paris"}'

    completion = ok(out["openai_completion"])
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    assert choice["message"]["reasoning_content"] == THINKING["text"]
    assert choice["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]


def test_openai_non_stream_call_without_text(up):
    up.script(chunks=[], tool_calls=[WEATHER_PARIS, {"name": "get_time", "arguments": {"tz": "CET"}}])
    choice = ok(sdk(up, ["openai_completion"])["openai_completion"])["choices"][0]
    assert choice["message"]["content"] is None
    assert [c["id"] for c in choice["message"]["tool_calls"]] == ["call_1", "call_2"]
    assert json.loads(choice["message"]["tool_calls"][1]["function"]["arguments"]) == {"tz": "CET"}


@pytest.mark.parametrize("quirk", ["repeat_name", "whole", "no_index"])
def test_openai_tool_quirks(up, quirk):
    up.script(queue=[{"chunks": [], "tool_calls": [WEATHER_BERLIN], "openai_tool_quirk": quirk}] * 2)
    out = sdk(up, ["openai_chunks", "openai_stream_helper"])
    deltas = tool_deltas(ok(out["openai_chunks"])["chunks"])
    assert "".join(d["function"]["arguments"] for d in deltas) == WEATHER_BERLIN["arguments"]
    calls = ok(out["openai_stream_helper"])["final"]["choices"][0]["message"]["tool_calls"]
    expected = [{"id": "call_2", "type": "function",
                 "function": {"name": "get_weather", "arguments": WEATHER_BERLIN["arguments"]}}]
    if quirk == "repeat_name":
        assert len(deltas) > 2 and all(d["function"]["name"] == "get_weather" and d["index"] == 0 for d in deltas)
        assert calls == expected  # the SDK keeps the name, it does not append it
    elif quirk == "whole":
        assert deltas == [{"index": 0, **expected[0]}]
        assert calls == expected
    else:
        assert len(deltas) > 2 and all("index" not in d for d in deltas)
        # The SDK's helper keys calls by index and so silently drops index-less deltas: a gateway that
        # accepts such an upstream must supply the index itself.
        assert calls == []


def test_explicit_finish_reason_wins_over_tool_calls(up):
    script = {"tool_calls": [WEATHER_PARIS], "finish_reason": "stop"}
    up.script(queue=[script, script])
    out = sdk(up, ["openai_completion", "anthropic_create"])
    assert ok(out["openai_completion"])["choices"][0]["finish_reason"] == "stop"
    assert ok(out["anthropic_create"])["stop_reason"] == "end_turn"


def test_text_only_answers_are_unchanged(up):
    up.script(chunks=["Hel", "lo"])
    out = sdk(up, ["openai_stream_helper", "anthropic_stream_helper", "anthropic_create"])
    choice = ok(out["openai_stream_helper"])["final"]["choices"][0]
    assert choice["message"]["content"] == "Hello" and choice["finish_reason"] == "stop"
    assert "tool_calls" not in choice["message"] or not choice["message"]["tool_calls"]
    for step in ("anthropic_stream_helper", "anthropic_create"):
        message = ok(out[step])
        message = message.get("final", message)
        assert message["content"] == [{"type": "text", "text": "Hello"}]
        assert message["stop_reason"] == "end_turn"


def test_anthropic_stream_tool_use_and_thinking(up):
    script = {"chunks": ["Checking both."], "thinking": THINKING, "tool_calls": [WEATHER_PARIS, WEATHER_BERLIN],
              "usage": {"prompt_tokens": 40, "completion_tokens": 20}}
    up.script(queue=[script, script])
    out = sdk(up, ["anthropic_stream_helper", "anthropic_events"])

    helper = ok(out["anthropic_stream_helper"])
    final = helper["final"]
    assert final["stop_reason"] == "tool_use"
    assert final["usage"]["input_tokens"] == 40 and final["usage"]["output_tokens"] == 20
    assert final["content"] == [
        {"type": "thinking", "thinking": THINKING["text"], "signature": THINKING["signature"]},
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Berlin", "unit": "celsius"}},
    ]
    assert "".join(helper["thinking"]) == THINKING["text"] and len(helper["thinking"]) > 1
    assert helper["signatures"] == [THINKING["signature"]]
    assert len(helper["input_json"]) > 2
    assert helper["input_json"][-1]["snapshot"] == {"city": "Berlin", "unit": "celsius"}

    events = ok(out["anthropic_events"])["events"]
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["message_start", "content_block_start", "content_block_delta"]  # the SDK drops pings
    assert kinds[-2:] == ["message_delta", "message_stop"]
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [e["index"] for e in starts] == [0, 1, 2, 3]
    assert starts[0]["content_block"]["type"] == "thinking"
    assert starts[2]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}
    thinking_deltas = [e["delta"]["type"] for e in events if e["type"] == "content_block_delta" and e["index"] == 0]
    assert thinking_deltas[-1] == "signature_delta" and set(thinking_deltas[:-1]) == {"thinking_delta"}
    for index in (2, 3):
        block = [e for e in events if e.get("index") == index]
        assert [e["type"] for e in block][0] == "content_block_start"
        assert [e["type"] for e in block][-1] == "content_block_stop"
        assert {e["delta"]["type"] for e in block[1:-1]} == {"input_json_delta"}


def test_anthropic_create_tool_use_and_thinking(up):
    up.script(chunks=[], thinking=THINKING, tool_calls=[{"name": "get_weather", "arguments": '{"city":"Paris"}'}])
    message = ok(sdk(up, ["anthropic_create"])["anthropic_create"])
    assert message["stop_reason"] == "tool_use"
    assert message["content"] == [
        {"type": "thinking", "thinking": THINKING["text"], "signature": THINKING["signature"]},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ]


def test_openai_tool_loop_second_request_carries_the_result(up):
    up.script(queue=[{"chunks": [], "tool_calls": [WEATHER_PARIS]}, {"chunks": ["It is 21 degrees in Paris."]}])
    loop = ok(sdk(up, ["openai_tool_loop"], tool_result='{"temperature_c": 21}')["openai_tool_loop"])
    assert loop["first"]["choices"][0]["finish_reason"] == "tool_calls"
    assert loop["second"]["choices"][0]["message"]["content"] == "It is 21 degrees in Paris."

    first, second = [r["body"] for r in up.log()]
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assistant, result = second["messages"][-2:]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"][0]["id"] == "call_1"
    assert assistant["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert result == {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature_c": 21}'}


def test_anthropic_tool_loop_second_request_carries_the_result(up):
    up.script(queue=[{"chunks": [], "thinking": THINKING, "tool_calls": [WEATHER_PARIS]},
                     {"chunks": ["Sunny, 21 degrees."]}])
    loop = ok(sdk(up, ["anthropic_tool_loop"], tool_result="21 degrees")["anthropic_tool_loop"])
    assert loop["first"]["stop_reason"] == "tool_use"
    assert loop["second"]["content"] == [{"type": "text", "text": "Sunny, 21 degrees."}]

    first, second = [r["body"] for r in up.log()]
    assert first["tools"][0]["name"] == "get_weather"
    assistant, user = second["messages"][-2:]
    # The thinking block goes back with its signature, as Anthropic requires in a tool loop.
    assert assistant["content"][0] == {"type": "thinking", "thinking": THINKING["text"],
                                       "signature": THINKING["signature"]}
    assert assistant["content"][1] == {"type": "tool_use", "id": "call_1", "name": "get_weather",
                                       "input": {"city": "Paris"}}
    assert user == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1",
                                                 "content": "21 degrees"}]}


def test_anthropic_count_tokens(up):
    up.script(queue=[{"chunks": ["queued"]}])
    out = sdk(up, ["anthropic_count_tokens", "anthropic_create"])
    log = up.log()
    assert log[0]["path"] == "/v1/messages/count_tokens" and log[0]["status"] == 200
    body = log[0]["body"]
    expected = len(json.dumps([body.get("system"), body["messages"], body["tools"]], separators=(",", ":"),
                              sort_keys=True)) // 4
    assert ok(out["anthropic_count_tokens"]) == {"input_tokens": expected}
    assert expected > 0
    # count_tokens consumed no script: the queued one answered the message.
    assert ok(out["anthropic_create"])["content"] == [{"type": "text", "text": "queued"}]


def test_reset_after_counts_tool_deltas_and_bad_quirk_is_refused(up):
    status, body = post(up, "/_script", {"openai_tool_quirk": "sideways"})
    assert status == 400 and b"openai_tool_quirk" in body

    up.script(chunks=["a"], tool_calls=[WEATHER_PARIS], reset_after=3)
    out = sdk(up, ["openai_chunks"])
    assert out["openai_chunks"]["error"], out
    # text "a", the call's first delta, one fragment: then the connection is reset.
    up.script(chunks=["a"], tool_calls=[WEATHER_PARIS], reset_after=3)
    req = urllib.request.Request(up.base_url + "/v1/chat/completions", method="POST",
                                 data=json.dumps({"model": "m", "stream": True}).encode())
    data = b""
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            while True:
                piece = res.read1(65536)
                if not piece:
                    break
                data += piece
    except (OSError, http.client.HTTPException):
        pass  # the reset
    events = [json.loads(line[6:]) for line in data.decode().split("\n") if line.startswith("data: {")]
    deltas = [e["choices"][0]["delta"] for e in events]
    assert deltas[1:] == [{"content": "a"},
                          {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                           "function": {"name": "get_weather", "arguments": ""}}]},
                          {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}]
