"""Simulated (fake) quantization of per-layer policies in TensorFlow, on float kernels.

LiteRT runs int16 convolutions with single-threaded reference kernels, so measuring a mostly
a16w8 candidate for real takes seconds to minutes. The search only needs to *rank* candidates,
so it can measure them on a simulation instead (deploy/policy_search/fast_oracle.py) and keep
LiteRT as the judge of the answer.

What is simulated, and why it is faithful: the candidate is quantized for real by the quantizer
(`quantizer.quantize`: recipe + the calibration's QSVs, a fraction of a second; no invoke), and
its exported model is read back, not executed: every tensor's grid (asymmetric int8, symmetric
int16, scale and zero point from the same global min/max), the per-channel int8 weights and the
int32/int64 biases (dequantized exactly), the constrained-op choices (TANH's fixed range, shared
RESHAPE/TRANSPOSE/CONCATENATION grids) and the requantization at every precision boundary
(what each consumer sees). The float TFLite graph the quantizer started from is then executed
op by op with TensorFlow's float kernels (all cores, one batch of patches): every activation
input is rounded and clipped onto the grid the consumer reads it at, the op runs in float
(fused activations clamp), and its output is rounded onto its own grid.

Reuse: candidates of a search share most of their graph with runs already made (a sensitivity
drop is uniform a16w8 but for one group). The op list is cut at checkpoints where few tensors
are live (a residual block's boundary), each segment is its own traced function, and a run
keeps the live tensors at every checkpoint; a later run whose ops before a checkpoint carry the
same grids and constants starts there. The segments are the same functions either way, so a
resumed run is bit-identical to a full one (tested).

What differs from LiteRT: integer kernels requantize with fixed-point multipliers and their own
rounding, and accumulate exactly; here rounding is float round-half-even. The difference is
measured, not assumed (bench/search.py reports fast vs LiteRT PSNR per model; the oracle
confirms every final answer on LiteRT).
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
from typing import Mapping, Optional, Sequence

import numpy as np

from deploy.convert.fake_quant_ops import SimulationUnsupported, apply as _apply
from deploy.convert.precisions import LAYER as LAYER_PRECISIONS
from deploy.errors import choice_error

from ai_edge_litert import schema_py_generated as _schema
from litert_quantizer.utils import tfl_flatbuffer_utils as _fb

_OP_NAMES = {v: k for k, v in vars(_schema.BuiltinOperator).items() if not k.startswith("_")}

#: a ModelT tensor type code -> numpy dtype (those that occur in SR models)
_NP = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8}
_QRANGE = {np.int8: (-128, 127), np.int16: (-32768, 32767), np.uint8: (0, 255)}
BOUNDARY = ("QUANTIZE", "DEQUANTIZE")
_PASS = np.float32(2.0 ** -40)  # x / 2^-40 is exact; rounding it moves x by <= 2^-41


def _op_name(model, op) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    c = max(code.builtinCode, getattr(code, "deprecatedBuiltinCode", 0) or 0)
    return _OP_NAMES.get(c, f"OP{c}")


def _const(model, ti: int) -> Optional[np.ndarray]:
    t = model.subgraphs[0].tensors[ti]
    buf = model.buffers[t.buffer].data if t.buffer < len(model.buffers) else None
    if buf is None or len(buf) == 0:
        return None
    arr = np.frombuffer(bytes(bytearray(buf)), dtype=_NP[t.type])
    shape = [int(d) for d in (t.shape if t.shape is not None else [])]
    return arr.reshape(shape) if shape else arr.reshape(())


def _qparams(model, ti: int):
    """(scale, zero_point, qmin, qmax) per-tensor or per-channel, or None for a float tensor."""
    t = model.subgraphs[0].tensors[ti]
    dt = _NP.get(t.type)
    q = t.quantization
    if dt not in _QRANGE or q is None or q.scale is None or len(q.scale) == 0:
        return None
    return (np.asarray(q.scale, np.float32), np.asarray(q.zeroPoint, np.float32), *_QRANGE[dt],
            int(q.quantizedDimension or 0))


def _dequant(model, ti: int) -> Optional[np.ndarray]:
    """A constant tensor as the kernel sees it, in float (quantized ones dequantized exactly)."""
    raw = _const(model, ti)
    if raw is None:
        return None
    t = model.subgraphs[0].tensors[ti]
    q = t.quantization
    if raw.dtype.kind == "f" or q is None or q.scale is None or len(q.scale) == 0:
        return raw.astype(np.float32) if raw.dtype.kind == "f" else raw
    scale = np.asarray(q.scale, np.float64)
    zp = np.asarray(q.zeroPoint if q.zeroPoint is not None and len(q.zeroPoint) else [0], np.float64)
    if scale.size > 1:
        shape = [1] * raw.ndim
        shape[int(q.quantizedDimension or 0)] = scale.size
        scale, zp = scale.reshape(shape), zp.reshape(shape) if zp.size > 1 else zp
    return ((raw.astype(np.float64) - zp) * scale).astype(np.float32)


@dataclasses.dataclass
class _Op:
    kind: str
    inputs: tuple[int, ...]  # float-model tensor ids (-1: optional input absent)
    output: int
    options: dict
    # per precision: per input slot, a dequantized constant or None; activation grids; output grid
    consts: dict
    in_q: dict
    out_q: dict


def _compute_ops(model) -> list:
    sg = model.subgraphs[0]
    return [op for op in sg.operators if _op_name(model, op) not in BOUNDARY]


#: per op of the float graph: (runtime arguments, signature), as `Simulator.op_args` gives them
OpArgs = tuple[list, list]


class Simulator:
    """Runs the float TFLite graph with every tensor fake-quantized as a quantized model of it has it.

    `run(x, quantized)`: `quantized` is a model the quantizer exported from this float TFLite
    (any per-layer policy; None: float). Its grids, dequantized weights and biases are read
    back and applied to the float graph; returns the model output (model units) for the batch."""

    SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "ADD", "SUB", "MUL", "MAXIMUM",
                 "MINIMUM", "CONCATENATION", "STRIDED_SLICE", "RESHAPE", "TRANSPOSE", "RELU", "RELU6",
                 "RELU_N1_TO_1", "TANH", "LOGISTIC", "LEAKY_RELU", "PRELU", "DEPTH_TO_SPACE", "PAD",
                 "HARD_SWISH", "SPACE_TO_DEPTH")

    def __init__(self, float_tflite: bytes, *, batch: int = 32, keep_runs: int = 3, jit: bool = True,
                 arithmetic: str = "litert"):
        """`arithmetic`: "litert" (LiteRT's CPU kernels) or "htp" (Qualcomm's HTP, see ARITHMETICS)."""
        import tensorflow as tf  # heavy: only when a simulator is made
        if arithmetic not in ARITHMETICS:
            raise choice_error("arithmetic", arithmetic, ARITHMETICS)
        self._tf, self.batch, self.arithmetic = tf, batch, arithmetic
        fm = self._fm = _fb.read_model(float_tflite)
        sg = fm.subgraphs[0]
        self.input, self.output = int(sg.inputs[0]), int(sg.outputs[0])
        fops = _compute_ops(fm)
        unsupported = sorted({_op_name(fm, o) for o in fops} - set(self.SUPPORTED))
        if unsupported:
            raise SimulationUnsupported(f"the fast oracle cannot simulate {', '.join(unsupported)}; "
                                        "use --oracle litert")
        self.ops: list[_Op] = []
        #: each simulated op's index among the float model's operators (layer_map.MappedOp.index)
        self.op_index = tuple(i for i, fo in enumerate(sg.operators) if _op_name(fm, fo) not in BOUNDARY)
        for fo in fops:
            opts = vars(fo.builtinOptions) if fo.builtinOptions is not None else {}
            consts = {"float": tuple(None if i < 0 else _dequant(fm, i) for i in fo.inputs)}
            self.ops.append(_Op(_op_name(fm, fo), tuple(int(i) for i in fo.inputs), int(fo.outputs[0]),
                                opts, consts, {}, {}))
        #: per op, the input slots that read their producer's unrounded output (HTP's fusions)
        self.fused_inputs = _htp_fused_inputs(self.ops) if arithmetic == "htp" else [()] * len(self.ops)
        self._float_args = [self._args(op.consts["float"], [None] * len(op.inputs), None) for op in self.ops]
        self._float_sigs = [_sig(op.consts["float"], [None] * len(op.inputs), None) for op in self.ops]
        self.checkpoints = self._checkpoints()
        self._live = {k: self._live_at(k) for k in (*self.checkpoints, len(self.ops))}
        _quiet_retracing(tf)  # each segment traces once per batch shape, by design
        # XLA fuses each tensor's round/clip/rescale with its producer: the rounding passes are a
        # third of a pass unfused (EDSR-baseline: 6.9 s -> 5.0 s per 30 patches, +2.5 s compile once)
        self._segments = [tf.function(self._segment(a, b), autograph=False, reduce_retracing=True, jit_compile=jit)
                          for a, b in zip(self.checkpoints, (*self.checkpoints[1:], len(self.ops)))]
        #: recent runs: (op signatures, {checkpoint: per-batch live tensors}), most recent last
        self._kept: collections.OrderedDict = collections.OrderedDict()
        self.keep_runs = keep_runs
        self.ops_run = self.ops_total = 0  # ops executed vs ops a full run would execute (reuse)

    # -- segments -------------------------------------------------------------------------------
    def _live_at(self, k: int) -> list[int]:
        """Tensors made before op k (or the input) that op k or a later op reads (or the output)."""
        made = {self.input} | {op.output for op in self.ops[:k]}
        read = {t for op in self.ops[k:] for t in op.inputs if t >= 0} | {self.output}
        return sorted(made & read)

    def _checkpoints(self, max_live: int = 3, most: int = 24) -> tuple[int, ...]:
        """Op indices where a run may stop and resume: few live tensors (cheap to keep), spread
        evenly over the graph, at most `most` of them (one traced function per segment)."""
        n = len(self.ops)
        made_at = {self.input: -1, **{op.output: i for i, op in enumerate(self.ops)}}
        last_read = {self.output: n}
        for i, op in enumerate(self.ops):
            for t in op.inputs:
                if t >= 0 and t in made_at:
                    last_read[t] = max(last_read.get(t, -1), i)
        # a fused consumer reads its producer's unrounded output, which is not kept at a checkpoint
        fused = [(made_at[self.ops[i].inputs[j]], i) for i, slots in enumerate(self.fused_inputs) for j in slots]
        cands = [k for k in range(1, n)
                 if sum(1 for t, m in made_at.items() if m < k <= last_read.get(t, -2)) <= max_live
                 and not any(m < k <= i for m, i in fused)]
        if len(cands) > most - 1:
            step = len(cands) / (most - 1)
            cands = [cands[int(i * step)] for i in range(most - 1)]
        return (0, *cands)

    def _segment(self, k0: int, k1: int):
        live_in, live_out = self._live_at(k0), self._live_at(k1)

        def run(xs, args):
            val = dict(zip(live_in, xs))
            self._ops(range(k0, k1), args, val, offset=k0)
            return [val[t] for t in live_out]
        return run

    # -- runtime arguments: a quantized model's grids and constants, as tensors ----------------
    def _grid(self, q):
        """(scale, lowest, highest) of the grid in steps from the zero point; a float tensor gets
        the power-of-two scale 2^-40 and no bounds: round-and-rescale moves it by at most 2^-41."""
        tf = self._tf
        if q is None:
            return (tf.constant(_PASS), tf.constant(-3e38), tf.constant(3e38))
        s, z, lo, hi, _dim = q
        # activation grids are per tensor in SR models; per-channel ones broadcast on the last axis
        s, z = (s, z) if s.size > 1 else (s.reshape(()), z.reshape(()))
        return (tf.constant(s), tf.constant(np.float32(lo) - z), tf.constant(np.float32(hi) - z))

    def _args(self, consts, in_q, out_q) -> list:
        # float constants (weights, biases, slopes) vary with precision: runtime arguments;
        # integer ones (shapes, permutations, slice bounds) are static in the graph
        tf = self._tf
        return [[tf.constant(c) if c is not None and c.dtype.kind == "f" else None for c in consts],
                [self._grid(q) for q in in_q], self._grid(out_q)]

    def op_args(self, quantized: Optional[bytes]) -> OpArgs:
        """Per op, the runtime arguments (constants, input grids, output grid) and signature of a
        quantized model (None: float); `run` takes them in place of the model, so a caller may
        assemble a candidate's from parts."""
        if quantized is None:
            return self._float_args, self._float_sigs
        m = _fb.read_model(quantized)
        qops = _compute_ops(m)
        if [_op_name(m, o) for o in qops] != [op.kind for op in self.ops]:
            raise SimulationUnsupported("the quantized model's ops do not line up with the float model's")
        out, sigs = [], []
        for qo in qops:
            consts = tuple(None if i < 0 else _dequant(m, i) for i in qo.inputs)
            in_q = [None if (i < 0 or consts[j] is not None) else _qparams(m, i) for j, i in enumerate(qo.inputs)]
            out_q = _qparams(m, qo.outputs[0])
            out.append(self._args(consts, in_q, out_q))
            sigs.append(_sig(consts, in_q, out_q))
        return out, sigs

    # -- the graph -------------------------------------------------------------------------------
    def _fq(self, x, g):
        """round(x / s) clipped to the grid, times s: (q - zp) * s of the integer kernel's q."""
        s, lo, hi = g
        return self._tf.clip_by_value(self._tf.round(x / s), lo, hi) * s

    def _graph(self, x, args, trace: Optional[dict] = None):
        """The whole graph in one go (eager); `run` goes segment by segment instead."""
        val = {self.input: x} if trace is None else trace
        val[self.input] = x
        self._ops(range(len(self.ops)), args, val)
        return val[self.output]

    def _ops(self, indices, args, val: dict, offset: int = 0) -> None:
        """Run ops `indices` on tensors `val` (updated); `args[i - offset]` belongs to op i."""
        for i in indices:
            y = _apply(self._tf, self.ops[i], self.op_inputs(i, args[i - offset], val))
            if self.arithmetic == "htp":
                val[("unrounded", self.ops[i].output)] = y
            val[self.ops[i].output] = self._fq(y, args[i - offset][2])

    def op_inputs(self, i: int, args_i, val: dict, fq=None) -> list:
        """Op i's inputs as its kernel reads them: constants from `args_i` (or the graph's static
        integer ones), activations from `val` put on their grids by `fq(x, grid)` (default: the
        simulator's rounding; drop_estimate.py passes its own)."""
        op, (consts, grids, _out_grid) = self.ops[i], args_i
        fq = fq or self._fq
        ins = []
        for j, ti in enumerate(op.inputs):
            if ti < 0:
                ins.append(None)
            elif consts[j] is not None:
                ins.append(consts[j])
            elif op.consts["float"][j] is not None:  # static integer constant
                ins.append(op.consts["float"][j])
            elif j in self.fused_inputs[i] and ("unrounded", ti) in val:  # HTP: fused, one rounding
                ins.append(val[("unrounded", ti)])
            else:
                ins.append(fq(val[ti], grids[j]))
        return ins

    def _resume_point(self, sigs: list, x_key: bytes) -> tuple[int, Optional[dict]]:
        """The latest checkpoint up to which a kept run (same input) did exactly what this one
        will do, and that run's live tensors; (0, None) when none shares a prefix."""
        best, kept, used = 0, None, None
        for key, (ksigs, vals) in self._kept.items():
            if key[0] != x_key:
                continue
            same = next((i for i, (a, b) in enumerate(zip(sigs, ksigs)) if a != b), len(sigs))
            k = max(c for c in self.checkpoints if c <= same)
            if k > best:
                best, kept, used = k, vals, key
        if used is not None:  # a run others resume from stays kept (a sensitivity's a16w8 run)
            self._kept.move_to_end(used)
        return best, kept

    def run(self, x: np.ndarray, quantized: Optional[bytes] | OpArgs) -> np.ndarray:
        """Model-unit input batch (N, H, W, C) -> model-unit output as `quantized` computes it
        (a quantized model, None for float, or its `op_args`).

        Starts at the latest checkpoint a kept run shares (see the module docstring) and keeps
        this run's checkpoint tensors for later runs (the `keep_runs` most recent)."""
        tf = self._tf
        args, sigs = quantized if isinstance(quantized, tuple) else self.op_args(quantized)
        x = np.ascontiguousarray(x, np.float32)
        x_key = hashlib.blake2b(x.tobytes(), digest_size=16).digest() + repr(x.shape).encode()
        start, kept = self._resume_point(sigs, x_key)
        batches = range(0, len(x), self.batch)
        live = {start: kept[start] if kept else [[tf.constant(x[i:i + self.batch])] for i in batches]}
        for j, k0 in enumerate(self.checkpoints):
            if k0 < start:
                continue
            k1 = self.checkpoints[j + 1] if j + 1 < len(self.checkpoints) else len(self.ops)
            live[k1] = [self._segments[j](xs, args[k0:k1]) for xs in live[k0]]
        self.ops_run += len(self.ops) - start
        self.ops_total += len(self.ops)
        key = (x_key, tuple(sigs))
        vals = {**(kept or {}), **{k: v for k, v in live.items() if k < len(self.ops)}}
        self._kept.pop(key, None)
        self._kept[key] = (sigs, vals)
        while len(self._kept) > self.keep_runs:
            self._kept.popitem(last=False)
        return np.concatenate([out[0].numpy() for out in live[len(self.ops)]], 0)


