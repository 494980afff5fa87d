"""An a16w8 (int16x8) TFLite model run on all cores, bit-identical to LiteRT's interpreter.

Why: LiteRT's int16 kernels are single-threaded reference loops, so the standard benchmarks of
the big zoo models at a16w8 (EDSR-baseline on Urban100: hours per cell) were out of reach. This
interpreter reads the same flatbuffer and redoes each op's integer arithmetic on whole tensors
(`integer_kernels`), batched over tiles. It has the LiteRT Interpreter's call shape, so
`TFLiteRunner(..., interpreter_factory=IntegerInterpreter)` tiles, quantizes and stitches exactly
as it does for LiteRT; any batch size is accepted. It is never a silent substitute: a caller
asks for it by name and records that it did, and tests/test_integer_interpreter.py holds it to
LiteRT's output, op by op, on the zoo's a16w8 models.

Only what the converter's a16w8 models of the zoo contain is implemented (QUANTIZE from float
and between int16 grids, CONV_2D, ADD, SUB, MUL, RELU, LEAKY_RELU, CONCATENATION of one grid,
STRIDED_SLICE of each sample, RESHAPE, TRANSPOSE, DEQUANTIZE to float: every zoo model but ESPCN's
TANH); any other op or tensor type is refused with `IntegerModelUnsupported` before anything runs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from deploy.errors import UserInputError
from deploy.evaluation import integer_kernels as ik

_FLOAT32, _INT32, _INT64, _INT16, _INT8 = 0, 2, 4, 7, 9
_NP = {_FLOAT32: np.float32, _INT32: np.int32, _INT64: np.int64, _INT16: np.int16, _INT8: np.int8}
_ACT_NONE, _ACT_RELU, _ACT_RELU_N1_TO_1, _ACT_RELU6 = 0, 1, 2, 3


class IntegerModelUnsupported(UserInputError):
    """The model has an op or tensor type this interpreter does not implement."""


class _Tensor:
    def __init__(self, model, index: int):
        t = model.subgraphs[0].tensors[index]
        self.index, self.type = index, int(t.type)
        self.shape = [int(d) for d in (t.shape if t.shape is not None else [])]
        q = t.quantization
        has_q = q is not None and q.scale is not None and len(q.scale) > 0
        self.scales = np.asarray(q.scale, np.float32) if has_q else None
        self.zero_points = np.asarray(q.zeroPoint, np.int64) if has_q else None
        data = model.buffers[t.buffer].data if t.buffer < len(model.buffers) else None
        self.data = None
        if data is not None and len(data) > 0:
            if self.type not in _NP:
                raise IntegerModelUnsupported(f"constant tensor {index} has type code {self.type}")
            arr = np.frombuffer(bytes(bytearray(data)), dtype=_NP[self.type])
            self.data = arr.reshape(self.shape) if self.shape else arr.reshape(())

    @property
    def scale(self) -> float:
        if self.scales is None or self.scales.size != 1:
            raise IntegerModelUnsupported(f"tensor {self.index} is not per-tensor quantized")
        return float(self.scales[0])

    @property
    def zero_point(self) -> int:
        return int(self.zero_points[0])


def _act_range(act: int, out: _Tensor) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for an int16 output."""
    lo, hi = ik.INT16

    def q(v: float) -> int:
        return out.zero_point + ik.round_away(float(np.float32(v) / np.float32(out.scale)))
    if act == _ACT_RELU:
        return max(lo, q(0.0)), hi
    if act == _ACT_RELU6:
        return max(lo, q(0.0)), min(hi, q(6.0))
    if act == _ACT_RELU_N1_TO_1:
        return max(lo, q(-1.0)), min(hi, q(1.0))
    if act == _ACT_NONE:
        return lo, hi
    raise IntegerModelUnsupported(f"fused activation code {act}")


def _clamp(x, lo: int, hi: int):
    t = ik.tf()
    return t.clip_by_value(x, t.constant(lo, t.int64), t.constant(hi, t.int64))


def _int(v):
    """An activation as int64 (convolutions hand their int16 values on as exact float32)."""
    t = ik.tf()
    return v if v.dtype == t.int64 else t.cast(v, t.int64)


