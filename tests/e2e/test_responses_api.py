"""OpenAI's Responses API end to end: the real binary in front of the scripted upstream (OpenAI's chat
wire, and once Anthropic's), driven by the clients that speak it by default: the `openai` npm SDK
(responses.stream(...).finalResponse(), create, retrieve, inputItems, delete), the Vercel AI SDK's
@ai-sdk/openai default model, and the Codex CLI itself (`codex exec`, with its shell tool). One
sluice serves the whole module."""

import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request

import pytest

from clients_support import TESTS_DIR, needs_node, run_node
from conftest import Sluice, Upstream

pytestmark = needs_node

WEATHER = {"id": "call_w1", "name": "get_weather", "arguments": '{"city":"Paris"}'}
CODEX = os.path.join(TESTS_DIR, "node_modules", "@openai", "codex-linux-x64", "vendor",
                     "x86_64-unknown-linux-musl", "bin", "codex")


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
    s = Sluice(str(tmp_path_factory.mktemp("sluice")), upstream, extra_toml=anthropic_model(upstream))
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def other_key(sluice):
    return sluice.create_key("other")


@pytest.fixture(autouse=True)
def fresh(upstream):
    upstream.reset()


def clients(sluice, steps, model="cloud", **config):
    return run_node("responses_clients.mjs", {"base_url": sluice.base_url + "/v1", "key": sluice.key,
                                              "steps": steps, "model": model, **config})


def upstream_bodies(upstream, path="/chat/completions"):
    return [r["body"] for r in upstream.log() if r["path"].endswith(path)]


