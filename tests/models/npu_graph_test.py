"""The zoo's NPU-facing graph forms compile whole (every op, one partition) onto Qualcomm's HTP,
checked with the real compiler (LiteRT AOT + QAIRT from onnxruntime-qnn, ~0.3 s a compile):
the rank-4 pixel shuffle at int8 and 16x8, FSRCNN's sub-pixel deconvolution, and the clipped
ReLU of the converter's a16w8 route (no int16 MINIMUM)."""
from __future__ import annotations

import numpy as np
import pytest

import models
from deploy.convert import per_layer
from deploy.convert.policy import Policy
from deploy.convert.tflite_io import make_interpreter, summarize
from deploy.convert.uniform import convert_uniform
from deploy.data import calibration
from models._keras import keras
from models.layers import PixelShuffle

pytest.importorskip("onnxruntime_qnn")

SOC = "SM8650"
HW = (16, 16)


@pytest.fixture(scope="module")
def calib(hr_dir):
    return calibration.calibration_set(3, HW, calib_dir=hr_dir, n_images=3, patches_per_image=2)


def _assert_whole(tflite: bytes, what: str) -> None:
    from deploy.npu import compile_tflite
    r = compile_tflite(tflite, SOC).report
    assert r.whole, (what, r.ops_on_npu, r.ops_total, r.partitions,
                     [f"{c.op}: {c.reason}" for c in r.cpu_ops])


def _ops(tflite: bytes) -> dict:
    return summarize(make_interpreter(tflite, delegates=False)).op_counts()


def _shuffle_net(clip: bool) -> keras.Model:
    keras.utils.set_random_seed(0)
    x_in = keras.Input((*HW, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="body")(x_in)
    x = keras.layers.Conv2D(27, 3, padding="same", name="tail")(x)
    x = PixelShuffle(3, name="shuffle")(x)
    if clip:
        x = keras.layers.ReLU(max_value=1.0, name="clip")(x)
    return keras.Model(x_in, x)


@pytest.mark.parametrize("route", ["int8", "a16w8", "pl_a16w8"])
def test_rank4_pixel_shuffle_compiles_whole(route, calib):
    model = _shuffle_net(clip=False)
    if route == "pl_a16w8":  # AI Edge Quantizer, every layer int16 activations
        tfl = per_layer.quantize_policy(per_layer.prepare(model), Policy("net", 3, "a16w8"), calib)[0]
    else:
        tfl = convert_uniform(model, route, calib=calib).tflite
    assert "DEPTH_TO_SPACE" not in _ops(tfl)
    _assert_whole(tfl, route)


def _run(tflite: bytes, x: np.ndarray) -> np.ndarray:
    interp = make_interpreter(tflite, delegates=False)
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


def test_converter_a16w8_clip_has_no_minimum_and_compiles_whole(calib):
    """ReLU(max_value=1) -> 1 - relu(1 - relu(x)) before the converter: no int16 MINIMUM (HTP's
    16-bit Minimum is unsigned only). Same maths: the float models agree to float rounding and
    the a16w8 models to a few int16 steps (1/32767) of requantizing the extra SUB."""
    from deploy.convert import uniform
    from deploy.convert.rewrite import rewrite_clipped_relus
    model = _shuffle_net(clip=True)
    x = calib.patches[:2]
    rewritten, what = rewrite_clipped_relus(model)
    assert what == {"clip": "ReLU -> ClippedReLUOps"}
    np.testing.assert_allclose(rewritten(x).numpy(), model(x).numpy(), atol=1e-6)
    out = convert_uniform(model, "a16w8", calib=calib)
    assert "MINIMUM" not in _ops(out.tflite) and out.report["float_ops"] == []
    assert out.report["rewritten_activations"] == what
    plain = uniform._converter(model, "a16w8", calib, "float32").convert()  # noqa: SLF001 - no rewrite
    assert "MINIMUM" in _ops(plain)
    for xi in x:
        np.testing.assert_allclose(_run(out.tflite, xi[None]), _run(plain, xi[None]), atol=2e-4)
    _assert_whole(out.tflite, "a16w8 with clip")
    assert convert_uniform(model, "int8", calib=calib).report.get("rewritten_activations") is None


@pytest.mark.parametrize("route", ["int8", "a16w8", "pl_a16w8"])
def test_fsrcnn_subpixel_form_compiles_whole(route, calib):
    """FSRCNN's stride-3 9x9 deconvolution as conv + rank-4 shuffle (its TRANSPOSE_CONV was
    rejected: "Incorrect output dimension"); the converter's float PRELU of a16w8 runs as fp16."""
    model = models.with_fixed_shape(models.build("fsrcnn", 3, weights=True), "fsrcnn", 3, HW)
    if route == "pl_a16w8":
        tfl = per_layer.quantize_policy(per_layer.prepare(model), Policy("fsrcnn", 3, "a16w8"), calib)[0]
    else:
        tfl = convert_uniform(model, route, calib=calib).tflite
    assert "TRANSPOSE_CONV" not in _ops(tfl)
    _assert_whole(tfl, route)


def test_realesrgan_nearest_skip_is_a_tiled_shuffle_and_compiles_whole_at_a16w8(hr_dir):
    """Real-ESRGAN-General's nearest-upsampled input skip as the input tiled 16x + a pixel shuffle:
    exactly nearest upsampling, and no RESIZE_NEAREST_NEIGHBOR (rejected by the HTP at int16)."""
    m = models.build("realesrgan_general_x4v3", 4, weights=True)
    x = np.random.default_rng(0).random((1, 9, 11, 3), np.float32)
    base = keras.Model(m.input, m.get_layer("base_nearest").output)(x).numpy()
    np.testing.assert_array_equal(base, np.repeat(np.repeat(x, 4, 1), 4, 2))
    fixed = models.with_fixed_shape(m, "realesrgan_general_x4v3", 4, HW)
    cal = calibration.calibration_set(4, HW, calib_dir=hr_dir, n_images=3, patches_per_image=2)
    tfl = convert_uniform(fixed, "a16w8", calib=cal).tflite
    assert "RESIZE_NEAREST_NEIGHBOR" not in _ops(tfl)
    _assert_whole(tfl, "realesrgan a16w8")
