"""`--precision int8` = the better of the two int8 models we can make, measured on validation patches.

Two routes make a uniform int8 model: the TFLite converter (`deploy.convert.uniform`) and the
per-layer quantizer at all-a8w8 (`deploy.convert.per_layer`, litert-quantizer). They differ in
one rule that matters for SR graphs that split and re-join channels (IMDN-RTC's information
distillation: STRIDED_SLICE -> ... -> CONCATENATION): the converter forces every
STRIDED_SLICE output and every CONCATENATION input onto one shared scale (its int8 kernels
require it), so a distilled slice with a small range is stored on the grid of the widest tensor
it is concatenated with; the per-layer quantizer keeps each tensor's own calibrated range and
inserts rescale (QUANTIZE) ops (IMDN-RTC x3: 30 of them). Calibration is the same statistic on
both (global min/max: `quantizer.calibrate` asks for it explicitly). Measured (bench/int8_routes.py,
bench/results/int8_routes.json): IMDN-RTC x3 converter 29.86 dB vs per-layer 33.05 dB on the
validation patches; rewriting LeakyReLU as MUL+MAXIMUM before the converter does not help
(28.70 dB), so it is the shared scales, not the activation kernel. Models without slices and
concatenations come out within ~0.2 dB either way (FSRCNN's PReLU rewrite favours the converter).

`best_int8` builds both, measures PSNR_Y on the search's validation patches (the same ones, never
the evaluation images), and returns the better; the report's `int8_route` says which and why.
The per-layer route only exists for float32/uint8 I/O; int8 I/O keeps the converter.
"""
from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Optional

from deploy.convert import api as convert_api
from deploy.convert.policy import Policy
from deploy.evaluation.runners import TFLiteRunner
from deploy.policy_search import oracle as candidates

#: Only the per-layer route can beat the converter by changing the model, so it must win by
#: more than this (dB) to replace the converter's model (ties keep the converter: one fewer
#: QUANTIZE op per rescale).
MARGIN_DB = 0.0


def measure(tflite: bytes, src, val: candidates.ValidationSet) -> float:
    runner = TFLiteRunner(tflite, src.scale, convention=src.convention)
    return val.psnr_y(runner.map(val.lr), src.scale)


def routes(src, *, input_size=convert_api.DEFAULT_INPUT_HW, calib_dir: Optional[str | Path] = None,
           calib_images: int = 8, io_type: str = "float32"):
    """Both int8 models: (converter's, per-layer all-a8w8 or None where only the converter applies)."""
    conv = convert_api.quantize(src, "int8", input_size=input_size, calib_dir=calib_dir,
                                calib_images=calib_images, io_type=io_type)
    if io_type not in ("float32", "uint8") or input_size is None:
        return conv, None
    per = convert_api.quantize(src, Policy(src.name, src.scale, "a8w8", (), io_type), input_size=input_size,
                               calib_dir=calib_dir, calib_images=calib_images)
    return conv, per


def choose(src, conv, per, *, input_size=convert_api.DEFAULT_INPUT_HW, val_dir: Optional[str | Path] = None,
           val_images: int = 5):
    """(the better model, the report's `int8_route` entry)."""
    if per is None:
        return conv, {"chosen": "converter", "reason": "only the converter route makes this I/O type"}
    val = candidates.validation_set(src.scale, input_size, val_dir=val_dir, n_images=val_images)
    p_conv, p_per = measure(conv.tflite_bytes, src, val), measure(per.tflite_bytes, src, val)
    chosen = "per_layer_a8w8" if p_per > p_conv + MARGIN_DB else "converter"
    info = {"chosen": chosen, "validation_psnr_y": {"converter": round(p_conv, 4), "per_layer_a8w8": round(p_per, 4)},
            "validation": val.to_json(),
            "reason": ("the converter shares one scale across STRIDED_SLICE outputs and CONCATENATION inputs; "
                       "the per-layer quantizer keeps each tensor's range (rescale ops)"
                       if chosen == "per_layer_a8w8" else "the converter's int8 measured at least as good")}
    return (per if chosen == "per_layer_a8w8" else conv), info


