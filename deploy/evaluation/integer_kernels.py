"""LiteRT's int16x8 kernel arithmetic, vectorised in TensorFlow and bit-exact.

LiteRT runs int16-activation ops (a16w8) on single-threaded reference kernels: an EDSR-baseline
x2 evaluation on Urban100 takes hours. The arithmetic itself is simple integer maths, so it is
redone here on whole tensors, with the same roundings, from LiteRT's sources
(google-ai-edge/LiteRT `tflite/kernels/internal/common.{h,cc}` at 14906c95, gemmlowp's
`fixedpoint.h` for the double-rounding helpers, the kernels' Prepare functions for how scales
become multipliers). Where the x86 wheel's optimized kernels round differently from the
reference code, what LiteRT 2.3.0 actually computes was measured against its outputs (ADD's input
rescaling, RELU's float32 multiplier, QUANTIZE's float32 reciprocal and halves to even). Bit-exactness is not assumed:
tests/deploy/integer_interpreter_test.py compares every op's output with LiteRT's own on zoo
a16w8 models.

Convolutions run as float32 convolutions, which are exact here: the int16 input is split into
balanced base-256 digits (|digit| <= 128), so every product and every partial sum of a digit's
convolution is an integer below 2^24 while the reduction has fewer than 1024 terms
(`digit_bits` makes the digits smaller for longer reductions); the requantization runs in
float64 on integers below 2^53, the elementwise ops in int64.
"""
from __future__ import annotations

import math

import numpy as np

from deploy.errors import UserInputError

INT16 = (-32768, 32767)


class IntegerModelUnsupported(UserInputError):
    """The model has an op, tensor type or shape the integer interpreter does not implement."""


def tf():
    import tensorflow  # heavy: only when an integer model is run
    return tensorflow


def round_away(x: float) -> int:
    """std::round / TfLiteRound: halves away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(multiplier: float) -> tuple[int, int]:
    """QuantizeMultiplier: `multiplier` = q * 2^(shift - 31), q a 31-bit fixed-point fraction."""
    if multiplier == 0.0:
        return 0, 0
    frac, shift = math.frexp(multiplier)
    q = round_away(frac * (1 << 31))
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q, shift


def srdhm(a, b: int):
    """gemmlowp SaturatingRoundingDoublingHighMul on int64 tensors holding int32 values (b > 0,
    so the one saturating case, a == b == INT32_MIN, cannot occur)."""
    t = tf()
    ab = a * b
    nudge = t.where(ab >= 0, t.constant(1 << 30, t.int64), t.constant(1 - (1 << 30), t.int64))
    return t.truncatediv(ab + nudge, t.constant(1 << 31, t.int64))


def rounding_divide_by_pot(x, exponent: int):
    """gemmlowp RoundingDivideByPOT: x / 2^exponent, halves away from zero."""
    if exponent == 0:
        return x
    t = tf()
    mask = (1 << exponent) - 1
    remainder = t.bitwise.bitwise_and(x, t.constant(mask, t.int64))
    threshold = (mask >> 1) + t.cast(x < 0, t.int64)
    return t.bitwise.right_shift(x, t.constant(exponent, t.int64)) + t.cast(remainder > threshold, t.int64)


def single_rounding(x, multiplier: int, shift: int):
    """x * multiplier * 2^(shift - 31), rounded once (halves up): how LiteRT 2.3.0's x86 int16 ADD
    rescales its inputs (measured against its outputs; the tests hold it)."""
    t = tf()
    total = 31 - shift
    return t.bitwise.right_shift(x * multiplier + (1 << (total - 1)), t.constant(total, t.int64))


def multiply_by_quantized_multiplier(x, multiplier: int, shift: int):
    """MultiplyByQuantizedMultiplier(int32 x, ...) with gemmlowp's two roundings (LiteRT's pip
    builds leave TFLITE_SINGLE_ROUNDING off): how SUB / MUL / RELU requantize, and ADD its sum."""
    left, right = max(shift, 0), max(-shift, 0)
    return rounding_divide_by_pot(srdhm(x * (1 << left), multiplier), right)


def digit_bits(reduction: int) -> int:
    """Bits per balanced digit so a float32 convolution over `reduction` terms stays exact:
    reduction * 2^(bits-1) * 128 < 2^24 (int8 weights are at most 128 in size)."""
    for bits in range(8, 0, -1):
        if reduction * (1 << (bits - 1)) * 128 < 1 << 24:
            return bits
    raise IntegerModelUnsupported(f"a convolution summing {reduction} terms is too long for exact float32 digits")


class ExactConv:
    """An int16x8 CONV_2D: sum(x * filter) exactly, then requantized as the reference kernel does.

    The sum: float32 convolutions of x's balanced base-2^bits digits (|digit| <= 2^(bits-1)),
    each exact, recombined in float64 (|sum| < 2^53). The requantization, MultiplyByQuantizedMultiplier
    (int64 x, ...) per output channel (the same code in both rounding modes), in float64 too: every
    intermediate is an integer below 2^53, so (x * m + 2^(n-1)) >> n is floor((x * m + 2^(n-1)) / 2^n).
    The elementwise parts are XLA-compiled (one pass each instead of ten); the convolutions are
    TensorFlow's own (oneDNN), faster than XLA's."""

    def __init__(self, filt_hwio: np.ndarray, bias: np.ndarray | None, multipliers: np.ndarray, shifts: np.ndarray,
                 zero_point: int, act_range: tuple[int, int], strides, padding: str, dilations):
        t = tf()
        self.bits = digit_bits(int(np.prod(filt_hwio.shape[:3])))
        self.n_digits = -(-16 // self.bits)
        self.w = t.constant(filt_hwio.astype(np.float32))
        self.conv_args = dict(strides=strides, padding=padding, dilations=dilations)
        n_out = filt_hwio.shape[-1]
        m = multipliers.astype(np.int64)
        self.reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF).astype(np.float64)
        total = 15 - shifts.astype(np.int64)
        self.rounding, self.inv = np.ldexp(1.0, total - 1), np.ldexp(1.0, -total)
        self.bias = np.zeros(n_out) if bias is None else bias.astype(np.float64)
        self.zero_point, self.act_range = float(zero_point), (float(act_range[0]), float(act_range[1]))
        self._split = t.function(self._split_digits, jit_compile=True, autograph=False)
        self._finish = t.function(self._requantize, jit_compile=True, autograph=False)

    def _split_digits(self, x):
        t = tf()
        rest, base, digits = t.cast(x, t.float32), float(1 << self.bits), []  # int16 values: exact
        for _ in range(self.n_digits):
            high = t.round(rest / base)  # base is a power of two: exact
            digits.append(rest - high * base)
            rest = high
        return digits

    def _combine(self, parts):
        """The digits' convolutions recombined: the exact sum, in float64."""
        t = tf()
        acc, weight = None, 1.0
        for p in parts:
            term = t.cast(p, t.float64) * weight
            acc = term if acc is None else acc + term
            weight *= float(1 << self.bits)
        return acc

    def exact_sum(self, x):
        """sum(x * filter) without bias or requantization (what the tests hold to integer maths)."""
        t = tf()
        return self._combine([t.nn.conv2d(d, self.w, **self.conv_args) for d in self._split(x)])

    def _requantize(self, *parts):
        t = tf()
        acc = self._combine(parts) + self.bias
        y = t.floor((acc * self.reduced + self.rounding) * self.inv) + self.zero_point
        return t.cast(t.clip_by_value(y, *self.act_range), t.float32)  # int16 values, exact

    def __call__(self, x):
        t = tf()
        return self._finish(*[t.nn.conv2d(d, self.w, **self.conv_args) for d in self._split(x)])


