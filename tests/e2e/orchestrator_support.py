"""Helpers for the orchestrator and session e2e tests: two-model configs and plain HTTP calls."""

import json
import socket
import time
import urllib.error
import urllib.request

from conftest import UPSTREAM_KEY_ENV


def model_toml(name, base_url, role="cloud_large", **extra):
    lines = ["[[models]]", f'name = "{name}"', f'role = "{role}"', 'provider = "openai"',
             f'base_url = "{base_url}/v1"', f'model = "{name}-upstream"', f'api_key_env = "{UPSTREAM_KEY_ENV}"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    return "\n".join(lines) + "\n\n"


def closed_port_url():
    """A base URL nothing listens on: connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def parse_events(raw):
    events = []
    for line in raw.decode().splitlines():
        if not line.startswith("data:"):
            continue
        data = line[len("data:"):].strip()
        if data == "[DONE]":
            break
        events.append(json.loads(data))
    return events


def call(sluice, method, path, body=None, key=None):
    """-> (status, headers, raw body)"""
    data = json.dumps(body).encode() if body is not None else None
    headers = dict(sluice.headers(key))
    if data is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(sluice.base_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=120) as res:
            return res.status, {k.lower(): v for k, v in res.headers.items()}, res.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def stream(sluice, body, key=None):
    """POST /api/v1/chat/stream -> (status, headers, events)"""
    status, headers, raw = call(sluice, "POST", "/api/v1/chat/stream", body, key)
    return status, headers, parse_events(raw)


def text_of(events):
    return "".join(e.get("content", "") for e in events)


def final_of(events):
    finals = [e for e in events if e.get("done")]
    assert len(finals) == 1, events
    return finals[0]


def models(sluice):
    status, _, raw = call(sluice, "GET", "/api/v1/models")
    assert status == 200, raw
    return {m["name"]: m for m in json.loads(raw)["models"]}


def session(sluice, session_id, key=None):
    status, _, raw = call(sluice, "GET", f"/api/v1/sessions/{session_id}", key=key)
    return status, json.loads(raw) if raw else None


def wait_until(predicate, timeout=20, what="condition"):
    """Polls an observable state (not a stand-in for synchronisation: the state is what is tested)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
