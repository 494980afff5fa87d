"""`deploy.quantize`: a model source + a policy or uniform precision -> one TFLite model, in memory.

The CLIs (`tools/convert.py`) call this same function and then `QuantizedModel.save`, so no
behaviour is reachable only from the command line. Policy-aware QAT is a step before this one
(`deploy.experimental.qat.finetune_source`), not an option of it.
"""
from __future__ import annotations

import dataclasses
import json
import types
from pathlib import Path
from typing import Any, Mapping, Optional

from deploy._files import OutputExistsError, atomic_write
from deploy.convert import metadata
from deploy.convert.policy import Policy
from deploy.convert.sources import ModelSource, require_source
from deploy.errors import UserInputError

from deploy.convert.precisions import UNIFORM  # noqa: E402,F401 - uniform precisions quantize takes
from deploy.data.io_convention import DEFAULT_INPUT_HW  # noqa: E402 - the default LR input size


@dataclasses.dataclass(frozen=True, repr=False)
class QuantizedModel:
    """A converted model: its flatbuffer (metadata embedded) and the conversion report.

    `save(path)` writes both; `to_json()` is the report (JSON-able); the repr is a summary."""
    tflite_bytes: bytes
    report: Mapping[str, Any]

    def __repr__(self) -> str:
        from deploy._results import brief_repr
        r = self.report
        return brief_repr(self, model=r.get("model"), scale=r.get("scale"), precision=r.get("precision"),
                          input_hw=r.get("input_hw", r.get("input_size")), sha256=r.get("sha256"),
                          tflite_bytes=self.tflite_bytes)

    def to_json(self) -> dict[str, Any]:
        """The conversion report (what `save` writes beside the model)."""
        return json.loads(json.dumps(dict(self.report)))

    def save(self, path: str | Path, *, overwrite: bool = False, report: Optional[str | Path] = None) -> Path:
        """Write `path` and its report beside it (`path` with .json, or `report`), atomically.

        Raises:
            FileExistsError: either file exists and `overwrite` is False (also when another run
                wrote it meanwhile: the check and the write are one atomic step).
        """
        path = Path(path)
        side = Path(report) if report is not None else report_path(path)
        for p in (path, side):
            if p.exists() and not overwrite:
                raise OutputExistsError(f"{p} exists; pass overwrite=True to replace it", file=p)
        atomic_write(path, self.tflite_bytes, overwrite=overwrite)
        atomic_write(side, json.dumps(dict(self.report), indent=2) + "\n", overwrite=overwrite)
        return path


def report_path(tflite_path: str | Path, *, avoid: tuple[str | Path, ...] = ()) -> Path:
    """Where a model's conversion report lives: beside it, same stem, `.json` — or, when that is
    one of `avoid` (e.g. `--policy hybrid.json --out hybrid.tflite`), `hybrid.tflite.json`."""
    path = Path(tflite_path)
    side = path.with_suffix(".json")
    if any(side.resolve() == Path(a).resolve() for a in avoid):
        side = path.with_name(path.name + ".json")
    return side


def report_candidates(tflite_path: str | Path) -> tuple[Path, Path]:
    """Every place `report_path` may have put a model's report."""
    path = Path(tflite_path)
    return path.with_suffix(".json"), path.with_name(path.name + ".json")


def find_report(tflite_path: str | Path) -> Optional[tuple[Path, dict]]:
    """The conversion report of this very model (its recorded sha256 matches the file), or None:
    a stale, foreign or corrupt JSON beside it (a policy file, say) is never taken for it."""
    from deploy._files import sha256_file
    own = None
    for rep in report_candidates(tflite_path):
        if not rep.is_file():
            continue
        try:
            obj = json.loads(rep.read_text())
        except (ValueError, UnicodeDecodeError):
            continue
        own = own or sha256_file(tflite_path)
        if isinstance(obj, dict) and obj.get("sha256") == own:
            return rep, obj
    return None


