"""Image-to-image fit nets of the published-latency fit (restoration, segmentation, inpainting):
the shapes closest to SR among the networks that are not SR (bench/published/graphs.py lists
them in GRAPHS with their sources). Built offline in tf_keras, parameter counts = AI Hub's manifests
(DDRNet-23-slim: its paper's).
"""
from __future__ import annotations

from models._keras import keras

L = keras.layers


def normalize(x):
    """qai_hub_models.utils.image_processing.normalize_image_torchvision: (x - mean) / std."""
    return L.Lambda(lambda t: (t - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225])(x)


def reflect_pad(t, p: int):
    """torch's ReflectionPad2d(p) / padding_mode='reflect': TFLite MIRROR_PAD."""
    from models._keras import tf
    return L.Lambda(lambda u: tf.pad(u, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT"))(t)


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
    x = L.ReLU()(L.Conv2D(64, 7)(reflect_pad(L.Concatenate()([masked, mask]), 3)))
    for c in (128, 256):
        x = L.ReLU()(L.Conv2D(c, 4, 2)(L.ZeroPadding2D(1)(x)))
    for _ in range(blocks):
        out = L.Concatenate()([L.ReLU()(L.Conv2D(64, 3, dilation_rate=r)(reflect_pad(x, r))) for r in rates])
        out = L.Conv2D(256, 3)(reflect_pad(out, 1))
        g = L.Activation("sigmoid")(layer_norm(L.Conv2D(256, 3)(reflect_pad(x, 1))))
        x = L.Lambda(lambda t: t[0] * (1 - t[2]) + t[1] * t[2])([x, out, g])
    x = L.ReLU()(up_conv(L.ReLU()(up_conv(x, 128)), 64))
    x = L.Activation("tanh")(L.Conv2D(3, 3, padding="same")(x))
    out = L.Lambda(lambda t: (tf.clip_by_value(t[0], -1, 1) + 1) / 2 * t[2] + t[1] * (1 - t[2]))([x, image, mask])
    return keras.Model([image, mask], out)


def lama_dilated(hw, blocks: int = 9, dilations: int = 4):
    """LaMa-Dilated (Suvorov et al., WACV 2022; advimman/lama configs/training/generator/
    pix2pixhd_multidilated_catin_4dil_9b.yaml, the ablation AI Hub ships as lama_dilated, 45.6M
    parameters; AI Hub's forward: image x (1 - mask), mask concatenated, output composited with the
    image): reflect-pad 3 + 7x7 conv 4->64, three 3x3 stride-2 convs to 512 channels at 1/8
    resolution, 9 residual blocks of two multidilated convs (saicinpainting/training/modules/
    multidilated_conv.py, comb_mode cat_in: the 512 channels split in 4 chunks of 128, each a
    reflect-padded 3x3 conv 128->512 at dilation 1, 2, 4, 8, the 4 outputs summed; BN, ReLU), three
    3x3 stride-2 transpose convs back to 64 channels at full resolution, reflect-pad 3 + 7x7 conv
    64->3 at full resolution, sigmoid. Inpainting: image-to-image at 512x512, not SR."""
    from models._keras import tf

    def multidilated(t, c):
        chunks = L.Lambda(lambda u: tf.split(u, dilations, axis=-1))(t)
        outs = [L.Conv2D(c, 3, dilation_rate=2 ** i)(reflect_pad(chunks[i], 2 ** i)) for i in range(dilations)]
        return L.BatchNormalization()(L.Add()(outs))

    image = keras.Input((hw[0], hw[1], 3), batch_size=1)
    mask = keras.Input((hw[0], hw[1], 1), batch_size=1)
    masked = L.Lambda(lambda t: t[0] * (1 - t[1]))([image, mask])
    x = L.Concatenate()([masked, mask])
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(64, 7)(reflect_pad(x, 3))))
    for c in (128, 256, 512):
        x = L.ReLU()(L.BatchNormalization()(L.Conv2D(c, 3, 2, padding="same")(x)))
    for _ in range(blocks):
        y = multidilated(L.ReLU()(multidilated(x, 512)), 512)
        x = L.Add()([x, y])
    for c in (256, 128, 64):
        x = L.ReLU()(L.BatchNormalization()(L.Conv2DTranspose(c, 3, 2, padding="same")(x)))
    x = L.Activation("sigmoid")(L.Conv2D(3, 7)(reflect_pad(x, 3)))
    return keras.Model([image, mask], L.Lambda(lambda t: t[2] * t[0] + (1 - t[2]) * t[1])([x, image, mask]))


