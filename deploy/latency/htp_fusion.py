"""Which ops an NPU graph compiler folds into their neighbours, so that they cost no work of their own.

Why: a TFLite graph is not the graph the phone runs. QNN's HTP backend runs a conv followed by a
ReLU / ReLU6 / clip as ONE conv op (the activation applied as the conv writes its output: ONNX
Runtime's QNN EP "Support Conv + Clip/Relu fusion", translating Conv -> Relu/Clip into a single QNN
Conv, https://github.com/microsoft/onnxruntime/pull/21537). The TFLite converter fuses plain ReLU and
ReLU6 into CONV_2D itself, but leaves a clip to [0, 1] (PyTorch Hardtanh(0, 1), Keras
`ReLU(max_value=1)`: QuickSRNet's, XLSR's activation) as MINIMUM + RELU: priced op by op, those cost
as much as the conv on a 32-channel SR body.

A second kind, a HYPOTHESIS with no vendor page behind it (so a profile uses it only where the
published-latency fit's cross-validation prefers it, bench/fit_published_profiles.py): a channel
concatenation whose inputs are each whole 32-channel tiles (the HTP's activation layout,
htp_tiling) is written in place by its producers, at no cost of its own (DenseNet's, RRDBNet's
dense blocks).

Kinds: "act" (conv activations) and "concat" (tile-aligned channel concatenations).
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Iterable

__all__ = ["KINDS", "fused_ops"]

KINDS = ("act", "concat")
ACTIVATIONS = frozenset({"RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1"})
CLIPS = frozenset({"MINIMUM", "MAXIMUM"})            # with a one-element constant: half of a clip
CONV_LIKE = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED"})


def _shape(tensors: dict, i: int) -> list[int]:
    return [int(d) for d in tensors[i]["shape"]]


def _is_scalar_const(i: int, tensors: dict, acts: set[int]) -> bool:
    return i not in acts and math.prod(_shape(tensors, i)) == 1


def _channel_concat(ins: list[int], out: int, tensors: dict, acts: set[int], tile: int) -> bool:
    o = _shape(tensors, out)
    shapes = [_shape(tensors, i) for i in ins]
    return (len(ins) >= 2 and all(i in acts for i in ins) and len(o) >= 2
            and all(len(s) == len(o) and s[:-1] == o[:-1] and s[-1] % tile == 0 for s in shapes)
            and sum(s[-1] for s in shapes) == o[-1])


def fused_ops(ops: list[dict], tensors: dict, acts: set[int], graph_outputs: Iterable[int],
              kinds: Iterable[str] = KINDS, tile: int = 32) -> dict[int, str]:
    """{op position: kind} of the ops (interpreter op details, in execution order) that fold away:
    "act": a ReLU-family op, or a MINIMUM / MAXIMUM with a one-element constant, whose input is the
    sole use of a conv's output (or of an activation already folded into one), never a graph
    output; "concat": a concatenation along the last (channel) axis of activations that are each
    a multiple of `tile` channels."""
    kinds = set(kinds)
    outputs = {int(i) for i in graph_outputs}
    producer, uses = {}, Counter()
    for k, od in enumerate(ops):
        for i in od["outputs"]:
            producer[int(i)] = k
        for i in od["inputs"]:
            if int(i) >= 0:
                uses[int(i)] += 1
    fused: dict[int, str] = {}
    for k, od in enumerate(ops):
        name = od["op_name"]
        ins = [int(i) for i in od["inputs"] if int(i) >= 0]
        outs = [int(i) for i in od["outputs"] if int(i) >= 0]
        a_ins = [i for i in ins if i in acts]
        if "act" in kinds and len(a_ins) == 1 and (
                name in ACTIVATIONS or (name in CLIPS and len(ins) == 2
                                        and all(_is_scalar_const(i, tensors, acts) for i in ins if i != a_ins[0]))):
            src = a_ins[0]
            p = producer.get(src)
            if (p is not None and uses[src] == 1 and src not in outputs
                    and (ops[p]["op_name"] in CONV_LIKE or fused.get(p) == "act")):
                fused[k] = "act"
        elif "concat" in kinds and name == "CONCATENATION" and outs and _channel_concat(ins, outs[0], tensors, acts, tile):
            fused[k] = "concat"
    return fused
