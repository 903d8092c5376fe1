"""Resumable streams across instances (issue 16): two `sluice serve` processes on one real
redis-server, behind nginx (Debian's) as a round-robin load balancer. A stream produced by one is
resumed through the other, from the events its producer logged in Redis Streams; the producer runs
on while a client reads it through the other instance (longer than resume.keep_s); a background
response of the Responses API is made, retrieved, resumed and cancelled through the balancer by the
official `openai` SDK; the producer killed with SIGKILL leaves its reader an error event, never a
hang; another key's 404 and the byte cap hold there too. The processes are shared by the module;
the kill test has a producer of its own."""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from clients_support import needs_node, run_node
from conftest import Upstream, _wait_for
from resume_support import (Stream, check_sdk_cancel, check_sdk_resume, data_events, read_all, read_then_drop,
                            seed_text)
from store_support import Redis, Serve, create_key, free_port, request, write_config

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx missing: run `make deps`")

MAX_BYTES = 8192
KEEP_S = 2
WORDS = [f"w{i} " for i in range(40)]
RESUME_TOML = f"[resume]\nmax_bytes = {MAX_BYTES}\nkeep_s = {KEEP_S}\nretry_ms = 500\n"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    up = Upstream(str(tmp_path_factory.mktemp("upstream")))
    yield up
    up.stop()


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    server = Redis(str(tmp_path_factory.mktemp("redis")))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pair(tmp_path_factory, upstream, redis):
    started = []
    for name in ("a", "b"):
        workdir = str(tmp_path_factory.mktemp(name))
        config = write_config(workdir, redis.url, upstream, server={"max_answer_bytes": 0}, extra_toml=RESUME_TOML)
        started.append(Serve(workdir, config))
    yield started
    for s in started:
        code = s.stop()
        assert code == 0, s.log_text()[-4000:]


