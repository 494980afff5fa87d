"""How an int16-activation (a16w8) model's cost follows from the a8w8 and float fits (pure numpy/scipy).

AI Hub publishes no int16 TFLite row, only QNN-runtime w8a16 rows (for some of the fit networks).
So a phone's a16w8 parameters are DERIVED from its a8w8 and float ones by a rule with one number
theta, fitted on those QNN w8a16 rows (the same form fitted on the phone's QNN float + w8a8 rows,
then theta by least squares on log errors of the w8a16 rows, bounded so that no rule extrapolates
past int8: k >= 1, l >= 0), and assumed to carry over to LiteRT.
The rules (MODES), each a way the HTP could run int16 activations:

  compute_x_k   every compute rate (conv, depthwise, elementwise) = a8w8 / k; op overheads and
                weights as a8w8; model I/O and linear activation traffic at 2 bytes (a8w8 / 2);
                roofline memory as a8w8 with 2-byte activations (the rule up to this module)
  convs_x_k     only the MAC rates (convs, FC, depthwise) = a8w8 / k; elementwise ops, overheads
                and weights as a8w8; I/O and traffic at 2 bytes; roofline memory as a8w8
  toward_float  every parameter (rates, op overhead, I/O, traffic, memory) geometric between int8
                and fp16: x16 = x8^(1 - l) xf^l (l = 0: int8's cost, l = 1: float's), weights as a8w8
                (int8 weights)

Which rule: the one with the lowest leave-one-model-out median |relative error| over the w8a16
fit rows of every phone (each held-out network out of the QNN base fit AND of theta's fit): a rule on
fit rows only; no SR row is read. Works on both fit algebras (latency_fit: "cols", roofline_fit:
"names"): parameters named "<kind>:<group>:<precision>" / "op_ms:<p>" / "inv_mem:<p>|shared".
"""
from __future__ import annotations

import math
import statistics
from typing import Callable, Sequence

from scipy.optimize import minimize_scalar

MODES = ("compute_x_k", "convs_x_k", "toward_float")
BOUNDS = {"compute_x_k": (1.0, 10.0), "convs_x_k": (1.0, 10.0), "toward_float": (0.0, 3.0)}   # never past int8
MEMORY_GROUPS = ("io", "traffic")          # per-element memory terms: 2 bytes per int16 element
KEEP_GROUPS = ("weights",)                 # int8 weights: as a8w8
MAC_GROUPS = ("conv", "conv_1x1", "conv_kxk", "depthwise")


def derive(params: dict, mode: str, theta: float) -> dict:
    """{parameter name: value} of the fit `params` (a8w8 + float) with its a16w8 parameters added."""
    names = params.get("names") or params["cols"]
    x = dict(zip(names, params["x"]))
    out = dict(x)
    for n, v8 in x.items():
        if not n.endswith(":a8w8"):
            continue
        base = n[:-len("a8w8")]
        kind, group = n.split(":")[0], (n.split(":")[1] if n.count(":") == 2 else "")
        vf = x.get(base + "float", v8)
        if mode == "toward_float":
            v = v8 if group in KEEP_GROUPS else math.exp((1 - theta) * math.log(max(v8, 1e-300))
                                                         + theta * math.log(max(vf, 1e-300)))
        elif kind == "inv_rate" and group in MEMORY_GROUPS:
            v = 2.0 * v8
        elif kind == "inv_rate" and group not in KEEP_GROUPS and (mode == "compute_x_k" or group in MAC_GROUPS):
            v = theta * v8
        else:
            v = v8
        out[base + "a16w8"] = v
    return out


def fit_theta(mode: str, predict16: Callable[[dict], list[float]], ms: Sequence[float]) -> float:
    """theta minimizing the squared log errors of the w8a16 rows (predict16(derived) -> predicted ms)."""
    def cost(t: float) -> float:
        return sum(math.log(p / m) ** 2 for p, m in zip(predict16(t), ms))
    return float(minimize_scalar(cost, bounds=BOUNDS[mode], method="bounded", options={"xatol": 1e-6}).x)


def summary(errs: Sequence[float]) -> dict:
    a = [abs(e) for e in errs]
    return {"n": len(errs), "median_abs": round(statistics.median(a), 4) if a else None,
            "max_abs_log": round(max(abs(math.log1p(e)) for e in errs), 4) if errs else None}
