"""The integer interpreter's ops: for each TFLite op of an a16w8 model, `make(inputs, output,
options)` checks the tensor types once and returns the op as a function of its input values
(int64 / exact-float32 tensors holding int16 values), with LiteRT's arithmetic (integer_kernels).

Why apart from the interpreter: the interpreter reads the graph and has the LiteRT Interpreter's
call shape; this module is what each op computes, op by op, as the tests compare them.
"""
from __future__ import annotations

import numpy as np

from deploy.evaluation import integer_kernels as ik
from deploy.evaluation.integer_kernels import IntegerModelUnsupported

FLOAT32, _INT32, _INT64, _INT16, _INT8 = 0, 2, 4, 7, 9
NP_DTYPES = {FLOAT32: np.float32, _INT32: np.int32, _INT64: np.int64, _INT16: np.int16, _INT8: np.int8}
_ACT_NONE, _ACT_RELU, _ACT_RELU_N1_TO_1, _ACT_RELU6 = 0, 1, 2, 3


def _act_range(act: int, out) -> tuple[int, int]:
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


# -- kernels: each `make(inputs, output, options)` checks types once and returns the op ----------
def _const_or(value, t):
    """An op input: its runtime value, else its constant (as int64 / float32)."""
    if value is not None:
        return _int(value)
    if t.data is None:
        raise IntegerModelUnsupported(f"tensor {t.index} has no value")
    return ik.tf().constant(t.data.astype(np.int64) if t.data.dtype.kind == "i" else t.data)


def _need(t, *types: int, what: str) -> None:
    if t.type not in types:
        raise IntegerModelUnsupported(f"{what}: tensor {t.index} has type code {t.type}, "
                                      f"the integer interpreter runs int16x8 models")


def _quantize(ins, out, opts):
    _need(ins[0], FLOAT32, _INT16, what="QUANTIZE input")
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
    _need(out, FLOAT32, what="DEQUANTIZE output")
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


def _tanh(ins, out, opts):
    x = ins[0]
    _need(x, _INT16, what="TANH")
    _need(out, _INT16, what="TANH")
    if x.zero_point or out.zero_point or out.scale != 2.0 ** -15:
        raise IntegerModelUnsupported("TANH other than LiteRT's int16 one (zero points 0, output scale 2^-15)")
    multiplier, left = ik.tanh_params(float(x.scale))

    def run(v):
        return ik.tanh_int16(_int(v), multiplier, left)
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


KERNELS = {"QUANTIZE": _quantize, "DEQUANTIZE": _dequantize, "CONV_2D": _conv, "ADD": _add_sub(1),
            "SUB": _add_sub(-1), "MUL": _mul, "RELU": _relu, "CONCATENATION": _concat,
            "RESHAPE": _reshape, "TRANSPOSE": _transpose, "LEAKY_RELU": _leaky_relu,
            "STRIDED_SLICE": _strided_slice, "TANH": _tanh}

