"""AdaRound-style learned weight rounding for CONV_2D, on the float TFLite the quantizer reads.

Why: rounding every int8 weight to nearest is not the rounding that best reproduces a conv's
output (Nagel et al., "Up or Down? Adaptive Rounding for Post-Training Quantization", ICML 2020);
on smooth photos FSRCNN x3 at all-a16w8 (int8 weights) is still ~0.9 dB below float on the
validation smooth half. Per conv, with the float model's own inputs X (im2col rows sampled from the calibration
patches): minimise ||X W~ - X W||^2 + lambda * sum(1 - |2h - 1|^beta) over the rounding h in
[0, 1] of W~ = s (floor(W / s) + h), h a rectified sigmoid of a learned V, beta annealed 20 -> 2,
then h hardened to 0/1.

How it reaches the model: AI Edge Quantizer quantizes CONV_2D weights per output channel,
symmetric, s = max|w| / 127. The learned weights are written back as s * integer, and each
channel's largest weight stays on +-127 s, so AEQ recomputes the same s and its
round-to-nearest lands exactly on the learned integers. DEPTHWISE_CONV_2D, TRANSPOSE_CONV and
FULLY_CONNECTED keep nearest rounding.

Measured (FSRCNN x3, validation all / smooth half, dB): min/max 33.14 / 36.76; with AdaRound
(500 iterations, lambda 0.1) 33.10 / 36.64; (1000, 0.01) 33.14 / 36.77, although each conv's
reconstruction error on held-out rows falls ~40 % below nearest rounding's: the layer-wise
objective on float inputs does not carry to the output here.
"""
from __future__ import annotations

import collections
import copy
import hashlib

import numpy as np

from ai_edge_litert.tools import flatbuffer_utils

from deploy.convert.ptq.act_ranges import preserving_interpreter
from deploy.convert.ptq.bias_correction import _builtin_name

_ZETA, _GAMMA = 1.1, -0.1  # rectified sigmoid stretch (the paper's)
QMAX = 127


def _convs(model) -> list[tuple[int, int, int, tuple, tuple, str]]:
    """(op index, input tensor, weight tensor, strides, dilations, padding) of every float CONV_2D."""
    sg = model.subgraphs[0]
    out = []
    for i, op in enumerate(sg.operators):
        if _builtin_name(model, op) != "CONV_2D" or len(op.inputs) < 2:
            continue
        w = sg.tensors[op.inputs[1]]
        data = model.buffers[w.buffer].data
        if w.type != 0 or data is None or not len(data):  # float32 constant weights only
            continue
        o = op.builtinOptions
        out.append((i, op.inputs[0], op.inputs[1], (o.strideH, o.strideW),
                    (o.dilationHFactor or 1, o.dilationWFactor or 1), "SAME" if o.padding == 0 else "VALID"))
    return out


