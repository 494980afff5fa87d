"""Per-layer mixed-precision quantization with LiteRT's quantizer (the only module importing it).

`litert-quantizer` is AI Edge Quantizer moved into LiteRT (same `Quantizer`, `Calibrator`,
recipes and `qsv_utils`, module `litert_quantizer`). Verified 2026-12-01: 0.11.0 exports
bit-identical models to ai-edge-quantizer 0.10.0 for XLSR and FSRCNN x3 at all-a8w8 and
all-a16w8 (same sha256), so every result measured with 0.10.0 stands. "AEQ" below means it.

Route (DESIGN.md): float TFLite -> AEQ recipe built from the Policy, one anchored rule per op ->
calibration on real LR patches -> export. Calibration statistics (min/max per tensor) do not
depend on bit width, so `calibrate` runs once with an everything-quantized recipe and its result
serves every policy (the search evaluates many). The exported model is invoked once and read
back; `verify` compares every op's actual dtypes with what the policy asked for.
"""
from __future__ import annotations

from deploy.errors import UserInputError

import contextlib
import dataclasses
import io
import warnings
from typing import Any, Optional, Sequence

import numpy as np
from litert_quantizer import calibrator as aeq_calibrator
from litert_quantizer import quantizer as aeq
from litert_quantizer.utils import qsv_utils

from deploy.convert.layer_map import MappedOp
from deploy.convert.policy import Policy
from deploy.convert.tflite_io import invoke_once, make_interpreter, summarize
from models._keras import quiet_native_stderr

_ACT = {"a8w8": {"num_bits": 8, "symmetric": False}, "a16w8": {"num_bits": 16, "symmetric": True}}
_ACT_DTYPE = {"a8w8": "int8", "a16w8": "int16", "float": "float32"}
#: Ops that only convert between precisions; counted, never judged against the policy.
BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE")


class QuantizationError(UserInputError):
    """The quantized model does not do what the policy asked (or cannot be built)."""


def _rule(regex: str, precision: str) -> dict[str, Any]:
    if precision == "float":
        return {"regex": regex, "operation": "*", "algorithm_key": "no_quantize"}
    return {
        "regex": regex, "operation": "*", "algorithm_key": "min_max_uniform_quantize",
        "op_config": {
            "activation_tensor_config": {**_ACT[precision], "granularity": "TENSORWISE", "dtype": "INT"},
            "weight_tensor_config": {"num_bits": 8, "symmetric": True, "granularity": "CHANNELWISE",
                                     "dtype": "INT"},
            "compute_precision": "INTEGER", "explicit_dequantize": False, "skip_checks": False,
            "min_weight_elements": 0,
        },
    }


def build_recipe(policy: Policy, ops: Sequence[MappedOp]) -> list[dict[str, Any]]:
    """Default rule first, then one exact rule per op whose layer differs (later rules win)."""
    recipe = [_rule(".*", policy.default)]
    for op in ops:
        precision = policy.precision_of(op.layer) if op.layer else policy.default
        if precision != policy.default:
            recipe.append(_rule(op.regex, precision))
    return recipe


def _signature(tflite: bytes) -> tuple[str, str]:
    interp = make_interpreter(tflite, delegates=False)
    sigs = interp.get_signature_list()
    key = next(iter(sigs))
    return key, sigs[key]["inputs"][0]


@contextlib.contextmanager
def _quiet():
    """AEQ prints a size/time report on stdout and native logs on stderr: keep CLIs readable."""
    with quiet_native_stderr(), contextlib.redirect_stdout(io.StringIO()):
        yield


