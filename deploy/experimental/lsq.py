"""QAT that reaches the exported model: learned ranges (LSQ/PACT style) on the quantized graph,
distilled from the float model.

Why the TF-MOT QAT (qat.py's `qat_finetune`) gained at most 0.03 dB: its activation ranges were
moving averages (never learned), and the export threw them away (`float_weights_from` copies the
float kernels only; AI Edge Quantizer re-calibrated min/max), so the int8 model had the ranges of
plain PTQ and weights tuned for other grids; 300 steps at 1e-4 against the HR photo also move a
converged net very little.

Here QAT trains exactly what the per-layer route exports:
- The graph is the float TFLite the quantizer starts from (any source: tf_keras, Keras 3,
  SavedModel, float TFLite; PReLU already rewritten). Each op runs with TensorFlow's float kernel
  (deploy/convert/fake_quant_ops.py), every activation input rounded onto the grid its consumer
  reads it at in the quantized model (policy-aware: a16w8 tensors on int16 grids, requantization
  at precision boundaries, shared RESHAPE/TRANSPOSE/CONCATENATION grids), every weight on the
  quantizer's symmetric per-channel int8 grid of its current value.
- Learned: every float constant (kernels, biases, PReLU slopes), as w0 + std(w0)·d, and every
  activation range whose grid the quantizer derives from the tensor's own calibration
  (min/max → scale, zero point), as (min0·a, max0·b); grids the quantizer fixes otherwise (TANH's
  range, ...) stay as exported. Rounding passes the gradient straight through (STE); the scale
  gets LSQ's gradient (round(x/s) − x/s inside the range, the bound outside: PACT's clip gradient).
- Loss: minus the mean per-patch PSNR between the simulated int8 output and the float model's
  output (distillation: no HR needed), on LR patches of the shipped training photos drawn
  uniformly, so smooth patches, where int8 loses most, weigh as much as detailed ones.
- Export: `Learned` (deploy/convert/ptq/learned.py) → `PtqOptions(learned=...)` → the per-layer
  route writes the weights into the float TFLite and the learned ranges into the calibration
  result, and AI Edge Quantizer exports with them (scale = (max − min) / 255 exactly as trained).
"""
from __future__ import annotations

import dataclasses
import hashlib
import time
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from deploy.convert import quantizer
from deploy.convert.fake_quant import Simulator, _compute_ops, _dequant, _fb, _qparams
from deploy.convert.fake_quant_ops import apply as _apply
from deploy.convert.policy import Policy
from deploy.convert.ptq.act_ranges import SAME_AS_INPUT
from deploy.convert.ptq.learned import Learned
from deploy.experimental.qat_data import QatError, patch_psnr, training_patches

#: defaults measured on validation patches (bench/int8_quality.py --qat_steps)
STEPS, BATCH, LR_WEIGHTS, LR_RANGES = 200, 8, 1e-3, 1e-3


def _tname(t) -> str:
    return t.name.decode() if isinstance(t.name, bytes) else str(t.name)


def _grid_of(lo: float, hi: float, bits: int):
    """(scale, zero point) the quantizer derives from a calibration range (quantizer._ACT)."""
    if bits == 8:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        s = max(hi - lo, 1e-9) / 255.0
        return np.float32(s), float(np.rint(-128.0 - lo / s))
    return np.float32(max(abs(lo), abs(hi), 1e-9) / 32767.0), 0.0