def request(sluice, method, path, body=None, key=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(sluice.base_url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", **sluice.headers(key)})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, dict(res.headers), res.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def sse_events(text):
    """(event name, data object) of each event of an SSE body."""
    events = []
    for block in text.split("\n\n"):
        name, data = None, None
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: "):])
        if data is not None:
            events.append((name, data))
    return events


def test_the_openai_sdk_streams_text_with_whole_usage(sluice, upstream):
    upstream.script(chunks=["Hel", "lo"], usage={"prompt_tokens": 5, "completion_tokens": 2})
    out = clients(sluice, ["openai_stream_text"])["openai_stream_text"]
    assert "error" not in out, out
    assert out["output_text"] == "Hello"
    types = [e["type"] for e in out["events"]]
    assert types == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
                     "response.output_text.done", "response.content_part.done", "response.output_item.done",
                     "response.completed"]
    assert [e["sequence_number"] for e in out["events"]] == list(range(len(types)))
    item_id = out["final"]["output"][0]["id"]
    assert item_id.startswith("msg_")
    assert all(e["item_id"] == item_id for e in out["events"][2:9])
    final = out["final"]
    assert final["id"].startswith("resp_") and final["status"] == "completed"
    assert final["usage"] == {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 2,
                              "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 7}
    sent = upstream_bodies(upstream)[0]["messages"]
    assert [(m["role"], m["content"]) for m in sent][-2:] == [("system", "Be brief."), ("user", "Say hello.")]


def test_a_streamed_function_call(sluice, upstream):
    upstream.script(chunks=[], tool_calls=[WEATHER], arguments_split=5)
    out = clients(sluice, ["openai_stream_call"])["openai_stream_call"]
    assert "error" not in out, out
    calls = [i for i in out["final"]["output"] if i["type"] == "function_call"]
    assert [(c["call_id"], c["name"], c["arguments"], c["status"]) for c in calls] == [
        ("call_w1", "get_weather", '{"city":"Paris"}', "completed")]
    deltas = [e for e in out["events"] if e["type"] == "response.function_call_arguments.delta"]
    assert len(deltas) > 1 and "".join(d["delta"] for d in deltas) == '{"city":"Paris"}'
    assert all(d["item_id"] == calls[0]["id"] and d["output_index"] == 0 for d in deltas)
    tools = upstream_bodies(upstream)[0]["tools"]
    assert tools[0]["function"]["name"] == "get_weather"
    assert tools[0]["function"]["parameters"]["required"] == ["city"]


def test_the_function_call_output_turn(sluice, upstream):
    upstream.script(queue=[{"chunks": [], "tool_calls": [WEATHER]}, {"chunks": ["It is 21 C in Paris."]}])
    out = clients(sluice, ["openai_call_output"])["openai_call_output"]
    assert "error" not in out, out
    assert out["output_text"] == "It is 21 C in Paris."
    second = upstream_bodies(upstream)[1]["messages"]
    assert second[-2]["role"] == "assistant"
    assert second[-2]["tool_calls"][0]["id"] == "call_w1"
    assert second[-2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert second[-1] == {"role": "tool", "tool_call_id": "call_w1", "content": '{"temperature_c": 21}'}
    # store: false kept nothing.
    status, _, _ = request(sluice, "GET", "/v1/responses/" + out["first"]["id"])
    assert status == 404


def test_previous_response_id_continues_the_stored_conversation(sluice, upstream):
    upstream.script(queue=[{"chunks": [], "tool_calls": [WEATHER]}, {"chunks": ["Sunny, 21 C."]},
                           {"chunks": ["Rain."]}])
    out = clients(sluice, ["openai_previous"])["openai_previous"]
    assert "error" not in out, out
    assert out["second"]["output_text"] == "Sunny, 21 C."
    assert out["third"]["output_text"] == "Rain."
    assert out["third"]["previous_response_id"] == out["second"]["id"]
    third = [m for m in upstream_bodies(upstream)[2]["messages"] if m["role"] != "system"]
    assert [m["role"] for m in third] == ["user", "assistant", "tool", "assistant", "user"]
    assert third[0]["content"] == "What is the weather in Paris?"
    assert third[1]["tool_calls"][0]["id"] == "call_w1"
    assert third[2]["tool_call_id"] == "call_w1"
    assert third[3]["content"] == "Sunny, 21 C."
    assert third[4]["content"] == "And tomorrow?"


def test_non_stream_retrieve_input_items_another_keys_404_and_delete(sluice, upstream, other_key):
    upstream.script(chunks=["Hello", " there."])
    created = clients(sluice, ["openai_create"])["openai_create"]
    assert "error" not in created, created
    response = created["response"]
    assert created["output_text"] == "Hello there."
    assert response["status"] == "completed" and response["metadata"] == {"run": "e2e"}
    assert response["usage"]["total_tokens"] == 7

    out = clients(sluice, ["openai_retrieve", "openai_other_key"], response_id=response["id"], other_key=other_key)
    got = out["openai_retrieve"]
    assert "error" not in got, got
    assert got["response"]["id"] == response["id"]
    assert got["response"]["output"] == response["output"]
    assert [(i["type"], i["role"], i["content"][0]["text"]) for i in got["items"]] == [("message", "user", "Say hello.")]
    assert out["openai_other_key"]["error"]["status"] == 404

    gone = clients(sluice, ["openai_delete"], response_id=response["id"])["openai_delete"]
    assert "error" not in gone, gone
    assert gone["deleted"]["deleted"] is True
    assert gone["after"]["error"]["status"] == 404


def test_errors_before_the_first_event_have_their_status_and_after_it_response_failed(sluice, upstream):
    status, _, body = request(sluice, "POST", "/v1/responses", {"model": "nope", "input": "hi"})
    assert status == 404 and json.loads(body)["error"]["code"] == "model_not_found"
    status, _, body = request(sluice, "POST", "/v1/responses", {"model": "cloud", "input": 7})
    assert status == 400 and json.loads(body)["error"]["type"] == "invalid_request_error"
    status, _, body = request(sluice, "POST", "/v1/responses",
                              {"model": "cloud", "input": "hi", "previous_response_id": "resp_missing"})
    assert status == 400 and json.loads(body)["error"]["code"] == "previous_response_not_found"

    upstream.script(chunks=["Hel"], error_event={"message": "overloaded", "type": "server_error"})
    status, headers, body = request(sluice, "POST", "/v1/responses", {"model": "cloud", "input": "hi", "stream": True})
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    events = sse_events(body)
    assert all(name == data["type"] for name, data in events)
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
    assert events[-1][1]["type"] == "response.failed"
    failed = events[-1][1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert set(failed["usage"]) == {"input_tokens", "input_tokens_details", "output_tokens",
                                    "output_tokens_details", "total_tokens"}
    assert "[DONE]" not in body

    upstream.script(chunks=["Hel", "lo"], finish_reason="length")
    status, _, body = request(sluice, "POST", "/v1/responses",
                              {"model": "cloud", "input": "hi", "stream": True, "max_output_tokens": 2})
    assert upstream_bodies(upstream)[-1]["max_tokens"] == 2
    last = sse_events(body)[-1][1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_the_ai_sdk_default_model_streams_text_and_runs_a_tool(sluice, upstream):
    upstream.script(chunks=["Hel", "lo"])
    out = clients(sluice, ["ai_sdk_text"])["ai_sdk_text"]
    assert "error" not in out, out
    assert out["text"] == "Hello" and out["pieces"] == 2
    assert out["usage"]["inputTokens"] == 5 and out["usage"]["outputTokens"] == 2

    upstream.reset()
    upstream.script(queue=[{"chunks": ["Let me check."], "tool_calls": [WEATHER]}, {"chunks": ["Paris: ", "21 C."]}])
    out = clients(sluice, ["ai_sdk_tool"])["ai_sdk_tool"]
    assert "error" not in out, out
    assert out["calls"] == ["Paris"]
    assert out["text"] == "Let me check.Paris: 21 C."
    assert out["steps"][0]["finishReason"] == "tool-calls"
    assert out["steps"][0]["toolCalls"] == [{"name": "get_weather", "input": {"city": "Paris"}}]
    second = upstream_bodies(upstream)[1]["messages"]
    assert second[-1]["role"] == "tool" and second[-1]["tool_call_id"] == "call_w1"
    assert "21" in second[-1]["content"]
    # The first step's text came back as an item_reference to the stored response; sluice put it back.
    assert second[-2]["role"] == "assistant" and second[-2]["content"] == "Let me check."
    assert second[-2]["tool_calls"][0]["id"] == "call_w1"


def test_an_anthropic_upstream_behind_the_responses_api(sluice, upstream):
    upstream.script(chunks=["Hel", "lo"], thinking={"text": "Greeting first."})
    out = clients(sluice, ["openai_stream_text"], model="claude")["openai_stream_text"]
    assert "error" not in out, out
    assert out["output_text"] == "Hello"
    kinds = [i["type"] for i in out["final"]["output"]]
    assert kinds == ["reasoning", "message"]
    assert out["final"]["output"][0]["summary"][0]["text"] == "Greeting first."
    assert any(e["type"] == "response.reasoning_summary_text.delta" for e in out["events"])
    assert upstream_bodies(upstream, "/messages")[0]["system"]

    upstream.reset()
    upstream.script(chunks=[], tool_calls=[{"name": "get_weather", "arguments": '{"city":"Paris"}'}])
    out = clients(sluice, ["openai_stream_call"], model="claude")["openai_stream_call"]
    assert "error" not in out, out
    calls = [i for i in out["final"]["output"] if i["type"] == "function_call"]
    assert [(c["call_id"], c["name"], c["arguments"]) for c in calls] == [("toolu_1", "get_weather", '{"city":"Paris"}')]


# --- the Codex CLI -------------------------------------------------------------------------------

needs_codex = pytest.mark.skipif(not os.access(CODEX, os.X_OK), reason="the Codex CLI is not installed")


@pytest.fixture
def codex_home():
    """CODEX_HOME and HOME in temporary directories outside /tmp (Codex will not keep state under /tmp)."""
    home = tempfile.mkdtemp(prefix="sluice-codex-", dir="/var/tmp")
    yield home
    shutil.rmtree(home, ignore_errors=True)


def run_codex(sluice, home, prompt, timeout=120):
    codex_home = os.path.join(home, "codex")
    workdir = os.path.join(home, "work")
    os.makedirs(codex_home, exist_ok=True)
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(codex_home, "config.toml"), "w") as f:
        f.write('model = "auto"\nmodel_provider = "sluice"\n\n[model_providers.sluice]\nname = "sluice"\n'
                f'base_url = "{sluice.base_url}/v1"\nwire_api = "responses"\nenv_key = "SLUICE_KEY"\n')
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "CODEX_HOME": codex_home,
           "SLUICE_KEY": sluice.key, "RUST_LOG": "error"}
    done = subprocess.run([CODEX, "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
                           "--json", "-C", workdir, prompt], capture_output=True, text=True, timeout=timeout,
                          env=env, stdin=subprocess.DEVNULL)
    events = []
    for line in done.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    return done, events


def responses_requests(upstream):
    return upstream_bodies(upstream)


@needs_codex
def test_codex_exec_gives_a_plain_answer(sluice, upstream, codex_home):
    upstream.script(chunks=["Hello from ", "sluice."])
    done, events = run_codex(sluice, codex_home, "Say hello.")
    assert done.returncode == 0, done.stderr[-4000:] + done.stdout[-4000:]
    messages = [e["item"]["text"] for e in events
                if e.get("type") == "item.completed" and e.get("item", {}).get("type") == "agent_message"]
    assert messages == ["Hello from sluice."], done.stdout[-4000:]
    sent = upstream_bodies(upstream)[0]
    assert sent["messages"][-1]["role"] == "user"
    assert "Say hello." in json.dumps(sent["messages"][-1])


@needs_codex
def test_codex_runs_its_shell_tool_and_the_output_goes_back(sluice, upstream, codex_home):
    # The first turn only learns which tools Codex offers and how its shell tool is called.
    upstream.script(chunks=["ok"])
    done, _ = run_codex(sluice, codex_home, "Say ok.")
    assert done.returncode == 0, done.stderr[-4000:]
    tools = {t["function"]["name"]: t["function"] for t in upstream_bodies(upstream)[0].get("tools", [])}
    assert "exec_command" in tools, sorted(tools)
    assert "cmd" in tools["exec_command"]["parameters"]["properties"]

    upstream.reset()
    call = {"id": "call_sh1", "name": "exec_command", "arguments": json.dumps({"cmd": "echo sluice-ok"})}
    upstream.script(queue=[{"chunks": [], "tool_calls": [call]}, {"chunks": ["The command printed sluice-ok."]}])
    done, events = run_codex(sluice, codex_home, "Run echo sluice-ok and tell me what it printed.")
    assert done.returncode == 0, done.stderr[-4000:] + done.stdout[-4000:]
    bodies = upstream_bodies(upstream)
    assert len(bodies) >= 2, bodies
    second = bodies[1]["messages"]
    results = [m for m in second if m["role"] == "tool"]
    assert results and results[-1]["tool_call_id"] == "call_sh1"
    assert "sluice-ok" in results[-1]["content"]
    calls = [m for m in second if m["role"] == "assistant" and m.get("tool_calls")]
    assert calls[-1]["tool_calls"][0]["function"]["name"] == "exec_command"
    messages = [e["item"]["text"] for e in events
                if e.get("type") == "item.completed" and e.get("item", {}).get("type") == "agent_message"]
    assert messages[-1] == "The command printed sluice-ok."