def check_scale(source: ModelSource) -> int:
    """The upscaling factor a user's model's own shapes imply; a contradicting `source.scale`
    (e.g. `--scale 2` for an x3 model), or a model that is not image -> larger image, is a
    UserInputError instead of a wrong model with wrong metadata. Zoo models are built at their
    scale and pass unchecked."""
    if source.zoo or source.graph_route:  # a graph-route source is checked on its float TFLite
        return source.scale
    def hw(shape) -> tuple:
        if not isinstance(shape, tuple) or len(shape) != 4:
            raise UserInputError(f"{source.name} is not an SR image model: input/output shape {shape} "
                                 "(expected one NHWC image in and one out)")
        return shape[1], shape[2]
    model = source.model
    (ih, iw), (oh, ow) = hw(model.input_shape), hw(model.output_shape)
    if None in (ih, iw, oh, ow):
        model = source.fixed((16, 16))
        (ih, iw), (oh, ow) = hw(model.input_shape), hw(model.output_shape)
    if not ih or not iw or oh % ih or ow % iw or oh // ih != ow // iw or oh < ih:
        raise UserInputError(f"{source.name} is not an SR model: output {oh}x{ow} is not a whole multiple "
                             f"of its input {ih}x{iw}")
    own = oh // ih
    if int(source.scale) != own:
        raise UserInputError(f"scale {source.scale} contradicts {source.name}, which upscales x{own} "
                             f"(output {oh}x{ow} from input {ih}x{iw}); pass --scale {own}")
    return own


def quantize(source: ModelSource, policy: Policy | str, *,
             input_size: Optional[tuple[int, int]] = DEFAULT_INPUT_HW,
             calib_dir: Optional[str | Path] = None, calib_images: int = 8,
             io_type: Optional[str] = None, ptq=None) -> QuantizedModel:
    """Convert `source` at a per-layer `Policy` or a uniform precision, verified, in memory.

    Args:
        source: from `deploy.load_model`.
        policy: a `Policy` (per layer: AI Edge Quantizer, every op's dtype read back), or one of
            `float`, `fp16`, `int8` (= `a8w8`), `a16w8` (TFLiteConverter).
        input_size: fixed LR input (H, W); None = dynamic (float/fp16 only).
        calib_dir: HR photos for calibration (default: the shipped calibration photos).
        calib_images: how many calibration photos to use.
        io_type: uniform only: `float32`, `uint8`, `int8`, `int16`; a policy carries its own.
        ptq: post-training quantization options of the per-layer route (`deploy.convert.ptq.
            PtqOptions`, a dict of its fields, or a label such as `mse+clip+cle+bc`); None = global
            min/max. With options, `int8` / `a16w8` are the per-layer route at that precision.
    Returns:
        A frozen `QuantizedModel` (`.tflite_bytes`, `.report`, `.save(path)`).
    Raises:
        deploy.errors.SrdeployError: the policy does not fit the model, a precision or I/O type
            is unknown, or the quantizer left an op at another precision than asked.
    """
    from deploy.convert import args
    require_source(source)
    input_size = args.input_size(input_size)
    calib_images = args.count("calib_images", calib_images)
    check_scale(source)
    ptq = _policy_ptq(policy, ptq)
    if ptq is not None and not _ptq_options(ptq).is_default:  # per-layer route only
        if not isinstance(policy, Policy):
            return _ptq_uniform(source, str(policy), input_size, calib_dir, calib_images, io_type or "float32", ptq)
        if io_type is not None and io_type != policy.io_type:
            raise UserInputError(f"io_type '{io_type}' differs from the policy's io_type '{policy.io_type}'")
        return _quantize_policy(source, policy, input_size, calib_dir, calib_images, ptq=ptq)
    if isinstance(policy, Policy):
        if io_type is not None and io_type != policy.io_type:
            raise UserInputError(f"io_type '{io_type}' differs from the policy's io_type "
                                 f"'{policy.io_type}'; set it in the policy")
        return _quantize_policy(source, policy, input_size, calib_dir, calib_images)
    from deploy.convert import precisions
    precision = precisions.uniform(policy)  # `a8w8` = `int8`, `int16x8` = `a16w8`
    if source.graph_route:  # Keras 3 / SavedModel / float TFLite: no TFLiteConverter route
        return _graph_uniform(source, precision, input_size, calib_dir, calib_images, io_type or "float32")
    return _quantize_uniform(source, precision, input_size, calib_dir, calib_images, io_type or "float32")


