"""Tool calls and images through /v1/chat/completions, end to end: the real binary in front of the
scripted OpenAI-wire upstream, driven by the real clients (the `openai` npm SDK's stream helper,
runTools and non-stream calls; the Vercel AI SDK's streamText over @ai-sdk/openai-compatible;
LangChain JS's ChatOpenAI with bindTools), plus the capability routing of a tools request when the
local model cannot call tools. One sluice serves the whole module (with the local tiny model beside
the cloud one)."""

import json
import os
import urllib.error
import urllib.request

import pytest

from clients_support import needs_node, run_node
from conftest import Sluice, Upstream

pytestmark = needs_node

WEATHER = {"id": "call_w1", "name": "get_weather", "arguments": '{"city":"Paris"}'}
TIME = {"id": "call_t2", "name": "get_time", "arguments": '{"zone":"Europe/Paris"}'}
LOCAL_MODEL = ('[[models]]\nname = "local"\nrole = "local_small"\nprovider = "llama"\nn_ctx = 512\n'
               'n_parallel = 1\n')


def anthropic_model(upstream):
    """A second cloud model that speaks Anthropic's wire to the same scripted upstream."""
    return ('[[models]]\nname = "claude"\nrole = "cloud_large"\nprovider = "anthropic"\n'
            f'base_url = "{upstream.base_url}/v1"\nmodel = "scripted"\napi_key_env = "SLUICE_TEST_UPSTREAM_KEY"\n'
            'weight = 0\n')


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    up = Upstream(str(tmp_path_factory.mktemp("upstream")))
    yield up
    up.stop()


@pytest.fixture(scope="module")
def sluice(upstream, tmp_path_factory):
    s = Sluice(str(tmp_path_factory.mktemp("sluice")), upstream, extra_toml=LOCAL_MODEL + anthropic_model(upstream))
    yield s
    assert s.stop() == 0


@pytest.fixture(autouse=True)
def fresh(upstream):
    upstream.reset()


def tools_sdk(sluice, steps, **config):
    return run_node("sdk_tools.mjs", {"base_url": sluice.base_url, "key": sluice.key, "steps": steps,
                                      "model": config.pop("model", "cloud"), **config})


def app_sdk(sluice, steps, model="auto"):
    return run_node("app_sdks.mjs", {"base_url": sluice.base_url + "/v1", "key": sluice.key, "steps": steps,
                                     "model": model})


def upstream_bodies(upstream):
    return [r["body"] for r in upstream.log() if r["path"].endswith("/chat/completions")]


