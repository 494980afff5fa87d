"""QAT with learned ranges (deploy/experimental/lsq.py): the simulated graph is the quantized model,
training moves the exported int8 model towards float, the learned ranges and weights are those of
the exported TFLite, and the refusals. Tiny on purpose: a 3-layer net at 16x16, a few steps."""
from __future__ import annotations

import numpy as np
import pytest

from deploy.convert import per_layer, quantizer
from deploy.convert.policy import Policy
from deploy.convert.ptq import PtqOptions
from deploy.convert.ptq.learned import Learned, LearnedMismatch
from deploy.convert.tflite_io import make_interpreter
from deploy.data import calibration
from deploy.data.calibration import CalibrationSet
from deploy.errors import UserInputError
from deploy.experimental import lsq
from models._keras import keras, tf
from models.layers import PixelShuffle

HW = 16


def _net() -> keras.Model:
    keras.utils.set_random_seed(1)
    x = keras.Input((HW, HW, 3), batch_size=1, name="lr")
    h = keras.layers.Conv2D(12, 3, padding="same", activation="relu", name="c1")(x)
    h = keras.layers.Conv2D(12, 3, padding="same", name="c2")(h)
    h = keras.layers.PReLU(shared_axes=[1, 2], alpha_initializer=keras.initializers.Constant(0.2), name="act")(h)
    h = keras.layers.Conv2D(12, 3, padding="same", name="c3")(h)
    y = PixelShuffle(2, name="shuffle")(h)
    return keras.Model(x, y, name="tiny")


@pytest.fixture(scope="module")
def setup(hr_dir):
    prep = per_layer.prepare(_net())
    patches = calibration.calibration_set(2, (HW, HW), calib_dir=hr_dir, n_images=3, patches_per_image=6).patches
    cal = CalibrationSet(patches[:8], ("t",) * 8, "test")
    held = patches[8:]

    def draw(step: int) -> np.ndarray:
        r = np.random.default_rng([0, step])
        return np.ascontiguousarray(patches[:8][r.integers(0, 8, 4)][:, :, ::r.choice([-1, 1])])
    return prep, cal, held, draw


def _policy(prep, a16=()) -> Policy:
    return Policy("tiny", 2, "a8w8", tuple((n, "a16w8") for n in a16), "float32")


def _run(tfl: bytes, xs: np.ndarray) -> np.ndarray:
    it = make_interpreter(tfl, delegates=False)
    d, o = it.get_input_details()[0], it.get_output_details()[0]
    out = []
    for x in xs:
        it.set_tensor(d["index"], x[None].astype(np.float32))
        it.invoke()
        out.append(it.get_tensor(o["index"])[0].copy())
    return np.stack(out)


def _export(prep, policy, cal, learned=None) -> bytes:
    ptq = None if learned is None else PtqOptions(learned=learned)
    return per_layer.quantize_policy(prep, policy, cal, value_peak=1.0, ptq=ptq)[0]


@pytest.fixture(scope="module")
def trained(setup):
    prep, cal, _, draw = setup
    policy = _policy(prep)
    learned = lsq.learn(prep, policy, cal.patches, draw, lsq.QatSettings(steps=30, batch=4, jit=False))
    return policy, learned


def test_simulated_graph_is_the_quantized_model(setup):
    prep, cal, held, _ = setup
    policy = _policy(prep, a16=("c3",))
    from deploy.convert.per_layer import _io_rules
    recipe = quantizer.build_recipe(policy, prep.ops) + _io_rules("float32")
    qsv = quantizer.calibrate(prep.float_tflite, cal.patches)
    tfl = quantizer.quantize(prep.float_tflite, recipe, qsv)
    g = lsq.QatGraph(prep.float_tflite, tfl, qsv)
    assert g.fixed_grids == 1 and g.learned_grids > 5  # every grid but the photo input is learnable
    assert len(g.w0) >= 4  # 3 kernels + the PReLU slope (the zero biases are one shared tensor: kept)
    sim = g.forward(tf.constant(held)).numpy()
    real = _run(tfl, held)
    flt = g.forward(tf.constant(held), quant=False, original=True).numpy()
    assert np.abs(sim - real).mean() < 0.25 * np.abs(real - flt).mean()  # same grids, LiteRT's rounding


def test_qat_moves_the_exported_int8_model_towards_float(setup, trained):
    prep, cal, held, _ = setup
    policy, learned = trained
    flt = _run(prep.float_tflite, held)

    def psnr(tfl: bytes) -> float:  # to float, on patches QAT never saw
        return float(np.mean([10 * np.log10(1 / np.mean((y - f) ** 2)) for y, f in zip(_run(tfl, held), flt)]))
    before, after = psnr(_export(prep, policy, cal)), psnr(_export(prep, policy, cal, learned))
    assert learned.report["psnr_to_float_last20"] > learned.report["psnr_to_float_first20"]
    assert after > before + 0.5, (before, after)