def _quantize_uniform(src: ModelSource, precision: str, input_hw, calib_dir, calib_images,
                      io_type: str) -> QuantizedModel:
    from deploy.convert import uniform
    from deploy.data import calibration
    from models.complexity import receptive_radius
    if precision not in UNIFORM:
        raise uniform.ConversionError(f"unknown precision '{precision}'; choose one of "
                                      f"{', '.join(UNIFORM)} or pass a Policy")
    uniform.check_io_type(precision, io_type)
    if input_hw is None and precision in ("int8", "a16w8"):
        raise uniform.ConversionError("integer models need a fixed input size (e.g. 64x64): "
                                      "dynamic shapes add SHAPE ops that keep feature maps in float")
    model = src.fixed(input_hw) if input_hw is not None else src.model
    calib = None
    if precision in ("int8", "a16w8"):
        calib = calibration.calibration_set(src.scale, input_hw, calib_dir=calib_dir, n_images=calib_images,
                                            convention=src.convention)
    converted = uniform.convert_uniform(model, precision, calib=calib, io_type=io_type)
    report = {**src.to_json(), **converted.report, "receptive_radius_lr": round(receptive_radius(model), 2)}
    tflite, report = metadata.stamp(converted.tflite, report)  # scale, I/O convention, quantization
    return QuantizedModel(tflite, types.MappingProxyType(report))


def _graph_uniform(src: ModelSource, precision: str, input_hw, calib_dir, calib_images,
                   io_type: str) -> QuantizedModel:
    """Uniform precision for a Keras 3 / SavedModel / float-TFLite source: float is its float
    TFLite; int8 / a16w8 are the per-layer route with every layer at that precision."""
    from deploy.convert import per_layer
    from deploy.convert.uniform import ConversionError
    if precision == "float":
        if io_type != "float32":
            raise ConversionError(f"a float model has float32 I/O, not {io_type}")
        prep = per_layer.prepare_source(src, input_hw, rewrite_prelu=False)  # the source's own graph
        report = {**src.to_json(), "precision": "float", "route": "float TFLite of the source",
                  "size_bytes": len(prep.float_tflite), "input_shape": list(prep.input_shape),
                  "receptive_radius_lr": round(prep.receptive_radius, 2)}
        tflite, report = metadata.stamp(prep.float_tflite, report)
        return QuantizedModel(tflite, types.MappingProxyType(report))
    if precision not in ("int8", "a16w8") or io_type not in ("float32", "uint8"):
        raise ConversionError(
            f"a {src.framework} source converts at float, int8 (a8w8) or a16w8 with float32 or uint8 I/O "
            f"(the per-layer route; TFLiteConverter needs a tf_keras model), not {precision} with {io_type} I/O")
    if input_hw is None and src.framework != "tflite":
        raise ConversionError("integer models need a fixed input size (e.g. 64x64)")
    prep = per_layer.prepare_source(src, input_hw)
    policy = Policy.for_layers(src.name, src.scale, "a8w8" if precision == "int8" else precision,
                               prep.layers, io_type)
    q = _quantize_policy(src, policy, tuple(prep.input_shape[1:3]), calib_dir, calib_images, prep=prep)
    return dataclasses.replace(q, report=types.MappingProxyType({**q.report, "precision": precision,
                                                                 "uniform_via": "per-layer policy"}))


