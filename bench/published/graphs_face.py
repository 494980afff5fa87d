"""Face-attribute fit net of the published-latency fit: AI Hub's face_attrib_net (bench/published/graphs.py
lists it in GRAPHS with its source). Why it is here: it is a network that is not SR and uses PReLU
activations, and besides the SR nets it is the only PReLU network with TFLite rows in the
qai-hub-models 0.65.0 wheel. So the fit sees PRELU ops outside the SR test set. Built offline in
tf_keras. Parameters: 10,822,384 trainable, exactly as the wheel's code builds it. The manifest's 12.1M
names the older multitask_FR_state_dict.pt checkpoint. That net also had layers.py's EmbedBlock(512),
a face-recognition embedding of 1,311,745 parameters; with it the count is 12,134,129. The current
model and its forward have no EmbedBlock (see the test in tests/deploy/latency_fit_test.py).
"""
from __future__ import annotations

from models._keras import keras

L = keras.layers


def _prelu(x):
    """torch nn.PReLU() (num_parameters=1): one alpha shared by every channel and pixel."""
    return L.PReLU(shared_axes=[1, 2, 3])(x)


def _cba(x, c: int, k: int, stride: int = 1, groups: int = 1, bn: bool = False, prelu: bool = False):
    """layers.py Conv2dBlock: conv (bias=False, padding k//2) [+ BatchNorm2d] [+ PReLU]."""
    x = L.Conv2D(c, k, stride, padding="same", groups=groups, use_bias=False)(x)
    if bn:
        x = L.BatchNormalization(epsilon=1e-5)(x)
    return _prelu(x) if prelu else x


def face_attrib_net(hw, chan: int = 64, blks_per_layer: tuple[int, ...] = (2, 6, 3), group_size: int = 32):
    """Qualcomm FaceAttribNet (AI Hub face_attrib_net, qai_hub_models/models/face_attrib_net/model.py +
    layers.py in the 0.65.0 wheel; from_pretrained: FaceAttribNet(64, [2, 6, 3]) with all five
    attributes enabled, group_size 32, activ "prelu"; 10,822,384 trainable parameters;
    the manifest's 12.1M includes a removed EmbedBlock, see the module docstring).

    forward: (x - 0.5) / 0.50196078. HeadBlock: 3x3 3->64 + BN + PReLU, then two branches that are
    added, then PReLU. The bran1 branch is 3x3 s2 grouped (c/32 groups), 1x1 + BN + PReLU, 3x3
    grouped, 1x1 + BN. The bran2 branch is 3x3 s2 grouped, 1x1 + BN. The result is 64 channels at
    stride 2. Three stages of blocks follow, each a DownsampleBlock and then NormalBlocks:
    - DownsampleBlock(c): the bran1 branch is 3x3 s2 c->2c grouped, 1x1 + BN + PReLU. The bran2
      branch is 3x3 s2 c->4c grouped, 1x1 4c->2c + BN + PReLU, 3x3 2c->4c grouped, 1x1 4c->2c + BN.
      The two are added, then PReLU.
    - NormalBlock(c): 3x3 c->2c grouped, 1x1 2c->c + BN + PReLU, 3x3 c->2c grouped, 1x1 2c->c + BN,
      + x, then PReLU.
    The stages give 128 channels at stride 4, 256 at stride 8 (fea3) and 512 at stride 16 (fea4).

    Five identical attribute heads: left eye, right eye, eyeglasses, face mask, sunglasses. Each is
    3x3 s2 256->128 grouped on fea3, 1x1 + BN + PReLU, concat with fea4 (640 channels), 3x3 s2
    640->320 grouped, 1x1 320->128 + BN + PReLU, AvgPool2d(4, stride 1), Linear 128->2. The five
    logits are stacked to (N, 5, 2), then softmax over the last axis and [:, :, 1]. forward returns
    only that probability (N, 5); fea4 and the logits are not outputs. Every PReLU has one
    parameter (nn.PReLU()); torch's padding=1 on the 3x3 convs is keras "same" (same output size
    at stride 2 on even sizes)."""
    from models._keras import tf

    x_in = keras.Input((hw[0], hw[1], 3), batch_size=1)
    x = L.Lambda(lambda t: (t - 0.5) / 0.50196078)(x_in)
    c, g = chan, chan // group_size
    x = _cba(x, c, 3, bn=True, prelu=True)
    b1 = _cba(_cba(_cba(_cba(x, c, 3, 2, g), c, 1, bn=True, prelu=True), c, 3, 1, g), c, 1, bn=True)
    b2 = _cba(_cba(x, c, 3, 2, g), c, 1, bn=True)
    x = _prelu(L.Add()([b1, b2]))
    feats = []
    for n in blks_per_layer:
        g = c // group_size
        b1 = _cba(_cba(x, 2 * c, 3, 2, g), 2 * c, 1, bn=True, prelu=True)
        b2 = _cba(_cba(x, 4 * c, 3, 2, g), 2 * c, 1, bn=True, prelu=True)
        b2 = _cba(_cba(b2, 4 * c, 3, 1, g), 2 * c, 1, bn=True)
        x, c = _prelu(L.Add()([b1, b2])), 2 * c
        for _ in range(n - 1):
            g = c // group_size
            y = _cba(_cba(x, 2 * c, 3, 1, g), c, 1, bn=True, prelu=True)
            y = _cba(_cba(y, 2 * c, 3, 1, g), c, 1, bn=True)
            x = _prelu(L.Add()([y, x]))
        feats.append(x)
    fea3, fea4 = feats[1], feats[2]
    base = chan
    logits = []
    for _ in range(5):   # left eye, right eye, eyeglasses, face mask, sunglasses
        a = _cba(_cba(fea3, 2 * base, 3, 2, 4 * base // group_size), 2 * base, 1, bn=True, prelu=True)
        a = L.Concatenate()([a, fea4])
        a = _cba(_cba(a, 5 * base, 3, 2, 10 * base // group_size), 2 * base, 1, bn=True, prelu=True)
        a = L.Flatten()(L.AveragePooling2D(4, 1)(a))
        logits.append(L.Dense(2)(a))
    logit = L.Lambda(lambda ts: tf.stack(ts, axis=1))(logits)
    prob = L.Lambda(lambda t: t[:, :, 1])(L.Softmax(axis=-1)(logit))
    return keras.Model(x_in, prob)
