"""Patch-adaptive upscaling: tiling covers every pixel, routing counts, seams blend exactly, and the
forced all-wide / none-wide routes reproduce the fixed models' tiled outputs bit for bit."""
import math

import numpy as np
import pytest

import models
from deploy.runtime import adaptive
from deploy.runtime.pair import build_pair
from deploy.data import calibration
from deploy.convert import per_layer as hybrid
from deploy.convert import quantizer
from deploy.data.io_convention import IOConvention
from deploy.convert.policy import Policy, PolicyError
from deploy.evaluation.runners import TFLiteRunner
from deploy.convert.sources import ModelSource
from models._keras import keras
from models.complexity import receptive_radius

RNG = np.random.default_rng(0)
TILE = (16, 16)


def test_ramps_are_complementary_and_borders_keep_full_weight():
    r = adaptive.ramp(5)
    assert np.allclose(r + r[::-1], 1.0) and r.min() > 0 and r.max() < 1
    w = adaptive.axis_window(0, 16, 40, margin=2, blend=3, scale=2)
    assert w.shape == (32,) and w[0] == 1.0 and (w[-4:] == 0).all() and 0 < w[-5] < 1
    assert (adaptive.axis_window(0, 16, 16, 2, 3) == 1).all()  # one tile: both sides are borders


@pytest.mark.parametrize("hw", [(16, 16), (17, 16), (37, 29), (64, 90)])
def test_grid_covers_every_pixel_and_blending_a_local_function_is_exact(hw):
    lr = RNG.integers(0, 256, (*hw, 3), dtype=np.uint8)
    grid = adaptive.plan(*hw, TILE, margin=2, blend=3)
    assert grid.ys[-1] + TILE[0] == hw[0] and grid.xs[-1] + TILE[1] == hw[1]
    up = lambda t: np.repeat(np.repeat(t.astype(np.float32), 2, 0), 2, 1)  # noqa: E731 - pixelwise "model"
    out = adaptive.blend_tiles(grid, adaptive.run_tiles(lr, grid, up), 2)
    np.testing.assert_allclose(out, up(lr), atol=1e-9)


def test_tile_too_small_for_margins_is_refused():
    with pytest.raises(ValueError, match="larger --tile"):
        adaptive.plan(40, 40, TILE, margin=6, blend=4)


def test_route_by_fraction_and_threshold():
    scores = np.arange(12, dtype=float).reshape(3, 4)
    r = adaptive.route(scores, wide_fraction=0.25)
    assert r.shape == (3, 4) and r.sum() == 3 and r[2, 1:].all()
    assert adaptive.route(scores, wide_fraction=0.0).sum() == 0
    assert adaptive.route(scores, wide_fraction=1.0).all()
    assert adaptive.route(scores, threshold=10.0).sum() == 2
    with pytest.raises(ValueError, match="between 0 and 1"):
        adaptive.route(scores, wide_fraction=1.5)
    with pytest.raises(ValueError, match="exactly one"):
        adaptive.route(scores, wide_fraction=0.5, threshold=1.0)


def test_criteria_rank_texture_against_flat():
    flat = np.full((16, 16, 3), 120, np.uint8)
    noisy = RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    img = np.concatenate([flat, noisy], axis=1)
    grid = adaptive.plan(16, 32, TILE, margin=0, blend=0)
    assert grid.shape == (1, 2)
    for name in ("gradient_energy", "local_variance"):
        s = adaptive.score_tiles(img, grid, name)
        assert s[0, 1] > s[0, 0], name
    s = adaptive.score_tiles(img, grid, "flatness")
    assert s[0, 0] > s[0, 1]
    with pytest.raises(ValueError, match="unknown criterion"):
        adaptive.criterion("psnr")


def _tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    x_in = keras.Input((*TILE, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="head")(x_in)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="body")(x)
    x = keras.layers.Conv2D(12, 3, padding="same", name="tail")(x)
    return keras.Model(x_in, models.layers.PixelShuffle(2, name="shuffle")(x))


