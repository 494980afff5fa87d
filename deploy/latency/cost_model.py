"""Latency cost model: per layer and precision, plus the cost of each precision boundary.

Why: desktop latency says nothing about an NPU's (DESIGN.md), so the search needs a per-target
table it can linearise: predict_ms(policy) = fixed_ms + sum of each layer's cost at its
precision + each edge's cost where the two layers' precisions differ. Two ways to fill it:
  - from_device_profile: op work (MACs / elements) of the float TFLite graph x a shipped
    device profile's throughputs (deploy/profiles/, every number with its source);
  - from_op_profiles: per-node times measured by the harness (`--enable_op_profiling`) on an
    all-a8w8 and an all-a16w8 model of the same Keras model, mapped back to Keras layers.
Modelling choices (documented in deploy/latency/profiles/README.md):
  - Ops that belong to no Keras layer (`layer None`) run at the policy default; they are priced
    at a8w8 into fixed_ms. Edges touching them are not modelled.
  - Model I/O: with float32 I/O every model quantizes its input and dequantizes its output
    whatever the policy, so that cost is in fixed_ms and there are no "input"/"output" edges.
  - One cost per edge: an int8<->int16 requantize of the tensor (+ a partition switch where the
    target runs a8w8 and a16w8 on different processors); an edge to/from a float layer is priced
    the same (quantize/dequantize pass over the same elements).
  - AI Edge Quantizer requantizes a tensor once per target precision, so a layer feeding several
    layers of the other precision pays one QUANTIZE, while the model counts one per edge (an
    over-estimate the tests quantify).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from deploy.latency.device_profiles import DeviceProfile, LatencyError, known_profiles, load_profile
from deploy.latency.float_graph import (Edge, OpWork, _details, _elements, _input_hw, _io_elements,  # noqa: F401
                                        graph_edges, graph_ops, op_work)   # (re-exported: their old home)
from deploy.latency.op_pricing import invoke_ms, invoke_per_op, io_layers, op_ms
from deploy.convert.layer_map import layer_of
from deploy.convert.precisions import LAYER as LAYER_PRECISIONS
from deploy.convert.tflite_io import make_interpreter

__all__ = ["Edge", "CostModel", "LatencyError", "known_profiles", "load_profile",
           "from_device_profile", "from_op_profiles", "graph_ops", "graph_edges"]



@dataclasses.dataclass(frozen=True)
class CostModel:
    model: str
    scale: int
    input_hw: tuple[int, int]
    source: str                               # "profile:<name>" or "op_profile:<file>"
    layer_ms: dict[str, dict[str, float]]     # layer -> {"a8w8": ms, "a16w8": ms, "float": ms}
    edges: tuple[Edge, ...]
    fixed_ms: float                           # unowned ops, model I/O (de)quantize, invoke
    edge_cost_ms: dict[tuple[str, str], float] = dataclasses.field(default_factory=dict)
    requantize_ns_per_element: float = 0.0   # for edges not in edge_cost_ms (hand-made models)

    def edge_ms(self, edge: Edge) -> float:
        """Cost paid when producer and consumer precisions differ (requantize + any switch)."""
        cost = self.edge_cost_ms.get((edge.producer, edge.consumer))
        return cost if cost is not None else edge.elements * self.requantize_ns_per_element / 1e6

    def _precisions(self, precisions: Mapping[str, str]) -> dict[str, str]:
        missing = [l for l in self.layer_ms if l not in precisions]
        if missing:
            raise LatencyError(f"no precision given for layer(s) {', '.join(missing[:5])}"
                               f"{' ...' if len(missing) > 5 else ''}; pass every layer "
                               "(Policy.resolved(prep.layers))")
        bad = {p for l, p in precisions.items() if l in self.layer_ms and p not in LAYER_PRECISIONS}
        if bad:
            raise LatencyError(f"unknown precision(s) {', '.join(sorted(bad))}; use one of "
                               f"{', '.join(LAYER_PRECISIONS)}")
        return {l: precisions[l] for l in self.layer_ms}

    def predict_ms(self, precisions: Mapping[str, str]) -> float:
        """fixed_ms + sum(layer_ms[l][p_l]) + sum(edge_ms(e) for edges whose ends differ).
        Extra keys (e.g. "input"/"output") are ignored: I/O cost is in fixed_ms."""
        p = self._precisions(precisions)
        return (self.fixed_ms + sum(self.layer_ms[l][p[l]] for l in p)
                + sum(self.edge_ms(e) for e in self.edges if p[e.producer] != p[e.consumer]))

    def breakdown(self, precisions: Mapping[str, str]) -> list[dict]:
        """Per layer: precision and ms; then one row per paid edge; then the fixed part."""
        p = self._precisions(precisions)
        rows = [{"kind": "layer", "layer": l, "precision": p[l], "ms": self.layer_ms[l][p[l]]}
                for l in p]
        rows += [{"kind": "requantize", "layer": f"{e.producer}->{e.consumer}",
                  "precision": f"{p[e.producer]}->{p[e.consumer]}", "elements": e.elements,
                  "ms": self.edge_ms(e)} for e in self.edges if p[e.producer] != p[e.consumer]]
        rows.append({"kind": "fixed", "layer": "(fixed)", "precision": "-", "ms": self.fixed_ms})
        return rows

    def to_json(self) -> dict:
        return {"model": self.model, "scale": self.scale, "input_hw": list(self.input_hw),
                "source": self.source, "fixed_ms": self.fixed_ms, "layer_ms": self.layer_ms,
                "edges": [{**dataclasses.asdict(e), "ms": self.edge_ms(e)} for e in self.edges]}


# ---------------------------------------------------------------- from a device profile


def from_device_profile(prep, profile: DeviceProfile | str, *, model: str, scale: int) -> CostModel:
    """Price every op of the float graph with the profile's throughput at each precision (one op:
    op_pricing.op_ms, the profile's linear or roofline algebra); a per-precision start-up cost shared
    out over the ops (op_pricing.invoke_per_op)."""
    prof = profile if isinstance(profile, DeviceProfile) else load_profile(profile)
    layer_ms = {l: {p: 0.0 for p in LAYER_PRECISIONS} for l in prep.layers}
    ops = [o for o in graph_ops(prep, **prof.tiling, traffic_tile=prof.traffic_tile, fuse=prof.fuse)
           if not o.fused]   # an op the NPU compiler folds into its neighbour costs nothing (htp_fusion)
    share = invoke_per_op(prof, len(ops), LAYER_PRECISIONS)   # None: one start-up cost, fixed
    fixed = invoke_ms(prof, {"a8w8": 1}) if share is None else 0.0
    for o in ops:
        if o.layer in layer_ms:
            for p in LAYER_PRECISIONS:
                layer_ms[o.layer][p] += op_ms(prof, o.klass, p, o.work, o.traffic, o.weights) + (share or {}).get(p, 0.0)
        else:   # no Keras layer: runs at the policy default; priced at a8w8
            fixed += op_ms(prof, o.klass, "a8w8", o.work, o.traffic, o.weights) + (share or {}).get("a8w8", 0.0)
    if prof.io_traffic:   # I/O passed at the precision of the layer that reads / writes it
        interp, ops, _ = _details(prep)
        for layer, n in io_layers(interp, ops, prep.ops):
            if layer in layer_ms:
                for p in LAYER_PRECISIONS:
                    layer_ms[layer][p] += prof.io_ms(p, n)
            else:
                fixed += prof.io_ms("a8w8", n)
    n_in, n_out = _io_elements(prep)   # float32 I/O: QUANTIZE in, DEQUANTIZE out, any policy
    fixed += prof.op_ms("quantize", "a8w8", n_in) + prof.op_ms("quantize", "a8w8", n_out)
    edges = graph_edges(prep)
    costs = {(e.producer, e.consumer): prof.requantize_ms(e.elements) for e in edges}
    return CostModel(model, scale, _input_hw(prep), f"profile:{prof.name}", layer_ms, edges,
                     fixed, costs)


# ---------------------------------------------------------------- from measured op profiles

_SHA = re.compile(r"^[0-9a-fA-F]{64}$")


def _expected_sha(value: Optional[str | Path]) -> Optional[str]:
    """A sha256 hex string, or the path of the .tflite file to hash."""
    if value is None:
        return None
    if _SHA.match(str(value)):
        return str(value).lower()
    path = Path(value)
    if not path.is_file():
        raise LatencyError(f"{value} is neither a sha256 nor an existing .tflite file")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_trials(path: str | Path, expected_sha: Optional[str], what: str) -> list[dict]:
    """The `kind: trial` records (schema_version 1) of a harness results file, checked."""
    path = Path(path)
    if not path.is_file():
        raise LatencyError(f"op profile {path} does not exist; write it with tools/adb_bench.py "
                           "--enable_op_profiling")
    trials = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue   # a torn last line (harness docs)
            if isinstance(rec, dict) and rec.get("kind") == "trial" and rec.get("status", "ok") == "ok":
                if rec.get("schema_version") != 1:
                    raise LatencyError(f"op profile {path} has schema_version "
                                       f"{rec.get('schema_version')}; this srdeploy reads 1")
                trials.append(rec)
    if not trials:
        raise LatencyError(f"op profile {path} has no trial records; run tools/adb_bench.py "
                           "--enable_op_profiling on the model")
    shas = {r.get("model", {}).get("sha256") for r in trials}
    if expected_sha is not None and shas != {expected_sha}:
        got = ", ".join(sorted(str(s)[:8] + "…" for s in shas))
        raise LatencyError(f"op profile {path} is for model sha {got}, not the {what} model "
                           f"{expected_sha[:8]}…; rerun adb_bench on it")
    if len(shas) > 1:
        raise LatencyError(f"op profile {path} mixes {len(shas)} models; give one results file "
                           "per model")
    rows = [row for r in trials for row in r.get("stats", {}).get("ops", [])]
    if not rows:
        raise LatencyError(f"op profile {path} has no per-op rows; rerun adb_bench with "
                           "--enable_op_profiling")
    if all(row.get("avg_ms") is None for row in rows):
        raise LatencyError(f"op profile {path} has no per-op times (avg_ms null: the desktop "
                           "LiteRT Python API has no per-op timer); use --device_profile "
                           "desktop_xnnpack on the desktop, or profile on a phone")
    delegated = sorted({row["op_type"] for row in rows if "delegate" in str(row.get("op_type")).lower()})
    if delegated:
        raise LatencyError(f"op profile {path} has delegate rows ({', '.join(delegated)}), not "
                           "per-layer times; rerun adb_bench with --delegate=cpu "
                           "--enable_op_profiling")
    return trials


def _median_rows(trials: Sequence[dict]) -> list[dict]:
    """One row per node: the median of its avg_ms across trials."""
    by_node: dict[Any, list[dict]] = defaultdict(list)
    for t in trials:
        for row in t["stats"]["ops"]:
            if row.get("avg_ms") is not None:
                by_node[(row.get("subgraph", 0), row.get("node_index"), row["op_type"])].append(row)
    return [{**rows[0], "avg_ms": statistics.median(r["avg_ms"] for r in rows)}
            for rows in by_node.values()]


@dataclasses.dataclass(frozen=True)
class ProfileMap:
    """Measured ms per layer, boundary (QUANTIZE/DEQUANTIZE) rows, and unmapped rows."""
    layer_ms: dict[str, float]
    rows: list[dict]                  # each row with "layer" (None: unmapped) added
    quantize_ns_per_element: Optional[float]
    boundary_ms: float
    unmapped_ms: float


def map_rows(prep, trials: Sequence[dict]) -> ProfileMap:
    """Map each op row to its Keras layer by output tensor name (AEQ keeps the float model's
    names on compute ops; same rule as deploy/convert/layer_map.py), QUANTIZE/DEQUANTIZE rows to
    boundary cost with their element counts from the float graph."""
    layers = set(prep.layers)
    by_tensor = {o.tensor: o.layer for o in prep.ops}
    _, ops, tensors = _details(prep)
    elements = {t["name"]: _elements(t["shape"]) for t in tensors.values()}
    layer_ms: dict[str, float] = defaultdict(float)
    rows, per_el, boundary, unmapped = [], [], 0.0, 0.0
    for row in _median_rows(trials):
        name = (row.get("outputs") or [""])[0]
        if row["op_type"] in ("QUANTIZE", "DEQUANTIZE"):
            base = re.sub(r"(_quantized|_dequant|_requantized)+$", "", name)
            n = elements.get(base)
            if n:
                per_el.append(row["avg_ms"] * 1e6 / n)
            boundary += row["avg_ms"]
            rows.append({**row, "layer": None})
            continue
        layer = by_tensor.get(name) or layer_of(name, layers)
        rows.append({**row, "layer": layer})
        if layer in layers:
            layer_ms[layer] += row["avg_ms"]
        else:
            unmapped += row["avg_ms"]
    return ProfileMap(dict(layer_ms), rows, statistics.median(per_el) if per_el else None,
                      boundary, unmapped)


def from_op_profiles(prep, a8w8_results: str | Path, a16w8_results: str | Path, *,
                     a8w8_tflite_sha256: Optional[str] = None,
                     a16w8_tflite_sha256: Optional[str] = None, model: str, scale: int,
                     float_results: Optional[str | Path] = None,
                     float_tflite_sha256: Optional[str] = None) -> CostModel:
    """Per-layer costs from measured per-node times of all-a8w8 / all-a16w8 (/ float) models.

    Without a float profile, `float` costs are the a8w8 times (a float layer is never cheaper
    to model than that; profile the float model to do better). The requantize cost per element
    is the median over the QUANTIZE/DEQUANTIZE rows (they do the same per-element work);
    fixed_ms holds the a8w8 model's I/O (de)quantize rows and rows no layer claims.
    """
    maps = {}
    for prec, path, sha in (("a8w8", a8w8_results, a8w8_tflite_sha256),
                            ("a16w8", a16w8_results, a16w8_tflite_sha256),
                            ("float", float_results, float_tflite_sha256)):
        if path is not None:
            maps[prec] = (map_rows(prep, read_trials(path, _expected_sha(sha), prec)), str(path))
    for prec, (m, path) in maps.items():
        if not m.layer_ms:
            raise LatencyError(f"op profile {path} maps to none of {model}'s layers; is it the "
                               f"{prec} model of this Keras model?")
    with_ops = {o.layer for o in prep.ops if o.layer}  # layers with ops of their own (not fused away)
    for prec, (m, path) in maps.items():
        missing = [l for l in prep.layers if l in with_ops and l not in m.layer_ms]
        if missing:  # pricing them at 0 ms would steer the search towards them
            raise LatencyError(f"op profile {path} has no rows for layer(s) {', '.join(missing[:5])}"
                               f"{' ...' if len(missing) > 5 else ''} of {model}; profile the {prec} "
                               "model of this exact graph (same --input_size) with --enable_op_profiling")
    base = maps["a8w8"][0]
    layer_ms = {}
    for l in prep.layers:
        a8 = base.layer_ms.get(l, 0.0)
        layer_ms[l] = {"a8w8": a8, "a16w8": maps["a16w8"][0].layer_ms.get(l, 0.0),
                       "float": maps["float"][0].layer_ms.get(l, 0.0) if "float" in maps else a8}
    ns = [m.quantize_ns_per_element for m, _ in maps.values() if m.quantize_ns_per_element]
    ns_el = statistics.median(ns) if ns else 0.0
    edges = graph_edges(prep)
    costs = {(e.producer, e.consumer): e.elements * ns_el / 1e6 for e in edges}
    fixed = base.boundary_ms + base.unmapped_ms
    bad = [l for l, d in layer_ms.items() if any(math.isnan(v) or v < 0 for v in d.values())]
    if bad:
        raise LatencyError(f"op profiles give {model} layer {bad[0]} a negative or NaN time; re-measure them")
    return CostModel(model, scale, _input_hw(prep),
                     f"op_profile:{Path(a8w8_results).name}+{Path(a16w8_results).name}",
                     layer_ms, edges, fixed, costs)
