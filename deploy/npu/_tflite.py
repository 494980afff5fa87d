"""Read and cut TFLite flatbuffers: checks before compiling, and CPU sub-models for emulation.

Uses LiteRT's own generated schema (ai_edge_litert.schema_py_generated), never TensorFlow.
"""
from __future__ import annotations

import copy
import struct
from typing import Any, Sequence

from deploy.errors import UserInputError

DISPATCH = "DISPATCH_OP"


class TFLiteModelError(UserInputError):
    """A file that is not a usable TFLite model for the NPU compiler."""


class AlreadyCompiledError(TFLiteModelError):
    """The model already contains NPU DISPATCH_OP nodes."""


class DynamicShapeError(TFLiteModelError):
    """NPUs need fixed shapes."""


def _schema():
    from ai_edge_litert import schema_py_generated as schema
    return schema


def op_names() -> dict[int, str]:
    """Builtin operator code -> name (e.g. 22 -> "RESHAPE")."""
    b = _schema().BuiltinOperator
    return {v: k for k, v in vars(b).items() if not k.startswith("_") and isinstance(v, int)}


def load(data: bytes, what: str = "model") -> Any:
    """The ModelT of TFLite bytes; a corrupt or non-TFLite file raises one clear error."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise TFLiteModelError(f"{what} is not a TFLite model (no TFL3 flatbuffer identifier)")
    schema = _schema()
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    except (struct.error, IndexError, ValueError, TypeError, UnicodeDecodeError) as e:
        raise TFLiteModelError(f"{what} is a corrupt TFLite file ({type(e).__name__}: {e})") from None
    if not model.subgraphs:
        raise TFLiteModelError(f"{what} is a corrupt TFLite file (no subgraphs)")
    return model


def op_type(model: Any, op: Any) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if code.customCode:
        return code.customCode.decode(errors="replace")
    return op_names().get(builtin, f"BUILTIN_{builtin}")


def tensor_name(model: Any, index: int, subgraph: int = 0) -> str:
    return model.subgraphs[subgraph].tensors[index].name.decode(errors="replace")


def check_compilable(data: bytes, what: str) -> Any:
    """ModelT of a model the compiler can take: valid, not compiled yet, fixed shapes everywhere."""
    model = load(data, what)
    for sg in model.subgraphs:
        if any(op_type(model, op) == DISPATCH for op in sg.operators or []):
            raise AlreadyCompiledError(f"{what} is already compiled for an NPU (it has DISPATCH_OP nodes); "
                                       f"compile the original .tflite instead")
        for t in sg.tensors or []:
            sig = t.shapeSignature
            if sig is not None and any(int(d) < 0 for d in sig):
                raise DynamicShapeError(f"{what}: tensor {t.name.decode(errors='replace')!r} has a dynamic shape "
                                        f"{[int(d) for d in sig]}; NPUs need fixed shapes (convert with a fixed "
                                        f"input size, e.g. --input_size 64x64)")
    return model


def _pack(model: Any) -> bytes:
    import flatbuffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def cpu_submodel(model: Any, op_indices: Sequence[int], inputs: Sequence[int], outputs: Sequence[int]) -> bytes:
    """A runnable .tflite of `op_indices` of subgraph 0 (CPU ops of a compiled model).

    Tensors and constant buffers are shared with the compiled model; the DISPATCH_OP nodes and
    signatures are dropped, so LiteRT on x86 can run what the phone's CPU would run.
    """
    sub = copy.copy(model)
    sg = copy.copy(model.subgraphs[0])
    sg.operators = [model.subgraphs[0].operators[i] for i in op_indices]
    sg.inputs, sg.outputs = list(inputs), list(outputs)
    sub.subgraphs = [sg]
    sub.signatureDefs = []
    return _pack(sub)