def midas_small(hw, features: int = 64):
    """MiDaS v2.1 small (Ranftl et al., TPAMI 2022; isl-org/MiDaS@bdc4ed64 midas/midas_net_custom.py
    MidasNet_small, features 64, expand, as AI Hub's midas, 16.6M parameters; AI Hub's forward:
    torchvision normalization, the depth map kept 1 x H x W): an EfficientNet-Lite3 encoder (geffnet
    tf_efficientnet_lite3: stem 32, ReLU6, no squeeze-excite; stages 24/32/48/96/136/232/384 x 1/3/3/5/5/6/1
    blocks; no head) tapped after stages 2, 3, 5, 7; 3x3 convs to 64/128/256/512 channels; four
    RefineNet fusion blocks (residual conv units of two 3x3 convs, bilinear x2 with align_corners,
    1x1 out conv) up to 64 channels at 1/2 resolution; a 3x3 conv 64->32, bilinear x2, a 3x3 conv
    32->32 + ReLU and a 1x1 conv to one channel + ReLU at full resolution. Depth: dense prediction
    with an SR-like full-resolution tail, not SR."""
    from models._keras import tf

    def bn_act(t, act=True):
        t = L.BatchNormalization(epsilon=1e-3)(t)
        return L.ReLU(6.0)(t) if act else t

    def ir(t, k, s, e, c):
        cin = int(t.shape[-1])
        y = bn_act(L.Conv2D(cin * e, 1, use_bias=False)(t)) if e != 1 else t
        y = bn_act(L.DepthwiseConv2D(k, s, padding="same", use_bias=False)(y))
        y = bn_act(L.Conv2D(c, 1, use_bias=False)(y), act=False)
        return L.Add()([t, y]) if s == 1 and cin == c else y

    def up(t, align):
        size = (2 * int(t.shape[1]), 2 * int(t.shape[2]))
        return L.Lambda(lambda u: tf.compat.v1.image.resize_bilinear(u, size, align_corners=align))(t)

    def rcu(t, c):
        y = L.Conv2D(c, 3, padding="same")(L.ReLU()(t))
        y = L.Conv2D(c, 3, padding="same")(L.ReLU()(y))
        return L.Add()([y, t])

    def fusion(t, skip, c, out):
        if skip is not None:
            t = L.Add()([t, rcu(skip, c)])
        else:
            rcu(t, c)      # resConfUnit1 exists (counted in the parameters) but is unused without a skip
        return L.Conv2D(out, 1)(up(rcu(t, c), True))

    x_in = keras.Input((hw[0], hw[1], 3), batch_size=1)
    x = normalize(x_in)
    x = bn_act(L.Conv2D(32, 3, 2, padding="same", use_bias=False)(x))
    taps = []
    stages = [(3, 1, 1, 24, 1), (3, 2, 6, 32, 3), (5, 2, 6, 48, 3), (3, 2, 6, 96, 5), (5, 1, 6, 136, 5),
              (5, 2, 6, 232, 6), (3, 1, 6, 384, 1)]
    for i, (k, s, e, c, n) in enumerate(stages):
        for j in range(n):
            x = ir(x, k, s if j == 0 else 1, e, c)
        if i in (1, 2, 4, 6):
            taps.append(x)
    widths = [features, 2 * features, 4 * features, 8 * features]
    rn = [L.Conv2D(w, 3, padding="same", use_bias=False)(t) for t, w in zip(taps, widths)]
    p = fusion(rn[3], None, widths[3], widths[3] // 2)
    p = fusion(p, rn[2], widths[2], widths[2] // 2)
    p = fusion(p, rn[1], widths[1], widths[1] // 2)
    p = fusion(p, rn[0], widths[0], widths[0])
    y = up(L.Conv2D(features // 2, 3, padding="same")(p), False)
    y = L.ReLU()(L.Conv2D(32, 3, padding="same")(y))
    return keras.Model(x_in, L.ReLU()(L.Conv2D(1, 1)(y)))


def ddrnet23_slim(hw, planes: int = 32, spp: int = 128, head: int = 64, classes: int = 19):
    """DDRNet-23-slim (Hong et al. 2021; chenjun2hao/DDRNet.pytorch@bc0e193e lib/models/ddrnet_23_slim.py
    DualResNet(BasicBlock, [2, 2, 2, 2], planes 32, spp_planes 128, head_planes 64, augment=False), as
    AI Hub's ddrnet23_slim, 6.13M parameters, torchvision normalization first): a two-branch
    real-time segmenter at 1024x2048 whose high-resolution branch keeps 64 channels at 1/8
    resolution (128x256) after 32-channel basic blocks at 1/4 (256x512): narrow 3x3 convs over many
    pixels, the regime of SR trunks. Low branch 128/256/512 channels, bilateral fusions (1x1
    compression + bilinear up, 3x3 stride-2 down), DAPPM (average pools 5/9/17 + global, BN-ReLU-conv
    branches, bilinear up), segment head at 1/8. Segmentation, not SR."""
    from models._keras import tf

    relu = lambda t: L.ReLU()(t)  # noqa: E731
    bn = lambda t: L.BatchNormalization(epsilon=1e-5)(t)  # noqa: E731

    def conv(t, c, k, s=1, bias=False):
        return L.Conv2D(c, k, s, padding="same", use_bias=bias)(t)

    def resize(t, size):
        return L.Lambda(lambda u: tf.image.resize(u, size, method="bilinear"))(t)

    def basic(t, c, s=1, last=False):
        y = bn(conv(relu(bn(conv(t, c, 3, s))), c, 3))
        r = bn(conv(t, c, 1, s)) if s != 1 or int(t.shape[-1]) != c else t
        y = L.Add()([y, r])
        return y if last else relu(y)

    def layer(t, c, n, s=1):
        for i in range(n):
            t = basic(t, c, s if i == 0 else 1, last=(n > 1 and i == n - 1))
        return t

    def bottleneck(t, c, s=1):
        y = relu(bn(conv(t, c, 1)))
        y = bn(conv(relu(bn(conv(y, c, 3, s))), 2 * c, 1))
        return L.Add()([y, bn(conv(t, 2 * c, 1, s))])

    def pool(t, k, s):
        return L.AveragePooling2D(k, s)(L.ZeroPadding2D(k // 2)(t))

    def brc(t, c, k=1):   # BN, ReLU, conv (DAPPM's pre-activation branches)
        return conv(relu(bn(t)), c, k)

    def dappm(t, out):
        size = (int(t.shape[1]), int(t.shape[2]))
        scales = [pool(t, 5, 2), pool(t, 9, 4), pool(t, 17, 8), L.GlobalAveragePooling2D(keepdims=True)(t)]
        xs = [brc(t, spp)]
        for s in scales:
            xs.append(brc(L.Add()([resize(brc(s, spp), size), xs[-1]]), spp, 3))
        return L.Add()([brc(L.Concatenate()(xs), out), brc(t, out)])

    x_in = keras.Input((hw[0], hw[1], 3), batch_size=1)
    x = normalize(x_in)
    x = relu(bn(conv(relu(bn(conv(x, planes, 3, 2, bias=True))), planes, 3, 2, bias=True)))
    hi = 2 * planes
    l1 = layer(x, planes, 2)
    l2 = layer(relu(l1), 2 * planes, 2, 2)
    size = (int(l2.shape[1]), int(l2.shape[2]))
    x = layer(relu(l2), 4 * planes, 2, 2)
    x_ = layer(relu(l2), hi, 2)
    l3 = x
    x = L.Add()([x, bn(conv(relu(x_), 4 * planes, 3, 2))])
    x_ = L.Add()([x_, resize(bn(conv(relu(l3), hi, 1)), size)])
    x = layer(relu(x), 8 * planes, 2, 2)
    l4 = x
    x_ = layer(relu(x_), hi, 2)
    x = L.Add()([x, bn(conv(relu(bn(conv(relu(x_), 4 * planes, 3, 2))), 8 * planes, 3, 2))])
    x_ = L.Add()([x_, resize(bn(conv(relu(l4), hi, 1)), size)])
    x_ = bottleneck(relu(x_), hi)
    x = resize(dappm(bottleneck(relu(x), 8 * planes, 2), 4 * planes), size)
    y = L.Add()([x, x_])
    y = conv(relu(bn(conv(relu(bn(y)), head, 3))), classes, 1, bias=True)
    return keras.Model(x_in, y)
