"""The fault probe of issue 13 against the real binary: HTTP/1.0 clients, half-closed clients, clients
that stop reading, and a burst past a model's upstream connection limit. One sluice per setup is
shared by the tests of this module."""

import json
import socket
import threading
import time

import pytest

from conftest import Sluice, Upstream


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    up = Upstream(str(tmp_path_factory.mktemp("upstream")))
    yield up
    up.stop()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory, upstream):
    """Only the scripted cloud model, with a pool of 2 upstream connections and a breaker that would
    open on the first counted failure."""
    s = Sluice(str(tmp_path_factory.mktemp("cloud")), upstream,
               # The write-timeout tests need an upstream that sends 8 MB whatever max_tokens says:
               # the answer caps are off here (tests/e2e/test_answer_caps.py has them on).
               server={"write_timeout_s": 2, "request_timeout_s": 60, "max_answer_bytes": 0},
               extra_toml="max_connections = 2\npool_wait_ms = 300\ncircuit_failures = 1\n")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """Only the local tiny model (the embedded default)."""
    s = Sluice(str(tmp_path_factory.mktemp("local")), None)
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def fresh_script(request):
    if "upstream" in request.fixturenames:
        request.getfixturevalue("upstream").reset()


def request_bytes(sluice, body, version="1.1", extra=""):
    payload = json.dumps(body).encode()
    head = (f"POST /api/v1/chat/stream HTTP/{version}\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {sluice.key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n{extra}\r\n").encode()
    return head + payload


