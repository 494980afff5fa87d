"""Activation ranges chosen per tensor by quantization MSE or by percentile, instead of min/max.

Why: global min/max spends the int8 grid on a few extreme activations; on smooth photos every
feature map then rounds on a coarse step and the error shows as banding (issue 29: int8 loses
~1.1 dB on smooth photos where a16w8 keeps float quality, so it is the activations' grids).

How: the float TFLite runs on the calibration patches with all tensors preserved; every tensor
the min/max calibration gave a range gets a histogram over exactly that range (exact zeros kept
apart: ReLU outputs are mostly zero and zero is exact on an asymmetric grid). The chosen clip
range [lo, hi] then replaces the tensor's `min`/`max` in the calibration result ("qsv") that
AI Edge Quantizer's `quantize` turns into scale and zero point.

The grid is the one AEQ builds for our int8 activations (`_ACT["a8w8"]` in quantizer.py:
asymmetric, 256 levels, `uniform_quantize_tensor.tensor_zp_scale_from_min_max`: the range is
widened to contain 0, scale = (hi - lo) / 255, zero point = rint(-128 - lo / scale)).

Tensors AEQ ties together need no special care here: an op with SAME_AS_INPUT_SCALE (RESHAPE,
TRANSPOSE, ...) takes its input's grid whatever its own qsv says, and CONCATENATION inputs are
requantized to the output's grid. Two kinds of tensor keep their min/max: the model input (a
photo: clipping it loses edges for nothing) and, with `clip_output`, the model output's producer
gets [0, peak] intersected with its range, since the image is clipped to that range anyway.

MSE is measured where the error lands: a tensor read only by TANH or LOGISTIC is judged by the
error of tanh/sigmoid of its rounded values (`SATURATING`), so a pre-activation that min/max
spreads over [-10, 10] is clipped near the knee, where the saturated tail changes nothing the
next op sees and the linear part gets a grid several times finer (ESPCN x3 trained 200k steps:
per-layer min/max int8 loses 1.6-2.0 dB per tanh layer on the validation patches).
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping, Optional

import numpy as np

from deploy.errors import UserInputError

METHODS = ("minmax", "mse", "percentile")
#: histogram bins per tensor over its min/max range (16 or more per int8 step at full range)
BINS = 4096
#: fraction of the min/max range the MSE search may clip to, at most (from each side)
_GRID = np.linspace(0.04, 1.0, 49)
#: ops whose output reuses their input's grid in AEQ (common_quantize: SAME_AS_INPUT_SCALE)
SAME_AS_INPUT = frozenset({"RESHAPE", "TRANSPOSE", "SLICE", "STRIDED_SLICE", "PAD", "SPLIT",
                           "MAX_POOL_2D", "AVERAGE_POOL_2D", "RESIZE_BILINEAR",
                           "RESIZE_NEAREST_NEIGHBOR", "SPACE_TO_DEPTH", "GATHER", "GATHER_ND",
                           "BROADCAST_TO", "MIRROR_PAD", "UNPACK", "REDUCE_MIN"})


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


#: ops that only ever see their input through a saturating function: (f, f')
SATURATING = {"TANH": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
              "LOGISTIC": (_sigmoid, lambda x: _sigmoid(x) * (1.0 - _sigmoid(x)))}


class RangeError(UserInputError):
    """An activation-range option that cannot be applied."""


@dataclasses.dataclass
class Histogram:
    """Counts of one tensor's values over [lo, hi] in `BINS` bins, exact zeros apart."""
    lo: float
    hi: float
    counts: np.ndarray
    zeros: int = 0

    @classmethod
    def over(cls, lo: float, hi: float) -> "Histogram":
        return cls(float(lo), float(hi), np.zeros(BINS, np.int64))

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float64).ravel()
        nz = x[x != 0.0]
        self.zeros += x.size - nz.size
        if self.hi > self.lo and nz.size:
            idx = np.clip(((nz - self.lo) / (self.hi - self.lo) * BINS).astype(np.int64), 0, BINS - 1)
            self.counts += np.bincount(idx, minlength=BINS)

    @property
    def centers(self) -> np.ndarray:
        w = (self.hi - self.lo) / BINS
        return self.lo + (np.arange(BINS) + 0.5) * w


