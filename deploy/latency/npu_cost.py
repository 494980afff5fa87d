"""NPU-aware latency: price each op where the NPU compiler actually places it.

Why: an NPU profile alone assumes every op runs on the NPU, but Qualcomm's HTP compiler leaves
some ops on the CPU (a rank-6 pixel shuffle, an int16 MINIMUM, ...), and each hop between an NPU
partition and CPU ops costs a switch. With a compile target (`--npu qualcomm:SM8650`):

  1. the all-a8w8 and all-a16w8 per-layer models are compiled for real (deploy.npu); every op the
     compiler leaves on the CPU is mapped back to the float graph's op, hence its Keras layer, by
     output tensor name (AI Edge Quantizer keeps the float model's names on compute ops; its
     QUANTIZE/DEQUANTIZE ops are `<tensor>_quantized`/`_dequant`/`_requantized`);
  2. a layer at precision p costs the sum of its ops at p, each at the NPU profile's rate, or at
     the CPU fallback profile's rate (`cpu_fallback`, desktop_xnnpack: the only measured CPU
     profile; no phone CPU profile exists) when the uniform-p compile left it on the CPU;
  3. every NPU<->CPU switch in the uniform-p compiled model's execution order costs the profile's
     `npu_cpu_switch` and is charged to the layer of the CPU op at that switch at precision p.
This keeps the search's model linear (per layer per precision + per edge). It is exact for the
two uniform policies; for a hybrid it assumes each layer is placed as in the uniform model of its
precision. `check` compiles the chosen policy for real, prices its actual placement and says
where it differs from that assumption.

Compiles are cached by sha256 of the model bytes + SoC, in memory and optionally as JSON files.
"""
from __future__ import annotations

import dataclasses
import json
import re
from deploy.provenance import package_version
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from deploy._files import atomic_write, sha256_bytes
from deploy.convert.precisions import LAYER as LAYER_PRECISIONS
from deploy.latency.cost_model import (CostModel, OpWork, _input_hw, _io_elements,
                                       graph_edges, graph_ops)
from deploy.latency.device_profiles import DeviceProfile, LatencyError, load_profile

__all__ = ["PlacedOp", "Placement", "PlacementCache", "NpuCostModel", "check_npu_tools",
           "from_npu_placement"]

SEARCHED = ("a8w8", "a16w8")   # the precisions the search decides between (compiled uniformly)
_BOUNDARY = ("QUANTIZE", "DEQUANTIZE")
_SUFFIX = re.compile(r"(_quantized|_dequant|_requantized)+$")


def check_npu_tools(target: str):
    """The Soc for `target`, after checking the NPU extra is installed (one line if not)."""
    from deploy.npu import resolve_soc
    from deploy.npu.qairt import toolchain
    soc = resolve_soc(target)
    toolchain()   # NpuToolsMissingError: 'pip install -e ".[npu]"'
    return soc


# ---------------------------------------------------------------- placement of one compiled model


@dataclasses.dataclass(frozen=True)
class PlacedOp:
    """An op of the compiled model left on the CPU, tied back to the float graph."""
    index: int                 # position in the compiled model
    op: str
    outputs: tuple[str, ...]
    reason: str
    float_index: Optional[int]  # the float graph's op (None: a QUANTIZE/DEQUANTIZE or unknown op)
    layer: Optional[str]
    elements: int = 0           # boundary ops: elements of the tensor they (re)quantize

    def to_json(self) -> dict:
        return {"index": self.index, "op": self.op, "outputs": list(self.outputs), "layer": self.layer,
                "reason": self.reason}


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where the compiler put a model's ops: NPU coverage, partitions, CPU ops, switches."""
    soc: str
    sha256: str
    ops_total: int
    ops_on_npu: int
    partitions: int
    cpu_ops: tuple[PlacedOp, ...]
    switch_owners: tuple[Optional[str], ...]  # per NPU<->CPU switch: the CPU-side op's layer
    compile_seconds: float
    versions: Mapping[str, str]

    @property
    def switches(self) -> int:
        return len(self.switch_owners)

    @property
    def cpu_float_ops(self) -> frozenset[int]:
        return frozenset(c.float_index for c in self.cpu_ops if c.float_index is not None)

    @property
    def whole(self) -> bool:
        return not self.cpu_ops and self.partitions == 1

    def to_json(self) -> dict:
        return {"soc": self.soc, "sha256": self.sha256, "ops_on_npu": self.ops_on_npu,
                "ops_total": self.ops_total, "partitions": self.partitions, "whole": self.whole,
                "npu_cpu_switches": self.switches, "cpu_ops": [c.to_json() for c in self.cpu_ops],
                "compile_seconds": round(self.compile_seconds, 3), "versions": dict(self.versions)}

    def summary(self) -> str:
        return (f"{self.ops_on_npu}/{self.ops_total} ops on the {self.soc} NPU, {self.partitions} "
                f"partition(s), {self.switches} NPU<->CPU switch(es)")


