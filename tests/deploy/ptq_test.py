"""PTQ options of the per-layer route: activation ranges, CLE, bias correction, options, defaults."""
import hashlib

import numpy as np
import pytest

from deploy.convert import per_layer
from deploy.convert.policy import Policy
from deploy.convert.ptq import PtqOptions, act_ranges, bias_correction, equalize
from deploy.convert.tflite_io import make_interpreter
from deploy.data import calibration
from deploy.errors import SrdeployError
from models._keras import keras

_RNG = np.random.default_rng(29)


@pytest.fixture(scope="module")
def calib(hr_dir):
    return calibration.calibration_set(2, (16, 16), calib_dir=hr_dir, n_images=3, patches_per_image=2)


def _chain_model(act: str = "prelu") -> keras.Model:
    """conv -> activation -> conv -> conv(12) -> pixel shuffle; channels of very different size."""
    keras.utils.set_random_seed(3)
    x_in = keras.Input((16, 16, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, padding="same", name="a")(x_in)
    x = {"prelu": keras.layers.PReLU(shared_axes=[1, 2], name="act"),
         "tanh": keras.layers.Activation("tanh", name="act")}[act](x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="b")(x)
    x = keras.layers.Conv2D(12, 3, padding="same", name="tail")(x)
    from models.layers import PixelShuffle
    m = keras.Model(x_in, PixelShuffle(2, name="shuffle")(x))
    w = m.get_layer("a").get_weights()
    w[0] = w[0] * np.geomspace(0.05, 4.0, 8).astype(np.float32)  # unbalanced output channels
    m.get_layer("a").set_weights(w)
    if act == "prelu":
        m.get_layer("act").set_weights([np.full((1, 1, 8), 0.2, np.float32)])
    return m


def test_mse_range_beats_min_max_on_a_heavy_tailed_tensor():
    x = np.concatenate([_RNG.laplace(0.0, 0.05, 200_000), [4.0, -3.0, 3.5]])
    h = act_ranges.Histogram.over(x.min(), x.max())
    h.add(x)
    lo, hi = act_ranges.mse_range(h)
    assert x.min() < lo < 0 < hi < x.max()
    best = act_ranges.activation_mse([x], lo, hi)
    assert best < 0.8 * act_ranges.activation_mse([x], x.min(), x.max())
    # no clip range on a brute-force grid (exact errors) does clearly better than the search
    sweep = [act_ranges.activation_mse([x], x.min() * f, x.max() * g)
             for f in np.linspace(0.05, 1, 12) for g in np.linspace(0.05, 1, 12)]
    assert best <= 1.02 * min(sweep)
    plo, phi = act_ranges.percentile_range(h, 99.9)
    assert x.min() < plo < 0 < phi < x.max()
    # the histogram's estimate tracks the exact error (the search ranks candidates with it)
    est = act_ranges.grid_error(h, np.array([x.min(), lo]), np.array([x.max(), hi])) / x.size
    exact = [act_ranges.activation_mse([x], x.min(), x.max()), act_ranges.activation_mse([x], lo, hi)]
    assert np.allclose(est, exact, rtol=0.25)


def test_a_tensor_read_by_tanh_is_ranged_for_what_tanh_outputs():
    """Pre-activations spread over [-8, 8] by a few saturated values: plain MSE keeps most of the
    range; judged through tanh the saturated tail costs nothing, so the grid tightens around the
    knee and the error after tanh drops."""
    x = np.concatenate([_RNG.normal(0.0, 0.7, 200_000), _RNG.uniform(-8, 8, 4_000)])
    h = act_ranges.Histogram.over(x.min(), x.max())
    h.add(x)
    plain = act_ranges.mse_range(h)
    lo, hi = act_ranges.mse_range(h, through=act_ranges.SATURATING["TANH"])
    assert 1.5 < -lo < -plain[0] and 1.5 < hi < plain[1]

    def after_tanh(lo, hi):
        scale = (hi - lo) / 255
        zp = np.rint(-128 - lo / scale)
        q = (np.clip(np.rint(x / scale) + zp, -128, 127) - zp) * scale
        return float(np.mean((np.tanh(x) - np.tanh(q)) ** 2))
    assert after_tanh(lo, hi) < 0.5 * after_tanh(*plain)


def test_relu_output_keeps_zero_as_its_lower_bound():
    x = np.maximum(_RNG.normal(0, 1, 50_000), 0)
    h = act_ranges.Histogram.over(0.0, x.max())
    h.add(x)
    assert h.zeros > 20_000
    lo, hi = act_ranges.mse_range(h)
    assert lo == 0.0 and 0 < hi <= x.max()


def test_options_parse_round_trip_and_refuse_bad_input():
    for label in ("minmax", "mse", "p99.9+clip", "mse+clip+bc+cle"):
        assert PtqOptions.parse(PtqOptions.parse(label).label) == PtqOptions.parse(label)
    assert PtqOptions.parse(None).is_default and PtqOptions.parse("minmax").is_default
    assert not PtqOptions.parse("bc").is_default
    assert PtqOptions.parse({"act_ranges": "mse", "cle": True}).label == "mse+cle"
    for bad in ("mse+fast", "p120", "", {"act_range": "mse"}, 3):
        with pytest.raises(SrdeployError) as e:
            PtqOptions.parse(bad)
        assert "\n" not in str(e.value)


def test_cle_keeps_the_float_output_and_balances_weights(calib):
    m = _chain_model()
    assert equalize.find_pairs(m) == [("a", "act", "b"), ("b", None, "tail")]
    assert equalize.find_pairs(_chain_model("tanh")) == [("b", None, "tail")]
    eq, pairs = equalize.equalize_weights(m)
    x = calib.patches[:2]
    np.testing.assert_allclose(eq.predict(x, verbose=0), m.predict(x, verbose=0), atol=1e-4)

    def ranges(model, a, b):  # A's output-channel and B's input-channel weight ranges
        return (np.abs(model.get_layer(a).get_weights()[0]).max(axis=(0, 1, 2)),
                np.abs(model.get_layer(b).get_weights()[0]).max(axis=(0, 1, 3)))
    r1, r2 = ranges(m, "a", "b")
    assert not np.allclose(r1, r2, rtol=0.1)
    for a, b in (("a", "b"), ("b", "tail")):
        np.testing.assert_allclose(*ranges(eq, a, b), rtol=0.05)  # balanced, as CLE promises
    assert set(pairs) == {"a->b", "b->tail"}


def test_bias_correction_removes_the_mean_shift_of_a_conv(calib):
    prep = per_layer.prepare(_chain_model())
    policy = Policy("custom", 2, "a8w8")
    plain, _ = per_layer.quantize_policy(prep, policy, calib)
    corrected, report = per_layer.quantize_policy(prep, policy, calib, ptq="bc")
    assert report["ptq"]["bias_correction_summary"]["convs_corrected"] == 3
    out = [t for _, t, _ in bias_correction.biased_convs(prep.float_tflite)][-1]

    def shift(q):
        s = bias_correction.channel_shift(prep.float_tflite, q, calib.patches, out, fused=False)
        return float(np.abs(s).mean())
    assert shift(corrected) < 0.5 * shift(plain)


def test_default_options_leave_bytes_and_report_unchanged_and_others_are_recorded(calib):
    prep = per_layer.prepare(_chain_model())
    policy = Policy("custom", 2, "a8w8")
    base, rep = per_layer.quantize_policy(prep, policy, calib)
    same, rep2 = per_layer.quantize_policy(prep, policy, calib, ptq=PtqOptions())
    assert hashlib.sha256(base).digest() == hashlib.sha256(same).digest() and "ptq" not in rep2
    tfl, rep3 = per_layer.quantize_policy(prep, policy, calib, value_peak=1.0, ptq="mse+clip+cle")
    assert rep3["ptq"]["label"] == "mse+cle+clip" and rep3["ptq"]["act_ranges_summary"]["tensors_changed"] > 0
    assert rep3["ptq"]["act_ranges_summary"]["output_clipped_to_peak"]
    out = make_interpreter(tfl).get_output_details()[0]
    assert out["dtype"] == np.float32 and tfl != base
    # ranges are searched on int8 grids only: an a16w8 layer's tensors keep min/max
    mixed = Policy("custom", 2, "a8w8", (("b", "a16w8"),))
    _, rep4 = per_layer.quantize_policy(prep, mixed, calib, ptq="mse")
    changed = rep3["ptq"]["act_ranges_summary"]["tensors_changed"]
    assert 0 < rep4["ptq"]["act_ranges_summary"]["tensors_changed"] < changed


def test_api_and_cli_record_the_options(hr_dir, random_weights, tmp_path):
    import deploy
    from deploy.convert import metadata
    from deploy.convert.api import quantize
    from tests.conftest import run_tool
    src = deploy.load_model("espcn", 2, weights=str(random_weights("espcn", 2)))
    q = quantize(src, "int8", input_size=(16, 16), calib_dir=hr_dir, calib_images=3, ptq="mse+clip")
    assert q.report["precision"] == "int8" and q.report["ptq"]["label"] == "mse+clip"
    assert metadata.read(q.tflite_bytes)["ptq"] == "mse+clip"
    plain = quantize(src, "int8", input_size=(16, 16), calib_dir=hr_dir, calib_images=3, ptq="minmax")
    assert "ptq" not in plain.report and "ptq" not in metadata.read(plain.tflite_bytes)
    with pytest.raises(SrdeployError, match="not fp16"):
        quantize(src, "fp16", input_size=(16, 16), ptq="bc")
    out = tmp_path / "m.tflite"
    p = run_tool("convert", "--model", "espcn", "--scale", "2", "--out", str(out), "--input_size", "16x16",
                 "--weights", str(random_weights("espcn", 2)), "--calib_dir", str(hr_dir), "--calib_images", "3",
                 "--act_ranges", "percentile", "--percentile", "99.9", "--bias_correction")
    assert p.returncode == 0, p.stderr
    import json
    assert json.loads(out.with_suffix(".json").read_text())["ptq"]["label"] == "p99.9+bc"
    bad = run_tool("convert", "--model", "espcn", "--scale", "2", "--out", str(tmp_path / "b.tflite"),
                   "--act_ranges", "percentile", "--percentile", "120", "--input_size", "16x16")
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "percentile" in bad.stderr


def test_adaround_beats_nearest_rounding_on_held_out_inputs(calib):
    from deploy.convert.ptq import adaround
    w = _RNG.normal(0, 0.1, (6, 3, 3, 4)).astype(np.float32)
    x = _RNG.normal(0, 1, (1200, 36)) @ _RNG.normal(0, 1, (36, 36))  # correlated inputs, as feature maps are
    q, s = adaround.learn_rounding(w, x[:800], iters=300)
    wf = w.reshape(6, -1)
    near = np.clip(np.rint(wf / s[:, None]), -127, 127)
    err = [np.mean((x[800:] @ (k * s[:, None]).T - x[800:] @ wf.T) ** 2) for k in (near, q.reshape(6, -1))]
    assert err[1] < 0.9 * err[0]  # held-out rows
    assert np.abs(q).max() <= 127 and np.all(np.abs(q).reshape(6, -1).max(1) == 127)  # scale kept
    # through the real quantizer
    prep = per_layer.prepare(_chain_model())
    tfl, rep = per_layer.quantize_policy(prep, Policy("custom", 2, "a8w8"), calib, ptq="ar")
    assert rep["ptq"]["adaround_summary"]["convs"] == 3


def test_one_model_content_is_prepared_once_and_changed_weights_prepare_again():
    """Every route that quantizes a model prepares it (a float conversion): prepare() answers the same
    content (architecture + weights) from its cache, a clone with other weights is converted again, and
    AdaRound learns one rounding once per float model and patches."""
    from deploy.convert.ptq import adaround
    m = _chain_model()
    first = per_layer.prepare(m)
    clone = keras.models.clone_model(m)
    clone.set_weights(m.get_weights())
    assert per_layer.prepare(clone) is first
    w = clone.get_layer("b").get_weights()
    w[1] = w[1] + 0.5
    clone.get_layer("b").set_weights(w)
    other = per_layer.prepare(clone)
    assert other is not first and other.float_tflite != first.float_tflite
    assert per_layer.prepare(m) is first
    patches = np.random.default_rng(0).random((2, 16, 16, 3), np.float32)
    a = adaround.round_weights(first.float_tflite, patches, iters=20)
    b = adaround.round_weights(first.float_tflite, patches, iters=20)
    assert a[0] == b[0] and a[1] == b[1] and a[1] is not b[1]
    key_of = list(adaround._ROUNDED)[-1]
    adaround.round_weights(first.float_tflite, patches[:1], iters=20)   # other patches: learned again
    assert list(adaround._ROUNDED)[-1] != key_of
