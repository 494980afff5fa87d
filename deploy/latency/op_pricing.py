"""One op's price under a device profile (compute, memory traffic, how the two combine) and the
model I/O's price per layer.

Why a module of its own: every path that prices ops from a profile (the Keras graph's cost table,
`cost_model.from_device_profile`; a finished .tflite, `predict.predict_tflite`) must use exactly
the same algebra as the fit that wrote the profile (bench/published/latency_fit.py,
bench/published/roofline_fit.py).

Two algebras, chosen by the profile:
  - linear (no "roofline" key): work / rate + op overhead, + an elementwise op's activation
    traffic at `activation_traffic`, + a conv's weights at `weight_traffic` (each term summed);
  - roofline ({"roofline": {...}}): on an NPU an op's DMA overlaps its compute, so
        t_op = comb(work / rate, bytes / B_p) + op overhead  [+ weights at weight_traffic, summed]
    bytes = the activation elements the op reads + writes (channels tiled: htp_tiling.
    traffic_elements) x `activation_bytes`[p] (+ its weight elements x `weight_bytes`[p] when the
    block has them), B_p = `memory_GBps`[p] (null: no memory term), comb = max(c, m)
    (`"combine": "max"`) or sqrt(c^2 + m^2) (`"combine": "k2"`, a smooth roofline), for every op,
    convs included.
Model I/O (`io_traffic`): the input and output elements at the precision of the layer reading /
writing them (`io_layers`), once per model.
Start-up (`invoke_overhead_us`), once per invoke: one value ("a8w8" only) whatever the precisions, or
one per precision (the fit's "+invoke_per_precision" forms). A mixed-precision graph then pays the
mean of its precisions' start-up costs weighted by their shares of its ops (`invoke_ms`): a uniform
graph, all the fit ever saw, pays exactly its precision's; and the cost stays linear in each layer's
precision (`invoke_per_op`: each op carries 1/n of it), so the search's MILP prices a hybrid exactly.
(The alternative, the widest precision present, is a max over layers: not linear, and no published
hybrid row tells the two apart.)
"""
from __future__ import annotations

import math
from typing import Any, Mapping

__all__ = ["COMBINE", "combine", "op_ms", "invoke_ms", "invoke_per_op", "check_roofline", "io_layers"]

#: the "combine" values a profile's roofline block may take, and their exponent k in (c^k + m^k)^(1/k)
COMBINE = {"max": math.inf, "k2": 2.0}


def combine(c: float, m: float, k: float) -> float:
    """(c^k + m^k)^(1/k) for c, m >= 0: k = inf the max, k = 1 the sum."""
    if k == math.inf:
        return max(c, m)
    hi = max(c, m)
    if hi <= 0:
        return 0.0
    return hi * ((c / hi) ** k + (m / hi) ** k) ** (1.0 / k)


def _memory_ms(roof: Mapping[str, Any], precision: str, traffic: float, weights: float) -> float:
    rate = (roof.get("memory_GBps") or {}).get(precision)
    if not rate:
        return 0.0
    byts = traffic * float(roof["activation_bytes"][precision])
    if roof.get("weight_bytes"):
        byts += weights * float(roof["weight_bytes"][precision])
    return 1e3 * byts / (float(rate) * 1e9)


def op_ms(prof, klass: str, precision: str, work: float, traffic: float = 0.0, weights: float = 0.0) -> float:
    """ms of one op of `klass` doing `work` (MACs / output elements, tiled as the profile tiles),
    reading + writing `traffic` activation elements (channels tiled) with `weights` weight elements."""
    roof = getattr(prof, "roofline", None)
    if not roof:
        return (prof.op_ms(klass, precision, work) + prof.traffic_ms(precision, traffic, klass)
                + prof.weights_ms(precision, weights))
    compute = 1e3 * work / (float(prof.ops[klass][precision]) * 1e9)
    t = combine(compute, _memory_ms(roof, precision, traffic, weights), COMBINE[roof["combine"]])
    return t + float(prof.op_overhead_us[precision]) / 1e3 + prof.weights_ms(precision, weights)


def invoke_ms(prof, ops_at: Mapping[str, float]) -> float:
    """Start-up ms of one invoke of a graph with ops_at[p] ops at precision p: the profile's start-up
    costs weighted by those shares (a precision the profile does not name costs its "a8w8" value)."""
    inv = prof.invoke_overhead_us
    total = float(sum(ops_at.values()))
    if total <= 0:
        return float(inv["a8w8"]) / 1e3
    return sum(float(inv.get(p, inv["a8w8"])) * n for p, n in ops_at.items()) / total / 1e3


def invoke_per_op(prof, n_ops: int, precisions) -> Mapping[str, float] | None:
    """{precision: ms} each of a graph's `n_ops` ops carries of the start-up cost at that precision
    (summed over a graph's ops: invoke_ms of its precision mix); None when the profile has one
    start-up cost for every precision (it is then a fixed cost)."""
    per = {p: invoke_ms(prof, {p: 1}) for p in precisions}
    if len(set(per.values())) <= 1 or n_ops <= 0:
        return None
    return {p: v / n_ops for p, v in per.items()}


def check_roofline(name: str, obj: Mapping[str, Any], precisions, error) -> None:
    """A profile's roofline block: combine known, positive byte sizes for every precision, positive
    or null memory rates, a source; no activation_traffic beside it (that would count traffic twice)."""
    roof = obj.get("roofline")
    if roof is None:
        return
    if not str(roof.get("source", "")).strip():
        raise error(f"device profile '{name}': 'roofline' has no source")
    if roof.get("combine") not in COMBINE:
        raise error(f"device profile '{name}': 'roofline' combine must be one of {', '.join(COMBINE)}")
    if "activation_traffic" in obj:
        raise error(f"device profile '{name}': 'roofline' and 'activation_traffic' both price activation traffic; "
                    "keep one")
    for key in ("activation_bytes",) + (("weight_bytes",) if roof.get("weight_bytes") else ()):
        sizes = roof.get(key)
        if not isinstance(sizes, Mapping) or any(not isinstance(sizes.get(p), (int, float)) or sizes[p] <= 0
                                                 for p in precisions):
            raise error(f"device profile '{name}': 'roofline' {key} needs a positive size for {', '.join(precisions)}")
    rates = roof.get("memory_GBps")
    if not isinstance(rates, Mapping) or any(rates.get(p) is not None and not (
            isinstance(rates[p], (int, float)) and rates[p] > 0) for p in precisions):
        raise error(f"device profile '{name}': 'roofline' memory_GBps needs a positive rate (GB/s) or null "
                    f"for {', '.join(precisions)}")


def io_layers(interp, ops: list, prep_ops) -> list[tuple[Any, int]]:
    """(layer, elements) for each model input (its first reading op's layer) and output (its
    producing op's layer); layer None where no policy layer owns that op. `ops`: the interpreter's
    op details, `prep_ops`: the prepared model's ops (with .layer) in the same order."""
    out = []
    for d in interp.get_input_details():
        reader = next((mo.layer for od, mo in zip(ops, prep_ops) if int(d["index"]) in [int(i) for i in od["inputs"]]),
                      None)
        out.append((reader, math.prod(int(v) for v in d["shape"])))
    for d in interp.get_output_details():
        writer = next((mo.layer for od, mo in zip(ops, prep_ops) if int(d["index"]) in [int(i) for i in od["outputs"]]),
                      None)
        out.append((writer, math.prod(int(v) for v in d["shape"])))
    return out
