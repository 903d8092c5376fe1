"""Fixtures for end-to-end tests: the real `sluice` binary against the scripted upstream.

Everything binds 127.0.0.1 port 0 and lives in pytest's temporary directories. The bound ports are
read from what each process prints (`PORT <n>` from the upstream, `listening on 127.0.0.1:<n>` in
sluice's log); the API key from sluice's one-time `sluice: created API key sk-...` line.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

PYTHON = "/usr/bin/python3"
START_TIMEOUT_S = 60
UPSTREAM_KEY_ENV = "SLUICE_TEST_UPSTREAM_KEY"
UPSTREAM_KEY = "sk-upstream-test-key"


def _binary():
    path = os.environ.get("SLUICE_BINARY")
    if not path:
        build = os.environ.get("SLUICE_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
        path = os.path.join(build, "sluice")
    return path


def _tools_dir():
    return os.environ.get("SLUICE_TEST_TOOLS_DIR", os.path.join(os.path.dirname(__file__), "..", "tools"))


def _wait_for(predicate, timeout, what, proc=None, log_path=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.02)
    detail = ""
    if log_path and os.path.exists(log_path):
        with open(log_path, errors="replace") as f:
            detail = f.read()[-4000:]
    raise RuntimeError(f"timed out waiting for {what}\n{detail}")


class Upstream:
    """The scripted OpenAI-compatible upstream (tests/tools/scripted_upstream.py)."""

    def __init__(self, workdir):
        self.stdout_path = os.path.join(workdir, "upstream.out")
        self.stderr_path = os.path.join(workdir, "upstream.err")
        self._out = open(self.stdout_path, "w")
        self._err = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [PYTHON, os.path.join(_tools_dir(), "scripted_upstream.py"), "--port", "0"],
            stdout=self._out, stderr=self._err)

        def port():
            with open(self.stdout_path) as f:
                m = re.match(r"PORT (\d+)", f.readline())
                return int(m.group(1)) if m else None

        self.port = _wait_for(port, START_TIMEOUT_S, "the scripted upstream's port", self.proc, self.stderr_path)
        self.base_url = f"http://127.0.0.1:{self.port}"

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as res:
            text = res.read()
            return json.loads(text) if text else None

    def script(self, **fields):
        self._call("POST", "/_script", fields)

    def reset(self):
        self._call("POST", "/_reset", {})

    def log(self):
        return self._call("GET", "/_log")["requests"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._out.close()
        self._err.close()


class ServeProcess:
    """A running `sluice serve --config <config_path>`: its port, its logs, and how to stop it."""

    def __init__(self, workdir, config_path, env, name="sluice"):
        self.workdir = workdir
        self.config_path = config_path
        self.env = env
        self.stdout_path = os.path.join(workdir, f"{name}.out")
        self.stderr_path = os.path.join(workdir, f"{name}.err")
        self._out = open(self.stdout_path, "w")
        self._err = open(self.stderr_path, "w")
        self.proc = subprocess.Popen([_binary(), "serve", "--config", config_path], cwd=workdir, env=env,
                                     stdout=self._out, stderr=self._err)

        def listening():
            with open(self.stderr_path, errors="replace") as f:
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)", f.read())
                return int(m.group(1)) if m else None

        self.port = _wait_for(listening, START_TIMEOUT_S, "sluice to listen", self.proc, self.stderr_path)
        self.base_url = f"http://127.0.0.1:{self.port}"

    def created_key(self):
        """The key this start printed because the store held none, or None."""
        with open(self.stdout_path) as f:
            m = re.search(r"^sluice: created API key (sk-[A-Za-z0-9_-]+)$", f.read(), re.M)
        return m.group(1) if m else None

    def log_text(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._close_logs()

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_logs()
        return self.proc.returncode

    def _close_logs(self):
        if not self._out.closed:
            self._out.close()
            self._err.close()


class Sluice(ServeProcess):
    """A running `sluice serve` with its own config, data directory and log."""

    def __init__(self, workdir, upstream, server=None, extra_toml=""):
        config_path = os.path.join(workdir, "sluice.toml")
        server = {"listen": "127.0.0.1:0", "heartbeat_interval_s": 15, "io_threads": 2, **(server or {})}
        lines = ["[server]"]
        for key, value in server.items():
            lines.append(f"{key} = {json.dumps(value)}")
        lines += ["", "[store]", f'url = "sqlite://{workdir}/data/sluice.db"', ""]
        if upstream is not None:
            lines += ["[[models]]", 'name = "cloud"', 'role = "cloud_large"', 'provider = "openai"',
                      f'base_url = "{upstream.base_url}/v1"', 'model = "scripted"',
                      f'api_key_env = "{UPSTREAM_KEY_ENV}"', ""]
        lines.append(extra_toml)
        with open(config_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        super().__init__(workdir, config_path, dict(os.environ, **{UPSTREAM_KEY_ENV: UPSTREAM_KEY}))
        self.key = _wait_for(self.created_key, 5, "the created API key", self.proc, self.stderr_path)

    def create_key(self, name="t"):
        out = subprocess.run([_binary(), "keys", "create", "--name", name, "--config", self.config_path],
                             cwd=self.workdir, env=self.env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        m = re.search(r"sk-[A-Za-z0-9_-]{32,}", out.stdout)
        assert m, out.stdout
        return m.group(0)

    def headers(self, key=None):
        return {"Authorization": f"Bearer {key or self.key}"}


@pytest.fixture
def upstream(tmp_path):
    up = Upstream(str(tmp_path))
    yield up
    up.stop()


@pytest.fixture
def start_sluice(tmp_path):
    """start_sluice(upstream, server={...}) -> Sluice; stopped (SIGTERM) after the test."""
    started = []

    def start(upstream, server=None, extra_toml=""):
        workdir = tmp_path / f"sluice{len(started)}"
        workdir.mkdir()
        s = Sluice(str(workdir), upstream, server, extra_toml)
        started.append(s)
        return s

    yield start
    for s in started:
        code = s.stop()
        if code not in (0, -signal.SIGTERM):
            sys.stderr.write(s.log_text()[-4000:])
        assert code == 0, f"sluice exited with {code}"


@pytest.fixture
def sluice(upstream, start_sluice):
    return start_sluice(upstream)
