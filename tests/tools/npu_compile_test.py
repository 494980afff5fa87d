"""tools/npu_compile.py in a subprocess: real compiles, and one line + exit 2 for every bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime_qnn")

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "npu_compile.py"


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, timeout=300)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A tiny int8 conv net with a rank-4 pixel shuffle, and a dynamic-shape float one."""
    from models._keras import keras, quiet_native_stderr, tf
    import numpy as np
    d = tmp_path_factory.mktemp("tool_models")
    keras.utils.set_random_seed(0)
    out = {}
    for name, hw in [("fixed", (8, 8)), ("dynamic", (None, None))]:
        x = keras.Input((*hw, 3), batch_size=1)
        y = keras.layers.Conv2D(12, 3, padding="same")(x)
        if name == "fixed":
            y = keras.layers.Lambda(lambda t: tf.reshape(tf.transpose(tf.reshape(t, [8, 8, 2, 6]), (0, 2, 1, 3)),
                                                         [1, 16, 16, 3]))(y)
        conv = tf.lite.TFLiteConverter.from_keras_model(keras.Model(x, y))
        if name == "fixed":
            rng = np.random.default_rng(0)
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = lambda: ([rng.random((1, 8, 8, 3), dtype=np.float32)] for _ in range(4))
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        with quiet_native_stderr():
            out[name] = d / f"{name}.tflite"
            out[name].write_bytes(conv.convert())
    (d / "corrupt.tflite").write_bytes(out["fixed"].read_bytes()[:700])
    out["corrupt"] = d / "corrupt.tflite"
    return out


def test_compiles_for_two_socs_and_writes_report(models, tmp_path):
    r = _run("--tflite", str(models["fixed"]), "--soc", "SM8650", "--soc", "qualcomm:SM8550",
             "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [(x["soc"], x["whole"], x["ops_on_npu"], x["ops_total"]) for x in doc["reports"]] == [
        ("SM8650", True, 6, 6), ("SM8550", True, 6, 6)]  # Q, conv, 3 shuffle ops, DQ
    assert json.loads((tmp_path / "fixed_npu.json").read_text()) == doc
    assert (tmp_path / "fixed_qualcomm_SM8650.tflite").read_bytes()[4:8] == b"TFL3"
    again = _run("--tflite", str(models["fixed"]), "--soc", "SM8650", "--out", str(tmp_path))
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_list_socs():
    r = _run("--list_socs")
    assert r.returncode == 0 and "qualcomm:SM8650" in r.stdout and "v75" in r.stdout


@pytest.mark.parametrize("case,expect", [
    ("unknown_soc", "known: SM8350"), ("compiled", "already compiled"), ("dynamic", "dynamic shape"),
    ("corrupt", "TFLite"), ("missing", "no such"), ("no_extra", 'pip install -e ".[npu]"')])
def test_bad_input_is_one_line_and_exit_2(models, tmp_path, case, expect):
    out = tmp_path / "out"
    model, soc, env = models["fixed"], "SM8650", None
    if case == "unknown_soc":
        soc = "SM1234"
    elif case == "compiled":
        ok = _run("--tflite", str(models["fixed"]), "--soc", "SM8650", "--out", str(tmp_path / "first"))
        assert ok.returncode == 0, ok.stderr
        model = tmp_path / "first" / "fixed_qualcomm_SM8650.tflite"
    elif case in ("dynamic", "corrupt"):
        model = models[case]
    elif case == "missing":
        model = tmp_path / "nope.tflite"
    elif case == "no_extra":  # onnxruntime_qnn made unimportable
        shadow = tmp_path / "shadow" / "onnxruntime_qnn"
        shadow.mkdir(parents=True)
        (shadow / "__init__.py").write_text("raise ImportError('hidden by test')\n")
        env = {"PYTHONPATH": f"{REPO}{os.pathsep}{shadow.parent}"}
    r = _run("--tflite", str(model), "--soc", soc, "--out", str(out), env=env)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], r.stderr
    assert not out.exists()