def read_to_eof(s, limit_s=30):
    s.settimeout(limit_s)
    chunks = []
    while True:
        data = s.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def split_response(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, body


def dechunk(body):
    out = b""
    while True:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out
        out += rest[:size]
        body = rest[size + 2:]


def data_events(text):
    return [e[len("data: "):] for e in text.split("\n\n") if e.startswith("data: ")]


def wait_closed(upstream, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = upstream.log()
        if log and log[-1]["t_closed"] is not None:
            return log[-1]
        time.sleep(0.02)
    return upstream.log()[-1] if upstream.log() else None


# --- HTTP/1.0 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra", ["", "Connection: keep-alive\r\n"])
def test_http10_stream_has_no_chunked_framing_and_ends_with_the_connection(local, extra):
    with socket.create_connection(("127.0.0.1", local.port), timeout=30) as s:
        s.sendall(request_bytes(local, {"message": "hello there", "max_tokens": 8}, version="1.0", extra=extra))
        raw = read_to_eof(s)
    status, headers, body = split_response(raw)
    assert status.startswith("HTTP/1.0 200"), raw[:300]
    assert "transfer-encoding" not in headers, headers
    assert "content-length" not in headers, headers
    assert headers.get("connection", "").lower() == "close", headers
    assert headers["content-type"] == "text/event-stream"
    events = data_events(body.decode())
    assert events[-1] == "[DONE]", body
    assert body.endswith(b"data: [DONE]\n\n"), body[-60:]
    parsed = [json.loads(e) for e in events[:-1]]
    assert all("content" in e for e in parsed)
    assert parsed[-1]["done"] is True and parsed[-1]["finish_reason"] in ("stop", "length")
    assert b"\r\n" not in body  # no chunk-size lines anywhere in the body


# --- half-close -----------------------------------------------------------------------------------

def test_a_half_closed_client_gets_its_whole_answer(local):
    with socket.create_connection(("127.0.0.1", local.port), timeout=30) as s:
        s.sendall(request_bytes(local, {"message": "hello there", "max_tokens": 8}))
        s.shutdown(socket.SHUT_WR)
        raw = read_to_eof(s)
    status, headers, body = split_response(raw)
    assert status.startswith("HTTP/1.1 200"), raw[:300]
    events = data_events(dechunk(body).decode())
    assert events[-1] == "[DONE]", events
    assert json.loads(events[-2])["finish_reason"] in ("stop", "length"), events


def test_a_half_closed_client_gets_a_cloud_answer_that_waits(cloud, upstream):
    # The first token is late: the probe that follows the FIN must not be taken for a disconnect.
    upstream.script(chunks=["slow", " answer"], first_byte_delay_ms=600)
    with socket.create_connection(("127.0.0.1", cloud.port), timeout=30) as s:
        s.sendall(request_bytes(cloud, {"message": "hi"}))
        s.shutdown(socket.SHUT_WR)
        raw = read_to_eof(s)
    events = data_events(dechunk(split_response(raw)[2]).decode())
    assert events[-1] == "[DONE]", events
    assert "".join(json.loads(e)["content"] for e in events[:-1]) == "slow answer"
    assert upstream.log()[-1]["closed_by_client"] is False


def test_a_client_that_closes_both_ways_before_the_first_token_cancels_at_once(cloud, upstream):
    upstream.script(chunks=["never"], first_byte_delay_ms=20000)
    with socket.create_connection(("127.0.0.1", cloud.port), timeout=30) as s:
        s.sendall(request_bytes(cloud, {"message": "hi"}))
        deadline = time.monotonic() + 10
        while not upstream.log() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert upstream.log(), "the request never reached the upstream"
        s.shutdown(socket.SHUT_RDWR)
        closed_at = time.monotonic()
    entry = wait_closed(upstream, 10)
    assert entry["closed_by_client"], entry
    assert entry["t_closed"] - closed_at < 0.5, entry["t_closed"] - closed_at


# --- write-progress timeout -----------------------------------------------------------------------

BIG_CHUNKS = ["x" * 20000] * 400  # 8 MB: more than the kernel buffers between sluice and the client


def test_a_client_that_never_reads_is_cut_after_write_timeout(cloud, upstream):
    upstream.script(chunks=BIG_CHUNKS)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", cloud.port))
    try:
        s.sendall(request_bytes(cloud, {"message": "hi"}))
        sent_at = time.monotonic()
        entry = wait_closed(upstream, 20)
        assert entry and entry["closed_by_client"], entry
        # write_timeout_s = 2, request_timeout_s = 60: the stream ends for the stalled write.
        assert entry["t_closed"] - sent_at < 10, entry["t_closed"] - sent_at
    finally:
        s.close()


def test_a_client_that_pauses_shorter_than_write_timeout_gets_everything(cloud, upstream):
    upstream.script(chunks=BIG_CHUNKS)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", cloud.port))
    try:
        s.sendall(request_bytes(cloud, {"message": "hi"}, extra="Connection: close\r\n"))
        time.sleep(1.0)  # the writes stall meanwhile, for less than write_timeout_s
        raw = read_to_eof(s)
    finally:
        s.close()
    body = split_response(raw)[2]
    assert body.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n"), body[-80:]
    assert upstream.log()[-1]["closed_by_client"] is False


# --- upstream pool limit --------------------------------------------------------------------------

def models(sluice):
    with socket.create_connection(("127.0.0.1", sluice.port), timeout=10) as s:
        s.sendall((f"GET /api/v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sluice.key}\r\n"
                   f"Connection: close\r\n\r\n").encode())
        raw = read_to_eof(s)
    body = split_response(raw)[2]
    if body[:1] != b"{":
        body = dechunk(body)
    return {m["name"]: m for m in json.loads(body)["models"]}


def test_a_burst_past_the_pool_limit_is_503_with_retry_after_and_the_circuit_stays_closed(cloud, upstream):
    upstream.script(chunks=["a"] + ["b"] * 10, chunk_delay_ms=200)
    holders = []
    started = threading.Barrier(3)
    results = []

    def hold():
        with socket.create_connection(("127.0.0.1", cloud.port), timeout=30) as s:
            s.sendall(request_bytes(cloud, {"message": "hi"}, extra="Connection: close\r\n"))
            got = b""
            while b'"content":"a"' not in got:
                got += s.recv(4096)
            started.wait(10)
            results.append(got + read_to_eof(s))

    for _ in range(2):
        t = threading.Thread(target=hold)
        t.start()
        holders.append(t)
    started.wait(10)  # both upstream connections are in use now
    asked_at = time.monotonic()
    with socket.create_connection(("127.0.0.1", cloud.port), timeout=30) as s:
        s.sendall(request_bytes(cloud, {"message": "hi"}, extra="Connection: close\r\n"))
        raw = read_to_eof(s)
    waited = time.monotonic() - asked_at
    status, headers, body = split_response(raw)
    assert status.startswith("HTTP/1.1 503"), raw[:400]
    assert int(headers["retry-after"]) >= 1, headers
    error = json.loads(data_events(body.decode())[0])
    assert error["code"] == 503 and error["content"] == ""
    assert 0.25 <= waited < 3, waited  # pool_wait_ms = 300
    for t in holders:
        t.join(30)
    # Both streams that held the connections finished normally.
    assert len(results) == 2 and all(r.rstrip().endswith(b"0") for r in results), results
    state = models(cloud)["cloud"]
    assert state["circuit"] == "closed" and state["available"] is True, state
