"""Roofline forms of the published-latency fit: per op, compute and memory overlap (pure numpy/scipy).

The linear forms (latency_fit.py) SUM an op's compute time and its memory time. On an NPU the
DMA of an op's tiles overlaps its compute, so an op costs about the larger of the two plus a
fixed dispatch cost (a roofline). Per phone, precision p (float, a8w8), op j:

    t = I + o_p * ops + sum_j  comb( work_j / R_{g(j),p},  bytes_j / B_p )  [+ io / D_p]

    comb(c, m) = (c^k + m^k)^(1/k):  k = 1 the sum (the linear form with every op's traffic),
                                     k = 2 a smooth roofline, k = inf the hard max(c, m)
    work_j   MACs (convs, tiled as the form says) or output elements (tiled or raw), as latency_fit
    bytes_j  activation elements the op reads + writes, channels tiled to 32 (graph_work column 4)
             x bytes per activation element (float: 2, fp16 on the HTP; a8w8: 1; a16w8: 2)
             [+ its weight elements x bytes per weight (float 2, int8 1) with "weights_in_max"]
    "weights_separate": + weight elements / W_p summed outside the max (the linear forms' term)
    "invoke_per_precision": I_p, a start-up (per-invoke) cost per precision instead of one I shared
             by the precisions (a float graph's fp16 set-up, an int8 graph's; a16w8 as a8w8 by every
             int16 rule but toward_float)
    B_p      one memory rate in GB/s shared by the precisions ("shared") or one per precision

Groups g: conv / depthwise / elementwise, or with "split" conv_1x1 (and FC, transpose conv) apart
from conv_kxk (FC and transpose convs, U-Net's 2x2 stride-2 ones: one matmul per pixel, with 1x1).
Fitted by scipy.optimize.least_squares on log(predicted / published) (or, "+rel", on
predicted / published - 1: the linear forms' NNLS objective) with every parameter positive through its logarithm, deterministic starts: the NNLS solution of the k = 1
form (exact: the sum is linear), and that solution with the memory rate set to 30, 100, 300, 1000 GB/s;
the lowest cost wins.
A parameter that ends on its lower bound (a cost of ~0) is NOT IDENTIFIED (reported).
The same algebra as a device profile with a "roofline" block (deploy/latency/op_pricing.py).
Only the io forms are candidates (every one of the best linear forms by the same CV has io).
"""
from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np
from scipy.optimize import least_squares, nnls

from bench.published.latency_fit import GROUP, op_work
from deploy.latency.htp_fusion import KINDS

ACT_BYTES = {"float": 2.0, "a8w8": 1.0, "a16w8": 2.0}
#: bytes per model input / output element in AI Hub's published models: float32 I/O for float, and for
#: quantized ones "--quantize_io" (+ "--quantize_io_type uint8" on TFLite): uint8 (w8a8), uint16 (w8a16)
#: (qai-hub-models 0.65.0 wheel, qai_hub_models/utils/qai_hub_helpers.py, get_hub_compile_options)
IO_BYTES = {"float": 4.0, "a8w8": 1.0, "a16w8": 2.0}
WEIGHT_BYTES = {"float": 2.0, "a8w8": 1.0, "a16w8": 1.0}
SPLIT_GROUP = {"conv_1x1": "conv_1x1", "conv_kxk": "conv_kxk", "transpose_conv": "conv_1x1", "depthwise": "depthwise"}
LOG_LO, LOG_HI = math.log(1e-7), math.log(1e4)     # bounds of every log-parameter (ms, ms per G-unit)


def _form_text(f: dict) -> str:
    comb = {1: "c + m", 2: "sqrt(c^2 + m^2)", math.inf: "max(c, m)"}[f["k"]]
    return (f"t = I{'_p' if f.get('invoke') == 'per_precision' else ''} + o_p ops + sum_op {comb}{' + weights / W_p' if f['weights'] == 'separate' else ''}"
            f"{(' + io bytes / D' if f['io'] == 'bytes' else ' + io / D_p') if f['io'] else ''}; c = work / R_gp, m = (activation"
            f"{' + weight' if f['weights'] == 'in_max' else ''} bytes) / B_{'shared' if f['memory'] == 'shared' else 'p'}; "
            f"convs {f['convs']}, elementwise {'tiled' if f['elementwise_tiled'] else 'raw'}"
            f"{', conv 1x1 and kxk apart' if f['split'] else ''}"
            f"{'; folded by the compiler (no cost): ' + f['fuse'] if f.get('fuse') else ''}; fitted on "
            f"{'relative' if f.get('objective') == 'rel' else 'log'} errors")


