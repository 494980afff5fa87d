"""Rewrite activations AI Edge Quantizer cannot quantize into ops it can, keeping layer names.

AEQ 0.10 has no PRELU, LEAKY_RELU or MINIMUM entry, so those ops would stay float between
DEQUANTIZE/QUANTIZE pairs and break full integer SR (FQSR). Same maths, supported ops:
  ReLU(max_value=m)  ->  m - relu(m - relu(x))          RELU, SUB
  LeakyReLU(a), 0<a<1 ->  maximum(x, a * x)              MUL, MAXIMUM
  PReLU(alpha)       ->  alpha * x + (1 - alpha) * relu(x)  MUL, RELU, ADD
  tf.nn.depth_to_space (a TFOpLambda in users' models) -> rank-4 RESHAPE/TRANSPOSE pixel
    shuffle (AEQ has no DEPTH_TO_SPACE, LiteRT no int16 kernel for it, HTP no rank-6 tensors)
The converter's uniform a16w8 route uses `rewrite_clipped_relus` alone: TFLiteConverter lowers
ReLU(max_value=m) to MINIMUM + RELU, and Qualcomm's HTP takes only unsigned 16-bit in
ElementWiseMinimum while LiteRT's int16 is signed, so an int16 MINIMUM leaves the NPU.
Layers use two-argument super(): autograph may convert their methods, and zero-argument
super() has no __class__ cell there (seen as "KeyError: '__class__'").
Each replacement keeps its Keras layer name (so the policy still addresses it) and its weights.
"""
from __future__ import annotations

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
    """PReLU with per-channel alpha (shared over H, W as the zoo uses it)."""

    def __init__(self, channels: int, **kwargs):
        super(PReLUOps, self).__init__(**kwargs)
        self.channels = int(channels)
        self.alpha = self.add_weight(name="alpha", shape=(1, 1, self.channels), trainable=True,
                                     initializer="zeros")

    def call(self, x):
        return x * self.alpha + tf.nn.relu(x) * (1.0 - self.alpha)

    def get_config(self):
        return {**super(PReLUOps, self).get_config(), "channels": self.channels}


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
    if isinstance(layer, L.PReLU):
        shape = layer.alpha.shape
        if len(shape) == 3 and shape[0] == 1 and shape[1] == 1:
            new = PReLUOps(int(shape[-1]), name=layer.name)
            return new
    return None


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
            weights = [src.get_weights()[0].reshape(1, 1, -1)]
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


CUSTOM_OBJECTS = {"ClippedReLUOps": ClippedReLUOps, "LeakyReLUOps": LeakyReLUOps,
                  "PReLUOps": PReLUOps, "PixelShuffleOp": PixelShuffleOp}
