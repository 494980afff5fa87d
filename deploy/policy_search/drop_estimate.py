"""Sensitivity drops estimated from shared backward passes, for models where measuring every
drop is most of a search's time (EDSR-baseline: 54 groups, ~3 s of simulation each).

Why it is sound: a drop's model differs from uniform a16w8 only by the rounding at its own
group's tensors (both are w8; a8w8 reads and writes its activations on 8-bit grids of the same
calibrated ranges). That difference δ is small, so the output moves by J·δ, J the Jacobian from
the group's op outputs to the model output, and each patch's squared error (Y channel, border
cropped, as PSNR_Y counts it) moves by

    ΔSSE = 2·<e, J·δ> + |J·δ|²        (e: the a16w8 output's error against HR).

Both terms come from backward passes that every group shares: <e, J·δ> = <Jᵀe, δ> (one pass,
exact to first order), and |J·δ|² = E_v <Jᵀv, δ>² for random ±1 vectors v (Hutchinson's
estimator; `probes` passes). The noise is not assumed white: δ is each group's real rounding
difference on these patches, computed op by op at the a16w8 operating point with the group's
own grids (the same arguments the exact drop would simulate, `FastOracle.simulated`), so
correlated rounding in smooth areas (banding) counts as it does in the real model.

Cost: one forward and 1 + `probes` backward passes of the whole model, plus each group's own
ops once, instead of one simulated model per group. What it misses: second-order effects
(a ReLU flipping, the output's clip and uint8 rounding), and the estimator's sampling noise
(relative standard deviation ~ sqrt(2 / (probes * patches)) of the |J·δ|² term). The drops
only steer the search (its additive loss model); every candidate is still simulated in full
and LiteRT judges the answer. Agreement with exact drops: `python bench/drop_estimate.py`.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
from tqdm import tqdm

from deploy.convert.fake_quant_ops import apply as _apply
from deploy.data.metrics import psnr_from_mse, rgb_to_y
from deploy.evaluation.runners import _to_uint8  # noqa: PLC2701 - the runner's own rounding
from deploy.policy_search.space import NARROW, WIDE, Group

#: random ±1 probes of the Hutchinson estimator (backward passes beyond the exact cross term)
PROBES = 2
#: patches per forward/backward batch (memory: every op output of the batch is kept per pass)
BATCH = 4


def _y_coefficients(convention, scale: int, channels: int) -> np.ndarray:
    """d(Y in 0..255)/d(model output channel): the convention's output map is affine per pixel."""
    lr = np.zeros((2, 2, 3))
    out = np.zeros((2 * scale, 2 * scale, channels))
    base = rgb_to_y(255.0 * convention.to_rgb01(out, lr, scale))[0, 0]
    coef = []
    for c in range(channels):
        one = out.copy()
        one[..., c] = 1.0
        coef.append(rgb_to_y(255.0 * convention.to_rgb01(one, lr, scale))[0, 0] - base)
    return np.asarray(coef, np.float32)


class _Linearised:
    """The float graph at the a16w8 operating point, rounding passed straight through."""

    def __init__(self, sim, args):
        import tensorflow as tf
        self.tf, self.sim, self.args = tf, sim, args

    def fq(self, x, g, straight_through: bool):
        tf = self.tf
        s, lo, hi = g
        q = tf.clip_by_value(tf.round(x / s), lo, hi) * s
        # straight through: rounding's derivative taken as 1 (calibrated grids rarely clip)
        return x + tf.stop_gradient(q - x) if straight_through else q

    def inputs(self, i: int, args_i, val: dict, straight_through: bool, rounded: bool = True) -> list:
        """Op i's inputs on its grids from `args_i` (`rounded=False`: as they are)."""
        fq = (lambda x, g: self.fq(x, g, straight_through)) if rounded else (lambda x, g: x)
        return self.sim.op_inputs(i, args_i, val, fq)

    def forward(self, x, straight_through: bool) -> dict:
        val = {self.sim.input: x}
        for i, op in enumerate(self.sim.ops):
            y = _apply(self.tf, op, self.inputs(i, self.args[i], val, straight_through))
            val[op.output] = self.fq(y, self.args[i][2], straight_through)
        return val