class QatGraph:
    """The float TFLite graph with trainable constants and ranges, fake-quantized as `quantized`
    (an export of it with calibration result `qsv`) quantizes it."""

    def __init__(self, float_tflite: bytes, quantized: bytes, qsv: Mapping[str, dict]):
        import tensorflow as tf
        self.tf = tf
        self.sim = sim = Simulator(float_tflite, jit=False)  # its parsed ops; never run here
        fm, qm = sim._fm, _fb.read_model(quantized)  # noqa: SLF001 - same package family
        qops = _compute_ops(qm)
        if [o.kind for o in sim.ops] != [_op(qm, o) for o in qops]:
            raise QatError("the quantized model's ops do not line up with the float model's")
        tensors = fm.subgraphs[0].tensors
        self.names = [_tname(t) for t in tensors]
        producer = {op.output: op for op in sim.ops}
        qs = {k: (float(np.min(v["min"])), float(np.max(v["max"]))) for k, v in qsv.items() if "min" in v}

        def root(ti: int) -> int:
            seen = set()
            while ti in producer and producer[ti].kind in SAME_AS_INPUT and ti not in seen:
                seen.add(ti)
                ti = producer[ti].inputs[0]
            return ti

        self.range0: dict[str, tuple[float, float]] = {}
        self.fixed_grids = self.learned_grids = 0

        def spec(q, candidates: Sequence[int]):
            """How one grid is made: None (float), ('learn', name, qmin, qmax) or ('fixed', s, zp, qmin, qmax)."""
            if q is None:
                return None
            s, z, qmin, qmax, _dim = q
            if s.size == 1:
                bits = 8 if qmax == 127 else 16 if qmax == 32767 else None
                for ti in candidates:
                    name = self.names[ti]
                    if bits is None or name not in qs or ti == sim.input:  # a photo: 1/255 is exact
                        continue
                    s2, z2 = _grid_of(*qs[name], bits)
                    if abs(float(s[0]) - float(s2)) <= 1e-6 * float(s2) and float(z[0]) == z2:
                        self.range0[name] = qs[name]
                        self.learned_grids += 1
                        return ("learn", name, float(qmin), float(qmax))
            self.fixed_grids += 1
            return ("fixed", s.reshape(()) if s.size == 1 else s, z.reshape(()) if z.size == 1 else z,
                    float(qmin), float(qmax))

        reads: dict[int, int] = {}
        for op in sim.ops:
            for ti in op.inputs:
                reads[ti] = reads.get(ti, 0) + 1
        shared = {ti for ti, n in reads.items() if n > 1}
        self.w0: dict[int, np.ndarray] = {}  # float tensor index -> initial value (trained)
        self.plan = []
        for op, qo in zip(sim.ops, qops):
            consts, grids = [], []
            for j, (ti, qi) in enumerate(zip(op.inputs, qo.inputs)):
                c = op.consts["float"][j]
                if ti < 0:
                    consts.append(None), grids.append(None)
                    continue
                if c is None:  # an activation
                    consts.append(None)
                    grids.append(spec(_qparams(qm, qi), (root(ti), root(op.output))))
                    continue
                grids.append(None)
                if c.dtype.kind != "f":
                    consts.append(("static", c))
                    continue
                deq = _dequant(qm, qi)
                q = _qparams(qm, qi)
                kind = None
                if q is None or np.dtype(_np_type(qm, qi)) in (np.int32, np.int64):
                    kind = ("float",)  # float or int32/int64 bias (scale = in * weight: exact enough)
                elif np.all(q[1] == 0) and q[3] == 127 and c.ndim:  # weights: symmetric, per channel
                    kind = ("sym", q[4] if q[0].size > 1 else None)
                    if not np.allclose(_sym_np(c, kind[1]), deq, rtol=0, atol=1e-6 + 1e-3 * float(np.max(q[0]))):
                        kind = None
                elif q[0].size == 1 and q[3] == 127:  # constant operands (MUL's slope): min/max grid
                    kind = ("asym",)
                    if not np.allclose(_asym_np(c), deq, rtol=0, atol=1e-6 + 1e-3 * float(q[0][0])):
                        kind = None
                if kind is not None and ti in shared:  # one tensor read by several ops: keep it
                    kind = None
                if kind is None:
                    consts.append(("fixed", deq))
                    continue
                self.w0[ti] = c  # one variable per tensor (a buffer shared by equal constants is split at export)
                consts.append((*kind[:1], ti, *kind[1:]))
            self.plan.append((consts, grids, spec(_qparams(qm, qo.outputs[0]), (root(op.output),))))
        # trainable parameters: weights as w0 + std * d, ranges as (lo0 * a, hi0 * b)
        self.wscale = {ti: np.float32(max(float(np.std(w)), float(np.max(np.abs(w))) * 1e-2, 1e-6))
                       for ti, w in self.w0.items()}
        self.d = {ti: tf.Variable(np.zeros_like(w), name=f"d{ti}") for ti, w in self.w0.items()}
        self.a = {n: tf.Variable(1.0, name=f"a{k}") for k, n in enumerate(self.range0)}
        self.b = {n: tf.Variable(1.0, name=f"b{k}") for k, n in enumerate(self.range0)}
        self.w0_t = {ti: tf.constant(w) for ti, w in self.w0.items()}

    @property
    def weight_variables(self) -> list:
        return list(self.d.values())

    @property
    def range_variables(self) -> list:
        return list(self.a.values()) + list(self.b.values())

    # -- fake quantization ------------------------------------------------------------------------
    def _ste(self, x):
        tf = self.tf
        return x + tf.stop_gradient(tf.round(x) - x)

    def range_of(self, name: str):
        tf = self.tf
        lo0, hi0 = self.range0[name]
        return tf.minimum(lo0 * self.a[name], 0.0), tf.maximum(hi0 * self.b[name], 0.0)

    def _fq(self, x, g):
        tf = self.tf
        if g is None:
            return x
        if g[0] == "fixed":
            _, s, z, qmin, qmax = g
            return (tf.clip_by_value(self._ste(x / s) + z, qmin, qmax) - z) * s  # STE: gradients reach upstream
        _, name, qmin, qmax = g
        lo, hi = self.range_of(name)
        if qmax == 127.0:
            s = tf.maximum(hi - lo, 1e-9) / 255.0
            z = self._ste(-128.0 - lo / s)
        else:
            s = tf.maximum(tf.maximum(-lo, hi), 1e-9) / 32767.0
            z = 0.0
        return (tf.clip_by_value(self._ste(x / s) + z, qmin, qmax) - z) * s

    def _weight(self, c, quant: bool, original: bool):
        tf = self.tf
        kind = c[0]
        if kind in ("static", "fixed"):
            return c[1]
        ti = c[1]
        w = self.w0_t[ti] if original else self.w0_t[ti] + self.wscale[ti] * self.d[ti]
        if kind == "float" or not quant:
            return w
        if kind == "asym":
            lo, hi = tf.minimum(tf.reduce_min(w), 0.0), tf.maximum(tf.reduce_max(w), 0.0)
            s = tf.maximum(hi - lo, 1e-12) / 255.0
            z = self._ste(-128.0 - lo / s)
            return (tf.clip_by_value(self._ste(w / s) + z, -128.0, 127.0) - z) * s
        return _sym_tf(tf, w, c[2], self._ste)

    def forward(self, x, *, quant: bool = True, original: bool = False):
        """Model-unit batch -> model-unit output: fake-quantized (trained constants), or with
        quant=False, original=True the float model itself (the teacher)."""
        sim = self.sim
        val = {sim.input: x}
        for op, (consts, grids, out_g) in zip(sim.ops, self.plan):
            ins = []
            for j, ti in enumerate(op.inputs):
                if ti < 0:
                    ins.append(None)
                elif consts[j] is not None:
                    ins.append(self._weight(consts[j], quant, original)
                               if consts[j][0] != "fixed" or quant else op.consts["float"][j])
                else:
                    ins.append(self._fq(val[ti], grids[j]) if quant else val[ti])
            y = _apply(self.tf, op, ins)
            val[op.output] = self._fq(y, out_g) if quant else y
        return val[sim.output]

    # -- the result -------------------------------------------------------------------------------
    def learned_weights(self) -> dict[int, np.ndarray]:
        return {ti: (w + self.wscale[ti] * self.d[ti].numpy()).astype(np.float32) for ti, w in self.w0.items()}

    def learned_ranges(self) -> dict[str, tuple[float, float]]:
        out = {}
        for name in self.range0:
            lo, hi = self.range_of(name)
            out[name] = (float(lo.numpy()), float(hi.numpy()))
        return out


