"""The architectures behind Qualcomm AI Hub's published phone latencies, built offline (tf_keras).

Why: a latency model fitted on a few tiny SR nets does not extrapolate (issue 27). AI Hub
publishes latencies of many standard CNNs whose architectures we can build without weights, at
their published input sizes; their per-op work (bench/fit_published_profiles.py) is what the
phone profiles are fitted on. The SR networks are kept apart (role "sr_test"): they are the test,
never in the fit.

Every graph says where its architecture comes from; `params_published` (AI Hub's manifest) is
checked against ours by the fit script, so a wrong architecture shows up as a parameter gap.
Classifier heads are kept (AI Hub measures them); float32 I/O as AI Hub's TFLite models.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from models._keras import keras

L = keras.layers
APPS = keras.applications


@dataclasses.dataclass(frozen=True)
class Graph:
    ai_hub_id: str                        # qai_hub_models/models/<id>/
    role: str                             # "fit" or "sr_test"
    input_hw: tuple[int, int]             # AI Hub's manifest "Input resolution" (H x W)
    build: Callable[[tuple[int, int]], keras.Model]
    source: str


def _app(fn, **kw):
    return lambda hw: fn(weights=None, input_shape=(hw[0], hw[1], 3), **kw)


def _conv_bn(x, filters: int, k: int, stride: int = 1, groups: int = 1, relu: bool = True):
    x = L.Conv2D(filters, k, stride, padding="same", groups=groups, use_bias=False)(x)
    x = L.BatchNormalization()(x)
    return L.ReLU()(x) if relu else x


def torchvision_resnet(blocks: tuple[int, ...], bottleneck: bool, width: int = 64, groups: int = 1):
    """torchvision.models.resnet: BasicBlock (resnet18/34) or Bottleneck with base width `width`
    and `groups` (wide_resnet50_2: width 128; resnext50_32x4d: groups 32, width 4 per group)."""
    def build(hw):
        x_in = keras.Input((hw[0], hw[1], 3), batch_size=1)
        x = _conv_bn(x_in, 64, 7, 2)
        x = L.MaxPooling2D(3, 2, padding="same")(x)
        cin = 64
        for stage, n in enumerate(blocks):
            planes = 64 * 2 ** stage
            for b in range(n):
                stride = 2 if stage > 0 and b == 0 else 1
                if bottleneck:
                    mid = int(planes * (width / 64.0)) * groups
                    out = planes * 4
                    y = _conv_bn(x, mid, 1)
                    y = _conv_bn(y, mid, 3, stride, groups)
                    y = _conv_bn(y, out, 1, relu=False)
                else:
                    out = planes
                    y = _conv_bn(x, out, 3, stride)
                    y = _conv_bn(y, out, 3, relu=False)
                sc = _conv_bn(x, out, 1, stride, relu=False) if (stride != 1 or cin != out) else x
                x = L.ReLU()(L.Add()([y, sc]))
                cin = out
        x = L.GlobalAveragePooling2D()(x)
        return keras.Model(x_in, L.Dense(1000)(x))
    return build


def squeezenet1_1(hw):
    """torchvision squeezenet1_1 (Iandola et al. 2016, v1.1): 1.24M parameters."""
    def fire(x, s, e):
        x = L.ReLU()(L.Conv2D(s, 1)(x))
        return L.Concatenate()([L.ReLU()(L.Conv2D(e, 1)(x)), L.ReLU()(L.Conv2D(e, 3, padding="same")(x))])
    x_in = keras.Input((hw[0], hw[1], 3), batch_size=1)
    x = L.ReLU()(L.Conv2D(64, 3, 2)(x_in))
    x = L.MaxPooling2D(3, 2)(x)
    x = fire(fire(x, 16, 64), 16, 64)
    x = L.MaxPooling2D(3, 2)(x)
    x = fire(fire(x, 32, 128), 32, 128)
    x = L.MaxPooling2D(3, 2)(x)
    for s, e in ((48, 192), (48, 192), (64, 256), (64, 256)):
        x = fire(x, s, e)
    x = L.ReLU()(L.Conv2D(1000, 1)(x))
    return keras.Model(x_in, L.GlobalAveragePooling2D()(x))


def dncnn(hw, depth: int = 17, feat: int = 64, channels: int = 1):
    """DnCNN (Zhang et al., TIP 2017; AI Hub's dncnn_25, grayscale): conv+ReLU, 15 x (conv+BN+ReLU),
    conv, minus the input (residual learning). 555K parameters."""
    x_in = keras.Input((hw[0], hw[1], channels), batch_size=1)
    x = L.ReLU()(L.Conv2D(feat, 3, padding="same")(x_in))
    for _ in range(depth - 2):
        x = _conv_bn(x, feat, 3)
    return keras.Model(x_in, L.Subtract()([x_in, L.Conv2D(channels, 3, padding="same")(x)]))


def unet(hw, classes: int = 2):
    """milesial/Pytorch-UNet `UNet(3, 2, bilinear=False)` (AI Hub unet_segmentation, 31.0M
    parameters): double 3x3 conv+BN+ReLU blocks, 4 max-pool downs to 1024 channels, 4 ups with a
    2x2 stride-2 transpose conv + concat, 1x1 conv to the classes."""
    def double(x, c):
        return _conv_bn(_conv_bn(x, c, 3), c, 3)
    x_in = keras.Input((hw[0], hw[1], 3), batch_size=1)
    skips, x = [], double(x_in, 64)
    for c in (128, 256, 512, 1024):
        skips.append(x)
        x = double(L.MaxPooling2D(2)(x), c)
    for c, s in zip((512, 256, 128, 64), reversed(skips)):
        x = L.Conv2DTranspose(c, 2, 2)(x)
        x = double(L.Concatenate()([s, x]), c)
    return keras.Model(x_in, L.Conv2D(classes, 1)(x))


def _sr(name: str):
    def build(hw):
        from models import zoo_big
        from models.zoo_aihub import AIHUB_GRAPHS
        rrdb = lambda scale, hw: zoo_big.rrdbnet(scale, hw, nearest="resize")  # noqa: E731 - AI Hub's graph
        big = {"srgan": zoo_big.srgan, "esrgan": rrdb, "real_esrgan_x4plus": rrdb}
        return (big.get(name) or AIHUB_GRAPHS[name])(4, hw)
    return build


TV = "torchvision.models (BSD-3), the architecture AI Hub wraps (qai_hub_models/models/<id>/model.py)"
KA = "tf_keras.applications (same architecture as AI Hub's torchvision/timm source; parameter count checked)"
GRAPHS: dict[str, Graph] = {g.ai_hub_id: g for g in [
    Graph("resnet18", "fit", (224, 224), torchvision_resnet((2, 2, 2, 2), False), TV),
    Graph("resnet50", "fit", (224, 224), torchvision_resnet((3, 4, 6, 3), True), TV),
    Graph("resnet101", "fit", (224, 224), torchvision_resnet((3, 4, 23, 3), True), TV),
    Graph("wideresnet50", "fit", (224, 224), torchvision_resnet((3, 4, 6, 3), True, width=128), TV),
    Graph("resnext50", "fit", (224, 224), torchvision_resnet((3, 4, 6, 3), True, width=4, groups=32), TV),
    Graph("resnext101", "fit", (224, 224), torchvision_resnet((3, 4, 23, 3), True, width=8, groups=32), TV),
    Graph("squeezenet1_1", "fit", (224, 224), squeezenet1_1, TV),
    Graph("mobilenet_v2", "fit", (224, 224), _app(APPS.MobileNetV2), KA),
    Graph("mobilenet_v3_large", "fit", (224, 224), _app(APPS.MobileNetV3Large), KA),
    Graph("mobilenet_v3_small", "fit", (224, 224), _app(APPS.MobileNetV3Small), KA),
    Graph("inception_v3", "fit", (224, 224), _app(APPS.InceptionV3), KA),
    Graph("densenet121", "fit", (224, 224), _app(APPS.DenseNet121), KA),
    Graph("efficientnet_b0", "fit", (224, 224), _app(APPS.EfficientNetB0), KA),
    Graph("efficientnet_b4", "fit", (380, 380), _app(APPS.EfficientNetB4), KA),
    Graph("convnext_tiny", "fit", (224, 224), _app(APPS.ConvNeXtTiny), KA),
    Graph("regnet_y_800mf", "fit", (224, 224), _app(APPS.RegNetY008), KA),
    Graph("dncnn", "fit", (256, 256), dncnn, "DnCNN-S (Zhang et al., TIP 2017), AI Hub's dncnn"),
    Graph("unet_segmentation", "fit", (640, 1280), unet, "milesial/Pytorch-UNet, AI Hub's unet_segmentation"),
    # the test: every SR network AI Hub publishes (x4, 128x128), never in the fit
    *[Graph(n, "sr_test", (128, 128), _sr(n), "models.zoo_aihub.AIHUB_GRAPHS / models.zoo_big")
      for n in ("xlsr", "quicksrnetsmall", "quicksrnetmedium", "quicksrnetlarge", "sesr_m5",
                "real_esrgan_general_x4v3", "srgan", "esrgan", "real_esrgan_x4plus")],
]}