#: the suffix of a form with one start-up cost per precision (I_p)
INVOKE_PP = "+invoke_per_precision"

#: the candidates: every combination, with the io term always in (every one of the best linear forms by the
#: same CV on the fit rows has it: the runtime's I/O conversion of a 520x520 mask or a 512x512 SR output)
FORMS = {}
for _k, _c, _e, _w, _io, _mem, _split, _obj in itertools.product(
        (2, math.inf), ("none", "dense"), (False, True), ("none", "in_max", "separate"), (True,),
        ("shared", "per_precision"), (False, True), ("log", "rel")):
    _f = {"k": _k, "convs": _c, "elementwise_tiled": _e, "weights": _w, "io": _io, "memory": _mem, "split": _split,
          "objective": _obj}
    _name = (f"roofline_{'max' if _k == math.inf else 'k2'}+convs_{_c}+elementwise_{'tiled' if _e else 'raw'}"
             f"{'+weights_' + _w if _w != 'none' else ''}{'+io' if _io else ''}{'+mem_' + _mem}{'+split' if _split else ''}"
             f"{'+rel' if _obj == 'rel' else ''}")
    FORMS[_name] = {**_f, "form": _form_text(_f)}
    _f = {**_f, "invoke": "per_precision"}
    FORMS[_name + INVOKE_PP] = {**_f, "form": _form_text(_f)}


#: the NPU compiler's folds a form may assume (deploy/latency/htp_fusion.py): conv activations ("act"), and
#: tile-aligned channel concatenations too ("act+concat"); a fused op has no work, traffic or overhead of its own
FUSE = ("act", "act+concat")


def fuse_variant(name: str, fuse: str) -> tuple[str, dict]:
    """The form `name` with the fused ops `fuse` (FUSE) priced at nothing: (its name, the form)."""
    f = {k: v for k, v in FORMS[name].items() if k != "form"}
    f["fuse"] = fuse
    return f"{name}+fuse_{fuse.replace('+', '_')}", {**f, "form": _form_text(f)}


#: every base form with each fold (FUSE): the fit's CV scores those of its best base forms (fit_published_profiles)
FUSED = dict(fuse_variant(_n, _fu) for _n in list(FORMS) for _fu in FUSE)


def io_bytes_variant(name: str) -> tuple[str, dict]:
    """The form `name` with ONE model-I/O rate D in GB/s shared by the precisions, each pricing its I/O
    elements at IO_BYTES (float32 / uint8 / uint16), instead of one free rate per precision."""
    f = {k: v for k, v in {**FORMS, **FUSED}[name].items() if k != "form"}
    f["io"] = "bytes"
    return f"{name}+io_bytes", {**f, "form": _form_text(f)}


#: every base or folded form with a shared I/O byte rate: the CV scores those of its best forms
IO_BYTES_FORMS = dict(io_bytes_variant(_n) for _n in [*FORMS, *FUSED])
ALL_FORMS = {**FORMS, **FUSED, **IO_BYTES_FORMS}


def fused_kinds(form: dict) -> tuple[str, ...]:
    return tuple(form["fuse"].split("+")) if form.get("fuse") else ()


def groups(form: dict) -> tuple[str, ...]:
    return ("conv_1x1", "conv_kxk", "depthwise", "elementwise") if form["split"] else ("conv", "depthwise", "elementwise")


def op_arrays(graph: dict, form: dict) -> dict:
    """Per-op arrays of one graph_work entry under a form: group index, work (G), activation and weight
    elements (G), and the graph's op count and I/O elements (G)."""
    gs = groups(form)
    kinds = fused_kinds(form)
    ops = [o for o in graph["ops"] if not (len(o) > 9 and o[9] and KINDS[o[9] - 1] in kinds)]   # folded away
    grp = [(SPLIT_GROUP if form["split"] else GROUP).get(o[1], "elementwise") for o in ops]
    return {"g": np.array([gs.index(g) for g in grp], dtype=int),
            "work": np.array([op_work(o, form["convs"], form["elementwise_tiled"]) for o in ops], float) / 1e9,
            "act": np.array([o[4] for o in ops], float) / 1e9,
            "wts": np.array([o[5] * o[6] * o[8] for o in ops], float) / 1e9,
            "ops": len(ops) + 2, "io": sum(graph["io"]) / 1e9}


