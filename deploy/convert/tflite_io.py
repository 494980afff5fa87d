"""Opening and inspecting .tflite files with LiteRT's interpreter.

Every model we write is opened here right after conversion and invoked once on real input
(AEQ and the converter can emit ops with no kernel at the requested precision; only invoking
shows it). Inspection reads op types and tensor dtypes from the interpreter, so it works on any
model a user hands us, not only ours.
"""
from __future__ import annotations

from deploy.errors import UserInputError

import collections
import os
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from models._keras import quiet_native_stderr

#: Ops that only move or reinterpret data; they are never "float compute left in the graph".
_QUANT_BOUNDARY = {"QUANTIZE", "DEQUANTIZE"}


class TFLiteError(UserInputError):
    """A .tflite file that cannot be loaded or run; the message names the file."""


def max_threads() -> int:
    """Most interpreter threads we accept: more than a few per core only costs (and LiteRT cannot
    start tens of thousands)."""
    return max(64, 8 * (os.cpu_count() or 1))


def make_interpreter(model: bytes | str | Path, *, num_threads: int = 2,
                     name: str | None = None, delegates: bool = True, allocate: bool = True) -> Interpreter:
    """A ready interpreter (tensors allocated); TFLiteError on a missing or corrupt file.

    allocate=False: for reading the graph only (ops, dtypes, names: `summarize`), which works
    without kernels prepared, so a frame-size model too large for LiteRT's CPU kernels (im2col
    over the 32-bit limit) can still be verified and compiled for an NPU.

    delegates=False gives the plain builtin kernels: its op list is the model's own graph, not
    XNNPACK's rewritten one (used for inspection).
    """
    if not 1 <= num_threads <= max_threads():  # LiteRT fails to start them and blames the model
        raise UserInputError(f"num_threads {num_threads} is not usable here: pass 1 to {max_threads()} "
                             f"(this machine has {os.cpu_count()} cores)")
    resolver = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    label = name or (str(model) if not isinstance(model, bytes) else "model")
    try:
        if isinstance(model, bytes):
            interp = Interpreter(model_content=model, num_threads=num_threads,
                                 experimental_op_resolver_type=resolver)
        else:
            path = Path(model)
            if not path.is_file():
                raise TFLiteError(f"{path} does not exist")
            interp = Interpreter(model_path=str(path), num_threads=num_threads,
                                 experimental_op_resolver_type=resolver)
        if allocate:
            with quiet_native_stderr():
                interp.allocate_tensors()
    except TFLiteError:
        raise
    except (ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        if "32-bit integer limit" in first:   # a valid model too large for LiteRT's CPU kernels
            raise TFLiteError(f"{label} is too large for LiteRT's CPU kernels at this input size ({first}); "
                              "use a smaller --input_size (a frame runs in tiles: predict_latency.py --frame)") from None
        raise TFLiteError(f"{label} is not a usable TFLite model ({first}); re-export it with "
                          "tools/convert.py") from None
    return interp


@dataclasses.dataclass(frozen=True)
class OpInfo:
    index: int
    op: str
    input_dtypes: tuple[str, ...]
    output_dtypes: tuple[str, ...]
    output_names: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    ops: tuple[OpInfo, ...]
    inputs: tuple[dict, ...]
    outputs: tuple[dict, ...]

    def op_counts(self) -> dict[str, int]:
        return dict(collections.Counter(o.op for o in self.ops))

    def float_ops(self) -> list[OpInfo]:
        """Compute ops that run in float (not counting the QUANTIZE/DEQUANTIZE at boundaries)."""
        return [o for o in self.ops if o.op not in _QUANT_BOUNDARY
                and any(d.startswith("float") for d in o.output_dtypes)]

    def to_json(self) -> dict[str, Any]:
        return {
            "op_counts": self.op_counts(),
            "float_ops": [{"op": o.op, "output": o.output_names[0] if o.output_names else ""}
                          for o in self.float_ops()],
            "inputs": list(self.inputs), "outputs": list(self.outputs),
        }


def _io(detail: dict) -> dict:
    scale, zero = detail.get("quantization", (0.0, 0))
    return {"name": detail["name"], "shape": [int(d) for d in detail["shape_signature"]],
            "dtype": np.dtype(detail["dtype"]).name, "scale": float(scale), "zero_point": int(zero)}


def summarize(interp: Interpreter) -> ModelSummary:
    """Ops and I/O of a model; pass an interpreter made with delegates=False."""
    tensors = {t["index"]: t for t in interp.get_tensor_details()}

    def dtypes(idx) -> tuple[str, ...]:
        return tuple(np.dtype(tensors[i]["dtype"]).name for i in idx if i >= 0 and i in tensors)

    ops = []
    for op in interp._get_ops_details():  # noqa: SLF001 - the only API listing ops with tensors
        outs = [i for i in op["outputs"] if i >= 0]
        ops.append(OpInfo(op["index"], op["op_name"], dtypes(op["inputs"]), dtypes(outs),
                          tuple(tensors[i]["name"] for i in outs if i in tensors)))
    return ModelSummary(tuple(ops), tuple(_io(d) for d in interp.get_input_details()),
                        tuple(_io(d) for d in interp.get_output_details()))


def invoke_once(interp: Interpreter, x: np.ndarray, what: str = "model") -> np.ndarray:
    """Quantize `x` (model units, NHWC) per the input's parameters, run once, return the output.

    Run right after every conversion: an op without a kernel at its precision fails here (one
    clear line), not on the phone.
    """
    detail = interp.get_input_details()[0]
    if list(x.shape) != list(detail["shape"]):
        interp.resize_tensor_input(detail["index"], list(x.shape))
        interp.allocate_tensors()
        detail = interp.get_input_details()[0]
    scale, zero = detail["quantization"]
    if not np.issubdtype(detail["dtype"], np.floating):
        info = np.iinfo(detail["dtype"])
        x = np.clip(np.round(x / scale + zero), info.min, info.max)
    interp.set_tensor(detail["index"], x.astype(detail["dtype"]))
    try:
        interp.invoke()
    except RuntimeError as e:
        raise TFLiteError(f"the {what} does not run in LiteRT: {str(e).splitlines()[0]}") from None
    return interp.get_tensor(interp.get_output_details()[0]["index"])


def median_invoke_ms(model: bytes | str | Path, runs: int, threads: int = 2, warmup: int = 3) -> float:
    """Median wall time of one invoke (zeros in), after warm-up: bench scripts' latency probe."""
    import statistics
    import time
    interp = make_interpreter(model, num_threads=threads)
    d = interp.get_input_details()[0]
    interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    for _ in range(warmup):
        interp.invoke()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        interp.invoke()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)