def post(sluice, path, body, headers=None):
    req = urllib.request.Request(sluice.base_url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **sluice.headers(), **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, dict(res.headers), res.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def tool_calls_counted(sluice, model):
    text = urllib.request.urlopen(urllib.request.Request(sluice.base_url + "/metrics", headers=sluice.headers()),
                                  timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith('sluice_tool_calls_total{model="%s"}' % model):
            return float(line.split()[-1])
    return 0.0


def test_two_parallel_calls_with_text_before_them_stream_as_openai_streams_them(sluice, upstream):
    counted_before = tool_calls_counted(sluice, "cloud")
    upstream.script(chunks=["Let me ", "check."], tool_calls=[WEATHER, TIME], arguments_split=5)
    out = tools_sdk(sluice, ["openai_stream_helper", "openai_chunks"])

    helper = out["openai_stream_helper"]
    assert "error" not in helper, helper
    message = helper["final"]["choices"][0]["message"]
    assert message["content"] == "Let me check."
    calls = [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in message["tool_calls"]]
    assert calls == [("call_w1", "get_weather", '{"city":"Paris"}'), ("call_t2", "get_time", '{"zone":"Europe/Paris"}')]
    assert helper["final"]["choices"][0]["finish_reason"] == "tool_calls"
    assert [d["name"] for d in helper["arguments_done"]] == ["get_weather", "get_time"]
    assert len(helper["argument_deltas"]) > 2  # the fragments arrived as fragments

    chunks = out["openai_chunks"]["chunks"]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    firsts = [d["tool_calls"][0] for d in deltas if "tool_calls" in d and "id" in d["tool_calls"][0]]
    assert [(f["index"], f["id"], f["type"], f["function"]["name"], f["function"]["arguments"]) for f in firsts] == [
        (0, "call_w1", "function", "get_weather", ""), (1, "call_t2", "function", "get_time", "")]
    later = [d["tool_calls"][0] for d in deltas if "tool_calls" in d and "id" not in d["tool_calls"][0]]
    assert later and all(set(t) == {"index", "function"} and set(t["function"]) == {"arguments"} for t in later)
    assert chunks[-1]["usage"]["total_tokens"] == 7
    assert tool_calls_counted(sluice, "cloud") == counted_before + 4  # two calls in each of the two steps

    # The tools reached the upstream as the client sent them.
    sent = upstream_bodies(upstream)[0]
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tools"][0]["function"]["parameters"]["required"] == ["city"]


def test_the_tool_result_turn_and_non_stream_calls(sluice, upstream):
    upstream.script(queue=[{"chunks": [], "tool_calls": [WEATHER]}, {"chunks": ["It is 21 C in Paris."]}])
    out = tools_sdk(sluice, ["openai_tool_loop"])
    loop = out["openai_tool_loop"]
    assert "error" not in loop, loop
    assert loop["first"]["choices"][0]["message"]["tool_calls"][0]["id"] == "call_w1"
    assert loop["second"]["choices"][0]["message"]["content"] == "It is 21 C in Paris."
    second = upstream_bodies(upstream)[1]["messages"]
    assert second[-2]["role"] == "assistant"
    assert second[-2]["content"] is None
    assert second[-2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert second[-1] == {"role": "tool", "tool_call_id": "call_w1", "content": '{"temperature_c": 21}'}

    upstream.script(chunks=[], tool_calls=[WEATHER])
    completion = tools_sdk(sluice, ["openai_completion"])["openai_completion"]
    assert "error" not in completion, completion
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {"id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]


@pytest.mark.parametrize("quirk", ["no_index", "repeat_name", "whole"])
def test_upstream_tool_call_quirks_reach_the_client_in_openais_shape(sluice, upstream, quirk):
    upstream.script(chunks=[], tool_calls=[WEATHER], openai_tool_quirk=quirk)
    helper = tools_sdk(sluice, ["openai_stream_helper"])["openai_stream_helper"]
    assert "error" not in helper, helper
    calls = helper["final"]["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("call_w1", "get_weather", '{"city":"Paris"}')]


def test_openai_sdk_run_tools_loop(sluice, upstream):
    upstream.script(queue=[{"chunks": [], "tool_calls": [WEATHER]}, {"chunks": ["Sunny, 21 C."]}])
    out = app_sdk(sluice, ["openai_run_tools"])["openai_run_tools"]
    assert "error" not in out, out
    assert out["calls"] == [{"city": "Paris"}]
    assert out["content"] == "Sunny, 21 C."


def test_vercel_ai_sdk_stream_text_runs_the_tool_over_two_steps(sluice, upstream):
    upstream.script(queue=[{"chunks": [], "tool_calls": [WEATHER]}, {"chunks": ["Paris: ", "21 C."]}])
    out = app_sdk(sluice, ["ai_sdk_stream_text"])["ai_sdk_stream_text"]
    assert "error" not in out, out
    assert out["calls"] == ["Paris"]
    assert out["text"] == "Paris: 21 C."
    assert out["steps"][0]["finishReason"] == "tool-calls"
    assert out["steps"][0]["toolCalls"] == [{"name": "get_weather", "input": {"city": "Paris"}}]
    second = upstream_bodies(upstream)[1]["messages"]
    assert second[-1]["role"] == "tool" and second[-1]["tool_call_id"] == "call_w1"
    assert json.loads(second[-1]["content"]) == {"city": "Paris", "temperature_c": 21} or "21" in second[-1]["content"]


def test_langchain_bind_tools_streamed(sluice, upstream):
    upstream.script(chunks=[], tool_calls=[WEATHER])
    out = app_sdk(sluice, ["langchain_bind_tools"])["langchain_bind_tools"]
    assert "error" not in out, out
    assert out["pieces"] > 1
    assert [(c["name"], c["args"], c["id"]) for c in out["tool_calls"]] == [("get_weather", {"city": "Paris"}, "call_w1")]


def test_an_image_part_reaches_the_upstream_intact(sluice, upstream):
    upstream.script(chunks=["A red dot."])
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
    content = [{"type": "text", "text": "What is this?"},
               {"type": "image_url", "image_url": {"url": "data:image/png;base64," + png}},
               {"type": "image_url", "image_url": {"url": "https://example.test/cat.jpg"}}]
    status, _, body = post(sluice, "/v1/chat/completions",
                           {"model": "auto", "messages": [{"role": "user", "content": content}]})
    assert status == 200, body
    assert json.loads(body)["choices"][0]["message"]["content"] == "A red dot."
    sent = upstream_bodies(upstream)[0]["messages"][-1]
    assert sent["content"] == [{"type": "text", "text": "What is this?"},
                               {"type": "image_url", "image_url": {"url": "data:image/png;base64," + png}},
                               {"type": "image_url", "image_url": {"url": "https://example.test/cat.jpg"}}]
    # Auto routing sent it to the model that reads images.
    assert json.loads(body)["model"] == "cloud"


def test_tools_for_the_local_model_go_to_the_cloud_when_auto_and_are_refused_when_explicit(sluice, upstream):
    upstream.script(chunks=[], tool_calls=[WEATHER])
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    # "hi" alone would go to the local model; with tools it cannot serve, the cloud answers.
    status, headers, body = post(sluice, "/v1/chat/completions",
                                 {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "tools": tools})
    assert status == 200, body
    assert json.loads(body)["choices"][0]["message"]["tool_calls"][0]["id"] == "call_w1"
    assert "reason=needs_tools" in headers["X-Sluice-Route"]

    for model in ("local", "local_small"):
        status, _, body = post(sluice, "/v1/chat/completions",
                               {"model": model, "messages": [{"role": "user", "content": "hi"}], "tools": tools})
        assert status == 400, body
        error = json.loads(body)["error"]
        assert "tools" in error["message"] and error["type"] == "invalid_request_error"

    models = json.loads(urllib.request.urlopen(urllib.request.Request(
        sluice.base_url + "/api/v1/models", headers=sluice.headers()), timeout=10).read())
    by_name = {m["name"]: m for m in models["models"]}
    assert by_name["local"]["supports_tools"] is False
    assert by_name["cloud"]["supports_tools"] is True


def test_unknown_openai_parameters_go_upstream_unchanged(sluice, upstream):
    upstream.script(chunks=["ok"])
    status, _, body = post(sluice, "/v1/chat/completions", {
        "model": "cloud", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "low",
        "logprobs": True, "top_logprobs": 2, "metadata": {"team": "a"}, "service_tier": "flex", "user": "u7"})
    assert status == 200, body
    sent = upstream_bodies(upstream)[0]
    for key, value in {"reasoning_effort": "low", "logprobs": True, "top_logprobs": 2, "metadata": {"team": "a"},
                       "service_tier": "flex", "user": "u7"}.items():
        assert sent[key] == value, key


def test_a_session_replays_tool_calls_and_results(sluice, upstream):
    upstream.script(queue=[{"chunks": [], "tool_calls": [WEATHER]}, {"chunks": ["21 C."]}, {"chunks": ["ok"]}])
    session = {"X-Sluice-Session": "tools-1"}
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    status, _, body = post(sluice, "/v1/chat/completions", {
        "model": "cloud", "messages": [{"role": "user", "content": "weather?"}], "tools": tools}, session)
    assert status == 200, body
    # With session memory the client sends only the new messages: the tool result.
    status, _, body = post(sluice, "/v1/chat/completions", {
        "model": "cloud", "tools": tools,
        "messages": [{"role": "tool", "tool_call_id": "call_w1", "content": "21"}]}, session)
    assert status == 200, body
    sent = upstream_bodies(upstream)[1]["messages"]
    assert [m["role"] for m in sent if m["role"] != "system"] == ["user", "assistant", "tool"]
    assert sent[-2]["tool_calls"][0]["id"] == "call_w1"
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_w1", "content": "21"}

    stored = json.loads(urllib.request.urlopen(urllib.request.Request(
        sluice.base_url + "/api/v1/sessions/tools-1", headers=sluice.headers()), timeout=10).read())
    parts = [m.get("parts") for m in stored["messages"]]
    assert parts[1] == [{"type": "tool_call", "id": "call_w1", "name": "get_weather", "arguments": '{"city":"Paris"}'}]
    assert parts[2] == [{"type": "tool_result", "call_id": "call_w1", "content": "21", "is_error": False}]


def messages_bodies(upstream):
    return [r["body"] for r in upstream.log() if r["path"].endswith("/messages")]


def test_an_anthropic_upstream_answers_openai_clients_with_tool_calls(sluice, upstream):
    upstream.script(queue=[{"chunks": ["Checking."], "tool_calls": [WEATHER, TIME], "thinking": {"text": "need data"}},
                           {"chunks": ["21 C."]}])
    out = tools_sdk(sluice, ["openai_tool_loop"], model="claude")
    loop = out["openai_tool_loop"]
    assert "error" not in loop, loop
    first = loop["first"]["choices"][0]
    assert first["finish_reason"] == "tool_calls"
    assert first["message"]["content"] == "Checking."
    assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in first["message"]["tool_calls"]] == [
        ("call_w1", "get_weather", {"city": "Paris"}), ("call_t2", "get_time", {"zone": "Europe/Paris"})]
    assert loop["second"]["choices"][0]["message"]["content"] == "21 C."

    first_body, second_body = messages_bodies(upstream)[:2]
    assert first_body["tools"][0] == {"name": "get_weather", "description": "The weather in a city",
                                      "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                                       "required": ["city"]}}
    assistant, results = second_body["messages"][-2:]
    assert assistant["role"] == "assistant"
    uses = [b for b in assistant["content"] if b["type"] == "tool_use"]
    assert [(u["id"], u["name"], u["input"]) for u in uses] == [
        ("call_w1", "get_weather", {"city": "Paris"}), ("call_t2", "get_time", {"zone": "Europe/Paris"})]
    # Both results in one user message, as Anthropic wants them.
    assert results["role"] == "user"
    assert [(b["type"], b["tool_use_id"]) for b in results["content"]] == [
        ("tool_result", "call_w1"), ("tool_result", "call_t2")]


def test_an_image_reaches_an_anthropic_upstream_as_an_image_block(sluice, upstream):
    upstream.script(chunks=["A dot."])
    content = [{"type": "text", "text": "What is this?"},
               {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    status, _, body = post(sluice, "/v1/chat/completions",
                           {"model": "claude", "messages": [{"role": "user", "content": content}]})
    assert status == 200, body
    sent = messages_bodies(upstream)[0]["messages"][-1]["content"]
    assert {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}} in sent
