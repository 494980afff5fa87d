"""Rewrite activations AI Edge Quantizer cannot quantize into ops it can, keeping layer names.

AEQ 0.10 has no PRELU, LEAKY_RELU or MINIMUM entry, so those ops would stay float between
DEQUANTIZE/QUANTIZE pairs and break full integer SR (FQSR). Same maths, supported ops:
  ReLU(max_value=m)  ->  m - relu(m - relu(x))          RELU, SUB
  LeakyReLU(a), 0<a<1 ->  maximum(x, a * x)              MUL, MAXIMUM
  PReLU(alpha)       ->  relu(x) - alpha * relu(-x)     MUL (by -1), RELU, RELU, MUL, SUB
  tf.nn.depth_to_space (a TFOpLambda in users' models) -> rank-4 RESHAPE/TRANSPOSE pixel
    shuffle (AEQ has no DEPTH_TO_SPACE, LiteRT no int16 kernel for it, HTP no rank-6 tensors)
PReLU: each half of the output is one quantized tensor with its own range (x > 0: relu(x) and an
exact zero; x < 0: an exact zero and alpha * relu(-x)), so no positive value is the sum of two
rounded terms as in alpha * x + (1 - alpha) * relu(x), the earlier form. Measured on FSRCNN x3
(validation patches, PSNR_Y): per-layer a8w8 33.00 -> 33.14 dB, a16w8 34.03 -> 34.04; through
the converter the rewritten int8 (33.27) beats its native int8 PRELU (33.21) and its a16w8 has no
float PRELU left (the converter refuses 16x8 PRELU). Every op has int8 and int16 kernels in
LiteRT and AEQ, and compiles whole on HTP (SM8650), unlike MINIMUM (int16 rejected) or
max(x, alpha * x) (exact only for 0 <= alpha <= 1; FSRCNN's alphas reach -0.05 and 1.36).
The converter's uniform routes use `rewrite_for_converter`: PReLU at int8 and a16w8, and at
a16w8 the clipped ReLU too: TFLiteConverter lowers ReLU(max_value=m) to MINIMUM + RELU, and
Qualcomm's HTP takes only unsigned 16-bit in ElementWiseMinimum while LiteRT's int16 is signed,
so an int16 MINIMUM leaves the NPU. Float TFLite graphs from other frameworks get the same PReLU
rewrite on the flatbuffer (deploy/convert/prelu_graph.py).
Layers use two-argument super(): autograph may convert their methods, and zero-argument
super() has no __class__ cell there (seen as "KeyError: '__class__'").
Each replacement keeps its Keras layer name (so the policy still addresses it) and its weights.
"""
from __future__ import annotations

from typing import Optional, Sequence

from models._keras import keras, tf
from models.layers import PixelShuffle

L = keras.layers


@keras.utils.register_keras_serializable(package="srdeploy")
class ClippedReLUOps(L.Layer):
    def __init__(self, max_value: float, **kwargs):
        super(ClippedReLUOps, self).__init__(**kwargs)
        self.max_value = float(max_value)

    def call(self, x):
        m = tf.constant(self.max_value, x.dtype)
        return m - tf.nn.relu(m - tf.nn.relu(x))

    def get_config(self):
        return {**super(ClippedReLUOps, self).get_config(), "max_value": self.max_value}


@keras.utils.register_keras_serializable(package="srdeploy")
class LeakyReLUOps(L.Layer):
    def __init__(self, alpha: float, **kwargs):
        super(LeakyReLUOps, self).__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, x):
        return tf.maximum(x, x * self.alpha)

    def get_config(self):
        return {**super(LeakyReLUOps, self).get_config(), "alpha": self.alpha}


@keras.utils.register_keras_serializable(package="srdeploy")
class PReLUOps(L.Layer):
    """PReLU as relu(x) - alpha * relu(-x) (exact in float; see the module docstring). `alpha`
    keeps the PReLU's own shape: (1, 1, C) when shared over H and W, as the zoo uses it."""

    def __init__(self, channels: int, alpha_shape: Optional[Sequence[int]] = None, **kwargs):
        super(PReLUOps, self).__init__(**kwargs)
        self.channels = int(channels)
        self.alpha_shape = tuple(int(d) for d in alpha_shape) if alpha_shape else (1, 1, self.channels)
        self.alpha = self.add_weight(name="alpha", shape=self.alpha_shape, trainable=True,
                                     initializer="zeros")

    def call(self, x):
        return tf.nn.relu(x) - self.alpha * tf.nn.relu(x * -1.0)

    def get_config(self):
        return {**super(PReLUOps, self).get_config(), "channels": self.channels,
                "alpha_shape": list(self.alpha_shape)}