def _switch_owners(n_partitions: int, cpu: Sequence[PlacedOp]) -> tuple[Optional[str], ...]:
    """The compiled model's ops are its DISPATCH_OP partitions and its CPU ops, in execution order;
    every NPU<->CPU adjacency is one switch, owned by the CPU op's layer."""
    by_pos = {c.index: c for c in cpu}
    n = n_partitions + len(cpu)
    owners = []
    for i in range(n - 1):
        a, b = by_pos.get(i), by_pos.get(i + 1)
        if (a is None) != (b is None):
            owners.append((a or b).layer)
    return tuple(owners)


def placement_from_report(report: Mapping[str, Any], ops: Sequence[OpWork],
                          elements: Mapping[str, int]) -> Placement:
    """A compile report (CompileReport.to_json()) with its CPU ops mapped to the float graph."""
    by_tensor = {o.tensor: o for o in ops}
    cpu = []
    for c in report["cpu_ops"]:
        outs = tuple(c["outputs"])
        hit = next((by_tensor[n] for n in outs if n in by_tensor), None)
        n_el = 0
        layer = hit.layer if hit else None
        if hit is None and c["op"] in _BOUNDARY and outs:
            base = _SUFFIX.sub("", outs[0])
            n_el = elements.get(base, 0)
            src = by_tensor.get(base)
            layer = src.layer if src else None
        cpu.append(PlacedOp(int(c["index"]), c["op"], outs, c["reason"], hit.index if hit else None, layer, n_el))
    cpu = tuple(cpu)
    return Placement(report["soc"], report["source_sha256"], int(report["ops_total"]), int(report["ops_on_npu"]),
                     int(report["partitions"]), cpu, _switch_owners(int(report["partitions"]), cpu),
                     float(report.get("compile_seconds", 0.0)), dict(report.get("versions", {})))


def _tool_versions() -> dict[str, str]:
    out = {}
    for dist in ("ai-edge-litert", "onnxruntime-qnn"):
        out[dist] = package_version(dist, "unknown")
    return out


class PlacementCache:
    """Compile reports by (sha256 of the model bytes, SoC): in memory, and as JSON files under
    `cache_dir` when given (reused only when compiled by the same LiteRT + onnxruntime-qnn)."""

    def __init__(self, soc, cache_dir: Optional[str | Path] = None):
        from deploy.npu import resolve_soc
        self.soc = soc if not isinstance(soc, str) else resolve_soc(soc)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._mem: dict[str, dict] = {}
        self.compiles = 0   # real compiler runs (cache misses)
        self.hits = 0

    def _file(self, sha: str) -> Optional[Path]:
        return self.cache_dir / f"{sha}_{self.soc.name}.json" if self.cache_dir else None

    def report(self, tflite: bytes) -> dict:
        sha = sha256_bytes(tflite)
        if sha in self._mem:
            self.hits += 1
            return self._mem[sha]
        f = self._file(sha)
        if f is not None and f.is_file():
            try:
                rep = json.loads(f.read_text())
            except json.JSONDecodeError:
                rep = None
            if (isinstance(rep, dict) and rep.get("source_sha256") == sha and rep.get("soc") == self.soc.name
                    and {k: rep.get("versions", {}).get(k) for k in _tool_versions()} == _tool_versions()):
                self.hits += 1
                self._mem[sha] = rep
                return rep
        from deploy.npu import compile_tflite
        rep = compile_tflite(tflite, self.soc).report.to_json()
        self.compiles += 1
        self._mem[sha] = rep
        if f is not None:
            atomic_write(f, json.dumps(rep, indent=1) + "\n")
        return rep


# ---------------------------------------------------------------- pricing