class Layout:
    """Names and positions of the log-parameters of a form fitted on some precisions."""

    def __init__(self, form: dict, precisions: Sequence[str]):
        self.form, self.precisions, self.groups = form, tuple(precisions), groups(form)
        per = form.get("invoke") == "per_precision"
        names = [] if per else ["invoke_ms"]
        for p in self.precisions:
            names += ([f"invoke_ms:{p}"] if per else []) + [f"op_ms:{p}"] + [f"inv_rate:{g}:{p}" for g in self.groups]
            if form["memory"] != "shared":
                names.append(f"inv_mem:{p}")
            if form["weights"] == "separate":
                names.append(f"inv_rate:weights:{p}")
            if form["io"] and form["io"] != "bytes":
                names.append(f"inv_rate:io:{p}")
        if form["memory"] == "shared":
            names.append("inv_mem:shared")
        if form["io"] == "bytes":
            names.append("inv_rate:io:shared")
        self.names = names
        self.at = {n: i for i, n in enumerate(names)}

    def invoke(self, p: str) -> int:
        return self.at.get(f"invoke_ms:{p}", 0)

    def io(self, p: str) -> tuple[int, float]:
        """(index of the I/O parameter, I/O bytes per element factor) of precision p (io forms only)."""
        if self.form["io"] == "bytes":
            return self.at["inv_rate:io:shared"], IO_BYTES[p]
        return self.at[f"inv_rate:io:{p}"], 1.0

    def mem(self, p: str) -> int:
        return self.at["inv_mem:shared" if self.form["memory"] == "shared" else f"inv_mem:{p}"]


def combine(c: np.ndarray, m: np.ndarray, k: float) -> np.ndarray:
    if k == math.inf:
        return np.maximum(c, m)
    if k == 1:
        return c + m
    hi = np.maximum(np.maximum(c, m), 1e-300)
    return hi * ((c / hi) ** k + (m / hi) ** k) ** (1.0 / k)


def row_ms(a: dict, precision: str, x: np.ndarray, lay: Layout, k: float | None = None) -> float:
    """Predicted ms of one graph (op_arrays) at one precision with parameters x (not logs)."""
    k = lay.form["k"] if k is None else k
    p = precision
    inv = np.array([x[lay.at[f"inv_rate:{g}:{p}"]] for g in lay.groups])
    c = a["work"] * inv[a["g"]]
    byts = a["act"] * ACT_BYTES[p] + (a["wts"] * WEIGHT_BYTES[p] if lay.form["weights"] == "in_max" else 0.0)
    t = x[lay.invoke(p)] + x[lay.at[f"op_ms:{p}"]] * a["ops"] + float(combine(c, byts * x[lay.mem(p)], k).sum())
    if lay.form["weights"] == "separate":
        t += a["wts"].sum() * x[lay.at[f"inv_rate:weights:{p}"]]
    if lay.form["io"]:
        i, b = lay.io(p)
        t += a["io"] * b * x[i]
    return float(t)