def test_learned_ranges_and_weights_are_the_exported_ones(setup, trained):
    prep, cal, _, _ = setup
    policy, learned = trained
    tfl = _export(prep, policy, cal, learned)
    qp = {d["name"]: d["quantization_parameters"] for d in make_interpreter(tfl, delegates=False).get_tensor_details()}
    qsv = quantizer.calibrate(prep.float_tflite, cal.patches)
    changed = 0
    for name, (lo, hi) in learned.ranges.items():
        assert name in qp, name
        s, z = float(qp[name]["scales"][0]), int(qp[name]["zero_points"][0])
        want_s = (max(hi, 0.0) - min(lo, 0.0)) / 255.0
        assert s == pytest.approx(want_s, rel=1e-5) and z == int(np.rint(-128 - min(lo, 0.0) / want_s))
        lo0, hi0 = float(np.min(qsv[name]["min"])), float(np.max(qsv[name]["max"]))
        changed += abs(want_s - (max(hi0, 0.0) - min(lo0, 0.0)) / 255.0) > 1e-3 * want_s
    assert changed  # at least one range moved away from min/max
    # the float weights written into the float TFLite are the learned ones
    new = Learned.weights_into(learned, prep.float_tflite)
    from deploy.convert.fake_quant import _dequant, _fb
    m = _fb.read_model(new)
    for ti, w in learned.weights.items():
        np.testing.assert_array_equal(_dequant(m, ti), w)


def test_int16_layers_learn_a_symmetric_16_bit_range(setup):
    prep, cal, _, draw = setup
    policy = _policy(prep, a16=("c3",))
    learned = lsq.learn(prep, policy, cal.patches, draw, lsq.QatSettings(steps=2, batch=2, jit=False))
    tfl = _export(prep, policy, cal, learned)
    det = {d["name"]: d for d in make_interpreter(tfl, delegates=False).get_tensor_details()}
    int16 = [n for n in learned.ranges if n in det and det[n]["dtype"] == np.int16]
    assert int16
    for n in int16:
        lo, hi = learned.ranges[n]
        assert float(det[n]["quantization_parameters"]["scales"][0]) == pytest.approx(max(-lo, hi) / 32767, rel=1e-5)


def test_zero_steps_export_is_the_min_max_model(setup):
    prep, cal, held, draw = setup
    policy = _policy(prep)
    learned = lsq.learn(prep, policy, cal.patches, draw, lsq.QatSettings(steps=0, jit=False))
    np.testing.assert_array_equal(_run(_export(prep, policy, cal, learned), held), _run(_export(prep, policy, cal), held))


def test_zero_steps_from_mse_init_export_the_mse_ranges(setup):
    """QAT may start from the PTQ range search: with no step, its export is the mse model."""
    prep, cal, held, draw = setup
    policy = _policy(prep)
    learned = lsq.learn(prep, policy, cal.patches, draw, lsq.QatSettings(steps=0, jit=False, init="mse"))
    assert learned.report["init"] == "mse"
    mse = per_layer.quantize_policy(prep, policy, cal, value_peak=1.0, ptq="mse")[0]
    np.testing.assert_array_equal(_run(_export(prep, policy, cal, learned), held), _run(mse, held))
    for bad in ("mse+clip", "bc", "nonsense"):
        with pytest.raises(UserInputError):
            lsq.QatSettings(init=bad)


def test_refusals(setup, trained):
    prep, cal, _, _ = setup
    _, learned = trained
    with pytest.raises(LearnedMismatch, match="another float model"):
        learned.weights_into(prep.float_tflite + b"\0")
    with pytest.raises(UserInputError, match="replace the PTQ options"):
        PtqOptions(learned=learned, act_ranges="mse")
    with pytest.raises(UserInputError, match="not an option to ask for by label"):
        PtqOptions.parse("qat")
    with pytest.raises(UserInputError, match="must be a QAT result"):
        PtqOptions(learned={"a": 1})
    assert PtqOptions(learned=learned).label == "qat" and not PtqOptions(learned=learned).is_default
    assert PtqOptions(learned=learned).to_json()["qat"]["steps"] == 30
    for bad in (dict(steps=-1), dict(batch=0), dict(lr_ranges=2.0)):
        with pytest.raises(lsq.QatError):
            lsq.QatSettings(**bad)
    from deploy.experimental import qat
    with pytest.raises(lsq.QatError, match="not both"):
        qat.finetune_source(None, None, (HW, HW), steps=1, ptq="mse")
    with pytest.raises(lsq.QatError, match="steps >= 1"):
        qat.finetune_source(None, None, (HW, HW), steps=0)
