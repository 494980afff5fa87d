"""An a16w8 (int16x8) TFLite model run on all cores, bit-identical to LiteRT's interpreter.

Why: LiteRT's int16 kernels are single-threaded reference loops, so the standard benchmarks of
the big zoo models at a16w8 (EDSR-baseline on Urban100: hours per cell) were out of reach. This
interpreter reads the same flatbuffer and redoes each op's integer arithmetic on whole tensors
(`integer_ops`, `integer_kernels`), batched over tiles. It has the LiteRT Interpreter's call shape, so
`TFLiteRunner(..., interpreter_factory=IntegerInterpreter)` tiles, quantizes and stitches exactly
as it does for LiteRT; any batch size is accepted. It is never a silent substitute: a caller
asks for it by name and records that it did, and tests/deploy/integer_interpreter_test.py holds it to
LiteRT's output, op by op, on the zoo's a16w8 models.

Only what the converter's a16w8 models of the zoo contain is implemented (QUANTIZE from float
and between int16 grids, CONV_2D, ADD, SUB, MUL, RELU, LEAKY_RELU, TANH, CONCATENATION of one
grid, STRIDED_SLICE of each sample, RESHAPE, TRANSPOSE, DEQUANTIZE to float: every zoo model); any
other op or tensor type is refused with `IntegerModelUnsupported` before anything runs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from deploy.evaluation import integer_kernels as ik
from deploy.evaluation.integer_ops import FLOAT32, KERNELS, NP_DTYPES, IntegerModelUnsupported

__all__ = ["IntegerInterpreter", "IntegerModelUnsupported"]


class _Tensor:
    def __init__(self, model, index: int):
        t = model.subgraphs[0].tensors[index]
        self.index, self.type = index, int(t.type)
        self.shape = [int(d) for d in (t.shape if t.shape is not None else [])]
        q = t.quantization
        has_q = q is not None and q.scale is not None and len(q.scale) > 0
        self.scales = np.asarray(q.scale, np.float32) if has_q else None
        self.zero_points = np.asarray(q.zeroPoint, np.int64) if has_q else None
        data = model.buffers[t.buffer].data if t.buffer < len(model.buffers) else None
        self.data = None
        if data is not None and len(data) > 0:
            if self.type not in NP_DTYPES:
                raise IntegerModelUnsupported(f"constant tensor {index} has type code {self.type}")
            arr = np.frombuffer(bytes(bytearray(data)), dtype=NP_DTYPES[self.type])
            self.data = arr.reshape(self.shape) if self.shape else arr.reshape(())

    @property
    def scale(self) -> float:
        if self.scales is None or self.scales.size != 1:
            raise IntegerModelUnsupported(f"tensor {self.index} is not per-tensor quantized")
        return float(self.scales[0])

    @property
    def zero_point(self) -> int:
        return int(self.zero_points[0])


class IntegerInterpreter:
    """LiteRT Interpreter-shaped: get_input_details / get_output_details / allocate_tensors /
    resize_tensor_input / set_tensor / invoke / get_tensor. Tensors between ops are int64
    tensors holding int16 values."""

    #: takes a batch of any size in one call (TFLiteRunner then sends an image's tiles together)
    batched = True

    def __init__(self, model: bytes | str | Path, num_threads: int = 0):
        """`num_threads`: accepted for the factory's call shape; TensorFlow uses every core."""
        from litert_quantizer.utils import tfl_flatbuffer_utils as fb
        from ai_edge_litert import schema_py_generated as schema
        raw = Path(model).read_bytes() if not isinstance(model, (bytes, bytearray)) else bytes(model)
        m = fb.read_model(raw)
        if len(m.subgraphs) != 1:
            raise IntegerModelUnsupported("only single-subgraph models are supported")
        sg = m.subgraphs[0]
        names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        self._tensors = {i: _Tensor(m, i) for i in range(len(sg.tensors))}
        self.input, self.output = int(sg.inputs[0]), int(sg.outputs[0])
        self._ops: list[tuple[str, Callable, list[int], int]] = []
        self._host: set[int] = set()  # outputs of the ops run on the host (the input's QUANTIZE)
        for op in sg.operators:
            code = m.operatorCodes[op.opcodeIndex]
            kind = names.get(max(code.builtinCode, code.deprecatedBuiltinCode or 0), "?")
            opts = vars(op.builtinOptions) if op.builtinOptions is not None else {}
            ins = [int(i) for i in op.inputs]
            out = self._tensors[int(op.outputs[0])]
            make = KERNELS.get(kind)
            if make is None:
                raise IntegerModelUnsupported(f"op {kind} is not implemented by the integer interpreter "
                                              f"(it runs {', '.join(sorted(KERNELS))})")
            run = make([self._tensors[i] if i >= 0 else None for i in ins], out, opts)
            if kind == "QUANTIZE" and self._tensors[ins[0]].type == FLOAT32:
                if ins[0] != self.input:
                    raise IntegerModelUnsupported("a QUANTIZE from float inside the graph (only the input's is run)")
                self._host.add(out.index)
            elif kind != "CONV_2D":  # elementwise: one fused XLA pass (a convolution jits its own parts)
                run = ik.tf().function(run, jit_compile=True, autograph=False)
            self._ops.append((kind, run, ins, out.index))
        self._values: dict[int, object] = {}
        self._batch = 1
        self._graph = ik.tf().function(self._run_graph, autograph=False, reduce_retracing=True)

    def _run_ops(self, values: dict) -> dict:
        """`values` (the host ops' outputs) with every other op's output added, in graph order."""
        for _kind, run, ins, out in self._ops:
            if out not in self._host:
                values[out] = run(*[values.get(i) if i >= 0 else None for i in ins])
        return values

    def _run_graph(self, feeds: dict):
        """The model output from the input's quantized values (QUANTIZE runs on the host, in
        NumPy float32: a graph's own optimizations must not change its roundings)."""
        return self._run_ops(dict(feeds))[self.output]

    def _host_feeds(self) -> dict:
        x = self._values[self.input]
        return {out: run(x) for _kind, run, _ins, out in self._ops if out in self._host} or {self.input: x}

    # -- the Interpreter call shape --------------------------------------------------------------
    def _details(self, index: int) -> dict:
        t = self._tensors[index]
        shape = np.array([self._batch, *t.shape[1:]], np.int32)
        quant = (t.scale, t.zero_point) if t.scales is not None else (0.0, 0)
        return {"index": index, "name": str(index), "shape": shape, "shape_signature": shape.copy(),
                "dtype": NP_DTYPES[t.type], "quantization": quant}

    def get_input_details(self) -> list[dict]:
        return [self._details(self.input)]

    def get_output_details(self) -> list[dict]:
        return [self._details(self.output)]

    def allocate_tensors(self) -> None:
        pass

    def resize_tensor_input(self, index: int, shape) -> None:
        want = list(self._tensors[index].shape[1:])
        if list(shape)[1:] != want:
            raise IntegerModelUnsupported(f"the model's input is fixed at {want}, got {list(shape)[1:]}")
        self._batch = int(shape[0])

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        if index != self.input:
            raise IntegerModelUnsupported("only the model input can be set")
        self.resize_tensor_input(index, value.shape)  # checks the sample shape, takes the batch
        self._values = {index: np.asarray(value)}

    def invoke(self) -> None:
        self._values[self.output] = self._graph(self._host_feeds())

    def get_tensor(self, index: int) -> np.ndarray:
        v = self._values[index]
        return np.asarray(v).astype(NP_DTYPES[self._tensors[index].type], copy=False)

    @property
    def ops(self) -> list[tuple[str, int]]:
        """(op type, output tensor index) in graph order."""
        return [(kind, out) for kind, _run, _ins, out in self._ops]

    def op_outputs(self, x: np.ndarray) -> dict[int, np.ndarray]:
        """Every op's output for input `x` (tests compare them with LiteRT's, op by op)."""
        self.set_tensor(self.input, x)
        values = self._run_ops(self._host_feeds())
        return {out: np.asarray(values[out]) for _k, _r, _i, out in self._ops}