@dataclasses.dataclass(frozen=True)
class _Prices:
    npu: DeviceProfile
    cpu: DeviceProfile
    switch_ms: float

    def op(self, o: OpWork, precision: str, on_cpu: bool) -> float:
        return (self.cpu if on_cpu else self.npu).op_ms(o.klass, precision, o.work)

    def boundary_delta(self, c: PlacedOp) -> float:
        """A QUANTIZE/DEQUANTIZE on the CPU instead of the NPU (I/O or requantize)."""
        if c.float_index is not None or c.op not in _BOUNDARY:
            return 0.0
        return self.cpu.op_ms("quantize", "a8w8", c.elements) - self.npu.op_ms("quantize", "a8w8", c.elements)


@dataclasses.dataclass(frozen=True)
class NpuCostModel:
    """The linear cost model (`cost`, what the search optimises) plus what `check` needs to price
    a real compiled model's placement."""
    cost: CostModel
    soc: Any                              # deploy.npu.Soc
    uniform: Mapping[str, Placement]      # "a8w8"/"a16w8" -> placement of the uniform model
    ops: tuple[OpWork, ...]
    prices: _Prices
    cache: PlacementCache
    base_fixed_ms: float                  # invoke + I/O (de)quantize on the NPU
    note: str                             # the CPU-profile caveat, for reports and tables
    elements: Mapping[str, int]           # float graph tensor name -> elements (QUANTIZE ops on the CPU)

    def placed_ms(self, precisions: Mapping[str, str], placement: Placement) -> float:
        """Latency of a model at `precisions` whose ops sit where `placement` says."""
        p = self.cost._precisions(precisions)   # noqa: SLF001 - same validation as predict_ms
        cpu = placement.cpu_float_ops
        t = self.base_fixed_ms + sum(self.prices.boundary_delta(c) for c in placement.cpu_ops)
        t += sum(self.prices.op(o, p.get(o.layer, "a8w8"), o.index in cpu) for o in self.ops)
        t += sum(self.cost.edge_ms(e) for e in self.cost.edges if p[e.producer] != p[e.consumer])
        return t + placement.switches * self.prices.switch_ms

    def assumed(self, precisions: Mapping[str, str]) -> tuple[frozenset[int], int]:
        """What the linear model assumes for a policy: CPU float ops and the number of switches."""
        p = self.cost._precisions(precisions)   # noqa: SLF001
        prec = lambda layer: p.get(layer, "a8w8") if p.get(layer, "a8w8") in SEARCHED else "a8w8"  # noqa: E731
        cpu = frozenset(o.index for o in self.ops if o.index in self.uniform[prec(o.layer)].cpu_float_ops)
        switches = sum(1 for q in SEARCHED for owner in self.uniform[q].switch_owners
                       if prec(owner) == q and (owner is not None or q == "a8w8"))
        return cpu, switches

    def place(self, tflite: bytes) -> Placement:
        return placement_from_report(self.cache.report(tflite), self.ops, self.elements)

    def check(self, precisions: Mapping[str, str], tflite: bytes) -> dict:
        """Compile the chosen model for real; its placement, its latency priced on that placement,
        and whether the linear model's assumption held."""
        actual = self.place(tflite)
        a_cpu, a_sw = self.assumed(precisions)
        linear = self.cost.predict_ms(precisions)
        placed = self.placed_ms(precisions, actual)
        name = {o.index: f"{o.op}({o.layer})" for o in self.ops}
        differs = []
        if actual.cpu_float_ops - a_cpu:
            differs.append("on the CPU but assumed on the NPU: "
                           + ", ".join(name[i] for i in sorted(actual.cpu_float_ops - a_cpu)))
        if a_cpu - actual.cpu_float_ops:
            differs.append("on the NPU but assumed on the CPU: "
                           + ", ".join(name[i] for i in sorted(a_cpu - actual.cpu_float_ops)))
        if a_sw != actual.switches:
            differs.append(f"{actual.switches} NPU<->CPU switch(es), {a_sw} assumed")
        known = {(c.op, c.outputs) for pl in self.uniform.values() for c in pl.cpu_ops if c.float_index is None}
        extra = [c for c in actual.cpu_ops if c.float_index is None and (c.op, c.outputs) not in known]
        if extra:
            differs.append("extra CPU op(s) not in the float graph: " + ", ".join(f"{c.op} {c.outputs[0]}"
                                                                                for c in extra))
        return {"target": self.soc.target, "placement": actual.to_json(),
                "assumed": {"cpu_ops": [name[i] for i in sorted(a_cpu)], "npu_cpu_switches": a_sw},
                "matches_linear_model": not differs, "differences": differs,
                "predicted_ms_linear": round(linear, 4), "predicted_ms_placed": round(placed, 4),
                "uniform": {q: pl.to_json() for q, pl in self.uniform.items()},
                "switch_ms": self.prices.switch_ms, "cpu_profile": self.prices.cpu.name, "note": self.note,
                "compiles": self.cache.compiles, "cache_hits": self.cache.hits}


