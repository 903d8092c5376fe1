"""SIGTERM with streams still running past server.shutdown_grace_s: each stream is ended properly
(an in-band 503 `server shutting down` error, data: [DONE], the end of the chunked body), its partial
answer is stored like a cancelled one, its usage is written, and then the process exits 0."""

import json
import signal
import socket
import sqlite3
import subprocess
import time

from conftest import _binary
from test_seed_stream import dechunk, split_response


def open_stream(port, key, body):
    payload = json.dumps(body).encode()
    head = (f"POST /api/v1/chat/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(head + payload)
    return s


def read_until(s, data, marker):
    while marker not in data:
        got = s.recv(65536)
        assert got, data
        data += got
    return data


def read_to_close(s, data):
    while True:
        try:
            got = s.recv(65536)
        except ConnectionResetError:
            return data, "reset"
        if not got:
            return data, "closed"
        data += got


def test_sigterm_past_the_grace_ends_each_stream_and_stores_its_partial_answer(upstream, start_sluice):
    s = start_sluice(upstream, server={"shutdown_grace_s": 1})
    upstream.script(chunks=["one ", "two "] + ["x "] * 200, chunk_delay_ms=100)
    streams = [open_stream(s.port, s.key, {"message": f"long {i}", "session_id": f"cut{i}"}) for i in range(2)]
    received = [read_until(c, b"", b'"content":"two "') for c in streams]

    sent_at = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    ends = [read_to_close(c, data) for c, data in zip(streams, received)]
    code = s.proc.wait(10)
    exited_after = time.monotonic() - sent_at
    print(f"exited {exited_after:.2f} s after SIGTERM (grace 1 s)")
    assert code == 0, s.log_text()[-4000:]
    assert exited_after < 4.5

    for raw, how in ends:
        assert how == "closed", raw[-300:]
        status, headers, body = split_response(raw)
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        assert body.endswith(b"0\r\n\r\n"), body[-200:]  # the end of the chunked body
        events = [c.decode() for c in dechunk(body)]
        assert events[-1] == "data: [DONE]\n\n", events[-3:]
        error = json.loads(events[-2].removeprefix("data: "))
        assert error["code"] == 503 and error["error"] == "server shutting down", error
        assert error["content"] == ""

    # Stored like a cancelled turn: the user message and the partial answer, and the usage.
    db = f"{s.workdir}/data/sluice.db"
    with sqlite3.connect(db) as conn:
        for i in range(2):
            rows = conn.execute("SELECT role, content, finish_reason FROM messages WHERE session_id = ? "
                                "ORDER BY seq", (f"cut{i}",)).fetchall()
            assert [r[0] for r in rows] == ["user", "assistant"], rows
            assert rows[0][1] == f"long {i}"
            assert rows[1][1].startswith("one two ") and rows[1][2] == "cancelled", rows
        usage = conn.execute("SELECT SUM(requests), SUM(cancelled), SUM(errors) FROM usage").fetchone()
    assert usage == (2, 2, 2), usage
    out = subprocess.run([_binary(), "usage", "--json", "--config", s.config_path], cwd=s.workdir,
                         env=s.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert sum(r["requests"] for r in rows) == 2, rows
