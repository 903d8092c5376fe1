"""[[routing.rules]] and routing.balance end to end: two scripted upstreams behind two cloud models of
one role; the weighted shares, rules by header, key name and requested model (route.reason
rule:<name>), `sluice route` naming the rule, least_busy under uneven load, and an opened circuit
moving all traffic. The servers are shared per module (one start each)."""

import json
import subprocess
import threading
import urllib.error
import urllib.request

import pytest

from conftest import Sluice, Upstream, _binary
from orchestrator_support import final_of, model_toml, models, parse_events, text_of, wait_until

CLOUD = {"model_type": "cloud_large"}

RULES = """
[[routing.rules]]
name = "research"
when = { header = "X-Team: research*" }
use = "beta"

[[routing.rules]]
name = "batch"
when = { key_name = "batch-*" }
use = "alpha"

[[routing.rules]]
name = "haiku"
when = { model = "claude-*haiku*" }
use = "beta"

[[routing.rules]]
name = "deploys"
when = { message_regex = '\\bdeploy(ment)?\\b', max_prompt_tokens = 50 }
use = "beta"
"""


def start(workdir, alpha, beta, alpha_extra=None, beta_extra=None, extra=""):
    toml = model_toml("alpha", alpha.base_url, **(alpha_extra or {}))
    toml += model_toml("beta", beta.base_url, **(beta_extra or {}))
    return Sluice(str(workdir), None, extra_toml=toml + extra)