def _op(model, op) -> str:
    from deploy.convert.fake_quant import _op_name
    return _op_name(model, op)


def _np_type(model, ti: int):
    from deploy.convert.fake_quant import _NP
    return _NP.get(model.subgraphs[0].tensors[ti].type, np.float32)


def _sym_axes(ndim: int, axis: Optional[int]):
    return None if axis is None else tuple(k for k in range(ndim) if k != axis % ndim)


def _sym_np(w: np.ndarray, axis: Optional[int]) -> np.ndarray:
    axes = _sym_axes(w.ndim, axis)
    s = np.maximum(np.max(np.abs(w), axis=axes, keepdims=axes is not None), 1e-12) / 127.0
    return (np.clip(np.rint(w / s), -127, 127) * s).astype(np.float32)


def _asym_np(w: np.ndarray) -> np.ndarray:
    lo, hi = min(float(np.min(w)), 0.0), max(float(np.max(w)), 0.0)
    s = max(hi - lo, 1e-12) / 255.0
    z = np.rint(-128.0 - lo / s)
    return ((np.clip(np.rint(w / s) + z, -128, 127) - z) * s).astype(np.float32)


def _sym_tf(tf, w, axis: Optional[int], ste: Callable):
    axes = _sym_axes(len(w.shape), axis)
    s = tf.maximum(tf.reduce_max(tf.abs(w), axis=axes, keepdims=axes is not None), 1e-12) / 127.0
    return tf.clip_by_value(ste(w / s), -127.0, 127.0) * s


