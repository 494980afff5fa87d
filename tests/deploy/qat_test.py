"""Policy-aware QAT (deploy/qat.py): what is simulated at which bits, and that the fine-tuned
weights come back in a plain float model. Tiny on purpose: random-init nets, 3 steps of batch 2
on 16 px patches of the real photos in conftest's `train_dir`."""
from __future__ import annotations

import numpy as np
import pytest

import models
from deploy.experimental import qat
from deploy.data.io_convention import IOConvention
from deploy.experimental.qat_configs import EmaRangeQuantizer, PerChannelWeightQuantizer, tfq
from models._keras import keras, tf

FAST = dict(steps=3, batch=2, patch=16, val_every=2, progress=False)
#: A hybrid policy on XLSR: the fragile tail block in a16w8, the 1x1 skip conv left float.
XLSR_POLICY = {"skip_concat": "a16w8", "fuse": "a16w8", "tail": "a16w8", "pixel_shuffle": "a16w8",
               "clipped_relu": "a16w8", "skip": "float"}


def _wrappers(qmodel: keras.Model) -> dict:
    return {ly.layer.name: ly for ly in qmodel.layers if isinstance(ly, tfq.QuantizeWrapper)}


@pytest.fixture(scope="module")
def xlsr_run(train_dir):
    keras.utils.set_random_seed(0)
    model = models.build("xlsr", 2)
    before = {ly.name: [w.copy() for w in ly.get_weights()] for ly in model.layers}
    result = qat.qat_finetune(model, XLSR_POLICY, train_dir=str(train_dir), scale=2, **FAST)
    return model, before, result


def test_simulated_covers_every_conv_and_skip(xlsr_run):
    model, _, r = xlsr_run
    convs = [ly.name for ly in model.layers if isinstance(ly, keras.layers.Conv2D)]
    joins = [ly.name for ly in model.layers if isinstance(ly, keras.layers.Concatenate)]
    assert set(convs + joins) - {"skip"} <= set(r.simulated)
    assert r.simulated["tail"] == "a16w8" and r.simulated["head_g0"] == "a8w8"
    assert r.simulated["skip_concat"] == "a16w8"
    assert "skip" not in r.simulated and r.skipped["skip"].startswith("float by policy")
    assert r.skipped["pixel_shuffle"].startswith("data movement")
    assert set(r.simulated) | set(r.skipped) == {ly.name for ly in model.layers}
    assert r.unsimulated == {}
    assert not set(r.simulated) & set(r.skipped)
    assert r.steps == 3 and r.seconds > 0
    assert 0 < r.val_psnr_y_before < 100 and 0 < r.val_psnr_y_after < 100


def test_fine_tuned_weights_come_back_in_a_plain_float_model(xlsr_run):
    model, before, r = xlsr_run
    out = r.model
    assert [ly.name for ly in out.layers] == [ly.name for ly in model.layers]
    assert [type(ly) for ly in out.layers] == [type(ly) for ly in model.layers]
    changed = []
    for ly in out.layers:
        new = ly.get_weights()
        assert [w.shape for w in new] == [w.shape for w in before[ly.name]]
        assert [w.name for w in ly.weights] == [w.name for w in model.get_layer(ly.name).weights]
        if any(not np.array_equal(a, b) for a, b in zip(new, before[ly.name])):
            changed.append(ly.name)
    convs = {ly.name for ly in model.layers if isinstance(ly, keras.layers.Conv2D)}
    assert convs <= set(changed)  # every conv fine-tuned, the float "skip" one included
    for ly in model.layers:  # the input model is left as it was
        assert all(np.array_equal(a, b) for a, b in zip(ly.get_weights(), before[ly.name]))
    y = out(np.random.default_rng(0).random((1, 12, 12, 3), dtype=np.float32)).numpy()
    assert y.shape == (1, 24, 24, 3) and np.isfinite(y).all()


