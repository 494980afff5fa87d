"""srdeploy metadata in the .tflite flatbuffer: round trip, models still run, convert embeds it."""
import hashlib
import json

import numpy as np
import pytest

import models
from deploy.commands import policy_jobs
from deploy.commands import jobs
from deploy.convert import metadata
from deploy.convert import sources
from deploy.convert.uniform import convert_uniform
from deploy.convert.tflite_io import make_interpreter
from models._keras import keras
from tests.conftest import run_tool


@pytest.fixture(scope="module")
def float_tflite() -> bytes:
    keras.utils.set_random_seed(0)
    x_in = keras.Input((16, 16, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x_in)
    x = keras.layers.Conv2D(12, 3, padding="same")(x)
    return convert_uniform(keras.Model(x_in, models.layers.PixelShuffle(2)(x)), "float").tflite


def _run(tfl: bytes) -> np.ndarray:
    it = make_interpreter(tfl)
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.random.default_rng(0).random(d["shape"], dtype=np.float32))
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def test_round_trip_keeps_the_model_running_and_other_entries(float_tflite):
    payload = {"model": "tiny", "scale": 2, "nested": {"value_range": [0.0, 1.0]}, "text": "ünïcode"}
    before = metadata.entries(float_tflite)
    stamped = metadata.embed(float_tflite, payload)
    assert metadata.read(stamped) == payload
    after = metadata.entries(stamped)
    assert {k: v for k, v in after.items() if k != metadata.NAME} == before  # converter's entries kept
    np.testing.assert_array_equal(_run(stamped), _run(float_tflite))
    # embedding again replaces, never duplicates: same bytes as embedding once
    assert metadata.embed(stamped, payload) == stamped
    changed = metadata.embed(stamped, {**payload, "scale": 4})
    assert metadata.read(changed)["scale"] == 4 and list(metadata.entries(changed)).count(metadata.NAME) == 1


def test_missing_and_corrupt_metadata_are_one_line_errors(tmp_path, float_tflite):
    with pytest.raises(metadata.MetadataError, match="has no 'srdeploy' metadata"):
        metadata.read(float_tflite)
    with pytest.raises(metadata.MetadataError, match="not a TFLite model"):
        metadata.read(b"\x00" * 64)
    truncated = metadata.embed(float_tflite, {"a": 1})[:300]
    with pytest.raises(metadata.MetadataError, match="corrupt or truncated"):
        metadata.read(truncated)
    with pytest.raises(metadata.MetadataError, match="does not exist"):
        metadata.read(tmp_path / "nope.tflite")


def test_convert_embeds_scale_convention_and_io_quantization(tmp_path, random_weights, hr_dir):
    src = sources.resolve("espcn", 2, weights=random_weights("espcn", 2))
    out = tmp_path / "m.tflite"
    report = jobs.convert_model(src, "int8", out, input_hw=(16, 16), calib_dir=str(hr_dir), calib_images=3,
                                io_type="uint8")
    data = out.read_bytes()
    assert report["sha256"] == hashlib.sha256(data).hexdigest() and report["size_bytes"] == len(data)
    meta = metadata.read(out)
    assert json.loads(out.with_suffix(".json").read_text())["metadata"]["scale"] == 2
    assert (meta["model"], meta["scale"], meta["precision"]) == ("espcn", 2, "int8")
    assert meta["input"]["colour_space"] == "rgb" and meta["input"]["value_range"] == [0.0, 1.0]
    (t_in,), (t_out,) = meta["input"]["tensors"], meta["output"]["tensors"]
    detail = make_interpreter(out).get_input_details()[0]
    assert t_in["dtype"] == "uint8" == np.dtype(detail["dtype"]).name
    assert t_in["scale"] == pytest.approx(detail["quantization"][0]) and t_in["zero_point"] == detail["quantization"][1]
    assert t_out["shape"] == [1, 32, 32, 3]


def test_policy_convert_embeds_the_policy_sha(tmp_path, random_weights, hr_dir):
    src = sources.resolve("espcn", 2, weights=random_weights("espcn", 2))
    pol = tmp_path / "p.json"
    pol.write_text(json.dumps({"model": "espcn", "scale": 2, "default": "a8w8", "layers": {}}))
    out = tmp_path / "h.tflite"
    report = policy_jobs.convert_with_policy(src, str(pol), out, input_hw=(16, 16), calib_dir=str(hr_dir),
                                             calib_images=3)
    meta = metadata.read(out)
    assert meta["policy_sha256"] == report["policy_sha256"] and meta["precision"] == "policy"
    assert report["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    it = make_interpreter(out)  # still loads and runs in LiteRT
    it.set_tensor(it.get_input_details()[0]["index"], np.full((1, 16, 16, 3), 0.5, np.float32))
    it.invoke()


def test_inspect_cli_prints_metadata_or_one_error_line(tmp_path, float_tflite):
    good = tmp_path / "good.tflite"
    good.write_bytes(metadata.embed(float_tflite, metadata.payload_from_report(
        {"model": "tiny", "scale": 2, "precision": "float",
         "inputs": [{"name": "in", "shape": [1, 16, 16, 3], "dtype": "float32", "scale": 0.0, "zero_point": 0}]})))
    r = run_tool("report", "--inspect", str(good))
    assert r.returncode == 0, r.stderr
    assert "tiny x2 (float)" in r.stdout and "in: float32 [1, 16, 16, 3]" in r.stdout
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(float_tflite)
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"garbage that is not a model")
    for path, why in ((plain, "no 'srdeploy' metadata"), (bad, "not a TFLite model")):
        r = run_tool("report", "--inspect", str(path))
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and why in r.stderr, r.stderr