#: sigmoid(i / 24) in 0.16 fixed point, LiteRT's int16 TANH / LOGISTIC table
#: (tflite/kernels/internal/common.h, `sigmoid_table_uint16`), copied value for value
SIGMOID_TABLE_UINT16 = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
], np.int64)


def checked_log2(x: float) -> tuple[bool, int]:
    """CheckedLog2: (is x a power of two within 1e-3 in log2, the rounded log2)."""
    log2 = math.log(x) * (1.0 / math.log(2.0))
    rounded = round_away(log2)
    return abs(log2 - rounded) < 1e-3, int(rounded)


def tanh_params(input_scale: float) -> tuple[int, int]:
    """TanhPrepare for int16: (input multiplier, input left shift) that bring the input to the
    table's 1/(3*4096) scale; a power-of-two scale takes the multiplier 3 << shift."""
    pot, log2 = checked_log2(input_scale)
    left = (15 - 3) + log2
    if pot and left in (0, 1):
        return 3 << left, 0
    multiplier, left = input_scale * 4096.0 * 3.0, 0
    while multiplier <= 32767.0 / 2.0 and left <= 30:
        left += 1
        multiplier *= 2.0
    return int(multiplier), left


def tanh_int16(x, multiplier: int, left_shift: int):
    """reference_integer_ops::Tanh: the table, linearly interpolated, tanh(x) = 2 sigmoid(2x) - 1."""
    t = tf()
    rounding = (1 << (left_shift - 1)) if left_shift > 0 else 0
    v = t.bitwise.right_shift(x * multiplier + rounding, t.constant(left_shift, t.int64))
    a = t.abs(v)
    high = t.bitwise.right_shift(a, t.constant(8, t.int64))
    index = t.minimum(high, 254)
    ua, ub = t.gather(SIGMOID_TABLE_UINT16, index), t.gather(SIGMOID_TABLE_UINT16, index + 1)
    frac = t.bitwise.bitwise_and(a, t.constant(0xFF, t.int64))
    table = t.where(high >= 255, t.constant(0xFFFF << 8, t.int64), ua * 256 + frac * (ub - ua))
    signed = t.where(v >= 0, table - (1 << 23) + (1 << 7), -table + (1 << 23) + (1 << 7) - 1)
    return t.bitwise.right_shift(signed, t.constant(8, t.int64))
