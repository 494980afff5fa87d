"""Cross-layer equalization (CLE): conv -> positive-homogeneous activation -> conv, weights balanced.

Why: B's weights are quantized per output channel, so one input channel with large weights sets
the grid every other input channel of that output rounds on. For f positive-homogeneous,
f(t x) = t f(x) for t > 0 (ReLU, LeakyReLU, and PReLU whatever its per-channel slope, so the
slope is kept), so scaling conv A's output channel c by t_c and conv B's input channel c by 1/t_c
leaves the float model's output as it was (Nagel et al., "Data-Free Quantization", ICCV 2019,
sec. 4.1; AIMET's CLE). t_c = sqrt(r2_c / r1_c) (r1: A's output-channel weight range, r2: B's
input-channel weight range) makes both sqrt(r1 r2); repeated `iterations` times along the chain.
Measured on FSRCNN x3 (validation patches, all / smooth half, dB): min/max 33.00 / 36.45,
CLE x1 33.06 / 36.75, CLE x3 33.15 / 36.83. Equalizing the activation channels instead (small
channels scaled up toward the tensor's range, t_c = (M / m_c) ** s capped) was worse
(s = 0.5, cap 8: 32.06 / 34.46): B's weight grid pays more than the activation grid gains.

Applied to the float tf_keras model before conversion (the per-layer route's rewritten model:
`PReLUOps` = relu(x) - a relu(-x) and `LeakyReLUOps` = max(x, a x) are homogeneous too). A pair
qualifies only when it is a pure chain: A is a Conv2D (activation linear or relu) whose output
feeds one layer only, then at most one homogeneous activation layer (ReLU without
max_value/threshold, LeakyReLU, PReLU) feeding one layer only, then B, a Conv2D or
Conv2DTranspose (any groups), never a model output in between. Everything else (tanh, clipped
ReLU, concatenations, adds, slices) is left alone; the report lists the pairs equalized.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from models._keras import keras

HOMOGENEOUS = ("PReLU", "LeakyReLU", "PReLUOps", "LeakyReLUOps")
#: t_c is kept within [1 / MAX_SCALE, MAX_SCALE] (a dead channel has no range to balance)
MAX_SCALE = 16.0


def _consumers(model, layer) -> list:
    names = {l.name for l in model.layers}
    return [n.outbound_layer for n in layer._outbound_nodes if n.outbound_layer.name in names]  # noqa: SLF001


def _homogeneous(layer) -> bool:
    kind = type(layer).__name__
    if kind in HOMOGENEOUS:
        return True
    if kind == "ReLU":
        return (layer.max_value is None and float(layer.threshold) == 0.0)
    if kind == "Activation":
        return getattr(layer.activation, "__name__", "") in ("relu", "linear")
    return False


def _is_conv(layer) -> bool:
    return isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.DepthwiseConv2D)


def find_pairs(model: keras.Model) -> list[tuple[str, Optional[str], str]]:
    """(conv A, activation layer or None, conv B) chains that may be equalized."""
    outputs = {t.name for t in model.outputs}
    pairs = []
    for a in model.layers:
        if not _is_conv(a) or isinstance(a, keras.layers.Conv2DTranspose):
            continue
        if getattr(a.activation, "__name__", "") not in ("linear", "relu") or a.output.name in outputs:
            continue
        nxt = _consumers(model, a)
        if len(nxt) != 1:
            continue
        act = None
        if _homogeneous(nxt[0]) and not _is_conv(nxt[0]):
            act = nxt[0]
            if act.output.name in outputs:
                continue
            nxt = _consumers(model, act)
            if len(nxt) != 1:
                continue
        b = nxt[0]
        if _is_conv(b):
            pairs.append((a.name, act.name if act else None, b.name))
    return pairs


def _in_ranges(layer) -> np.ndarray:
    """max |w| per input channel of B."""
    k = layer.get_weights()[0]
    if isinstance(layer, keras.layers.Conv2DTranspose):  # [kh, kw, out, in]
        return np.abs(k).max(axis=(0, 1, 2))
    groups = getattr(layer, "groups", 1) or 1
    cpg, opg = k.shape[2], k.shape[3] // groups
    return np.concatenate([np.abs(k[:, :, :, g * opg:(g + 1) * opg]).max(axis=(0, 1, 3)) for g in range(groups)])


def equalize_weights(model: keras.Model, iterations: int = 3) -> tuple[keras.Model, dict]:
    """A copy of `model` with every qualifying pair's weight ranges balanced; and, per pair,
    the largest factor applied (for the report)."""
    if iterations < 1:
        from deploy.errors import UserInputError
        raise UserInputError(f"CLE iterations must be at least 1, not {iterations}")
    out = keras.models.clone_model(model)
    out.set_weights(model.get_weights())
    pairs = find_pairs(out)
    total = {f"{a}->{b}": np.ones(1) for a, _, b in pairs}
    for _ in range(iterations):
        for a_name, _, b_name in pairs:
            a, b = out.get_layer(a_name), out.get_layer(b_name)
            r1 = np.abs(a.get_weights()[0]).max(axis=(0, 1, 2))
            r2 = _in_ranges(b)
            if r1.shape != r2.shape:
                continue
            t = np.ones_like(r1)
            live = (r1 > 0) & (r2 > 0)
            t[live] = np.clip(np.sqrt(r2[live] / r1[live]), 1.0 / MAX_SCALE, MAX_SCALE)
            _scale_outputs(a, t)
            _scale_inputs(b, 1.0 / t)
            total[f"{a_name}->{b_name}"] = total[f"{a_name}->{b_name}"] * t
    return out, {k: [round(float(v.min()), 4), round(float(v.max()), 4)] for k, v in total.items()}


def _scale_outputs(layer, t: np.ndarray) -> None:
    w = layer.get_weights()
    w[0] = w[0] * t.reshape(1, 1, 1, -1)
    if layer.use_bias:
        w[1] = w[1] * t
    layer.set_weights(w)


def _scale_inputs(layer, s: np.ndarray) -> None:
    w = layer.get_weights()
    k = w[0]
    if isinstance(layer, keras.layers.Conv2DTranspose):  # [kh, kw, out, in]
        k = k * s.reshape(1, 1, 1, -1)
    else:  # [kh, kw, in / groups, out]: input channel c is row c % cpg of group c // cpg
        groups = getattr(layer, "groups", 1) or 1
        cpg, opg = k.shape[2], k.shape[3] // groups
        k = k.copy()
        for g in range(groups):
            k[:, :, :, g * opg:(g + 1) * opg] *= s[g * cpg:(g + 1) * cpg].reshape(1, 1, -1, 1)
    w[0] = k
    layer.set_weights(w)