class IntegerInterpreter:
    """LiteRT Interpreter-shaped: get_input_details / get_output_details / allocate_tensors /
    resize_tensor_input / set_tensor / invoke / get_tensor. Tensors between ops are int64
    tensors holding int16 values."""

    #: takes a batch of any size in one call (TFLiteRunner then sends an image's tiles together)
    batched = True

    def __init__(self, model: bytes | str | Path, num_threads: int = 0):
        """`num_threads`: accepted for the factory's call shape; TensorFlow uses every core."""
        from litert_quantizer.utils import tfl_flatbuffer_utils as fb
        from ai_edge_litert import schema_py_generated as schema
        raw = Path(model).read_bytes() if not isinstance(model, (bytes, bytearray)) else bytes(model)
        m = fb.read_model(raw)
        if len(m.subgraphs) != 1:
            raise IntegerModelUnsupported("only single-subgraph models are supported")
        sg = m.subgraphs[0]
        names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        self._tensors = {i: _Tensor(m, i) for i in range(len(sg.tensors))}
        self.input, self.output = int(sg.inputs[0]), int(sg.outputs[0])
        self._ops: list[tuple[str, Callable, list[int], int]] = []
        self._host: set[int] = set()  # outputs of the ops run on the host (the input's QUANTIZE)
        for op in sg.operators:
            code = m.operatorCodes[op.opcodeIndex]
            kind = names.get(max(code.builtinCode, code.deprecatedBuiltinCode or 0), "?")
            opts = vars(op.builtinOptions) if op.builtinOptions is not None else {}
            ins = [int(i) for i in op.inputs]
            out = self._tensors[int(op.outputs[0])]
            make = _KERNELS.get(kind)
            if make is None:
                raise IntegerModelUnsupported(f"op {kind} is not implemented by the integer interpreter "
                                              f"(it runs {', '.join(sorted(_KERNELS))})")
            run = make([self._tensors[i] if i >= 0 else None for i in ins], out, opts)
            if kind == "QUANTIZE" and self._tensors[ins[0]].type == _FLOAT32:
                if ins[0] != self.input:
                    raise IntegerModelUnsupported("a QUANTIZE from float inside the graph (only the input's is run)")
                self._host.add(out.index)
            elif kind != "CONV_2D":  # elementwise: one fused XLA pass (a convolution jits its own parts)
                run = ik.tf().function(run, jit_compile=True, autograph=False)
            self._ops.append((kind, run, ins, out.index))
        self._values: dict[int, object] = {}
        self._batch = 1
        self._graph = ik.tf().function(self._run_graph, autograph=False, reduce_retracing=True)

    def _run_graph(self, feeds: dict):
        """The model output from the input's quantized values (QUANTIZE runs on the host, in
        NumPy float32: a graph's own optimizations must not change its roundings)."""
        values = dict(feeds)
        for kind, run, ins, out in self._ops:
            if out not in self._host:
                values[out] = run(*[values.get(i) if i >= 0 else None for i in ins])
        return values[self.output]

    def _host_feeds(self) -> dict:
        x = self._values[self.input]
        return {out: run(x) for _kind, run, _ins, out in self._ops if out in self._host} or {self.input: x}

    # -- the Interpreter call shape --------------------------------------------------------------
    def _details(self, index: int) -> dict:
        t = self._tensors[index]
        shape = np.array([self._batch, *t.shape[1:]], np.int32)
        quant = (t.scale, t.zero_point) if t.scales is not None else (0.0, 0)
        return {"index": index, "name": str(index), "shape": shape, "shape_signature": shape.copy(),
                "dtype": _NP[t.type], "quantization": quant}

    def get_input_details(self) -> list[dict]:
        return [self._details(self.input)]

    def get_output_details(self) -> list[dict]:
        return [self._details(self.output)]

    def allocate_tensors(self) -> None:
        pass

    def resize_tensor_input(self, index: int, shape) -> None:
        want = list(self._tensors[index].shape[1:])
        if list(shape)[1:] != want:
            raise IntegerModelUnsupported(f"the model's input is fixed at {want}, got {list(shape)[1:]}")
        self._batch = int(shape[0])

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        if index != self.input:
            raise IntegerModelUnsupported("only the model input can be set")
        if list(value.shape[1:]) != self._tensors[index].shape[1:]:
            raise IntegerModelUnsupported(f"the model's input is fixed at {self._tensors[index].shape[1:]}, "
                                          f"got {list(value.shape[1:])}")
        self._batch = int(value.shape[0])
        self._values = {index: np.asarray(value)}

    def invoke(self) -> None:
        self._values[self.output] = self._graph(self._host_feeds())

    def get_tensor(self, index: int) -> np.ndarray:
        v = self._values[index]
        return np.asarray(v).astype(_NP[self._tensors[index].type], copy=False)

    def op_outputs(self, x: np.ndarray) -> dict[int, np.ndarray]:
        """Every op's output for input `x` (tests compare them with LiteRT's, op by op)."""
        self.set_tensor(self.input, x)
        values = self._host_feeds()
        for kind, run, ins, out in self._ops:
            if out not in self._host:
                values[out] = run(*[values.get(i) if i >= 0 else None for i in ins])
        return {out: np.asarray(values[out]) for _k, _r, _i, out in self._ops}


