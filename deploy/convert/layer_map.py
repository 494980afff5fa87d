"""Exact mapping between Keras layer names and the ops of the float TFLite model.

The converter names each op's output tensor after the fused ops it came from, e.g.
`xlsr_x3/head_g0/Relu;xlsr_x3/head_g0/Conv2D`; the last `;` part is the op itself and its
second `/` component is the Keras layer. Components are compared whole, so `body_1` never
matches `body_10`. The model's final op is renamed `StatefulPartitionedCall:0` by the converter;
it belongs to the Keras output layer. AI Edge Quantizer scopes rules by regex on these tensor
names (its 'scope': output names joined by ';' with a trailing ';'), so each op gets the
anchored, escaped regex of its own scope.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Iterable, Optional

from deploy.convert.tflite_io import make_interpreter, summarize

#: Keras layer types that hold no TFLite compute op of their own.
_NO_OP_LAYERS = ("InputLayer",)


@dataclasses.dataclass(frozen=True)
class MappedOp:
    index: int
    op: str
    tensor: str
    layer: Optional[str]  # None: no Keras layer found (gets the policy default)

    scope: str  # AEQ's op scope: output tensor names joined by ';' plus a trailing ';'

    @property
    def regex(self) -> str:
        return "^" + re.escape(self.scope) + "$"


def layer_of(tensor: str, layer_names: set[str]) -> Optional[str]:
    parts = [p for p in tensor.split(";") if p]
    for part in reversed(parts):  # the op itself first, then what was fused into it
        comps = part.split("/")
        for comp in comps[1:] if len(comps) > 1 else comps:
            if comp in layer_names:
                return comp
    return None


def map_ops(tflite: bytes, layer_names: Iterable[str], output_layer: Optional[str]) -> list[MappedOp]:
    """Every op of a float TFLite model with its Keras layer."""
    names = set(layer_names)
    summary = summarize(make_interpreter(tflite, delegates=False))
    out_tensors = {o["name"] for o in summary.outputs}
    mapped = []
    for op in summary.ops:
        tensor = op.output_names[0] if op.output_names else ""
        layer = layer_of(tensor, names)
        if layer is None and tensor in out_tensors:
            layer = output_layer
        scope = ";".join(n for n in op.output_names if n) + (";" if op.output_names else "")
        mapped.append(MappedOp(op.index, op.op, tensor, layer, scope))
    return mapped


def quantizable_layers(model) -> list[str]:
    """Keras layers (in graph order) a policy can address: everything that emits an op."""
    return [l.name for l in model.layers if l.__class__.__name__ not in _NO_OP_LAYERS]
