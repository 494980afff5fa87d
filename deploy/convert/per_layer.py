"""Per-layer (hybrid) precision: Keras model + Policy -> one verified TFLite model + report.

Steps: fix the input shape (no SHAPE ops), rewrite activations AEQ cannot quantize
(deploy/convert/rewrite.py), convert to float TFLite, map every op to its Keras layer, calibrate once,
quantize with the policy's recipe, invoke once, read the model back and check every op's
precision against the policy (FQSR: with no `float` layer, not one float op may remain).
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
from typing import Any, Optional, Sequence


from deploy.convert import io_types

from deploy.convert import layer_map
from deploy.convert import op_graph
from deploy.convert import prelu_graph
from deploy.convert import quantizer

from deploy.convert import rewrite
from deploy.convert import twin as twin_mod
from deploy.data.calibration import CalibrationSet
from deploy.convert.uniform import convert_uniform
from deploy.convert.policy import Policy, PolicyError
from models._keras import keras

#: Why AEQ leaves an op float when asked to quantize it (shown in errors and reports).
NO_INT_REASON = {
    "DEPTH_TO_SPACE": "AI Edge Quantizer has no DEPTH_TO_SPACE and LiteRT has no int16 kernel; "
                      "use a RESHAPE/TRANSPOSE pixel shuffle (models.layers.PixelShuffle)",
    "PRELU": "AI Edge Quantizer has no PRELU", "LEAKY_RELU": "AI Edge Quantizer has no LEAKY_RELU",
    "MINIMUM": "AI Edge Quantizer has no MINIMUM",
}


@dataclasses.dataclass(frozen=True)
class LayerInfo:
    name: str
    ops: tuple[str, ...]
    output_shape: tuple
    macs: int
    share: float


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A model ready for per-layer quantization: float TFLite, the op -> layer map and the graph
    of policy-addressable units (Keras layers, or op groups of a float TFLite)."""
    model: Optional[keras.Model]  # fixed-shape, rewritten tf_keras model; None on the graph route
    float_tflite: bytes
    ops: tuple[layer_map.MappedOp, ...]
    rewritten: dict[str, str]
    graph: op_graph.LayerGraph = None  # type: ignore[assignment]

    @property
    def layers(self) -> list[str]:
        """Policy-addressable layers (those that own at least one op), in graph order."""
        owners = {o.layer for o in self.ops}
        return [u.name for u in self.graph.units if u.name in owners]

    @property
    def input_shape(self) -> tuple:
        return tuple(self.graph.input_shape)

    @property
    def receptive_radius(self) -> float:
        return self.graph.receptive_radius


#: prepare()'s last results by model content: every route that quantizes one model (the int8 routes, a16w8,
#: a policy, the smoke checks) prepares it again, and each preparation is a float conversion (10 s for EDSR)
_PREPARED: collections.OrderedDict[str, Prepared] = collections.OrderedDict()
_PREPARED_KEEP = 4


def _content_key(model: keras.Model) -> Optional[str]:
    """sha256 of the architecture (layer configs, names, input shape) and every weight; None when a layer
    cannot describe itself (such a model is prepared every time)."""
    try:
        h = hashlib.sha256(model.to_json().encode())
    except (NotImplementedError, TypeError, ValueError):   # a custom layer without get_config
        return None
    for w in model.get_weights():
        h.update(f"{w.dtype}{w.shape}".encode())
        h.update(w.tobytes())
    return h.hexdigest()


def prepare(model: keras.Model) -> Prepared:
    """`model` must have a fixed input shape (models.with_fixed_shape / --input_size). The same content
    prepared before gives the same Prepared (read-only to callers: they copy before changing weights)."""
    if None in model.input_shape[1:3]:
        raise PolicyError("per-layer quantization needs a fixed input size (--input_size HxW)")
    key = _content_key(model)
    if key is not None and key in _PREPARED:
        _PREPARED.move_to_end(key)
        return _PREPARED[key]
    fixed, rewritten = rewrite.rewrite_for_aeq(model)
    tfl = convert_uniform(fixed, "float").tflite
    ops = layer_map.map_ops(tfl, layer_map.quantizable_layers(fixed), fixed.layers[-1].name)
    prep = Prepared(fixed, tfl, tuple(ops), rewritten, op_graph.from_keras(fixed, _layer_macs))
    if key is not None:
        _PREPARED[key] = prep
        while len(_PREPARED) > _PREPARED_KEEP:
            _PREPARED.popitem(last=False)
    return prep


