"""Candidates assembled from uniform exports (deploy/policy_search/composed.py) run exactly what
their own exports run, and a graph where that does not hold is detected and exported instead."""
import numpy as np
import pytest

from deploy.convert import per_layer as hybrid
from deploy.convert.sources import ModelSource
from deploy.data import calibration
from deploy.data.io_convention import IOConvention
from deploy.policy_search import fast_oracle
from deploy.policy_search import oracle
from deploy.policy_search.space import make_groups
import models
from models._keras import keras
from tests.deploy.search_test import HW


def _chain() -> keras.Model:
    """Convs, a residual add and a pixel shuffle: grids that follow each op's own precision."""
    keras.utils.set_random_seed(5)
    x_in = keras.Input((*HW, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="head")(x_in)
    y = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="body1")(x)
    y = keras.layers.Conv2D(8, 3, padding="same", name="body2")(y)
    x = keras.layers.Add(name="skip")([x, y])
    x = keras.layers.Conv2D(12, 3, padding="same", name="tail")(x)
    return keras.Model(x_in, models.layers.PixelShuffle(2, name="shuffle")(x))


def _tanh() -> keras.Model:
    """ESPCN's shape: a TANH output has a fixed int16/int8 range in a uniform model but its
    calibrated range where the consumer's precision differs, so assembling is not exact."""
    keras.utils.set_random_seed(5)
    x_in = keras.Input((*HW, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="tanh", name="head")(x_in)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="tanh", name="body")(x)
    x = keras.layers.Conv2D(12, 3, padding="same", name="tail")(x)
    return keras.Model(x_in, models.layers.PixelShuffle(2, name="shuffle")(x))


def _oracle(model, hr_dir):
    src = ModelSource("t", 2, model, IOConvention(), False, None)
    prep = hybrid.prepare(src.model)
    calib = calibration.calibration_set(2, HW, calib_dir=hr_dir, n_images=2, patches_per_image=2)
    val = oracle.validation_set(2, HW, val_dir=hr_dir, n_images=2, patches_per_image=2)
    o = fast_oracle.FastOracle(prep, model="t", scale=2, calib=calib, val=val, convention=src.convention)
    return o, tuple(make_groups(prep.model, prep.layers))


def test_assembled_candidates_are_bit_identical_to_exported(hr_dir):
    o, groups = _oracle(_chain(), hr_dir)
    wide = o.uniform("a16w8")
    policies = [{**wide, **{l: "a8w8" for l in g.layers}} for g in groups]  # the drops
    rng = np.random.default_rng(0)
    policies += [{l: ("a8w8", "a16w8")[int(rng.integers(2))] for l in o.layers} for _ in range(4)]
    for a in policies:
        assembled = o.simulated(a)
        assert isinstance(assembled, tuple), o.composed.reason  # not an export
        exported = o.sim.op_args(o.quantized(a))
        assert assembled[1] == exported[1]
        assert np.array_equal(o.sim.run(o._x, assembled), o.sim.run(o._x, o.quantized(a)))
    assert o.composed.usable and not o.composed.reason


def test_a_graph_where_assembling_is_not_exact_exports_every_candidate(hr_dir):
    o, groups = _oracle(_tanh(), hr_dir)
    a = {**o.uniform("a16w8"), "head": "a8w8"}
    got = o.simulated(a)
    assert o.composed.usable is False and "differ" in o.composed.reason
    assert isinstance(got, bytes)  # the candidate's own export
    assert o.psnr(a) == pytest.approx(float(np.mean(o._images_from_output(o.sim.run(o._x, o.quantized(a))))))
