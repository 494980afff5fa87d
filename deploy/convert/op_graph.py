"""The policy-addressable units of a model and how they connect, framework-neutral.

A `LayerGraph` is what per-layer conversion, `--list_layers`, hand policies and the search's
decision groups need to know about a model: its units in graph order (a Keras layer, or an op
group of a float TFLite), which units each reads, which hold a kernel, output shapes, MACs, and
the receptive radius. It is made from a tf_keras model (`from_keras`, the zoo route) or from the
float TFLite itself (`from_tflite`, the route of Keras 3 models and float TFLite files from any
framework), so everything after `per_layer.prepare` works the same for both.

Op groups (float TFLite without Keras layer names): every conv / transpose-conv / depthwise /
fully-connected op starts a group; an op with exactly one non-constant input, produced by an op
whose output nothing else reads (an activation, the pixel-shuffle reshapes, an output scale),
joins the group of that producer; any other op starts a group of its own. A group is named by a
readable form of its first op's output tensor name (the model-wide scope prefix and the TF op
suffix dropped, e.g. `functional_1/conv_1/Relu;functional_1/conv_1/convolution` -> `conv_1`; a
litert-torch scope name -> the PyTorch module path, e.g. `__main__.ESPCN/torch.nn.modules.container.
Sequential_body/torch.nn.modules.conv.Conv2d_0;2` -> `body.0`), or
`<op type>_<index>` when the name says nothing; duplicates get `.2`, `.3`. Names depend only
on the file, so they are stable across runs and a policy written once keeps applying.
"""
from __future__ import annotations

import collections
import dataclasses
import re
from typing import Callable, Optional

import numpy as np

from deploy.convert.tflite_io import make_interpreter

#: Ops that carry weights: each starts an op group and counts MACs.
KERNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED", "CONV_3D")


@dataclasses.dataclass(frozen=True)
class Unit:
    name: str
    kind: str  # Keras class name, or the first op's type
    inputs: tuple[str, ...]  # units it reads
    has_kernel: bool
    conv: bool  # a convolution (hand policies keep everything from the last one on wide)
    output_shape: tuple
    macs: int
    reads_input: bool


@dataclasses.dataclass(frozen=True)
class LayerGraph:
    units: tuple[Unit, ...]
    input_shape: tuple
    receptive_radius: float

    def unit(self, name: str) -> Unit:
        return next(u for u in self.units if u.name == name)

    @property
    def inbound(self) -> dict[str, list[str]]:
        return {u.name: list(u.inputs) for u in self.units}


# ---------------------------------------------------------------- tf_keras (zoo) models

def from_keras(model, macs_of: Callable[[object], int], no_op_layers=("InputLayer",)) -> LayerGraph:
    """The graph of a tf_keras model, unit = layer (the zoo route; unchanged behaviour)."""
    from models._keras import keras
    from models.complexity import receptive_radius
    units = []
    for layer in model.layers:
        if layer.__class__.__name__ in no_op_layers:
            continue
        inbound = []
        for node in layer._inbound_nodes:  # noqa: SLF001 - tf_keras exposes no public graph walk
            ls = node.inbound_layers
            inbound += list(ls if isinstance(ls, (list, tuple)) else [ls])
        units.append(Unit(layer.name, layer.__class__.__name__, tuple(l.name for l in inbound),
                          getattr(layer, "kernel", None) is not None,
                          isinstance(layer, keras.layers.Conv2D), tuple(layer.output_shape),
                          macs_of(layer), any(isinstance(l, keras.layers.InputLayer) for l in inbound)))
    return LayerGraph(tuple(units), tuple(model.input_shape), float(receptive_radius(model)))


# ---------------------------------------------------------------- float TFLite graphs

@dataclasses.dataclass(frozen=True)
class _Op:
    index: int
    op: str
    inputs: tuple[int, ...]  # non-constant input tensors
    weights: tuple[int, ...]  # constant inputs
    outputs: tuple[int, ...]
    out_name: str


def _read(tflite: bytes):
    interp = make_interpreter(tflite, delegates=False)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    raw = interp._get_ops_details()  # noqa: SLF001 - the only API listing ops with tensors
    produced = {o for op in raw for o in op["outputs"] if o >= 0}
    model_in = {d["index"] for d in interp.get_input_details()}
    ops = []
    for op in raw:
        ins = [i for i in op["inputs"] if i >= 0]
        outs = tuple(i for i in op["outputs"] if i >= 0)
        dyn = tuple(i for i in ins if i in produced or i in model_in)
        ops.append(_Op(op["index"], op["op_name"], dyn, tuple(i for i in ins if i not in dyn), outs,
                       tensors[outs[0]]["name"] if outs else ""))
    return interp, tensors, ops, model_in