@keras.utils.register_keras_serializable(package="srdeploy")
class PixelShuffleOp(PixelShuffle):
    """PixelShuffle standing in for a `tf.nn.depth_to_space` TFOpLambda: it is re-called with
    that op's arguments (block_size, data_format, name), which it ignores."""

    def call(self, x, *args, **kwargs):
        return super(PixelShuffleOp, self).call(x)


_D2S_SYMBOLS = ("nn.depth_to_space", "compat.v1.depth_to_space", "compat.v1.nn.depth_to_space")


def _depth_to_space_block(layer: L.Layer):
    if layer.__class__.__name__ != "TFOpLambda" or getattr(layer, "symbol", "") not in _D2S_SYMBOLS:
        return None
    node = layer.inbound_nodes[0]
    block = node.call_kwargs.get("block_size", node.call_args[1] if len(node.call_args) > 1 else None)
    fmt = node.call_kwargs.get("data_format", "NHWC")
    return int(block) if block is not None and fmt == "NHWC" else None


def _replacement(layer: L.Layer):
    block = _depth_to_space_block(layer)
    if block:
        return PixelShuffleOp(block, name=layer.name)
    if isinstance(layer, L.ReLU) and layer.max_value is not None:
        if float(layer.threshold) == 0.0 and float(layer.negative_slope) == 0.0:
            return ClippedReLUOps(float(layer.max_value), name=layer.name)
    if isinstance(layer, L.LeakyReLU) and 0.0 < float(layer.alpha) < 1.0:
        return LeakyReLUOps(float(layer.alpha), name=layer.name)
    return _prelu_replacement(layer)


def _prelu_replacement(layer: L.Layer):
    """Any PReLU of a fixed-shape model (its alpha broadcasts as it is)."""
    if isinstance(layer, L.PReLU):
        shape = tuple(int(d) for d in layer.alpha.shape)
        return PReLUOps(shape[-1], shape, name=layer.name)
    return None


def _converter_replacement(precision: str):
    def replace(layer: L.Layer):
        return _prelu_replacement(layer) or (_clipped_relu_replacement(layer) if precision == "a16w8" else None)
    return replace


def _clipped_relu_replacement(layer: L.Layer):
    """ReLU(max_value=m) other than ReLU6 (the converter's RELU6 has no MINIMUM)."""
    if isinstance(layer, L.ReLU) and layer.max_value is not None and float(layer.max_value) != 6.0:
        if float(layer.threshold) == 0.0 and float(layer.negative_slope) == 0.0:
            return ClippedReLUOps(float(layer.max_value), name=layer.name)
    return None


def _rewrite(model: keras.Model, replacement) -> tuple[keras.Model, dict[str, str]]:
    replaced: dict[str, str] = {}
    pending = {}

    def clone(layer):
        new = replacement(layer)
        if new is None:
            return layer.__class__.from_config(layer.get_config())
        replaced[layer.name] = f"{layer.__class__.__name__} -> {new.__class__.__name__}"
        pending[layer.name] = layer
        return new

    try:
        copy = keras.models.clone_model(model, clone_function=clone)
    except (ValueError, TypeError):  # e.g. subclassed models: quantize them as they are
        return model, {}
    for layer in copy.layers:
        src = model.get_layer(layer.name)
        weights = src.get_weights()
        if layer.name in pending and isinstance(src, L.PReLU):
            weights = [src.get_weights()[0].reshape(layer.alpha_shape)]
        if weights:
            layer.set_weights(weights)
    return copy, replaced


def rewrite_for_aeq(model: keras.Model) -> tuple[keras.Model, dict[str, str]]:
    """A copy of `model` with unsupported activations rewritten; returns (model, {layer: what})."""
    return _rewrite(model, _replacement)


def rewrite_clipped_relus(model: keras.Model) -> tuple[keras.Model, dict[str, str]]:
    """A copy of `model` whose ReLU(max_value=m) layers compute m - relu(m - relu(x)) (same
    maths, no MINIMUM op); the model itself when it has none. Returns (model, {layer: what})."""
    if not any(_clipped_relu_replacement(layer) for layer in model.layers):
        return model, {}
    return _rewrite(model, _clipped_relu_replacement)


def rewrite_for_converter(model: keras.Model, precision: str) -> tuple[keras.Model, dict[str, str]]:
    """A copy of `model` for TFLiteConverter at `precision` (int8 or a16w8): PReLU as
    relu(x) - alpha * relu(-x), and at a16w8 ReLU(max_value=m) as m - relu(m - relu(x)); the
    model itself when it has neither. Returns (model, {layer: what})."""
    replace = _converter_replacement(precision)
    if not any(replace(layer) for layer in model.layers):
        return model, {}
    return _rewrite(model, replace)


CUSTOM_OBJECTS = {"ClippedReLUOps": ClippedReLUOps, "LeakyReLUOps": LeakyReLUOps,
                  "PReLUOps": PReLUOps, "PixelShuffleOp": PixelShuffleOp}