def post(s, path, body, key=None, headers=None):
    """-> (status, headers, raw body)"""
    req = urllib.request.Request(s.base_url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={**s.headers(key), "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            return res.status, {k.lower(): v for k, v in res.headers.items()}, res.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def answer(s, body, key=None, headers=None):
    """POST /api/v1/chat/stream -> its final event"""
    status, _, raw = post(s, "/api/v1/chat/stream", body, key, headers)
    assert status == 200, raw
    events = parse_events(raw)
    assert not [e for e in events if "error" in e], events
    return final_of(events)


@pytest.fixture(scope="module")
def alpha(tmp_path_factory):
    up = Upstream(str(tmp_path_factory.mktemp("alpha")))
    yield up
    up.stop()


@pytest.fixture(scope="module")
def beta(tmp_path_factory):
    up = Upstream(str(tmp_path_factory.mktemp("beta")))
    yield up
    up.stop()


@pytest.fixture
def scripts(alpha, beta):
    """Both upstreams answer at once, with their own name, and forget earlier requests."""
    alpha.reset()
    beta.reset()
    alpha.script(chunks=["from ", "alpha"])
    beta.script(chunks=["from ", "beta"])
    return alpha, beta


@pytest.fixture(scope="module")
def ruled(alpha, beta, tmp_path_factory):
    """alpha (weight 3, alias claude-*) and beta (weight 1), routing.balance weighted, the rules above."""
    s = start(tmp_path_factory.mktemp("ruled"), alpha, beta, alpha_extra={"weight": 3, "aliases": ["claude-*"]},
              beta_extra={"weight": 1}, extra=RULES)
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def least_busy(alpha, beta, tmp_path_factory):
    s = start(tmp_path_factory.mktemp("least_busy"), alpha, beta, extra='[routing]\nbalance = "least_busy"\n')
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def fastest(alpha, beta, tmp_path_factory):
    s = start(tmp_path_factory.mktemp("fastest"), alpha, beta, extra='[routing]\nbalance = "latency"\n')
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def breakable(alpha, beta, tmp_path_factory):
    s = start(tmp_path_factory.mktemp("breakable"), alpha, beta, alpha_extra={"circuit_failures": 1,
                                                                               "circuit_open_s": 600})
    yield s
    assert s.stop() == 0


def test_weighted_shares_follow_the_weights(ruled, scripts):
    alpha, beta = scripts
    served = [answer(ruled, {"message": f"share {i}", **CLOUD}) for i in range(40)]
    counts = {name: sum(1 for f in served if f["model"] == name) for name in ("alpha", "beta")}
    # Smooth weighted round robin: exact over whole cycles of 3 + 1, from any starting point.
    assert counts == {"alpha": 30, "beta": 10}
    assert len(alpha.log()) == 30 and len(beta.log()) == 10
    assert all(f["route"]["reason"] == "model_type" for f in served)
    # Interleaved, not in runs: beta never waits more than three alpha answers.
    picks = "".join(f["model"][0] for f in served)
    assert "aaaa" not in picks and "bb" not in picks, picks


def test_a_rule_by_header(ruled, scripts):
    _, beta = scripts
    final = answer(ruled, {"message": "hi"}, headers={"X-Team": "research-nlp"})
    assert final["model"] == "beta" and final["route"]["reason"] == "rule:research"
    assert beta.log()[-1]["body"]["messages"][-1]["content"] == "hi"
    # Another value, or no header: not this rule (the auto policy's reason, whichever model answered).
    for headers in ({"X-Team": "sales"}, {}):
        assert not answer(ruled, {"message": "hi"}, headers=headers)["route"]["reason"].startswith("rule:")


def test_a_rule_by_key_name(ruled, scripts):
    alpha, _ = scripts
    batch_key = ruled.create_key(name="batch-nightly")
    other_key = ruled.create_key(name="interactive")
    for _ in range(3):  # every time, whatever the round robin's turn
        final = answer(ruled, {"message": "hi"}, key=batch_key)
        assert final["model"] == "alpha" and final["route"]["reason"] == "rule:batch"
    assert len(alpha.log()) == 3
    assert not answer(ruled, {"message": "hi"}, key=other_key)["route"]["reason"].startswith("rule:")
    # The rules run in order: the header rule comes first.
    final = answer(ruled, {"message": "hi"}, key=batch_key, headers={"x-team": "research"})
    assert final["model"] == "beta" and final["route"]["reason"] == "rule:research"


def test_a_rule_by_requested_model_overrides_the_alias_but_not_a_configured_name(ruled, scripts):
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": False}
    status, headers, raw = post(ruled, "/v1/chat/completions", {**body, "model": "claude-3-5-haiku"})
    assert status == 200, raw
    assert "model=beta" in headers["x-sluice-route"] and "reason=rule:haiku" in headers["x-sluice-route"]
    assert json.loads(raw)["choices"][0]["message"]["content"] == "from beta"
    # claude-opus is alpha's alias, and no rule names it.
    status, headers, raw = post(ruled, "/v1/chat/completions", {**body, "model": "claude-opus-4"})
    assert status == 200 and "model=alpha" in headers["x-sluice-route"], headers
    assert "reason=preferred_model" in headers["x-sluice-route"]
    # A configured name is the client's own choice: before the rules.
    status, headers, raw = post(ruled, "/v1/chat/completions", {**body, "model": "alpha"},
                                headers={"X-Team": "research"})
    assert status == 200 and "model=alpha; reason=preferred_model" in headers["x-sluice-route"], headers


def test_a_rule_by_message_regex_and_prompt_size(ruled, scripts):
    final = answer(ruled, {"message": "Plan the deployment for friday"})
    assert final["model"] == "beta" and final["route"]["reason"] == "rule:deploys"
    # Past max_prompt_tokens (51 tokens = 201+ bytes) the rule does not hold.
    long = "Plan the deployment for friday " + "x" * 200
    assert answer(ruled, {"message": long})["route"]["reason"] != "rule:deploys"


def test_sluice_route_names_the_rule_or_the_policy(ruled):
    def route(*args):
        out = subprocess.run([_binary(), "route", "--config", ruled.config_path, *args], cwd=ruled.workdir,
                             env=ruled.env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    by_header = route("--header", "x-team: research", "hi")
    assert "decided:   rule research (use beta)" in by_header and "model:     beta" in by_header
    assert "reason:    rule:research" in by_header
    assert "decided:   rule batch (use alpha)" in route("--key-name", "batch-1", "hi")
    assert "decided:   rule haiku (use beta)" in route("--model", "claude-3-haiku", "hi")
    assert "decided:   auto policy" in route("hi")
    as_json = json.loads(route("--json", "--key-name", "batch-1", "hi"))
    assert as_json["rule"] == "batch" and as_json["model"] == "alpha" and as_json["route_reason"] == "rule:batch"


def test_least_busy_sends_traffic_away_from_the_loaded_model(least_busy, scripts):
    alpha, beta = scripts
    # Two slow answers held open on alpha (chosen by name, so the balance has no say in them).
    alpha.script(chunks=["slow"], first_byte_delay_ms=4000)
    held = [threading.Thread(target=answer, args=(least_busy, {"message": "hold", "preferred_model": "alpha"}))
            for _ in range(2)]
    for t in held:
        t.start()
    wait_until(lambda: len(alpha.log()) == 2, timeout=20, what="alpha to hold two streams")
    try:
        served = [answer(least_busy, {"message": f"busy {i}", **CLOUD})["model"] for i in range(6)]
        assert served == ["beta"] * 6
        assert len(alpha.log()) == 2
    finally:
        for t in held:
            t.join(30)
    wait_until(lambda: models(least_busy)["alpha"]["active"] == 0, timeout=10, what="alpha's streams to end")
    # Even load again: both share it.
    served = [answer(least_busy, {"message": f"even {i}", **CLOUD})["model"] for i in range(6)]
    assert served.count("alpha") == 3 and served.count("beta") == 3, served


def test_latency_sends_traffic_to_the_fastest_first_token(fastest, scripts):
    alpha, beta = scripts
    alpha.script(chunks=["from ", "alpha"], first_byte_delay_ms=400)
    # Neither has a sample yet: each is tried once (alpha first, in config order, then beta).
    first = [answer(fastest, {"message": f"probe {i}", **CLOUD})["model"] for i in range(2)]
    assert first == ["alpha", "beta"]
    served = [answer(fastest, {"message": f"fast {i}", **CLOUD})["model"] for i in range(6)]
    assert served == ["beta"] * 6
    assert len(alpha.log()) == 1


def test_an_open_circuit_moves_all_traffic_to_the_other_model(breakable, scripts):
    alpha, beta = scripts
    before = [answer(breakable, {"message": f"before {i}", **CLOUD})["model"] for i in range(4)]
    assert before.count("alpha") == 2 and before.count("beta") == 2, before
    alpha.script(status=500)
    # The next request alpha takes fails before its first token: beta answers, and the circuit opens.
    finals = [answer(breakable, {"message": f"fail {i}", **CLOUD}) for i in range(2)]
    assert [f["model"] for f in finals] == ["beta", "beta"]
    assert "fallback:upstream_5xx" in [f["route"]["reason"] for f in finals]
    alpha_calls = len(alpha.log())
    assert alpha_calls == 3  # two answers before, one failure
    after = [answer(breakable, {"message": f"after {i}", **CLOUD}) for i in range(8)]
    assert all(f["model"] == "beta" for f in after)
    assert len(alpha.log()) == alpha_calls  # no request reached alpha while its circuit is open
    status, _, raw = post(breakable, "/api/v1/chat/stream", {"message": "hi", "preferred_model": "alpha"})
    assert status == 200 and final_of(parse_events(raw))["route"]["reason"] == "fallback:circuit_open"
    assert text_of(parse_events(raw)) == "from beta"


def test_a_bad_rule_stops_start_up_naming_it(alpha, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(f'[server]\nlisten = "127.0.0.1:0"\n[store]\nurl = "sqlite://{tmp_path}/data/sluice.db"\n\n'
                      + model_toml("alpha", alpha.base_url)
                      + '[[routing.rules]]\nname = "typo"\nwhen = { key_name = "batch-*" }\nuse = "alpah"\n')
    out = subprocess.run([_binary(), "serve", "--config", str(config)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert 'routing.rules.typo.use = "alpah"' in out.stderr and "known: auto, cloud_large, alpha" in out.stderr
