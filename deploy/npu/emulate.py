"""Run a compiled model as the phone would: NPU partitions in QNN HTP emulation, CPU ops on LiteRT.

onnxruntime-qnn's libQnnHtp.so executes QNN context binaries on x86 (bit-faithful to the HTP's
integer kernels, not to its speed). Each DISPATCH_OP's context binary is wrapped in an ONNX
EPContext node; each run of CPU ops between/around partitions becomes a LiteRT sub-model cut from
the compiled model. Supported: any order of partitions and CPU ops in subgraph 0 of a
single-subgraph model; control flow (several subgraphs) is refused.

`NpuEmulator` has the LiteRT interpreter's call shape (get_input_details / set_tensor / invoke /
get_tensor), so an SR runner that tiles and (de)quantizes for an interpreter works unchanged.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from deploy.errors import UserInputError
from deploy.npu import _tflite
from deploy.npu.qairt import INSTALL_HINT, NpuToolsMissingError
from deploy.npu.socs import Soc, resolve_soc

_NP = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_, 7: np.int16, 9: np.int8}
_REGISTER_LOCK = threading.Lock()
_registered = False


class EmulationError(UserInputError):
    """A compiled model this emulator cannot run."""


def _onnx_name(name: bytes) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name.decode(errors="replace"))


def _qnn_session(blob: bytes, partition: str, inputs: list[Any], outputs: list[Any], soc: Soc) -> Any:
    """An onnxruntime session whose one EPContext node runs `blob` on the HTP emulator."""
    global _registered
    try:
        import onnx
        import onnx.helper as oh
        import onnxruntime as ort
        import onnxruntime_qnn
    except ImportError as e:
        raise NpuToolsMissingError(f"NPU emulation needs {e.name}; {INSTALL_HINT}") from None
    with _REGISTER_LOCK:
        if not _registered:
            ort.register_execution_provider_library(onnxruntime_qnn.get_ep_name(), onnxruntime_qnn.get_library_path())
            _registered = True
    devices = [d for d in ort.get_ep_devices() if d.ep_name == onnxruntime_qnn.get_ep_name()]
    if not devices:
        raise NpuToolsMissingError(f"onnxruntime-qnn registered no QNN device; {INSTALL_HINT}")

    def info(t: Any) -> Any:
        elem = oh.np_dtype_to_tensor_dtype(np.dtype(_NP[t.type]))
        return oh.make_tensor_value_info(_onnx_name(t.name), elem, [int(d) for d in t.shape])

    node = oh.make_node("EPContext", [_onnx_name(t.name) for t in inputs], [_onnx_name(t.name) for t in outputs],
                        domain="com.microsoft", main_context=1, embed_mode=1, ep_cache_context=blob,
                        source="QNN", partition_name=partition)
    graph = oh.make_graph([node], partition, [info(t) for t in inputs], [info(t) for t in outputs])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17), oh.make_opsetid("com.microsoft", 1)])
    model.ir_version = 9
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_provider_for_devices(devices, {"backend_type": "htp", "htp_arch": str(soc.htp_arch),
                                               "soc_model": str(soc.qnn_soc_id)})
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidGraph
    try:
        return ort.InferenceSession(model.SerializeToString(), options)
    except InvalidGraph:
        raise EmulationError(f"{partition}'s context binary does not load in the {soc.name} (HTP v{soc.htp_arch}) "
                             f"emulator: was the model compiled for another SoC?") from None


@dataclass
class _Step:
    kind: str                    # "npu" or "cpu"
    inputs: list[int]            # tensor indices read
    outputs: list[int]           # tensor indices written (that later steps or the caller need)
    run: Callable[[list[np.ndarray]], list[np.ndarray]]


def _cpu_runner(data: bytes) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_content=data, num_threads=1)
    interp.allocate_tensors()
    ins = [d["index"] for d in interp.get_input_details()]
    outs = [d["index"] for d in interp.get_output_details()]

    def run(values: list[np.ndarray]) -> list[np.ndarray]:
        for i, v in zip(ins, values):
            interp.set_tensor(i, v)
        interp.invoke()
        return [interp.get_tensor(o).copy() for o in outs]
    return run


class NpuEmulator:
    """A compiled model (DISPATCH_OP partitions + CPU ops) run on x86 like LiteRT runs it on the phone."""

    def __init__(self, compiled: bytes, soc: str | Soc):
        self.soc = soc if isinstance(soc, Soc) else resolve_soc(soc)
        model = _tflite.load(compiled, "the compiled model")
        if len(model.subgraphs) != 1:
            raise EmulationError(f"NPU emulation supports single-subgraph models; this one has "
                                 f"{len(model.subgraphs)} (control flow)")
        sg = model.subgraphs[0]
        self._tensors = sg.tensors
        self._inputs, self._outputs = [int(i) for i in sg.inputs], [int(i) for i in sg.outputs]
        ops = list(sg.operators or [])
        kinds = [_tflite.op_type(model, op) == _tflite.DISPATCH for op in ops]
        if not any(kinds):
            raise EmulationError("the model has no NPU partitions (DISPATCH_OP): compile it first")
        const = {i for i, t in enumerate(sg.tensors)
                 if model.buffers[t.buffer].data is not None and len(model.buffers[t.buffer].data)}
        groups: list[tuple[bool, list[int]]] = []
        for i, is_npu in enumerate(kinds):
            if is_npu or not groups or groups[-1][0]:
                groups.append((is_npu, [i]))
            else:
                groups[-1][1].append(i)
        reads_after: list[set[int]] = []
        later: set[int] = set(self._outputs)
        for _, idx in reversed(groups):
            reads_after.append(set(later))
            later |= {int(t) for i in idx for t in ops[i].inputs if t >= 0}
        reads_after.reverse()
        self._steps: list[_Step] = []
        for (is_npu, idx), needed in zip(groups, reads_after):
            produced = [int(t) for i in idx for t in ops[i].outputs]
            read = list(dict.fromkeys(int(t) for i in idx for t in ops[i].inputs
                                      if t >= 0 and int(t) not in const and int(t) not in produced))
            if is_npu:
                op = ops[idx[0]]
                self._steps.append(_Step("npu", read, produced, self._npu_runner(compiled, op)))
            else:
                keep = [t for t in produced if t in needed]
                self._steps.append(_Step("cpu", read, keep, _cpu_runner(_tflite.cpu_submodel(model, idx, read, keep))))
        self._values: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def _npu_runner(self, data: bytes, op: Any) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
        from flatbuffers import flexbuffers
        opts = flexbuffers.Loads(bytes(op.customOptions))
        start, size = int(opts["bytecode_offset"]), int(opts["bytecode_size"])
        if start + size > len(data):
            raise EmulationError("a DISPATCH_OP's context binary lies outside the file (truncated model?)")
        ins = [self._tensors[int(t)] for t in op.inputs]
        outs = [self._tensors[int(t)] for t in op.outputs]
        session = _qnn_session(data[start:start + size], str(opts.get("name", "partition")), ins, outs, self.soc)
        in_names = [_onnx_name(t.name) for t in ins]
        out_names = [_onnx_name(t.name) for t in outs]
        partition = str(opts.get("name", "partition"))
        from onnxruntime.capi.onnxruntime_pybind11_state import Fail, RuntimeException

        def run(values: list[np.ndarray]) -> list[np.ndarray]:
            try:
                return session.run(out_names, dict(zip(in_names, values)))
            except (Fail, RuntimeException) as e:  # the emulator refused to execute this partition
                first = (str(e).strip().splitlines() or ["no reason given"])[0][:300]
                raise EmulationError(f"NPU partition {partition!r} failed in the {self.soc.name} emulator: {first}") from None
        return run

    @property
    def partitions(self) -> int:
        return sum(s.kind == "npu" for s in self._steps)

    @property
    def layout(self) -> str:
        """e.g. "npu" or "npu cpu npu": the order the phone runs the pieces in."""
        return " ".join(s.kind for s in self._steps)

    def _details(self, indices: list[int]) -> list[dict[str, Any]]:
        out = []
        for i in indices:
            t = self._tensors[i]
            q = t.quantization
            scale = float(q.scale[0]) if q is not None and q.scale is not None and len(q.scale) else 0.0
            zero = int(q.zeroPoint[0]) if q is not None and q.zeroPoint is not None and len(q.zeroPoint) else 0
            shape = np.array([int(d) for d in t.shape], np.int32)
            out.append({"name": t.name.decode(errors="replace"), "index": i, "shape": shape,
                        "shape_signature": shape.copy(), "dtype": _NP[t.type], "quantization": (scale, zero)})
        return out

    # The LiteRT Interpreter's call shape.
    def get_input_details(self) -> list[dict[str, Any]]:
        return self._details(self._inputs)

    def get_output_details(self) -> list[dict[str, Any]]:
        return self._details(self._outputs)

    def allocate_tensors(self) -> None:
        """Nothing to do: shapes are fixed (kept for the interpreter's call shape)."""

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        t = self._tensors[index]
        if index not in self._inputs:
            raise EmulationError(f"tensor {index} is not a model input")
        want = tuple(int(d) for d in t.shape)
        if tuple(value.shape) != want or value.dtype != _NP[t.type]:
            raise EmulationError(f"input {t.name.decode(errors='replace')!r} needs {want} "
                                 f"{np.dtype(_NP[t.type]).name}, got {tuple(value.shape)} {value.dtype}")
        self._values[index] = np.ascontiguousarray(value)

    def invoke(self) -> None:
        values = {i: self._values[i] for i in self._inputs}
        for step in self._steps:
            for t, v in zip(step.outputs, step.run([values[t] for t in step.inputs])):
                values[t] = v
        self._values = values

    def get_tensor(self, index: int) -> np.ndarray:
        return self._values[index]

    def __call__(self, *inputs: np.ndarray) -> np.ndarray | list[np.ndarray]:
        """Model inputs (the model's own dtype and shape) -> output(s); thread-safe."""
        with self._lock:
            for i, x in zip(self._inputs, inputs):
                self.set_tensor(i, x)
            self.invoke()
            outs = [self._values[o] for o in self._outputs]
        return outs[0] if len(outs) == 1 else outs


def emulated_interpreter(model: bytes | str | Path, soc: str | Soc) -> NpuEmulator:
    """An interpreter-shaped emulator of `model` on `soc`'s NPU; compiles `model` first unless it
    is already compiled (then it must have been compiled for `soc`'s HTP architecture)."""
    from deploy.npu.compiler import compile_tflite
    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    parsed = _tflite.load(data, "the model" if isinstance(model, bytes) else str(model))
    if not any(_tflite.op_type(parsed, op) == _tflite.DISPATCH for op in parsed.subgraphs[0].operators or []):
        data = compile_tflite(data, soc).model
    return NpuEmulator(data, soc)