def _quantize_policy(src: ModelSource, policy: Policy, input_hw, calib_dir, calib_images,
                     prep=None, ptq=None) -> QuantizedModel:
    from deploy.convert import per_layer
    from deploy.convert import twin as twin_mod
    from deploy.data import calibration
    if input_hw is None:
        raise UserInputError("per-layer quantization needs a fixed input size (e.g. 64x64)")
    policy.validate(model=src.name, scale=src.scale)
    prep = prep or per_layer.prepare_source(src, input_hw)
    input_hw = tuple(prep.input_shape[1:3])  # a float TFLite keeps its own size
    policy.validate(prep.layers)  # before calibration
    twin = None
    if twin_mod.applies(input_hw, src.framework):  # frame-sized: ranges from the small twin
        twin = per_layer.prepare_source(src, twin_mod.TWIN_HW)
    calib = calibration.calibration_set(src.scale, twin_mod.TWIN_HW if twin else input_hw, calib_dir=calib_dir,
                                        n_images=calib_images, convention=src.convention)
    tflite, report = per_layer.quantize_policy(prep, policy, calib, value_peak=src.convention.peak, ptq=ptq,
                                               twin=twin)
    report = {**src.to_json(), "precision": "policy", "qat": None, **report,
              "receptive_radius_lr": round(prep.receptive_radius, 2)}
    tflite, report = metadata.stamp(tflite, report)  # scale, I/O convention, quantization, policy sha
    return QuantizedModel(tflite, types.MappingProxyType(report))


def _policy_ptq(policy, ptq):
    """The PTQ a policy is converted with: the one it was searched with (`Policy.ptq`), so the
    model is the one the search measured; QAT's learned values replace it; other options that
    contradict it are refused (the searched PSNR would not hold)."""
    if not isinstance(policy, Policy) or policy.ptq is None:
        return ptq
    if ptq is None:
        return policy.ptq
    opts = _ptq_options(ptq)
    if opts.learned is None and opts.label != policy.ptq:
        raise UserInputError(f"the policy was searched with ptq '{policy.ptq}', not '{opts.label}': convert it "
                             f"without PTQ options (its own apply), or search again with them", option="ptq",
                             value=opts.label)
    return ptq


def _ptq_options(ptq):
    from deploy.convert.ptq import PtqOptions
    return PtqOptions.parse(ptq)


def _ptq_uniform(src: ModelSource, precision: str, input_hw, calib_dir, calib_images, io_type: str,
                 ptq) -> QuantizedModel:
    """Uniform int8 / a16w8 with PTQ options: every layer at that precision on the per-layer route
    (the options act on AI Edge Quantizer's calibration and the float weights; the TFLiteConverter
    has no such hooks)."""
    from deploy.convert import per_layer
    wanted = {"int8": "a8w8", "a8w8": "a8w8", "a16w8": "a16w8", "int16x8": "a16w8"}.get(precision)
    if wanted is None:
        raise UserInputError(f"ptq options apply to int8 / a16w8 and per-layer policies, not {precision}")
    if io_type not in ("float32", "uint8"):
        raise UserInputError(f"ptq options use the per-layer route: io_type float32 or uint8, not {io_type}")
    if input_hw is None:
        raise UserInputError("integer models need a fixed input size (e.g. 64x64)")
    prep = per_layer.prepare_source(src, input_hw)
    policy = Policy.for_layers(src.name, src.scale, wanted, prep.layers, io_type)
    q = _quantize_policy(src, policy, tuple(prep.input_shape[1:3]), calib_dir, calib_images, prep=prep, ptq=ptq)
    return dataclasses.replace(q, report=types.MappingProxyType({
        **q.report, "precision": "int8" if wanted == "a8w8" else "a16w8", "uniform_via": "per-layer policy (ptq)"}))
