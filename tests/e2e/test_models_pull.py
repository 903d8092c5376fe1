"""`sluice models pull|list|rm` and `path = "hf:..."` against an imitation Hugging Face hub.

tests/tools/fake_hub.py serves the hub (file listing, resolve with a 302 to a second port, the CDN,
with Range) for the whole module; each test publishes its own repository, so tests share no state.
The published GGUFs are random-weight models from `sluice make-tiny-model`.
"""

import hashlib
import json
import os
import re
import subprocess

import pytest

from conftest import PYTHON, START_TIMEOUT_S, _binary, _tools_dir, _wait_for
from store_support import stream

TOKEN = "hf_" + "T0kenForTheGatedRepoOnly" + "x" * 20


class FakeHub:
    def __init__(self, workdir):
        self.out_path = os.path.join(workdir, "hub.out")
        self.err_path = os.path.join(workdir, "hub.err")
        self._out = open(self.out_path, "w")
        self._err = open(self.err_path, "w")
        self.proc = subprocess.Popen([PYTHON, os.path.join(_tools_dir(), "fake_hub.py")],
                                     stdout=self._out, stderr=self._err)

        def ports():
            with open(self.out_path) as f:
                m = re.match(r"PORT (\d+) (\d+)", f.readline())
                return (int(m.group(1)), int(m.group(2))) if m else None

        self.port, self.cdn_port = _wait_for(ports, START_TIMEOUT_S, "the fake hub's ports", self.proc, self.err_path)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def _call(self, method, path, body=None):
        import urllib.request
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.endpoint + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as res:
            return json.loads(res.read())

    def add(self, repo, path, file, **options):
        return self._call("POST", "/_add", {"repo": repo, "path": path, "file": str(file), **options})

    def log(self, repo=None):
        requests = self._call("GET", "/_log")["requests"]
        return [r for r in requests if repo is None or r["server"] == "cdn" or repo in r["path"]]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self._out.close()
        self._err.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = FakeHub(str(tmp_path_factory.mktemp("hub")))
    yield h
    h.stop()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two different tiny GGUFs: {"a": path, "b": path}."""
    folder = tmp_path_factory.mktemp("gguf")
    out = {}
    for name, seed in (("a", 1), ("b", 2)):
        path = folder / f"{name}.gguf"
        done = subprocess.run([_binary(), "make-tiny-model", str(path), "--seed", str(seed)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        out[name] = path
    return out


def sha256_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_models(hub, models_dir, *args, token=None, timeout=120):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_ENDPOINT")}
    env["HF_ENDPOINT"] = hub.endpoint
    env["SLUICE_STORE_MODELS_DIR"] = str(models_dir)
    if token is not None:
        env["HF_TOKEN"] = token
    return subprocess.run([_binary(), "models", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=str(models_dir.parent))


def cdn_requests(hub, since):
    return [r for r in hub.log()[since:] if r["server"] == "cdn"]


def test_pull_picks_q4_k_m_follows_the_redirect_and_writes_a_manifest(hub, models, tmp_path):
    repo = "test-org/default-GGUF"
    hub.add(repo, "tiny-Q8_0.gguf", models["b"])
    hub.add(repo, "mmproj-tiny-Q4_K_M.gguf", models["b"])
    hub.add(repo, "tiny-Q4_K_M.gguf", models["a"])
    models_dir = tmp_path / "models"
    before = len(hub.log())
    done = run_models(hub, models_dir, "pull", repo)
    assert done.returncode == 0, done.stderr
    local = models_dir / "test-org" / "default-GGUF" / "tiny-Q4_K_M.gguf"
    assert sha256_of(local) == sha256_of(models["a"])
    assert f"pulled: {local}" in done.stdout
    assert "100%" in done.stdout  # the plain progress lines (stdout is not a terminal)
    assert "\r" not in done.stdout
    manifest = json.loads((models_dir / "test-org" / "default-GGUF" / "tiny-Q4_K_M.gguf.manifest.json").read_text())
    assert manifest["repo"] == repo and manifest["file"] == "tiny-Q4_K_M.gguf" and manifest["quant"] == "Q4_K_M"
    assert manifest["sha256"] == sha256_of(models["a"])
    assert manifest["size"] == os.path.getsize(models["a"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", manifest["pulled_at"])
    assert not list(models_dir.rglob("*.part"))

    log = hub.log()[before:]
    assert [r["path"] for r in log if r["server"] == "hub"] == [
        f"/api/models/{repo}/tree/main", f"/{repo}/resolve/main/tiny-Q4_K_M.gguf"]
    assert log[0]["query"] == "recursive=true"
    cdn = [r for r in log if r["server"] == "cdn"]
    assert len(cdn) == 1 and cdn[0]["query"].startswith("sig=") and cdn[0]["range"] is None
    assert all(r["authorization"] is None for r in log)  # no HF_TOKEN: nothing sent

    listed = run_models(hub, models_dir, "list")
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"^{re.escape(repo)}:Q4_K_M\t.*\t{re.escape(str(local))}$", listed.stdout, re.M), listed.stdout

    # A second pull finds it and downloads nothing.
    since = len(hub.log())
    again = run_models(hub, models_dir, "pull", repo)
    assert again.returncode == 0, again.stderr
    assert "already pulled" in again.stdout
    assert cdn_requests(hub, since) == []


def test_an_explicit_quant_picks_its_file_and_rm_removes_it(hub, models, tmp_path):
    repo = "test-org/quants-GGUF"
    hub.add(repo, "tiny-Q4_K_M.gguf", models["a"])
    hub.add(repo, "tiny-Q8_0.gguf", models["b"])
    models_dir = tmp_path / "models"
    done = run_models(hub, models_dir, "pull", repo + ":q8_0")
    assert done.returncode == 0, done.stderr
    local = models_dir / "test-org" / "quants-GGUF" / "tiny-Q8_0.gguf"
    assert sha256_of(local) == sha256_of(models["b"])
    assert not (models_dir / "test-org" / "quants-GGUF" / "tiny-Q4_K_M.gguf").exists()

    missing = run_models(hub, models_dir, "pull", repo + ":Q2_K")
    assert missing.returncode == 1
    assert "no GGUF file for Q2_K" in missing.stderr and "tiny-Q8_0.gguf" in missing.stderr

    removed = run_models(hub, models_dir, "rm", repo + ":Q8_0")
    assert removed.returncode == 0, removed.stderr
    assert not local.exists() and not list(models_dir.rglob("*.manifest.json"))
    assert "no models pulled" in run_models(hub, models_dir, "list").stdout
    assert run_models(hub, models_dir, "rm", repo).returncode == 1  # nothing left to remove


def test_an_interrupted_download_is_resumed_with_range(hub, models, tmp_path):
    repo = "test-org/flaky-GGUF"
    size = os.path.getsize(models["a"])
    cut = size // 3
    hub.add(repo, "tiny-Q4_K_M.gguf", models["a"], cut_after=cut)
    models_dir = tmp_path / "models"
    since = len(hub.log())
    done = run_models(hub, models_dir, "pull", repo)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stdout
    cdn = cdn_requests(hub, since)
    assert [r["range"] for r in cdn] == [None, f"bytes={cut}-"]
    assert sha256_of(models_dir / "test-org" / "flaky-GGUF" / "tiny-Q4_K_M.gguf") == sha256_of(models["a"])


def test_a_part_file_left_by_an_earlier_run_is_resumed(hub, models, tmp_path):
    repo = "test-org/resume-GGUF"
    hub.add(repo, "tiny-Q4_K_M.gguf", models["b"])
    models_dir = tmp_path / "models"
    folder = models_dir / "test-org" / "resume-GGUF"
    folder.mkdir(parents=True)
    data = models["b"].read_bytes()
    kept = len(data) // 2 + 7
    (folder / "tiny-Q4_K_M.gguf.part").write_bytes(data[:kept])
    since = len(hub.log())
    done = run_models(hub, models_dir, "pull", repo)
    assert done.returncode == 0, done.stderr
    assert [r["range"] for r in cdn_requests(hub, since)] == [f"bytes={kept}-"]
    assert sha256_of(folder / "tiny-Q4_K_M.gguf") == sha256_of(models["b"])
    assert not (folder / "tiny-Q4_K_M.gguf.part").exists()


def test_a_corrupted_download_is_caught_by_the_hash_and_deleted(hub, models, tmp_path):
    repo = "test-org/corrupt-GGUF"
    hub.add(repo, "tiny-Q4_K_M.gguf", models["a"], corrupt=True)
    models_dir = tmp_path / "models"
    done = run_models(hub, models_dir, "pull", repo)
    assert done.returncode == 1
    assert "SHA-256 mismatch" in done.stderr and sha256_of(models["a"]) in done.stderr
    folder = models_dir / "test-org" / "corrupt-GGUF"
    assert not (folder / "tiny-Q4_K_M.gguf").exists()
    assert not (folder / "tiny-Q4_K_M.gguf.part").exists()
    assert not list(models_dir.rglob("*.manifest.json"))


def test_a_gated_repo_needs_hf_token_which_goes_to_the_hub_only(hub, models, tmp_path):
    repo = "test-org/gated-GGUF"
    hub.add(repo, "tiny-Q4_K_M.gguf", models["a"], gated_token=TOKEN)
    models_dir = tmp_path / "models"

    anonymous = run_models(hub, models_dir, "pull", repo)
    assert anonymous.returncode == 1
    assert "gated" in anonymous.stderr and "set HF_TOKEN" in anonymous.stderr and "401" in anonymous.stderr

    wrong_token = "hf_" + "W" * 40
    wrong = run_models(hub, models_dir, "pull", repo, token=wrong_token)
    assert wrong.returncode == 1 and "no access" in wrong.stderr
    assert wrong_token not in wrong.stdout + wrong.stderr

    since = len(hub.log())
    done = run_models(hub, models_dir, "pull", repo, token=TOKEN)
    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stdout + done.stderr
    assert sha256_of(models_dir / "test-org" / "gated-GGUF" / "tiny-Q4_K_M.gguf") == sha256_of(models["a"])
    log = hub.log()[since:]
    assert {r["server"] for r in log} == {"hub", "cdn"}
    assert all(r["authorization"] == f"Bearer {TOKEN}" for r in log if r["server"] == "hub")
    assert all(r["authorization"] is None for r in log if r["server"] == "cdn")  # not to another host
    for manifest in models_dir.rglob("*.manifest.json"):
        assert TOKEN not in manifest.read_text()


def test_an_unknown_repo_says_not_found(hub, tmp_path):
    done = run_models(hub, tmp_path / "models", "pull", "test-org/missing-GGUF")
    assert done.returncode == 1 and "not found" in done.stderr
    bad = run_models(hub, tmp_path / "models", "pull", "not-a-repo")
    assert bad.returncode == 2 and "ORG/REPO" in bad.stderr


def test_serve_pulls_an_hf_path_on_first_start_and_answers(hub, models, start_sluice, tmp_path, monkeypatch):
    repo = "test-org/serve-GGUF"
    hub.add(repo, "tiny-Q4_K_M.gguf", models["a"])
    models_dir = tmp_path / "models"
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("SLUICE_STORE_MODELS_DIR", str(models_dir))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    toml = (f'[[models]]\nname = "local"\nrole = "local_small"\nprovider = "llama"\npath = "hf:{repo}:Q4_K_M"\n'
            'n_ctx = 512\nn_parallel = 1\n')
    since = len(hub.log())
    s = start_sluice(None, extra_toml=toml)
    local = models_dir / "test-org" / "serve-GGUF" / "tiny-Q4_K_M.gguf"
    assert sha256_of(local) == sha256_of(models["a"])
    assert f"model local: hf:{repo}:Q4_K_M is {local} (pulled now)" in s.log_text()
    assert len(cdn_requests(hub, since)) == 1
    status, _, events = stream(s.base_url, s.key, "hi", model_type="local_small", max_tokens=8)
    assert status == 200
    assert not [e for e in events if "error" in e], events
    final = [e for e in events if "model" in e][-1]
    assert final["model"] == "local" and final["usage"]["completion_tokens"] > 0
    s.stop()

    # The second start loads the pulled file without asking the hub.
    since = len(hub.log())
    again = start_sluice(None, extra_toml=toml)
    assert re.search(rf"model local: hf:{re.escape(repo)}:Q4_K_M is {re.escape(str(local))}$", again.log_text(), re.M)
    assert hub.log()[since:] == []


def test_serve_stops_with_the_pull_error_when_an_hf_path_cannot_be_pulled(hub, models, tmp_path):
    repo = "test-org/serve-gated-GGUF"
    hub.add(repo, "tiny-Q4_K_M.gguf", models["a"], gated_token=TOKEN)
    config = tmp_path / "sluice.toml"
    config.write_text(f'[server]\nlisten = "127.0.0.1:0"\n\n[store]\nurl = "sqlite://{tmp_path}/data/sluice.db"\n'
                      f'models_dir = "{tmp_path}/models"\n\n[[models]]\nname = "local"\nrole = "local_small"\n'
                      f'provider = "llama"\npath = "hf:{repo}"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "SLUICE_STORE_MODELS_DIR")}
    env["HF_ENDPOINT"] = hub.endpoint
    done = subprocess.run([_binary(), "serve", "--config", str(config)], capture_output=True, text=True,
                          timeout=120, env=env, cwd=str(tmp_path))
    assert done.returncode == 1
    assert f"model local: pulling {repo}" in done.stderr and "set HF_TOKEN" in done.stderr
    assert "listening on" not in done.stderr
    assert not (tmp_path / "models" / "test-org" / "serve-gated-GGUF" / "tiny-Q4_K_M.gguf").exists()
