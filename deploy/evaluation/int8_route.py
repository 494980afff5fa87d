"""One model per source and precision: the quantization every entry point uses (`deploy.quantize`).

`convert.py`, `evaluate.py --model M --precision P`, `deploy.quantize`, `deploy.evaluate(src,
precision=P)`, NPU emulation of a source and the report all call `quantize` here, so one source
gives one model (same bytes, same PSNR) whichever door it came in by. float, fp16 and a16w8 have
one route each (`deploy.convert.api.quantize`); int8 has three candidates (ROUTES) and takes the
best-measured one.

Two quantizers make a uniform int8 model: the TFLite converter (`deploy.convert.uniform`) and the
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
concatenations come out within ~0.2 dB either way. The third candidate is the per-layer model with
activation ranges chosen by least quantization error (`act_ranges` `mse`) instead of min/max: it
wins where an outlier stretches a range (retrained ESPCN x3: tanh inputs; bench/int8_quality.py).

`best_int8` builds every candidate, measures PSNR_Y on the search's validation patches (the same ones, never
the evaluation images), and returns the better; the report's `int8_route` says which, why, and
both PSNRs. The decision is deterministic (ties keep the converter) and cached by a sha256 of
everything it depends on (the model's architecture and weights, input size, I/O type, the
calibration and validation photos' hashes, library versions, `ROUTE_VERSION`), in memory and
under the user cache's `int8_route/` (deploy/cache_dirs.py): a second entry point builds only the chosen route, and checks
that it made the very bytes the decision measured (else it decides again). The per-layer route
only exists for float32/uint8 I/O; int8 I/O keeps the converter. Keras 3, SavedModel and float
TFLite sources have only the per-layer route.

A frame-sized input (deploy/convert/twin.py: more than 128x128 LR pixels) is decided on its twin
(the same model at the default 64x64 input: the same decision, cached) and only the chosen route
is built at the frame; its per-layer routes take their ranges from the twin too.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import types
from pathlib import Path
from typing import Any, Optional

from deploy.convert import api as convert_api
from deploy.convert import twin
from deploy.convert.api import QuantizedModel
from deploy.convert.policy import Policy
from deploy.convert.sources import ModelSource, require_source
from deploy.data import validation
from deploy.evaluation.config import QuantizeConfig
from deploy import cache_dirs
from deploy.evaluation.runners import TFLiteRunner

#: Only the per-layer route can beat the converter by changing the model, so it must win by
#: more than this (dB) to replace the converter's model (ties keep the converter: one fewer
#: QUANTIZE op per rescale).
MARGIN_DB = 0.0
#: Bumped whenever either route makes other bytes for the same inputs (a rewrite changes), so a
#: cached decision about the old models is never applied to the new ones.
ROUTE_VERSION = 3
#: Where decisions are kept between processes (None: in memory only): the user cache's
#: `int8_route/` (deploy/cache_dirs.py; SRDEPLOY_CACHE_DIR is read when this module is imported).
CACHE_DIR: Optional[Path] = cache_dirs.cache_dir("int8_route")
_DECISIONS: dict[str, dict[str, Any]] = {}


def measure(tflite: bytes, src, val: validation.ValidationSet) -> float:
    runner = TFLiteRunner(tflite, src.scale, convention=src.convention)
    return val.psnr_y(runner.map(val.lr), src.scale)


#: The int8 candidates, in tie-break order (a later one must beat every earlier one by more than
#: MARGIN_DB): the converter, the per-layer quantizer with global min/max ranges, and the
#: per-layer quantizer with each activation's range chosen by least quantization error
#: (deploy/convert/ptq/act_ranges.py `mse`: a tanh/sigmoid input ranged for what the activation
#: outputs; retrained ESPCN x3 33.47 -> 34.54 dB on the validation patches, bench/int8_quality.py).
ROUTES = ("converter", "per_layer_a8w8", "per_layer_a8w8_mse")
_PTQ = {"per_layer_a8w8": None, "per_layer_a8w8_mse": "mse"}
_REASONS = {
    "converter": "the converter's int8 measured at least as good",
    "per_layer_a8w8": "the converter shares one scale across STRIDED_SLICE outputs and CONCATENATION inputs; "
                      "the per-layer quantizer keeps each tensor's range (rescale ops)",
    "per_layer_a8w8_mse": "activation ranges chosen by least int8 error (act_ranges mse) measured better than "
                          "min/max ranges on either route"}


def _per_layer_applies(io_type: str, input_size) -> bool:
    """The per-layer candidates exist only for float32/uint8 I/O at a fixed input size."""
    return io_type in ("float32", "uint8") and input_size is not None


def routes(src, *, input_size=convert_api.DEFAULT_INPUT_HW, calib_dir: Optional[str | Path] = None,
           calib_images: int = 8, io_type: str = "float32") -> dict[str, QuantizedModel]:
    """Every int8 candidate that applies, by route name (ROUTES order): the converter's only where
    the per-layer route cannot make the I/O type or the input is dynamic."""
    if not _per_layer_applies(io_type, input_size):
        return {"converter": _build("converter", src, input_size, calib_dir, calib_images, io_type)}
    return {r: _build(r, src, input_size, calib_dir, calib_images, io_type) for r in ROUTES}


def _build(route: str, src, input_size, calib_dir, calib_images, io_type) -> QuantizedModel:
    if route == "converter":
        return convert_api.quantize(src, "int8", input_size=input_size, calib_dir=calib_dir,
                                    calib_images=calib_images, io_type=io_type)
    return convert_api.quantize(src, Policy(src.name, src.scale, "a8w8", (), io_type), input_size=input_size,
                                calib_dir=calib_dir, calib_images=calib_images, ptq=_PTQ[route])


def choose(src, candidates: dict[str, QuantizedModel], *, input_size=convert_api.DEFAULT_INPUT_HW,
           val_dir: Optional[str | Path] = None, val_images: int = 5):
    """(the better model, the report's `int8_route` entry) among `routes`' candidates."""
    if len(candidates) == 1:
        (name, q), = candidates.items()
        return q, {"chosen": name, "reason": "only the converter route makes this I/O type or a dynamic input"}
    val = validation.validation_set(src.scale, input_size, val_dir=val_dir, n_images=val_images)
    psnr = {name: measure(q.tflite_bytes, src, val) for name, q in candidates.items()}
    chosen = next(iter(candidates))
    for name in candidates:
        if psnr[name] > psnr[chosen] + MARGIN_DB:
            chosen = name
    info = {"chosen": chosen, "validation_psnr_y": {k: round(v, 4) for k, v in psnr.items()},
            "validation": val.to_json(), "reason": _REASONS[chosen]}
    return candidates[chosen], info


def decision_key(src, *, input_size, calib_dir, calib_images: int, io_type: str, val_dir, val_images: int) -> str:
    """sha256 of everything the int8 decision depends on (see the module docstring)."""
    from deploy.data import calibration
    from models._keras import tf
    import ai_edge_litert
    import litert_quantizer
    h = hashlib.sha256(src.model.to_json().encode())
    for w in src.model.get_weights():
        h.update(str(w.shape).encode() + w.tobytes())
    calib = calibration.calibration_set(src.scale, input_size, calib_dir=calib_dir, n_images=calib_images,
                                        convention=src.convention)
    val = validation.validation_set(src.scale, input_size, val_dir=val_dir, n_images=val_images)
    parts = {"route_version": ROUTE_VERSION, "model": h.hexdigest(), "source": src.to_json(),
             "input_size": list(input_size), "io_type": io_type, "calibration": calib.to_json(),
             "validation": val.to_json(), "margin_db": MARGIN_DB,
             "versions": [tf.__version__, getattr(ai_edge_litert, "__version__", ""),
                          getattr(litert_quantizer, "__version__", "")]}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _cache_file(key: str) -> Optional[Path]:
    return CACHE_DIR / f"{key}.json" if CACHE_DIR is not None else None


def _lookup(key: str) -> Optional[dict[str, Any]]:
    if key in _DECISIONS:
        return _DECISIONS[key]
    path = _cache_file(key)
    if path is None or not path.is_file():
        return None
    try:
        entry = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(entry, dict) and isinstance(entry.get("info"), dict) and isinstance(entry.get("sha256"), str)
    return entry if ok else None


def _store(key: str, info: dict[str, Any], sha256: str) -> None:
    from deploy._files import atomic_write
    entry = {"info": info, "sha256": sha256}
    _DECISIONS[key] = entry
    path = _cache_file(key)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, json.dumps(entry, indent=1) + "\n")
        except OSError:  # a read-only checkout still decides; it only decides again next time
            pass


def best_int8(src, *, input_size=convert_api.DEFAULT_INPUT_HW, calib_dir: Optional[str | Path] = None,
              calib_images: int = 8, io_type: str = "float32", val_dir: Optional[str | Path] = None,
              val_images: int = 5):
    """The best-measured of the int8 candidates (ROUTES), and why; a decision made before for the
    same inputs is reused and only the chosen route is built."""
    if not _per_layer_applies(io_type, input_size):
        return choose(src, routes(src, input_size=input_size, calib_dir=calib_dir, calib_images=calib_images,
                                  io_type=io_type))
    if twin.applies(input_size, src.framework):  # a frame: decided on the twin, built at the frame
        _, info = best_int8(src, input_size=twin.TWIN_HW, calib_dir=calib_dir, calib_images=calib_images,
                            io_type=io_type, val_dir=val_dir, val_images=val_images)
        q = _build(info["chosen"], src, input_size, calib_dir, calib_images, io_type)
        return q, {**info, "decided_on": twin.describe(input_size)}
    key = decision_key(src, input_size=input_size, calib_dir=calib_dir, calib_images=calib_images,
                       io_type=io_type, val_dir=val_dir, val_images=val_images)
    cached = _lookup(key)
    if cached is not None and cached["info"].get("chosen") in ROUTES:
        q = _build(cached["info"]["chosen"], src, input_size, calib_dir, calib_images, io_type)
        if hashlib.sha256(q.tflite_bytes).hexdigest() == cached["sha256"]:
            _DECISIONS[key] = cached
            return q, dict(cached["info"])
    candidates = routes(src, input_size=input_size, calib_dir=calib_dir, calib_images=calib_images, io_type=io_type)
    q, info = choose(src, candidates, input_size=input_size, val_dir=val_dir, val_images=val_images)
    _store(key, info, hashlib.sha256(q.tflite_bytes).hexdigest())
    return q, info


def decided_route(src, *, input_size=convert_api.DEFAULT_INPUT_HW, calib_dir: Optional[str | Path] = None,
                  calib_images: int = 8, io_type: str = "float32", val_dir: Optional[str | Path] = None,
                  val_images: int = 5) -> Optional[str]:
    """The route an earlier `best_int8` chose for these very inputs (None: not decided yet), without
    building a model: for reports that only need the name (bench/zoo.py's stale-row check)."""
    if not _per_layer_applies(io_type, input_size):
        return "converter"
    if twin.applies(input_size, src.framework):
        input_size = twin.TWIN_HW
    cached = _lookup(decision_key(src, input_size=input_size, calib_dir=calib_dir, calib_images=calib_images,
                                  io_type=io_type, val_dir=val_dir, val_images=val_images))
    return cached["info"].get("chosen") if cached is not None else None


def quantize_int8(src, **kw):
    """`best_int8` as one QuantizedModel whose report carries `int8_route`."""
    q, info = best_int8(src, **kw)
    return dataclasses.replace(q, report=types.MappingProxyType({**dict(q.report), "precision": "int8",
                                                                 "int8_route": info}))


def quantize(source: ModelSource, policy: Policy | str, config: Optional[QuantizeConfig] = None, *,
             input_size: Optional[tuple[int, int]] = convert_api.DEFAULT_INPUT_HW,
             calib_dir: Optional[str | Path] = None) -> QuantizedModel:
    """`deploy.quantize`: `deploy.convert.api.quantize`, except that uniform int8 is the best
    int8 we can make (as `convert.py --precision int8`), not only the converter's.

    Args:
        source: from `deploy.load_model`.
        policy: a `Policy`, or one of `float`, `fp16`, `int8` (= `a8w8`), `a16w8` (= `int16x8`).
        config: a `deploy.QuantizeConfig` (default: all defaults): calibration image count, I/O
            type, the int8 route (`best` or `converter`), the validation photos `best` measures
            on, post-training quantization options (deploy/evaluation/config.py).
        input_size: fixed LR input (H, W); None = dynamic (float/fp16 only).
        calib_dir: HR photos for calibration (default: the shipped calibration photos).
    Returns:
        A frozen `QuantizedModel` (`.tflite_bytes`, `.report`, `.save(path)`).
    Raises:
        deploy.errors.UserInputError: a wrong argument (not a `deploy.load_model` source, an
            input size out of range, a count out of range or an unknown `int8_route` (raised by
            `QuantizeConfig`), an unknown precision (`PrecisionError`) or I/O type).
        deploy.PolicyError: a policy for another model or scale, or naming layers the model
            does not have (the message lists near names).
        deploy.errors.SrdeployError: the conversion failed (`ConversionError`) or the quantizer
            left an op at another precision than asked (`QuantizationError`).
    """
    from deploy.convert import args, precisions
    from deploy.errors import UserInputError
    require_source(source)  # checked here: the int8 route reads the source before convert.api does
    input_size = args.input_size(input_size)
    if config is None:
        config = QuantizeConfig()
    elif not isinstance(config, QuantizeConfig):
        raise UserInputError(f"config must be a deploy.QuantizeConfig, not {type(config).__name__}", option="config")
    calib_images, io_type, int8_route = config.calib_images, config.io_type, config.int8_route
    val_dir, val_images, ptq = config.val_dir, config.val_images, config.ptq
    from deploy.convert.ptq import PtqOptions
    with_ptq = not PtqOptions.parse(ptq).is_default  # PTQ options exist on the per-layer route only
    if not isinstance(policy, Policy) and not with_ptq:
        policy = precisions.uniform(policy)  # one vocabulary: a8w8 = int8, int16x8 = a16w8
    best = (not with_ptq and int8_route == "best" and policy == "int8" and input_size is not None
            and (io_type or "float32") in ("float32", "uint8") and not source.graph_route)
    if not best:
        q = convert_api.quantize(source, policy, input_size=input_size, calib_dir=calib_dir,
                                 calib_images=calib_images, io_type=io_type, **({"ptq": ptq} if with_ptq else {}))
    else:
        convert_api.check_scale(source)
        q = quantize_int8(source, input_size=input_size, calib_dir=calib_dir, calib_images=calib_images,
                          io_type=io_type or "float32", val_dir=val_dir, val_images=val_images)
    # the options the model was made with, in its record (the flatbuffer's bytes do not change)
    return dataclasses.replace(q, report=types.MappingProxyType({**dict(q.report), "config": config.to_json()}))

