"""Uniform-precision conversion with `tf.lite.TFLiteConverter`: float, fp16, int8, a16w8.

Pixel shuffle: the zoo writes depth-to-space as RESHAPE/TRANSPOSE (models/layers.py) and exports
at a fixed input size, so the a16w8 model keeps pixel shuffle in int16 instead of falling back
to a float DEPTH_TO_SPACE (LiteRT has no int16 kernel for it). a16w8 allows TFLITE_BUILTINS as a
fallback, so an op without a 16x8 path stays float rather than failing; the report lists every
float op and why. At int8 and a16w8 a PReLU is first rewritten as relu(x) - alpha * relu(-x)
(deploy/convert/rewrite.py): the converter refuses PRELU in 16x8 (it stayed a float island), and
at int8 the rewritten form measured better than the converter's own PRELU kernel. For a16w8 a
clipped ReLU (ReLU(max_value=m), XLSR's and ABPN's output clip) is rewritten as
m - relu(m - relu(x)): the converter would lower it to an int16 MINIMUM, which Qualcomm's HTP
rejects (its 16-bit Minimum is unsigned), so the model would not compile whole.
"""
from __future__ import annotations

from deploy.errors import UserInputError

import dataclasses
import hashlib
import time
import warnings
from typing import Any, Optional

import numpy as np

from deploy.data.calibration import CalibrationSet
from deploy.convert import precisions
from deploy.convert.rewrite import rewrite_for_converter
from deploy.convert.tflite_io import invoke_once, make_interpreter, summarize
from models._keras import keras, quiet_native_stderr, tf

from deploy.data.io_convention import DEFAULT_INPUT_HW  # noqa: E402,F401 - re-exported for the CLIs
IO_TYPES = ("float32", "uint8", "int8", "int16")

#: Why an op stays float, where we know (shown in the conversion report).
FLOAT_REASONS = {
    "PRELU": "the TFLite converter has no 16x8 PRELU; it stays float under a16w8",
    "DEPTH_TO_SPACE": "LiteRT's DEPTH_TO_SPACE has no int16 kernel",
    "HARD_SWISH": "LiteRT's HARD_SWISH has no int16 kernel",
}


class ConversionError(UserInputError):
    """A model that cannot be converted at the requested precision (one-line reason)."""


@dataclasses.dataclass(frozen=True)
class Converted:
    tflite: bytes
    report: dict[str, Any]


def _converter(model: keras.Model, precision: str, calib: Optional[CalibrationSet],
               io_type: str) -> tf.lite.TFLiteConverter:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision == "float":
        return conv
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "fp16":
        conv.target_spec.supported_types = [tf.float16]
        return conv
    if calib is None:
        raise ConversionError(f"{precision} needs calibration data")

    def representative():
        for patch in calib.patches:
            yield [patch[None]]

    conv.representative_dataset = representative
    ops = tf.lite.OpsSet
    if precision == "int8":
        conv.target_spec.supported_ops = [ops.TFLITE_BUILTINS_INT8]
    else:
        conv.target_spec.supported_ops = [ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
                                          ops.TFLITE_BUILTINS]
    io = {"float32": tf.float32, "uint8": tf.uint8, "int8": tf.int8, "int16": tf.int16}[io_type]
    conv.inference_input_type = io
    conv.inference_output_type = io
    return conv


def check_io_type(precision: str, io_type: str) -> None:
    allowed = {"float": ("float32",), "fp16": ("float32",), "int8": ("float32", "uint8", "int8"),
               "a16w8": ("float32", "int16")}[precision]
    if io_type not in allowed:
        raise ConversionError(f"--io_type {io_type} is not available for {precision}; "
                              f"choose one of {', '.join(allowed)}")


def convert_uniform(model: keras.Model, precision: str, *, calib: Optional[CalibrationSet] = None,
                    io_type: str = "float32") -> Converted:
    """One precision for the whole model; invoked once on a calibration patch before returning."""
    try:
        precision = precisions.uniform(precision)
    except precisions.PrecisionError as e:
        raise ConversionError(str(e)) from None
    check_io_type(precision, io_type)
    t0 = time.time()
    rewritten: dict[str, str] = {}
    if precision in ("int8", "a16w8"):  # PReLU; at a16w8 no int16 MINIMUM (HTP): see the module docstring
        model, rewritten = rewrite_for_converter(model, precision)
    try:
        with quiet_native_stderr(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            tflite = _converter(model, precision, calib, io_type).convert()
    except Exception as e:  # the converter raises many types; the first line is the reason
        msg = str(e).strip().splitlines()
        reason = next((m for m in msg if "error" in m.lower()), msg[0] if msg else type(e).__name__)
        raise ConversionError(f"TFLite converter failed for {precision}: {reason.strip()}") from e
    interp = make_interpreter(tflite, name=f"{precision} model")
    _smoke_invoke(interp, calib)
    summary = summarize(make_interpreter(tflite, delegates=False))
    float_ops = [] if precision in ("float", "fp16") else [
        {**f, "reason": FLOAT_REASONS.get(f["op"], "no integer kernel at this precision")}
        for f in summary.to_json()["float_ops"]]
    report = {
        "precision": precision, "converter": "tf.lite.TFLiteConverter", "io_type": io_type,
        "size_bytes": len(tflite), "sha256": hashlib.sha256(tflite).hexdigest(),
        "input_shape": [int(d) for d in summary.inputs[0]["shape"]],
        **{k: v for k, v in summary.to_json().items() if k != "float_ops"},
        "float_ops": float_ops,
        **({"rewritten_activations": rewritten} if rewritten else {}),
        "calibration": calib.to_json() if calib is not None and precision in ("int8", "a16w8") else None,
        "versions": {"tensorflow": tf.__version__},
        "convert_seconds": round(time.time() - t0, 2),
    }
    return Converted(tflite, report)


def _smoke_invoke(interp, calib: Optional[CalibrationSet]) -> None:
    """Run the new model once: a kernel missing at this precision fails here, not on a phone."""
    detail = interp.get_input_details()[0]
    shape = [d if d > 0 else 16 for d in detail["shape_signature"]]
    x = calib.patches[:1] if calib is not None else np.full(shape, 0.5, np.float32)
    invoke_once(interp, x, "converted model")
