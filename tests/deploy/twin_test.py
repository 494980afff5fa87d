"""Frame-sized per-layer models take their ranges from a small twin (issue 27: "calibrate on a
small-input twin with the same weights and export at any size"). The frame model must be the
twin's model at another size: the same quantization parameters, and the same integer output
wherever the borders do not reach."""
import numpy as np
import pytest

import deploy
from deploy.convert import twin
from deploy.convert.policy import Policy
from deploy.convert.tflite_io import invoke_once, make_interpreter

TWIN, FRAME = (16, 16), (48, 40)
MARGIN = 6  # LR pixels: more than ESPCN's receptive radius


@pytest.fixture()
def small_twin(monkeypatch):
    monkeypatch.setattr(twin, "TWIN_HW", TWIN)
    monkeypatch.setattr(twin, "TWIN_ABOVE_PX", 32 * 32)


def _params(tflite: bytes) -> dict:
    details = make_interpreter(tflite, delegates=False, allocate=False).get_tensor_details()
    return {d["name"]: (d["dtype"], tuple(np.round(d["quantization_parameters"]["scales"], 12)),
                        tuple(d["quantization_parameters"]["zero_points"])) for d in details}


def _interior_matches(frame_q: bytes, twin_q: bytes, scale: int) -> None:
    x = np.random.default_rng(0).random((1, *FRAME, 3), np.float32)
    y0, x0 = 12, 10
    crop = x[:, y0:y0 + TWIN[0], x0:x0 + TWIN[1]]
    big = invoke_once(make_interpreter(frame_q), x)
    small = invoke_once(make_interpreter(twin_q), crop)
    m = MARGIN * scale
    np.testing.assert_array_equal(
        big[0, (y0 * scale) + m:(y0 + TWIN[0]) * scale - m, (x0 * scale) + m:(x0 + TWIN[1]) * scale - m],
        small[0, m:TWIN[0] * scale - m, m:TWIN[1] * scale - m])


@pytest.mark.parametrize("ptq", [None, "cle+mse"])
def test_a_frame_model_is_its_twin_at_another_size(small_twin, ptq):
    src = deploy.load_model("espcn", 2)
    policy = Policy("espcn", 2, "a8w8", ())
    frame = deploy.quantize(src, policy, deploy.QuantizeConfig(calib_images=2, ptq=ptq), input_size=FRAME)
    small = deploy.quantize(src, policy, deploy.QuantizeConfig(calib_images=2, ptq=ptq), input_size=TWIN)
    cal = frame.report["calibration"]
    assert cal["patch_hw"] == list(TWIN) and "twin" in cal["ranges_from"]
    assert frame.report["input_shape"][1:3] == list(FRAME)
    assert "ranges_from" not in small.report["calibration"]
    p_frame, p_small = _params(frame.tflite_bytes), _params(small.tflite_bytes)
    assert p_frame.keys() == p_small.keys()
    assert {k: v[1:] for k, v in p_frame.items()} == {k: v[1:] for k, v in p_small.items()}
    _interior_matches(frame.tflite_bytes, small.tflite_bytes, 2)


def test_a_frame_int8_is_decided_on_its_twin(small_twin):
    src = deploy.load_model("espcn", 2)
    cfg = deploy.QuantizeConfig(calib_images=2, val_images=2)
    frame = deploy.quantize(src, "int8", cfg, input_size=FRAME)
    small = deploy.quantize(src, "int8", cfg, input_size=TWIN)
    f, s = frame.report["int8_route"], small.report["int8_route"]
    assert f["chosen"] == s["chosen"] and f["validation_psnr_y"] == s["validation_psnr_y"]
    assert "twin" in f["decided_on"] and "decided_on" not in s
    if f["chosen"] != "converter":  # the per-layer routes: the twin's model at another size
        _interior_matches(frame.tflite_bytes, small.tflite_bytes, 2)


def test_weights_from_copies_only_changed_float_constants():
    src = deploy.load_model("espcn", 2)
    from deploy.convert import per_layer
    a, b = per_layer.prepare_source(src, TWIN), per_layer.prepare_source(src, FRAME)
    assert twin.weights_from(a.float_tflite, b.float_tflite) == b.float_tflite  # same weights: untouched
    m = src.model
    old = m.get_weights()
    try:
        m.set_weights([w * 2 for w in old])
        doubled = per_layer.prepare_source(src, TWIN).float_tflite
    finally:
        m.set_weights(old)
    moved = twin.weights_from(doubled, b.float_tflite)
    x = np.random.default_rng(1).random((1, *FRAME, 3), np.float32)
    with_doubled = invoke_once(make_interpreter(moved), x)
    m.set_weights([w * 2 for w in old])
    try:
        expect = invoke_once(make_interpreter(per_layer.prepare_source(src, FRAME).float_tflite), x)
    finally:
        m.set_weights(old)
    np.testing.assert_allclose(with_doubled, expect, rtol=1e-5, atol=1e-5)
    other = per_layer.prepare_source(deploy.load_model("fsrcnn", 2), TWIN).float_tflite
    with pytest.raises(twin.TwinMismatch):  # not a twin: our bug, never a silent half-copy
        twin.weights_from(other, b.float_tflite)


def test_a_keras3_model_at_a_frame_takes_its_twins_ranges(small_twin, tmp_path):
    from tests.deploy.keras3_tflite_source_test import _fsrcnn
    _fsrcnn().save(tmp_path / "fsrcnn.keras")
    src = deploy.load_model(str(tmp_path / "fsrcnn.keras"), scale=3, value_range="0-255")
    cfg = deploy.QuantizeConfig(calib_images=2)
    frame = deploy.quantize(src, "int8", cfg, input_size=FRAME)
    small = deploy.quantize(src, "int8", cfg, input_size=TWIN)
    assert "twin" in frame.report["calibration"]["ranges_from"]
    assert {k: v[1:] for k, v in _params(frame.tflite_bytes).items()} == \
           {k: v[1:] for k, v in _params(small.tflite_bytes).items()}