def test_quantizer_bits_follow_the_policy_and_the_readers():
    """a16w8 tail reads and writes 16 bits; an a16w8 conv read by an a8w8 add drops to 8."""
    keras.utils.set_random_seed(0)
    x_in = keras.Input((None, None, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(x_in)
    b = keras.layers.Conv2D(4, 3, padding="same", name="b")(x_in)
    s = keras.layers.Add(name="add")([a, b])
    t = keras.layers.Conv2D(4, 3, padding="same", name="t")(s)
    model = keras.Model(x_in, t)
    qmodel, plans = qat.build_qat_model(model, {"b": "a16w8", "t": "a16w8"})
    bits = {n: w.quantize_config.out_bits for n, w in _wrappers(qmodel).items()}
    assert bits == {"a": 8, "b": 8, "add": 8, "t": 16}
    assert "read by a lower-precision layer" in plans["b"].note


def test_16_bit_outputs_are_symmetric_and_finer_than_8_bit():
    """Twin convs with one kernel on one input: a16w8 has far more levels than a8w8."""
    keras.utils.set_random_seed(0)
    x_in = keras.Input((None, None, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="a8")(x_in)
    b = keras.layers.Conv2D(4, 3, padding="same", name="a16")(x_in)
    model = keras.Model(x_in, keras.layers.Concatenate(name="join")([a, b]))
    model.get_layer("a16").set_weights(model.get_layer("a8").get_weights())
    qmodel, _ = qat.build_qat_model(model, {"a16": "a16w8", "join": "float"})
    x = np.random.default_rng(1).random((2, 16, 16, 3), dtype=np.float32)
    qmodel(x, training=True)  # first training batch sets the ranges
    y = qmodel(x, training=False).numpy()
    levels8, levels16 = len(np.unique(y[..., :4])), len(np.unique(y[..., 4:]))
    assert levels8 <= 256 < 1000 < levels16
    w = _wrappers(qmodel)
    lo, hi = (float(v.numpy()) for v in w["a16"].weights if "output_m" in v.name)
    assert lo == -hi  # zero point 0, as TFLite int16x8
    lo8, hi8 = (float(v.numpy()) for v in w["a8"].weights if "output_m" in v.name)
    assert lo8 != -hi8


@pytest.mark.parametrize("axis, shape", [(-2, (3, 3, 5, 2)), (None, (3, 3, 2, 3)), (-1, (4, 6))])
def test_weights_are_int8_per_output_channel(axis, shape):
    """Conv2DTranspose (out axis -2), DepthwiseConv2D (in * multiplier), Dense/Conv (last)."""
    w = tf.constant(np.random.default_rng(2).normal(size=shape).astype(np.float32))
    quantizer = PerChannelWeightQuantizer(axis)
    host = keras.layers.Layer()
    q = quantizer(w, True, quantizer.build(w.shape, "kernel", host)).numpy()
    assert q.shape == shape
    flat = (np.moveaxis(w.numpy(), axis, -1).reshape(-1, shape[axis]) if axis is not None
            else w.numpy().reshape(-1, shape[-2] * shape[-1]))
    qflat = np.moveaxis(q, axis, -1) if axis is not None else q
    qflat = qflat.reshape(flat.shape)
    scale = np.abs(flat).max(axis=0) / 127.0
    steps = qflat / scale
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    assert np.abs(qflat - flat).max(axis=0).max() <= scale.max() / 2 + 1e-6


def test_ema_quantizer_starts_from_the_first_batch():
    quantizer, host = EmaRangeQuantizer(8), keras.layers.Layer()
    weights = quantizer.build(None, "out", host)
    quantizer(tf.constant([[0.0, 0.5, 1.0]]), True, weights)
    assert float(weights["min_var"].numpy()) == 0.0 and float(weights["max_var"].numpy()) == 1.0


def test_bad_policy_fails_before_any_work():
    model = models.build("abpn", 2)
    with pytest.raises(ValueError, match="'conv3'.*'int4'"):
        qat.qat_finetune(model, {"conv3": "int4"}, scale=2, steps=1)
    with pytest.raises(ValueError, match="'conv99' not layers of model"):
        qat.qat_finetune(model, {"conv99": "a8w8"}, scale=2, steps=1)


def test_abpn_anchor_add_is_simulated():
    model = models.build("abpn", 3)
    _, plans = qat.build_qat_model(model, {"anchor_add": "a16w8", "pixel_shuffle": "a16w8",
                                          "clip": "a16w8"})
    assert plans["anchor_add"].config.out_bits == 16
    assert plans["anchor"].config.out_bits == 8  # the repeated input, concatenated at a8w8


@pytest.mark.parametrize("convention", [None, IOConvention("y", "0-255")])
def test_user_y_channel_espcn_with_tf_ops(train_dir, convention):
    """A user's ESPCN on Y with tf.nn.depth_to_space and tf.clip_by_value (TF-op layers)."""
    keras.utils.set_random_seed(0)
    x_in = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(16, 5, padding="same", activation="tanh", name="c1")(x_in)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="tanh", name="c2")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="c3")(x)
    x = tf.clip_by_value(tf.nn.depth_to_space(x, 2), 0.0, 255.0)
    model = keras.Model(x_in, x, name="user_espcn")
    ops = [ly.name for ly in model.layers if ly.__class__.__name__ == "TFOpLambda"]
    _, plans = qat.build_qat_model(model, {})
    assert plans["c1"].config.pre_bits == 8 and plans["c3"].config.pre_bits is None  # tanh op
    r = qat.qat_finetune(model, {}, train_dir=str(train_dir), scale=2, convention=convention,
                         **FAST)
    assert set(r.simulated) == {"c1", "c2", "c3"}
    assert 0 < r.val_psnr_y_before < 100
    d2s, clip = ops
    assert r.skipped[d2s].startswith("data movement")
    assert "tf.clip_by_value" in r.skipped[clip] and "not fake-quantized" in r.skipped[clip]
    assert list(r.unsimulated) == [clip]
    assert [ly.name for ly in r.model.layers] == [ly.name for ly in model.layers]
    y = r.model(np.full((1, 10, 10, 1), 0.5, np.float32)).numpy()
    assert y.shape == (1, 20, 20, 1)
    assert not np.array_equal(r.model.get_layer("c1").get_weights()[0],
                              model.get_layer("c1").get_weights()[0])


def test_fixed_shape_export_model_trains_through_an_any_size_clone():
    model = models.build("xlsr", 2, input_shape=(12, 12))
    qmodel, _ = qat.build_qat_model(model, {})
    x = np.random.default_rng(3).random((2, 16, 16, 3), dtype=np.float32)
    assert qmodel(x, training=True).shape == (2, 32, 32, 3)
    out = qat.float_weights_from(qmodel, model)
    assert out.input_shape == (1, 12, 12, 3) and out.output_shape == (1, 24, 24, 3)
