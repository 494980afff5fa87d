"""Issue 31 (reliability, round two): the library's side. Each case of the issue -> its test
(CLI cases are in tests/tools/reliability2_test.py, which names them too):

| issue 31 case                                              | test                                          |
|------------------------------------------------------------|-----------------------------------------------|
| two runs race for one output name (no --overwrite)         | test_two_writers_race_one_wins_one_refused    |
| an output inside an input folder (--data d --json d/x)     | test_output_inside_an_input_folder_is_refused |
| unwritable output folder: checked before the work          | test_unwritable_output_folder_named_up_front  |
| symlink loop as an input path                              | test_symlink_loop_is_one_line                 |
| policy / sensitivity / profile JSON not UTF-8, NaN inside  | test_one_json_reader                          |
| "layer" instead of "layers" (Policy.load and from_json)    | test_policy_unknown_key_is_an_error           |
| Policy.load(a directory)                                   | test_one_json_reader                          |
| a policy JSON given as the sensitivity file                | test_policy_as_sensitivity_file               |
| quantize(None), search(None), budget_db="0.1",             | test_api_door_checks                          |
|   input_size=(0, 0), calib_images=0 (and evaluate(None))   |                                               |
| load_model errors derive from SrdeployError                | test_load_model_errors_are_srdeploy_errors    |
| classifier TFLite (IndexError in model_scale)              | test_classifier_tflite_is_not_an_sr_model     |
| 1x1 calibration photo, 1x1 / 10000x10 eval images, (0x0)   | test_tiny_and_thin_images_named_with_size     |
| --calib_images above what the folder holds                 | test_calib_images_above_available             |
| upscale --threshold nan                                    | test_nan_threshold_refused                    |
| upscale ignores EXIF rotation, drops alpha without a word  | test_upscale_input_orientation_and_alpha      |
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deploy.errors import SrdeployError, UserInputError


def test_two_writers_race_one_wins_one_refused(tmp_path):
    from deploy._files import OutputExistsError, atomic_write
    out = tmp_path / "m.tflite"
    results: list[object] = []
    barrier = threading.Barrier(8)

    def write(i: int) -> None:
        barrier.wait()
        try:
            atomic_write(out, f"writer {i}".encode(), overwrite=False)
            results.append(i)
        except OutputExistsError as e:
            results.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if isinstance(r, int)]
    assert len(winners) == 1 and out.read_text() == f"writer {winners[0]}"
    assert all("exists" in str(r) for r in results if not isinstance(r, int))
    assert [p.name for p in tmp_path.iterdir()] == ["m.tflite"]  # no temp file left by the losers
    atomic_write(out, b"replaced")  # overwrite=True (the default) still replaces
    assert out.read_bytes() == b"replaced"


def test_quantized_model_save_without_overwrite_never_replaces(tmp_path):
    from deploy.convert.api import QuantizedModel
    (tmp_path / "m.json").write_text("mine")
    with pytest.raises(FileExistsError):
        QuantizedModel(b"model", {"a": 1}).save(tmp_path / "m.tflite")
    assert (tmp_path / "m.json").read_text() == "mine" and not (tmp_path / "m.tflite").exists()


def test_output_inside_an_input_folder_is_refused(tmp_path):
    from deploy._files import check_outputs
    data = tmp_path / "d"
    data.mkdir()
    (data / "ok.png").write_bytes(b"photo")
    for out in (data / "ok.png", data / "new.json", data / "sub" / "x.json"):
        with pytest.raises(UserInputError, match="inside .*an input folder"):
            check_outputs([out], [data], overwrite=True)
    assert (data / "ok.png").read_bytes() == b"photo"
    check_outputs([tmp_path / "e.json"], [data])  # beside it is fine


def _unwritable(tmp_path: Path) -> Path:
    """A folder this process cannot create files in (root ignores mode bits; /proc/1 it cannot)."""
    if os.geteuid() == 0:
        return Path("/proc/1")
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    return d


def test_unwritable_output_folder_named_up_front(tmp_path):
    from deploy._files import atomic_write, check_outputs
    ro = _unwritable(tmp_path)
    with pytest.raises(UserInputError, match=f"cannot write in {ro}"):
        check_outputs([ro / "m.tflite"])
    with pytest.raises(UserInputError, match=r"cannot create files in") as e:
        atomic_write(ro / "m.tflite", b"x")
    assert ".tmp" not in str(e.value)  # never the hidden temp name


def test_symlink_loop_is_one_line(tmp_path):
    from deploy._files import check_outputs
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(UserInputError, match="symlink loop"):
        check_outputs([tmp_path / "e.json"], [tmp_path / "a"])


def test_one_json_reader(tmp_path):
    from deploy._files import read_json
    from deploy.convert.policy import Policy, PolicyError
    from deploy.latency.device_profiles import LatencyError, load_profile
    latin = tmp_path / "latin1.json"
    latin.write_bytes('{"model": "espcn", "comment": "caf\xe9"}'.encode("latin-1"))
    nan = tmp_path / "nan.json"
    nan.write_text('{"model": "espcn", "scale": 2, "x": NaN}')
    with pytest.raises(PolicyError, match="not UTF-8"):
        Policy.load(latin)
    with pytest.raises(PolicyError, match="is a directory"):
        Policy.load(tmp_path)
    with pytest.raises(LatencyError, match="not UTF-8"):
        load_profile(latin)
    for bad in ("NaN", "Infinity", "-Infinity"):
        nan.write_text(f'{{"ops": {{"conv": {bad}}}}}')
        with pytest.raises(UserInputError, match=f"contains {bad}"):
            read_json(nan, "device profile")
        with pytest.raises(LatencyError, match=f"contains {bad}"):
            load_profile(nan)
    with pytest.raises(UserInputError, match="does not exist; write it"):
        read_json(tmp_path / "none.json", "sensitivity file", "write it with --sensitivity")


def test_policy_unknown_key_is_an_error(tmp_path):
    from deploy.convert.policy import Policy, PolicyError
    p = tmp_path / "p.json"
    p.write_text(json.dumps({"model": "espcn", "scale": 2, "layer": {"conv1": "a16w8"}}))
    with pytest.raises(PolicyError, match="unknown key 'layer' .did you mean 'layers'"):
        Policy.load(p)
    with pytest.raises(PolicyError, match="unknown key 'defualt'"):
        Policy.from_json({"model": "espcn", "scale": 2, "defualt": "a16w8"})
    with pytest.raises(PolicyError, match="scale True is not an integer"):
        Policy.from_json({"model": "espcn", "scale": True})


def test_policy_as_sensitivity_file(tmp_path):
    from deploy.convert.policy import Policy
    from deploy.policy_search.session import read_sensitivity_file
    p = tmp_path / "hybrid.json"
    p.write_text(Policy("espcn", 2, "a8w8", (("conv1", "a16w8"),)).dumps())
    with pytest.raises(UserInputError, match="is a policy, not a --sensitivity result"):
        read_sensitivity_file(p)
    p.write_text(json.dumps({"kind": "sensitivity", "layers": {"conv1": 1}, "baseline": {}}))
    with pytest.raises(UserInputError, match="malformed"):
        read_sensitivity_file(p)


def test_api_door_checks(random_weights):
    import deploy
    src = deploy.load_model("espcn", 2, weights=str(random_weights("espcn", 2)))
    cases = [(lambda: deploy.quantize(None, "float"), "must be a model from deploy.load_model"),
             (lambda: deploy.search(None, budget_db=0.1), "must be a model from deploy.load_model"),
             (lambda: deploy.search(src, budget_db="0.1"), "budget_db must be a number, not str"),
             (lambda: deploy.search(src, budget_db=float("nan")), "budget_db must be a finite number"),
             (lambda: deploy.search(src, budget_db=-1), "budget_db must be a finite number >= 0"),
             (lambda: deploy.quantize(src, "int8", input_size=(0, 0)), "sides must be whole numbers >= 8"),
             (lambda: deploy.quantize(src, "float", input_size="64x64"), "input_size must be .height, width."),
             (lambda: deploy.quantize(src, "a16w8", deploy.QuantizeConfig(calib_images=0)), "calib_images must be a whole number >= 1"),
             (lambda: deploy.quantize(src, "int8", deploy.QuantizeConfig(val_images=0)), "val_images must be a whole number >= 1"),
             (lambda: deploy.search(src, deploy.SearchConfig(input_size=None), budget_db=0.1), "input_size must be"),
             (lambda: deploy.SearchConfig(oracle="slow"), "oracle must be one of fast, litert"),
             (lambda: deploy.search(src), "pass budget_db"),
             (lambda: deploy.load_model("espcn", scale=0), "scale must be a whole number >= 1"),
             (lambda: deploy.evaluate(None), "model must be a .tflite path"),
             (lambda: deploy.evaluate(src, config=deploy.EvalConfig(num_threads=0)), "num_threads must be a whole number >= 1"),
             (lambda: deploy.evaluate(src, config=deploy.EvalConfig(input_size=(4, 4))), "sides must be whole numbers >= 8")]
    for call, why in cases:
        with pytest.raises(UserInputError, match=why):
            call()


def test_load_model_errors_are_srdeploy_errors(tmp_path):
    import deploy
    import models
    for call in (lambda: deploy.load_model("no_such_model"), lambda: deploy.load_model("espcn", 7)):
        with pytest.raises(SrdeployError) as e:
            call()
        assert isinstance(e.value, models.ModelError)  # code that caught ModelError still does


def test_classifier_tflite_is_not_an_sr_model(tmp_path):
    from deploy.evaluation.api import infer_scale
    from models._keras import keras, tf
    inp = keras.Input((16, 16, 3), batch_size=1)
    head = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(inp))
    m = tmp_path / "classifier.tflite"
    m.write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, head)).convert())
    with pytest.raises(UserInputError, match=r"not an SR image model: .*output shape \[1, 10\]"):
        infer_scale(m)


def test_tiny_and_thin_images_named_with_size(tmp_path):
    from deploy.data import calibration
    from deploy.data.images import DataError, eval_samples
    d = tmp_path / "d"
    d.mkdir()
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(d / "dot.png")
    with pytest.raises(DataError, match=r"dot \(1x1\) is too small"):
        calibration.calibration_set(2, (16, 16), calib_dir=d)
    with pytest.raises(DataError, match=r"dot \(1x1\) is too small for x2"):
        eval_samples(2, d)
    (d / "dot.png").unlink()
    Image.fromarray(np.zeros((10, 400, 3), np.uint8)).save(d / "thin.png")  # a 10-pixel strip
    with pytest.raises(DataError, match=r"thin \(400x10\) is too small for x2.*at least 16 pixels"):
        eval_samples(2, d)


def test_calib_images_above_available(tmp_path, hr_dir):
    from deploy.data import calibration
    from deploy.data.images import DataError
    with pytest.raises(DataError, match=r"calib_images 100000: .* has 3 images"):
        calibration.check_count(hr_dir, 100000)
    with pytest.raises(DataError, match=r"calib_images 100000: the shipped calibration set has \d+"):
        calibration.check_count(None, 100000)
    calibration.check_count(hr_dir, 3)


def test_nan_threshold_refused():
    from deploy.runtime import adaptive
    for kw in ({"threshold": float("nan")}, {"threshold": float("inf")}, {"wide_fraction": float("nan")}):
        with pytest.raises(UserInputError, match="finite"):
            adaptive.route(np.zeros((1, 1)), **kw)


def test_upscale_input_orientation_and_alpha(tmp_path):
    """upscale reads a phone photo as it is viewed (EXIF rotation) and says when alpha is dropped."""
    from deploy.data.images import has_alpha, load_image
    img = Image.fromarray(np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3))
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    img.save(tmp_path / "phone.jpg", exif=exif.tobytes())
    assert load_image(tmp_path / "phone.jpg").shape == (20, 30, 3)  # evaluation: stored pixels
    assert load_image(tmp_path / "phone.jpg", orient=True).shape == (30, 20, 3)
    Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(tmp_path / "rgba.png")
    assert has_alpha(tmp_path / "rgba.png") and not has_alpha(tmp_path / "phone.jpg")
