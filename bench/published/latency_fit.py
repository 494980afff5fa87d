"""Pure fitting of whole-model latencies to per-op work: features, model forms, NNLS, cross-validation.

The model of one phone, one runtime, one precision p (linear in its unknowns, so a non-negative
least-squares fit on relative errors is exact and has no starting point to tune):

    t = I + o_p * ops + sum over op groups k of work_k / R_{k,p}  [+ traffic / B_p + weights / W_p + io / D_p]

groups: "conv" (conv, transpose conv, fully connected: MACs), "depthwise" (MACs), "elementwise"
(every other op: output elements); work raw or with channels rounded up to the HTP's 32-channel
tiles (FORMS). Optional terms, each in or out of a form:
  - "traffic": every elementwise op's activation elements read + written (channels tiled to 32:
    deploy.latency.htp_tiling.traffic_elements) at a per-precision rate B_p: the memory time of
    large-spatial, few-channel tensors (SR outputs at 4x, pixel shuffles) that MACs do not see
    (convs' traffic is left out: it hides behind their MACs);
  - "weights": every conv / FC op's weight elements at a per-precision rate W_p: the DDR time of
    fetching weights (int8 for a8w8, fp16 for float), which weighs on wide classifiers
    (Wide-ResNet-50: 69M parameters) and no MAC count shows;
  - "io": the model's input + output elements at a rate D_p: the runtime's conversion and copy
    of the I/O buffers, which a 512x512x3 SR output or a 520x520 mask makes large.
I (per invoke) is shared by the precisions, or ("+invoke_per_precision" forms) one I_p per precision. Exactly the algebra of a device profile
(deploy.latency.cost_model.from_device_profile), so a fit is written as one. Rows are weighted by
1 / published ms (relative error). A coefficient the fit drives to 0 is NOT IDENTIFIED by the rows
(reported, and never written as an infinite rate).
"""
from __future__ import annotations

import itertools
import math
import statistics
from typing import Iterable, Sequence

import numpy as np
from scipy.optimize import nnls

GROUP = {"conv_1x1": "conv", "conv_kxk": "conv", "transpose_conv": "conv", "depthwise": "depthwise"}
GROUPS = ("conv", "depthwise", "elementwise")
#: model forms = how work is counted, each one a device profile can price (deploy/latency/htp_tiling.py):
#: convs raw, "dense" (dense convs / FC / transpose convs with input and output channels rounded up to
#: the HTP's 32-channel tiles, grouped and depthwise convs raw) or "all" (every conv tiled, grouped
#: ones per group); elementwise ops on raw or channel-tiled output elements.
OPTIONAL = ("traffic", "weights", "io")
_TERM = {"traffic": " + traffic / B_p", "weights": " + weights / W_p", "io": " + io / D_p"}
INVOKE_PP = "+invoke_per_precision"   # the suffix of a form with one start-up (per-invoke) cost per precision
FORMS = {f"convs_{c}+elementwise_{e}" + "".join(f"+{k}" for k, on in zip(OPTIONAL, opt) if on) + (INVOKE_PP if pp else ""): {
    "convs": c, "elementwise_tiled": e == "tiled", **dict(zip(OPTIONAL, opt)),
    **({"invoke": "per_precision"} if pp else {}),
    "form": (f"t = I{'_p' if pp else ''} + o_p ops + sum_k work_k / R_kp" + "".join(_TERM[k] for k, on in zip(OPTIONAL, opt) if on)
             + f"; convs {c}, elementwise {e}")}
    for opt in itertools.product((False, True), repeat=3) for c in ("none", "dense", "all") for e in ("raw", "tiled")
    for pp in (False, True)}


def op_work(o: Sequence, convs: str, elementwise_tiled: bool) -> float:
    """One graph_work op row [op, class, raw, tiled, traffic, out ch, in ch/group, groups, kernel] priced
    as a profile with this tiling prices it."""
    group = GROUP.get(o[1], "elementwise")
    if group == "elementwise":
        return o[3] if elementwise_tiled else o[2]
    if convs == "all" or (convs == "dense" and group == "conv" and o[7] <= 1):
        return o[3]
    return o[2]