# ----------------------------------------------------------------------------- training
JIT_MIN_STEPS = 100


@dataclasses.dataclass(frozen=True)
class QatSettings:
    steps: int = STEPS
    batch: int = BATCH
    lr_weights: float = LR_WEIGHTS
    lr_ranges: float = LR_RANGES
    seed: int = 0
    #: XLA-compile the training step; None: when there are at least JIT_MIN_STEPS steps (compiling takes
    #: tens of seconds on 2 cores, which a few steps never pay back)
    jit: Optional[bool] = None
    #: where the int8 ranges start: min/max, or the PTQ range search (`mse`, `p99.99`: the
    #: best post-training ranges, deploy/convert/ptq/act_ranges.py), a shorter way to the optimum
    init: str = "minmax"

    @property
    def use_jit(self) -> bool:
        return self.steps >= JIT_MIN_STEPS if self.jit is None else bool(self.jit)

    def __post_init__(self):
        if not isinstance(self.steps, int) or self.steps < 0:
            raise QatError(f"QAT steps must be an integer >= 0, not {self.steps!r}")
        if not isinstance(self.batch, int) or self.batch < 1:
            raise QatError(f"QAT batch must be an integer >= 1, not {self.batch!r}")
        from deploy.convert.ptq import PtqOptions
        opts = PtqOptions.parse(self.init)
        if dataclasses.replace(opts, act_ranges="minmax", percentile=99.99) != PtqOptions():  # ranges only
            raise QatError(f"QAT init must be an activation-range label (minmax, mse, p99.99), not {self.init!r}")
        for f in ("lr_weights", "lr_ranges"):
            v = getattr(self, f)
            if not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
                raise QatError(f"QAT {f} must be in [0, 1), not {v!r}")


