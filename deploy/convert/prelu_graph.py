"""PReLU in a float TFLite from any framework, rewritten as relu(x) - alpha * relu(-x) (same maths).

The quantizer (litert-quantizer) has no PRELU, so a Keras 3 / SavedModel / float-TFLite source
kept every PRELU float between DEQUANTIZE/QUANTIZE pairs, and a written `a8w8` policy was then
refused. tf_keras models get the same rewrite as Keras layers (deploy/convert/rewrite.py); this
is its flatbuffer form for graphs without tf_keras layers, op for op what the converter makes of
the Keras layer: RELU(x); MUL(x, -1) with a fused RELU; MUL(by alpha); SUB. Every one has int8
and int16 kernels in LiteRT and the quantizer and compiles on Qualcomm's HTP. Each new op keeps
a tensor name derived from the PRELU's output (`<name>/srd_prelu_<part>`), and `origin` says which
op of the source each op came from, so policies keep addressing the layer the PRELU was in.
"""
from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

OP = schema.BuiltinOperator
#: What the report says about a rewritten PRELU.
WHAT = "PRELU -> RELU, MUL(-1)+RELU, MUL(alpha), SUB"


def _opcode(model, builtin: int) -> int:
    for i, oc in enumerate(model.operatorCodes):
        if flatbuffer_utils.get_builtin_code_from_operator_code(oc) == builtin:
            return i
    oc = schema.OperatorCodeT()
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = builtin, min(builtin, 127), 1
    model.operatorCodes.append(oc)
    return len(model.operatorCodes) - 1


def _tensor(sg, like, name: str) -> int:
    t = schema.TensorT()
    t.shape = list(like.shape)
    t.shapeSignature = list(like.shapeSignature) if like.shapeSignature is not None else None
    t.type, t.name, t.buffer = like.type, name.encode(), 0
    sg.tensors.append(t)
    return len(sg.tensors) - 1


def _constant(model, sg, value: float, name: str) -> int:
    buf = schema.BufferT()
    buf.data = np.asarray(value, np.float32).tobytes()
    model.buffers.append(buf)
    t = schema.TensorT()
    t.shape, t.type, t.name, t.buffer = [], schema.TensorType.FLOAT32, name.encode(), len(model.buffers) - 1
    sg.tensors.append(t)
    return len(sg.tensors) - 1


def _op(opcode: int, inputs: list[int], output: int, options_type: int = 0, options=None) -> schema.OperatorT:
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = opcode, inputs, [output]
    op.builtinOptionsType, op.builtinOptions = options_type, options
    return op


def _mul_options(fused_relu: bool) -> schema.MulOptionsT:
    o = schema.MulOptionsT()
    o.fusedActivationFunction = schema.ActivationFunctionType.RELU if fused_relu else schema.ActivationFunctionType.NONE
    return o


def _sub_options() -> schema.SubOptionsT:
    o = schema.SubOptionsT()
    o.fusedActivationFunction, o.potScaleInt16 = schema.ActivationFunctionType.NONE, True
    return o


def rewrite_prelus(tflite: bytes) -> tuple[bytes, list[int], list[int]]:
    """(model with every PRELU of its main graph rewritten, `origin`: for each of its ops the
    index of the source op it came from, the source indices of the PRELUs rewritten).
    A model without PRELU comes back as it is."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite))
    sg = model.subgraphs[0]
    codes = [flatbuffer_utils.get_builtin_code_from_operator_code(oc) for oc in model.operatorCodes]
    if not any(codes[op.opcodeIndex] == OP.PRELU for op in sg.operators):
        return tflite, list(range(len(sg.operators))), []
    mul, relu, sub = (_opcode(model, c) for c in (OP.MUL, OP.RELU, OP.SUB))
    minus_one = _constant(model, sg, -1.0, "srd_prelu_minus_one")
    ops, origin, rewritten = [], [], []
    for k, op in enumerate(sg.operators):
        if codes[op.opcodeIndex] != OP.PRELU:
            ops.append(op)
            origin.append(k)
            continue
        (x, alpha), (y,) = op.inputs, op.outputs
        like, name = sg.tensors[y], sg.tensors[y].name.decode()
        pos, neg, scaled = (_tensor(sg, like, f"{name}/srd_prelu_{p}") for p in ("pos", "neg", "scaled"))
        ops += [_op(relu, [x], pos),
                _op(mul, [x, minus_one], neg, schema.BuiltinOptions.MulOptions, _mul_options(True)),
                _op(mul, [neg, alpha], scaled, schema.BuiltinOptions.MulOptions, _mul_options(False)),
                _op(sub, [pos, scaled], y, schema.BuiltinOptions.SubOptions, _sub_options())]
        origin += [k] * 4
        rewritten.append(k)
    sg.operators = ops
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), origin, rewritten
