"""Channel-tiled work: what an op costs on an NPU that stores activations in fixed channel tiles.

Why: the Hexagon HTP stores activations "with a fixed granularity of channels ... rounded to the
next multiple of 32" and runs convs on a matrix engine built for "dense dot products down many
channels" (Qualcomm AI Engine Direct SDK 80-63442-10, HTP guidelines "Avoid low depth
Activations" and "Number of channels", docs.qualcomm.com/doc/80-63442-10/topic/
htp_guidelines_low_depth_activations.html, .../htp_guidelines_channels.html). So a 3->32 conv
costs as much as a 32->32 one, and a 4-group conv of 8 channels per group computes 4 padded
32x32 blocks. A profile with {"channel_tile": {"channels": 32, ...}} prices this tiled work
instead of the raw MACs / elements (`cost_model.from_device_profile`); profiles without it are
priced exactly as before.

Memory traffic (`traffic_elements`): the activation elements an op reads and writes, channels
tiled the same way. A profile with "activation_traffic" prices them at a per-precision rate: the
time a 512x512x3 SR output or a pixel shuffle spends moving tiles, which its MACs do not show. Weights (`weight_elements`): a conv's or FC's weight elements, which a
profile with "weight_traffic" prices at a per-precision rate (the DDR fetch of the weights).
"""
from __future__ import annotations

import math

__all__ = ["CONV_TILING", "ceil_to", "tiled_work", "activation_ids", "traffic_elements", "weight_elements"]


def ceil_to(n: int, tile: int) -> int:
    """n rounded up to a multiple of tile (tile <= 1: n)."""
    return int(n) if tile <= 1 else int(math.ceil(int(n) / tile) * tile)


def _shape(tensors: dict, i: int) -> list[int]:
    return [int(d) for d in tensors[i]["shape"]]


def _el(shape: list[int]) -> int:
    return int(math.prod(shape)) if shape else 1


#: which convs a profile's channel tiling applies to: every conv ("all", grouped ones per group), dense
#: convs only ("dense": grouped and depthwise convs at their raw MACs), or none ("none": convs raw)
CONV_TILING = ("all", "dense", "none")


def tiled_work(op: str, ins: list[int], outs: list[int], tensors: dict, tile: int, convs: str = "all",
               elementwise: bool = True) -> int:
    """Work of one TFLite op with channel (last) dimensions rounded up to `tile`:
    convs in MACs (a grouped conv per group: groups x tiled(in/group) x tiled(out/group)),
    other ops in output elements with the channel dimension tiled. `convs` and `elementwise`
    say which ops are tiled (CONV_TILING; elementwise False: raw output elements)."""
    if not outs:
        return 0
    out = _shape(tensors, outs[0])
    conv_like = op in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED")
    if not (elementwise or conv_like):
        return _el(out)
    if conv_like and (convs == "none" or (convs == "dense" and op == "DEPTHWISE_CONV_2D")):
        return tiled_work(op, ins, outs, tensors, 1)
    if op == "CONV_2D" and len(ins) >= 2:
        o, kh, kw, i_g = _shape(tensors, ins[1])          # [O, kh, kw, I/groups]
        groups = max(1, _shape(tensors, ins[0])[-1] // i_g)
        if groups > 1 and convs == "dense":
            return tiled_work(op, ins, outs, tensors, 1)
        return (_el(out[:-1]) * kh * kw * groups
                * ceil_to(i_g, tile) * ceil_to(o // groups, tile))
    if op == "DEPTHWISE_CONV_2D" and len(ins) >= 2:
        _, kh, kw, _ = _shape(tensors, ins[1])
        return _el(out[:-1]) * kh * kw * ceil_to(out[-1], tile)
    if op == "TRANSPOSE_CONV" and len(ins) >= 3:          # inputs: output_shape, weights, input
        o, kh, kw, i = _shape(tensors, ins[1])
        return _el(_shape(tensors, ins[2])[:-1]) * kh * kw * ceil_to(i, tile) * ceil_to(o, tile)
    if op == "FULLY_CONNECTED" and len(ins) >= 2:
        o, i = _shape(tensors, ins[1])[-2:]
        return _el(out[:-1]) * ceil_to(i, tile) * ceil_to(o, tile)
    return _el(out[:-1]) * ceil_to(out[-1], tile) if out else 1



def activation_ids(ops: list[dict], input_ids) -> set[int]:
    """Tensor ids that are activations (produced by an op, or a graph input), not weights/constants."""
    return {int(i) for od in ops for i in od["outputs"] if i >= 0} | {int(i) for i in input_ids}


def traffic_elements(ins: list[int], outs: list[int], tensors: dict, acts: set[int], tile: int = 32) -> int:
    """Activation elements one op reads and writes, the channel (last) dim rounded up to `tile`."""
    total = 0
    for i in list(ins) + list(outs):
        if int(i) in acts:
            s = _shape(tensors, int(i))
            total += _el(s[:-1]) * ceil_to(s[-1], tile) if s else 1
    return int(total)


def weight_elements(op: str, ins: list[int], tensors: dict) -> int:
    """Weight elements of a conv / depthwise / transpose conv / FC op (its second input), else 0."""
    if op in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED") and len(ins) >= 2:
        return _el(_shape(tensors, int(ins[1])))
    return 0