def _tensor_elements(prep) -> dict[str, int]:
    from deploy.latency.cost_model import _details, _elements
    _, _, tensors = _details(prep)
    return {t["name"]: _elements(t["shape"]) for t in tensors.values()}


def from_npu_placement(prep, profile: DeviceProfile | str, soc, uniform_models: Mapping[str, bytes], *,
                       model: str, scale: int, cache: Optional[PlacementCache] = None,
                       cache_dir: Optional[str | Path] = None) -> NpuCostModel:
    """The cost model of `profile` (an NPU profile with `npu_cpu_switch` and `cpu_fallback`) with
    per-precision placement read from compiling `uniform_models` ({"a8w8": bytes, "a16w8": bytes},
    the all-a8w8 / all-a16w8 per-layer models of `prep`) for `soc`."""
    npu = profile if isinstance(profile, DeviceProfile) else load_profile(profile)
    if not npu.npu_cpu_switch or not npu.cpu_fallback:
        raise LatencyError(f"device profile '{npu.name}' has no npu_cpu_switch/cpu_fallback entries, so it "
                           "cannot price a compiled NPU placement (--npu); use --device_profile htp_npu")
    missing = [q for q in SEARCHED if q not in uniform_models]
    if missing:
        raise LatencyError(f"NPU placement needs the uniform {', '.join(missing)} model(s)")
    cpu_prof = load_profile(npu.cpu_fallback["profile"])
    prices = _Prices(npu, cpu_prof, float(npu.npu_cpu_switch["us"]) / 1e3)
    cache = cache or PlacementCache(soc, cache_dir)
    ops = tuple(graph_ops(prep))
    elements = _tensor_elements(prep)
    uniform = {q: placement_from_report(cache.report(uniform_models[q]), ops, elements) for q in SEARCHED}

    layer_ms = {l: {p: 0.0 for p in LAYER_PRECISIONS} for l in prep.layers}
    n_in, n_out = _io_elements(prep)
    base_fixed = (float(npu.invoke_overhead_us["a8w8"]) / 1e3 + npu.op_ms("quantize", "a8w8", n_in)
                  + npu.op_ms("quantize", "a8w8", n_out))
    fixed = base_fixed
    for o in ops:
        if o.layer in layer_ms:
            for p in SEARCHED:
                layer_ms[o.layer][p] += prices.op(o, p, o.index in uniform[p].cpu_float_ops)
            layer_ms[o.layer]["float"] += npu.op_ms(o.klass, "float", o.work)   # not compiled: NPU assumed
        else:
            fixed += prices.op(o, "a8w8", o.index in uniform["a8w8"].cpu_float_ops)
    for p in SEARCHED:   # a QUANTIZE/DEQUANTIZE on the CPU: charged to its tensor's layer
        for c in uniform[p].cpu_ops:
            if c.layer in layer_ms:
                layer_ms[c.layer][p] += prices.boundary_delta(c)
            elif p == "a8w8":
                fixed += prices.boundary_delta(c)
        for owner in uniform[p].switch_owners:
            if owner in layer_ms:
                layer_ms[owner][p] += prices.switch_ms
            elif p == "a8w8":
                fixed += prices.switch_ms
    edges = graph_edges(prep)
    costs = {(e.producer, e.consumer): npu.requantize_ms(e.elements) for e in edges}
    note = (f"ops left on the CPU are priced with '{cpu_prof.name}' (a desktop CPU: no phone CPU profile "
            f"exists); each NPU<->CPU switch costs {npu.npu_cpu_switch['us']:g} us "
            f"({'assumed' if 'ASSUMPTION' in npu.npu_cpu_switch['source'].upper() else 'see profile'}); "
            "float layers assume NPU placement (not compiled)")
    source = (f"profile:{npu.name}+npu:{cache.soc.target} (placement from compiling the uniform a8w8/a16w8 "
              f"models; {note})")
    cost = CostModel(model, scale, _input_hw(prep), source, layer_ms, edges, fixed, costs)
    return NpuCostModel(cost, cache.soc, uniform, ops, prices, cache, base_fixed, note, elements)