def _contributions(lin: _Linearised, x, per_group, cotangents):
    """<J_r^T u_r, delta_g> for every group g and cotangent r, per patch: shape (groups,
    cotangents, batch). One traced graph: the a16w8 forward, one backward per cotangent, and
    every group's rounding differences, so nothing but the products leaves it."""
    tf = lin.tf
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        val = lin.forward(x, straight_through=True)
    tensors = sorted({lin.sim.ops[i].output for ops, _ in per_group for i in ops})
    grads = [dict(zip(tensors, tape.gradient(val[lin.sim.output], [val[t] for t in tensors], output_gradients=u)))
             for u in cotangents]
    del tape
    batch = tf.shape(x)[0]
    out = []
    for pg in per_group:
        terms = [tf.zeros((batch,))] * len(grads)
        for t, d in _deltas(lin, val, pg).items():
            terms = [c + tf.reduce_sum(tf.reshape(g[t] * d, (batch, -1)), axis=1) for c, g in zip(terms, grads)]
        out.append(tf.stack(terms))
    return tf.stack(out)


def estimate(oracle, groups: Sequence[Group], *, probes: int = PROBES, seed: int = 0,
             batch: int = BATCH, progress: bool = True) -> tuple[list[float], dict]:
    """Every group's estimated drop (dB, same meaning as sensitivity.measure's) and a record of
    how it was made. `oracle` is a FastOracle (its simulator, validation set and scoring).

    The per-patch terms are kept on the oracle, so asking again (another budget, `--budget_on
    worst`, the search after a timed sensitivity pass) only rescores them."""
    key = (tuple(g.layers for g in groups), probes, seed, batch)
    kept = oracle.drop_estimates
    fresh = key not in kept
    if fresh:
        kept[key] = _measure(oracle, groups, probes, seed, batch, progress)
    sse, cross, square, pixels, record = kept[key]
    val_set = oracle.val
    base = oracle.score(_image_psnrs(val_set, sse / pixels))
    drops = [oracle.score(_image_psnrs(val_set, np.maximum(sse + 2 * cross[gi] + square[gi], 1e-12) / pixels)) - base
             for gi in range(len(groups))]
    return drops, {**record, "a16w8_psnr_y": round(base, 4), "reused": not fresh}