# -- kernels: each `make(inputs, output, options)` checks types once and returns the op ----------
def _const_or(value, t: _Tensor):
    """An op input: its runtime value, else its constant (as int64 / float32)."""
    if value is not None:
        return _int(value)
    if t.data is None:
        raise IntegerModelUnsupported(f"tensor {t.index} has no value")
    return ik.tf().constant(t.data.astype(np.int64) if t.data.dtype.kind == "i" else t.data)


def _need(t: _Tensor, *types: int, what: str) -> None:
    if t.type not in types:
        raise IntegerModelUnsupported(f"{what}: tensor {t.index} has type code {t.type}, "
                                      f"the integer interpreter runs int16x8 models")


def _quantize(ins, out, opts):
    _need(ins[0], _FLOAT32, _INT16, what="QUANTIZE input")
    _need(out, _INT16, what="QUANTIZE output")
    if ins[0].type == _INT16:  # a requantization between int16 grids (Requantize)
        m = ik.quantize_multiplier(float(np.float64(ins[0].scale) / np.float64(out.scale)))
        zin = ins[0].zero_point

        def requantize(v):
            return _clamp(ik.multiply_by_quantized_multiplier(_int(v) - zin, *m) + out.zero_point, *ik.INT16)
        return requantize
    scale, zp = np.float32(out.scale), out.zero_point

    inverse = np.float32(1.0) / scale

    def run(x: np.ndarray) -> np.ndarray:  # on the host, in float32: x times 1/scale, halves to even
        return np.clip(np.rint(np.asarray(x, np.float32) * inverse).astype(np.int64) + zp, *ik.INT16)
    return run


def _dequantize(ins, out, opts):
    _need(ins[0], _INT16, what="DEQUANTIZE input")
    _need(out, _FLOAT32, what="DEQUANTIZE output")
    scale, zp = float(ins[0].scale), ins[0].zero_point

    def run(x):
        t = ik.tf()
        return t.cast(scale * (t.cast(x, t.float64) - zp), t.float32)
    return run


def _conv(ins, out, opts):
    x, w, b = ins[0], ins[1], ins[2] if len(ins) > 2 else None
    _need(x, _INT16, what="CONV_2D input")
    _need(w, _INT8, what="CONV_2D filter")
    _need(out, _INT16, what="CONV_2D output")
    filt = np.transpose(w.data, (1, 2, 3, 0))  # OHWI -> HWIO
    n_out = filt.shape[-1]
    wscales = np.broadcast_to(w.scales.astype(np.float64), (n_out,))
    pairs = [ik.quantize_multiplier(float(np.float64(x.scale) * s / np.float64(out.scale))) for s in wscales]
    mults, shifts = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    bias = None if b is None or b.data is None else b.data.astype(np.int64)
    strides = [1, opts.get("strideH", 1), opts.get("strideW", 1), 1]
    dil = [1, opts.get("dilationHFactor", 1), opts.get("dilationWFactor", 1), 1]
    padding = {0: "SAME", 1: "VALID"}[opts.get("padding", 0)]
    conv = ik.ExactConv(filt, bias, mults, shifts, out.zero_point,
                        _act_range(opts.get("fusedActivationFunction", 0), out), strides, padding, dil)

    def run(xv, _w=None, _b=None):
        return conv(xv)
    return run


def _add_sub(sign: int):
    """ADD / SUB with general int16 rescaling (left shift 15), as add.cc / sub.cc prepare it."""
    def make(ins, out, opts):
        a, b = ins[0], ins[1]
        for t_ in (a, b, out):
            _need(t_, _INT16, what="ADD/SUB")
        if opts.get("potScaleInt16", False):
            raise IntegerModelUnsupported("ADD/SUB with power-of-two int16 scales (pot_scale_int16)")
        left = 15
        twice_max = 2 * float(max(np.float32(a.scale), np.float32(b.scale)))
        m1 = ik.quantize_multiplier(float(a.scale) / twice_max)
        m2 = ik.quantize_multiplier(float(b.scale) / twice_max)
        mo = ik.quantize_multiplier(twice_max / ((1 << left) * float(out.scale)))
        lo, hi = _act_range(opts.get("fusedActivationFunction", 0), out)

        def run(va, vb):
            va, vb = _const_or(va, a), _const_or(vb, b)
            # measured on LiteRT 2.3.0's x86 wheel (tests hold it): ADD (optimized kernel) rescales
            # its inputs with one rounding; SUB (the reference loop) with gemmlowp's two
            f = ik.single_rounding if sign > 0 else ik.multiply_by_quantized_multiplier
            sa = f((va - a.zero_point) * (1 << left), *m1)
            sb = f((vb - b.zero_point) * (1 << left), *m2)
            raw = sa + sb if sign > 0 else sa - sb
            return _clamp(ik.multiply_by_quantized_multiplier(raw, *mo) + out.zero_point, lo, hi)
        return run
    return make


