"""Importing the library changes no environment variable (issue #30): `models._keras` imports
tf_keras directly and TF-MOT through `import_tfmot`, so TF_USE_LEGACY_KERAS is neither needed
nor set; a fresh interpreter shows it."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO

_PROBE = """
import json, os, sys
before = dict(os.environ)
import deploy
import models._keras as k
from deploy.experimental import qat_configs  # imports TF-MOT, which sets the variable itself
changed = sorted(n for n in set(before) | set(os.environ) if before.get(n) != os.environ.get(n))
print(json.dumps({"changed": changed, "keras": k.keras.__version__,
                  "tfmot_keras": qat_configs.tfq.quantize_annotate_layer.__module__}))
"""


def test_importing_the_library_leaves_the_environment_alone():
    env = {n: v for n, v in os.environ.items() if n not in ("TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL")}
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["changed"] == [] and got["keras"].startswith("2.")


def test_environ_restored_undoes_what_the_block_set(monkeypatch):
    from models._keras import environ_restored
    monkeypatch.delenv("SRDEPLOY_PROBE_A", raising=False)
    monkeypatch.setenv("SRDEPLOY_PROBE_B", "user")
    with environ_restored(SRDEPLOY_PROBE_A="1", SRDEPLOY_PROBE_B="default"):
        assert os.environ["SRDEPLOY_PROBE_A"] == "1" and os.environ["SRDEPLOY_PROBE_B"] == "user"
        os.environ["SRDEPLOY_PROBE_C"] = "set by imported code"
    assert "SRDEPLOY_PROBE_A" not in os.environ and "SRDEPLOY_PROBE_C" not in os.environ
    assert os.environ["SRDEPLOY_PROBE_B"] == "user"