def best_int8(src, *, input_size=convert_api.DEFAULT_INPUT_HW, calib_dir: Optional[str | Path] = None,
              calib_images: int = 8, io_type: str = "float32", val_dir: Optional[str | Path] = None,
              val_images: int = 5):
    """The better-measured of the converter's int8 and the per-layer all-a8w8 model, and why."""
    conv, per = routes(src, input_size=input_size, calib_dir=calib_dir, calib_images=calib_images, io_type=io_type)
    return choose(src, conv, per, input_size=input_size, val_dir=val_dir, val_images=val_images)


def quantize_int8(src, **kw):
    """`best_int8` as one QuantizedModel whose report carries `int8_route`."""
    q, info = best_int8(src, **kw)
    return dataclasses.replace(q, report=types.MappingProxyType({**dict(q.report), "precision": "int8",
                                                                 "int8_route": info}))


def quantize(source, policy, *, input_size=convert_api.DEFAULT_INPUT_HW, calib_dir: Optional[str | Path] = None,
             calib_images: int = 8, io_type: Optional[str] = None, int8_route: str = "best",
             val_dir: Optional[str | Path] = None, val_images: int = 5, ptq=None):
    """`deploy.quantize`: `deploy.convert.api.quantize`, except that uniform int8 is the best
    int8 we can make (as `convert.py --precision int8`), not only the converter's.

    Args:
        source: from `deploy.load_model`.
        policy: a `Policy`, or one of `float`, `fp16`, `int8` (= `a8w8`), `a16w8`.
        input_size: fixed LR input (H, W); None = dynamic (float/fp16 only).
        calib_dir: HR photos for calibration (default: the shipped calibration photos).
        calib_images: how many calibration photos to use.
        io_type: uniform only: `float32`, `uint8`, `int8`, `int16`; a policy carries its own.
        int8_route: for uniform int8: `best` (the converter's model and the per-layer all-a8w8
            model both built, the better on the validation patches kept; the report's
            `int8_route` says which and why) or `converter` (the TFLiteConverter's only).
        val_dir, val_images: the validation photos `best` measures on (default: shipped ones).
        ptq: post-training quantization options (`deploy.convert.ptq.PtqOptions` or a label such
            as `mse+clip+cle+bc`): the per-layer route with them (convert.api.quantize); None = as above.
    Returns:
        A frozen `QuantizedModel` (`.tflite_bytes`, `.report`, `.save(path)`).
    Raises:
        deploy.errors.SrdeployError: as `deploy.convert.api.quantize`, or an unknown `int8_route`.
    """
    from deploy.convert import args
    from deploy.errors import UserInputError
    args.source(source)  # checked here: the int8 route reads the source before convert.api does
    input_size = args.input_size(input_size)
    calib_images = args.count("calib_images", calib_images)
    val_images = args.count("val_images", val_images)
    if int8_route not in ("best", "converter"):
        raise UserInputError(f"int8_route must be 'best' or 'converter', not '{int8_route}'")
    from deploy.convert.ptq import PtqOptions
    if not PtqOptions.parse(ptq).is_default:  # PTQ options exist on the per-layer route only
        return convert_api.quantize(source, policy, input_size=input_size, calib_dir=calib_dir,
                                    calib_images=calib_images, io_type=io_type, ptq=ptq)
    best = (int8_route == "best" and isinstance(policy, str) and policy in ("int8", "a8w8")
            and input_size is not None and (io_type or "float32") in ("float32", "uint8")
            and not source.graph_route)
    if not best:
        return convert_api.quantize(source, policy, input_size=input_size, calib_dir=calib_dir,
                                    calib_images=calib_images, io_type=io_type)
    convert_api.check_scale(source)
    return quantize_int8(source, input_size=input_size, calib_dir=calib_dir, calib_images=calib_images,
                         io_type=io_type or "float32", val_dir=val_dir, val_images=val_images)