class _Stack:
    """Every op of every row in flat arrays, so one evaluation of all rows is a few numpy calls
    (the same algebra as row_ms, which predict uses)."""

    def __init__(self, rows, arrays, lay: Layout):
        self.lay, self.ms = lay, np.array([r["ms"] for r in rows])
        self.k = lay.form["k"]
        row, gi, work, byts, fixed_i, wts_i, io_i, ops, io, wsum = [], [], [], [], [], [], [], [], [], []
        for i, r in enumerate(rows):
            a, p = arrays[r["model"]], r["precision"]
            n = len(a["g"])
            row.append(np.full(n, i))
            gi.append(np.array([lay.at[f"inv_rate:{g}:{p}"] for g in lay.groups])[a["g"]])
            work.append(a["work"])
            byts.append(a["act"] * ACT_BYTES[p] + (a["wts"] * WEIGHT_BYTES[p] if lay.form["weights"] == "in_max" else 0.0))
            fixed_i.append((lay.at[f"op_ms:{p}"], lay.mem(p), lay.invoke(p)))
            wts_i.append(lay.at.get(f"inv_rate:weights:{p}", 0))
            io_at, io_b = lay.io(p) if lay.form["io"] else (0, 0.0)
            io_i.append(io_at)
            ops.append(a["ops"]), io.append(a["io"] * io_b), wsum.append(a["wts"].sum())
        self.row, self.gi = np.concatenate(row), np.concatenate(gi)
        self.work, self.byts = np.concatenate(work), np.concatenate(byts)
        self.op_i, self.mem_i = np.array([f[0] for f in fixed_i]), np.array([f[1] for f in fixed_i])
        self.inv_i = np.array([f[2] for f in fixed_i])
        self.mem_op = self.mem_i[self.row]
        self.wts_i, self.io_i = np.array(wts_i), np.array(io_i)
        self.ops, self.io, self.wsum = np.array(ops, float), np.array(io), np.array(wsum)

    def ms_of(self, x: np.ndarray) -> np.ndarray:
        per_op = combine(self.work * x[self.gi], self.byts * x[self.mem_op], self.k)
        t = x[self.inv_i] + x[self.op_i] * self.ops + np.bincount(self.row, per_op, minlength=len(self.ms))
        if self.lay.form["weights"] == "separate":
            t = t + self.wsum * x[self.wts_i]
        if self.lay.form["io"]:
            t = t + self.io * x[self.io_i]
        return t

    def jacobian(self, z: np.ndarray) -> np.ndarray:
        """d r_i / d z_q = x_q dt_i/dx_q / t_i ("log"; "rel": / ms_i) (analytic; at a tie of the hard max,
        compute's side)."""
        x = np.exp(z)
        n, q = len(self.ms), len(x)
        c, m = self.work * x[self.gi], self.byts * x[self.mem_op]
        if self.k == math.inf:
            wc = (c >= m).astype(float)
            wm = 1.0 - wc
        else:
            t = np.maximum(combine(c, m, self.k), 1e-300)
            wc, wm = (c / t) ** (self.k - 1), (m / t) ** (self.k - 1)
        jac = np.bincount(self.row * q + self.gi, wc * c, minlength=n * q)
        jac += np.bincount(self.row * q + self.mem_op, wm * m, minlength=n * q)
        jac = jac.reshape(n, q)
        rows = np.arange(n)
        jac[rows, self.inv_i] += x[self.inv_i]
        jac[rows, self.op_i] += x[self.op_i] * self.ops
        if self.lay.form["weights"] == "separate":
            jac[rows, self.wts_i] += self.wsum * x[self.wts_i]
        if self.lay.form["io"]:
            jac[rows, self.io_i] += self.io * x[self.io_i]
        return jac / (self.ms_of(x) if self.lay.form.get("objective", "log") == "log" else self.ms)[:, None]

    def residuals(self, z: np.ndarray) -> np.ndarray:
        """log(predicted / published) ("log" objective) or predicted / published - 1 ("rel": the linear fit's)."""
        t = self.ms_of(np.exp(z))
        return np.log(t / self.ms) if self.lay.form.get("objective", "log") == "log" else t / self.ms - 1.0


def _nnls_start(rows, arrays, lay: Layout) -> np.ndarray:
    """The k = 1 (sum) form is linear in the parameters: its NNLS solution on relative errors."""
    a = np.zeros((len(rows), len(lay.names)))
    for i, r in enumerate(rows):
        ar, p = arrays[r["model"]], r["precision"]
        a[i, lay.invoke(p)] = 1.0
        a[i, lay.at[f"op_ms:{p}"]] = ar["ops"]
        for gi, g in enumerate(lay.groups):
            a[i, lay.at[f"inv_rate:{g}:{p}"]] = ar["work"][ar["g"] == gi].sum()
        a[i, lay.mem(p)] = (ar["act"] * ACT_BYTES[p] + (ar["wts"] * WEIGHT_BYTES[p] if lay.form["weights"] == "in_max" else 0)).sum()
        if lay.form["weights"] == "separate":
            a[i, lay.at[f"inv_rate:weights:{p}"]] = ar["wts"].sum()
        if lay.form["io"]:
            j, b = lay.io(p)
            a[i, j] += ar["io"] * b
        a[i] /= r["ms"]
    x, _ = nnls(a, np.ones(len(rows)), maxiter=50 * len(lay.names))
    return x