def _measure(oracle, groups: Sequence[Group], probes: int, seed: int, batch: int, progress: bool) -> tuple:
    """Per patch: the a16w8 squared error, and per group the cross and squared terms."""
    import tensorflow as tf
    t0 = time.perf_counter()
    sim, val_set, scale = oracle.sim, oracle.val, oracle.scale
    wide = oracle.uniform(WIDE)
    args16_full = _op_args(oracle, wide)
    args16, sigs16 = args16_full
    per_group = []  # per group: (the op indices whose arguments it changes, its arguments)
    for g in groups:
        args, sigs = _op_args(oracle, {**wide, **{l: NARROW for l in g.layers}})
        per_group.append(([i for i, (s, s16) in enumerate(zip(sigs, sigs16)) if s != s16], args))
    lin = _Linearised(sim, args16)
    coef = _y_coefficients(oracle.convention, scale, int(oracle._x.shape[-1]))  # noqa: SLF001
    rng = np.random.default_rng(seed)
    n = len(oracle._x)  # noqa: SLF001
    sse = np.zeros(n)
    cross = np.zeros((len(groups), n))  # <e, J delta> per group and patch
    square = np.zeros((len(groups), n))  # mean over probes of <v, J delta>^2
    run = tf.function(lambda xb, us: _contributions(lin, xb, per_group, us), autograph=False,
                      reduce_retracing=True)
    stage = {"batches": 0.0}
    t = time.perf_counter()
    # the cotangents need the a16w8 output's error first: one simulated a16w8 run (kept by the
    # simulator, so the search's candidates resume from it)
    y16 = sim.run(oracle._x, args16_full)  # noqa: SLF001
    oracle.remember(wide, y16)  # the fast oracle's own a16w8 measurement: not simulated again
    stage["a16w8_run"] = time.perf_counter() - t
    bar = tqdm(total=n, desc="sensitivity (estimated)", unit="patch", disable=not progress)
    for b0 in range(0, n, batch):
        xb = tf.constant(oracle._x[b0:b0 + batch])  # noqa: SLF001
        m = int(xb.shape[0])
        t = time.perf_counter()
        y = y16[b0:b0 + m]
        ks = range(b0, b0 + m)
        sr = [_to_uint8(oracle.convention.to_rgb01(y[j], val_set.lr[k].astype(np.float32) / 255.0, scale))
              for j, k in enumerate(ks)]
        err = np.stack([_crop(rgb_to_y(s) - rgb_to_y(val_set.hr[k]), scale) for s, k in zip(sr, ks)])
        sse[b0:b0 + m] = (err ** 2).reshape(m, -1).sum(1)
        resid = [err] + [rng.choice((-1.0, 1.0), size=err.shape) for _ in range(probes)]
        c = run(xb, [tf.constant(_to_output(r, coef, scale)) for r in resid]).numpy()
        cross[:, b0:b0 + m] = c[:, 0]
        square[:, b0:b0 + m] = np.mean(c[:, 1:] ** 2, axis=1)
        stage["batches"] += time.perf_counter() - t
        bar.update(m)
    bar.close()
    record = {"method": "estimated", "probes": probes, "seed": seed, "patches": n,
              "backward_passes": 1 + probes,
              "groups_without_rounding_change": sum(1 for ops, _ in per_group if not ops),
              "stage_seconds": {k: round(v, 1) for k, v in stage.items()},
              "seconds": round(time.perf_counter() - t0, 1)}
    return sse, cross, square, int(np.prod(err.shape[1:])), record


def _op_args(oracle, a):
    got = oracle.simulated(a)
    return got if isinstance(got, tuple) else oracle.sim.op_args(got)


def _deltas(lin: _Linearised, val16: dict, pg) -> dict:
    """A group's rounding difference at each op it changes: its ops run in topological order
    on the a16w8 values (or on the group's own outputs, where one feeds the next) with the
    group's grids and constants; each op's own new rounding, not what it passes on."""
    tf = lin.tf
    ops, args = pg
    pert: dict = {}
    out = {}
    for i in ops:
        op = lin.sim.ops[i]
        here = {**val16, **pert}
        y_g = lin.fq(_apply(tf, op, lin.inputs(i, args[i], here, straight_through=False)), args[i][2],
                     straight_through=False)
        if any(t in pert for t in op.inputs):  # fed by the group's own op: only this op's rounding
            exact = lambda v: _apply(tf, op, lin.inputs(i, lin.args[i], v, False, rounded=False))  # noqa: E731
            out[op.output] = (y_g - exact(here)) - (val16[op.output] - exact(val16))
        else:
            out[op.output] = y_g - val16[op.output]
        pert[op.output] = y_g
    return out


def _crop(a: np.ndarray, border: int) -> np.ndarray:
    return a[border:-border, border:-border] if border else a


def _to_output(resid: np.ndarray, coef: np.ndarray, scale: int) -> np.ndarray:
    """A Y-space vector on the cropped patch -> the model-output cotangent (border zero)."""
    b, h, w = resid.shape
    full = np.zeros((b, h + 2 * scale, w + 2 * scale), np.float32)
    full[:, scale:scale + h, scale:scale + w] = resid
    return full[..., None] * coef


def _image_psnrs(val_set, mse_per_patch: np.ndarray) -> np.ndarray:
    """As ValidationSet.psnr_y_images: each image's patches' MSE pooled."""
    return np.asarray([psnr_from_mse(float(np.mean([mse_per_patch[k] for k, j in enumerate(val_set.image_of) if j == i])))
                       for i in range(len(val_set.images))])
