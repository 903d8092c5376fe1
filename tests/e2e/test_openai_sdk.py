"""The official `openai` npm SDK, unchanged, pointed at sluice's /v1: non-streaming and streaming
chat, its accumulating stream helper, the model list, its typed errors, and an abort that reaches
the upstream. The cloud model is the scripted upstream."""

from clients_support import chat_turns, needs_node, run_node, wait_upstream_closed

pytestmark = needs_node


def sdk(sluice, steps, **config):
    return run_node("openai_sdk.mjs", {"base_url": sluice.base_url + "/v1", "key": sluice.key, "steps": steps,
                                       **config})


def test_completion_and_stream(sluice, upstream):
    upstream.script(chunks=["Hel", "lo", " from", " the cloud"], usage={"prompt_tokens": 9, "completion_tokens": 4})
    out = sdk(sluice, ["completion", "stream", "stream_helper"], model="auto",
              params={"max_tokens": 50, "temperature": 0.2, "top_p": 0.5, "stop": ["\n\n"], "seed": 7,
                      "user": "tester"})

    completion = out["completion"]
    assert "error" not in completion, completion
    assert completion["object"] == "chat.completion"
    assert completion["id"].startswith("chatcmpl-")
    assert completion["model"] == "cloud"
    assert len(completion["choices"]) == 1
    choice = completion["choices"][0]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == "Hello from the cloud"
    assert choice["finish_reason"] == "stop"
    assert completion["usage"] == {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}

    # The request's parameters reached the model.
    sent = [r["body"] for r in upstream.log() if r["path"].endswith("/chat/completions")][0]
    assert sent["max_tokens"] == 50
    assert sent["temperature"] == 0.2
    assert sent["top_p"] == 0.5
    assert sent["stop"] == ["\n\n"]
    assert sent["seed"] == 7
    assert sent["messages"][-1] == {"role": "user", "content": "Say hello"}

    chunks = out["stream"]["chunks"]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert {c["model"] for c in chunks} == {"cloud"}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello from the cloud"
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finish) == 1 and finish[0]["choices"][0]["finish_reason"] == "stop"
    # include_usage: one last chunk with no choices carries the usage; the others say null.
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
    assert all(c["usage"] is None for c in chunks[:-1])

    helper = out["stream_helper"]
    assert "error" not in helper, helper
    assert "".join(helper["deltas"]) == "Hello from the cloud"
    assert helper["final"]["choices"][0]["message"]["content"] == "Hello from the cloud"
    assert helper["final"]["choices"][0]["finish_reason"] == "stop"


def test_models_and_model_names(sluice, upstream):
    upstream.script(chunks=["ok"])
    out = sdk(sluice, ["models", "completion"], model="cloud")
    assert "cloud" in out["models"]["ids"]
    assert "auto" in out["models"]["ids"]
    assert out["completion"]["choices"][0]["message"]["content"] == "ok"

    for model in ("cloud_large", "auto"):
        assert sdk(sluice, ["completion"], model=model)["completion"]["model"] == "cloud"

    missing = sdk(sluice, ["completion", "stream"], model="no-such-model")
    for step in ("completion", "stream"):
        error = missing[step]["error"]
        assert error["status"] == 404, error
        assert error["name"] == "NotFoundError"
        assert "no-such-model" in error["message"]


def test_typed_errors(sluice, upstream):
    bad_key = run_node("openai_sdk.mjs", {"base_url": sluice.base_url + "/v1", "key": "sk-" + "y" * 40,
                                          "steps": ["completion", "stream", "models"]})
    for step in ("completion", "stream", "models"):
        error = bad_key[step]["error"]
        assert error["status"] == 401, error
        assert error["name"] == "AuthenticationError"
        assert error["type"] == "invalid_request_error"
        assert error["code"] == "invalid_api_key"

    two = sdk(sluice, ["completion"], params={"n": 2})["completion"]["error"]
    assert two["status"] == 400 and two["name"] == "BadRequestError", two
    assert "n must be 1" in two["message"]

    upstream.script(status=503, retry_after="2")
    down = sdk(sluice, ["completion", "stream"])
    for step in ("completion", "stream"):
        error = down[step]["error"]
        assert error["status"] in (502, 503), error
        assert error["type"] == "server_error"

    # After the first token an error can only travel in the stream; the SDK raises it.
    upstream.script(chunks=["partial"], error_event={"message": "upstream fell over", "type": "server_error"})
    late = sdk(sluice, ["stream"])["stream"]
    assert "error" in late, late


def test_session_header_gives_memory(sluice, upstream):
    headers = {"X-Sluice-Session": "sdk-session-1"}
    upstream.script(chunks=["Hi Ada"])
    first = sdk(sluice, ["completion"], headers=headers, messages=[{"role": "user", "content": "I am Ada"}])
    assert first["completion"]["choices"][0]["message"]["content"] == "Hi Ada"
    upstream.script(chunks=["You are Ada"])
    sdk(sluice, ["stream"], headers=headers, messages=[{"role": "user", "content": "Who am I?"}])
    sent = upstream.log()[-1]["body"]["messages"]
    assert chat_turns(sent) == [("user", "I am Ada"), ("assistant", "Hi Ada"), ("user", "Who am I?")]

    # Without the header nothing is remembered.
    sdk(sluice, ["completion"], messages=[{"role": "user", "content": "Who am I?"}])
    sent = upstream.log()[-1]["body"]["messages"]
    assert chat_turns(sent) == [("user", "Who am I?")]


def test_abort_cancels_the_upstream(sluice, upstream):
    upstream.script(chunks=["word "] * 100, chunk_delay_ms=100)
    out = sdk(sluice, ["abort"], abort_after_chars=5)["abort"]
    assert out["text"].startswith("word")
    assert out["aborted"] is True, out
    assert len(out["text"]) < len("word ") * 100
    closed = wait_upstream_closed(upstream)
    assert closed and closed["closed_by_client"], closed
