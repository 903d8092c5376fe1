"""The orchestrator end to end: fallback before the first token, none after it, the circuit breaker,
route.reason / X-Sluice-Route and GET /api/v1/models, with two models behind two scripted upstreams
(and the real local llama model for one case)."""

import json
import re

import pytest

from conftest import Upstream
from orchestrator_support import (call, closed_port_url, final_of, model_toml, models, parse_events, stream,
                                  text_of, wait_until)


@pytest.fixture
def backup(tmp_path):
    workdir = tmp_path / "backup"
    workdir.mkdir()
    up = Upstream(str(workdir))
    yield up
    up.stop()


def start_pair(start_sluice, primary_url, backup_url, primary_extra=None, backup_role="cloud_large"):
    """`cloud` (first choice for cloud_large) and `backup` (stands in for it: weight 0 takes no share)."""
    toml = model_toml("cloud", primary_url, **(primary_extra or {}))
    toml += model_toml("backup", backup_url, role=backup_role, weight=0)
    return start_sluice(None, extra_toml=toml)


CLOUD = {"model_type": "cloud_large"}


@pytest.mark.parametrize("status,why", [(500, "upstream_5xx"), (429, "rate_limited")])
def test_fallback_before_the_first_token(upstream, backup, start_sluice, status, why):
    s = start_pair(start_sluice, upstream.base_url, backup.base_url)
    upstream.script(status=status)
    backup.script(chunks=["from ", "backup"])
    code, headers, events = stream(s, {"message": "hi", "session_id": f"f{status}", **CLOUD})
    assert code == 200
    assert not [e for e in events if "error" in e], events
    assert text_of(events) == "from backup"
    final = final_of(events)
    assert final["model"] == "backup" and final["model_used"] == "cloud_large"
    assert final["route"]["reason"] == f"fallback:{why}"
    # Nothing had been written when the switch happened, so the header names the model that answered.
    assert "model=backup" in headers["x-sluice-route"]
    assert f"reason=fallback:{why}" in headers["x-sluice-route"]
    assert len(upstream.log()) == 1 and len(backup.log()) == 1
    assert all(e["model"] == "backup" for e in events)


def test_fallback_when_the_connection_is_refused(backup, start_sluice):
    s = start_pair(start_sluice, closed_port_url(), backup.base_url)
    backup.script(chunks=["still ", "here"])
    code, _, events = stream(s, {"message": "hi", **CLOUD})
    assert code == 200
    assert text_of(events) == "still here"
    final = final_of(events)
    assert final["model"] == "backup"
    assert final["route"]["reason"] == "fallback:connect"


def test_fallback_to_the_local_model(start_sluice):
    toml = model_toml("cloud", closed_port_url())
    # n_gpu_layers asked of this CPU-only build: a warning at start-up, every layer on the CPU.
    toml += ('[[models]]\nname = "local"\nrole = "local_small"\nprovider = "llama"\nn_ctx = 512\nn_parallel = 1\n'
             'n_gpu_layers = 8\n\n')
    s = start_sluice(None, extra_toml=toml)
    local = models(s)["local"]
    assert local["gpu_layers"] == 0 and local["gpu_offload"] is False, local
    assert "gpu_layers" not in models(s)["cloud"]
    assert "n_gpu_layers = 8 but this build has no GPU backend" in s.log_text()
    assert "CPU only (a build without a GPU backend)" in s.log_text()
    code, _, events = stream(s, {"message": "hi", "max_tokens": 8, **CLOUD})
    assert code == 200
    assert not [e for e in events if "error" in e], events
    final = final_of(events)
    assert final["model"] == "local" and final["model_used"] == "local_small"
    assert final["route"]["reason"] == "fallback:connect"
    assert final["usage"]["completion_tokens"] > 0


def test_no_fallback_after_the_first_token(upstream, backup, start_sluice):
    s = start_pair(start_sluice, upstream.base_url, backup.base_url)
    upstream.script(chunks=["Hel", "lo", " world"], reset_after=1)
    code, _, events = stream(s, {"message": "hi", "session_id": "nf1", **CLOUD})
    assert code == 200
    assert events[0]["content"] == "Hel" and events[0]["model"] == "cloud"
    assert "error" in events[-1] and events[-1]["content"] == ""
    assert not [e for e in events if e.get("done")]
    assert backup.log() == []


def test_all_candidates_fail_the_last_error_reaches_the_client(upstream, backup, start_sluice):
    s = start_pair(start_sluice, upstream.base_url, backup.base_url)
    upstream.script(status=500)
    backup.script(status=429, retry_after="7")
    code, _, events = stream(s, {"message": "hi", **CLOUD})
    assert code == 429
    assert len(events) == 1 and events[0]["code"] == 429 and events[0]["content"] == ""


def test_circuit_opens_after_n_failures_then_a_probe_closes_it(upstream, backup, start_sluice):
    s = start_pair(start_sluice, upstream.base_url, backup.base_url,
                   primary_extra={"circuit_failures": 2, "circuit_open_s": 1})
    upstream.script(status=500)
    assert models(s)["cloud"]["circuit"] == "closed"
    for _ in range(2):
        code, _, events = stream(s, {"message": "hi", **CLOUD})
        assert code == 200 and final_of(events)["model"] == "backup"
    state = models(s)["cloud"]
    assert state["circuit"] == "open" and state["available"] is False and state["recent_errors"] >= 2
    assert models(s)["backup"]["circuit"] == "closed"

    # While open, requests skip it: the upstream sees nothing more.
    code, _, events = stream(s, {"message": "hi", **CLOUD})
    assert code == 200 and final_of(events)["model"] == "backup"
    assert len(upstream.log()) == 2

    # After circuit_open_s one probe decides; the upstream has recovered.
    upstream.script(chunks=["back ", "again"])
    wait_until(lambda: models(s)["cloud"]["circuit"] != "open", timeout=10, what="the circuit to half-open")
    code, _, events = stream(s, {"message": "hi", **CLOUD})
    assert code == 200
    assert text_of(events) == "back again" and final_of(events)["model"] == "cloud"
    state = models(s)["cloud"]
    assert state["circuit"] == "closed" and state["available"] is True


