"""Helpers for the limits, many-instance and store-fault tests: a real redis-server, `sluice serve`
processes on a given store URL (several may share one store, so the first-key line is optional),
keys with limits made through `sluice keys create`, and small HTTP helpers.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import UPSTREAM_KEY, UPSTREAM_KEY_ENV, ServeProcess, _binary


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """A throw-away redis-server on a free port, in a temporary directory, without persistence
    (an explicit SHUTDOWN SAVE still writes dump.rdb there, so a restart can keep the data)."""

    def __init__(self, workdir):
        if shutil.which("redis-server") is None:
            pytest.skip("SKIPPED LOUDLY: redis-server is not installed (make deps installs it)")
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.port = None
        self.proc = None
        for _ in range(3):
            if self._start(free_port()):
                return
        pytest.skip("SKIPPED LOUDLY: redis-server did not start: " + self.log_text()[-2000:])

    def _start(self, port):
        self.port = port
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--logfile", os.path.join(self.dir, "redis.log"), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.ping():
                return True
            time.sleep(0.02)
        self.proc.kill()
        self.proc.wait()
        return False

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, *args):
        """One RESP command on a fresh connection; the raw reply line."""
        payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(payload.encode())
            return s.recv(65536)

    def ping(self):
        try:
            return self.command("PING").startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, save=False):
        """Stops Redis; with save, the data set is written first so that restart() brings it back."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if save:
            try:
                self.command("SHUTDOWN", "SAVE")
            except OSError:
                pass
        else:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self):
        """Starts again on the same port and directory (loading dump.rdb when there is one)."""
        self.stop()
        if not self._start(self.port):
            raise RuntimeError("redis-server did not restart: " + self.log_text()[-2000:])

    def log_text(self):
        path = os.path.join(self.dir, "redis.log")
        if not os.path.exists(path):
            return ""
        with open(path, errors="replace") as f:
            return f.read()


def write_config(workdir, store_url, upstream, limits=None, server=None, extra_toml=""):
    os.makedirs(workdir, exist_ok=True)
    server = {"listen": "127.0.0.1:0", "heartbeat_interval_s": 15, "io_threads": 2, **(server or {})}
    lines = ["[server]"] + [f"{k} = {json.dumps(v)}" for k, v in server.items()]
    lines += ["", "[store]", f'url = "{store_url}"', ""]
    lines += ["[[models]]", 'name = "cloud"', 'role = "cloud_large"', 'provider = "openai"',
              f'base_url = "{upstream.base_url}/v1"', 'model = "scripted"', f'api_key_env = "{UPSTREAM_KEY_ENV}"', ""]
    if limits:
        lines.append("[limits]")
        lines += [f"{k} = {v}" for k, v in limits.items()]
    lines.append(extra_toml)
    path = os.path.join(workdir, "sluice.toml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def sluice_env():
    return dict(os.environ, **{UPSTREAM_KEY_ENV: UPSTREAM_KEY})


class Serve(ServeProcess):
    """`sluice serve --config <config>`; any first key it creates is in .first_key."""

    def __init__(self, workdir, config_path):
        super().__init__(workdir, config_path, sluice_env(), name=f"serve{id(self)}")
        self.first_key = self.created_key()


def sluice_cli(config_path, *args, cwd=None):
    return subprocess.run([_binary(), *args, "--config", config_path], cwd=cwd, env=sluice_env(),
                          capture_output=True, text=True, timeout=60)


def create_key(config_path, name="t", rpm=None, tpm=None, max_streams=None):
    """(secret, key id) of a new key, with its own limits when given."""
    args = ["keys", "create", "--name", name]
    for flag, value in (("--rpm", rpm), ("--tpm", tpm), ("--max-streams", max_streams)):
        if value is not None:
            args += [flag, str(value)]
    out = sluice_cli(config_path, *args)
    assert out.returncode == 0, out.stderr
    secret = re.search(r"sk-[A-Za-z0-9_-]{32,}", out.stdout).group(0)
    key_id = re.search(r"created key (key_[A-Za-z0-9_-]+)", out.stderr).group(1)
    return secret, key_id


def request(base_url, method, path, key=None, body=None, timeout=30):
    """(status, headers, body text); HTTP errors are returned, not raised."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(base_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, {k.lower(): v for k, v in res.headers.items()}, res.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()


def data_events(text):
    """The JSON objects of an SSE body's data: lines, up to [DONE] (which must be there)."""
    events = []
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        payload = line[len("data:"):].strip()
        if payload == "[DONE]":
            return events
        events.append(json.loads(payload))
    raise AssertionError(f"no [DONE] in {text!r}")


def stream(base_url, key, message="hi", **fields):
    """POST /api/v1/chat/stream: (status, headers, events)."""
    status, headers, text = request(base_url, "POST", "/api/v1/chat/stream", key, {"message": message, **fields})
    return status, headers, data_events(text)


def usage_totals(base_url, key):
    status, _, text = request(base_url, "GET", "/api/v1/usage", key)
    assert status == 200, text
    return json.loads(text)


def fresh_rate_window(margin_s=15):
    """Rate limits count in fixed windows aligned to the wall-clock minute: start a sequence that
    must stay inside one window with at least margin_s of it left."""
    left = 60 - (time.time() % 60)
    if left < margin_s:
        time.sleep(left + 0.05)


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
