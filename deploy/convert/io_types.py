"""uint8 model I/O for per-layer (AI Edge Quantizer) models, by editing the flatbuffer.

AEQ emits int8 or float I/O only, and TFLite's modify_model_interface refuses models that
contain int16. Camera frames are uint8, so for `io_type: uint8` we take AEQ's float-I/O model,
whose graph starts with QUANTIZE(float -> int8|int16) and ends with DEQUANTIZE(int -> float),
and make the input and output uint8 with scale peak/255, zero point 0 (a pixel value maps to
exactly the model's own units). Every dtype change is an explicit QUANTIZE op LiteRT supports:
  uint8 in -> QUANTIZE -> int8 (new) -> [original QUANTIZE] -> int8|int16 ...
  ... int8|int16 -> QUANTIZE -> int8 (new) -> QUANTIZE -> uint8 out   (replaces DEQUANTIZE)
"""
from __future__ import annotations

from deploy.errors import UserInputError

from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils


def _qparams(scale: float, zero: int) -> schema.QuantizationParametersT:
    q = schema.QuantizationParametersT()
    q.scale, q.zeroPoint = [float(scale)], [int(zero)]
    return q


def _new_tensor(sg, like, name: str, ttype: int, scale: float, zero: int) -> int:
    t = schema.TensorT()
    t.shape, t.shapeSignature = list(like.shape), (list(like.shapeSignature) if like.shapeSignature is not None else None)
    t.type, t.name, t.quantization, t.buffer = ttype, name.encode(), _qparams(scale, zero), 0
    sg.tensors.append(t)
    return len(sg.tensors) - 1


def _opcode(model, builtin: int) -> int:
    for i, oc in enumerate(model.operatorCodes):
        if flatbuffer_utils.get_builtin_code_from_operator_code(oc) == builtin:
            return i
    oc = schema.OperatorCodeT()
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = builtin, min(builtin, 127), 1
    model.operatorCodes.append(oc)
    return len(model.operatorCodes) - 1


def _op(opcode: int, inp: int, out: int) -> schema.OperatorT:
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = opcode, [inp], [out]
    return op


def to_uint8_io(float_io_model: bytes, peak: float = 1.0) -> bytes:
    """uint8 input and output (scale peak/255, zero point 0) for a float-I/O quantized model."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(float_io_model))
    sg = model.subgraphs[0]
    quant = _opcode(model, schema.BuiltinOperator.QUANTIZE)
    codes = [flatbuffer_utils.get_builtin_code_from_operator_code(oc) for oc in model.operatorCodes]
    scale = peak / 255.0
    (in_idx,), (out_idx,) = sg.inputs, sg.outputs
    consumers = [op for op in sg.operators if in_idx in op.inputs]
    producer = next((op for op in sg.operators if out_idx in op.outputs), None)
    if (not consumers or any(codes[op.opcodeIndex] != schema.BuiltinOperator.QUANTIZE for op in consumers)
            or producer is None or codes[producer.opcodeIndex] != schema.BuiltinOperator.DEQUANTIZE):
        raise UserInputError("uint8 I/O needs a model whose input feeds only QUANTIZE ops and whose "
                         "output comes from DEQUANTIZE")
    t_in, t_out = sg.tensors[in_idx], sg.tensors[out_idx]
    mid_in = _new_tensor(sg, t_in, "input_uint8_to_int8", schema.TensorType.INT8, scale, -128)
    t_in.type, t_in.quantization = schema.TensorType.UINT8, _qparams(scale, 0)
    for op in consumers:  # e.g. one int8 and one int16 reader of the input
        op.inputs = [mid_in]
    sg.operators.insert(0, _op(quant, in_idx, mid_in))
    mid_out = _new_tensor(sg, t_out, "output_int8_to_uint8", schema.TensorType.INT8, scale, -128)
    producer.opcodeIndex, producer.outputs = quant, [mid_out]
    producer.builtinOptionsType, producer.builtinOptions = 0, None
    t_out.type, t_out.quantization = schema.TensorType.UINT8, _qparams(scale, 0)
    sg.operators.append(_op(quant, mid_out, out_idx))
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
