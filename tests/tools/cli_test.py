"""The CLIs as a user runs them: bad input gives one clear line, a non-zero exit, no traceback."""
import json

import pytest
from PIL import Image
import numpy as np

from tests.conftest import run_tool


def _one_line_error(proc, pattern: str) -> None:
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(err) == 1 and err[0].startswith("error: "), proc.stderr
    assert pattern in err[0], err[0]


@pytest.mark.slow
def test_convert_then_evaluate_end_to_end(tmp_path, random_weights, hr_dir):
    out = tmp_path / "m.tflite"
    p = run_tool("convert", "--model", "espcn", "--scale", "2", "--precision", "int8", "--out", str(out),
                 "--input_size", "16x16", "--weights", str(random_weights("espcn", 2)),
                 "--calib_dir", str(hr_dir))
    assert p.returncode == 0, p.stderr
    assert "float ops left: none" in p.stdout
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["precision"] == "int8" and report["calibration"]["source"] == str(hr_dir)
    p = run_tool("evaluate", "--tflite", str(out), "--data", str(hr_dir), "--json", str(tmp_path / "e.json"))
    assert p.returncode == 0, p.stderr
    assert "mean" in p.stdout and json.loads((tmp_path / "e.json").read_text())["scale"] == 2


def test_list_models():
    p = run_tool("convert", "--list_models")
    assert p.returncode == 0
    for name in ("fsrcnn", "espcn", "xlsr", "abpn", "imdn_rtc", "edsr_baseline"):
        assert name in p.stdout
    graphs = p.stdout.split("latency- and compile-only graphs")[1]   # said so, in a section of their own
    assert "srgan" in graphs and "rrdbnet" in graphs and "16,697,987" in graphs


def test_unknown_model(tmp_path):
    _one_line_error(run_tool("convert", "--model", "swinir", "--out", str(tmp_path / "m.tflite")),
                    "unknown model 'swinir'")


def test_unknown_scale(tmp_path):
    _one_line_error(run_tool("convert", "--model", "xlsr", "--scale", "5", "--out", str(tmp_path / "m.tflite")),
                    "no x5")


def test_missing_weights_file(tmp_path):
    _one_line_error(run_tool("convert", "--model", "xlsr", "--weights", str(tmp_path / "none.h5"),
                             "--out", str(tmp_path / "m.tflite")), "does not exist")
    assert not (tmp_path / "m.tflite").exists()


def test_corrupt_tflite(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"TFL3" + b"\x00" * 100)
    _one_line_error(run_tool("evaluate", "--tflite", str(bad)), "is not a usable TFLite model")


def test_non_image_in_data_folder(tmp_path, random_weights):
    d = tmp_path / "data"
    d.mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(d / "a.png")
    (d / "b.csv").write_text("1,2")
    w = str(random_weights("espcn", 2))
    _one_line_error(run_tool("evaluate", "--model", "espcn", "--scale", "2", "--weights", w, "--data", str(d)),
                    "is not an image")
    (d / "b.csv").unlink()
    (d / "c.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    _one_line_error(run_tool("evaluate", "--model", "espcn", "--scale", "2", "--weights", w, "--data", str(d)),
                    "cannot read image")


def test_image_smaller_than_model_patch_is_padded(tmp_path, random_weights):
    out = tmp_path / "m.tflite"
    assert run_tool("convert", "--model", "espcn", "--scale", "2", "--precision", "float", "--out", str(out),
                    "--input_size", "32x32", "--weights", str(random_weights("espcn", 2))).returncode == 0
    d = tmp_path / "small"
    d.mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(d / "small.png")
    r = run_tool("evaluate", "--tflite", str(out), "--data", str(d))  # mirror-padded to one tile
    assert r.returncode == 0 and "small" in r.stdout


@pytest.fixture(scope="module")
def tutorial_espcn(tmp_path_factory):
    """A Y-channel ESPCN as public Keras tutorials write it: inputs in [0,1], tf.nn.depth_to_space."""
    from models._keras import keras, tf
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(None, None, 1))
    x = keras.layers.Conv2D(16, 5, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(9, 3, padding="same")(x)
    model = keras.Model(inputs, tf.nn.depth_to_space(x, 3))
    path = tmp_path_factory.mktemp("user") / "espcn_y.keras"
    model.save(path)
    return path


@pytest.mark.slow
def test_users_own_keras_model_through_policy_and_evaluate(tmp_path, tutorial_espcn, hr_dir):
    common = ["--keras_model", str(tutorial_espcn), "--scale", "3", "--channels", "y", "--input_size", "16x16"]
    p = run_tool("convert", *common, "--list_layers")
    assert p.returncode == 0 and "tf.nn.depth_to_space" in p.stdout and "RESHAPE,TRANSPOSE" in p.stdout
    p = run_tool("convert", *common, "--write_policy", "a16w8")
    assert p.returncode == 0
    policy = tmp_path / "policy.json"
    policy.write_text(p.stdout)
    out = tmp_path / "m.tflite"
    p = run_tool("convert", *common, "--policy", str(policy), "--out", str(out), "--calib_dir", str(hr_dir))
    assert p.returncode == 0, p.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["float_ops"] == [] and report["io_convention"] == {"channels": "y", "value_range": "0-1"}
    p = run_tool("evaluate", "--tflite", str(out), "--data", str(hr_dir))
    assert p.returncode == 0 and "mean" in p.stdout, p.stderr


def test_policy_naming_a_missing_layer_writes_nothing(tmp_path, random_weights):
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps({"version": 1, "model": "espcn", "scale": 2, "layers": {"conv33": "a16w8"}}))
    out = tmp_path / "m.tflite"
    _one_line_error(run_tool("convert", "--model", "espcn", "--scale", "2", "--policy", str(policy),
                             "--weights", str(random_weights("espcn", 2)), "--out", str(out)),
                    "did you mean conv3")
    assert not out.exists() and not out.with_suffix(".json").exists()
    policy.write_text(json.dumps({"version": 1, "model": "xlsr", "scale": 2, "layers": {}}))
    _one_line_error(run_tool("convert", "--model", "espcn", "--scale", "2", "--policy", str(policy),
                             "--weights", str(random_weights("espcn", 2)), "--out", str(out)),
                    "policy is for model 'xlsr'")
    policy.write_text(json.dumps({"version": 1, "model": "espcn", "scale": 2, "layers": {"conv1": "int4"}}))
    _one_line_error(run_tool("convert", "--model", "espcn", "--scale", "2", "--policy", str(policy),
                             "--weights", str(random_weights("espcn", 2)), "--out", str(out)),
                    "unknown precision 'int4'")