def fit(rows: Sequence[dict], arrays: dict, form: dict, precisions: Sequence[str]) -> dict:
    """Least squares on the form's objective (log or relative errors) over log-parameters, from deterministic starts."""
    lay = Layout(form, precisions)
    used = {r["precision"] for r in rows}
    x0 = _nnls_start(rows, arrays, lay)
    ms = np.array([r["ms"] for r in rows])
    stack = _Stack(rows, arrays, lay)
    floor = np.exp(LOG_LO + 2.0)
    base = np.log(np.clip(x0, floor, np.exp(LOG_HI - 1.0)))
    mem = [i for n, i in lay.at.items() if n.startswith("inv_mem")]
    starts = [base]
    for gbps in (30.0, 100.0, 300.0, 1000.0):   # and the memory rate set to DDR-to-VTCM-like values
        s = base.copy()
        s[mem] = math.log(1e3 / gbps)
        starts.append(s)
    best = None
    for s in starts:
        r = least_squares(stack.residuals, s, jac=stack.jacobian, bounds=(LOG_LO, LOG_HI), method="trf",
                          x_scale=1.0, max_nfev=400)
        if best is None or r.cost < best.cost - 1e-12:
            best = r
    x = np.exp(best.x)
    ni = [n for n, v in zip(lay.names, best.x) if v <= LOG_LO + 3.0
          or (n.split(":")[-1] not in used and n.split(":")[-1] != "shared" and n != "invoke_ms")]
    return {"names": lay.names, "x": x.tolist(), "form": form, "precisions": list(precisions), "not_identified": ni,
            "cost": float(best.cost)}


def predict(a: dict, precision: str, params: dict) -> float:
    return row_ms(a, precision, np.array(params["x"]), Layout(params["form"], params["precisions"]))


def rel_errors(rows, arrays, params) -> list[float]:
    return [(predict(arrays[r["model"]], r["precision"], params) - r["ms"]) / r["ms"] for r in rows]


def leave_one_model_out(rows: Sequence[dict], arrays: dict, form: dict, precisions: Sequence[str]) -> list[float]:
    errs = []
    for m in sorted({r["model"] for r in rows}):
        params = fit([r for r in rows if r["model"] != m], arrays, form, precisions)
        errs += rel_errors([r for r in rows if r["model"] == m], arrays, params)
    return errs


def rates(params: dict) -> dict:
    """{"invoke_us" (shared I), precision: {"invoke_us" (I_p), "op_us", "rate": {group: G/s or None}, "mem_GBps": GB/s or None, "io": Gelem/s}}."""
    out: dict = {}
    ni = set(params["not_identified"])
    for n, v in zip(params["names"], params["x"]):
        kind, *rest = n.split(":")
        if kind == "invoke_ms" and not rest:
            out["invoke_us"] = v * 1e3
            continue
        if kind == "inv_mem":
            for p in (params["precisions"] if rest[0] == "shared" else rest):
                out.setdefault(p, {"rate": {}})["mem_GBps"] = None if n in ni else 1e3 / v
            continue
        if n == "inv_rate:io:shared":       # one byte rate: each precision's element rate at its I/O bytes
            for p in params["precisions"]:
                out.setdefault(p, {"rate": {}})["rate"]["io"] = None if n in ni else 1e3 / (v * IO_BYTES[p])
            continue
        p = out.setdefault(rest[-1], {"rate": {}})
        if kind == "op_ms":
            p["op_us"] = v * 1e3
        elif kind == "invoke_ms":
            p["invoke_us"] = v * 1e3
        else:
            p["rate"][rest[0]] = None if n in ni else 1e3 / v
    return out


#: Every form in FORMS is a candidate of bench/fit_published_profiles.py's CV (since the 31-network fit set; before,
#: 16 forms screened by the same CV on 24 networks were: the git history of this file has them).