def _macs(op: _Op, tensors) -> int:
    shape = lambda i: [int(d) for d in tensors[i]["shape"]]  # noqa: E731
    if op.op not in KERNEL_OPS or not op.weights or not op.outputs:
        return 0
    out = shape(op.outputs[0])
    w = shape(op.weights[0]) if op.op != "TRANSPOSE_CONV" else None
    if op.op == "CONV_2D":  # w [O, kh, kw, I]
        return int(np.prod(out)) * w[1] * w[2] * w[3]
    if op.op == "DEPTHWISE_CONV_2D":  # w [1, kh, kw, C*M]
        return int(np.prod(out)) * w[1] * w[2]
    if op.op == "TRANSPOSE_CONV":  # weights [O, kh, kw, I]; input [1, h, w, I]
        ws = [shape(i) for i in op.weights if len(tensors[i]["shape"]) == 4]
        if not ws or not op.inputs:
            return 0
        x = shape(op.inputs[0])
        return int(np.prod(x[:-1])) * int(np.prod(ws[0]))
    if op.op == "FULLY_CONNECTED":
        return int(np.prod(out)) * w[-1]
    return 0


_TF_OP_SUFFIX = re.compile(r"^(convolution|conv_transpose|Conv2D|BiasAdd|Relu6?|Squeeze|Add(V2)?|Mul|"
                           r"MatMul|Reshape|transpose|Tanh|Sigmoid|depthwise|DepthToSpace|mul|add|"
                           r"Conv2DBackpropInput|Minimum|Maximum|clip_by_value)\d*(:\d+)?$")


_TORCH_WRAPPER = "litert_torch._convert.to_channel_last_io.ChannelLastIOWrapper"


def _torch_path(comps: list[str]) -> Optional[str]:
    """litert-torch scope names (`<module>.<Class>_<attribute>/...`, the root module first, without
    an attribute) -> the PyTorch module path (`named_modules()`: `body.0`); None if not that form.
    `to_channel_last_io`'s wrapper and its `wrapped` attribute are dropped."""
    if not comps or not all("." in c for c in comps):
        return None
    rest = comps[2:] if comps[0] == _TORCH_WRAPPER else comps[1:]
    attrs = [c.rsplit(".", 1)[1].partition("_")[2] for c in rest]
    return ".".join(attrs) if all(attrs) else None


def _readable(names: list[str]) -> list[str]:
    """Readable, unique unit names from each group's first tensor name (see module docstring)."""
    split = []
    for n in names:
        part = [p for p in n.split(";") if p and not p.isdigit()]  # litert-torch appends `;<n>`
        last = (part[-1] if part else "").split(":")[0]
        comps = [c for c in last.split("/") if c and not re.fullmatch(r"srdL\d+", c)]
        torch_path = _torch_path(comps)
        if torch_path is not None:
            split.append([torch_path] if torch_path else [])
            continue
        if len(comps) > 1 and _TF_OP_SUFFIX.match(comps[-1]):
            comps = comps[:-1]
        split.append(comps)
    multi = [c for c in split if len(c) > 1]
    common = multi[0][0] if multi and all(c[0] == multi[0][0] for c in multi) and len(multi) > 1 else None
    out = []
    for comps in split:
        if common is not None and len(comps) > 1 and comps[0] == common:
            comps = comps[1:]
        out.append("/".join(comps))
    return out