def prepare_tflite(tflite: bytes, assign=None, *, output_unit: Optional[str] = None,
                   unit_order: Optional[list[str]] = None, kinds: Optional[dict[str, str]] = None,
                   weighted: frozenset = frozenset(), rewrite_prelu: bool = True) -> Prepared:
    """A float TFLite (any framework) ready for per-layer quantization; units are the Keras 3
    layers `assign` names from tensor names, or op groups named from the graph. Units come from
    the source's own graph; its PRELUs are then rewritten into ops the quantizer takes
    (deploy/convert/prelu_graph.py), each new op in the PRELU's unit."""
    graph, unit_of = op_graph.from_tflite(tflite, assign, output_unit=output_unit, unit_order=unit_order,
                                          kinds=kinds, weighted=weighted)
    rewritten: dict[str, str] = {}
    if rewrite_prelu:
        tflite, origin, prelus = prelu_graph.rewrite_prelus(tflite)
        rewritten = {str(unit_of.get(k)): prelu_graph.WHAT for k in prelus}
        unit_of = {i: unit_of.get(k) for i, k in enumerate(origin)}
    summary = layer_map.summarize(layer_map.make_interpreter(tflite, delegates=False))
    ops = tuple(layer_map.MappedOp(o.index, o.op, o.output_names[0] if o.output_names else "",
                                   unit_of.get(o.index),
                                   ";".join(n for n in o.output_names if n) + (";" if o.output_names else ""))
                for o in summary.ops)
    return Prepared(None, tflite, ops, rewritten, graph)


def prepare_source(src, hw: tuple[int, int], *, rewrite_prelu: bool = True) -> Prepared:
    """Any `ModelSource` at LR size `hw` (a float TFLite keeps its own size); `rewrite_prelu=False`
    keeps a graph-route source's float TFLite as it is (its float model)."""
    if not src.graph_route:
        return prepare(src.fixed(hw))
    data, assign = src.float_tflite(hw)
    if assign is None:
        return prepare_tflite(data, rewrite_prelu=rewrite_prelu)
    m = src.model
    out_layer = m.outputs[0]._keras_history.operation.name  # noqa: SLF001 - the layer making the output
    return prepare_tflite(data, assign, output_unit=out_layer, unit_order=[l.name for l in m.layers],
                          kinds={l.name: l.__class__.__name__ for l in m.layers},
                          weighted=frozenset(l.name for l in m.layers if l.weights), rewrite_prelu=rewrite_prelu)