def _mul(ins, out, opts):
    a, b = ins[0], ins[1]
    for t_ in (a, b, out):
        _need(t_, _INT16, what="MUL")
    m = ik.quantize_multiplier(float(np.float32(a.scale) * np.float32(b.scale) / np.float32(out.scale)))
    lo, hi = _act_range(opts.get("fusedActivationFunction", 0), out)

    def run(va, vb):
        va, vb = _const_or(va, a), _const_or(vb, b)
        prod = (va - a.zero_point) * (vb - b.zero_point)
        return _clamp(ik.multiply_by_quantized_multiplier(prod, *m) + out.zero_point, lo, hi)
    return run


def _relu(ins, out, opts):
    x = ins[0]
    _need(x, _INT16, what="RELU")
    _need(out, _INT16, what="RELU")
    m = ik.quantize_multiplier(float(np.float32(x.scale) / np.float32(out.scale)))  # a float32 division
    lo, hi = _act_range(_ACT_RELU, out)

    def run(v):
        return _clamp(ik.multiply_by_quantized_multiplier(_int(v) - x.zero_point, *m) + out.zero_point, lo, hi)
    return run


def _leaky_relu(ins, out, opts):
    x = ins[0]
    _need(x, _INT16, what="LEAKY_RELU")
    _need(out, _INT16, what="LEAKY_RELU")
    alpha = np.float32(opts.get("alpha", 0.2))
    m_alpha = ik.quantize_multiplier(float(np.float32(x.scale) * alpha / np.float32(out.scale)))
    m_identity = ik.quantize_multiplier(float(np.float32(x.scale) / np.float32(out.scale)))

    def run(v):
        t = ik.tf()
        d = _int(v) - x.zero_point
        y = t.where(d >= 0, ik.multiply_by_quantized_multiplier(d, *m_identity),
                    ik.multiply_by_quantized_multiplier(d, *m_alpha))
        return _clamp(y + out.zero_point, *ik.INT16)
    return run


def _strided_slice(ins, out, opts):
    _same_grid(ins, out, "STRIDED_SLICE")
    begin, end, strides = (np.asarray(t.data).astype(np.int64).copy() for t in ins[1:4])
    if opts.get("ellipsisMask", 0) or opts.get("newAxisMask", 0) or opts.get("shrinkAxisMask", 0) & 1 \
            or opts.get("offset", False) or begin[0] != 0 or strides[0] != 1:
        raise IntegerModelUnsupported("STRIDED_SLICE other than a slice of each sample")
    masks = dict(begin_mask=opts.get("beginMask", 0) | 1, end_mask=opts.get("endMask", 0) | 1,
                 shrink_axis_mask=opts.get("shrinkAxisMask", 0))

    def run(v, _b=None, _e=None, _s=None):
        return ik.tf().strided_slice(v, begin, end, strides, **masks)
    return run


def _concat(ins, out, opts):
    for t_ in (*ins, out):
        _need(t_, _INT16, what="CONCATENATION")
        if t_.scale != out.scale or t_.zero_point != out.zero_point:
            raise IntegerModelUnsupported("CONCATENATION of int16 tensors on different grids")
    axis = opts.get("axis", -1)

    def run(*vs):
        return ik.tf().concat([_const_or(v, t_) for v, t_ in zip(vs, ins)], axis=axis)  # as int64
    return run


def _same_grid(ins, out, what: str) -> None:
    _need(ins[0], _INT16, what=what)
    if ins[0].scale != out.scale or ins[0].zero_point != out.zero_point:
        raise IntegerModelUnsupported(f"{what} that changes the int16 grid")


def _reshape(ins, out, opts):
    _same_grid(ins, out, "RESHAPE")

    def run(v, _shape=None):
        return ik.tf().reshape(v, [-1, *out.shape[1:]])
    return run


def _transpose(ins, out, opts):
    _same_grid(ins, out, "TRANSPOSE")
    perm = [int(p) for p in ins[1].data]
    if perm[0] != 0:
        raise IntegerModelUnsupported("TRANSPOSE that moves the batch axis")

    def run(v, _perm=None):
        return ik.tf().transpose(v, perm)
    return run


_KERNELS = {"QUANTIZE": _quantize, "DEQUANTIZE": _dequantize, "CONV_2D": _conv, "ADD": _add_sub(1),
            "SUB": _add_sub(-1), "MUL": _mul, "RELU": _relu, "CONCATENATION": _concat,
            "RESHAPE": _reshape, "TRANSPOSE": _transpose, "LEAKY_RELU": _leaky_relu,
            "STRIDED_SLICE": _strided_slice}
