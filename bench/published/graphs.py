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

from bench.published.graphs_classifiers import googlenet, mnasnet0_5, shufflenet_v2_x0_5
from bench.published.graphs_face import face_attrib_net
from bench.published.graphs_image2image import (aotgan, ddrnet23_slim, lama_dilated, mediapipe_selfie, midas_small, nafnet,
                                               normalize as _normalize)
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


def _conv_bn(x, filters: int, k: int, stride: int = 1, groups: int = 1, relu: bool = True, dilation: int = 1):
    x = L.Conv2D(filters, k, stride, padding="same", groups=groups, use_bias=False, dilation_rate=dilation)(x)
    x = L.BatchNormalization()(x)
    return L.ReLU()(x) if relu else x


def _resnet_features(x, blocks: tuple[int, ...], bottleneck: bool, width: int = 64, groups: int = 1,
                     dilate: tuple[bool, ...] = (False, False, False)):
    """torchvision.models.resnet's body; `dilate` = replace_stride_with_dilation of stages 2-4
    (segmentation backbones: output stride 8 with (False, True, True))."""
    x = _conv_bn(x, 64, 7, 2)
    x = L.MaxPooling2D(3, 2, padding="same")(x)
    cin, dilation = 64, 1
    for stage, n in enumerate(blocks):
        planes = 64 * 2 ** stage
        stride, first_dilation = (2 if stage > 0 else 1), dilation
        if stage > 0 and dilate[stage - 1]:
            dilation, stride = dilation * stride, 1
        for b in range(n):
            s, d = (stride, first_dilation) if b == 0 else (1, dilation)
            if bottleneck:
                mid = int(planes * (width / 64.0)) * groups
                out = planes * 4
                y = _conv_bn(x, mid, 1)
                y = _conv_bn(y, mid, 3, s, groups, dilation=d)
                y = _conv_bn(y, out, 1, relu=False)
            else:
                out = planes
                y = _conv_bn(x, out, 3, s, dilation=d)
                y = _conv_bn(y, out, 3, relu=False, dilation=dilation)
            sc = _conv_bn(x, out, 1, s, relu=False) if (s != 1 or cin != out) else x
            x = L.ReLU()(L.Add()([y, sc]))
            cin = out
    return x


def torchvision_resnet(blocks: tuple[int, ...], bottleneck: bool, width: int = 64, groups: int = 1):
    """torchvision.models.resnet: BasicBlock (resnet18/34) or Bottleneck with base width `width`
    and `groups` (wide_resnet50_2: width 128; resnext50_32x4d: groups 32, width 4 per group)."""
    def build(hw):
        x_in = keras.Input((hw[0], hw[1], 3), batch_size=1)
        x = L.GlobalAveragePooling2D()(_resnet_features(x_in, blocks, bottleneck, width, groups))
        return keras.Model(x_in, L.Dense(1000)(x))
    return build


def _seg_out(x, hw, align_corners: bool = False):
    """Bilinear upsampling of the class logits to the input size, then argmax over the classes as
    uint8 (qai_hub_models templates/deeplab/model.py forward: model_out.argmax(1).byte())."""
    from models._keras import tf
    x = L.Lambda(lambda t: tf.compat.v1.image.resize_bilinear(t, hw, align_corners=align_corners))(x)
    return L.Lambda(lambda t: tf.cast(tf.argmax(t, axis=-1), tf.uint8))(x)


def fcn_resnet50(hw, classes: int = 21):
    """torchvision.models.segmentation.fcn_resnet50 (AI Hub fcn_resnet50, aux classifier dropped,
    33.0M parameters): ResNet-50 with strides 3-4 dilated (output stride 8), FCNHead 3x3 2048->512
    + BN + ReLU, 1x1 to the classes; AI Hub's DeepLabV3Model wrapper normalizes the input,
    upsamples bilinearly to the input size and takes the argmax."""
    x_in = keras.Input((hw[0], hw[1], 3), batch_size=1)
    x = _resnet_features(_normalize(x_in), (3, 4, 6, 3), True, dilate=(False, True, True))
    x = L.Conv2D(classes, 1)(_conv_bn(x, 512, 3))
    return keras.Model(x_in, _seg_out(x, hw))


