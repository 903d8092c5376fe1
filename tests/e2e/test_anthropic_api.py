"""Anthropic's Messages API in front, end to end: the real binary between the real clients (the
`@anthropic-ai/sdk` npm SDK through tests/e2e/js/sdk_tools.mjs, and Claude Code's own native binary)
and the scripted upstream, once speaking OpenAI's wire (model "cloud") and once Anthropic's (model
"claude", which Claude Code's Claude model names reach through its `aliases`). One sluice and one
upstream serve the whole module; the local tiny model sits beside them for count_tokens."""

import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest

from clients_support import TESTS_DIR, needs_node, run_node
from conftest import UPSTREAM_KEY, Sluice, Upstream

pytestmark = needs_node

WEATHER = {"id": "toolu_w1", "name": "get_weather", "arguments": '{"city":"Paris"}'}
BASH = {"id": "toolu_b1", "name": "Bash", "arguments": {"command": "echo sluice-ok", "description": "Print a marker"}}
CLAUDE = os.path.join(TESTS_DIR, "node_modules", "@anthropic-ai", "claude-code-linux-x64", "claude")
EXTRA_MODELS = ('[[models]]\nname = "local"\nrole = "local_small"\nprovider = "llama"\nn_ctx = 512\n'
                'n_parallel = 1\n')


def anthropic_model(upstream):
    return ('[[models]]\nname = "claude"\nrole = "cloud_large"\nprovider = "anthropic"\n'
            f'base_url = "{upstream.base_url}/v1"\nmodel = "scripted"\napi_key_env = "SLUICE_TEST_UPSTREAM_KEY"\n'
            'weight = 0\n'
            'aliases = ["claude-*", "*haiku*"]\n')


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    up = Upstream(str(tmp_path_factory.mktemp("upstream")))
    yield up
    up.stop()


@pytest.fixture(scope="module")
def sluice(upstream, tmp_path_factory):
    s = Sluice(str(tmp_path_factory.mktemp("sluice")), upstream, extra_toml=EXTRA_MODELS + anthropic_model(upstream))
    yield s
    assert s.stop() == 0


@pytest.fixture(autouse=True)
def fresh(upstream):
    upstream.reset()


def sdk(sluice, steps, model="cloud", **config):
    return run_node("sdk_tools.mjs", {"base_url": sluice.base_url, "key": sluice.key, "steps": steps,
                                      "model": model, **config})


def upstream_requests(upstream, suffix):
    return [r for r in upstream.log() if r["path"].split("?")[0].endswith(suffix)]


def post(sluice, path, body, headers):
    req = urllib.request.Request(sluice.base_url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, dict(res.headers), res.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def frames(text):
    """The stream as (event name, data object) pairs; every frame is an event: line and a data: line."""
    out = []
    for frame in text.split("\n\n"):
        if not frame.strip():
            continue
        lines = frame.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), frame
        out.append((lines[0][7:], json.loads(lines[1][6:])))
    return out


@pytest.mark.parametrize("model", ["cloud", "claude"])
def test_stream_helper_text_and_non_stream(sluice, upstream, model):
    upstream.script(chunks=["Hel", "lo"], usage={"prompt_tokens": 12, "completion_tokens": 2})
    out = sdk(sluice, ["anthropic_stream_helper", "anthropic_create"], model=model, tools=[])
    helper = out["anthropic_stream_helper"]
    assert "error" not in helper, helper
    final = helper["final"]
    assert [(b["type"], b["text"]) for b in final["content"]] == [("text", "Hello")]
    assert helper["text"] == ["Hel", "lo"]
    assert final["stop_reason"] == "end_turn"
    assert final["role"] == "assistant" and final["model"] == model
    assert final["usage"]["output_tokens"] == 2
    assert final["usage"]["input_tokens"] == 12

    whole = out["anthropic_create"]
    assert "error" not in whole, whole
    assert whole["type"] == "message"
    assert [(b["type"], b["text"]) for b in whole["content"]] == [("text", "Hello")]
    assert whole["stop_reason"] == "end_turn"
    path = "/chat/completions" if model == "cloud" else "/messages"
    assert len(upstream_requests(upstream, path)) == 2


