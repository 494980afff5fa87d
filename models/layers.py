"""Custom layers the zoo needs, written so they quantize to integer TFLite ops end to end.

`PixelShuffle` is depth-to-space as RESHAPE -> TRANSPOSE -> RESHAPE: LiteRT's DEPTH_TO_SPACE
kernel has no int16 path and AI Edge Quantizer has no DEPTH_TO_SPACE entry, while RESHAPE and
TRANSPOSE quantize to int8 and int16 (DESIGN.md). With a fixed input shape every shape is a
constant, so no SHAPE op drags the feature map back to float.
"""
from __future__ import annotations

from typing import Sequence

from models._keras import keras, tf


def _spatial_dims(x: tf.Tensor) -> tuple:
    """Static H, W when known (fixed-shape export), else dynamic ones."""
    dynamic = tf.shape(x)
    h = x.shape[1] if x.shape[1] is not None else dynamic[1]
    w = x.shape[2] if x.shape[2] is not None else dynamic[2]
    return h, w


@keras.utils.register_keras_serializable(package="srdeploy")
class PixelShuffle(keras.layers.Layer):
    """Depth-to-space with TensorFlow's (DCR) channel order, as reshape/transpose."""

    def __init__(self, scale: int, **kwargs):
        super(PixelShuffle, self).__init__(**kwargs)
        self.scale = int(scale)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        s = self.scale
        c = x.shape[-1] // (s * s)
        h, w = _spatial_dims(x)
        x = tf.reshape(x, [-1, h, w, s, s, c])
        x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
        return tf.reshape(x, [-1, h * s, w * s, c])

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        s = self.scale
        return (b, None if h is None else h * s, None if w is None else w * s, c // (s * s))

    def get_config(self) -> dict:
        return {**super(PixelShuffle, self).get_config(), "scale": self.scale}


@keras.utils.register_keras_serializable(package="srdeploy")
class ChannelSlice(keras.layers.Layer):
    """Channels [start, stop) of a feature map (IMDN's split, XLSR's groups)."""

    def __init__(self, start: int, stop: int, **kwargs):
        super(ChannelSlice, self).__init__(**kwargs)
        self.start, self.stop = int(start), int(stop)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return x[..., self.start:self.stop]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.stop - self.start)

    def get_config(self) -> dict:
        return {**super(ChannelSlice, self).get_config(), "start": self.start, "stop": self.stop}


@keras.utils.register_keras_serializable(package="srdeploy")
class AddConstant(keras.layers.Layer):
    """x + per-channel constant (EDSR's MeanShift without a 1x1 conv)."""

    def __init__(self, values: Sequence[float], **kwargs):
        super(AddConstant, self).__init__(**kwargs)
        self.values = [float(v) for v in values]

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return x + tf.constant(self.values, dtype=x.dtype)

    def get_config(self) -> dict:
        return {**super(AddConstant, self).get_config(), "values": self.values}


CUSTOM_OBJECTS = {"PixelShuffle": PixelShuffle, "ChannelSlice": ChannelSlice,
                  "AddConstant": AddConstant}