def deeplabv3_plus_mobilenet(hw, classes: int = 21):
    """jfzhang95/pytorch-deeplab-xception DeepLab(backbone='mobilenet', output_stride=16) (AI Hub
    deeplabv3_plus_mobilenet, 5.8M parameters): MobileNetV2 features (no last 1x1, explicit
    fixed padding before each depthwise conv), ASPP on 320 channels (1x1, 3x3 at rates 6/12/18,
    image pooling; 256 each, 1x1 to 256), decoder (low-level 24->48, concat at stride 4, two 3x3
    convs of 256, 1x1 to the classes), bilinear (align_corners) to the input, argmax."""
    from models._keras import tf
    def relu6_bn(x, c, k, s=1, dw=False, dilation=1, act=True):
        if dw:
            p = dilation * (k - 1)
            x = L.ZeroPadding2D(((p // 2, p - p // 2), (p // 2, p - p // 2)))(x)
            x = L.DepthwiseConv2D(k, s, dilation_rate=dilation, use_bias=False)(x)
        else:
            x = L.Conv2D(c, k, s, padding="same", use_bias=False)(x)
        x = L.BatchNormalization()(x)
        return L.ReLU(6.0)(x) if act else x

    x_in = keras.Input((hw[0], hw[1], 3), batch_size=1)
    x = relu6_bn(_normalize(x_in), 32, 3, 2)
    cin, stride_now, rate, low = 32, 2, 1, None
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)):
        if stride_now == 16:
            stride, dil, rate = 1, rate, rate * s
        else:
            stride, dil, stride_now = s, 1, stride_now * s
        for i in range(n):
            y = relu6_bn(x, cin * t, 1) if t != 1 else x
            y = relu6_bn(y, cin * t, 3, stride if i == 0 else 1, dw=True, dilation=dil)
            y = relu6_bn(y, c, 1, act=False)
            x = L.Add()([x, y]) if (i > 0 or stride == 1) and cin == c else y
            cin = c
        if c == 24:
            low = x
    feat = (int(x.shape[1]), int(x.shape[2]))
    branches = [_conv_bn(x, 256, 1)] + [_conv_bn(x, 256, 3, dilation=r) for r in (6, 12, 18)]
    pool = _conv_bn(L.GlobalAveragePooling2D(keepdims=True)(x), 256, 1)
    branches.append(L.Lambda(lambda t: tf.compat.v1.image.resize_bilinear(t, feat, align_corners=True))(pool))
    x = _conv_bn(L.Concatenate()(branches), 256, 1)
    low_hw = (int(low.shape[1]), int(low.shape[2]))
    x = L.Lambda(lambda t: tf.compat.v1.image.resize_bilinear(t, low_hw, align_corners=True))(x)
    x = L.Concatenate()([x, _conv_bn(low, 48, 1)])
    x = L.Conv2D(classes, 1)(_conv_bn(_conv_bn(x, 256, 3), 256, 3))
    return keras.Model(x_in, _seg_out(x, hw, align_corners=True))


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


def _block3x3(x, k: int, expand: int, out: int, se: bool, stride: int):
    """Block3x3 of Qualcomm's face_det_lite / foot_track_net layers.py: 1x1 expand + BN + ReLU, a 3x3
    (k=3) or two 3x3 (k=5, the second strided), optional SE (pool, 1x1 /4 + BN + ReLU, 1x1 + BN,
    sigmoid, multiply), residual (1x1 + BN where channels change) only at stride 1."""
    y = _conv_bn(x, expand, 1)
    y = _conv_bn(y, out, 3, stride) if k == 3 else _conv_bn(_conv_bn(y, out, 3), out, 3, stride)
    if se:
        s = L.GlobalAveragePooling2D(keepdims=True)(y)
        s = L.Activation("sigmoid")(L.BatchNormalization()(L.Conv2D(out, 1, use_bias=False)(_conv_bn(s, out // 4, 1))))
        y = L.Multiply()([y, s])
    if stride != 1:
        return y
    return L.Add()([y, x if int(x.shape[-1]) == out else _conv_bn(x, out, 1, relu=False)])


def _qcom_detector(x, blocks, keep, wide: int, heads, has_ext: bool):
    """Qualcomm's Mbv3SmallFast backbone + FPN of 1x1 laterals and nearest-x2 + 3x3 "UCBA" ups +
    DetectModule (3x3 to wide/2 || context: 3x3 to wide/4, then 3x3 and two 3x3) + 1x1 heads
    (with a 3x3 CBA first when has_ext)."""
    x = _conv_bn(x, 16, 3, 2)
    laterals = []
    for i, b in enumerate(blocks):
        x = _block3x3(x, *b)
        if i in keep:
            laterals.append(x)
    y = _conv_bn(x, wide, 1)
    for lat in reversed(laterals):
        y = L.Add()([_conv_bn(L.UpSampling2D(2)(y), wide, 3), _conv_bn(lat, wide, 1)])
    c = _conv_bn(y, wide // 4, 3)
    ctx = L.Concatenate()([_conv_bn(c, wide // 4, 3), _conv_bn(_conv_bn(c, wide // 4, 3), wide // 4, 3)])
    y = L.Concatenate()([_conv_bn(y, wide // 2, 3), ctx])
    return [L.Conv2D(n, 1)(_conv_bn(y, wide, 3) if has_ext else y) for n in heads]


def face_det_lite(hw):
    """Qualcomm FaceDetLite (AI Hub face_det_lite, model.py + layers.py in the qai-hub-models wheel;
    defaults: gray input, has_se, wide 32, UCBA, no head ext): input normalization, backbone blocks
    and laterals at strides 8/16/32, heads of 1, 4 and 10 channels at stride 8. 878K parameters."""
    x_in = keras.Input((hw[0], hw[1], 1), batch_size=1)
    x = L.Lambda(lambda t: (t - 0.442) / 0.280)(x_in)
    blocks = ((3, 16, 16, 0, 2), (3, 64, 32, 0, 2), (3, 96, 32, 0, 1), (5, 96, 32, 1, 2), (5, 224, 32, 1, 1),
              (5, 224, 32, 1, 1), (5, 128, 64, 1, 1), (5, 160, 64, 1, 1), (5, 256, 96, 1, 2))
    return keras.Model(x_in, _qcom_detector(x, blocks, (2, 7), 32, (1, 4, 10), False))


def foot_track_net(hw):
    """Qualcomm FootTrackNet (AI Hub foot_track_net, model.py + layers.py in the wheel; defaults: RGB,
    wide 64, has_ext, UCBA, 17 landmarks): x*255, 1x1 3->3 + BN, 15 backbone blocks, laterals at
    strides 4/8/16/32, heads 3x(1 + 4), 34, 17 at stride 4 (sigmoids on the heatmaps and
    visibility, concatenated as AI Hub's forward). 2.53M parameters."""
    x_in = keras.Input((hw[0], hw[1], 3), batch_size=1)
    x = L.BatchNormalization()(L.Conv2D(3, 1, use_bias=False)(L.Lambda(lambda t: t * 255.0)(x_in)))
    blocks = ((3, 16, 16, 0, 1), (3, 64, 16, 0, 2), (3, 64, 16, 0, 1), (5, 96, 32, 1, 2), (5, 96, 32, 1, 1),
              (5, 128, 32, 1, 1), (3, 128, 64, 0, 2), (3, 128, 64, 0, 1), (3, 160, 64, 0, 1), (3, 160, 64, 0, 1),
              (3, 256, 64, 1, 1), (3, 320, 64, 1, 1), (5, 320, 64, 1, 1), (5, 320, 96, 1, 2), (5, 480, 96, 1, 1))
    h1, b1, h2, b2, h3, b3, lmk, vis = _qcom_detector(x, blocks, (2, 5, 12), 64, (1, 4, 1, 4, 1, 4, 34, 17), True)
    sig = lambda t: L.Activation("sigmoid")(t)  # noqa: E731
    return keras.Model(x_in, [L.Concatenate()([sig(h1), sig(h2), sig(h3)]), L.Concatenate()([b1, b2, b3]), lmk, sig(vis)])


def posenet_mobilenet(hw):
    """rwightman/posenet-pytorch MobileNetV1 (model_id 101, output stride 16; AI Hub posenet_mobilenet,
    3.31M parameters): 3x3 s2 conv + ReLU6, 13 separable blocks (3x3 depthwise + ReLU6, 1x1 +
    ReLU6; after stride 16 the strides become dilations), 1x1 heads: heatmap (17, sigmoid), offsets
    (34), forward and backward displacements (32 each)."""
    x_in = keras.Input((hw[0], hw[1], 3), batch_size=1)
    x = L.ReLU(6.0)(L.Conv2D(32, 3, 2, padding="same")(x_in))
    stride_now, rate = 2, 1
    for c, s in ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5, (1024, 2), (1024, 1)):
        if stride_now == 16:
            st, dil, rate = 1, rate, rate * s
        else:
            st, dil, stride_now = s, 1, stride_now * s
        x = L.ReLU(6.0)(L.DepthwiseConv2D(3, st, padding="same", dilation_rate=dil)(x))
        x = L.ReLU(6.0)(L.Conv2D(c, 1)(x))
    heads = [L.Conv2D(n, 1)(x) for n in (17, 34, 32, 32)]
    return keras.Model(x_in, [L.Activation("sigmoid")(heads[0]), *heads[1:]])


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
    # small graphs, branchy small convs, more QNN w8a16 rows (bench/published/graphs_classifiers.py)
    Graph("regnet", "fit", (224, 224), _app(APPS.RegNetX032), KA + "; torchvision regnet_x_3_2gf"),
    Graph("efficientnet_v2_s", "fit", (384, 384), _app(APPS.EfficientNetV2S), KA + "; torchvision efficientnet_v2_s"),
    Graph("shufflenet_v2", "fit", (224, 224), shufflenet_v2_x0_5, TV + "; shufflenet_v2_x0_5"),
    Graph("googlenet", "fit", (224, 224), googlenet, TV + "; googlenet"),
    Graph("mnasnet05", "fit", (224, 224), mnasnet0_5, TV + "; mnasnet0_5"),
    Graph("dncnn", "fit", (256, 256), dncnn, "DnCNN-S (Zhang et al., TIP 2017), AI Hub's dncnn"),
    Graph("unet_segmentation", "fit", (640, 1280), unet, "milesial/Pytorch-UNet, AI Hub's unet_segmentation"),
    # input 520x520: AI Hub's export uses templates/deeplab/model.py get_input_spec (height=width=520);
    # its manifest's "224x224" is not what the profile job ran
    Graph("fcn_resnet50", "fit", (520, 520), fcn_resnet50, "torchvision.models.segmentation.fcn_resnet50, AI Hub's fcn_resnet50"),
    Graph("deeplabv3_plus_mobilenet", "fit", (513, 513), deeplabv3_plus_mobilenet,
          "jfzhang95/pytorch-deeplab-xception DeepLab(mobilenet), AI Hub's deeplabv3_plus_mobilenet"),
    Graph("face_det_lite", "fit", (480, 640), face_det_lite, "qai_hub_models/models/face_det_lite/{model,layers}.py"),
    Graph("foot_track_net", "fit", (480, 640), foot_track_net, "qai_hub_models/models/foot_track_net/{model,layers}.py"),
    Graph("nafnet_deblur", "fit", (360, 640), nafnet, "megvii-research/NAFNet (REDS width 64), AI Hub's nafnet_deblur"),
    Graph("posenet_mobilenet", "fit", (513, 257), posenet_mobilenet,
          "rwightman/posenet-pytorch mobilenet_v1 (model_id 101), AI Hub's posenet_mobilenet"),
    # image-to-image nets that are not SR: a tiny full-resolution segmenter, a 512x512 inpainter
    Graph("mediapipe_selfie", "fit", (256, 256), mediapipe_selfie,
          "qai_hub_models/models/mediapipe_selfie/model.py (square), AI Hub's mediapipe_selfie"),
    Graph("aotgan", "fit", (512, 512), aotgan, "researchmm/AOT-GAN-for-Inpainting src/model/aotgan.py, AI Hub's aotgan"),
    # image-to-image nets with SR-like parts: narrow convs over many pixels, a full-resolution tail
    # (transpose convs + a 7x7 conv to RGB at 512x512; a 3x3 32-channel conv + 1-channel head at
    # 256x256), 32-64-channel basic blocks at 256x512 / 128x256
    Graph("lama_dilated", "fit", (512, 512), lama_dilated,
          "advimman/lama pix2pixhd_multidilated_catin_4dil_9b, AI Hub's lama_dilated"),
    Graph("midas", "fit", (256, 256), midas_small, "isl-org/MiDaS@bdc4ed64 MidasNet_small, AI Hub's midas"),
    Graph("ddrnet23_slim", "fit", (1024, 2048), ddrnet23_slim,
          "chenjun2hao/DDRNet.pytorch@bc0e193e lib/models/ddrnet_23_slim.py, AI Hub's ddrnet23_slim"),
    # a non-SR net with PReLU activations (38 single-alpha PReLUs), 128x128 (bench/published/graphs_face.py)
    Graph("face_attrib_net", "fit", (128, 128), face_attrib_net, "qai_hub_models/models/face_attrib_net/{model,layers}.py"),
    # the test: every SR network AI Hub publishes (x4, 128x128), never in the fit
    *[Graph(n, "sr_test", (128, 128), _sr(n), "models.zoo_aihub.AIHUB_GRAPHS / models.zoo_big")
      for n in ("xlsr", "quicksrnetsmall", "quicksrnetmedium", "quicksrnetlarge", "sesr_m5",
                "real_esrgan_general_x4v3", "srgan", "esrgan", "real_esrgan_x4plus")],
]}
