"""Empirical bias correction: each conv's mean output shift under quantization, taken out of its bias.

Why: rounding weights and clipping/rounding activations is not zero-mean per channel; on smooth
photos a per-channel offset of a feature map becomes a visible DC error in the image (FSRCNN x3
int8 is off by up to 1.5 grey levels per colour on flat validation patches). Nagel et al.
("Data-Free Quantization", ICCV 2019, sec. 4.2) correct E[W~x] - E[Wx] in the bias; the empirical
form measures the shift on calibration data. We measure it in the real quantized model, so it
includes everything upstream (activation grids, rewritten PReLUs, earlier convs), and correct
convs one at a time in graph order, re-quantizing after each, so every correction sees the ones
before it (AIMET's empirical bias correction works layer by layer the same way).

Where: on the float TFLite (the bias buffers of CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV), so
every source route (tf_keras, Keras 3, a float TFLite) gets it and the op -> layer map is
untouched. The activation ranges stay those of the original float model: the corrected
quantized model aims at the original float model's activations. A conv with a fused activation
(RELU, RELU6, ...) is measured where both float and quantized outputs are active, where the
activation is the identity; a channel active on fewer than `MIN_ACTIVE` positions is left alone.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

from deploy.convert.ptq.act_ranges import preserving_interpreter

#: ops with a bias input, and its position
BIAS_INPUT = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "TRANSPOSE_CONV": 3}
MIN_ACTIVE = 16


def _builtin_name(model, op) -> str:
    code = flatbuffer_utils.get_builtin_code_from_operator_code(model.operatorCodes[op.opcodeIndex])
    return next((k for k, v in schema.BuiltinOperator.__dict__.items() if v == code), "")


def biased_convs(float_tflite: bytes) -> list[tuple[int, str, bool]]:
    """(op index, output tensor name, fused activation?) of every conv with a float bias, in order."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(float_tflite))
    sg = model.subgraphs[0]
    out = []
    for i, op in enumerate(sg.operators):
        pos = BIAS_INPUT.get(_builtin_name(model, op))
        if pos is None or len(op.inputs) <= pos or op.inputs[pos] < 0:
            continue
        if sg.tensors[op.inputs[pos]].type != schema.TensorType.FLOAT32:
            continue
        fused = getattr(op.builtinOptions, "fusedActivationFunction", 0) not in (0, None)
        out.append((i, sg.tensors[op.outputs[0]].name.decode(), fused))
    return out


def add_to_bias(float_tflite: bytes, op_index: int, delta: np.ndarray) -> bytes:
    """The model with `delta` added to one op's float bias (a shared bias buffer is copied first)."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(float_tflite))
    sg = model.subgraphs[0]
    op = sg.operators[op_index]
    t = sg.tensors[op.inputs[BIAS_INPUT[_builtin_name(model, op)]]]
    bias = np.frombuffer(bytes(model.buffers[t.buffer].data), np.float32).copy()
    if bias.shape != delta.shape:
        raise ValueError(f"bias of op {op_index} has {bias.size} channels, correction {delta.size}")
    users = sum(1 for g in model.subgraphs for x in g.tensors if x.buffer == t.buffer)
    if users > 1:
        b = schema.BufferT()
        model.buffers.append(b)
        t.buffer = len(model.buffers) - 1
    model.buffers[t.buffer].data = np.frombuffer((bias + delta.astype(np.float32)).tobytes(), np.uint8)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _dequantized(interp, index: int) -> np.ndarray:
    d = interp._get_tensor_details(index, 0)  # noqa: SLF001 - scale/zero point of any tensor
    x = interp.get_tensor(index)
    scale, zero = d["quantization"]
    return x.astype(np.float64) if not scale else (x.astype(np.float64) - zero) * scale


def channel_shift(float_tflite: bytes, quant_tflite: bytes, patches: np.ndarray, tensor: str,
                  fused: bool) -> Optional[np.ndarray]:
    """Per output channel mean of (quantized - float) of `tensor` over the patches."""
    fi, qi = preserving_interpreter(float_tflite), preserving_interpreter(quant_tflite)
    f_idx = {d["name"]: d["index"] for d in fi.get_tensor_details()}.get(tensor)
    q_idx = {d["name"]: d["index"] for d in qi.get_tensor_details()}.get(tensor)
    if f_idx is None or q_idx is None:
        return None
    q_in = qi.get_input_details()[0]
    total = count = None
    for p in patches:
        x = p[None].astype(np.float32)
        fi.set_tensor(fi.get_input_details()[0]["index"], x)
        fi.invoke()
        qi.set_tensor(q_in["index"], x if q_in["dtype"] == np.float32 else _quant_input(x, q_in))
        qi.invoke()
        f, q = _dequantized(fi, f_idx), _dequantized(qi, q_idx)
        d = (q - f).reshape(-1, f.shape[-1])
        m = ((f > 0) & (q > 0)).reshape(-1, f.shape[-1]) if fused else np.ones_like(d, bool)
        s, n = (d * m).sum(0), m.sum(0)
        total, count = (s, n) if total is None else (total + s, count + n)
    return np.where(count >= MIN_ACTIVE, total / np.maximum(count, 1), 0.0)


def _quant_input(x: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(detail["dtype"])


def correct(float_tflite: bytes, patches: np.ndarray, quantize: Callable[[bytes], bytes]) -> tuple[bytes, dict]:
    """`float_tflite` with every conv's bias corrected for the mean shift `quantize` causes.

    `quantize(float_bytes) -> quantized bytes` is the caller's fixed recipe and activation
    ranges. Returns the corrected float model and a summary for the report."""
    model, per_conv = float_tflite, {}
    for index, tensor, fused in biased_convs(float_tflite):
        shift = channel_shift(float_tflite, quantize(model), patches, tensor, fused)
        if shift is None:
            continue
        model = add_to_bias(model, index, -shift)
        per_conv[tensor.split(";")[0]] = round(float(np.abs(shift).max()), 6)
    return model, {"method": "empirical", "convs_corrected": len(per_conv),
                   "max_abs_shift": per_conv}