def from_tflite(tflite: bytes, assign: Optional[Callable[[str], Optional[str]]] = None,
                output_unit: Optional[str] = None, unit_order: Optional[list[str]] = None,
                kinds: Optional[dict[str, str]] = None,
                weighted: frozenset = frozenset()) -> tuple[LayerGraph, dict[int, Optional[str]]]:
    """The graph of a float TFLite model and each op's unit.

    `assign(tensor_name) -> unit or None` names units from tensor names (Keras 3 layers); the
    model's output op (renamed by the converter) belongs to the layer its weights are named
    after (one of `weighted`: a Rescaling folded into a conv leaves the conv's name on them), else
    to `output_unit`. Without `assign`, units are op groups.
    """
    interp, tensors, ops, model_in = _read(tflite)
    producer = {o: op.index for op in ops for o in op.outputs}
    readers = collections.Counter(i for op in ops for i in op.inputs)
    out_tensors = {d["index"] for d in interp.get_output_details()}
    unit_of: dict[int, Optional[str]] = {}
    if assign is not None:
        for op in ops:
            u = assign(op.out_name)
            if u is None and out_tensors & set(op.outputs):
                named = [assign(tensors[w]["name"]) for w in op.weights]
                u = next((n for n in named if n in weighted), output_unit)
            unit_of[op.index] = u
        order = [u for u in (unit_order or []) if u in set(unit_of.values())]
        order += [u for u in dict.fromkeys(unit_of.values()) if u is not None and u not in order]
    else:
        group_of: dict[int, int] = {}
        heads: list[int] = []
        for op in ops:
            src = producer.get(op.inputs[0]) if len(op.inputs) == 1 else None
            if (op.op not in KERNEL_OPS and src is not None and readers[op.inputs[0]] == 1
                    and not (out_tensors & set(ops[src].outputs))):
                group_of[op.index] = group_of[src]
            else:
                group_of[op.index] = len(heads)
                heads.append(op.index)
        names = _readable([ops[h].out_name for h in heads])
        seen: collections.Counter = collections.Counter()
        final = []
        for h, n in zip(heads, names):
            n = n or f"{ops[h].op.lower()}_{h}"
            if re.fullmatch(r"StatefulPartitionedCall(_\d+)?|serving_default.*|Identity(_\d+)?", n):
                n = f"{ops[h].op.lower()}_{h}"
            seen[n] += 1
            final.append(n if seen[n] == 1 else f"{n}.{seen[n]}")
        unit_of = {op.index: final[group_of[op.index]] for op in ops}
        order = final
        kinds = {n: ops[h].op for n, h in zip(final, heads)}
    by_unit: dict[str, list[_Op]] = collections.defaultdict(list)
    for op in ops:
        if unit_of[op.index] is not None:
            by_unit[unit_of[op.index]].append(op)
    in_shape = tuple(int(d) for d in interp.get_input_details()[0]["shape"])
    units = []
    for name in order:
        mine = by_unit[name]
        srcs = []
        for op in mine:
            for i in op.inputs:
                p = producer.get(i)
                if p is not None and unit_of[p] not in (None, name) and unit_of[p] not in srcs:
                    srcs.append(unit_of[p])
        last = mine[-1]
        shape = tuple(int(d) for d in tensors[last.outputs[0]]["shape"]) if last.outputs else ()
        has_kernel = any(o.op in KERNEL_OPS for o in mine)
        units.append(Unit(name, (kinds or {}).get(name, mine[0].op), tuple(srcs), has_kernel,
                          any(o.op in KERNEL_OPS[:3] + ("CONV_3D",) for o in mine), shape,
                          sum(_macs(o, tensors) for o in mine),
                          any(i in model_in for o in mine for i in o.inputs)))
    return LayerGraph(tuple(units), in_shape, _radius(ops, tensors, in_shape, producer)), unit_of


def _radius(ops: list[_Op], tensors, in_shape, producer) -> float:
    """LR pixels of context one output pixel depends on (as models.complexity.receptive_radius)."""
    in_h = max(in_shape[1], 1) if len(in_shape) == 4 else 1
    r: dict[int, float] = {}

    def up(i) -> float:
        s = tensors[i]["shape"]
        return float(s[1]) / in_h if len(s) == 4 and s[1] > 0 else 1.0

    for op in ops:
        base = max((r.get(i, 0.0) for i in op.inputs), default=0.0)
        w = [tensors[i]["shape"] for i in op.weights if len(tensors[i]["shape"]) == 4]
        if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D") and w and op.inputs:
            base += (int(w[0][1]) - 1) / 2 / up(op.inputs[0])
        elif op.op == "TRANSPOSE_CONV" and w and op.outputs:
            base += (int(w[0][1]) - 1) / 2 / up(op.outputs[0])
        elif op.op.startswith("RESIZE") and op.inputs:
            base += 1.0 / up(op.inputs[0])
        for o in op.outputs:
            r[o] = base
    return max(r.values(), default=0.0)