@pytest.mark.parametrize("model", ["cloud", "claude"])
def test_tool_use_from_input_json_deltas_and_the_tool_result_turn(sluice, upstream, model):
    upstream.script(queue=[{"chunks": ["Checking."], "tool_calls": [WEATHER], "arguments_split": 4},
                           {"chunks": ["It is 21 C in Paris."]}])
    out = sdk(sluice, ["anthropic_tool_loop"], model=model)
    loop = out["anthropic_tool_loop"]
    assert "error" not in loop, loop
    first = loop["first"]
    assert first["stop_reason"] == "tool_use"
    assert [b["type"] for b in first["content"]] == ["text", "tool_use"]
    call = first["content"][1]
    assert (call["id"], call["name"], call["input"]) == ("toolu_w1", "get_weather", {"city": "Paris"})
    second = loop["second"]
    assert [(b["type"], b["text"]) for b in second["content"]] == [("text", "It is 21 C in Paris.")]

    if model == "cloud":
        bodies = [r["body"] for r in upstream_requests(upstream, "/chat/completions")]
        assert bodies[0]["tools"][0]["function"]["name"] == "get_weather"
        sent = bodies[1]["messages"]
        assert sent[-2]["role"] == "assistant"
        assert sent[-2]["tool_calls"][0]["id"] == "toolu_w1"
        assert json.loads(sent[-2]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
        assert sent[-1] == {"role": "tool", "tool_call_id": "toolu_w1", "content": '{"temperature_c": 21}'}
    else:
        bodies = [r["body"] for r in upstream_requests(upstream, "/messages")]
        sent = bodies[1]["messages"]
        assert sent[-1]["content"][0]["type"] == "tool_result"
        assert sent[-1]["content"][0]["tool_use_id"] == "toolu_w1"
        assert sent[-2]["content"][1]["input"] == {"city": "Paris"}


def test_events_have_anthropics_order_and_indexes(sluice, upstream):
    upstream.script(chunks=["Let me check."], tool_calls=[WEATHER],
                    thinking={"text": "The user wants weather.", "signature": "sig-abc"})
    out = sdk(sluice, ["anthropic_events"], model="claude")
    events = out["anthropic_events"]["events"]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [(e["index"], e["content_block"]["type"]) for e in starts] == [(0, "thinking"), (1, "text"), (2, "tool_use")]
    stops = [e["index"] for e in events if e["type"] == "content_block_stop"]
    assert stops == [0, 1, 2]
    deltas = [(e["index"], e["delta"]["type"]) for e in events if e["type"] == "content_block_delta"]
    assert (0, "thinking_delta") in deltas and (0, "signature_delta") in deltas
    assert (1, "text_delta") in deltas and (2, "input_json_delta") in deltas
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


@pytest.mark.parametrize("model", ["cloud", "claude"])
def test_thinking_blocks(sluice, upstream, model):
    upstream.script(chunks=["42"], thinking={"text": "Six times seven.", "signature": "sig-xyz"})
    out = sdk(sluice, ["anthropic_stream_helper"], model=model, tools=[],
              params={"thinking": {"type": "enabled", "budget_tokens": 1024}})
    helper = out["anthropic_stream_helper"]
    assert "error" not in helper, helper
    content = helper["final"]["content"]
    assert [b["type"] for b in content] == ["thinking", "text"]
    assert content[0]["thinking"] == "Six times seven."
    assert "".join(helper["thinking"]) == "Six times seven."
    if model == "claude":  # only Anthropic's wire signs its thinking
        assert content[0]["signature"] == "sig-xyz"
        assert helper["signatures"] == ["sig-xyz"]


def test_anthropic_upstream_gets_the_request_as_sent(sluice, upstream):
    upstream.script(chunks=["ok"], usage={"prompt_tokens": 3, "completion_tokens": 1,
                                          "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20})
    body = {"model": "claude-opus-4-1", "max_tokens": 50, "stream": True, "top_k": 3, "metadata": {"user_id": "u1"},
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "sig-1"},
                                                  {"type": "text", "text": "hello"}]},
                {"role": "user", "content": "again"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}],
            "thinking": {"type": "enabled", "budget_tokens": 1024}}
    status, headers, text = post(sluice, "/v1/messages?beta=true", body,
                                 {"x-api-key": sluice.key, "anthropic-version": "2023-06-01",
                                  "anthropic-beta": "interleaved-thinking-2025-05-14,claude-code-20250219"})
    assert status == 200, text
    assert headers["Content-Type"] == "text/event-stream"
    stream = frames(text)
    assert "data: [DONE]" not in text
    usage = [d for name, d in stream if name == "message_delta"][0]["usage"]
    assert usage["cache_read_input_tokens"] == 100
    assert usage["cache_creation_input_tokens"] == 20
    assert usage["input_tokens"] == 3

    sent = upstream_requests(upstream, "/messages")[-1]
    assert sent["headers"]["anthropic-beta"] == "interleaved-thinking-2025-05-14,claude-code-20250219"
    got = sent["body"]
    assert got["model"] == "scripted"
    for key in ("system", "messages", "tools", "thinking", "metadata", "top_k"):
        assert got[key] == body[key], key


