"""Per-layer quantization on real converted models: exact mapping, verification, FQSR."""
import numpy as np
import pytest

import models
from deploy.data import calibration
from deploy.convert import per_layer as hybrid
from deploy.convert import quantizer
from deploy.convert.policy import Policy, PolicyError
from deploy.convert.tflite_io import make_interpreter, summarize
from models._keras import keras


@pytest.fixture(scope="module")
def calib(hr_dir):
    return calibration.calibration_set(2, (16, 16), calib_dir=hr_dir, n_images=3, patches_per_image=2)


def _prefix_model() -> keras.Model:
    """Layer names that are prefixes of each other: body_1 must never match body_10."""
    keras.utils.set_random_seed(0)
    x_in = keras.Input((16, 16, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="body_1")(x_in)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="body_10")(x)
    y = keras.layers.Conv2D(8, 3, padding="same", name="body_11")(x)
    x = keras.layers.Add(name="skip")([x, y])
    x = keras.layers.Conv2D(12, 3, padding="same", name="tail")(x)
    x = models.layers.PixelShuffle(2, name="shuffle")(x)
    return keras.Model(x_in, x)


def _conv_dtypes(tfl: bytes) -> list[str]:
    s = summarize(make_interpreter(tfl, delegates=False))
    return [o.output_dtypes[0] for o in s.ops if o.op == "CONV_2D"]


def test_prefix_names_map_exactly_and_per_layer_dtypes_are_verified(calib):
    prep = hybrid.prepare(_prefix_model())
    assert prep.layers[:3] == ["body_1", "body_10", "body_11"]
    policy = Policy("custom", 2, "a8w8", (("body_1", "a16w8"), ("body_11", "float")))
    tfl, report = hybrid.quantize_policy(prep, policy, calib)
    assert _conv_dtypes(tfl) == ["int16", "int8", "float32", "int8"]
    by_layer = {l["layer"]: l for l in report["layers"]}
    assert by_layer["body_1"]["actual"] == "a16w8" and by_layer["body_10"]["actual"] == "a8w8"
    assert by_layer["body_11"]["actual"] == "float"
    assert report["requantize_ops"] >= 1 and report["verified"]
    assert [f["layer"] for f in report["float_ops"]] == ["body_11"]


@pytest.mark.parametrize("name", ["xlsr", "abpn", "fsrcnn", "imdn_rtc", "espcn", "edsr_baseline"])
@pytest.mark.parametrize("default", ["a8w8", "a16w8"])
def test_full_integer_policies_leave_no_float_op(name, default, calib, random_weights):
    """FQSR: skips, anchors, pixel shuffle, clipping and PReLU/LeakyReLU all integer."""
    m = models.with_fixed_shape(models.build(name, 2, weights=random_weights(name, 2)), name, 2, (16, 16))
    prep = hybrid.prepare(m)
    tfl, report = hybrid.quantize_policy(prep, Policy(name, 2, default, io_type="int8"), calib)
    s = summarize(make_interpreter(tfl, delegates=False))
    assert [o for o in s.ops if any(d.startswith("float") for d in o.output_dtypes)] == []
    assert report["float_ops"] == [] and report["requantize_ops"] == 0


def test_hybrid_output_close_to_float(calib, random_weights):
    m = models.with_fixed_shape(models.build("xlsr", 2, weights=random_weights("xlsr", 2)), "xlsr", 2, (16, 16))
    prep = hybrid.prepare(m)
    qsv = quantizer.calibrate(prep.float_tflite, calib.patches)
    x = calib.patches[:1]
    ref = m(x).numpy()
    errs = {}
    for default in ("a8w8", "a16w8"):
        tfl, _ = hybrid.quantize_policy(prep, Policy("xlsr", 2, default), calib, qsv=qsv)
        it = make_interpreter(tfl)
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        errs[default] = float(np.abs(it.get_tensor(it.get_output_details()[0]["index"]) - ref).mean())
    assert errs["a16w8"] < errs["a8w8"] / 3 and errs["a8w8"] < 0.01