def features(graph: dict, form: dict) -> dict:
    """Whole-graph features (work in G-units) of a graph_work entry under a form."""
    ops = graph["ops"]
    f = {"ops": len(ops) + 2}
    for g in GROUPS:
        f[g] = sum(op_work(o, form["convs"], form["elementwise_tiled"]) for o in ops
                   if GROUP.get(o[1], "elementwise") == g) / 1e9
    if form.get("traffic"):
        f["traffic"] = sum(o[4] for o in ops if GROUP.get(o[1], "elementwise") == "elementwise") / 1e9
    if form.get("io"):
        f["io"] = sum(graph["io"]) / 1e9
    if form.get("weights"):
        f["weights"] = sum(o[5] * o[6] * o[8] for o in ops) / 1e9   # out ch x in ch/group x kernel area
    return f


def groups_of(form: dict) -> tuple[str, ...]:
    """The rate groups of a form; "invoke" in them: one start-up cost per precision (not a rate)."""
    return GROUPS + tuple(g for g in OPTIONAL if form.get(g)) + (("invoke",) if form.get("invoke") == "per_precision" else ())


def columns(precisions: Sequence[str], groups: Sequence[str] = GROUPS) -> list[str]:
    per = "invoke" in groups
    cols = [] if per else ["invoke_ms"]
    for p in precisions:
        cols += ([f"invoke_ms:{p}"] if per else []) + [f"op_ms:{p}"] + [f"inv_rate:{g}:{p}" for g in groups if g != "invoke"]
    return cols


def design_row(f: dict, precision: str, cols: Sequence[str]) -> np.ndarray:
    """Row of the linear system: ms = row . x (x in ms per G-unit, ms per op, ms)."""
    row = np.zeros(len(cols))
    for j, c in enumerate(cols):
        kind, *rest = c.split(":")
        if kind == "invoke_ms" and not rest:
            row[j] = 1.0
        elif rest[-1] != precision:
            continue
        elif kind == "invoke_ms":
            row[j] = 1.0
        elif kind == "op_ms":
            row[j] = f["ops"]
        elif kind == "inv_rate":
            row[j] = f[rest[0]]
    return row


def fit(rows: Sequence[dict], feats: dict, precisions: Sequence[str], groups: Sequence[str] = GROUPS) -> dict:
    """NNLS on relative errors. rows: {"model", "precision", "ms"}; feats: {model: features}."""
    cols = columns(precisions, groups)
    a = np.array([design_row(feats[r["model"]], r["precision"], cols) / r["ms"] for r in rows])
    x, _ = nnls(a, np.ones(len(rows)), maxiter=50 * len(cols))
    used = np.abs(a).sum(axis=0) > 0
    return {"cols": cols, "x": x.tolist(),
            "not_identified": [c for c, v, u in zip(cols, x, used) if v <= 0 or not u]}


def predict(f: dict, precision: str, params: dict) -> float:
    return float(design_row(f, precision, params["cols"]) @ np.array(params["x"]))


def rel_errors(rows: Iterable[dict], feats: dict, params: dict) -> list[float]:
    return [(predict(feats[r["model"]], r["precision"], params) - r["ms"]) / r["ms"] for r in rows]


def leave_one_model_out(rows: Sequence[dict], feats: dict, precisions: Sequence[str],
                        groups: Sequence[str] = GROUPS) -> list[float]:
    """Relative error of every row predicted by a fit without its model (the form's honest score)."""
    errs = []
    for m in sorted({r["model"] for r in rows}):
        train = [r for r in rows if r["model"] != m]
        errs += rel_errors([r for r in rows if r["model"] == m], feats, fit(train, feats, precisions, groups))
    return errs


def summary(errs: Sequence[float]) -> dict:
    a = [abs(e) for e in errs]
    return {"n": len(errs), "median_abs": round(statistics.median(a), 4) if a else None,
            "max_abs_log": round(max(abs(math.log1p(e)) for e in errs), 4) if errs else None}


def rates(params: dict) -> dict:
    """{"invoke_us": us (shared I), precision: {"invoke_us" (I_p), "op_us", "rate": {group: G/s or None (not identified)}}}."""
    out: dict = {}
    for c, v in zip(params["cols"], params["x"]):
        kind, *rest = c.split(":")
        if kind == "invoke_ms" and not rest:
            out["invoke_us"] = v * 1e3
            continue
        p = out.setdefault(rest[-1], {"rate": {}})
        if kind == "op_ms":
            p["op_us"] = v * 1e3
        elif kind == "invoke_ms":
            p["invoke_us"] = v * 1e3
        elif kind == "inv_rate":
            p["rate"][rest[0]] = (1e3 / v) if v > 0 else None   # G-units/ms^-1 -> G/s
    return out
