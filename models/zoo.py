"""Keras definitions of the SR zoo (tf_keras, NHWC, RGB in [0, 1] -> RGB in [0, 1]).

Each builder follows its paper's layer counts, widths, activations and skips. One convention
for the whole zoo: RGB input and output in [0, 1] (FSRCNN and ESPCN were published on the Y
channel; here they predict RGB, which changes only the first and last layer's channel count).
`hw` is the LR input size: (None, None) for any size, or fixed for NPU export.
"""
from __future__ import annotations

from typing import Optional, Tuple

from models._keras import keras
from models.layers import AddConstant, ChannelSlice, PixelShuffle, SubPixelConv2DTranspose

L = keras.layers
HW = Tuple[Optional[int], Optional[int]]


def _input(hw: HW) -> keras.layers.Layer:
    """Fixed spatial size implies batch 1 too: NPU delegates want fully static shapes."""
    fixed = hw[0] is not None and hw[1] is not None
    return keras.Input(shape=(hw[0], hw[1], 3), batch_size=1 if fixed else None, name="lr")


def _conv(filters: int, k: int, name: str, activation=None) -> keras.layers.Layer:
    return L.Conv2D(filters, k, padding="same", activation=activation, name=name)


def fsrcnn(scale: int, hw: HW = (None, None), d: int = 56, s: int = 12, m: int = 4,
           subpixel: bool = True) -> keras.Model:
    """FSRCNN(d=56, s=12, m=4), Dong et al. ECCV 2016: PReLU after every conv, 9x9 deconv.

    The 9x9 stride-r deconvolution ("deconv") is a `SubPixelConv2DTranspose`: the paper's
    parameters (kernel [9, 9, 3, 56], bias [3]), computed as its exact sub-pixel equivalent, a
    conv on the LR grid with 3*r*r outputs (kernel 5x5 at x2, 3x3 at x3 and x4, gathered from
    the 9x9 taps; taps outside the 9x9 stay zero) + rank-4 pixel shuffle. Qualcomm's HTP
    rejects the stride-r TRANSPOSE_CONV; the sub-pixel form compiles whole (DESIGN.md).
    Decision (training and weights): the trainable model is this form with the deconvolution's
    parametrization, so the shipped .h5 files load unchanged (same layer name and shapes, hashes
    untouched), tools/train.py trains exactly the paper's parameters, writes weights in the same
    layout, and resumes its own checkpoints (and init_from) from runs made before the change.
    Not chosen: training a plain Conv2D(3*r*r) + shuffle, which frees taps the 9x9 deconvolution
    ties to zero (100 per channel pair at x2, 144 at x4, vs 81) and per-phase biases: a different
    model with a second weight layout, other parameter counts and incompatible checkpoints.
    Outputs equal the Conv2DTranspose model to float rounding (tests/models/zoo_test.py).
    `subpixel=False` builds the plain Conv2DTranspose (same weights), the reference.
    """
    x_in = _input(hw)
    x = _conv(d, 5, "feature")(x_in)
    x = L.PReLU(shared_axes=[1, 2], name="feature_prelu")(x)
    x = _conv(s, 1, "shrink")(x)
    x = L.PReLU(shared_axes=[1, 2], name="shrink_prelu")(x)
    for i in range(m):
        x = _conv(s, 3, f"map{i + 1}")(x)
        x = L.PReLU(shared_axes=[1, 2], name=f"map{i + 1}_prelu")(x)
    x = _conv(d, 1, "expand")(x)
    x = L.PReLU(shared_axes=[1, 2], name="expand_prelu")(x)
    deconv = SubPixelConv2DTranspose if subpixel else L.Conv2DTranspose
    x = deconv(3, 9, strides=scale, padding="same", name="deconv")(x)
    return keras.Model(x_in, x, name=f"fsrcnn_x{scale}")


def espcn(scale: int, hw: HW = (None, None)) -> keras.Model:
    """ESPCN, Shi et al. CVPR 2016: (5x5, 64) tanh, (3x3, 32) tanh, (3x3, 3r^2), pixel shuffle."""
    x_in = _input(hw)
    x = _conv(64, 5, "conv1", "tanh")(x_in)
    x = _conv(32, 3, "conv2", "tanh")(x)
    x = _conv(3 * scale * scale, 3, "conv3")(x)
    x = PixelShuffle(scale, name="pixel_shuffle")(x)
    return keras.Model(x_in, x, name=f"espcn_x{scale}")


def _grouped_conv(x, filters: int, groups: int, k: int, name: str):
    """Grouped conv as explicit per-group convs + concat, as XLSR deploys it on mobile."""
    cin = x.shape[-1]
    step, out_step = cin // groups, filters // groups
    parts = []
    for g in range(groups):
        xg = ChannelSlice(g * step, (g + 1) * step, name=f"{name}_slice{g}")(x)
        parts.append(_conv(out_step, k, f"{name}_g{g}", "relu")(xg))
    return L.Concatenate(name=f"{name}_concat")(parts)