def calibrate(float_tflite: bytes, patches: np.ndarray) -> dict:
    """Global min/max of every tensor over the calibration patches (the model's input units).

    AEQ's Quantizer.calibrate smooths min/max with a moving average (factor 0.95); on SR that
    clips the brightest and darkest pixels (XLSR x3 lost ~7 dB, int8 and int16 alike). The
    TFLite converter takes the plain min/max, so we run AEQ's Calibrator with `min_max_update`.
    """
    key, name = _signature(float_tflite)
    q = aeq.Quantizer(float_tflite, [_rule(".*", "a16w8")])
    data = {key: [{name: p[None].astype(np.float32)} for p in patches]}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")
        calib = aeq_calibrator.Calibrator(float_tflite, num_threads=2,
                                          qsv_update_func=qsv_utils.min_max_update)
    with _quiet(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")
        calib.calibrate(data, q._recipe_manager)  # noqa: SLF001 - the recipe decides which tensors
    return calib.get_model_qsvs()


def apply_ptq(prep, ptq, patches: np.ndarray, qsv: Optional[dict], recipe: list[dict],
              peak: Optional[float], *, policy: Optional[Policy] = None) -> tuple[Any, dict, Optional[dict]]:
    """(prepared model, calibration result, the report's `ptq` entry or None).

    Default options (None or `PtqOptions()`) are exactly the min/max route: the caller's `qsv`
    (or one global min/max calibration) and no report entry, so default models keep their bytes.
    Anything else runs deploy.convert.ptq (CLE, MSE/percentile ranges, bias correction)."""
    from deploy.convert import ptq as ptq_mod
    opts = ptq_mod.PtqOptions.parse(ptq)
    if opts.is_default:
        return prep, (qsv if qsv is not None else calibrate(prep.float_tflite, patches)), None
    if opts.clip_output and peak is None:
        raise QuantizationError("clipping the output's range needs the model's value range (value_peak: 1 or 255)")
    # range search is for int8 grids: tensors of a16w8 ops keep their min/max
    int8 = None if policy is None else int8_tensors(prep, policy)
    return ptq_mod.apply(prep, opts, patches, qsv, recipe, peak=float(peak or 1.0),
                         calibrate=calibrate, quantize=quantize, int8_tensors=int8)


def int8_tensors(prep, policy: Policy) -> frozenset:
    """The activations `policy` puts on int8 grids (the only ones a range search changes)."""
    return frozenset(o.tensor for o in prep.ops
                     if (policy.precision_of(o.layer) if o.layer else policy.default) == "a8w8")


def ptq_for_search(prep, ptq, patches: np.ndarray, peak: float) -> tuple[Any, dict, dict, dict]:
    """(prepared model, wide grids, narrow grids, report entry): PTQ done once for a whole search
    (deploy.convert.ptq.search_grids); a candidate takes `merge_grids` of the two."""
    from deploy.convert import ptq as ptq_mod
    return ptq_mod.search_grids(prep, ptq_mod.PtqOptions.parse(ptq), patches, peak=float(peak), calibrate=calibrate)


def merge_grids(prep, policy: Policy, wide: dict, narrow: Optional[dict]) -> dict:
    """The calibration `policy` is quantized with: `narrow` ranges for its int8 activations,
    `wide` for the others (`narrow` None: `wide` itself, the plain min/max route)."""
    if narrow is None:
        return wide
    int8 = int8_tensors(prep, policy)
    return {k: (narrow[k] if k in int8 else v) for k, v in wide.items()}


def quantize(float_tflite: bytes, recipe: list[dict], qsv: dict) -> bytes:
    q = aeq.Quantizer(float_tflite, recipe)
    try:
        with _quiet():
            result = q.quantize(qsv if q.need_calibration else None)
    except (ValueError, RuntimeError, KeyError) as e:
        raise QuantizationError(f"AI Edge Quantizer failed: {str(e).splitlines()[0]}") from None
    return bytes(result.quantized_model)


@dataclasses.dataclass(frozen=True)
class OpCheck:
    index: int
    op: str
    layer: str | None
    requested: str
    actual: str


def actual_precision(op_name: str, out_dtypes: Sequence[str], in_dtypes: Sequence[str]) -> str:
    d = out_dtypes[0] if out_dtypes else "float32"
    if d == "int16":
        return "a16w8"
    if d in ("int8", "uint8"):
        return "a8w8"
    if d.startswith("float"):
        return "float"
    # int32 outputs (e.g. SHAPE) carry no activation precision: judge by the inputs
    return next((actual_precision(op_name, [i], []) for i in in_dtypes if i != "int32"), "float")


def verify(quantized: bytes, float_ops: Sequence[MappedOp], policy: Policy) -> tuple[list[OpCheck], dict]:
    """Read the quantized model back; pair its compute ops with the float model's, check dtypes.

    AEQ only inserts QUANTIZE/DEQUANTIZE ops, so the non-boundary ops keep their order.
    Returns the per-op checks and a summary (requantize ops, float ops left).
    """
    summary = summarize(make_interpreter(quantized, delegates=False, allocate=False))  # the graph only
    compute = [o for o in summary.ops if o.op not in BOUNDARY_OPS]
    if [o.op for o in compute] != [o.op for o in float_ops]:
        raise QuantizationError("the quantized model's ops do not line up with the float model's; "
                                "cannot verify per-layer precision")
    checks = []
    for q, f in zip(compute, float_ops):
        requested = policy.precision_of(f.layer) if f.layer else policy.default
        checks.append(OpCheck(f.index, f.op, f.layer, requested,
                              actual_precision(q.op, q.output_dtypes, q.input_dtypes)))
    boundary = [o for o in summary.ops if o.op in BOUNDARY_OPS]
    int_to_int = [o for o in boundary if o.op == "QUANTIZE" and o.input_dtypes and o.output_dtypes
                  and not o.input_dtypes[0].startswith("float")]
    return checks, {
        # int8 <-> int16 conversions the policy's precision changes cost
        "requantize_ops": sum(1 for o in int_to_int if o.input_dtypes[0] != o.output_dtypes[0]),
        # same-dtype scale changes (e.g. before CONCATENATION inputs with different ranges)
        "rescale_ops": sum(1 for o in int_to_int if o.input_dtypes[0] == o.output_dtypes[0]),
        "quantize_ops": sum(1 for o in boundary if o.op == "QUANTIZE"),
        "dequantize_ops": sum(1 for o in boundary if o.op == "DEQUANTIZE"),
        "inputs": list(summary.inputs), "outputs": list(summary.outputs),
    }


def smoke_invoke(quantized: bytes, patch: np.ndarray) -> None:
    """Run once: an op without a kernel at its precision fails here, not on the phone."""
    invoke_once(make_interpreter(quantized), patch[None].astype(np.float32), "quantized model")