#: "litert": LiteRT's CPU kernels (every op's output rounded onto its grid, every consumer reads it
#: there). "htp": Qualcomm's HTP, whose compiler fuses a standalone RELU into the convolution
#: that produces its input: the RELU reads the convolution's accumulator, not its rounded int8
#: output (one rounding where LiteRT has two). Measured on FSRCNN x3's compiled model with every
#: intermediate made an output (a one-off probe; bench/npu_numerics.py checks the result): the same int8 convolution output
#: maps to up to 3 RELU outputs on HTP, to one on LiteRT; the ops after it (MUL, SUB) are
#: functions of their int8 inputs on both.
ARITHMETICS = ("litert", "htp")
_CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV")
_FUSED_INTO_CONV = ("RELU", "RELU6", "RELU_N1_TO_1")


def _htp_fused_inputs(ops: Sequence[_Op]) -> list[tuple[int, ...]]:
    """Per op, the input slots HTP computes from the producer's unrounded output."""
    producer = {op.output: op for op in ops}
    out = []
    for op in ops:
        src = producer.get(op.inputs[0]) if op.inputs else None
        fused = op.kind in _FUSED_INTO_CONV and src is not None and src.kind in _CONVS
        out.append((0,) if fused else ())
    return out


class _RetracingNotice:
    """Drops TensorFlow's "triggered tf.function retracing" advice: the simulator's segments
    each trace once per batch shape (a last, smaller batch), which is what the advice counts."""

    def filter(self, record) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def _quiet_retracing(tf) -> None:
    logger = tf.get_logger()
    if not any(isinstance(f, _RetracingNotice) for f in logger.filters):
        logger.addFilter(_RetracingNotice())


def _sig(consts, in_q, out_q) -> bytes:
    """What one op does in a quantized model: its constants and grids, hashed."""
    h = hashlib.blake2b(digest_size=16)
    for c in consts:
        h.update(b"-" if c is None else np.ascontiguousarray(c).tobytes() + repr(c.dtype).encode())
    for q in (*in_q, out_q):
        h.update(b"f" if q is None else repr([np.asarray(v).tolist() for v in q]).encode())
    return h.digest()