def _rows(x: np.ndarray, kh: int, kw: int, strides, dil, padding: str, n: int, rng) -> np.ndarray:
    """`n` random im2col rows (kh*kw*cin) of one NHWC input, with TFLite's SAME/VALID padding."""
    _, h, w, c = x.shape
    eh, ew = (kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1
    if padding == "SAME":
        oh, ow = -(-h // strides[0]), -(-w // strides[1])
        ph = max((oh - 1) * strides[0] + eh - h, 0)
        pw = max((ow - 1) * strides[1] + ew - w, 0)
        x = np.pad(x[0], ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - eh) // strides[0] + 1, (w - ew) // strides[1] + 1
        x = x[0]
    ys = rng.integers(0, oh, n) * strides[0]
    xs = rng.integers(0, ow, n) * strides[1]
    iy = ys[:, None] + np.arange(kh)[None, :] * dil[0]
    ix = xs[:, None] + np.arange(kw)[None, :] * dil[1]
    return x[iy[:, :, None], ix[:, None, :], :].reshape(n, kh * kw * c)


def learn_rounding(w: np.ndarray, x: np.ndarray, *, iters: int = 500, lam: float = 0.1,
                   seed: int = 0) -> np.ndarray:
    """(integer weights shaped as `w` [O, ...], per-channel scale s) learned for inputs `x`
    ([N, prod(w.shape[1:])]); the reconstruction error is measured in units of nearest rounding's."""
    from models._keras import keras, tf
    o = w.shape[0]
    wf = w.reshape(o, -1).astype(np.float64)
    s = np.abs(wf).max(axis=1, keepdims=True) / QMAX
    s[s == 0] = 1.0
    base = np.floor(wf / s)
    rest = np.clip(wf / s - base, 1e-4, 1 - 1e-4)
    v0 = -np.log((_ZETA - _GAMMA) / (rest - _GAMMA) - 1.0)
    tf.random.set_seed(seed)
    v = tf.Variable(v0.astype(np.float32))
    xt = tf.constant(x.astype(np.float32))
    target = tf.constant((x @ wf.T).astype(np.float32))
    base_t, s_t = tf.constant(base.astype(np.float32)), tf.constant(s.astype(np.float32))
    opt = keras.optimizers.Adam(1e-2)
    warm = iters // 5
    nearest = np.clip(np.rint(wf / s), -QMAX, QMAX) * s
    rec0 = max(float(np.mean((x @ nearest.T - x @ wf.T) ** 2)), 1e-20)  # nearest rounding's error = 1

    def h_of(var):
        return tf.clip_by_value(tf.sigmoid(var) * (_ZETA - _GAMMA) + _GAMMA, 0.0, 1.0)

    @tf.function   # one traced step: the eager loop spent ~25 ms a step in Python and dispatch
    def step(beta, reg):
        with tf.GradientTape() as tape:
            h = h_of(v)
            wq = s_t * tf.clip_by_value(base_t + h, -QMAX, QMAX)
            loss = tf.reduce_mean(tf.square(tf.matmul(xt, wq, transpose_b=True) - target)) / rec0
            loss += reg * lam * tf.reduce_mean(1.0 - tf.pow(tf.abs(2.0 * h - 1.0), beta))
        opt.apply_gradients([(tape.gradient(loss, v), v)])

    for it in range(iters):
        beta = 20.0 - (20.0 - 2.0) * max(0, it - warm) / max(1, iters - warm)
        step(tf.constant(beta, tf.float32), tf.constant(1.0 if it >= warm else 0.0, tf.float32))
    hard = (h_of(v).numpy() >= 0.5).astype(np.float64)
    return np.clip(base + hard, -QMAX, QMAX).reshape(w.shape), s.reshape(-1)


#: round_weights' last results by input: a search's shared PTQ pass and converting its policy (or several
#: policies of one model) learn the same rounding from the same float model and patches (seconds per conv)
_ROUNDED: collections.OrderedDict[str, tuple[bytes, dict]] = collections.OrderedDict()
_ROUNDED_KEEP = 4


def round_weights(float_tflite: bytes, patches: np.ndarray, *, rows: int = 2048, iters: int = 500,
                  seed: int = 0) -> tuple[bytes, dict]:
    """`float_tflite` with every CONV_2D's weights replaced by learned-rounding grid values."""
    h = hashlib.sha256(float_tflite)
    h.update(f"{patches.dtype}{patches.shape}{rows},{iters},{seed}".encode())
    h.update(np.ascontiguousarray(patches).tobytes())
    key = h.hexdigest()
    if key not in _ROUNDED:
        _ROUNDED[key] = _round_weights(float_tflite, patches, rows=rows, iters=iters, seed=seed)
        while len(_ROUNDED) > _ROUNDED_KEEP:
            _ROUNDED.popitem(last=False)
    _ROUNDED.move_to_end(key)
    tfl, summary = _ROUNDED[key]
    return tfl, copy.deepcopy(summary)


def _round_weights(float_tflite: bytes, patches: np.ndarray, *, rows: int, iters: int,
                   seed: int) -> tuple[bytes, dict]:
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(float_tflite))
    sg = model.subgraphs[0]
    convs = _convs(model)
    interp = preserving_interpreter(float_tflite)
    inp = interp.get_input_details()[0]["index"]
    rng = np.random.default_rng(seed)
    per = max(1, rows // len(patches))
    xs: dict[int, list] = {c[0]: [] for c in convs}
    for p in patches:
        interp.set_tensor(inp, p[None].astype(np.float32))
        interp.invoke()
        for i, t_in, t_w, st, dl, pad in convs:
            shape = sg.tensors[t_w].shape  # [O, KH, KW, I]
            xs[i].append(_rows(interp.get_tensor(t_in), shape[1], shape[2], st, dl, pad, per, rng))
    summary = {}
    for i, t_in, t_w, st, dl, pad in convs:
        t = sg.tensors[t_w]
        w = np.frombuffer(bytes(model.buffers[t.buffer].data), np.float32).reshape(t.shape)
        q, s = learn_rounding(w, np.concatenate(xs[i]), iters=iters, seed=seed)
        nearest = np.clip(np.rint(w.reshape(w.shape[0], -1) / s[:, None]), -QMAX, QMAX).reshape(w.shape)
        new = (q * s.reshape(-1, 1, 1, 1)).astype(np.float32)
        model.buffers[t.buffer].data = np.frombuffer(new.tobytes(), np.uint8)
        summary[t.name.decode().split(";")[0]] = round(float(np.mean(q != nearest)), 4)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), {
        "convs": len(summary), "rows": rows, "iterations": iters, "share_rounded_other_way": summary}
