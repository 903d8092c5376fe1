"""The shipped router model is reproducible: scripts/train_router.py, run on the committed routing
data, writes exactly the committed src/routing/router_model.inc (issue 18: the weights generated and
reproducible). Needs numpy (Debian's python3-numpy, in `make deps`) and the routing data set."""

import filecmp
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Beside the checkout (../shared, as CI has it), else where scripts/router_data.py looks.
DATA = os.environ.get("SLUICE_ROUTING_DATA") or next(
    (p for p in (os.path.join(ROOT, "..", "shared", "data", "routing", "mmlu.jsonl"),
                 "/work/shared/data/routing/mmlu.jsonl") if os.path.exists(p)), "")

try:
    import numpy  # noqa: F401
    HAVE_NUMPY = True
except ImportError:
    HAVE_NUMPY = False


@pytest.mark.skipif(not HAVE_NUMPY, reason="numpy missing: run `make deps`")
@pytest.mark.skipif(not DATA, reason="the routing data set is not there (../shared/data/routing)")
def test_train_router_writes_the_committed_model(tmp_path):
    out = tmp_path / "router_model.inc"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "train_router.py"), "--data", DATA,
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert filecmp.cmp(out, os.path.join(ROOT, "src", "routing", "router_model.inc"), shallow=False), (
        "src/routing/router_model.inc is not what scripts/train_router.py writes: retrain and commit\n" + done.stdout)