@pytest.fixture(scope="module")
def pair(hr_dir):
    """Fast (a8w8, head a16w8) and wide (a16w8) models from one calibration."""
    prep = hybrid.prepare(_tiny_model())
    calib = calibration.calibration_set(2, TILE, calib_dir=hr_dir, n_images=3, patches_per_image=2)
    qsv = quantizer.calibrate(prep.float_tflite, calib.patches)
    fast, _ = hybrid.quantize_policy(prep, Policy("custom", 2, "a8w8", (("head", "a16w8"),)), calib, qsv=qsv)
    wide, _ = hybrid.quantize_policy(prep, Policy("custom", 2, "a16w8"), calib, qsv=qsv)
    return fast, wide, math.ceil(receptive_radius(prep.model))


@pytest.fixture(scope="module")
def photo_lr():
    import skimage.data
    return skimage.data.astronaut()[100:137, 200:229]  # 37x29: odd in both directions


def _run(pair, lr, **kw):
    fast, wide, margin = pair
    rf, rw = TFLiteRunner(fast, 2, overlap=margin), TFLiteRunner(wide, 2, overlap=margin)
    res = adaptive.upscale(lr, rf.invoke, rw.invoke, tile=TILE, scale=2, margin=margin, blend=3, **kw)
    return res, rf, rw


def test_adaptive_upscale_routes_every_tile_and_has_the_right_size(pair, photo_lr):
    res, rf, rw = _run(pair, photo_lr, wide_fraction=0.3)
    assert res.sr.shape == (74, 58, 3) and res.sr.dtype == np.uint8
    n = res.grid.shape[0] * res.grid.shape[1]
    assert res.route.shape == res.scores.shape == res.grid.shape and n > 4
    assert res.route.sum() == math.ceil(0.3 * n) and rw.invocations == res.route.sum()
    assert rf.invocations + rw.invocations == n  # every tile ran exactly once, on one path
    s = res.summary()
    assert s["tiles"] == n and s["wide_tiles"] == res.route.sum()
    assert np.array(s["route"]).shape == res.grid.shape


def test_forced_routes_equal_the_fixed_models_tiled_output(pair, photo_lr):
    fast, wide, margin = pair
    all_wide, _, _ = _run(pair, photo_lr, wide_fraction=1.0)
    none_wide, _, _ = _run(pair, photo_lr, wide_fraction=0.0)
    assert all_wide.route.all() and not none_wide.route.any()
    np.testing.assert_array_equal(all_wide.sr, TFLiteRunner(wide, 2, overlap=margin)(photo_lr))
    np.testing.assert_array_equal(none_wide.sr, TFLiteRunner(fast, 2, overlap=margin)(photo_lr))
    assert np.abs(all_wide.sr.astype(int) - none_wide.sr).max() > 0  # the paths really differ


def test_mixed_route_has_no_seam(pair, photo_lr):
    """Where tiles took different paths the image stays between the two fixed outputs."""
    mixed, _, _ = _run(pair, photo_lr, wide_fraction=0.5)
    lo, _, _ = _run(pair, photo_lr, wide_fraction=0.0)
    hi, _, _ = _run(pair, photo_lr, wide_fraction=1.0)
    a, b = np.minimum(lo.sr, hi.sr).astype(int), np.maximum(lo.sr, hi.sr).astype(int)
    m = mixed.sr.astype(int)
    assert ((m >= a - 1) & (m <= b + 1)).all()


def test_image_smaller_than_a_tile_is_padded(pair):
    lr = RNG.integers(0, 256, (7, 10, 3), dtype=np.uint8)
    res, _, _ = _run(pair, lr, wide_fraction=0.5)
    assert res.sr.shape == (14, 20, 3) and res.route.shape == (1, 1) and res.route.sum() == 1


def test_models_are_built_once_then_cached(hr_dir, tmp_path):
    src = ModelSource("custom", 2, _tiny_model(), IOConvention(), False, None)
    policy = Policy("custom", 2, "a8w8", (("tail", "a16w8"),))
    kw = dict(calib_dir=str(hr_dir), calib_images=3, cache_dir=tmp_path)
    first = build_pair(src, policy, TILE, **kw)
    again = build_pair(src, policy, TILE, **kw)
    assert not first.cached and again.cached and (first.fast, first.wide) == (again.fast, again.wide)
    assert again.margin == first.margin == 3
    other = build_pair(src, Policy("custom", 2, "a8w8"), TILE, **{**kw, "cache_dir": None})
    assert other.key != first.key
    with pytest.raises(PolicyError, match="not 'custom'"):
        build_pair(src, Policy("xlsr", 2, "a8w8"), TILE, **kw)