def test_unknown_layer_is_rejected_before_quantizing(calib):
    prep = hybrid.prepare(_prefix_model())
    with pytest.raises(PolicyError, match="did you mean body_1"):
        hybrid.quantize_policy(prep, Policy("custom", 2, "a8w8", (("body_01", "a16w8"),)), calib)


def test_op_that_cannot_be_quantized_is_a_clear_error(calib):
    """A user's model with tf.nn.depth_to_space: AEQ cannot quantize DEPTH_TO_SPACE."""
    from models._keras import tf
    x_in = keras.Input((16, 16, 3), batch_size=1)
    x = keras.layers.Conv2D(12, 3, padding="same", name="conv")(x_in)
    x = keras.layers.Lambda(lambda t: tf.nn.depth_to_space(t, 2), name="d2s")(x)
    prep = hybrid.prepare(keras.Model(x_in, x))
    with pytest.raises(quantizer.QuantizationError, match="DEPTH_TO_SPACE"):
        hybrid.quantize_policy(prep, Policy("custom", 2, "a8w8"), calib)
    tfl, report = hybrid.quantize_policy(prep, Policy("custom", 2, "a8w8", (("d2s", "float"),)), calib)
    assert [f["op"] for f in report["float_ops"]] == ["DEPTH_TO_SPACE"]


def test_uint8_io_scale_comes_from_the_value_range_not_the_calibration_data(calib):
    """A 0-255 model calibrated on dark patches (max < 255) still maps uint8 0..255 onto 0..255."""
    import dataclasses
    keras.utils.set_random_seed(0)
    x_in = keras.Input((16, 16, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="head")(x_in)
    x = keras.layers.Conv2D(12, 3, padding="same", name="tail")(x)
    m = keras.Model(x_in, models.layers.PixelShuffle(2, name="shuffle")(x))
    dark = dataclasses.replace(calib, patches=(calib.patches * 180.0).astype(np.float32))  # 0-255 units
    prep = hybrid.prepare(m)
    tfl, _ = hybrid.quantize_policy(prep, Policy("custom", 2, "a16w8", io_type="uint8"), dark, value_peak=255.0)
    it = make_interpreter(tfl)
    d, o = it.get_input_details()[0], it.get_output_details()[0]
    assert d["quantization"] == pytest.approx((1.0, 0))  # one uint8 step = one 0-255 unit
    x = np.round(dark.patches[:1]).astype(np.uint8)
    it.set_tensor(d["index"], x)
    it.invoke()
    got = (it.get_tensor(o["index"]).astype(np.float32) - o["quantization"][1]) * o["quantization"][0]
    want = np.clip(m(x.astype(np.float32)).numpy(), 0, 255)
    assert np.abs(got - want).mean() < 2.0


@pytest.mark.slow
def test_uniform_policies_match_the_converter_on_shipped_xlsr():
    """All-a8w8 / all-a16w8 per-layer models land within 0.05 dB of TFLiteConverter's int8 /
    A16W8 on the evaluation set (same calibration patches)."""
    from deploy.convert import uniform
    from deploy.data import images
    from deploy.evaluation.evaluator import evaluate
    from deploy.evaluation.runners import TFLiteRunner
    name, scale, hw = "xlsr", 3, (64, 64)
    fixed = models.with_fixed_shape(models.build(name, scale, weights=True), name, scale, hw)
    cal = calibration.calibration_set(scale, hw, n_images=4)
    samples = images.eval_samples(scale)[:3]
    psnr = lambda tfl: evaluate(TFLiteRunner(tfl, scale), samples, model=name, dataset="default",  # noqa: E731
                                progress=False).mean["psnr_y"]
    prep = hybrid.prepare(fixed)
    qsv = quantizer.calibrate(prep.float_tflite, cal.patches)
    for precision, default in (("int8", "a8w8"), ("a16w8", "a16w8")):
        ours, _ = hybrid.quantize_policy(prep, Policy(name, scale, default), cal, qsv=qsv)
        theirs = uniform.convert_uniform(fixed, precision, calib=cal).tflite
        assert abs(psnr(ours) - psnr(theirs)) < 0.05, precision


@pytest.mark.parametrize("io_type,expected", [("float32", ("float32", "float32")),
                                              ("uint8", ("uint8", "uint8")),
                                              ("int8", ("int8", "int16"))])
def test_io_types_with_int16_first_and_last_layers(io_type, expected, calib, random_weights):
    """AEQ groups rules by regex: the I/O rules must still win over the per-op rules."""
    m = models.with_fixed_shape(models.build("espcn", 2, weights=random_weights("espcn", 2)), "espcn", 2, (16, 16))
    prep = hybrid.prepare(m)
    policy = Policy("espcn", 2, "a8w8", (("conv1", "a16w8"), ("conv3", "a16w8"), ("pixel_shuffle", "a16w8")),
                    io_type=io_type)
    tfl, report = hybrid.quantize_policy(prep, policy, calib, value_peak=1.0)
    assert (report["inputs"][0]["dtype"], report["outputs"][0]["dtype"]) == expected
    x = (calib.patches[:1] * 255).round()
    it = make_interpreter(tfl)
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], x.astype(np.uint8) if io_type == "uint8" else
                  (x / 255).astype(np.float32) if io_type == "float32" else
                  np.round(x / 255 / d["quantization"][0] + d["quantization"][1]).clip(-128, 127).astype(np.int8))
    it.invoke()
    assert it.get_tensor(it.get_output_details()[0]["index"]).shape == (1, 32, 32, 3)


