"""Qualcomm AI Hub's SR models in the zoo (tf_keras, NHWC, RGB in [0, 1] -> RGB in [0, 1]).

The architectures are those Qualcomm AI Hub profiles on phones (`quic/ai-hub-models` v0.46.1,
commit 52c080d245d2d20c634459208ff2548ce10b3c9f, `qai_hub_models/models/<name>/model.py`), whose
sources are:
  - QuickSRNet Small / Medium / Large (Berger et al., arXiv 2303.04336): `QuickSRNetBase` in
    `quic/aimet-model-zoo` `aimet_zoo_torch/quicksrnet/model/models.py` (commit d09d2b0404d1):
    (num_channels, num_intermediate_layers, use_ito_connection) = (32, 2, False), (32, 5, False),
    (64, 11, True) as set in AI Hub's `quicksrnet{small,medium,large}/model.py`;
  - SESR-M5 (Bhardwaj et al., arXiv 2103.09404): `SESRRelease(num_channels=16, num_lblocks=5)` in
    `aimet_zoo_torch/common/super_resolution/models.py` + `blocks.py` (same commit);
  - Real-ESRGAN-General-x4v3 (Wang et al., arXiv 2107.10833): BasicSR's `SRVGGNetCompact(num_feat=64,
    num_conv=32, upscale=4, act_type="prelu")`, `qai_hub_models/extern/basicsr/archs/srvgg_arch.py`.
Parameter counts at x4 equal AI Hub's `info.yaml` ones (tests/models/zoo_aihub_test.py).

One convention differs from the PyTorch sources and changes no function: PyTorch's PixelShuffle
reads channels c*r*r + phase (CRD), ours (TensorFlow's depth_to_space, `models.layers.PixelShuffle`)
phase*C + c (DCR); the last conv's output channels are simply ordered for DCR, and the "anchor"
(nearest-neighbour upsampling of the input, a channel repeat_interleave before a CRD shuffle) is the
input tiled r*r times before a DCR shuffle.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from models._keras import keras, tf
from models.layers import PixelShuffle

L = keras.layers
HW = Tuple[Optional[int], Optional[int]]


def _input(hw: HW) -> keras.layers.Layer:
    """Fixed spatial size implies batch 1 too (as models.zoo): NPU delegates want static shapes."""
    fixed = hw[0] is not None and hw[1] is not None
    return keras.Input(shape=(hw[0], hw[1], 3), batch_size=1 if fixed else None, name="lr")


@keras.utils.register_keras_serializable(package="srdeploy")
class TorchConvInit(keras.initializers.Initializer):
    """PyTorch's default Conv2d weight init (kaiming_uniform, a=sqrt(5): U(+-1/sqrt(fan_in))) plus
    an optional structured term, as QuickSRNet's `initialize()` and SESR's residual blocks add it:
      - "identity": +1 at the kernel centre from input channel i to output channel i (i < min(in, out));
      - "repeat":   +1 at the centre from input channel (k mod in) to output k: with a DCR pixel shuffle
                    after it this is nearest-neighbour upsampling (QuickSRNet's conv_last without the
                    input-to-output connection; its repeat_interleave in PyTorch's CRD order);
      - "nearest":  the repeat term alone, no random part (QuickSRNet-Large's anchor init);
      - "zero":     zeros (and a zero bias): the layer starts silent (SESR's conv_last, see `sesr`);
      - "he_prelu": no PyTorch part: He-normal for a PReLU(0.25) that follows, N(0, 2 / (1.0625 fan_in)),
                    zero bias. PyTorch's default keeps 1/3 of the variance per layer, so in a plain
                    34-conv stack (SRVGGNetCompact) the signal vanishes and training from scratch
                    stays at the nearest-neighbour skip; He's keeps it (He et al., arXiv 1502.01852).
    """

    def __init__(self, extra: str = "none", seed: Optional[int] = None):
        self.extra, self.seed = str(extra), seed

    def __call__(self, shape, dtype=None, **kwargs):
        kh, kw, cin, cout = (int(d) for d in shape)
        bound = 1.0 / np.sqrt(kh * kw * cin)
        if self.extra == "he_prelu":
            std = float(np.sqrt(2.0 / ((1.0 + 0.25 ** 2) * kh * kw * cin)))
            return tf.random.normal(shape, 0.0, std, seed=self.seed, dtype=dtype or tf.float32)
        w = (np.zeros(shape, np.float32) if self.extra in ("nearest", "zero")
             else tf.random.uniform(shape, -bound, bound, seed=self.seed).numpy())
        if self.extra == "identity":
            for i in range(min(cin, cout)):
                w[kh // 2, kw // 2, i, i] += 1.0
        elif self.extra in ("repeat", "nearest"):
            for k in range(cout):
                w[kh // 2, kw // 2, k % cin, k] += 1.0
        return tf.constant(w, dtype=dtype or tf.float32)

    def get_config(self) -> dict:
        return {"extra": self.extra, "seed": self.seed}


@keras.utils.register_keras_serializable(package="srdeploy")
class TorchBiasInit(keras.initializers.Initializer):
    """PyTorch's default Conv2d bias init U(+-1/sqrt(fan_in)) (fan_in given), or zeros."""

    def __init__(self, fan_in: int = 0):
        self.fan_in = int(fan_in)

    def __call__(self, shape, dtype=None, **kwargs):
        if self.fan_in <= 0:
            return tf.zeros(shape, dtype or tf.float32)
        b = 1.0 / np.sqrt(self.fan_in)
        return tf.random.uniform(shape, -b, b, dtype=dtype or tf.float32)

    def get_config(self) -> dict:
        return {"fan_in": self.fan_in}


def _conv(x, filters: int, k: int, name: str, extra: str = "none", bias: bool = True,
          activation=None, groups: int = 1):
    fan_in = k * k * int(x.shape[-1]) // groups
    return L.Conv2D(filters, k, padding="same", name=name, use_bias=bias, groups=groups,
                    activation=activation, kernel_initializer=TorchConvInit(extra),
                    bias_initializer=TorchBiasInit(0 if extra in ("nearest", "zero", "he_prelu") else fan_in))(x)


def _clip01(x, name: str):
    """PyTorch Hardtanh(0, 1) (QuickSRNet's activation and output clip)."""
    return L.ReLU(max_value=1.0, name=name)(x)


def _anchor_tile(x_in, scale: int, name: str = "anchor"):
    """Nearest-neighbour upsampling before a DCR shuffle: the input repeated r*r times."""
    return L.Concatenate(name=name)([x_in] * (scale * scale))


def quicksrnet(scale: int, hw: HW = (None, None), channels: int = 32, intermediate: int = 2,
               ito: bool = False, variant: str = "small") -> keras.Model:
    """QuickSRNetBase (aimet-model-zoo): 3x3 conv + Hardtanh(0,1), `intermediate` more of them,
    a 3x3 conv to 3r^2 channels (+ a learnable 1x1 "anchor" conv of the input, initialised to
    nearest upsampling, when `ito`), Hardtanh(0,1), pixel shuffle. Convs initialised as in
    `QuickSRNetBase.initialize()` (identity added at the centre; conv_last + nearest without ito).
    """
    x_in = _input(hw)
    x = _clip01(_conv(x_in, channels, 3, "conv1", "identity"), "conv1_clip")
    for i in range(intermediate):
        x = _clip01(_conv(x, channels, 3, f"conv{i + 2}", "identity"), f"conv{i + 2}_clip")
    out_ch = 3 * scale * scale
    if ito:
        x = _conv(x, out_ch, 3, "conv_last")
        anchor = _conv(x_in, out_ch, 1, "anchor", "nearest")
        x = L.Add(name="ito_add")([anchor, x])
    else:
        x = _conv(x, out_ch, 3, "conv_last", "repeat")
    x = _clip01(x, "clip_output")
    x = PixelShuffle(scale, name="pixel_shuffle")(x)
    return keras.Model(x_in, x, name=f"quicksrnet_{variant}_x{scale}")


def quicksrnet_small(scale: int, hw: HW = (None, None)) -> keras.Model:
    """QuickSRNetSmall: 32 channels, 2 intermediate layers, no input-to-output connection."""
    return quicksrnet(scale, hw, 32, 2, False, "small")


def quicksrnet_medium(scale: int, hw: HW = (None, None)) -> keras.Model:
    """QuickSRNetMedium: 32 channels, 5 intermediate layers, no input-to-output connection."""
    return quicksrnet(scale, hw, 32, 5, False, "medium")


def quicksrnet_large(scale: int, hw: HW = (None, None)) -> keras.Model:
    """QuickSRNetLarge: 64 channels, 11 intermediate layers, input-to-output (anchor) connection."""
    return quicksrnet(scale, hw, 64, 11, True, "large")


def sesr(scale: int, hw: HW = (None, None), channels: int = 16, lblocks: int = 5,
         collapsed: bool = True, expand: int = 256, name: str = "sesr_m5") -> keras.Model:
    """SESRRelease (aimet-model-zoo): conv_first 5x5 + ReLU, `lblocks` residual 3x3 blocks + ReLU,
    long skip, conv_last 5x5 to 3r^2, + anchor (nearest upsampling of the input), pixel shuffle.

    collapsed=True (the zoo model): the inference form the paper deploys, each collapsible linear
    block (k x k conv to 256 channels, no bias, then 1x1 back) as the single k x k conv it
    collapses to; a residual block's skip is folded into its kernel (`ResidualCollapsibleLinear
    Block.collapse` adds the identity), so the block is conv + ReLU, initialised with the identity
    added. We train this form directly (the paper trains the expanded one and collapses it; same
    function class, different optimisation path). The collapsed conv_last starts at zero, so the
    model starts as nearest-neighbour upsampling (the anchor). With PyTorch's default init there
    it starts about 11 dB below that (the body's noise) and L1/Adam escapes by killing
    conv_first's ReLUs, which leaves nearest upsampling for good (measured at x4: 99.9 % of
    conv_first's outputs dead, loss flat from step 300, validation PSNR_Y stuck at nearest's).
    collapsed=False: the expanded training form, as AI Hub profiles it (its SESR-M5 has 343K
    parameters: the blocks are not collapsed before export); used to price AI Hub's measured graph.
    """
    x_in = _input(hw)
    anchor = _anchor_tile(x_in, scale)

    def block(x, out_ch: int, k: int, nm: str, residual: bool, act: bool, extra: Optional[str] = None):
        if collapsed:
            y = _conv(x, out_ch, k, nm, extra or ("identity" if residual else "none"))
        else:
            y = _conv(x, expand, k, f"{nm}_expand", bias=False)
            y = _conv(y, out_ch, 1, f"{nm}_squeeze")
            if residual:
                y = L.Add(name=f"{nm}_skip")([x, y])
        return L.ReLU(name=f"{nm}_relu")(y) if act else y

    first = block(x_in, channels, 5, "conv_first", False, True)
    x = first
    for i in range(lblocks):
        x = block(x, channels, 3, f"lblock{i + 1}", True, True)
    x = L.Add(name="add_residual")([x, first])
    x = block(x, 3 * scale * scale, 5, "conv_last", False, False, extra="zero")
    x = L.Add(name="add_anchor")([x, anchor])
    x = PixelShuffle(scale, name="pixel_shuffle")(x)
    return keras.Model(x_in, x, name=f"{name}{'' if collapsed else '_expanded'}_x{scale}")


def sesr_m5(scale: int, hw: HW = (None, None)) -> keras.Model:
    """SESR-M5 (16 channels, 5 linear blocks), collapsed inference form."""
    return sesr(scale, hw, 16, 5, collapsed=True)


def sesr_m5_expanded(scale: int, hw: HW = (None, None)) -> keras.Model:
    """SESR-M5 in the expanded (training) form AI Hub profiles: not a zoo model, a latency reference."""
    return sesr(scale, hw, 16, 5, collapsed=False)


def srvgg_compact(scale: int, hw: HW = (None, None), feat: int = 64, convs: int = 32,
                  name: str = "realesrgan_general_x4v3") -> keras.Model:
    """SRVGGNetCompact (BasicSR; Real-ESRGAN's general-x4v3 is feat=64, 32 body convs, PReLU):
    3x3 conv + per-channel PReLU, `convs` x (3x3 conv + PReLU), 3x3 conv to 3r^2, pixel shuffle,
    + the input upsampled by nearest neighbour (at HR, as the source adds it; written as a tiled
    input + pixel shuffle, the same numbers)."""
    x_in = _input(hw)
    # initialised to train here from scratch (TorchConvInit "he_prelu", "zero"): starts as the
    # nearest-neighbour skip with a body whose signal survives 33 layers
    x = L.PReLU(shared_axes=[1, 2], alpha_initializer=keras.initializers.Constant(0.25),
                name="conv1_prelu")(_conv(x_in, feat, 3, "conv1", extra="he_prelu"))
    for i in range(convs):
        x = _conv(x, feat, 3, f"body{i + 1}", extra="he_prelu")
        x = L.PReLU(shared_axes=[1, 2], alpha_initializer=keras.initializers.Constant(0.25),
                    name=f"body{i + 1}_prelu")(x)
    x = _conv(x, 3 * scale * scale, 3, "conv_last", extra="zero")
    x = PixelShuffle(scale, name="pixel_shuffle")(x)
    # the source's F.interpolate(nearest) skip, as the input tiled r*r times + a pixel shuffle: the
    # same numbers, and a form Qualcomm's HTP takes at int16 too (its int16 RESIZE_NEAREST_NEIGHBOR
    # is rejected: "Unsupported input/output datatypes", bench/npu.py)
    base = PixelShuffle(scale, name="base_nearest")(_anchor_tile(x_in, scale, "base_tile"))
    x = L.Add(name="base_add")([x, base])
    return keras.Model(x_in, x, name=f"{name}_x{scale}")


def realesrgan_general_x4v3(scale: int, hw: HW = (None, None)) -> keras.Model:
    """Real-ESRGAN-General-x4v3 = SRVGGNetCompact(num_feat=64, num_conv=32, PReLU)."""
    return srvgg_compact(scale, hw, 64, 32)


def xlsr_aimet(scale: int, hw: HW = (None, None)) -> keras.Model:
    """XLSR as AI Hub profiles it (`XLSRRelease`, aimet-model-zoo common/super_resolution/
    models.py: a 3x3 3->16 residual conv, 3x3 3->32 + ReLU, 1x1, 3 GBlocks of a 4-group 3x3 conv
    + ReLU + 1x1, concat, 1x1 48->32 + ReLU, 3x3 to 3r^2, shuffle, clipped ReLU; 28.0K parameters
    at x4). Not a zoo model (the zoo's `xlsr` follows the paper): a latency reference only."""
    x_in = _input(hw)
    res = _conv(x_in, 16, 3, "residual")
    x = _conv(x_in, 32, 3, "conv1", activation="relu")
    x = _conv(x, 32, 1, "conv2")
    for b in range(3):
        x = _conv(x, 32, 3, f"gblock{b + 1}_gconv", activation="relu", groups=4)
        x = _conv(x, 32, 1, f"gblock{b + 1}_pw")
    x = L.Concatenate(name="concat_residual")([x, res])
    x = _conv(x, 32, 1, "tail1", activation="relu")
    x = _conv(x, 3 * scale * scale, 3, "tail2")
    x = PixelShuffle(scale, name="pixel_shuffle")(x)
    x = L.ReLU(max_value=1.0, name="clipped_relu")(x)
    return keras.Model(x_in, x, name=f"xlsr_aimet_x{scale}")


#: The graphs AI Hub measured, by AI Hub model id (perf.yaml folder), for latency checks.
AIHUB_GRAPHS = {
    "xlsr": xlsr_aimet, "quicksrnetsmall": quicksrnet_small, "quicksrnetmedium": quicksrnet_medium,
    "quicksrnetlarge": quicksrnet_large, "sesr_m5": sesr_m5_expanded,
    "real_esrgan_general_x4v3": realesrgan_general_x4v3,
}
