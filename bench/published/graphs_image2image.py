"""Image-to-image fit nets of the published-latency fit (restoration, segmentation, inpainting):
the shapes closest to SR among the networks that are not SR (bench/published/graphs.py lists
them in GRAPHS with their sources). Built offline in tf_keras, parameter counts = AI Hub's.
"""
from __future__ import annotations

from models._keras import keras

L = keras.layers


def nafnet(hw, width: int = 64, enc: tuple[int, ...] = (1, 1, 1, 28), middle: int = 1, dec: tuple[int, ...] = (1, 1, 1, 1)):
    """NAFNet (Chen et al., ECCV 2022; megvii-research/NAFNet basicsr/models/archs/NAFNet_arch.py, REDS
    width-64 config as AI Hub's nafnet_deblur, 67.89M parameters; AI Hub's patches: LayerNorm2d as a
    channel layer norm, global average pooling kept): zero-pad to a multiple of 16, 3x3 intro, encoder
    stages of NAFBlocks + 2x2 stride-2 convs, middle blocks, decoder stages of 1x1 conv + pixel
    shuffle + skip add + NAFBlocks, 3x3 ending, + input, crop. NAFBlock: LN, 1x1 c->2c, 3x3
    depthwise, SimpleGate, channel attention, 1x1, x beta + skip; LN, 1x1 c->2c, SimpleGate, 1x1,
    x gamma + skip. Deblurring: a low-level vision net that is not SR."""
    from models._keras import tf

    def gate(t):
        a, b = L.Lambda(lambda u: tf.split(u, 2, axis=-1))(t)
        return L.Multiply()([a, b])

    def scale(t, c):   # x beta / x gamma: a per-channel constant (not 1, so the converter keeps a MUL)
        return L.Lambda(lambda u: u * tf.constant([0.5] * c))(t)

    def block(x, c):
        y = L.Conv2D(2 * c, 1)(L.LayerNormalization(epsilon=1e-6)(x))
        y = gate(L.DepthwiseConv2D(3, padding="same")(y))
        y = L.Multiply()([y, L.Conv2D(c, 1)(L.GlobalAveragePooling2D(keepdims=True)(y))])
        x = L.Add()([x, scale(L.Conv2D(c, 1)(y), c)])
        y = L.Conv2D(c, 1)(gate(L.Conv2D(2 * c, 1)(L.LayerNormalization(epsilon=1e-6)(x))))
        return L.Add()([x, scale(y, c)])

    pad = [(-d) % 16 for d in hw]
    x_in = keras.Input((hw[0], hw[1], 3), batch_size=1)
    inp = L.ZeroPadding2D(((0, pad[0]), (0, pad[1])))(x_in) if any(pad) else x_in
    x, c, skips = L.Conv2D(width, 3, padding="same")(inp), width, []
    for n in enc:
        for _ in range(n):
            x = block(x, c)
        skips.append(x)
        x, c = L.Conv2D(2 * c, 2, 2)(x), 2 * c
    for _ in range(middle):
        x = block(x, c)
    for n, skip in zip(dec, reversed(skips)):
        x = L.Lambda(lambda u: tf.nn.depth_to_space(u, 2))(L.Conv2D(2 * c, 1, use_bias=False)(x))
        c //= 2
        x = L.Add()([x, skip])
        for _ in range(n):
            x = block(x, c)
    x = L.Add()([L.Conv2D(3, 3, padding="same")(x), inp])
    return keras.Model(x_in, L.Cropping2D(((0, pad[0]), (0, pad[1])))(x) if any(pad) else x)


