"""The server logs asynchronously (src/core/log.h): an io thread never waits on stderr.

Both sides of the log queue's bound (k_log_queue_lines = 4096): with stderr going to a file the
queue keeps up and nothing is dropped; with stderr a pipe nobody reads (a stuck terminal, a log
collector that stalled), the pipe fills, then the queue, and the server keeps answering while it
drops the oldest lines and counts them. Before the asynchronous logger, the first request past the
full pipe hung: the io thread blocked in write(2).
"""

import http.client
import os
import re
import subprocess
import time

from conftest import START_TIMEOUT_S, UPSTREAM_KEY, UPSTREAM_KEY_ENV, _binary, _wait_for

# Each request at --log-level debug writes one line of about 60 bytes: 64 KiB of pipe and 4096
# queued lines are past after about 5,200 requests.
REQUESTS = 8000
PER_REQUEST_TIMEOUT_S = 10


def _config(workdir, upstream):
    path = os.path.join(workdir, "sluice.toml")
    with open(path, "w") as f:
        f.write("\n".join([
            "[server]", 'listen = "127.0.0.1:0"', "io_threads = 2", "",
            "[store]", f'url = "sqlite://{workdir}/data/sluice.db"', "",
            "[[models]]", 'name = "cloud"', 'role = "cloud_large"', 'provider = "openai"',
            f'base_url = "{upstream.base_url}/v1"', 'model = "scripted"', f'api_key_env = "{UPSTREAM_KEY_ENV}"',
            ""]))
    return path


def _start(workdir, upstream, stderr):
    env = dict(os.environ, **{UPSTREAM_KEY_ENV: UPSTREAM_KEY})
    out = open(os.path.join(workdir, "sluice.out"), "w")
    proc = subprocess.Popen([_binary(), "serve", "--config", _config(workdir, upstream), "--log-level", "debug"],
                            cwd=workdir, env=env, stdout=out, stderr=stderr)
    return proc, out


def _port_from_pipe(proc):
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = proc.stderr.readline().decode(errors="replace")
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if m:
            return int(m.group(1))
        assert line, "sluice ended before listening"
    raise AssertionError("sluice did not listen")


def _port_from_file(path):
    def listening():
        with open(path, errors="replace") as f:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", f.read())
        return int(m.group(1)) if m else None

    return _wait_for(listening, START_TIMEOUT_S, "sluice to listen", log_path=path)


def _created_key(workdir):
    def created():
        with open(os.path.join(workdir, "sluice.out")) as f:
            m = re.search(r"^sluice: created API key (sk-[A-Za-z0-9_-]+)$", f.read(), re.M)
        return m.group(1) if m else None

    return _wait_for(created, 10, "the created API key")


def _hammer_and_read_dropped(port, key):
    """REQUESTS health checks on one keep-alive connection, each answered in time; then the counter."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PER_REQUEST_TIMEOUT_S)
    for _ in range(REQUESTS):
        conn.request("GET", "/healthz")
        res = conn.getresponse()
        res.read()
        assert res.status == 200
    conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {key}"})
    res = conn.getresponse()
    text = res.read().decode()
    conn.close()
    m = re.search(r"^sluice_log_lines_dropped_total (\S+)$", text, re.M)
    assert res.status == 200, text
    assert m, "sluice_log_lines_dropped_total missing from /metrics"
    return float(m.group(1))


def _stop(proc):
    proc.terminate()
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def test_stderr_that_keeps_up_loses_no_line(tmp_path, upstream):
    workdir = str(tmp_path)
    err_path = os.path.join(workdir, "sluice.err")
    with open(err_path, "w") as err:
        proc, out = _start(workdir, upstream, err)
        try:
            dropped = _hammer_and_read_dropped(_port_from_file(err_path), _created_key(workdir))
        finally:
            code = _stop(proc)
            out.close()
    assert dropped == 0
    assert code == 0
    with open(err_path, errors="replace") as f:
        lines = f.read()
    # Every request's line reached stderr, the last ones included (written before the exit).
    assert lines.count("GET /healthz") == REQUESTS
    assert "server stopped" in lines


def test_stderr_nobody_reads_drops_lines_and_never_blocks_a_request(tmp_path, upstream):
    workdir = str(tmp_path)
    proc, out = _start(workdir, upstream, subprocess.PIPE)
    try:
        port = _port_from_pipe(proc)  # then the pipe is never read again until the end
        dropped = _hammer_and_read_dropped(port, _created_key(workdir))
        assert dropped > 0
        # Still answering chat, not only health checks.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PER_REQUEST_TIMEOUT_S)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.terminate()
        # Drain the pipe so the logging thread can write what is left and the process can end.
        rest = proc.stderr.read()
        code = proc.wait(30)
        out.close()
    assert code == 0
    assert b"server stopped" in rest