class Balancer:
    """nginx in front of the instances: round robin, no buffering (SSE goes through as it comes)."""

    def __init__(self, workdir, ports):
        self.port = free_port()
        os.makedirs(workdir, exist_ok=True)
        servers = "\n".join(f"        server 127.0.0.1:{p};" for p in ports)
        temp = "\n".join(f"    {kind}_temp_path {workdir}/{kind};"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf = f"""worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
{temp}
    upstream sluice {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass http://sluice;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""
        path = os.path.join(workdir, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        self.log = open(os.path.join(workdir, "nginx.out"), "w")
        self.proc = subprocess.Popen(["nginx", "-p", workdir, "-c", path, "-g", "daemon off;"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.base_url = f"http://127.0.0.1:{self.port}"

        def up():
            try:
                urllib.request.urlopen(self.base_url + "/healthz", timeout=2).read()
                return True
            except OSError:
                return False

        _wait_for(up, 20, "nginx to listen", self.proc)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def balancer(tmp_path_factory, pair):
    lb = Balancer(str(tmp_path_factory.mktemp("nginx")), [s.port for s in pair])
    yield lb
    lb.stop()


@pytest.fixture(autouse=True)
def fresh_script(upstream):
    upstream.reset()


def headers(key, **extra):
    return {"Authorization": f"Bearer {key}", **extra}


def chat(target, key, body):
    return Stream(target, "POST", "/api/v1/chat/stream", body, headers(key))


def resume(target, key, stream_id, last_event_id):
    return Stream(target, "GET", f"/api/v1/streams/{stream_id}", headers=headers(key, **{"Last-Event-ID": str(last_event_id)}))


def metric(instance, name, key):
    status, _, text = request(instance.base_url, "GET", "/metrics", key)
    assert status == 200, text
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


@pytest.fixture(scope="module")
def key(pair):
    found = [s.first_key for s in pair if s.first_key]
    assert len(found) == 1, found
    return found[0]


def test_a_client_that_drops_resumes_through_the_balancer_on_the_other_instance(upstream, pair, balancer, key):
    upstream.script(chunks=WORDS, chunk_delay_ms=100)  # 4 s: longer than resume.keep_s
    made = [metric(s, "sluice_resumable_streams_total", key) for s in pair]
    resumed = [metric(s, "sluice_resumed_streams_total", key) for s in pair]
    first = chat(balancer, key, {"message": "count", "session_id": "shared-1", "resumable": True})
    assert first.status == 200
    stream_id = first.headers["X-Sluice-Stream-Id"]
    head = data_events(read_then_drop(first, 5))
    ids = [int(e["id"]) for e in head]
    assert ids == [1, 2, 3, 4, 5]
    producer = [i for i, s in enumerate(pair) if metric(s, "sluice_resumable_streams_total", key) == made[i] + 1]
    assert len(producer) == 1
    other = 1 - producer[0]

    # Round robin: the reconnect goes to the other instance, which has the stream only in Redis.
    second = resume(balancer, key, stream_id, ids[-1])
    assert second.status == 200 and second.headers["X-Sluice-Stream-Id"] == stream_id
    rest_all = read_all(second)
    assert rest_all[0] == {"retry": "500"}
    rest = data_events(rest_all)
    assert metric(pair[other], "sluice_resumed_streams_total", key) == resumed[other] + 1
    assert metric(pair[producer[0]], "sluice_resumed_streams_total", key) == resumed[producer[0]]
    # Every event exactly once, in order, ending as an uninterrupted stream does.
    assert [int(e["id"]) for e in rest] == list(range(6, 6 + len(rest)))
    assert rest[-1]["data"] == "[DONE]"
    final = json.loads(rest[-2]["data"])
    assert final["done"] is True and final["finish_reason"] == "stop", final
    assert seed_text(head) + seed_text(rest) == "".join(WORDS)
    # The producer kept going past resume.keep_s: its reader was on the other instance.
    assert len(upstream.log()) == 1

    # The turn is stored: the session goes on through either instance.
    status, _, text = request(pair[other].base_url, "GET", "/api/v1/sessions/shared-1", key)
    assert status == 200, text
    messages = json.loads(text)["messages"]
    assert messages[-1]["content"] == "".join(WORDS), messages[-1]


def published(redis, stream_id):
    """Waits until the producer wrote the end of its log to Redis (a reconnect after the stream ended)."""
    _wait_for(lambda: redis.command("HGET", f"sluice:log_meta:{stream_id}", "done") == b"$1\r\n1\r\n", 10,
              "the producer's last write")


def test_a_finished_stream_replays_on_the_other_instance_and_another_key_gets_404(upstream, redis, pair, key):
    a, b = pair
    upstream.script(chunks=WORDS[:10])
    first = chat(a, key, {"message": "short", "resumable": True})
    stream_id = first.headers["X-Sluice-Stream-Id"]
    whole = data_events(read_all(first))
    assert whole[-1]["data"] == "[DONE]"
    published(redis, stream_id)
    replay = data_events(read_all(resume(b, key, stream_id, 3)))
    assert replay == whole[3:]
    other_key, _ = create_key(a.config_path, name="nosy")
    refused = resume(b, other_key, stream_id, 0)
    assert refused.status == 404
    refused.close()
    unknown = resume(b, key, "st_nothing_here", 0)
    assert unknown.status == 404
    unknown.close()


def test_past_the_byte_cap_the_other_instance_refuses_the_resume(upstream, redis, pair, key):
    a, b = pair
    words = [f"{i:04d}" + "x" * 36 for i in range(300)]  # ~30 KB of events, past resume.max_bytes
    upstream.script(chunks=words)
    first = chat(a, key, {"message": "long", "resumable": True})
    stream_id = first.headers["X-Sluice-Stream-Id"]
    events = read_all(first)
    assert any("no longer resumable" in e.get("comment", "") for e in events), events[-3:]
    published(redis, stream_id)
    refused = resume(b, key, stream_id, 1)
    assert refused.status == 410, refused.status
    body = refused.res.read().decode()
    assert "no longer resumable" in body
    refused.close()


@needs_node
def test_the_openai_sdk_runs_background_responses_through_the_balancer(upstream, balancer, key):
    """Each SDK call goes to the next instance: create, retrieve, resume and cancel cross them."""
    upstream.script(chunks=WORDS[:20], chunk_delay_ms=50)
    got = run_node("responses_background.mjs", {"base_url": balancer.base_url + "/v1", "key": key,
                                                "model": "cloud", "steps": ["resume_stream"]})
    check_sdk_resume(got["resume_stream"], WORDS[:20])
    assert got["resume_stream"]["during_status"] == "in_progress"
    upstream.script(chunks=WORDS, chunk_delay_ms=200)
    got = run_node("responses_background.mjs", {"base_url": balancer.base_url + "/v1", "key": key,
                                                "model": "cloud", "steps": ["cancel"]})
    check_sdk_cancel(got["cancel"], WORDS)


def test_a_background_response_is_cancelled_through_the_other_instance(upstream, pair, key):
    a, b = pair
    upstream.script(chunks=WORDS, chunk_delay_ms=150)  # 6 s
    status, _, text = request(a.base_url, "POST", "/v1/responses", key,
                              {"model": "cloud", "input": "count", "background": True})
    assert status == 200, text
    rid = json.loads(text)["id"]
    status, _, text = request(b.base_url, "GET", f"/v1/responses/{rid}", key)
    assert status == 200 and json.loads(text)["status"] == "in_progress", text
    time.sleep(0.8)
    asked = time.monotonic()
    status, _, text = request(b.base_url, "POST", f"/v1/responses/{rid}/cancel", key)
    took = time.monotonic() - asked
    assert status == 200, text
    cancelled = json.loads(text)
    assert cancelled["status"] == "cancelled", cancelled
    partial = cancelled["output"][0]["content"][0]["text"]
    assert partial.startswith("w0 ") and len(partial) < len("".join(WORDS))
    assert took < 4, took  # the producer's heartbeat carried the cancel within about a second
    assert upstream.log()[-1]["t_closed"] is not None or _wait_for(
        lambda: upstream.log()[-1]["t_closed"] is not None, 10, "the upstream to be closed")
    status, _, text = request(a.base_url, "GET", f"/v1/responses/{rid}", key)
    assert json.loads(text)["status"] == "cancelled"


def test_a_killed_producer_leaves_its_reader_an_error_event_never_a_hang(tmp_path, upstream, redis, pair, key):
    workdir = str(tmp_path / "doomed")
    doomed = Serve(workdir, write_config(workdir, redis.url, upstream, extra_toml=RESUME_TOML))
    try:
        upstream.script(chunks=WORDS, chunk_delay_ms=200)  # 8 s
        first = chat(doomed, key, {"message": "count", "resumable": True})
        stream_id = first.headers["X-Sluice-Stream-Id"]
        head = data_events(read_then_drop(first, 3))
        reader = resume(pair[1], key, stream_id, int(head[-1]["id"]))
        assert reader.status == 200
        got = []
        for event in reader.events():
            got.append(event)
            if len(data_events(got)) >= 3:
                break
        doomed.kill9()
        killed = time.monotonic()
        got += list(reader.events())  # the body ends: the reader does not hang
        ended = time.monotonic() - killed
        reader.close()
    finally:
        if doomed.alive():
            doomed.kill9()
    events = data_events(got)
    assert [int(e["id"]) for e in events if "id" in e] == list(range(4, 4 + len([e for e in events if "id" in e])))
    error = json.loads(events[-2]["data"]) if events[-1]["data"] == "[DONE]" else json.loads(events[-1]["data"])
    assert error.get("error") or error.get("code"), events[-3:]
    assert "stopped before its end" in json.dumps(error), error
    assert seed_text([e for e in events if "id" in e and e["data"] != "[DONE]"]).startswith(WORDS[3])
    print(f"the reader ended {ended:.2f} s after the producer was killed")
    assert ended < 10, ended