@pytest.mark.slow
def test_policy_with_qat_writes_a_verified_model(tmp_path, random_weights, hr_dir, train_dir):
    import json
    from deploy.commands import policy_jobs
    from deploy.convert import sources
    src = sources.resolve("xlsr", 2, weights=str(random_weights("xlsr", 2)))
    policy = tmp_path / "p.json"
    policy.write_text(Policy("xlsr", 2, "a8w8", (("tail", "a16w8"), ("head_g0", "a16w8"))).dumps())
    out = tmp_path / "m.tflite"
    rep = policy_jobs.convert_with_policy(src, str(policy), out, input_hw=(16, 16), calib_dir=str(hr_dir),
                                          calib_images=3, qat_steps=3, qat_init="mse", train_dir=str(train_dir))
    assert out.is_file() and rep["verified"] and rep["qat"]["steps"] == 3 and rep["qat"]["init"] == "mse"
    assert rep["qat"]["simulated_layers"] > 10
    assert json.loads(out.with_suffix(".json").read_text())["policy"]["layers"]["tail"] == "a16w8"


def test_users_depth_to_space_becomes_a_rank4_shuffle(calib):
    """A user's tf.nn.depth_to_space (TF-op layer) is rewritten to the rank-4 pixel shuffle:
    bit-exact in Keras for any batch, int16 end to end per layer, no tensor above rank 4
    (Qualcomm's HTP rejects rank 6)."""
    from deploy.convert import rewrite
    from models._keras import tf
    keras.utils.set_random_seed(0)
    for batch, hw in [(3, (None, None)), (1, (16, 16))]:
        x_in = keras.Input((*hw, 3), batch_size=None if hw[0] is None else 1)
        x = keras.layers.Conv2D(12, 3, padding="same", name="conv")(x_in)
        m = keras.Model(x_in, tf.nn.depth_to_space(x, 2))
        new, what = rewrite.rewrite_for_aeq(m)
        assert list(what.values()) == ["TFOpLambda -> PixelShuffleOp"]
        xs = calib.patches[:batch]
        np.testing.assert_array_equal(new(xs).numpy(), m(xs).numpy())
    tfl, _ = hybrid.quantize_policy(hybrid.prepare(m), Policy("custom", 2, "a16w8"), calib)
    it = make_interpreter(tfl, delegates=False)
    ops = it._get_ops_details()  # noqa: SLF001 - the op list is only exposed here
    assert "DEPTH_TO_SPACE" not in {o["op_name"] for o in ops}
    shapes = {t["index"]: (len(t["shape"]), t["dtype"]) for t in it.get_tensor_details()}
    moved = [shapes[o["outputs"][0]] for o in ops if o["op_name"] in ("RESHAPE", "TRANSPOSE")]
    assert len(moved) == 3 and all(rank <= 4 and dtype == np.int16 for rank, dtype in moved)