def grid_error(h: Histogram, lo: np.ndarray, hi: np.ndarray, num_bits: int = 8, through=None) -> np.ndarray:
    """Sum of squared quantization errors of the histogram's values for each candidate range
    (vectors `lo` <= 0 <= `hi`), on AEQ's asymmetric grid; `through` = (f, f'): the errors of
    f(value) instead (the tensor's only reader applies f)."""
    qmin, qmax = -(2 ** (num_bits - 1)), 2 ** (num_bits - 1) - 1
    lo = np.minimum(np.asarray(lo, np.float64), 0.0)[:, None]
    hi = np.maximum(np.asarray(hi, np.float64), 0.0)[:, None]
    scale = np.maximum(hi - lo, 1e-9) / (qmax - qmin)
    zp = np.rint(qmin - lo / scale)
    keep = h.counts > 0
    c, n = h.centers[keep][None, :], h.counts[keep][None, :].astype(np.float64)
    q = (np.clip(np.rint(c / scale) + zp, qmin, qmax) - zp) * scale
    width2 = ((h.hi - h.lo) / BINS) ** 2 / 12.0  # values spread inside a bin
    if through is not None:
        f, df = through
        return ((f(c) - f(q)) ** 2 * n).sum(axis=1) + width2 * (df(c) ** 2 * n).sum()
    return ((c - q) ** 2 * n).sum(axis=1) + width2 * n.sum()


def mse_range(h: Histogram, num_bits: int = 8, through=None) -> tuple[float, float]:
    """The clip range of least quantization MSE (of f(value) with `through`, see grid_error):
    a grid over shrink factors of each side, then a finer grid around the best pair."""
    lo0, hi0 = min(h.lo, 0.0), max(h.hi, 0.0)
    best = (lo0, hi0)
    for grid in (_GRID, None):
        if grid is None:  # refine around the coarse optimum
            fl = best[0] / lo0 if lo0 < 0 else 1.0
            fh = best[1] / hi0 if hi0 > 0 else 1.0
            step = _GRID[1] - _GRID[0]
            gl = np.clip(np.linspace(fl - step, fl + step, 9), 0.01, 1.0)
            gh = np.clip(np.linspace(fh - step, fh + step, 9), 0.01, 1.0)
        else:
            gl = gh = grid
        gl = gl if lo0 < 0 else np.ones(1)
        gh = gh if hi0 > 0 else np.ones(1)
        fl_, fh_ = np.meshgrid(gl, gh, indexing="ij")
        err = grid_error(h, lo0 * fl_.ravel(), hi0 * fh_.ravel(), num_bits, through)
        k = int(np.argmin(err))
        best = (lo0 * fl_.ravel()[k], hi0 * fh_.ravel()[k])
    return float(best[0]), float(best[1])


def percentile_range(h: Histogram, percentile: float) -> tuple[float, float]:
    """[p-th lowest, p-th highest] percentile of the values (zeros included): `percentile` is
    the share kept on each side, e.g. 99.99."""
    n = h.counts.sum() + h.zeros
    if n == 0:
        return h.lo, h.hi
    tail = (100.0 - percentile) / 100.0 * n
    edges = h.lo + np.arange(BINS + 1) * (h.hi - h.lo) / BINS
    # zeros sit in the bin holding 0
    counts = h.counts.astype(np.float64).copy()
    if h.zeros:
        counts[int(np.clip((0.0 - h.lo) / max(h.hi - h.lo, 1e-12) * BINS, 0, BINS - 1))] += h.zeros
    cum = np.cumsum(counts)
    lo = edges[int(np.searchsorted(cum, tail, side="right"))] if h.lo < 0 else h.lo
    hi = edges[int(np.searchsorted(cum, n - tail, side="left")) + 1] if h.hi > 0 else h.hi
    return float(min(lo, 0.0) if h.lo < 0 else h.lo), float(max(hi, 0.0) if h.hi > 0 else h.hi)


def collect(float_tflite: bytes, patches: np.ndarray, qsv: Mapping[str, dict]) -> dict[str, Histogram]:
    """Histograms of every calibrated tensor over its min/max range, from the float model run on
    the calibration patches with every tensor preserved."""
    interp = preserving_interpreter(float_tflite)
    by_name = {d["name"]: d["index"] for d in interp.get_tensor_details()}
    inp = interp.get_input_details()[0]["index"]
    hists = {n: Histogram.over(float(np.min(v["min"])), float(np.max(v["max"])))
             for n, v in qsv.items() if n in by_name and "min" in v}
    for p in patches:
        interp.set_tensor(inp, p[None].astype(np.float32))
        interp.invoke()
        for n, h in hists.items():
            h.add(interp.get_tensor(by_name[n]))
    return hists