def test_failed_probe_opens_the_circuit_again(upstream, backup, start_sluice):
    s = start_pair(start_sluice, upstream.base_url, backup.base_url,
                   primary_extra={"circuit_failures": 1, "circuit_open_s": 1})
    upstream.script(status=503)
    stream(s, {"message": "hi", **CLOUD})
    assert models(s)["cloud"]["circuit"] == "open"
    wait_until(lambda: models(s)["cloud"]["circuit"] != "open", timeout=10, what="the circuit to half-open")
    code, _, events = stream(s, {"message": "hi", **CLOUD})
    assert code == 200 and final_of(events)["model"] == "backup"
    assert models(s)["cloud"]["circuit"] == "open"
    assert len(upstream.log()) == 2


def test_route_header_and_final_event_say_why(upstream, backup, start_sluice):
    s = start_pair(start_sluice, upstream.base_url, backup.base_url, backup_role="local_small")
    code, headers, events = stream(s, {"message": "hi", **CLOUD})
    assert code == 200
    route = final_of(events)["route"]
    assert route["reason"] == "model_type" and 0 <= route["score"] <= 1
    assert re.fullmatch(r"role=cloud_large; model=cloud; reason=model_type; score=[0-9.eE+-]+",
                        headers["x-sluice-route"]), headers["x-sluice-route"]

    # preferred_model wins over model_type.
    code, headers, events = stream(s, {"message": "hi", "preferred_model": "backup", **CLOUD})
    assert code == 200
    final = final_of(events)
    assert final["model"] == "backup" and final["model_used"] == "local_small"
    assert final["route"]["reason"] == "preferred_model"
    assert headers["x-sluice-route"].startswith("role=local_small; model=backup; reason=preferred_model")

    # The JSON endpoint carries the route too.
    status, headers, raw = call(s, "POST", "/api/v1/chat", {"message": "hi", **CLOUD})
    assert status == 200
    body = json.loads(raw)
    assert body["route"]["reason"] == "model_type" and body["model"] == "cloud"
    assert headers["x-sluice-route"].startswith("role=cloud_large; model=cloud; reason=model_type; score=")


def test_unknown_preferred_model_is_404(upstream, backup, start_sluice):
    s = start_pair(start_sluice, upstream.base_url, backup.base_url)
    code, _, events = stream(s, {"message": "hi", "preferred_model": "nope"})
    assert code == 404 and events[0]["code"] == 404


def test_models_lists_role_provider_circuit_and_queue(upstream, backup, start_sluice):
    s = start_pair(start_sluice, upstream.base_url, backup.base_url, backup_role="local_small")
    listed = models(s)
    assert list(listed) == ["cloud", "backup"]
    for name, role in [("cloud", "cloud_large"), ("backup", "local_small")]:
        m = listed[name]
        assert m["role"] == role and m["provider"] == "openai" and m["available"] is True
        assert m["circuit"] == "closed" and m["recent_errors"] == 0
        assert m["queue_depth"] == 0 and "active" in m


def test_missing_role_without_fallback_is_503(upstream, start_sluice):
    s = start_sluice(upstream, extra_toml="[routing]\nfallback = false\n")
    code, headers, events = stream(s, {"message": "hi", "model_type": "local_small"})
    assert code == 503 and events[0]["code"] == 503 and "retry-after" in headers
    assert upstream.log() == []


def test_fallback_on_a_first_byte_timeout(upstream, backup, start_sluice):
    s = start_pair(start_sluice, upstream.base_url, backup.base_url, primary_extra={"first_byte_timeout_ms": 300})
    upstream.script(first_byte_delay_ms=5000)
    backup.script(chunks=["on ", "time"])
    code, _, events = stream(s, {"message": "hi", **CLOUD})
    assert code == 200 and text_of(events) == "on time"
    assert final_of(events)["route"]["reason"] == "fallback:timeout"


def test_fallback_after_heartbeats_keeps_the_stream(upstream, backup, start_sluice):
    toml = model_toml("cloud", upstream.base_url) + model_toml("backup", backup.base_url, weight=0)
    s = start_sluice(None, server={"heartbeat_interval_s": 1}, extra_toml=toml)
    upstream.script(status=500, first_byte_delay_ms=1500)
    status, headers, raw = call(s, "POST", "/api/v1/chat/stream", {"message": "hi", **CLOUD})
    assert status == 200
    assert b": ping" in raw.split(b"data:")[0]  # a heartbeat went out before the switch
    events = parse_events(raw)
    assert not [e for e in events if "error" in e]
    final = final_of(events)
    assert final["model"] == "backup" and final["route"]["reason"] == "fallback:upstream_5xx"
    # The header had gone out with the first choice; the final event says who answered and why.
    assert "model=cloud" in headers["x-sluice-route"]
