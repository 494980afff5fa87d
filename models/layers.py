"""Custom layers the zoo needs, written so they quantize to integer TFLite ops end to end and
compile whole onto phone NPUs (Qualcomm HTP via LiteRT's AOT compiler).

`PixelShuffle` is depth-to-space as RESHAPE -> TRANSPOSE -> RESHAPE with tensors of rank <= 4:
LiteRT's DEPTH_TO_SPACE kernel has no int16 path and AI Edge Quantizer has no DEPTH_TO_SPACE
entry, while RESHAPE and TRANSPOSE quantize to int8 and int16 (DESIGN.md); HTP rejects rank-6
RESHAPE/TRANSPOSE ("incorrect Rank 6"), so batch and rows share one axis. With a fixed input
shape every shape is a constant, so no SHAPE op drags the feature map back to float.

`SubPixelConv2DTranspose` is a stride-r `Conv2DTranspose(padding="same")` with the same weights,
computed as its exact sub-pixel equivalent: one convolution on the low-resolution grid producing
r*r*filters channels, then `PixelShuffle`. HTP rejects the stride-r TRANSPOSE_CONV ("Incorrect
output dimension"); the sub-pixel form is a CONV_2D + rank-4 shuffle it compiles whole.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from models._keras import keras, tf


def _spatial_dims(x: tf.Tensor) -> tuple:
    """Static H, W when known (fixed-shape export), else dynamic ones."""
    dynamic = tf.shape(x)
    h = x.shape[1] if x.shape[1] is not None else dynamic[1]
    w = x.shape[2] if x.shape[2] is not None else dynamic[2]
    return h, w


def pixel_shuffle(x: tf.Tensor, scale: int) -> tf.Tensor:
    """Depth-to-space (TensorFlow's DCR order) with rank-4 tensors only, any batch size.

    [B, H, W, r*r*C] -> [B*H, W, r, r*C] -> transpose (0, 2, 1, 3) -> [B*H, r, W, r*C]
    -> [B, H*r, W*r, C]. Each step keeps the memory order the next one needs, so this equals
    `tf.nn.depth_to_space(x, r)` element for element (a pure permutation: bit-exact). With a
    fixed batch of 1 (NPU export) the middle tensors are [H, W, r, r*C] and [H, r, W, r*C].
    """
    s = int(scale)
    c = x.shape[-1] // (s * s)
    h, w = _spatial_dims(x)
    b = x.shape[0]
    rows = b * h if b is not None and isinstance(h, int) else -1  # -1: batch*rows, dynamic
    y = tf.reshape(x, [rows, w, s, s * c])
    y = tf.transpose(y, [0, 2, 1, 3])
    return tf.reshape(y, [-1 if b is None else b, h * s, w * s, c])


@keras.utils.register_keras_serializable(package="srdeploy")
class PixelShuffle(keras.layers.Layer):
    """Depth-to-space with TensorFlow's (DCR) channel order, as rank-4 reshape/transpose."""

    def __init__(self, scale: int, **kwargs):
        super(PixelShuffle, self).__init__(**kwargs)
        self.scale = int(scale)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return pixel_shuffle(x, self.scale)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        s = self.scale
        return (b, None if h is None else h * s, None if w is None else w * s, c // (s * s))

    def get_config(self) -> dict:
        return {**super(PixelShuffle, self).get_config(), "scale": self.scale}


def subpixel_plan(kernel_size: int, stride: int) -> tuple[np.ndarray, int, int]:
    """How a stride-r, k x k, padding="same" transposed convolution maps onto a conv on the
    LR grid followed by a depth-to-space of r.

    TensorFlow's conv2d_transpose with "same" padding is the gradient of a stride-r conv2d whose
    input (the transpose's output, N = H*r long) is padded by P = max(k - r, 0) // 2 before:
    out[o] = sum_{i, t: i*r + t - P = o} in[i] * K[t]. Writing o = q*r + j (j: the phase) gives
    out[q*r + j] = sum_u in[q + u] * K[j + P - u*r], a correlation over the LR grid with one
    kernel per phase; taps whose index falls outside [0, k) are zero.

    Returns (taps, before, after): taps[a, j] is the deconvolution tap feeding offset
    a (= u + before) of phase j, or -1 for a zero; `before`/`after` are the LR-grid zero
    padding (the sub-pixel kernel is before + after + 1 wide). The output needs no cropping:
    q runs over the H LR positions and j over r phases, exactly the deconvolution's H*r.
    """
    k, r = int(kernel_size), int(stride)
    p = max(k - r, 0) // 2
    before = (k - 1 - p) // r   # -min u (phase 0 reaches furthest back)
    after = (r - 1 + p) // r    # max u (phase r-1 reaches furthest forward)
    taps = np.full((before + after + 1, r), -1, np.int64)
    for a in range(before + after + 1):
        u = a - before
        for j in range(r):
            t = j + p - u * r
            if 0 <= t < k:
                taps[a, j] = t
    return taps, before, after


def subpixel_kernel_index(kernel_size: int, stride: int, filters: int, in_channels: int) -> np.ndarray:
    """Flat indices into a Conv2DTranspose kernel [k, k, filters, in] (plus one trailing zero at
    index k*k*filters*in) that build the sub-pixel conv kernel [kk, kk, in, r*r*filters], whose
    output channel (jh*r + jw)*filters + f is phase (jh, jw) of deconvolution channel f
    (depth-to-space order)."""
    taps, before, after = subpixel_plan(kernel_size, stride)
    k, r, f_n, c_n = int(kernel_size), int(stride), int(filters), int(in_channels)
    kk = before + after + 1
    zero = k * k * f_n * c_n
    idx = np.full((kk, kk, c_n, r, r, f_n), zero, np.int64)
    f = np.arange(f_n)
    c = np.arange(c_n)
    for ah in range(kk):
        for aw in range(kk):
            for jh in range(r):
                for jw in range(r):
                    th, tw = taps[ah, jh], taps[aw, jw]
                    if th < 0 or tw < 0:
                        continue
                    # kernel[th, tw, f, c] in row-major order
                    idx[ah, aw, :, jh, jw, :] = ((th * k + tw) * f_n + f[None, :]) * c_n + c[:, None]
    return idx.reshape(kk, kk, c_n, r * r * f_n)


def subpixel_weights(kernel: np.ndarray, bias: np.ndarray | None, stride: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Numpy: a Conv2DTranspose(padding="same") kernel [k, k, filters, in] and bias [filters]
    -> the equivalent sub-pixel conv kernel [kk, kk, in, r*r*filters] and bias [r*r*filters]."""
    k, _, f_n, c_n = kernel.shape
    idx = subpixel_kernel_index(k, stride, f_n, c_n)
    flat = np.concatenate([kernel.reshape(-1), np.zeros(1, kernel.dtype)])
    return flat[idx], None if bias is None else np.tile(bias, stride * stride)


@keras.utils.register_keras_serializable(package="srdeploy")
class SubPixelConv2DTranspose(keras.layers.Conv2DTranspose):
    """A `Conv2DTranspose` (same weights, config and name) computed as conv + pixel shuffle.

    The layer keeps the transposed convolution's parameters ([k, k, filters, in] kernel,
    [filters] bias), so weight files, checkpoints, training and parameter counts are those of
    the deconvolution; `call` gathers them into the sub-pixel kernel (a fixed index map: exact,
    no arithmetic) and runs CONV_2D on the LR grid + `pixel_shuffle`. On constant weights the
    TFLite converter folds the gather, so the exported graph holds one CONV_2D whose weights are
    the converted ones. Only square stride-r, "same", channels_last, undilated, no
    output_padding is rewritten; any other configuration computes the plain transpose.
    """

    def _subpixel_ok(self) -> bool:
        r = self.strides
        return (self.padding == "same" and r[0] == r[1] and r[0] > 1
                and self.kernel_size[0] == self.kernel_size[1]
                and tuple(self.dilation_rate) == (1, 1) and self.output_padding is None
                and self.data_format == "channels_last")

    def call(self, inputs):
        if not self._subpixel_ok():
            return super(SubPixelConv2DTranspose, self).call(inputs)
        r, k = self.strides[0], self.kernel_size[0]
        c_in = int(inputs.shape[-1])
        _, before, after = subpixel_plan(k, r)
        idx = subpixel_kernel_index(k, r, self.filters, c_in)
        flat = tf.concat([tf.reshape(self.kernel, [-1]), tf.zeros([1], self.kernel.dtype)], 0)
        w = tf.gather(flat, tf.constant(idx, tf.int32))
        if before == after:  # odd, centred kernel: SAME pads `before` on each side, no PAD op
            y = tf.nn.conv2d(inputs, w, 1, "SAME")
        else:
            y = tf.nn.conv2d(tf.pad(inputs, [[0, 0], [before, after], [before, after], [0, 0]]),
                             w, 1, "VALID")
        if self.use_bias:
            y = tf.nn.bias_add(y, tf.tile(self.bias, [r * r]))
        y = pixel_shuffle(y, r)
        return self.activation(y) if self.activation is not None else y


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
                  "AddConstant": AddConstant, "SubPixelConv2DTranspose": SubPixelConv2DTranspose}