def mediapipe_selfie(hw):
    """MediaPipe Selfie Segmentation, square model (AI Hub mediapipe_selfie, 106K parameters; the
    graph is qai_hub_models/models/mediapipe_selfie/model.py MediapipeSelfie("square") in the wheel,
    a hand port of Google's selfie_segmentation.tflite): 3x3 s2 conv + hardswish, MobileNetV3-like
    inverted residual blocks with squeeze-excite (1x1 expand, depthwise 3x3/5x5, global pool, 1x1
    down + ReLU, 1x1 up + sigmoid, multiply, 1x1 project) to stride 16, then three bilinear x2
    decoder stages with pooled sigmoid attention on the skips and depthwise residuals, a 2x2
    stride-2 transpose conv to one channel and a sigmoid: a full-resolution image-to-image net of
    16-128 channels. Not SR (segmentation). TFLite-SAME padding = keras "same"; the full-size
    AvgPool2d's (kernel = feature size) = global average pools."""
    from models._keras import tf

    def hs(t):
        return L.Lambda(lambda u: u * tf.nn.relu6(u + 3.0) / 6.0)(t)

    def conv(t, c, k=1, s=1):
        return L.Conv2D(c, k, s, padding="same")(t)

    def dw(t, k, s=1):
        return L.DepthwiseConv2D(k, s, padding="same")(t)

    def gap(t):
        return L.GlobalAveragePooling2D(keepdims=True)(t)

    def sigmoid(t):
        return L.Activation("sigmoid")(t)

    def se(t, mid):   # pool, 1x1 down + ReLU, 1x1 up + sigmoid, multiply
        return L.Multiply()([sigmoid(conv(L.ReLU()(conv(gap(t), mid)), int(t.shape[-1]))), t])

    up = lambda t: L.UpSampling2D(2, interpolation="bilinear")(t)  # noqa: E731
    x_in = keras.Input((hw[0], hw[1], 3), batch_size=1)
    x = hs(conv(x_in, 16, 3, 2))
    x1 = x
    x = L.ReLU()(dw(L.ReLU()(conv(x, 16)), 3, 2))
    x = conv(se(x, 8), 16)
    x3 = x
    x = conv(L.ReLU()(dw(L.ReLU()(conv(x, 72)), 3, 2)), 24)
    x2 = L.Add()([conv(L.ReLU()(dw(L.ReLU()(conv(x, 88)), 3)), 24), x])
    x = hs(dw(hs(conv(x2, 96)), 5, 2))
    x = conv(se(x, 24), 32)
    for exp, mid in ((128, 32), (128, 32), (96, 24), (96, 24)):
        y = hs(dw(hs(conv(x, exp)), 5))
        x = L.Add()([conv(se(y, mid), 32), x])
    y = L.Multiply()([L.ReLU()(conv(x, 128)), sigmoid(conv(gap(x), 128))])
    x6 = conv(up(y), 24)
    att = sigmoid(conv(L.ReLU()(conv(gap(L.Add()([x2, x6])), 24)), 24))
    x = L.Add()([x6, L.Multiply()([x2, att])])
    x7 = L.ReLU()(conv(x, 24))
    x = L.Add()([x7, L.ReLU()(dw(x7, 3))])
    x8 = conv(up(x), 16)
    att = sigmoid(conv(L.ReLU()(conv(gap(L.Add()([x3, x8])), 16)), 16))
    x9 = L.ReLU()(conv(L.Add()([x8, L.Multiply()([x3, att])]), 16))
    x = L.Add()([x9, L.ReLU()(dw(x9, 3))])
    x10 = conv(up(x), 16)
    att = sigmoid(conv(L.ReLU()(conv(gap(L.Add()([x10, x1])), 16)), 16))
    x11 = L.ReLU()(conv(L.Add()([x10, L.Multiply()([x1, att])]), 16))
    x = L.Add()([x11, L.ReLU()(dw(x11, 3))])
    return keras.Model(x_in, sigmoid(L.Conv2DTranspose(1, 2, 2)(x)))


def aotgan(hw, rates: tuple[int, ...] = (1, 2, 4, 8), blocks: int = 8):
    """AOT-GAN InpaintGenerator (Zeng et al. 2021; researchmm/AOT-GAN-for-Inpainting src/model/aotgan.py,
    rates (1, 2, 4, 8), 8 blocks, as AI Hub's aotgan, 15.2M parameters; AI Hub's std patch and its
    RepaintModel forward: masked, normalized input, output composited with the image): image (3) +
    mask (1) concatenated, reflect-pad 3 + 7x7 conv, two 4x4 stride-2 convs (pad 1) to 256 channels
    at 1/4 resolution, 8 AOT blocks (4 branches of reflect-pad + dilated 3x3 256->64 + ReLU,
    concatenated, reflect-pad + 3x3 fuse; gate = reflect-pad + 3x3, spatial mean/std normalized,
    sigmoid; x (1 - g) + fused g), two bilinear x2 (align_corners) + 3x3 convs, 3x3 to RGB, tanh.
    Inpainting: image-to-image at 512x512, not SR."""
    from models._keras import tf

    def rpad(t, p):
        return L.Lambda(lambda u: tf.pad(u, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT"))(t)

    def layer_norm(t):   # AI Hub's patch: std from the mean squared deviation / (n - 1)
        n = int(t.shape[1]) * int(t.shape[2])
        def f(u):
            d = u - tf.reduce_mean(u, axis=(1, 2), keepdims=True)
            std = tf.sqrt(tf.reduce_sum(d * d / (n - 1), axis=(1, 2), keepdims=True)) + 1e-9
            return 5.0 * (2.0 * d / std - 1.0)
        return L.Lambda(f)(t)

    def up_conv(t, c):
        size = (2 * int(t.shape[1]), 2 * int(t.shape[2]))
        t = L.Lambda(lambda u: tf.compat.v1.image.resize_bilinear(u, size, align_corners=True))(t)
        return L.Conv2D(c, 3, padding="same")(t)

    image = keras.Input((hw[0], hw[1], 3), batch_size=1)
    mask = keras.Input((hw[0], hw[1], 1), batch_size=1)
    masked = L.Lambda(lambda t: (t[0] * 2 - 1) * (1 - t[1]) + t[1])([image, mask])
    x = L.ReLU()(L.Conv2D(64, 7)(rpad(L.Concatenate()([masked, mask]), 3)))
    for c in (128, 256):
        x = L.ReLU()(L.Conv2D(c, 4, 2)(L.ZeroPadding2D(1)(x)))
    for _ in range(blocks):
        out = L.Concatenate()([L.ReLU()(L.Conv2D(64, 3, dilation_rate=r)(rpad(x, r))) for r in rates])
        out = L.Conv2D(256, 3)(rpad(out, 1))
        g = L.Activation("sigmoid")(layer_norm(L.Conv2D(256, 3)(rpad(x, 1))))
        x = L.Lambda(lambda t: t[0] * (1 - t[2]) + t[1] * t[2])([x, out, g])
    x = L.ReLU()(up_conv(L.ReLU()(up_conv(x, 128)), 64))
    x = L.Activation("tanh")(L.Conv2D(3, 3, padding="same")(x))
    out = L.Lambda(lambda t: (tf.clip_by_value(t[0], -1, 1) + 1) / 2 * t[2] + t[1] * (1 - t[2]))([x, image, mask])
    return keras.Model([image, mask], out)