def _layer_macs(layer) -> int:
    """MACs of one conv layer at the model's fixed input size (0 for elementwise layers)."""
    k = getattr(layer, "kernel_size", None)
    if k is None:
        return 0
    if isinstance(layer, keras.layers.DepthwiseConv2D):  # no `filters`: C x multiplier outputs
        h, w = layer.output_shape[1:3]
        return int(k[0] * k[1] * layer.input_shape[-1] * layer.depth_multiplier * h * w)
    if isinstance(layer, keras.layers.Conv2DTranspose):
        h, w = layer.input_shape[1:3]
        return int(k[0] * k[1] * layer.input_shape[-1] * layer.filters * h * w)
    h, w = layer.output_shape[1:3]
    return int(k[0] * k[1] * (layer.input_shape[-1] // layer.groups) * layer.filters * h * w)


def list_layers(prep: Prepared) -> list[LayerInfo]:
    by_layer = collections.defaultdict(list)
    for o in prep.ops:
        by_layer[o.layer].append(o.op)
    units = [prep.graph.unit(n) for n in prep.layers]
    total = max(sum(u.macs for u in units), 1)
    return [LayerInfo(u.name, tuple(by_layer[u.name]), tuple(u.output_shape), u.macs, u.macs / total)
            for u in units]


def layers_table(infos: Sequence[LayerInfo]) -> str:
    rows = [f"{'layer':<28}{'ops':<34}{'output':<20}{'MMACs':>9}{'share':>8}"]
    for i in infos:
        ops = ",".join(dict.fromkeys(i.ops))
        rows.append(f"{i.name:<28}{ops[:33]:<34}{'x'.join(str(d) for d in i.output_shape[1:]):<20}"
                    f"{i.macs / 1e6:9.2f}{i.share:8.1%}")
    return "\n".join(rows)


def quantize_policy(prep: Prepared, policy: Policy, calib: CalibrationSet,
                    qsv: Optional[dict] = None, *, value_peak: Optional[float] = None,
                    smoke: bool = True, ptq=None, twin: Optional[Prepared] = None) -> tuple[bytes, dict[str, Any]]:
    """One TFLite model at the policy's per-layer precisions, verified; plus its report.

    `smoke=False` skips the one-patch invoke, for callers that invoke the model right away.
    `twin`: the same model prepared at the twin's size (deploy/convert/twin.py), for a frame-sized
    `prep`: `calib` is the twin's, and calibration, PTQ and the smoke invoke run on the twin.

    `value_peak` is the model's I/O value range peak (1 or 255, `IOConvention.peak`): uint8 I/O
    maps 0..255 onto 0..peak. It comes from the model's convention, never from the data.
    """
    policy.validate(prep.layers)
    recipe = quantizer.build_recipe(policy, prep.ops) + _io_rules(policy.io_type)
    if twin is not None:
        twin_recipe = quantizer.build_recipe(policy, twin.ops) + _io_rules(policy.io_type)
        twin, qsv, ptq_report = quantizer.apply_ptq(twin, ptq, calib.patches, qsv, twin_recipe, value_peak,
                                                    policy=policy)
        prep = dataclasses.replace(prep, float_tflite=twin_mod.weights_from(twin.float_tflite, prep.float_tflite))
        if smoke:  # the frame model's ops and quantization parameters, at a size the CPU kernels run
            quantizer.smoke_invoke(_finish(quantizer.quantize(twin.float_tflite, twin_recipe, qsv), policy, value_peak),
                                   calib.patches[0])
        smoke = False
    else:
        # `ptq` (deploy.convert.ptq.PtqOptions or its label): None = global min/max, as always
        prep, qsv, ptq_report = quantizer.apply_ptq(prep, ptq, calib.patches, qsv, recipe, value_peak, policy=policy)
    tfl = _finish(quantizer.quantize(prep.float_tflite, recipe, qsv), policy, value_peak)
    if smoke:
        quantizer.smoke_invoke(tfl, calib.patches[0])
    checks, summary = quantizer.verify(tfl, prep.ops, policy)
    bad = [c for c in checks if c.requested != c.actual]
    if bad:
        c = bad[0]
        why = NO_INT_REASON.get(c.op, "AI Edge Quantizer left it at another precision")
        raise quantizer.QuantizationError(
            f"layer '{c.layer}' op {c.op} runs {c.actual} but the policy asks {c.requested} "
            f"({why}); set that layer to {c.actual} in the policy" + (f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""))
    report = _report(prep, policy, checks, summary, tfl, calib)
    if twin is not None:
        report["calibration"]["ranges_from"] = twin_mod.describe(tuple(prep.input_shape[1:3]))
    return tfl, (report if ptq_report is None else {**report, "ptq": ptq_report})


def _finish(tfl: bytes, policy: Policy, value_peak: Optional[float]) -> bytes:
    """The quantized model with the policy's I/O type (uint8 is made from float I/O)."""
    if policy.io_type == "uint8":
        if value_peak is None:
            raise quantizer.QuantizationError("uint8 I/O needs the model's value range (value_peak: 1 or 255)")
        tfl = io_types.to_uint8_io(tfl, peak=float(value_peak))
    return tfl


def _io_rules(io_type: str) -> list[dict]:
    """Keep model I/O float (uint8 is made from that afterwards). AEQ groups rules by regex
    string in first-seen order, so these need regexes of their own ("(?:.*)", not ".*") to
    come after the per-op rules and win."""
    if io_type in ("float32", "uint8"):
        return [{"regex": regex, "operation": op, "algorithm_key": "no_quantize"}
                for op, regex in (("INPUT", "(?:.*)"), ("OUTPUT", "(?:.*)(?:)"))]
    return []


def _report(prep: Prepared, policy: Policy, checks, summary, tfl: bytes, calib: CalibrationSet) -> dict:
    infos = {i.name: i for i in list_layers(prep)}
    per_layer = collections.OrderedDict()
    for c in checks:
        name = c.layer or "(unmapped)"
        e = per_layer.setdefault(name, {"requested": c.requested, "actual": set(), "ops": []})
        e["actual"].add(c.actual)
        e["ops"].append(c.op)
    layers = [{"layer": n, "requested": e["requested"], "actual": "/".join(sorted(e["actual"])),
               "ops": e["ops"], "macs": infos[n].macs if n in infos else 0} for n, e in per_layer.items()]
    float_ops = [{"op": c.op, "layer": c.layer, "reason": "policy asks float"} for c in checks
                 if c.actual == "float"]
    counts = collections.Counter(c.requested for c in checks)
    return {
        "route": "litert-quantizer per-layer recipe", "policy": policy.to_json(),
        "policy_sha256": hashlib.sha256(policy.dumps().encode()).hexdigest(),
        "size_bytes": len(tfl), "sha256": hashlib.sha256(tfl).hexdigest(),
        "input_shape": list(prep.input_shape), "layers": layers,
        "ops_by_precision": dict(counts), "requantize_ops": summary["requantize_ops"],
        "rescale_ops": summary["rescale_ops"],
        "quantize_ops": summary["quantize_ops"], "dequantize_ops": summary["dequantize_ops"],
        "float_ops": float_ops, "rewritten_activations": prep.rewritten,
        "inputs": summary["inputs"], "outputs": summary["outputs"], "calibration": calib.to_json(),
        "verified": True,
    }


def hand_policy(prep: Prepared, name: str, scale: int) -> Policy:
    """The usual hand-written starting point: the layers reading the input and everything from
    the last conv on at a16w8, the rest a8w8 (SR error concentrates at the two ends)."""
    first = {u.name for u in prep.graph.units if u.reads_input}
    convs = [n for n in prep.layers if prep.graph.unit(n).conv]
    last = set(prep.layers[prep.layers.index(convs[-1]):]) if convs else set()
    return Policy(name, scale, "a8w8", tuple((n, "a16w8") for n in prep.layers if n in first or n in last))
