"""The float TFLite graph's work, op by op, and the tensors crossing policy layers: what every cost
model prices (cost_model.from_device_profile, npu_cost) and the published-latency fit counts
(bench/published/graph_work.py uses op_work).

Per op: its Keras layer (the prepared model's op mapping), profile op class, work (MACs for convs
and FC, output elements otherwise; channels tiled as a profile tiles them: htp_tiling), activation
traffic and weight elements. Per edge: a tensor produced by one policy layer and read by another.
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Mapping, Optional

import numpy as np

from deploy.convert.tflite_io import make_interpreter
from deploy.latency.device_profiles import op_class
from deploy.latency.htp_fusion import fused_ops
from deploy.latency.htp_tiling import activation_ids, tiled_work, traffic_elements, weight_elements

__all__ = ["Edge", "OpWork", "graph_ops", "op_work", "graph_edges"]


@dataclasses.dataclass(frozen=True)
class Edge:
    """A tensor produced by one policy layer and consumed by another."""
    producer: str
    consumer: str
    elements: int



@dataclasses.dataclass(frozen=True)
class OpWork:
    index: int
    op: str
    layer: Optional[str]
    klass: str
    work: int            # MACs for conv classes, output elements otherwise
    tensor: str          # first output tensor name
    traffic: int = 0     # activation elements read + written, channels tiled (htp_tiling.traffic_elements)
    weights: int = 0     # weight elements of a conv / FC (htp_tiling.weight_elements)
    fused: str = ""      # how an NPU compiler folds it into a neighbour (htp_fusion.KINDS), "" if it does not


def _elements(shape) -> int:
    return int(np.prod([int(d) for d in shape])) if len(shape) else 1


def _details(prep):
    interp = make_interpreter(prep.float_tflite, delegates=False)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    return interp, interp._get_ops_details(), tensors  # noqa: SLF001 - op inputs/outputs


def graph_ops(prep, tile: int = 1, convs: str = "all", elementwise: bool = True,
              traffic_tile: int = 32, fuse: Mapping | None = None) -> list[OpWork]:
    """Every op of the float model with its Keras layer, op class and work (channel dims rounded
    up to `tile` when > 1, for the convs / elementwise ops a profile tiles: htp_tiling), its
    activation traffic (channels rounded up to `traffic_tile`), and, with `fuse` (a profile's
    DeviceProfile.fuse), whether the NPU compiler folds it away (htp_fusion)."""
    interp, ops, tensors = _details(prep)
    acts = activation_ids(ops, [d["index"] for d in interp.get_input_details()])
    fused = fused_ops(ops, tensors, acts, [d["index"] for d in interp.get_output_details()], fuse["kinds"],
                      fuse["tile"]) if fuse and fuse.get("kinds") else {}
    out = []
    for k, (od, mo) in enumerate(zip(ops, prep.ops)):
        ins = [i for i in od["inputs"] if i >= 0]
        outs = [i for i in od["outputs"] if i >= 0]
        op = mo.op  # the same name as od["op_name"]: both come from this interpreter
        out_el = _elements(tensors[outs[0]]["shape"]) if outs else 0
        klass, work = op_work(op, ins, out_el, tensors)
        work = tiled_work(op, ins, outs, tensors, tile, convs, elementwise) if tile > 1 else work
        out.append(OpWork(mo.index, op, mo.layer, klass, int(work), mo.tensor,
                          traffic_elements(ins, outs, tensors, acts, traffic_tile), weight_elements(op, ins, tensors),
                          fused.get(k, "")))
    return out


def op_work(op: str, ins: list[int], out_el: int, tensors: dict) -> tuple[str, int]:
    """(op class, work) of one TFLite op: MACs for convs and FC, output elements otherwise."""
    kernel = None
    if op in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV") and len(ins) >= 2:
        w = tensors[ins[1]]["shape"]           # [O, kh, kw, I] (depthwise: [1, kh, kw, C])
        kernel = (int(w[1]), int(w[2]))
    klass = op_class(op, kernel)
    if op == "CONV_2D":
        w = tensors[ins[1]]["shape"]
        work = out_el * int(w[1]) * int(w[2]) * int(w[3])
    elif op == "DEPTHWISE_CONV_2D":
        work = out_el * int(tensors[ins[1]]["shape"][1]) * int(tensors[ins[1]]["shape"][2])
    elif op == "TRANSPOSE_CONV":   # inputs: output_shape, weights [O,kh,kw,I], input
        w, x = tensors[ins[1]]["shape"], tensors[ins[2]]["shape"]
        work = _elements(x[:-1]) * int(w[0]) * int(w[1]) * int(w[2]) * int(w[3])
    elif op == "FULLY_CONNECTED":
        work = out_el * int(tensors[ins[1]]["shape"][-1])
    else:
        work = out_el
    return klass, int(work)


def graph_edges(prep) -> tuple[Edge, ...]:
    """(producer layer, consumer layer, elements) for every tensor crossing two policy layers,
    each tensor counted once per consumer layer; ops without a layer and model I/O excluded."""
    _, ops, tensors = _details(prep)
    producer = {}
    for od, mo in zip(ops, prep.ops):
        for i in od["outputs"]:
            producer[int(i)] = mo.layer
    acc: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for od, mo in zip(ops, prep.ops):
        for i in od["inputs"]:
            i = int(i)
            src = producer.get(i)
            if i < 0 or src is None or mo.layer is None or src == mo.layer:
                continue
            acc[(src, mo.layer)][i] = _elements(tensors[i]["shape"])
    order = {n: k for k, n in enumerate(prep.layers)}
    keys = sorted(acc, key=lambda k: (order.get(k[1], 1 << 30), order.get(k[0], 1 << 30)))
    return tuple(Edge(a, b, sum(acc[(a, b)].values())) for a, b in keys)


def _io_elements(prep) -> tuple[int, int]:
    interp, _, _ = _details(prep)
    return (sum(_elements(d["shape"]) for d in interp.get_input_details()),
            sum(_elements(d["shape"]) for d in interp.get_output_details()))


def _input_hw(prep) -> tuple[int, int]:
    shape = prep.input_shape
    return int(shape[1]), int(shape[2])