def train(graph: QatGraph, patches: Callable[[int], np.ndarray], settings: QatSettings, *,
          peak: float = 1.0, progress: bool = False) -> dict[str, Any]:
    """Fine-tune `graph`'s constants and ranges; `patches(step)` gives a model-unit LR batch."""
    import tensorflow as tf
    from models._keras import keras
    t0 = time.time()
    n = max(settings.steps, 1)
    warm = max(1, n // 10)  # linear warm-up: Adam's first steps would otherwise kick a converged net

    def schedule(lr: float):
        return keras.optimizers.schedules.CosineDecay(0.0, n - warm, alpha=0.05, warmup_target=lr, warmup_steps=warm)
    opt_w = keras.optimizers.Adam(schedule(settings.lr_weights))
    opt_r = keras.optimizers.Adam(schedule(settings.lr_ranges))
    wv, rv = graph.weight_variables, graph.range_variables
    teacher = tf.function(lambda x: graph.forward(x, quant=False, original=True), reduce_retracing=True,
                          jit_compile=settings.use_jit)

    @tf.function(reduce_retracing=True, jit_compile=settings.use_jit)  # XLA fuses the rounding passes
    def step(x, t):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(patch_psnr(graph.forward(x), t, peak))
        gw, gr = tape.gradient(loss, [wv, rv])
        if wv:
            opt_w.apply_gradients(zip(gw, wv))
        if rv:
            opt_r.apply_gradients(zip(gr, rv))
        return loss

    psnrs = []
    for k in range(settings.steps):
        x = tf.constant(np.asarray(patches(k), np.float32))
        psnrs.append(-float(step(x, teacher(x))))
        if progress and (k + 1) % 25 == 0:
            print(f"  QAT step {k + 1}/{settings.steps}  PSNR to float {np.mean(psnrs[-25:]):.3f} dB", flush=True)
    head = float(np.mean(psnrs[:20])) if psnrs else None
    tail = float(np.mean(psnrs[-20:])) if psnrs else None
    return {"steps": settings.steps, "batch": settings.batch, "lr_weights": settings.lr_weights,
            "lr_ranges": settings.lr_ranges, "seed": settings.seed, "init": settings.init,
            "seconds": round(time.time() - t0, 1),
            "loss": "mean over patches of PSNR(int8 output, float output)",
            "psnr_to_float_first20": None if head is None else round(head, 3),
            "psnr_to_float_last20": None if tail is None else round(tail, 3),
            "learned_ranges": len(graph.range0), "fixed_grids": graph.fixed_grids,
            "learned_weights": len(graph.w0)}


def learn(prep, policy: Policy, calib_patches: np.ndarray, patches: Callable[[int], np.ndarray],
          settings: QatSettings = QatSettings(), *, peak: float = 1.0, progress: bool = False) -> Learned:
    """QAT of a prepared model (deploy.convert.per_layer.prepare_source) under `policy`."""
    from deploy.convert.per_layer import _io_rules
    policy.validate(prep.layers)
    recipe = quantizer.build_recipe(policy, prep.ops) + _io_rules("float32")
    qsv = quantizer.calibrate(prep.float_tflite, calib_patches)
    if settings.init != "minmax":  # start from the searched int8 ranges (a16w8 tensors keep min/max)
        from deploy.convert.ptq import PtqOptions, act_ranges
        opts = PtqOptions.parse(settings.init)
        qsv, _ = act_ranges.choose_ranges(prep.float_tflite, calib_patches, qsv, opts.act_ranges,
                                          percentile=opts.percentile, only=quantizer.int8_tensors(prep, policy))
    graph = QatGraph(prep.float_tflite, quantizer.quantize(prep.float_tflite, recipe, qsv), qsv)
    report = train(graph, patches, settings, peak=peak, progress=progress)
    return Learned(hashlib.sha256(prep.float_tflite).hexdigest(), graph.learned_weights(),
                   graph.learned_ranges(), report)


def qat_options(src, policy: Policy, input_hw: tuple[int, int], settings: QatSettings = QatSettings(), *,
                calib_dir: Optional[str] = None, calib_images: int = 8, train_dir: Optional[str] = None,
                progress: bool = False):
    """PtqOptions carrying QAT's result for `deploy.quantize(src, policy,
    deploy.QuantizeConfig(ptq=...))` (same input size and calibration), and the report entry."""
    from deploy.convert import per_layer
    from deploy.convert.ptq import PtqOptions
    from deploy.data import calibration
    prep = per_layer.prepare_source(src, input_hw)
    policy.validate(model=src.name, scale=src.scale)
    policy.validate(prep.layers)  # before minutes of training
    hw = tuple(prep.input_shape[1:3])
    cal = calibration.calibration_set(src.scale, hw, calib_dir=calib_dir, n_images=calib_images,
                                      convention=src.convention)
    draw = training_patches(src.scale, hw, src.convention, batch=settings.batch, seed=settings.seed,
                            train_dir=train_dir)
    learned = learn(prep, policy, cal.patches, draw, settings, peak=src.convention.peak, progress=progress)
    return PtqOptions(learned=learned), dict(learned.report)