def test_x_api_key_query_string_and_frames(sluice, upstream):
    upstream.script(chunks=["a", "b"])
    body = {"model": "cloud", "max_tokens": 20, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    status, headers, text = post(sluice, "/v1/messages?beta=true", body, {"x-api-key": sluice.key})
    assert status == 200, text
    stream = frames(text)
    names = [name for name, _ in stream]
    assert names == ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
                     "content_block_stop", "message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in stream)
    assert stream[0][1]["message"]["usage"]["input_tokens"] >= 0


def test_errors_are_anthropics(sluice, upstream):
    out = run_node("sdk_tools.mjs", {"base_url": sluice.base_url, "key": "sk-wrong-key-0000000000000000000000000",
                                     "steps": ["anthropic_create"], "model": "cloud", "tools": []})
    error = out["anthropic_create"]["error"]
    assert (error["status"], error["name"]) == (401, "AuthenticationError")

    out = sdk(sluice, ["anthropic_create", "anthropic_stream_helper"], params={"max_tokens": 0}, tools=[])
    for step in ("anthropic_create", "anthropic_stream_helper"):
        assert (out[step]["error"]["status"], out[step]["error"]["name"]) == (400, "BadRequestError"), out[step]

    out = sdk(sluice, ["anthropic_create"], model="no-such-model", tools=[])
    error = out["anthropic_create"]["error"]
    assert (error["status"], error["name"]) == (404, "NotFoundError")
    assert "claude-*" in error["message"] and "cloud" in error["message"]

    status, _, text = post(sluice, "/v1/messages", {"model": "cloud", "max_tokens": 5,
                                                    "messages": [{"role": "user", "content": "x"}]}, {})
    assert status == 401
    assert json.loads(text) == {"type": "error", "error": {"type": "authentication_error",
                                                           "message": json.loads(text)["error"]["message"]}}

    # A mid-stream failure is an `event: error` after the frames already sent.
    upstream.script(chunks=["par", "tial"], error_event={"message": "boom", "type": "api_error"})
    status, _, text = post(sluice, "/v1/messages", {"model": "claude", "max_tokens": 5, "stream": True,
                                                    "messages": [{"role": "user", "content": "x"}]},
                           {"x-api-key": sluice.key})
    assert status == 200
    stream = frames(text)
    assert stream[0][0] == "message_start"
    assert stream[-1][0] == "error"
    assert stream[-1][1]["error"]["type"] in ("api_error", "overloaded_error")


def test_count_tokens_and_models(sluice, upstream):
    for model in ("cloud", "claude", "local_small"):
        upstream.reset()
        out = sdk(sluice, ["anthropic_count_tokens"], model=model)
        counted = out["anthropic_count_tokens"]
        assert "error" not in counted, (model, counted)
        assert counted["input_tokens"] > 0, model
        forwarded = upstream_requests(upstream, "/messages/count_tokens")
        if model != "claude":
            assert forwarded == [], model  # counted by sluice: the OpenAI wire has no such endpoint
            continue
        # An Anthropic upstream counts: its own answer comes back, for the body the client sent.
        assert len(forwarded) == 1, forwarded
        sent = forwarded[0]["body"]
        assert sent["model"] == "scripted"
        assert set(sent) <= {"model", "messages", "system", "tools", "tool_choice", "thinking"}, sent
        assert sent["messages"] and sent["tools"][0]["name"] == "get_weather"
        assert forwarded[0]["key_sha256"] == hashlib.sha256(UPSTREAM_KEY.encode()).hexdigest()
        cut = {k: sent.get(k) for k in ("system", "messages", "tools")}
        assert counted["input_tokens"] == len(json.dumps([cut["system"], cut["messages"], cut["tools"]],
                                                         separators=(",", ":"), sort_keys=True)) // 4

    models = sdk(sluice, ["anthropic_models"])["anthropic_models"]
    assert "error" not in models, models
    ids = [m["id"] for m in models["models"]]
    assert {"cloud", "claude", "local", "auto"} <= set(ids)
    assert all(m["type"] == "model" and m["display_name"] and m["created_at"] for m in models["models"])

    req = urllib.request.Request(sluice.base_url + "/v1/models", headers=sluice.headers())
    with urllib.request.urlopen(req, timeout=10) as res:
        listing = json.loads(res.read())
    assert listing["object"] == "list" and listing["has_more"] is False
    assert listing["first_id"] == listing["data"][0]["id"] and listing["last_id"] == listing["data"][-1]["id"]
    assert all(m["object"] == "model" and "owned_by" in m for m in listing["data"])


def claude_code(sluice, tmp_path, prompt, *args):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "ANTHROPIC_BASE_URL": sluice.base_url,
           "ANTHROPIC_API_KEY": sluice.key, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
           "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1"}
    done = subprocess.run([CLAUDE, "-p", prompt, *args], env=env, cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, f"claude failed:\n{done.stderr}\n{done.stdout}"
    return done.stdout


needs_claude = pytest.mark.skipif(not os.access(CLAUDE, os.X_OK), reason="Claude Code's binary is not installed")


@needs_claude
@pytest.mark.parametrize("model", [None, "cloud"])
def test_claude_code_plain_answer(sluice, upstream, tmp_path, model):
    upstream.script(chunks=["Hello from ", "sluice."])
    out = claude_code(sluice, tmp_path, "Say hello", *(["--model", model] if model else []))
    assert "Hello from sluice." in out
    path = "/messages" if model is None else "/chat/completions"
    sent = upstream_requests(upstream, path)
    assert sent, upstream.log()
    if model is None:  # Claude Code's Claude model name reached the Anthropic-wire model by its alias
        assert sent[0]["body"]["model"] == "scripted"
        assert "claude-code" in sent[0]["headers"].get("anthropic-beta", "")
        assert len(sent[0]["body"]["tools"]) > 3
        # passed through as sent: the system blocks keep their cache_control, the betas' fields stay
        assert any("cache_control" in block for block in sent[0]["body"]["system"])
        assert "context_management" in sent[0]["body"] and "thinking" in sent[0]["body"]


@needs_claude
@pytest.mark.parametrize("model", [None, "cloud"])
def test_claude_code_runs_bash_and_the_result_reaches_the_model(sluice, upstream, tmp_path, model):
    upstream.script(queue=[{"chunks": [], "tool_calls": [BASH]}, {"chunks": ["The command printed sluice-ok."]}])
    out = claude_code(sluice, tmp_path, "Run echo sluice-ok", "--allowedTools", "Bash",
                      *(["--model", model] if model else []))
    assert "The command printed sluice-ok." in out
    if model is None:
        bodies = [r["body"] for r in upstream_requests(upstream, "/messages")]
        results = [block for block in bodies[-1]["messages"][-1]["content"] if block.get("type") == "tool_result"]
        assert results and results[0]["tool_use_id"] == "toolu_b1"
        assert "sluice-ok" in json.dumps(results[0]["content"])
    else:
        bodies = [r["body"] for r in upstream_requests(upstream, "/chat/completions")]
        assert any(t["function"]["name"] == "Bash" for t in bodies[0]["tools"])
        tool_messages = [m for m in bodies[-1]["messages"] if m["role"] == "tool"]
        assert tool_messages and tool_messages[-1]["tool_call_id"] == "toolu_b1"
        assert "sluice-ok" in json.dumps(tool_messages[-1]["content"])