def xlsr(scale: int, hw: HW = (None, None), gblocks: int = 3, width: int = 32,
         groups: int = 4) -> keras.Model:
    """XLSR, Ayazoglu CVPRW 2021: 4x(3x3, 8) head, 3 GBlocks, 1x1 skip path, clipped ReLU."""
    x_in = _input(hw)
    heads = [_conv(width // groups, 3, f"head_g{g}", "relu")(x_in) for g in range(groups)]
    x = L.Concatenate(name="head_concat")(heads)
    skip = _conv(width, 1, "skip", "relu")(x_in)
    for b in range(gblocks):
        x = _grouped_conv(x, width, groups, 3, f"gblock{b + 1}_gconv")
        x = _conv(width, 1, f"gblock{b + 1}_pw", "relu")(x)
    x = L.Concatenate(name="skip_concat")([x, skip])
    x = _conv(width, 1, "fuse", "relu")(x)
    x = _conv(3 * scale * scale, 3, "tail")(x)
    x = PixelShuffle(scale, name="pixel_shuffle")(x)
    x = L.ReLU(max_value=1.0, name="clipped_relu")(x)
    return keras.Model(x_in, x, name=f"xlsr_x{scale}")


def abpn(scale: int, hw: HW = (None, None), features: int = 28, body: int = 4) -> keras.Model:
    """ABPN, Du et al. MAI 2021 winner: 7 plain 3x3 convs + anchor (input repeated s^2 times)."""
    x_in = _input(hw)
    anchor = L.Concatenate(name="anchor")([x_in] * (scale * scale))
    x = _conv(features, 3, "conv1", "relu")(x_in)
    for i in range(body):
        x = _conv(features, 3, f"conv{i + 2}", "relu")(x)
    x = _conv(3 * scale * scale, 3, f"conv{body + 2}", "relu")(x)
    x = _conv(3 * scale * scale, 3, f"conv{body + 3}")(x)
    x = L.Add(name="anchor_add")([x, anchor])
    x = PixelShuffle(scale, name="pixel_shuffle")(x)
    x = L.ReLU(max_value=1.0, name="clip")(x)
    return keras.Model(x_in, x, name=f"abpn_x{scale}")


def _imd_module(x, name: str, rate: float = 0.25):
    """IMDModule_speed (Hui et al. ACM MM 2019): progressive distillation, 1x1 fusion, skip."""
    c = x.shape[-1]
    distilled = int(c * rate)
    act = lambda n: L.LeakyReLU(0.05, name=n)  # noqa: E731
    kept, cur = [], x
    for i in range(3):
        cur = act(f"{name}_c{i + 1}_lrelu")(_conv(c, 3, f"{name}_c{i + 1}")(cur))
        kept.append(ChannelSlice(0, distilled, name=f"{name}_distill{i + 1}")(cur))
        cur = ChannelSlice(distilled, c, name=f"{name}_remain{i + 1}")(cur)
    kept.append(_conv(distilled, 3, f"{name}_c4")(cur))
    out = _conv(c, 1, f"{name}_c5")(L.Concatenate(name=f"{name}_concat")(kept))
    return L.Add(name=f"{name}_add")([out, x])


def imdn_rtc(scale: int, hw: HW = (None, None), nf: int = 12, modules: int = 5) -> keras.Model:
    """IMDN-RTC (nf=12, 5 IMDModule_speed): the real-time IMDN, AIM 2019 RTC winner."""
    x_in = _input(hw)
    fea = _conv(nf, 3, "fea_conv")(x_in)
    x = fea
    for i in range(modules):
        x = _imd_module(x, f"imdb{i + 1}")
    x = _conv(nf, 1, "lr_conv")(x)
    x = L.Add(name="global_add")([x, fea])
    x = _conv(3 * scale * scale, 3, "upconv")(x)
    x = PixelShuffle(scale, name="pixel_shuffle")(x)
    return keras.Model(x_in, x, name=f"imdn_rtc_x{scale}")


_DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


def edsr_baseline(scale: int, hw: HW = (None, None), nf: int = 64, blocks: int = 16) -> keras.Model:
    """EDSR-baseline, Lim et al. CVPRW 2017: 16 res-blocks x 64 ch, no res-scaling, MeanShift."""
    x_in = _input(hw)
    x = AddConstant([-m for m in _DIV2K_MEAN], name="sub_mean")(x_in)
    head = _conv(nf, 3, "head")(x)
    x = head
    for i in range(blocks):
        r = _conv(nf, 3, f"res{i + 1}_conv1", "relu")(x)
        r = _conv(nf, 3, f"res{i + 1}_conv2")(r)
        x = L.Add(name=f"res{i + 1}_add")([x, r])
    x = _conv(nf, 3, "body_tail")(x)
    x = L.Add(name="global_add")([x, head])
    stages = [(2, "up1"), (2, "up2")] if scale == 4 else [(scale, "up1")]
    for s, name in stages:
        x = _conv(nf * s * s, 3, f"{name}_conv")(x)
        x = PixelShuffle(s, name=f"{name}_shuffle")(x)
    x = _conv(3, 3, "tail")(x)
    x = AddConstant(list(_DIV2K_MEAN), name="add_mean")(x)
    return keras.Model(x_in, x, name=f"edsr_baseline_x{scale}")
