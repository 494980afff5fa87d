"""More fit nets of the published-latency fit: torchvision classifiers AI Hub publishes latencies for,
written in tf_keras (bench/published/graphs.py lists them in GRAPHS with their sources). Chosen for
what the other fit nets lack: small graphs where per-op and start-up costs weigh (ShuffleNetV2 x0.5,
1.37M, 0.5 ms; its channel split + shuffle are the RESHAPE/TRANSPOSE/slice ops of SR pixel shuffles;
MNASNet 0.5), many branches of small convs (GoogLeNet), and more QNN w8a16 rows (ShuffleNetV2,
MNASNet). Parameter counts = AI Hub's manifests (tests/deploy/latency_fit_test.py).
"""
from __future__ import annotations

from models._keras import keras, tf

L = keras.layers


def _cbr(x, filters: int, k: int, stride: int = 1, relu: bool = True, eps: float = 1e-5):
    x = L.Conv2D(filters, k, stride, padding="same", use_bias=False)(x)
    x = L.BatchNormalization(epsilon=eps)(x)
    return L.ReLU()(x) if relu else x


def _dw_bn(x, k: int, stride: int, relu: bool = False):
    x = L.DepthwiseConv2D(k, stride, padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    return L.ReLU()(x) if relu else x


def shufflenet_v2_x0_5(hw):
    """torchvision.models.shufflenet_v2_x0_5 (Ma et al., ECCV 2018; AI Hub shufflenet_v2, 1,366,792
    parameters): 3x3 stride-2 stem + max pool, stages of 4 / 8 / 4 units (24 -> 48 -> 96 -> 192
    channels), each unit a channel split (stride 1) or two branches (stride 2) of 1x1 / 3x3 depthwise /
    1x1, concatenated and channel-shuffled (groups 2: reshape, transpose, reshape), 1x1 to 1024, mean, FC."""
    def shuffle(t):
        h, w, c = (int(d) for d in t.shape[1:])
        t = tf.reshape(t, (1, h, w, 2, c // 2))
        return tf.reshape(tf.transpose(t, (0, 1, 2, 4, 3)), (1, h, w, c))

    def unit(x, out: int, stride: int):
        bf = out // 2
        if stride == 1:
            x1, x2 = x[..., :bf], x[..., bf:]
        else:
            x1, x2 = _cbr(_dw_bn(x, 3, stride), bf, 1), x
        y = _cbr(_dw_bn(_cbr(x2, bf, 1), 3, stride), bf, 1)
        return L.Lambda(shuffle)(L.Concatenate()([x1, y]))

    x_in = keras.Input((hw[0], hw[1], 3), batch_size=1)
    x = L.MaxPooling2D(3, 2, padding="same")(_cbr(x_in, 24, 3, 2))
    for repeats, out in ((4, 48), (8, 96), (4, 192)):
        for i in range(repeats):
            x = unit(x, out, 2 if i == 0 else 1)
    x = L.GlobalAveragePooling2D()(_cbr(x, 1024, 1))
    return keras.Model(x_in, L.Dense(1000)(x))


def googlenet(hw):
    """torchvision.models.googlenet (Szegedy et al., CVPR 2015; AI Hub googlenet, transform_input=False,
    aux classifiers not in the exported graph: 6,624,904 parameters): conv-BN-ReLU stem, 9 inception
    modules (1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 | 3x3 max pool -> 1x1, concatenated; torchvision's "5x5"
    branch is a 3x3), ceil-mode max pools, global mean, FC."""
    def inception(x, c1, c3r, c3, c5r, c5, pp):
        b1 = _cbr(x, c1, 1, eps=1e-3)
        b2 = _cbr(_cbr(x, c3r, 1, eps=1e-3), c3, 3, eps=1e-3)
        b3 = _cbr(_cbr(x, c5r, 1, eps=1e-3), c5, 3, eps=1e-3)
        b4 = _cbr(L.MaxPooling2D(3, 1, padding="same")(x), pp, 1, eps=1e-3)
        return L.Concatenate()([b1, b2, b3, b4])

    x_in = keras.Input((hw[0], hw[1], 3), batch_size=1)
    x = L.MaxPooling2D(3, 2, padding="same")(_cbr(x_in, 64, 7, 2, eps=1e-3))
    x = L.MaxPooling2D(3, 2, padding="same")(_cbr(_cbr(x, 64, 1, eps=1e-3), 192, 3, eps=1e-3))
    x = inception(inception(x, 64, 96, 128, 16, 32, 32), 128, 128, 192, 32, 96, 64)
    x = L.MaxPooling2D(3, 2, padding="same")(x)
    for cfg in ((192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
                (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128)):
        x = inception(x, *cfg)
    x = L.MaxPooling2D(2, 2, padding="same")(x)
    x = inception(inception(x, 256, 160, 320, 32, 128, 128), 384, 192, 384, 48, 128, 128)
    return keras.Model(x_in, L.Dense(1000)(L.GlobalAveragePooling2D()(x)))


def mnasnet0_5(hw):
    """torchvision.models.mnasnet0_5 (Tan et al., CVPR 2019; AI Hub mnasnet05, 2,218,512 parameters):
    depths (32, 16, 24, 40, 80, 96, 192, 320) x 0.5 rounded to multiples of 8, a 3x3 stem, a separable
    conv, six stacks of inverted residuals (1x1 expand, k x k depthwise, 1x1 project; residual where
    shapes match), 1x1 to 1280, mean, FC."""
    d = (16, 8, 16, 24, 40, 48, 96, 160)

    def inverted(x, out: int, k: int, stride: int, exp: int):
        y = _cbr(_dw_bn(_cbr(x, int(x.shape[-1]) * exp, 1), k, stride, relu=True), out, 1, relu=False)
        return L.Add()([x, y]) if stride == 1 and int(x.shape[-1]) == out else y

    x_in = keras.Input((hw[0], hw[1], 3), batch_size=1)
    x = _cbr(_dw_bn(_cbr(x_in, d[0], 3, 2), 3, 1, relu=True), d[1], 1, relu=False)
    for out, k, stride, exp, repeats in ((d[2], 3, 2, 3, 3), (d[3], 5, 2, 3, 3), (d[4], 5, 2, 6, 3),
                                         (d[5], 3, 1, 6, 2), (d[6], 5, 2, 6, 4), (d[7], 3, 1, 6, 1)):
        for i in range(repeats):
            x = inverted(x, out, k, stride if i == 0 else 1, exp)
    x = L.GlobalAveragePooling2D()(_cbr(x, 1280, 1))
    return keras.Model(x_in, L.Dense(1000)(x))