def preserving_interpreter(tflite: bytes):
    """Builtin kernels with every intermediate tensor kept readable after `invoke`."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from models._keras import quiet_native_stderr
    interp = Interpreter(model_content=tflite, num_threads=2, experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    with quiet_native_stderr():
        interp.allocate_tensors()
    return interp


def tensor_producers(float_tflite: bytes) -> tuple[dict[str, tuple[str, list[str]]], list[str], list[str]]:
    """{output tensor name: (op name, input tensor names)}, the model's input and output names."""
    from deploy.convert.tflite_io import make_interpreter
    interp = make_interpreter(float_tflite, delegates=False)
    details = {d["index"]: d["name"] for d in interp.get_tensor_details()}
    prod = {}
    for op in interp._get_ops_details():  # noqa: SLF001 - LiteRT's only op listing
        for o in op["outputs"]:
            if o in details:
                prod[details[o]] = (op["op_name"], [details[i] for i in op["inputs"] if i in details])
    return (prod, [details[d["index"]] for d in interp.get_input_details()],
            [details[d["index"]] for d in interp.get_output_details()])


def grid_root(name: str, producers: Mapping[str, tuple[str, list[str]]]) -> str:
    """The tensor whose qsv AEQ uses for `name`'s grid (through SAME_AS_INPUT_SCALE ops)."""
    seen = set()
    while name in producers and producers[name][0] in SAME_AS_INPUT and producers[name][1] and name not in seen:
        seen.add(name)
        name = producers[name][1][0]
    return name


def choose_ranges(float_tflite: bytes, patches: np.ndarray, qsv: Mapping[str, dict], method: str, *,
                  percentile: float = 99.99, clip_output: Optional[float] = None,
                  hists: Optional[Mapping[str, Histogram]] = None,
                  only: Optional[Iterable[str]] = None) -> tuple[dict, dict]:
    """A new calibration result with each activation's range chosen by `method`; and a summary
    (tensors changed, mean kept share of the min/max width) for the report.

    `clip_output`: the model's value peak (1 or 255): the output's grid covers at most
    [0, peak]. Weights and constants keep their qsv (AEQ quantizes weights from their values);
    with `only`, so do activations not named in it (e.g. those on int16 grids).
    """
    if method not in METHODS:
        raise RangeError(f"act_ranges must be one of {', '.join(METHODS)}, not '{method}'")
    if not 50.0 < percentile < 100.0:
        raise RangeError(f"percentile must be in (50, 100), not {percentile}")
    producers, inputs, outputs = tensor_producers(float_tflite)
    readers: dict[str, set[str]] = {}
    for op, ins in producers.values():
        for t in ins:
            readers.setdefault(t, set()).add(op)
    out = {k: dict(v) for k, v in qsv.items()}
    changed, kept = 0, []
    if method != "minmax":
        keep = None if only is None else set(only)
        wanted = {k: v for k, v in qsv.items() if k in producers and k not in inputs  # activations only
                  and (keep is None or k in keep)}
        hists = hists if hists is not None else collect(float_tflite, patches, wanted)
        for name, h in hists.items():
            if name not in wanted or h.hi <= h.lo:
                continue
            ops = readers.get(name, set())
            through = SATURATING[next(iter(ops))] if len(ops) == 1 and next(iter(ops)) in SATURATING else None
            lo, hi = mse_range(h, through=through) if method == "mse" else percentile_range(h, percentile)
            out[name] = _with_range(out[name], lo, hi)
            changed += 1
            kept.append((hi - lo) / (max(h.hi, 0.0) - min(h.lo, 0.0)))
    clipped = []
    if clip_output is not None:
        for name in outputs:
            root = grid_root(name, producers)
            if root in out and "min" in out[root] and root not in inputs:
                lo, hi = float(np.min(out[root]["min"])), float(np.max(out[root]["max"]))
                out[root] = _with_range(out[root], max(lo, 0.0), min(hi, float(clip_output)))
                clipped.append(root)
    return out, {"method": method, **({"percentile": percentile} if method == "percentile" else {}),
                 "tensors_changed": changed,
                 "mean_range_kept": round(float(np.mean(kept)), 4) if kept else 1.0,
                 "output_clipped_to_peak": bool(clipped)}


def _with_range(entry: dict, lo: float, hi: float) -> dict:
    like = np.asarray(entry["min"])
    return {**entry, "min": np.full_like(like, lo, dtype=np.float32), "max": np.full_like(like, hi, dtype=np.float32)}


def activation_mse(values: Iterable[np.ndarray], lo: float, hi: float, num_bits: int = 8) -> float:
    """Exact mean squared error of quantizing `values` on AEQ's asymmetric grid for [lo, hi]."""
    x = np.concatenate([np.asarray(v, np.float64).ravel() for v in values])
    qmin, qmax = -(2 ** (num_bits - 1)), 2 ** (num_bits - 1) - 1
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(hi - lo, 1e-9) / (qmax - qmin)
    zp = np.rint(qmin - lo / scale)
    q = (np.clip(np.rint(x / scale) + zp, qmin, qmax) - zp) * scale
    return float(np.mean((x - q) ** 2))
