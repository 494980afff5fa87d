"""The large published SR generators, as latency- and compile-only graphs (no weights shipped).

Why: Qualcomm AI Hub publishes phone latencies for SR networks from 28K to 16.7M parameters; the
two big ones are what a latency model must extrapolate to (issue 27), and users ask what a 1.5M or
16.7M network costs on their phone before they train one. Architectures as AI Hub measures them
(qai-hub-models 0.65.0 wheel, `qai_hub_models/models/{srgan,esrgan,real_esrgan_x4plus}/`):
  - SRGAN = SRResNet x4 (Ledig et al., CVPR 2017) as in Lornatang/SRGAN-PyTorch @ da74ea5
    (`srresnet_x4`): 9x9 conv 3->64 + PReLU, 16 residual blocks (3x3 conv, BN, PReLU, 3x3 conv,
    BN, + skip), 3x3 conv + BN + the long skip, two x2 upsamplers (3x3 conv 64->256, pixel
    shuffle, PReLU), 9x9 conv 64->3. 1.55M parameters (AI Hub: 1.55M). BN folds into the convs in
    TFLite, so it is left out here (same graph after conversion).
  - RRDBNet (ESRGAN, Wang et al., ECCVW 2018; Real-ESRGAN-x4plus uses the same generator):
    3x3 conv 3->64, 23 RRDBs (3 residual dense blocks of 5 3x3 convs, growth 32, LeakyReLU 0.2,
    residual scale 0.2), trunk conv + skip, two (nearest x2, 3x3 conv, LeakyReLU), HR conv +
    LeakyReLU, conv 64->3. 16.7M parameters (AI Hub: 16.7M).
Random initialisation only: `models.build(name, scale)` works, `weights=True` says none are shipped.
"""
from __future__ import annotations

from typing import Optional, Tuple

from models._keras import keras
from models.layers import PixelShuffle

L = keras.layers
HW = Tuple[Optional[int], Optional[int]]


def _input(hw: HW):
    return keras.Input((hw[0], hw[1], 3), batch_size=1 if None not in hw else None, name="lr")


def _conv(x, filters: int, k: int, name: str):
    return L.Conv2D(filters, k, padding="same", name=name)(x)


def _prelu(x, name: str):
    return L.PReLU(shared_axes=[1, 2], name=name)(x)


def srgan(scale: int, hw: HW = (None, None), feat: int = 64, blocks: int = 16) -> keras.Model:
    """SRGAN's generator (SRResNet); scale must be a power of two (x2 upsamplers)."""
    if scale not in (2, 4, 8):
        raise ValueError(f"SRResNet upsamples in x2 steps; scale {scale} is not 2, 4 or 8")
    x_in = _input(hw)
    head = _prelu(_conv(x_in, feat, 9, "conv1"), "conv1_prelu")
    x = head
    for b in range(blocks):
        y = _prelu(_conv(x, feat, 3, f"block{b + 1}_conv1"), f"block{b + 1}_prelu")
        y = _conv(y, feat, 3, f"block{b + 1}_conv2")
        x = L.Add(name=f"block{b + 1}_add")([x, y])
    x = L.Add(name="trunk_add")([head, _conv(x, feat, 3, "conv2")])
    for u in range(scale.bit_length() - 1):
        x = PixelShuffle(2, name=f"up{u + 1}_shuffle")(_conv(x, feat * 4, 3, f"up{u + 1}_conv"))
        x = _prelu(x, f"up{u + 1}_prelu")
    return keras.Model(x_in, _conv(x, 3, 9, "conv3"), name=f"srgan_x{scale}")


def _rdb(x, feat: int, growth: int, name: str):
    feats = [x]
    for i in range(4):
        inp = feats[0] if i == 0 else L.Concatenate(name=f"{name}_cat{i}")(feats)
        feats.append(L.LeakyReLU(0.2, name=f"{name}_lrelu{i + 1}")(_conv(inp, growth, 3, f"{name}_conv{i + 1}")))
    y = _conv(L.Concatenate(name=f"{name}_cat4")(feats), feat, 3, f"{name}_conv5")
    return L.Add(name=f"{name}_add")([x, L.Rescaling(0.2, name=f"{name}_scale")(y)])


def rrdbnet(scale: int, hw: HW = (None, None), feat: int = 64, blocks: int = 23, growth: int = 32,
            name: str = "rrdbnet", nearest: str = "tiled") -> keras.Model:
    """ESRGAN / Real-ESRGAN-x4plus generator; x4 (two nearest x2 + conv upsamplers) or x2/x8.

    `nearest`: how each nearest x2 upsample is written. "tiled" (default): the features repeated
    4 times + a pixel shuffle, the same values, which Qualcomm's HTP takes at int16 (its
    RESIZE_NEAREST_NEIGHBOR is rejected at int16: "Unsupported input/output datatypes", so
    an a16w8 model left it on the CPU in 3 partitions); "resize": UpSampling2D, AI Hub's own
    graph, which the published-latency fit prices (bench/published/graphs.py)."""
    if nearest not in ("tiled", "resize"):
        raise ValueError(f"nearest must be 'tiled' or 'resize', not {nearest!r}")
    if scale not in (2, 4, 8):
        raise ValueError(f"RRDBNet upsamples in x2 steps; scale {scale} is not 2, 4 or 8")
    x_in = _input(hw)
    head = _conv(x_in, feat, 3, "conv_first")
    x = head
    for b in range(blocks):
        y = x
        for r in range(3):
            y = _rdb(y, feat, growth, f"rrdb{b + 1}_rdb{r + 1}")
        x = L.Add(name=f"rrdb{b + 1}_add")([x, L.Rescaling(0.2, name=f"rrdb{b + 1}_scale")(y)])
    x = L.Add(name="trunk_add")([head, _conv(x, feat, 3, "conv_body")])
    for u in range(scale.bit_length() - 1):
        if nearest == "resize":
            x = L.UpSampling2D(2, interpolation="nearest", name=f"up{u + 1}_nearest")(x)
        else:
            x = PixelShuffle(2, name=f"up{u + 1}_nearest")(L.Concatenate(name=f"up{u + 1}_tile")([x] * 4))
        x = L.LeakyReLU(0.2, name=f"up{u + 1}_lrelu")(_conv(x, feat, 3, f"conv_up{u + 1}"))
    x = L.LeakyReLU(0.2, name="hr_lrelu")(_conv(x, feat, 3, "conv_hr"))
    return keras.Model(x_in, _conv(x, 3, 3, "conv_last"), name=f"{name}_x{scale}")
